//! proptest strategies that keep addresses in small spaces so that random
//! selectors and prefixes overlap often enough to exercise ordering and LPM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use crate::{IpNet, Ipv4Net, Ipv6Net, TrafficSelector};

pub fn v4_addr() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        3 => (0u32..1024).prop_map(|x| Ipv4Addr::from(0x0a00_0000 + x)),
        1 => any::<u32>().prop_map(Ipv4Addr::from),
        1 => Just(Ipv4Addr::new(0, 0, 0, 0)),
        1 => Just(Ipv4Addr::new(255, 255, 255, 255)),
    ]
}

pub fn v6_addr() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        3 => (0u128..1024).prop_map(|x| Ipv6Addr::from(0x2001_0db8_u128 << 96 | x)),
        1 => any::<u128>().prop_map(Ipv6Addr::from),
        1 => Just(Ipv6Addr::UNSPECIFIED),
        1 => Just(Ipv6Addr::from(u128::MAX)),
    ]
}

pub fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_addr().prop_map(IpAddr::V4),
        v6_addr().prop_map(IpAddr::V6)
    ]
}

pub fn v4_net() -> impl Strategy<Value = Ipv4Net> {
    (v4_addr(), prop_oneof![0u8..=32, 20u8..=32]).prop_filter_map("valid prefix", |(a, l)| {
        Ipv4Net::new(a, l).ok().map(|n| n.trunc())
    })
}

pub fn v6_net() -> impl Strategy<Value = Ipv6Net> {
    (v6_addr(), prop_oneof![0u8..=128, 110u8..=128]).prop_filter_map("valid prefix", |(a, l)| {
        Ipv6Net::new(a, l).ok().map(|n| n.trunc())
    })
}

pub fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![v4_net().prop_map(IpNet::V4), v6_net().prop_map(IpNet::V6)]
}

fn ordered<T: Ord>(a: T, b: T) -> (T, T) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

pub fn proto() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), Just(1u8), Just(6u8), Just(17u8), any::<u8>()]
}

pub fn port_range() -> impl Strategy<Value = (u16, u16)> {
    prop_oneof![
        2 => Just((0u16, u16::MAX)),
        2 => (0u16..8, 0u16..8).prop_map(|(a, b)| ordered(a, b)),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| ordered(a, b)),
    ]
}

/// A selector of either family: a prefix or an arbitrary range.
pub fn selector() -> impl Strategy<Value = TrafficSelector> {
    prop_oneof![selector_of(true), selector_of(false)]
}

/// A selector of the given family only (so pairs are comparable).
pub fn selector_of(v4: bool) -> BoxedStrategy<TrafficSelector> {
    let range = if v4 {
        prop_oneof![
            v4_net().prop_map(|n| (IpAddr::V4(n.network()), IpAddr::V4(n.broadcast()))),
            (v4_addr(), v4_addr()).prop_map(|(a, b)| ordered(IpAddr::V4(a), IpAddr::V4(b))),
        ]
        .boxed()
    } else {
        prop_oneof![
            v6_net().prop_map(|n| (IpAddr::V6(n.network()), IpAddr::V6(n.broadcast()))),
            (v6_addr(), v6_addr()).prop_map(|(a, b)| ordered(IpAddr::V6(a), IpAddr::V6(b))),
        ]
        .boxed()
    };
    (range, proto(), port_range())
        .prop_map(|((start, end), proto, (sp, ep))| {
            TrafficSelector::new(proto, start, end, sp, ep).unwrap()
        })
        .boxed()
}

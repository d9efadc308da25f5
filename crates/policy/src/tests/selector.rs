use std::net::IpAddr;

use proptest::prelude::*;

use super::strategies::{addr, net, port_range, proto, selector, selector_of, v4_addr, v6_addr};
use crate::{flow_matches, IpNet, SelectorError, TrafficSelector};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ts(s: &str) -> TrafficSelector {
    s.parse().unwrap()
}

#[test]
fn parse_and_display_forms() {
    for (input, shown) in [
        ("10.1.1.0/24", "10.1.1.0/24"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("10.0.0.1", "10.0.0.1/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("10.0.0.1-10.0.0.9", "10.0.0.1..10.0.0.9"),
        (" 10.0.0.1 - 10.0.0.9 ", "10.0.0.1..10.0.0.9"),
        ("10.0.0.0-10.0.0.255", "10.0.0.0/24"),
        ("2001:db8::1..2001:db8::9", "2001:db8::1..2001:db8::9"),
        (
            "10.1.1.5..10.1.1.9[tcp/80-90]",
            "10.1.1.5..10.1.1.9[tcp/80-90]",
        ),
        ("10.1.1.0/24[udp/53]", "10.1.1.0/24[udp/53]"),
        ("10.1.1.0/24[UDP/53-53]", "10.1.1.0/24[udp/53]"),
        ("10.1.1.0/24[icmp]", "10.1.1.0/24[icmp]"),
        ("10.1.1.0/24[47]", "10.1.1.0/24[47]"),
        ("10.1.1.0/24[any/0-1023]", "10.1.1.0/24[any/0-1023]"),
        ("10.1.1.0/24[any]", "10.1.1.0/24"),
        ("10.1.1.0/24[tcp/0-65535]", "10.1.1.0/24[tcp]"),
    ] {
        let parsed = ts(input);
        assert_eq!(parsed.to_string(), shown, "{input}");
        assert_eq!(ts(shown), parsed, "{shown}");
    }
    let t = ts("10.1.1.5..10.1.1.9[tcp/80-90]");
    assert_eq!(
        t,
        TrafficSelector::new(6, ip("10.1.1.5"), ip("10.1.1.9"), 80, 90).unwrap()
    );
}

#[test]
fn parse_errors_say_what_is_valid() {
    assert_eq!(
        "10.1.1.5/24".parse::<TrafficSelector>(),
        Err(SelectorError::HostBitsSet {
            input: "10.1.1.5/24".into(),
            network: "10.1.1.0/24".parse().unwrap(),
        })
    );
    assert!(matches!(
        "10.0.0.9-10.0.0.1".parse::<TrafficSelector>(),
        Err(SelectorError::AddressRangeReversed { .. })
    ));
    assert!(matches!(
        "10.0.0.1-::1".parse::<TrafficSelector>(),
        Err(SelectorError::FamilyMismatch { .. })
    ));
    assert!(matches!(
        "10.0.0.0/8[tcp/90-80]".parse::<TrafficSelector>(),
        Err(SelectorError::PortRangeReversed { start: 90, end: 80 })
    ));
    for bad in [
        "",
        "bogus",
        "10.0.0.0/33",
        "10.0.0.1-",
        "10.0.0.0/8[tcp",
        "10.0.0.0/8[gre]",
        "10.0.0.0/8[tcp/http]",
        "10.0.0.0/8[tcp/70000]",
        "[tcp]",
    ] {
        let err = bad.parse::<TrafficSelector>().unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, SelectorError::Syntax { .. }),
            "{bad}: {err:?}"
        );
        assert!(msg.contains("valid forms are"), "{msg}");
        assert!(msg.contains("10.0.0.1-10.0.0.9"), "{msg}");
    }
    let msg = "10.1.1.5/24"
        .parse::<TrafficSelector>()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("10.1.1.0/24"), "{msg}");
}

#[test]
fn new_checks_invariants() {
    assert!(TrafficSelector::new(0, ip("10.0.0.2"), ip("10.0.0.1"), 0, 0).is_err());
    assert!(TrafficSelector::new(0, ip("10.0.0.1"), ip("::1"), 0, 0).is_err());
    assert!(TrafficSelector::new(0, ip("10.0.0.1"), ip("10.0.0.1"), 2, 1).is_err());
    assert!(TrafficSelector::new(0, ip("10.0.0.1"), ip("10.0.0.1"), 1, 1).is_ok());
}

#[test]
fn matching() {
    let t = ts("10.1.1.0/24[tcp/80-90]");
    assert!(t.is_ipv4());
    assert!(t.matches(ip("10.1.1.7"), 6, 80));
    assert!(!t.matches(ip("10.1.1.7"), 17, 80));
    assert!(!t.matches(ip("10.1.1.7"), 6, 91));
    assert!(!t.matches(ip("10.1.2.7"), 6, 85));
    let any = ts("10.1.1.0/24");
    assert!(any.matches(ip("10.1.1.7"), 47, 0));
    assert!(any.contains_addr(ip("10.1.1.255")));
    // An IPv6 address is never in an IPv4 range, whatever the integer order of IpAddr says.
    let all_v4 = ts("0.0.0.0/0");
    assert!(!all_v4.contains_addr(ip("::")));
    assert!(!ts("::/0").contains_addr(ip("255.255.255.255")));
}

#[test]
fn flow_matches_needs_both_ends() {
    let local = [ts("192.168.0.0/16"), ts("172.16.0.0/12")];
    let remote = [ts("10.0.0.0/8[udp]")];
    assert!(flow_matches(
        &local,
        &remote,
        ip("172.16.1.1"),
        1,
        ip("10.9.9.9"),
        2,
        17
    ));
    assert!(!flow_matches(
        &local,
        &remote,
        ip("172.16.1.1"),
        1,
        ip("10.9.9.9"),
        2,
        6
    ));
    assert!(!flow_matches(
        &local,
        &remote,
        ip("8.8.8.8"),
        1,
        ip("10.9.9.9"),
        2,
        17
    ));
    assert!(!flow_matches(
        &[],
        &remote,
        ip("172.16.1.1"),
        1,
        ip("10.9.9.9"),
        2,
        17
    ));
}

#[test]
fn narrow_examples() {
    let a = ts("10.0.0.0/8");
    let b = ts("10.1.0.0/16[tcp/443]");
    assert_eq!(a.narrow(&b), Some(b));
    assert_eq!(b.narrow(&a), Some(b));
    assert_eq!(
        ts("10.0.0.0-10.0.0.9").narrow(&ts("10.0.0.5-10.0.0.20")),
        Some(ts("10.0.0.5-10.0.0.9"))
    );
    assert_eq!(ts("10.0.0.0/24").narrow(&ts("10.0.1.0/24")), None);
    assert_eq!(ts("10.0.0.0/24[tcp]").narrow(&ts("10.0.0.0/24[udp]")), None);
    assert_eq!(
        ts("10.0.0.0/24[tcp/1-5]").narrow(&ts("10.0.0.0/24[tcp/6-9]")),
        None
    );
    assert_eq!(ts("0.0.0.0/0").narrow(&ts("::/0")), None);
}

#[test]
fn subnet_examples() {
    assert_eq!(
        ts("10.0.0.1-10.0.0.9").to_subnets(),
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/31"]
            .map(|s| s.parse::<IpNet>().unwrap())
    );
    assert_eq!(
        ts("0.0.0.0/0").to_subnets(),
        [ts("0.0.0.0/0").as_prefix().unwrap()]
    );
    assert_eq!(
        ts("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").to_subnets(),
        ["::/0".parse::<IpNet>().unwrap()]
    );
    assert_eq!(ts("10.0.0.1-10.0.0.9").as_prefix(), None);
}

fn next_addr(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(v) => u32::from(v).checked_add(1).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(v) => u128::from(v).checked_add(1).map(|x| IpAddr::V6(x.into())),
    }
}

fn prev_addr(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(v) => u32::from(v).checked_sub(1).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(v) => u128::from(v).checked_sub(1).map(|x| IpAddr::V6(x.into())),
    }
}

fn range() -> impl Strategy<Value = TrafficSelector> {
    prop_oneof![
        (v4_addr(), v4_addr()).prop_map(|(a, b)| {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            TrafficSelector::new(0, a.into(), b.into(), 0, u16::MAX).unwrap()
        }),
        (v6_addr(), v6_addr()).prop_map(|(a, b)| {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            TrafficSelector::new(0, a.into(), b.into(), 0, u16::MAX).unwrap()
        }),
        net().prop_map(TrafficSelector::from_subnet),
    ]
}

proptest! {
    #[test]
    fn display_parse_round_trip(t in selector()) {
        let shown = t.to_string();
        prop_assert_eq!(shown.parse::<TrafficSelector>(), Ok(t), "{}", shown);
    }

    #[test]
    fn parse_never_panics(s in "[0-9a-f:./\\[\\]tcpudy-]{0,40}") {
        let _ = s.parse::<TrafficSelector>();
    }

    #[test]
    fn narrow_is_the_intersection(
        (a, b) in prop_oneof![(selector_of(true), selector_of(true)), (selector_of(false), selector_of(false))],
        probes in proptest::collection::vec((addr(), proto(), prop_oneof![0u16..10, any::<u16>()]), 32),
    ) {
        let n = a.narrow(&b);
        prop_assert_eq!(n, b.narrow(&a));
        if let Some(n) = n {
            prop_assert!(n.is_subset_of(&a), "{} not within {}", n, a);
            prop_assert!(n.is_subset_of(&b), "{} not within {}", n, b);
        }
        // Probe at the corners too, where off-by-one errors live.
        let corners = [a.start, a.end, b.start, b.end]
            .map(|x| (x, if a.proto != 0 { a.proto } else { b.proto }, a.start_port.max(b.start_port)));
        for (x, p, port) in probes.into_iter().chain(corners) {
            let both = a.matches(x, p, port) && b.matches(x, p, port);
            let in_n = n.is_some_and(|n| n.matches(x, p, port));
            prop_assert_eq!(both, in_n, "{} {} {}", x, p, port);
        }
    }

    #[test]
    fn subset_of_self_and_of_wider(t in selector()) {
        prop_assert!(t.is_subset_of(&t));
        let all = if t.is_ipv4() { ts("0.0.0.0/0") } else { ts("::/0") };
        prop_assert!(t.is_subset_of(&all));
        let other_family = if t.is_ipv4() { ts("::/0") } else { ts("0.0.0.0/0") };
        prop_assert!(!t.is_subset_of(&other_family));
    }

    #[test]
    fn to_subnets_covers_exactly(t in range()) {
        let nets = t.to_subnets();
        prop_assert!(!nets.is_empty());
        prop_assert_eq!(nets[0].network(), t.start);
        prop_assert_eq!(nets[nets.len() - 1].broadcast(), t.end);
        for pair in nets.windows(2) {
            // Contiguous: no gap, no overlap.
            prop_assert_eq!(next_addr(pair[0].broadcast()), Some(pair[1].network()));
            // Minimal: two sibling halves would have been one prefix.
            let merged = pair[0].prefix_len() == pair[1].prefix_len()
                && pair[0].supernet().map(|s| s.trunc()) == pair[1].supernet().map(|s| s.trunc());
            prop_assert!(!merged, "{} and {} should be one prefix", pair[0], pair[1]);
        }
        for n in &nets {
            prop_assert!(t.contains_addr(n.network()) && t.contains_addr(n.broadcast()));
        }
        let bits = if t.is_ipv4() { 32 } else { 128 };
        prop_assert!(nets.len() <= 2 * bits);
        if let Some(before) = prev_addr(t.start) {
            prop_assert!(!nets.iter().any(|n| n.contains(&before)), "{} covered", before);
        }
        if let Some(after) = next_addr(t.end) {
            prop_assert!(!nets.iter().any(|n| n.contains(&after)), "{} covered", after);
        }
        prop_assert_eq!(t.as_prefix().is_some(), nets.len() == 1);
    }

    #[test]
    fn from_subnet_is_its_own_cover(n in net(), (sp, ep) in port_range()) {
        let t = TrafficSelector::from_subnet(n);
        prop_assert_eq!(t.to_subnets(), vec![n]);
        prop_assert_eq!(t.as_prefix(), Some(n));
        prop_assert_eq!(t.to_string(), n.to_string());
        let restricted = TrafficSelector::new(6, t.start, t.end, sp, ep).unwrap();
        prop_assert_eq!(restricted.to_subnets(), vec![n]);
    }
}

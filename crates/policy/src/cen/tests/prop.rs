//! Random command sequences: nothing panics, lookups agree with a linear
//! longest-prefix scan of the listed table, and the listings stay
//! consistent with each other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use super::n;
use crate::cen::{Cen, EffectiveRoute, NetworkKind, NextHop, PublishStatus, RouteOrigin};

/// Networks whose blocks sit in the same small space the destinations are
/// drawn from, so routes land inside, around and across them.
fn network(i: usize) -> (&'static str, NetworkKind, Vec<IpNet>) {
    match i % 5 {
        0 => ("a", NetworkKind::Vpc, vec![n("10.0.0.0/24")]),
        1 => (
            "b",
            NetworkKind::Vpc,
            vec![n("10.0.1.0/24"), n("2001:db8::/120")],
        ),
        2 => ("c", NetworkKind::Vpc, vec![n("10.0.2.0/25")]),
        3 => ("d", NetworkKind::Vbr, vec![n("10.0.3.0/24")]),
        _ => ("e", NetworkKind::Vbr, vec![]),
    }
}

/// A command on network `.0`; destinations are indexes into a small pool
/// so that commands meet the same prefixes often (conflicts, take-overs).
#[derive(Debug, Clone)]
enum Op {
    Attach(usize),
    Detach(usize),
    Add(usize, usize, u8),
    Delete(usize, usize),
    Publish(usize, usize),
    Withdraw(usize, usize),
}

fn v4_addr() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        4 => (0u32..1280).prop_map(|x| Ipv4Addr::from(0x0a00_0000 + x)),
        1 => any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn v6_addr() -> impl Strategy<Value = Ipv6Addr> {
    (0u128..512).prop_map(|x| Ipv6Addr::from(0x2001_0db8_u128 << 96 | x))
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        4 => v4_addr().prop_map(IpAddr::V4),
        1 => v6_addr().prop_map(IpAddr::V6),
    ]
}

fn dest() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        6 => (v4_addr(), prop_oneof![20u8..=32, 0u8..=32]).prop_filter_map("prefix", |(a, l)| {
            Ipv4Net::new(a, l).ok().map(|p| IpNet::V4(p.trunc()))
        }),
        2 => (v6_addr(), 112u8..=128).prop_filter_map("prefix", |(a, l)| {
            Ipv6Net::new(a, l).ok().map(|p| IpNet::V6(p.trunc()))
        }),
        1 => Just(n("0.0.0.0/0")),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..5;
    let d = 0usize..16;
    prop_oneof![
        1 => i.clone().prop_map(Op::Attach),
        1 => i.clone().prop_map(Op::Detach),
        6 => (i.clone(), d.clone(), prop_oneof![9 => 0u8..5, 1 => 5u8..7])
            .prop_map(|(i, d, h)| Op::Add(i, d, h)),
        1 => (i.clone(), d.clone()).prop_map(|(i, d)| Op::Delete(i, d)),
        3 => (i.clone(), d.clone()).prop_map(|(i, d)| Op::Publish(i, d)),
        2 => (i, d).prop_map(|(i, d)| Op::Withdraw(i, d)),
    ]
}

fn hop(h: u8) -> NextHop {
    match h {
        0 => NextHop::EcsInstance("i".into()),
        1 => NextHop::VpnGateway("v".into()),
        2 => NextHop::HaVip("h".into()),
        3 => NextHop::DataCenter("dc".into()),
        4 => NextHop::Bgp("p".into()),
        5 => NextHop::System,
        _ => NextHop::Cen { from: "x".into() },
    }
}

fn apply(cen: &mut Cen, pool: &[IpNet], op: &Op) {
    let dest = |d: usize| pool.get(d % pool.len().max(1)).copied().unwrap_or_default();
    // Errors are expected (wrong kinds, unknown networks, ...); only panics
    // and inconsistent state fail the property.
    let _ = match *op {
        Op::Attach(i) => {
            let (name, kind, cidrs) = network(i);
            cen.attach(name, kind, &cidrs)
        }
        Op::Detach(i) => cen.detach(network(i).0),
        Op::Add(i, d, h) => cen.add_route(network(i).0, dest(d), hop(h)),
        Op::Delete(i, d) => cen.delete_route(network(i).0, dest(d)),
        Op::Publish(i, d) => cen.publish(network(i).0, dest(d)),
        Op::Withdraw(i, d) => cen.withdraw(network(i).0, dest(d)),
    };
}

fn oracle(routes: &[EffectiveRoute], a: IpAddr) -> Option<&EffectiveRoute> {
    routes
        .iter()
        .filter(|r| r.destination.contains(&a))
        .max_by_key(|r| r.destination.prefix_len())
}

fn check(cen: &Cen, probes: &[IpAddr]) -> Result<(), TestCaseError> {
    let published = cen.published();
    let active = |d: IpNet| {
        published
            .iter()
            .find(|p| p.destination == d && p.status == PublishStatus::Active)
    };
    for net in cen.networks() {
        let name = net.name();
        let routes = cen.routes(name).unwrap();
        prop_assert!(routes
            .windows(2)
            .all(|w| w[0].destination < w[1].destination));

        let ends = routes
            .iter()
            .flat_map(|r| [r.destination.network(), r.destination.broadcast()]);
        for a in probes.iter().copied().chain(ends) {
            let got = cen.lookup(name, a).unwrap();
            prop_assert_eq!(got, oracle(&routes, a), "{} {}", name, a);
        }

        for r in &routes {
            match &r.origin {
                RouteOrigin::Learned { from, .. } => {
                    prop_assert_ne!(from.as_str(), name);
                    prop_assert_eq!(active(r.destination).map(|p| &p.network), Some(from));
                    prop_assert!(!net.cidrs().iter().any(|c| c.contains(&r.destination)));
                }
                RouteOrigin::Own { published: p } => {
                    let listed = published
                        .iter()
                        .any(|row| row.destination == r.destination && row.network == name);
                    prop_assert_eq!(*p, listed);
                }
            }
        }
        let rejected = cen.rejected(name).unwrap();
        for rej in &rejected {
            prop_assert_eq!(active(rej.destination).map(|p| &p.network), Some(&rej.from));
        }
        // Every active route is either installed or refused, never both.
        for p in published
            .iter()
            .filter(|p| p.status == PublishStatus::Active)
        {
            if p.network == name {
                continue;
            }
            let installed = routes
                .iter()
                .any(|r| r.destination == p.destination && r.learned_from() == Some(&p.network));
            let refused = rejected.iter().any(|r| r.destination == p.destination);
            prop_assert!(installed != refused, "{} {}", name, p);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn lookups_agree_with_a_linear_scan_and_listings_agree(
        order in Just(vec![0usize, 1, 2, 3, 4]).prop_shuffle(),
        pool in proptest::collection::vec(dest(), 1..10),
        ops in proptest::collection::vec(op(), 0..60),
        probes in proptest::collection::vec(addr(), 24),
    ) {
        let mut cen = Cen::new("cen-prop");
        for i in order {
            apply(&mut cen, &pool, &Op::Attach(i));
        }
        for (step, op) in ops.iter().enumerate() {
            apply(&mut cen, &pool, op);
            if step % 8 == 7 {
                check(&cen, &probes)?;
            }
        }
        check(&cen, &probes)?;
    }
}

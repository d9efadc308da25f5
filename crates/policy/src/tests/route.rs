use std::net::IpAddr;

use proptest::prelude::*;

use super::strategies::{addr, net};
use crate::{IpNet, RouteTable};

fn n(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn insert_get_remove_lookup() {
    let mut t = RouteTable::new();
    assert!(t.is_empty());
    assert_eq!(t.insert(n("10.0.0.0/8"), "a"), None);
    assert_eq!(t.insert(n("10.1.0.0/16"), "b"), None);
    // Host bits are cleared: this replaces the /16.
    assert_eq!(t.insert(n("10.1.2.3/16"), "b2"), Some("b"));
    assert_eq!(t.insert(n("2001:db8::/32"), "v6"), None);
    assert_eq!(t.insert(n("0.0.0.0/0"), "default"), None);
    assert_eq!(t.len(), 4);

    assert_eq!(t.get(&n("10.1.0.0/16")), Some(&"b2"));
    assert_eq!(t.get(&n("10.1.9.9/16")), Some(&"b2"));
    assert_eq!(t.get(&n("10.1.0.0/24")), None);

    assert_eq!(t.lookup(ip("10.1.200.1")), Some((n("10.1.0.0/16"), &"b2")));
    assert_eq!(t.lookup(ip("10.2.0.1")), Some((n("10.0.0.0/8"), &"a")));
    assert_eq!(
        t.lookup(ip("192.0.2.1")),
        Some((n("0.0.0.0/0"), &"default"))
    );
    assert_eq!(
        t.lookup(ip("2001:db8::1")),
        Some((n("2001:db8::/32"), &"v6"))
    );
    // The IPv4 default route does not catch IPv6.
    assert_eq!(t.lookup(ip("2001:db9::1")), None);

    *t.get_mut(&n("10.0.0.0/8")).unwrap() = "a2";
    assert_eq!(t.remove(&n("10.1.0.0/16")), Some("b2"));
    assert_eq!(t.remove(&n("10.1.0.0/16")), None);
    assert_eq!(t.lookup(ip("10.1.200.1")), Some((n("10.0.0.0/8"), &"a2")));

    let all: Vec<_> = t.iter().map(|(p, v)| (p, *v)).collect();
    assert_eq!(
        all,
        [
            (n("0.0.0.0/0"), "default"),
            (n("10.0.0.0/8"), "a2"),
            (n("2001:db8::/32"), "v6")
        ]
    );
}

fn oracle(routes: &[(IpNet, u32)], a: IpAddr) -> Option<(IpNet, u32)> {
    routes
        .iter()
        .filter(|(p, _)| p.contains(&a))
        .max_by_key(|(p, _)| p.prefix_len())
        .copied()
}

proptest! {
    #[test]
    fn lookup_agrees_with_linear_scan(
        inserts in proptest::collection::vec((net(), any::<u32>()), 0..40),
        removals in proptest::collection::vec(net(), 0..10),
        probes in proptest::collection::vec(addr(), 40),
    ) {
        let mut t = RouteTable::new();
        let mut naive: Vec<(IpNet, u32)> = Vec::new();
        for (p, v) in inserts {
            let old = naive.iter().position(|(q, _)| *q == p).map(|i| naive.remove(i).1);
            prop_assert_eq!(t.insert(p, v), old);
            naive.push((p, v));
        }
        // Remove some that exist and some random ones.
        let existing: Vec<IpNet> = naive.iter().step_by(3).map(|(p, _)| *p).collect();
        for p in removals.into_iter().chain(existing) {
            let old = naive.iter().position(|(q, _)| *q == p).map(|i| naive.remove(i).1);
            prop_assert_eq!(t.remove(&p), old);
        }
        prop_assert_eq!(t.len(), naive.len());
        prop_assert_eq!(t.is_empty(), naive.is_empty());
        for (p, v) in &naive {
            prop_assert_eq!(t.get(p), Some(v));
        }
        let route_ends = naive.iter().flat_map(|(p, _)| [p.network(), p.broadcast()]);
        for a in probes.into_iter().chain(route_ends) {
            let got = t.lookup(a).map(|(p, v)| (p, *v));
            prop_assert_eq!(got, oracle(&naive, a), "{}", a);
        }
        let mut listed: Vec<(IpNet, u32)> = t.iter().map(|(p, v)| (p, *v)).collect();
        listed.sort();
        naive.sort();
        prop_assert_eq!(listed, naive);
    }
}

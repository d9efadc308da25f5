use proptest::prelude::*;

use super::strategies::{addr, proto, selector};
use crate::{flow_matches, FlowKey, Policy, PolicyAction, PolicyId, Spd, TrafficSelector};

fn ts(s: &str) -> TrafficSelector {
    s.parse().unwrap()
}

fn policy(name: &str, local: &[&str], remote: &[&str], action: PolicyAction<u32>) -> Policy<u32> {
    Policy {
        name: name.into(),
        local: local.iter().map(|s| ts(s)).collect(),
        remote: remote.iter().map(|s| ts(s)).collect(),
        action,
    }
}

fn flow(src: &str, dst: &str, proto: u8, src_port: u16, dst_port: u16) -> FlowKey {
    FlowKey {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto,
        src_port,
        dst_port,
    }
}

fn outbound<'a>(spd: &'a Spd<u32>, f: &FlowKey) -> Option<(PolicyId, &'a str)> {
    spd.lookup_outbound(f).map(|(id, p)| (id, p.name.as_str()))
}

#[test]
fn first_match_wins() {
    let mut spd = Spd::new();
    assert!(spd.is_empty());
    let ike = spd.push(policy(
        "ike",
        &["0.0.0.0/0[udp/500]"],
        &["0.0.0.0/0[udp/500]"],
        PolicyAction::Bypass,
    ));
    let drop = spd.push(policy(
        "drop",
        &["192.168.0.0/16"],
        &["10.1.1.0/24"],
        PolicyAction::Discard,
    ));
    let vpn = spd.push(policy(
        "vpn",
        &["192.168.0.0/16"],
        &["10.1.0.0/16"],
        PolicyAction::Protect(7),
    ));
    assert_eq!(spd.len(), 3);

    // The Discard for the /24, placed first, beats the Protect for the /16.
    assert_eq!(
        outbound(&spd, &flow("192.168.1.1", "10.1.1.5", 6, 1, 80)),
        Some((drop, "drop"))
    );
    assert_eq!(
        outbound(&spd, &flow("192.168.1.1", "10.1.2.5", 6, 1, 80)),
        Some((vpn, "vpn"))
    );
    assert_eq!(spd.get(vpn).unwrap().action, PolicyAction::Protect(7));
    // IKE is bypassed even towards a protected subnet, because it comes first.
    assert_eq!(
        outbound(&spd, &flow("192.168.1.1", "10.1.1.5", 17, 500, 500)),
        Some((ike, "ike"))
    );
    // Outside every remote selector, and a local address outside the local selectors.
    assert_eq!(
        outbound(&spd, &flow("192.168.1.1", "10.2.0.1", 6, 1, 80)),
        None
    );
    assert_eq!(
        outbound(&spd, &flow("172.16.1.1", "10.1.2.5", 6, 1, 80)),
        None
    );
    // The other family never matches.
    assert_eq!(outbound(&spd, &flow("::1", "::2", 17, 500, 500)), None);

    let order: Vec<_> = spd.iter().map(|(id, _)| id).collect();
    assert_eq!(order, [ike, drop, vpn]);

    // Removing the Discard lets the Protect through; ids stay valid.
    let removed = spd.remove(drop).unwrap();
    assert_eq!(removed.name, "drop");
    assert_eq!(spd.remove(drop).map(|p| p.name), None);
    assert!(spd.get(drop).is_none());
    assert_eq!(
        outbound(&spd, &flow("192.168.1.1", "10.1.1.5", 6, 1, 80)),
        Some((vpn, "vpn"))
    );
    assert_eq!(spd.len(), 2);

    // A new policy goes to the end, behind the Protect, and gets a fresh id.
    let late = spd.push(policy(
        "late",
        &["0.0.0.0/0"],
        &["10.1.1.0/24"],
        PolicyAction::Discard,
    ));
    assert_ne!(late, drop);
    assert_eq!(
        outbound(&spd, &flow("192.168.1.1", "10.1.1.5", 6, 1, 80)),
        Some((vpn, "vpn"))
    );
    assert_eq!(
        outbound(&spd, &flow("8.8.8.8", "10.1.1.5", 6, 1, 80)),
        Some((late, "late"))
    );
}

#[test]
fn order_not_specificity_decides() {
    let mut spd = Spd::new();
    let wide = spd.push(policy(
        "wide",
        &["0.0.0.0/0"],
        &["10.0.0.0/8"],
        PolicyAction::Protect(1),
    ));
    spd.push(policy(
        "narrow",
        &["0.0.0.0/0"],
        &["10.1.1.0/24"],
        PolicyAction::Discard,
    ));
    assert_eq!(
        outbound(&spd, &flow("1.1.1.1", "10.1.1.1", 1, 8, 0)),
        Some((wide, "wide"))
    );
}

#[test]
fn ranges_that_are_not_prefixes() {
    let mut spd = Spd::new();
    let r = spd.push(policy(
        "range",
        &["::/0"],
        &["2001:db8::5-2001:db8::9"],
        PolicyAction::Protect(3),
    ));
    let all = spd.push(policy("all", &["::/0"], &["::/0"], PolicyAction::Bypass));
    for (dst, want) in [
        ("2001:db8::4", all),
        ("2001:db8::5", r),
        ("2001:db8::8", r),
        ("2001:db8::9", r),
        ("2001:db8::a", all),
    ] {
        assert_eq!(
            outbound(&spd, &flow("2001:db8:1::1", dst, 17, 1, 2)).map(|x| x.0),
            Some(want),
            "{dst}"
        );
    }
    spd.remove(all);
    assert_eq!(
        outbound(&spd, &flow("2001:db8:1::1", "2001:db8::a", 17, 1, 2)),
        None
    );
    spd.remove(r);
    assert!(spd.is_empty());
    assert_eq!(
        outbound(&spd, &flow("2001:db8:1::1", "2001:db8::5", 17, 1, 2)),
        None
    );
}

#[test]
fn inbound_swaps_the_ends() {
    let mut spd = Spd::new();
    let id = spd.push(policy(
        "vpn",
        &["192.168.0.0/16"],
        &["10.0.0.0/8[tcp/22]"],
        PolicyAction::Protect(1),
    ));
    let out = flow("192.168.1.1", "10.1.1.1", 6, 40000, 22);
    assert_eq!(spd.lookup_outbound(&out).map(|x| x.0), Some(id));
    assert_eq!(spd.lookup_inbound(&out.reversed()).map(|x| x.0), Some(id));
    assert_eq!(spd.lookup_inbound(&out).map(|x| x.0), None);
}

fn random_policy() -> impl Strategy<Value = Policy<u32>> {
    (
        proptest::collection::vec(selector(), 0..3),
        proptest::collection::vec(selector(), 0..4),
        0u32..3,
    )
        .prop_map(|(local, remote, action)| Policy {
            name: String::new(),
            local,
            remote,
            action: match action {
                0 => PolicyAction::Bypass,
                1 => PolicyAction::Discard,
                n => PolicyAction::Protect(n),
            },
        })
}

fn random_flow() -> impl Strategy<Value = FlowKey> {
    (
        addr(),
        addr(),
        proto(),
        0u16..10,
        prop_oneof![0u16..10, any::<u16>()],
    )
        .prop_map(|(src, dst, proto, sp, dp)| FlowKey {
            src,
            dst,
            proto,
            src_port: sp,
            dst_port: dp,
        })
}

/// The definition: the first policy in order whose selectors match.
fn oracle(spd: &Spd<u32>, f: &FlowKey) -> Option<PolicyId> {
    spd.iter()
        .find(|(_, p)| {
            flow_matches(
                &p.local, &p.remote, f.src, f.src_port, f.dst, f.dst_port, f.proto,
            )
        })
        .map(|(id, _)| id)
}

/// Flows that hit the policies' own endpoints, so matches are not rare.
fn probes_from(spd: &Spd<u32>, extra: &[FlowKey]) -> Vec<FlowKey> {
    let mut flows = extra.to_vec();
    for (_, p) in spd.iter() {
        for (l, r) in p.local.iter().zip(&p.remote) {
            for (src, dst) in [(l.start, r.start), (l.end, r.end), (l.start, r.end)] {
                let proto = if r.proto != 0 { r.proto } else { l.proto };
                flows.push(FlowKey {
                    src,
                    dst,
                    proto,
                    src_port: l.start_port,
                    dst_port: r.end_port,
                });
            }
        }
    }
    flows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lookup_agrees_with_linear_scan(
        policies in proptest::collection::vec(random_policy(), 0..12),
        removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        flows in proptest::collection::vec(random_flow(), 24),
    ) {
        let mut spd = Spd::new();
        let mut ids = Vec::new();
        for p in policies {
            ids.push(spd.push(p));
        }
        let check = |spd: &Spd<u32>| -> Result<(), TestCaseError> {
            for f in probes_from(spd, &flows) {
                let got = spd.lookup_outbound(&f).map(|(id, _)| id);
                prop_assert_eq!(got, oracle(spd, &f), "{:?}", f);
                let back = f.reversed();
                let inbound = spd.lookup_inbound(&back).map(|(id, _)| id);
                prop_assert_eq!(inbound, got, "inbound {:?}", back);
            }
            Ok(())
        };
        check(&spd)?;
        for r in removals {
            if ids.is_empty() {
                break;
            }
            let id = ids.remove(r.index(ids.len()));
            prop_assert!(spd.remove(id).is_some());
            check(&spd)?;
        }
        prop_assert_eq!(spd.len(), ids.len());
        // Pushing after removals keeps agreeing (stale index entries would show here).
        spd.push(policy("tail", &["0.0.0.0/0", "::/0"], &["0.0.0.0/0", "::/0"], PolicyAction::Discard));
        check(&spd)?;
        for id in ids {
            spd.remove(id);
        }
        check(&spd)?;
    }
}

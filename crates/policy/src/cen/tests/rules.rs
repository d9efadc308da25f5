//! One test per rule of the CEN, plus the errors and the printed forms.

use super::{entry, learned, n, next_hop, snapshot};
use crate::cen::{
    Cen, CenError, NetworkKind, NextHop, PublishStatus, RejectReason, RejectedRoute, RouteOrigin,
    RouteType,
};

/// Three VPCs (a, b, c) and a VBR (d) on disjoint blocks.
fn four() -> Cen {
    let mut cen = Cen::new("cen-rules");
    cen.attach("a", NetworkKind::Vpc, &[n("172.16.1.0/24")])
        .unwrap();
    cen.attach("b", NetworkKind::Vpc, &[n("172.16.2.0/24")])
        .unwrap();
    cen.attach("c", NetworkKind::Vpc, &[n("172.16.3.0/24")])
        .unwrap();
    cen.attach("d", NetworkKind::Vbr, &[n("10.70.0.0/16")])
        .unwrap();
    cen
}

fn vpn(id: &str) -> NextHop {
    NextHop::VpnGateway(id.into())
}

#[test]
fn publish_propagates_and_refuses_what_cannot_be_published() {
    let mut cen = four();
    let x = n("10.80.0.0/16");
    cen.add_route("a", x, vpn("vpn-a")).unwrap();
    assert_eq!(next_hop(&cen, "b", "10.80.0.1"), None);
    cen.publish("a", x).unwrap();
    assert_eq!(next_hop(&cen, "b", "10.80.0.1"), learned("a"));

    let before = snapshot(&cen);
    // Publishing twice is an error, not a no-op.
    assert_eq!(
        cen.publish("a", x),
        Err(CenError::AlreadyPublished {
            network: "a".into(),
            destination: x
        })
    );
    // Only own routes can be published: b merely learned x.
    assert_eq!(
        cen.publish("b", x),
        Err(CenError::RouteIsLearned {
            network: "b".into(),
            destination: x,
            from: "a".into()
        })
    );
    // The prefix must match exactly.
    assert_eq!(
        cen.publish("a", n("10.80.1.0/24")),
        Err(CenError::RouteNotFound {
            network: "a".into(),
            destination: n("10.80.1.0/24")
        })
    );
    assert_eq!(
        cen.publish("nope", x),
        Err(CenError::UnknownNetwork {
            name: "nope".into()
        })
    );
    assert_eq!(snapshot(&cen), before);
    // Host bits are cleared, as in a routing table.
    assert_eq!(
        cen.publish("a", n("10.80.9.9/16")),
        Err(CenError::AlreadyPublished {
            network: "a".into(),
            destination: x
        })
    );
}

#[test]
fn withdraw_removes_the_route_from_the_cen_but_not_from_its_network() {
    let mut cen = four();
    let x = n("10.80.0.0/16");
    cen.add_route("a", x, vpn("vpn-a")).unwrap();
    let before = snapshot(&cen);
    assert_eq!(
        cen.withdraw("a", x),
        Err(CenError::NotPublished {
            network: "a".into(),
            destination: x
        })
    );
    assert_eq!(snapshot(&cen), before);

    cen.publish("a", x).unwrap();
    cen.withdraw("a", x).unwrap();
    assert!(cen.published().iter().all(|p| p.destination != x));
    for other in ["b", "c", "d"] {
        assert_eq!(next_hop(&cen, other, "10.80.0.1"), None);
    }
    assert_eq!(
        entry(&cen, "a", "10.80.0.0/16").unwrap().origin,
        RouteOrigin::Own { published: false }
    );
    assert_eq!(snapshot(&cen), before);
    // Withdrawing again is an error too.
    assert!(matches!(
        cen.withdraw("a", x),
        Err(CenError::NotPublished { .. })
    ));
    assert!(matches!(
        cen.withdraw("b", n("172.16.1.0/24")),
        Err(CenError::RouteIsLearned { .. })
    ));
}

#[test]
fn deleting_a_published_route_deletes_it_from_the_cen() {
    let mut cen = four();
    let x = n("10.80.0.0/16");
    cen.add_route("a", x, NextHop::EcsInstance("i-a".into()))
        .unwrap();
    cen.publish("a", x).unwrap();
    assert_eq!(next_hop(&cen, "c", "10.80.0.1"), learned("a"));

    cen.delete_route("a", x).unwrap();
    assert!(cen.published().iter().all(|p| p.destination != x));
    for net in ["a", "b", "c", "d"] {
        assert_eq!(next_hop(&cen, net, "10.80.0.1"), None);
    }
    let before = snapshot(&cen);
    assert_eq!(
        cen.delete_route("a", x),
        Err(CenError::RouteNotFound {
            network: "a".into(),
            destination: x
        })
    );
    assert_eq!(
        cen.delete_route("a", n("172.16.1.0/24")),
        Err(CenError::CannotDeleteSystemRoute {
            network: "a".into(),
            destination: n("172.16.1.0/24")
        })
    );
    assert_eq!(
        cen.delete_route("b", n("172.16.1.0/24")),
        Err(CenError::RouteIsLearned {
            network: "b".into(),
            destination: n("172.16.1.0/24"),
            from: "a".into()
        })
    );
    assert_eq!(snapshot(&cen), before);

    // A VBR route published by default goes the same way.
    cen.add_route("d", n("10.70.0.0/16"), NextHop::Bgp("peer".into()))
        .unwrap();
    assert_eq!(next_hop(&cen, "a", "10.70.1.1"), learned("d"));
    cen.delete_route("d", n("10.70.0.0/16")).unwrap();
    assert_eq!(next_hop(&cen, "a", "10.70.1.1"), None);
}

#[test]
fn learned_routes_reach_every_other_network_but_not_the_publisher() {
    let mut cen = four();
    cen.add_route("d", n("10.70.0.0/16"), NextHop::DataCenter("dc".into()))
        .unwrap();
    for net in ["a", "b", "c"] {
        let got = entry(&cen, net, "10.70.0.0/16").unwrap();
        assert_eq!(got.next_hop, NextHop::Cen { from: "d".into() });
        assert_eq!(got.learned_from(), Some("d"));
        assert_eq!(got.route_type, RouteType::DataCenter);
    }
    let own = entry(&cen, "d", "10.70.0.0/16").unwrap();
    assert_eq!(own.next_hop, NextHop::DataCenter("dc".into()));
    assert!(own.is_published());
    assert!(!own.is_learned());
    assert!(cen.rejected("d").unwrap().is_empty());

    // Every VPC block reaches every other network, VBR included.
    for (net, cidr) in [
        ("a", "172.16.1.0/24"),
        ("b", "172.16.2.0/24"),
        ("c", "172.16.3.0/24"),
    ] {
        for other in ["a", "b", "c", "d"] {
            let got = entry(&cen, other, cidr).unwrap();
            if other == net {
                assert_eq!(got.next_hop, NextHop::System);
            } else {
                assert_eq!(got.next_hop, NextHop::Cen { from: net.into() });
            }
        }
    }
}

#[test]
fn first_publisher_wins_and_the_next_in_line_takes_over() {
    let mut cen = four();
    let x = n("10.80.0.0/16");
    for net in ["a", "b", "c"] {
        cen.add_route(net, x, vpn(&format!("vpn-{net}"))).unwrap();
    }
    cen.publish("b", x).unwrap();
    cen.publish("a", x).unwrap();
    cen.publish("c", x).unwrap();
    let queue = |cen: &Cen| -> Vec<(String, PublishStatus)> {
        cen.published()
            .into_iter()
            .filter(|p| p.destination == x)
            .map(|p| (p.network, p.status))
            .collect()
    };
    let conflict = |active: &str| PublishStatus::Conflict {
        active: active.into(),
    };
    assert_eq!(
        queue(&cen),
        [
            ("b".into(), PublishStatus::Active),
            ("a".into(), conflict("b")),
            ("c".into(), conflict("b")),
        ]
    );
    // Only the winner propagates; the losers keep their own routes and
    // record that they refused the winner's.
    assert_eq!(next_hop(&cen, "d", "10.80.0.1"), learned("b"));
    assert_eq!(
        cen.rejected("a").unwrap(),
        [RejectedRoute {
            destination: x,
            from: "b".into(),
            route_type: RouteType::VpnGateway,
            next_hop_at_source: vpn("vpn-b"),
            reason: RejectReason::OwnRouteExists {
                route_type: RouteType::VpnGateway
            },
        }]
    );
    assert_eq!(
        cen.published()
            .iter()
            .find(|p| p.network == "a" && p.destination == x)
            .unwrap()
            .to_string(),
        "10.80.0.0/16  a  vpn gateway vpn-a  conflict: b published 10.80.0.0/16 first; not propagated"
    );

    // Withdrawing the winner: the next in arrival order takes over.
    cen.withdraw("b", x).unwrap();
    assert_eq!(
        queue(&cen),
        [
            ("a".into(), PublishStatus::Active),
            ("c".into(), conflict("a"))
        ]
    );
    assert_eq!(next_hop(&cen, "d", "10.80.0.1"), learned("a"));
    assert_eq!(next_hop(&cen, "b", "10.80.0.1"), Some(vpn("vpn-b")));
    // Publishing again queues at the back.
    cen.publish("b", x).unwrap();
    assert_eq!(
        queue(&cen),
        [
            ("a".into(), PublishStatus::Active),
            ("c".into(), conflict("a")),
            ("b".into(), conflict("a")),
        ]
    );
    // Deleting the winner hands over too, and so does detaching it.
    cen.delete_route("a", x).unwrap();
    assert_eq!(next_hop(&cen, "d", "10.80.0.1"), learned("c"));
    assert_eq!(next_hop(&cen, "a", "10.80.0.1"), learned("c"));
    cen.detach("c").unwrap();
    assert_eq!(next_hop(&cen, "d", "10.80.0.1"), learned("b"));
    assert_eq!(next_hop(&cen, "a", "10.80.0.1"), learned("b"));
    assert_eq!(queue(&cen), [("b".into(), PublishStatus::Active)]);
}

#[test]
fn own_route_beats_a_learned_one_for_the_same_destination() {
    let mut cen = four();
    let x = n("10.80.0.0/16");
    // b's own, unpublished route is there first...
    cen.add_route("b", x, NextHop::HaVip("havip-b".into()))
        .unwrap();
    cen.add_route("a", x, vpn("vpn-a")).unwrap();
    cen.publish("a", x).unwrap();
    // ...and stays, whoever publishes.
    assert_eq!(
        next_hop(&cen, "b", "10.80.0.1"),
        Some(NextHop::HaVip("havip-b".into()))
    );
    assert_eq!(next_hop(&cen, "c", "10.80.0.1"), learned("a"));
    let rejected = cen.rejected("b").unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].reason,
        RejectReason::OwnRouteExists {
            route_type: RouteType::HaVip
        }
    );
    assert_eq!(
        rejected[0].to_string(),
        "10.80.0.0/16  from a (vpn gateway vpn-a)  refused: this network has its own route to an HaVip for the destination, which takes precedence over learned routes"
    );

    // An own route added after the learned one replaces it too.
    cen.add_route("c", x, NextHop::EcsInstance("i-c".into()))
        .unwrap();
    assert_eq!(
        next_hop(&cen, "c", "10.80.0.1"),
        Some(NextHop::EcsInstance("i-c".into()))
    );
    // Once the own route goes, the learned one is installed.
    cen.delete_route("b", x).unwrap();
    assert_eq!(next_hop(&cen, "b", "10.80.0.1"), learned("a"));
    assert!(cen.rejected("b").unwrap().is_empty());
    // A more specific learned route still wins by longest prefix.
    cen.add_route("d", n("10.80.5.0/24"), NextHop::Bgp("peer".into()))
        .unwrap();
    assert_eq!(next_hop(&cen, "c", "10.80.5.1"), learned("d"));
    assert_eq!(
        next_hop(&cen, "c", "10.80.6.1"),
        Some(NextHop::EcsInstance("i-c".into()))
    );
}

#[test]
fn a_network_refuses_learned_routes_inside_its_own_cidr() {
    let mut cen = Cen::new("cen-hijack");
    cen.attach("a", NetworkKind::Vpc, &[n("172.16.0.0/16")])
        .unwrap();
    cen.attach("b", NetworkKind::Vpc, &[n("172.17.0.0/16")])
        .unwrap();
    cen.attach("dc", NetworkKind::Vbr, &[n("10.90.0.0/16")])
        .unwrap();

    // More specific than a's block: a refuses it, b accepts it.
    cen.add_route("dc", n("172.16.5.0/24"), NextHop::Bgp("peer".into()))
        .unwrap();
    assert_eq!(next_hop(&cen, "a", "172.16.5.1"), Some(NextHop::System));
    assert_eq!(next_hop(&cen, "b", "172.16.5.1"), learned("dc"));
    let rejected = cen.rejected("a").unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].destination, n("172.16.5.0/24"));
    assert_eq!(
        rejected[0].reason,
        RejectReason::InsideOwnCidr {
            cidr: n("172.16.0.0/16")
        }
    );
    assert!(rejected[0]
        .reason
        .to_string()
        .contains("inside this network's own CIDR block 172.16.0.0/16"));
    assert!(entry(&cen, "a", "172.16.5.0/24").is_none());

    // Less specific than a's block: accepted (a's own block still wins by
    // longest prefix).
    cen.add_route("dc", n("172.0.0.0/8"), NextHop::Bgp("peer".into()))
        .unwrap();
    assert_eq!(next_hop(&cen, "a", "172.18.0.1"), learned("dc"));
    assert_eq!(next_hop(&cen, "a", "172.16.9.1"), Some(NextHop::System));

    // Equal to the block of a network attached later: that network's
    // system route queues behind, and the network refuses the VBR's route.
    cen.add_route("dc", n("172.20.0.0/16"), NextHop::Bgp("peer".into()))
        .unwrap();
    cen.attach("late", NetworkKind::Vpc, &[n("172.20.0.0/16")])
        .unwrap();
    assert_eq!(next_hop(&cen, "late", "172.20.0.1"), Some(NextHop::System));
    assert_eq!(
        cen.rejected("late").unwrap()[0].reason,
        RejectReason::InsideOwnCidr {
            cidr: n("172.20.0.0/16")
        }
    );
    assert_eq!(next_hop(&cen, "a", "172.20.0.1"), learned("dc"));
    assert!(cen.published().iter().any(|p| p.network == "late"
        && p.status
            == PublishStatus::Conflict {
                active: "dc".into()
            }));

    // A VBR keeps the data center's blocks too.
    cen.add_route("a", n("10.90.1.0/24"), vpn("vpn-a")).unwrap();
    cen.publish("a", n("10.90.1.0/24")).unwrap();
    assert_eq!(next_hop(&cen, "dc", "10.90.1.1"), None);
    assert_eq!(next_hop(&cen, "b", "10.90.1.1"), learned("a"));
    assert_eq!(cen.rejected("dc").unwrap().len(), 1);
}

#[test]
fn route_types_must_match_the_network_kind() {
    let mut cen = four();
    let before = snapshot(&cen);
    let x = n("10.80.0.0/16");
    for hop in [
        NextHop::Bgp("peer".into()),
        NextHop::DataCenter("dc".into()),
    ] {
        let route_type = hop.route_type().unwrap();
        assert_eq!(
            cen.add_route("a", x, hop),
            Err(CenError::RouteTypeNotAllowed {
                network: "a".into(),
                kind: NetworkKind::Vpc,
                route_type,
                expected: NetworkKind::Vbr,
            })
        );
    }
    for hop in [
        NextHop::EcsInstance("i".into()),
        NextHop::VpnGateway("v".into()),
        NextHop::HaVip("h".into()),
    ] {
        let route_type = hop.route_type().unwrap();
        assert_eq!(
            cen.add_route("d", x, hop),
            Err(CenError::RouteTypeNotAllowed {
                network: "d".into(),
                kind: NetworkKind::Vbr,
                route_type,
                expected: NetworkKind::Vpc,
            })
        );
    }
    assert_eq!(
        cen.add_route("d", x, NextHop::EcsInstance("i-1".into()))
            .unwrap_err()
            .to_string(),
        "a route to an ECS instance belongs in a VPC, but \"d\" is a VBR"
    );
    assert_eq!(
        cen.add_route("a", x, NextHop::System),
        Err(CenError::SystemRouteByHand {
            network: "a".into(),
            destination: x
        })
    );
    assert_eq!(
        cen.add_route("a", x, NextHop::Cen { from: "b".into() }),
        Err(CenError::LearnedByHand {
            network: "a".into(),
            destination: x
        })
    );
    assert_eq!(
        cen.add_route("a", n("172.16.1.0/24"), vpn("v")),
        Err(CenError::RouteExists {
            network: "a".into(),
            destination: n("172.16.1.0/24"),
            route_type: RouteType::VpcSystem
        })
    );
    assert_eq!(
        cen.add_route("zz", x, vpn("v")),
        Err(CenError::UnknownNetwork { name: "zz".into() })
    );
    assert_eq!(snapshot(&cen), before);
    // A learned destination can be overridden by an own route, though.
    cen.add_route("b", n("172.16.1.0/24"), vpn("v")).unwrap();
}

#[test]
fn detach_removes_what_the_network_published_and_learned() {
    let mut cen = four();
    let x = n("10.80.0.0/16");
    cen.add_route("a", x, vpn("vpn-a")).unwrap();
    cen.publish("a", x).unwrap();
    cen.add_route("b", x, vpn("vpn-b")).unwrap();
    cen.publish("b", x).unwrap();
    cen.add_route("d", n("10.70.0.0/16"), NextHop::Bgp("peer".into()))
        .unwrap();
    let empty = Cen::new("cen-rules");

    cen.detach("a").unwrap();
    assert!(cen.network("a").is_none());
    assert_eq!(
        cen.routes("a"),
        Err(CenError::UnknownNetwork { name: "a".into() })
    );
    assert!(cen.published().iter().all(|p| p.network != "a"));
    for other in ["b", "c", "d"] {
        assert!(cen
            .routes(other)
            .unwrap()
            .iter()
            .all(|r| r.learned_from() != Some("a")));
        assert_eq!(next_hop(&cen, other, "172.16.1.1"), None);
    }
    // b's conflicting publication took over.
    assert_eq!(next_hop(&cen, "c", "10.80.0.1"), learned("b"));
    assert!(cen.rejected("b").unwrap().is_empty());

    // Re-attaching under the same name starts from a clean slate.
    cen.attach("a", NetworkKind::Vpc, &[n("172.16.1.0/24")])
        .unwrap();
    assert_eq!(next_hop(&cen, "a", "10.80.0.1"), learned("b"));
    assert_eq!(next_hop(&cen, "a", "10.70.0.1"), learned("d"));
    assert_eq!(cen.routes("a").unwrap().len(), 5);

    for net in ["a", "b", "c", "d"] {
        cen.detach(net).unwrap();
    }
    assert_eq!(snapshot(&cen), snapshot(&empty));
    assert_eq!(
        cen.detach("a"),
        Err(CenError::UnknownNetwork { name: "a".into() })
    );
}

#[test]
fn attach_checks_names_and_cidr_blocks() {
    let mut cen = four();
    let before = snapshot(&cen);
    assert_eq!(
        cen.attach("a", NetworkKind::Vpc, &[n("172.30.0.0/16")]),
        Err(CenError::DuplicateNetwork { name: "a".into() })
    );
    assert_eq!(
        cen.attach("", NetworkKind::Vbr, &[]),
        Err(CenError::EmptyName)
    );
    assert_eq!(
        cen.attach("e", NetworkKind::Vpc, &[]),
        Err(CenError::NoCidr { name: "e".into() })
    );
    assert_eq!(
        cen.attach("e", NetworkKind::Vpc, &[n("172.16.0.0/16")]),
        Err(CenError::CidrOverlap {
            network: "e".into(),
            cidr: n("172.16.0.0/16"),
            other: "a".into(),
            other_cidr: n("172.16.1.0/24"),
        })
    );
    assert_eq!(
        cen.attach("e", NetworkKind::Vbr, &[n("10.70.3.0/24")]),
        Err(CenError::CidrOverlap {
            network: "e".into(),
            cidr: n("10.70.3.0/24"),
            other: "d".into(),
            other_cidr: n("10.70.0.0/16"),
        })
    );
    assert_eq!(
        cen.attach(
            "e",
            NetworkKind::Vpc,
            &[n("172.30.0.0/16"), n("172.30.128.0/17")]
        ),
        Err(CenError::OwnCidrsOverlap {
            network: "e".into(),
            first: n("172.30.0.0/16"),
            second: n("172.30.128.0/17"),
        })
    );
    assert!(cen
        .attach("e", NetworkKind::Vpc, &[n("172.16.0.0/16")])
        .unwrap_err()
        .to_string()
        .contains("overlaps 172.16.1.0/24 of attached network \"a\""));
    assert_eq!(snapshot(&cen), before);

    // Host bits are cleared; a VBR may have no blocks; v4 and v6 mix.
    cen.attach(
        "e",
        NetworkKind::Vpc,
        &[n("172.30.7.9/16"), n("2001:db8:1::/48")],
    )
    .unwrap();
    assert_eq!(
        cen.network("e").unwrap().cidrs(),
        [n("172.30.0.0/16"), n("2001:db8:1::/48")]
    );
    cen.attach("f", NetworkKind::Vbr, &[]).unwrap();
    assert_eq!(next_hop(&cen, "f", "2001:db8:1::1"), learned("e"));
    let names: Vec<(&str, NetworkKind)> = cen.networks().map(|n| (n.name(), n.kind())).collect();
    assert_eq!(
        names,
        [
            ("a", NetworkKind::Vpc),
            ("b", NetworkKind::Vpc),
            ("c", NetworkKind::Vpc),
            ("d", NetworkKind::Vbr),
            ("e", NetworkKind::Vpc),
            ("f", NetworkKind::Vbr),
        ]
    );
    assert_eq!(cen.name(), "cen-rules");
}

#[test]
fn listings_are_sorted_and_print_as_table_rows() {
    let mut cen = four();
    cen.add_route("d", n("2001:db8:9::/48"), NextHop::Bgp("peer-1".into()))
        .unwrap();
    cen.add_route("d", n("0.0.0.0/0"), NextHop::DataCenter("line-1".into()))
        .unwrap();
    cen.add_route("a", n("10.80.0.0/16"), NextHop::HaVip("havip-1".into()))
        .unwrap();
    cen.add_route("a", n("10.80.0.0/24"), NextHop::EcsInstance("i-1".into()))
        .unwrap();
    let rows: Vec<String> = cen
        .routes("a")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        rows,
        [
            "0.0.0.0/0  cen  learned from d (data center line-1)",
            "10.80.0.0/16  custom  havip havip-1",
            "10.80.0.0/24  custom  ecs instance i-1",
            "172.16.1.0/24  system  local",
            "172.16.2.0/24  cen  learned from b (local)",
            "172.16.3.0/24  cen  learned from c (local)",
            "2001:db8:9::/48  cen  learned from d (bgp peer peer-1)",
        ]
    );
    assert_eq!(
        entry(&cen, "d", "2001:db8:9::/48").unwrap().to_string(),
        "2001:db8:9::/48  bgp  bgp peer peer-1"
    );
    let published: Vec<String> = cen.published().iter().map(ToString::to_string).collect();
    assert_eq!(
        published,
        [
            "0.0.0.0/0  d  data center line-1  active",
            "172.16.1.0/24  a  local  active",
            "172.16.2.0/24  b  local  active",
            "172.16.3.0/24  c  local  active",
            "2001:db8:9::/48  d  bgp peer peer-1  active",
        ]
    );
    // The default route catches what nothing more specific does.
    assert_eq!(next_hop(&cen, "b", "8.8.8.8"), learned("d"));
    assert_eq!(next_hop(&cen, "b", "2001:db8:8::1"), None);
    assert_eq!(NetworkKind::Vbr.to_string(), "VBR");
    assert_eq!(RouteType::Bgp.to_string(), "BGP route");
}

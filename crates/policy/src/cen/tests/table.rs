//! One test per row of the seed's "CEN route publishing" table: the route
//! type lives in the listed network kind, is published by default or not as
//! listed, and once published can be withdrawn so it no longer exists in
//! the CEN.

use super::{entry, n, next_hop};
use crate::cen::{Cen, NetworkKind, NextHop, PublishStatus, RouteOrigin, RouteType};

/// Attaches the network under test ("src", of `kind`) and a VPC and a VBR
/// that would learn from it, then checks the row.
fn check_row(kind: NetworkKind, hop: NextHop, route_type: RouteType, by_default: bool) {
    assert_eq!(route_type.publish_by_default(), by_default);
    assert!(route_type.allowed_in(kind));
    assert_eq!(hop.route_type(), Some(route_type));

    let mut cen = Cen::new("cen-test");
    let src_cidr = match kind {
        NetworkKind::Vpc => "172.20.0.0/16",
        NetworkKind::Vbr => "10.60.0.0/16",
    };
    cen.attach("src", kind, &[n(src_cidr)]).unwrap();
    cen.attach("vpc", NetworkKind::Vpc, &[n("172.21.0.0/16")])
        .unwrap();
    cen.attach("vbr", NetworkKind::Vbr, &[n("10.61.0.0/16")])
        .unwrap();

    // A VPC system route is created by attaching; the others are added.
    let dest = if route_type == RouteType::VpcSystem {
        src_cidr
    } else {
        cen.add_route("src", n("10.99.0.0/24"), hop.clone())
            .unwrap();
        "10.99.0.0/24"
    };
    let addr = if route_type == RouteType::VpcSystem {
        "172.20.1.1"
    } else {
        "10.99.0.1"
    };

    let own = entry(&cen, "src", dest).unwrap();
    assert_eq!(own.route_type, route_type);
    assert_eq!(own.next_hop, hop);
    assert_eq!(
        own.origin,
        RouteOrigin::Own {
            published: by_default
        }
    );

    if !by_default {
        assert_eq!(next_hop(&cen, "vpc", addr), None);
        assert_eq!(next_hop(&cen, "vbr", addr), None);
        assert!(cen.published().iter().all(|p| p.destination != n(dest)));
        cen.publish("src", n(dest)).unwrap();
    }
    // Published: in the CEN's table, and learned by everyone else.
    let row = cen
        .published()
        .into_iter()
        .find(|p| p.destination == n(dest))
        .unwrap();
    assert_eq!(row.network, "src");
    assert_eq!(row.route_type, route_type);
    assert_eq!(row.next_hop, hop);
    assert_eq!(row.status, PublishStatus::Active);
    for other in ["vpc", "vbr"] {
        let got = entry(&cen, other, dest).unwrap();
        assert_eq!(got.next_hop, NextHop::Cen { from: "src".into() });
        assert_eq!(got.route_type, route_type);
        assert_eq!(
            got.origin,
            RouteOrigin::Learned {
                from: "src".into(),
                next_hop_at_source: hop.clone()
            }
        );
    }

    // Withdrawn: gone from the CEN and from the learners, kept locally.
    cen.withdraw("src", n(dest)).unwrap();
    assert!(cen.published().iter().all(|p| p.destination != n(dest)));
    assert_eq!(next_hop(&cen, "vpc", addr), None);
    assert_eq!(next_hop(&cen, "vbr", addr), None);
    assert_eq!(next_hop(&cen, "src", addr), Some(hop));
    assert!(!entry(&cen, "src", dest).unwrap().is_published());
}

#[test]
fn ecs_instance_route_lives_in_a_vpc_and_is_not_published_by_default() {
    check_row(
        NetworkKind::Vpc,
        NextHop::EcsInstance("i-test".into()),
        RouteType::EcsInstance,
        false,
    );
}

#[test]
fn vpn_gateway_route_lives_in_a_vpc_and_is_not_published_by_default() {
    check_row(
        NetworkKind::Vpc,
        NextHop::VpnGateway("vpn-test".into()),
        RouteType::VpnGateway,
        false,
    );
}

#[test]
fn havip_route_lives_in_a_vpc_and_is_not_published_by_default() {
    check_row(
        NetworkKind::Vpc,
        NextHop::HaVip("havip-test".into()),
        RouteType::HaVip,
        false,
    );
}

#[test]
fn vpc_system_route_is_published_by_default() {
    check_row(
        NetworkKind::Vpc,
        NextHop::System,
        RouteType::VpcSystem,
        true,
    );
}

#[test]
fn data_center_route_lives_in_a_vbr_and_is_published_by_default() {
    check_row(
        NetworkKind::Vbr,
        NextHop::DataCenter("dc-test".into()),
        RouteType::DataCenter,
        true,
    );
}

#[test]
fn bgp_route_lives_in_a_vbr_and_is_published_by_default() {
    check_row(
        NetworkKind::Vbr,
        NextHop::Bgp("peer-test".into()),
        RouteType::Bgp,
        true,
    );
}

#[test]
fn table_covers_every_route_type_once() {
    let rows: Vec<(RouteType, NetworkKind, bool)> = RouteType::ALL
        .iter()
        .map(|t| (*t, t.network_kind(), t.publish_by_default()))
        .collect();
    assert_eq!(
        rows,
        [
            (RouteType::EcsInstance, NetworkKind::Vpc, false),
            (RouteType::VpnGateway, NetworkKind::Vpc, false),
            (RouteType::HaVip, NetworkKind::Vpc, false),
            (RouteType::VpcSystem, NetworkKind::Vpc, true),
            (RouteType::DataCenter, NetworkKind::Vbr, true),
            (RouteType::Bgp, NetworkKind::Vbr, true),
        ]
    );
}

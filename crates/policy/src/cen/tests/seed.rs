//! The seed document's walk-through ("Connect an on-premises data center to
//! Alibaba Cloud through a VPN Gateway"), with its addresses, and the same
//! shape with other addresses.

use super::{entry, learned, n, next_hop};
use crate::cen::{Cen, CenError, NetworkKind, NextHop, PublishStatus, RouteOrigin, RouteType};

const VPCS: [(&str, &str); 4] = [
    ("hangzhou-vpc", "192.168.4.0/24"),
    ("beijing-vpc", "192.168.1.0/24"),
    ("hongkong-vpc", "192.168.2.0/24"),
    ("shanghai-vpc", "192.168.3.0/24"),
];

fn seed_cen() -> Cen {
    let mut cen = Cen::new("cen-seed");
    for (name, cidr) in VPCS {
        cen.attach(name, NetworkKind::Vpc, &[n(cidr)]).unwrap();
    }
    cen
}

/// Which VPCs have any route covering the data center's 10.1.1.0/24.
fn vpcs_reaching_data_center(cen: &Cen) -> Vec<&'static str> {
    VPCS.iter()
        .map(|(name, _)| *name)
        .filter(|name| next_hop(cen, name, "10.1.1.10").is_some())
        .collect()
}

#[test]
fn seed_walk_through_vpn_gateway_route_in_hangzhou() {
    let mut cen = seed_cen();

    // Attached VPCs already reach each other: system routes are published
    // by default, so every VPC learns the other three blocks.
    for (name, cidr) in VPCS {
        let own = entry(&cen, name, cidr).unwrap();
        assert_eq!(own.to_string(), format!("{cidr}  system  local"));
        for (other, _) in VPCS.iter().filter(|(o, _)| *o != name) {
            assert_eq!(
                entry(&cen, other, cidr).unwrap().next_hop,
                NextHop::Cen { from: name.into() }
            );
        }
        assert_eq!(cen.routes(name).unwrap().len(), 4);
    }

    // Configure the route to the data center in the Hangzhou VPC.
    let dc = n("10.1.1.0/24");
    cen.add_route("hangzhou-vpc", dc, NextHop::VpnGateway("vpn-hz".into()))
        .unwrap();
    assert_eq!(
        entry(&cen, "hangzhou-vpc", "10.1.1.0/24")
            .unwrap()
            .to_string(),
        "10.1.1.0/24  custom  vpn gateway vpn-hz"
    );
    // Before publishing, only Hangzhou can reach the data center.
    assert_eq!(vpcs_reaching_data_center(&cen), ["hangzhou-vpc"]);

    // After publishing, all four can: the others through the CEN.
    cen.publish("hangzhou-vpc", dc).unwrap();
    assert_eq!(
        vpcs_reaching_data_center(&cen),
        [
            "hangzhou-vpc",
            "beijing-vpc",
            "hongkong-vpc",
            "shanghai-vpc"
        ]
    );
    assert_eq!(
        entry(&cen, "hangzhou-vpc", "10.1.1.0/24").unwrap().origin,
        RouteOrigin::Own { published: true }
    );
    for other in ["beijing-vpc", "hongkong-vpc", "shanghai-vpc"] {
        let route = cen
            .lookup(other, "10.1.1.10".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            route.to_string(),
            "10.1.1.0/24  cen  learned from hangzhou-vpc (vpn gateway vpn-hz)"
        );
        // A learned route keeps the type it has where it was configured.
        assert_eq!(route.route_type, RouteType::VpnGateway);
    }
    // Each VPC's own block still goes local; the others' through the CEN.
    assert_eq!(
        next_hop(&cen, "beijing-vpc", "192.168.1.7"),
        Some(NextHop::System)
    );
    assert_eq!(
        next_hop(&cen, "beijing-vpc", "192.168.4.7"),
        learned("hangzhou-vpc")
    );
    let published: Vec<String> = cen.published().iter().map(ToString::to_string).collect();
    assert_eq!(
        published,
        [
            "10.1.1.0/24  hangzhou-vpc  vpn gateway vpn-hz  active",
            "192.168.1.0/24  beijing-vpc  local  active",
            "192.168.2.0/24  hongkong-vpc  local  active",
            "192.168.3.0/24  shanghai-vpc  local  active",
            "192.168.4.0/24  hangzhou-vpc  local  active",
        ]
    );

    // Withdrawn: the route no longer exists in the CEN; Hangzhou keeps it.
    cen.withdraw("hangzhou-vpc", dc).unwrap();
    assert_eq!(vpcs_reaching_data_center(&cen), ["hangzhou-vpc"]);
    assert!(cen.published().iter().all(|p| p.destination != dc));

    // Published again and then deleted in Hangzhou: gone from the CEN and
    // from every VPC.
    cen.publish("hangzhou-vpc", dc).unwrap();
    assert_eq!(vpcs_reaching_data_center(&cen).len(), 4);
    cen.delete_route("hangzhou-vpc", dc).unwrap();
    assert!(vpcs_reaching_data_center(&cen).is_empty());
    assert!(cen.published().iter().all(|p| p.destination != dc));
    assert_eq!(
        cen.publish("hangzhou-vpc", dc),
        Err(CenError::RouteNotFound {
            network: "hangzhou-vpc".into(),
            destination: dc
        })
    );
}

#[test]
fn seed_walk_through_data_center_behind_a_vbr() {
    let mut cen = seed_cen();
    cen.attach("onprem-vbr", NetworkKind::Vbr, &[n("10.1.1.0/24")])
        .unwrap();
    assert!(vpcs_reaching_data_center(&cen).is_empty());

    // A VBR's route to the data center is published by default: every VPC
    // learns it without a publish step.
    cen.add_route(
        "onprem-vbr",
        n("10.1.1.0/24"),
        NextHop::DataCenter("dc-1".into()),
    )
    .unwrap();
    assert_eq!(vpcs_reaching_data_center(&cen).len(), 4);
    assert_eq!(
        next_hop(&cen, "shanghai-vpc", "10.1.1.1"),
        learned("onprem-vbr")
    );

    // The data center side sees the four VPC blocks through the VBR, as in
    // the seed's on-premises route table.
    let vbr: Vec<String> = cen
        .routes("onprem-vbr")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        vbr,
        [
            "10.1.1.0/24  custom  data center dc-1",
            "192.168.1.0/24  cen  learned from beijing-vpc (local)",
            "192.168.2.0/24  cen  learned from hongkong-vpc (local)",
            "192.168.3.0/24  cen  learned from shanghai-vpc (local)",
            "192.168.4.0/24  cen  learned from hangzhou-vpc (local)",
        ]
    );

    // A VPN-gateway route for the same prefix published later from
    // Hangzhou loses the conflict: the VBR's route got there first.
    cen.add_route(
        "hangzhou-vpc",
        n("10.1.1.0/24"),
        NextHop::VpnGateway("vpn-hz".into()),
    )
    .unwrap();
    cen.publish("hangzhou-vpc", n("10.1.1.0/24")).unwrap();
    let rows: Vec<_> = cen
        .published()
        .into_iter()
        .filter(|p| p.destination == n("10.1.1.0/24"))
        .map(|p| (p.network, p.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("onprem-vbr".to_string(), PublishStatus::Active),
            (
                "hangzhou-vpc".to_string(),
                PublishStatus::Conflict {
                    active: "onprem-vbr".into()
                }
            ),
        ]
    );
    assert_eq!(
        next_hop(&cen, "beijing-vpc", "10.1.1.1"),
        learned("onprem-vbr")
    );
    // Hangzhou's own route wins in Hangzhou.
    assert_eq!(
        next_hop(&cen, "hangzhou-vpc", "10.1.1.1"),
        Some(NextHop::VpnGateway("vpn-hz".into()))
    );

    // The leased line goes away (VBR detached): the VPN gateway takes over.
    cen.detach("onprem-vbr").unwrap();
    assert_eq!(
        next_hop(&cen, "beijing-vpc", "10.1.1.1"),
        learned("hangzhou-vpc")
    );
}

#[test]
fn same_walk_through_with_other_addresses_and_ipv6() {
    let mut cen = Cen::new("cen-other");
    let vpcs = [
        ("eu-vpc", vec![n("172.16.0.0/20"), n("2001:db8:10::/48")]),
        ("us-vpc", vec![n("172.16.16.0/20"), n("2001:db8:20::/48")]),
        ("ap-vpc", vec![n("100.64.0.0/22")]),
    ];
    for (name, cidrs) in &vpcs {
        cen.attach(name, NetworkKind::Vpc, cidrs).unwrap();
    }
    // One system route per block.
    assert_eq!(
        cen.routes("eu-vpc")
            .unwrap()
            .iter()
            .filter(|r| r.route_type == RouteType::VpcSystem && !r.is_learned())
            .count(),
        2
    );

    let office = n("10.200.0.0/16");
    let office6 = n("2001:db8:ff::/48");
    cen.add_route("eu-vpc", office, NextHop::VpnGateway("vpn-eu".into()))
        .unwrap();
    cen.add_route("eu-vpc", office6, NextHop::VpnGateway("vpn-eu".into()))
        .unwrap();
    for other in ["us-vpc", "ap-vpc"] {
        assert_eq!(next_hop(&cen, other, "10.200.3.4"), None);
        assert_eq!(next_hop(&cen, other, "2001:db8:ff::1"), None);
    }
    cen.publish("eu-vpc", office).unwrap();
    cen.publish("eu-vpc", office6).unwrap();
    for other in ["us-vpc", "ap-vpc"] {
        assert_eq!(next_hop(&cen, other, "10.200.3.4"), learned("eu-vpc"));
        assert_eq!(next_hop(&cen, other, "2001:db8:ff::1"), learned("eu-vpc"));
    }
    assert_eq!(
        next_hop(&cen, "ap-vpc", "2001:db8:20::9"),
        learned("us-vpc")
    );
    assert_eq!(next_hop(&cen, "ap-vpc", "172.16.17.1"), learned("us-vpc"));
    assert_eq!(next_hop(&cen, "ap-vpc", "172.16.32.1"), None);

    cen.withdraw("eu-vpc", office6).unwrap();
    assert_eq!(next_hop(&cen, "us-vpc", "2001:db8:ff::1"), None);
    assert_eq!(next_hop(&cen, "us-vpc", "10.200.3.4"), learned("eu-vpc"));
    cen.delete_route("eu-vpc", office).unwrap();
    assert_eq!(next_hop(&cen, "us-vpc", "10.200.3.4"), None);
    assert_eq!(
        next_hop(&cen, "eu-vpc", "2001:db8:ff::1"),
        Some(NextHop::VpnGateway("vpn-eu".into()))
    );
}

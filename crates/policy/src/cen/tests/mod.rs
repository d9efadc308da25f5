//! CEN tests: one per row of Alibaba's publishing table, one per rule, the
//! seed document's walk-through, and a property test against a linear-scan
//! longest-prefix oracle.

mod prop;
mod rules;
mod seed;
mod table;

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Cen, EffectiveRoute, NextHop};

pub(super) fn n(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The entry `network` has for exactly `destination`, if any.
pub(super) fn entry(cen: &Cen, network: &str, destination: &str) -> Option<EffectiveRoute> {
    let destination = n(destination);
    cen.routes(network)
        .unwrap()
        .into_iter()
        .find(|r| r.destination == destination)
}

/// Where `network` would send a packet to `addr`.
pub(super) fn next_hop(cen: &Cen, network: &str, addr: &str) -> Option<NextHop> {
    cen.lookup(network, ip(addr))
        .unwrap()
        .map(|r| r.next_hop.clone())
}

pub(super) fn learned(from: &str) -> Option<NextHop> {
    Some(NextHop::Cen { from: from.into() })
}

/// Every network's table printed, so a failed command can be shown to have
/// changed nothing.
pub(super) fn snapshot(cen: &Cen) -> String {
    let mut out = String::new();
    for net in cen.networks() {
        out += &format!("{} {:?} {:?}\n", net.name(), net.kind(), net.cidrs());
        for r in cen.routes(net.name()).unwrap() {
            out += &format!("  {r} {:?}\n", r.origin);
        }
        for r in cen.rejected(net.name()).unwrap() {
            out += &format!("  rejected {r}\n");
        }
    }
    for p in cen.published() {
        out += &format!("cen {p}\n");
    }
    out
}

//! Which connection carries a packet when the gateway has `[[route]]`s:
//! policy-based routes (source and destination) win over destination-based
//! ones; among the routes for one prefix the active one (weight 100) is used
//! while its connection is healthy, the standby (weight 0) otherwise; a
//! prefix with no healthy route is withdrawn, so a shorter one may match.
//!
//! The tables hold only what is in use now and are rebuilt when a health
//! check changes state (seconds apart), so the per-packet cost is one
//! longest-prefix lookup, whatever the number of routes.

use std::collections::BTreeSet;

use ipnet::IpNet;
use ipsecgw_policy::{FlowKey, RouteTable};

use crate::config::{Route, WEIGHT_ACTIVE};

/// The routes in use, rebuilt from the configured ones and the health of
/// their connections.
#[derive(Debug, Default)]
pub struct RouteSelector {
    routes: Vec<Route>,
    destination: RouteTable<usize>,
    /// (source, destination, connection), most specific destination first,
    /// then most specific source: policy routes are few (as in the product).
    policy: Vec<(IpNet, IpNet, usize)>,
}

impl RouteSelector {
    /// A selector over `routes`, every connection healthy.
    pub fn new(routes: &[Route]) -> Self {
        let mut s = Self {
            routes: routes.to_vec(),
            ..Self::default()
        };
        s.rebuild(|_| true);
        s
    }

    /// Whether the gateway routes by `[[route]]` at all.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Recomputes the routes in use from the connections' health.
    pub fn rebuild(&mut self, healthy: impl Fn(usize) -> bool) {
        let chosen = in_use(&self.routes, healthy);
        self.destination = RouteTable::new();
        self.policy.clear();
        for (r, used) in self.routes.iter().zip(chosen) {
            if !used {
                continue;
            }
            match r.source {
                None => {
                    self.destination.insert(r.destination, r.connection);
                }
                Some(src) => self.policy.push((src, r.destination, r.connection)),
            }
        }
        self.policy.sort_by(|a, b| {
            (b.1.prefix_len(), b.0.prefix_len()).cmp(&(a.1.prefix_len(), a.0.prefix_len()))
        });
    }

    /// The connection for this flow, if any route in use matches.
    pub fn select(&self, flow: &FlowKey) -> Option<usize> {
        self.policy
            .iter()
            .find(|(src, dst, _)| src.contains(&flow.src) && dst.contains(&flow.dst))
            .map(|(_, _, conn)| *conn)
            .or_else(|| self.destination.lookup(flow.dst).map(|(_, c)| *c))
    }
}

/// Per route, whether it is in use: its connection is healthy and, for its
/// (source, destination), it is the active route or the active one's
/// connection is not healthy.
pub fn in_use(routes: &[Route], healthy: impl Fn(usize) -> bool) -> Vec<bool> {
    routes
        .iter()
        .map(|r| {
            if !healthy(r.connection) {
                return false;
            }
            r.weight == WEIGHT_ACTIVE
                || !routes.iter().any(|o| {
                    o.destination == r.destination
                        && o.source == r.source
                        && o.weight == WEIGHT_ACTIVE
                        && healthy(o.connection)
                })
        })
        .collect()
}

/// The destinations that belong in the site's route table (the kernel's,
/// into the TUN device): published ones with a route in use.
pub fn published(routes: &[Route], healthy: impl Fn(usize) -> bool) -> BTreeSet<IpNet> {
    routes
        .iter()
        .zip(in_use(routes, healthy))
        .filter(|(r, used)| *used && r.publish)
        .map(|(r, _)| r.destination)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    const WEIGHT_STANDBY: u8 = 0;

    fn route(dst: &str, src: Option<&str>, conn: usize, weight: u8) -> Route {
        Route {
            destination: dst.parse().unwrap(),
            source: src.map(|s| s.parse().unwrap()),
            connection: conn,
            weight,
            publish: true,
        }
    }

    fn flow(src: &str, dst: &str) -> FlowKey {
        FlowKey {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: 1,
            src_port: 0,
            dst_port: 0,
        }
    }

    #[test]
    fn active_route_until_its_connection_fails_then_standby_then_back() {
        let routes = [
            route("10.1.1.0/24", None, 0, WEIGHT_ACTIVE),
            route("10.1.1.0/24", None, 1, WEIGHT_STANDBY),
        ];
        let mut s = RouteSelector::new(&routes);
        let f = flow("192.168.4.10", "10.1.1.10");
        assert_eq!(s.select(&f), Some(0));
        s.rebuild(|c| c != 0);
        assert_eq!(s.select(&f), Some(1), "standby carries traffic");
        s.rebuild(|_| false);
        assert_eq!(s.select(&f), None, "both down: withdrawn");
        assert!(published(&routes, |_| false).is_empty());
        s.rebuild(|_| true);
        assert_eq!(s.select(&f), Some(0), "back on the active route");
        assert_eq!(published(&routes, |_| true).len(), 1);
    }

    #[test]
    fn policy_routes_win_over_destination_routes() {
        let routes = [
            route("10.1.0.0/16", None, 0, WEIGHT_ACTIVE),
            route("10.1.1.0/24", None, 0, WEIGHT_ACTIVE),
            route("10.1.0.0/16", Some("192.168.4.128/25"), 1, WEIGHT_ACTIVE),
        ];
        let s = RouteSelector::new(&routes);
        assert_eq!(s.select(&flow("192.168.4.200", "10.1.1.10")), Some(1));
        assert_eq!(s.select(&flow("192.168.4.10", "10.1.1.10")), Some(0));
        assert_eq!(s.select(&flow("192.168.4.10", "10.2.0.1")), None);
    }

    #[test]
    fn a_withdrawn_prefix_falls_back_to_a_shorter_one() {
        let routes = [
            route("10.0.0.0/8", None, 1, WEIGHT_ACTIVE),
            route("10.1.1.0/24", None, 0, WEIGHT_ACTIVE),
        ];
        let mut s = RouteSelector::new(&routes);
        assert_eq!(s.select(&flow("192.168.4.10", "10.1.1.10")), Some(0));
        s.rebuild(|c| c != 0);
        assert_eq!(s.select(&flow("192.168.4.10", "10.1.1.10")), Some(1));
    }
}

//! The CEN itself: attached networks, the publication queue per destination,
//! and the propagation that keeps every network's table in step.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::cen::error::CenError;
use crate::cen::network::{Network, NetworkKind, OwnRoute};
use crate::cen::route::{
    EffectiveRoute, NextHop, PublishStatus, PublishedRoute, RejectReason, RejectedRoute,
    RouteOrigin, RouteType,
};

/// A Cloud Enterprise Network instance: the networks attached to it and the
/// routes they exchange. See the [module documentation](crate::cen) for the
/// rules.
///
/// Methods are commands (`attach`, `detach`, `add_route`, `delete_route`,
/// `publish`, `withdraw`), which either succeed and leave every network's
/// table updated or fail with a [`CenError`] and change nothing; and getters
/// (`routes`, `lookup`, `published`, `rejected`, `networks`), which never
/// change anything. Listings are sorted by destination, so two CENs given
/// the same commands print the same.
///
/// Publishing a route that is already published, or withdrawing one that is
/// not, is an error rather than a no-op: in a lab, a repeated publish is
/// almost always a typo for another prefix or network, and saying so beats
/// silently succeeding.
#[derive(Debug, Clone)]
pub struct Cen {
    name: String,
    networks: BTreeMap<String, Network>,
    /// For each published destination, the publishing networks in the order
    /// their routes reached the CEN: the first is propagated, the others are
    /// conflicts waiting their turn. This is the only record of what is
    /// published; a network never appears twice in one queue, and every
    /// name in a queue is attached and has an own route there.
    publications: BTreeMap<IpNet, Vec<String>>,
}

/// The route the CEN propagates for one destination, copied out so the
/// receiving networks can be updated while it is held.
struct Offer {
    from: String,
    route: OwnRoute,
}

impl Offer {
    /// The entry a network that accepts the offer installs.
    fn learned(&self, destination: IpNet) -> EffectiveRoute {
        EffectiveRoute {
            destination,
            next_hop: NextHop::Cen {
                from: self.from.clone(),
            },
            route_type: self.route.route_type,
            origin: RouteOrigin::Learned {
                from: self.from.clone(),
                next_hop_at_source: self.route.next_hop.clone(),
            },
        }
    }

    /// The record a network that refuses the offer keeps.
    fn rejected(&self, destination: IpNet, reason: RejectReason) -> RejectedRoute {
        RejectedRoute {
            destination,
            from: self.from.clone(),
            route_type: self.route.route_type,
            next_hop_at_source: self.route.next_hop.clone(),
            reason,
        }
    }
}

impl Cen {
    /// An empty CEN instance.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            networks: BTreeMap::new(),
            publications: BTreeMap::new(),
        }
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Attaches a VPC or VBR under a name unique in this CEN.
    ///
    /// A VPC needs at least one CIDR block and gets a system route for each,
    /// published at once (after any routes already in the CEN for the same
    /// prefix). A VBR may have none; its blocks are the data center's, kept
    /// only so the VBR refuses learned routes into them, and its routes are
    /// added with [`Cen::add_route`]. Blocks are taken with host bits
    /// cleared and must not overlap each other or any attached network's.
    /// The new network learns everything the CEN already propagates.
    pub fn attach(
        &mut self,
        name: &str,
        kind: NetworkKind,
        cidrs: &[IpNet],
    ) -> Result<(), CenError> {
        if name.is_empty() {
            return Err(CenError::EmptyName);
        }
        if self.networks.contains_key(name) {
            return Err(CenError::DuplicateNetwork { name: name.into() });
        }
        if kind == NetworkKind::Vpc && cidrs.is_empty() {
            return Err(CenError::NoCidr { name: name.into() });
        }
        let cidrs: Vec<IpNet> = cidrs.iter().map(IpNet::trunc).collect();
        for (i, first) in cidrs.iter().enumerate() {
            if let Some(second) = cidrs.iter().skip(i + 1).find(|c| overlap(first, c)) {
                return Err(CenError::OwnCidrsOverlap {
                    network: name.into(),
                    first: *first,
                    second: *second,
                });
            }
        }
        for cidr in &cidrs {
            for other in self.networks.values() {
                if let Some(other_cidr) = other.cidrs().iter().find(|c| overlap(cidr, c)) {
                    return Err(CenError::CidrOverlap {
                        network: name.into(),
                        cidr: *cidr,
                        other: other.name().into(),
                        other_cidr: *other_cidr,
                    });
                }
            }
        }

        let mut network = Network::new(name.into(), kind, cidrs.clone());
        if kind == NetworkKind::Vpc {
            for cidr in &cidrs {
                network.own.insert(
                    *cidr,
                    OwnRoute {
                        route_type: RouteType::VpcSystem,
                        next_hop: NextHop::System,
                    },
                );
                if RouteType::VpcSystem.publish_by_default() {
                    self.publications
                        .entry(*cidr)
                        .or_default()
                        .push(name.into());
                }
            }
        }
        self.networks.insert(name.into(), network);
        self.rebuild();
        Ok(())
    }

    /// Detaches a network: its publications leave the CEN (the next
    /// publisher in line takes over each destination), the routes other
    /// networks learned from it go, and its own state is dropped.
    pub fn detach(&mut self, name: &str) -> Result<(), CenError> {
        if self.networks.remove(name).is_none() {
            return Err(unknown(name));
        }
        for queue in self.publications.values_mut() {
            queue.retain(|n| n != name);
        }
        self.publications.retain(|_, queue| !queue.is_empty());
        self.rebuild();
        Ok(())
    }

    /// Adds a route to a network. Its type follows from `next_hop` and must
    /// belong to the network's kind; it is published at once if the type is
    /// published by default. `destination` is taken with host bits cleared
    /// and must not already have an own route in that network (a learned
    /// route there is fine: the own route beats it).
    pub fn add_route(
        &mut self,
        network: &str,
        destination: IpNet,
        next_hop: NextHop,
    ) -> Result<(), CenError> {
        let destination = destination.trunc();
        let net = self.networks.get(network).ok_or_else(|| unknown(network))?;
        let route_type = match next_hop.route_type() {
            Some(RouteType::VpcSystem) => {
                return Err(CenError::SystemRouteByHand {
                    network: network.into(),
                    destination,
                })
            }
            Some(t) => t,
            None => {
                return Err(CenError::LearnedByHand {
                    network: network.into(),
                    destination,
                })
            }
        };
        if !route_type.allowed_in(net.kind()) {
            return Err(CenError::RouteTypeNotAllowed {
                network: network.into(),
                kind: net.kind(),
                route_type,
                expected: route_type.network_kind(),
            });
        }
        if let Some(existing) = net.own.get(&destination) {
            return Err(CenError::RouteExists {
                network: network.into(),
                destination,
                route_type: existing.route_type,
            });
        }

        if let Some(net) = self.networks.get_mut(network) {
            net.own.insert(
                destination,
                OwnRoute {
                    route_type,
                    next_hop,
                },
            );
        }
        if route_type.publish_by_default() {
            self.publications
                .entry(destination)
                .or_default()
                .push(network.into());
        }
        self.refresh(destination);
        Ok(())
    }

    /// Deletes an own route; if it was published it leaves the CEN too, and
    /// the next publisher in line for the destination (if any) takes over.
    /// System routes cannot be deleted, only withdrawn.
    pub fn delete_route(&mut self, network: &str, destination: IpNet) -> Result<(), CenError> {
        let destination = destination.trunc();
        let route = self.own_route(network, destination)?;
        if route.route_type == RouteType::VpcSystem {
            return Err(CenError::CannotDeleteSystemRoute {
                network: network.into(),
                destination,
            });
        }
        if let Some(net) = self.networks.get_mut(network) {
            net.own.remove(&destination);
        }
        self.unpublish(network, destination);
        self.refresh(destination);
        Ok(())
    }

    /// Publishes an own route to the CEN (Alibaba's `PublishRouteEntries`).
    /// It joins the end of the queue for its destination: propagated at once
    /// if no other network publishes that destination, otherwise listed as a
    /// conflict until the routes ahead of it go. Any own route type may be
    /// published, VBR routes included.
    pub fn publish(&mut self, network: &str, destination: IpNet) -> Result<(), CenError> {
        let destination = destination.trunc();
        self.own_route(network, destination)?;
        if self.is_published(network, destination) {
            return Err(CenError::AlreadyPublished {
                network: network.into(),
                destination,
            });
        }
        self.publications
            .entry(destination)
            .or_default()
            .push(network.into());
        self.refresh(destination);
        Ok(())
    }

    /// Withdraws a published route from the CEN (Alibaba's
    /// `WithdrawPublishedRouteEntries`): it no longer exists in the CEN,
    /// other networks forget it (or switch to the next publisher in line),
    /// and the network keeps it as a local route. Publishing it again puts
    /// it at the back of the queue.
    pub fn withdraw(&mut self, network: &str, destination: IpNet) -> Result<(), CenError> {
        let destination = destination.trunc();
        self.own_route(network, destination)?;
        if !self.unpublish(network, destination) {
            return Err(CenError::NotPublished {
                network: network.into(),
                destination,
            });
        }
        self.refresh(destination);
        Ok(())
    }

    /// A network's effective route table, sorted by destination: its own
    /// routes and the learned routes it accepted.
    pub fn routes(&self, network: &str) -> Result<Vec<EffectiveRoute>, CenError> {
        let net = self.network(network).ok_or_else(|| unknown(network))?;
        let mut routes: Vec<EffectiveRoute> =
            net.effective.iter().map(|(_, r)| r.clone()).collect();
        routes.sort_by_key(|r| r.destination);
        Ok(routes)
    }

    /// The longest-prefix match for `addr` in a network's effective table:
    /// the route a packet from that network to `addr` would take. `None`
    /// when nothing covers it (the packet would be dropped).
    pub fn lookup(&self, network: &str, addr: IpAddr) -> Result<Option<&EffectiveRoute>, CenError> {
        let net = self.network(network).ok_or_else(|| unknown(network))?;
        Ok(net.effective.lookup(addr).map(|(_, route)| route))
    }

    /// The CEN's own table: every published route, sorted by destination and
    /// then in arrival order, so each destination's active route comes first
    /// and its conflicts follow in the order they would take over.
    pub fn published(&self) -> Vec<PublishedRoute> {
        let mut rows = Vec::new();
        for (destination, queue) in &self.publications {
            let Some(active) = queue.first() else {
                continue;
            };
            for (i, name) in queue.iter().enumerate() {
                let Some(route) = self.networks.get(name).and_then(|n| n.own.get(destination))
                else {
                    continue;
                };
                rows.push(PublishedRoute {
                    destination: *destination,
                    network: name.clone(),
                    route_type: route.route_type,
                    next_hop: route.next_hop.clone(),
                    status: if i == 0 {
                        PublishStatus::Active
                    } else {
                        PublishStatus::Conflict {
                            active: active.clone(),
                        }
                    },
                });
            }
        }
        rows
    }

    /// The routes the CEN propagates that `network` refused, and why, sorted
    /// by destination.
    pub fn rejected(&self, network: &str) -> Result<Vec<RejectedRoute>, CenError> {
        let net = self.network(network).ok_or_else(|| unknown(network))?;
        Ok(net.rejected.values().cloned().collect())
    }

    /// The attached networks, by name.
    pub fn networks(&self) -> impl Iterator<Item = &Network> {
        self.networks.values()
    }

    /// One attached network, by name.
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.get(name)
    }

    /// The network's own route for exactly `destination`, or the error that
    /// explains why there is none to act on.
    fn own_route(&self, network: &str, destination: IpNet) -> Result<&OwnRoute, CenError> {
        let net = self.networks.get(network).ok_or_else(|| unknown(network))?;
        if let Some(route) = net.own.get(&destination) {
            return Ok(route);
        }
        match net
            .effective
            .get(&destination)
            .and_then(|r| r.learned_from())
        {
            Some(from) => Err(CenError::RouteIsLearned {
                network: network.into(),
                destination,
                from: from.into(),
            }),
            None => Err(CenError::RouteNotFound {
                network: network.into(),
                destination,
            }),
        }
    }

    fn is_published(&self, network: &str, destination: IpNet) -> bool {
        self.publications
            .get(&destination)
            .is_some_and(|queue| queue.iter().any(|n| n == network))
    }

    /// Takes `network` out of the queue for `destination`; whether it was in.
    fn unpublish(&mut self, network: &str, destination: IpNet) -> bool {
        let Some(queue) = self.publications.get_mut(&destination) else {
            return false;
        };
        let before = queue.len();
        queue.retain(|n| n != network);
        let removed = queue.len() != before;
        if queue.is_empty() {
            self.publications.remove(&destination);
        }
        removed
    }

    /// Recomputes every network's entry for one destination, the only one a
    /// route command can affect.
    fn refresh(&mut self, destination: IpNet) {
        let offer = self
            .publications
            .get(&destination)
            .and_then(|queue| queue.first())
            .and_then(|from| {
                let route = self.networks.get(from)?.own.get(&destination)?;
                Some(Offer {
                    from: from.clone(),
                    route: route.clone(),
                })
            });
        let publishers: BTreeSet<&str> = self
            .publications
            .get(&destination)
            .map(|queue| queue.iter().map(String::as_str).collect())
            .unwrap_or_default();

        for net in self.networks.values_mut() {
            net.effective.remove(&destination);
            net.rejected.remove(&destination);
            let own = net.own.get(&destination).map(|route| EffectiveRoute {
                destination,
                next_hop: route.next_hop.clone(),
                route_type: route.route_type,
                origin: RouteOrigin::Own {
                    published: publishers.contains(net.name()),
                },
            });
            // A network never learns its own publication back.
            let (installed, rejection) = match offer.as_ref().filter(|o| o.from != net.name()) {
                None => (own, None),
                Some(offer) => match (net.cidr_containing(&destination), own) {
                    (Some(cidr), own) => (
                        own,
                        Some(offer.rejected(destination, RejectReason::InsideOwnCidr { cidr })),
                    ),
                    (None, Some(own)) => {
                        let reason = RejectReason::OwnRouteExists {
                            route_type: own.route_type,
                        };
                        (Some(own), Some(offer.rejected(destination, reason)))
                    }
                    (None, None) => (Some(offer.learned(destination)), None),
                },
            };
            if let Some(route) = installed {
                net.effective.insert(destination, route);
            }
            if let Some(rejection) = rejection {
                net.rejected.insert(destination, rejection);
            }
        }
    }

    /// Recomputes every network's table from scratch, after attach and
    /// detach, which can change many destinations at once.
    fn rebuild(&mut self) {
        let mut destinations: BTreeSet<IpNet> = self.publications.keys().copied().collect();
        for net in self.networks.values_mut() {
            destinations.extend(net.own.keys().copied());
            net.effective = Default::default();
            net.rejected.clear();
        }
        for destination in destinations {
            self.refresh(destination);
        }
    }
}

fn unknown(name: &str) -> CenError {
    CenError::UnknownNetwork { name: name.into() }
}

/// Whether two prefixes share an address: for prefixes, one then contains
/// the other.
fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

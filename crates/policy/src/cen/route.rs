//! Route types, next hops and the rows the CEN reports.

use std::fmt;

use ipnet::IpNet;

use crate::cen::network::NetworkKind;

/// What a route is, which decides where it may be configured and whether it
/// reaches the CEN without an explicit publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteType {
    /// The route a VPC gets for each of its CIDR blocks.
    VpcSystem,
    /// A VPC custom route pointing to an ECS instance.
    EcsInstance,
    /// A VPC custom route pointing to a VPN gateway.
    VpnGateway,
    /// A VPC custom route pointing to a high-availability virtual IP.
    HaVip,
    /// A VBR route pointing to the on-premises data center.
    DataCenter,
    /// A VBR route learned over BGP from the data center.
    Bgp,
}

impl RouteType {
    /// Every route type, in the order of Alibaba's publishing table.
    pub const ALL: [Self; 6] = [
        Self::EcsInstance,
        Self::VpnGateway,
        Self::HaVip,
        Self::VpcSystem,
        Self::DataCenter,
        Self::Bgp,
    ];

    /// Whether a route of this type is published to the CEN as soon as it
    /// exists. Custom VPC routes are not, because they usually point at
    /// something only that VPC can reach; a VPC's own blocks and whatever a
    /// VBR hears from the data center are what other networks need.
    pub const fn publish_by_default(self) -> bool {
        match self {
            Self::EcsInstance | Self::VpnGateway | Self::HaVip => false,
            Self::VpcSystem | Self::DataCenter | Self::Bgp => true,
        }
    }

    /// The kind of network this route type lives in.
    pub const fn network_kind(self) -> NetworkKind {
        match self {
            Self::VpcSystem | Self::EcsInstance | Self::VpnGateway | Self::HaVip => {
                NetworkKind::Vpc
            }
            Self::DataCenter | Self::Bgp => NetworkKind::Vbr,
        }
    }

    /// Whether a network of `kind` may hold a route of this type: a VBR has
    /// no ECS instances behind it, a VPC no BGP session to a data center.
    pub fn allowed_in(self, kind: NetworkKind) -> bool {
        self.network_kind() == kind
    }

    /// The word a route table's "type" column shows, as Alibaba's console
    /// groups them: system, custom or BGP.
    fn column(self) -> &'static str {
        match self {
            Self::VpcSystem => "system",
            Self::EcsInstance | Self::VpnGateway | Self::HaVip | Self::DataCenter => "custom",
            Self::Bgp => "bgp",
        }
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VpcSystem => "VPC system route",
            Self::EcsInstance => "route to an ECS instance",
            Self::VpnGateway => "route to a VPN gateway",
            Self::HaVip => "route to an HaVip",
            Self::DataCenter => "route to the on-premises data center",
            Self::Bgp => "BGP route",
        })
    }
}

/// Where a route sends traffic. The ids are the cloud's resource ids (or,
/// for [`NextHop::DataCenter`] and [`NextHop::Bgp`], the label of the data
/// center link or BGP peer); the CEN only compares and prints them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    /// Delivered inside the network itself (a VPC system route).
    System,
    /// An ECS instance, by id.
    EcsInstance(String),
    /// A VPN gateway, by id.
    VpnGateway(String),
    /// A high-availability virtual IP, by id.
    HaVip(String),
    /// The on-premises data center behind a VBR, by link label.
    DataCenter(String),
    /// A BGP peer of a VBR, by label.
    Bgp(String),
    /// Another attached network, through the CEN.
    Cen {
        /// The network that published the route.
        from: String,
    },
}

impl NextHop {
    /// The route type a route with this next hop has; `None` for
    /// [`NextHop::Cen`], which only the CEN itself installs.
    pub fn route_type(&self) -> Option<RouteType> {
        Some(match self {
            Self::System => RouteType::VpcSystem,
            Self::EcsInstance(_) => RouteType::EcsInstance,
            Self::VpnGateway(_) => RouteType::VpnGateway,
            Self::HaVip(_) => RouteType::HaVip,
            Self::DataCenter(_) => RouteType::DataCenter,
            Self::Bgp(_) => RouteType::Bgp,
            Self::Cen { .. } => return None,
        })
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("local"),
            Self::EcsInstance(id) => write!(f, "ecs instance {id}"),
            Self::VpnGateway(id) => write!(f, "vpn gateway {id}"),
            Self::HaVip(id) => write!(f, "havip {id}"),
            Self::DataCenter(id) => write!(f, "data center {id}"),
            Self::Bgp(peer) => write!(f, "bgp peer {peer}"),
            Self::Cen { from } => write!(f, "learned from {from}"),
        }
    }
}

/// Where an entry of a network's route table came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteOrigin {
    /// Configured in this network (or, for system routes, created with it).
    Own {
        /// Whether this network has published it to the CEN (it may still
        /// lose a conflict there: see [`crate::cen::Cen::published`]).
        published: bool,
    },
    /// Learned from the CEN.
    Learned {
        /// The network that published it.
        from: String,
        /// The route's next hop in that network, which is where the traffic
        /// finally goes.
        next_hop_at_source: NextHop,
    },
}

/// One entry of a network's effective route table.
///
/// Printed as the columns a route table shows: destination, type (`system`,
/// `custom`, `bgp`, or `cen` for learned routes) and next hop, e.g.
/// `172.16.1.0/24  system  local` or
/// `10.200.0.0/16  cen  learned from east (vpn gateway vpn-east)`.
/// Whether an own route is published is in [`EffectiveRoute::origin`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EffectiveRoute {
    /// Host bits cleared.
    pub destination: IpNet,
    /// Where this network sends the traffic; [`NextHop::Cen`] for learned routes.
    pub next_hop: NextHop,
    /// The route's type where it was configured (for a learned route, in the
    /// publishing network).
    pub route_type: RouteType,
    /// Own or learned, and from whom.
    pub origin: RouteOrigin,
}

impl EffectiveRoute {
    /// Whether the route came from the CEN.
    pub fn is_learned(&self) -> bool {
        matches!(self.origin, RouteOrigin::Learned { .. })
    }

    /// Whether this is an own route this network has published.
    pub fn is_published(&self) -> bool {
        matches!(self.origin, RouteOrigin::Own { published: true })
    }

    /// The publishing network, for a learned route.
    pub fn learned_from(&self) -> Option<&str> {
        match &self.origin {
            RouteOrigin::Learned { from, .. } => Some(from),
            RouteOrigin::Own { .. } => None,
        }
    }
}

impl fmt::Display for EffectiveRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            RouteOrigin::Own { .. } => write!(
                f,
                "{}  {}  {}",
                self.destination,
                self.route_type.column(),
                self.next_hop
            ),
            RouteOrigin::Learned {
                next_hop_at_source, ..
            } => write!(
                f,
                "{}  cen  {} ({next_hop_at_source})",
                self.destination, self.next_hop
            ),
        }
    }
}

/// Whether a published route is the one the CEN propagates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublishStatus {
    /// It reached the CEN first for its destination and is propagated.
    Active,
    /// Another network published the same destination earlier; this one is
    /// kept, not propagated, and takes over if the earlier ones go.
    Conflict {
        /// The network whose route for the destination is active.
        active: String,
    },
}

/// One row of the CEN's own table: a route some network has published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublishedRoute {
    /// Host bits cleared.
    pub destination: IpNet,
    /// The publishing network.
    pub network: String,
    /// The route's type in that network.
    pub route_type: RouteType,
    /// The route's next hop in that network.
    pub next_hop: NextHop,
    /// Propagated, or held back by a conflict.
    pub status: PublishStatus,
}

impl fmt::Display for PublishedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {}  {}  ",
            self.destination, self.network, self.next_hop
        )?;
        match &self.status {
            PublishStatus::Active => f.write_str("active"),
            PublishStatus::Conflict { active } => write!(
                f,
                "conflict: {active} published {} first; not propagated",
                self.destination
            ),
        }
    }
}

/// Why a network refused a route the CEN offered it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The destination lies inside (or equals) one of the network's CIDR
    /// blocks; installing it would divert the network's own addresses.
    InsideOwnCidr {
        /// The network's block that contains the destination.
        cidr: IpNet,
    },
    /// The network has its own route for exactly this destination, and own
    /// routes win over learned ones.
    OwnRouteExists {
        /// The type of the network's own route.
        route_type: RouteType,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsideOwnCidr { cidr } => write!(
                f,
                "inside this network's own CIDR block {cidr}; a learned route there would take over its own addresses"
            ),
            Self::OwnRouteExists { route_type } => write!(
                f,
                "this network has its own {route_type} for the destination, which takes precedence over learned routes"
            ),
        }
    }
}

/// A route the CEN propagates that one network did not install.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RejectedRoute {
    /// Host bits cleared.
    pub destination: IpNet,
    /// The publishing network.
    pub from: String,
    /// The route's type in the publishing network.
    pub route_type: RouteType,
    /// The route's next hop in the publishing network.
    pub next_hop_at_source: NextHop,
    /// Why it was refused.
    pub reason: RejectReason,
}

impl fmt::Display for RejectedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  from {} ({})  refused: {}",
            self.destination, self.from, self.next_hop_at_source, self.reason
        )
    }
}

//! Why a CEN command was refused.

use ipnet::IpNet;

use crate::cen::network::NetworkKind;
use crate::cen::route::RouteType;

/// Why a [`crate::cen::Cen`] command was refused. The CEN is left exactly as
/// it was.
///
/// These reach an operator typing lab commands, so each message names the
/// network and prefix involved and what would have been accepted.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CenError {
    /// A network name was empty.
    #[error("a network attached to a CEN needs a non-empty name")]
    EmptyName,
    /// No attached network has this name.
    #[error(
        "no network named {name:?} is attached to this CEN; attach it first or check the name"
    )]
    UnknownNetwork {
        /// The name given.
        name: String,
    },
    /// A network with this name is already attached.
    #[error("a network named {name:?} is already attached to this CEN; names must be unique (detach it first to replace it)")]
    DuplicateNetwork {
        /// The name given.
        name: String,
    },
    /// A VPC was attached without CIDR blocks.
    #[error("VPC {name:?} needs at least one CIDR block: its system routes are made from them")]
    NoCidr {
        /// The VPC's name.
        name: String,
    },
    /// Two of the CIDR blocks given for one network overlap.
    #[error("CIDR blocks {first} and {second} given for {network:?} overlap; give each address range once")]
    OwnCidrsOverlap {
        /// The network being attached.
        network: String,
        /// One block.
        first: IpNet,
        /// The block overlapping it.
        second: IpNet,
    },
    /// A CIDR block overlaps one of an already attached network.
    #[error("CIDR block {cidr} of {network:?} overlaps {other_cidr} of attached network {other:?}; networks on one CEN need disjoint address ranges, or their routes would conflict")]
    CidrOverlap {
        /// The network being attached.
        network: String,
        /// Its overlapping block.
        cidr: IpNet,
        /// The attached network it overlaps.
        other: String,
        /// That network's block.
        other_cidr: IpNet,
    },
    /// The route type belongs to the other kind of network.
    #[error("a {route_type} belongs in a {expected}, but {network:?} is a {kind}")]
    RouteTypeNotAllowed {
        /// The network the route was added to.
        network: String,
        /// Its kind.
        kind: NetworkKind,
        /// The route's type.
        route_type: RouteType,
        /// The kind of network that type belongs in.
        expected: NetworkKind,
    },
    /// Someone tried to add a system route by hand.
    #[error("cannot add a system route to {destination} in {network:?}: system routes are created when a VPC is attached, one per CIDR block")]
    SystemRouteByHand {
        /// The network.
        network: String,
        /// The destination given.
        destination: IpNet,
    },
    /// Someone tried to add a route with the CEN as next hop.
    #[error("cannot add a route to {destination} via the CEN in {network:?}: learned routes come from publishing the route in the network that owns it")]
    LearnedByHand {
        /// The network.
        network: String,
        /// The destination given.
        destination: IpNet,
    },
    /// The network already has its own route for this destination.
    #[error(
        "{network:?} already has a {route_type} for {destination}; delete it first to replace it"
    )]
    RouteExists {
        /// The network.
        network: String,
        /// The destination.
        destination: IpNet,
        /// The type of the existing route.
        route_type: RouteType,
    },
    /// The network has no route for this destination at all.
    #[error("{network:?} has no route for {destination} (the prefix must match exactly)")]
    RouteNotFound {
        /// The network.
        network: String,
        /// The destination given.
        destination: IpNet,
    },
    /// The network's route for this destination was learned, not configured.
    #[error("{network:?} learned its route for {destination} from {from:?}; publish, withdraw or delete it in {from:?}")]
    RouteIsLearned {
        /// The network.
        network: String,
        /// The destination given.
        destination: IpNet,
        /// The network that published it.
        from: String,
    },
    /// System routes live as long as their VPC.
    #[error("cannot delete the system route for {destination} in {network:?}: it exists as long as the VPC has that CIDR block (withdraw it to stop publishing it)")]
    CannotDeleteSystemRoute {
        /// The VPC.
        network: String,
        /// The CIDR block.
        destination: IpNet,
    },
    /// Publishing a route that is already published.
    #[error("{network:?} has already published its route for {destination} to the CEN")]
    AlreadyPublished {
        /// The network.
        network: String,
        /// The destination.
        destination: IpNet,
    },
    /// Withdrawing a route that is not published.
    #[error("{network:?} has not published its route for {destination} to the CEN, so there is nothing to withdraw")]
    NotPublished {
        /// The network.
        network: String,
        /// The destination.
        destination: IpNet,
    },
}

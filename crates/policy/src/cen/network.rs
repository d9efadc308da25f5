//! Networks attached to a CEN and the state each one keeps.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

use crate::cen::route::{EffectiveRoute, NextHop, RejectedRoute, RouteType};
use crate::route::RouteTable;

/// The two kinds of network a CEN connects; they differ in which route types
/// they may hold ([`RouteType::allowed_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetworkKind {
    /// A virtual private cloud: gets one system route per CIDR block.
    Vpc,
    /// A virtual border router, the cloud end of a leased line to an
    /// on-premises data center; its CIDR blocks are the data center's.
    Vbr,
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vpc => "VPC",
            Self::Vbr => "VBR",
        })
    }
}

/// A route configured in the network itself (not learned from the CEN).
///
/// The type is stored beside the next hop so that an own route can never be
/// typeless: [`NextHop::Cen`] is refused before one is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnRoute {
    pub(crate) route_type: RouteType,
    pub(crate) next_hop: NextHop,
}

/// A network attached to a [`crate::cen::Cen`], as the CEN sees it.
///
/// Only its identity is public; its routes are read through the `Cen`, which
/// keeps them consistent with what the other networks publish.
#[derive(Debug, Clone)]
pub struct Network {
    name: String,
    kind: NetworkKind,
    cidrs: Vec<IpNet>,
    /// Routes configured here, by destination.
    pub(crate) own: BTreeMap<IpNet, OwnRoute>,
    /// Own routes plus accepted learned ones: what forwarding uses.
    pub(crate) effective: RouteTable<EffectiveRoute>,
    /// Learned routes refused here, by destination.
    pub(crate) rejected: BTreeMap<IpNet, RejectedRoute>,
}

impl Network {
    /// A network with no routes yet; `cidrs` must already be normalized.
    pub(crate) fn new(name: String, kind: NetworkKind, cidrs: Vec<IpNet>) -> Self {
        Self {
            name,
            kind,
            cidrs,
            own: BTreeMap::new(),
            effective: RouteTable::new(),
            rejected: BTreeMap::new(),
        }
    }

    /// The name it was attached under, unique within its CEN.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// VPC or VBR.
    pub fn kind(&self) -> NetworkKind {
        self.kind
    }

    /// Its CIDR blocks, host bits cleared, in the order given at attach time.
    pub fn cidrs(&self) -> &[IpNet] {
        &self.cidrs
    }

    /// The CIDR block of this network that contains `destination`, if any:
    /// a learned route there would take over the network's own addresses.
    pub(crate) fn cidr_containing(&self, destination: &IpNet) -> Option<IpNet> {
        self.cidrs.iter().copied().find(|c| c.contains(destination))
    }
}

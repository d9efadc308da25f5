//! The VPN gateway's routes: where traffic from the VPC goes, by
//! destination (destination-based) or by source and destination
//! (policy-based, which wins), and whether the VPC's route table learns
//! the destination.

use ipnet::IpNet;

/// The weight of an active route.
pub const WEIGHT_ACTIVE: u32 = 100;
/// The weight of a standby route: used while the active one's connection
/// is down (its health check failed).
pub const WEIGHT_STANDBY: u32 = 0;

/// One route of a VPN gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The gateway it belongs to, by name.
    pub vpn_gateway: String,
    /// Destination prefix (on the premises).
    pub destination: IpNet,
    /// Source prefix (in the VPC): present for a policy-based route.
    pub source: Option<IpNet>,
    /// The IPsec connection it sends into, by name: one of the gateway's.
    pub next_hop: String,
    /// [`WEIGHT_ACTIVE`] or [`WEIGHT_STANDBY`].
    pub weight: u32,
    /// Whether the VPC's route table gets the destination (the product
    /// publishes only when asked).
    pub publish_to_vpc: bool,
}

impl Route {
    /// An active destination-based route, not published.
    pub fn new(vpn_gateway: &str, destination: IpNet, next_hop: &str) -> Self {
        Self {
            vpn_gateway: vpn_gateway.to_owned(),
            destination,
            source: None,
            next_hop: next_hop.to_owned(),
            weight: WEIGHT_ACTIVE,
            publish_to_vpc: false,
        }
    }

    /// Whether it is a policy-based route.
    pub fn is_policy(&self) -> bool {
        self.source.is_some()
    }
}

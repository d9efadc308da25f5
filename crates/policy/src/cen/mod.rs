//! A Cloud Enterprise Network (CEN) route engine: the part of Alibaba Cloud's
//! CEN that decides which route each attached VPC and VBR ends up with.
//!
//! Networks are attached to a [`Cen`] and keep their own routes. A route they
//! *publish* goes into the CEN and every *other* attached network learns it,
//! with the CEN as its next hop. Which route types are published by default
//! follows Alibaba's table ([`RouteType::publish_by_default`]); anything
//! published can be withdrawn, and a route deleted where it was configured
//! leaves the CEN with it.
//!
//! Two rules keep one network from hijacking another's traffic:
//!
//! - **First in wins.** When two networks publish the same destination, the
//!   route that reached the CEN first is the one propagated; the later one
//!   stays in the CEN's table as a conflict ([`PublishStatus::Conflict`]).
//!   When the winner leaves (withdrawn, deleted, its network detached) the
//!   next one in arrival order takes over, so a standby publication needs
//!   no re-publishing.
//! - **A network keeps its own addresses.** A learned route whose destination
//!   lies inside one of the receiving network's CIDR blocks is refused there,
//!   and a network's own route beats a learned one for the same destination.
//!   Refusals are listed by [`Cen::rejected`] with the reason.
//!
//! This is pure bookkeeping: no sockets, no clock, no randomness. Every
//! command returns a [`CenError`] instead of panicking, and leaves the CEN
//! unchanged when it fails. Queries are getters; per-network longest-prefix
//! lookups ([`Cen::lookup`]) go through a prefix trie kept up to date by the
//! commands, so they cost the same however many routes are installed.
//!
//! ```
//! use ipsecgw_policy::cen::{Cen, CenError, NetworkKind, NextHop};
//!
//! # fn main() -> Result<(), CenError> {
//! let mut cen = Cen::new("corp");
//! cen.attach("east", NetworkKind::Vpc, &["172.16.1.0/24".parse().unwrap()])?;
//! cen.attach("west", NetworkKind::Vpc, &["172.16.2.0/24".parse().unwrap()])?;
//! let office = "10.200.0.0/16".parse().unwrap();
//! cen.add_route("east", office, NextHop::VpnGateway("vpn-east".into()))?;
//! // Routes pointing to a VPN gateway stay local until published.
//! assert!(cen.lookup("west", "10.200.1.1".parse().unwrap())?.is_none());
//! cen.publish("east", office)?;
//! let route = cen.lookup("west", "10.200.1.1".parse().unwrap())?.unwrap();
//! assert_eq!(
//!     route.to_string(),
//!     "10.200.0.0/16  cen  learned from east (vpn gateway vpn-east)"
//! );
//! # Ok(())
//! # }
//! ```

mod engine;
mod error;
mod network;
mod route;

pub use engine::Cen;
pub use error::CenError;
pub use network::{Network, NetworkKind};
pub use route::{
    EffectiveRoute, NextHop, PublishStatus, PublishedRoute, RejectReason, RejectedRoute,
    RouteOrigin, RouteType,
};

#[cfg(test)]
mod tests;

//! Policy for ipsecgw: CIDRs, IKEv2 traffic selectors, the security policy
//! database (SPD), longest-prefix-match route tables, and the route engine of
//! a Cloud Enterprise Network ([`cen`]) that the lab's VPCs and VBRs share.
//!
//! This crate decides *what* goes *where*; it never moves a packet. It has no
//! sockets, no clock, no threads and no randomness, so the IKE negotiator and
//! the daemon can share it and tests are deterministic. The per-packet entry
//! points ([`FlowKey::from_ip_packet`], [`Spd::lookup_outbound`],
//! [`RouteTable::lookup`]) allocate nothing and never panic, whatever bytes
//! they are given; the data path calls them for every packet.
#![forbid(unsafe_code)]

pub mod cen;
mod error;
mod flow;
pub mod model;
mod route;
mod selector;
mod spd;

pub use error::SelectorError;
pub use flow::FlowKey;
pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};
pub use route::RouteTable;
pub use selector::{flow_matches, TrafficSelector};
pub use spd::{Policy, PolicyAction, PolicyId, Spd};

/// IP protocol numbers the crate treats specially (IANA "Assigned Internet
/// Protocol Numbers"): they decide whether a packet carries ports and how
/// selectors are printed.
pub mod proto {
    /// Any protocol, in a traffic selector (RFC 7296 §3.13.1).
    pub const ANY: u8 = 0;
    /// ICMP for IPv4: its type and code stand in for ports.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6: its type and code stand in for ports.
    pub const ICMPV6: u8 = 58;
    /// SCTP: its header starts with ports like TCP and UDP.
    pub const SCTP: u8 = 132;
}

#[cfg(test)]
mod tests;

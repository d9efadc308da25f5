//! IKEv2 negotiator (RFC 7296) for ipsecgw: sans-IO, no sockets, no clock.
//!
//! What it does: the IKE SA and CHILD SA exchanges with a pre-shared key
//! (IKE_SA_INIT, IKE_AUTH, INFORMATIONAL for DELETE and liveness), proposal
//! selection in the configured order, traffic-selector narrowing, NAT
//! detection, COOKIE and INVALID_KE_PAYLOAD handling, retransmission with
//! exponential backoff. It emits the keys of each CHILD SA as an event for
//! the daemon to install in its ESP data plane.
//!
//! What it does not do: no sockets, no clock, no threads (the daemon feeds
//! it datagrams and `now`, and sends what it returns); no ESP; no IKEv1.
//! Randomness enters through the constructor, so tests are repeatable.
//! CREATE_CHILD_SA (rekeying) is answered with NO_ADDITIONAL_SAS for now.
#![forbid(unsafe_code)]

pub mod config;
pub mod crypto;
pub mod endpoint;
pub mod event;
mod names;
pub mod proposal;
pub mod wire;

#[cfg(test)]
mod tests;

pub use config::{identity_from_str, identity_to_string, ConnectionConfig, EndpointConfig};
pub use endpoint::{ChildStatus, Endpoint, IkeCounters, IkeSaStatus};
pub use event::{ChildSa, DownReason, Event, IkeSaId, Transmit};
pub use names::UnknownName;
pub use proposal::{BadProposal, EspProposal, IkeProposal};

/// The IKE major version this negotiator speaks (RFC 7296 §3.1).
pub const IKE_MAJOR_VERSION: u8 = 2;

/// The UDP port IKE starts on (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;

/// The UDP port for NAT traversal and UDP-encapsulated ESP (RFC 3948 §2).
pub const NAT_T_PORT: u16 = 4500;

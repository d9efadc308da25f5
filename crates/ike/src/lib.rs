//! IKEv2 negotiator (RFC 7296) for ipsecgw: sans-IO, no sockets, no clock.
//!
//! A skeleton for now: the ESP data plane lands first and takes manually
//! keyed SAs from the daemon's config. The negotiator will emit "CHILD SA
//! established" events carrying the same `ipsecgw_esp::SaConfig` the manual
//! keys build today, so the daemon installs both the same way.
#![forbid(unsafe_code)]

/// The IKE major version this negotiator speaks (RFC 7296 §3.1).
pub const IKE_MAJOR_VERSION: u8 = 2;

/// The UDP port IKE starts on (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;

/// The UDP port for NAT traversal and UDP-encapsulated ESP (RFC 3948 §2).
pub const NAT_T_PORT: u16 = 4500;

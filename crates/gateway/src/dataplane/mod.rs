//! The packet path, free of OS calls: what to do with a packet from the TUN
//! device ([`outbound`]) and with one from the WAN ([`inbound`]), plus the
//! counters both publish. The threads in `crate::worker` feed it.

pub mod icmp;
pub mod inbound;
pub mod outbound;
pub mod probe;
pub mod routing;
pub mod stats;

#[cfg(test)]
mod tests;

//! The packet path, free of OS calls: what to do with a packet from the TUN
//! device ([`outbound`]) and with one from the WAN ([`inbound`]), plus the
//! counters both publish. The threads in `crate::worker` feed it. With TUN
//! offloads, [`gso`] cuts the super-packets the kernel hands over and
//! [`gro`] coalesces what goes back to it ([`csum`] is their checksum).

pub mod csum;
pub mod gro;
pub mod gso;
pub mod icmp;
pub mod inbound;
pub mod outbound;
pub mod probe;
pub mod routing;
pub mod stats;

#[cfg(test)]
mod tests;

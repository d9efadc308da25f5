//! Errors of the policy crate, each message saying what would have been valid.

use std::net::IpAddr;

use ipnet::IpNet;

/// Why a traffic selector could not be built or parsed.
///
/// These come from configuration files and from peers' IKE payloads, so each
/// message names the offending value and the form that would be accepted.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// The start address is above the end address.
    #[error(
        "traffic selector range {start}..{end} is reversed: the start address must not be above the end address; write the lower address first"
    )]
    AddressRangeReversed {
        /// The start address given.
        start: IpAddr,
        /// The end address given.
        end: IpAddr,
    },
    /// The two ends of the range are of different address families.
    #[error(
        "traffic selector range {start}..{end} mixes IPv4 and IPv6: both ends must be of the same family (use two selectors for dual stack)"
    )]
    FamilyMismatch {
        /// The start address given.
        start: IpAddr,
        /// The end address given.
        end: IpAddr,
    },
    /// The start port is above the end port.
    #[error(
        "port range {start}-{end} is reversed: the start port must not be above the end port (0-65535 means any port)"
    )]
    PortRangeReversed {
        /// The start port given.
        start: u16,
        /// The end port given.
        end: u16,
    },
    /// A prefix was written with bits set after its prefix length.
    #[error(
        "{input:?} has host bits set after the prefix length; write the network address, {network}"
    )]
    HostBitsSet {
        /// The text as written.
        input: String,
        /// The prefix that was probably meant.
        network: IpNet,
    },
    /// The text is not any of the accepted forms.
    #[error(
        "invalid traffic selector {input:?}: {reason}; valid forms are a prefix (10.1.1.0/24, 2001:db8::/32), a single address (10.0.0.1), or a range (10.0.0.1-10.0.0.9 or 10.0.0.1..10.0.0.9), each optionally followed by [protocol/ports] such as [tcp/80-90], [udp/53], [icmp] or [47]"
    )]
    Syntax {
        /// The text as written.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
}

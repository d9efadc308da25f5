//! IKEv2 traffic selectors (RFC 7296 §3.13.1): an address range, an IP
//! protocol and a port range. They are what IKE negotiates, what the SPD
//! matches packets against, and what the daemon turns into kernel routes.

use std::cmp::{max, min};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};

use crate::error::SelectorError;
use crate::proto;

/// An IKEv2-style traffic selector (RFC 7296 §3.13.1): an address range, an
/// IP protocol (0 = any) and a port range.
///
/// A range rather than a prefix because that is what IKEv2 carries on the
/// wire: a peer may propose `10.0.0.5-10.0.0.9`, and narrowing two prefixes
/// can produce a range that no single prefix describes. For ICMP and ICMPv6
/// the "ports" are the message type (local end) and code (remote end), as
/// [`crate::FlowKey`] reports them.
///
/// The fields are public for pattern matching and for the IKE codec; build
/// values with [`TrafficSelector::new`] or [`TrafficSelector::from_subnet`] so
/// the invariants (`start <= end`, same family, `start_port <= end_port`)
/// hold. Methods stay panic-free even if they do not; they then simply match
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol number; 0 matches any protocol.
    pub proto: u8,
    /// First address of the range (inclusive).
    pub start: IpAddr,
    /// Last address of the range (inclusive), same family as `start`.
    pub end: IpAddr,
    /// First port of the range (inclusive).
    pub start_port: u16,
    /// Last port of the range (inclusive).
    pub end_port: u16,
}

impl TrafficSelector {
    /// All traffic to or from `net`: any protocol, any port. The host bits of
    /// `net` are ignored, so `10.1.1.5/24` means `10.1.1.0/24`.
    pub fn from_subnet(net: IpNet) -> Self {
        Self {
            proto: proto::ANY,
            start: net.network(),
            end: net.broadcast(),
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    /// A selector from its parts, checking what RFC 7296 requires of a
    /// well-formed one: start <= end in the same family, start_port <= end_port.
    pub fn new(
        proto: u8,
        start: IpAddr,
        end: IpAddr,
        start_port: u16,
        end_port: u16,
    ) -> Result<Self, SelectorError> {
        if start.is_ipv4() != end.is_ipv4() {
            return Err(SelectorError::FamilyMismatch { start, end });
        }
        if start > end {
            return Err(SelectorError::AddressRangeReversed { start, end });
        }
        if start_port > end_port {
            return Err(SelectorError::PortRangeReversed {
                start: start_port,
                end: end_port,
            });
        }
        Ok(Self {
            proto,
            start,
            end,
            start_port,
            end_port,
        })
    }

    /// Whether this selector is about IPv4 addresses (TS_IPV4_ADDR_RANGE on the wire).
    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    /// Whether the selector matches every protocol and every port, i.e. it
    /// says something about addresses only (what a kernel route can express).
    pub fn is_any_proto_and_port(&self) -> bool {
        self.proto == proto::ANY && self.start_port == 0 && self.end_port == u16::MAX
    }

    /// Whether `addr` is inside the address range (an address of the other
    /// family never is).
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        // `IpAddr`'s order puts every IPv4 address below every IPv6 one, so
        // the family check is what keeps a v6 address out of a v4 range.
        addr.is_ipv4() == self.is_ipv4() && self.start <= addr && addr <= self.end
    }

    /// Whether a packet's endpoint matches: addr in range, proto matches (0 =
    /// any), port in range. Packets of protocols without ports report port 0
    /// (see [`crate::FlowKey`]), so a port range of 0..=65535 matches them all.
    pub fn matches(&self, addr: IpAddr, proto: u8, port: u16) -> bool {
        self.contains_addr(addr)
            && (self.proto == proto::ANY || self.proto == proto)
            && self.start_port <= port
            && port <= self.end_port
    }

    /// The intersection of two selectors (RFC 7296 §2.9 narrowing): what a
    /// responder may accept of an initiator's proposal. `None` if the
    /// intersection is empty or the families differ. A protocol of 0 narrows
    /// to the other side's protocol.
    pub fn narrow(&self, other: &TrafficSelector) -> Option<TrafficSelector> {
        if self.is_ipv4() != other.is_ipv4() || other.start.is_ipv4() != other.end.is_ipv4() {
            return None;
        }
        let proto = match (self.proto, other.proto) {
            (proto::ANY, p) | (p, proto::ANY) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start = max(self.start, other.start);
        let end = min(self.end, other.end);
        let start_port = max(self.start_port, other.start_port);
        let end_port = min(self.end_port, other.end_port);
        if start > end || start_port > end_port {
            return None;
        }
        Some(TrafficSelector {
            proto,
            start,
            end,
            start_port,
            end_port,
        })
    }

    /// Whether every packet endpoint this selector matches is also matched by
    /// `other` (used to check that a narrowed proposal stays within policy).
    pub fn is_subset_of(&self, other: &TrafficSelector) -> bool {
        self.is_ipv4() == other.is_ipv4()
            && other.contains_addr(self.start)
            && other.contains_addr(self.end)
            && (other.proto == proto::ANY || other.proto == self.proto)
            && other.start_port <= self.start_port
            && self.end_port <= other.end_port
    }

    /// The address range as a single prefix, if it is exactly one. Does not
    /// allocate, unlike [`TrafficSelector::to_subnets`].
    pub fn as_prefix(&self) -> Option<IpNet> {
        let first = self.subnets().next()?;
        (first.broadcast() == self.end).then_some(first)
    }

    /// The smallest set of CIDR prefixes that exactly covers the address range,
    /// in address order: kernel routes and LPM tables only know prefixes.
    /// Ignores protocol and ports.
    pub fn to_subnets(&self) -> Vec<IpNet> {
        self.subnets().collect()
    }

    /// The covering prefixes, lazily; empty for a malformed (mixed-family) selector.
    fn subnets(&self) -> impl Iterator<Item = IpNet> {
        // ipnet's subnet iterators already produce the minimal aligned cover:
        // at each step the largest prefix that starts at the cursor and ends
        // inside the range.
        let (v4, v6) = match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => (Some(Ipv4Subnets::new(s, e, 0)), None),
            (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => (None, Some(Ipv6Subnets::new(s, e, 0))),
            _ => (None, None),
        };
        v4.into_iter()
            .flatten()
            .map(IpNet::V4)
            .chain(v6.into_iter().flatten().map(IpNet::V6))
    }
}

/// Whether a flow fits a connection's selector pair: one of the local
/// selectors matches the packet's local end and one of the remote selectors
/// its remote end (RFC 4301 §4.4.1: a SPD entry's selector sets are unions).
pub fn flow_matches(
    local: &[TrafficSelector],
    remote: &[TrafficSelector],
    local_addr: IpAddr,
    local_port: u16,
    remote_addr: IpAddr,
    remote_port: u16,
    proto: u8,
) -> bool {
    local
        .iter()
        .any(|ts| ts.matches(local_addr, proto, local_port))
        && remote
            .iter()
            .any(|ts| ts.matches(remote_addr, proto, remote_port))
}

/// Names used when printing and parsing the protocol, so configs read
/// `[tcp/443]` rather than `[6/443]`.
const PROTO_NAMES: &[(u8, &str)] = &[
    (proto::ANY, "any"),
    (proto::ICMP, "icmp"),
    (proto::TCP, "tcp"),
    (proto::UDP, "udp"),
    (proto::ICMPV6, "icmpv6"),
    (proto::SCTP, "sctp"),
];

impl fmt::Display for TrafficSelector {
    /// `10.1.1.0/24` when the range is exactly a prefix and any protocol and
    /// port match; otherwise the range `start..end` (or the prefix), followed
    /// by `[proto/ports]` when protocol or ports are restricted, e.g.
    /// `10.1.1.5..10.1.1.9[tcp/80-90]`. [`FromStr`] reads all of these back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_prefix() {
            Some(net) => write!(f, "{net}")?,
            None => write!(f, "{}..{}", self.start, self.end)?,
        }
        if self.is_any_proto_and_port() {
            return Ok(());
        }
        match PROTO_NAMES.iter().find(|(n, _)| *n == self.proto) {
            Some((_, name)) => write!(f, "[{name}")?,
            None => write!(f, "[{}", self.proto)?,
        }
        if self.start_port == 0 && self.end_port == u16::MAX {
            f.write_str("]")
        } else if self.start_port == self.end_port {
            write!(f, "/{}]", self.start_port)
        } else {
            write!(f, "/{}-{}]", self.start_port, self.end_port)
        }
    }
}

impl FromStr for TrafficSelector {
    type Err = SelectorError;

    /// Parses `10.1.1.0/24`, `2001:db8::/32`, a single address, a range
    /// `10.0.0.1-10.0.0.9` (or `..` as [`fmt::Display`] writes it), each
    /// optionally followed by `[proto]` or `[proto/port]` or
    /// `[proto/start-end]`, where proto is a name (tcp, udp, icmp, icmpv6,
    /// sctp, any) or a number.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let syntax = |reason| SelectorError::Syntax {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let (addrs, suffix) = match text.find('[') {
            Some(i) => {
                let rest = text.get(i + 1..).unwrap_or_default();
                let inner = rest
                    .strip_suffix(']')
                    .ok_or_else(|| syntax("the [protocol/ports] part must end with ']'"))?;
                (text.get(..i).unwrap_or_default().trim_end(), Some(inner))
            }
            None => (text, None),
        };
        if addrs.is_empty() {
            return Err(syntax("no address given"));
        }

        let (start, end) =
            if let Some((a, b)) = addrs.split_once("..").or_else(|| addrs.split_once('-')) {
                let a: IpAddr = a
                    .trim()
                    .parse()
                    .map_err(|_| syntax("the start of the range is not an IP address"))?;
                let b: IpAddr = b
                    .trim()
                    .parse()
                    .map_err(|_| syntax("the end of the range is not an IP address"))?;
                (a, b)
            } else if addrs.contains('/') {
                let net: IpNet = addrs
                    .parse()
                    .map_err(|_| syntax("not a valid prefix in address/length form"))?;
                if net.trunc() != net {
                    return Err(SelectorError::HostBitsSet {
                        input: input.to_owned(),
                        network: net.trunc(),
                    });
                }
                (net.network(), net.broadcast())
            } else {
                let a: IpAddr = addrs
                    .parse()
                    .map_err(|_| syntax("not an IP address, prefix or range"))?;
                (a, a)
            };

        let (proto, start_port, end_port) = match suffix {
            None => (proto::ANY, 0, u16::MAX),
            Some(inner) => parse_proto_ports(inner).map_err(syntax)?,
        };
        TrafficSelector::new(proto, start, end, start_port, end_port)
    }
}

/// Parses the inside of `[proto/ports]`; a reversed port range is left for
/// [`TrafficSelector::new`] to report with the numbers.
fn parse_proto_ports(inner: &str) -> Result<(u8, u16, u16), &'static str> {
    let (proto_text, ports_text) = match inner.split_once('/') {
        Some((p, ports)) => (p.trim(), Some(ports.trim())),
        None => (inner.trim(), None),
    };
    let proto = match PROTO_NAMES
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(proto_text))
    {
        Some((n, _)) => *n,
        None => proto_text.parse::<u8>().map_err(|_| {
            "unknown protocol: use tcp, udp, icmp, icmpv6, sctp, any or a number 0-255"
        })?,
    };
    let (start_port, end_port) = match ports_text {
        None => (0, u16::MAX),
        Some(ports) => {
            let port = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .map_err(|_| "ports must be numbers 0-65535, as 80 or 80-90")
            };
            match ports.split_once('-') {
                Some((a, b)) => (port(a)?, port(b)?),
                None => {
                    let p = port(ports)?;
                    (p, p)
                }
            }
        }
    };
    Ok((proto, start_port, end_port))
}

//! The Traffic Selector payloads (TSi, TSr), RFC 7296 §3.13.
//!
//! ```text
//! Payload body:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Number of TSs |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       <Traffic Selectors>                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Each selector (§3.13.1):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   TS Type     |IP Protocol ID*|       Selector Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Start Port*         |           End Port*           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Starting Address*                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Ending Address*                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use ipsecgw_policy::TrafficSelector;

use super::error::{InvalidMessage, Reader};

/// TS_IPV4_ADDR_RANGE, RFC 7296 §3.13.1.
pub const TS_IPV4_ADDR_RANGE: u8 = 7;
/// TS_IPV6_ADDR_RANGE, RFC 7296 §3.13.1.
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// Number of TSs and the reserved octets.
const FIXED_LEN: usize = 4;
/// Selector Length of an IPv4 range: 8 + 2 × 4.
const IPV4_SELECTOR_LEN: usize = 16;
/// Selector Length of an IPv6 range: 8 + 2 × 16.
const IPV6_SELECTOR_LEN: usize = 40;

/// Parses a TS payload body.
///
/// Checks Number of TSs against the selectors present and each Selector
/// Length against its type (16 for IPv4, 40 for IPv6). A type other than 7
/// and 8 is [`InvalidMessage::UnknownTrafficSelector`] (INVALID_SYNTAX on
/// the wire unless the caller maps it to TS_UNACCEPTABLE).
///
/// Ranges are taken as sent, not validated: start port 65535 with end port
/// 0 is how RFC 7296 §3.13.1 writes OPAQUE ports, and a reversed address
/// range simply matches nothing when narrowed. An empty payload (zero
/// selectors) parses; the state machine decides whether it is acceptable.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<TrafficSelector>, InvalidMessage> {
    if body.len() < FIXED_LEN {
        return Err(InvalidMessage::BadLength {
            what: "TS payload",
            len: body.len(),
        });
    }
    let mut r = Reader::new(body);
    let count = usize::from(r.u8("Number of TSs")?);
    r.take(3, "TS reserved")?;
    let mut out = Vec::with_capacity(count);
    while !r.is_empty() {
        let ts_type = r.u8("TS type")?;
        let proto = r.u8("TS protocol")?;
        let len = usize::from(r.u16("Selector Length")?);
        let expected = match ts_type {
            TS_IPV4_ADDR_RANGE => IPV4_SELECTOR_LEN,
            TS_IPV6_ADDR_RANGE => IPV6_SELECTOR_LEN,
            other => return Err(InvalidMessage::UnknownTrafficSelector(other)),
        };
        if len != expected {
            return Err(InvalidMessage::BadLength {
                what: "Selector Length",
                len,
            });
        }
        let start_port = r.u16("TS start port")?;
        let end_port = r.u16("TS end port")?;
        let (start, end) = if ts_type == TS_IPV4_ADDR_RANGE {
            (
                IpAddr::V4(Ipv4Addr::from(r.array::<4>("TS start address")?)),
                IpAddr::V4(Ipv4Addr::from(r.array::<4>("TS end address")?)),
            )
        } else {
            (
                IpAddr::V6(Ipv6Addr::from(r.array::<16>("TS start address")?)),
                IpAddr::V6(Ipv6Addr::from(r.array::<16>("TS end address")?)),
            )
        };
        out.push(TrafficSelector {
            proto,
            start,
            end,
            start_port,
            end_port,
        });
    }
    if out.len() != count {
        return Err(InvalidMessage::Syntax("Number of TSs does not match"));
    }
    Ok(out)
}

/// Emits a TS payload body. A selector whose start and end differ in family
/// (which [`TrafficSelector::new`] refuses to build) is emitted with the
/// type of its start and the end address mapped into that family; at most
/// 255 selectors are counted (the field is one octet).
pub(crate) fn emit(selectors: &[TrafficSelector], out: &mut Vec<u8>) {
    debug_assert!(selectors.len() <= 255, "more than 255 traffic selectors");
    out.push(selectors.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    for ts in selectors {
        match ts.start {
            IpAddr::V4(start) => {
                out.push(TS_IPV4_ADDR_RANGE);
                out.push(ts.proto);
                out.extend_from_slice(&(IPV4_SELECTOR_LEN as u16).to_be_bytes());
                out.extend_from_slice(&ts.start_port.to_be_bytes());
                out.extend_from_slice(&ts.end_port.to_be_bytes());
                out.extend_from_slice(&start.octets());
                let end = match ts.end {
                    IpAddr::V4(end) => end,
                    IpAddr::V6(end) => end.to_ipv4_mapped().unwrap_or(Ipv4Addr::BROADCAST),
                };
                out.extend_from_slice(&end.octets());
            }
            IpAddr::V6(start) => {
                out.push(TS_IPV6_ADDR_RANGE);
                out.push(ts.proto);
                out.extend_from_slice(&(IPV6_SELECTOR_LEN as u16).to_be_bytes());
                out.extend_from_slice(&ts.start_port.to_be_bytes());
                out.extend_from_slice(&ts.end_port.to_be_bytes());
                out.extend_from_slice(&start.octets());
                let end = match ts.end {
                    IpAddr::V6(end) => end,
                    IpAddr::V4(end) => end.to_ipv6_mapped(),
                };
                out.extend_from_slice(&end.octets());
            }
        }
    }
}

pub(crate) fn buffer_len(selectors: &[TrafficSelector]) -> usize {
    FIXED_LEN
        + selectors
            .iter()
            .map(|ts| match ts.start {
                IpAddr::V4(_) => IPV4_SELECTOR_LEN,
                IpAddr::V6(_) => IPV6_SELECTOR_LEN,
            })
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// 10.1.0.0/16 any protocol, all ports; then TCP port 443 to
    /// 2001:db8::/32 (RFC 7296 §3.13.1 layout).
    const TWO: &str = "
        02 000000
        07 00 0010 0000 ffff 0a010000 0a01ffff
        08 06 0028 01bb 01bb
           20010db8000000000000000000000000
           20010db8ffffffffffffffffffffffff";

    fn two() -> Vec<TrafficSelector> {
        vec![
            TrafficSelector::from_subnet("10.1.0.0/16".parse().unwrap()),
            TrafficSelector::new(
                6,
                "2001:db8::".parse().unwrap(),
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
                443,
                443,
            )
            .unwrap(),
        ]
    }

    #[test]
    fn deconstruct_and_construct() {
        let b = bytes(TWO);
        assert_eq!(parse(&b).unwrap(), two());
        let mut out = Vec::new();
        emit(&two(), &mut out);
        assert_eq!(out, b);
        assert_eq!(buffer_len(&two()), b.len());
    }

    #[test]
    fn truncated_buffers_fail() {
        let b = bytes(TWO);
        for len in 0..b.len() {
            assert!(parse(&b[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn bad_selectors() {
        let good = bytes(TWO);
        // Count too high / too low.
        for n in [3u8, 1, 0] {
            let mut b = good.clone();
            b[0] = n;
            assert!(parse(&b).is_err(), "count {n}");
        }
        // Selector length disagreeing with the type.
        let mut b = good.clone();
        b[7] = 0x28;
        assert!(matches!(parse(&b), Err(InvalidMessage::BadLength { .. })));
        // Unknown TS type (10 is TS_SECLABEL, RFC 9478).
        let mut b = good.clone();
        b[4] = 10;
        assert_eq!(parse(&b), Err(InvalidMessage::UnknownTrafficSelector(10)));
    }

    #[test]
    fn opaque_ports_and_empty_payloads_parse() {
        let b = bytes("01 000000 07 11 0010 ffff 0000 c0000201 c0000201");
        let ts = parse(&b).unwrap();
        assert_eq!((ts[0].start_port, ts[0].end_port), (65535, 0));
        assert_eq!(parse(&bytes("00 000000")).unwrap(), vec![]);
    }
}

//! The 5-tuple of an IP packet, read straight from the bytes the TUN device
//! hands over, for the SPD lookup on the data path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::proto;

/// IPv4 header without options (RFC 791 §3.1).
const IPV4_MIN_HEADER: usize = 20;
/// IPv6 fixed header (RFC 8200 §3).
const IPV6_HEADER: usize = 40;
/// The fragment offset field of the IPv4 flags/offset word (RFC 791 §3.1).
const IPV4_FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

/// IPv6 extension headers walked to find the upper-layer protocol
/// (RFC 8200 §4). Others (AH, ESP, no-next-header, unknown) end the walk and
/// are reported as the protocol, which is what a selector would name.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;
/// The fragment header has a fixed size (RFC 8200 §4.5).
const IPV6_FRAGMENT_HEADER: usize = 8;

/// The 5-tuple of an IP packet, parsed without allocation.
///
/// `src_port`/`dst_port` are the transport ports for TCP, UDP and SCTP. For
/// ICMP and ICMPv6 they carry the message type and code, the way IKEv2
/// traffic selectors express ICMP (RFC 7296 §3.13.1, RFC 4301 §4.4.1.1).
/// They are 0 for other protocols and for non-first fragments, whose ports
/// are not in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Source port, or ICMP type.
    pub src_port: u16,
    /// Destination port, or ICMP code.
    pub dst_port: u16,
}

impl FlowKey {
    /// Parses an IPv4 or IPv6 packet (the version nibble decides).
    ///
    /// Checks the IPv4 header length and total length against the buffer
    /// (trailing bytes beyond the total length are ignored, as link padding),
    /// and the IPv6 payload length likewise. IPv6 hop-by-hop, routing,
    /// fragment and destination-options headers are walked with every length
    /// checked. Returns `None` for anything malformed or truncated, including
    /// a first fragment too short to hold the ports: the caller drops it.
    pub fn from_ip_packet(pkt: &[u8]) -> Option<FlowKey> {
        match pkt.first()? >> 4 {
            4 => Self::from_ipv4(pkt),
            6 => Self::from_ipv6(pkt),
            _ => None,
        }
    }

    /// The same flow seen from the other end (source and destination swapped),
    /// e.g. to check an inbound packet against outbound-oriented selectors.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }

    fn from_ipv4(pkt: &[u8]) -> Option<FlowKey> {
        let hdr: &[u8; IPV4_MIN_HEADER] = pkt.get(..IPV4_MIN_HEADER)?.try_into().ok()?;
        let header_len = usize::from(hdr[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        if header_len < IPV4_MIN_HEADER || total_len < header_len || total_len > pkt.len() {
            return None;
        }
        let first_fragment = u16::from_be_bytes([hdr[6], hdr[7]]) & IPV4_FRAGMENT_OFFSET_MASK == 0;
        let proto = hdr[9];
        let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
        let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
        let payload = pkt.get(header_len..total_len)?;
        let (src_port, dst_port) = ports(proto, proto::ICMP, payload, first_fragment)?;
        Some(FlowKey {
            src: src.into(),
            dst: dst.into(),
            proto,
            src_port,
            dst_port,
        })
    }

    fn from_ipv6(pkt: &[u8]) -> Option<FlowKey> {
        let hdr: &[u8; IPV6_HEADER] = pkt.get(..IPV6_HEADER)?.try_into().ok()?;
        let payload_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        // A payload length of 0 with a jumbo option (RFC 2675) cannot occur on
        // a TUN device with a 16-bit MTU; such a packet fails the walk below.
        let pkt = pkt.get(..IPV6_HEADER + payload_len)?;
        let src = Ipv6Addr::from(*<&[u8; 16]>::try_from(hdr.get(8..24)?).ok()?);
        let dst = Ipv6Addr::from(*<&[u8; 16]>::try_from(hdr.get(24..40)?).ok()?);

        let mut next = hdr[6];
        let mut offset = IPV6_HEADER;
        let mut first_fragment = true;
        // Every extension header is at least 8 bytes long and `offset` only
        // grows, so the walk ends within len/8 steps.
        loop {
            match next {
                IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                    let ext = pkt.get(offset..offset.checked_add(2)?)?;
                    // RFC 8200 §4.3: length in 8-octet units, not counting the first 8.
                    let len = (usize::from(ext[1]) + 1) * 8;
                    let end = offset.checked_add(len)?;
                    if end > pkt.len() {
                        return None;
                    }
                    next = ext[0];
                    offset = end;
                }
                IPV6_FRAGMENT => {
                    let ext = pkt.get(offset..offset.checked_add(IPV6_FRAGMENT_HEADER)?)?;
                    next = ext[0];
                    offset += IPV6_FRAGMENT_HEADER;
                    // RFC 8200 §4.5: offset in the top 13 bits.
                    if u16::from_be_bytes([ext[2], ext[3]]) >> 3 != 0 {
                        // The rest is the middle of the upper-layer payload,
                        // not more headers.
                        first_fragment = false;
                        break;
                    }
                }
                _ => break,
            }
        }
        let payload = pkt.get(offset..)?;
        let (src_port, dst_port) = ports(next, proto::ICMPV6, payload, first_fragment)?;
        Some(FlowKey {
            src: src.into(),
            dst: dst.into(),
            proto: next,
            src_port,
            dst_port,
        })
    }
}

/// The (src_port, dst_port) pair of an upper-layer payload; `None` if the
/// protocol has ports but the payload is too short to hold them.
fn ports(proto: u8, icmp: u8, payload: &[u8], first_fragment: bool) -> Option<(u16, u16)> {
    if !first_fragment {
        return Some((0, 0));
    }
    match proto {
        proto::TCP | proto::UDP | proto::SCTP => {
            let p = payload.get(..4)?;
            Some((
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ))
        }
        p if p == icmp => {
            let t = payload.get(..2)?;
            Some((u16::from(t[0]), u16::from(t[1])))
        }
        _ => Some((0, 0)),
    }
}

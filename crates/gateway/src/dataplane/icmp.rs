//! ICMP errors the gateway itself originates towards its own site: "fragmentation
//! needed" (RFC 792, RFC 1191 §4) and ICMPv6 "packet too big" (RFC 4443 §3.2), so
//! path-MTU discovery works through the tunnel.
//!
//! They are written into the TUN device, so their source must not be one of
//! the gateway's own addresses: the kernel drops a packet arriving on an
//! interface with a local source (a martian). The outbound path sends them
//! from the original packet's destination, as if the far end of the tunnel
//! had answered; that address routes back through the TUN device, so
//! reverse-path filtering passes too.

use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 792: the original IP header plus the first 64 bits of its data.
const V4_QUOTE_EXTRA: usize = 8;
/// RFC 4443 §2.4(c): an ICMPv6 error must not exceed the minimum IPv6 MTU.
const V6_MIN_MTU: usize = 1280;
const DEFAULT_TTL: u8 = 64;

/// Writes an ICMPv4 "destination unreachable, fragmentation needed and DF
/// set" for `original` into `out`; returns its length, or `None` when the
/// original must not be answered (RFC 1812 §4.3.2.7: not for ICMP errors,
/// non-first fragments, or broadcast/multicast sources).
pub fn frag_needed_v4(original: &[u8], from: Ipv4Addr, mtu: u16, out: &mut [u8]) -> Option<usize> {
    let ihl = usize::from(original.first()? & 0x0f) * 4;
    if ihl < 20 || original.len() < ihl {
        return None;
    }
    let frag_offset = u16::from_be_bytes([original[6], original[7]]) & 0x1fff;
    let src = Ipv4Addr::new(original[12], original[13], original[14], original[15]);
    if frag_offset != 0 || src.is_multicast() || src.is_broadcast() || src.is_unspecified() {
        return None;
    }
    if original[9] == 1 {
        // Never answer an ICMP error with an ICMP error (RFC 1812 §4.3.2.7).
        let icmp_type = *original.get(ihl)?;
        if !matches!(icmp_type, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) {
            return None;
        }
    }
    let quote = original.len().min(ihl + V4_QUOTE_EXTRA);
    let total = 20 + 8 + quote;
    let out = out.get_mut(..total)?;
    out.fill(0);
    out[0] = 0x45;
    out[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    out[8] = DEFAULT_TTL;
    out[9] = 1; // ICMP
    out[12..16].copy_from_slice(&from.octets());
    out[16..20].copy_from_slice(&src.octets());
    let csum = checksum(&[&out[..20]]);
    out[10..12].copy_from_slice(&csum.to_be_bytes());
    out[20] = 3; // destination unreachable
    out[21] = 4; // fragmentation needed and DF set
    out[26..28].copy_from_slice(&mtu.to_be_bytes()); // next-hop MTU, RFC 1191 §4
    out[28..].copy_from_slice(&original[..quote]);
    let csum = checksum(&[&out[20..]]);
    out[22..24].copy_from_slice(&csum.to_be_bytes());
    Some(total)
}

/// Writes an ICMPv6 "packet too big" for `original` into `out`; returns its
/// length, or `None` if the original must not be answered (RFC 4443 §2.4(e)).
pub fn packet_too_big_v6(
    original: &[u8],
    from: Ipv6Addr,
    mtu: u32,
    out: &mut [u8],
) -> Option<usize> {
    if original.len() < 40 {
        return None;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&original[8..24]).ok()?);
    if src.is_multicast() || src.is_unspecified() {
        return None;
    }
    if original[6] == 58 && original.get(40).is_some_and(|t| *t < 128) {
        return None; // an ICMPv6 error message
    }
    let quote = original.len().min(V6_MIN_MTU - 40 - 8);
    let payload = 8 + quote;
    let total = 40 + payload;
    let out = out.get_mut(..total)?;
    out.fill(0);
    out[0] = 0x60;
    out[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    out[6] = 58; // ICMPv6
    out[7] = DEFAULT_TTL;
    out[8..24].copy_from_slice(&from.octets());
    out[24..40].copy_from_slice(&src.octets());
    out[40] = 2; // packet too big
    out[44..48].copy_from_slice(&mtu.to_be_bytes());
    out[48..].copy_from_slice(&original[..quote]);
    // RFC 8200 §8.1 pseudo-header: source, destination, length, next header.
    let len = (payload as u32).to_be_bytes();
    let nh = [0, 0, 0, 58];
    let (pseudo_src, pseudo_dst) = (from.octets(), src.octets());
    let csum = checksum(&[&pseudo_src, &pseudo_dst, &len, &nh, &out[40..]]);
    out[42..44].copy_from_slice(&csum.to_be_bytes());
    Some(total)
}

/// The Internet checksum (RFC 1071) over several slices laid end to end;
/// every slice but the last must have an even length.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_packet(len: usize, proto: u8) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&[10, 1, 1, 10]);
        p[16..20].copy_from_slice(&[192, 168, 4, 10]);
        let c = checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn frag_needed_is_well_formed() {
        let orig = v4_packet(1500, 6);
        let mut out = [0u8; 128];
        let n = frag_needed_v4(&orig, Ipv4Addr::new(10, 1, 1, 1), 1400, &mut out).unwrap();
        let reply = &out[..n];
        assert_eq!(n, 20 + 8 + 28);
        assert_eq!(checksum(&[&reply[..20]]), 0, "IP header checksum verifies");
        assert_eq!(checksum(&[&reply[20..]]), 0, "ICMP checksum verifies");
        assert_eq!(&reply[16..20], &[10, 1, 1, 10], "sent back to the source");
        assert_eq!((reply[20], reply[21]), (3, 4));
        assert_eq!(u16::from_be_bytes([reply[26], reply[27]]), 1400);
        assert_eq!(&reply[28..], &orig[..28]);
    }

    #[test]
    fn icmp_errors_are_not_answered() {
        let mut orig = v4_packet(1500, 1);
        orig[20] = 3; // an ICMP error itself
        let mut out = [0u8; 128];
        assert!(frag_needed_v4(&orig, Ipv4Addr::new(10, 1, 1, 1), 1400, &mut out).is_none());
        orig[20] = 8; // echo request: answered
        assert!(frag_needed_v4(&orig, Ipv4Addr::new(10, 1, 1, 1), 1400, &mut out).is_some());
        assert!(frag_needed_v4(&orig[..10], Ipv4Addr::new(10, 1, 1, 1), 1400, &mut out).is_none());
    }

    #[test]
    fn packet_too_big_is_well_formed() {
        let mut orig = vec![0u8; 1500];
        orig[0] = 0x60;
        orig[4..6].copy_from_slice(&1460u16.to_be_bytes());
        orig[6] = 17;
        orig[8..24].copy_from_slice(&"2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets());
        orig[24..40].copy_from_slice(&"2001:db8:4::10".parse::<Ipv6Addr>().unwrap().octets());
        let mut out = vec![0u8; 1500];
        let from: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let n = packet_too_big_v6(&orig, from, 1400, &mut out).unwrap();
        assert_eq!(n, 1280, "no larger than the IPv6 minimum MTU");
        let r = &out[..n];
        let len = ((n - 40) as u32).to_be_bytes();
        assert_eq!(
            checksum(&[&r[8..24], &r[24..40], &len, &[0, 0, 0, 58], &r[40..]]),
            0
        );
        assert_eq!(r[40], 2);
        assert_eq!(u32::from_be_bytes([r[44], r[45], r[46], r[47]]), 1400);
        assert_eq!(&r[24..40], &orig[8..24]);
    }
}

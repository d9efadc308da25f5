//! Segmentation on the outbound path. With TUN offloads on, the kernel hands
//! the gateway TCP (and UDP) super-packets of up to 64 KiB behind a
//! virtio-net header instead of one read per MTU-sized packet; they are cut
//! here into packets that each fit the tunnel, headers and checksums fixed,
//! and each is then encrypted into its own ESP packet. Packets the kernel
//! left with a partial checksum (`NEEDS_CSUM`) get it completed.
//!
//! Sans-IO: [`VnetHdr`] parses what the TUN device prepends, [`Segmenter`]
//! describes a super-packet once and writes segment `i` into a caller-owned
//! buffer on demand, so a batch can stop mid-packet and go on later; no
//! allocation. Malformed headers are errors the caller counts, never panics.

use super::csum;

/// Bytes of `struct virtio_net_hdr` in front of every packet (the TUN
/// default, without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` holds only the pseudo-header sum; complete it.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: the first segment carries CWR.
pub const GSO_ECN: u8 = 0x80;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
/// TCP checksum offset in its header (RFC 9293 §3.1).
pub const TCP_CSUM_OFFSET: u16 = 16;
const UDP_CSUM_OFFSET: usize = 6;

/// The virtio-net header the TUN device reads and writes in front of each
/// packet (legacy virtio: the host's byte order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM` or 0 (`DATA_VALID` is ignored).
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers in front of the payload (a hint: the kernel's
    /// may cover the whole first packet, so it is recomputed).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed part starts (the L4 header).
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header from the first [`VNET_HDR_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's bytes.
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// Why a packet from the TUN device could not be used (counted as malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    /// Shorter than its headers claim.
    #[error("packet shorter than its headers")]
    Truncated,
    /// A GSO type this code does not cut (UFO, or unknown).
    #[error("unsupported GSO type {0:#x}")]
    UnsupportedType(u8),
    /// Headers inconsistent with the GSO type (wrong IP version or
    /// protocol, IPv4 options or fragments, IPv6 extension headers, a zero
    /// segment size, a checksum offset outside the packet).
    #[error("headers do not match the virtio-net header")]
    BadHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

/// A super-packet described once, cut on demand: segment `i` carries
/// payload bytes `i * seg ..` and a copy of the headers, fixed.
#[derive(Debug, Clone, Copy)]
pub struct Segmenter {
    v6: bool,
    l4: L4,
    /// Offset of the TCP/UDP header (= IP header length).
    l4_off: usize,
    /// IP + TCP/UDP header length.
    hdr_len: usize,
    /// Payload bytes per segment.
    seg: usize,
    /// Payload bytes in all.
    payload: usize,
    count: usize,
}

impl Segmenter {
    /// Describes `pkt` as the kernel handed it with `hdr` (whose `gso_type`
    /// is not [`GSO_NONE`]). Checks every length it will use.
    pub fn new(hdr: &VnetHdr, pkt: &[u8]) -> Result<Self, GsoError> {
        let (l4, v6) = match hdr.gso_type & !GSO_ECN {
            GSO_TCPV4 => (L4::Tcp, Some(false)),
            GSO_TCPV6 => (L4::Tcp, Some(true)),
            GSO_UDP_L4 => (L4::Udp, None),
            other => return Err(GsoError::UnsupportedType(other)),
        };
        let version = pkt.first().ok_or(GsoError::Truncated)? >> 4;
        let is_v6 = match version {
            4 => false,
            6 => true,
            _ => return Err(GsoError::BadHeader),
        };
        if v6.is_some_and(|v| v != is_v6) {
            return Err(GsoError::BadHeader);
        }
        let proto = match l4 {
            L4::Tcp => PROTO_TCP,
            L4::Udp => PROTO_UDP,
        };
        let l4_off = if is_v6 {
            if pkt.len() < 40 {
                return Err(GsoError::Truncated);
            }
            if pkt[6] != proto {
                return Err(GsoError::BadHeader);
            }
            40
        } else {
            if pkt.len() < 20 {
                return Err(GsoError::Truncated);
            }
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            // Options would be copied as they are, but fragments cannot be
            // cut; keep to the shape TSO produces.
            let frag = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff;
            if ihl < 20 || pkt[9] != proto || frag != 0 {
                return Err(GsoError::BadHeader);
            }
            ihl
        };
        if hdr.flags & F_NEEDS_CSUM != 0 && usize::from(hdr.csum_start) != l4_off {
            return Err(GsoError::BadHeader);
        }
        let l4_len = match l4 {
            L4::Tcp => {
                let doff = usize::from(pkt.get(l4_off + 12).ok_or(GsoError::Truncated)? >> 4) * 4;
                if doff < 20 {
                    return Err(GsoError::BadHeader);
                }
                doff
            }
            L4::Udp => 8,
        };
        let hdr_len = l4_off + l4_len;
        if pkt.len() < hdr_len {
            return Err(GsoError::Truncated);
        }
        let seg = usize::from(hdr.gso_size);
        if seg == 0 {
            return Err(GsoError::BadHeader);
        }
        let payload = pkt.len() - hdr_len;
        Ok(Self {
            v6: is_v6,
            l4,
            l4_off,
            hdr_len,
            seg,
            payload,
            count: payload.div_ceil(seg).max(1),
        })
    }

    /// How many packets the super-packet becomes.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The largest segment [`Self::segment`] writes.
    pub fn max_segment(&self) -> usize {
        self.hdr_len + self.seg.min(self.payload)
    }

    /// Cuts TCP segments smaller so that each packet is at most
    /// `max_packet` bytes (the connection's largest inner packet): TCP is a
    /// byte stream and any cut is valid, so a super-packet is never "too
    /// big". UDP datagrams keep their size (each is a message).
    pub fn clamp(&mut self, max_packet: usize) {
        if self.l4 == L4::Tcp && max_packet > self.hdr_len {
            let seg = self.seg.min(max_packet - self.hdr_len);
            if seg != self.seg {
                self.seg = seg;
                self.count = self.payload.div_ceil(seg).max(1);
            }
        }
    }

    /// Writes segment `i` of `pkt` (the packet [`Self::new`] described)
    /// into `out`; returns its length, or `None` if `i` is past the end or
    /// `out` is too small.
    pub fn segment(&self, pkt: &[u8], i: usize, out: &mut [u8]) -> Option<usize> {
        if i >= self.count {
            return None;
        }
        let start = i * self.seg;
        let end = (start + self.seg).min(self.payload);
        let chunk = pkt.get(self.hdr_len + start..self.hdr_len + end)?;
        let total = self.hdr_len + chunk.len();
        let out = out.get_mut(..total)?;
        out[..self.hdr_len].copy_from_slice(pkt.get(..self.hdr_len)?);
        out[self.hdr_len..].copy_from_slice(chunk);

        let l4_len = total - self.l4_off;
        if self.v6 {
            out[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        } else {
            out[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            let id = u16::from_be_bytes([out[4], out[5]]).wrapping_add(i as u16);
            out[4..6].copy_from_slice(&id.to_be_bytes());
            csum::fix_ipv4_header(&mut out[..self.l4_off]);
        }
        let l4 = self.l4_off;
        let csum_at = match self.l4 {
            L4::Tcp => {
                let seq = u32::from_be_bytes([out[l4 + 4], out[l4 + 5], out[l4 + 6], out[l4 + 7]])
                    .wrapping_add(start as u32);
                out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
                if i + 1 != self.count {
                    out[l4 + 13] &= !(TCP_FIN | TCP_PSH);
                }
                if i != 0 {
                    out[l4 + 13] &= !TCP_CWR;
                }
                l4 + usize::from(TCP_CSUM_OFFSET)
            }
            L4::Udp => {
                out[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l4 + UDP_CSUM_OFFSET
            }
        };
        out[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
        let proto = match self.l4 {
            L4::Tcp => PROTO_TCP,
            L4::Udp => PROTO_UDP,
        };
        let sum = csum::pseudo_header(out, proto, l4_len)?;
        let c = csum::finish(csum::add(sum, &out[l4..]));
        out[csum_at..csum_at + 2].copy_from_slice(&c);
        Some(total)
    }
}

/// Completes the partial checksum of a packet the kernel handed over with
/// [`F_NEEDS_CSUM`] and no GSO: the field holds the pseudo-header sum, the
/// rest is summed from `csum_start` to the end.
pub fn complete_checksum(pkt: &mut [u8], hdr: &VnetHdr) -> Result<(), GsoError> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if at + 2 > pkt.len() {
        return Err(GsoError::BadHeader);
    }
    let c = csum::finish(csum::add(0, &pkt[start..]));
    pkt[at..at + 2].copy_from_slice(&c);
    Ok(())
}

/// A virtio-net header that makes a plain TCP packet of more than `fit`
/// bytes a one-segment super-packet for [`Segmenter`] (which then cuts it to
/// the connection's size); `None` for anything else.
pub fn tcp_as_gso(hdr: &VnetHdr, pkt: &[u8], fit: usize) -> Option<VnetHdr> {
    if hdr.gso_type != GSO_NONE || pkt.len() <= fit {
        return None;
    }
    let (gso_type, l4, proto) = match pkt.first()? >> 4 {
        4 => (GSO_TCPV4, usize::from(pkt[0] & 0x0f) * 4, *pkt.get(9)?),
        6 => (GSO_TCPV6, 40, *pkt.get(6)?),
        _ => return None,
    };
    // Fragments stay as they are (and get the ICMP error if too big).
    let fragment =
        gso_type == GSO_TCPV4 && u16::from_be_bytes([*pkt.get(6)?, *pkt.get(7)?]) & 0x3fff != 0;
    if proto != 6 || fragment {
        return None;
    }
    Some(VnetHdr {
        gso_type,
        gso_size: u16::try_from(pkt.len()).unwrap_or(u16::MAX),
        csum_start: l4 as u16,
        csum_offset: TCP_CSUM_OFFSET,
        ..*hdr
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A TCP/IPv4 or IPv6 super-packet as the kernel hands it over: full
    /// lengths, IPv4 header checksum valid, TCP checksum field holding the
    /// pseudo-header sum (NEEDS_CSUM).
    pub(crate) fn super_packet(v6: bool, payload: &[u8], flags: u8, options: &[u8]) -> Vec<u8> {
        let doff = 20 + options.len();
        let ip_len = if v6 { 40 } else { 20 };
        let total = ip_len + doff + payload.len();
        let mut p = vec![0u8; total];
        if v6 {
            p[0] = 0x60;
            p[1] = 0x02; // traffic class / flow label bits
            p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            p[6] = PROTO_TCP;
            p[7] = 64;
            p[8..24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p[24..40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            p[6] = 0x40; // DF
            p[8] = 64;
            p[9] = PROTO_TCP;
            p[12..16].copy_from_slice(&[10, 1, 1, 10]);
            p[16..20].copy_from_slice(&[192, 168, 4, 10]);
            csum::fix_ipv4_header(&mut p[..20]);
        }
        let t = ip_len;
        p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&5001u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&0xffff_fff0u32.to_be_bytes()); // wraps
        p[t + 8..t + 12].copy_from_slice(&77u32.to_be_bytes());
        p[t + 12] = ((doff / 4) as u8) << 4;
        p[t + 13] = flags;
        p[t + 14..t + 16].copy_from_slice(&512u16.to_be_bytes());
        p[t + 20..t + doff].copy_from_slice(options);
        p[t + doff..].copy_from_slice(payload);
        let pseudo = csum::pseudo_header(&p, PROTO_TCP, total - t).unwrap();
        p[t + 16..t + 18].copy_from_slice(&csum::fold(pseudo).to_ne_bytes());
        p
    }

    pub(crate) fn hdr_for(v6: bool, pkt: &[u8], gso_size: u16) -> VnetHdr {
        let l4 = if v6 { 40 } else { 20 };
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: pkt.len() as u16, // the kernel's hint may be this large
            gso_size,
            csum_start: l4,
            csum_offset: TCP_CSUM_OFFSET,
        }
    }

    /// Whether the IPv4 header and the TCP/UDP checksum of `p` verify.
    pub(crate) fn checksums_verify(p: &[u8]) -> bool {
        let (l4, proto) = if p[0] >> 4 == 6 {
            (40, p[6])
        } else {
            let ihl = usize::from(p[0] & 15) * 4;
            if csum::fold(csum::add(0, &p[..ihl])) != 0xffff {
                return false;
            }
            (ihl, p[9])
        };
        let sum = csum::pseudo_header(p, proto, p.len() - l4).unwrap();
        csum::fold(csum::add(sum, &p[l4..])) == 0xffff
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn vnet_header_round_trips() {
        let h = VnetHdr {
            flags: 1,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 74,
            gso_size: 1348,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.emit()), Some(h));
        assert_eq!(VnetHdr::parse(&[0; 9]), None);
    }

    #[test]
    fn cuts_a_tcp_super_packet_into_valid_segments() {
        for v6 in [false, true] {
            let data = payload(10_000);
            let pkt = super_packet(
                v6,
                &data,
                0x18 | TCP_FIN,
                &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            );
            let s = Segmenter::new(&hdr_for(v6, &pkt, 1400), &pkt).unwrap();
            assert_eq!(s.count(), 8);
            let hl = if v6 { 40 + 32 } else { 20 + 32 };
            let mut out = vec![0u8; 2000];
            let mut joined = Vec::new();
            for i in 0..s.count() {
                let n = s.segment(&pkt, i, &mut out).unwrap();
                let seg = &out[..n];
                assert!(checksums_verify(seg), "segment {i} (v6 {v6})");
                assert_eq!(n - hl, if i < 7 { 1400 } else { 10_000 - 7 * 1400 });
                let t = if v6 { 40 } else { 20 };
                let seq = u32::from_be_bytes(seg[t + 4..t + 8].try_into().unwrap());
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add(i as u32 * 1400));
                let flags = seg[t + 13];
                assert_eq!(flags & (TCP_FIN | TCP_PSH) != 0, i == 7, "flags {flags:#x}");
                if v6 {
                    assert_eq!(usize::from(u16::from_be_bytes([seg[4], seg[5]])), n - 40);
                } else {
                    assert_eq!(usize::from(u16::from_be_bytes([seg[2], seg[3]])), n);
                    assert_eq!(u16::from_be_bytes([seg[4], seg[5]]), 0x1234 + i as u16);
                }
                joined.extend_from_slice(&seg[hl..]);
            }
            assert_eq!(joined, data);
            assert!(s.segment(&pkt, 8, &mut out).is_none());
        }
    }

    #[test]
    fn clamps_tcp_segments_to_the_tunnel() {
        let pkt = super_packet(false, &payload(4000), 0x10, &[]);
        let mut s = Segmenter::new(&hdr_for(false, &pkt, 1460), &pkt).unwrap();
        assert_eq!(s.count(), 3);
        s.clamp(1000);
        assert_eq!(s.max_segment(), 1000);
        assert_eq!(s.count(), 5);
        let mut out = [0u8; 1500];
        for i in 0..5 {
            let n = s.segment(&pkt, i, &mut out).unwrap();
            assert!(n <= 1000 && checksums_verify(&out[..n]));
        }
    }

    #[test]
    fn cuts_udp_l4_super_packets() {
        // IPv4 UDP, 3 datagrams of 100 bytes and one of 50.
        let mut p = vec![0u8; 28 + 350];
        p[0] = 0x45;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_UDP;
        p[12..16].copy_from_slice(&[10, 1, 1, 10]);
        p[16..20].copy_from_slice(&[192, 168, 4, 10]);
        csum::fix_ipv4_header(&mut p[..20]);
        p[28..].copy_from_slice(&payload(350));
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            hdr_len: 28,
            gso_size: 100,
            csum_start: 20,
            csum_offset: 6,
        };
        let mut s = Segmenter::new(&hdr, &p).unwrap();
        s.clamp(60); // datagrams are never cut smaller
        assert_eq!(s.count(), 4);
        let mut out = [0u8; 200];
        for i in 0..4 {
            let n = s.segment(&p, i, &mut out).unwrap();
            assert_eq!(n, 28 + if i < 3 { 100 } else { 50 });
            assert_eq!(usize::from(u16::from_be_bytes([out[24], out[25]])), n - 20);
            assert!(checksums_verify(&out[..n]));
        }
    }

    #[test]
    fn completes_a_partial_checksum() {
        let mut pkt = super_packet(false, &payload(333), 0x18, &[]);
        assert!(!checksums_verify(&pkt));
        complete_checksum(&mut pkt, &hdr_for(false, &[], 0)).unwrap();
        assert!(checksums_verify(&pkt));
        let bad = VnetHdr {
            csum_start: 400,
            ..hdr_for(false, &[], 0)
        };
        assert_eq!(complete_checksum(&mut pkt, &bad), Err(GsoError::BadHeader));
    }

    #[test]
    fn malformed_headers_are_errors() {
        let pkt = super_packet(false, &payload(3000), 0x10, &[]);
        let h = hdr_for(false, &pkt, 1000);
        assert!(Segmenter::new(&h, &pkt[..30]).is_err());
        assert!(Segmenter::new(&h, &[]).is_err());
        assert_eq!(
            Segmenter::new(&VnetHdr { gso_size: 0, ..h }, &pkt).unwrap_err(),
            GsoError::BadHeader
        );
        assert_eq!(
            Segmenter::new(&VnetHdr { gso_type: 3, ..h }, &pkt).unwrap_err(),
            GsoError::UnsupportedType(3)
        );
        assert_eq!(
            Segmenter::new(
                &VnetHdr {
                    gso_type: GSO_TCPV6,
                    ..h
                },
                &pkt
            )
            .unwrap_err(),
            GsoError::BadHeader
        );
        assert_eq!(
            Segmenter::new(
                &VnetHdr {
                    csum_start: 24,
                    ..h
                },
                &pkt
            )
            .unwrap_err(),
            GsoError::BadHeader
        );
        let mut frag = pkt.clone();
        frag[6] |= 0x20;
        assert!(Segmenter::new(&h, &frag).is_err());
        let mut doff = pkt.clone();
        doff[32] = 0x40;
        assert!(Segmenter::new(&h, &doff).is_err());
    }

    #[test]
    fn a_plain_tcp_packet_too_big_for_the_tunnel_is_cut_too() {
        let pkt = super_packet(false, &payload(1448), 0x18, &[]);
        let mut full = pkt.clone();
        complete_checksum(&mut full, &hdr_for(false, &[], 0)).unwrap();
        let none = VnetHdr::default();
        assert_eq!(tcp_as_gso(&none, &full, 1500), None);
        let h = tcp_as_gso(&none, &full, 1000).unwrap();
        let mut s = Segmenter::new(&h, &full).unwrap();
        assert_eq!(s.count(), 1);
        s.clamp(1000);
        assert_eq!(s.count(), 2);
        let mut out = [0u8; 1500];
        let mut joined = Vec::new();
        for i in 0..2 {
            let n = s.segment(&full, i, &mut out).unwrap();
            assert!(n <= 1000 && checksums_verify(&out[..n]));
            joined.extend_from_slice(&out[40..n]);
        }
        assert_eq!(joined, payload(1448));
        // Not TCP, or a fragment: left alone.
        let mut udp = full.clone();
        udp[9] = 17;
        assert_eq!(tcp_as_gso(&none, &udp, 1000), None);
        let mut frag = full.clone();
        frag[6] |= 0x20;
        assert_eq!(tcp_as_gso(&none, &frag, 1000), None);
        assert_eq!(tcp_as_gso(&none, &[], 0), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            hdr in proptest::collection::vec(proptest::num::u8::ANY, 10),
        ) {
            let mut h = VnetHdr::parse(&hdr).unwrap();
            h.gso_type &= 0x87;
            let mut out = [0u8; 256];
            if let Ok(mut s) = Segmenter::new(&h, &bytes) {
                s.clamp(usize::from(hdr[0]));
                for i in 0..s.count().min(300) {
                    let _ = s.segment(&bytes, i, &mut out);
                }
            }
            let mut b = bytes.clone();
            let _ = complete_checksum(&mut b, &h);
        }
    }
}

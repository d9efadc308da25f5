//! Coalescing on the inbound path (GRO-style): consecutive in-order TCP
//! segments of one flow that arrived in the same receive batch become one
//! super-packet, written to the TUN device once with a virtio-net header
//! (`gso_type` TCPV4/TCPV6, `gso_size`, `NEEDS_CSUM`); the kernel then
//! carries it as one packet up to the LAN (and cuts it only if it must).
//!
//! Segments are merged only when nothing is lost: same addresses and ports,
//! sequence numbers contiguous, identical headers apart from the fields that
//! legitimately differ (IPv4 length, ID and checksum; TCP sequence number,
//! window and checksum), flags ACK with PSH only on the last, all payloads
//! the size of the first except a shorter last one, at most 64 KiB.
//! Everything else is written on its own, as it came.
//!
//! Sans-IO and zero-copy: [`Coalescer::push`] plans, per packet index, what
//! belongs together; [`Coalescer::finish`] rewrites only the first
//! packet's headers; the writer then hands the kernel the first packet and
//! the payloads of the others as one vectored write.

use std::ops::Range;

use super::csum;
use super::gso::{VnetHdr, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, TCP_CSUM_OFFSET};

const PROTO_TCP: u8 = 6;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
/// Largest coalesced packet (IPv4 total length, IPv6 payload length).
const MAX_TOTAL: usize = 65_535;
/// Most segments in one super-packet (bounds the vectored write).
pub const MAX_SEGMENTS: usize = 64;
/// Largest header kept per group: IPv6 (40) + TCP with options (60).
const MAX_HDR: usize = 100;
/// How many recent groups a packet is matched against.
const LOOKBACK: usize = 16;
const NONE: u32 = u32::MAX;

/// What [`Coalescer::push`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not pushed (dropped, or taken off the path).
    Absent,
    /// Written on its own, unchanged.
    Single,
    /// First packet of group `n`: written with the group's members.
    Head(u32),
    /// Appended to an earlier head; not written on its own.
    Member,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    head: u32,
    tail: u32,
    v6: bool,
    l4_off: u16,
    hdr_len: u16,
    /// Payload of the first segment: every other is this size but the last.
    seg: u16,
    payload: u32,
    segs: u16,
    next_seq: u32,
    open: bool,
    psh: bool,
    hdr: [u8; MAX_HDR],
}

/// A TCP segment's parsed shape.
struct Tcp {
    v6: bool,
    l4_off: usize,
    hdr_len: usize,
    payload: usize,
    seq: u32,
    psh: bool,
}

/// The coalescing plan for one batch; allocated once, reused.
#[derive(Debug)]
pub struct Coalescer {
    roles: Vec<Role>,
    next: Vec<u32>,
    groups: Vec<Group>,
    max_groups: usize,
    /// One past the highest index pushed since the last clear.
    used: usize,
}

impl Coalescer {
    /// Room for `packets` packets per batch and `groups` super-packets.
    pub fn new(packets: usize, groups: usize) -> Self {
        Self {
            roles: vec![Role::Absent; packets],
            next: vec![NONE; packets],
            groups: Vec::with_capacity(groups),
            max_groups: groups,
            used: 0,
        }
    }

    /// Forgets the last batch's plan.
    pub fn clear(&mut self) {
        // Only what the last batch touched: batches are often small.
        if let Some(used) = self.roles.get_mut(..self.used) {
            used.fill(Role::Absent);
        }
        self.used = 0;
        self.groups.clear();
    }

    /// What became of packet `idx`.
    pub fn role(&self, idx: usize) -> Role {
        self.roles.get(idx).copied().unwrap_or(Role::Absent)
    }

    /// Offers packet `idx` (indices increase in arrival order) with its bytes.
    pub fn push(&mut self, idx: usize, pkt: &[u8]) -> Role {
        let role = self.place(idx, pkt);
        if let Some(r) = self.roles.get_mut(idx) {
            *r = role;
            self.used = self.used.max(idx + 1);
        }
        role
    }

    fn place(&mut self, idx: usize, pkt: &[u8]) -> Role {
        if idx >= self.roles.len() {
            return Role::Single;
        }
        let Some(t) = parse(pkt) else {
            return Role::Single;
        };
        let lookback = self.groups.len().saturating_sub(LOOKBACK);
        if let Some(gi) = (lookback..self.groups.len())
            .rev()
            .find(|&g| self.groups[g].open && same_flow(&self.groups[g], &t, pkt))
        {
            let g = &mut self.groups[gi];
            if can_append(g, &t, pkt) {
                self.next[g.tail as usize] = idx as u32;
                self.next[idx] = NONE;
                g.tail = idx as u32;
                g.payload += t.payload as u32;
                g.segs += 1;
                g.next_seq = t.seq.wrapping_add(t.payload as u32);
                g.psh = t.psh;
                if t.psh
                    || t.payload < usize::from(g.seg)
                    || usize::from(g.segs) >= MAX_SEGMENTS
                    || usize::from(g.hdr_len) + g.payload as usize + usize::from(g.seg) > MAX_TOTAL
                {
                    g.open = false;
                }
                return Role::Member;
            }
            // Out of order, different headers: the flow starts afresh here.
            g.open = false;
        }
        if t.psh || self.groups.len() >= self.max_groups {
            return Role::Single;
        }
        let mut hdr = [0u8; MAX_HDR];
        hdr[..t.hdr_len].copy_from_slice(&pkt[..t.hdr_len]);
        self.next[idx] = NONE;
        self.groups.push(Group {
            head: idx as u32,
            tail: idx as u32,
            v6: t.v6,
            l4_off: t.l4_off as u16,
            hdr_len: t.hdr_len as u16,
            seg: t.payload as u16,
            payload: t.payload as u32,
            segs: 1,
            next_seq: t.seq.wrapping_add(t.payload as u32),
            open: true,
            psh: false,
            hdr,
        });
        Role::Head((self.groups.len() - 1) as u32)
    }

    /// How many segments group `g` holds (1: write the head unchanged).
    pub fn segments(&self, g: u32) -> usize {
        self.groups
            .get(g as usize)
            .map_or(0, |g| usize::from(g.segs))
    }

    /// The packets after the head of group `g`, in order.
    pub fn members(&self, g: u32) -> Members<'_> {
        let first = self
            .groups
            .get(g as usize)
            .map_or(NONE, |g| self.next[g.head as usize]);
        Members {
            next: &self.next,
            at: first,
        }
    }

    /// The part of each member packet that follows the head: its payload.
    pub fn member_payload(&self, g: u32) -> Range<usize> {
        self.groups
            .get(g as usize)
            .map_or(0..0, |g| usize::from(g.hdr_len)..usize::MAX)
    }

    /// Rewrites the head packet `head` of group `g` (more than one segment)
    /// into the super-packet's headers: lengths, IPv4 header checksum, PSH
    /// from the last segment, and the TCP checksum field holding the
    /// pseudo-header sum for the kernel to complete. Returns the
    /// virtio-net header to write in front of it.
    pub fn finish(&self, g: u32, head: &mut [u8]) -> Option<VnetHdr> {
        let g = self.groups.get(g as usize)?;
        let l4 = usize::from(g.l4_off);
        let hdr_len = usize::from(g.hdr_len);
        if head.len() < hdr_len {
            return None;
        }
        let total = hdr_len + g.payload as usize;
        if g.v6 {
            head[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
        } else {
            head[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            csum::fix_ipv4_header(&mut head[..l4]);
        }
        if g.psh {
            head[l4 + 13] |= TCP_PSH;
        }
        let pseudo = csum::pseudo_header(head, PROTO_TCP, total - l4)?;
        let at = l4 + usize::from(TCP_CSUM_OFFSET);
        head[at..at + 2].copy_from_slice(&csum::fold(pseudo).to_ne_bytes());
        Some(VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if g.v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: g.hdr_len,
            gso_size: g.seg,
            csum_start: g.l4_off,
            csum_offset: TCP_CSUM_OFFSET,
        })
    }
}

/// Iterator over a group's members.
#[derive(Debug)]
pub struct Members<'a> {
    next: &'a [u32],
    at: u32,
}

impl Iterator for Members<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.at == NONE {
            return None;
        }
        let i = self.at as usize;
        self.at = self.next.get(i).copied().unwrap_or(NONE);
        Some(i)
    }
}

/// A TCP segment that may be coalesced: plain IPv4 (no options, not a
/// fragment) or IPv6 without extension headers, lengths consistent, flags
/// ACK or ACK|PSH, some payload.
fn parse(p: &[u8]) -> Option<Tcp> {
    let v6 = match p.first()? >> 4 {
        4 => false,
        6 => true,
        _ => return None,
    };
    let l4_off = if v6 {
        if p.len() < 40 || p[6] != PROTO_TCP {
            return None;
        }
        if usize::from(u16::from_be_bytes([p[4], p[5]])) + 40 != p.len() {
            return None;
        }
        40
    } else {
        if p.len() < 20 || p[0] != 0x45 || p[9] != PROTO_TCP {
            return None;
        }
        let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff;
        if frag != 0 || usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len() {
            return None;
        }
        20
    };
    let doff = usize::from(p.get(l4_off + 12)? >> 4) * 4;
    let hdr_len = l4_off + doff;
    if doff < 20 || hdr_len > p.len() || hdr_len > MAX_HDR {
        return None;
    }
    let flags = p[l4_off + 13];
    if flags & !TCP_PSH != TCP_ACK {
        return None;
    }
    let payload = p.len() - hdr_len;
    if payload == 0 {
        return None;
    }
    let seq = u32::from_be_bytes([p[l4_off + 4], p[l4_off + 5], p[l4_off + 6], p[l4_off + 7]]);
    Some(Tcp {
        v6,
        l4_off,
        hdr_len,
        payload,
        seq,
        psh: flags & TCP_PSH != 0,
    })
}

fn same_flow(g: &Group, t: &Tcp, p: &[u8]) -> bool {
    if g.v6 != t.v6 {
        return false;
    }
    let addrs = if t.v6 { 8..40 } else { 12..20 };
    let l4 = t.l4_off;
    g.hdr[addrs.clone()] == p[addrs] && g.hdr[l4..l4 + 4] == p[l4..l4 + 4]
}

fn can_append(g: &Group, t: &Tcp, p: &[u8]) -> bool {
    if t.hdr_len != usize::from(g.hdr_len)
        || t.seq != g.next_seq
        || t.payload > usize::from(g.seg)
        || usize::from(g.hdr_len) + g.payload as usize + t.payload > MAX_TOTAL
    {
        return false;
    }
    let l4 = t.l4_off;
    // Fields that may differ between segments of one super-packet.
    let skip: [Range<usize>; 5] = if t.v6 {
        [
            4..6,
            l4 + 4..l4 + 8,
            l4 + 13..l4 + 14,
            l4 + 14..l4 + 16,
            l4 + 16..l4 + 18,
        ]
    } else {
        [
            2..6,
            10..12,
            l4 + 4..l4 + 8,
            l4 + 13..l4 + 14,
            l4 + 14..l4 + 18,
        ]
    };
    let mut from = 0;
    for r in skip {
        if g.hdr[from..r.start] != p[from..r.start] {
            return false;
        }
        from = r.end;
    }
    g.hdr[from..t.hdr_len] == p[from..t.hdr_len]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::super::gso::tests::{checksums_verify, hdr_for, super_packet};
    use super::super::gso::Segmenter;
    use super::*;

    fn segments(v6: bool, len: usize, mss: u16, flags: u8) -> (Vec<u8>, Vec<Vec<u8>>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
        let sp = super_packet(v6, &data, flags, &[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8]);
        let s = Segmenter::new(&hdr_for(v6, &sp, mss), &sp).unwrap();
        let mut out = vec![0u8; 2000];
        let segs = (0..s.count())
            .map(|i| {
                let n = s.segment(&sp, i, &mut out).unwrap();
                out[..n].to_vec()
            })
            .collect();
        (sp, segs)
    }

    /// Runs the coalescer over `pkts` and returns what would be written:
    /// (vnet header, bytes) per write.
    fn coalesce(pkts: &mut [Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
        let mut c = Coalescer::new(pkts.len(), pkts.len());
        for (i, p) in pkts.iter().enumerate() {
            c.push(i, p);
        }
        let mut writes = Vec::new();
        for i in 0..pkts.len() {
            match c.role(i) {
                Role::Single => writes.push((VnetHdr::default(), pkts[i].clone())),
                Role::Head(g) if c.segments(g) == 1 => {
                    writes.push((VnetHdr::default(), pkts[i].clone()))
                }
                Role::Head(g) => {
                    let h = c.finish(g, &mut pkts[i]).unwrap();
                    let mut bytes = pkts[i].clone();
                    let r = c.member_payload(g);
                    for m in c.members(g) {
                        bytes.extend_from_slice(&pkts[m][r.start..]);
                    }
                    writes.push((h, bytes));
                }
                Role::Member | Role::Absent => {}
            }
        }
        writes
    }

    #[test]
    fn segment_then_coalesce_round_trips_byte_exact() {
        for v6 in [false, true] {
            for (len, mss) in [(10_000, 1400), (64_000, 1348), (1400 * 3, 1400), (3000, 1)] {
                let (sp, mut segs) = segments(v6, len, mss, 0x18);
                let n = segs.len();
                let writes = coalesce(&mut segs);
                let expect = n.div_ceil(MAX_SEGMENTS);
                assert_eq!(writes.len(), expect, "v6 {v6} len {len} mss {mss}");
                if expect == 1 {
                    let (h, bytes) = &writes[0];
                    assert_eq!(bytes, &sp, "v6 {v6} len {len}");
                    assert_eq!(h.gso_size, mss);
                    assert_eq!(h.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
                    assert_eq!(h.flags, F_NEEDS_CSUM);
                    assert_eq!(usize::from(h.hdr_len), if v6 { 72 } else { 52 });
                }
            }
        }
    }

    #[test]
    fn out_of_order_and_other_flows_are_not_merged() {
        let (_, a) = segments(false, 5 * 1000, 1000, 0x10);
        let (_, mut b) = segments(true, 3 * 1000, 1000, 0x10);
        // a0 a1 b0 a3 a2 b1 b2 a4
        let mut pkts = vec![
            a[0].clone(),
            a[1].clone(),
            b[0].clone(),
            a[3].clone(),
            a[2].clone(),
            b.remove(1),
            b.remove(1),
            a[4].clone(),
        ];
        let mut c = Coalescer::new(pkts.len(), 8);
        let roles: Vec<Role> = pkts.iter().enumerate().map(|(i, p)| c.push(i, p)).collect();
        assert_eq!(roles[0], Role::Head(0));
        assert_eq!(roles[1], Role::Member);
        assert_eq!(roles[2], Role::Head(1));
        assert_eq!(roles[3], Role::Head(2)); // a gap: a new group
        assert_eq!(roles[4], Role::Head(3)); // behind a3: a new group again
        assert_eq!(roles[5], Role::Member);
        assert_eq!(roles[6], Role::Member);
        assert_eq!(roles[7], Role::Head(4)); // a2's group expected a3
        let writes = coalesce(&mut pkts);
        assert_eq!(writes.len(), 5);
        for (h, w) in &writes {
            if h.gso_type == 0 {
                assert!(checksums_verify(w));
            }
        }
    }

    #[test]
    fn psh_ends_a_group_and_odd_packets_stay_single() {
        let (_, segs) = segments(false, 4 * 1000, 1000, 0x10);
        let mut with_psh = segs.clone();
        // PSH in the middle: ends the group there.
        let t = 20;
        with_psh[1][t + 13] |= TCP_PSH;
        let mut c = Coalescer::new(4, 8);
        let roles: Vec<Role> = with_psh
            .iter()
            .enumerate()
            .map(|(i, p)| c.push(i, p))
            .collect();
        assert_eq!(
            roles,
            [Role::Head(0), Role::Member, Role::Head(1), Role::Member]
        );
        let mut head = with_psh[0].clone();
        c.finish(0, &mut head).unwrap();
        assert_ne!(head[t + 13] & TCP_PSH, 0);

        // A shorter segment ends a group; a different TTL starts a new one.
        let mut pkts = segs.clone();
        pkts[3][8] = 1;
        csum::fix_ipv4_header(&mut pkts[3][..20]);
        let mut c = Coalescer::new(4, 8);
        let roles: Vec<Role> = pkts.iter().enumerate().map(|(i, p)| c.push(i, p)).collect();
        assert_eq!(
            roles,
            [Role::Head(0), Role::Member, Role::Member, Role::Head(1)]
        );

        // SYN, FIN, no payload, UDP, garbage: single.
        let mut c = Coalescer::new(8, 8);
        let mut syn = segs[0].clone();
        syn[t + 13] = 0x12;
        let mut fin = segs[0].clone();
        fin[t + 13] = 0x11;
        let mut udp = segs[0].clone();
        udp[9] = 17;
        for (i, p) in [syn, fin, segs[0][..52].to_vec(), udp, vec![0x45; 3], vec![]]
            .iter()
            .enumerate()
        {
            assert_eq!(c.push(i, p), Role::Single, "packet {i}");
        }
    }

    #[test]
    fn groups_stop_at_64_kib() {
        let (_, mut segs) = segments(false, 50 * 1400, 1400, 0x10);
        let writes = coalesce(&mut segs);
        assert!(writes.len() >= 2);
        for (h, w) in &writes {
            assert!(w.len() <= MAX_TOTAL);
            assert!(h.gso_type == 0 || h.gso_size == 1400);
        }
        let total: usize = writes.iter().map(|(_, w)| w.len() - 52).sum();
        assert_eq!(total, 50 * 1400);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_packets_never_panic(
            pkts in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..120), 0..20)
        ) {
            let mut c = Coalescer::new(16, 4);
            for (i, p) in pkts.iter().enumerate() {
                c.push(i, p);
            }
            for (i, p) in pkts.iter().enumerate() {
                if let Role::Head(g) = c.role(i) {
                    let mut head = p.clone();
                    let _ = c.finish(g, &mut head);
                    let _ = c.members(g).count();
                }
            }
        }
    }
}

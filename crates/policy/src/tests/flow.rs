use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use crate::FlowKey;

fn ipv4(proto: u8, flags_frag: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = ihl * 4 + payload.len();
    let mut p = vec![(0x40 | ihl) as u8, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&flags_frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&[192, 168, 1, 10]);
    p.extend_from_slice(&[10, 1, 2, 3]);
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

/// `rest` starts with whatever `next_header` names (extension headers and payload).
fn ipv6(next_header: u8, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next_header, 64]);
    p.extend_from_slice(&V6_SRC.octets());
    p.extend_from_slice(&V6_DST.octets());
    p.extend_from_slice(rest);
    p
}

fn udp(src: u16, dst: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.to_be_bytes());
    u.extend_from_slice(&dst.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, b'a', b'b', b'c', b'd']);
    u
}

fn v4_key(proto: u8, src_port: u16, dst_port: u16) -> FlowKey {
    FlowKey {
        src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        proto,
        src_port,
        dst_port,
    }
}

fn v6_key(proto: u8, src_port: u16, dst_port: u16) -> FlowKey {
    FlowKey {
        src: IpAddr::V6(V6_SRC),
        dst: IpAddr::V6(V6_DST),
        proto,
        src_port,
        dst_port,
    }
}

/// Every strict prefix of a packet without trailing bytes is truncated.
fn assert_prefixes_rejected(pkt: &[u8]) {
    for len in 0..pkt.len() {
        assert_eq!(
            FlowKey::from_ip_packet(&pkt[..len]),
            None,
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn ipv4_tcp() {
    let mut tcp = vec![0u8; 20];
    tcp[..4].copy_from_slice(&[0xc3, 0x50, 0x01, 0xbb]); // 50000 -> 443
    let pkt = ipv4(6, 0x4000, &[], &tcp);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(6, 50000, 443)));
    assert_prefixes_rejected(&pkt);
}

#[test]
fn ipv4_udp_and_trailing_padding_ignored() {
    let mut pkt = ipv4(17, 0, &[], &udp(4500, 53));
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(17, 4500, 53)));
    assert_prefixes_rejected(&pkt);
    pkt.extend_from_slice(&[0xff; 6]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(17, 4500, 53)));
}

#[test]
fn ipv4_with_options() {
    let pkt = ipv4(17, 0, &[1, 1, 1, 0], &udp(1, 2));
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(17, 1, 2)));
}

#[test]
fn ipv4_icmp_type_and_code() {
    let pkt = ipv4(1, 0, &[], &[3, 4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(1, 3, 4)));
    assert_prefixes_rejected(&pkt);
}

#[test]
fn ipv4_other_protocol_has_no_ports() {
    let pkt = ipv4(47, 0, &[], &[0, 0, 0x08, 0]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(47, 0, 0)));
    // A protocol without ports needs no payload at all.
    let pkt = ipv4(47, 0, &[], &[]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v4_key(47, 0, 0)));
}

#[test]
fn ipv4_fragments() {
    // First fragment (MF set, offset 0): ports are there.
    let first = ipv4(17, 0x2000, &[], &udp(1000, 2000));
    assert_eq!(
        FlowKey::from_ip_packet(&first),
        Some(v4_key(17, 1000, 2000))
    );
    // Non-first fragment: its first bytes are data, not ports.
    let later = ipv4(17, 0x2000 | 185, &[], &udp(1000, 2000));
    assert_eq!(FlowKey::from_ip_packet(&later), Some(v4_key(17, 0, 0)));
    // A non-first fragment may be shorter than a port pair.
    let tiny = ipv4(6, 3, &[], &[1]);
    assert_eq!(FlowKey::from_ip_packet(&tiny), Some(v4_key(6, 0, 0)));
}

#[test]
fn ipv4_malformed() {
    let good = ipv4(17, 0, &[], &udp(1, 2));
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44; // IHL 4 < 5
    assert_eq!(FlowKey::from_ip_packet(&bad_ihl), None);
    let mut ihl_past_total = good.clone();
    ihl_past_total[0] = 0x4f; // 60-byte header in a 32-byte packet
    assert_eq!(FlowKey::from_ip_packet(&ihl_past_total), None);
    let mut total_too_big = good.clone();
    total_too_big[3] += 1;
    assert_eq!(FlowKey::from_ip_packet(&total_too_big), None);
    let mut total_below_header = good.clone();
    total_below_header[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(FlowKey::from_ip_packet(&total_below_header), None);
    // First fragment too short to hold the ports.
    let short = ipv4(6, 0, &[], &[1, 2, 3]);
    assert_eq!(FlowKey::from_ip_packet(&short), None);
    let mut version = good;
    version[0] = 0x55;
    assert_eq!(FlowKey::from_ip_packet(&version), None);
    assert_eq!(FlowKey::from_ip_packet(&[]), None);
}

#[test]
fn ipv6_udp() {
    let pkt = ipv6(17, &udp(5353, 53));
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(17, 5353, 53)));
    assert_prefixes_rejected(&pkt);
}

#[test]
fn ipv6_icmpv6() {
    let pkt = ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(58, 128, 0)));
    // ICMP (v4's protocol 1) has no meaning inside IPv6: no type/code.
    let pkt = ipv6(1, &[128, 0, 0, 0]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(1, 0, 0)));
}

#[test]
fn ipv6_hop_by_hop_and_fragment() {
    let mut rest = vec![44, 0, 5, 2, 0, 0, 1, 0]; // hop-by-hop (8 bytes): router alert, next = fragment
    rest.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // offset 0, M=1
    rest.extend_from_slice(&udp(7000, 8000));
    let pkt = ipv6(0, &rest);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(17, 7000, 8000)));
    assert_prefixes_rejected(&pkt);
}

#[test]
fn ipv6_longer_options_routing_and_dest_opts() {
    let mut rest = vec![43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // dest opts, 16 bytes, PadN
    rest.extend_from_slice(&[60, 0, 4, 0, 0, 0, 0, 0]); // routing header, 8 bytes, segments left 0
    rest.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // dest opts again, next = TCP
    let mut tcp = vec![0u8; 20];
    tcp[..4].copy_from_slice(&[0, 22, 0x30, 0x39]);
    rest.extend_from_slice(&tcp);
    let pkt = ipv6(60, &rest);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(6, 22, 12345)));
    assert_prefixes_rejected(&pkt);
}

#[test]
fn ipv6_non_first_fragment() {
    let mut rest = vec![17, 0, 0x05, 0x01, 0, 0, 0, 9]; // offset 160 (in 8-byte units), M=1
    rest.extend_from_slice(&udp(7000, 8000));
    let pkt = ipv6(44, &rest);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(17, 0, 0)));
}

#[test]
fn ipv6_malformed() {
    // Extension header claiming more bytes than the payload holds.
    let pkt = ipv6(0, &[17, 5, 0, 0, 0, 0, 0, 0]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), None);
    // Payload length beyond the buffer.
    let mut pkt = ipv6(17, &udp(1, 2));
    pkt[5] += 1;
    assert_eq!(FlowKey::from_ip_packet(&pkt), None);
    // Payload too short for the UDP ports.
    let pkt = ipv6(17, &[0, 1, 0]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), None);
    // No next header: a valid, empty packet with no ports.
    let pkt = ipv6(59, &[]);
    assert_eq!(FlowKey::from_ip_packet(&pkt), Some(v6_key(59, 0, 0)));
}

#[test]
fn reversed_swaps_ends() {
    let k = v4_key(6, 1, 2);
    let r = k.reversed();
    assert_eq!((r.src, r.dst, r.src_port, r.dst_port), (k.dst, k.src, 2, 1));
    assert_eq!(r.reversed(), k);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = FlowKey::from_ip_packet(&bytes);
    }

    /// Bytes that pass the version check, so the deeper parsing is exercised.
    #[test]
    fn plausible_headers_never_panic(
        v6 in any::<bool>(),
        mut bytes in proptest::collection::vec(any::<u8>(), 1..160),
        nh in prop_oneof![Just(0u8), Just(43u8), Just(44u8), Just(60u8), Just(17u8), Just(58u8), any::<u8>()],
    ) {
        if v6 {
            bytes[0] = 0x60 | (bytes[0] & 0x0f);
            if bytes.len() >= 40 {
                let len = (bytes.len() - 40) as u16;
                bytes[4..6].copy_from_slice(&len.to_be_bytes());
                bytes[6] = nh;
            }
        } else {
            bytes[0] = 0x45;
            if bytes.len() >= 20 {
                let len = bytes.len() as u16;
                bytes[2..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        let _ = FlowKey::from_ip_packet(&bytes);
    }
}

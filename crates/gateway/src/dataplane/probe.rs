//! ICMP echoes the gateway sends across a tunnel itself: the health checks
//! of the product (from a source to a destination address, every few
//! seconds) and `ipsecgw test`. They are encrypted on their connection's SA
//! like any packet from the site, and their replies are taken off the
//! inbound path by identifier before they would reach the TUN device.

use std::net::IpAddr;

use super::icmp::checksum;

const DEFAULT_TTL: u8 = 64;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// Bytes of payload after the echo header: a marker and the sequence, so a
/// capture shows who sent it.
const PAYLOAD: &[u8; 16] = b"ipsecgw-probe...";

/// The identifiers a gateway uses: `base..base + IDS`.
pub const IDS: u16 = 256;

/// An echo reply taken off the inbound path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered (the probe's destination).
    pub from: IpAddr,
    /// The probe's source.
    pub to: IpAddr,
    /// Echo identifier.
    pub id: u16,
    /// Echo sequence number.
    pub seq: u16,
}

/// An ICMP or ICMPv6 echo request from `src` to `dst`; `None` if the two
/// addresses are of different families.
pub fn echo_request(src: IpAddr, dst: IpAddr, id: u16, seq: u16) -> Option<Vec<u8>> {
    let icmp_len = 8 + PAYLOAD.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + icmp_len;
            let mut p = vec![0u8; total];
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[4..6].copy_from_slice(&seq.to_be_bytes()); // IP ID
            p[8] = DEFAULT_TTL;
            p[9] = 1;
            p[12..16].copy_from_slice(&s.octets());
            p[16..20].copy_from_slice(&d.octets());
            let c = checksum(&[&p[..20]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p[20] = ICMP_ECHO_REQUEST;
            p[24..26].copy_from_slice(&id.to_be_bytes());
            p[26..28].copy_from_slice(&seq.to_be_bytes());
            p[28..].copy_from_slice(PAYLOAD);
            let c = checksum(&[&p[20..]]);
            p[22..24].copy_from_slice(&c.to_be_bytes());
            Some(p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let total = 40 + icmp_len;
            let mut p = vec![0u8; total];
            p[0] = 0x60;
            p[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
            p[6] = 58;
            p[7] = DEFAULT_TTL;
            p[8..24].copy_from_slice(&s.octets());
            p[24..40].copy_from_slice(&d.octets());
            p[40] = ICMPV6_ECHO_REQUEST;
            p[44..46].copy_from_slice(&id.to_be_bytes());
            p[46..48].copy_from_slice(&seq.to_be_bytes());
            p[48..].copy_from_slice(PAYLOAD);
            let len = (icmp_len as u32).to_be_bytes();
            let c = checksum(&[&s.octets(), &d.octets(), &len, &[0, 0, 0, 58], &p[40..]]);
            p[42..44].copy_from_slice(&c.to_be_bytes());
            Some(p)
        }
        _ => None,
    }
}

/// The echo reply in `packet` if it answers one of ours (identifier in
/// `base..base + IDS`); anything else is `None` and goes on to the TUN.
/// Every length is checked: `packet` is whatever the peer sent.
pub fn our_echo_reply(packet: &[u8], base: u16) -> Option<EchoReply> {
    let (from, to, icmp) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x3fff;
            if *packet.get(9)? != 1 || ihl < 20 || frag != 0 {
                return None;
            }
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            let icmp = packet.get(ihl..)?;
            if *icmp.first()? != ICMP_ECHO_REPLY {
                return None;
            }
            (IpAddr::from(src), IpAddr::from(dst), icmp)
        }
        6 => {
            if *packet.get(6)? != 58 {
                return None;
            }
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            let icmp = packet.get(40..)?;
            if *icmp.first()? != ICMPV6_ECHO_REPLY {
                return None;
            }
            (IpAddr::from(src), IpAddr::from(dst), icmp)
        }
        _ => return None,
    };
    let id = u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]);
    let seq = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
    if id.wrapping_sub(base) >= IDS {
        return None;
    }
    Some(EchoReply { from, to, id, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the far host's kernel does: swap the addresses, type 0/129.
    fn answer(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        if r[0] >> 4 == 4 {
            let (s, d) = (r[12..16].to_vec(), r[16..20].to_vec());
            r[12..16].copy_from_slice(&d);
            r[16..20].copy_from_slice(&s);
            r[20] = ICMP_ECHO_REPLY;
        } else {
            let (s, d) = (r[8..24].to_vec(), r[24..40].to_vec());
            r[8..24].copy_from_slice(&d);
            r[24..40].copy_from_slice(&s);
            r[40] = ICMPV6_ECHO_REPLY;
        }
        r
    }

    #[test]
    fn v4_request_is_well_formed_and_its_reply_is_recognised() {
        let (s, d): (IpAddr, IpAddr) =
            ("192.168.4.1".parse().unwrap(), "10.1.1.10".parse().unwrap());
        let req = echo_request(s, d, 0x1234, 7).unwrap();
        assert_eq!(checksum(&[&req[..20]]), 0);
        assert_eq!(checksum(&[&req[20..]]), 0);
        assert_eq!(
            our_echo_reply(&req, 0x1234),
            None,
            "a request is not a reply"
        );
        let reply = our_echo_reply(&answer(&req), 0x1200).unwrap();
        assert_eq!(
            (reply.from, reply.to, reply.id, reply.seq),
            (d, s, 0x1234, 7)
        );
        assert_eq!(
            our_echo_reply(&answer(&req), 0x1235),
            None,
            "not our identifier"
        );
    }

    #[test]
    fn v6_request_is_well_formed_and_its_reply_is_recognised() {
        let (s, d): (IpAddr, IpAddr) = (
            "2001:db8:4::1".parse().unwrap(),
            "2001:db8:1::10".parse().unwrap(),
        );
        let req = echo_request(s, d, 9, 1).unwrap();
        let len = ((req.len() - 40) as u32).to_be_bytes();
        assert_eq!(
            checksum(&[&req[8..24], &req[24..40], &len, &[0, 0, 0, 58], &req[40..]]),
            0
        );
        let reply = our_echo_reply(&answer(&req), 0).unwrap();
        assert_eq!((reply.from, reply.seq), (d, 1));
        assert!(echo_request(s, "10.1.1.1".parse().unwrap(), 1, 1).is_none());
    }

    #[test]
    fn truncated_packets_are_not_replies() {
        let req = echo_request(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            5,
            5,
        )
        .unwrap();
        let reply = answer(&req);
        for n in 0..28 {
            assert_eq!(our_echo_reply(&reply[..n], 0), None, "{n} bytes");
        }
        assert!(our_echo_reply(&reply, 0).is_some());
    }
}

//! ICMP echoes the gateway sends across a tunnel itself: the health checks
//! of the product (from a source to a destination address, every few
//! seconds) and `ipsecgw test`. They are encrypted on their connection's SA
//! like any packet from the site, and their replies are taken off the
//! inbound path before they would reach the TUN device: by identifier and
//! by a random cookie in the payload, since an identifier alone (16 bits)
//! is also what a host behind the gateway may pick for its own ping.

use std::net::IpAddr;

use super::icmp::checksum;

const DEFAULT_TTL: u8 = 64;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// First bytes of the payload after the echo header, so a capture shows
/// who sent it; the run's cookie follows.
const MARKER: &[u8; 8] = b"ipsecgw\0";
/// Payload length: the marker and the cookie.
const PAYLOAD: usize = MARKER.len() + 8;

/// The identifiers a gateway uses: `base..base + IDS`.
pub const IDS: u16 = 256;

/// What makes an echo reply the gateway's own: an identifier in
/// `base..base + IDS` and the run's cookie echoed back in the payload.
/// Both are random per run, so a restarted daemon does not take an earlier
/// run's late replies for its own, and a host's ping that happens to use
/// one of our identifiers still reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTag {
    /// First identifier (a multiple of [`IDS`]).
    pub base: u16,
    cookie: [u8; 8],
}

impl ProbeTag {
    /// A tag from random bytes.
    pub fn new(random: [u8; 10]) -> Self {
        let [a, b, cookie @ ..] = random;
        Self {
            base: u16::from_be_bytes([a, b]) & !(IDS - 1),
            cookie,
        }
    }

    fn payload(&self) -> [u8; PAYLOAD] {
        let mut p = [0u8; PAYLOAD];
        p[..MARKER.len()].copy_from_slice(MARKER);
        p[MARKER.len()..].copy_from_slice(&self.cookie);
        p
    }
}

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
pub fn echo_request(
    tag: &ProbeTag,
    src: IpAddr,
    dst: IpAddr,
    id: u16,
    seq: u16,
) -> Option<Vec<u8>> {
    let payload = tag.payload();
    let icmp_len = 8 + payload.len();
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
            p[28..].copy_from_slice(&payload);
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
            p[48..].copy_from_slice(&payload);
            let len = (icmp_len as u32).to_be_bytes();
            let c = checksum(&[&s.octets(), &d.octets(), &len, &[0, 0, 0, 58], &p[40..]]);
            p[42..44].copy_from_slice(&c.to_be_bytes());
            Some(p)
        }
        _ => None,
    }
}

/// The echo reply in `packet` if it answers one of ours (identifier and
/// cookie of `tag`); anything else is `None` and goes on to the TUN.
/// Every length is checked: `packet` is whatever the peer sent.
pub fn our_echo_reply(packet: &[u8], tag: &ProbeTag) -> Option<EchoReply> {
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
    if id.wrapping_sub(tag.base) >= IDS || icmp.get(8..8 + PAYLOAD)? != tag.payload() {
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

    fn tag(base: u16) -> ProbeTag {
        let [a, b] = base.to_be_bytes();
        ProbeTag::new([a, b, 1, 2, 3, 4, 5, 6, 7, 8])
    }

    #[test]
    fn v4_request_is_well_formed_and_its_reply_is_recognised() {
        let (s, d): (IpAddr, IpAddr) =
            ("192.168.4.1".parse().unwrap(), "10.1.1.10".parse().unwrap());
        let req = echo_request(&tag(0x1200), s, d, 0x1234, 7).unwrap();
        assert_eq!(checksum(&[&req[..20]]), 0);
        assert_eq!(checksum(&[&req[20..]]), 0);
        assert_eq!(
            our_echo_reply(&req, &tag(0x1200)),
            None,
            "a request is not a reply"
        );
        let reply = our_echo_reply(&answer(&req), &tag(0x1200)).unwrap();
        assert_eq!(
            (reply.from, reply.to, reply.id, reply.seq),
            (d, s, 0x1234, 7)
        );
        assert_eq!(
            our_echo_reply(&answer(&req), &tag(0x1300)),
            None,
            "not our identifier"
        );
    }

    /// A host's own ping whose identifier falls in our range is the host's:
    /// its replies must reach the TUN (seen once in CI as a tunnel that
    /// "stopped" for one ping run while every counter looked fine).
    #[test]
    fn a_host_ping_with_one_of_our_identifiers_is_not_taken() {
        let (s, d): (IpAddr, IpAddr) = (
            "192.168.4.10".parse().unwrap(),
            "10.1.1.10".parse().unwrap(),
        );
        let ours = tag(0x1200);
        let mut host = echo_request(&ours, s, d, 0x1234, 1).unwrap();
        // iputils' payload: a timestamp and a byte pattern.
        host[28..]
            .copy_from_slice(b"\x65\x0b\x1c\x00\x00\x00\x00\x00\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f");
        assert_eq!(our_echo_reply(&answer(&host), &ours), None);
        let other_run = ProbeTag::new([0x12, 0x00, 9, 9, 9, 9, 9, 9, 9, 9]);
        let req = echo_request(&other_run, s, d, 0x1234, 1).unwrap();
        assert_eq!(
            our_echo_reply(&answer(&req), &ours),
            None,
            "an earlier run's probe, same identifier"
        );
        assert!(our_echo_reply(&answer(&req), &other_run).is_some());
    }

    #[test]
    fn v6_request_is_well_formed_and_its_reply_is_recognised() {
        let (s, d): (IpAddr, IpAddr) = (
            "2001:db8:4::1".parse().unwrap(),
            "2001:db8:1::10".parse().unwrap(),
        );
        let req = echo_request(&tag(0), s, d, 9, 1).unwrap();
        let len = ((req.len() - 40) as u32).to_be_bytes();
        assert_eq!(
            checksum(&[&req[8..24], &req[24..40], &len, &[0, 0, 0, 58], &req[40..]]),
            0
        );
        let reply = our_echo_reply(&answer(&req), &tag(0)).unwrap();
        assert_eq!((reply.from, reply.seq), (d, 1));
        assert!(echo_request(&tag(0), s, "10.1.1.1".parse().unwrap(), 1, 1).is_none());
    }

    #[test]
    fn truncated_packets_are_not_replies() {
        let req = echo_request(
            &tag(0),
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            5,
            5,
        )
        .unwrap();
        let reply = answer(&req);
        for n in 0..reply.len() {
            assert_eq!(our_echo_reply(&reply[..n], &tag(0)), None, "{n} bytes");
        }
        assert!(our_echo_reply(&reply, &tag(0)).is_some());
    }
}

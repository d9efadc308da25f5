//! A reader (and, for tests, a writer) of classic libpcap files, and the
//! questions the end-to-end tests ask of a capture. Returns errors rather
//! than panicking: `nettool` uses it too.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use anyhow::{bail, ensure, Context as _, Result};
use etherparse::{IpNumber, NetSlice, SlicedPacket, TransportSlice};

use crate::gateway::Encapsulation;

/// DLT_EN10MB: Ethernet, what tcpdump writes for a veth.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// DLT_RAW: a bare IP packet, what tcpdump writes for a TUN device.
pub const LINKTYPE_RAW: u32 = 101;
/// The UDP port of ESP in UDP (RFC 3948 §3.1; RFC 7296 §2.23).
pub const ESP_IN_UDP_PORT: u16 = 4500;

const MAGIC_USEC: u32 = 0xa1b2_c3d4;
const MAGIC_NSEC: u32 = 0xa1b2_3c4d;
const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// The frames of one capture, in order.
#[derive(Debug, Clone)]
pub struct Pcap {
    pub linktype: u32,
    pub frames: Vec<Vec<u8>>,
}

/// What a test needs to know about one IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Info<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// Part of a fragmented datagram (first or later fragment).
    pub fragment: bool,
    /// The IP payload (everything after the IPv4 header).
    pub payload: &'a [u8],
    /// Source port, destination port and payload, when this is a complete UDP datagram.
    pub udp: Option<(u16, u16, &'a [u8])>,
}

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> Result<u32> {
    let raw: [u8; 4] = bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .context("pcap truncated")?;
    Ok(if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    })
}

impl Pcap {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses a classic pcap file (either byte order, µs or ns timestamps).
    /// A record cut short at the end (tcpdump killed mid-write) is ignored.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        ensure!(
            bytes.len() >= GLOBAL_HEADER_LEN,
            "shorter than a pcap header ({} bytes)",
            bytes.len()
        );
        let big_endian = match u32_at(bytes, 0, false)? {
            MAGIC_USEC | MAGIC_NSEC => false,
            m if m.swap_bytes() == MAGIC_USEC || m.swap_bytes() == MAGIC_NSEC => true,
            m => bail!("not a classic pcap file (magic {m:#010x}; pcapng is not supported)"),
        };
        let linktype = u32_at(bytes, 20, big_endian)? & 0x0fff_ffff;
        let mut frames = Vec::new();
        let mut at = GLOBAL_HEADER_LEN;
        while at + RECORD_HEADER_LEN <= bytes.len() {
            let incl = u32_at(bytes, at + 8, big_endian)? as usize;
            let start = at + RECORD_HEADER_LEN;
            let Some(frame) = bytes.get(start..start + incl) else {
                break;
            };
            frames.push(frame.to_vec());
            at = start + incl;
        }
        Ok(Self { linktype, frames })
    }

    /// Writes the frames as a classic little-endian pcap (timestamps zero).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC_USEC.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&262_144u32.to_le_bytes());
        out.extend_from_slice(&self.linktype.to_le_bytes());
        for frame in &self.frames {
            let len = u32::try_from(frame.len()).context("frame too long")?;
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(frame);
        }
        fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    fn slice<'a>(&self, frame: &'a [u8]) -> Option<SlicedPacket<'a>> {
        match self.linktype {
            LINKTYPE_ETHERNET => SlicedPacket::from_ethernet(frame).ok(),
            LINKTYPE_RAW => SlicedPacket::from_ip(frame).ok(),
            _ => None,
        }
    }

    /// The IPv4 packet in `frame`, if it holds one.
    pub fn ipv4<'a>(&self, frame: &'a [u8]) -> Option<Ipv4Info<'a>> {
        let sliced = self.slice(frame)?;
        let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
            return None;
        };
        let header = ip.header();
        let udp = match &sliced.transport {
            Some(TransportSlice::Udp(udp)) if !header.is_fragmenting_payload() => {
                Some((udp.source_port(), udp.destination_port(), udp.payload()))
            }
            _ => None,
        };
        Some(Ipv4Info {
            src: header.source_addr(),
            dst: header.destination_addr(),
            protocol: header.protocol().0,
            fragment: header.is_fragmenting_payload(),
            payload: ip.payload().payload,
            udp,
        })
    }

    fn is_arp(&self, frame: &[u8]) -> bool {
        matches!(
            self.slice(frame).and_then(|s| s.net),
            Some(NetSlice::Arp(_))
        )
    }

    /// All IPv4 packets of the capture.
    pub fn ipv4_packets(&self) -> Vec<Ipv4Info<'_>> {
        self.frames.iter().filter_map(|f| self.ipv4(f)).collect()
    }

    /// Checks that the link carried nothing but ARP and ESP in the given
    /// encapsulation (UDP to or from port 4500, or IP protocol 50). Returns
    /// how many ESP packets there were, or a description of every other frame.
    pub fn only_esp(&self, encapsulation: Encapsulation) -> Result<usize, String> {
        match encapsulation {
            Encapsulation::Esp => {
                self.only(|ip| ip.protocol == IpNumber::ENCAPSULATING_SECURITY_PAYLOAD.0)
            }
            Encapsulation::Udp => self.only_udp_ports(&[ESP_IN_UDP_PORT]),
        }
    }

    /// Checks that the link carried nothing but ARP and UDP datagrams to or
    /// from one of `ports` (e.g. IKE and ESP in UDP: 500 and 4500), counting
    /// fragments of UDP datagrams as such. Returns how many UDP packets there
    /// were, or a description of every other frame.
    pub fn only_udp_ports(&self, ports: &[u16]) -> Result<usize, String> {
        self.only(|ip| {
            ip.protocol == IpNumber::UDP.0
                && (ip.fragment
                    || ip.udp.is_some_and(|(sport, dport, _)| {
                        ports.contains(&sport) || ports.contains(&dport)
                    }))
        })
    }

    /// Every frame is ARP or an IPv4 packet `ok` accepts: returns how many
    /// were accepted, or a line per other frame.
    fn only(&self, ok: impl Fn(&Ipv4Info<'_>) -> bool) -> Result<usize, String> {
        let mut accepted = 0;
        let mut offending = String::new();
        for (index, frame) in self.frames.iter().enumerate() {
            if self.is_arp(frame) {
                continue;
            }
            let ip = self.ipv4(frame);
            if ip.as_ref().is_some_and(&ok) {
                accepted += 1;
                continue;
            }
            let _ = match ip {
                Some(ip) => writeln!(
                    offending,
                    "frame {index}: IPv4 {} -> {} protocol {} udp {:?} ({} bytes)",
                    ip.src,
                    ip.dst,
                    ip.protocol,
                    ip.udp.map(|(s, d, _)| (s, d)),
                    frame.len()
                ),
                None => writeln!(
                    offending,
                    "frame {index}: not IPv4 or ARP ({} bytes): {}",
                    frame.len(),
                    hex::encode(&frame[..frame.len().min(48)])
                ),
            };
        }
        if offending.is_empty() {
            Ok(accepted)
        } else {
            Err(offending)
        }
    }

    /// How many frames contain `pattern` anywhere in their bytes.
    pub fn frames_containing(&self, pattern: &[u8]) -> usize {
        if pattern.is_empty() {
            return self.frames.len();
        }
        self.frames
            .iter()
            .filter(|f| f.windows(pattern.len()).any(|w| w == pattern))
            .count()
    }

    /// Payloads of the ESP-in-UDP datagrams sent to `to`, in capture order
    /// (IKE datagrams with the non-ESP marker and NAT-keepalives left out).
    pub fn esp_in_udp_payloads(&self, to: SocketAddrV4) -> Vec<&[u8]> {
        self.frames
            .iter()
            .filter_map(|f| self.ipv4(f))
            .filter(|ip| ip.dst == *to.ip())
            .filter_map(|ip| ip.udp)
            .filter(|(_, dport, payload)| {
                *dport == to.port() && payload.len() > 8 && payload[..4] != [0, 0, 0, 0]
            })
            .map(|(_, _, payload)| payload)
            .collect()
    }

    /// Payloads (the ESP packets) of the unfragmented IP protocol 50 packets
    /// sent to `to`, in capture order.
    pub fn esp_payloads(&self, to: Ipv4Addr) -> Vec<&[u8]> {
        self.frames
            .iter()
            .filter_map(|f| self.ipv4(f))
            .filter(|ip| {
                ip.dst == to
                    && !ip.fragment
                    && ip.protocol == IpNumber::ENCAPSULATING_SECURITY_PAYLOAD.0
            })
            .map(|ip| ip.payload)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
            .udp(sport, dport);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn icmp_frame(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 1, 1, 10], [192, 168, 4, 10], 64)
            .icmpv4_echo_request(1, 1);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn round_trip_and_classify() {
        let esp = [0u8, 0, 0x10, 0x01, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
        let ike = [0u8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let pcap = Pcap {
            linktype: LINKTYPE_ETHERNET,
            frames: vec![
                udp_frame(4500, 4500, &esp),
                udp_frame(4500, 4500, &ike),
                udp_frame(40000, 4500, &esp),
            ],
        };
        let dir = std::env::temp_dir().join(format!("ipsgw-pcap-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        pcap.write(&path).unwrap();
        let back = Pcap::read(&path).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.frames, pcap.frames);
        assert_eq!(back.only_esp(Encapsulation::Udp), Ok(3));
        assert!(back.only_esp(Encapsulation::Esp).is_err());
        let to = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 4500);
        assert_eq!(back.esp_in_udp_payloads(to), vec![&esp[..], &esp[..]]);
        assert_eq!(back.frames_containing(&[0xbb, 0xcc]), 2);
        assert_eq!(back.frames_containing(&[0xcc, 0xbb]), 0);
    }

    #[test]
    fn clear_traffic_is_reported() {
        let pcap = Pcap {
            linktype: LINKTYPE_ETHERNET,
            frames: vec![udp_frame(4500, 4500, &[1; 12]), icmp_frame(b"secret")],
        };
        let err = pcap.only_esp(Encapsulation::Udp).unwrap_err();
        assert!(err.contains("frame 1"), "{err}");
        assert!(err.contains("protocol 1"), "{err}");
        assert_eq!(pcap.frames_containing(b"secret"), 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Pcap::parse(&[0u8; 10]).is_err());
        assert!(Pcap::parse(&[0xffu8; 40]).is_err());
    }
}

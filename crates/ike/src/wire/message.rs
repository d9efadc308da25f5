//! A whole IKE message: header and payload chain (RFC 7296 §3).

use super::error::InvalidMessage;
use super::header::{Header, IkePacket};
use super::payload::{emit_payloads, parse_payloads, Payload};
use super::IKE_HEADER_LEN;

/// An IKE message as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header. [`Message::emit`] recomputes `length` and `next_payload`.
    pub header: Header,
    /// The payloads in wire order; an SK (or SKF) payload, if any, is last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a whole datagram (the UDP payload, after any non-ESP marker).
    ///
    /// The header's Length must cover at least the header and at most the
    /// datagram, and the payload chain must fill exactly the bytes up to
    /// Length. Bytes past Length are ignored: RFC 7296 §3.1 defines Length
    /// as the size of the message, says nothing about datagram padding, and
    /// everything the ICV covers ends at Length anyway. Use
    /// `datagram[..header.length]` when hashing the message (the AUTH
    /// payload signs the IKE_SA_INIT message as sent, §2.15).
    pub fn parse(datagram: &[u8]) -> Result<Message, InvalidMessage> {
        let packet = IkePacket::new_checked(datagram)?;
        let header = Header::parse(datagram)?;
        let payloads = parse_payloads(header.next_payload, packet.payloads())?;
        Ok(Message { header, payloads })
    }

    /// Emits header and payloads, filling in the header's Length and Next
    /// Payload from the payloads (the values in `self.header` are ignored).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = vec![0u8; IKE_HEADER_LEN];
        let first = emit_payloads(&self.payloads, &mut out);
        let header = Header {
            next_payload: first,
            length: out.len() as u32,
            ..self.header
        };
        header.emit(&mut out);
        out
    }

    /// The number of bytes [`Message::emit`] produces.
    pub fn buffer_len(&self) -> usize {
        IKE_HEADER_LEN + self.payloads.iter().map(Payload::buffer_len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::super::*;
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// A real IKE_SA_INIT request (strongSwan-style offer of four IKE
    /// proposals, Brainpool/P-256 groups), captured on port 4500: the bytes
    /// of `IKEV2_MSG` in rusticata/ipsec-parser's `tests/ikev2.rs`, without
    /// the 4-byte non-ESP marker in front.
    const CAPTURED_SA_INIT: &str = "
        bca1937a7c2ff5b9 0000000000000000 21 20 22 08 00000000 0000012c
        220000a4
          02000024 01010003
            0300000c 01000014 800e0080
            03000008 02000005
            00000008 0400001c
          02000024 02010003
            0300000c 01000014 800e0080
            03000008 02000005
            00000008 04000013
          0200002c 03010004
            0300000c 0100000d 800e0080
            03000008 0300000c
            03000008 02000005
            00000008 0400001c
          0000002c 04010004
            0300000c 0100000d 800e0080
            03000008 0300000c
            03000008 02000005
            00000008 04000013
        28000048 001c0000
          4d23b8f22c03ae3ab40af9fa76c23c7ba6c56981e13c32fbc36954c87a96cbfa
          34637c6f31b650ce5d8717005ce793c2eeaff1c566280811d942d1b8e80268bb
        00000024
          99e2a373cc44ad10fb78dda25206a4a9b7558e0d8269799c6800362c46a0bf7b";

    #[test]
    fn captured_ike_sa_init_request() {
        let b = bytes(CAPTURED_SA_INIT);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.header.spi_i, 0xbca1_937a_7c2f_f5b9u64.to_be_bytes());
        assert_eq!(m.header.spi_r, [0; 8]);
        assert_eq!(m.header.exchange, ExchangeType::IkeSaInit);
        assert_eq!((m.header.major, m.header.minor), (2, 0));
        assert!(m.header.flags.initiator && !m.header.flags.response);
        assert_eq!(m.header.length, 300);
        assert_eq!(m.payloads.len(), 3);
        let Payload::Sa(sa) = &m.payloads[0] else {
            panic!("not SA")
        };
        let nums: Vec<u8> = sa.proposals.iter().map(|p| p.num).collect();
        assert_eq!(nums, [1, 2, 3, 4]);
        assert!(sa.proposals.iter().all(|p| p.protocol == ProtocolId::Ike));
        assert_eq!(
            sa.proposals[2].transforms,
            vec![
                Transform::with_key_len(TransformType::Encr, 13, 128),
                Transform::new(TransformType::Integ, 12),
                Transform::new(TransformType::Prf, 5),
                Transform::new(TransformType::Dh, 28),
            ]
        );
        assert_eq!(
            sa.proposals[1].transforms[0],
            Transform::with_key_len(TransformType::Encr, transform_id::ENCR_AES_GCM_16, 128)
        );
        let Payload::Ke { group, data } = &m.payloads[1] else {
            panic!("not KE")
        };
        assert_eq!((*group, data.len()), (28, 64));
        assert_eq!(m.payloads[2].kind(), PayloadType::Nonce);
        assert_eq!(m.emit(), b);
        assert_eq!(m.buffer_len(), b.len());
    }

    /// An IKE_SA_INIT request built field by field from RFC 7296 §3: SA (one
    /// IKE proposal: AES-GCM-16/256, PRF_HMAC_SHA2_256, Curve25519), KE,
    /// Nonce, NAT detection, fragmentation and signature hash notifies.
    const BUILT_SA_INIT: &str = "
        0011223344556677 0000000000000000
        21 20 22 08 00000000 000000de
        22 00 0028                           # SA -> KE, 40 bytes
          00 00 0024 01 01 00 03
            03 00 000c 01 00 0014 800e 0100  # ENCR_AES_GCM_16, 256-bit key
            03 00 0008 02 00 0005            # PRF_HMAC_SHA2_256
            00 00 0008 04 00 001f            # Curve25519
        28 00 0028 001f 0000                 # KE -> Nonce, group 31
          0101010101010101010101010101010101010101010101010101010101010101
        29 00 0024                           # Nonce -> N
          0202020202020202020202020202020202020202020202020202020202020202
        29 00 001c 00 00 4004                # N(NAT_DETECTION_SOURCE_IP)
          0303030303030303030303030303030303030303
        29 00 001c 00 00 4005                # N(NAT_DETECTION_DESTINATION_IP)
          0404040404040404040404040404040404040404
        29 00 0008 00 00 402e                # N(IKEV2_FRAGMENTATION_SUPPORTED)
        00 00 000e 00 00 402f 0002 0003 0004 # N(SIGNATURE_HASH_ALGORITHMS)";

    fn strip_comments(s: &str) -> String {
        s.lines()
            .map(|l| l.split('#').next().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn built_message() -> Message {
        Message {
            header: Header {
                spi_i: [0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77],
                spi_r: [0; 8],
                next_payload: PayloadType::Sa,
                major: 2,
                minor: 0,
                exchange: ExchangeType::IkeSaInit,
                flags: Flags {
                    initiator: true,
                    ..Flags::default()
                },
                message_id: 0,
                length: 0xde,
            },
            payloads: vec![
                Payload::Sa(SaPayload {
                    proposals: vec![Proposal {
                        num: 1,
                        protocol: ProtocolId::Ike,
                        spi: vec![],
                        transforms: vec![
                            Transform::with_key_len(
                                TransformType::Encr,
                                transform_id::ENCR_AES_GCM_16,
                                256,
                            ),
                            Transform::new(TransformType::Prf, transform_id::PRF_HMAC_SHA2_256),
                            Transform::new(TransformType::Dh, transform_id::DH_CURVE25519),
                        ],
                    }],
                }),
                Payload::Ke {
                    group: 31,
                    data: vec![1; 32],
                },
                Payload::Nonce(vec![2; 32]),
                Payload::Notify(Notify::new(NotifyType::NatDetectionSourceIp, vec![3; 20])),
                Payload::Notify(Notify::new(
                    NotifyType::NatDetectionDestinationIp,
                    vec![4; 20],
                )),
                Payload::Notify(Notify::new(NotifyType::Ikev2FragmentationSupported, vec![])),
                Payload::Notify(Notify::new(
                    NotifyType::SignatureHashAlgorithms,
                    vec![0, 2, 0, 3, 0, 4],
                )),
            ],
        }
    }

    #[test]
    fn built_ike_sa_init_request() {
        let b = bytes(&strip_comments(BUILT_SA_INIT));
        assert_eq!(b.len(), 0xde);
        assert_eq!(Message::parse(&b).unwrap(), built_message());
        assert_eq!(built_message().emit(), b);
    }

    #[test]
    fn truncations_fail() {
        for b in [
            bytes(CAPTURED_SA_INIT),
            bytes(&strip_comments(BUILT_SA_INIT)),
        ] {
            for len in 0..b.len() {
                // Cut the datagram: Length now lies.
                assert!(Message::parse(&b[..len]).is_err(), "datagram {len}");
                // Cut the message and fix Length: the chain is short.
                if len >= IKE_HEADER_LEN {
                    let mut cut = b[..len].to_vec();
                    cut[24..28].copy_from_slice(&(len as u32).to_be_bytes());
                    assert!(Message::parse(&cut).is_err(), "message {len}");
                }
            }
        }
    }

    #[test]
    fn bytes_past_length_are_ignored() {
        let mut b = bytes(CAPTURED_SA_INIT);
        let m = Message::parse(&b).unwrap();
        b.extend_from_slice(&[0xff; 7]);
        assert_eq!(Message::parse(&b).unwrap(), m);
    }

    #[test]
    fn encrypted_message_and_its_associated_data() {
        let m = Message {
            header: Header {
                exchange: ExchangeType::IkeAuth,
                message_id: 1,
                ..built_message().header
            },
            payloads: vec![Payload::Sk {
                first_inner: PayloadType::IdI,
                data: vec![0x5a; 8 + 48 + 16],
            }],
        };
        let b = m.emit();
        let parsed = Message::parse(&b).unwrap();
        assert_eq!(parsed.header.next_payload, PayloadType::Sk);
        let Payload::Sk { first_inner, data } = &parsed.payloads[0] else {
            panic!("not SK")
        };
        assert_eq!(*first_inner, PayloadType::IdI);
        // The associated data is the header and SK's generic header.
        let aad_len = parsed.header.length as usize - data.len();
        assert_eq!(aad_len, IKE_HEADER_LEN + GENERIC_PAYLOAD_HEADER_LEN);
        assert_eq!(&b[aad_len..], &data[..]);
    }

    // ---- property tests ----

    fn payload_type() -> impl Strategy<Value = PayloadType> {
        any::<u8>().prop_map(PayloadType::from)
    }

    fn transform() -> impl Strategy<Value = Transform> {
        (
            any::<u8>(),
            any::<u16>(),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(|(kind, id, key_len)| Transform {
                kind: TransformType::from(kind),
                id,
                key_len,
            })
    }

    fn sa() -> impl Strategy<Value = SaPayload> {
        prop::collection::vec(
            (
                any::<u8>(),
                prop::collection::vec(any::<u8>(), 0..9),
                prop::collection::vec(transform(), 0..5),
            ),
            1..4,
        )
        .prop_map(|ps| SaPayload {
            proposals: ps
                .into_iter()
                .enumerate()
                .map(|(i, (protocol, spi, transforms))| Proposal {
                    num: i as u8 + 1,
                    protocol: ProtocolId::from(protocol),
                    spi,
                    transforms,
                })
                .collect(),
        })
    }

    fn identification() -> impl Strategy<Value = Identification> {
        any::<u8>().prop_flat_map(|kind| {
            let kind = IdType::from(kind);
            let data = match kind {
                IdType::Ipv4Addr => prop::collection::vec(any::<u8>(), 4..=4),
                IdType::Ipv6Addr => prop::collection::vec(any::<u8>(), 16..=16),
                _ => prop::collection::vec(any::<u8>(), 0..40),
            };
            data.prop_map(move |data| Identification { kind, data })
        })
    }

    fn delete() -> impl Strategy<Value = Delete> {
        (any::<u8>(), 1usize..9, 0usize..4).prop_flat_map(|(protocol, size, count)| {
            let protocol = ProtocolId::from(protocol);
            let (size, count) = match protocol {
                ProtocolId::Ike => (0, 0),
                ProtocolId::Esp | ProtocolId::Ah => (4, count),
                _ => (size, count),
            };
            prop::collection::vec(
                prop::collection::vec(any::<u8>(), size..=size),
                count..=count,
            )
            .prop_map(move |spis| Delete { protocol, spis })
        })
    }

    fn selector() -> impl Strategy<Value = TrafficSelector> {
        let v4 = (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(a, b)| (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b))));
        let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(a, b)| (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b))));
        (prop_oneof![v4, v6], any::<u8>(), any::<u16>(), any::<u16>()).prop_map(
            |((start, end), proto, start_port, end_port)| TrafficSelector {
                proto,
                start,
                end,
                start_port,
                end_port,
            },
        )
    }

    fn bytes_up_to(n: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..n)
    }

    /// Payloads other than SK/SKF.
    fn plain_payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            sa().prop_map(Payload::Sa),
            (any::<u16>(), bytes_up_to(64)).prop_map(|(group, data)| Payload::Ke { group, data }),
            identification().prop_map(Payload::IdI),
            identification().prop_map(Payload::IdR),
            (any::<u8>(), bytes_up_to(64))
                .prop_map(|(method, data)| Payload::Auth { method, data }),
            prop::collection::vec(any::<u8>(), 16..=256).prop_map(Payload::Nonce),
            (any::<u8>(), bytes_up_to(9), any::<u16>(), bytes_up_to(32)).prop_map(
                |(protocol, spi, kind, data)| Payload::Notify(Notify {
                    protocol: ProtocolId::from(protocol),
                    spi,
                    kind: NotifyType::from(kind),
                    data,
                })
            ),
            delete().prop_map(Payload::Delete),
            bytes_up_to(32).prop_map(Payload::VendorId),
            prop::collection::vec(selector(), 0..4).prop_map(Payload::TsI),
            prop::collection::vec(selector(), 0..4).prop_map(Payload::TsR),
            (payload_type(), any::<bool>(), bytes_up_to(32)).prop_filter_map(
                "interpreted payload type",
                |(kind, critical, data)| match kind {
                    PayloadType::Cert
                    | PayloadType::CertReq
                    | PayloadType::Cp
                    | PayloadType::Eap => {
                        Some(Payload::Unknown {
                            kind,
                            critical,
                            data,
                        })
                    }
                    // Unknown critical payloads are rejected by design.
                    PayloadType::Unknown(_) => Some(Payload::Unknown {
                        kind,
                        critical: false,
                        data,
                    }),
                    _ => None,
                }
            ),
        ]
    }

    fn encrypted_payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            (payload_type(), bytes_up_to(64))
                .prop_map(|(first_inner, data)| Payload::Sk { first_inner, data }),
            (payload_type(), 1u16.., bytes_up_to(64), any::<u16>()).prop_map(
                |(first_inner, total, data, f)| Payload::Skf {
                    first_inner,
                    fragment: f % total + 1,
                    total,
                    data,
                }
            ),
        ]
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            any::<[u8; 8]>(),
            any::<[u8; 8]>(),
            0u8..16,
            0u8..16,
            any::<u8>(),
            any::<(bool, bool, bool)>(),
            any::<u32>(),
            prop::collection::vec(plain_payload(), 0..6),
            proptest::option::of(encrypted_payload()),
        )
            .prop_map(
                |(spi_i, spi_r, major, minor, exchange, flags, message_id, mut payloads, sk)| {
                    payloads.extend(sk);
                    Message {
                        header: Header {
                            spi_i,
                            spi_r,
                            next_payload: payloads.first().map_or(PayloadType::None, Payload::kind),
                            major,
                            minor,
                            exchange: ExchangeType::from(exchange),
                            flags: Flags {
                                initiator: flags.0,
                                response: flags.1,
                                version: flags.2,
                            },
                            message_id,
                            length: 0,
                        },
                        payloads,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn messages_round_trip(mut m in message()) {
            let b = m.emit();
            m.header.length = b.len() as u32;
            prop_assert_eq!(b.len(), m.buffer_len());
            prop_assert_eq!(Message::parse(&b), Ok(m.clone()));
            // Every truncation of the datagram, and of the message with
            // Length fixed up, fails cleanly.
            for len in 0..b.len() {
                prop_assert!(Message::parse(&b[..len]).is_err());
                if len >= IKE_HEADER_LEN {
                    let mut cut = b[..len].to_vec();
                    cut[24..28].copy_from_slice(&(len as u32).to_be_bytes());
                    prop_assert!(Message::parse(&cut).is_err());
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..400), first in any::<u8>()) {
            let _ = Message::parse(&b);
            let _ = parse_payloads(PayloadType::from(first), &b);
            // The same bytes behind a header whose Length is right, so the
            // payload parsers see them.
            let mut m = Message { header: built_message().header, payloads: vec![] }.emit();
            m[16] = first;
            m.extend_from_slice(&b);
            let len = m.len() as u32;
            m[24..28].copy_from_slice(&len.to_be_bytes());
            let _ = Message::parse(&m);
        }

        #[test]
        fn mutated_messages_never_panic(
            m in message(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut b = m.emit();
            for (at, value) in flips {
                let i = at.index(b.len());
                b[i] = value;
            }
            if let Ok(parsed) = Message::parse(&b) {
                // Whatever parses emits and parses back the same.
                prop_assert_eq!(Message::parse(&parsed.emit()).map(|m| m.payloads), Ok(parsed.payloads));
            }
        }
    }
}

//! The generic payload header and payload chains, RFC 7296 §3.2, with the
//! small payloads that need no file of their own (KE §3.4, AUTH §3.8, Nonce
//! §3.9, Vendor ID §3.12, SK §3.14, SKF RFC 7383 §2.5).
//!
//! ```text
//! Generic payload header (§3.2):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Each payload's Next Payload field names the type of the payload after
//! it; the first type comes from the IKE header (or, inside an SK payload,
//! from the SK payload's own Next Payload field).

use super::delete::Delete;
use super::error::{InvalidMessage, Reader};
use super::header::PayloadType;
use super::id::Identification;
use super::notify::Notify;
use super::sa::SaPayload;
use super::ts::{self, TrafficSelector};
use super::GENERIC_PAYLOAD_HEADER_LEN;

/// The critical bit of the generic payload header, RFC 7296 §3.2.
const CRITICAL: u8 = 0x80;

/// Nonce Data is 16 to 256 octets, RFC 7296 §3.9.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// Authentication Method values, RFC 7296 §3.8 and the IANA registry.
pub mod auth_method {
    /// RSA Digital Signature (PKCS#1 v1.5 over SHA-1), RFC 7296 §3.8.
    pub const RSA_DIGITAL_SIGNATURE: u8 = 1;
    /// Shared Key Message Integrity Code, RFC 7296 §3.8.
    pub const SHARED_KEY_MIC: u8 = 2;
    /// DSS Digital Signature, RFC 7296 §3.8.
    pub const DSS_DIGITAL_SIGNATURE: u8 = 3;
    /// ECDSA with SHA-256 on P-256, RFC 4754.
    pub const ECDSA_SHA256_P256: u8 = 9;
    /// ECDSA with SHA-384 on P-384, RFC 4754.
    pub const ECDSA_SHA384_P384: u8 = 10;
    /// ECDSA with SHA-512 on P-521, RFC 4754.
    pub const ECDSA_SHA512_P521: u8 = 11;
    /// Digital Signature (algorithm in the data), RFC 7427 §3.
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// One payload, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security Association, §3.3.
    Sa(SaPayload),
    /// Key Exchange, §3.4: the DH group and the public value.
    Ke {
        /// Diffie-Hellman Group Num.
        group: u16,
        /// Key Exchange Data.
        data: Vec<u8>,
    },
    /// Identification - Initiator, §3.5.
    IdI(Identification),
    /// Identification - Responder, §3.5.
    IdR(Identification),
    /// Authentication, §3.8 (see [`auth_method`]).
    Auth {
        /// Auth Method.
        method: u8,
        /// Authentication Data.
        data: Vec<u8>,
    },
    /// Nonce, §3.9: 16 to 256 octets (checked when parsing).
    Nonce(Vec<u8>),
    /// Notify, §3.10.
    Notify(Notify),
    /// Delete, §3.11.
    Delete(Delete),
    /// Vendor ID, §3.12.
    VendorId(Vec<u8>),
    /// Traffic Selector - Initiator, §3.13.
    TsI(Vec<TrafficSelector>),
    /// Traffic Selector - Responder, §3.13.
    TsR(Vec<TrafficSelector>),
    /// The encrypted payload: everything after its generic header (IV ||
    /// ciphertext || ICV) and the type of the first inner payload.
    ///
    /// It is the last payload (§3.14), so in a parsed datagram `data` ends at
    /// the header's Length: the bytes the ICV or AEAD covers as associated
    /// data are `datagram[..length - data.len()]` (IKE header, any payloads
    /// before SK, SK's generic header; RFC 7296 §3.14, RFC 5282 §5.1).
    Sk {
        /// Next Payload of the SK payload: the first inner payload's type.
        first_inner: PayloadType,
        /// IV || ciphertext || ICV.
        data: Vec<u8>,
    },
    /// One fragment of an SK payload, RFC 7383 §2.5. Last in its message,
    /// like SK.
    Skf {
        /// The first inner payload's type in fragment 1, None in the others.
        first_inner: PayloadType,
        /// Fragment Number, from 1 (checked: 1 <= fragment <= total).
        fragment: u16,
        /// Total Fragments.
        total: u16,
        /// IV || ciphertext || ICV of this fragment.
        data: Vec<u8>,
    },
    /// A payload this codec does not interpret (CERT, CERTREQ, CP, EAP, or a
    /// type it does not know and that was not marked critical): kept so it
    /// round-trips. Build it only with those kinds: an `Sa` kind here emits
    /// a raw body that parses back as [`Payload::Sa`].
    Unknown {
        /// Payload type.
        kind: PayloadType,
        /// The critical bit as received.
        critical: bool,
        /// The body after the generic header.
        data: Vec<u8>,
    },
}

impl Payload {
    /// The payload type that announces this payload.
    pub fn kind(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::Sa,
            Payload::Ke { .. } => PayloadType::Ke,
            Payload::IdI(_) => PayloadType::IdI,
            Payload::IdR(_) => PayloadType::IdR,
            Payload::Auth { .. } => PayloadType::Auth,
            Payload::Nonce(_) => PayloadType::Nonce,
            Payload::Notify(_) => PayloadType::Notify,
            Payload::Delete(_) => PayloadType::Delete,
            Payload::VendorId(_) => PayloadType::VendorId,
            Payload::TsI(_) => PayloadType::TsI,
            Payload::TsR(_) => PayloadType::TsR,
            Payload::Sk { .. } => PayloadType::Sk,
            Payload::Skf { .. } => PayloadType::Skf,
            Payload::Unknown { kind, .. } => *kind,
        }
    }

    /// Bytes this payload occupies on the wire, generic header included.
    pub fn buffer_len(&self) -> usize {
        GENERIC_PAYLOAD_HEADER_LEN
            + match self {
                Payload::Sa(sa) => sa.buffer_len(),
                Payload::Ke { data, .. } | Payload::Auth { data, .. } => 4 + data.len(),
                Payload::IdI(id) | Payload::IdR(id) => id.buffer_len(),
                Payload::Nonce(data) | Payload::VendorId(data) => data.len(),
                Payload::Notify(n) => n.buffer_len(),
                Payload::Delete(d) => d.buffer_len(),
                Payload::TsI(t) | Payload::TsR(t) => ts::buffer_len(t),
                Payload::Sk { data, .. } | Payload::Unknown { data, .. } => data.len(),
                Payload::Skf { data, .. } => 4 + data.len(),
            }
    }

    /// Whether this payload ends a chain (SK and SKF, §3.14, RFC 7383 §2.5).
    fn is_encrypted(&self) -> bool {
        matches!(self, Payload::Sk { .. } | Payload::Skf { .. })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(sa) => sa.emit(out),
            Payload::Ke { group, data } => {
                out.extend_from_slice(&group.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(data);
            }
            Payload::IdI(id) | Payload::IdR(id) => id.emit(out),
            Payload::Auth { method, data } => {
                out.extend_from_slice(&[*method, 0, 0, 0]);
                out.extend_from_slice(data);
            }
            Payload::Notify(n) => n.emit(out),
            Payload::Delete(d) => d.emit(out),
            Payload::TsI(t) | Payload::TsR(t) => ts::emit(t, out),
            Payload::Skf {
                fragment,
                total,
                data,
                ..
            } => {
                out.extend_from_slice(&fragment.to_be_bytes());
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(data);
            }
            Payload::Nonce(data)
            | Payload::VendorId(data)
            | Payload::Sk { data, .. }
            | Payload::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Parses one body of a known type (not SK/SKF, which need the
    /// generic header's Next Payload field).
    fn parse_body(
        kind: PayloadType,
        critical: bool,
        body: &[u8],
    ) -> Result<Payload, InvalidMessage> {
        Ok(match kind {
            PayloadType::Sa => Payload::Sa(SaPayload::parse(body)?),
            PayloadType::Ke => {
                let (group, data) = fixed4(body, "KE payload")?;
                Payload::Ke {
                    group: u16::from_be_bytes([group[0], group[1]]),
                    data,
                }
            }
            PayloadType::IdI => Payload::IdI(Identification::parse(body)?),
            PayloadType::IdR => Payload::IdR(Identification::parse(body)?),
            PayloadType::Auth => {
                let (head, data) = fixed4(body, "AUTH payload")?;
                Payload::Auth {
                    method: head[0],
                    data,
                }
            }
            PayloadType::Nonce => {
                if !NONCE_LEN.contains(&body.len()) {
                    return Err(InvalidMessage::BadLength {
                        what: "Nonce",
                        len: body.len(),
                    });
                }
                Payload::Nonce(body.to_vec())
            }
            PayloadType::Notify => Payload::Notify(Notify::parse(body)?),
            PayloadType::Delete => Payload::Delete(Delete::parse(body)?),
            PayloadType::VendorId => Payload::VendorId(body.to_vec()),
            PayloadType::TsI => Payload::TsI(ts::parse(body)?),
            PayloadType::TsR => Payload::TsR(ts::parse(body)?),
            PayloadType::Unknown(raw) if critical => {
                return Err(InvalidMessage::UnsupportedCritical(raw))
            }
            // CERT, CERTREQ, CP, EAP and non-critical unknowns. (None, SK
            // and SKF never reach here.)
            kind => Payload::Unknown {
                kind,
                critical,
                data: body.to_vec(),
            },
        })
    }
}

/// Splits a body into its first four octets and the rest, failing with
/// BadLength if it is shorter than four.
fn fixed4(body: &[u8], what: &'static str) -> Result<([u8; 4], Vec<u8>), InvalidMessage> {
    let mut r = Reader::new(body);
    match r.array::<4>(what) {
        Ok(head) => Ok((head, r.rest().to_vec())),
        Err(_) => Err(InvalidMessage::BadLength {
            what,
            len: body.len(),
        }),
    }
}

/// Parses a chain of payloads starting with type `first` from `bytes`.
///
/// Every Payload Length is checked against what remains; the chain must end
/// (Next Payload 0) exactly at the end of `bytes`. SK and SKF must be last
/// (RFC 7296 §3.14, RFC 7383 §2.5): their data runs to the end of `bytes`,
/// and their Next Payload field is the first inner payload's type.
///
/// A payload type this codec does not know with the critical bit set fails
/// with [`InvalidMessage::UnsupportedCritical`] (the caller answers
/// UNSUPPORTED_CRITICAL_PAYLOAD); without it the payload is kept as
/// [`Payload::Unknown`]. The critical bit of known types is ignored on
/// receipt (RFC 7296 §2.5).
pub fn parse_payloads(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload>, InvalidMessage> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    let mut kind = first;
    while kind != PayloadType::None {
        let next = PayloadType::from(r.u8("generic payload header")?);
        let critical = r.u8("generic payload header")? & CRITICAL != 0;
        let len = usize::from(r.u16("generic payload header")?);
        if len < GENERIC_PAYLOAD_HEADER_LEN {
            return Err(InvalidMessage::BadLength {
                what: "Payload Length",
                len,
            });
        }
        let body = r.take(len - GENERIC_PAYLOAD_HEADER_LEN, "payload")?;
        match kind {
            PayloadType::Sk | PayloadType::Skf => {
                if !r.is_empty() {
                    return Err(InvalidMessage::Syntax("encrypted payload is not last"));
                }
                out.push(parse_encrypted(kind, next, body)?);
                return Ok(out);
            }
            _ => out.push(Payload::parse_body(kind, critical, body)?),
        }
        kind = next;
    }
    if !r.is_empty() {
        return Err(InvalidMessage::Syntax("data after the last payload"));
    }
    Ok(out)
}

fn parse_encrypted(
    kind: PayloadType,
    first_inner: PayloadType,
    body: &[u8],
) -> Result<Payload, InvalidMessage> {
    if kind == PayloadType::Sk {
        return Ok(Payload::Sk {
            first_inner,
            data: body.to_vec(),
        });
    }
    let mut r = Reader::new(body);
    let (fragment, total) = match (r.u16("SKF"), r.u16("SKF")) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            return Err(InvalidMessage::BadLength {
                what: "SKF payload",
                len: body.len(),
            })
        }
    };
    if fragment == 0 || fragment > total {
        return Err(InvalidMessage::Syntax("SKF fragment number out of range"));
    }
    Ok(Payload::Skf {
        first_inner,
        fragment,
        total,
        data: r.rest().to_vec(),
    })
}

/// Emits a chain; returns the first payload's type (for the IKE header or
/// the SK payload's Next Payload field), [`PayloadType::None`] if empty.
///
/// Each payload's Next Payload field is the next one's type (None after the
/// last); an SK or SKF payload's is its `first_inner`, so SK/SKF must be last
/// (a caller bug otherwise: debug builds panic). Critical bits are clear
/// except on [`Payload::Unknown`] values that carry one. A payload body over
/// 65531 octets does not fit the Payload Length field and is a caller bug.
pub fn emit_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    debug_assert!(
        payloads.iter().rev().skip(1).all(|p| !p.is_encrypted()),
        "SK/SKF payload must be last"
    );
    for (i, payload) in payloads.iter().enumerate() {
        let next = match payload {
            Payload::Sk { first_inner, .. } | Payload::Skf { first_inner, .. } => *first_inner,
            _ => payloads.get(i + 1).map_or(PayloadType::None, Payload::kind),
        };
        let critical = match payload {
            Payload::Unknown { critical: true, .. } => CRITICAL,
            _ => 0,
        };
        let len = payload.buffer_len();
        debug_assert!(len <= usize::from(u16::MAX), "payload too long");
        out.push(next.into());
        out.push(critical);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        payload.emit_body(out);
    }
    payloads.first().map_or(PayloadType::None, Payload::kind)
}

#[cfg(test)]
mod tests {
    use super::super::sa::{Proposal, ProtocolId, Transform, TransformType};
    use super::super::{IdType, NotifyType};
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    fn round_trip(payloads: Vec<Payload>) {
        let mut out = Vec::new();
        let first = emit_payloads(&payloads, &mut out);
        assert_eq!(
            out.len(),
            payloads.iter().map(Payload::buffer_len).sum::<usize>()
        );
        assert_eq!(parse_payloads(first, &out).unwrap(), payloads);
        for len in 0..out.len() {
            assert!(parse_payloads(first, &out[..len]).is_err(), "len {len}");
        }
    }

    fn every_kind() -> Vec<Payload> {
        let id = |kind, data: &[u8]| Identification {
            kind,
            data: data.to_vec(),
        };
        vec![
            Payload::Sa(SaPayload {
                proposals: vec![Proposal {
                    num: 1,
                    protocol: ProtocolId::Esp,
                    spi: vec![1, 2, 3, 4],
                    transforms: vec![Transform::with_key_len(TransformType::Encr, 20, 256)],
                }],
            }),
            Payload::Ke {
                group: 31,
                data: vec![0x55; 32],
            },
            Payload::IdI(id(IdType::Fqdn, b"left")),
            Payload::IdR(id(IdType::Ipv4Addr, &[192, 0, 2, 1])),
            Payload::Auth {
                method: auth_method::SHARED_KEY_MIC,
                data: vec![0xaa; 32],
            },
            Payload::Nonce(vec![7; 32]),
            Payload::Notify(Notify::new(NotifyType::InitialContact, vec![])),
            Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spis: vec![vec![9, 9, 9, 9]],
            }),
            Payload::VendorId(b"ipsecgw".to_vec()),
            Payload::TsI(vec![TrafficSelector::from_subnet(
                "10.0.0.0/8".parse().unwrap(),
            )]),
            Payload::TsR(vec![TrafficSelector::from_subnet(
                "2001:db8::/32".parse().unwrap(),
            )]),
            Payload::Unknown {
                kind: PayloadType::CertReq,
                critical: false,
                data: vec![4],
            },
            Payload::Unknown {
                kind: PayloadType::Cp,
                critical: true,
                data: vec![1, 0, 0, 0],
            },
            Payload::Unknown {
                kind: PayloadType::Unknown(200),
                critical: false,
                data: vec![1, 2, 3],
            },
            Payload::Sk {
                first_inner: PayloadType::IdI,
                data: vec![0xee; 40],
            },
        ]
    }

    #[test]
    fn every_payload_kind_round_trips() {
        for p in every_kind() {
            round_trip(vec![p]);
        }
        round_trip(every_kind());
        round_trip(vec![]);
        round_trip(vec![Payload::Skf {
            first_inner: PayloadType::None,
            fragment: 2,
            total: 3,
            data: vec![1; 20],
        }]);
    }

    #[test]
    fn critical_bit() {
        // A non-critical unknown payload (type 99) before a Nonce: kept.
        let nonce = "00 00 0014 000102030405060708090a0b0c0d0e0f";
        let b = bytes(&format!("28 00 0006 abcd {nonce}"));
        let parsed = parse_payloads(PayloadType::Unknown(99), &b).unwrap();
        assert_eq!(
            parsed[0],
            Payload::Unknown {
                kind: PayloadType::Unknown(99),
                critical: false,
                data: vec![0xab, 0xcd]
            }
        );
        assert_eq!(parsed[1].kind(), PayloadType::Nonce);
        // The same payload marked critical: the message is rejected, naming
        // the type.
        let b = bytes(&format!("28 80 0006 abcd {nonce}"));
        let err = parse_payloads(PayloadType::Unknown(99), &b).unwrap_err();
        assert_eq!(err, InvalidMessage::UnsupportedCritical(99));
        assert_eq!(err.notify(), NotifyType::UnsupportedCriticalPayload);
        // The critical bit on a known type is ignored.
        let b = bytes("00 80 0014 000102030405060708090a0b0c0d0e0f");
        assert!(parse_payloads(PayloadType::Nonce, &b).is_ok());
    }

    #[test]
    fn chain_lengths() {
        let nonce = bytes("00 00 0014 000102030405060708090a0b0c0d0e0f");
        // Trailing data after Next Payload 0.
        let mut b = nonce.clone();
        b.push(0);
        assert_eq!(
            parse_payloads(PayloadType::Nonce, &b),
            Err(InvalidMessage::Syntax("data after the last payload"))
        );
        // Payload Length below 4, or past the end.
        for len in [0u16, 3, 0x15, 0xffff] {
            let mut b = nonce.clone();
            b[2..4].copy_from_slice(&len.to_be_bytes());
            assert!(parse_payloads(PayloadType::Nonce, &b).is_err(), "{len}");
        }
        // Next Payload names a payload that is not there.
        let mut b = nonce.clone();
        b[0] = 40;
        assert!(matches!(
            parse_payloads(PayloadType::Nonce, &b),
            Err(InvalidMessage::Truncated { .. })
        ));
        // Nothing at all with first = None is an empty chain.
        assert_eq!(parse_payloads(PayloadType::None, &[]), Ok(vec![]));
    }

    #[test]
    fn minimum_sizes() {
        // Nonce of 15 and 257 octets; KE, AUTH, ID, Notify, Delete, TS and
        // SKF bodies shorter than their fixed parts.
        let chain = |kind: u8, body: &[u8]| {
            let mut b = vec![0, 0];
            b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
            b.extend_from_slice(body);
            parse_payloads(PayloadType::from(kind), &b)
        };
        assert!(chain(40, &[0; 15]).is_err());
        assert!(chain(40, &[0; 16]).is_ok());
        assert!(chain(40, &[0; 256]).is_ok());
        assert!(chain(40, &[0; 257]).is_err());
        for kind in [34u8, 35, 36, 39, 41, 42, 44, 45, 53] {
            assert!(
                matches!(chain(kind, &[0; 3]), Err(InvalidMessage::BadLength { .. })),
                "{kind}"
            );
        }
        // SKF fragment numbers.
        assert!(chain(53, &[0, 0, 0, 1]).is_err());
        assert!(chain(53, &[0, 2, 0, 1]).is_err());
        assert!(chain(53, &[0, 1, 0, 1]).is_ok());
    }

    #[test]
    fn sk_must_be_last() {
        // SK followed by a Nonce: SK's length does not reach the end.
        let b = bytes("21 00 0008 01020304 00 00 0014 000102030405060708090a0b0c0d0e0f");
        assert_eq!(
            parse_payloads(PayloadType::Sk, &b),
            Err(InvalidMessage::Syntax("encrypted payload is not last"))
        );
        // SK's Next Payload is the inner type, not a chain link.
        let b = bytes("23 00 0008 01020304");
        assert_eq!(
            parse_payloads(PayloadType::Sk, &b),
            Ok(vec![Payload::Sk {
                first_inner: PayloadType::IdI,
                data: vec![1, 2, 3, 4]
            }])
        );
    }
}

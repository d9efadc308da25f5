//! The Security Association payload, RFC 7296 §3.3: proposals, transforms,
//! transform attributes.
//!
//! ```text
//! Proposal substructure (§3.3.1):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |         Proposal Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        SPI (variable)                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        <Transforms>                           ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Transform substructure (§3.3.2):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |        Transform Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Transform Type |   RESERVED    |          Transform ID         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Transform Attributes                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Data attribute (§3.3.5):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |A|       Attribute Type        |    AF=0  Attribute Length     |
//! |F|                             |    AF=1  Attribute Value      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   AF=0  Attribute Value                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::error::{InvalidMessage, Reader};

/// "Last Substruc" of a proposal followed by another, RFC 7296 §3.3.1.
const MORE_PROPOSALS: u8 = 2;
/// "Last Substruc" of a transform followed by another, RFC 7296 §3.3.2.
const MORE_TRANSFORMS: u8 = 3;
/// "Last Substruc" of the last proposal or transform, RFC 7296 §3.3.1/§3.3.2.
const LAST: u8 = 0;

/// Proposal header before the SPI, RFC 7296 §3.3.1.
const PROPOSAL_FIXED_LEN: usize = 8;
/// Transform header before the attributes, RFC 7296 §3.3.2.
const TRANSFORM_FIXED_LEN: usize = 8;
/// The Attribute Format bit: TV (value in the header) when set, §3.3.5.
const ATTR_FORMAT_TV: u16 = 0x8000;

/// The Key Length attribute type (TV format only), RFC 7296 §3.3.5.
pub const ATTR_KEY_LENGTH: u16 = 14;

registry! {
    /// Security Protocol Identifiers, RFC 7296 §3.3.1 (IANA "IKEv2 Security
    /// Protocol Identifiers"); `None` (0) is what a Notify without an SPI
    /// carries (§3.10).
    pub enum ProtocolId: u8 {
        /// No protocol (Notify payloads about no particular SA).
        None = 0,
        /// IKE.
        Ike = 1,
        /// AH.
        Ah = 2,
        /// ESP.
        Esp = 3,
    }
}

registry! {
    /// Transform Type Values, RFC 7296 §3.3.2.
    pub enum TransformType: u8 {
        /// Encryption Algorithm (ENCR).
        Encr = 1,
        /// Pseudorandom Function (PRF).
        Prf = 2,
        /// Integrity Algorithm (INTEG).
        Integ = 3,
        /// Diffie-Hellman group (D-H).
        Dh = 4,
        /// Extended Sequence Numbers (ESN).
        Esn = 5,
    }
}

/// Transform IDs this gateway is likely to name (RFC 7296 §3.3.2 and the
/// IANA "IKEv2 Transform Type N" registries). Not exhaustive: transform IDs
/// stay raw `u16` in [`Transform::id`].
pub mod transform_id {
    /// ENCR_AES_CBC, RFC 3602 (needs a Key Length attribute).
    pub const ENCR_AES_CBC: u16 = 12;
    /// ENCR_AES_GCM_16 (16-octet ICV), RFC 4106 (needs a Key Length attribute).
    pub const ENCR_AES_GCM_16: u16 = 20;
    /// ENCR_CHACHA20_POLY1305, RFC 7634.
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;
    /// PRF_HMAC_SHA2_256, RFC 4868.
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    /// PRF_HMAC_SHA2_384, RFC 4868.
    pub const PRF_HMAC_SHA2_384: u16 = 6;
    /// PRF_HMAC_SHA2_512, RFC 4868.
    pub const PRF_HMAC_SHA2_512: u16 = 7;
    /// AUTH_HMAC_SHA2_256_128, RFC 4868.
    pub const AUTH_HMAC_SHA2_256_128: u16 = 12;
    /// 2048-bit MODP group, RFC 3526.
    pub const DH_MODP_2048: u16 = 14;
    /// 256-bit random ECP group (P-256), RFC 5903.
    pub const DH_ECP_256: u16 = 19;
    /// Curve25519, RFC 8031.
    pub const DH_CURVE25519: u16 = 31;
    /// No Extended Sequence Numbers, RFC 7296 §3.3.2.
    pub const ESN_NONE: u16 = 0;
    /// Extended Sequence Numbers, RFC 7296 §3.3.2.
    pub const ESN_ENABLED: u16 = 1;
}

/// One transform: an algorithm of one type, with its key length if it has
/// one.
///
/// Unknown attributes: RFC 7296 §3.3.6 says a transform carrying an
/// attribute the receiver does not understand must not be chosen. The
/// parser drops such transforms from [`Proposal::transforms`] (they still
/// count towards Num Transforms when checking the wire), so a proposal that
/// relied on one simply lacks that transform type and fails selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transform {
    /// Transform Type.
    pub kind: TransformType,
    /// Transform ID (meaning depends on `kind`; see [`transform_id`]).
    pub id: u16,
    /// The Key Length attribute (type 14, TV format), in bits.
    pub key_len: Option<u16>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(kind: TransformType, id: u16) -> Self {
        Self {
            kind,
            id,
            key_len: None,
        }
    }

    /// A transform with a Key Length attribute.
    pub fn with_key_len(kind: TransformType, id: u16, key_len: u16) -> Self {
        Self {
            kind,
            id,
            key_len: Some(key_len),
        }
    }

    fn buffer_len(&self) -> usize {
        TRANSFORM_FIXED_LEN + if self.key_len.is_some() { 4 } else { 0 }
    }

    fn emit(&self, last: bool, out: &mut Vec<u8>) {
        out.push(if last { LAST } else { MORE_TRANSFORMS });
        out.push(0);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.push(self.kind.into());
        out.push(0);
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(key_len) = self.key_len {
            out.extend_from_slice(&(ATTR_FORMAT_TV | ATTR_KEY_LENGTH).to_be_bytes());
            out.extend_from_slice(&key_len.to_be_bytes());
        }
    }

    /// Parses one transform's type, ID and attributes (the bytes after its
    /// length field, up to its end). `None`: it has an unknown attribute.
    fn parse(body: &[u8]) -> Result<Option<Self>, InvalidMessage> {
        let mut r = Reader::new(body);
        let kind = TransformType::from(r.u8("transform type")?);
        r.u8("transform reserved")?;
        let id = r.u16("transform ID")?;
        let mut key_len = None;
        let mut unknown = false;
        while !r.is_empty() {
            let raw_type = r.u16("attribute type")?;
            let value = r.u16("attribute value")?;
            let attr_type = raw_type & !ATTR_FORMAT_TV;
            if raw_type & ATTR_FORMAT_TV == 0 {
                // TLV: `value` is the length of the value that follows.
                r.take(usize::from(value), "attribute value")?;
                if attr_type == ATTR_KEY_LENGTH {
                    return Err(InvalidMessage::Syntax(
                        "Key Length attribute not in TV format",
                    ));
                }
                unknown = true;
            } else if attr_type == ATTR_KEY_LENGTH {
                if key_len.replace(value).is_some() {
                    return Err(InvalidMessage::Syntax("duplicate Key Length attribute"));
                }
            } else {
                unknown = true;
            }
        }
        Ok((!unknown).then_some(Self { kind, id, key_len }))
    }
}

/// One proposal: a protocol, the sender's SPI for it, and the transforms
/// offered (any one per type) or chosen (one per type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num.
    pub num: u8,
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// The SPI: empty in IKE_SA_INIT, 8 octets when rekeying an IKE SA, 4
    /// for ESP and AH (§3.3.1). At most 255 octets.
    pub spi: Vec<u8>,
    /// The transforms, in wire order, minus those with unknown attributes.
    pub transforms: Vec<Transform>,
}

impl Proposal {
    fn buffer_len(&self) -> usize {
        PROPOSAL_FIXED_LEN
            + self.spi.len()
            + self
                .transforms
                .iter()
                .map(Transform::buffer_len)
                .sum::<usize>()
    }

    fn emit(&self, last: bool, out: &mut Vec<u8>) {
        debug_assert!(self.spi.len() <= 255 && self.transforms.len() <= 255);
        out.push(if last { LAST } else { MORE_PROPOSALS });
        out.push(0);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.push(self.num);
        out.push(self.protocol.into());
        out.push(self.spi.len() as u8);
        out.push(self.transforms.len() as u8);
        out.extend_from_slice(&self.spi);
        let n = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(i + 1 == n, out);
        }
    }

    /// Parses one proposal body (after its Last Substruc, reserved and length).
    fn parse(body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let num = r.u8("proposal number")?;
        let protocol = ProtocolId::from(r.u8("proposal protocol")?);
        let spi_size = r.u8("proposal SPI size")?;
        let count = r.u8("proposal transform count")?;
        let spi = r.take(usize::from(spi_size), "proposal SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(usize::from(count));
        let mut seen = 0usize;
        while !r.is_empty() {
            let marker = r.u8("transform last substruc")?;
            r.u8("transform reserved")?;
            let len = usize::from(r.u16("transform length")?);
            if len < TRANSFORM_FIXED_LEN {
                return Err(InvalidMessage::BadLength {
                    what: "transform length",
                    len,
                });
            }
            let body = r.take(len - 4, "transform")?;
            seen += 1;
            match (marker, r.is_empty()) {
                (LAST, true) | (MORE_TRANSFORMS, false) => {}
                (LAST, false) => {
                    return Err(InvalidMessage::Syntax("data after the last transform"))
                }
                (MORE_TRANSFORMS, true) => {
                    return Err(InvalidMessage::Syntax("transform marked not last is last"))
                }
                _ => return Err(InvalidMessage::Syntax("bad transform Last Substruc")),
            }
            if let Some(t) = Transform::parse(body)? {
                transforms.push(t);
            }
        }
        if seen != usize::from(count) {
            return Err(InvalidMessage::Syntax("Num Transforms does not match"));
        }
        Ok(Self {
            num,
            protocol,
            spi,
            transforms,
        })
    }
}

/// The SA payload: one or more proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    /// The proposals, in wire order.
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    /// Parses the SA payload body, checking every proposal and transform
    /// length, the Last Substruc markers (2/3 before another substructure, 0
    /// on the last) and the numbering of RFC 7296 §3.3.1: several proposals
    /// must be numbered 1, 2, 3, ... A lone proposal may carry any non-zero
    /// number, since a response repeats the number of the proposal it
    /// accepted; whether that number was offered is the caller's check.
    /// Proposals for unknown protocols are kept (the caller skips them).
    pub(crate) fn parse(body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        let mut proposals: Vec<Proposal> = Vec::new();
        if r.is_empty() {
            return Err(InvalidMessage::Syntax("SA payload without proposals"));
        }
        while !r.is_empty() {
            let marker = r.u8("proposal last substruc")?;
            r.u8("proposal reserved")?;
            let len = usize::from(r.u16("proposal length")?);
            if len < PROPOSAL_FIXED_LEN {
                return Err(InvalidMessage::BadLength {
                    what: "proposal length",
                    len,
                });
            }
            let body = r.take(len - 4, "proposal")?;
            match (marker, r.is_empty()) {
                (LAST, true) | (MORE_PROPOSALS, false) => {}
                (LAST, false) => {
                    return Err(InvalidMessage::Syntax("data after the last proposal"))
                }
                (MORE_PROPOSALS, true) => {
                    return Err(InvalidMessage::Syntax("proposal marked not last is last"))
                }
                _ => return Err(InvalidMessage::Syntax("bad proposal Last Substruc")),
            }
            proposals.push(Proposal::parse(body)?);
        }
        let numbered = match proposals.as_slice() {
            [one] => one.num != 0,
            many => many
                .iter()
                .enumerate()
                .all(|(i, p)| usize::from(p.num) == i + 1),
        };
        if !numbered {
            return Err(InvalidMessage::Syntax(
                "proposals not numbered 1, 2, 3, ...",
            ));
        }
        Ok(Self { proposals })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            p.emit(i + 1 == n, out);
        }
    }

    pub(crate) fn buffer_len(&self) -> usize {
        self.proposals.iter().map(Proposal::buffer_len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// One IKE proposal (RFC 7296 §3.3 layout): AES-GCM-16 with a 256-bit
    /// key (Key Length in TV form, 0x800e), PRF_HMAC_SHA2_256, Curve25519.
    const IKE_PROPOSAL: &str = "
        00 00 0024  01 01 00 03
          03 00 000c  01 00 0014  800e 0100
          03 00 0008  02 00 0005
          00 00 0008  04 00 001f";

    fn ike_proposal() -> Proposal {
        Proposal {
            num: 1,
            protocol: ProtocolId::Ike,
            spi: vec![],
            transforms: vec![
                Transform::with_key_len(TransformType::Encr, transform_id::ENCR_AES_GCM_16, 256),
                Transform::new(TransformType::Prf, transform_id::PRF_HMAC_SHA2_256),
                Transform::new(TransformType::Dh, transform_id::DH_CURVE25519),
            ],
        }
    }

    #[test]
    fn deconstruct_and_construct() {
        let b = bytes(IKE_PROPOSAL);
        let sa = SaPayload::parse(&b).unwrap();
        assert_eq!(sa.proposals, vec![ike_proposal()]);
        let mut out = Vec::new();
        sa.emit(&mut out);
        assert_eq!(out, b);
        assert_eq!(sa.buffer_len(), b.len());
    }

    #[test]
    fn two_esp_proposals() {
        let sa = SaPayload {
            proposals: vec![
                Proposal {
                    num: 1,
                    protocol: ProtocolId::Esp,
                    spi: vec![0xde, 0xad, 0xbe, 0xef],
                    transforms: vec![
                        Transform::with_key_len(TransformType::Encr, 20, 128),
                        Transform::new(TransformType::Esn, 0),
                    ],
                },
                Proposal {
                    num: 2,
                    protocol: ProtocolId::Esp,
                    spi: vec![0xde, 0xad, 0xbe, 0xef],
                    transforms: vec![Transform::new(TransformType::Encr, 28)],
                },
            ],
        };
        let mut out = Vec::new();
        sa.emit(&mut out);
        assert_eq!(out[0], MORE_PROPOSALS);
        assert_eq!(SaPayload::parse(&out).unwrap(), sa);
    }

    #[test]
    fn truncated_buffers_fail() {
        let b = bytes(IKE_PROPOSAL);
        for len in 0..b.len() {
            assert!(SaPayload::parse(&b[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn bad_last_substructure_markers() {
        let good = bytes(IKE_PROPOSAL);
        // Proposal marker 2 on the only proposal, 3 (a transform's), 1.
        for m in [2u8, 3, 1] {
            let mut b = good.clone();
            b[0] = m;
            assert!(
                matches!(SaPayload::parse(&b), Err(InvalidMessage::Syntax(_))),
                "{m}"
            );
        }
        // Last transform marked "more"; first transform marked last;
        // a transform using the proposal marker 2.
        for (at, m) in [(28, MORE_TRANSFORMS), (8, LAST), (8, MORE_PROPOSALS)] {
            let mut b = good.clone();
            b[at] = m;
            assert!(
                matches!(SaPayload::parse(&b), Err(InvalidMessage::Syntax(_))),
                "{at} {m}"
            );
        }
        // Two proposals, the first marked last.
        let mut two = good.clone();
        two.extend_from_slice(&good);
        two[40] = 2; // second proposal number
        assert!(matches!(
            SaPayload::parse(&two),
            Err(InvalidMessage::Syntax(_))
        ));
        two[0] = MORE_PROPOSALS;
        assert_eq!(SaPayload::parse(&two).unwrap().proposals.len(), 2);
    }

    #[test]
    fn lying_lengths() {
        let good = bytes(IKE_PROPOSAL);
        // Proposal length longer than the payload, shorter than its header.
        for len in [0x25u16, 0xffff, 7, 0] {
            let mut b = good.clone();
            b[2..4].copy_from_slice(&len.to_be_bytes());
            assert!(SaPayload::parse(&b).is_err(), "proposal len {len}");
        }
        // Proposal length shorter than its transforms: the tail is left
        // over and is not a proposal.
        let mut b = good.clone();
        b[2..4].copy_from_slice(&0x20u16.to_be_bytes());
        assert!(SaPayload::parse(&b).is_err());
        // First transform length too long, too short, cutting its attribute.
        for len in [0x0du16, 0x40, 7, 0, 0x0a] {
            let mut b = good.clone();
            b[10..12].copy_from_slice(&len.to_be_bytes());
            assert!(SaPayload::parse(&b).is_err(), "transform len {len}");
        }
        // SPI size running past the proposal.
        let mut b = good.clone();
        b[6] = 0x40;
        assert!(SaPayload::parse(&b).is_err());
        // Num Transforms disagreeing with the transforms present.
        for n in [2u8, 4, 0] {
            let mut b = good.clone();
            b[7] = n;
            assert_eq!(
                SaPayload::parse(&b),
                Err(InvalidMessage::Syntax("Num Transforms does not match"))
            );
        }
    }

    #[test]
    fn key_length_attribute_forms() {
        // TV form 0x800e: parsed (above). TLV form of type 14: rejected.
        let tlv = bytes(
            "00 00 0016  01 01 00 01
               00 00 000e  01 00 0014  000e 0002 0100",
        );
        assert_eq!(
            SaPayload::parse(&tlv),
            Err(InvalidMessage::Syntax(
                "Key Length attribute not in TV format"
            ))
        );
        // Two Key Length attributes.
        let dup = bytes(
            "00 00 0018  01 01 00 01
               00 00 0010  01 00 0014  800e 0100 800e 0080",
        );
        assert!(SaPayload::parse(&dup).is_err());
        // A truncated TV attribute.
        let short = bytes(
            "00 00 0012  01 01 00 01
               00 00 000a  01 00 0014  800e",
        );
        assert!(SaPayload::parse(&short).is_err());
    }

    #[test]
    fn transforms_with_unknown_attributes_are_dropped() {
        // ENCR with an unknown TV attribute (type 0x0123), ENCR with an
        // unknown TLV attribute (3 value bytes), then a plain PRF.
        let b = bytes(
            "00 00 002b  01 03 00 03
               03 00 000c  01 00 0014  8123 0001
               03 00 000f  01 00 000c  0124 0003 aabbcc
               00 00 0008  02 00 0005",
        );
        let sa = SaPayload::parse(&b).unwrap();
        assert_eq!(
            sa.proposals[0].transforms,
            vec![Transform::new(TransformType::Prf, 5)]
        );
        // An unknown TLV attribute whose length runs past the transform.
        let bad = bytes(
            "00 00 0017  01 03 00 01
               00 00 000f  01 00 000c  0124 0004 aabbcc",
        );
        assert!(SaPayload::parse(&bad).is_err());
    }

    #[test]
    fn proposal_numbering() {
        let p = |num| Proposal {
            num,
            ..ike_proposal()
        };
        let emit = |proposals: Vec<Proposal>| {
            let mut out = Vec::new();
            SaPayload { proposals }.emit(&mut out);
            out
        };
        assert!(SaPayload::parse(&emit(vec![p(1), p(2), p(3)])).is_ok());
        // A response carries the accepted proposal's number.
        assert!(SaPayload::parse(&emit(vec![p(3)])).is_ok());
        for bad in [
            vec![p(0)],
            vec![p(2), p(3)],
            vec![p(1), p(1)],
            vec![p(1), p(3)],
        ] {
            assert_eq!(
                SaPayload::parse(&emit(bad)),
                Err(InvalidMessage::Syntax(
                    "proposals not numbered 1, 2, 3, ..."
                ))
            );
        }
    }

    #[test]
    fn empty_sa_payload_is_rejected() {
        assert!(SaPayload::parse(&[]).is_err());
    }

    #[test]
    fn unknown_protocols_and_types_round_trip() {
        let sa = SaPayload {
            proposals: vec![Proposal {
                num: 1,
                protocol: ProtocolId::from(77),
                spi: vec![1, 2],
                transforms: vec![Transform::new(TransformType::from(200), 0xbeef)],
            }],
        };
        let mut out = Vec::new();
        sa.emit(&mut out);
        assert_eq!(SaPayload::parse(&out).unwrap(), sa);
    }
}

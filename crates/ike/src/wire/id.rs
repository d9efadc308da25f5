//! The Identification payloads (IDi, IDr), RFC 7296 §3.5.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   ID Type     |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                   Identification Data                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::error::{InvalidMessage, Reader};

registry! {
    /// IKEv2 Identification Payload ID Types, RFC 7296 §3.5.
    pub enum IdType: u8 {
        /// A 4-octet IPv4 address.
        Ipv4Addr = 1,
        /// A fully qualified domain name, no terminator.
        Fqdn = 2,
        /// An RFC 822 email address, no terminator.
        Rfc822Addr = 3,
        /// A 16-octet IPv6 address.
        Ipv6Addr = 5,
        /// A DER-encoded X.500 Distinguished Name.
        DerAsn1Dn = 9,
        /// A DER-encoded X.509 GeneralName.
        DerAsn1Gn = 10,
        /// An opaque octet stream.
        KeyId = 11,
    }
}

/// An identity: ID Type and Identification Data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identification {
    /// ID Type.
    pub kind: IdType,
    /// Identification Data.
    pub data: Vec<u8>,
}

impl Identification {
    /// ID Type and the three reserved octets, RFC 7296 §3.5.
    pub const FIXED_LEN: usize = 4;

    /// The payload body after the generic header: ID Type, three zero
    /// octets, the data. This is RestOfInitIDPayload / RestOfRespIDPayload,
    /// the octets the AUTH computation MACs (RFC 7296 §2.15).
    ///
    /// Parsing does not keep the reserved octets: RFC 7296 §3.5 says they
    /// MUST be sent as zero, and this returns zeros. The AUTH payload a
    /// peer computed over non-zero reserved octets therefore fails to verify
    /// here; strongSwan and libreswan send zeros.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }

    /// Parses the body, checking that IPv4 and IPv6 addresses have their
    /// fixed sizes (the other types are variable-length).
    pub(crate) fn parse(body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body);
        if body.len() < Self::FIXED_LEN {
            return Err(InvalidMessage::BadLength {
                what: "ID payload",
                len: body.len(),
            });
        }
        let kind = IdType::from(r.u8("ID type")?);
        r.take(3, "ID reserved")?;
        let data = r.rest();
        let fixed = match kind {
            IdType::Ipv4Addr => Some(4),
            IdType::Ipv6Addr => Some(16),
            _ => None,
        };
        if fixed.is_some_and(|n| n != data.len()) {
            return Err(InvalidMessage::BadLength {
                what: "ID address",
                len: data.len(),
            });
        }
        Ok(Self {
            kind,
            data: data.to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.kind.into());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_round_trip() {
        let b = b"\x02\x00\x00\x00gw.example.com".to_vec();
        let id = Identification::parse(&b).unwrap();
        assert_eq!(id.kind, IdType::Fqdn);
        assert_eq!(id.data, b"gw.example.com");
        assert_eq!(id.body(), b);
        for len in 0..4 {
            assert!(Identification::parse(&b[..len]).is_err());
        }
    }

    #[test]
    fn address_sizes_are_checked() {
        assert!(Identification::parse(&[1, 0, 0, 0, 192, 0, 2, 1]).is_ok());
        assert!(Identification::parse(&[1, 0, 0, 0, 192, 0, 2]).is_err());
        assert!(Identification::parse(&[5, 0, 0, 0, 192, 0, 2, 1]).is_err());
        let mut v6 = vec![5, 0, 0, 0];
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6.resize(20, 0);
        assert_eq!(Identification::parse(&v6).unwrap().kind, IdType::Ipv6Addr);
    }

    #[test]
    fn reserved_octets_are_zeroed() {
        let id = Identification::parse(&[11, 1, 2, 3, 0xaa]).unwrap();
        assert_eq!(id.body(), vec![11, 0, 0, 0, 0xaa]);
        assert_eq!(IdType::from(13), IdType::Unknown(13));
    }
}

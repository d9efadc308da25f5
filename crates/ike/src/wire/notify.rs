//! The Notify payload, RFC 7296 §3.10.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Protocol ID  |   SPI Size    |      Notify Message Type      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                Security Parameter Index (SPI)                 ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       Notification Data                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! (the body after the generic payload header).

use super::error::{InvalidMessage, Reader};
use super::sa::ProtocolId;

registry! {
    /// IKEv2 Notify Message Types (RFC 7296 §3.10.1 and the IANA registry).
    /// Values below 16384 are errors, the rest status.
    pub enum NotifyType: u16 {
        /// UNSUPPORTED_CRITICAL_PAYLOAD; data: the one-octet payload type.
        UnsupportedCriticalPayload = 1,
        /// INVALID_IKE_SPI.
        InvalidIkeSpi = 4,
        /// INVALID_MAJOR_VERSION; data: the highest major version supported.
        InvalidMajorVersion = 5,
        /// INVALID_SYNTAX.
        InvalidSyntax = 7,
        /// INVALID_MESSAGE_ID; data: the 4-octet message ID.
        InvalidMessageId = 9,
        /// INVALID_SPI; data: the SPI.
        InvalidSpi = 11,
        /// NO_PROPOSAL_CHOSEN.
        NoProposalChosen = 14,
        /// INVALID_KE_PAYLOAD; data: the 2-octet accepted DH group.
        InvalidKePayload = 17,
        /// AUTHENTICATION_FAILED.
        AuthenticationFailed = 24,
        /// SINGLE_PAIR_REQUIRED.
        SinglePairRequired = 34,
        /// NO_ADDITIONAL_SAS.
        NoAdditionalSas = 35,
        /// INTERNAL_ADDRESS_FAILURE.
        InternalAddressFailure = 36,
        /// FAILED_CP_REQUIRED.
        FailedCpRequired = 37,
        /// TS_UNACCEPTABLE.
        TsUnacceptable = 38,
        /// INVALID_SELECTORS.
        InvalidSelectors = 39,
        /// TEMPORARY_FAILURE.
        TemporaryFailure = 43,
        /// CHILD_SA_NOT_FOUND.
        ChildSaNotFound = 44,
        /// INITIAL_CONTACT.
        InitialContact = 16384,
        /// SET_WINDOW_SIZE; data: the 4-octet window size.
        SetWindowSize = 16385,
        /// ADDITIONAL_TS_POSSIBLE.
        AdditionalTsPossible = 16386,
        /// IPCOMP_SUPPORTED.
        IpcompSupported = 16387,
        /// NAT_DETECTION_SOURCE_IP; data: SHA-1 of SPIs, address, port.
        NatDetectionSourceIp = 16388,
        /// NAT_DETECTION_DESTINATION_IP.
        NatDetectionDestinationIp = 16389,
        /// COOKIE; data: 1 to 64 octets.
        Cookie = 16390,
        /// USE_TRANSPORT_MODE.
        UseTransportMode = 16391,
        /// REKEY_SA.
        RekeySa = 16393,
        /// ESP_TFC_PADDING_NOT_SUPPORTED.
        EspTfcPaddingNotSupported = 16394,
        /// NON_FIRST_FRAGMENTS_ALSO.
        NonFirstFragmentsAlso = 16395,
        /// MOBIKE_SUPPORTED, RFC 4555 §4.2.1.
        MobikeSupported = 16396,
        /// IKEV2_FRAGMENTATION_SUPPORTED, RFC 7383 §2.3.
        Ikev2FragmentationSupported = 16430,
        /// SIGNATURE_HASH_ALGORITHMS, RFC 7427 §4.
        SignatureHashAlgorithms = 16431,
    }
}

impl NotifyType {
    /// The first status type: lower values are errors (RFC 7296 §3.10.1).
    pub const FIRST_STATUS: u16 = 16384;

    /// Whether this is an error notification (type below 16384).
    pub fn is_error(self) -> bool {
        u16::from(self) < Self::FIRST_STATUS
    }
}

/// A Notify payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The SA the notification concerns; [`ProtocolId::None`] when the SPI is
    /// empty (RFC 7296 §3.10: then sent as zero and ignored on receipt).
    pub protocol: ProtocolId,
    /// The SPI (empty, or 4 octets for ESP/AH, 8 for IKE). At most 255
    /// octets: the SPI Size field is one octet.
    pub spi: Vec<u8>,
    /// Notify Message Type.
    pub kind: NotifyType,
    /// Notification Data.
    pub data: Vec<u8>,
}

impl Notify {
    /// Protocol ID, SPI Size, Notify Message Type.
    pub const FIXED_LEN: usize = 4;

    /// A notify about no particular SA.
    pub fn new(kind: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: ProtocolId::None,
            spi: Vec::new(),
            kind,
            data,
        }
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Self, InvalidMessage> {
        if body.len() < Self::FIXED_LEN {
            return Err(InvalidMessage::BadLength {
                what: "Notify payload",
                len: body.len(),
            });
        }
        let mut r = Reader::new(body);
        let protocol = ProtocolId::from(r.u8("Notify protocol")?);
        let spi_size = r.u8("Notify SPI size")?;
        let kind = NotifyType::from(r.u16("Notify type")?);
        let spi = r.take(usize::from(spi_size), "Notify SPI")?.to_vec();
        Ok(Self {
            protocol,
            spi,
            kind,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        debug_assert!(self.spi.len() <= 255, "Notify SPI longer than 255 octets");
        out.push(self.protocol.into());
        out.push(self.spi.len() as u8);
        out.extend_from_slice(&u16::from(self.kind).to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + self.spi.len() + self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A REKEY_SA notify for ESP SPI 0xc0ffee01 (RFC 7296 §3.10 layout).
    const REKEY: &str = "03 04 4009 c0ffee01";
    /// NAT_DETECTION_SOURCE_IP with a 20-octet SHA-1 digest.
    const NATD: &str = "00 00 4004 000102030405060708090a0b0c0d0e0f10111213";

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn parse_and_emit() {
        let n = Notify::parse(&bytes(REKEY)).unwrap();
        assert_eq!(n.protocol, ProtocolId::Esp);
        assert_eq!(n.spi, vec![0xc0, 0xff, 0xee, 0x01]);
        assert_eq!(n.kind, NotifyType::RekeySa);
        assert!(n.data.is_empty());
        let mut out = Vec::new();
        n.emit(&mut out);
        assert_eq!(out, bytes(REKEY));
        assert_eq!(n.buffer_len(), out.len());

        let n = Notify::parse(&bytes(NATD)).unwrap();
        assert_eq!(
            n,
            Notify::new(NotifyType::NatDetectionSourceIp, (0..20).collect())
        );
        let mut out = Vec::new();
        n.emit(&mut out);
        assert_eq!(out, bytes(NATD));
    }

    #[test]
    fn truncated_buffers_fail() {
        let b = bytes(REKEY);
        for len in 0..b.len() {
            assert!(Notify::parse(&b[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn error_or_status() {
        assert!(NotifyType::InvalidSyntax.is_error());
        assert!(NotifyType::ChildSaNotFound.is_error());
        assert!(NotifyType::Unknown(16383).is_error());
        assert!(!NotifyType::InitialContact.is_error());
        assert!(!NotifyType::from(40000).is_error());
        assert_eq!(
            NotifyType::from(16430),
            NotifyType::Ikev2FragmentationSupported
        );
        assert_eq!(NotifyType::from(16431), NotifyType::SignatureHashAlgorithms);
        assert_eq!(NotifyType::from(16396), NotifyType::MobikeSupported);
        assert_eq!(u16::from(NotifyType::Cookie), 16390);
    }
}

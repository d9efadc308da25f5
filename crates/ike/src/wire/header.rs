//! The IKE header (RFC 7296 §3.1) and the registries it names.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::error::{InvalidMessage, Reader};
use super::IKE_HEADER_LEN;

/// Field offsets of the IKE header, RFC 7296 §3.1.
pub mod field {
    use std::ops::Range;
    /// IKE SA Initiator's SPI.
    pub const SPI_I: Range<usize> = 0..8;
    /// IKE SA Responder's SPI (zero in the first IKE_SA_INIT request).
    pub const SPI_R: Range<usize> = 8..16;
    /// Type of the first payload.
    pub const NEXT_PAYLOAD: usize = 16;
    /// Major version (high nibble) and minor version (low nibble).
    pub const VERSION: usize = 17;
    /// Exchange type.
    pub const EXCHANGE: usize = 18;
    /// Flags.
    pub const FLAGS: usize = 19;
    /// Message ID.
    pub const MESSAGE_ID: Range<usize> = 20..24;
    /// Length of the whole message, header included.
    pub const LENGTH: Range<usize> = 24..28;
}

registry! {
    /// IKEv2 Exchange Types, RFC 7296 §3.1 (IANA "IKEv2 Exchange Types").
    pub enum ExchangeType: u8 {
        /// IKE_SA_INIT.
        IkeSaInit = 34,
        /// IKE_AUTH.
        IkeAuth = 35,
        /// CREATE_CHILD_SA.
        CreateChildSa = 36,
        /// INFORMATIONAL.
        Informational = 37,
    }
}

registry! {
    /// IKEv2 Payload Types, RFC 7296 §3.2 (IANA "IKEv2 Payload Types").
    pub enum PayloadType: u8 {
        /// No Next Payload: the end of a chain.
        None = 0,
        /// Security Association, §3.3.
        Sa = 33,
        /// Key Exchange, §3.4.
        Ke = 34,
        /// Identification - Initiator, §3.5.
        IdI = 35,
        /// Identification - Responder, §3.5.
        IdR = 36,
        /// Certificate, §3.6.
        Cert = 37,
        /// Certificate Request, §3.7.
        CertReq = 38,
        /// Authentication, §3.8.
        Auth = 39,
        /// Nonce (Ni, Nr), §3.9.
        Nonce = 40,
        /// Notify, §3.10.
        Notify = 41,
        /// Delete, §3.11.
        Delete = 42,
        /// Vendor ID, §3.12.
        VendorId = 43,
        /// Traffic Selector - Initiator, §3.13.
        TsI = 44,
        /// Traffic Selector - Responder, §3.13.
        TsR = 45,
        /// Encrypted and Authenticated, §3.14.
        Sk = 46,
        /// Configuration, §3.15.
        Cp = 47,
        /// Extensible Authentication, §3.16.
        Eap = 48,
        /// Encrypted and Authenticated Fragment, RFC 7383 §2.5.
        Skf = 53,
    }
}

/// The header flags RFC 7296 §3.1 defines. The other bits are "X" bits:
/// cleared when sending, ignored on receipt, so they do not round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags {
    /// I: set in messages sent by the original initiator of the IKE SA.
    pub initiator: bool,
    /// R: this message is a response.
    pub response: bool,
    /// V: the sender can speak a higher major version than it uses.
    pub version: bool,
}

impl Flags {
    /// Initiator bit, RFC 7296 §3.1.
    pub const INITIATOR: u8 = 0x08;
    /// Version bit, RFC 7296 §3.1.
    pub const VERSION: u8 = 0x10;
    /// Response bit, RFC 7296 §3.1.
    pub const RESPONSE: u8 = 0x20;

    /// The flags in an octet; X bits ignored.
    pub fn from_bits(bits: u8) -> Self {
        Self {
            initiator: bits & Self::INITIATOR != 0,
            response: bits & Self::RESPONSE != 0,
            version: bits & Self::VERSION != 0,
        }
    }

    /// The octet on the wire, X bits clear.
    pub fn bits(self) -> u8 {
        (if self.initiator { Self::INITIATOR } else { 0 })
            | (if self.response { Self::RESPONSE } else { 0 })
            | (if self.version { Self::VERSION } else { 0 })
    }
}

/// The IKE header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// IKE SA Initiator's SPI.
    pub spi_i: [u8; 8],
    /// IKE SA Responder's SPI.
    pub spi_r: [u8; 8],
    /// Type of the first payload.
    pub next_payload: PayloadType,
    /// Major version: 2 here; anything else is returned as-is so the caller
    /// can answer INVALID_MAJOR_VERSION (RFC 7296 §2.5).
    pub major: u8,
    /// Minor version (0; ignored on receipt, §3.1).
    pub minor: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// I, R, V flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
    /// Length of the whole message in octets, header included.
    pub length: u32,
}

impl Header {
    /// Parses the header of `datagram`, checking that the claimed message
    /// length covers at least the header and fits in the datagram. The
    /// version is not checked (see [`Header::major`]).
    pub fn parse(datagram: &[u8]) -> Result<Header, InvalidMessage> {
        let packet = IkePacket::new_checked(datagram)?;
        Ok(Header {
            spi_i: packet.spi_i(),
            spi_r: packet.spi_r(),
            next_payload: packet.next_payload(),
            major: packet.major(),
            minor: packet.minor(),
            exchange: packet.exchange(),
            flags: packet.flags(),
            message_id: packet.message_id(),
            length: packet.length(),
        })
    }

    /// Writes the header into the first [`IKE_HEADER_LEN`] bytes of `out`,
    /// as given (`length` and `next_payload` are not recomputed; use
    /// [`super::Message::emit`] for that). Versions are masked to 4 bits.
    ///
    /// An `out` shorter than [`IKE_HEADER_LEN`] is a caller bug: debug
    /// builds panic, release builds write nothing.
    pub fn emit(&self, out: &mut [u8]) {
        debug_assert!(out.len() >= IKE_HEADER_LEN, "IKE header buffer too short");
        if let Some(out) = out.get_mut(..IKE_HEADER_LEN) {
            out.copy_from_slice(&self.to_bytes());
        }
    }

    /// The header's 28 octets.
    pub fn to_bytes(&self) -> [u8; IKE_HEADER_LEN] {
        let mut b = [0u8; IKE_HEADER_LEN];
        let mut w = Writer(&mut b);
        w.put(&self.spi_i);
        w.put(&self.spi_r);
        w.put(&[
            self.next_payload.into(),
            (self.major & 0x0f) << 4 | (self.minor & 0x0f),
            self.exchange.into(),
            self.flags.bits(),
        ]);
        w.put(&self.message_id.to_be_bytes());
        w.put(&self.length.to_be_bytes());
        b
    }

    /// The number of bytes [`Header::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        IKE_HEADER_LEN
    }
}

/// Appends to a fixed array; a small helper so `to_bytes` has no offsets.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let buf = std::mem::take(&mut self.0);
        let n = bytes.len().min(buf.len());
        let (head, tail) = buf.split_at_mut(n);
        head.copy_from_slice(bytes.get(..n).unwrap_or_default());
        self.0 = tail;
    }
}

/// A view of an IKE message (header and payloads) whose header length has
/// been checked against the buffer. Getters never panic; the setters exist
/// for `T: AsMut<[u8]>`, e.g. to patch the length of a message being built.
#[derive(Debug, Clone)]
pub struct IkePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IkePacket<T> {
    /// Wraps `buffer` after checking that it holds a header whose Length
    /// field is at least [`IKE_HEADER_LEN`] and at most the buffer's length
    /// (RFC 7296 §3.1). Bytes past Length are not part of the message.
    pub fn new_checked(buffer: T) -> Result<Self, InvalidMessage> {
        let bytes = buffer.as_ref();
        let mut r = Reader::new(bytes);
        let header = r.take(IKE_HEADER_LEN, "IKE header")?;
        let length = Reader::new(header.get(field::LENGTH).unwrap_or_default()).u32("length")?;
        let length = length as usize;
        if length < IKE_HEADER_LEN {
            return Err(InvalidMessage::BadLength {
                what: "IKE message length",
                len: length,
            });
        }
        if length > bytes.len() {
            return Err(InvalidMessage::Truncated {
                what: "IKE message",
                need: length,
                have: bytes.len(),
            });
        }
        Ok(Self { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, at: usize) -> u8 {
        // new_checked guaranteed IKE_HEADER_LEN bytes.
        self.buffer.as_ref().get(at).copied().unwrap_or_default()
    }

    fn array<const N: usize>(&self, range: std::ops::Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buffer.as_ref().get(range) {
            if src.len() == N {
                out.copy_from_slice(src);
            }
        }
        out
    }

    /// IKE SA Initiator's SPI.
    pub fn spi_i(&self) -> [u8; 8] {
        self.array(field::SPI_I)
    }

    /// IKE SA Responder's SPI.
    pub fn spi_r(&self) -> [u8; 8] {
        self.array(field::SPI_R)
    }

    /// Type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        self.byte(field::NEXT_PAYLOAD).into()
    }

    /// Major version.
    pub fn major(&self) -> u8 {
        self.byte(field::VERSION) >> 4
    }

    /// Minor version.
    pub fn minor(&self) -> u8 {
        self.byte(field::VERSION) & 0x0f
    }

    /// Exchange type.
    pub fn exchange(&self) -> ExchangeType {
        self.byte(field::EXCHANGE).into()
    }

    /// Flags (X bits dropped).
    pub fn flags(&self) -> Flags {
        Flags::from_bits(self.byte(field::FLAGS))
    }

    /// Message ID.
    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(self.array(field::MESSAGE_ID))
    }

    /// Length of the message (checked: between 28 and the buffer length).
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(self.array(field::LENGTH))
    }

    /// The message: header and payloads, without bytes past Length.
    pub fn message(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        bytes.get(..self.length() as usize).unwrap_or(bytes)
    }

    /// The payload chain: the bytes between header and Length.
    pub fn payloads(&self) -> &[u8] {
        self.message().get(IKE_HEADER_LEN..).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IkePacket<T> {
    /// Sets the Length field. The caller keeps it within the buffer; the
    /// getters stay panic-free even if it does not.
    pub fn set_length(&mut self, length: u32) {
        if let Some(dst) = self.buffer.as_mut().get_mut(field::LENGTH) {
            dst.copy_from_slice(&length.to_be_bytes());
        }
    }

    /// Sets the type of the first payload.
    pub fn set_next_payload(&mut self, next: PayloadType) {
        if let Some(dst) = self.buffer.as_mut().get_mut(field::NEXT_PAYLOAD) {
            *dst = next.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of an IKE_SA_INIT request, laid out per RFC 7296 §3.1:
    /// SPIi 0x0102030405060708, SPIr 0, next payload SA (33), version 2.0,
    /// exchange 34, flags I, message ID 0, length 0x0130 (304).
    const SA_INIT_HEADER: &str = concat!(
        "0102030405060708", // SPIi
        "0000000000000000", // SPIr
        "21",               // next payload: SA
        "20",               // MjVer 2, MnVer 0
        "22",               // IKE_SA_INIT
        "08",               // flags: Initiator
        "00000000",         // message ID
        "00000130",         // length
    );

    fn header_bytes() -> Vec<u8> {
        hex::decode(SA_INIT_HEADER).unwrap()
    }

    #[test]
    fn deconstruct() {
        let mut datagram = header_bytes();
        datagram.resize(0x130, 0);
        let h = Header::parse(&datagram).unwrap();
        assert_eq!(h.spi_i, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(h.spi_r, [0; 8]);
        assert_eq!(h.next_payload, PayloadType::Sa);
        assert_eq!((h.major, h.minor), (2, 0));
        assert_eq!(h.exchange, ExchangeType::IkeSaInit);
        assert_eq!(
            h.flags,
            Flags {
                initiator: true,
                response: false,
                version: false
            }
        );
        assert_eq!(h.message_id, 0);
        assert_eq!(h.length, 0x130);
    }

    #[test]
    fn construct() {
        let mut datagram = header_bytes();
        datagram.resize(0x130, 0);
        let h = Header::parse(&datagram).unwrap();
        let mut out = [0xffu8; IKE_HEADER_LEN];
        h.emit(&mut out);
        assert_eq!(&out[..], &header_bytes()[..]);
        assert_eq!(h.to_bytes().to_vec(), header_bytes());
    }

    #[test]
    fn truncated_buffers_fail() {
        let mut datagram = header_bytes();
        datagram.resize(0x130, 0);
        for len in 0..datagram.len() {
            assert!(Header::parse(&datagram[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn length_checks() {
        let mut b = header_bytes();
        // Length below the header size.
        b[24..28].copy_from_slice(&27u32.to_be_bytes());
        assert_eq!(
            Header::parse(&b),
            Err(InvalidMessage::BadLength {
                what: "IKE message length",
                len: 27
            })
        );
        // Exactly a bare header is fine.
        b[24..28].copy_from_slice(&28u32.to_be_bytes());
        assert_eq!(Header::parse(&b).unwrap().length, 28);
        // Longer than the datagram.
        b[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(InvalidMessage::Truncated { .. })
        ));
    }

    #[test]
    fn other_major_versions_are_returned_not_rejected() {
        let mut b = header_bytes();
        b[17] = 0x31;
        b[24..28].copy_from_slice(&28u32.to_be_bytes());
        let h = Header::parse(&b).unwrap();
        assert_eq!((h.major, h.minor), (3, 1));
    }

    #[test]
    fn x_bits_are_ignored_and_cleared() {
        let mut b = header_bytes();
        b[19] = 0xff;
        b[24..28].copy_from_slice(&28u32.to_be_bytes());
        let h = Header::parse(&b).unwrap();
        assert_eq!(
            h.flags,
            Flags {
                initiator: true,
                response: true,
                version: true
            }
        );
        assert_eq!(h.to_bytes()[19], 0x38);
    }

    #[test]
    fn registries_round_trip_every_value() {
        for raw in 0..=u8::MAX {
            assert_eq!(u8::from(PayloadType::from(raw)), raw);
            assert_eq!(u8::from(ExchangeType::from(raw)), raw);
        }
        assert_eq!(PayloadType::from(53), PayloadType::Skf);
        assert_eq!(PayloadType::from(49), PayloadType::Unknown(49));
        assert_eq!(ExchangeType::from(37), ExchangeType::Informational);
    }

    #[test]
    fn packet_view_setters() {
        let mut b = header_bytes();
        b.resize(40, 0);
        b[24..28].copy_from_slice(&32u32.to_be_bytes());
        let mut p = IkePacket::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.payloads().len(), 4);
        p.set_length(40);
        p.set_next_payload(PayloadType::Sk);
        assert_eq!(p.length(), 40);
        assert_eq!(p.next_payload(), PayloadType::Sk);
        assert_eq!(p.message().len(), 40);
    }
}

//! The ESP packet: header, IV, encrypted payload + trailer, ICV.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Security Parameters Index (SPI)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Sequence Number (low 32 bits)            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 IV (8 octets for AES-GCM, RFC 4106 §3)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Payload (inner packet) | Padding | Pad Length | Next Hdr |  encrypted
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 ICV (16 octets for AES-GCM-16)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! (RFC 4303 §2, Figure 1.)

use std::ops::Range;

use crate::algorithm::{GCM16_ICV_LEN, GCM_IV_LEN};
use crate::Algorithm;

/// Field offsets of the fixed header (RFC 4303 §2).
pub mod field {
    use std::ops::Range;
    /// Security Parameters Index, RFC 4303 §2.1.
    pub const SPI: Range<usize> = 0..4;
    /// Sequence number (low 32 bits with ESN), RFC 4303 §2.2.
    pub const SEQUENCE: Range<usize> = 4..8;
    /// Where the IV (and after it the payload) starts.
    pub const IV_START: usize = 8;
}

/// SPI + sequence number.
pub const HEADER_LEN: usize = 8;
/// Pad Length + Next Header, RFC 4303 §2.5 and §2.6.
pub const TRAILER_LEN: usize = 2;
/// The smallest ESP packet any supported algorithm produces: header, IV, the
/// two trailer bytes (with an empty payload and no padding) and the ICV.
pub const MIN_PACKET_LEN: usize = HEADER_LEN + GCM_IV_LEN + TRAILER_LEN + GCM16_ICV_LEN;

/// A buffer too short for what it must hold, or a trailer that does not parse.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the fields it must contain.
    #[error("ESP packet truncated: need at least {needed} bytes, got {got}")]
    Truncated {
        /// Minimum length.
        needed: usize,
        /// Actual length.
        got: usize,
    },
    /// Pad length larger than the plaintext, or padding bytes not 1, 2, 3, ...
    #[error("ESP padding invalid")]
    BadPadding,
}

/// A view of an ESP packet starting at the SPI, for one algorithm's IV and
/// ICV sizes. The payload is whatever lies between IV and ICV (ciphertext on
/// the wire, plaintext after in-place decryption).
#[derive(Debug, Clone)]
pub struct EspPacket<T: AsRef<[u8]>> {
    buffer: T,
    iv_len: usize,
    icv_len: usize,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
    /// Wraps `buffer` after checking it holds header, IV, trailer and ICV of
    /// the AES-GCM-16 transforms (8-byte IV, 16-byte ICV): at least
    /// [`MIN_PACKET_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        Self::new_checked_for(buffer, Algorithm::AesGcm16_128)
    }

    /// Wraps `buffer` after checking it holds header, IV, trailer and ICV for
    /// `algorithm` (IV and ICV lengths differ between transforms).
    pub fn new_checked_for(buffer: T, algorithm: Algorithm) -> Result<Self, WireError> {
        let iv_len = algorithm.iv_len();
        let icv_len = algorithm.icv_len();
        let needed = HEADER_LEN + iv_len + TRAILER_LEN + icv_len;
        let got = buffer.as_ref().len();
        if got < needed {
            return Err(WireError::Truncated { needed, got });
        }
        Ok(Self {
            buffer,
            iv_len,
            icv_len,
        })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Range of the IV within the packet.
    pub fn iv_range(&self) -> Range<usize> {
        field::IV_START..field::IV_START + self.iv_len
    }

    /// Range of the (encrypted) payload, padding and trailer.
    pub fn payload_range(&self) -> Range<usize> {
        let len = self.buffer.as_ref().len();
        field::IV_START + self.iv_len..len - self.icv_len
    }

    /// Range of the ICV.
    pub fn icv_range(&self) -> Range<usize> {
        let len = self.buffer.as_ref().len();
        len - self.icv_len..len
    }

    fn bytes(&self, r: Range<usize>) -> &[u8] {
        // new_checked guaranteed every range above lies inside the buffer.
        self.buffer.as_ref().get(r).unwrap_or_default()
    }

    fn u32_at(&self, r: Range<usize>) -> u32 {
        self.bytes(r)
            .try_into()
            .map(u32::from_be_bytes)
            .unwrap_or(0)
    }

    /// Security Parameters Index.
    pub fn spi(&self) -> u32 {
        self.u32_at(field::SPI)
    }

    /// Sequence number as sent: the low 32 bits when ESN is in use.
    pub fn sequence(&self) -> u32 {
        self.u32_at(field::SEQUENCE)
    }

    /// The explicit IV.
    pub fn iv(&self) -> &[u8] {
        self.bytes(self.iv_range())
    }

    /// Payload || padding || pad length || next header (encrypted on the wire).
    pub fn payload(&self) -> &[u8] {
        self.bytes(self.payload_range())
    }

    /// The Integrity Check Value.
    pub fn icv(&self) -> &[u8] {
        self.bytes(self.icv_range())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EspPacket<T> {
    fn bytes_mut(&mut self, r: Range<usize>) -> &mut [u8] {
        self.buffer.as_mut().get_mut(r).unwrap_or_default()
    }

    fn set_u32_at(&mut self, r: Range<usize>, v: u32) {
        if let Ok(dst) = <&mut [u8; 4]>::try_from(self.bytes_mut(r)) {
            *dst = v.to_be_bytes();
        }
    }

    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: u32) {
        self.set_u32_at(field::SPI, spi);
    }

    /// Sets the (low 32 bits of the) sequence number.
    pub fn set_sequence(&mut self, seq: u32) {
        self.set_u32_at(field::SEQUENCE, seq);
    }

    /// The IV, writable.
    pub fn iv_mut(&mut self) -> &mut [u8] {
        let r = self.iv_range();
        self.bytes_mut(r)
    }

    /// The payload and trailer, writable (for in-place encryption).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.payload_range();
        self.bytes_mut(r)
    }

    /// The ICV, writable.
    pub fn icv_mut(&mut self) -> &mut [u8] {
        let r = self.icv_range();
        self.bytes_mut(r)
    }
}

/// The clear-text ESP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspHeader {
    /// Security Parameters Index.
    pub spi: u32,
    /// Sequence number as sent (low 32 bits with ESN).
    pub sequence: u32,
}

impl EspHeader {
    /// Reads the header from the first 8 bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let (Some(spi), Some(seq)) = (buf.get(field::SPI), buf.get(field::SEQUENCE)) else {
            return Err(WireError::Truncated {
                needed: HEADER_LEN,
                got: buf.len(),
            });
        };
        let mut s = [0u8; 4];
        let mut q = [0u8; 4];
        s.copy_from_slice(spi);
        q.copy_from_slice(seq);
        Ok(Self {
            spi: u32::from_be_bytes(s),
            sequence: u32::from_be_bytes(q),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 8 bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let got = buf.len();
        let Some(h) = buf.get_mut(..HEADER_LEN) else {
            return Err(WireError::Truncated {
                needed: HEADER_LEN,
                got,
            });
        };
        let (spi, seq) = h.split_at_mut(4);
        spi.copy_from_slice(&self.spi.to_be_bytes());
        seq.copy_from_slice(&self.sequence.to_be_bytes());
        Ok(())
    }
}

/// The decrypted ESP trailer: padding, pad length, next header (RFC 4303 §2.4-2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Number of padding bytes (0..=255).
    pub pad_len: u8,
    /// IP protocol number of the inner packet: 4 IPv4, 41 IPv6, 59 dummy.
    pub next_header: u8,
}

impl Trailer {
    /// Padding that ends `payload_len + 2` on a 4-byte boundary, the
    /// alignment RFC 4303 §2.4 requires of the ciphertext (AES-GCM needs no
    /// block padding, RFC 4106 §3.2).
    pub fn pad_for(payload_len: usize) -> u8 {
        ((4 - (payload_len + TRAILER_LEN) % 4) % 4) as u8
    }

    /// Padding that ends `payload_len + 2` on an `align`-byte boundary: the
    /// cipher's block length for CBC (RFC 4303 §2.4, RFC 3602 §2.4), 4 for
    /// AES-GCM. `align` must be 1..=256 (a larger one is treated as 256).
    pub fn pad_to(payload_len: usize, align: usize) -> u8 {
        let align = align.clamp(1, 256);
        ((align - (payload_len % align + TRAILER_LEN) % align) % align) as u8
    }

    /// Bytes [`emit`](Self::emit) writes: padding + 2.
    pub fn buffer_len(&self) -> usize {
        usize::from(self.pad_len) + TRAILER_LEN
    }

    /// Writes padding 1, 2, 3, ... (RFC 4303 §2.4 default), pad length and
    /// next header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let needed = self.buffer_len();
        let got = buf.len();
        let Some(t) = buf.get_mut(..needed) else {
            return Err(WireError::Truncated { needed, got });
        };
        let (pad, rest) = t.split_at_mut(usize::from(self.pad_len));
        for (b, v) in pad.iter_mut().zip(1u8..=u8::MAX) {
            *b = v;
        }
        if let [pl, nh] = rest {
            *pl = self.pad_len;
            *nh = self.next_header;
        }
        Ok(())
    }

    /// Parses the trailer at the end of a decrypted `plaintext` and returns it
    /// with the inner packet's length. Rejects a pad length that does not fit
    /// and padding that is not 1, 2, 3, ... (RFC 4303 §2.4: the receiver
    /// should check it).
    pub fn parse(plaintext: &[u8]) -> Result<(Self, usize), WireError> {
        let [body @ .., pad_len, next_header] = plaintext else {
            return Err(WireError::Truncated {
                needed: TRAILER_LEN,
                got: plaintext.len(),
            });
        };
        let inner_len = body
            .len()
            .checked_sub(usize::from(*pad_len))
            .ok_or(WireError::BadPadding)?;
        let pad = body.get(inner_len..).ok_or(WireError::BadPadding)?;
        if !pad.iter().zip(1u8..=u8::MAX).all(|(b, v)| *b == v) {
            return Err(WireError::BadPadding);
        }
        Ok((
            Self {
                pad_len: *pad_len,
                next_header: *next_header,
            },
            inner_len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// draft-mcgrew-gcm-test-01 §4, Test Case 2 (SPI 0000a5f8, seq 0000000a),
    /// the packet as it appears on the wire.
    const PACKET: &str = concat!(
        "0000a5f80000000afacedbaddecaf888",
        "deb22cd9b07c72c16e3a65beeb8df304",
        "a5a5897d33ae530f1ba76d5d114d2a5c",
        "3de81827c10e9a4f51330d0eec416642",
        "cfbb85a5b47e48a4ec3b9ba95d918bd1",
        "83b70d3aa8bc6ee4c309e9d85a41ad4a",
    );

    #[test]
    fn deconstruct() {
        let bytes = hex::decode(PACKET).unwrap();
        let p = EspPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.spi(), 0x0000_a5f8);
        assert_eq!(p.sequence(), 0x0a);
        assert_eq!(p.iv(), hex::decode("facedbaddecaf888").unwrap());
        assert_eq!(p.payload().len(), bytes.len() - 8 - 8 - 16);
        assert_eq!(
            p.icv(),
            hex::decode("83b70d3aa8bc6ee4c309e9d85a41ad4a").unwrap()
        );
        assert_eq!(
            EspHeader::parse(&bytes).unwrap(),
            EspHeader {
                spi: 0xa5f8,
                sequence: 10
            }
        );
    }

    #[test]
    fn construct_equals_bytes() {
        let bytes = hex::decode(PACKET).unwrap();
        let mut out = vec![0u8; bytes.len()];
        {
            let mut p = EspPacket::new_checked(&mut out[..]).unwrap();
            p.set_spi(0xa5f8);
            p.set_sequence(10);
            p.iv_mut().copy_from_slice(&bytes[8..16]);
            p.payload_mut()
                .copy_from_slice(&bytes[16..bytes.len() - 16]);
            p.icv_mut().copy_from_slice(&bytes[bytes.len() - 16..]);
        }
        assert_eq!(out, bytes);

        let mut hdr = [0u8; 8];
        let h = EspHeader::parse(&bytes).unwrap();
        assert_eq!(h.buffer_len(), 8);
        h.emit(&mut hdr).unwrap();
        assert_eq!(hdr[..], bytes[..8]);
    }

    #[test]
    fn truncated_fails() {
        let bytes = hex::decode(PACKET).unwrap();
        for len in 0..MIN_PACKET_LEN {
            assert_eq!(
                EspPacket::new_checked_for(&bytes[..len], Algorithm::AesGcm16_256).unwrap_err(),
                WireError::Truncated {
                    needed: MIN_PACKET_LEN,
                    got: len
                }
            );
        }
        assert!(
            EspPacket::new_checked_for(&bytes[..MIN_PACKET_LEN], Algorithm::AesGcm16_256).is_ok()
        );
        for len in 0..HEADER_LEN {
            assert!(EspHeader::parse(&bytes[..len]).is_err());
            assert!(EspHeader {
                spi: 1,
                sequence: 1
            }
            .emit(&mut [0u8; 8][..len])
            .is_err());
        }
    }

    #[test]
    fn trailer_round_trip() {
        for inner in 0..16 {
            let pad = Trailer::pad_for(inner);
            assert_eq!((inner + usize::from(pad) + 2) % 4, 0);
            let t = Trailer {
                pad_len: pad,
                next_header: 4,
            };
            let mut buf = vec![0xeeu8; inner + t.buffer_len()];
            t.emit(&mut buf[inner..]).unwrap();
            assert_eq!(Trailer::parse(&buf), Ok((t, inner)));
        }
        // Max padding, 255 bytes.
        let t = Trailer {
            pad_len: 255,
            next_header: 41,
        };
        let mut buf = vec![0u8; 257];
        t.emit(&mut buf).unwrap();
        assert_eq!(Trailer::parse(&buf), Ok((t, 0)));
        assert!(t.emit(&mut buf[..256]).is_err());
    }

    #[test]
    fn trailer_rejects() {
        assert!(matches!(
            Trailer::parse(&[]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Trailer::parse(&[4]),
            Err(WireError::Truncated { .. })
        ));
        // Pad length longer than what precedes it.
        assert_eq!(Trailer::parse(&[1, 2, 3, 4]), Err(WireError::BadPadding));
        // Non-monotonic padding.
        assert_eq!(Trailer::parse(&[9, 1, 3, 2, 4]), Err(WireError::BadPadding));
        assert_eq!(Trailer::parse(&[9, 0, 2, 2, 4]), Err(WireError::BadPadding));
        assert_eq!(
            Trailer::parse(&[9, 1, 2, 2, 4]),
            Ok((
                Trailer {
                    pad_len: 2,
                    next_header: 4
                },
                1
            ))
        );
    }
}

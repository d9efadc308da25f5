//! The Delete payload, RFC 7296 §3.11.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Protocol ID   |   SPI Size    |          Num of SPIs          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~               Security Parameter Index(es) (SPI)              ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::error::{InvalidMessage, Reader};
use super::sa::ProtocolId;

/// A Delete payload: the IKE SA itself (no SPIs: they are in the header) or
/// some CHILD SAs of one protocol (4-octet inbound SPIs for ESP and AH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// Which kind of SA.
    pub protocol: ProtocolId,
    /// The SPIs, all of one size (the SPI Size field is shared).
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    /// Protocol ID, SPI Size, Num of SPIs.
    pub const FIXED_LEN: usize = 4;

    /// SPI Size for ESP and AH, RFC 7296 §3.11.
    pub const CHILD_SPI_LEN: usize = 4;

    /// Parses the body. Checks that Num of SPIs × SPI Size is exactly the
    /// rest of the body, that IKE uses SPI Size 0 and ESP/AH 4 (RFC 7296
    /// §3.11). With SPI Size 0, Num of SPIs carries nothing and is ignored
    /// (the result has no SPIs) rather than turned into that many empty SPIs.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, InvalidMessage> {
        if body.len() < Self::FIXED_LEN {
            return Err(InvalidMessage::BadLength {
                what: "Delete payload",
                len: body.len(),
            });
        }
        let mut r = Reader::new(body);
        let protocol = ProtocolId::from(r.u8("Delete protocol")?);
        let spi_size = usize::from(r.u8("Delete SPI size")?);
        let count = usize::from(r.u16("Delete SPI count")?);
        match protocol {
            ProtocolId::Ike if spi_size != 0 => {
                return Err(InvalidMessage::Syntax(
                    "Delete of an IKE SA with an SPI size",
                ))
            }
            ProtocolId::Esp | ProtocolId::Ah if spi_size != Self::CHILD_SPI_LEN => {
                return Err(InvalidMessage::Syntax(
                    "Delete of ESP/AH SAs with SPI size not 4",
                ))
            }
            _ => {}
        }
        if spi_size == 0 {
            if !r.is_empty() {
                return Err(InvalidMessage::Syntax("Delete payload with trailing data"));
            }
            return Ok(Self {
                protocol,
                spis: Vec::new(),
            });
        }
        if count * spi_size != r.remaining() {
            return Err(InvalidMessage::BadLength {
                what: "Delete SPIs",
                len: r.remaining(),
            });
        }
        let mut spis = Vec::with_capacity(count);
        for _ in 0..count {
            spis.push(r.take(spi_size, "Delete SPI")?.to_vec());
        }
        Ok(Self { protocol, spis })
    }

    /// Emits the body; SPI Size is the first SPI's length (all must match),
    /// or with no SPIs the protocol's size (4 for ESP and AH, else 0).
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let spi_size = self.spis.first().map_or(
            match self.protocol {
                ProtocolId::Esp | ProtocolId::Ah => Self::CHILD_SPI_LEN,
                _ => 0,
            },
            Vec::len,
        );
        debug_assert!(
            self.spis.iter().all(|s| s.len() == spi_size) && spi_size <= 255,
            "Delete SPIs of different sizes"
        );
        out.push(self.protocol.into());
        out.push(spi_size as u8);
        out.extend_from_slice(&(self.spis.len() as u16).to_be_bytes());
        for spi in &self.spis {
            out.extend_from_slice(spi);
        }
    }

    pub(crate) fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + self.spis.iter().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn delete_ike_sa() {
        let b = bytes("01 00 0000");
        let d = Delete::parse(&b).unwrap();
        assert_eq!(
            d,
            Delete {
                protocol: ProtocolId::Ike,
                spis: vec![]
            }
        );
        let mut out = Vec::new();
        d.emit(&mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn delete_two_esp_sas() {
        let b = bytes("03 04 0002 11223344 55667788");
        let d = Delete::parse(&b).unwrap();
        assert_eq!(d.protocol, ProtocolId::Esp);
        assert_eq!(d.spis, vec![bytes("11223344"), bytes("55667788")]);
        let mut out = Vec::new();
        d.emit(&mut out);
        assert_eq!(out, b);
        assert_eq!(d.buffer_len(), b.len());
    }

    #[test]
    fn empty_esp_delete_keeps_spi_size_4() {
        // Found by the message round-trip property test.
        let d = Delete {
            protocol: ProtocolId::Ah,
            spis: vec![],
        };
        let mut out = Vec::new();
        d.emit(&mut out);
        assert_eq!(out, bytes("02 04 0000"));
        assert_eq!(Delete::parse(&out).unwrap(), d);
    }

    #[test]
    fn bad_deletes() {
        for bad in [
            "03 04 0003 11223344 55667788", // count says 3
            "03 04 0001 11223344 55",       // trailing byte
            "03 08 0001 1122334455667788",  // ESP with 8-byte SPI
            "01 08 0001 1122334455667788",  // IKE with an SPI
            "01 00 0000 00",                // trailing byte
            "03 04 00",                     // short
        ] {
            assert!(Delete::parse(&bytes(bad)).is_err(), "{bad}");
        }
    }
}

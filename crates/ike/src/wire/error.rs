//! Why a message did not parse, and a bounds-checked reader that says so.
//!
//! Every parse in `wire/` goes through [`Reader`]: it hands out prefixes of
//! the bytes it holds and returns [`InvalidMessage::Truncated`] instead of
//! indexing past the end, so no parser can panic on short input.

use super::notify::NotifyType;

/// A datagram or payload chain that is not a well-formed IKEv2 message.
///
/// Each variant knows the error notify a responder answers with
/// ([`InvalidMessage::notify`]); whether it answers at all (it must not for
/// unauthenticated IKE_SA_INIT garbage, RFC 7296 §2.21) is the caller's call.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// A field, header or substructure runs past the bytes available.
    #[error("{what} truncated: need {need} bytes, have {have}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A length field (or the length of a fixed-size body) has a value the
    /// format forbids: shorter than the structure's fixed part, or not the
    /// size the type demands.
    #[error("{what} has invalid length {len}")]
    BadLength {
        /// Which length.
        what: &'static str,
        /// The offending value.
        len: usize,
    },
    /// A payload type this codec does not know, with the critical bit set
    /// (RFC 7296 §2.5): the message must be rejected and answered with
    /// UNSUPPORTED_CRITICAL_PAYLOAD carrying this type.
    #[error("unsupported critical payload type {0}")]
    UnsupportedCritical(u8),
    /// A traffic selector type other than TS_IPV4_ADDR_RANGE (7) and
    /// TS_IPV6_ADDR_RANGE (8), RFC 7296 §3.13.1. A separate variant so the
    /// state machine may choose TS_UNACCEPTABLE instead of INVALID_SYNTAX.
    #[error("unknown traffic selector type {0}")]
    UnknownTrafficSelector(u8),
    /// Any other violation of the message syntax.
    #[error("invalid syntax: {0}")]
    Syntax(&'static str),
}

impl InvalidMessage {
    /// The error notify that reports this to the peer (RFC 7296 §3.10.1):
    /// UNSUPPORTED_CRITICAL_PAYLOAD for [`InvalidMessage::UnsupportedCritical`]
    /// (its notification data is the one-octet payload type), INVALID_SYNTAX
    /// for everything else.
    pub fn notify(&self) -> NotifyType {
        match self {
            InvalidMessage::UnsupportedCritical(_) => NotifyType::UnsupportedCriticalPayload,
            _ => NotifyType::InvalidSyntax,
        }
    }
}

/// A cursor over wire bytes whose reads fail instead of panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next `n` bytes.
    pub(crate) fn take(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8], InvalidMessage> {
        match (self.bytes.get(..n), self.bytes.get(n..)) {
            (Some(head), Some(tail)) => {
                self.bytes = tail;
                Ok(head)
            }
            _ => Err(InvalidMessage::Truncated {
                what,
                need: n,
                have: self.bytes.len(),
            }),
        }
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], InvalidMessage> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, InvalidMessage> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, InvalidMessage> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, InvalidMessage> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_big_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x0203);
        assert_eq!(r.u32("c").unwrap(), 0x0405_0607);
        assert!(r.is_empty());
        assert_eq!(
            r.u8("d"),
            Err(InvalidMessage::Truncated {
                what: "d",
                need: 1,
                have: 0
            })
        );
        assert_eq!(r.take(0, "e").unwrap(), &[] as &[u8]);
    }

    #[test]
    fn notify_mapping() {
        assert_eq!(
            InvalidMessage::UnsupportedCritical(99).notify(),
            NotifyType::UnsupportedCriticalPayload
        );
        assert_eq!(
            InvalidMessage::Syntax("x").notify(),
            NotifyType::InvalidSyntax
        );
        assert_eq!(
            InvalidMessage::UnknownTrafficSelector(10).notify(),
            NotifyType::InvalidSyntax
        );
    }
}

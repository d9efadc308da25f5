//! Errors, split by where they arise: configuring an SA, sending, receiving.

use crate::Algorithm;

/// An [`SaConfig`](crate::SaConfig) that cannot become an SA. Never carries
/// key bytes.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaError {
    /// The key material has the wrong length for the algorithm (AES-GCM: key
    /// + 4-byte salt; CBC: encryption key + integrity key).
    #[error("{algorithm} needs {expected} bytes of key material ({}), got {got}", algorithm.key_layout())]
    KeyLength {
        /// The algorithm the SA was configured with.
        algorithm: Algorithm,
        /// [`Algorithm::key_len`].
        expected: usize,
        /// What the [`SaKey`](crate::SaKey) held.
        got: usize,
    },
    /// SPI 0 and 1..=255 are reserved (RFC 4303 §2.1).
    #[error("SPI {0:#010x} is reserved (RFC 4303 §2.1: 0..=255 are not used for SAs)")]
    ReservedSpi(u32),
    /// The anti-replay window is 0 or larger than [`MAX_REPLAY_WINDOW`](crate::MAX_REPLAY_WINDOW).
    #[error("replay window {got} out of range: must be 1..={max} packets")]
    ReplayWindow {
        /// What was configured.
        got: u32,
        /// The largest supported window.
        max: u32,
    },
    /// `ring` refused the key (should not happen once the length is right).
    #[error("the crypto library rejected the {0} key")]
    KeyRejected(Algorithm),
}

/// Why [`OutboundSa::encapsulate`](crate::OutboundSa::encapsulate) produced no packet.
/// The SA's state is unchanged unless the variant says otherwise.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum EncapError {
    /// Fewer than [`OutboundSa::headroom`](crate::OutboundSa::headroom) bytes before the inner packet.
    #[error("not enough headroom in front of the inner packet for the ESP header and IV")]
    NoHeadroom,
    /// Not enough bytes after the inner packet for padding, trailer and ICV.
    #[error("not enough tailroom behind the inner packet for padding, trailer and ICV")]
    NoTailroom,
    /// The hard lifetime was reached or the sequence numbers are exhausted:
    /// the SA must be replaced. Counted in `lifetime_drops`.
    #[error("SA expired (hard lifetime or sequence numbers exhausted); it must be rekeyed")]
    Expired,
    /// The inner range does not lie within the buffer (start > end or end past
    /// the buffer's length), or is longer than AES-GCM can encrypt.
    #[error("inner packet range is not inside the buffer")]
    InvalidRange,
}

/// Why [`InboundSa::decapsulate`](crate::InboundSa::decapsulate) dropped a packet.
/// A failure changes no SA state except the matching counter.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum DecapError {
    /// Too short to hold header, IV, trailer and ICV. Counted in `malformed`.
    #[error("malformed ESP packet")]
    Malformed,
    /// The packet's SPI is not this SA's. Counted in `malformed`.
    #[error("ESP packet for another SPI")]
    WrongSpi,
    /// A duplicate, a number older than the window, or sequence number 0.
    /// Counted in `replay_drops`.
    #[error("replayed or too old ESP sequence number")]
    Replayed,
    /// The ICV did not verify: wrong key, corruption or forgery. Counted in
    /// `auth_failures`.
    #[error("ESP integrity check failed")]
    AuthenticationFailed,
    /// Authentic, but the padding is not 1, 2, 3, … or longer than the payload
    /// (RFC 4303 §2.4). Counted in `malformed`.
    #[error("ESP padding is invalid")]
    BadPadding,
    /// The hard lifetime was reached: the SA must be replaced. Counted in
    /// `lifetime_drops`.
    #[error("SA expired (hard lifetime reached)")]
    Expired,
}

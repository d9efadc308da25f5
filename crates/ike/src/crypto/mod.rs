//! IKEv2 cryptography (RFC 7296 §2.13–§2.18, §3.14; RFC 5282; RFC 8031;
//! RFC 5903; RFC 3602 AES-CBC; RFC 4868 HMAC-SHA-2; RFC 3526 / RFC 2409 MODP
//! groups).
//!
//! Weak algorithms (DES, 3DES, HMAC-MD5, MODP groups 1, 2, 5) are here for
//! interoperability with Alibaba Cloud's VPN Gateway and report
//! `is_legacy()`; the configuration layer only allows them behind its
//! `legacy` switch.
//!
//! Sans-IO: nothing here reads a clock or the OS's random source. Randomness
//! enters through a [`Rng`] argument (any `rand_core` 0.6 CSPRNG), so tests
//! can run on a seeded generator and repeat exactly.
//!
//! Secrets (DH private values, shared secrets, SKEYSEED, SK_* keys, PSK-derived
//! values) live in [`zeroize::Zeroizing`] buffers or in types that zeroize on
//! drop, and every type holding one prints a redacted `Debug`.
//!
//! Nothing in this module panics on peer input: every peer-supplied length is
//! checked and reported as a [`CryptoError`].

mod aead;
mod auth;
mod blockcipher;
mod dh;
mod integ;
mod keys;
mod prf;

pub use aead::{Cipher, SkCrypter};
pub use auth::{cookie, nat_detection_hash, psk_auth, verify_cookie, verify_psk_auth, COOKIE_LEN};
pub use dh::{DhGroup, DhSecret};
pub use integ::Integ;
pub use keys::{child_keymat, IkeKeys};
pub use prf::{Prf, PRF_PLUS_MAX_ITERATIONS};

/// A cryptographically secure random number generator, passed in by the caller
/// (sans-IO). Blanket-implemented for every `rand_core` 0.6 `RngCore + CryptoRng`,
/// and object safe, so the library takes `&mut dyn Rng`.
pub trait Rng: rand_core::RngCore + rand_core::CryptoRng {}

impl<T: rand_core::RngCore + rand_core::CryptoRng + ?Sized> Rng for T {}

/// Errors of the cryptographic layer. None of them carries secret material.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The peer's Diffie-Hellman public value is malformed: wrong length, not a
    /// point on the curve (RFC 5903 §9), it yields an all-zero shared secret
    /// (RFC 8031 §2.3), or a MODP value outside 1 < y < p - 1 (RFC 7296 §5,
    /// NIST SP 800-56A partial public-key validation).
    #[error("bad Diffie-Hellman public value")]
    BadPublicValue,
    /// An ICV, AUTH value or cookie did not verify.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A key of the wrong length was supplied for the algorithm.
    #[error("bad key length")]
    BadKeyLength,
    /// The decrypted Pad Length does not fit inside the plaintext, or a CBC
    /// ciphertext is not a whole number of blocks (RFC 7296 §3.14).
    #[error("bad padding")]
    BadPadding,
    /// The input is shorter than the fixed fields it must carry (IV, ICV, ...).
    #[error("truncated input")]
    Truncated,
    /// More output than prf+ can produce (255 iterations, RFC 7296 §2.13) or
    /// than the cipher can process in one message was requested.
    #[error("requested length too long")]
    TooLong,
    /// A private value could not be used (test constructor given a bad scalar).
    #[error("bad private value")]
    BadPrivateValue,
    /// The algorithms do not fit the constructor: an AEAD cipher given an
    /// integrity algorithm, or a non-AEAD (CBC) cipher without one.
    #[error("cipher and integrity algorithm do not fit together")]
    AlgorithmMismatch,
}

#[cfg(test)]
mod tests;

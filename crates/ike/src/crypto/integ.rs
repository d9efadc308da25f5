//! Integrity algorithms (RFC 7296 §3.3.2 transform type 3) for the SK
//! payload with a non-AEAD cipher, and the HMAC machinery shared with the
//! PRFs.
//!
//! HMAC-SHA1 and HMAC-SHA-2 come from `ring`; HMAC-MD5 (legacy, ring has no
//! MD5) from RustCrypto's `hmac` + `md-5`.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use ring::hmac as ring_hmac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// An IKEv2 integrity transform (type 3): truncated HMAC.
///
/// Key lengths and ICV lengths from RFC 2403 (MD5-96), RFC 2404 (SHA1-96)
/// and RFC 4868 §2.1–§2.3 (SHA-2: key = full output, ICV = half of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integ {
    /// AUTH_HMAC_MD5_96 (id 1, RFC 2403). LEGACY.
    HmacMd5_96,
    /// AUTH_HMAC_SHA1_96 (id 2, RFC 2404).
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128 (id 12, RFC 4868).
    HmacSha2_256_128,
    /// AUTH_HMAC_SHA2_384_192 (id 13, RFC 4868).
    HmacSha2_384_192,
    /// AUTH_HMAC_SHA2_512_256 (id 14, RFC 4868).
    HmacSha2_512_256,
}

impl Integ {
    /// The integrity algorithm for a transform type 3 id, if supported.
    /// Id 0 (NONE) is not an algorithm and gives `None`.
    pub fn from_id(id: u16) -> Option<Integ> {
        match id {
            1 => Some(Integ::HmacMd5_96),
            2 => Some(Integ::HmacSha1_96),
            12 => Some(Integ::HmacSha2_256_128),
            13 => Some(Integ::HmacSha2_384_192),
            14 => Some(Integ::HmacSha2_512_256),
            _ => None,
        }
    }

    /// The transform type 3 id (IANA "Transform Type 3 - Integrity Algorithm").
    pub fn id(self) -> u16 {
        match self {
            Integ::HmacMd5_96 => 1,
            Integ::HmacSha1_96 => 2,
            Integ::HmacSha2_256_128 => 12,
            Integ::HmacSha2_384_192 => 13,
            Integ::HmacSha2_512_256 => 14,
        }
    }

    /// Key length in octets (SK_ai / SK_ar, or an ESP integrity key): the
    /// hash output length (RFC 2403 §3, RFC 2404 §3, RFC 4868 §2.1.1).
    pub fn key_len(self) -> usize {
        self.hash().output_len()
    }

    /// Length of the Integrity Checksum Data: the HMAC truncated to
    /// 96 bits for MD5/SHA1, to half its output for SHA-2 (RFC 4868 §2.1.1).
    pub fn icv_len(self) -> usize {
        match self {
            Integ::HmacMd5_96 | Integ::HmacSha1_96 => 12,
            Integ::HmacSha2_256_128 => 16,
            Integ::HmacSha2_384_192 => 24,
            Integ::HmacSha2_512_256 => 32,
        }
    }

    /// True for algorithms only allowed behind the `legacy` switch (MD5).
    pub fn is_legacy(self) -> bool {
        matches!(self, Integ::HmacMd5_96)
    }

    pub(super) fn hash(self) -> Hash {
        match self {
            Integ::HmacMd5_96 => Hash::Md5,
            Integ::HmacSha1_96 => Hash::Sha1,
            Integ::HmacSha2_256_128 => Hash::Sha256,
            Integ::HmacSha2_384_192 => Hash::Sha384,
            Integ::HmacSha2_512_256 => Hash::Sha512,
        }
    }

    /// The ICV: HMAC(key, `data[0] | data[1] | ...`) truncated to
    /// [`Integ::icv_len`] octets (the leftmost ones, RFC 2104 §5).
    pub fn icv(self, key: &[u8], data: &[&[u8]]) -> Vec<u8> {
        IntegKey::new(self, key).icv(data)
    }
}

/// The hash under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(super) fn output_len(self) -> usize {
        match self {
            Hash::Md5 => 16,
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// MD5's block size (RFC 1321), the HMAC key block (RFC 2104 §2).
const MD5_BLOCK: usize = 64;

/// A keyed HMAC, ready to sign many messages. ring keeps its key schedule
/// opaque; the RustCrypto HMAC-MD5 state is cloned per message and the
/// `hmac` crate's `zeroize` feature wipes it on drop.
#[derive(Clone)]
pub(super) enum HmacKey {
    Ring(ring_hmac::Key),
    Md5(Box<Hmac<Md5>>),
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl HmacKey {
    /// An HMAC key of any length (RFC 2104 §2-§3).
    pub(super) fn new(hash: Hash, key: &[u8]) -> HmacKey {
        let alg = match hash {
            Hash::Md5 => return HmacKey::Md5(Box::new(hmac_md5(key))),
            Hash::Sha1 => ring_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => ring_hmac::HMAC_SHA256,
            Hash::Sha384 => ring_hmac::HMAC_SHA384,
            Hash::Sha512 => ring_hmac::HMAC_SHA512,
        };
        HmacKey::Ring(ring_hmac::Key::new(alg, key))
    }

    /// The full (untruncated) HMAC of the concatenation of `data`.
    pub(super) fn sign(&self, data: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        match self {
            HmacKey::Ring(key) => {
                let mut ctx = ring_hmac::Context::with_key(key);
                for part in data {
                    ctx.update(part);
                }
                Zeroizing::new(ctx.sign().as_ref().to_vec())
            }
            HmacKey::Md5(mac) => {
                let mut mac = mac.clone();
                for part in data {
                    mac.update(part);
                }
                let mut tag = mac.finalize().into_bytes();
                let out = Zeroizing::new(tag.to_vec());
                tag.zeroize();
                out
            }
        }
    }
}

/// HMAC-MD5 keyed per RFC 2104 §2: a key longer than the block is hashed
/// first, then the key is zero-padded to the block. Building the block
/// ourselves keeps the construction infallible.
fn hmac_md5(key: &[u8]) -> Hmac<Md5> {
    let mut block = Zeroizing::new([0u8; MD5_BLOCK]);
    if key.len() > MD5_BLOCK {
        let mut d = Md5::digest(key);
        block[..d.len()].copy_from_slice(&d);
        d.zeroize();
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut k = hmac::digest::Key::<Hmac<Md5>>::default();
    k.copy_from_slice(&block[..]);
    let mac = Hmac::<Md5>::new(&k);
    k.zeroize();
    mac
}

/// An integrity key for one direction (SK_ai or SK_ar).
#[derive(Clone)]
pub(super) struct IntegKey {
    integ: Integ,
    key: HmacKey,
}

impl fmt::Debug for IntegKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegKey")
            .field("integ", &self.integ)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl IntegKey {
    pub(super) fn new(integ: Integ, key: &[u8]) -> IntegKey {
        IntegKey {
            integ,
            key: HmacKey::new(integ.hash(), key),
        }
    }

    pub(super) fn integ(&self) -> Integ {
        self.integ
    }

    /// The truncated ICV over the concatenation of `data`.
    pub(super) fn icv(&self, data: &[&[u8]]) -> Vec<u8> {
        let full = self.key.sign(data);
        full.get(..self.integ.icv_len())
            .unwrap_or_default()
            .to_vec()
    }

    /// Constant-time check of a received ICV. A value of the wrong length
    /// (public: the algorithm's ICV length) fails at once.
    pub(super) fn verify(&self, data: &[&[u8]], received: &[u8]) -> bool {
        let expected = self.icv(data);
        bool::from(expected.as_slice().ct_eq(received))
    }
}

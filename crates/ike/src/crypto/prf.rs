//! Pseudorandom functions (RFC 7296 §3.3.2 transform type 2) and prf+ (§2.13).

use zeroize::Zeroizing;

use super::integ::{Hash, HmacKey};
use super::CryptoError;

/// prf+ may iterate at most 255 times: its counter is one octet (RFC 7296 §2.13).
pub const PRF_PLUS_MAX_ITERATIONS: usize = 255;

/// An IKEv2 pseudorandom function (RFC 7296 §3.3.2; HMAC-SHA-2 per RFC 4868).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// PRF_HMAC_MD5 (transform id 1, RFC 2104). LEGACY: only behind the
    /// `legacy` switch.
    HmacMd5,
    /// PRF_HMAC_SHA1 (transform id 2, RFC 2104).
    HmacSha1,
    /// PRF_HMAC_SHA2_256 (transform id 5, RFC 4868).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (transform id 6, RFC 4868).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (transform id 7, RFC 4868).
    HmacSha512,
}

impl Prf {
    /// The PRF for an IKEv2 transform type 2 id, if supported.
    pub fn from_id(id: u16) -> Option<Prf> {
        match id {
            1 => Some(Prf::HmacMd5),
            2 => Some(Prf::HmacSha1),
            5 => Some(Prf::HmacSha256),
            6 => Some(Prf::HmacSha384),
            7 => Some(Prf::HmacSha512),
            _ => None,
        }
    }

    /// The IKEv2 transform type 2 id (RFC 7296 §3.3.2, IANA "Transform Type 2").
    pub fn id(self) -> u16 {
        match self {
            Prf::HmacMd5 => 1,
            Prf::HmacSha1 => 2,
            Prf::HmacSha256 => 5,
            Prf::HmacSha384 => 6,
            Prf::HmacSha512 => 7,
        }
    }

    /// Output length in octets.
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacMd5 => 16,
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }

    /// The preferred key length: for HMAC, the output length (RFC 7296 §2.13,
    /// §2.14; RFC 4868 §2.1.2 for the SHA-2 PRFs). Used for SK_d, SK_pi, SK_pr.
    pub fn key_len(self) -> usize {
        self.output_len()
    }

    /// True for PRFs only allowed behind the `legacy` switch (MD5).
    pub fn is_legacy(self) -> bool {
        matches!(self, Prf::HmacMd5)
    }

    fn hash(self) -> Hash {
        match self {
            Prf::HmacMd5 => Hash::Md5,
            Prf::HmacSha1 => Hash::Sha1,
            Prf::HmacSha256 => Hash::Sha256,
            Prf::HmacSha384 => Hash::Sha384,
            Prf::HmacSha512 => Hash::Sha512,
        }
    }

    /// `prf(key, data[0] | data[1] | ...)`. HMAC accepts keys of any length
    /// (RFC 2104 §3), so no key-length check is needed.
    pub fn prf(self, key: &[u8], data: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        HmacKey::new(self.hash(), key).sign(data)
    }

    /// prf+ (RFC 7296 §2.13):
    ///
    /// ```text
    /// prf+ (K,S) = T1 | T2 | T3 | T4 | ...
    /// T1 = prf (K, S | 0x01)
    /// T2 = prf (K, T1 | S | 0x02)
    /// T3 = prf (K, T2 | S | 0x03) ...
    /// ```
    ///
    /// truncated to `len` octets. The seed `S` is the concatenation of `seed`.
    ///
    /// The counter is one octet, so at most 255 blocks (`255 * output_len()`
    /// octets: 5100 for HMAC-SHA1) exist. **This function clamps**: asked for
    /// more, it returns exactly `255 * output_len()` octets. Use
    /// [`Prf::try_prf_plus`] to get an error instead. Every IKEv2 key set this
    /// crate derives is far below that bound.
    pub fn prf_plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Zeroizing<Vec<u8>> {
        let len = len.min(PRF_PLUS_MAX_ITERATIONS * self.output_len());
        self.prf_plus_inner(key, seed, len)
    }

    /// prf+ that fails with [`CryptoError::TooLong`] instead of clamping when
    /// `len` exceeds `255 * output_len()` (RFC 7296 §2.13).
    pub fn try_prf_plus(
        self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if len > PRF_PLUS_MAX_ITERATIONS * self.output_len() {
            return Err(CryptoError::TooLong);
        }
        Ok(self.prf_plus_inner(key, seed, len))
    }

    /// `len` must be at most 255 * output_len (callers clamp or check).
    fn prf_plus_inner(self, key: &[u8], seed: &[&[u8]], len: usize) -> Zeroizing<Vec<u8>> {
        let key = HmacKey::new(self.hash(), key);
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        // T0 is the empty string: T1 = prf(K, S | 0x01).
        let mut prev: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        let mut counter: u8 = 1;
        while out.len() < len {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len() + 2);
            parts.push(prev.as_slice());
            parts.extend_from_slice(seed);
            let counter_octet = [counter];
            parts.push(&counter_octet);
            let tag = key.sign(&parts);
            let block: &[u8] = &tag;
            let take = block.len().min(len - out.len());
            out.extend_from_slice(&block[..take]);
            prev.clear();
            prev.extend_from_slice(block);
            // Cannot overflow: len <= 255 * output_len stops the loop first.
            counter = counter.wrapping_add(1);
        }
        out
    }
}

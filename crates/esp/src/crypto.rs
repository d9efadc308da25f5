//! The AES-GCM core of RFC 4106, separated from the packet handling so it can
//! be tested against published vectors whose IVs differ from ours.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use zeroize::Zeroizing;

use crate::algorithm::{GCM16_ICV_LEN, GCM_IV_LEN, GCM_SALT_LEN};
use crate::{Algorithm, SaError};

/// One direction's AES-GCM key with its RFC 4106 salt.
#[derive(Clone)]
pub(crate) struct GcmKey {
    key: LessSafeKey,
    /// RFC 4106 §4: the last four bytes of the keying material; nonce prefix.
    salt: Zeroizing<[u8; GCM_SALT_LEN]>,
}

impl std::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmKey(redacted)")
    }
}

impl GcmKey {
    /// `material` is key || salt, exactly [`Algorithm::key_len`] bytes.
    pub(crate) fn new(algorithm: Algorithm, material: &[u8]) -> Result<Self, SaError> {
        let key_len = algorithm.enc_key_len();
        let (Some(key), Some(salt_bytes)) = (
            material.get(..key_len),
            material.get(key_len..).filter(|s| s.len() == GCM_SALT_LEN),
        ) else {
            return Err(SaError::KeyLength {
                algorithm,
                expected: algorithm.key_len(),
                got: material.len(),
            });
        };
        let ring_alg = algorithm
            .ring_algorithm()
            .ok_or(SaError::KeyRejected(algorithm))?;
        let unbound =
            UnboundKey::new(ring_alg, key).map_err(|_| SaError::KeyRejected(algorithm))?;
        let mut salt = Zeroizing::new([0u8; GCM_SALT_LEN]);
        salt.copy_from_slice(salt_bytes);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            salt,
        })
    }

    /// RFC 4106 §4: nonce = salt (4) || explicit IV (8).
    fn nonce(&self, iv: &[u8; GCM_IV_LEN]) -> Nonce {
        let mut n = [0u8; NONCE_LEN];
        let (salt, rest) = n.split_at_mut(GCM_SALT_LEN);
        salt.copy_from_slice(&self.salt[..]);
        rest.copy_from_slice(iv);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `in_out` in place and returns the ICV. Fails only if the
    /// input is longer than GCM allows (about 64 GiB).
    pub(crate) fn seal(
        &self,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; GCM16_ICV_LEN], ()> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(iv), Aad::from(aad), in_out)
            .map_err(|_| ())?;
        let mut icv = [0u8; GCM16_ICV_LEN];
        icv.copy_from_slice(tag.as_ref());
        Ok(icv)
    }

    /// Verifies the ICV at the end of `in_out` (ciphertext || ICV) in constant
    /// time and, only if it is valid, returns the decrypted plaintext (a prefix
    /// of `in_out`). On failure `in_out` holds unspecified bytes.
    pub(crate) fn open<'a>(
        &self,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], ()> {
        self.key
            .open_in_place(self.nonce(iv), Aad::from(aad), in_out)
            .map_err(|_| ())
    }
}

/// RFC 4106 §5: the AAD is SPI || sequence number, where the sequence number is
/// the low 32 bits without ESN, and high 32 || low 32 with ESN (the high half
/// is authenticated but never sent). Returns the buffer and the length used.
pub(crate) fn build_aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut aad = [0u8; 12];
    let spi = spi.to_be_bytes();
    let hi = ((seq >> 32) as u32).to_be_bytes();
    let lo = (seq as u32).to_be_bytes();
    let parts: [&[u8; 4]; 3] = if esn {
        [&spi, &hi, &lo]
    } else {
        [&spi, &lo, &[0; 4]]
    };
    for (chunk, part) in aad.chunks_exact_mut(4).zip(parts) {
        chunk.copy_from_slice(part);
    }
    (aad, if esn { 12 } else { 8 })
}

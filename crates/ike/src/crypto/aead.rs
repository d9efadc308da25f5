//! The Encrypted (SK) payload's protection (RFC 7296 §3.14), with AES-GCM
//! per RFC 5282.
//!
//! SK payload body layout (RFC 5282 §3):
//!
//! ```text
//! IV (8) | Ciphertext( IKE payloads | Padding (0..255) | Pad Length (1) ) | ICV (16)
//! ```
//!
//! The nonce is `salt (4, from the key material) | IV (8)` (RFC 5282 §4), the
//! AAD is the IKE header through the end of the SK payload's generic header
//! (RFC 5282 §5.1), and the ICV is the GCM tag.

use core::fmt;

use ring::aead;
use zeroize::Zeroizing;

use super::CryptoError;

/// Length of the GCM salt taken from the end of the key material (RFC 5282 §7.1).
const SALT_LEN: usize = 4;
/// Length of the explicit IV carried in the SK payload (RFC 5282 §3.1).
const GCM_IV_LEN: usize = 8;
/// Length of the ICV for the "16 octet ICV" variants (RFC 5282 §3.2, §10).
const GCM_ICV_LEN: usize = 16;

/// An encryption transform (type 1) for the SK payload.
///
/// Only AEAD ciphers for now; a non-AEAD cipher (AES-CBC) will join as
/// further variants, with [`Cipher::is_aead`] false and a separate INTEG
/// transform supplying the ICV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// ENCR_AES_GCM_16 (id 20) with a 128-bit key (RFC 5282).
    AesGcm16_128,
    /// ENCR_AES_GCM_16 (id 20) with a 256-bit key (RFC 5282).
    AesGcm16_256,
}

/// ENCR_AES_GCM_16 (IANA transform type 1 id 20).
const ENCR_AES_GCM_16: u16 = 20;

impl Cipher {
    /// The cipher for a transform id and its Key Length attribute (in bits,
    /// RFC 7296 §3.3.5). AES-GCM requires the attribute (RFC 5282 §8), so
    /// `None` is not accepted. 192-bit keys are not supported.
    pub fn from_transform(id: u16, key_bits: Option<u16>) -> Option<Cipher> {
        match (id, key_bits) {
            (ENCR_AES_GCM_16, Some(128)) => Some(Cipher::AesGcm16_128),
            (ENCR_AES_GCM_16, Some(256)) => Some(Cipher::AesGcm16_256),
            _ => None,
        }
    }

    /// The transform id and Key Length attribute (bits) to put in a proposal.
    pub fn transform(self) -> (u16, Option<u16>) {
        match self {
            Cipher::AesGcm16_128 => (ENCR_AES_GCM_16, Some(128)),
            Cipher::AesGcm16_256 => (ENCR_AES_GCM_16, Some(256)),
        }
    }

    /// Octets of key material per direction (SK_ei / SK_er, or an ESP key),
    /// including the 4-octet salt at the end (RFC 5282 §7.1): 20 / 36.
    pub fn key_len(self) -> usize {
        self.aes_key_len() + SALT_LEN
    }

    fn aes_key_len(self) -> usize {
        match self {
            Cipher::AesGcm16_128 => 16,
            Cipher::AesGcm16_256 => 32,
        }
    }

    /// Length of the explicit IV in the SK payload.
    pub fn iv_len(self) -> usize {
        GCM_IV_LEN
    }

    /// Length of the Integrity Checksum Data.
    pub fn icv_len(self) -> usize {
        GCM_ICV_LEN
    }

    /// True for combined-mode ciphers: no INTEG transform is negotiated with
    /// them (RFC 7296 §3.3.2, RFC 5282 §8) and SK_ai/SK_ar are empty.
    pub fn is_aead(self) -> bool {
        true
    }

    fn ring_algorithm(self) -> &'static aead::Algorithm {
        match self {
            Cipher::AesGcm16_128 => &aead::AES_128_GCM,
            Cipher::AesGcm16_256 => &aead::AES_256_GCM,
        }
    }
}

/// Encrypts and decrypts SK payloads in one direction (one SK_e key).
pub struct SkCrypter {
    cipher: Cipher,
    // ring's key schedule; ring keeps it opaque and does not print it.
    key: aead::LessSafeKey,
    salt: Zeroizing<[u8; SALT_LEN]>,
}

impl fmt::Debug for SkCrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkCrypter")
            .field("cipher", &self.cipher)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SkCrypter {
    /// A crypter from SK_ei or SK_er: [`Cipher::key_len`] octets, the AES key
    /// followed by the 4-octet salt (RFC 5282 §7.1).
    pub fn new(cipher: Cipher, key: &[u8]) -> Result<SkCrypter, CryptoError> {
        if key.len() != cipher.key_len() {
            return Err(CryptoError::BadKeyLength);
        }
        let (aes_key, salt_bytes) = key.split_at(cipher.aes_key_len());
        let unbound = aead::UnboundKey::new(cipher.ring_algorithm(), aes_key)
            .map_err(|_| CryptoError::BadKeyLength)?;
        let mut salt = Zeroizing::new([0u8; SALT_LEN]);
        salt.copy_from_slice(salt_bytes);
        Ok(SkCrypter {
            cipher,
            key: aead::LessSafeKey::new(unbound),
            salt,
        })
    }

    /// The cipher this crypter uses.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    fn nonce(&self, iv: &[u8; GCM_IV_LEN]) -> aead::Nonce {
        // RFC 5282 §4: nonce = salt | IV.
        let mut n = [0u8; aead::NONCE_LEN];
        n[..SALT_LEN].copy_from_slice(&self.salt[..]);
        n[SALT_LEN..].copy_from_slice(iv);
        aead::Nonce::assume_unique_for_key(n)
    }

    /// Octets that [`SkCrypter::encrypt`] adds to a plaintext of `len` octets:
    /// IV + Pad Length octet + ICV (no padding: GCM needs no block alignment,
    /// RFC 5282 §3). Independent of `plaintext_len` for GCM.
    pub fn overhead(&self, plaintext_len: usize) -> usize {
        let _ = plaintext_len;
        self.cipher.iv_len() + 1 + self.cipher.icv_len()
    }

    /// Encrypts `plaintext` (the inner payload chain) into the SK payload body
    /// `IV | ciphertext | ICV`, with zero octets of padding and a Pad Length of
    /// 0 (RFC 7296 §3.14, RFC 5282 §3).
    ///
    /// `aad` is the IKE header through the end of the SK payload's generic
    /// header, with the final lengths (RFC 5282 §5.1). `iv` is the explicit IV,
    /// sent big-endian; it must never repeat under one key (RFC 5282 §3.1), so
    /// the caller passes a counter.
    ///
    /// Returns an empty vector only if the plaintext exceeds AES-GCM's limit
    /// (about 64 GiB), which no IKE message (at most 64 KiB) can; use
    /// [`SkCrypter::try_encrypt`] to see that as an error.
    pub fn encrypt(&self, iv: u64, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.try_encrypt(iv, aad, plaintext).unwrap_or_default()
    }

    /// [`SkCrypter::encrypt`], reporting [`CryptoError::TooLong`] for an
    /// over-long plaintext.
    pub fn try_encrypt(
        &self,
        iv: u64,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let iv_bytes = iv.to_be_bytes();
        let iv_len = self.cipher.iv_len();
        let mut out = Vec::with_capacity(plaintext.len() + self.overhead(plaintext.len()));
        out.extend_from_slice(&iv_bytes);
        out.extend_from_slice(plaintext);
        // Padding: none. Pad Length: 0.
        out.push(0);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.nonce(&iv_bytes),
                aead::Aad::from(aad),
                &mut out[iv_len..],
            )
            .map_err(|_| CryptoError::TooLong)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts an SK payload body `IV | ciphertext | ICV`: verifies the ICV
    /// (constant time, inside ring), then strips the padding and Pad Length
    /// and returns the inner payload chain.
    ///
    /// The Pad Length must fit within the decrypted data; the padding's
    /// contents are not checked, since the sender may choose any value
    /// (RFC 7296 §3.14).
    pub fn decrypt(&self, aad: &[u8], sk_data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv_len = self.cipher.iv_len();
        let icv_len = self.cipher.icv_len();
        // At least IV, the Pad Length octet and the ICV.
        if sk_data.len() < iv_len + 1 + icv_len {
            return Err(CryptoError::Truncated);
        }
        let (iv, ct) = sk_data.split_at(iv_len);
        let iv: [u8; GCM_IV_LEN] = iv.try_into().map_err(|_| CryptoError::Truncated)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .key
            .open_in_place(self.nonce(&iv), aead::Aad::from(aad), &mut buf[..])
            .map_err(|_| CryptoError::AuthenticationFailed)?;
        let (&pad_len, rest) = plain.split_last().ok_or(CryptoError::Truncated)?;
        let pad_len = usize::from(pad_len);
        if pad_len > rest.len() {
            return Err(CryptoError::BadPadding);
        }
        Ok(rest[..rest.len() - pad_len].to_vec())
    }
}

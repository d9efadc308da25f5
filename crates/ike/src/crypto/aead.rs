//! The Encrypted (SK) payload's protection (RFC 7296 §3.14): AES-GCM per
//! RFC 5282, or a CBC block cipher (AES-CBC per RFC 3602; LEGACY 3DES / DES)
//! with a separate integrity transform.
//!
//! AEAD SK payload body layout (RFC 5282 §3):
//!
//! ```text
//! IV (8) | Ciphertext( IKE payloads | Padding (0..255) | Pad Length (1) ) | ICV (16)
//! ```
//!
//! The nonce is `salt (4, from the key material) | IV (8)` (RFC 5282 §4), the
//! AAD is the IKE header through the end of the SK payload's generic header
//! (RFC 5282 §5.1), and the ICV is the GCM tag.
//!
//! CBC SK payload body layout (RFC 7296 §3.14):
//!
//! ```text
//! IV (block) | Ciphertext( IKE payloads | Padding | Pad Length (1) ) | ICV
//! ```
//!
//! with the ciphertext a whole number of blocks and the ICV the truncated
//! HMAC (keyed with SK_ai / SK_ar) over the IKE header through the end of the
//! ciphertext, i.e. over `aad | IV | ciphertext`.

use core::fmt;

use ring::aead;
use zeroize::Zeroizing;

use super::blockcipher::BlockKey;
use super::integ::IntegKey;
use super::{CryptoError, Integ};

/// Length of the GCM salt taken from the end of the key material (RFC 5282 §7.1).
const SALT_LEN: usize = 4;
/// Length of the explicit IV carried in the SK payload (RFC 5282 §3.1).
const GCM_IV_LEN: usize = 8;
/// Length of the ICV for the "16 octet ICV" variants (RFC 5282 §3.2, §10).
const GCM_ICV_LEN: usize = 16;
/// AES block size (FIPS 197).
const AES_BLOCK: usize = 16;
/// DES / 3DES block size (FIPS 46-3).
const DES_BLOCK: usize = 8;

/// An encryption transform (type 1) for the SK payload (and, through the
/// negotiator, for ESP).
///
/// AES-GCM is a combined-mode cipher ([`Cipher::is_aead`]); the CBC ciphers
/// need a separate INTEG transform ([`Integ`]) that supplies the ICV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// ENCR_AES_GCM_16 (id 20) with a 128-bit key (RFC 5282).
    AesGcm16_128,
    /// ENCR_AES_GCM_16 (id 20) with a 256-bit key (RFC 5282).
    AesGcm16_256,
    /// ENCR_AES_CBC (id 12) with a 128-bit key (RFC 3602).
    AesCbc128,
    /// ENCR_AES_CBC (id 12) with a 192-bit key (RFC 3602).
    AesCbc192,
    /// ENCR_AES_CBC (id 12) with a 256-bit key (RFC 3602).
    AesCbc256,
    /// ENCR_3DES (id 3, RFC 2451): three-key 3DES-EDE in CBC mode. LEGACY.
    TripleDes,
    /// ENCR_DES (id 2, RFC 2405): single DES in CBC mode. LEGACY.
    Des,
}

/// ENCR_DES (IANA transform type 1 id 2).
const ENCR_DES: u16 = 2;
/// ENCR_3DES (IANA transform type 1 id 3).
const ENCR_3DES: u16 = 3;
/// ENCR_AES_CBC (IANA transform type 1 id 12).
const ENCR_AES_CBC: u16 = 12;
/// ENCR_AES_GCM_16 (IANA transform type 1 id 20).
const ENCR_AES_GCM_16: u16 = 20;

impl Cipher {
    /// The cipher for a transform id and its Key Length attribute (in bits,
    /// RFC 7296 §3.3.5). AES-GCM and AES-CBC require the attribute (RFC 5282
    /// §8, RFC 7296 §3.3.5), so `None` is not accepted for them; 3DES and DES
    /// have a fixed key length and must not carry it. 192-bit keys are
    /// supported for AES-CBC only.
    pub fn from_transform(id: u16, key_bits: Option<u16>) -> Option<Cipher> {
        match (id, key_bits) {
            (ENCR_AES_GCM_16, Some(128)) => Some(Cipher::AesGcm16_128),
            (ENCR_AES_GCM_16, Some(256)) => Some(Cipher::AesGcm16_256),
            (ENCR_AES_CBC, Some(128)) => Some(Cipher::AesCbc128),
            (ENCR_AES_CBC, Some(192)) => Some(Cipher::AesCbc192),
            (ENCR_AES_CBC, Some(256)) => Some(Cipher::AesCbc256),
            (ENCR_3DES, None) => Some(Cipher::TripleDes),
            (ENCR_DES, None) => Some(Cipher::Des),
            _ => None,
        }
    }

    /// The transform id and Key Length attribute (bits) to put in a proposal.
    pub fn transform(self) -> (u16, Option<u16>) {
        match self {
            Cipher::AesGcm16_128 => (ENCR_AES_GCM_16, Some(128)),
            Cipher::AesGcm16_256 => (ENCR_AES_GCM_16, Some(256)),
            Cipher::AesCbc128 => (ENCR_AES_CBC, Some(128)),
            Cipher::AesCbc192 => (ENCR_AES_CBC, Some(192)),
            Cipher::AesCbc256 => (ENCR_AES_CBC, Some(256)),
            Cipher::TripleDes => (ENCR_3DES, None),
            Cipher::Des => (ENCR_DES, None),
        }
    }

    /// Octets of key material per direction (SK_ei / SK_er, or an ESP
    /// encryption key). For AES-GCM this includes the 4-octet salt at the end
    /// (RFC 5282 §7.1): 20 / 36. For the CBC ciphers it is the encryption key
    /// only (16 / 24 / 32 for AES, 24 for 3DES, 8 for DES); the integrity key
    /// is [`Integ::key_len`].
    pub fn key_len(self) -> usize {
        match self {
            Cipher::AesGcm16_128 | Cipher::AesGcm16_256 => self.aes_key_len() + SALT_LEN,
            Cipher::AesCbc128 | Cipher::AesCbc192 | Cipher::AesCbc256 => self.aes_key_len(),
            Cipher::TripleDes => 24,
            Cipher::Des => 8,
        }
    }

    fn aes_key_len(self) -> usize {
        match self {
            Cipher::AesGcm16_128 | Cipher::AesCbc128 => 16,
            Cipher::AesCbc192 => 24,
            Cipher::AesGcm16_256 | Cipher::AesCbc256 => 32,
            Cipher::TripleDes | Cipher::Des => 0,
        }
    }

    /// Length of the explicit IV in the SK payload: 8 for GCM (RFC 5282
    /// §3.1), the block size for CBC (RFC 3602 §3, RFC 2451 §2.3).
    pub fn iv_len(self) -> usize {
        match self {
            Cipher::AesGcm16_128 | Cipher::AesGcm16_256 => GCM_IV_LEN,
            _ => self.block_len(),
        }
    }

    /// The length the ciphertext must be a multiple of: 16 for AES-CBC, 8 for
    /// (3)DES, and 1 for GCM (a stream mode, no alignment).
    pub fn block_len(self) -> usize {
        match self {
            Cipher::AesGcm16_128 | Cipher::AesGcm16_256 => 1,
            Cipher::AesCbc128 | Cipher::AesCbc192 | Cipher::AesCbc256 => AES_BLOCK,
            Cipher::TripleDes | Cipher::Des => DES_BLOCK,
        }
    }

    /// Length of the Integrity Checksum Data the cipher itself produces: the
    /// GCM tag, or 0 for the CBC ciphers, whose ICV comes from the integrity
    /// algorithm ([`Integ::icv_len`]).
    pub fn icv_len(self) -> usize {
        if self.is_aead() {
            GCM_ICV_LEN
        } else {
            0
        }
    }

    /// True for combined-mode ciphers: no INTEG transform is negotiated with
    /// them (RFC 7296 §3.3.2, RFC 5282 §8) and SK_ai/SK_ar are empty.
    pub fn is_aead(self) -> bool {
        matches!(self, Cipher::AesGcm16_128 | Cipher::AesGcm16_256)
    }

    /// True for ciphers only allowed behind the `legacy` switch (3DES, DES).
    pub fn is_legacy(self) -> bool {
        matches!(self, Cipher::TripleDes | Cipher::Des)
    }

    fn ring_algorithm(self) -> Option<&'static aead::Algorithm> {
        match self {
            Cipher::AesGcm16_128 => Some(&aead::AES_128_GCM),
            Cipher::AesGcm16_256 => Some(&aead::AES_256_GCM),
            _ => None,
        }
    }
}

enum Engine {
    /// AES-GCM: ring's key schedule (opaque, not printable) and the salt.
    Gcm {
        key: aead::LessSafeKey,
        salt: Zeroizing<[u8; SALT_LEN]>,
    },
    /// CBC encryption plus a truncated-HMAC ICV (encrypt-then-MAC).
    Cbc { block: BlockKey, integ: IntegKey },
}

/// Encrypts and decrypts SK payloads in one direction (one SK_e key, plus
/// the matching SK_a key for a non-AEAD cipher).
pub struct SkCrypter {
    cipher: Cipher,
    engine: Engine,
}

impl fmt::Debug for SkCrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkCrypter")
            .field("cipher", &self.cipher)
            .field("integ", &self.integ())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SkCrypter {
    /// An AEAD crypter from SK_ei or SK_er: [`Cipher::key_len`] octets, the
    /// AES key followed by the 4-octet salt (RFC 5282 §7.1).
    ///
    /// A non-AEAD cipher needs an integrity key too: it gives
    /// [`CryptoError::AlgorithmMismatch`]; use [`SkCrypter::with_integrity`].
    pub fn new(cipher: Cipher, key: &[u8]) -> Result<SkCrypter, CryptoError> {
        let Some(alg) = cipher.ring_algorithm() else {
            return Err(CryptoError::AlgorithmMismatch);
        };
        if key.len() != cipher.key_len() {
            return Err(CryptoError::BadKeyLength);
        }
        let (aes_key, salt_bytes) = key.split_at(cipher.aes_key_len());
        let unbound = aead::UnboundKey::new(alg, aes_key).map_err(|_| CryptoError::BadKeyLength)?;
        let mut salt = Zeroizing::new([0u8; SALT_LEN]);
        salt.copy_from_slice(salt_bytes);
        Ok(SkCrypter {
            cipher,
            engine: Engine::Gcm {
                key: aead::LessSafeKey::new(unbound),
                salt,
            },
        })
    }

    /// A crypter for a non-AEAD (CBC) cipher with a separate integrity
    /// algorithm (RFC 7296 §3.14): `enc_key` is SK_ei / SK_er
    /// ([`Cipher::key_len`] octets), `integ_key` is SK_ai / SK_ar
    /// ([`Integ::key_len`] octets).
    ///
    /// An AEAD `cipher` gives [`CryptoError::AlgorithmMismatch`] (use
    /// [`SkCrypter::new`]); a key of the wrong length
    /// [`CryptoError::BadKeyLength`].
    pub fn with_integrity(
        cipher: Cipher,
        integ: Integ,
        enc_key: &[u8],
        integ_key: &[u8],
    ) -> Result<SkCrypter, CryptoError> {
        if cipher.is_aead() {
            return Err(CryptoError::AlgorithmMismatch);
        }
        if integ_key.len() != integ.key_len() {
            return Err(CryptoError::BadKeyLength);
        }
        let block = BlockKey::new(cipher, enc_key)?;
        Ok(SkCrypter {
            cipher,
            engine: Engine::Cbc {
                block,
                integ: IntegKey::new(integ, integ_key),
            },
        })
    }

    /// The cipher this crypter uses.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The integrity algorithm, for a non-AEAD cipher.
    pub fn integ(&self) -> Option<Integ> {
        match &self.engine {
            Engine::Gcm { .. } => None,
            Engine::Cbc { integ, .. } => Some(integ.integ()),
        }
    }

    /// Length of the ICV this crypter appends.
    fn icv_len(&self) -> usize {
        match &self.engine {
            Engine::Gcm { .. } => GCM_ICV_LEN,
            Engine::Cbc { integ, .. } => integ.integ().icv_len(),
        }
    }

    /// Octets of padding [`SkCrypter::encrypt`] adds before the Pad Length
    /// octet: none for GCM, the minimum that block-aligns
    /// `plaintext | Padding | Pad Length` for CBC (RFC 7296 §3.14).
    fn pad_len(&self, plaintext_len: usize) -> usize {
        let bs = self.cipher.block_len();
        (bs - (plaintext_len + 1) % bs) % bs
    }

    /// Octets that [`SkCrypter::encrypt`] adds to a plaintext of
    /// `plaintext_len` octets: IV + Padding + Pad Length octet + ICV. For GCM
    /// there is no padding (RFC 5282 §3), so it does not depend on
    /// `plaintext_len`; for CBC the padding block-aligns the ciphertext.
    pub fn overhead(&self, plaintext_len: usize) -> usize {
        self.cipher.iv_len() + self.pad_len(plaintext_len) + 1 + self.icv_len()
    }

    /// Encrypts `plaintext` (the inner payload chain) into the SK payload body
    /// `IV | ciphertext | ICV` (RFC 7296 §3.14).
    ///
    /// `aad` is the IKE header through the end of the SK payload's generic
    /// header, with the final lengths (RFC 5282 §5.1; for CBC the ICV covers
    /// `aad | IV | ciphertext`, RFC 7296 §3.14). `iv` must never repeat under
    /// one key, so the caller passes a message counter:
    ///
    /// - GCM: `iv` is the explicit IV, sent big-endian (RFC 5282 §3.1), with
    ///   no padding and a Pad Length of 0.
    /// - CBC: the IV must be unpredictable (RFC 7296 §3.14, RFC 3602 §3), so
    ///   the counter is not sent as is: the IV is `E_K(counter block)`, the
    ///   forward cipher under the encryption key of the counter as a
    ///   big-endian integer zero-extended to one block (NIST SP 800-38A
    ///   Appendix C, first method: a nonce enciphered under the same key).
    ///   The padding is zeros, the minimum that block-aligns the data.
    ///
    /// Returns an empty vector only on an internal error (for GCM: a
    /// plaintext beyond AES-GCM's limit of about 64 GiB, which no IKE message
    /// can reach); use [`SkCrypter::try_encrypt`] to see that as an error.
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
        match &self.engine {
            Engine::Gcm { key, salt } => gcm_seal(key, salt, iv, aad, plaintext),
            Engine::Cbc { block, .. } => {
                let bs = self.cipher.block_len();
                let counter = iv.to_be_bytes();
                // Every CBC block here is at least 8 octets.
                let at = bs
                    .checked_sub(counter.len())
                    .ok_or(CryptoError::AlgorithmMismatch)?;
                let mut iv_block = vec![0u8; bs];
                iv_block[at..].copy_from_slice(&counter);
                block.encrypt_block(&mut iv_block)?;
                self.cbc_seal(&iv_block, aad, plaintext)
            }
        }
    }

    /// CBC with a caller-chosen IV, for known-answer tests only (RFC 3602
    /// §4 vectors): IKE itself must use [`SkCrypter::encrypt`], which makes
    /// the IV unpredictable. [`CryptoError::AlgorithmMismatch`] for GCM,
    /// [`CryptoError::Truncated`] for an IV that is not one block.
    #[doc(hidden)]
    pub fn encrypt_with_explicit_iv(
        &self,
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.engine {
            Engine::Gcm { .. } => Err(CryptoError::AlgorithmMismatch),
            Engine::Cbc { .. } => self.cbc_seal(iv, aad, plaintext),
        }
    }

    fn cbc_seal(&self, iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Engine::Cbc { block, integ } = &self.engine else {
            return Err(CryptoError::AlgorithmMismatch);
        };
        let iv_len = self.cipher.iv_len();
        if iv.len() != iv_len {
            return Err(CryptoError::Truncated);
        }
        let pad = self.pad_len(plaintext.len());
        let mut out = Vec::with_capacity(plaintext.len() + self.overhead(plaintext.len()));
        out.extend_from_slice(iv);
        out.extend_from_slice(plaintext);
        out.resize(out.len() + pad, 0);
        // pad < block size <= 16, so it fits the octet.
        out.push(pad as u8);
        let (iv_part, ct) = out.split_at_mut(iv_len);
        block.cbc_encrypt(iv_part, ct)?;
        // Encrypt-then-MAC over the IKE header .. end of the ciphertext.
        let icv = integ.icv(&[aad, &out]);
        out.extend_from_slice(&icv);
        Ok(out)
    }

    /// Decrypts an SK payload body `IV | ciphertext | ICV` and returns the
    /// inner payload chain.
    ///
    /// GCM: ring verifies the tag (constant time) while decrypting. CBC: the
    /// ICV over `aad | IV | ciphertext` is verified first, in constant time;
    /// only an authentic body is decrypted, then the ciphertext must be a
    /// whole number of blocks ([`CryptoError::BadPadding`] otherwise).
    ///
    /// Either way the Pad Length must fit within the decrypted data; the
    /// padding's contents are not checked, since the sender may choose any
    /// value (RFC 7296 §3.14).
    pub fn decrypt(&self, aad: &[u8], sk_data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv_len = self.cipher.iv_len();
        let icv_len = self.icv_len();
        match &self.engine {
            Engine::Gcm { key, salt } => {
                // At least IV, the Pad Length octet and the ICV.
                if sk_data.len() < iv_len + 1 + icv_len {
                    return Err(CryptoError::Truncated);
                }
                let (iv, ct) = sk_data.split_at(iv_len);
                let iv: [u8; GCM_IV_LEN] = iv.try_into().map_err(|_| CryptoError::Truncated)?;
                let mut buf = Zeroizing::new(ct.to_vec());
                let plain = key
                    .open_in_place(gcm_nonce(salt, &iv), aead::Aad::from(aad), &mut buf[..])
                    .map_err(|_| CryptoError::AuthenticationFailed)?;
                strip_padding(plain)
            }
            Engine::Cbc { block, integ } => {
                let bs = self.cipher.block_len();
                // At least the IV, one block and the ICV.
                if sk_data.len() < iv_len + bs + icv_len {
                    return Err(CryptoError::Truncated);
                }
                let (body, icv) = sk_data.split_at(sk_data.len() - icv_len);
                if !integ.verify(&[aad, body], icv) {
                    return Err(CryptoError::AuthenticationFailed);
                }
                let (iv, ct) = body.split_at(iv_len);
                if ct.len() % bs != 0 {
                    return Err(CryptoError::BadPadding);
                }
                let mut buf = Zeroizing::new(ct.to_vec());
                block.cbc_decrypt(iv, &mut buf)?;
                strip_padding(&buf)
            }
        }
    }
}

/// Removes Padding and the Pad Length octet (RFC 7296 §3.14).
fn strip_padding(plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (&pad_len, rest) = plain.split_last().ok_or(CryptoError::Truncated)?;
    let pad_len = usize::from(pad_len);
    if pad_len > rest.len() {
        return Err(CryptoError::BadPadding);
    }
    Ok(rest[..rest.len() - pad_len].to_vec())
}

fn gcm_nonce(salt: &[u8; SALT_LEN], iv: &[u8; GCM_IV_LEN]) -> aead::Nonce {
    // RFC 5282 §4: nonce = salt | IV.
    let mut n = [0u8; aead::NONCE_LEN];
    n[..SALT_LEN].copy_from_slice(salt);
    n[SALT_LEN..].copy_from_slice(iv);
    aead::Nonce::assume_unique_for_key(n)
}

fn gcm_seal(
    key: &aead::LessSafeKey,
    salt: &[u8; SALT_LEN],
    iv: u64,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let iv_bytes = iv.to_be_bytes();
    let mut out = Vec::with_capacity(GCM_IV_LEN + plaintext.len() + 1 + GCM_ICV_LEN);
    out.extend_from_slice(&iv_bytes);
    out.extend_from_slice(plaintext);
    // Padding: none. Pad Length: 0.
    out.push(0);
    let tag = key
        .seal_in_place_separate_tag(
            gcm_nonce(salt, &iv_bytes),
            aead::Aad::from(aad),
            &mut out[GCM_IV_LEN..],
        )
        .map_err(|_| CryptoError::TooLong)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

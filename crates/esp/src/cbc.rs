//! The CBC + HMAC core: ESP with separate encryption and integrity (RFC 4303
//! §3.2: encrypt, then MAC), separated from the packet handling so the
//! primitives can be tested against published vectors.
//!
//! Ciphers come from RustCrypto (`aes`, which uses AES-NI when the CPU has
//! it, `des`, and the `cbc` block mode); HMAC-SHA2 from `ring`; HMAC-SHA1
//! and HMAC-MD5 from RustCrypto `hmac` + `sha1` / `md-5` (RustCrypto's SHA-1
//! uses the SHA extensions; `ring`'s is portable code and measured about
//! three times slower here). Nothing here allocates per packet: CBC
//! runs in place over the caller's buffer with the key schedule stored in
//! the SA, and the HMAC key's precomputed inner and outer states are copied
//! onto the stack for each packet.
//!
//! ## IV generation
//!
//! RFC 3602 §2.1 requires the CBC IV to be unpredictable. ESP is sans-IO here
//! (no randomness), so the IV is derived as NIST SP 800-38A Appendix C
//! recommends: the block cipher, under the SA's own encryption key, applied
//! to a nonce that is unique per key: the 64-bit sequence number,
//! right-aligned in an otherwise zero block (for DES and 3DES the block is
//! just the sequence number). The sequence number never repeats within an
//! SA (RFC 4303 §3.3.3), so neither does the nonce, and without the key the
//! IV cannot be predicted. No extra key material is needed.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::array::Array;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InOutBuf,
    InnerIvInit, KeyInit,
};
use des::{Des, TdesEde3};
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::algorithm::{CbcCipher, Integrity, MAX_ICV_LEN};
use crate::wire::HEADER_LEN;
use crate::{Algorithm, SaError};

/// A keyed block cipher. The key schedules are zeroized on drop (the `aes`
/// and `des` crates' `zeroize` feature).
enum BlockKey {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
    TripleDes(TdesEde3),
    Des(Des),
}

/// Runs `$body` with `$c` bound to the inner cipher, whatever its type.
macro_rules! with_cipher {
    ($key:expr, $c:ident => $body:expr) => {
        match $key {
            BlockKey::Aes128($c) => $body,
            BlockKey::Aes192($c) => $body,
            BlockKey::Aes256($c) => $body,
            BlockKey::TripleDes($c) => $body,
            BlockKey::Des($c) => $body,
        }
    };
}

/// Why a CBC operation could not run: a length that is not a whole number
/// of blocks, or an IV of the wrong size. Callers check both beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LengthError;

fn cbc_encrypt<C: BlockCipherEncrypt>(
    cipher: &C,
    iv: &[u8],
    data: &mut [u8],
) -> Result<(), LengthError> {
    let iv = Array::<u8, C::BlockSize>::try_from(iv).map_err(|_| LengthError)?;
    let (blocks, tail) = InOutBuf::from(data).into_chunks::<C::BlockSize>();
    if !tail.is_empty() {
        return Err(LengthError);
    }
    cbc::Encryptor::<&C>::inner_iv_init(cipher, &iv).encrypt_blocks_inout(blocks);
    Ok(())
}

fn cbc_decrypt<C: BlockCipherDecrypt>(
    cipher: &C,
    iv: &[u8],
    data: &mut [u8],
) -> Result<(), LengthError> {
    let iv = Array::<u8, C::BlockSize>::try_from(iv).map_err(|_| LengthError)?;
    let (blocks, tail) = InOutBuf::from(data).into_chunks::<C::BlockSize>();
    if !tail.is_empty() {
        return Err(LengthError);
    }
    cbc::Decryptor::<&C>::inner_iv_init(cipher, &iv).decrypt_blocks_inout(blocks);
    Ok(())
}

/// SP 800-38A Appendix C: IV = E_K(nonce), nonce = sequence number,
/// big-endian, right-aligned in a zero block.
fn derive_iv<C: BlockCipherEncrypt>(
    cipher: &C,
    seq: u64,
    out: &mut [u8],
) -> Result<(), LengthError> {
    let mut block = Array::<u8, C::BlockSize>::default();
    let n = block.len();
    block
        .get_mut(n.saturating_sub(8)..)
        .filter(|b| b.len() == 8)
        .ok_or(LengthError)?
        .copy_from_slice(&seq.to_be_bytes());
    cipher.encrypt_block(&mut block);
    if out.len() != n {
        return Err(LengthError);
    }
    out.copy_from_slice(&block);
    Ok(())
}

impl BlockKey {
    fn new(cipher: CbcCipher, key: &[u8]) -> Result<Self, ()> {
        Ok(match cipher {
            CbcCipher::Aes128 => BlockKey::Aes128(Aes128::new_from_slice(key).map_err(|_| ())?),
            CbcCipher::Aes192 => BlockKey::Aes192(Aes192::new_from_slice(key).map_err(|_| ())?),
            CbcCipher::Aes256 => BlockKey::Aes256(Aes256::new_from_slice(key).map_err(|_| ())?),
            CbcCipher::TripleDes => {
                BlockKey::TripleDes(TdesEde3::new_from_slice(key).map_err(|_| ())?)
            }
            CbcCipher::Des => BlockKey::Des(Des::new_from_slice(key).map_err(|_| ())?),
        })
    }

    fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), LengthError> {
        with_cipher!(self, c => cbc_encrypt(c, iv, data))
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), LengthError> {
        with_cipher!(self, c => cbc_decrypt(c, iv, data))
    }

    fn derive_iv(&self, seq: u64, out: &mut [u8]) -> Result<(), LengthError> {
        with_cipher!(self, c => derive_iv(c, seq, out))
    }
}

/// A keyed HMAC with its precomputed inner and outer hash states.
#[derive(Clone)]
enum MacKey {
    /// HMAC-SHA2 from `ring` (not zeroized on drop: `ring` does not offer
    /// it, as for its AES-GCM keys).
    Ring(ring::hmac::Key),
    /// HMAC-SHA1 from RustCrypto (zeroized on drop): its SHA-1 uses the
    /// CPU's SHA extensions, several times faster than `ring`'s portable one.
    Sha1(Hmac<Sha1>),
    /// HMAC-MD5 from RustCrypto (zeroized on drop).
    Md5(Hmac<Md5>),
}

/// One SA's integrity key: HMAC truncated to the ICV length.
#[derive(Clone)]
pub(crate) struct IntegKey {
    key: MacKey,
    icv_len: usize,
}

impl std::fmt::Debug for IntegKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegKey(redacted)")
    }
}

impl IntegKey {
    /// `key` must be exactly [`Integrity::key_len`] bytes (checked by the caller;
    /// HMAC itself accepts any length).
    pub(crate) fn new(integrity: Integrity, key: &[u8]) -> Result<Self, ()> {
        let ring_key = |alg| MacKey::Ring(ring::hmac::Key::new(alg, key));
        let key = match integrity {
            Integrity::HmacSha1_96 => {
                MacKey::Sha1(<Hmac<Sha1> as KeyInit>::new_from_slice(key).map_err(|_| ())?)
            }
            Integrity::HmacSha2_256_128 => ring_key(ring::hmac::HMAC_SHA256),
            Integrity::HmacSha2_384_192 => ring_key(ring::hmac::HMAC_SHA384),
            Integrity::HmacSha2_512_256 => ring_key(ring::hmac::HMAC_SHA512),
            Integrity::HmacMd5_96 => {
                MacKey::Md5(<Hmac<Md5> as KeyInit>::new_from_slice(key).map_err(|_| ())?)
            }
        };
        Ok(Self {
            key,
            icv_len: integrity.icv_len(),
        })
    }

    /// HMAC over the concatenation of `parts`, truncated: the first
    /// `icv_len` bytes of the result are the ICV, the rest are zero.
    pub(crate) fn compute(&self, parts: &[&[u8]]) -> [u8; MAX_ICV_LEN] {
        let mut out = [0u8; MAX_ICV_LEN];
        let n = self.icv_len.min(MAX_ICV_LEN);
        match &self.key {
            MacKey::Ring(key) => {
                let mut ctx = ring::hmac::Context::with_key(key);
                for p in parts {
                    ctx.update(p);
                }
                let tag = ctx.sign();
                copy_prefix(&mut out[..n], tag.as_ref());
            }
            MacKey::Sha1(key) => {
                let mut mac = key.clone();
                for p in parts {
                    mac.update(p);
                }
                copy_prefix(&mut out[..n], &mac.finalize().into_bytes());
            }
            MacKey::Md5(key) => {
                let mut mac = key.clone();
                for p in parts {
                    mac.update(p);
                }
                copy_prefix(&mut out[..n], &mac.finalize().into_bytes());
            }
        }
        out
    }

    /// Length of the truncated output.
    pub(crate) fn icv_len(&self) -> usize {
        self.icv_len
    }

    /// Compares the ICV of `parts` with `icv` in constant time.
    pub(crate) fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let computed = self.compute(parts);
        let Some(expected) = computed.get(..self.icv_len) else {
            return false;
        };
        // Lengths are public; only the contents are compared in constant time.
        expected.len() == icv.len() && bool::from(expected.ct_eq(icv))
    }
}

fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Why [`CbcHmacKey::open`] refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not header + IV + whole blocks + ICV.
    Malformed,
    /// The ICV did not verify.
    Authentication,
}

/// One direction's CBC + HMAC keys.
pub(crate) struct CbcHmacKey {
    cipher: BlockKey,
    integ: IntegKey,
    iv_len: usize,
}

impl std::fmt::Debug for CbcHmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CbcHmacKey(redacted)")
    }
}

/// With ESN, RFC 4303 §2.2.1 / §3.3.2.1: the high 32 bits of the sequence
/// number are appended to the ICV input (after the Next Header field) but
/// never sent.
fn esn_hi(seq: u64, esn: bool) -> ([u8; 4], usize) {
    (((seq >> 32) as u32).to_be_bytes(), if esn { 4 } else { 0 })
}

impl CbcHmacKey {
    /// `material` is encryption key || integrity key (RFC 7296 §2.17),
    /// exactly [`Algorithm::key_len`] bytes.
    pub(crate) fn new(
        cipher: CbcCipher,
        integrity: Integrity,
        material: &[u8],
    ) -> Result<Self, SaError> {
        let algorithm = Algorithm::Cbc { cipher, integrity };
        let (Some(enc), Some(auth)) = (
            material.get(..cipher.key_len()),
            material
                .get(cipher.key_len()..)
                .filter(|k| k.len() == integrity.key_len()),
        ) else {
            return Err(SaError::KeyLength {
                algorithm,
                expected: algorithm.key_len(),
                got: material.len(),
            });
        };
        Ok(Self {
            cipher: BlockKey::new(cipher, enc).map_err(|()| SaError::KeyRejected(algorithm))?,
            integ: IntegKey::new(integrity, auth).map_err(|()| SaError::KeyRejected(algorithm))?,
            iv_len: cipher.block_len(),
        })
    }

    /// Encrypts and authenticates one ESP packet in place.
    ///
    /// `packet` is the whole packet: header (written by the caller) | IV
    /// (written here) | plaintext payload, padding and trailer (a whole
    /// number of blocks, encrypted here) | ICV (written here).
    pub(crate) fn seal(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), LengthError> {
        let icv_len = self.integ.icv_len();
        let auth_len = packet.len().checked_sub(icv_len).ok_or(LengthError)?;
        let (authed, icv_out) = packet.split_at_mut(auth_len);
        let body_start = HEADER_LEN + self.iv_len;
        if authed.len() < body_start {
            return Err(LengthError);
        }
        let (head, body) = authed.split_at_mut(body_start);
        let iv = head.get_mut(HEADER_LEN..).ok_or(LengthError)?;
        self.cipher.derive_iv(seq, iv)?;
        self.cipher.encrypt(iv, body)?;
        let (hi, hi_len) = esn_hi(seq, esn);
        let icv = self
            .integ
            .compute(&[authed, hi.get(..hi_len).unwrap_or_default()]);
        icv_out.copy_from_slice(icv.get(..icv_len).ok_or(LengthError)?);
        Ok(())
    }

    /// Verifies the ICV of one whole ESP packet in constant time and, only
    /// if it is valid, decrypts the payload in place (`packet[header + IV ..
    /// len - ICV]` then holds payload, padding and trailer). `seq` is the
    /// full (ESN-inferred) sequence number. On failure nothing is decrypted.
    pub(crate) fn open(&self, packet: &mut [u8], seq: u64, esn: bool) -> Result<(), OpenError> {
        let icv_len = self.integ.icv_len();
        let body_start = HEADER_LEN + self.iv_len;
        let auth_len = packet
            .len()
            .checked_sub(icv_len)
            .filter(|&n| n > body_start && (n - body_start) % self.iv_len == 0)
            .ok_or(OpenError::Malformed)?;
        let (authed, icv) = packet.split_at_mut(auth_len);
        let (hi, hi_len) = esn_hi(seq, esn);
        if !self
            .integ
            .verify(&[authed, hi.get(..hi_len).unwrap_or_default()], icv)
        {
            return Err(OpenError::Authentication);
        }
        let (head, body) = authed.split_at_mut(body_start);
        let iv = head.get(HEADER_LEN..).ok_or(OpenError::Malformed)?;
        self.cipher
            .decrypt(iv, body)
            .map_err(|_| OpenError::Malformed)
    }

    /// Raw CBC encryption with an explicit IV, for known-answer tests.
    #[cfg(test)]
    pub(crate) fn encrypt_with_iv(&self, iv: &[u8], data: &mut [u8]) -> Result<(), LengthError> {
        self.cipher.encrypt(iv, data)
    }

    /// Raw CBC decryption with an explicit IV, for known-answer tests.
    #[cfg(test)]
    pub(crate) fn decrypt_with_iv(&self, iv: &[u8], data: &mut [u8]) -> Result<(), LengthError> {
        self.cipher.decrypt(iv, data)
    }

    /// The IV [`seal`](Self::seal) uses for `seq`, for tests.
    #[cfg(test)]
    pub(crate) fn iv_for(&self, seq: u64) -> Vec<u8> {
        let mut iv = vec![0u8; self.iv_len];
        let _ = self.cipher.derive_iv(seq, &mut iv);
        iv
    }
}

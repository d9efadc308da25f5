//! Block ciphers in CBC mode for the SK payload (RFC 7296 §3.14): AES
//! (RFC 3602) and, LEGACY, 3DES / DES (RFC 2451). RustCrypto `aes`, `des`
//! and `cbc`; every key schedule zeroizes on drop (their `zeroize`
//! features).

use core::fmt;

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit,
};
use des::{Des, TdesEde3};

use super::{Cipher, CryptoError};

/// One direction's block cipher key schedule.
#[derive(Clone)]
pub(super) enum BlockKey {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
    TdesEde3(TdesEde3),
    Des(Des),
}

impl fmt::Debug for BlockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockKey(<redacted>)")
    }
}

fn init<C: KeyInit>(key: &[u8]) -> Result<C, CryptoError> {
    C::new_from_slice(key).map_err(|_| CryptoError::BadKeyLength)
}

/// Splits `buf` into whole blocks; `None` if it is not block aligned.
fn blocks<C: BlockCipherEncrypt>(buf: &mut [u8]) -> Option<&mut [Array<u8, C::BlockSize>]> {
    let (blocks, rest) = Array::<u8, C::BlockSize>::slice_as_chunks_mut(buf);
    rest.is_empty().then_some(blocks)
}

fn cbc_encrypt<C>(c: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError>
where
    C: BlockCipherEncrypt + Clone,
{
    let mut mode = cbc::Encryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .map_err(|_| CryptoError::Truncated)?;
    let blocks = blocks::<C>(buf).ok_or(CryptoError::BadPadding)?;
    mode.encrypt_blocks(blocks);
    Ok(())
}

fn cbc_decrypt<C>(c: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + Clone,
{
    let mut mode = cbc::Decryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .map_err(|_| CryptoError::Truncated)?;
    let blocks = blocks::<C>(buf).ok_or(CryptoError::BadPadding)?;
    mode.decrypt_blocks(blocks);
    Ok(())
}

fn ecb_encrypt_one<C: BlockCipherEncrypt>(c: &C, block: &mut [u8]) -> Result<(), CryptoError> {
    let blocks = blocks::<C>(block).ok_or(CryptoError::BadPadding)?;
    match blocks {
        [one] => {
            c.encrypt_block(one);
            Ok(())
        }
        _ => Err(CryptoError::BadPadding),
    }
}

impl BlockKey {
    /// The key schedule for a non-AEAD `cipher` from exactly
    /// [`Cipher::key_len`] octets.
    pub(super) fn new(cipher: Cipher, key: &[u8]) -> Result<BlockKey, CryptoError> {
        if key.len() != cipher.key_len() {
            return Err(CryptoError::BadKeyLength);
        }
        Ok(match cipher {
            Cipher::AesCbc128 => BlockKey::Aes128(init(key)?),
            Cipher::AesCbc192 => BlockKey::Aes192(init(key)?),
            Cipher::AesCbc256 => BlockKey::Aes256(init(key)?),
            Cipher::TripleDes => BlockKey::TdesEde3(init(key)?),
            Cipher::Des => BlockKey::Des(init(key)?),
            Cipher::AesGcm16_128 | Cipher::AesGcm16_256 => {
                return Err(CryptoError::AlgorithmMismatch)
            }
        })
    }

    /// The forward cipher on one block in place (`block` must be exactly
    /// one block): used to derive the CBC IV (NIST SP 800-38A Appendix C).
    pub(super) fn encrypt_block(&self, block: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            BlockKey::Aes128(c) => ecb_encrypt_one(c, block),
            BlockKey::Aes192(c) => ecb_encrypt_one(c, block),
            BlockKey::Aes256(c) => ecb_encrypt_one(c, block),
            BlockKey::TdesEde3(c) => ecb_encrypt_one(c, block),
            BlockKey::Des(c) => ecb_encrypt_one(c, block),
        }
    }

    /// CBC-encrypts `buf` (a whole number of blocks) in place under `iv`.
    pub(super) fn cbc_encrypt(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            BlockKey::Aes128(c) => cbc_encrypt(c, iv, buf),
            BlockKey::Aes192(c) => cbc_encrypt(c, iv, buf),
            BlockKey::Aes256(c) => cbc_encrypt(c, iv, buf),
            BlockKey::TdesEde3(c) => cbc_encrypt(c, iv, buf),
            BlockKey::Des(c) => cbc_encrypt(c, iv, buf),
        }
    }

    /// CBC-decrypts `buf` (a whole number of blocks) in place under `iv`.
    pub(super) fn cbc_decrypt(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            BlockKey::Aes128(c) => cbc_decrypt(c, iv, buf),
            BlockKey::Aes192(c) => cbc_decrypt(c, iv, buf),
            BlockKey::Aes256(c) => cbc_decrypt(c, iv, buf),
            BlockKey::TdesEde3(c) => cbc_decrypt(c, iv, buf),
            BlockKey::Des(c) => cbc_decrypt(c, iv, buf),
        }
    }
}

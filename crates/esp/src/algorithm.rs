//! ESP transforms this crate implements.

use std::fmt;
use std::str::FromStr;

/// An ESP encryption transform (combined-mode: it also authenticates).
///
/// Only AES-GCM with a 16-byte ICV for now: it is the modern default between
/// two ipsecgw gateways and with strongSwan. `#[non_exhaustive]` because the
/// AES-CBC + HMAC suites Alibaba Cloud offers will be added.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ENCR_AES_GCM_16 (IKEv2 transform ID 20, RFC 4106) with a 128-bit key.
    AesGcm16_128,
    /// ENCR_AES_GCM_16 (IKEv2 transform ID 20, RFC 4106) with a 256-bit key.
    AesGcm16_256,
}

/// RFC 4106 §4: the salt is the last 4 octets of the keying material.
pub(crate) const GCM_SALT_LEN: usize = 4;
/// RFC 4106 §3.1: the explicit IV carried in each packet is 8 octets.
pub(crate) const GCM_IV_LEN: usize = 8;
/// RFC 4106 §6: the `_16` transforms carry a 16-octet ICV.
pub(crate) const GCM16_ICV_LEN: usize = 16;

/// The strongSwan proposal keywords we accept, in the order we print them.
const NAMES: &str = "aes128gcm16, aes256gcm16 (also aes128gcm, aes256gcm)";

impl Algorithm {
    /// Every algorithm, for tests and for listing in errors and help texts.
    pub const ALL: [Algorithm; 2] = [Algorithm::AesGcm16_128, Algorithm::AesGcm16_256];

    /// Length of the keying material IKE must derive for this SA, including the
    /// 4-byte salt (RFC 4106 §8.1): 16 + 4 or 32 + 4.
    pub fn key_len(self) -> usize {
        self.aes_key_len() + GCM_SALT_LEN
    }

    /// Length of the Integrity Check Value appended to each packet.
    pub fn icv_len(self) -> usize {
        GCM16_ICV_LEN
    }

    /// Length of the explicit IV that follows the ESP header.
    pub fn iv_len(self) -> usize {
        GCM_IV_LEN
    }

    /// Length of the AES key proper (without the salt).
    pub(crate) fn aes_key_len(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 => 16,
            Algorithm::AesGcm16_256 => 32,
        }
    }

    /// IKEv2 transform type 1 (ENCR) ID, RFC 7296 §3.3.2 / IANA: ENCR_AES_GCM_16.
    pub fn ikev2_transform_id(self) -> u16 {
        20
    }

    /// IKEv2 Key Length attribute in bits (RFC 7296 §3.3.5), salt excluded.
    pub fn ikev2_key_bits(self) -> u16 {
        (self.aes_key_len() * 8) as u16
    }

    pub(crate) fn ring_algorithm(self) -> &'static ring::aead::Algorithm {
        match self {
            Algorithm::AesGcm16_128 => &ring::aead::AES_128_GCM,
            Algorithm::AesGcm16_256 => &ring::aead::AES_256_GCM,
        }
    }
}

impl fmt::Display for Algorithm {
    /// strongSwan's proposal keyword, so configs and logs read the same as
    /// `swanctl.conf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::AesGcm16_128 => "aes128gcm16",
            Algorithm::AesGcm16_256 => "aes256gcm16",
        })
    }
}

/// An algorithm name that is not one we implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ESP algorithm {name:?}; valid names: {NAMES}")]
pub struct ParseAlgorithmError {
    /// What was given.
    pub name: String,
}

impl FromStr for Algorithm {
    type Err = ParseAlgorithmError;

    /// Accepts strongSwan's keywords, case-insensitively. strongSwan treats
    /// `aes128gcm` as an alias of `aes128gcm16`, so we do too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "aes128gcm16" | "aes128gcm" => Ok(Algorithm::AesGcm16_128),
            "aes256gcm16" | "aes256gcm" => Ok(Algorithm::AesGcm16_256),
            _ => Err(ParseAlgorithmError { name: s.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(Algorithm::AesGcm16_128.key_len(), 20);
        assert_eq!(Algorithm::AesGcm16_256.key_len(), 36);
        for a in Algorithm::ALL {
            assert_eq!(a.icv_len(), 16);
            assert_eq!(a.iv_len(), 8);
            assert_eq!(a.ikev2_transform_id(), 20);
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
        }
        assert_eq!("aes128gcm".parse(), Ok(Algorithm::AesGcm16_128));
        assert_eq!("AES256GCM".parse(), Ok(Algorithm::AesGcm16_256));
        let err = "aes128".parse::<Algorithm>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("aes128gcm16") && msg.contains("aes256gcm16"),
            "{msg}"
        );
    }
}

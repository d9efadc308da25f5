//! ESP transforms this crate implements.

use std::fmt;
use std::str::FromStr;

/// An ESP transform: either a combined-mode (AEAD) cipher, or a CBC cipher
/// with a separate HMAC integrity algorithm (RFC 4303 §3.2, encrypt-then-MAC).
///
/// AES-GCM with a 16-byte ICV is the modern default between two ipsecgw
/// gateways and with strongSwan; the CBC + HMAC suites are what Alibaba
/// Cloud's VPN Gateway offers. DES, 3DES and MD5 are [legacy](Self::is_legacy)
/// and belong behind an explicit switch in the daemon. `#[non_exhaustive]`:
/// match with a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ENCR_AES_GCM_16 (IKEv2 transform ID 20, RFC 4106) with a 128-bit key.
    AesGcm16_128,
    /// ENCR_AES_GCM_16 (IKEv2 transform ID 20, RFC 4106) with a 256-bit key.
    AesGcm16_256,
    /// A CBC cipher (RFC 3602 / RFC 2405 / RFC 2451) with HMAC integrity
    /// (RFC 2403 / 2404 / 4868). Key material is the encryption key followed
    /// by the integrity key (RFC 7296 §2.17).
    Cbc {
        /// The encryption transform.
        cipher: CbcCipher,
        /// The integrity transform.
        integrity: Integrity,
    },
}

/// The CBC-mode encryption transforms (IKEv2 transform type 1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CbcCipher {
    /// ENCR_AES_CBC (12, RFC 3602) with a 128-bit key.
    Aes128,
    /// ENCR_AES_CBC (12, RFC 3602) with a 192-bit key.
    Aes192,
    /// ENCR_AES_CBC (12, RFC 3602) with a 256-bit key.
    Aes256,
    /// ENCR_3DES (3, RFC 2451): DES-EDE3-CBC, 192-bit key. Legacy.
    TripleDes,
    /// ENCR_DES (2, RFC 2405): DES-CBC, 64-bit key (56 effective). Legacy.
    Des,
}

/// The HMAC integrity transforms (IKEv2 transform type 3).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// AUTH_HMAC_SHA1_96 (2, RFC 2404): 20-byte key, 12-byte ICV.
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128 (12, RFC 4868): 32-byte key, 16-byte ICV.
    HmacSha2_256_128,
    /// AUTH_HMAC_SHA2_384_192 (13, RFC 4868): 48-byte key, 24-byte ICV.
    HmacSha2_384_192,
    /// AUTH_HMAC_SHA2_512_256 (14, RFC 4868): 64-byte key, 32-byte ICV.
    HmacSha2_512_256,
    /// AUTH_HMAC_MD5_96 (1, RFC 2403): 16-byte key, 12-byte ICV. Legacy.
    HmacMd5_96,
}

/// IKEv2 ENCR transform IDs (IANA "Transform Type 1").
const ENCR_DES: u16 = 2;
const ENCR_3DES: u16 = 3;
const ENCR_AES_CBC: u16 = 12;
const ENCR_AES_GCM_16: u16 = 20;
/// IKEv2 INTEG transform ID NONE, allowed with combined-mode ciphers.
const AUTH_NONE: u16 = 0;

/// The largest ICV of any supported transform (HMAC-SHA2-512-256).
pub(crate) const MAX_ICV_LEN: usize = 32;

impl CbcCipher {
    /// Every CBC cipher, strongest first.
    pub const ALL: [CbcCipher; 5] = [
        CbcCipher::Aes128,
        CbcCipher::Aes192,
        CbcCipher::Aes256,
        CbcCipher::TripleDes,
        CbcCipher::Des,
    ];

    /// Encryption key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            CbcCipher::Aes128 => 16,
            CbcCipher::Aes192 => 24,
            CbcCipher::Aes256 => 32,
            CbcCipher::TripleDes => 24,
            CbcCipher::Des => 8,
        }
    }

    /// Block length in bytes, which is also the IV length: 16 for AES
    /// (RFC 3602 §2.1), 8 for DES and 3DES.
    pub fn block_len(self) -> usize {
        match self {
            CbcCipher::Aes128 | CbcCipher::Aes192 | CbcCipher::Aes256 => 16,
            CbcCipher::TripleDes | CbcCipher::Des => 8,
        }
    }

    /// DES and 3DES: 64-bit blocks and (for DES) a brute-forceable key.
    pub fn is_legacy(self) -> bool {
        matches!(self, CbcCipher::TripleDes | CbcCipher::Des)
    }

    /// IKEv2 ENCR transform ID.
    pub fn transform_id(self) -> u16 {
        match self {
            CbcCipher::Aes128 | CbcCipher::Aes192 | CbcCipher::Aes256 => ENCR_AES_CBC,
            CbcCipher::TripleDes => ENCR_3DES,
            CbcCipher::Des => ENCR_DES,
        }
    }

    /// The Key Length attribute in bits: AES only (RFC 7296 §3.3.5: fixed
    /// key-length ciphers must not carry it).
    pub fn key_bits(self) -> Option<u16> {
        match self {
            CbcCipher::Aes128 | CbcCipher::Aes192 | CbcCipher::Aes256 => {
                Some((self.key_len() * 8) as u16)
            }
            CbcCipher::TripleDes | CbcCipher::Des => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CbcCipher::Aes128 => "aes128",
            CbcCipher::Aes192 => "aes192",
            CbcCipher::Aes256 => "aes256",
            CbcCipher::TripleDes => "3des",
            CbcCipher::Des => "des",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            // strongSwan: "aes" is AES-128.
            "aes128" | "aes" => CbcCipher::Aes128,
            "aes192" => CbcCipher::Aes192,
            "aes256" => CbcCipher::Aes256,
            "3des" => CbcCipher::TripleDes,
            "des" => CbcCipher::Des,
            _ => return None,
        })
    }
}

impl fmt::Display for CbcCipher {
    /// strongSwan's keyword (`aes128`, `3des`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Integrity {
    /// Every integrity algorithm.
    pub const ALL: [Integrity; 5] = [
        Integrity::HmacSha1_96,
        Integrity::HmacSha2_256_128,
        Integrity::HmacSha2_384_192,
        Integrity::HmacSha2_512_256,
        Integrity::HmacMd5_96,
    ];

    /// Integrity key length in bytes: the hash's output length (RFC 2403,
    /// RFC 2404, RFC 4868 §2.1.1).
    pub fn key_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 20,
            Integrity::HmacSha2_256_128 => 32,
            Integrity::HmacSha2_384_192 => 48,
            Integrity::HmacSha2_512_256 => 64,
            Integrity::HmacMd5_96 => 16,
        }
    }

    /// ICV length in bytes: the HMAC output truncated to 96 bits (RFC 2403,
    /// RFC 2404) or to half its length (RFC 4868 §2.1.1).
    pub fn icv_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 | Integrity::HmacMd5_96 => 12,
            Integrity::HmacSha2_256_128 => 16,
            Integrity::HmacSha2_384_192 => 24,
            Integrity::HmacSha2_512_256 => 32,
        }
    }

    /// HMAC-MD5.
    pub fn is_legacy(self) -> bool {
        matches!(self, Integrity::HmacMd5_96)
    }

    /// IKEv2 INTEG transform ID.
    pub fn transform_id(self) -> u16 {
        match self {
            Integrity::HmacMd5_96 => 1,
            Integrity::HmacSha1_96 => 2,
            Integrity::HmacSha2_256_128 => 12,
            Integrity::HmacSha2_384_192 => 13,
            Integrity::HmacSha2_512_256 => 14,
        }
    }

    /// The transform with IKEv2 INTEG ID `id`, if we implement it.
    pub fn from_transform_id(id: u16) -> Option<Self> {
        Integrity::ALL.into_iter().find(|i| i.transform_id() == id)
    }

    fn name(self) -> &'static str {
        match self {
            Integrity::HmacSha1_96 => "sha1",
            Integrity::HmacSha2_256_128 => "sha256",
            Integrity::HmacSha2_384_192 => "sha384",
            Integrity::HmacSha2_512_256 => "sha512",
            Integrity::HmacMd5_96 => "md5",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            // strongSwan's aliases: "sha" and "sha2_256" etc.
            "sha1" | "sha" => Integrity::HmacSha1_96,
            "sha256" | "sha2_256" => Integrity::HmacSha2_256_128,
            "sha384" | "sha2_384" => Integrity::HmacSha2_384_192,
            "sha512" | "sha2_512" => Integrity::HmacSha2_512_256,
            "md5" => Integrity::HmacMd5_96,
            _ => return None,
        })
    }
}

impl fmt::Display for Integrity {
    /// strongSwan's keyword (`sha1`, `sha256`, `md5`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 4106 §4: the salt is the last 4 octets of the keying material.
pub(crate) const GCM_SALT_LEN: usize = 4;
/// RFC 4106 §3.1: the explicit IV carried in each packet is 8 octets.
pub(crate) const GCM_IV_LEN: usize = 8;
/// RFC 4106 §6: the `_16` transforms carry a 16-octet ICV.
pub(crate) const GCM16_ICV_LEN: usize = 16;

/// The strongSwan proposal keywords we accept, in the order we print them.
const NAMES: &str = "aes128gcm16, aes256gcm16 (also aes128gcm, aes256gcm), or a CBC \
cipher aes128|aes192|aes256|3des|des, a dash and an integrity algorithm \
sha1|sha256|sha384|sha512|md5 (e.g. aes256-sha256)";

impl Algorithm {
    /// Every algorithm, for tests and for listing in errors and help texts.
    /// The AES-GCM (AEAD) transforms only; see [`CBC_HMAC`](Self::CBC_HMAC)
    /// for the others.
    pub const ALL: [Algorithm; 2] = [Algorithm::AesGcm16_128, Algorithm::AesGcm16_256];

    /// Every CBC + HMAC combination: each of [`CbcCipher::ALL`] with each of
    /// [`Integrity::ALL`], cipher-major.
    pub const CBC_HMAC: [Algorithm; 25] = {
        let mut out = [Algorithm::AesGcm16_128; 25];
        let mut i = 0;
        while i < 25 {
            out[i] = Algorithm::Cbc {
                cipher: CbcCipher::ALL[i / 5],
                integrity: Integrity::ALL[i % 5],
            };
            i += 1;
        }
        out
    };

    /// Length of the keying material IKE must derive for this SA: for AES-GCM
    /// the key and the 4-byte salt (RFC 4106 §8.1): 16 + 4 or 32 + 4; for
    /// CBC + HMAC the encryption key followed by the integrity key (RFC 7296
    /// §2.17), e.g. 16 + 20 for `aes128-sha1`.
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => self.enc_key_len() + GCM_SALT_LEN,
            Algorithm::Cbc { cipher, integrity } => cipher.key_len() + integrity.key_len(),
        }
    }

    /// Length of the Integrity Check Value appended to each packet: 16 for
    /// AES-GCM-16; 12, 16, 24 or 32 for the HMACs.
    pub fn icv_len(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => GCM16_ICV_LEN,
            Algorithm::Cbc { integrity, .. } => integrity.icv_len(),
        }
    }

    /// Length of the explicit IV that follows the ESP header: 8 for AES-GCM,
    /// the cipher's block length for CBC (16 for AES, 8 for DES and 3DES).
    pub fn iv_len(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => GCM_IV_LEN,
            Algorithm::Cbc { cipher, .. } => cipher.block_len(),
        }
    }

    /// What the ciphertext (payload, padding and trailer) is padded to a
    /// multiple of: 4 for AES-GCM (RFC 4303 §2.4), the block length for CBC.
    pub(crate) fn pad_align(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => 4,
            Algorithm::Cbc { cipher, .. } => cipher.block_len(),
        }
    }

    /// True for combined-mode (AEAD) transforms that need no integrity
    /// transform: the AES-GCM ones.
    pub fn is_aead(self) -> bool {
        matches!(self, Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256)
    }

    /// True if the cipher or the integrity algorithm is weak (DES, 3DES,
    /// MD5): the daemon offers these only behind its explicit `legacy`
    /// switch.
    pub fn is_legacy(self) -> bool {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => false,
            Algorithm::Cbc { cipher, integrity } => cipher.is_legacy() || integrity.is_legacy(),
        }
    }

    /// Length of the encryption key proper (for AES-GCM without the salt).
    pub(crate) fn enc_key_len(self) -> usize {
        match self {
            Algorithm::AesGcm16_128 => 16,
            Algorithm::AesGcm16_256 => 32,
            Algorithm::Cbc { cipher, .. } => cipher.key_len(),
        }
    }

    /// IKEv2 transform type 1 (ENCR) ID, RFC 7296 §3.3.2 / IANA:
    /// ENCR_AES_GCM_16 (20), ENCR_AES_CBC (12), ENCR_3DES (3), ENCR_DES (2).
    pub fn ikev2_transform_id(self) -> u16 {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => ENCR_AES_GCM_16,
            Algorithm::Cbc { cipher, .. } => cipher.transform_id(),
        }
    }

    /// IKEv2 Key Length attribute in bits (RFC 7296 §3.3.5), salt excluded.
    /// 0 for DES and 3DES, whose transforms carry no Key Length attribute:
    /// prefer [`transforms`](Self::transforms), which says so with `None`.
    pub fn ikev2_key_bits(self) -> u16 {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => (self.enc_key_len() * 8) as u16,
            Algorithm::Cbc { cipher, .. } => cipher.key_bits().unwrap_or(0),
        }
    }

    /// The IKEv2 transforms that negotiate this algorithm: ENCR transform
    /// ID, its Key Length attribute in bits (`None` for DES and 3DES), and
    /// the INTEG transform ID (`None` for AEAD transforms).
    pub fn transforms(self) -> (u16, Option<u16>, Option<u16>) {
        match self {
            Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => {
                (ENCR_AES_GCM_16, Some(self.ikev2_key_bits()), None)
            }
            Algorithm::Cbc { cipher, integrity } => (
                cipher.transform_id(),
                cipher.key_bits(),
                Some(integrity.transform_id()),
            ),
        }
    }

    /// The algorithm that IKEv2 transforms negotiate, if we implement it:
    /// the inverse of [`transforms`](Self::transforms). `key_bits` is the
    /// ENCR transform's Key Length attribute (required for AES, forbidden for
    /// DES and 3DES); `integ_id` the INTEG transform (required for CBC; absent
    /// or NONE (0) for AES-GCM, RFC 7296 §3.3.3).
    pub fn from_transforms(
        encr_id: u16,
        key_bits: Option<u16>,
        integ_id: Option<u16>,
    ) -> Option<Algorithm> {
        if encr_id == ENCR_AES_GCM_16 {
            if integ_id.is_some_and(|id| id != AUTH_NONE) {
                return None;
            }
            return match key_bits? {
                128 => Some(Algorithm::AesGcm16_128),
                256 => Some(Algorithm::AesGcm16_256),
                _ => None,
            };
        }
        let cipher = match (encr_id, key_bits) {
            (ENCR_AES_CBC, Some(128)) => CbcCipher::Aes128,
            (ENCR_AES_CBC, Some(192)) => CbcCipher::Aes192,
            (ENCR_AES_CBC, Some(256)) => CbcCipher::Aes256,
            (ENCR_3DES, None) => CbcCipher::TripleDes,
            (ENCR_DES, None) => CbcCipher::Des,
            _ => return None,
        };
        let integrity = Integrity::from_transform_id(integ_id?)?;
        Some(Algorithm::Cbc { cipher, integrity })
    }

    /// Human description of the key material layout, for error messages.
    pub(crate) fn key_layout(self) -> &'static str {
        if self.is_aead() {
            "key + 4-byte salt"
        } else {
            "encryption key + integrity key"
        }
    }

    pub(crate) fn ring_algorithm(self) -> Option<&'static ring::aead::Algorithm> {
        match self {
            Algorithm::AesGcm16_128 => Some(&ring::aead::AES_128_GCM),
            Algorithm::AesGcm16_256 => Some(&ring::aead::AES_256_GCM),
            Algorithm::Cbc { .. } => None,
        }
    }
}

impl fmt::Display for Algorithm {
    /// strongSwan's proposal keyword, so configs and logs read the same as
    /// `swanctl.conf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::AesGcm16_128 => f.write_str("aes128gcm16"),
            Algorithm::AesGcm16_256 => f.write_str("aes256gcm16"),
            Algorithm::Cbc { cipher, integrity } => write!(f, "{cipher}-{integrity}"),
        }
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
    /// `aes128gcm` as an alias of `aes128gcm16`, so we do too. CBC suites are
    /// `cipher-integrity` (`aes256-sha256`, `3des-md5`), with strongSwan's
    /// aliases `aes` (AES-128), `sha` (SHA-1) and `sha2_256` etc.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "aes128gcm16" | "aes128gcm" => return Ok(Algorithm::AesGcm16_128),
            "aes256gcm16" | "aes256gcm" => return Ok(Algorithm::AesGcm16_256),
            _ => {}
        }
        lower
            .split_once('-')
            .and_then(|(c, i)| {
                Some(Algorithm::Cbc {
                    cipher: CbcCipher::parse(c)?,
                    integrity: Integrity::parse(i)?,
                })
            })
            .ok_or_else(|| ParseAlgorithmError { name: s.to_owned() })
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

//! Diffie-Hellman groups for the KE payload (RFC 7296 §3.4): Curve25519
//! (group 31, RFC 8031) and 256-bit random ECP (group 19, RFC 5903).

use core::fmt;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use zeroize::Zeroizing;

use super::{CryptoError, Rng};

/// A Diffie-Hellman group (IKEv2 transform type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhGroup {
    /// Curve25519, group 31 (RFC 8031).
    Curve25519,
    /// 256-bit random ECP group (NIST P-256), group 19 (RFC 5903).
    Ecp256,
}

impl DhGroup {
    /// The group for a transform type 4 id, if supported.
    pub fn from_id(id: u16) -> Option<DhGroup> {
        match id {
            19 => Some(DhGroup::Ecp256),
            31 => Some(DhGroup::Curve25519),
            _ => None,
        }
    }

    /// The transform type 4 id (IANA "Transform Type 4 - Key Exchange Method").
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Ecp256 => 19,
            DhGroup::Curve25519 => 31,
        }
    }

    /// Length of the KE payload's Key Exchange Data: 32 octets for Curve25519
    /// (RFC 8031 §2), 64 octets `x | y` for ECP-256 (RFC 5903 §7: no point
    /// compression prefix).
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Curve25519 => 32,
            DhGroup::Ecp256 => 64,
        }
    }
}

enum Inner {
    X25519(x25519_dalek::StaticSecret),
    Ecp256(p256::SecretKey),
}

/// Our private Diffie-Hellman value for one exchange. Both inner types zeroize
/// on drop (x25519-dalek's `zeroize` feature; `p256::SecretKey`'s `Drop`).
pub struct DhSecret {
    inner: Inner,
}

impl fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhSecret")
            .field("group", &self.group())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl DhSecret {
    /// A fresh private value from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn Rng) -> DhSecret {
        let inner = match group {
            // RFC 8031 §2: 32 random octets; clamping happens in X25519 itself
            // (RFC 7748 §5).
            DhGroup::Curve25519 => Inner::X25519(x25519_dalek::StaticSecret::random_from_rng(rng)),
            // A uniform scalar in [1, n-1] by rejection sampling (RFC 5903 §3 "i").
            DhGroup::Ecp256 => Inner::Ecp256(p256::SecretKey::random(&mut &mut *rng)),
        };
        DhSecret { inner }
    }

    /// A private value from fixed bytes, for known-answer tests only: a
    /// 32-octet X25519 scalar (RFC 7748 §5) or a 32-octet big-endian P-256
    /// scalar in [1, n-1].
    #[doc(hidden)]
    pub fn from_secret_bytes(group: DhGroup, bytes: &[u8]) -> Result<DhSecret, CryptoError> {
        let inner = match group {
            DhGroup::Curve25519 => {
                let arr: Zeroizing<[u8; 32]> =
                    Zeroizing::new(bytes.try_into().map_err(|_| CryptoError::BadPrivateValue)?);
                Inner::X25519(x25519_dalek::StaticSecret::from(*arr))
            }
            DhGroup::Ecp256 => {
                if bytes.len() != 32 {
                    return Err(CryptoError::BadPrivateValue);
                }
                Inner::Ecp256(
                    p256::SecretKey::from_slice(bytes).map_err(|_| CryptoError::BadPrivateValue)?,
                )
            }
        };
        Ok(DhSecret { inner })
    }

    /// The group this value belongs to.
    pub fn group(&self) -> DhGroup {
        match self.inner {
            Inner::X25519(_) => DhGroup::Curve25519,
            Inner::Ecp256(_) => DhGroup::Ecp256,
        }
    }

    /// Our public value, as the KE payload's Key Exchange Data
    /// ([`DhGroup::public_len`] octets).
    pub fn public(&self) -> Vec<u8> {
        match &self.inner {
            Inner::X25519(s) => x25519_dalek::PublicKey::from(s).as_bytes().to_vec(),
            Inner::Ecp256(s) => {
                // RFC 5903 §7: x | y, each 32 octets big-endian, without the
                // SEC1 0x04 prefix. An uncompressed SEC1 point is 0x04 | x | y.
                let point = s.public_key().to_encoded_point(false);
                point.as_bytes().get(1..).unwrap_or_default().to_vec()
            }
        }
    }

    /// The shared secret g^ir from the peer's Key Exchange Data.
    ///
    /// Recipient checks:
    /// - the length must be [`DhGroup::public_len`];
    /// - Curve25519: an all-zero result (a low-order peer point) is rejected
    ///   (RFC 8031 §2.3, RFC 7748 §6.1);
    /// - ECP-256: x and y must be field elements below p and the point must
    ///   lie on the curve and not be the point at infinity (RFC 5903 §9,
    ///   RFC 7296 §5 and its reference to RFC 6989 recipient tests; P-256 has
    ///   cofactor 1, so no subgroup check is needed beyond that).
    ///
    /// For ECP groups the shared secret is the x coordinate only, 32 octets
    /// (RFC 5903 §7).
    pub fn agree(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if peer_public.len() != self.group().public_len() {
            return Err(CryptoError::BadPublicValue);
        }
        match &self.inner {
            Inner::X25519(s) => {
                let arr: [u8; 32] = peer_public
                    .try_into()
                    .map_err(|_| CryptoError::BadPublicValue)?;
                let shared = s.diffie_hellman(&x25519_dalek::PublicKey::from(arr));
                // `was_contributory` is a constant-time all-zero check.
                if !shared.was_contributory() {
                    return Err(CryptoError::BadPublicValue);
                }
                Ok(Zeroizing::new(shared.as_bytes().to_vec()))
            }
            Inner::Ecp256(s) => {
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..].copy_from_slice(peer_public);
                // from_sec1_bytes decodes x, y as canonical field elements
                // (< p) and checks the curve equation; the identity cannot be
                // encoded in 65 octets.
                let peer = p256::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| CryptoError::BadPublicValue)?;
                let shared = p256::ecdh::diffie_hellman(s.to_nonzero_scalar(), peer.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
        }
    }
}

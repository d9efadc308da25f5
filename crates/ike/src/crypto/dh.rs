//! Diffie-Hellman groups for the KE payload (RFC 7296 §3.4): Curve25519
//! (group 31, RFC 8031), 256-bit random ECP (group 19, RFC 5903), and the
//! MODP groups 14 (RFC 3526 §3) and, LEGACY, 1, 2 (RFC 2409 §6.1, §6.2) and
//! 5 (RFC 3526 §2).
//!
//! MODP arithmetic is RustCrypto `crypto-bigint`'s constant-time Montgomery
//! exponentiation with a fixed-width integer the size of each prime.

use core::fmt;

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Encoding, Odd, Uint, U1024, U1536, U2048, U512, U768};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, Rng};

/// A Diffie-Hellman group (IKEv2 transform type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhGroup {
    /// Curve25519, group 31 (RFC 8031).
    Curve25519,
    /// 256-bit random ECP group (NIST P-256), group 19 (RFC 5903).
    Ecp256,
    /// 768-bit MODP group, group 1 (RFC 2409 §6.1). LEGACY.
    Modp768,
    /// 1024-bit MODP group, group 2 (RFC 2409 §6.2). LEGACY.
    Modp1024,
    /// 1536-bit MODP group, group 5 (RFC 3526 §2). LEGACY.
    Modp1536,
    /// 2048-bit MODP group, group 14 (RFC 3526 §3).
    Modp2048,
}

impl DhGroup {
    /// The group for a transform type 4 id, if supported.
    pub fn from_id(id: u16) -> Option<DhGroup> {
        match id {
            1 => Some(DhGroup::Modp768),
            2 => Some(DhGroup::Modp1024),
            5 => Some(DhGroup::Modp1536),
            14 => Some(DhGroup::Modp2048),
            19 => Some(DhGroup::Ecp256),
            31 => Some(DhGroup::Curve25519),
            _ => None,
        }
    }

    /// The transform type 4 id (IANA "Transform Type 4 - Key Exchange Method").
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Ecp256 => 19,
            DhGroup::Curve25519 => 31,
        }
    }

    /// True for groups only allowed behind the `legacy` switch (1, 2, 5:
    /// below 2048 bits).
    pub fn is_legacy(self) -> bool {
        matches!(
            self,
            DhGroup::Modp768 | DhGroup::Modp1024 | DhGroup::Modp1536
        )
    }

    /// Length of the KE payload's Key Exchange Data: 32 octets for Curve25519
    /// (RFC 8031 §2), 64 octets `x | y` for ECP-256 (RFC 5903 §7: no point
    /// compression prefix), the prime's length for MODP groups (RFC 7296
    /// §3.4: 96, 128, 192, 256 octets).
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Curve25519 => 32,
            DhGroup::Ecp256 => 64,
            DhGroup::Modp768 => 96,
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
        }
    }

    /// The prime of a MODP group, big-endian, [`DhGroup::public_len`] octets
    /// (the generator is 2). `None` for the elliptic-curve groups.
    pub fn modp_prime(self) -> Option<Vec<u8>> {
        Some(match self {
            DhGroup::Modp768 => MODP_768.as_ref().to_be_bytes().to_vec(),
            DhGroup::Modp1024 => MODP_1024.as_ref().to_be_bytes().to_vec(),
            DhGroup::Modp1536 => MODP_1536.as_ref().to_be_bytes().to_vec(),
            DhGroup::Modp2048 => MODP_2048.as_ref().to_be_bytes().to_vec(),
            DhGroup::Curve25519 | DhGroup::Ecp256 => return None,
        })
    }

    /// Bits of the random private exponent for a MODP group: at least twice
    /// the group's estimated security strength (RFC 3526 §1, §8; NIST SP
    /// 800-56A): 320 for group 14 (the upper of RFC 3526 §8's estimates,
    /// 160 bits), 256 for groups 1, 2 and 5 (strength 120 bits or less).
    fn modp_exponent_bits(self) -> u32 {
        match self {
            DhGroup::Modp2048 => 320,
            _ => 256,
        }
    }
}

/// The RFC 2409 §6.1 prime (group 1): 2^768 - 2^704 - 1 + 2^64 * { [2^638 pi] + 149686 }.
const MODP_768: Odd<U768> = Odd::<U768>::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A63A3620FFFFFFFFFFFFFFFF",
));

/// The RFC 2409 §6.2 prime (group 2): 2^1024 - 2^960 - 1 + 2^64 * { [2^894 pi] + 129093 }.
const MODP_1024: Odd<U1024> = Odd::<U1024>::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381",
    "FFFFFFFFFFFFFFFF",
));

/// The RFC 3526 §2 prime (group 5): 2^1536 - 2^1472 - 1 + 2^64 * { [2^1406 pi] + 741804 }.
const MODP_1536: Odd<U1536> = Odd::<U1536>::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
));

/// The RFC 3526 §3 prime (group 14): 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }.
const MODP_2048: Odd<U2048> = Odd::<U2048>::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The MODP generator, 2 for every group here (RFC 2409 §6, RFC 3526).
const GENERATOR: u64 = 2;

/// `base^exp mod p` in constant time (for a fixed `exp_bits`), as
/// big-endian octets the prime's length (RFC 7296 §3.4: left-padded with
/// zeros). `base` must be below p.
fn modp_exp<const L: usize>(
    p: &Odd<Uint<L>>,
    base: &Uint<L>,
    exp: &U512,
    exp_bits: u32,
) -> Zeroizing<Vec<u8>>
where
    Uint<L>: Encoding,
{
    let params = MontyParams::new_vartime(*p);
    let base = MontyForm::new(base, params);
    let r = Zeroizing::new(base.pow_bounded_exp(exp, exp_bits));
    let r = Zeroizing::new(r.retrieve());
    let mut bytes = r.to_be_bytes();
    let out = Zeroizing::new(bytes.as_ref().to_vec());
    bytes.as_mut().zeroize();
    out
}

/// `g^exp mod p`: our public value.
fn modp_public<const L: usize>(p: &Odd<Uint<L>>, exp: &U512, exp_bits: u32) -> Vec<u8>
where
    Uint<L>: Encoding,
{
    // g^x is public: it may leave the Zeroizing wrapper.
    modp_exp(p, &Uint::<L>::from_u64(GENERATOR), exp, exp_bits).to_vec()
}

/// `y^exp mod p` for the peer's value `y`, after the recipient checks: the
/// right length and 1 < y < p - 1 (RFC 7296 §5; NIST SP 800-56A
/// §5.6.2.3.2 partial public-key validation). `None` if `y` fails them.
fn modp_shared<const L: usize>(
    p: &Odd<Uint<L>>,
    peer: &[u8],
    exp: &U512,
    exp_bits: u32,
) -> Option<Zeroizing<Vec<u8>>>
where
    Uint<L>: Encoding,
{
    if peer.len() != Uint::<L>::BYTES {
        return None;
    }
    // Exactly BYTES octets, so from_be_slice cannot panic.
    let y = Uint::<L>::from_be_slice(peer);
    let p_minus_1 = p.as_ref().wrapping_sub(&Uint::ONE);
    // The peer's value is public: plain comparisons are fine.
    if y <= Uint::ONE || y >= p_minus_1 {
        return None;
    }
    Some(modp_exp(p, &y, exp, exp_bits))
}

/// A MODP private exponent (zeroized on drop) and the public value it gives.
struct ModpSecret {
    group: DhGroup,
    exp: Zeroizing<U512>,
    exp_bits: u32,
    public: Vec<u8>,
}

impl ModpSecret {
    /// `exp` must be at least 2 and below 2^exp_bits (callers check), so
    /// that g^x is neither 1 nor g.
    fn new(group: DhGroup, exp: Zeroizing<U512>, exp_bits: u32) -> ModpSecret {
        let public = match group {
            DhGroup::Modp768 => modp_public(&MODP_768, &exp, exp_bits),
            DhGroup::Modp1024 => modp_public(&MODP_1024, &exp, exp_bits),
            DhGroup::Modp1536 => modp_public(&MODP_1536, &exp, exp_bits),
            DhGroup::Modp2048 => modp_public(&MODP_2048, &exp, exp_bits),
            // Never constructed for the curves.
            DhGroup::Curve25519 | DhGroup::Ecp256 => Vec::new(),
        };
        ModpSecret {
            group,
            exp,
            exp_bits,
            public,
        }
    }

    /// A uniformly random exponent of [`DhGroup::modp_exponent_bits`] bits
    /// (at least 2, by rejection: a smaller one comes up with probability
    /// 2^-255).
    fn generate(group: DhGroup, rng: &mut dyn Rng) -> ModpSecret {
        let exp_bits = group.modp_exponent_bits();
        let mut buf = Zeroizing::new([0u8; 64]);
        let n = (exp_bits / 8) as usize;
        let two = U512::from_u64(2);
        loop {
            let at = buf.len() - n;
            rng.fill_bytes(&mut buf[at..]);
            let exp = Zeroizing::new(U512::from_be_slice(&buf[..]));
            if *exp >= two {
                return ModpSecret::new(group, exp, exp_bits);
            }
        }
    }

    fn agree(&self, peer: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (exp, bits) = (&*self.exp, self.exp_bits);
        match self.group {
            DhGroup::Modp768 => modp_shared(&MODP_768, peer, exp, bits),
            DhGroup::Modp1024 => modp_shared(&MODP_1024, peer, exp, bits),
            DhGroup::Modp1536 => modp_shared(&MODP_1536, peer, exp, bits),
            DhGroup::Modp2048 => modp_shared(&MODP_2048, peer, exp, bits),
            DhGroup::Curve25519 | DhGroup::Ecp256 => None,
        }
    }
}

/// Big-endian `bytes` (at most 64 octets) as a [`U512`], zeroizing the
/// intermediate buffer.
fn u512_from_be(bytes: &[u8]) -> Option<Zeroizing<U512>> {
    let mut buf = Zeroizing::new([0u8; 64]);
    let at = buf.len().checked_sub(bytes.len())?;
    buf[at..].copy_from_slice(bytes);
    Some(Zeroizing::new(U512::from_be_slice(&buf[..])))
}

enum Inner {
    X25519(x25519_dalek::StaticSecret),
    Ecp256(p256::SecretKey),
    Modp(ModpSecret),
}

/// Our private Diffie-Hellman value for one exchange. Every inner type zeroizes
/// on drop (x25519-dalek's `zeroize` feature; `p256::SecretKey`'s `Drop`; the
/// MODP exponent lives in a `Zeroizing` buffer).
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
            // A random exponent of twice the group's strength (RFC 3526 §8).
            DhGroup::Modp768 | DhGroup::Modp1024 | DhGroup::Modp1536 | DhGroup::Modp2048 => {
                Inner::Modp(ModpSecret::generate(group, rng))
            }
        };
        DhSecret { inner }
    }

    /// A private value from fixed bytes, for known-answer tests only: a
    /// 32-octet X25519 scalar (RFC 7748 §5), a 32-octet big-endian P-256
    /// scalar in [1, n-1], or a big-endian MODP exponent of 1 to 64 octets
    /// whose value is at least 2.
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
            DhGroup::Modp768 | DhGroup::Modp1024 | DhGroup::Modp1536 | DhGroup::Modp2048 => {
                if bytes.is_empty() {
                    return Err(CryptoError::BadPrivateValue);
                }
                let exp = u512_from_be(bytes).ok_or(CryptoError::BadPrivateValue)?;
                if *exp < U512::from_u64(2) {
                    return Err(CryptoError::BadPrivateValue);
                }
                // At most 64 octets: at most 512 bits.
                let bits = (bytes.len() * 8) as u32;
                Inner::Modp(ModpSecret::new(group, exp, bits))
            }
        };
        Ok(DhSecret { inner })
    }

    /// The group this value belongs to.
    pub fn group(&self) -> DhGroup {
        match self.inner {
            Inner::X25519(_) => DhGroup::Curve25519,
            Inner::Ecp256(_) => DhGroup::Ecp256,
            Inner::Modp(ref m) => m.group,
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
            Inner::Modp(m) => m.public.clone(),
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
    ///   cofactor 1, so no subgroup check is needed beyond that);
    /// - MODP: 1 < y < p - 1 (RFC 7296 §5; NIST SP 800-56A §5.6.2.3.2
    ///   partial validation: rejects 0, 1, p - 1 and anything >= p).
    ///
    /// For ECP groups the shared secret is the x coordinate only, 32 octets
    /// (RFC 5903 §7); for MODP groups it is y^x mod p, left-padded with zeros
    /// to the prime's length (RFC 7296 §3.4, §2.14).
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
            Inner::Modp(m) => m.agree(peer_public).ok_or(CryptoError::BadPublicValue),
        }
    }
}

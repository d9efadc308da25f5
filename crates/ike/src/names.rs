//! strongSwan's names for the algorithms (`aes256gcm16`, `prfsha256`,
//! `curve25519`), so configs and logs read the same on both sides.

use std::fmt;
use std::str::FromStr;

use crate::crypto::{Cipher, DhGroup, Integ, Prf};

/// A name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName;

const CIPHERS: &[(&str, Cipher)] = &[
    ("aes128gcm16", Cipher::AesGcm16_128),
    ("aes256gcm16", Cipher::AesGcm16_256),
    ("aes128gcm", Cipher::AesGcm16_128),
    ("aes256gcm", Cipher::AesGcm16_256),
    ("aes128", Cipher::AesCbc128),
    ("aes192", Cipher::AesCbc192),
    ("aes256", Cipher::AesCbc256),
    ("aes", Cipher::AesCbc128),
    ("3des", Cipher::TripleDes),
    ("des", Cipher::Des),
];
const INTEGS: &[(&str, Integ)] = &[
    ("sha1", Integ::HmacSha1_96),
    ("sha256", Integ::HmacSha2_256_128),
    ("sha384", Integ::HmacSha2_384_192),
    ("sha512", Integ::HmacSha2_512_256),
    ("md5", Integ::HmacMd5_96),
    ("sha", Integ::HmacSha1_96),
];
const PRFS: &[(&str, Prf)] = &[
    ("prfsha1", Prf::HmacSha1),
    ("prfsha256", Prf::HmacSha256),
    ("prfsha384", Prf::HmacSha384),
    ("prfsha512", Prf::HmacSha512),
    ("prfmd5", Prf::HmacMd5),
];
const GROUPS: &[(&str, DhGroup)] = &[
    ("curve25519", DhGroup::Curve25519),
    ("x25519", DhGroup::Curve25519),
    ("ecp256", DhGroup::Ecp256),
    ("modp2048", DhGroup::Modp2048),
    ("modp1536", DhGroup::Modp1536),
    ("modp1024", DhGroup::Modp1024),
    ("modp768", DhGroup::Modp768),
];

fn lookup<T: Copy>(table: &[(&str, T)], s: &str) -> Result<T, UnknownName> {
    let s = s.to_ascii_lowercase();
    table
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or(UnknownName)
}

fn name<T: PartialEq>(table: &[(&'static str, T)], v: &T) -> &'static str {
    table
        .iter()
        .find(|(_, x)| x == v)
        .map(|(n, _)| *n)
        .unwrap_or("?")
}

impl FromStr for Cipher {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        lookup(CIPHERS, s)
    }
}
impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name(CIPHERS, self))
    }
}
impl FromStr for Prf {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        lookup(PRFS, s)
    }
}
impl fmt::Display for Prf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name(PRFS, self))
    }
}
impl FromStr for DhGroup {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        lookup(GROUPS, s)
    }
}
impl fmt::Display for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name(GROUPS, self))
    }
}
impl FromStr for Integ {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        lookup(INTEGS, s)
    }
}
impl fmt::Display for Integ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name(INTEGS, self))
    }
}

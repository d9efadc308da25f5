//! Proposals: what this end offers and accepts, and the strict selection
//! rule (RFC 7296 §2.7, §3.3): the responder walks its own configured list
//! in order and takes the first entry the initiator offered in full.

use std::fmt;
use std::str::FromStr;

use crate::crypto::{Cipher, DhGroup, Integ, Prf};
use crate::wire::{Proposal, ProtocolId, Transform, TransformType};

/// ESN transform values (RFC 7296 §3.3.2, transform type 5).
const ESN_NO: u16 = 0;
const ESN_YES: u16 = 1;

/// One IKE SA algorithm combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeProposal {
    /// Encryption of the SK payload.
    pub cipher: Cipher,
    /// Integrity of the SK payload; `None` for AEAD ciphers (RFC 5282 §8).
    pub integ: Option<Integ>,
    /// Pseudo-random function.
    pub prf: Prf,
    /// Diffie-Hellman group.
    pub dh: DhGroup,
}

/// One CHILD SA (ESP) algorithm combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspProposal {
    /// ESP encryption.
    pub cipher: Cipher,
    /// ESP integrity; `None` for AEAD ciphers.
    pub integ: Option<Integ>,
    /// 64-bit extended sequence numbers.
    pub esn: bool,
}

fn transform(kind: TransformType, id: u16, key_len: Option<u16>) -> Transform {
    Transform { kind, id, key_len }
}

fn cipher_transform(c: Cipher) -> Transform {
    let (id, bits) = c.transform();
    transform(TransformType::Encr, id, bits)
}

fn has(p: &Proposal, t: &Transform) -> bool {
    p.transforms
        .iter()
        .any(|x| x.kind == t.kind && x.id == t.id && x.key_len == t.key_len)
}

fn only(p: &Proposal, kind: TransformType) -> Option<&Transform> {
    let mut it = p.transforms.iter().filter(|t| t.kind == kind);
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// An AEAD proposal must not carry an integrity algorithm other than NONE
/// (RFC 5282 §8).
fn no_integrity(p: &Proposal) -> bool {
    p.transforms
        .iter()
        .all(|t| t.kind != TransformType::Integ || t.id == 0)
}

/// Whether `p` offers exactly what `integ` asks for: that integrity
/// algorithm, or (for an AEAD cipher) none.
fn integ_offered(p: &Proposal, integ: Option<Integ>) -> bool {
    match integ {
        Some(i) => has(p, &transform(TransformType::Integ, i.id(), None)),
        None => no_integrity(p),
    }
}

/// The integrity a responder chose, consistent with the cipher.
fn chosen_integ(p: &Proposal, cipher: Cipher) -> Option<Option<Integ>> {
    match (cipher.is_aead(), only(p, TransformType::Integ)) {
        (true, None) => Some(None),
        (true, Some(t)) if t.id == 0 => Some(None),
        (false, Some(t)) => Integ::from_id(t.id).map(Some),
        _ => None,
    }
}

fn push_integ(p: &mut Proposal, integ: Option<Integ>) {
    if let Some(i) = integ {
        p.transforms
            .insert(1, transform(TransformType::Integ, i.id(), None));
    }
}

impl IkeProposal {
    /// The SA payload proposal numbered `num` (IKE SA: empty SPI in IKE_SA_INIT).
    pub fn to_wire(&self, num: u8, spi: Vec<u8>) -> Proposal {
        let mut p = Proposal {
            num,
            protocol: ProtocolId::Ike,
            spi,
            transforms: vec![
                cipher_transform(self.cipher),
                transform(TransformType::Prf, self.prf.id(), None),
                transform(TransformType::Dh, self.dh.id(), None),
            ],
        };
        push_integ(&mut p, self.integ);
        p
    }

    fn offered_by(&self, p: &Proposal) -> bool {
        p.protocol == ProtocolId::Ike
            && has(p, &cipher_transform(self.cipher))
            && has(p, &transform(TransformType::Prf, self.prf.id(), None))
            && has(p, &transform(TransformType::Dh, self.dh.id(), None))
            && integ_offered(p, self.integ)
    }

    /// Reads the single choice a responder returned.
    pub fn from_chosen(p: &Proposal) -> Option<IkeProposal> {
        if p.protocol != ProtocolId::Ike {
            return None;
        }
        let e = only(p, TransformType::Encr)?;
        let cipher = Cipher::from_transform(e.id, e.key_len)?;
        Some(IkeProposal {
            cipher,
            integ: chosen_integ(p, cipher)?,
            prf: Prf::from_id(only(p, TransformType::Prf)?.id)?,
            dh: DhGroup::from_id(only(p, TransformType::Dh)?.id)?,
        })
    }

    /// Integrity key length (SK_ai, SK_ar), 0 for AEAD.
    pub fn integ_key_len(&self) -> usize {
        self.integ.map_or(0, Integ::key_len)
    }

    /// Whether it uses an algorithm kept only for old peers (DES, 3DES,
    /// MD5, MODP 768/1024/1536).
    pub fn is_legacy(&self) -> bool {
        self.cipher.is_legacy()
            || self.integ.is_some_and(Integ::is_legacy)
            || self.prf.is_legacy()
            || self.dh.is_legacy()
    }
}

impl EspProposal {
    /// The SA payload proposal numbered `num` with our inbound SPI.
    pub fn to_wire(&self, num: u8, spi: u32) -> Proposal {
        let mut p = Proposal {
            num,
            protocol: ProtocolId::Esp,
            spi: spi.to_be_bytes().to_vec(),
            transforms: vec![
                cipher_transform(self.cipher),
                transform(
                    TransformType::Esn,
                    if self.esn { ESN_YES } else { ESN_NO },
                    None,
                ),
            ],
        };
        push_integ(&mut p, self.integ);
        p
    }

    /// The same with a DH transform for PFS in a CREATE_CHILD_SA (§1.3.1).
    pub fn to_wire_pfs(&self, num: u8, spi: u32, pfs: Option<DhGroup>) -> Proposal {
        let mut p = self.to_wire(num, spi);
        if let Some(g) = pfs {
            p.transforms
                .push(transform(TransformType::Dh, g.id(), None));
        }
        p
    }

    fn offered_by(&self, p: &Proposal) -> bool {
        let esn = transform(
            TransformType::Esn,
            if self.esn { ESN_YES } else { ESN_NO },
            None,
        );
        // No ESN transform at all means "no ESN" (RFC 7296 §3.3.3 lists it
        // as mandatory for ESP, but be lenient on what we accept).
        let esn_ok = has(p, &esn)
            || (!self.esn && !p.transforms.iter().any(|t| t.kind == TransformType::Esn));
        p.protocol == ProtocolId::Esp
            && p.spi.len() == 4
            && has(p, &cipher_transform(self.cipher))
            && esn_ok
            && integ_offered(p, self.integ)
    }

    /// Reads the single choice a responder returned, with its SPI.
    pub fn from_chosen(p: &Proposal) -> Option<(EspProposal, u32)> {
        if p.protocol != ProtocolId::Esp {
            return None;
        }
        let spi = u32::from_be_bytes(p.spi.as_slice().try_into().ok()?);
        let e = only(p, TransformType::Encr)?;
        let cipher = Cipher::from_transform(e.id, e.key_len)?;
        let esn = match only(p, TransformType::Esn) {
            Some(t) if t.id == ESN_YES => true,
            Some(t) if t.id == ESN_NO => false,
            Some(_) => return None,
            None => false,
        };
        Some((
            EspProposal {
                cipher,
                integ: chosen_integ(p, cipher)?,
                esn,
            },
            spi,
        ))
    }

    /// Key material per direction (§2.17: encryption key, then integrity key).
    pub fn key_len(&self) -> usize {
        self.cipher.key_len() + self.integ.map_or(0, Integ::key_len)
    }

    /// Whether it uses an algorithm kept only for old peers.
    pub fn is_legacy(&self) -> bool {
        self.cipher.is_legacy() || self.integ.is_some_and(Integ::is_legacy)
    }
}

/// Responder side: our first configured proposal the peer offered, and the
/// number of the peer's proposal that contained it.
pub fn select_ike(ours: &[IkeProposal], offered: &[Proposal]) -> Option<(IkeProposal, u8)> {
    ours.iter().find_map(|o| {
        offered
            .iter()
            .find(|p| o.offered_by(p))
            .map(|p| (*o, p.num))
    })
}

/// Responder side for ESP: our choice, the peer's proposal number and SPI.
pub fn select_esp(ours: &[EspProposal], offered: &[Proposal]) -> Option<(EspProposal, u8, u32)> {
    ours.iter().find_map(|o| {
        offered.iter().find(|p| o.offered_by(p)).and_then(|p| {
            let spi = u32::from_be_bytes(p.spi.as_slice().try_into().ok()?);
            Some((*o, p.num, spi))
        })
    })
}

/// A peer's proposals in strongSwan's notation, for logs.
pub fn describe(offered: &[Proposal]) -> String {
    let parts: Vec<String> = offered
        .iter()
        .map(|p| {
            let names: Vec<String> = p
                .transforms
                .iter()
                .map(|t| match t.kind {
                    TransformType::Encr => Cipher::from_transform(t.id, t.key_len)
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| {
                            format!(
                                "encr{}{}",
                                t.id,
                                t.key_len.map(|k| format!("/{k}")).unwrap_or_default()
                            )
                        }),
                    TransformType::Prf => Prf::from_id(t.id)
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| format!("prf{}", t.id)),
                    TransformType::Dh => DhGroup::from_id(t.id)
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| format!("dh{}", t.id)),
                    TransformType::Integ => Integ::from_id(t.id)
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| format!("integ{}", t.id)),
                    TransformType::Esn => {
                        if t.id == ESN_YES {
                            "esn".into()
                        } else {
                            "noesn".into()
                        }
                    }
                    TransformType::Unknown(k) => format!("t{k}:{}", t.id),
                })
                .collect();
            names.join("-")
        })
        .collect();
    parts.join(", ")
}

impl fmt::Display for IkeProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.integ {
            Some(i) => write!(f, "{}-{}-{}-{}", self.cipher, i, self.prf, self.dh),
            None => write!(f, "{}-{}-{}", self.cipher, self.prf, self.dh),
        }
    }
}

impl fmt::Display for EspProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cipher)?;
        if let Some(i) = self.integ {
            write!(f, "-{i}")?;
        }
        if self.esn {
            f.write_str("-esn")?;
        }
        Ok(())
    }
}

/// A proposal string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadProposal(String);

/// strongSwan's rule: without an explicit PRF, the one of the integrity
/// algorithm's hash.
fn prf_of(integ: Integ) -> Prf {
    match integ {
        Integ::HmacMd5_96 => Prf::HmacMd5,
        Integ::HmacSha1_96 => Prf::HmacSha1,
        Integ::HmacSha2_256_128 => Prf::HmacSha256,
        Integ::HmacSha2_384_192 => Prf::HmacSha384,
        Integ::HmacSha2_512_256 => Prf::HmacSha512,
    }
}

const VALID_IKE: &str = "aes128gcm16|aes256gcm16, or aes128|aes192|aes256 (|3des|des with legacy) with sha1|sha256|sha384|sha512 (|md5), an optional prfsha1|prfsha256|prfsha384|prfsha512, and curve25519|ecp256|modp2048 (|modp1536|modp1024|modp768)";

impl FromStr for IkeProposal {
    type Err = BadProposal;
    /// strongSwan notation: `aes256gcm16-prfsha256-curve25519`,
    /// `aes128-sha1-modp2048` (the PRF then follows the integrity hash).
    fn from_str(s: &str) -> Result<Self, BadProposal> {
        let (mut cipher, mut integ, mut prf, mut dh) = (None, None, None, None);
        for part in s.split('-') {
            if let Ok(c) = part.parse::<Cipher>() {
                cipher = Some(c);
            } else if let Ok(i) = part.parse::<Integ>() {
                integ = Some(i);
            } else if let Ok(p) = part.parse::<Prf>() {
                prf = Some(p);
            } else if let Ok(d) = part.parse::<DhGroup>() {
                dh = Some(d);
            } else {
                return Err(BadProposal(format!(
                    "{part:?} in {s:?} is not a supported algorithm: use {VALID_IKE}"
                )));
            }
        }
        let cipher = cipher
            .ok_or_else(|| BadProposal(format!("{s:?} names no encryption: use {VALID_IKE}")))?;
        if cipher.is_aead() == integ.is_some() {
            return Err(BadProposal(format!(
                "{s:?}: {}",
                if cipher.is_aead() {
                    "an AEAD cipher (…gcm16) takes no integrity algorithm"
                } else {
                    "a CBC cipher needs an integrity algorithm, e.g. aes128-sha1-modp2048"
                }
            )));
        }
        let prf = prf.or(integ.map(prf_of)).ok_or_else(|| {
            BadProposal(format!(
                "{s:?} needs a PRF, e.g. aes256gcm16-prfsha256-curve25519"
            ))
        })?;
        let dh = dh.ok_or_else(|| {
            BadProposal(format!(
                "{s:?} needs a DH group, e.g. curve25519 or modp2048"
            ))
        })?;
        Ok(IkeProposal {
            cipher,
            integ,
            prf,
            dh,
        })
    }
}

impl FromStr for EspProposal {
    type Err = BadProposal;
    /// strongSwan notation: `aes256gcm16`, `aes128-sha1`, with `-esn`.
    fn from_str(s: &str) -> Result<Self, BadProposal> {
        let (mut cipher, mut integ, mut esn) = (None, None, false);
        for part in s.split('-') {
            match part {
                "esn" => esn = true,
                "noesn" => esn = false,
                p => {
                    if let Ok(c) = p.parse::<Cipher>() {
                        cipher = Some(c);
                    } else if let Ok(i) = p.parse::<Integ>() {
                        integ = Some(i);
                    } else {
                        return Err(BadProposal(format!(
                            "{p:?} in {s:?} is not a supported ESP algorithm: use aes128gcm16|aes256gcm16, or aes128|aes192|aes256 with sha1|sha256|sha384|sha512, optionally -esn"
                        )));
                    }
                }
            }
        }
        let cipher = cipher.ok_or_else(|| BadProposal(format!("{s:?} names no ESP encryption")))?;
        if cipher.is_aead() == integ.is_some() {
            return Err(BadProposal(format!(
                "{s:?}: AEAD ciphers take no integrity algorithm; CBC ciphers need one (e.g. aes128-sha1)"
            )));
        }
        Ok(EspProposal { cipher, integ, esn })
    }
}

//! Tests for the Alibaba Cloud algorithm set: AES-CBC / 3DES / DES with a
//! separate integrity transform in the SK payload, HMAC-MD5, and the MODP
//! groups 1, 2, 5, 14.
//!
//! Independent references: the RFC vectors (RFC 2202, RFC 4231, RFC 4868,
//! RFC 3602, RFC 3526), ring for HMAC-SHA, and vectors computed with Python's
//! `hmac` / `pow` and pyca/cryptography (OpenSSL) where the RFCs have none.

use aes::Aes128;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use ring::hmac;

use super::*;

const CBC_CIPHERS: [Cipher; 5] = [
    Cipher::AesCbc128,
    Cipher::AesCbc192,
    Cipher::AesCbc256,
    Cipher::TripleDes,
    Cipher::Des,
];
const ALL_INTEGS: [Integ; 5] = [
    Integ::HmacMd5_96,
    Integ::HmacSha1_96,
    Integ::HmacSha2_256_128,
    Integ::HmacSha2_384_192,
    Integ::HmacSha2_512_256,
];
const MODP_GROUPS: [DhGroup; 4] = [
    DhGroup::Modp2048,
    DhGroup::Modp1024,
    DhGroup::Modp1536,
    DhGroup::Modp768,
];

fn enc_key(c: Cipher) -> Vec<u8> {
    (0..c.key_len() as u8)
        .map(|b| b.wrapping_mul(29).wrapping_add(11))
        .collect()
}

fn integ_key(i: Integ) -> Vec<u8> {
    (0..i.key_len() as u8)
        .map(|b| b.wrapping_mul(53).wrapping_add(7))
        .collect()
}

fn crypter(c: Cipher, i: Integ) -> SkCrypter {
    SkCrypter::with_integrity(c, i, &enc_key(c), &integ_key(i)).unwrap()
}

/// The full HMAC with ring (SHA) or the RFC-2202-checked `Prf::HmacMd5`.
fn full_hmac(i: Integ, key: &[u8], data: &[u8]) -> Vec<u8> {
    let alg = match i {
        Integ::HmacMd5_96 => return Prf::HmacMd5.prf(key, &[data]).to_vec(),
        Integ::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Integ::HmacSha2_256_128 => hmac::HMAC_SHA256,
        Integ::HmacSha2_384_192 => hmac::HMAC_SHA384,
        Integ::HmacSha2_512_256 => hmac::HMAC_SHA512,
    };
    hmac::sign(&hmac::Key::new(alg, key), data)
        .as_ref()
        .to_vec()
}

// ---------------------------------------------------------------- ids

#[test]
fn cbc_cipher_transforms() {
    for (c, id, bits, key, block, legacy) in [
        (Cipher::AesCbc128, 12, Some(128), 16, 16, false),
        (Cipher::AesCbc192, 12, Some(192), 24, 16, false),
        (Cipher::AesCbc256, 12, Some(256), 32, 16, false),
        (Cipher::TripleDes, 3, None, 24, 8, true),
        (Cipher::Des, 2, None, 8, 8, true),
    ] {
        assert_eq!(c.transform(), (id, bits), "{c:?}");
        assert_eq!(Cipher::from_transform(id, bits), Some(c));
        assert_eq!(c.key_len(), key, "{c:?}");
        assert_eq!(c.iv_len(), block, "{c:?}");
        assert_eq!(c.block_len(), block, "{c:?}");
        assert_eq!(c.icv_len(), 0, "{c:?}");
        assert!(!c.is_aead());
        assert_eq!(c.is_legacy(), legacy, "{c:?}");
    }
    for c in [Cipher::AesGcm16_128, Cipher::AesGcm16_256] {
        assert!(c.is_aead() && !c.is_legacy());
        assert_eq!(c.block_len(), 1);
    }
    // AES-CBC needs the Key Length attribute; (3)DES must not carry one.
    assert_eq!(Cipher::from_transform(12, None), None);
    assert_eq!(Cipher::from_transform(12, Some(64)), None);
    assert_eq!(Cipher::from_transform(3, Some(192)), None);
    assert_eq!(Cipher::from_transform(2, Some(64)), None);
    assert_eq!(Cipher::from_transform(1, None), None);
}

#[test]
fn integ_ids_and_lengths() {
    for (i, id, key, icv, legacy) in [
        (Integ::HmacMd5_96, 1, 16, 12, true),
        (Integ::HmacSha1_96, 2, 20, 12, false),
        (Integ::HmacSha2_256_128, 12, 32, 16, false),
        (Integ::HmacSha2_384_192, 13, 48, 24, false),
        (Integ::HmacSha2_512_256, 14, 64, 32, false),
    ] {
        assert_eq!(i.id(), id);
        assert_eq!(Integ::from_id(id), Some(i));
        assert_eq!(i.key_len(), key, "{i:?}");
        assert_eq!(i.icv_len(), icv, "{i:?}");
        assert_eq!(i.is_legacy(), legacy, "{i:?}");
    }
    for id in [0, 3, 4, 5, 11, 15, 0xffff] {
        assert_eq!(Integ::from_id(id), None, "{id}");
    }
}

#[test]
fn prf_hmac_md5_id_and_lengths() {
    assert_eq!(Prf::from_id(1), Some(Prf::HmacMd5));
    assert_eq!(Prf::HmacMd5.id(), 1);
    assert_eq!(Prf::HmacMd5.output_len(), 16);
    assert_eq!(Prf::HmacMd5.key_len(), 16);
    assert!(Prf::HmacMd5.is_legacy());
    for prf in ALL_PRFS {
        assert!(!prf.is_legacy());
    }
}

// ---------------------------------------------------------------- HMAC vectors

/// RFC 2202 §2: HMAC-MD5 test cases 1, 2, 3, 4, 6, 7 (6 and 7 hash a key
/// longer than the 64-octet block first).
#[test]
fn hmac_md5_rfc2202() {
    let cases: [(&[u8], &[u8], &str); 6] = [
        (&[0x0b; 16], b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "750c783e6ab0b503eaa86e310a5db738",
        ),
        (&[0xaa; 16], &[0xdd; 50], "56be34521d144c88dbb8c733f0e8b3f6"),
        (
            &h("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            &[0xcd; 50],
            "697eaf0aca3a3aea3a75164746ffaa79",
        ),
        (
            &[0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
        ),
        (
            &[0xaa; 80],
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
            "6f630fad67cda0ee1fb1f562db3aa53e",
        ),
    ];
    for (key, data, want) in cases {
        assert_eq!(*Prf::HmacMd5.prf(key, &[data]), h(want));
        // Split input gives the same MAC.
        let (a, b) = data.split_at(data.len() / 2);
        assert_eq!(*Prf::HmacMd5.prf(key, &[a, b]), h(want));
    }
}

/// prf+ with HMAC-MD5 follows RFC 7296 §2.13 like the others.
#[test]
fn prf_plus_md5_matches_definition() {
    let key = h("000102030405060708090a0b0c0d0e0f");
    let seed = b"Ni | Nr | SPIi | SPIr";
    for len in [0, 1, 15, 16, 17, 100, 255 * 16] {
        let got = Prf::HmacMd5.prf_plus(&key, &[&seed[..3], &seed[3..]], len);
        assert_eq!(*got, prf_plus_by_definition(Prf::HmacMd5, &key, seed, len));
    }
    assert_eq!(
        Prf::HmacMd5.try_prf_plus(&key, &[seed], 255 * 16 + 1),
        Err(CryptoError::TooLong)
    );
}

/// Truncated-HMAC vectors: RFC 2202 test case 5 ("digest-96" for MD5 and
/// SHA-1), RFC 4231 §4.6 test case 5 (the leftmost 128 bits, which are the
/// first 16 octets of our longer SHA-384/512 ICVs) and RFC 4868 §2.7.2.1
/// AUTH256-1..4 (HMAC-SHA-256-128 with 32-octet keys).
#[test]
fn integ_truncation_vectors() {
    let trunc = b"Test With Truncation".as_slice();
    assert_eq!(
        Integ::HmacMd5_96.icv(&[0x0c; 16], &[trunc]),
        h("56461ef2342edc00f9bab995")
    );
    assert_eq!(
        Integ::HmacSha1_96.icv(&[0x0c; 20], &[trunc]),
        h("4c1a03424b55e07fe7f27be1")
    );
    assert_eq!(
        Integ::HmacSha2_256_128.icv(&[0x0c; 20], &[trunc]),
        h("a3b6167473100ee06e0c796c2955552b")
    );
    for (i, want) in [
        (Integ::HmacSha2_384_192, "3abf34c3503b2a23a46efc619baef897"),
        (Integ::HmacSha2_512_256, "415fad6271580a531d4179bc891d87a6"),
    ] {
        let icv = i.icv(&[0x0c; 20], &[trunc]);
        assert_eq!(icv.len(), i.icv_len());
        assert_eq!(icv[..16], h(want)[..], "{i:?}");
    }
    let jefe = b"JefeJefeJefeJefeJefeJefeJefeJefe".as_slice();
    let key4 = h("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
    let auth256: [(&[u8], &[u8], &str); 4] = [
        (&[0x0b; 32], b"Hi There", "198a607eb44bfbc69903a0f1cf2bbdc5"),
        (
            jefe,
            b"what do ya want for nothing?",
            "167f928588c5cc2eef8e3093caa0e87c",
        ),
        (&[0xaa; 32], &[0xdd; 50], "cdcb1220d1ecccea91e53aba3092f962"),
        (&key4, &[0xcd; 50], "372efcf9b40b35c2115b1346903d2ef4"),
    ];
    for (key, data, want) in auth256 {
        assert_eq!(key.len(), Integ::HmacSha2_256_128.key_len());
        assert_eq!(Integ::HmacSha2_256_128.icv(key, &[data]), h(want));
    }
    // Every ICV is the leftmost icv_len octets of the full HMAC.
    for i in ALL_INTEGS {
        let key = integ_key(i);
        let full = full_hmac(i, &key, b"data");
        assert_eq!(i.icv(&key, &[b"da", b"ta"]), full[..i.icv_len()]);
    }
}

// ---------------------------------------------------------------- SK with CBC

const AAD: &[u8] = b"IKE header (28 octets) ......SKhd";

/// RFC 3602 §4 cases 1–4 (AES-128-CBC) through the SK layer with the
/// vector's IV: the SK ciphertext begins with the vector's ciphertext (CBC
/// is prefix-preserving; the SK layer then adds one block of padding, since
/// the plaintexts are block aligned), and the ICV is HMAC-SHA1-96 over
/// AAD | IV | ciphertext.
#[test]
fn sk_aes_cbc_rfc3602_known_answers() {
    let cases: [(&str, &str, &[u8], &str); 4] = [
        (
            "06a9214036b8a15b512e03d534120006",
            "3dafba429d9eb430b422da802c9fac41",
            b"Single block msg",
            "e353779c1079aeb82708942dbe77181a",
        ),
        (
            "c286696d887c9aa0611bbb3e2025a45a",
            "562e17996d093d28ddb3ba695a2e6f58",
            &h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
            "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
        ),
        (
            "6c3ea0477630ce21a2ce334aa746c2cd",
            "c782dc4c098c66cbd9cd27d825682c81",
            b"This is a 48-byte message (exactly 3 AES blocks)",
            "d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5\
             021c19216bad525c8579695d83ba2684",
        ),
        (
            "56e47a38c5598974bc46903dba290349",
            "8ce82eefbea0da3c44699ed7db51b7d9",
            &h(
                "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
                c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
            ),
            "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e\
             35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55",
        ),
    ];
    let ik = [0x11u8; 20];
    for (key, iv, pt, want) in cases {
        let (key, iv, want) = (h(key), h(iv), h(want));
        let s =
            SkCrypter::with_integrity(Cipher::AesCbc128, Integ::HmacSha1_96, &key, &ik).unwrap();
        let sk = s.encrypt_with_explicit_iv(&iv, AAD, pt).unwrap();
        assert_eq!(sk.len(), pt.len() + s.overhead(pt.len()));
        assert_eq!(sk.len(), 16 + pt.len() + 16 + 12);
        assert_eq!(sk[..16], iv[..]);
        assert_eq!(sk[16..16 + want.len()], want[..]);
        let (body, icv) = sk.split_at(sk.len() - 12);
        assert_eq!(
            icv,
            &full_hmac(Integ::HmacSha1_96, &ik, &[AAD, body].concat())[..12]
        );
        assert_eq!(s.decrypt(AAD, &sk).unwrap(), pt);
    }
}

/// 3DES-EDE3-CBC and DES-CBC known answers (pyca/cryptography / OpenSSL;
/// DES as 3DES with K1 = K2 = K3) through the SK layer with an explicit IV.
#[test]
fn sk_des_known_answers() {
    let iv = h("0001020304050607");
    let pt = h("101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f");
    for (c, key, want) in [
        (
            Cipher::TripleDes,
            h("404142434445464748494a4b4c4d4e4f5051525354555657"),
            "b8eff75aee5fcefeac477fefed2b3de2be5009f300e374eb842bb3ce3934ff8c",
        ),
        (
            Cipher::Des,
            h("133457799bbcdff1"),
            "df36dee727fed06bf155f662fc8a8e81cf0e72dd5be34a24ca4bf1a71f45149c",
        ),
    ] {
        let s = SkCrypter::with_integrity(c, Integ::HmacSha1_96, &key, &[0; 20]).unwrap();
        let sk = s.encrypt_with_explicit_iv(&iv, AAD, &pt).unwrap();
        assert_eq!(sk[8..8 + 32], h(want)[..], "{c:?}");
        assert_eq!(s.decrypt(AAD, &sk).unwrap(), pt);
    }
}

/// Whole SK payload bodies as a peer computes them (Python, pyca/cryptography
/// and `hmac`): IV = E_K(counter as a zero-extended big-endian block),
/// minimal zero padding, ICV over AAD | IV | ciphertext. Proves the IV
/// derivation, padding and ICV coverage together.
#[test]
fn sk_cbc_peer_vectors() {
    let pt = b"IDi AUTH SA TSi TSr";
    let range = |a: u8, b: u8| (a..b).collect::<Vec<u8>>();
    let cases = [
        (
            Cipher::AesCbc128,
            Integ::HmacSha1_96,
            range(0, 16),
            range(0x20, 0x34),
            5u64,
            "9b82998964728141405e23dd9f1dd01bc80580bac75ef6c906ffb20a06b42d76\
             8cb7561a1dd15cf5ea668eccdc92e38513e43c090ce35bb75174aac1",
        ),
        (
            Cipher::TripleDes,
            Integ::HmacMd5_96,
            range(0x40, 0x58),
            range(0x60, 0x70),
            7,
            "fe7a9554a2757bf2f92ed0b7c15d85a7f0e3cc17659b54ad19bf87c9b7f1e6f4\
             f3e7126e2069adc3336d9839",
        ),
        (
            Cipher::Des,
            Integ::HmacSha2_256_128,
            h("133457799bbcdff1"),
            range(0x80, 0xa0),
            1,
            "5d59d44607495a7ac43e7e00e738bf25c2afb9b4b32881916c6753eb9b642a37\
             a0a32918b08fb71bbc71a4204a429f50",
        ),
        (
            Cipher::AesCbc256,
            Integ::HmacSha2_384_192,
            range(0xa0, 0xc0),
            range(0xc0, 0xf0),
            0x0102_0304_0506_0708,
            "5a7ef006449395511b67832e9f2d0349fc1087172671747728a35ce2c0d660e3\
             0227d617152fe315284b5be72964b25b7a66d4582ecc72eba9597a69288f295b\
             7185b55fafeb615c",
        ),
    ];
    for (c, i, ek, ik, counter, want) in cases {
        let s = SkCrypter::with_integrity(c, i, &ek, &ik).unwrap();
        let sk = s.encrypt(counter, AAD, pt);
        assert_eq!(sk, h(want), "{c:?} {i:?}");
        assert_eq!(s.try_encrypt(counter, AAD, pt).unwrap(), sk);
        assert_eq!(s.decrypt(AAD, &sk).unwrap(), pt);
    }
}

#[test]
fn sk_cbc_round_trip_every_pair() {
    for c in CBC_CIPHERS {
        for i in ALL_INTEGS {
            let s = crypter(c, i);
            assert_eq!(s.cipher(), c);
            assert_eq!(s.integ(), Some(i));
            let bs = c.block_len();
            for len in (0usize..=40).chain([100, 1500]) {
                let pt: Vec<u8> = (0..len).map(|n| (n * 7) as u8).collect();
                let sk = s.encrypt(len as u64, AAD, &pt);
                let pad = (bs - (len + 1) % bs) % bs;
                assert_eq!(s.overhead(len), c.iv_len() + pad + 1 + i.icv_len());
                assert_eq!(sk.len(), len + s.overhead(len), "{c:?} {i:?} {len}");
                assert_eq!((sk.len() - c.iv_len() - i.icv_len()) % bs, 0);
                assert_eq!(s.decrypt(AAD, &sk).unwrap(), pt, "{c:?} {i:?} {len}");
                // Deterministic for a given counter.
                assert_eq!(s.encrypt(len as u64, AAD, &pt), sk);
            }
            // The IV is not the counter itself, and differs per counter.
            let a = s.encrypt(1, AAD, b"x");
            let b = s.encrypt(2, AAD, b"x");
            assert_ne!(a[..c.iv_len()], b[..c.iv_len()]);
            let mut counter_block = vec![0u8; c.iv_len()];
            let n = counter_block.len();
            counter_block[n - 8..].copy_from_slice(&1u64.to_be_bytes());
            assert_ne!(a[..c.iv_len()], counter_block[..]);
            assert_ne!(a[c.iv_len()..], b[c.iv_len()..]);
        }
    }
}

#[test]
fn sk_cbc_any_flipped_byte_fails() {
    let pt = b"IDi AUTH SA TSi TSr";
    for c in CBC_CIPHERS {
        for i in ALL_INTEGS {
            let s = crypter(c, i);
            let sk = s.encrypt(3, AAD, pt);
            // IV, ciphertext and ICV.
            for n in 0..sk.len() {
                for bit in [0x01, 0x80] {
                    let mut bad = sk.clone();
                    bad[n] ^= bit;
                    assert_eq!(
                        s.decrypt(AAD, &bad),
                        Err(CryptoError::AuthenticationFailed),
                        "{c:?} {i:?} sk {n}"
                    );
                }
            }
            for n in 0..AAD.len() {
                let mut bad = AAD.to_vec();
                bad[n] ^= 0x01;
                assert_eq!(
                    s.decrypt(&bad, &sk),
                    Err(CryptoError::AuthenticationFailed),
                    "{c:?} {i:?} aad {n}"
                );
            }
            // Another integrity key fails.
            let mut ik = integ_key(i);
            ik[0] ^= 1;
            let other = SkCrypter::with_integrity(c, i, &enc_key(c), &ik).unwrap();
            assert_eq!(
                other.decrypt(AAD, &sk),
                Err(CryptoError::AuthenticationFailed)
            );
        }
    }
}

#[test]
fn sk_cbc_truncated() {
    for c in CBC_CIPHERS {
        for i in ALL_INTEGS {
            let s = crypter(c, i);
            let min = c.iv_len() + c.block_len() + i.icv_len();
            let sk = s.encrypt(9, AAD, b"");
            assert_eq!(sk.len(), min);
            assert_eq!(s.decrypt(AAD, &sk).unwrap(), b"");
            for len in 0..min {
                assert_eq!(
                    s.decrypt(AAD, &sk[..len]),
                    Err(CryptoError::Truncated),
                    "{c:?} {i:?} {len}"
                );
            }
            // Longer bodies cut short (an octet, a block, the whole ICV) fail
            // authentication.
            let sk = s.encrypt(9, AAD, &[0x5a; 50]);
            for cut in [1, c.block_len(), i.icv_len()] {
                assert_eq!(
                    s.decrypt(AAD, &sk[..sk.len() - cut]),
                    Err(CryptoError::AuthenticationFailed),
                    "{c:?} {i:?} {cut}"
                );
            }
            // Extra octets appended fail too.
            let mut long = sk.clone();
            long.push(0);
            assert_eq!(
                s.decrypt(AAD, &long),
                Err(CryptoError::AuthenticationFailed)
            );
        }
    }
}

/// Builds an SK body the way a peer could: AES-128-CBC of `inner` (which
/// already holds any padding and the Pad Length octet; it need not be block
/// aligned) under `iv`, then the HMAC-SHA-256-128 ICV.
fn seal_raw_aes128(key: &[u8], ik: &[u8], iv: &[u8; 16], inner: &[u8]) -> Vec<u8> {
    let aligned = inner.len() - inner.len() % 16;
    let mut ct = inner.to_vec();
    let mut enc = cbc::Encryptor::<Aes128>::new_from_slices(key, iv).unwrap();
    let (blocks, _) = cbc::cipher::Array::slice_as_chunks_mut(&mut ct[..aligned]);
    enc.encrypt_blocks(blocks);
    let mut body = [&iv[..], &ct].concat();
    let icv = &full_hmac(Integ::HmacSha2_256_128, ik, &[AAD, &body].concat())[..16];
    body.extend_from_slice(icv);
    body
}

/// RFC 7296 §3.14: the padding's contents and length (beyond the minimum)
/// are the sender's choice; the Pad Length must fit; the ciphertext must be
/// block aligned.
#[test]
fn sk_cbc_padding() {
    let c = Cipher::AesCbc128;
    let i = Integ::HmacSha2_256_128;
    let (key, ik) = (enc_key(c), integ_key(i));
    let s = SkCrypter::with_integrity(c, i, &key, &ik).unwrap();
    let iv = [0x3cu8; 16];
    let seal = |inner: &[u8]| seal_raw_aes128(&key, &ik, &iv, inner);
    // Our own output matches the peer construction (zero padding, minimal).
    let mut inner = b"abc".to_vec();
    inner.extend_from_slice(&[0; 12]);
    inner.push(12);
    assert_eq!(
        s.encrypt_with_explicit_iv(&iv, AAD, b"abc").unwrap(),
        seal(&inner)
    );
    // Arbitrary padding contents.
    let mut inner = b"abc".to_vec();
    inner.extend_from_slice(&[0x99; 12]);
    inner.push(12);
    assert_eq!(s.decrypt(AAD, &seal(&inner)).unwrap(), b"abc");
    // More padding than needed: a whole extra block.
    let mut inner = b"abc".to_vec();
    inner.extend_from_slice(&[0xa5; 28]);
    inner.push(28);
    assert_eq!(s.decrypt(AAD, &seal(&inner)).unwrap(), b"abc");
    // 255 octets of padding.
    let mut inner = vec![b'x'; 16];
    inner.extend_from_slice(&[7; 255]);
    inner.push(255);
    assert_eq!(inner.len() % 16, 0);
    assert_eq!(s.decrypt(AAD, &seal(&inner)).unwrap(), vec![b'x'; 16]);
    // All padding: empty payload chain.
    let mut inner = vec![0u8; 15];
    inner.push(15);
    assert_eq!(s.decrypt(AAD, &seal(&inner)).unwrap(), b"");
    // Pad Length beyond the data.
    let mut inner = vec![0u8; 15];
    inner.push(16);
    assert_eq!(s.decrypt(AAD, &seal(&inner)), Err(CryptoError::BadPadding));
    let mut inner = vec![0u8; 31];
    inner.push(0xff);
    assert_eq!(s.decrypt(AAD, &seal(&inner)), Err(CryptoError::BadPadding));
    // An authentic but misaligned ciphertext.
    for len in [17, 20, 31, 33] {
        let mut inner = vec![0u8; len];
        inner[len - 1] = 0;
        assert_eq!(
            s.decrypt(AAD, &seal(&inner)),
            Err(CryptoError::BadPadding),
            "{len}"
        );
    }
}

#[test]
fn sk_constructors_check_algorithms_and_keys() {
    for c in CBC_CIPHERS {
        assert_eq!(
            SkCrypter::new(c, &enc_key(c)).unwrap_err(),
            CryptoError::AlgorithmMismatch
        );
        for i in ALL_INTEGS {
            for len in [0, c.key_len() - 1, c.key_len() + 1] {
                assert_eq!(
                    SkCrypter::with_integrity(c, i, &vec![1; len], &integ_key(i)).unwrap_err(),
                    CryptoError::BadKeyLength
                );
            }
            for len in [0, i.key_len() - 1, i.key_len() + 1] {
                assert_eq!(
                    SkCrypter::with_integrity(c, i, &enc_key(c), &vec![1; len]).unwrap_err(),
                    CryptoError::BadKeyLength
                );
            }
            // Wrong explicit IV length.
            let s = crypter(c, i);
            assert_eq!(
                s.encrypt_with_explicit_iv(&vec![0; c.iv_len() + 1], AAD, b"x"),
                Err(CryptoError::Truncated)
            );
        }
    }
    for c in [Cipher::AesGcm16_128, Cipher::AesGcm16_256] {
        let key = vec![7u8; c.key_len()];
        assert_eq!(
            SkCrypter::with_integrity(c, Integ::HmacSha1_96, &key, &[0; 20]).unwrap_err(),
            CryptoError::AlgorithmMismatch
        );
        let s = SkCrypter::new(c, &key).unwrap();
        assert_eq!(s.integ(), None);
        assert_eq!(
            s.encrypt_with_explicit_iv(&[0; 8], AAD, b"x"),
            Err(CryptoError::AlgorithmMismatch)
        );
    }
}

#[test]
fn sk_cbc_debug_is_redacted() {
    let s = SkCrypter::with_integrity(
        Cipher::AesCbc256,
        Integ::HmacSha2_256_128,
        &[0x42; 32],
        &[0x43; 32],
    )
    .unwrap();
    let dbg = format!("{s:?}");
    assert!(
        dbg.contains("redacted") && dbg.contains("AesCbc256") && dbg.contains("HmacSha2_256_128"),
        "{dbg}"
    );
    assert!(
        !dbg.contains("42") && !dbg.contains("66") && !dbg.contains("67"),
        "{dbg}"
    );
}

// ---------------------------------------------------------------- MODP

#[test]
fn modp_group_ids() {
    for (g, id, len, legacy) in [
        (DhGroup::Modp768, 1, 96, true),
        (DhGroup::Modp1024, 2, 128, true),
        (DhGroup::Modp1536, 5, 192, true),
        (DhGroup::Modp2048, 14, 256, false),
    ] {
        assert_eq!(g.id(), id);
        assert_eq!(DhGroup::from_id(id), Some(g));
        assert_eq!(g.public_len(), len);
        assert_eq!(g.is_legacy(), legacy);
        let p = g.modp_prime().unwrap();
        assert_eq!(p.len(), len);
        // Schroeppel's primes: the top and bottom 64 bits are all ones.
        assert_eq!(p[..8], [0xff; 8]);
        assert_eq!(p[len - 8..], [0xff; 8]);
    }
    for g in [DhGroup::Curve25519, DhGroup::Ecp256] {
        assert!(!g.is_legacy());
        assert_eq!(g.modp_prime(), None);
    }
    for id in [3, 4, 15, 16] {
        assert_eq!(DhGroup::from_id(id), None);
    }
}

fn spaced_hex(s: &str) -> Vec<u8> {
    h(&s.split_whitespace().collect::<String>())
}

/// The primes as the RFCs print them: RFC 3526 §3 (group 14) and RFC 2409
/// §6.2 / RFC 7296 Appendix B.2 (group 2).
#[test]
fn modp_primes_match_published_hex() {
    let rfc3526_2048 = "
      FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
      29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
      EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
      E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
      EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
      C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
      83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
      670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
      E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
      DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
      15728E5A 8AACAA68 FFFFFFFF FFFFFFFF";
    assert_eq!(
        DhGroup::Modp2048.modp_prime().unwrap(),
        spaced_hex(rfc3526_2048)
    );
    let rfc2409_1024 = "
      FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
      29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
      EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
      E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
      EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE65381
      FFFFFFFF FFFFFFFF";
    assert_eq!(
        DhGroup::Modp1024.modp_prime().unwrap(),
        spaced_hex(rfc2409_1024)
    );
}

#[test]
fn modp_parties_agree_and_generation_is_deterministic() {
    for (n, g) in MODP_GROUPS.into_iter().enumerate() {
        let seed = 100 + n as u64;
        let a = DhSecret::generate(g, &mut rng(seed));
        let b = DhSecret::generate(g, &mut rng(seed + 50));
        assert_eq!(a.group(), g);
        let (pa, pb) = (a.public(), b.public());
        assert_eq!(pa.len(), g.public_len());
        assert_ne!(pa, pb);
        let s1 = a.agree(&pb).unwrap();
        let s2 = b.agree(&pa).unwrap();
        assert_eq!(*s1, *s2, "{g:?}");
        assert_eq!(s1.len(), g.public_len());
        // Same seed, same value; the same RNG continues to a new value.
        let mut r = rng(seed);
        let again = DhSecret::generate(g, &mut r);
        assert_eq!(again.public(), pa);
        assert_ne!(DhSecret::generate(g, &mut r).public(), pa);
        // The public value is below p and above 1.
        let p = g.modp_prime().unwrap();
        assert!(pa < p && pa.iter().rev().skip(1).any(|&b| b != 0));
    }
}

/// g^x and g^xy computed with Python's `pow` for fixed exponents.
#[test]
fn modp_known_answers() {
    // Group 1, full values.
    let a = DhSecret::from_secret_bytes(
        DhGroup::Modp768,
        &h("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"),
    )
    .unwrap();
    let b = DhSecret::from_secret_bytes(
        DhGroup::Modp768,
        &h("404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"),
    )
    .unwrap();
    let want_a = h(
        "2002119f47b6ef040d0c814d13a0743cd226f1fe3b7b4263de6a19cd91497fbf\
                    57916ed4dac22c535858e4cdb2a20c2d8ece495cb825fb8e4c7cb2f54e2785fa\
                    7a32e461948d2aaae617901ae10744d2cc3c4ed713c5572ff9eba7000ed9e3f1",
    );
    let want_b = h(
        "fb51ab7fbd382f5de0018dcb2fe019e78c66bb37563e1aa59d3da787f2089802\
                    5ae9b961ab41b786d76436d070b41ecea134e8d2a018098548e1cc919758101e\
                    a1b1a105ad2307f4591261913198f99927b9d6b8275144d11c7911db478f4145",
    );
    let want_s = h(
        "811855734e2ac6b8058b3954e2ce96e241a1c0be87e01ea0eaa3cc2ff8c84163\
                    a5246e481b02e1e8cfcf077dc9c4b9a52140bf6c46b8943dc31c3e84edf89f21\
                    40cef963ee72b38f48ea2dd7049fd3e8b43fd0937aabf61e8088af8c0bcf309a",
    );
    assert_eq!(a.public(), want_a);
    assert_eq!(b.public(), want_b);
    assert_eq!(*a.agree(&want_b).unwrap(), want_s);
    assert_eq!(*b.agree(&want_a).unwrap(), want_s);

    // Group 14 with 320-bit exponents (SHA-256 of the 256-octet values).
    let sha = |v: &[u8]| hex::encode(digest::digest(&digest::SHA256, v));
    let a = DhSecret::from_secret_bytes(
        DhGroup::Modp2048,
        &h("030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d14"),
    )
    .unwrap();
    let b = DhSecret::from_secret_bytes(
        DhGroup::Modp2048,
        &h("010e1b2835424f5c697683909daab7c4d1deebf805121f2c394653606d7a8794a1aebbc8d5e2effc"),
    )
    .unwrap();
    assert_eq!(a.public()[..16], h("32d055a3cb45b1d539ecef32d15e8713")[..]);
    assert_eq!(
        sha(&a.public()),
        "1b0e957b8481db579ed8f6258b1f4fc21f2361a9b4a10f256df9bbc237d3a0cc"
    );
    assert_eq!(
        sha(&b.public()),
        "4d07744a862449e243f62b7a14860e1c685646aa6c28c560b42a7f9c7df062a2"
    );
    let s = a.agree(&b.public()).unwrap();
    assert_eq!(
        sha(&s),
        "233b006694749e5c3378cf096146d2b9f87109fda7e70487d57628207bc73243"
    );
    assert_eq!(*b.agree(&a.public()).unwrap(), *s);
}

/// RFC 7296 §3.4: the public value is left-padded with zeros to the prime's
/// length. Exponents found (Python) whose g^x has a zero top octet.
#[test]
fn modp_public_value_is_left_padded() {
    let x = h("a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a61f");
    let a = DhSecret::from_secret_bytes(DhGroup::Modp1536, &x).unwrap();
    let p = a.public();
    assert_eq!(p.len(), 192);
    assert_eq!(p[..4], h("00d395e9")[..]);
    assert_eq!(p[184..], h("2b028fd8713df933")[..]);
    let x = h("a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a8c2");
    let a = DhSecret::from_secret_bytes(DhGroup::Modp2048, &x).unwrap();
    let p = a.public();
    assert_eq!(p.len(), 256);
    assert_eq!(p[..4], h("00702911")[..]);
    assert_eq!(p[248..], h("a128c72f0e337f09")[..]);
    // A peer value with a leading zero octet is accepted like any other.
    let b = DhSecret::generate(DhGroup::Modp2048, &mut rng(5));
    assert_eq!(*b.agree(&p).unwrap(), *a.agree(&b.public()).unwrap());
}

fn add_small(be: &[u8], k: i64) -> Vec<u8> {
    // Big-endian add/subtract of a small number (no overflow in the tests).
    let mut out = be.to_vec();
    let mut carry = k;
    for b in out.iter_mut().rev() {
        let v = i64::from(*b) + carry;
        *b = v.rem_euclid(256) as u8;
        carry = v.div_euclid(256);
        if carry == 0 {
            break;
        }
    }
    out
}

/// RFC 7296 §5 / NIST SP 800-56A partial validation: 1 < y < p - 1 and the
/// exact length.
#[test]
fn modp_rejects_bad_public_values() {
    for g in MODP_GROUPS {
        let a = DhSecret::generate(g, &mut rng(77));
        let len = g.public_len();
        let p = g.modp_prime().unwrap();
        let mut one = vec![0u8; len];
        one[len - 1] = 1;
        for (name, bad) in [
            ("0", vec![0u8; len]),
            ("1", one),
            ("p-1", add_small(&p, -1)),
            ("p", p.clone()),
            ("p+1", add_small(&p, 1)),
            ("all ones", vec![0xff; len]),
        ] {
            assert_eq!(
                a.agree(&bad),
                Err(CryptoError::BadPublicValue),
                "{g:?} {name}"
            );
        }
        for l in [0, 1, 32, 64, len - 1, len + 1] {
            let mut v = vec![0u8; l];
            if let Some(last) = v.last_mut() {
                *last = 2;
            }
            assert_eq!(
                a.agree(&v),
                Err(CryptoError::BadPublicValue),
                "{g:?} len {l}"
            );
        }
        // The extremes just inside the range work: 2 (the generator) and p - 2.
        let mut two = vec![0u8; len];
        two[len - 1] = 2;
        assert!(a.agree(&two).is_ok());
        assert!(a.agree(&add_small(&p, -2)).is_ok());
    }
    // Another group's value has the wrong length.
    let a = DhSecret::generate(DhGroup::Modp2048, &mut rng(1));
    let b = DhSecret::generate(DhGroup::Modp1024, &mut rng(2));
    assert_eq!(a.agree(&b.public()), Err(CryptoError::BadPublicValue));
}

#[test]
fn modp_from_secret_bytes_checks() {
    for g in MODP_GROUPS {
        for bad in [vec![], vec![0], vec![1], vec![0, 0, 1], vec![7; 65]] {
            assert_eq!(
                DhSecret::from_secret_bytes(g, &bad).unwrap_err(),
                CryptoError::BadPrivateValue,
                "{g:?} {bad:?}"
            );
        }
        let s = DhSecret::from_secret_bytes(g, &[2]).unwrap();
        // x = 2: g^x = 4.
        let mut four = vec![0u8; g.public_len()];
        four[g.public_len() - 1] = 4;
        assert_eq!(s.public(), four);
        assert!(DhSecret::from_secret_bytes(g, &[0xff; 64]).is_ok());
    }
}

#[test]
fn modp_debug_is_redacted() {
    let s = DhSecret::from_secret_bytes(DhGroup::Modp1024, &[0x42; 32]).unwrap();
    let dbg = format!("{s:?}");
    assert!(
        dbg.contains("redacted") && dbg.contains("Modp1024"),
        "{dbg}"
    );
    assert!(!dbg.contains("42") && !dbg.contains("66"), "{dbg}");
}

// ---------------------------------------------------------------- keys

/// RFC 7296 §2.14 with a CBC suite: SK_ai / SK_ar get the integrity key
/// length, SK_ei / SK_er the bare encryption key; the order is SK_d, SK_ai,
/// SK_ar, SK_ei, SK_er, SK_pi, SK_pr.
#[test]
fn ike_keys_with_cbc_suite() {
    let (ni, nr, g_ir, spi_i, spi_r) = ([1u8; 32], [2u8; 32], [3u8; 256], [4u8; 8], [5u8; 8]);
    for prf in [
        Prf::HmacMd5,
        Prf::HmacSha1,
        Prf::HmacSha256,
        Prf::HmacSha512,
    ] {
        for c in CBC_CIPHERS {
            for i in ALL_INTEGS {
                let k = IkeKeys::derive(prf, c, i.key_len(), &ni, &nr, &g_ir, &spi_i, &spi_r);
                assert_eq!(k.sk_d.len(), prf.key_len());
                assert_eq!(k.sk_ai.len(), i.key_len(), "{prf:?} {c:?} {i:?}");
                assert_eq!(k.sk_ar.len(), i.key_len());
                assert_eq!(k.sk_ei.len(), c.key_len());
                assert_eq!(k.sk_er.len(), c.key_len());
                assert_eq!(k.sk_pi.len(), prf.key_len());
                assert_eq!(k.sk_pr.len(), prf.key_len());
                let skeyseed = prf.prf(&[ni, nr].concat(), &[&g_ir]);
                let total = 3 * prf.key_len() + 2 * i.key_len() + 2 * c.key_len();
                let km = prf_plus_by_definition(
                    prf,
                    &skeyseed,
                    &[&ni[..], &nr, &spi_i, &spi_r].concat(),
                    total,
                );
                let cat = [
                    k.sk_d.as_slice(),
                    &k.sk_ai,
                    &k.sk_ar,
                    &k.sk_ei,
                    &k.sk_er,
                    &k.sk_pi,
                    &k.sk_pr,
                ]
                .concat();
                assert_eq!(cat, km);
            }
        }
    }
    // The Alibaba console default, plus group 14, end to end: both sides
    // derive the keys and protect a message each way.
    let prf = Prf::HmacSha1;
    let (c, i) = (Cipher::AesCbc128, Integ::HmacMd5_96);
    let a = DhSecret::generate(DhGroup::Modp2048, &mut rng(1));
    let b = DhSecret::generate(DhGroup::Modp2048, &mut rng(2));
    let gi = a.agree(&b.public()).unwrap();
    let gr = b.agree(&a.public()).unwrap();
    let ki = IkeKeys::derive(prf, c, i.key_len(), &ni, &nr, &gi, &spi_i, &spi_r);
    let kr = IkeKeys::derive(prf, c, i.key_len(), &ni, &nr, &gr, &spi_i, &spi_r);
    let i_out = SkCrypter::with_integrity(c, i, &ki.sk_ei, &ki.sk_ai).unwrap();
    let r_in = SkCrypter::with_integrity(c, i, &kr.sk_ei, &kr.sk_ai).unwrap();
    let r_out = SkCrypter::with_integrity(c, i, &kr.sk_er, &kr.sk_ar).unwrap();
    let i_in = SkCrypter::with_integrity(c, i, &ki.sk_er, &ki.sk_ar).unwrap();
    let req = i_out.encrypt(0, AAD, b"IDi AUTH SAi2 TSi TSr");
    assert_eq!(r_in.decrypt(AAD, &req).unwrap(), b"IDi AUTH SAi2 TSi TSr");
    let resp = r_out.encrypt(0, AAD, b"IDr AUTH SAr2 TSi TSr");
    assert_eq!(i_in.decrypt(AAD, &resp).unwrap(), b"IDr AUTH SAr2 TSi TSr");
    // The directions use different keys.
    assert_eq!(
        i_in.decrypt(AAD, &req),
        Err(CryptoError::AuthenticationFailed)
    );
    // Rekey with a CBC suite keeps the same lengths.
    let rk = IkeKeys::derive_rekey(
        prf,
        &ki.sk_d,
        Prf::HmacSha256,
        Cipher::AesCbc256,
        32,
        &gi,
        &ni,
        &nr,
        &spi_i,
        &spi_r,
    );
    assert_eq!(rk.sk_ai.len(), 32);
    assert_eq!(rk.sk_ei.len(), 32);
    assert_eq!(rk.sk_d.len(), 32);
}

//! Whole SAs with CBC + HMAC: round trips for every combination, layout and
//! room, authentication before decryption, padding, configuration, names and
//! IKEv2 transform IDs.

use super::{inner_packet, open, pair, seal, BACK, FRONT, SPI};
use crate::cbc::CbcHmacKey;
use crate::{
    Algorithm, CbcCipher, DecapError, EncapError, InboundSa, Integrity, Lifetime, OutboundSa,
    SaCounters, SaError, SaKey, DEFAULT_REPLAY_WINDOW,
};

const AES128_SHA1: Algorithm = Algorithm::Cbc {
    cipher: CbcCipher::Aes128,
    integrity: Integrity::HmacSha1_96,
};
const AES256_SHA256: Algorithm = Algorithm::Cbc {
    cipher: CbcCipher::Aes256,
    integrity: Integrity::HmacSha2_256_128,
};

fn block(alg: Algorithm) -> usize {
    alg.iv_len()
}

/// Round trips of every inner size in `sizes`, IPv4 and IPv6, ESN on and
/// off. Checks sizes against `overhead`, block alignment, minimal padding,
/// counters. The SA never parses the inner packet, so to keep unoptimised
/// test builds quick the version alternates with the size's parity (both
/// at every 7th size).
fn round_trips(alg: Algorithm, sizes: impl Iterator<Item = usize> + Clone) {
    for esn in [false, true] {
        let (mut out, mut inb) = pair(alg, esn, DEFAULT_REPLAY_WINDOW);
        let mut bytes = 0u64;
        let mut packets = 0u64;
        for len in sizes.clone() {
            let versions: &[(u8, u8)] = match len % 7 {
                0 => &[(4, 4), (6, 41)],
                _ if len % 2 == 0 => &[(4, 4)],
                _ => &[(6, 41)],
            };
            for &(version, nh) in versions {
                let inner = inner_packet(version, len);
                let packet = seal(&mut out, &inner, nh);
                assert_eq!(packet.len(), len + out.overhead(len), "{alg} len={len}");
                let body = packet.len() - 8 - alg.iv_len() - alg.icv_len();
                assert_eq!(body % block(alg), 0, "{alg} len={len}: whole blocks");
                assert!(
                    body - len - 2 < block(alg),
                    "{alg} len={len}: minimal padding"
                );
                let (got_nh, got) = open(&mut inb, &packet).unwrap();
                assert_eq!(got_nh, nh);
                assert_eq!(got, inner, "{alg} esn={esn} len={len}");
                bytes += len as u64;
                packets += 1;
            }
        }
        assert_eq!(out.counters().packets, packets);
        assert_eq!(out.counters().bytes, bytes);
        assert_eq!(*inb.counters(), *out.counters(), "{alg} esn={esn}");
    }
}

fn suites(ciphers: &[CbcCipher]) -> impl Iterator<Item = Algorithm> + '_ {
    Algorithm::CBC_HMAC
        .into_iter()
        .filter(move |a| matches!(a, Algorithm::Cbc { cipher, .. } if ciphers.contains(cipher)))
}

/// Every AES suite, every inner size 0..=1500.
#[test]
fn aes_suites_all_sizes_both_versions_esn_on_off() {
    for alg in suites(&[CbcCipher::Aes128, CbcCipher::Aes192, CbcCipher::Aes256]) {
        round_trips(alg, 0..=1500);
    }
}

/// DES and 3DES (slow in unoptimised test builds): every size 0..=1500 with
/// HMAC-SHA1-96; with the other integrity algorithms, which the cipher does
/// not care about, every residue modulo the block at small, middle and
/// full-MTU sizes.
#[test]
fn des_suites_all_sizes_both_versions_esn_on_off() {
    for alg in suites(&[CbcCipher::TripleDes, CbcCipher::Des]) {
        if matches!(
            alg,
            Algorithm::Cbc {
                integrity: Integrity::HmacSha1_96,
                ..
            }
        ) {
            round_trips(alg, 0..=1500);
        } else {
            round_trips(alg, (0..=64).chain(700..=716).chain(1436..=1500));
        }
    }
}

#[test]
fn layout_headroom_tailroom_overhead() {
    for alg in Algorithm::CBC_HMAC {
        let (out, _) = pair(alg, false, 64);
        let b = block(alg);
        assert_eq!(out.headroom(), 8 + b, "{alg}");
        assert_eq!(out.tailroom(), b - 1 + 2 + alg.icv_len(), "{alg}");
        assert!(out.headroom() <= 24, "the daemon's MIN_HEADROOM");
        assert!(out.tailroom() <= 255 + 2 + 32, "the daemon's TAILROOM");
        for len in 0..64 {
            let pad = (b - (len + 2) % b) % b;
            assert_eq!(
                out.overhead(len),
                8 + b + pad + 2 + alg.icv_len(),
                "{alg} {len}"
            );
            assert!(out.overhead(len) - out.headroom() <= out.tailroom());
        }
    }
    let (out, _) = pair(AES128_SHA1, false, 64);
    // 24 header+IV, 12 ICV, trailer 2, padding to 16.
    assert_eq!(out.overhead(0), 24 + 14 + 2 + 12);
    assert_eq!(out.overhead(14), 24 + 2 + 12);
    assert_eq!(out.overhead(1400), 24 + 6 + 2 + 12);
}

#[test]
fn encapsulate_in_place_layout() {
    let (mut out, mut inb) = pair(AES256_SHA256, false, 64);
    let inner = inner_packet(4, 100);
    let mut buf = vec![0u8; FRONT + 100 + BACK];
    buf[FRONT..FRONT + 100].copy_from_slice(&inner);
    let r = out.encapsulate(&mut buf, FRONT..FRONT + 100, 4).unwrap();
    assert_eq!(r.start, FRONT - 24);
    // 100 + 2 = 102, padded to 112, + 16 ICV.
    assert_eq!(r.end, FRONT + 112 + 16);
    assert_eq!(crate::peek_spi(&buf[r.clone()]), Some(SPI));
    assert_eq!(buf[r.start + 4..r.start + 8], 1u32.to_be_bytes());
    assert!(buf[..r.start].iter().all(|&b| b == 0));
    assert!(buf[r.end..].iter().all(|&b| b == 0));
    let d = inb.decapsulate(&mut buf[r.clone()]).unwrap();
    assert_eq!(d.inner, 24..124);
    assert_eq!(buf[r.start + 24..r.start + 124], inner[..]);
}

#[test]
fn exact_room_is_enough_and_one_less_is_not() {
    for alg in [AES128_SHA1, AES256_SHA256, Algorithm::CBC_HMAC[24]] {
        for len in [0usize, 1, 13, 14, 15, 16, 30, 64] {
            let (mut out, mut inb) = pair(alg, true, 64);
            let head = out.headroom();
            let tail = out.overhead(len) - head;
            let mut buf = vec![0u8; head + len + tail];
            assert_eq!(
                out.encapsulate(&mut buf[..head + len + tail - 1], head..head + len, 4),
                Err(EncapError::NoTailroom)
            );
            assert_eq!(
                out.encapsulate(&mut buf[1..], head - 1..head - 1 + len, 4),
                Err(EncapError::NoHeadroom)
            );
            assert_eq!(out.next_sequence(), 1, "errors consume no sequence number");
            assert_eq!(*out.counters(), SaCounters::default());
            let r = out.encapsulate(&mut buf, head..head + len, 4).unwrap();
            assert_eq!(r, 0..head + len + tail);
            assert!(inb.decapsulate(&mut buf).is_ok(), "{alg} {len}");
        }
    }
}

#[test]
fn ivs_differ_per_packet() {
    let (mut out, _) = pair(AES128_SHA1, false, 64);
    let a = seal(&mut out, &[0x45; 20], 4);
    let b = seal(&mut out, &[0x45; 20], 4);
    assert_ne!(a[8..24], b[8..24]);
    assert_ne!(a[24..], b[24..], "same plaintext, different ciphertext");
}

#[test]
fn wrong_integrity_key_fails_authentication() {
    for alg in Algorithm::CBC_HMAC {
        let (mut out, _) = pair(alg, false, 64);
        let p = seal(&mut out, &inner_packet(4, 60), 4);
        let mut bytes = super::key_bytes(alg, 7);
        // Flip one bit of the integrity key (the last byte of the material).
        *bytes.last_mut().unwrap() ^= 1;
        let mut cfg = super::config(alg, false, 64, Lifetime::default());
        cfg.key = SaKey::new(bytes);
        let mut other = InboundSa::new(cfg).unwrap();
        assert_eq!(
            open(&mut other, &p),
            Err(DecapError::AuthenticationFailed),
            "{alg}"
        );
        assert_eq!(other.counters().auth_failures, 1);
        assert_eq!(other.counters().packets, 0);
        assert_eq!(other.replay_window().top(), 0);
        assert!(encryption_key_len(alg) + integrity_key_len(alg) == alg.key_len());
    }
}

fn integrity_key_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Cbc { integrity, .. } => integrity.key_len(),
        _ => 0,
    }
}

fn encryption_key_len(alg: Algorithm) -> usize {
    alg.key_len() - integrity_key_len(alg)
}

/// Encrypt-then-MAC: with the right integrity key but a wrong encryption
/// key the ICV verifies, so the damage shows only after decryption (as
/// garbage or bad padding) and never as an authentication failure.
#[test]
fn wrong_encryption_key_is_not_an_authentication_failure() {
    let alg = AES256_SHA256;
    let (mut out, _) = pair(alg, false, 64);
    let p = seal(&mut out, &inner_packet(4, 60), 4);
    let mut bytes = super::key_bytes(alg, 7);
    bytes[0] ^= 1;
    let mut cfg = super::config(alg, false, 64, Lifetime::default());
    cfg.key = SaKey::new(bytes);
    let mut other = InboundSa::new(cfg).unwrap();
    match open(&mut other, &p) {
        Ok((_, inner)) => assert_ne!(inner, inner_packet(4, 60)),
        Err(e) => assert_eq!(e, DecapError::BadPadding),
    }
    assert_eq!(other.counters().auth_failures, 0);
}

#[test]
fn misaligned_ciphertext_is_malformed_before_any_crypto() {
    for alg in [AES128_SHA1, Algorithm::CBC_HMAC[24]] {
        let (mut out, mut inb) = pair(alg, false, 64);
        let p = seal(&mut out, &inner_packet(4, 40), 4);
        for cut in 1..block(alg) {
            // Remove `cut` bytes of ciphertext (before the ICV).
            let icv_at = p.len() - alg.icv_len();
            let mut q = p[..icv_at - cut].to_vec();
            q.extend_from_slice(&p[icv_at..]);
            assert_eq!(open(&mut inb, &q), Err(DecapError::Malformed), "{alg}");
        }
        // No ciphertext at all.
        let mut q = p[..8 + alg.iv_len()].to_vec();
        q.extend_from_slice(&p[p.len() - alg.icv_len()..]);
        assert_eq!(open(&mut inb, &q), Err(DecapError::Malformed));
        assert_eq!(inb.counters().auth_failures, 0);
        assert_eq!(inb.counters().malformed, block(alg) as u64);
        assert!(open(&mut inb, &p).is_ok());
    }
}

/// A peer that pads wrongly but authenticates correctly: BadPadding, the
/// window does not move. Built with the crypto core, as a buggy peer would.
#[test]
fn bad_padding_after_authentication_is_rejected() {
    let alg = AES128_SHA1;
    let (_, mut inb) = pair(alg, false, 64);
    let key = CbcHmacKey::new(
        CbcCipher::Aes128,
        Integrity::HmacSha1_96,
        &super::key_bytes(alg, 7),
    )
    .unwrap();
    // Plaintexts of 16 bytes whose trailers are wrong.
    let mut bad_pad = [0x45u8; 16];
    bad_pad[11..].copy_from_slice(&[1, 3, 2, 3, 4]);
    let mut too_long = [0x45u8; 16];
    too_long[14] = 200;
    let mut zero_pad = [0x45u8; 16];
    zero_pad[12..].copy_from_slice(&[0, 0, 2, 4]);
    for body in [bad_pad, too_long, zero_pad] {
        let seq = 1u64;
        let mut p = Vec::new();
        p.extend_from_slice(&SPI.to_be_bytes());
        p.extend_from_slice(&(seq as u32).to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&body);
        p.extend_from_slice(&[0; 12]);
        key.seal(&mut p, seq, false).unwrap();
        let before = *inb.counters();
        assert_eq!(open(&mut inb, &p), Err(DecapError::BadPadding));
        assert_eq!(inb.counters().malformed, before.malformed + 1);
        assert_eq!(inb.counters().auth_failures, 0);
        assert_eq!(inb.replay_window().top(), 0);
    }
    // Padding longer than a block (allowed by RFC 4303 §2.4, e.g. for
    // traffic-flow confidentiality) is accepted.
    let mut body = [0u8; 32];
    body[0] = 0x45;
    for (i, b) in body[2..30].iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    body[30] = 28;
    body[31] = 4;
    let mut p = Vec::new();
    p.extend_from_slice(&SPI.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&[0; 16]);
    p.extend_from_slice(&body);
    p.extend_from_slice(&[0; 12]);
    key.seal(&mut p, 1, false).unwrap();
    assert_eq!(open(&mut inb, &p), Ok((4, vec![0x45, 0])));
}

#[test]
fn esn_high_bits_are_authenticated() {
    // Sender at 2^32 + 5, receiver that believes the high half is 0: the
    // ICV input differs, so authentication fails (and nothing moves).
    let (mut out, mut inb) = pair(AES128_SHA1, true, 64);
    out.set_next_sequence_for_test((1 << 32) + 5);
    let p = seal(&mut out, &[0x45; 20], 4);
    assert_eq!(open(&mut inb, &p), Err(DecapError::AuthenticationFailed));
    inb.set_replay_top_for_test(1 << 32);
    assert_eq!(open(&mut inb, &p), Ok((4, vec![0x45; 20])));
    assert_eq!(inb.replay_window().top(), (1 << 32) + 5);
}

#[test]
fn key_length_errors_describe_the_layout() {
    let mut cfg = super::config(AES128_SHA1, false, 64, Lifetime::default());
    cfg.key = SaKey::new(vec![0; 36 - 1]);
    let err = InboundSa::new(cfg.clone()).unwrap_err();
    assert_eq!(
        err,
        SaError::KeyLength {
            algorithm: AES128_SHA1,
            expected: 36,
            got: 35
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("aes128-sha1") && msg.contains("encryption key + integrity key"),
        "{msg}"
    );
    assert!(OutboundSa::new(cfg).is_err());
    // A GCM-sized key for a CBC suite, and the other way round.
    let mut cfg = super::config(AES256_SHA256, false, 64, Lifetime::default());
    cfg.key = super::key(Algorithm::AesGcm16_256, 1);
    assert!(matches!(
        OutboundSa::new(cfg),
        Err(SaError::KeyLength {
            expected: 64,
            got: 36,
            ..
        })
    ));
    let gcm = super::config(Algorithm::AesGcm16_256, false, 64, Lifetime::default());
    let msg = InboundSa::new(crate::SaConfig {
        key: SaKey::new(vec![0; 3]),
        ..gcm
    })
    .unwrap_err()
    .to_string();
    assert!(msg.contains("key + 4-byte salt"), "{msg}");
}

#[test]
fn debug_never_shows_key_bytes() {
    for alg in [AES128_SHA1, AES256_SHA256, Algorithm::CBC_HMAC[24]] {
        let cfg = crate::SaConfig {
            spi: 0x1000,
            algorithm: alg,
            key: SaKey::new(vec![0xa7; alg.key_len()]),
            esn: true,
            replay_window: 64,
            lifetime: Lifetime::default(),
        };
        for s in [
            format!("{:?}", OutboundSa::new(cfg.clone()).unwrap()),
            format!("{:#?}", InboundSa::new(cfg.clone()).unwrap()),
        ] {
            assert!(
                !s.contains("167") && !s.to_lowercase().contains("a7"),
                "{s}"
            );
            assert!(s.contains("redacted"), "{s}");
        }
    }
}

#[test]
fn algorithm_lengths_and_flags() {
    let expect = [
        // (name, key_len, iv_len, icv_len, legacy)
        ("aes128-sha1", 16 + 20, 16, 12, false),
        ("aes128-sha256", 16 + 32, 16, 16, false),
        ("aes192-sha384", 24 + 48, 16, 24, false),
        ("aes256-sha512", 32 + 64, 16, 32, false),
        ("aes256-sha256", 32 + 32, 16, 16, false),
        ("aes128-md5", 16 + 16, 16, 12, true),
        ("3des-sha1", 24 + 20, 8, 12, true),
        ("des-md5", 8 + 16, 8, 12, true),
        ("des-sha512", 8 + 64, 8, 32, true),
    ];
    for (name, key_len, iv_len, icv_len, legacy) in expect {
        let a: Algorithm = name.parse().unwrap();
        assert_eq!(a.to_string(), name);
        assert_eq!(a.key_len(), key_len, "{name}");
        assert_eq!(a.iv_len(), iv_len, "{name}");
        assert_eq!(a.icv_len(), icv_len, "{name}");
        assert_eq!(a.is_legacy(), legacy, "{name}");
        assert!(!a.is_aead(), "{name}");
    }
    for a in Algorithm::ALL {
        assert!(a.is_aead() && !a.is_legacy());
    }
    let mut seen = std::collections::HashSet::new();
    for a in Algorithm::CBC_HMAC {
        assert!(seen.insert(a), "{a} twice");
        assert!(matches!(a, Algorithm::Cbc { .. }));
    }
    assert_eq!(seen.len(), 25);
}

#[test]
fn names_round_trip_and_aliases() {
    for a in Algorithm::ALL.into_iter().chain(Algorithm::CBC_HMAC) {
        assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
        assert_eq!(a.to_string().to_uppercase().parse::<Algorithm>(), Ok(a));
    }
    for (alias, name) in [
        ("aes-sha1", "aes128-sha1"),
        ("aes128-sha", "aes128-sha1"),
        ("aes256-sha2_256", "aes256-sha256"),
        ("aes192-sha2_384", "aes192-sha384"),
        (" AES256-SHA2_512 ", "aes256-sha512"),
        ("3DES-MD5", "3des-md5"),
    ] {
        assert_eq!(alias.parse::<Algorithm>().unwrap().to_string(), name);
    }
    for bad in [
        "aes128",
        "aes128-",
        "-sha1",
        "aes128-sha1-modp2048",
        "aes128-sha1 ",
        "aes512-sha1",
        "blowfish-sha1",
        "aes128-sha224",
        "aes128gcm16-sha1",
        "",
    ] {
        if bad == "aes128-sha1 " {
            // Surrounding whitespace is trimmed, as for the GCM names.
            assert!(bad.parse::<Algorithm>().is_ok());
            continue;
        }
        let err = bad.parse::<Algorithm>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("aes256-sha256") && msg.contains("md5"),
            "{msg}"
        );
    }
}

#[test]
fn ikev2_transforms_round_trip() {
    for a in Algorithm::ALL.into_iter().chain(Algorithm::CBC_HMAC) {
        let (encr, bits, integ) = a.transforms();
        assert_eq!(
            Algorithm::from_transforms(encr, bits, integ),
            Some(a),
            "{a}"
        );
        assert_eq!(encr, a.ikev2_transform_id());
        assert_eq!(bits.unwrap_or(0), a.ikev2_key_bits());
        assert_eq!(integ.is_none(), a.is_aead());
    }
    assert_eq!(AES128_SHA1.transforms(), (12, Some(128), Some(2)));
    assert_eq!(AES256_SHA256.transforms(), (12, Some(256), Some(12)));
    assert_eq!(
        "aes192-sha384".parse::<Algorithm>().unwrap().transforms(),
        (12, Some(192), Some(13))
    );
    assert_eq!(
        "aes256-sha512".parse::<Algorithm>().unwrap().transforms(),
        (12, Some(256), Some(14))
    );
    assert_eq!(
        "3des-md5".parse::<Algorithm>().unwrap().transforms(),
        (3, None, Some(1))
    );
    assert_eq!(
        "des-sha1".parse::<Algorithm>().unwrap().transforms(),
        (2, None, Some(2))
    );
    assert_eq!(Algorithm::AesGcm16_256.transforms(), (20, Some(256), None));
    // AUTH_NONE is allowed with GCM.
    assert_eq!(
        Algorithm::from_transforms(20, Some(128), Some(0)),
        Some(Algorithm::AesGcm16_128)
    );
    for (encr, bits, integ) in [
        (20, Some(192), None),    // AES-GCM-192: not offered
        (20, Some(128), Some(2)), // AEAD with an integrity transform
        (20, None, None),         // AES needs a key length
        (12, None, Some(2)),      // likewise
        (12, Some(128), None),    // CBC needs integrity
        (12, Some(128), Some(0)), // ... and not NONE
        (12, Some(64), Some(2)),  // no such AES
        (3, Some(192), Some(2)),  // 3DES takes no Key Length attribute
        (2, None, Some(5)),       // AUTH_DES_MAC
        (12, Some(128), Some(3)), // AUTH_KPDK_MD5
        (12, Some(128), Some(5)), // AUTH_AES_XCBC_96
        (13, Some(128), Some(2)), // ENCR_AES_CTR
        (0, None, None),
    ] {
        assert_eq!(
            Algorithm::from_transforms(encr, bits, integ),
            None,
            "{encr} {bits:?} {integ:?}"
        );
    }
}

#[test]
fn algorithm_is_copy_and_usable_as_a_key() {
    fn assert_copy<T: Copy + std::hash::Hash + Eq>() {}
    assert_copy::<Algorithm>();
    assert_copy::<CbcCipher>();
    assert_copy::<Integrity>();
}

//! Every modified byte is rejected and leaves the SA untouched.

use super::{inner_packet, open, pair, seal};
use crate::{Algorithm, DecapError, SaCounters};

fn check_every_byte(alg: Algorithm, esn: bool) {
    let (mut out, mut inb) = pair(alg, esn, 64);
    // Warm up so the window's top is not 0.
    for _ in 0..3 {
        let p = seal(&mut out, &inner_packet(4, 10), 4);
        open(&mut inb, &p).unwrap();
    }
    let original = seal(&mut out, &inner_packet(4, 77), 4);
    let top = inb.replay_window().top();
    let good = *inb.counters();

    let mut failures = 0u64;
    for i in 0..original.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut p = original.clone();
            p[i] ^= flip;
            let r = open(&mut inb, &p);
            assert!(r.is_err(), "{alg} esn={esn}: byte {i} ^ {flip:#x} accepted");
            failures += 1;
            // Nothing but a drop counter moved.
            let c = inb.counters();
            assert_eq!((c.packets, c.bytes), (good.packets, good.bytes));
            assert_eq!(inb.replay_window().top(), top);
            if i >= 8 {
                assert_eq!(r, Err(DecapError::AuthenticationFailed), "byte {i}");
            }
        }
    }
    // Truncations and extensions too.
    for len in 0..original.len() {
        assert!(
            open(&mut inb, &original[..len]).is_err(),
            "truncated to {len}"
        );
        failures += 1;
    }
    let mut longer = original.clone();
    longer.push(0);
    assert!(open(&mut inb, &longer).is_err());
    failures += 1;

    let c = *inb.counters();
    assert_eq!(
        c.auth_failures + c.malformed + c.replay_drops,
        failures,
        "every failure is counted exactly once"
    );
    assert_eq!(
        SaCounters {
            auth_failures: 0,
            malformed: 0,
            replay_drops: 0,
            ..c
        },
        good
    );

    // The untouched original still decapsulates.
    assert_eq!(open(&mut inb, &original), Ok((4, inner_packet(4, 77))));
}

#[test]
fn every_byte_aes128() {
    check_every_byte(Algorithm::AesGcm16_128, false);
}

#[test]
fn every_byte_aes256_esn() {
    check_every_byte(Algorithm::AesGcm16_256, true);
}

/// Every CBC + HMAC combination, with ESN on for every other one: each ICV
/// length and both block sizes see every byte flipped.
#[test]
fn every_byte_every_cbc_suite() {
    for (i, alg) in Algorithm::CBC_HMAC.into_iter().enumerate() {
        check_every_byte(alg, i % 2 == 1);
    }
}

#[test]
fn every_byte_aes128_sha1_both_esn() {
    let alg = Algorithm::Cbc {
        cipher: crate::CbcCipher::Aes128,
        integrity: crate::Integrity::HmacSha1_96,
    };
    check_every_byte(alg, false);
    check_every_byte(alg, true);
}

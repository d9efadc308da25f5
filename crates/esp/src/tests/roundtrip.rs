//! Encapsulate then decapsulate: every inner size up to 1500, IPv4 and IPv6,
//! both key sizes, with and without ESN.

use super::{inner_packet, pair, seal, BACK, FRONT};
use crate::{Algorithm, EncapError, DEFAULT_REPLAY_WINDOW};

#[test]
fn all_sizes_both_versions_both_keys_esn_on_off() {
    for alg in Algorithm::ALL {
        for esn in [false, true] {
            let (mut out, mut inb) = pair(alg, esn, DEFAULT_REPLAY_WINDOW);
            let mut bytes = 0u64;
            let mut packets = 0u64;
            for len in 0..=1500 {
                for (version, nh) in [(4u8, 4u8), (6, 41)] {
                    let inner = inner_packet(version, len);
                    let seq = out.next_sequence();
                    let packet = seal(&mut out, &inner, nh);
                    assert_eq!(packet.len(), len + out.overhead(len));
                    assert_eq!(packet.len() % 4, 0, "RFC 4303 §2.4 alignment");
                    assert_eq!(out.next_sequence(), seq + 1);
                    let (got_nh, got) = super::open(&mut inb, &packet).unwrap();
                    assert_eq!(got_nh, nh);
                    assert_eq!(got, inner, "{alg} esn={esn} len={len}");
                    bytes += len as u64;
                    packets += 1;
                }
            }
            assert_eq!(out.counters().packets, packets);
            assert_eq!(out.counters().bytes, bytes);
            assert_eq!(inb.counters().packets, packets);
            assert_eq!(inb.counters().bytes, bytes);
            assert_eq!(inb.counters().auth_failures, 0);
        }
    }
}

#[test]
fn dummy_packets_are_returned_with_next_header_59() {
    let (mut out, mut inb) = pair(Algorithm::AesGcm16_256, false, 64);
    let packet = seal(&mut out, &[], 59);
    assert_eq!(super::open(&mut inb, &packet), Ok((59, vec![])));
}

#[test]
fn encapsulate_in_place_layout() {
    let (mut out, mut inb) = pair(Algorithm::AesGcm16_128, false, 64);
    assert_eq!(out.headroom(), 16);
    assert_eq!(out.tailroom(), 3 + 2 + 16);
    let inner = inner_packet(4, 100);
    let mut buf = vec![0u8; FRONT + 100 + BACK];
    buf[FRONT..FRONT + 100].copy_from_slice(&inner);
    let r = out.encapsulate(&mut buf, FRONT..FRONT + 100, 4).unwrap();
    assert_eq!(r.start, FRONT - 16);
    assert_eq!(r.end, FRONT + 100 + 2 + 2 + 16);
    assert_eq!(crate::peek_spi(&buf[r.clone()]), Some(out.spi()));
    // Bytes outside the returned range are untouched.
    assert!(buf[..r.start].iter().all(|&b| b == 0));
    assert!(buf[r.end..].iter().all(|&b| b == 0));
    let d = inb.decapsulate(&mut buf[r.clone()]).unwrap();
    assert_eq!(d.inner, 16..116);
    assert_eq!(buf[r.start + 16..r.start + 116], inner[..]);
}

#[test]
fn exact_room_is_enough_and_one_less_is_not() {
    for len in [0usize, 1, 2, 3, 4, 5, 61, 62, 63, 64] {
        let (mut out, mut inb) = pair(Algorithm::AesGcm16_256, true, 64);
        let head = out.headroom();
        let tail = out.overhead(len) - head;
        assert!(tail <= out.tailroom());

        let mut buf = vec![0u8; head + len + tail];
        let seq = out.next_sequence();
        assert_eq!(
            out.encapsulate(&mut buf[..head + len + tail - 1], head..head + len, 4),
            Err(EncapError::NoTailroom)
        );
        assert_eq!(
            out.encapsulate(&mut buf[1..], head - 1..head - 1 + len, 4),
            Err(EncapError::NoHeadroom)
        );
        assert_eq!(
            out.next_sequence(),
            seq,
            "errors consume no sequence number"
        );
        assert_eq!(*out.counters(), crate::SaCounters::default());

        let r = out.encapsulate(&mut buf, head..head + len, 4).unwrap();
        assert_eq!(r, 0..head + len + tail);
        assert!(inb.decapsulate(&mut buf).is_ok());
    }
}

#[test]
fn invalid_ranges_are_refused() {
    let (mut out, _) = pair(Algorithm::AesGcm16_128, false, 64);
    let mut buf = vec![0u8; 100];
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 40..30;
    assert_eq!(
        out.encapsulate(&mut buf, backwards, 4),
        Err(EncapError::InvalidRange)
    );
    assert_eq!(
        out.encapsulate(&mut buf, 20..101, 4),
        Err(EncapError::InvalidRange)
    );
    assert_eq!(
        out.encapsulate(&mut buf, 0..10, 4),
        Err(EncapError::NoHeadroom)
    );
    assert_eq!(out.next_sequence(), 1);
}

#[test]
fn overhead_is_exact() {
    let (out, _) = pair(Algorithm::AesGcm16_128, false, 64);
    // 16 header+IV, 16 ICV, 2 trailer, padding to 4.
    assert_eq!(out.overhead(0), 16 + 2 + 2 + 16);
    assert_eq!(out.overhead(1), 16 + 1 + 2 + 16);
    assert_eq!(out.overhead(2), 16 + 2 + 16);
    assert_eq!(out.overhead(3), 16 + 3 + 2 + 16);
    assert_eq!(out.overhead(1400), 16 + 2 + 2 + 16);
}

#[test]
fn peek_spi_needs_a_minimal_packet() {
    let (mut out, _) = pair(Algorithm::AesGcm16_128, false, 64);
    // The smallest packet we send has 2 bytes of padding (alignment); the
    // smallest we look at has none.
    let p = seal(&mut out, &[], 59);
    assert_eq!(p.len(), crate::wire::MIN_PACKET_LEN + 2);
    let p = &p[..crate::wire::MIN_PACKET_LEN];
    assert_eq!(crate::peek_spi(p), Some(super::SPI));
    assert_eq!(crate::peek_spi(&p[..p.len() - 1]), None);
    assert_eq!(crate::peek_spi(&[]), None);
}

#[test]
fn wrong_key_fails_authentication() {
    let (mut out, _) = pair(Algorithm::AesGcm16_128, false, 64);
    let mut cfg = super::config(Algorithm::AesGcm16_128, false, 64, Default::default());
    cfg.key = super::key(Algorithm::AesGcm16_128, 8);
    let mut other = crate::InboundSa::new(cfg).unwrap();
    let p = seal(&mut out, &inner_packet(4, 60), 4);
    assert_eq!(
        super::open(&mut other, &p),
        Err(crate::DecapError::AuthenticationFailed)
    );
    assert_eq!(other.counters().auth_failures, 1);
    assert_eq!(other.counters().packets, 0);
    assert_eq!(
        other.replay_window().top(),
        0,
        "a forgery must not move the window"
    );

    // A different salt alone (same AES key) must fail too.
    let mut cfg = super::config(Algorithm::AesGcm16_128, false, 64, Default::default());
    let mut bytes = super::key_bytes(Algorithm::AesGcm16_128, 7);
    *bytes.last_mut().unwrap() ^= 1;
    cfg.key = crate::SaKey::new(bytes);
    let mut salted = crate::InboundSa::new(cfg).unwrap();
    assert_eq!(
        super::open(&mut salted, &p),
        Err(crate::DecapError::AuthenticationFailed)
    );
}

#[test]
fn wrong_spi_is_counted_as_malformed() {
    let (mut out, mut inb) = pair(Algorithm::AesGcm16_128, false, 64);
    let mut p = seal(&mut out, &inner_packet(4, 20), 4);
    p[3] ^= 0xff;
    assert_eq!(super::open(&mut inb, &p), Err(crate::DecapError::WrongSpi));
    assert_eq!(inb.counters().malformed, 1);
}

#[test]
fn bad_padding_after_authentication_is_rejected() {
    // Build a packet whose padding is wrong but whose ICV is right, with the
    // crypto core, as a buggy peer would.
    let alg = Algorithm::AesGcm16_128;
    let (_, mut inb) = pair(alg, false, 64);
    let key = crate::crypto::GcmKey::new(alg, &super::key_bytes(alg, 7)).unwrap();
    for trailer in [&[1u8, 3, 2, 4][..], &[0, 0, 2, 4], &[9, 9, 9, 9, 200, 4]] {
        let seq = inb.replay_window().top() + 1;
        let mut p = Vec::new();
        p.extend_from_slice(&super::SPI.to_be_bytes());
        p.extend_from_slice(&(seq as u32).to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        let mut body = vec![0x45u8; 8];
        body.extend_from_slice(trailer);
        let (aad, n) = crate::crypto::build_aad(super::SPI, seq, false);
        let icv = key.seal(&seq.to_be_bytes(), &aad[..n], &mut body).unwrap();
        p.extend_from_slice(&body);
        p.extend_from_slice(&icv);
        let before = *inb.counters();
        assert_eq!(
            super::open(&mut inb, &p),
            Err(crate::DecapError::BadPadding)
        );
        assert_eq!(inb.counters().malformed, before.malformed + 1);
        assert_eq!(
            inb.replay_window().top(),
            0,
            "bad padding must not move the window"
        );
    }
}

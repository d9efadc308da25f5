//! Soft and hard lifetimes by packets and bytes, each event once.

use super::{inner_packet, open, pair_with, seal};
use crate::{Algorithm, DecapError, EncapError, Lifetime, SaEvent};

const ALG: Algorithm = Algorithm::AesGcm16_256;

#[test]
fn by_packets_both_directions() {
    let lifetime = Lifetime {
        soft_packets: Some(3),
        hard_packets: Some(5),
        ..Lifetime::default()
    };
    let (mut out, mut inb) = pair_with(ALG, false, 64, lifetime);
    let spi = out.spi();
    let mut packets = Vec::new();
    for n in 1..=5u64 {
        let p = seal(&mut out, &inner_packet(4, 50), 4);
        assert!(open(&mut inb, &p).is_ok());
        packets.push(p);
        let expect = match n {
            3 => vec![SaEvent::SoftLifetime { spi }],
            5 => vec![SaEvent::HardLifetime { spi }],
            _ => vec![],
        };
        for sa_events in [
            std::iter::from_fn(|| out.poll_event()).collect::<Vec<_>>(),
            std::iter::from_fn(|| inb.poll_event()).collect::<Vec<_>>(),
        ] {
            assert_eq!(sa_events, expect, "after packet {n}");
        }
    }
    let mut buf = vec![0u8; 128];
    assert_eq!(
        out.encapsulate(&mut buf, 16..60, 4),
        Err(EncapError::Expired)
    );
    assert_eq!(out.counters().lifetime_drops, 1);
    assert_eq!(out.counters().packets, 5);
    assert!(out.is_expired() && inb.is_expired());

    // A packet that would otherwise be fresh is refused by the expired SA.
    let (mut out2, _) = pair_with(ALG, false, 64, Lifetime::default());
    out2.set_next_sequence_for_test(6);
    let fresh = seal(&mut out2, &inner_packet(4, 50), 4);
    assert_eq!(open(&mut inb, &fresh), Err(DecapError::Expired));
    assert_eq!(inb.counters().lifetime_drops, 1);
    assert_eq!(inb.counters().packets, 5);
    assert_eq!(out.poll_event(), None);
    assert_eq!(inb.poll_event(), None);
}

#[test]
fn by_bytes_counts_inner_bytes() {
    let lifetime = Lifetime {
        soft_bytes: Some(1000),
        hard_bytes: Some(2000),
        ..Lifetime::default()
    };
    let (mut out, mut inb) = pair_with(ALG, true, 64, lifetime);
    let spi = out.spi();
    // 400-byte inner packets: soft after the 3rd (1200), hard after the 5th (2000).
    for n in 1..=5u64 {
        let p = seal(&mut out, &inner_packet(6, 400), 41);
        assert!(open(&mut inb, &p).is_ok());
        assert_eq!(out.counters().bytes, 400 * n);
        assert_eq!(inb.counters().bytes, 400 * n);
        let soft = (n == 3).then_some(SaEvent::SoftLifetime { spi });
        let hard = (n == 5).then_some(SaEvent::HardLifetime { spi });
        let expect: Vec<_> = soft.into_iter().chain(hard).collect();
        assert_eq!(
            std::iter::from_fn(|| out.poll_event()).collect::<Vec<_>>(),
            expect
        );
        assert_eq!(
            std::iter::from_fn(|| inb.poll_event()).collect::<Vec<_>>(),
            expect
        );
    }
    let mut buf = vec![0u8; 128];
    assert_eq!(
        out.encapsulate(&mut buf, 16..60, 4),
        Err(EncapError::Expired)
    );
}

#[test]
fn soft_and_hard_in_one_packet_come_soft_first() {
    let lifetime = Lifetime {
        soft_bytes: Some(10),
        hard_packets: Some(1),
        ..Lifetime::default()
    };
    let (mut out, _) = pair_with(ALG, false, 64, lifetime);
    let _ = seal(&mut out, &[0x45; 100], 4);
    let spi = out.spi();
    assert_eq!(out.poll_event(), Some(SaEvent::SoftLifetime { spi }));
    assert_eq!(out.poll_event(), Some(SaEvent::HardLifetime { spi }));
    assert_eq!(out.poll_event(), None);
}

#[test]
fn zero_hard_limit_expires_at_once() {
    let lifetime = Lifetime {
        hard_packets: Some(0),
        ..Lifetime::default()
    };
    let (mut out, _) = pair_with(ALG, false, 64, lifetime);
    assert_eq!(
        out.poll_event(),
        Some(SaEvent::HardLifetime { spi: out.spi() })
    );
    let mut buf = vec![0u8; 128];
    assert_eq!(
        out.encapsulate(&mut buf, 16..60, 4),
        Err(EncapError::Expired)
    );
}

#[test]
fn failures_do_not_count_towards_lifetimes() {
    let lifetime = Lifetime {
        soft_packets: Some(1),
        ..Lifetime::default()
    };
    let (mut out, mut inb) = pair_with(ALG, false, 64, lifetime);
    let mut p = seal(&mut out, &inner_packet(4, 50), 4);
    let last = p.len() - 1;
    p[last] ^= 1;
    assert!(open(&mut inb, &p).is_err());
    assert_eq!(inb.poll_event(), None);
}

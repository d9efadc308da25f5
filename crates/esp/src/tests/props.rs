//! Property tests: round trips, replay against an oracle, no panics.

use std::collections::HashSet;

use proptest::prelude::*;

use super::{open, pair, seal};
use crate::replay::ReplayWindow;
use crate::wire::Trailer;
use crate::{Algorithm, DecapError, InboundSa};

/// The obvious model of RFC 4303 §3.4.3: accept a number not seen before
/// that is above the top or within `window` below it.
struct Oracle {
    top: u64,
    seen: HashSet<u64>,
    window: u64,
}

impl Oracle {
    fn new(window: u64, top: u64) -> Self {
        Self {
            top,
            seen: HashSet::new(),
            window,
        }
    }

    fn accept(&mut self, seq: u64) -> bool {
        if seq == 0
            || self.seen.contains(&seq)
            || (seq <= self.top && self.top - seq >= self.window)
        {
            return false;
        }
        self.seen.insert(seq);
        self.top = self.top.max(seq);
        true
    }
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![Just(Algorithm::AesGcm16_128), Just(Algorithm::AesGcm16_256)]
}

fn cbc_algorithm() -> impl Strategy<Value = Algorithm> {
    proptest::sample::select(Algorithm::CBC_HMAC.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_packets_round_trip(
        alg in algorithm(),
        esn in any::<bool>(),
        start in 1u64..=u64::from(u32::MAX),
        inner in proptest::collection::vec(any::<u8>(), 0..1600),
        next_header in any::<u8>(),
    ) {
        let (mut out, mut inb) = pair(alg, esn, 64);
        out.set_next_sequence_for_test(start);
        inb.set_replay_top_for_test(start - 1);
        let p = seal(&mut out, &inner, next_header);
        prop_assert_eq!(p.len() % 4, 0);
        prop_assert_eq!(open(&mut inb, &p), Ok((next_header, inner)));
    }

    #[test]
    fn sa_replay_matches_oracle(
        seqs in proptest::collection::vec(1u64..300, 1..120),
    ) {
        let (mut out, mut inb) = pair(Algorithm::AesGcm16_128, false, 64);
        let mut oracle = Oracle::new(64, 0);
        for seq in seqs {
            out.set_next_sequence_for_test(seq);
            let p = seal(&mut out, &[0x45, 0, 0, 4], 4);
            let expected = oracle.accept(seq);
            let got = open(&mut inb, &p);
            prop_assert_eq!(got.is_ok(), expected, "seq {}", seq);
            if !expected {
                prop_assert_eq!(got, Err(DecapError::Replayed));
            }
        }
        prop_assert_eq!(inb.counters().packets as usize, oracle.seen.len());
    }

    #[test]
    fn sa_replay_matches_oracle_across_esn_wrap(
        offsets in proptest::collection::vec(0u64..400, 1..120),
    ) {
        // Numbers around 2^32: the high half must be inferred right, or the
        // ICV fails and the oracle disagrees.
        let base = (1u64 << 32) - 200;
        let (mut out, mut inb) = pair(Algorithm::AesGcm16_256, true, 64);
        inb.set_replay_top_for_test(base - 1);
        let mut oracle = Oracle::new(64, base - 1);
        for off in offsets {
            let seq = base + off;
            out.set_next_sequence_for_test(seq);
            let p = seal(&mut out, &[0x60, 0, 0, 0], 41);
            let expected = oracle.accept(seq);
            prop_assert_eq!(open(&mut inb, &p).is_ok(), expected, "seq {:#x}", seq);
        }
        prop_assert_eq!(inb.replay_window().top(), oracle.top);
    }

    #[test]
    fn replay_window_matches_oracle(
        size in prop_oneof![Just(64u32), Just(128), Just(1024), Just(4096)],
        seqs in proptest::collection::vec(
            prop_oneof![1u64..200, 1u64..20_000, Just(1u64 << 40)], 1..400),
    ) {
        let mut w = ReplayWindow::new(size);
        let mut oracle = Oracle::new(u64::from(size), 0);
        for seq in seqs {
            let expected = oracle.accept(seq);
            prop_assert_eq!(w.check(seq), expected, "check {}", seq);
            prop_assert_eq!(w.update(seq), expected, "update {}", seq);
            prop_assert!(!w.check(seq));
        }
        prop_assert_eq!(w.top(), oracle.top);
    }

    #[test]
    fn decapsulate_never_panics(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        esn in any::<bool>(),
        matching_spi in any::<bool>(),
    ) {
        let (_, mut inb): (_, InboundSa) = pair(Algorithm::AesGcm16_128, esn, 64);
        if matching_spi && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&super::SPI.to_be_bytes());
        }
        prop_assert!(inb.decapsulate(&mut bytes).is_err());
        let c = *inb.counters();
        prop_assert_eq!(c.packets, 0);
        prop_assert_eq!(c.malformed + c.auth_failures + c.replay_drops, 1);
        prop_assert_eq!(inb.replay_window().top(), 0);
        let _ = crate::peek_spi(&bytes);
    }

    #[test]
    fn cbc_arbitrary_packets_round_trip(
        alg in cbc_algorithm(),
        esn in any::<bool>(),
        start in 1u64..=u64::from(u32::MAX),
        inner in proptest::collection::vec(any::<u8>(), 0..1600),
        next_header in any::<u8>(),
    ) {
        let (mut out, mut inb) = pair(alg, esn, 64);
        out.set_next_sequence_for_test(start);
        inb.set_replay_top_for_test(start - 1);
        let p = seal(&mut out, &inner, next_header);
        prop_assert_eq!((p.len() - alg.iv_len() - 8 - alg.icv_len()) % alg.iv_len(), 0);
        prop_assert_eq!(p.len(), inner.len() + out.overhead(inner.len()));
        prop_assert_eq!(open(&mut inb, &p), Ok((next_header, inner)));
    }

    #[test]
    fn cbc_decapsulate_never_panics(
        alg in cbc_algorithm(),
        mut bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            // Lengths that pass the size and alignment checks, so the ICV
            // check itself sees arbitrary bytes.
            (1usize..8).prop_flat_map(|blocks| {
                proptest::collection::vec(any::<u8>(), 8 + 16 + blocks * 16 + 32)
            }),
        ],
        esn in any::<bool>(),
        matching_spi in any::<bool>(),
        fit_length in any::<bool>(),
    ) {
        let (_, mut inb): (_, InboundSa) = pair(alg, esn, 64);
        if fit_length && bytes.len() > 8 + alg.iv_len() + alg.icv_len() {
            // Trim to header + IV + whole blocks + ICV.
            let body = bytes.len() - 8 - alg.iv_len() - alg.icv_len();
            let keep = body - body % alg.iv_len();
            bytes.truncate(8 + alg.iv_len() + keep + alg.icv_len());
        }
        if matching_spi && bytes.len() >= 8 {
            bytes[..4].copy_from_slice(&super::SPI.to_be_bytes());
            // A fresh, in-window sequence number so the ICV is checked.
            bytes[4..8].copy_from_slice(&1u32.to_be_bytes());
        }
        prop_assert!(inb.decapsulate(&mut bytes).is_err());
        let c = *inb.counters();
        prop_assert_eq!(c.packets, 0);
        prop_assert_eq!(c.malformed + c.auth_failures + c.replay_drops, 1);
        prop_assert_eq!(inb.replay_window().top(), 0);
    }

    #[test]
    fn trailer_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok((t, inner)) = Trailer::parse(&bytes) {
            prop_assert_eq!(inner + t.buffer_len(), bytes.len());
        }
    }
}

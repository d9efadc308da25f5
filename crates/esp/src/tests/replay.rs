//! Anti-replay through whole SAs: duplicates, too old, far jumps, the 2^32
//! boundary with ESN, sequence exhaustion, a 4096-packet window.

use super::{inner_packet, open, pair, seal};
use crate::{Algorithm, CbcCipher, DecapError, EncapError, Integrity, SaEvent};

const ALG: Algorithm = Algorithm::AesGcm16_128;

/// Encapsulates one small packet carrying sequence number `seq`.
fn packet_at(out: &mut crate::OutboundSa, seq: u64) -> Vec<u8> {
    out.set_next_sequence_for_test(seq);
    seal(out, &inner_packet(4, 40), 4)
}

fn duplicate_is_rejected_and_counted_with(alg: Algorithm) {
    let (mut out, mut inb) = pair(alg, false, 64);
    let p = seal(&mut out, &inner_packet(4, 40), 4);
    assert!(open(&mut inb, &p).is_ok());
    assert_eq!(open(&mut inb, &p), Err(DecapError::Replayed));
    assert_eq!(open(&mut inb, &p), Err(DecapError::Replayed));
    assert_eq!(inb.counters().replay_drops, 2);
    assert_eq!(inb.counters().packets, 1);
}

fn too_old_and_in_window_reordering_with(alg: Algorithm) {
    let (mut out, mut inb) = pair(alg, false, 1024);
    let packets: Vec<Vec<u8>> = (0..2000)
        .map(|_| seal(&mut out, &inner_packet(4, 40), 4))
        .collect();
    // Deliver 1500..=2000 first (seq = index + 1).
    for p in &packets[1499..] {
        assert!(open(&mut inb, p).is_ok());
    }
    assert_eq!(inb.replay_window().top(), 2000);
    // 2000 - 976 = 1024: just outside; 977 just inside.
    assert_eq!(open(&mut inb, &packets[975]), Err(DecapError::Replayed));
    assert_eq!(open(&mut inb, &packets[99]), Err(DecapError::Replayed));
    assert!(open(&mut inb, &packets[976]).is_ok());
    assert!(open(&mut inb, &packets[1200]).is_ok());
    assert_eq!(open(&mut inb, &packets[1200]), Err(DecapError::Replayed));
    assert_eq!(inb.counters().replay_drops, 3);
}

fn far_jump_then_old_ones_rejected_with(alg: Algorithm) {
    let (mut out, mut inb) = pair(alg, false, 64);
    let old: Vec<Vec<u8>> = (1..=10).map(|s| packet_at(&mut out, s)).collect();
    assert!(open(&mut inb, &old[4]).is_ok()); // seq 5
    let far = packet_at(&mut out, 5 + 10_000);
    assert!(open(&mut inb, &far).is_ok());
    for p in &old {
        assert_eq!(open(&mut inb, p), Err(DecapError::Replayed));
    }
    // Numbers just below the new top are still welcome.
    let near = packet_at(&mut out, 5 + 10_000 - 63);
    assert!(open(&mut inb, &near).is_ok());
    let below = packet_at(&mut out, 5 + 10_000 - 64);
    assert_eq!(open(&mut inb, &below), Err(DecapError::Replayed));
}

fn sequence_zero_is_never_accepted_with(alg: Algorithm) {
    // A peer cannot send 0 through our OutboundSa, so forge the header: it
    // must be dropped before any crypto, as a replay.
    let (mut out, mut inb) = pair(alg, false, 64);
    let mut p = seal(&mut out, &inner_packet(4, 40), 4);
    p[4..8].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(open(&mut inb, &p), Err(DecapError::Replayed));
    assert_eq!(inb.counters().auth_failures, 0);
}

fn esn_crosses_the_32_bit_boundary_with(alg: Algorithm) {
    let (mut out, mut inb) = pair(alg, true, 64);
    let start = (1u64 << 32) - 10;
    out.set_next_sequence_for_test(start);
    inb.set_replay_top_for_test(start - 1);
    let packets: Vec<(u64, Vec<u8>)> = (0..20)
        .map(|_| {
            let s = out.next_sequence();
            (s, seal(&mut out, &inner_packet(6, 80), 41))
        })
        .collect();
    assert_eq!(out.next_sequence(), start + 20);
    // Only the low half is on the wire.
    assert_eq!(packets[15].1[4..8], ((start + 15) as u32).to_be_bytes());

    // Deliver out of order across the boundary: 2^32+2 before 2^32-1 etc.
    let order = [
        0usize, 1, 12, 3, 2, 9, 10, 11, 4, 5, 6, 7, 8, 19, 13, 14, 15, 16, 17, 18,
    ];
    for &i in &order {
        let (seq, p) = &packets[i];
        assert_eq!(open(&mut inb, p).map(|(nh, _)| nh), Ok(41), "seq {seq:#x}");
    }
    assert_eq!(inb.replay_window().top(), start + 19);
    for (_, p) in &packets {
        assert_eq!(open(&mut inb, p), Err(DecapError::Replayed));
    }
    assert_eq!(inb.counters().packets, 20);
    assert_eq!(inb.counters().auth_failures, 0);
}

fn without_esn_the_low_half_is_the_number_with(alg: Algorithm) {
    // The same wire packet bits mean different numbers with ESN off: the
    // receiver must not infer a high half.
    let (mut out, mut inb) = pair(alg, false, 64);
    let p = packet_at(&mut out, 0xffff_fff0);
    assert!(open(&mut inb, &p).is_ok());
    assert_eq!(inb.replay_window().top(), 0xffff_fff0);
}

fn sequence_exhaustion_without_esn_with(alg: Algorithm) {
    let (mut out, _) = pair(alg, false, 64);
    out.set_next_sequence_for_test(u64::from(u32::MAX) - 1);
    let _ = seal(&mut out, &[], 59);
    assert_eq!(out.poll_event(), None);
    let last = seal(&mut out, &[], 59);
    assert_eq!(last[4..8], [0xff; 4]);
    assert_eq!(
        out.poll_event(),
        Some(SaEvent::HardLifetime { spi: out.spi() })
    );
    assert_eq!(out.poll_event(), None);
    let mut buf = vec![0u8; 64];
    assert_eq!(
        out.encapsulate(&mut buf, 16..20, 4),
        Err(EncapError::Expired)
    );
    assert_eq!(
        out.encapsulate(&mut buf, 16..20, 4),
        Err(EncapError::Expired)
    );
    assert_eq!(out.counters().lifetime_drops, 2);
    assert_eq!(out.counters().packets, 2);
    assert!(out.is_expired());
    assert_eq!(out.poll_event(), None, "HardLifetime is emitted once");
}

fn sequence_exhaustion_with_esn_with(alg: Algorithm) {
    let (mut out, mut inb) = pair(alg, true, 64);
    out.set_next_sequence_for_test(u64::MAX);
    inb.set_replay_top_for_test(u64::MAX - 1);
    let p = seal(&mut out, &[1, 2, 3], 4);
    assert_eq!(open(&mut inb, &p), Ok((4, vec![1, 2, 3])));
    assert_eq!(
        out.poll_event(),
        Some(SaEvent::HardLifetime { spi: out.spi() })
    );
    let mut buf = vec![0u8; 64];
    assert_eq!(
        out.encapsulate(&mut buf, 16..20, 4),
        Err(EncapError::Expired)
    );
}

fn fresh_esn_receiver_rejects_numbers_from_before_the_start_with(alg: Algorithm) {
    // Low half near 2^32 on a fresh ESN SA would need high half -1.
    let (mut out, mut inb) = pair(alg, true, 64);
    let p = packet_at(&mut out, 0xffff_fff0);
    assert_eq!(open(&mut inb, &p), Err(DecapError::Replayed));
}

fn window_of_4096_with(alg: Algorithm) {
    let (mut out, mut inb) = pair(alg, false, 4096);
    assert_eq!(inb.replay_window().size(), 4096);
    let packets: Vec<Vec<u8>> = (0..6000).map(|_| seal(&mut out, &[0x45; 20], 4)).collect();
    // Newest first, then everything else in descending order: 1905..=5999
    // are within 4096 of 6000 and accepted once; 1..=1904 are too old.
    assert!(open(&mut inb, &packets[5999]).is_ok());
    for (i, p) in packets.iter().enumerate().rev().skip(1) {
        let seq = i as u64 + 1;
        let r = open(&mut inb, p);
        if 6000 - seq < 4096 {
            assert!(r.is_ok(), "seq {seq}");
        } else {
            assert_eq!(r, Err(DecapError::Replayed), "seq {seq}");
        }
    }
    assert_eq!(inb.counters().packets, 4096);
    assert_eq!(inb.counters().replay_drops, 6000 - 4096);
    for p in packets.iter().step_by(97) {
        assert_eq!(open(&mut inb, p), Err(DecapError::Replayed));
    }
}

fn window_sizes_round_up_to_64_with(alg: Algorithm) {
    for (asked, got) in [
        (1u32, 64u64),
        (32, 64),
        (65, 128),
        (1000, 1024),
        (65536, 65536),
    ] {
        let (_, inb) = pair(alg, false, asked);
        assert_eq!(inb.replay_window().size(), got);
    }
}

/// CBC + HMAC suites the scenarios above also run with: both block sizes,
/// every ICV length.
const CBC_SAMPLE: [Algorithm; 4] = [
    Algorithm::Cbc {
        cipher: CbcCipher::Aes128,
        integrity: Integrity::HmacSha1_96,
    },
    Algorithm::Cbc {
        cipher: CbcCipher::Aes256,
        integrity: Integrity::HmacSha2_256_128,
    },
    Algorithm::Cbc {
        cipher: CbcCipher::Aes192,
        integrity: Integrity::HmacSha2_512_256,
    },
    Algorithm::Cbc {
        cipher: CbcCipher::TripleDes,
        integrity: Integrity::HmacMd5_96,
    },
];

// Each scenario as a test with AES-GCM (as it always was) and as one with
// the CBC sample: replay behaviour must not depend on the transform.

#[test]
fn duplicate_is_rejected_and_counted() {
    duplicate_is_rejected_and_counted_with(ALG);
}

#[test]
fn duplicate_is_rejected_and_counted_cbc() {
    for alg in CBC_SAMPLE {
        duplicate_is_rejected_and_counted_with(alg);
    }
}

#[test]
fn too_old_and_in_window_reordering() {
    too_old_and_in_window_reordering_with(ALG);
}

#[test]
fn too_old_and_in_window_reordering_cbc() {
    for alg in CBC_SAMPLE {
        too_old_and_in_window_reordering_with(alg);
    }
}

#[test]
fn far_jump_then_old_ones_rejected() {
    far_jump_then_old_ones_rejected_with(ALG);
}

#[test]
fn far_jump_then_old_ones_rejected_cbc() {
    for alg in CBC_SAMPLE {
        far_jump_then_old_ones_rejected_with(alg);
    }
}

#[test]
fn sequence_zero_is_never_accepted() {
    sequence_zero_is_never_accepted_with(ALG);
}

#[test]
fn sequence_zero_is_never_accepted_cbc() {
    for alg in CBC_SAMPLE {
        sequence_zero_is_never_accepted_with(alg);
    }
}

#[test]
fn esn_crosses_the_32_bit_boundary() {
    esn_crosses_the_32_bit_boundary_with(ALG);
}

#[test]
fn esn_crosses_the_32_bit_boundary_cbc() {
    for alg in CBC_SAMPLE {
        esn_crosses_the_32_bit_boundary_with(alg);
    }
}

#[test]
fn without_esn_the_low_half_is_the_number() {
    without_esn_the_low_half_is_the_number_with(ALG);
}

#[test]
fn without_esn_the_low_half_is_the_number_cbc() {
    for alg in CBC_SAMPLE {
        without_esn_the_low_half_is_the_number_with(alg);
    }
}

#[test]
fn sequence_exhaustion_without_esn() {
    sequence_exhaustion_without_esn_with(ALG);
}

#[test]
fn sequence_exhaustion_without_esn_cbc() {
    for alg in CBC_SAMPLE {
        sequence_exhaustion_without_esn_with(alg);
    }
}

#[test]
fn sequence_exhaustion_with_esn() {
    sequence_exhaustion_with_esn_with(ALG);
}

#[test]
fn sequence_exhaustion_with_esn_cbc() {
    for alg in CBC_SAMPLE {
        sequence_exhaustion_with_esn_with(alg);
    }
}

#[test]
fn fresh_esn_receiver_rejects_numbers_from_before_the_start() {
    fresh_esn_receiver_rejects_numbers_from_before_the_start_with(ALG);
}

#[test]
fn fresh_esn_receiver_rejects_numbers_from_before_the_start_cbc() {
    for alg in CBC_SAMPLE {
        fresh_esn_receiver_rejects_numbers_from_before_the_start_with(alg);
    }
}

#[test]
fn window_of_4096() {
    window_of_4096_with(ALG);
}

#[test]
fn window_of_4096_cbc() {
    for alg in CBC_SAMPLE {
        window_of_4096_with(alg);
    }
}

#[test]
fn window_sizes_round_up_to_64() {
    window_sizes_round_up_to_64_with(ALG);
}

#[test]
fn window_sizes_round_up_to_64_cbc() {
    for alg in CBC_SAMPLE {
        window_sizes_round_up_to_64_with(alg);
    }
}

//! Encapsulation and decapsulation throughput for AES-GCM-16 and the two
//! main CBC + HMAC suites (`aes128-sha1`, `aes256-sha256`), per inner packet
//! size.
//!
//! Decapsulation is measured honestly: every iteration decapsulates a packet
//! with a fresh sequence number. A ring of packets is encapsulated up front;
//! each iteration copies one into a scratch buffer (decryption is in place,
//! so the ring must stay intact) and decapsulates it. When the ring is used
//! up a new `InboundSa` (same key) takes over, so no iteration ever measures
//! a replay rejection. The copy and the amortised SA set-up are included in
//! the figures.

// A bench whose set-up fails has nothing to measure: panicking is the report.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipsecgw_esp::{Algorithm, InboundSa, Lifetime, OutboundSa, SaConfig, SaKey};

const SIZES: [usize; 3] = [64, 512, 1400];

/// The suites measured: the modern default first, then what Alibaba Cloud's
/// VPN Gateway negotiates.
fn algorithms() -> [Algorithm; 4] {
    [
        Algorithm::AesGcm16_256,
        Algorithm::AesGcm16_128,
        "aes128-sha1".parse().unwrap(),
        "aes256-sha256".parse().unwrap(),
    ]
}
/// Packets in the pre-encapsulated ring, each with its own sequence number.
const RING: usize = 4096;

fn config(alg: Algorithm) -> SaConfig {
    SaConfig {
        spi: 0x0001_0000,
        algorithm: alg,
        key: SaKey::new((0..alg.key_len() as u8).collect()),
        // ESN: the encap bench never runs out of sequence numbers.
        esn: true,
        replay_window: ipsecgw_esp::DEFAULT_REPLAY_WINDOW,
        lifetime: Lifetime::default(),
    }
}

fn inner_packet(len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
    p[0] = 0x45;
    p
}

fn encapsulate(c: &mut Criterion) {
    let mut group = c.benchmark_group("encapsulate");
    for alg in algorithms() {
        for size in SIZES {
            let mut sa = OutboundSa::new(config(alg)).unwrap();
            let head = sa.headroom();
            let mut buf = vec![0u8; head + size + sa.tailroom()];
            buf[head..head + size].copy_from_slice(&inner_packet(size));
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(alg.to_string(), size), |b| {
                // Re-encrypting the previous ciphertext in place costs the
                // same as encrypting a fresh packet; the trailer and header
                // are rewritten each time.
                b.iter(|| {
                    let r = sa
                        .encapsulate(black_box(&mut buf), head..head + size, 4)
                        .unwrap();
                    black_box(r)
                })
            });
        }
    }
    group.finish();
}

fn decapsulate(c: &mut Criterion) {
    let mut group = c.benchmark_group("decapsulate");
    for alg in algorithms() {
        for size in SIZES {
            let mut out = OutboundSa::new(config(alg)).unwrap();
            let head = out.headroom();
            let inner = inner_packet(size);
            let ring: Vec<Vec<u8>> = (0..RING)
                .map(|_| {
                    let mut buf = vec![0u8; head + size + out.tailroom()];
                    buf[head..head + size].copy_from_slice(&inner);
                    let r = out.encapsulate(&mut buf, head..head + size, 4).unwrap();
                    buf[r].to_vec()
                })
                .collect();
            let mut scratch = vec![0u8; ring[0].len()];
            let mut sa = InboundSa::new(config(alg)).unwrap();
            let mut next = 0usize;
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(alg.to_string(), size), |b| {
                b.iter(|| {
                    if next == RING {
                        next = 0;
                        sa = InboundSa::new(config(alg)).unwrap();
                    }
                    scratch.copy_from_slice(&ring[next]);
                    next += 1;
                    let d = sa.decapsulate(black_box(&mut scratch)).unwrap();
                    black_box(d)
                })
            });
            assert_eq!(sa.counters().replay_drops, 0);
            assert_eq!(sa.counters().auth_failures, 0);
        }
    }
    group.finish();
}

/// `ring`'s AES-GCM alone on the same payload + trailer length, so the
/// figures above can be read as "ESP overhead over the raw cipher".
fn ring_baseline(c: &mut Criterion) {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let mut group = c.benchmark_group("ring_aes256gcm_seal_baseline");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    for size in SIZES {
        let mut buf = inner_packet(size + 2);
        let mut n = 0u64;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&[0u8; 8]),
                        black_box(&mut buf),
                    )
                    .unwrap();
                black_box(tag)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encapsulate, decapsulate, ring_baseline);
criterion_main!(benches);

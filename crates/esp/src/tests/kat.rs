//! Known answers: the crypto core and whole-packet decapsulation against the
//! draft-mcgrew-gcm-test-01 vectors, and the nonce/AAD encapsulate builds.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

use super::vectors::{Vector, VECTORS};
use crate::crypto::{build_aad, GcmKey};
use crate::{Algorithm, InboundSa, Lifetime, OutboundSa, SaConfig, SaKey};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn algorithm(v: &Vector) -> Algorithm {
    match v.key.len() / 2 {
        16 => Algorithm::AesGcm16_128,
        32 => Algorithm::AesGcm16_256,
        n => panic!("{}: unexpected key length {n}", v.name),
    }
}

fn material(v: &Vector) -> Vec<u8> {
    let mut m = h(v.key);
    m.extend(h(v.salt));
    m
}

fn iv(v: &Vector) -> [u8; 8] {
    h(v.iv).try_into().unwrap()
}

#[test]
fn vectors_cover_both_key_sizes_and_esn() {
    assert!(VECTORS
        .iter()
        .any(|v| algorithm(v) == Algorithm::AesGcm16_128 && !v.esn));
    assert!(VECTORS
        .iter()
        .any(|v| algorithm(v) == Algorithm::AesGcm16_256 && !v.esn));
    assert!(VECTORS
        .iter()
        .any(|v| algorithm(v) == Algorithm::AesGcm16_128 && v.esn));
    assert!(VECTORS
        .iter()
        .any(|v| algorithm(v) == Algorithm::AesGcm16_256 && v.esn));
}

#[test]
fn aad_matches_vectors() {
    for v in VECTORS {
        let (aad, len) = build_aad(v.spi, v.seq, v.esn);
        assert_eq!(aad[..len], h(v.aad)[..], "{}", v.name);
    }
}

#[test]
fn crypto_core_seal() {
    for v in VECTORS {
        let key = GcmKey::new(algorithm(v), &material(v)).unwrap();
        let mut buf = h(v.plaintext);
        let icv = key.seal(&iv(v), &h(v.aad), &mut buf).unwrap();
        buf.extend_from_slice(&icv);
        assert_eq!(hex::encode(&buf), v.sealed, "{}", v.name);
    }
}

#[test]
fn crypto_core_open() {
    for v in VECTORS {
        let key = GcmKey::new(algorithm(v), &material(v)).unwrap();
        let mut buf = h(v.sealed);
        let pt = key.open(&iv(v), &h(v.aad), &mut buf).unwrap();
        assert_eq!(hex::encode(pt), v.plaintext, "{}", v.name);

        // Wrong AAD (e.g. a wrongly inferred ESN high half) must fail.
        let mut aad = h(v.aad);
        aad[5] ^= 1;
        let mut buf = h(v.sealed);
        assert!(key.open(&iv(v), &aad, &mut buf).is_err(), "{}", v.name);
    }
}

fn inbound_for(v: &Vector) -> InboundSa {
    let mut sa = InboundSa::new(SaConfig {
        spi: v.spi,
        algorithm: algorithm(v),
        key: SaKey::new(material(v)),
        esn: v.esn,
        replay_window: 64,
        lifetime: Lifetime::default(),
    })
    .unwrap();
    if v.esn {
        // Pretend the SA has been running up to just below the vector's
        // number, so the RFC 4303 A2.2 inference recovers its high half.
        sa.set_replay_top_for_test(v.seq - 1);
    }
    sa
}

#[test]
fn whole_packet_decapsulation() {
    for v in VECTORS.iter().filter(|v| v.spi > 255) {
        let mut sa = inbound_for(v);
        let mut buf = h(v.packet);
        let d = sa
            .decapsulate(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));

        let pt = h(v.plaintext);
        let next_header = *pt.last().unwrap();
        let pad_len = usize::from(pt[pt.len() - 2]);
        let inner_len = pt.len() - 2 - pad_len;
        assert_eq!(d.next_header, next_header, "{}", v.name);
        assert_eq!(d.inner, 16..16 + inner_len, "{}", v.name);
        assert_eq!(buf[d.inner.clone()], pt[..inner_len], "{}", v.name);
        assert_eq!(sa.counters().packets, 1);
        assert_eq!(sa.counters().bytes, inner_len as u64);
        assert_eq!(sa.replay_window().top(), v.seq, "{}", v.name);

        // And the same packet again is a replay.
        let mut again = h(v.packet);
        assert_eq!(sa.decapsulate(&mut again), Err(crate::DecapError::Replayed));
    }
}

#[test]
fn vector_with_reserved_spi_is_refused() {
    let v = VECTORS.iter().find(|v| v.spi == 0).unwrap();
    let err = InboundSa::new(SaConfig {
        spi: v.spi,
        algorithm: algorithm(v),
        key: SaKey::new(material(v)),
        esn: false,
        replay_window: 64,
        lifetime: Lifetime::default(),
    })
    .unwrap_err();
    assert_eq!(err, crate::SaError::ReservedSpi(0));
}

/// Encapsulate must put the 64-bit sequence number in the IV, the low half
/// in the header, and build nonce = salt || IV and the RFC 4106 §5 AAD. We
/// check by decrypting with `ring` directly and our own nonce and AAD.
#[test]
fn encapsulate_builds_nonce_and_aad_as_specified() {
    let cases = [
        (Algorithm::AesGcm16_128, false, 1u64),
        (Algorithm::AesGcm16_128, false, 0xdead_beef),
        (Algorithm::AesGcm16_256, true, 1),
        (Algorithm::AesGcm16_256, true, 0x0000_0007_0000_0003),
        (Algorithm::AesGcm16_128, true, 0x8765_4321_0000_0000),
    ];
    for (alg, esn, seq) in cases {
        let spi = 0xc0ff_ee01;
        let material: Vec<u8> = (0..alg.key_len() as u8).map(|i| i ^ 0x5a).collect();
        let mut out = OutboundSa::new(SaConfig {
            spi,
            algorithm: alg,
            key: SaKey::new(material.clone()),
            esn,
            replay_window: 64,
            lifetime: Lifetime::default(),
        })
        .unwrap();
        out.set_next_sequence_for_test(seq);
        let inner = b"\x45 hello, world!".to_vec();
        let packet = super::seal(&mut out, &inner, 4);

        assert_eq!(packet[0..4], spi.to_be_bytes());
        assert_eq!(packet[4..8], (seq as u32).to_be_bytes());
        assert_eq!(packet[8..16], seq.to_be_bytes());

        let (key, salt) = material.split_at(alg.key_len() - 4);
        let ring_alg = match alg {
            Algorithm::AesGcm16_128 => &AES_128_GCM,
            _ => &AES_256_GCM,
        };
        let k = LessSafeKey::new(UnboundKey::new(ring_alg, key).unwrap());
        let mut nonce = salt.to_vec();
        nonce.extend_from_slice(&seq.to_be_bytes());
        let mut aad = spi.to_be_bytes().to_vec();
        if esn {
            aad.extend_from_slice(&((seq >> 32) as u32).to_be_bytes());
        }
        aad.extend_from_slice(&(seq as u32).to_be_bytes());

        let mut body = packet[16..].to_vec();
        let pt = k
            .open_in_place(
                Nonce::try_assume_unique_for_key(&nonce).unwrap(),
                Aad::from(&aad[..]),
                &mut body,
            )
            .unwrap_or_else(|_| panic!("{alg} esn={esn} seq={seq:#x}"));
        // 15 inner bytes + 3 padding + pad length + next header = 20.
        assert_eq!(inner.len(), 15);
        let mut expect = inner.clone();
        expect.extend_from_slice(&[1, 2, 3, 3, 4]);
        assert_eq!(pt, &expect[..]);
    }
}

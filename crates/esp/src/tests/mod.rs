//! Scenario tests over whole SAs: known answers, round trips, replay,
//! tampering, lifetimes, and property tests against simple oracles.

mod cbc_kat;
mod cbc_sa;
mod kat;
mod lifetime;
mod props;
mod replay;
mod roundtrip;
mod sa_config;
mod tamper;
mod vectors;

use crate::{Algorithm, InboundSa, Lifetime, OutboundSa, SaConfig, SaKey};

/// Headroom tests leave in front of inner packets (more than needed, as the
/// daemon's TUN buffers do).
pub(crate) const FRONT: usize = 32;
/// Tailroom tests leave behind inner packets.
pub(crate) const BACK: usize = 64;

pub(crate) const SPI: u32 = 0x1234_5678;

/// Deterministic key material (key || salt) of the right length for `alg`.
pub(crate) fn key_bytes(alg: Algorithm, seed: u8) -> Vec<u8> {
    (0..alg.key_len())
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub(crate) fn key(alg: Algorithm, seed: u8) -> SaKey {
    SaKey::new(key_bytes(alg, seed))
}

pub(crate) fn config(alg: Algorithm, esn: bool, window: u32, lifetime: Lifetime) -> SaConfig {
    SaConfig {
        spi: SPI,
        algorithm: alg,
        key: key(alg, 7),
        esn,
        replay_window: window,
        lifetime,
    }
}

pub(crate) fn pair(alg: Algorithm, esn: bool, window: u32) -> (OutboundSa, InboundSa) {
    pair_with(alg, esn, window, Lifetime::default())
}

pub(crate) fn pair_with(
    alg: Algorithm,
    esn: bool,
    window: u32,
    lifetime: Lifetime,
) -> (OutboundSa, InboundSa) {
    let cfg = config(alg, esn, window, lifetime);
    (
        OutboundSa::new(cfg.clone()).unwrap(),
        InboundSa::new(cfg).unwrap(),
    )
}

/// A plausible IPv4 (version 4) or IPv6 (version 6) packet of `len` bytes;
/// the SA never parses it, but the bytes vary so corruption would show.
pub(crate) fn inner_packet(version: u8, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    if let Some(first) = p.first_mut() {
        *first = version << 4 | if version == 4 { 5 } else { 0 };
    }
    p
}

/// Encapsulates `inner` and returns just the ESP packet's bytes.
pub(crate) fn seal(out: &mut OutboundSa, inner: &[u8], next_header: u8) -> Vec<u8> {
    let mut buf = vec![0u8; FRONT + inner.len() + BACK];
    buf[FRONT..FRONT + inner.len()].copy_from_slice(inner);
    let r = out
        .encapsulate(&mut buf, FRONT..FRONT + inner.len(), next_header)
        .unwrap();
    buf[r].to_vec()
}

/// Decapsulates a copy of `packet`; returns next header and inner bytes.
pub(crate) fn open(inb: &mut InboundSa, packet: &[u8]) -> Result<(u8, Vec<u8>), crate::DecapError> {
    let mut buf = packet.to_vec();
    let d = inb.decapsulate(&mut buf)?;
    Ok((d.next_header, buf[d.inner].to_vec()))
}

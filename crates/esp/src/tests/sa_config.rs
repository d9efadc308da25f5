//! Configuration validation and secrecy of keys in `Debug`.

use super::{config, key};
use crate::{Algorithm, InboundSa, Lifetime, OutboundSa, SaError, SaKey, MAX_REPLAY_WINDOW};

#[test]
fn reserved_spis_are_refused() {
    for spi in [0u32, 1, 100, 255] {
        let mut cfg = config(Algorithm::AesGcm16_128, false, 64, Lifetime::default());
        cfg.spi = spi;
        assert_eq!(
            OutboundSa::new(cfg.clone()).unwrap_err(),
            SaError::ReservedSpi(spi)
        );
        assert_eq!(InboundSa::new(cfg).unwrap_err(), SaError::ReservedSpi(spi));
    }
    let mut cfg = config(Algorithm::AesGcm16_128, false, 64, Lifetime::default());
    cfg.spi = 256;
    assert!(InboundSa::new(cfg).is_ok());
}

#[test]
fn key_length_is_checked_and_the_error_names_lengths_not_bytes() {
    let mut cfg = config(Algorithm::AesGcm16_256, false, 64, Lifetime::default());
    cfg.key = key(Algorithm::AesGcm16_128, 0xab);
    let err = InboundSa::new(cfg.clone()).unwrap_err();
    assert_eq!(
        err,
        SaError::KeyLength {
            algorithm: Algorithm::AesGcm16_256,
            expected: 36,
            got: 20
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("36") && msg.contains("20"), "{msg}");
    assert!(OutboundSa::new(cfg).is_err());
    let mut cfg = config(Algorithm::AesGcm16_128, false, 64, Lifetime::default());
    cfg.key = SaKey::new(vec![]);
    assert!(cfg.key.is_empty());
    assert!(matches!(
        OutboundSa::new(cfg),
        Err(SaError::KeyLength { got: 0, .. })
    ));
}

#[test]
fn replay_window_bounds() {
    for (w, ok) in [
        (0u32, false),
        (1, true),
        (MAX_REPLAY_WINDOW, true),
        (MAX_REPLAY_WINDOW + 1, false),
    ] {
        let cfg = config(Algorithm::AesGcm16_128, false, w, Lifetime::default());
        assert_eq!(InboundSa::new(cfg.clone()).is_ok(), ok, "window {w}");
        assert_eq!(OutboundSa::new(cfg).is_ok(), ok, "window {w}");
    }
    let cfg = config(Algorithm::AesGcm16_128, false, 0, Lifetime::default());
    assert_eq!(
        InboundSa::new(cfg).unwrap_err(),
        SaError::ReplayWindow {
            got: 0,
            max: MAX_REPLAY_WINDOW
        }
    );
}

#[test]
fn debug_never_shows_key_bytes() {
    let material = vec![0xa7u8; 36];
    let cfg = crate::SaConfig {
        spi: 0x1000,
        algorithm: Algorithm::AesGcm16_256,
        key: SaKey::new(material),
        esn: true,
        replay_window: 64,
        lifetime: Lifetime::default(),
    };
    assert_eq!(format!("{:?}", cfg.key), "SaKey(redacted)");
    let shown = [
        format!("{cfg:?}"),
        format!("{cfg:#?}"),
        format!("{:?}", OutboundSa::new(cfg.clone()).unwrap()),
        format!("{:?}", InboundSa::new(cfg.clone()).unwrap()),
    ];
    for s in shown {
        assert!(
            !s.contains("167") && !s.to_lowercase().contains("a7"),
            "{s}"
        );
        assert!(s.contains("redacted"), "{s}");
    }
}

#[test]
fn getters() {
    let cfg = config(Algorithm::AesGcm16_256, true, 64, Lifetime::default());
    let out = OutboundSa::new(cfg.clone()).unwrap();
    let inb = InboundSa::new(cfg).unwrap();
    assert_eq!(out.spi(), super::SPI);
    assert_eq!(inb.spi(), super::SPI);
    assert_eq!(out.algorithm(), Algorithm::AesGcm16_256);
    assert_eq!(inb.algorithm(), Algorithm::AesGcm16_256);
    assert!(out.esn() && inb.esn());
    assert_eq!(
        out.next_sequence(),
        1,
        "RFC 4303 §3.3.3: the first packet is 1"
    );
    assert_eq!(key(Algorithm::AesGcm16_256, 0).len(), 36);
}

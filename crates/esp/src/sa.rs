//! Security Associations: one [`OutboundSa`] or [`InboundSa`] per direction.
//!
//! Both are sans-IO state machines with the usual method kinds: getters
//! (`spi`, `counters`, ...), one input (`encapsulate` / `decapsulate`, called
//! per packet) and one output, [`poll_event`](OutboundSa::poll_event), which
//! the driver drains after each batch of packets until it returns `None`.

use std::fmt;
use std::ops::Range;

use zeroize::Zeroizing;

use crate::cbc::{CbcHmacKey, OpenError};
use crate::crypto::{build_aad, GcmKey};
use crate::lifetime::LifetimeTracker;
use crate::replay::ReplayWindow;
use crate::seq::infer_esn;
use crate::wire::{EspHeader, EspPacket, Trailer, HEADER_LEN};
use crate::{Algorithm, DecapError, EncapError, Lifetime, SaError};

/// Anti-replay window used when the configuration names none: large enough
/// for the reordering that multi-queue NICs and per-core workers cause (the
/// RFC 4303 §3.4.3 default of 32 is far too small at 10 Gbit/s).
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;

/// Largest anti-replay window accepted (its bitmap is 16 KiB).
pub const MAX_REPLAY_WINDOW: u32 = 65536;

/// SPIs 0..=255 are reserved (RFC 4303 §2.1).
const MAX_RESERVED_SPI: u32 = 255;

/// Highest sequence number a sender may use: RFC 4303 §3.3.3 forbids cycling
/// the counter, so an SA is done after 2^32-1 packets, or 2^64-1 with ESN.
const MAX_SEQ_32: u64 = u32::MAX as u64;
const MAX_SEQ_64: u64 = u64::MAX;

/// Key material for one SA, as IKEv2 derives it: for AES-GCM the AES key
/// followed by the 4-byte RFC 4106 salt (RFC 4106 §8.1); for CBC + HMAC the
/// encryption key followed by the integrity key (RFC 7296 §2.17). Zeroized on
/// drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SaKey(Zeroizing<Vec<u8>>);

impl SaKey {
    /// Takes ownership of `bytes` (key || salt, or encryption key ||
    /// integrity key).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Length in bytes, salt included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaKey(redacted)")
    }
}

/// Everything needed to create one direction of a CHILD SA.
#[derive(Debug, Clone)]
pub struct SaConfig {
    /// The SPI: chosen by the receiver, so for an inbound SA ours, for an
    /// outbound SA the peer's. Must be 256 or more (RFC 4303 §2.1).
    pub spi: u32,
    /// The negotiated transform.
    pub algorithm: Algorithm,
    /// Key || salt (AES-GCM) or encryption key || integrity key (CBC),
    /// [`Algorithm::key_len`] bytes.
    pub key: SaKey,
    /// Extended (64-bit) Sequence Numbers negotiated (RFC 4303 §2.2.1).
    pub esn: bool,
    /// Anti-replay window in packets, 1..=[`MAX_REPLAY_WINDOW`], rounded up to
    /// a multiple of 64 (one bitmap word). Validated for both directions;
    /// only an inbound SA uses it.
    pub replay_window: u32,
    /// Byte and packet limits.
    pub lifetime: Lifetime,
}

/// Per-SA statistics. `packets` and `bytes` count packets processed
/// successfully and their inner (plaintext) bytes; the others count drops by
/// cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Packets encapsulated or decapsulated successfully.
    pub packets: u64,
    /// Inner bytes of those packets.
    pub bytes: u64,
    /// Inbound packets whose ICV did not verify.
    pub auth_failures: u64,
    /// Inbound packets rejected by the anti-replay window.
    pub replay_drops: u64,
    /// Inbound packets too short, for another SPI, or with bad padding.
    pub malformed: u64,
    /// Packets refused because the SA expired.
    pub lifetime_drops: u64,
}

/// Something the daemon must act on. Each is emitted at most once per SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaEvent {
    /// A soft lifetime was reached: start rekeying.
    SoftLifetime {
        /// The SA's SPI.
        spi: u32,
    },
    /// A hard lifetime was reached or the sequence numbers ran out: the SA
    /// now refuses packets and must be replaced.
    HardLifetime {
        /// The SA's SPI.
        spi: u32,
    },
}

/// One direction's keys, whichever kind of transform. Both variants are
/// large (key schedules, precomputed HMAC states) and stored inline: an SA
/// is long-lived and its keys are touched by every packet.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum SaCrypto {
    /// AES-GCM-16 (RFC 4106).
    Gcm(GcmKey),
    /// CBC + HMAC (RFC 4303 §3.2).
    Cbc(CbcHmacKey),
}

/// Checks what both directions require and builds the key.
fn validate(cfg: &SaConfig) -> Result<SaCrypto, SaError> {
    if cfg.spi <= MAX_RESERVED_SPI {
        return Err(SaError::ReservedSpi(cfg.spi));
    }
    if cfg.key.len() != cfg.algorithm.key_len() {
        return Err(SaError::KeyLength {
            algorithm: cfg.algorithm,
            expected: cfg.algorithm.key_len(),
            got: cfg.key.len(),
        });
    }
    if cfg.replay_window == 0 || cfg.replay_window > MAX_REPLAY_WINDOW {
        return Err(SaError::ReplayWindow {
            got: cfg.replay_window,
            max: MAX_REPLAY_WINDOW,
        });
    }
    match cfg.algorithm {
        Algorithm::Cbc { cipher, integrity } => {
            CbcHmacKey::new(cipher, integrity, cfg.key.as_bytes()).map(SaCrypto::Cbc)
        }
        Algorithm::AesGcm16_128 | Algorithm::AesGcm16_256 => {
            GcmKey::new(cfg.algorithm, cfg.key.as_bytes()).map(SaCrypto::Gcm)
        }
    }
}

fn add_bytes(counters: &mut SaCounters, len: usize) {
    counters.packets = counters.packets.saturating_add(1);
    counters.bytes = counters.bytes.saturating_add(len as u64);
}

/// The sending half of a CHILD SA: encrypts inner packets into ESP.
#[derive(Debug)]
pub struct OutboundSa {
    spi: u32,
    algorithm: Algorithm,
    esn: bool,
    key: SaCrypto,
    /// Sequence number (and IV) of the next packet; starts at 1 (RFC 4303 §3.3.3).
    next_seq: u64,
    max_seq: u64,
    counters: SaCounters,
    lifetime: LifetimeTracker,
}

impl OutboundSa {
    /// Validates `cfg` (SPI not reserved, key length, replay window) and keys
    /// the cipher, so that configuration errors surface here and never per
    /// packet.
    pub fn new(cfg: SaConfig) -> Result<Self, SaError> {
        let key = validate(&cfg)?;
        Ok(Self {
            spi: cfg.spi,
            algorithm: cfg.algorithm,
            esn: cfg.esn,
            key,
            next_seq: 1,
            max_seq: if cfg.esn { MAX_SEQ_64 } else { MAX_SEQ_32 },
            counters: SaCounters::default(),
            lifetime: LifetimeTracker::new(cfg.spi, cfg.lifetime),
        })
    }

    /// The SPI written into every packet.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The transform.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether 64-bit sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Bytes needed in front of the inner packet: ESP header (8) + IV (8
    /// for AES-GCM, 16 for AES-CBC, 8 for DES and 3DES).
    pub fn headroom(&self) -> usize {
        HEADER_LEN + self.algorithm.iv_len()
    }

    /// Most bytes needed after the inner packet: padding (up to 3 bytes for
    /// AES-GCM, up to block length - 1 for CBC), pad length, next header and
    /// the ICV. At most 15 + 2 + 32 = 49.
    pub fn tailroom(&self) -> usize {
        self.algorithm.pad_align() - 1 + crate::wire::TRAILER_LEN + self.algorithm.icv_len()
    }

    /// Exactly how many bytes [`encapsulate`](Self::encapsulate) adds to an
    /// inner packet of `inner_len` bytes (for MTU and buffer sizing).
    pub fn overhead(&self, inner_len: usize) -> usize {
        self.headroom()
            + usize::from(Trailer::pad_to(inner_len, self.algorithm.pad_align()))
            + crate::wire::TRAILER_LEN
            + self.algorithm.icv_len()
    }

    /// Encrypts `buf[inner]` into an ESP packet in place.
    ///
    /// Writes the ESP header + IV into `buf[inner.start - headroom ..
    /// inner.start]`, encrypts the payload in place, appends padding, pad
    /// length, next header and ICV after `inner.end` (needs `buf.len() >=
    /// inner.end + padding + 2 + icv`). Returns the range of the complete ESP
    /// packet (starting at the SPI). No allocation.
    ///
    /// For AES-GCM the IV is the 64-bit sequence number (unique per key,
    /// RFC 4106 §3.1); for CBC it is the sequence number encrypted with the
    /// SA's key (unpredictable, NIST SP 800-38A Appendix C), and the ICV is
    /// an HMAC over header, IV and ciphertext (RFC 4303 §3.3.2, plus the high
    /// sequence half with ESN). No randomness is needed. On error nothing is
    /// sent and the sequence number is not consumed; only `Expired` touches a
    /// counter (`lifetime_drops`).
    pub fn encapsulate(
        &mut self,
        buf: &mut [u8],
        inner: Range<usize>,
        next_header: u8,
    ) -> Result<Range<usize>, EncapError> {
        if self.lifetime.expired() {
            self.counters.lifetime_drops = self.counters.lifetime_drops.saturating_add(1);
            return Err(EncapError::Expired);
        }
        if inner.start > inner.end || inner.end > buf.len() {
            return Err(EncapError::InvalidRange);
        }
        let headroom = self.headroom();
        let icv_len = self.algorithm.icv_len();
        let start = inner
            .start
            .checked_sub(headroom)
            .ok_or(EncapError::NoHeadroom)?;
        let inner_len = inner.end - inner.start;
        let trailer = Trailer {
            pad_len: Trailer::pad_to(inner_len, self.algorithm.pad_align()),
            next_header,
        };
        let end = inner
            .end
            .checked_add(trailer.buffer_len() + icv_len)
            .ok_or(EncapError::NoTailroom)?;
        let packet = buf.get_mut(start..end).ok_or(EncapError::NoTailroom)?;

        let seq = self.next_seq;
        match &self.key {
            SaCrypto::Gcm(key) => {
                let iv = seq.to_be_bytes();
                let (head, rest) = packet.split_at_mut(headroom);
                let (header, iv_out) = head.split_at_mut(HEADER_LEN);
                EspHeader {
                    spi: self.spi,
                    sequence: seq as u32,
                }
                .emit(header)
                .map_err(|_| EncapError::NoHeadroom)?;
                iv_out.copy_from_slice(&iv);

                let ct_len = rest.len() - icv_len;
                let (ct, icv_out) = rest.split_at_mut(ct_len);
                let trailer_out = ct.get_mut(inner_len..).ok_or(EncapError::NoTailroom)?;
                trailer
                    .emit(trailer_out)
                    .map_err(|_| EncapError::NoTailroom)?;
                let (aad, aad_len) = build_aad(self.spi, seq, self.esn);
                let aad = aad.get(..aad_len).unwrap_or_default();
                let icv = key
                    .seal(&iv, aad, ct)
                    .map_err(|()| EncapError::InvalidRange)?;
                icv_out.copy_from_slice(&icv);
            }
            SaCrypto::Cbc(key) => {
                EspHeader {
                    spi: self.spi,
                    sequence: seq as u32,
                }
                .emit(packet)
                .map_err(|_| EncapError::NoHeadroom)?;
                let trailer_out = packet
                    .get_mut(headroom + inner_len..)
                    .ok_or(EncapError::NoTailroom)?;
                trailer
                    .emit(trailer_out)
                    .map_err(|_| EncapError::NoTailroom)?;
                key.seal(packet, seq, self.esn)
                    .map_err(|_| EncapError::InvalidRange)?;
            }
        }

        add_bytes(&mut self.counters, inner_len);
        self.lifetime.update(&self.counters);
        if seq >= self.max_seq {
            // RFC 4303 §3.3.3: the counter must not cycle; the SA is spent.
            self.lifetime.expire();
        } else {
            self.next_seq = seq + 1;
        }
        Ok(start..end)
    }

    /// Packets and bytes sent, and lifetime drops.
    pub fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// The next lifetime event, soft before hard, each once.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.lifetime.poll_event()
    }

    /// The 64-bit sequence number the next packet will carry (after the last
    /// one was used, the last one: the SA is then expired).
    pub fn next_sequence(&self) -> u64 {
        self.next_seq
    }

    /// True once the SA refuses packets (hard lifetime or sequence numbers
    /// exhausted).
    pub fn is_expired(&self) -> bool {
        self.lifetime.expired()
    }

    /// Jumps the sequence counter, for tests of ESN wrap and exhaustion.
    /// Never use it on a live SA: repeating a sequence number repeats the
    /// GCM nonce (or the CBC IV). Values outside 1..=max expire the SA.
    #[doc(hidden)]
    pub fn set_next_sequence_for_test(&mut self, seq: u64) {
        if seq == 0 || seq > self.max_seq {
            self.lifetime.expire();
        } else {
            self.next_seq = seq;
        }
    }
}

/// The inner packet found by [`InboundSa::decapsulate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapsulated {
    /// The trailer's Next Header: 4 IPv4, 41 IPv6, 59 dummy packet (RFC 4303
    /// §2.6; the caller drops those), or anything else the peer sent.
    pub next_header: u8,
    /// Where the inner packet lies in the buffer that was decapsulated.
    pub inner: Range<usize>,
}

/// The receiving half of a CHILD SA: verifies, decrypts and de-duplicates.
#[derive(Debug)]
pub struct InboundSa {
    spi: u32,
    algorithm: Algorithm,
    esn: bool,
    key: SaCrypto,
    window: ReplayWindow,
    counters: SaCounters,
    lifetime: LifetimeTracker,
}

impl InboundSa {
    /// Validates `cfg` (SPI not reserved, key length, replay window), keys the
    /// cipher and allocates the replay bitmap (once).
    pub fn new(cfg: SaConfig) -> Result<Self, SaError> {
        let key = validate(&cfg)?;
        Ok(Self {
            spi: cfg.spi,
            algorithm: cfg.algorithm,
            esn: cfg.esn,
            key,
            window: ReplayWindow::new(cfg.replay_window),
            counters: SaCounters::default(),
            lifetime: LifetimeTracker::new(cfg.spi, cfg.lifetime),
        })
    }

    /// The SPI this SA accepts.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The transform.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether 64-bit sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The anti-replay state (size after rounding, highest number accepted).
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Verifies and decrypts one ESP packet in place.
    ///
    /// `buf` is one whole ESP packet starting at the SPI (for UDP
    /// encapsulation the caller has already stripped the UDP header). Order:
    /// length checks (for CBC also: the ciphertext is a whole number of
    /// blocks) → SPI matches → hard lifetime → cheap replay pre-check
    /// (obviously replayed or too old: no crypto spent) → ESN high bits
    /// inferred (RFC 4303 Appendix A2.2) → ICV verified (for CBC: the HMAC,
    /// compared in constant time, before any decryption) and payload
    /// decrypted in place → padding checked (RFC 4303 §2.4: 1, 2, 3, ...) →
    /// only then the replay window is updated and counters and lifetimes
    /// advanced. Returns the inner packet's range within `buf`.
    ///
    /// Every failure increments the matching counter (`malformed` for
    /// `Malformed`, `WrongSpi` and `BadPadding`; `replay_drops`,
    /// `auth_failures`, `lifetime_drops`) and changes no other state. After an
    /// authentication failure the bytes of `buf` past the IV are unspecified.
    ///
    /// A ciphertext not aligned to 4 bytes is accepted: RFC 4303 §2.4 puts
    /// the alignment duty on the sender, and the ICV already vouches for the
    /// packet.
    pub fn decapsulate(&mut self, buf: &mut [u8]) -> Result<Decapsulated, DecapError> {
        let c = &mut self.counters;
        let bump = |n: &mut u64| *n = n.saturating_add(1);

        let Ok(packet) = EspPacket::new_checked_for(&*buf, self.algorithm) else {
            bump(&mut c.malformed);
            return Err(DecapError::Malformed);
        };
        if let SaCrypto::Cbc(_) = self.key {
            // RFC 4303 §2.4 / RFC 3602 §2.4: whole blocks only (and at least
            // one, which new_checked_for's trailer length already implies).
            let len = packet.payload_range().len();
            if len == 0 || len % self.algorithm.pad_align() != 0 {
                bump(&mut c.malformed);
                return Err(DecapError::Malformed);
            }
        }
        if packet.spi() != self.spi {
            bump(&mut c.malformed);
            return Err(DecapError::WrongSpi);
        }
        if self.lifetime.expired() {
            bump(&mut c.lifetime_drops);
            return Err(DecapError::Expired);
        }
        let low = packet.sequence();
        let seq = if self.esn {
            infer_esn(self.window.top(), self.window.size(), low)
        } else {
            Some(u64::from(low))
        };
        let Some(seq) = seq.filter(|&s| self.window.check(s)) else {
            bump(&mut c.replay_drops);
            return Err(DecapError::Replayed);
        };
        let payload = packet.payload_range();
        let payload_start = payload.start;

        let plaintext = match &self.key {
            SaCrypto::Gcm(key) => {
                let Ok(iv) = <[u8; 8]>::try_from(packet.iv()) else {
                    bump(&mut c.malformed);
                    return Err(DecapError::Malformed);
                };
                let (aad, aad_len) = build_aad(self.spi, seq, self.esn);
                let aad = aad.get(..aad_len).unwrap_or_default();
                let Some(sealed) = buf.get_mut(payload_start..) else {
                    bump(&mut c.malformed);
                    return Err(DecapError::Malformed);
                };
                let Ok(plaintext) = key.open(&iv, aad, sealed) else {
                    bump(&mut c.auth_failures);
                    return Err(DecapError::AuthenticationFailed);
                };
                plaintext
            }
            SaCrypto::Cbc(key) => {
                match key.open(buf, seq, self.esn) {
                    Ok(()) => {}
                    Err(OpenError::Authentication) => {
                        bump(&mut c.auth_failures);
                        return Err(DecapError::AuthenticationFailed);
                    }
                    Err(OpenError::Malformed) => {
                        bump(&mut c.malformed);
                        return Err(DecapError::Malformed);
                    }
                }
                let Some(plaintext) = buf.get_mut(payload) else {
                    bump(&mut c.malformed);
                    return Err(DecapError::Malformed);
                };
                plaintext
            }
        };
        let Ok((trailer, inner_len)) = Trailer::parse(plaintext) else {
            bump(&mut c.malformed);
            return Err(DecapError::BadPadding);
        };

        self.window.update(seq);
        add_bytes(c, inner_len);
        self.lifetime.update(c);
        Ok(Decapsulated {
            next_header: trailer.next_header,
            inner: payload_start..payload_start + inner_len,
        })
    }

    /// Packets and bytes received, and drops by cause.
    pub fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// The next lifetime event, soft before hard, each once.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.lifetime.poll_event()
    }

    /// True once the SA refuses packets (hard lifetime reached).
    pub fn is_expired(&self) -> bool {
        self.lifetime.expired()
    }

    /// Moves the replay window's top to `top` with nothing received, as if
    /// the SA had been running; for ESN tests that start far into the
    /// sequence space.
    #[doc(hidden)]
    pub fn set_replay_top_for_test(&mut self, top: u64) {
        self.window.reset_to(top);
    }
}

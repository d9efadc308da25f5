//! ESP for ipsecgw: the Encapsulating Security Payload (RFC 4303) with
//! AES-GCM-16 (RFC 4106) or a CBC cipher (AES, RFC 3602; legacy 3DES and DES)
//! with HMAC integrity (SHA-1-96, SHA-2 RFC 4868; legacy MD5-96), tunnel
//! mode, 32- and 64-bit (ESN) sequence numbers and an RFC 6479-style
//! anti-replay window.
//!
//! What it does: parses and builds ESP packets in buffers the caller owns
//! ([`OutboundSa::encapsulate`] writes the header into headroom in front of the
//! inner packet and the trailer into tailroom behind it; [`InboundSa::decapsulate`]
//! decrypts in place and returns where the inner packet is), enforces
//! anti-replay, sequence-number exhaustion and byte/packet lifetimes, and keeps
//! per-SA counters. Nothing on the packet path allocates.
//!
//! What it does not do: no sockets, no clock, no threads, no randomness
//! (sans-IO). It does not negotiate keys (that is `ipsecgw-ike`), pick which SA
//! a packet belongs to (the daemon's SPD lookup, helped by [`peek_spi`]), strip
//! UDP encapsulation (RFC 3948: the caller removes the UDP header), or apply
//! time-based lifetimes (the daemon owns the timers and replaces the SA).
//!
//! Secrets: key material lives in [`SaKey`] (zeroized on drop, redacted in
//! `Debug`). The AES-GCM key schedule and the HMAC-SHA1/SHA2 key states live
//! inside `ring`, which does not promise to zeroize them; the CBC key
//! schedules (RustCrypto `aes`, `des`) and the HMAC-MD5 state are zeroized on
//! drop.
#![forbid(unsafe_code)]

mod algorithm;
mod cbc;
mod crypto;
mod error;
mod lifetime;
pub mod replay;
mod sa;
mod seq;
pub mod tun;
pub mod wire;

#[cfg(test)]
mod tests;

pub use algorithm::{Algorithm, CbcCipher, Integrity, ParseAlgorithmError};
pub use error::{DecapError, EncapError, SaError};
pub use lifetime::Lifetime;
pub use sa::{
    Decapsulated, InboundSa, OutboundSa, SaConfig, SaCounters, SaEvent, SaKey,
    DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW,
};

/// The SPI of an ESP packet, or `None` if `esp_packet` is too short to be ESP.
///
/// Cheap and crypto-free: the daemon uses it to route a datagram to its
/// [`InboundSa`] before any work is spent on it. "Too short" means shorter than
/// the smallest packet any supported algorithm can produce (header, IV, ICV and
/// the two trailer bytes), so runts are dropped before the SA lookup.
pub fn peek_spi(esp_packet: &[u8]) -> Option<u32> {
    if esp_packet.len() < wire::MIN_PACKET_LEN {
        return None;
    }
    let spi = esp_packet.get(wire::field::SPI)?;
    Some(u32::from_be_bytes(spi.try_into().ok()?))
}

//! What the fuzz targets and the seed generator (`seeds.rs`) share: the input
//! framings, the responder under test and the ESP SA configurations.
//!
//! The seed generator records real exchanges against exactly the responder
//! the `ike_responder` target builds (same config, same RNG seed, same
//! virtual clock steps), so replaying a recorded trace reproduces the
//! responder's state byte for byte and its IKE_AUTH decrypts: the fuzzer
//! starts past parsing, inside the state machine.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ipsecgw_esp::{Algorithm, Lifetime, SaConfig, SaKey};
use ipsecgw_ike::wire::Message;
use ipsecgw_ike::{identity_from_str, ConnectionConfig, Endpoint, EndpointConfig, Event, Transmit};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

// ---- IKE responder ---------------------------------------------------------

/// The virtual clock's unit: each datagram chunk advances time by a whole
/// number of ticks first.
pub const TICK: Duration = Duration::from_millis(500);
/// Most ticks one chunk can advance (6 bits): 31.5 s, past the half-open
/// timeout (30 s).
pub const MAX_TICKS: u8 = 0x3f;
/// At most this many datagrams per input, so one input stays cheap.
pub const MAX_CHUNKS: usize = 32;
/// After the last chunk the clock runs this much further, so every
/// retransmission, DPD and half-open expiry gets to fire.
pub const FINAL_ADVANCE: Duration = Duration::from_secs(300);
/// Timer firings allowed per advance: far more than any legitimate schedule
/// needs in [`FINAL_ADVANCE`]; hitting it means a timer livelock.
pub const MAX_TIMER_STEPS: usize = 1000;
/// A NAT-keepalive datagram's one octet (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: u8 = 0xff;
/// The responder's RNG seed (SPIs, nonces, DH secrets, cookie secret).
pub const RESPONDER_SEED: u64 = 0x1953_2d1b;

/// The responder's addresses and the peers its connections name.
pub const RESPONDER_V4: &str = "198.51.100.2";
pub const PEER_V4: &str = "198.51.100.1";
pub const RESPONDER_V6: &str = "2001:db8::2";
pub const PEER_V6: &str = "2001:db8::1";
pub const PSK: &[u8] = b"a shared secret for fuzzing";

/// Which configured peer a datagram comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Connection 0: IPv4, identities are the addresses, DPD on, short
    /// lifetimes.
    V4,
    /// Connection 1: IPv6, FQDN identities, forced UDP encapsulation.
    V6,
}

impl Peer {
    pub fn addr(self) -> IpAddr {
        match self {
            Peer::V4 => PEER_V4.parse().expect("constant"),
            Peer::V6 => PEER_V6.parse().expect("constant"),
        }
    }

    /// The responder's address this peer talks to.
    pub fn responder_addr(self) -> IpAddr {
        match self {
            Peer::V4 => RESPONDER_V4.parse().expect("constant"),
            Peer::V6 => RESPONDER_V6.parse().expect("constant"),
        }
    }
}

// One call per side of each connection reads better than a builder here.
#[allow(clippy::too_many_arguments)]
fn connection(
    name: &str,
    remote: &str,
    local_id: &str,
    remote_id: &str,
    ike: &[&str],
    esp: &[&str],
    local_ts: &[&str],
    remote_ts: &[&str],
) -> ConnectionConfig {
    ConnectionConfig {
        name: name.into(),
        remote_addr: remote.parse().expect("constant"),
        local_id: identity_from_str(local_id),
        remote_id: identity_from_str(remote_id),
        psk: Zeroizing::new(PSK.to_vec()),
        ike_proposals: ike.iter().map(|p| p.parse().expect("constant")).collect(),
        esp_proposals: esp.iter().map(|p| p.parse().expect("constant")).collect(),
        local_ts: local_ts
            .iter()
            .map(|t| t.parse().expect("constant"))
            .collect(),
        remote_ts: remote_ts
            .iter()
            .map(|t| t.parse().expect("constant"))
            .collect(),
        force_encap: false,
        dpd_delay: None,
        ike_lifetime: None,
        child_lifetime: None,
        pfs: None,
    }
}

/// The responder's two connections.
pub fn responder_config() -> EndpointConfig {
    let mut v4 = connection(
        "v4",
        PEER_V4,
        RESPONDER_V4,
        PEER_V4,
        &[
            "aes256gcm16-prfsha256-curve25519",
            "aes128gcm16-prfsha256-ecp256",
        ],
        &["aes256gcm16", "aes128gcm16-esn"],
        &["192.168.4.0/24", "192.168.5.0/24[tcp/80-443]"],
        &["10.1.1.0/24"],
    );
    v4.dpd_delay = Some(Duration::from_secs(10));
    // Short enough that the final advance makes the responder rekey.
    v4.child_lifetime = Some(Duration::from_secs(120));
    v4.ike_lifetime = Some(Duration::from_secs(200));
    let mut v6 = connection(
        "v6",
        PEER_V6,
        "@gw.example",
        "@peer6.example",
        &["aes128gcm16-prfsha256-ecp256"],
        &["aes128gcm16"],
        &["2001:db8:4::/48"],
        &["2001:db8:1::/48"],
    );
    v6.force_encap = true;
    EndpointConfig {
        connections: vec![v4, v6],
        retransmit_timeout: Duration::from_secs(1),
        retransmit_tries: 3,
        // Low, so a few half-open SAs reach the COOKIE code (RFC 7296 §2.6).
        cookie_threshold: 2,
    }
}

/// The initiator side of [`responder_config`]'s connection for `peer`, for
/// the seed generator.
pub fn initiator_config(peer: Peer, ike: &[&str], esp: &[&str]) -> EndpointConfig {
    let c = match peer {
        Peer::V4 => connection(
            "v4",
            RESPONDER_V4,
            PEER_V4,
            RESPONDER_V4,
            ike,
            esp,
            &["10.1.1.0/24"],
            &["192.168.4.0/24"],
        ),
        Peer::V6 => {
            let mut c = connection(
                "v6",
                RESPONDER_V6,
                "@peer6.example",
                "@gw.example",
                ike,
                esp,
                &["2001:db8:1::/48"],
                &["2001:db8:4::/56"],
            );
            c.force_encap = true;
            c
        }
    };
    EndpointConfig {
        connections: vec![c],
        ..EndpointConfig::default()
    }
}

/// One datagram of an `ike_responder` input.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Ticks of [`TICK`] to advance the clock by before delivering.
    pub ticks: u8,
    /// Which peer sends it.
    pub peer: Peer,
    /// Sent to and from port 4500 (NAT-T, the non-ESP marker already
    /// stripped) rather than 500.
    pub nat_t: bool,
    /// The datagram; empty means "only advance the clock".
    pub data: &'a [u8],
}

/// Splits an `ike_responder` input into chunks: each is a control byte
/// (bit 7: port 4500; bit 6: from the IPv6 peer; bits 0-5: ticks), a
/// big-endian u16 length and that many bytes (fewer if the input ends).
pub fn chunks(mut input: &[u8]) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    while out.len() < MAX_CHUNKS {
        let [ctl, rest @ ..] = input else { break };
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => (rest.len(), rest),
        };
        let (data, rest) = rest.split_at(len.min(rest.len()));
        out.push(Chunk {
            ticks: ctl & MAX_TICKS,
            peer: if ctl & 0x40 != 0 { Peer::V6 } else { Peer::V4 },
            nat_t: ctl & 0x80 != 0,
            data,
        });
        input = rest;
    }
    out
}

/// Appends one chunk in the framing [`chunks`] reads.
pub fn encode_chunk(out: &mut Vec<u8>, chunk: &Chunk<'_>) {
    let mut ctl = chunk.ticks.min(MAX_TICKS);
    if chunk.peer == Peer::V6 {
        ctl |= 0x40;
    }
    if chunk.nat_t {
        ctl |= 0x80;
    }
    out.push(ctl);
    let len = u16::try_from(chunk.data.len()).expect("an IKE datagram fits in u16");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(chunk.data);
}

/// The responder under test with its virtual clock, driven the way the
/// daemon drives it: input, then drain transmits, then events, then the
/// next deadline. Checks the driver-facing invariants on the way.
pub struct Responder {
    pub ep: Endpoint,
    pub now: Instant,
    /// Everything sent, in order (the fuzz target clears it, the seed
    /// generator routes it to its initiators).
    pub transmits: Vec<Transmit>,
    pub events: Vec<Event>,
}

impl Responder {
    pub fn new(origin: Instant) -> Self {
        Self {
            ep: Endpoint::new(
                responder_config(),
                Box::new(ChaCha20Rng::seed_from_u64(RESPONDER_SEED)),
            ),
            now: origin,
            transmits: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Fires every deadline up to `to`, each at its own instant, then sets
    /// the clock to `to`.
    pub fn advance(&mut self, to: Instant) {
        for _ in 0..MAX_TIMER_STEPS {
            match self.ep.poll_timeout() {
                Some(deadline) if deadline <= to => {
                    self.now = self.now.max(deadline);
                    let now = self.now;
                    self.ep.handle_timeout(now);
                    self.drain();
                    // A deadline at or before `now` after handling it would
                    // make the daemon's driver spin (STYLE: never return a
                    // deadline in the past).
                    if let Some(next) = self.ep.poll_timeout() {
                        assert!(
                            next > now,
                            "poll_timeout() is not in the future after handle_timeout(now)"
                        );
                    }
                }
                _ => {
                    self.now = self.now.max(to);
                    return;
                }
            }
        }
        panic!("more than {MAX_TIMER_STEPS} timer firings in one advance: a timer livelock");
    }

    /// Delivers one datagram from `peer` at the current time.
    pub fn deliver(&mut self, peer: Peer, nat_t: bool, data: &[u8]) {
        let port = if nat_t { 4500 } else { 500 };
        let local = SocketAddr::new(peer.responder_addr(), port);
        let remote = SocketAddr::new(peer.addr(), port);
        let now = self.now;
        self.ep.handle_datagram(now, local, remote, data);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            // Whatever we send must be a well-formed IKE message, or a NAT
            // keepalive (RFC 3948 §2.3).
            if t.data == [NAT_KEEPALIVE] {
                self.transmits.push(t);
                continue;
            }
            if let Err(e) = Message::parse(&t.data) {
                panic!("the responder sent a message that does not parse: {e}");
            }
            self.transmits.push(t);
        }
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
        // Asking for the deadline is part of every driver step.
        let _ = self.ep.poll_timeout();
    }
}

/// Replays an `ike_responder` input against a fresh [`Responder`] (what
/// the fuzz target does), then lets the clock run [`FINAL_ADVANCE`] on if
/// `settle`. Returns the responder, every event it raised and every
/// datagram it sent.
pub fn replay(data: &[u8], settle: bool) -> (Responder, Vec<Event>, Vec<Transmit>) {
    // The virtual clock needs an origin; only differences matter, and no
    // library code sees it (clippy.toml bans clock reads in the libraries).
    #[allow(clippy::disallowed_methods)]
    let origin = Instant::now();
    let mut r = Responder::new(origin);
    let mut events = Vec::new();
    let mut sent = Vec::new();
    for c in chunks(data) {
        let to = r.now + TICK * u32::from(c.ticks);
        r.advance(to);
        if !c.data.is_empty() {
            r.deliver(c.peer, c.nat_t, c.data);
        }
        sent.append(&mut r.transmits);
        events.append(&mut r.events);
        let _ = r.ep.status(r.now);
    }
    if settle {
        let end = r.now + FINAL_ADVANCE;
        r.advance(end);
        sent.append(&mut r.transmits);
        events.append(&mut r.events);
    }
    (r, events, sent)
}

// ---- ESP -------------------------------------------------------------------

/// The inbound SA's SPI.
pub const ESP_SPI: u32 = 0x0c0f_fee0;
/// Where a "late start" SA begins its sequence numbers: just below the
/// 32-bit boundary, so ESN inference and the wrap are near.
pub const ESP_LATE_START: u64 = 0xffff_fff0;

/// The SA configuration an `esp_decap` input's first byte selects: bit 0
/// AES-256 (else AES-128), bit 1 ESN, bits 2-3 the replay window (64, 128,
/// 1024, 32), bit 4 tight packet lifetimes (soft 2, hard 4), bit 5 late
/// start (see [`ESP_LATE_START`]).
pub fn esp_config(flags: u8) -> SaConfig {
    let algorithm = if flags & 1 != 0 {
        Algorithm::AesGcm16_256
    } else {
        Algorithm::AesGcm16_128
    };
    let key = (0..algorithm.key_len())
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(0x5c))
        .collect();
    let lifetime = if flags & 0x10 != 0 {
        Lifetime {
            soft_packets: Some(2),
            hard_packets: Some(4),
            ..Lifetime::default()
        }
    } else {
        Lifetime::default()
    };
    SaConfig {
        spi: ESP_SPI,
        algorithm,
        key: SaKey::new(key),
        esn: flags & 2 != 0,
        replay_window: [64, 128, 1024, 32][usize::from((flags >> 2) & 3)],
        lifetime,
    }
}

/// Whether the SA starts late (see [`esp_config`]).
pub fn esp_late_start(flags: u8) -> bool {
    flags & 0x20 != 0
}

/// Splits an `esp_decap` input after its flags byte into packets: a
/// big-endian u16 length and that many bytes (fewer if the input ends).
pub fn esp_packets(mut input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < MAX_CHUNKS && !input.is_empty() {
        let (len, rest) = match input {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => (input.len(), input),
        };
        let (packet, rest) = rest.split_at(len.min(rest.len()));
        out.push(packet);
        input = rest;
    }
    out
}

/// Appends one packet in the framing [`esp_packets`] reads.
pub fn encode_esp_packet(out: &mut Vec<u8>, packet: &[u8]) {
    let len = u16::try_from(packet.len()).expect("test packets fit in u16");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
}

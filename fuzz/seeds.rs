//! Writes the seed corpora in fuzz/seeds/<target>/ from the libraries
//! themselves, so the fuzzer starts from inputs that get deep:
//!
//! - `ike_responder`: real exchanges between initiator endpoints and the very
//!   responder the target builds (same config, RNG seed and clock steps), so
//!   on replay the responder derives the same keys and the IKE_AUTH (and
//!   everything after it) decrypts;
//! - `ike_message`: every datagram of those exchanges, both directions;
//! - `esp_decap`: packets sealed by an `OutboundSa` with the target's key;
//! - `selector_parse`: selector texts and IPv4/IPv6 packets.
//!
//! Run: `cd fuzz && cargo run --bin gen_seeds` (any toolchain flags; the
//! output depends on nothing but this code and the libraries). Replaces the
//! files it writes and leaves others alone.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipsecgw_esp::{Lifetime, OutboundSa};
use ipsecgw_fuzz::{
    encode_chunk, encode_esp_packet, esp_config, esp_late_start, initiator_config, replay, Chunk,
    Peer, Responder, ESP_LATE_START, MAX_TICKS, NAT_KEEPALIVE, TICK,
};
use ipsecgw_ike::{Endpoint, EndpointConfig, Event};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Initiator {
    ep: Endpoint,
    peer: Peer,
}

/// Runs initiators against the fuzz target's responder on a tick-aligned
/// virtual clock and records what the responder receives, in the
/// `ike_responder` framing.
struct Recorder {
    origin: Instant,
    t: Instant,
    last_recorded: Instant,
    r: Responder,
    inits: Vec<Initiator>,
    /// Indices (in send order) of the responder's datagrams to lose.
    lose: BTreeSet<usize>,
    sent_by_responder: usize,
    trace: Vec<u8>,
    /// Every datagram, both directions.
    messages: Vec<Vec<u8>>,
    /// What the responder sent, in order (lost ones too).
    responder_sent: Vec<Vec<u8>>,
    events: Vec<Event>,
}

impl Recorder {
    fn new(inits: Vec<(EndpointConfig, Peer, u64)>) -> Self {
        #[allow(clippy::disallowed_methods)]
        let origin = Instant::now();
        Self {
            origin,
            t: origin,
            last_recorded: origin,
            r: Responder::new(origin),
            inits: inits
                .into_iter()
                .map(|(cfg, peer, seed)| Initiator {
                    ep: Endpoint::new(cfg, Box::new(ChaCha20Rng::seed_from_u64(seed))),
                    peer,
                })
                .collect(),
            lose: BTreeSet::new(),
            sent_by_responder: 0,
            trace: Vec::new(),
            messages: Vec::new(),
            responder_sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn initiate(&mut self, i: usize) {
        let init = &mut self.inits[i];
        let local = SocketAddr::new(init.peer.addr(), 500);
        init.ep.initiate(self.t, 0, local);
    }

    /// The first tick at or after `at`.
    fn ceil_tick(&self, at: Instant) -> Instant {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let tick = TICK.as_nanos();
        let ticks = since.div_ceil(tick);
        self.origin + TICK * u32::try_from(ticks).expect("short runs")
    }

    fn record(&mut self, peer: Peer, nat_t: bool, data: &[u8]) {
        let elapsed = self.t - self.last_recorded;
        let mut ticks = (elapsed.as_nanos() / TICK.as_nanos()) as u64;
        while ticks > u64::from(MAX_TICKS) {
            encode_chunk(
                &mut self.trace,
                &Chunk {
                    ticks: MAX_TICKS,
                    peer,
                    nat_t,
                    data: &[],
                },
            );
            ticks -= u64::from(MAX_TICKS);
        }
        encode_chunk(
            &mut self.trace,
            &Chunk {
                ticks: ticks as u8,
                peer,
                nat_t,
                data,
            },
        );
        self.last_recorded = self.t;
    }

    /// Moves datagrams and time until everything is quiet and no deadline
    /// falls within `limit`.
    fn run(&mut self, limit: Duration) {
        let end = self.ceil_tick(self.t + limit);
        for _ in 0..10_000 {
            let mut flight = Vec::new();
            for (i, init) in self.inits.iter_mut().enumerate() {
                while let Some(tx) = init.ep.poll_transmit() {
                    flight.push((i, tx));
                }
                while let Some(e) = init.ep.poll_event() {
                    self.events.push(e);
                }
            }
            let answers = std::mem::take(&mut self.r.transmits);
            if !flight.is_empty() || !answers.is_empty() {
                self.t += TICK;
                self.r.advance(self.t);
                for (i, tx) in flight {
                    if tx.data == [NAT_KEEPALIVE] {
                        // The driver drops keepalives before IKE sees them.
                        continue;
                    }
                    let peer = self.inits[i].peer;
                    let nat_t = tx.local.port() == 4500;
                    self.record(peer, nat_t, &tx.data);
                    self.messages.push(tx.data.clone());
                    self.r.deliver(peer, nat_t, &tx.data);
                }
                for tx in answers {
                    let index = self.sent_by_responder;
                    self.sent_by_responder += 1;
                    if tx.data == [NAT_KEEPALIVE] {
                        continue;
                    }
                    self.messages.push(tx.data.clone());
                    self.responder_sent.push(tx.data.clone());
                    if self.lose.contains(&index) {
                        continue;
                    }
                    // Every initiator on that address sees it; those whose
                    // SPI it is not drop it.
                    for init in &mut self.inits {
                        if init.peer.addr() == tx.remote.ip() {
                            init.ep
                                .handle_datagram(self.t, tx.remote, tx.local, &tx.data);
                        }
                    }
                }
                continue;
            }
            let next = self
                .inits
                .iter()
                .filter_map(|i| i.ep.poll_timeout())
                .chain(self.r.ep.poll_timeout())
                .min();
            match next {
                Some(d) if d <= end => {
                    self.t = self.ceil_tick(d.max(self.t));
                    self.r.advance(self.t);
                    let t = self.t;
                    for init in &mut self.inits {
                        if init.ep.poll_timeout().is_some_and(|d| d <= t) {
                            init.ep.handle_timeout(t);
                        }
                    }
                }
                _ => {
                    self.t = self.t.max(end);
                    self.r.advance(self.t);
                    return;
                }
            }
        }
        panic!("no quiescence after 10000 steps");
    }

    fn ike_ups(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::IkeUp { .. }))
            .count()
    }
}

fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::IkeUp { .. } => "IkeUp".to_string(),
            Event::ChildUp(c) => format!("ChildUp {:08x}/{:08x}", c.inbound_spi, c.outbound_spi),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The trace replayed the way the fuzz target does must drive the
/// responder through the same events: otherwise the seed does not reach
/// what it was recorded for.
fn check_replay(name: &str, rec: &Recorder) {
    let (_, events, sent) = replay(&rec.trace, false);
    let sent: Vec<&[u8]> = sent.iter().map(|t| t.data.as_slice()).collect();
    let want_sent: Vec<&[u8]> = rec.responder_sent.iter().map(Vec::as_slice).collect();
    assert!(
        !sent.is_empty() && want_sent.starts_with(&sent),
        "{name}: the replayed responder sends other datagrams ({} vs {} recorded)",
        sent.len(),
        want_sent.len()
    );
    let got = summary(&events);
    let want = summary(&rec.r.events);
    // The recording may run the responder's clock past the last datagram.
    assert!(
        want.starts_with(&got),
        "{name}: the replayed trace diverges:\n replayed {got:?}\n recorded {want:?}"
    );
    println!(
        "{name}: {} bytes; replayed, the responder sends {} datagrams, events {got:?}",
        rec.trace.len(),
        sent.len()
    );
}

fn v4_initiator(ike: &[&str], esp: &[&str], seed: u64) -> (EndpointConfig, Peer, u64) {
    (initiator_config(Peer::V4, ike, esp), Peer::V4, seed)
}

const IKE_V4: &str = "aes256gcm16-prfsha256-curve25519";
const ESP_V4: &str = "aes256gcm16";

struct Out {
    dir: PathBuf,
}

impl Out {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.dir.join(target);
        fs::create_dir_all(&dir).expect("create the seed directory");
        fs::write(dir.join(name), bytes).expect("write a seed");
    }
}

fn ike(out: &Out) {
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keep = |name: &str, rec: &Recorder| {
        check_replay(name, rec);
        out.write("ike_responder", &format!("{name}.bin"), &rec.trace);
        for (i, m) in rec.messages.iter().enumerate() {
            messages.push((format!("{name}-{i:02}.bin"), m.clone()));
        }
    };

    // IKE_SA_INIT only.
    let mut rec = Recorder::new(vec![v4_initiator(&[IKE_V4], &[ESP_V4], 1)]);
    rec.lose = (0..100).collect();
    rec.initiate(0);
    rec.run(Duration::from_millis(500));
    keep("v4_sa_init", &rec);

    // The whole life of an IKE SA: IKE_SA_INIT, IKE_AUTH, the responder's
    // DPD answered, then the initiator deletes it.
    let mut rec = Recorder::new(vec![v4_initiator(&[IKE_V4], &[ESP_V4], 1)]);
    rec.initiate(0);
    rec.run(Duration::from_secs(2));
    assert_eq!(rec.ike_ups(), 1, "v4 exchange did not complete");
    rec.run(Duration::from_secs(25));
    let t = rec.t;
    rec.inits[0].ep.delete(t, 0);
    rec.run(Duration::from_secs(2));
    keep("v4_full", &rec);

    // Rekeys by the initiator (CREATE_CHILD_SA, RFC 7296 §1.3): the CHILD
    // SA, then the IKE SA.
    let mut rec = Recorder::new(vec![v4_initiator(&[IKE_V4], &[ESP_V4], 9)]);
    rec.initiate(0);
    rec.run(Duration::from_secs(2));
    assert_eq!(rec.ike_ups(), 1, "rekey exchange did not start");
    let t = rec.t;
    rec.inits[0].ep.rekey_child(t, 0);
    rec.run(Duration::from_secs(2));
    let t = rec.t;
    rec.inits[0].ep.rekey_ike(t, 0);
    rec.run(Duration::from_secs(2));
    keep("v4_rekey", &rec);

    // INVALID_KE_PAYLOAD: the initiator guesses ecp256, the responder
    // prefers curve25519 (RFC 7296 §1.2); then ESN for the CHILD SA.
    let mut rec = Recorder::new(vec![v4_initiator(
        &["aes128gcm16-prfsha256-ecp256", IKE_V4],
        &["aes128gcm16-esn"],
        3,
    )]);
    rec.initiate(0);
    rec.run(Duration::from_secs(3));
    assert_eq!(rec.ike_ups(), 1, "INVALID_KE exchange did not complete");
    keep("v4_invalid_ke", &rec);

    // Lost responses: the initiator retransmits IKE_SA_INIT and IKE_AUTH,
    // the responder answers from its cache.
    let mut rec = Recorder::new(vec![v4_initiator(&[IKE_V4], &[ESP_V4], 4)]);
    rec.lose = [0, 2].into_iter().collect();
    rec.initiate(0);
    rec.run(Duration::from_secs(8));
    assert_eq!(rec.ike_ups(), 1, "retransmission exchange did not complete");
    keep("v4_retransmit", &rec);

    // COOKIE: three half-open SAs from one address (threshold 2).
    let mut rec = Recorder::new(vec![
        v4_initiator(&[IKE_V4], &[ESP_V4], 5),
        v4_initiator(&[IKE_V4], &[ESP_V4], 6),
        v4_initiator(&[IKE_V4], &[ESP_V4], 7),
    ]);
    rec.lose = [0, 1].into_iter().collect();
    rec.initiate(0);
    rec.initiate(1);
    rec.run(Duration::from_millis(500));
    rec.initiate(2);
    rec.run(Duration::from_secs(3));
    keep("v4_cookie", &rec);

    // IPv6, FQDN identities, forced UDP encapsulation (port 4500 after
    // IKE_SA_INIT), then the responder's DPD goes unanswered... not here:
    // connection 1 has none, so the initiator deletes.
    let mut rec = Recorder::new(vec![(
        initiator_config(
            Peer::V6,
            &["aes128gcm16-prfsha256-ecp256"],
            &["aes128gcm16"],
        ),
        Peer::V6,
        8,
    )]);
    rec.initiate(0);
    rec.run(Duration::from_secs(2));
    assert_eq!(rec.ike_ups(), 1, "v6 exchange did not complete");
    let t = rec.t;
    rec.inits[0].ep.delete(t, 0);
    rec.run(Duration::from_secs(2));
    keep("v6_natt", &rec);

    // A message the strongSwan test suite captured (wire/message.rs tests).
    messages.push(("captured_sa_init.bin".into(), hex(CAPTURED_SA_INIT)));
    let mut seen = BTreeSet::new();
    for (name, m) in messages {
        if seen.insert(m.clone()) {
            out.write("ike_message", &name, &m);
        }
    }
}

/// rusticata/ipsec-parser's IKEV2_MSG, as in crates/ike/src/wire/message.rs.
const CAPTURED_SA_INIT: &str = concat!(
    "bca1937a7c2ff5b9000000000000000021202208000000000000012c220000a4",
    "02000024010100030300000c01000014800e0080030000080200000500000008",
    "0400001c02000024020100030300000c01000014800e00800300000802000005",
    "00000008040000130200002c030100040300000c0100000d800e008003000008",
    "0300000c0300000802000005000000080400001c0000002c040100040300000c",
    "0100000d800e0080030000080300000c03000008020000050000000804000013",
    "28000048001c00004d23b8f22c03ae3ab40af9fa76c23c7ba6c56981e13c32fb",
    "c36954c87a96cbfa34637c6f31b650ce5d8717005ce793c2eeaff1c566280811",
    "d942d1b8e80268bb0000002499e2a373cc44ad10fb78dda25206a4a9b7558e0d",
    "8269799c6800362c46a0bf7b",
);

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}

/// A plausible IPv4 or IPv6 packet of `len` bytes.
fn inner_packet(version: u8, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
    if let Some(first) = p.first_mut() {
        *first = version << 4 | if version == 4 { 5 } else { 0 };
    }
    p
}

/// The ESP packet, or `None` once the SA is spent (a 32-bit counter at its end).
fn seal(sa: &mut OutboundSa, inner: &[u8], next_header: u8) -> Option<Vec<u8>> {
    let front = sa.headroom();
    let mut buf = vec![0u8; front + inner.len() + sa.tailroom()];
    buf[front..front + inner.len()].copy_from_slice(inner);
    let range = sa
        .encapsulate(&mut buf, front..front + inner.len(), next_header)
        .ok()?;
    Some(buf[range].to_vec())
}

fn esp(out: &Out) {
    // (flags, what to send): a few sizes and next headers, a duplicate, a
    // dummy packet (59), an ESN wrap, lifetimes running out.
    let cases: &[(&str, u8)] = &[
        ("aes128", 0x00),
        ("aes256", 0x01),
        ("aes128_esn", 0x02),
        ("aes256_window128", 0x05),
        ("aes256_lifetime", 0x11),
        ("aes128_esn_late", 0x22),
        ("aes256_late_window32", 0x2d),
    ];
    for &(name, flags) in cases {
        // The sender has no lifetimes of its own: the receiver's run out.
        let mut cfg = esp_config(flags);
        cfg.lifetime = Lifetime::default();
        let mut sa = OutboundSa::new(cfg).expect("valid config");
        if esp_late_start(flags) {
            sa.set_next_sequence_for_test(ESP_LATE_START);
        }
        let mut input = vec![flags];
        let mut packets = Vec::new();
        for (len, version, nh) in [(40, 4, 4), (0, 4, 59), (61, 6, 41), (1, 4, 4), (300, 4, 4)] {
            packets.extend(seal(&mut sa, &inner_packet(version, len), nh));
        }
        if esp_late_start(flags) {
            // Across the 32-bit boundary (with ESN: sequence 2^32 and on).
            for _ in 0..16 {
                packets.extend(seal(&mut sa, &inner_packet(4, 28), 4));
            }
        }
        // Out of order, and one duplicate.
        packets.swap(1, 3);
        packets.push(packets[2].clone());
        for p in &packets {
            encode_esp_packet(&mut input, p);
        }
        out.write("esp_decap", &format!("{name}.bin"), &input);
        // Single packets, unframed length included, for quick starts.
        let mut one = vec![flags];
        encode_esp_packet(&mut one, &packets[0]);
        out.write("esp_decap", &format!("{name}_one.bin"), &one);
    }
}

fn selectors(out: &Out) {
    let texts = [
        "10.1.1.0/24",
        "2001:db8::/32",
        "0.0.0.0/0",
        "::/0",
        "10.0.0.1",
        "2001:db8::1",
        " 10.0.0.1 - 10.0.0.9 ",
        "10.0.0.0-10.0.0.255",
        "2001:db8::1..2001:db8::9",
        "10.1.1.5..10.1.1.9[tcp/80-90]",
        "10.1.1.0/24[UDP/53-53]",
        "10.1.1.0/24[icmp]",
        "10.1.1.0/24[47]",
        "10.1.1.0/24[any/0-1023]",
        "10.1.1.0/24[tcp/0-65535]",
        "::ffff:10.0.0.1..::ffff:10.0.0.9[icmpv6/1]",
        "2001:db8::/48[sctp/5000-6000]",
    ];
    for (i, t) in texts.iter().enumerate() {
        out.write("selector_parse", &format!("text_{i:02}.txt"), t.as_bytes());
    }
    // IPv4 TCP, UDP, ICMP; a non-first fragment; IPv6 UDP behind hop-by-hop
    // and fragment headers; ICMPv6.
    let packets: [(&str, &str); 6] = [
        (
            "v4_tcp",
            "45000028 0001 0000 40 06 0000 0a010105 c0a8040a  d431 0050 00000000 00000000 5002ffff 00000000",
        ),
        (
            "v4_udp",
            "4500001c 0002 0000 40 11 0000 0a010105 c0a8040a  e000 0035 0008 0000",
        ),
        (
            "v4_icmp",
            "4500001c 0003 0000 40 01 0000 0a010105 c0a8040a  0800 f7ff 0000 0000",
        ),
        (
            "v4_fragment",
            "45000020 0004 0010 40 11 0000 0a010105 c0a8040a  0102030405060708 090a0b0c",
        ),
        (
            "v6_hbh_frag_udp",
            "60000000 0018 00 40 20010db8000100000000000000000005 20010db8000400000000000000000010
             2c 00 0000 00000000  11 00 0000 00000001  1234 0035 0008 0000",
        ),
        (
            "v6_icmpv6",
            "60000000 0008 3a 40 20010db8000100000000000000000005 20010db8000400000000000000000010
             8000 0000 0000 0000",
        ),
    ];
    for (name, h) in packets {
        out.write("selector_parse", &format!("{name}.bin"), &hex(h));
    }
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    let out = Out { dir };
    ike(&out);
    esp(&out);
    selectors(&out);
    println!("seeds written to {}", out.dir.display());
}

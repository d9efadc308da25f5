//! Many IKE SAs against one responder, in memory: N initiators (one per
//! connection, each from its own address) bring up an IKE SA and its first
//! CHILD SA with one responder that has N connections. Prints the time per
//! handshake for the first and the last thousand (lookup cost must not grow
//! with the number of SAs), the responder's `poll_timeout` cost at the end,
//! and the responder's memory per IKE SA (resident set growth / N).
//!
//! `cargo run --release -p ipsecgw-ike --example scale -- 10000`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "a measurement program: the clock is what it reads, failures end it"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipsecgw_ike::{identity_from_str, ConnectionConfig, Endpoint, EndpointConfig, Event};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

const RESPONDER: &str = "198.51.100.2:500";
const PROPOSAL: &str = "aes256gcm16-prfsha256-curve25519";

/// The i-th initiator's address: 10.0.0.0/8, one per connection.
fn peer(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i + 1))
}

fn conn(i: u32, me: IpAddr, other: IpAddr, responder_side: bool) -> ConnectionConfig {
    // Each initiator protects its own /32 behind it; the responder a VPC.
    let (local, remote) = if responder_side {
        ("192.168.0.0/16".to_owned(), format!("{}/32", peer(i)))
    } else {
        (format!("{}/32", peer(i)), "192.168.0.0/16".to_owned())
    };
    ConnectionConfig {
        name: format!("c{i}"),
        remote_addr: other,
        local_id: identity_from_str(&me.to_string()),
        remote_id: identity_from_str(&other.to_string()),
        psk: Zeroizing::new(b"a scale test pre-shared key".to_vec()),
        ike_proposals: vec![PROPOSAL.parse().unwrap()],
        esp_proposals: vec!["aes256gcm16".parse().unwrap()],
        local_ts: vec![local.parse().unwrap()],
        remote_ts: vec![remote.parse().unwrap()],
        force_encap: false,
        dpd_delay: Some(Duration::from_secs(30)),
        ike_lifetime: Some(Duration::from_secs(86_400)),
        child_lifetime: Some(Duration::from_secs(86_400)),
        pfs: None,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N: a number of IKE SAs"))
        .unwrap_or(10_000);
    let responder_addr: SocketAddr = RESPONDER.parse().unwrap();
    let before_config = rss_kib();
    let mut responder = Endpoint::new(
        EndpointConfig {
            connections: (0..n)
                .map(|i| conn(i, responder_addr.ip(), peer(i), true))
                .collect(),
            // Every initiator starts at once here, as after a restart.
            cookie_threshold: usize::MAX,
            ..Default::default()
        },
        Box::new(ChaCha20Rng::seed_from_u64(1)),
    );
    let before_sas = rss_kib();
    let now = Instant::now();
    let start = Instant::now();
    let mut per_handshake = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t0 = Instant::now();
        let me = SocketAddr::new(peer(i), 500);
        let mut init = Endpoint::new(
            EndpointConfig {
                connections: vec![conn(i, me.ip(), responder_addr.ip(), false)],
                ..Default::default()
            },
            Box::new(ChaCha20Rng::seed_from_u64(u64::from(i) + 2)),
        );
        init.initiate(now, 0, me);
        let mut up = false;
        for _ in 0..8 {
            while let Some(t) = init.poll_transmit() {
                responder.handle_datagram(now, responder_addr, me, &t.data);
                // The daemon asks for the next deadline after every input.
                let _ = responder.poll_timeout();
            }
            while let Some(t) = responder.poll_transmit() {
                init.handle_datagram(now, me, responder_addr, &t.data);
            }
            while let Some(e) = init.poll_event() {
                up |= matches!(e, Event::ChildUp(_));
            }
            while responder.poll_event().is_some() {}
            if up {
                break;
            }
        }
        assert!(up, "handshake {i} did not complete");
        per_handshake.push(t0.elapsed());
    }
    let total = start.elapsed();
    let after = rss_kib();
    let t0 = Instant::now();
    let rounds = 100;
    for _ in 0..rounds {
        let _ = responder.poll_timeout();
    }
    let poll = t0.elapsed() / rounds;
    let t0 = Instant::now();
    responder.handle_timeout(now + Duration::from_secs(1));
    let timeout = t0.elapsed();
    let k = per_handshake.len().min(1000);
    let avg = |d: &[Duration]| d.iter().sum::<Duration>() / d.len().max(1) as u32;
    let established = responder.status(now).len();
    println!("IKE SAs established against one responder: {established} (of {n})");
    println!(
        "total {:.2} s, {:.0} handshakes/s (both ends in this one thread)",
        total.as_secs_f64(),
        f64::from(n) / total.as_secs_f64()
    );
    println!(
        "per handshake: first {k} {:?}, last {k} {:?}",
        avg(&per_handshake[..k]),
        avg(&per_handshake[per_handshake.len() - k..])
    );
    println!(
        "responder poll_timeout with {established} SAs: {poll:?}; handle_timeout: {timeout:?}"
    );
    println!(
        "responder memory: {} KiB for {n} connection configs, {} KiB for {established} IKE SAs ({} bytes per IKE SA with its CHILD SA keys)",
        before_sas.saturating_sub(before_config),
        after.saturating_sub(before_sas),
        after.saturating_sub(before_sas) * 1024 / (established.max(1) as u64)
    );
}

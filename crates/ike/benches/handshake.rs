//! IKE_SA_INIT + IKE_AUTH handshakes: the whole exchange (both ends, in
//! memory) and the responder's share of it, which bounds how many
//! handshakes one responder core completes per second.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ipsecgw_ike::{identity_from_str, ConnectionConfig, Endpoint, EndpointConfig, Event};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

const A: &str = "198.51.100.1:500";
const B: &str = "198.51.100.2:500";

fn conn(me: &str, peer: &str, local: &str, remote: &str, proposal: &str) -> ConnectionConfig {
    let me: SocketAddr = me.parse().unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    ConnectionConfig {
        name: "bench".into(),
        remote_addr: peer.ip(),
        local_id: identity_from_str(&me.ip().to_string()),
        remote_id: identity_from_str(&peer.ip().to_string()),
        psk: Zeroizing::new(b"a bench pre-shared key".to_vec()),
        ike_proposals: vec![proposal.parse().unwrap()],
        esp_proposals: vec!["aes256gcm16".parse().unwrap()],
        local_ts: vec![local.parse().unwrap()],
        remote_ts: vec![remote.parse().unwrap()],
        force_encap: false,
        dpd_delay: None,
        ike_lifetime: None,
        child_lifetime: None,
        pfs: None,
    }
}

fn endpoint(c: ConnectionConfig, seed: u64) -> Endpoint {
    Endpoint::new(
        EndpointConfig {
            connections: vec![c],
            ..Default::default()
        },
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
    )
}

/// One handshake; returns the time spent inside the responder.
fn handshake(responder: &mut Endpoint, seed: u64, proposal: &str, now: Instant) -> Duration {
    let (a, b): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let mut init = endpoint(conn(A, B, "10.1.1.0/24", "192.168.4.0/24", proposal), seed);
    init.initiate(now, 0, a);
    let mut in_responder = Duration::ZERO;
    let mut up = false;
    for _ in 0..8 {
        while let Some(t) = init.poll_transmit() {
            let start = Instant::now();
            responder.handle_datagram(now, b, a, &t.data);
            in_responder += start.elapsed();
        }
        while let Some(t) = responder.poll_transmit() {
            init.handle_datagram(now, a, b, &t.data);
        }
        while let Some(e) = init.poll_event() {
            up |= matches!(e, Event::ChildUp(_));
        }
        while responder.poll_event().is_some() {}
        if up {
            return in_responder;
        }
    }
    panic!("no CHILD SA after the handshake");
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ike_handshake");
    for proposal in [
        "aes256gcm16-prfsha256-curve25519",
        "aes256gcm16-prfsha256-ecp256",
    ] {
        g.bench_function(format!("both_ends/{proposal}"), |bch| {
            let mut seed = 0;
            bch.iter_custom(|iters| {
                let now = Instant::now();
                let mut responder =
                    endpoint(conn(B, A, "192.168.4.0/24", "10.1.1.0/24", proposal), 7);
                let start = Instant::now();
                for _ in 0..iters {
                    seed += 1;
                    handshake(&mut responder, seed, proposal, now);
                }
                start.elapsed()
            })
        });
        g.bench_function(format!("responder_only/{proposal}"), |bch| {
            let mut seed = 1 << 32;
            bch.iter_custom(|iters| {
                let now = Instant::now();
                let mut responder =
                    endpoint(conn(B, A, "192.168.4.0/24", "10.1.1.0/24", proposal), 7);
                (0..iters)
                    .map(|_| {
                        seed += 1;
                        handshake(&mut responder, seed, proposal, now)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Two endpoints, a virtual clock and a lossy in-memory network.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::config::{identity_from_str, ConnectionConfig, EndpointConfig};
use crate::endpoint::Endpoint;
use crate::event::{DownReason, Event};
use crate::proposal::{EspProposal, IkeProposal};

pub const A_ADDR: &str = "198.51.100.1:500";
pub const B_ADDR: &str = "198.51.100.2:500";

pub fn conn(me: &str, peer: &str, local: &str, remote: &str, psk: &str) -> ConnectionConfig {
    let me_ip: SocketAddr = me.parse().unwrap();
    let peer_ip: SocketAddr = peer.parse().unwrap();
    ConnectionConfig {
        name: "test".into(),
        remote_addr: peer_ip.ip(),
        local_id: identity_from_str(&me_ip.ip().to_string()),
        remote_id: identity_from_str(&peer_ip.ip().to_string()),
        psk: Zeroizing::new(psk.as_bytes().to_vec()),
        ike_proposals: vec!["aes256gcm16-prfsha256-curve25519"
            .parse::<IkeProposal>()
            .unwrap()],
        esp_proposals: vec!["aes256gcm16".parse::<EspProposal>().unwrap()],
        local_ts: vec![local.parse().unwrap()],
        remote_ts: vec![remote.parse().unwrap()],
        force_encap: false,
        dpd_delay: None,
        ike_lifetime: None,
        child_lifetime: None,
        pfs: None,
    }
}

pub fn a_conn() -> ConnectionConfig {
    conn(
        A_ADDR,
        B_ADDR,
        "10.1.1.0/24",
        "192.168.4.0/24",
        "a shared secret",
    )
}

pub fn b_conn() -> ConnectionConfig {
    conn(
        B_ADDR,
        A_ADDR,
        "192.168.4.0/24",
        "10.1.1.0/24",
        "a shared secret",
    )
}

/// What happens to each datagram in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    Duplicate,
}

pub struct Pair {
    pub now: Instant,
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_addr: SocketAddr,
    pub b_addr: SocketAddr,
    pub a_events: Vec<Event>,
    pub b_events: Vec<Event>,
    /// Decides each datagram's fate: (from_a, index among that side's datagrams).
    pub fate: Box<dyn FnMut(bool, usize) -> Fate>,
    /// Reverse the order of datagrams delivered in one step.
    pub reorder: bool,
    sent_a: usize,
    sent_b: usize,
    /// A sits behind a NAT: B sees A's datagrams from this address.
    pub nat: Option<std::net::IpAddr>,
    /// NAT keepalives (one 0xFF octet) each side sent.
    pub keepalives: (usize, usize),
    latency: Duration,
}

impl Pair {
    pub fn new(a: ConnectionConfig, b: ConnectionConfig) -> Self {
        Self::with(
            EndpointConfig {
                connections: vec![a],
                ..Default::default()
            },
            EndpointConfig {
                connections: vec![b],
                ..Default::default()
            },
        )
    }

    pub fn with(a: EndpointConfig, b: EndpointConfig) -> Self {
        // The virtual clock needs an origin; only differences are used.
        #[allow(clippy::disallowed_methods)]
        let origin = Instant::now();
        Self {
            now: origin,
            a: Endpoint::new(a, Box::new(ChaCha20Rng::seed_from_u64(1))),
            b: Endpoint::new(b, Box::new(ChaCha20Rng::seed_from_u64(2))),
            a_addr: A_ADDR.parse().unwrap(),
            b_addr: B_ADDR.parse().unwrap(),
            a_events: Vec::new(),
            b_events: Vec::new(),
            fate: Box::new(|_, _| Fate::Deliver),
            reorder: false,
            sent_a: 0,
            sent_b: 0,
            nat: None,
            keepalives: (0, 0),
            latency: Duration::from_millis(10),
        }
    }

    pub fn initiate(&mut self) {
        let now = self.now;
        self.a.initiate(now, 0, self.a_addr);
    }

    /// Moves datagrams and time until both sides are quiet and have no
    /// deadline within `limit`; panics on a livelock (too many steps).
    pub fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..10_000 {
            let mut flight: VecDeque<(bool, crate::event::Transmit)> = VecDeque::new();
            while let Some(t) = self.a.poll_transmit() {
                flight.push_back((true, t));
            }
            while let Some(t) = self.b.poll_transmit() {
                flight.push_back((false, t));
            }
            while let Some(e) = self.a.poll_event() {
                self.a_events.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.b_events.push(e);
            }
            if !flight.is_empty() {
                self.now += self.latency;
                let mut batch: Vec<_> = flight.into_iter().collect();
                if self.reorder {
                    batch.reverse();
                }
                for (from_a, t) in batch {
                    let counter = if from_a {
                        &mut self.sent_a
                    } else {
                        &mut self.sent_b
                    };
                    let index = *counter;
                    *counter += 1;
                    let fate = (self.fate)(from_a, index);
                    let copies = match fate {
                        Fate::Deliver => 1,
                        Fate::Drop => 0,
                        Fate::Duplicate => 2,
                    };
                    if t.data == [0xff] {
                        if from_a {
                            self.keepalives.0 += 1;
                        } else {
                            self.keepalives.1 += 1;
                        }
                        continue;
                    }
                    for _ in 0..copies {
                        // Deliver to the other side, as if its socket saw the
                        // datagram on the port it was sent to (through the
                        // NAT, if A is behind one).
                        let (src, local) = match (from_a, self.nat) {
                            (true, Some(nat)) => (SocketAddr::new(nat, t.local.port()), t.remote),
                            (false, Some(_)) => {
                                (t.local, SocketAddr::new(self.a_addr.ip(), t.remote.port()))
                            }
                            _ => (t.local, t.remote),
                        };
                        let dst = if from_a { &mut self.b } else { &mut self.a };
                        dst.handle_datagram(self.now, local, src, &t.data);
                    }
                }
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.a.handle_timeout(now);
                    self.b.handle_timeout(now);
                }
                _ => {
                    self.now = self.now.max(end);
                    return;
                }
            }
        }
        panic!("no quiescence after 10000 steps: a livelock");
    }
}

pub fn child_ups(events: &[Event]) -> Vec<&crate::event::ChildSa> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildUp(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

pub fn downs(events: &[Event]) -> Vec<&DownReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeDown { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

pub fn ike_ups(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::IkeUp { .. }))
        .count()
}

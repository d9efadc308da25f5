//! The outbound path: an IP packet read from the TUN device becomes an ESP
//! packet for a peer, an ICMP error back to the site, or a counted drop.
//!
//! Sans-IO: the thread that owns a TUN reader calls [`Outbound::process`] per
//! packet and does the sending, so the whole decision is testable in memory.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;

use ipsecgw_esp::tun::PacketBatch;
use ipsecgw_esp::{EncapError, OutboundSa};
use ipsecgw_policy::{flow_matches, FlowKey, Policy, PolicyAction, Spd, TrafficSelector};

use super::icmp;
use super::routing::RouteSelector;
use super::stats::{bump, Stats};
use crate::config::{Config, Encapsulation};

/// ESP next header for an inner IPv4 packet (IANA protocol numbers).
const NEXT_HEADER_IPV4: u8 = 4;
/// ESP next header for an inner IPv6 packet.
const NEXT_HEADER_IPV6: u8 = 41;

/// What to do with one packet from the TUN device.
#[derive(Debug, PartialEq, Eq)]
pub enum OutVerdict {
    /// No SA yet on a trap connection: ask the negotiator for one (once),
    /// and drop the packet.
    Acquire(usize),
    /// Send `slot[range]` to `to` on the connection's transport.
    Send {
        /// Connection index.
        conn: usize,
        /// Where the ESP packet is in the slot.
        range: Range<usize>,
    },
    /// Write the ICMP error in [`Outbound::reply`] (`..len`) back to the TUN.
    Reply(usize),
    /// Dropped and counted.
    Drop,
}

/// One connection's outbound side.
#[derive(Debug)]
pub struct OutConn {
    /// The peer, with port for UDP.
    pub remote: SocketAddr,
    /// UDP or raw ESP.
    pub encapsulation: Encapsulation,
    /// The largest inner packet that fits the WAN MTU.
    pub max_inner: usize,
    /// The SA in use; `None` while the connection is down (fail closed).
    pub sa: Option<OutboundSa>,
    /// Negotiate on the first packet (trap): the negotiator was told once.
    pub trap: bool,
    acquire_sent: bool,
    /// Packets that arrived while a trap negotiation runs, sent once the
    /// SA is installed (at most [`TRAP_HOLD`]).
    held: Vec<Vec<u8>>,
    /// The connection's selectors: with `[[route]]`s a route picks the
    /// connection, and the packet must still fall inside them.
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
}

/// The outbound state one thread owns.
#[derive(Debug)]
pub struct Outbound {
    spd: Spd<usize>,
    /// The gateway's routes, when it has any (they replace the SPD order).
    routes: RouteSelector,
    /// The health generation the routes were last built for.
    generation: u64,
    /// Connections, by index.
    pub conns: Vec<OutConn>,
    stats: Arc<Stats>,
    reply: Vec<u8>,
}

impl Outbound {
    /// Builds the SPD (one protect policy per connection, in config order)
    /// and installs the manually keyed outbound SAs.
    pub fn new(cfg: &Config, stats: Arc<Stats>) -> anyhow::Result<Self> {
        let mut spd = Spd::new();
        let mut conns = Vec::new();
        for (i, c) in cfg.connections.iter().enumerate() {
            let local: Vec<_> = c
                .local_subnets
                .iter()
                .map(|n| TrafficSelector::from_subnet(*n))
                .collect();
            let remote: Vec<_> = c
                .remote_subnets
                .iter()
                .map(|n| TrafficSelector::from_subnet(*n))
                .collect();
            spd.push(Policy {
                name: c.name.clone(),
                local: local.clone(),
                remote: remote.clone(),
                action: PolicyAction::Protect(i),
            });
            let sa = match &c.manual {
                Some((out, _)) => Some(OutboundSa::new(out.clone())?),
                None => None,
            };
            conns.push(OutConn {
                remote: c.remote,
                encapsulation: c.encapsulation,
                max_inner: c.max_inner,
                sa,
                trap: c.ike.as_ref().is_some_and(|i| {
                    // Negotiate on demand: from the start, or again after a
                    // dead peer (dpd_action = trap).
                    i.start_action == crate::config::Action::Trap
                        || i.dpd_action == crate::config::Action::Trap
                }),
                acquire_sent: false,
                held: Vec::new(),
                local_ts: local,
                remote_ts: remote,
            });
        }
        Ok(Self {
            spd,
            routes: RouteSelector::new(&cfg.routes),
            generation: 0,
            conns,
            stats,
            reply: vec![0; 1280],
        })
    }

    /// The headroom every slot needs in front of the inner packet.
    pub fn headroom(&self) -> usize {
        self.conns
            .iter()
            .filter_map(|c| c.sa.as_ref().map(OutboundSa::headroom))
            .max()
            .unwrap_or(0)
            .max(MIN_HEADROOM)
    }

    /// The ICMP error built by the last [`OutVerdict::Reply`].
    pub fn reply(&self, len: usize) -> &[u8] {
        self.reply.get(..len).unwrap_or(&[])
    }

    /// Decides one packet: `slot[inner]` is the packet read from the TUN,
    /// with headroom before it and tailroom after it in `slot`.
    pub fn process(&mut self, slot: &mut [u8], inner: Range<usize>) -> OutVerdict {
        let Some(pkt) = slot.get(inner.clone()) else {
            bump(&self.stats.drops.malformed);
            return OutVerdict::Drop;
        };
        let Some(flow) = FlowKey::from_ip_packet(pkt) else {
            bump(&self.stats.drops.malformed);
            return OutVerdict::Drop;
        };
        let conn_idx = if !self.routes.is_empty() {
            match self.routes.select(&flow) {
                Some(i) => i,
                None => {
                    bump(&self.stats.drops.no_policy);
                    return OutVerdict::Drop;
                }
            }
        } else {
            match self.spd.lookup_outbound(&flow) {
                Some((_, p)) => match p.action {
                    PolicyAction::Protect(i) => i,
                    PolicyAction::Discard | PolicyAction::Bypass => {
                        // A packet that reached the TUN cannot bypass: that would
                        // send it back into the kernel in clear. Fail closed.
                        bump(&self.stats.drops.discarded);
                        return OutVerdict::Drop;
                    }
                },
                None => {
                    bump(&self.stats.drops.no_policy);
                    return OutVerdict::Drop;
                }
            }
        };
        self.encapsulate(conn_idx, slot, inner, &flow)
    }

    /// Sends one of the gateway's own probes (`slot[inner]`) on connection
    /// `conn`, whatever the routes say: a health check tests its tunnel.
    pub fn process_probe(
        &mut self,
        conn: usize,
        slot: &mut [u8],
        inner: Range<usize>,
    ) -> OutVerdict {
        let Some(flow) = slot.get(inner.clone()).and_then(FlowKey::from_ip_packet) else {
            bump(&self.stats.drops.malformed);
            return OutVerdict::Drop;
        };
        self.encapsulate(conn, slot, inner, &flow)
    }

    /// The largest inner packet of the connection `pkt` would take (routes,
    /// else the SPD), so that a TCP super-packet from the TUN device is cut
    /// into segments that fit it; `None` when no connection would take it
    /// (each segment is then dropped and counted by [`Self::process`]).
    pub fn max_inner_for(&self, pkt: &[u8]) -> Option<usize> {
        let flow = FlowKey::from_ip_packet(pkt)?;
        let conn = if !self.routes.is_empty() {
            self.routes.select(&flow)?
        } else {
            match self.spd.lookup_outbound(&flow)?.1.action {
                PolicyAction::Protect(i) => i,
                PolicyAction::Discard | PolicyAction::Bypass => return None,
            }
        };
        self.conns.get(conn).map(|c| c.max_inner)
    }

    /// Rebuilds the routes in use if a health check changed state.
    pub fn refresh_routes(&mut self) {
        let generation = self
            .stats
            .health_generation
            .load(std::sync::atomic::Ordering::Relaxed);
        if generation != self.generation && !self.routes.is_empty() {
            self.generation = generation;
            let stats = &self.stats;
            self.routes.rebuild(|i| stats.healthy(i));
        }
    }

    fn encapsulate(
        &mut self,
        conn_idx: usize,
        slot: &mut [u8],
        inner: Range<usize>,
        flow: &FlowKey,
    ) -> OutVerdict {
        let Some(pkt) = slot.get(inner.clone()) else {
            bump(&self.stats.drops.malformed);
            return OutVerdict::Drop;
        };
        let Some(conn) = self.conns.get_mut(conn_idx) else {
            bump(&self.stats.drops.no_policy);
            return OutVerdict::Drop;
        };
        // A route chose the connection: the packet must still be one its
        // SAs were negotiated for (the SPD did this check otherwise).
        if !flow_matches(
            &conn.local_ts,
            &conn.remote_ts,
            flow.src,
            flow.src_port,
            flow.dst,
            flow.dst_port,
            flow.proto,
        ) {
            bump(&self.stats.drops.no_policy);
            return OutVerdict::Drop;
        }
        let cstats = &self.stats.conns[conn_idx].1;
        let Some(sa) = conn.sa.as_mut() else {
            if conn.trap && conn.held.len() < TRAP_HOLD {
                // Held while the negotiation runs (the only allocation on
                // this path, and only until the SA exists).
                conn.held.push(pkt.to_vec());
            } else {
                bump(&cstats.no_sa);
            }
            if conn.trap && !conn.acquire_sent {
                conn.acquire_sent = true;
                return OutVerdict::Acquire(conn_idx);
            }
            return OutVerdict::Drop;
        };
        let v6 = flow.src.is_ipv6();
        if pkt.len() > conn.max_inner {
            // RFC 4459 §3: answer DF packets with the tunnel's MTU; let the
            // outer packet be fragmented for the rest (IPv4 without DF).
            let df = !v6 && pkt.get(6).is_some_and(|b| b & 0x40 != 0);
            if v6 || df {
                bump(&cstats.too_big);
                // From the destination, not from us (see `icmp`).
                let len = match flow.dst {
                    IpAddr::V4(from) => {
                        icmp::frag_needed_v4(pkt, from, conn.max_inner as u16, &mut self.reply)
                    }
                    IpAddr::V6(from) => {
                        icmp::packet_too_big_v6(pkt, from, conn.max_inner as u32, &mut self.reply)
                    }
                };
                return match len {
                    Some(len) => OutVerdict::Reply(len),
                    None => OutVerdict::Drop,
                };
            }
        }
        let next_header = if v6 {
            NEXT_HEADER_IPV6
        } else {
            NEXT_HEADER_IPV4
        };
        match sa.encapsulate(slot, inner, next_header) {
            Ok(range) => OutVerdict::Send {
                conn: conn_idx,
                range,
            },
            Err(EncapError::Expired) => {
                // Counted by the SA (lifetime_drops); the connection is down
                // until a new SA is installed.
                OutVerdict::Drop
            }
            Err(_) => {
                bump(&self.stats.drops.malformed);
                OutVerdict::Drop
            }
        }
    }

    /// Puts a new outbound SA in use for `conn` (a negotiated one, or a
    /// rekey: the old one is dropped; its peer keeps the inbound side until
    /// it is deleted, so nothing in flight is lost).
    pub fn install(
        &mut self,
        conn: usize,
        sa: OutboundSa,
        remote: SocketAddr,
        encapsulation: Encapsulation,
    ) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.sa = Some(sa);
            c.remote = remote;
            c.encapsulation = encapsulation;
            c.acquire_sent = false;
            self.stats.conns[conn].1.udp.store(
                encapsulation == Encapsulation::Udp,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    /// Stops using `conn`'s outbound SA if it is `spi`: its traffic is
    /// dropped from now on (fail closed).
    pub fn remove(&mut self, conn: usize, spi: u32) {
        if let Some(c) = self.conns.get_mut(conn) {
            if c.sa.as_ref().is_some_and(|sa| sa.spi() == spi) {
                c.sa = None;
                c.acquire_sent = false;
                self.stats.conns[conn]
                    .1
                    .outbound
                    .publish(0, &Default::default());
            }
        }
    }

    /// Moves the packets held for connections that now have an SA into
    /// `batch` (as if just read from the TUN); returns how many.
    pub fn release_held(&mut self, batch: &mut PacketBatch) -> usize {
        let mut n = 0;
        for c in self
            .conns
            .iter_mut()
            .filter(|c| c.sa.is_some() && !c.held.is_empty())
        {
            for pkt in c.held.drain(..) {
                let Some(slot) = batch.next_free() else { break };
                if let Some(dst) = slot.get_mut(..pkt.len()) {
                    dst.copy_from_slice(&pkt);
                    batch.commit(pkt.len());
                    n += 1;
                }
            }
        }
        n
    }

    /// Publishes every SA's counters and takes their lifetime events.
    pub fn publish(&mut self, mut on_event: impl FnMut(usize, ipsecgw_esp::SaEvent)) {
        for (i, c) in self.conns.iter_mut().enumerate() {
            if let Some(sa) = c.sa.as_mut() {
                self.stats.conns[i]
                    .1
                    .outbound
                    .publish(sa.spi(), sa.counters());
                while let Some(ev) = sa.poll_event() {
                    tracing::info!(connection = %self.stats.conns[i].0.name, event = ?ev, "outbound SA lifetime");
                    on_event(i, ev);
                }
            }
        }
    }
}

/// Headroom kept even before any SA exists, so slots never need resizing
/// when one is installed: ESP header (8) + the largest IV (16, AES-CBC).
pub const MIN_HEADROOM: usize = 24;
/// Packets held per connection while a trap negotiation runs (strongSwan
/// holds a few too); the rest are dropped and counted as `no_sa`.
pub const TRAP_HOLD: usize = 8;
/// Tailroom kept after every packet: the largest padding (255), pad length
/// and next header (2) and the largest ICV (32).
pub const TAILROOM: usize = 255 + 2 + 32;

//! The inbound path: an ESP packet from the WAN becomes an inner IP packet
//! for the TUN device, or a counted drop.
//!
//! Order matters: SPI lookup (no crypto for unknown SPIs), then the SA's own
//! checks (length, replay pre-check, ICV, padding; the replay window moves
//! only after the ICV verified), then the inner packet must fall inside the
//! connection's traffic selectors, so a peer cannot inject traffic for
//! subnets it was not given.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use ipsecgw_esp::{peek_spi, InboundSa};
use ipsecgw_policy::{flow_matches, FlowKey, TrafficSelector};

use super::stats::{bump, Stats};
use crate::config::Config;

/// ESP next header 59: a dummy packet (RFC 4303 §2.6) to be discarded.
const NEXT_HEADER_NONE: u8 = 59;

#[derive(Debug)]
struct InConn {
    sa: InboundSa,
    conn: usize,
    local: Vec<TrafficSelector>,
    remote: Vec<TrafficSelector>,
}

/// The inbound state one thread owns: the SAD keyed by SPI.
#[derive(Debug)]
pub struct Inbound {
    sad: HashMap<u32, InConn>,
    stats: Arc<Stats>,
    /// What marks the gateway's own probes (see `ProbeTag`).
    probe_tag: super::probe::ProbeTag,
}

impl Inbound {
    /// Installs the manually keyed inbound SAs.
    pub fn new(cfg: &Config, stats: Arc<Stats>) -> anyhow::Result<Self> {
        let mut sad = HashMap::new();
        for (i, c) in cfg.connections.iter().enumerate() {
            if let Some((_, inbound)) = &c.manual {
                let sa = InboundSa::new(inbound.clone())?;
                sad.insert(
                    sa.spi(),
                    InConn {
                        sa,
                        conn: i,
                        local: c
                            .local_subnets
                            .iter()
                            .map(|n| TrafficSelector::from_subnet(*n))
                            .collect(),
                        remote: c
                            .remote_subnets
                            .iter()
                            .map(|n| TrafficSelector::from_subnet(*n))
                            .collect(),
                    },
                );
            }
        }
        Ok(Self {
            sad,
            stats,
            probe_tag: super::probe::ProbeTag::new([0; 10]),
        })
    }

    /// Takes echo replies carrying `tag` off the path.
    pub fn with_probe_tag(mut self, tag: super::probe::ProbeTag) -> Self {
        self.probe_tag = tag;
        self
    }

    /// The reply to one of the gateway's probes, if `inner` (a packet
    /// [`Self::process`] accepted) is one; it must not reach the TUN.
    pub fn probe_reply(&self, inner: &[u8]) -> Option<super::probe::EchoReply> {
        super::probe::our_echo_reply(inner, &self.probe_tag)
    }

    /// Installs a negotiated inbound SA for connection `conn`, which only
    /// accepts inner packets within these selectors.
    pub fn install(
        &mut self,
        conn: usize,
        sa: InboundSa,
        local: Vec<TrafficSelector>,
        remote: Vec<TrafficSelector>,
    ) {
        self.sad.insert(
            sa.spi(),
            InConn {
                sa,
                conn,
                local,
                remote,
            },
        );
    }

    /// Removes an inbound SA.
    pub fn remove(&mut self, spi: u32) {
        if let Some(e) = self.sad.remove(&spi) {
            let still = self.sad.values().any(|x| x.conn == e.conn);
            if !still {
                self.stats.conns[e.conn]
                    .1
                    .inbound
                    .publish(0, &Default::default());
            }
        }
    }

    /// Decides one ESP packet (starting at the SPI; decrypted in place).
    /// Returns where the inner packet is, to be written to the TUN.
    pub fn process(&mut self, esp: &mut [u8]) -> Option<Range<usize>> {
        let Some(spi) = peek_spi(esp) else {
            bump(&self.stats.drops.malformed);
            return None;
        };
        let Some(entry) = self.sad.get_mut(&spi) else {
            bump(&self.stats.drops.unknown_spi);
            return None;
        };
        // Failures are counted by the SA itself (auth, replay, malformed).
        let out = entry.sa.decapsulate(esp).ok()?;
        if out.next_header == NEXT_HEADER_NONE {
            return None;
        }
        let cstats = &self.stats.conns[entry.conn].1;
        let inner = esp.get(out.inner.clone())?;
        let version_ok = match out.next_header {
            4 => inner.first().is_some_and(|b| b >> 4 == 4),
            41 => inner.first().is_some_and(|b| b >> 4 == 6),
            _ => false,
        };
        let flow = FlowKey::from_ip_packet(inner);
        let allowed = version_ok
            && flow.is_some_and(|f| {
                // The inner source is the peer's side, the destination ours.
                flow_matches(
                    &entry.local,
                    &entry.remote,
                    f.dst,
                    f.dst_port,
                    f.src,
                    f.src_port,
                    f.proto,
                )
            });
        if !allowed {
            bump(&cstats.selector_drops);
            return None;
        }
        Some(out.inner)
    }

    /// Publishes every SA's counters and takes their lifetime events.
    pub fn publish(&mut self, mut on_event: impl FnMut(usize, ipsecgw_esp::SaEvent)) {
        for e in self.sad.values_mut() {
            self.stats.conns[e.conn]
                .1
                .inbound
                .publish(e.sa.spi(), e.sa.counters());
            while let Some(ev) = e.sa.poll_event() {
                tracing::info!(connection = %self.stats.conns[e.conn].0.name, event = ?ev, "inbound SA lifetime");
                on_event(e.conn, ev);
            }
        }
    }
}

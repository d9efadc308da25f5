//! Counters the data-path threads publish and the control socket reads.
//!
//! Each counter has one writer (the thread that owns the SA or the drop
//! cause), so relaxed atomics suffice and no lock sits on the packet path.
//! SA counters are copied from the SA once per batch, not per packet.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use ipsecgw_esp::SaCounters;
use serde::Serialize;

/// One SA's counters as the data path last published them.
#[derive(Debug, Default)]
pub struct SaStats {
    spi: AtomicU32,
    packets: AtomicU64,
    bytes: AtomicU64,
    auth_failures: AtomicU64,
    replay_drops: AtomicU64,
    malformed: AtomicU64,
    lifetime_drops: AtomicU64,
}

impl SaStats {
    /// Copies an SA's counters (once per batch, by the SA's owner).
    pub fn publish(&self, spi: u32, c: &SaCounters) {
        self.spi.store(spi, Relaxed);
        self.packets.store(c.packets, Relaxed);
        self.bytes.store(c.bytes, Relaxed);
        self.auth_failures.store(c.auth_failures, Relaxed);
        self.replay_drops.store(c.replay_drops, Relaxed);
        self.malformed.store(c.malformed, Relaxed);
        self.lifetime_drops.store(c.lifetime_drops, Relaxed);
    }

    /// The SPI last published (0: no SA).
    pub fn spi(&self) -> u32 {
        self.spi.load(Relaxed)
    }

    fn snapshot(&self) -> SaSnapshot {
        SaSnapshot {
            spi: self.spi.load(Relaxed),
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            auth_failures: self.auth_failures.load(Relaxed),
            replay_drops: self.replay_drops.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            lifetime_drops: self.lifetime_drops.load(Relaxed),
        }
    }
}

/// Per-connection counters.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// The outbound SA, written by the outbound thread.
    pub outbound: SaStats,
    /// The inbound SA, written by the inbound thread.
    pub inbound: SaStats,
    /// Decapsulated packets outside the connection's selectors (spoofing).
    pub selector_drops: AtomicU64,
    /// Packets too big for the connection's path MTU, answered with ICMP.
    pub too_big: AtomicU64,
    /// Packets for this connection while it has no outbound SA.
    pub no_sa: AtomicU64,
    /// Whether ESP currently travels in UDP (a negotiated SA may have
    /// floated to 4500 behind a NAT, whatever the config asked for).
    pub udp: AtomicBool,
    /// The health check's view, written by the health task.
    pub health: HealthStats,
}

/// A connection's health as its check last saw it. A connection without a
/// check is always up: only a failed check withdraws routes.
#[derive(Debug)]
pub struct HealthStats {
    /// Whether its routes are in use.
    pub up: AtomicBool,
    /// Probes sent and answered.
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    /// Unanswered probes in a row.
    pub failures: AtomicU32,
    /// Round trip of the last answer, microseconds.
    pub last_rtt_us: AtomicU64,
    /// Times the connection went down.
    pub down_events: AtomicU64,
}

impl Default for HealthStats {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            last_rtt_us: AtomicU64::new(0),
            down_events: AtomicU64::new(0),
        }
    }
}

/// Drops that belong to no connection.
#[derive(Debug, Default)]
pub struct GlobalDrops {
    /// TUN packets whose flow matches no policy.
    pub no_policy: AtomicU64,
    /// TUN packets a `discard` policy dropped.
    pub discarded: AtomicU64,
    /// WAN packets for an SPI that has no inbound SA.
    pub unknown_spi: AtomicU64,
    /// Packets too short or otherwise unparseable, either direction.
    pub malformed: AtomicU64,
    /// UDP 4500 datagrams that are not ESP (IKE, keepalives).
    pub not_esp: AtomicU64,
    /// Packets the kernel refused to take (send errors), either direction.
    pub send_errors: AtomicU64,
}

/// Which offloads the data path uses, and what they did. Written once at
/// start (the modes) and per batch (the counters, by each direction's thread).
#[derive(Debug, Default)]
pub struct OffloadStats {
    /// `[tun] offload` as configured: 0 auto, 1 on, 2 off.
    pub configured: AtomicU8,
    /// TUN offloads in use: 0 none, 1 TSO, 2 TSO and USO.
    pub tun: AtomicU8,
    /// Auto mode fell back to the plain device (the kernel refused).
    pub fell_back: AtomicBool,
    /// UDP GSO (UDP_SEGMENT) on the ESP-in-UDP socket.
    pub udp_gso: AtomicBool,
    /// UDP GRO on the ESP-in-UDP socket.
    pub udp_gro: AtomicBool,
    /// Super-packets read from the TUN device, and the packets cut from them.
    pub gso_packets: AtomicU64,
    pub gso_segments: AtomicU64,
    /// Coalesced writes to the TUN device, and the packets they carried.
    pub gro_writes: AtomicU64,
    pub gro_segments: AtomicU64,
    /// UDP sends that carried several ESP packets, and how many.
    pub udp_gso_sends: AtomicU64,
    pub udp_gso_segments: AtomicU64,
    /// UDP receives that carried several ESP packets, and how many.
    pub udp_gro_receives: AtomicU64,
    pub udp_gro_segments: AtomicU64,
}

impl OffloadStats {
    fn snapshot(&self) -> OffloadSnapshot {
        let tun = self.tun.load(Relaxed);
        OffloadSnapshot {
            configured: match self.configured.load(Relaxed) {
                1 => "on",
                2 => "off",
                _ => "auto",
            }
            .to_owned(),
            mode: if tun > 0 { "on" } else { "off" }.to_owned(),
            tun: match tun {
                0 => "none",
                1 => "csum tso4 tso6",
                _ => "csum tso4 tso6 uso4 uso6",
            }
            .to_owned(),
            fell_back: self.fell_back.load(Relaxed),
            udp_gso: self.udp_gso.load(Relaxed),
            udp_gro: self.udp_gro.load(Relaxed),
            gso_packets: self.gso_packets.load(Relaxed),
            gso_segments: self.gso_segments.load(Relaxed),
            gro_writes: self.gro_writes.load(Relaxed),
            gro_segments: self.gro_segments.load(Relaxed),
            udp_gso_sends: self.udp_gso_sends.load(Relaxed),
            udp_gso_segments: self.udp_gso_segments.load(Relaxed),
            udp_gro_receives: self.udp_gro_receives.load(Relaxed),
            udp_gro_segments: self.udp_gro_segments.load(Relaxed),
        }
    }
}

/// The offloads in `ipsecgw status`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct OffloadSnapshot {
    /// `[tun] offload`: auto, on or off.
    pub configured: String,
    /// TUN offloads in use: on or off.
    pub mode: String,
    /// Which the kernel took.
    pub tun: String,
    /// Auto fell back to the plain device.
    pub fell_back: bool,
    /// UDP GSO / GRO on the ESP-in-UDP socket.
    pub udp_gso: bool,
    pub udp_gro: bool,
    /// Counters, see [`OffloadStats`].
    pub gso_packets: u64,
    pub gso_segments: u64,
    pub gro_writes: u64,
    pub gro_segments: u64,
    pub udp_gso_sends: u64,
    pub udp_gso_segments: u64,
    pub udp_gro_receives: u64,
    pub udp_gro_segments: u64,
}

/// Adds `n` to a counter (one writer per counter).
#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Relaxed);
    }
}

/// Everything the daemon counts.
#[derive(Debug)]
pub struct Stats {
    /// The gateway's name.
    pub gateway: String,
    /// Per connection, in config order.
    pub conns: Vec<(ConnInfo, ConnStats)>,
    /// Drops outside any connection.
    pub drops: GlobalDrops,
    /// The configured routes, for status.
    pub routes: Vec<crate::config::Route>,
    /// Which connections have a health check.
    pub checked: Vec<bool>,
    /// Bumped whenever a connection's health changes: the outbound thread
    /// rebuilds its routes when it sees a new value.
    pub health_generation: AtomicU64,
    /// The offloads in use.
    pub offload: OffloadStats,
}

/// A connection's static description, for status.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ConnInfo {
    /// Its name.
    pub name: String,
    /// `udp` or `esp`.
    pub encapsulation: String,
    /// The peer's WAN address.
    pub remote_address: String,
    /// Local subnets.
    pub local_subnets: Vec<String>,
    /// Remote subnets.
    pub remote_subnets: Vec<String>,
    /// Algorithm, if keyed.
    pub algorithm: Option<String>,
}

impl Stats {
    /// Counters for these connections, all zero.
    pub fn new(gateway: String, conns: Vec<ConnInfo>) -> Self {
        Self {
            gateway,
            conns: conns
                .into_iter()
                .map(|c| {
                    let s = ConnStats::default();
                    s.udp.store(c.encapsulation == "udp", Relaxed);
                    (c, s)
                })
                .collect(),
            drops: GlobalDrops::default(),
            routes: Vec::new(),
            checked: Vec::new(),
            health_generation: AtomicU64::new(0),
            offload: OffloadStats::default(),
        }
    }

    /// With the gateway's routes and health checks, for status.
    pub fn with_routes(mut self, cfg: &crate::config::Config) -> Self {
        self.routes = cfg.routes.clone();
        self.checked = cfg
            .connections
            .iter()
            .map(|c| c.health_check.is_some())
            .collect();
        self
    }

    /// Whether connection `i`'s routes are in use.
    pub fn healthy(&self, i: usize) -> bool {
        self.conns
            .get(i)
            .is_some_and(|(_, s)| s.health.up.load(Relaxed))
    }

    /// A consistent-enough copy for `ipsecgw status`.
    pub fn snapshot(&self) -> StatusSnapshot {
        let d = &self.drops;
        StatusSnapshot {
            gateway: self.gateway.clone(),
            connections: self
                .conns
                .iter()
                .enumerate()
                .map(|(i, (info, s))| ConnSnapshot {
                    info: ConnInfo {
                        encapsulation: if s.udp.load(Relaxed) { "udp" } else { "esp" }.to_owned(),
                        ..info.clone()
                    },
                    outbound: s.outbound.snapshot(),
                    inbound: s.inbound.snapshot(),
                    selector_drops: s.selector_drops.load(Relaxed),
                    too_big: s.too_big.load(Relaxed),
                    no_sa: s.no_sa.load(Relaxed),
                    health: self.checked.get(i).copied().unwrap_or(false).then(|| {
                        let h = &s.health;
                        HealthSnapshot {
                            state: if h.up.load(Relaxed) { "up" } else { "down" }.to_owned(),
                            sent: h.sent.load(Relaxed),
                            answered: h.answered.load(Relaxed),
                            failures: h.failures.load(Relaxed),
                            last_rtt_ms: h.last_rtt_us.load(Relaxed) as f64 / 1000.0,
                            down_events: h.down_events.load(Relaxed),
                        }
                    }),
                })
                .collect(),
            routes: {
                let used = crate::dataplane::routing::in_use(&self.routes, |i| self.healthy(i));
                self.routes
                    .iter()
                    .zip(used)
                    .map(|(r, used)| RouteView {
                        destination: r.destination.to_string(),
                        source: r.source.map(|s| s.to_string()),
                        connection: self
                            .conns
                            .get(r.connection)
                            .map(|(c, _)| c.name.clone())
                            .unwrap_or_default(),
                        weight: r.weight,
                        publish: r.publish,
                        in_use: used,
                        state: if used {
                            "in use"
                        } else if !self.healthy(r.connection) {
                            "withdrawn"
                        } else {
                            "standby"
                        }
                        .to_owned(),
                    })
                    .collect()
            },
            drops: DropSnapshot {
                no_policy: d.no_policy.load(Relaxed),
                discarded: d.discarded.load(Relaxed),
                no_sa: self.conns.iter().map(|(_, s)| s.no_sa.load(Relaxed)).sum(),
                unknown_spi: d.unknown_spi.load(Relaxed),
                malformed: d.malformed.load(Relaxed),
                not_esp: d.not_esp.load(Relaxed),
                send_errors: d.send_errors.load(Relaxed),
            },
            ike_sas: Vec::new(),
            ike_drops: IkeDrops::default(),
            offload: self.offload.snapshot(),
        }
    }
}

/// Bumps a counter by one.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// The JSON `ipsecgw status --json` prints.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StatusSnapshot {
    /// Gateway name.
    pub gateway: String,
    /// Per connection.
    pub connections: Vec<ConnSnapshot>,
    /// Drops outside any connection.
    pub drops: DropSnapshot,
    /// The IKE SAs (empty without IKE connections).
    #[serde(default)]
    pub ike_sas: Vec<IkeSaView>,
    /// IKE messages dropped or refused, by cause.
    #[serde(default)]
    pub ike_drops: IkeDrops,
    /// The gateway's routes (empty: each connection's remote subnets).
    #[serde(default)]
    pub routes: Vec<RouteView>,
    /// The offloads in use and their counters.
    #[serde(default)]
    pub offload: OffloadSnapshot,
}

/// IKE messages dropped or refused, by cause.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct IkeDrops {
    /// Did not parse or did not decrypt.
    pub malformed: u64,
    /// For no IKE SA of ours.
    pub unknown_spi: u64,
    /// IKE_SA_INIT from an address no connection names.
    pub unknown_peer: u64,
    /// Unexpected message ID.
    pub bad_message_id: u64,
    /// Authentication failures.
    pub auth_failures: u64,
    /// COOKIE demands sent (half-open SAs over the threshold).
    pub cookies_sent: u64,
}

/// One IKE SA in the status output.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct IkeSaView {
    /// Connection name.
    pub name: String,
    /// CONNECTING, ESTABLISHED or DELETING.
    pub state: String,
    /// Whether this side initiated it.
    pub initiator: bool,
    /// Our address and port.
    pub local: String,
    /// The peer's address and port.
    pub remote: String,
    /// Initiator's SPI, hex.
    pub spi_i: String,
    /// Responder's SPI, hex.
    pub spi_r: String,
    /// Agreed algorithms (strongSwan notation).
    pub proposal: Option<String>,
    /// Seconds since it was established.
    pub established_secs: Option<u64>,
    /// Seconds until it is rekeyed, if it has a lifetime.
    pub rekey_in_secs: Option<u64>,
    /// NAT detected or encapsulation forced: ESP in UDP 4500.
    pub nat: bool,
    /// Its CHILD SAs.
    pub children: Vec<ChildView>,
}

/// One CHILD SA in the status output.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ChildView {
    /// Our inbound SPI, hex.
    pub inbound_spi: String,
    /// Our outbound SPI, hex.
    pub outbound_spi: String,
    /// Algorithms.
    pub proposal: String,
    /// Our side's selectors.
    pub local_ts: Vec<String>,
    /// The peer's side's selectors.
    pub remote_ts: Vec<String>,
    /// Seconds since it was installed.
    pub age_secs: u64,
    /// Seconds until it is rekeyed, if it has a lifetime.
    pub rekey_in_secs: Option<u64>,
    /// Inner bytes and packets received on it (from the data plane).
    pub bytes_in: u64,
    pub packets_in: u64,
    /// Inner bytes and packets sent on it.
    pub bytes_out: u64,
    pub packets_out: u64,
}

/// One connection in the status output.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ConnSnapshot {
    /// Static description (flattened into the object).
    #[serde(flatten)]
    pub info: ConnInfo,
    /// Outbound SA counters.
    pub outbound: SaSnapshot,
    /// Inbound SA counters.
    pub inbound: SaSnapshot,
    /// Inner packets outside the selectors.
    pub selector_drops: u64,
    /// Packets answered with ICMP "fragmentation needed" / "packet too big".
    pub too_big: u64,
    /// Packets dropped for want of an outbound SA.
    pub no_sa: u64,
    /// The health check, if the connection has one.
    #[serde(default)]
    pub health: Option<HealthSnapshot>,
}

/// A connection's health check in the status output.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HealthSnapshot {
    /// `up` (routes in use) or `down` (withdrawn).
    pub state: String,
    /// Probes sent.
    pub sent: u64,
    /// Probes answered.
    pub answered: u64,
    /// Unanswered in a row.
    pub failures: u32,
    /// Last round trip.
    pub last_rtt_ms: f64,
    /// Times it went down.
    pub down_events: u64,
}

/// One route in the status output.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RouteView {
    /// Destination prefix.
    pub destination: String,
    /// Source prefix of a policy-based route.
    pub source: Option<String>,
    /// The connection it points at.
    pub connection: String,
    /// 100 active, 0 standby.
    pub weight: u8,
    /// Published to the site's route table.
    pub publish: bool,
    /// Carrying traffic now.
    pub in_use: bool,
    /// `in use`, `standby` or `withdrawn` (its health check failed).
    pub state: String,
}

/// One SA's counters in the status output.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct SaSnapshot {
    /// SPI (0 when no SA is installed).
    pub spi: u32,
    /// Packets processed.
    pub packets: u64,
    /// Inner bytes processed.
    pub bytes: u64,
    /// ICV failures.
    pub auth_failures: u64,
    /// Replayed or too old.
    pub replay_drops: u64,
    /// Malformed ESP.
    pub malformed: u64,
    /// Refused after the hard lifetime.
    pub lifetime_drops: u64,
}

/// Global drops in the status output.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct DropSnapshot {
    /// No policy matched.
    pub no_policy: u64,
    /// A discard policy matched.
    pub discarded: u64,
    /// Protected, but no SA yet (sum over connections).
    pub no_sa: u64,
    /// Unknown SPI.
    pub unknown_spi: u64,
    /// Unparseable.
    pub malformed: u64,
    /// Not ESP on UDP 4500.
    pub not_esp: u64,
    /// Send failures.
    pub send_errors: u64,
}

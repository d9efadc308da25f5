//! Counters the data-path threads publish and the control socket reads.
//!
//! Each counter has one writer (the thread that owns the SA or the drop
//! cause), so relaxed atomics suffice and no lock sits on the packet path.
//! SA counters are copied from the SA once per batch, not per packet.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

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
    pub udp: std::sync::atomic::AtomicBool,
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

/// Everything the daemon counts.
#[derive(Debug)]
pub struct Stats {
    /// The gateway's name.
    pub gateway: String,
    /// Per connection, in config order.
    pub conns: Vec<(ConnInfo, ConnStats)>,
    /// Drops outside any connection.
    pub drops: GlobalDrops,
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
        }
    }

    /// A consistent-enough copy for `ipsecgw status`.
    pub fn snapshot(&self) -> StatusSnapshot {
        let d = &self.drops;
        StatusSnapshot {
            gateway: self.gateway.clone(),
            connections: self
                .conns
                .iter()
                .map(|(info, s)| ConnSnapshot {
                    info: ConnInfo {
                        encapsulation: if s.udp.load(Relaxed) { "udp" } else { "esp" }.to_owned(),
                        ..info.clone()
                    },
                    outbound: s.outbound.snapshot(),
                    inbound: s.inbound.snapshot(),
                    selector_drops: s.selector_drops.load(Relaxed),
                    too_big: s.too_big.load(Relaxed),
                    no_sa: s.no_sa.load(Relaxed),
                })
                .collect(),
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

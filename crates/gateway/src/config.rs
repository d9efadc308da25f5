//! The TOML configuration: parsing, validation and key loading.
//!
//! The file reads like the product it stands in for: one `[gateway]` (this
//! machine's public address), one `[tun]`, and `[[ipsec_connection]]` tables,
//! each with its `ipsec` settings and, until IKEv2 negotiates them, its
//! `manual_keys` (SPIs and key material, as `ip xfrm state` takes them). The
//! Alibaba-model work adds `vpn_gateway`, `customer_gateway`, `ike` and
//! routes beside these tables rather than replacing them.
//!
//! Every error names the file, the line and the key, and says what would be
//! valid. Key material never appears in an error or a log line.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use ipsecgw_esp::{Algorithm, Lifetime, SaConfig, SaKey, DEFAULT_REPLAY_WINDOW};
use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

mod routing;
pub use routing::{HealthCheck, Route, WEIGHT_ACTIVE};

/// UDP port of ESP in UDP (RFC 3948 §2) and of IKE after NAT detection.
pub const NAT_T_PORT: u16 = 4500;

/// Smallest WAN MTU accepted: IPv6's minimum link MTU (RFC 8200 §5), which
/// still leaves room for a useful inner packet after the ESP overhead.
const MIN_WAN_MTU: u32 = 1280;
/// Largest WAN MTU accepted (jumbo frames).
const MAX_WAN_MTU: u32 = 9000;
/// Smallest inner MTU accepted: the IPv4 minimum (RFC 791) rounded up.
const MIN_TUN_MTU: u32 = 576;
/// Linux limits interface names to IFNAMSIZ - 1 bytes.
const MAX_IFNAME: usize = 15;
/// strongSwan's default IKE proposal for the modern suite.
const DEFAULT_IKE_PROPOSAL: &str = "aes256gcm16-prfsha256-curve25519";
/// Seconds of silence before a liveness check (strongSwan's dpd_delay).
const DEFAULT_DPD_DELAY: u64 = 30;
/// SA lifetime in seconds when none is given (Alibaba's default and maximum).
const DEFAULT_LIFETIME: u64 = 86_400;
/// A shorter pre-shared key is refused: it would fall to a dictionary.
const MIN_PSK_LEN: usize = 8;
/// Soft lifetimes fire at 90 % of the hard ones, so a rekey has time.
fn soft_limit(hard: u64) -> u64 {
    hard - hard / 10
}

/// A configuration error: where it is and what would be valid.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// How ESP travels between the gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encapsulation {
    /// ESP in UDP port 4500 (RFC 3948): crosses NAT; what strongSwan's
    /// kernel-libipsec and UDP offloads want.
    Udp,
    /// Raw ESP, IP protocol 50 (needs CAP_NET_RAW).
    Esp,
}

impl fmt::Display for Encapsulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encapsulation::Udp => "udp",
            Encapsulation::Esp => "esp",
        })
    }
}

/// The validated configuration the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[dataplane]`: the data-path threads' waiting.
    pub dataplane: DataplaneConfig,
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// This gateway's name, for logs and the control socket's default path.
    pub name: String,
    /// The WAN address ESP is sent from and received on.
    pub public_address: IpAddr,
    /// Where `ipsecgw status` finds the daemon.
    pub control_socket: PathBuf,
    /// The TUN device.
    pub tun: TunConfig,
    /// The IPsec connections, in the order of the file (the SPD order).
    pub connections: Vec<Connection>,
    /// Gateway-wide IKE settings.
    pub ike: IkeGlobal,
    /// The gateway's routes (`[[route]]`); empty: each connection's remote
    /// subnets are routed into it.
    pub routes: Vec<Route>,
}

/// IKE settings for the whole gateway (`[ike]`).
#[derive(Debug, Clone, Copy)]
pub struct IkeGlobal {
    /// First retransmission timeout; doubled after each (RFC 7296 §2.4).
    pub retransmit_timeout: std::time::Duration,
    /// Retransmissions before the peer is given up.
    pub retransmit_tries: u32,
    /// Half-open IKE SAs before a COOKIE is demanded (RFC 7296 §2.6).
    pub cookie_threshold: usize,
}

/// The TUN device's settings.
#[derive(Debug, Clone)]
pub struct TunConfig {
    /// Interface name.
    pub name: String,
    /// MTU of the TUN device: inner packets up to this size are read.
    pub mtu: u32,
    /// MTU of the WAN path the ESP packets take.
    pub wan_mtu: u32,
    /// Optional address on the TUN device (for the gateway's own traffic
    /// into the tunnel).
    pub address: Option<IpNet>,
    /// TUN offloads (`[tun] offload`): TCP super-packets in, coalesced out.
    pub offload: TunOffload,
}

/// `[dataplane]`: how the data-path threads wait for packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// How long a data-path thread keeps polling without sleeping after
    /// its last packet (`busy_poll_us`): a packet that finds the thread
    /// awake saves a wake-up, tens of microseconds on a virtual machine.
    pub busy_poll: std::time::Duration,
    /// Data-path threads (`threads`): 1 for both directions, so an answer
    /// provoked by the thread's own write is read without a wake-up; or 2,
    /// one per direction, for a gateway with cores to spare and heavy
    /// traffic both ways.
    pub threads: u8,
}

/// Default `threads`: on the 2-core machines `scripts/bench` runs on (both
/// gateways and both hosts on 2 cores), one thread halved the added ping
/// time and moved TCP as fast as two (BENCHMARKS.md).
pub const DEFAULT_THREADS: u8 = 1;

/// Default `busy_poll_us`: covers a LAN round trip through both gateways
/// at a cost of at most this much CPU time per burst of traffic.
pub const DEFAULT_BUSY_POLL_US: u64 = 200;

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            busy_poll: std::time::Duration::from_micros(DEFAULT_BUSY_POLL_US),
            threads: DEFAULT_THREADS,
        }
    }
}

/// `[tun] offload`: whether the TUN device hands over 64 KiB TCP
/// super-packets (IFF_VNET_HDR + TUNSETOFFLOAD) and takes coalesced ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunOffload {
    /// Use them if the kernel accepts them and passes a self-test at
    /// start; the plain device otherwise.
    #[default]
    Auto,
    /// Use them, and refuse to start if the kernel does not take them.
    On,
    /// One packet per read and write.
    Off,
}

impl fmt::Display for TunOffload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunOffload::Auto => "auto",
            TunOffload::On => "on",
            TunOffload::Off => "off",
        })
    }
}

/// One IPsec connection: a peer, the subnets on each side, and its SAs.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Name, unique in the file.
    pub name: String,
    /// The peer's address, and port for UDP encapsulation.
    pub remote: SocketAddr,
    /// UDP or raw ESP.
    pub encapsulation: Encapsulation,
    /// Subnets behind this gateway.
    pub local_subnets: Vec<IpNet>,
    /// Subnets behind the peer: routed into the TUN device.
    pub remote_subnets: Vec<IpNet>,
    /// The largest inner packet that fits the WAN MTU on this connection.
    pub max_inner: usize,
    /// Manually keyed SAs, if configured (outbound, inbound).
    pub manual: Option<(SaConfig, SaConfig)>,
    /// IKEv2 settings, if the SAs are negotiated.
    pub ike: Option<IkeSettings>,
    /// ESP settings every SA of this connection gets (negotiated ones too).
    pub esp: EspSettings,
    /// The ICMP health check whose failure withdraws this connection's routes.
    pub health_check: Option<HealthCheck>,
}

/// ESP settings of a connection, whoever keys it.
#[derive(Debug, Clone, Copy)]
pub struct EspSettings {
    /// Encryption.
    pub algorithm: Algorithm,
    /// 64-bit sequence numbers.
    pub esn: bool,
    /// Anti-replay window.
    pub replay_window: u32,
    /// Byte and packet lifetimes.
    pub lifetime: Lifetime,
    /// Time lifetime of negotiated SAs (rekeyed at 80–90 % of it).
    pub lifetime_time: Option<std::time::Duration>,
    /// DH group for rekeys (perfect forward secrecy), or none.
    pub pfs: Option<ipsecgw_ike::crypto::DhGroup>,
}

/// What `start_action` and `dpd_action` may say (strongSwan's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Negotiate now (start) / again (restart).
    Start,
    /// Negotiate again after a dead peer.
    Restart,
    /// Negotiate when the first packet for the remote subnets arrives.
    Trap,
    /// Do nothing: wait for the peer.
    None,
    /// Forget the SAs.
    Clear,
}

/// IKEv2 settings of a connection.
#[derive(Clone)]
pub struct IkeSettings {
    /// IKE SA proposals, most preferred first.
    pub proposals: Vec<ipsecgw_ike::IkeProposal>,
    /// The pre-shared key.
    pub psk: Zeroizing<Vec<u8>>,
    /// Our identity as text (an address, `@fqdn`, `keyid:...`).
    pub local_id: String,
    /// The identity the peer must present.
    pub remote_id: String,
    /// Liveness check after this much silence; `None`: off.
    pub dpd_delay: Option<std::time::Duration>,
    /// What to do when the peer is found dead: restart, clear or trap.
    pub dpd_action: Action,
    /// IKE SA lifetime (rekeyed at 80–90 % of it); `None`: never.
    pub lifetime: Option<std::time::Duration>,
    /// When to negotiate: start, trap or none.
    pub start_action: Action,
}

impl fmt::Debug for IkeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeSettings")
            .field("proposals", &self.proposals)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("dpd_delay", &self.dpd_delay)
            .field("dpd_action", &self.dpd_action)
            .field("start_action", &self.start_action)
            .field("psk", &"redacted")
            .finish()
    }
}

// ---- the file as written ------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: GatewaySection,
    #[serde(default)]
    tun: Option<Spanned<TunSection>>,
    #[serde(default)]
    ipsec_connection: Vec<Spanned<ConnectionSection>>,
    #[serde(default)]
    ike: Option<GlobalIkeSection>,
    #[serde(default)]
    route: Vec<Spanned<routing::RouteSection>>,
    #[serde(default)]
    dataplane: Option<DataplaneSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataplaneSection {
    #[serde(default)]
    busy_poll_us: Option<Spanned<u64>>,
    #[serde(default)]
    threads: Option<Spanned<u8>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalIkeSection {
    #[serde(default)]
    retransmit_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    retransmit_tries: Option<Spanned<u32>>,
    #[serde(default)]
    cookie_threshold: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewaySection {
    name: Spanned<String>,
    public_address: Spanned<IpAddr>,
    #[serde(default)]
    control_socket: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TunSection {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    wan_mtu: Option<Spanned<u32>>,
    #[serde(default)]
    mtu: Option<Spanned<u32>>,
    #[serde(default)]
    address: Option<IpNet>,
    #[serde(default)]
    offload: Option<TunOffload>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionSection {
    name: Spanned<String>,
    remote_address: Spanned<IpAddr>,
    #[serde(default)]
    remote_port: Option<u16>,
    local_subnets: Spanned<Vec<IpNet>>,
    remote_subnets: Spanned<Vec<IpNet>>,
    #[serde(default)]
    encapsulation: Option<Encapsulation>,
    #[serde(default)]
    legacy: Option<bool>,
    #[serde(default)]
    ipsec: Option<IpsecSection>,
    #[serde(default)]
    manual_keys: Option<Spanned<ManualKeysSection>>,
    #[serde(default)]
    ike: Option<Spanned<IkeSection>>,
    #[serde(default)]
    health_check: Option<Spanned<routing::HealthCheckSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IkeSection {
    #[serde(default)]
    version: Option<Spanned<String>>,
    #[serde(default)]
    proposals: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    psk: Option<Spanned<String>>,
    #[serde(default)]
    psk_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    psk_env: Option<Spanned<String>>,
    #[serde(default)]
    local_id: Option<String>,
    #[serde(default)]
    remote_id: Option<String>,
    #[serde(default)]
    dpd_delay: Option<Spanned<u64>>,
    #[serde(default)]
    dpd_action: Option<Spanned<Action>>,
    #[serde(default)]
    start_action: Option<Spanned<Action>>,
    #[serde(default)]
    lifetime: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IpsecSection {
    #[serde(default)]
    encryption: Option<Spanned<String>>,
    #[serde(default)]
    esn: Option<bool>,
    #[serde(default)]
    replay_window: Option<Spanned<u32>>,
    #[serde(default)]
    lifetime_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    lifetime_packets: Option<Spanned<u64>>,
    #[serde(default)]
    lifetime: Option<Spanned<u64>>,
    #[serde(default)]
    pfs: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualKeysSection {
    outbound_spi: Spanned<u32>,
    inbound_spi: Spanned<u32>,
    #[serde(default)]
    outbound_key: Option<Spanned<String>>,
    #[serde(default)]
    outbound_key_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    outbound_key_env: Option<Spanned<String>>,
    #[serde(default)]
    inbound_key: Option<Spanned<String>>,
    #[serde(default)]
    inbound_key_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    inbound_key_env: Option<Spanned<String>>,
}

impl fmt::Display for ManualKeysSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("manual_keys(redacted)")
    }
}

// ---- parsing and validation ---------------------------------------------

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: None,
        key: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(path, &text, &|name| std::env::var(name).ok())
}

/// Parses config text; `env` looks up environment variables (a parameter so
/// tests need not change the process environment).
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let v = Validator {
        path,
        text,
        env,
        base: path.parent().unwrap_or(Path::new(".")),
    };
    let file: File = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| s.start);
        ConfigError {
            file: path.to_owned(),
            line: at.map(|o| v.line_of(o)),
            key: at.and_then(|o| v.key_at(o)),
            message: e.message().trim().to_owned(),
        }
    })?;
    v.validate(file)
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    base: &'a Path,
}

impl Validator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The dotted key written on the line holding `offset`, with the table
    /// it is in (`ipsec_connection.ipsec.replay_window`), for parse errors
    /// whose message names only the value.
    fn key_at(&self, offset: usize) -> Option<String> {
        let end = offset.min(self.text.len());
        let line_start = self.text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[line_start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
            return None;
        }
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        Some(match table {
            Some(t) if !t.is_empty() => format!("{t}.{key}"),
            _ => key.to_owned(),
        })
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.to_owned(),
            line: Some(self.line_of(span.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    fn validate(&self, file: File) -> Result<Config, ConfigError> {
        let g = file.gateway;
        let name = g.name.get_ref().trim().to_owned();
        if name.is_empty() || name.contains('/') {
            return Err(self.err(
                g.name.span(),
                "gateway.name",
                "give a non-empty name without '/' (it names the control socket)",
            ));
        }
        let public_address = *g.public_address.get_ref();
        if public_address.is_unspecified() {
            return Err(self.err(
                g.public_address.span(),
                "gateway.public_address",
                "give this gateway's WAN address, not an unspecified one (0.0.0.0 or ::)",
            ));
        }
        let control_socket = g
            .control_socket
            .unwrap_or_else(|| PathBuf::from(format!("/run/ipsecgw/{name}.sock")));

        let tun_section = file.tun.map(Spanned::into_inner);
        let (tun_name, wan_mtu, mtu_override, tun_address, tun_offload) = match tun_section {
            Some(t) => (t.name, t.wan_mtu, t.mtu, t.address, t.offload),
            None => (None, None, None, None, None),
        };
        let tun_name_str = match &tun_name {
            Some(n) => {
                let s = n.get_ref();
                if s.is_empty()
                    || s.len() > MAX_IFNAME
                    || s.contains(['/', ' ', '%'])
                    || s == "."
                    || s == ".."
                {
                    return Err(self.err(
                        n.span(),
                        "tun.name",
                        format!(
                            "{s:?} is not a valid interface name: 1 to {MAX_IFNAME} characters, no '/', '%' or space"
                        ),
                    ));
                }
                s.clone()
            }
            None => "ipsecgw0".to_owned(),
        };
        let wan_mtu_value = match &wan_mtu {
            Some(m) => {
                let value = *m.get_ref();
                if !(MIN_WAN_MTU..=MAX_WAN_MTU).contains(&value) {
                    return Err(self.err(
                        m.span(),
                        "tun.wan_mtu",
                        format!("{value} is out of range: use {MIN_WAN_MTU} to {MAX_WAN_MTU}"),
                    ));
                }
                value
            }
            None => 1500,
        };

        let mut connections = Vec::new();
        let mut names = HashSet::new();
        let mut inbound_spis = HashSet::new();
        for spanned in file.ipsec_connection {
            let span = spanned.span();
            let c = spanned.into_inner();
            let conn = self.connection(c, public_address, wan_mtu_value)?;
            if !names.insert(conn.name.clone()) {
                return Err(self.err(
                    span,
                    "ipsec_connection.name",
                    format!(
                        "a connection named {:?} already exists: names must be unique",
                        conn.name
                    ),
                ));
            }
            if let Some((_, inbound)) = &conn.manual {
                if !inbound_spis.insert(inbound.spi) {
                    return Err(self.err(
                        span,
                        "ipsec_connection.manual_keys.inbound_spi",
                        format!(
                            "inbound SPI {:#x} is already used by another connection: inbound SPIs must be unique on a gateway",
                            inbound.spi
                        ),
                    ));
                }
            }
            connections.push(conn);
        }

        // The TUN MTU: the smallest inner packet any connection can carry,
        // so the kernel's own path-MTU machinery keeps packets within it.
        let derived = connections
            .iter()
            .map(|c| c.max_inner as u32)
            .min()
            .unwrap_or_else(|| {
                max_inner(
                    wan_mtu_value,
                    public_address,
                    Encapsulation::Udp,
                    Algorithm::AesGcm16_256,
                ) as u32
            });
        let mtu = match &mtu_override {
            Some(m) => {
                let value = *m.get_ref();
                if value < MIN_TUN_MTU || value > wan_mtu_value {
                    return Err(self.err(
                        m.span(),
                        "tun.mtu",
                        format!(
                            "{value} is out of range: use {MIN_TUN_MTU} to the WAN MTU ({wan_mtu_value}); leave it out to derive {derived} from the WAN MTU"
                        ),
                    ));
                }
                value
            }
            None => derived,
        };
        if mtu < MIN_TUN_MTU {
            return Err(ConfigError {
                file: self.path.to_owned(),
                line: None,
                key: Some("tun.wan_mtu".into()),
                message: format!(
                    "the WAN MTU {wan_mtu_value} leaves an inner MTU of {mtu}, below {MIN_TUN_MTU}: raise it"
                ),
            });
        }

        let routes = self.routes(file.route, &connections)?;
        let g = file.ike.unwrap_or_default();
        let retransmit_timeout = match &g.retransmit_timeout_ms {
            Some(v) if !(50..=60_000).contains(v.get_ref()) => {
                return Err(self.err(
                    v.span(),
                    "ike.retransmit_timeout_ms",
                    "use 50 to 60000 milliseconds (default 1000)",
                ))
            }
            Some(v) => std::time::Duration::from_millis(*v.get_ref()),
            None => std::time::Duration::from_secs(1),
        };
        let retransmit_tries = match &g.retransmit_tries {
            Some(v) if !(1..=20).contains(v.get_ref()) => {
                return Err(self.err(v.span(), "ike.retransmit_tries", "use 1 to 20 (default 5)"))
            }
            Some(v) => *v.get_ref(),
            None => 5,
        };
        let dataplane = file.dataplane.unwrap_or_default();
        let busy_poll_us = match &dataplane.busy_poll_us {
            Some(v) if *v.get_ref() > 100_000 => {
                return Err(self.err(
                    v.span(),
                    "dataplane.busy_poll_us",
                    format!(
                    "use 0 (sleep at once) to 100000 microseconds (default {DEFAULT_BUSY_POLL_US})"
                ),
                ))
            }
            Some(v) => *v.get_ref(),
            None => DEFAULT_BUSY_POLL_US,
        };
        let threads = match &dataplane.threads {
            Some(v) if !(1..=2).contains(v.get_ref()) => {
                return Err(self.err(
                    v.span(),
                    "dataplane.threads",
                    format!("use 1 (one thread for both directions) or 2 (one per direction); default {DEFAULT_THREADS}"),
                ))
            }
            Some(v) => *v.get_ref(),
            None => DEFAULT_THREADS,
        };
        Ok(Config {
            dataplane: DataplaneConfig {
                busy_poll: std::time::Duration::from_micros(busy_poll_us),
                threads,
            },
            ike: IkeGlobal {
                retransmit_timeout,
                retransmit_tries,
                cookie_threshold: g.cookie_threshold.unwrap_or(64),
            },
            path: self.path.to_owned(),
            name,
            public_address,
            control_socket,
            tun: TunConfig {
                name: tun_name_str,
                mtu,
                wan_mtu: wan_mtu_value,
                address: tun_address,
                offload: tun_offload.unwrap_or_default(),
            },
            connections,
            routes,
        })
    }

    fn connection(
        &self,
        c: ConnectionSection,
        public_address: IpAddr,
        wan_mtu: u32,
    ) -> Result<Connection, ConfigError> {
        let name = c.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(self.err(
                c.name.span(),
                "ipsec_connection.name",
                "give the connection a name",
            ));
        }
        let remote_ip = *c.remote_address.get_ref();
        if remote_ip.is_ipv4() != public_address.is_ipv4() || remote_ip.is_unspecified() {
            return Err(self.err(
                c.remote_address.span(),
                "ipsec_connection.remote_address",
                format!(
                    "{remote_ip} cannot be reached from gateway.public_address {public_address}: give the peer's WAN address, of the same IP version"
                ),
            ));
        }
        let encapsulation = c.encapsulation.unwrap_or(Encapsulation::Udp);
        let port = match encapsulation {
            Encapsulation::Udp => c.remote_port.unwrap_or(NAT_T_PORT),
            Encapsulation::Esp => 0,
        };
        let local_subnets = self.subnets(&c.local_subnets, "ipsec_connection.local_subnets")?;
        let remote_subnets = self.subnets(&c.remote_subnets, "ipsec_connection.remote_subnets")?;
        for l in &local_subnets {
            for r in &remote_subnets {
                if l.contains(&r.network()) || r.contains(&l.network()) {
                    return Err(self.err(
                        c.remote_subnets.span(),
                        "ipsec_connection.remote_subnets",
                        format!(
                            "{r} overlaps local subnet {l}: the address blocks of the two sites must not conflict"
                        ),
                    ));
                }
            }
        }

        let ipsec = c.ipsec.unwrap_or_default();
        let algorithm = match &ipsec.encryption {
            Some(e) => e.get_ref().parse::<Algorithm>().map_err(|_| {
                self.err(
                    e.span(),
                    "ipsec_connection.ipsec.encryption",
                    format!(
                        "{:?} is not supported: use \"aes128gcm16\", \"aes256gcm16\", or a CBC suite such as \"aes128-sha1\", \"aes256-sha256\" (aes128|aes192|aes256 with sha1|sha256|sha384|sha512; 3des, des and md5 need legacy = true)",
                        e.get_ref()
                    ),
                )
            })?,
            None => Algorithm::AesGcm16_256,
        };
        let esn = ipsec.esn.unwrap_or(true);
        let replay_window = match &ipsec.replay_window {
            Some(w) => {
                let value = *w.get_ref();
                if !(64..=ipsecgw_esp::MAX_REPLAY_WINDOW).contains(&value) {
                    return Err(self.err(
                        w.span(),
                        "ipsec_connection.ipsec.replay_window",
                        format!(
                            "{value} is out of range: use 64 to {} packets (default {DEFAULT_REPLAY_WINDOW})",
                            ipsecgw_esp::MAX_REPLAY_WINDOW
                        ),
                    ));
                }
                value
            }
            None => DEFAULT_REPLAY_WINDOW,
        };
        let lifetime = Lifetime {
            hard_bytes: ipsec.lifetime_bytes.as_ref().map(|v| *v.get_ref()),
            soft_bytes: ipsec
                .lifetime_bytes
                .as_ref()
                .map(|v| soft_limit(*v.get_ref())),
            hard_packets: ipsec.lifetime_packets.as_ref().map(|v| *v.get_ref()),
            soft_packets: ipsec
                .lifetime_packets
                .as_ref()
                .map(|v| soft_limit(*v.get_ref())),
        };
        for (v, key) in [
            (
                &ipsec.lifetime_bytes,
                "ipsec_connection.ipsec.lifetime_bytes",
            ),
            (
                &ipsec.lifetime_packets,
                "ipsec_connection.ipsec.lifetime_packets",
            ),
        ] {
            if let Some(v) = v {
                if *v.get_ref() < 100 {
                    return Err(self.err(
                        v.span(),
                        key,
                        "a lifetime below 100 expires at once: use a larger value, or leave it out",
                    ));
                }
            }
        }

        let manual = match c.manual_keys {
            None => None,
            Some(m) => {
                let mspan = m.span();
                let m = m.into_inner();
                let spi = |s: &Spanned<u32>, key: &str| -> Result<u32, ConfigError> {
                    let value = *s.get_ref();
                    // RFC 4303 §2.1: SPI 0 is local-only and 1..=255 are reserved by IANA.
                    if value < 256 {
                        return Err(self.err(
                            s.span(),
                            key,
                            format!("SPI {value} is reserved (RFC 4303 §2.1): use 256 to 4294967295, e.g. 0x1001"),
                        ));
                    }
                    Ok(value)
                };
                let out_spi = spi(&m.outbound_spi, "ipsec_connection.manual_keys.outbound_spi")?;
                let in_spi = spi(&m.inbound_spi, "ipsec_connection.manual_keys.inbound_spi")?;
                let out_key = self.key(
                    "outbound",
                    &m.outbound_key,
                    &m.outbound_key_file,
                    &m.outbound_key_env,
                    algorithm,
                    mspan.clone(),
                )?;
                let in_key = self.key(
                    "inbound",
                    &m.inbound_key,
                    &m.inbound_key_file,
                    &m.inbound_key_env,
                    algorithm,
                    mspan,
                )?;
                let sa = |spi, key| SaConfig {
                    spi,
                    algorithm,
                    key,
                    esn,
                    replay_window,
                    lifetime,
                };
                Some((sa(out_spi, out_key), sa(in_spi, in_key)))
            }
        };
        let ike = match c.ike {
            None => None,
            Some(section) => {
                if manual.is_some() {
                    return Err(self.err(
                        section.span(),
                        "ipsec_connection.ike",
                        "a connection is keyed either by IKE or by manual_keys, not both: remove one of the two tables",
                    ));
                }
                Some(self.ike(section, public_address, remote_ip)?)
            }
        };
        // DESIGN.md: the weak members of Alibaba's set only on request.
        let weak: Vec<String> = std::iter::once(algorithm)
            .filter(|a| a.is_legacy())
            .map(|a| a.to_string())
            .chain(
                ike.iter()
                    .flat_map(|i| i.proposals.iter())
                    .filter(|p| p.is_legacy())
                    .map(ToString::to_string),
            )
            .collect();
        if !weak.is_empty() {
            if c.legacy != Some(true) {
                return Err(self.err(
                    c.name.span(),
                    "ipsec_connection.legacy",
                    format!(
                        "{} uses weak algorithms ({}): choose aes128/aes256 with sha1/sha256 and modp2048 or better, or set legacy = true in this connection to accept them for an old peer",
                        name,
                        weak.join(", ")
                    ),
                ));
            }
            tracing::warn!(connection = %name, algorithms = %weak.join(", "), "legacy algorithms enabled: DES, 3DES, MD5 and MODP groups below 2048 bits are weak");
        }
        let health_check = match c.health_check {
            Some(h) => Some(self.health_check(h, &local_subnets, &remote_subnets)?),
            None => None,
        };
        Ok(Connection {
            health_check,
            name,
            remote: SocketAddr::new(remote_ip, port),
            encapsulation,
            local_subnets,
            remote_subnets,
            max_inner: max_inner(wan_mtu, public_address, encapsulation, algorithm),
            manual,
            ike,
            esp: EspSettings {
                algorithm,
                esn,
                replay_window,
                lifetime,
                lifetime_time: self.seconds(&ipsec.lifetime, "ipsec_connection.ipsec.lifetime")?,
                pfs: match &ipsec.pfs {
                    None => None,
                    Some(v) if v.get_ref() == "disabled" || v.get_ref() == "none" => None,
                    Some(v) => Some(v.get_ref().parse().map_err(|_| {
                        self.err(
                            v.span(),
                            "ipsec_connection.ipsec.pfs",
                            format!("{:?} is not a supported group: use \"curve25519\", \"ecp256\" or \"disabled\"", v.get_ref()),
                        )
                    })?),
                },
            },
        })
    }

    fn ike(
        &self,
        section: Spanned<IkeSection>,
        public: IpAddr,
        remote: IpAddr,
    ) -> Result<IkeSettings, ConfigError> {
        let span = section.span();
        let s = section.into_inner();
        if let Some(v) = &s.version {
            match v.get_ref().to_ascii_lowercase().as_str() {
                "2" | "ikev2" => {}
                "1" | "ikev1" => {
                    return Err(self.err(
                        v.span(),
                        "ipsec_connection.ike.version",
                        "this gateway speaks IKEv2 only (IKEv1 is not supported): set version = \"ikev2\" here and choose IKEv2 on the peer (on Alibaba Cloud: IKE version ikev2)",
                    ))
                }
                other => {
                    return Err(self.err(
                        v.span(),
                        "ipsec_connection.ike.version",
                        format!("{other:?} is not an IKE version: use \"ikev2\""),
                    ))
                }
            }
        }
        let proposals = match &s.proposals {
            None => vec![DEFAULT_IKE_PROPOSAL.parse().map_err(|_| {
                self.err(
                    span.clone(),
                    "ipsec_connection.ike.proposals",
                    "internal default invalid",
                )
            })?],
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.err(
                        list.span(),
                        "ipsec_connection.ike.proposals",
                        format!("list at least one proposal, e.g. [\"{DEFAULT_IKE_PROPOSAL}\"]"),
                    ));
                }
                let mut out = Vec::new();
                for p in list.get_ref() {
                    out.push(p.parse::<ipsecgw_ike::IkeProposal>().map_err(|e| {
                        self.err(list.span(), "ipsec_connection.ike.proposals", e.to_string())
                    })?);
                }
                out
            }
        };
        let psk = self.secret(
            "ipsec_connection.ike.psk",
            &s.psk,
            &s.psk_file,
            &s.psk_env,
            span.clone(),
        )?;
        if psk.len() < MIN_PSK_LEN {
            return Err(self.err(
                span,
                "ipsec_connection.ike.psk",
                format!(
                    "the pre-shared key has {} characters: use at least {MIN_PSK_LEN}",
                    psk.len()
                ),
            ));
        }
        let action = |a: &Option<Spanned<Action>>,
                      key: &str,
                      allowed: &[Action],
                      default: Action|
         -> Result<Action, ConfigError> {
            match a {
                None => Ok(default),
                Some(v) if allowed.contains(v.get_ref()) => Ok(*v.get_ref()),
                Some(v) => Err(self.err(
                    v.span(),
                    key,
                    format!(
                        "{:?} is not valid here: use one of {:?}",
                        v.get_ref(),
                        allowed
                    ),
                )),
            }
        };
        let start_action = action(
            &s.start_action,
            "ipsec_connection.ike.start_action",
            &[Action::Start, Action::Trap, Action::None],
            Action::Start,
        )?;
        let dpd_action = action(
            &s.dpd_action,
            "ipsec_connection.ike.dpd_action",
            &[Action::Restart, Action::Clear, Action::Trap],
            Action::Restart,
        )?;
        let dpd_delay = match &s.dpd_delay {
            None => Some(std::time::Duration::from_secs(DEFAULT_DPD_DELAY)),
            Some(v) if *v.get_ref() == 0 => None,
            Some(v) if *v.get_ref() > 86_400 => {
                return Err(self.err(
                    v.span(),
                    "ipsec_connection.ike.dpd_delay",
                    "use 0 (off) to 86400 seconds",
                ))
            }
            Some(v) => Some(std::time::Duration::from_secs(*v.get_ref())),
        };
        Ok(IkeSettings {
            lifetime: self.seconds(&s.lifetime, "ipsec_connection.ike.lifetime")?,
            proposals,
            psk,
            local_id: s.local_id.unwrap_or_else(|| public.to_string()),
            remote_id: s.remote_id.unwrap_or_else(|| remote.to_string()),
            dpd_delay,
            dpd_action,
            start_action,
        })
    }

    /// A lifetime in seconds: the product's range 0 to 86400 (0: no
    /// time-based rekeying), default 86400.
    fn seconds(
        &self,
        v: &Option<Spanned<u64>>,
        key: &str,
    ) -> Result<Option<std::time::Duration>, ConfigError> {
        match v {
            None => Ok(Some(std::time::Duration::from_secs(DEFAULT_LIFETIME))),
            Some(v) if *v.get_ref() == 0 => Ok(None),
            Some(v) if *v.get_ref() > DEFAULT_LIFETIME || *v.get_ref() < 10 => Err(self.err(
                v.span(),
                key,
                format!("{} s is out of range: use 10 to {DEFAULT_LIFETIME} seconds, or 0 for no time-based rekeying", v.get_ref()),
            )),
            Some(v) => Ok(Some(std::time::Duration::from_secs(*v.get_ref()))),
        }
    }

    /// A secret given inline, in a file or in an environment variable,
    /// without its trailing newline.
    fn secret(
        &self,
        key: &str,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<PathBuf>>,
        env: &Option<Spanned<String>>,
        section: Range<usize>,
    ) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let t = self.secret_text(key, "", inline, file, env, section)?;
        Ok(Zeroizing::new(
            t.text.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
        ))
    }

    /// Reads exactly one of `key` (inline), `key_file` or `key_env`.
    fn secret_text(
        &self,
        key: &str,
        what: &str,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<PathBuf>>,
        env: &Option<Spanned<String>>,
        section: Range<usize>,
    ) -> Result<SecretText, ConfigError> {
        let given = [inline.is_some(), file.is_some(), env.is_some()]
            .iter()
            .filter(|&&b| b)
            .count();
        if given != 1 {
            return Err(self.err(
                section,
                key,
                format!(
                    "give exactly one of {key} {what}, {key}_file (a file holding it) or {key}_env (an environment variable holding it); {given} given"
                ),
            ));
        }
        if let Some(k) = inline {
            return Ok(SecretText {
                text: Zeroizing::new(k.get_ref().clone()),
                span: k.span(),
                key: key.to_owned(),
                source: "the config".into(),
            });
        }
        if let Some(f) = file {
            let path = self.base.join(f.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                self.err(
                    f.span(),
                    &format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            return Ok(SecretText {
                text: Zeroizing::new(text),
                span: f.span(),
                key: format!("{key}_file"),
                source: path.display().to_string(),
            });
        }
        let Some(e) = env else {
            return Err(self.err(section, key, "no secret given"));
        };
        let text = (self.env)(e.get_ref()).ok_or_else(|| {
            self.err(
                e.span(),
                &format!("{key}_env"),
                format!("the environment variable {} is not set", e.get_ref()),
            )
        })?;
        Ok(SecretText {
            text: Zeroizing::new(text),
            span: e.span(),
            key: format!("{key}_env"),
            source: format!("${}", e.get_ref()),
        })
    }

    fn subnets(&self, list: &Spanned<Vec<IpNet>>, key: &str) -> Result<Vec<IpNet>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(self.err(
                list.span(),
                key,
                "list at least one subnet, e.g. [\"10.1.1.0/24\"]",
            ));
        }
        let mut out = Vec::new();
        for net in list.get_ref() {
            if net.trunc() != *net {
                return Err(self.err(
                    list.span(),
                    key,
                    format!("{net} has host bits set: did you mean {}?", net.trunc()),
                ));
            }
            out.push(*net);
        }
        Ok(out)
    }

    /// Loads one key from exactly one of: the config text, a file, an
    /// environment variable. The hex text is zeroized after decoding.
    fn key(
        &self,
        dir: &str,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<PathBuf>>,
        env: &Option<Spanned<String>>,
        algorithm: Algorithm,
        section: Range<usize>,
    ) -> Result<SaKey, ConfigError> {
        let SecretText {
            text,
            span,
            key,
            source,
        } = self.secret_text(
            &format!("ipsec_connection.manual_keys.{dir}_key"),
            "(hex)",
            inline,
            file,
            env,
            section,
        )?;
        let bytes = decode_hex(&text).map_err(|why| {
            self.err(
                span.clone(),
                &key,
                format!("the key in {source} is not valid hex ({why}): write it as 0x followed by {} hex digits", 2 * algorithm.key_len()),
            )
        })?;
        if bytes.len() != algorithm.key_len() {
            return Err(self.err(
                span,
                &key,
                format!(
                    "{algorithm} needs {} bytes of key material (the key followed by the 4-byte salt, RFC 4106 §8.1), {} hex digits; the key in {source} has {} bytes",
                    algorithm.key_len(),
                    2 * algorithm.key_len(),
                    bytes.len()
                ),
            ));
        }
        Ok(SaKey::new(bytes))
    }
}

/// A secret's text and where it came from (for errors that never show it).
struct SecretText {
    text: Zeroizing<String>,
    span: Range<usize>,
    key: String,
    source: String,
}

/// Hex with an optional `0x` prefix; whitespace and `:` separators ignored.
fn decode_hex(text: &str) -> Result<Vec<u8>, &'static str> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        t.bytes()
            .filter(|b| !b.is_ascii_whitespace() && *b != b':')
            .collect(),
    );
    if digits.len() % 2 != 0 {
        return Err("odd number of digits");
    }
    let mut out = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let hi = (pair[0] as char)
            .to_digit(16)
            .ok_or("a character is not a hex digit")?;
        let lo = (pair[1] as char)
            .to_digit(16)
            .ok_or("a character is not a hex digit")?;
        out.push((hi * 16 + lo) as u8);
    }
    Ok(out)
}

/// The largest inner packet whose ESP packet still fits the WAN MTU.
pub fn max_inner(wan_mtu: u32, public: IpAddr, encap: Encapsulation, alg: Algorithm) -> usize {
    let outer_ip = if public.is_ipv4() { 20 } else { 40 };
    let udp = match encap {
        Encapsulation::Udp => 8,
        Encapsulation::Esp => 0,
    };
    let budget = (wan_mtu as usize).saturating_sub(outer_ip + udp);
    // RFC 4303 §2: SPI + sequence (8), IV, payload, padding so that payload +
    // pad + 2 fills whole cipher blocks (4-byte words for AEAD), pad length
    // and next header (2), ICV.
    let fixed = 8 + alg.iv_len() + 2 + alg.icv_len();
    let room = budget.saturating_sub(fixed);
    let align = match alg {
        Algorithm::Cbc { cipher, .. } => cipher.block_len(),
        _ => 4,
    };
    // The largest L with (L + 2) rounded up to `align` still within room + 2.
    let aligned = (room + 2) / align * align;
    aligned.saturating_sub(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY36: &str =
        "0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223";

    fn base(extra: &str) -> String {
        format!(
            r#"
[gateway]
name = "onprem"
public_address = "198.51.100.1"

[tun]
name = "ipsgw0"

[[ipsec_connection]]
name = "hangzhou"
remote_address = "198.51.100.2"
local_subnets = ["10.1.1.0/24"]
remote_subnets = ["192.168.4.0/24"]
{extra}
"#
        )
    }

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/ipsecgw/test.toml"), text, &|name| {
            (name == "KEY").then(|| KEY36.to_owned())
        })
    }

    #[test]
    fn a_minimal_connection_parses_with_defaults() {
        let cfg = parse_str(&base("")).unwrap();
        assert_eq!(cfg.name, "onprem");
        assert_eq!(
            cfg.control_socket,
            PathBuf::from("/run/ipsecgw/onprem.sock")
        );
        let c = &cfg.connections[0];
        assert_eq!(c.encapsulation, Encapsulation::Udp);
        assert_eq!(c.remote, "198.51.100.2:4500".parse().unwrap());
        assert!(c.manual.is_none());
        // 1500 - 20 (IPv4) - 8 (UDP) - 8 (ESP) - 8 (IV) - 2 - 16 (ICV), 4-aligned.
        assert_eq!(c.max_inner, 1438);
        assert_eq!(cfg.tun.mtu, 1438);
    }

    #[test]
    fn dataplane_section_defaults_and_bounds() {
        let cfg = parse_str(&base("")).unwrap();
        assert_eq!(
            cfg.dataplane.busy_poll,
            std::time::Duration::from_micros(DEFAULT_BUSY_POLL_US)
        );
        let cfg = parse_str(&format!("{}\n[dataplane]\nbusy_poll_us = 0\n", base(""))).unwrap();
        assert!(cfg.dataplane.busy_poll.is_zero());
        let err = parse_str(&format!(
            "{}\n[dataplane]\nbusy_poll_us = 200000\n",
            base("")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dataplane.busy_poll_us") && err.contains("100000"),
            "{err}"
        );
        let err = parse_str(&format!("{}\n[dataplane]\nbusy_pol = 1\n", base("")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("busy_pol"), "{err}");
        let cfg = parse_str(&format!("{}\n[dataplane]\nthreads = 1\n", base(""))).unwrap();
        assert_eq!(cfg.dataplane.threads, 1);
        assert_eq!(
            parse_str(&base("")).unwrap().dataplane.threads,
            DEFAULT_THREADS
        );
        let err = parse_str(&format!("{}\n[dataplane]\nthreads = 3\n", base("")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dataplane.threads"), "{err}");
    }

    #[test]
    fn tun_offload_defaults_to_auto_and_takes_on_and_off() {
        assert_eq!(parse_str(&base("")).unwrap().tun.offload, TunOffload::Auto);
        for (text, want) in [
            ("on", TunOffload::On),
            ("off", TunOffload::Off),
            ("auto", TunOffload::Auto),
        ] {
            let cfg = parse_str(&base("").replace(
                "name = \"ipsgw0\"\n",
                &format!("name = \"ipsgw0\"\noffload = \"{text}\"\n"),
            ))
            .unwrap();
            assert_eq!(cfg.tun.offload, want);
            assert_eq!(cfg.tun.offload.to_string(), text);
        }
        let err = parse_str(&base("").replace(
            "name = \"ipsgw0\"\n",
            "name = \"ipsgw0\"\noffload = \"yes\"\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("offload") || err.contains("auto"), "{err}");
    }

    #[test]
    fn max_inner_fits_exactly() {
        for mtu in 1280..1600u32 {
            for encap in [Encapsulation::Udp, Encapsulation::Esp] {
                let l = max_inner(
                    mtu,
                    "1.2.3.4".parse().unwrap(),
                    encap,
                    Algorithm::AesGcm16_256,
                );
                let udp = if encap == Encapsulation::Udp { 8 } else { 0 };
                let esp = |l: usize| 16 + (l + 2).div_ceil(4) * 4 + 16;
                assert!(20 + udp + esp(l) <= mtu as usize, "{mtu} {l}");
                // One more byte of inner packet must not fit once padding is counted.
                assert!(20 + udp + esp(l + 4) > mtu as usize);
            }
        }
    }

    #[test]
    fn manual_keys_from_text_file_and_env() {
        let dir = std::env::temp_dir().join(format!("ipsecgw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keyfile = dir.join("in.key");
        std::fs::write(&keyfile, format!("{KEY36}\n")).unwrap();
        let text = base(&format!(
            r#"
[ipsec_connection.manual_keys]
outbound_spi = 0x1001
inbound_spi = 0x2001
outbound_key_env = "KEY"
inbound_key_file = "{}"
"#,
            keyfile.display()
        ));
        let cfg = parse_str(&text).unwrap();
        let (out, inb) = cfg.connections[0].manual.as_ref().unwrap();
        assert_eq!(out.spi, 0x1001);
        assert_eq!(inb.spi, 0x2001);
        assert_eq!(out.key.len(), 36);
        // Keys never show in Debug output.
        assert!(!format!("{cfg:?}").contains("0405060708"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse_str(&base("colour = \"blue\""))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/ipsecgw/test.toml:"), "{e}");
        assert!(e.contains("colour"), "{e}");
        assert!(e.contains("remote_subnets"), "lists what is valid: {e}");

        let e = parse_str(&base("[ipsec_connection.ipsec]\nencryption = \"des\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":15: `ipsec_connection.ipsec.encryption`"),
            "{e}"
        );
        assert!(e.contains("aes256gcm16"), "{e}");

        let e = parse_str(&base(
            "[ipsec_connection.manual_keys]\noutbound_spi = 5\ninbound_spi = 0x2001\noutbound_key = \"00\"\ninbound_key = \"00\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(":15: `ipsec_connection.manual_keys.outbound_spi`"),
            "{e}"
        );

        let e = parse_str(&base(
            "[ipsec_connection.manual_keys]\noutbound_spi = 0x1001\ninbound_spi = 0x2001\noutbound_key = \"0x0011\"\ninbound_key_env = \"KEY\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("outbound_key"), "{e}");
        assert!(e.contains("36 bytes"), "{e}");
        assert!(!e.contains("0011"), "never echo key material: {e}");

        let e = parse_str(&base(
            "[ipsec_connection.manual_keys]\noutbound_spi = 0x1001\ninbound_spi = 0x2001\noutbound_key_env = \"NOPE\"\ninbound_key_env = \"KEY\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("NOPE is not set"), "{e}");
    }

    #[test]
    fn overlapping_sites_are_rejected() {
        let text = base("").replace("192.168.4.0/24", "10.1.0.0/16");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.contains("must not conflict"), "{e}");
        assert!(e.contains(":13:"), "{e}");
    }

    #[test]
    fn host_bits_and_wrong_families_are_rejected() {
        let e = parse_str(&base("").replace("10.1.1.0/24", "10.1.1.1/24"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 10.1.1.0/24"), "{e}");
        let e = parse_str(&base("").replace("198.51.100.2", "2001:db8::2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("same IP version"), "{e}");
    }

    #[test]
    fn duplicate_inbound_spis_are_rejected() {
        let keys = format!(
            "[ipsec_connection.manual_keys]\noutbound_spi = 0x1001\ninbound_spi = 0x2001\noutbound_key = \"{KEY36}\"\ninbound_key = \"{KEY36}\"\n"
        );
        let second = base(&keys).replace("[gateway]\nname = \"onprem\"\npublic_address = \"198.51.100.1\"\n\n[tun]\nname = \"ipsgw0\"\n", "").replace("hangzhou", "beijing").replace("192.168.4.0/24", "192.168.1.0/24");
        let text = format!("{}{}", base(&keys), second);
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.contains("inbound SPI 0x2001 is already used"), "{e}");
    }

    #[test]
    fn ike_connections_parse_with_defaults() {
        let cfg = parse_str(&base("[ipsec_connection.ike]\npsk_env = \"KEY\"")).unwrap();
        let ike = cfg.connections[0].ike.as_ref().unwrap();
        assert_eq!(
            ike.proposals[0].to_string(),
            "aes256gcm16-prfsha256-curve25519"
        );
        assert_eq!(ike.local_id, "198.51.100.1");
        assert_eq!(ike.remote_id, "198.51.100.2");
        assert_eq!(ike.start_action, Action::Start);
        assert_eq!(ike.dpd_action, Action::Restart);
        assert_eq!(ike.dpd_delay, Some(std::time::Duration::from_secs(30)));
        assert!(
            !format!("{cfg:?}").contains("0405060708"),
            "the PSK is not in Debug output"
        );
    }

    #[test]
    fn ikev1_is_refused_with_what_to_do_instead() {
        let e = parse_str(&base(
            "[ipsec_connection.ike]\nversion = \"ikev1\"\npsk = \"long enough secret\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(":15: `ipsec_connection.ike.version`"), "{e}");
        assert!(e.contains("IKEv2 only"), "{e}");
        assert!(e.contains("ikev2"), "{e}");
    }

    #[test]
    fn ike_mistakes_are_named() {
        let e = parse_str(&base("[ipsec_connection.ike]\npsk = \"short\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 8"), "{e}");
        assert!(!e.contains("short\""), "never echo the PSK: {e}");
        let e = parse_str(&base("[ipsec_connection.ike]\npsk_env = \"KEY\"\nproposals = [\"aes256gcm16-prfsha256-modp4096\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("modp4096"), "{e}");
        assert!(e.contains("curve25519"), "says what is valid: {e}");
        let e = parse_str(&base(
            "[ipsec_connection.ike]\npsk_env = \"KEY\"\nstart_action = \"restart\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("start_action"), "{e}");
        let both = format!(
            "[ipsec_connection.ike]\npsk_env = \"KEY\"\n[ipsec_connection.manual_keys]\noutbound_spi = 0x1001\ninbound_spi = 0x2001\noutbound_key = \"{KEY36}\"\ninbound_key = \"{KEY36}\""
        );
        let e = parse_str(&base(&both)).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn routes_and_health_checks_parse_and_are_checked() {
        let two = format!(
            "{}\n[ipsec_connection.health_check]\nsource = \"10.1.1.1\"\ndestination = \"192.168.4.10\"\n{}",
            base("[ipsec_connection.ike]\npsk_env = \"KEY\""),
            "[[ipsec_connection]]\nname = \"standby\"\nremote_address = \"198.51.100.3\"\nlocal_subnets = [\"10.1.1.0/24\"]\nremote_subnets = [\"192.168.4.0/24\"]\n[ipsec_connection.ike]\npsk_env = \"KEY\"\n"
        );
        let routes = "[[route]]\ndestination = \"192.168.4.0/24\"\nconnection = \"hangzhou\"\nweight = 100\n[[route]]\ndestination = \"192.168.4.0/24\"\nconnection = \"standby\"\nweight = 0\npublish = false\n";
        let cfg = parse_str(&format!("{two}{routes}")).unwrap();
        let h = cfg.connections[0].health_check.unwrap();
        assert_eq!(
            h.interval,
            std::time::Duration::from_secs(3),
            "the product's default"
        );
        assert_eq!(h.retries, 3);
        assert!(cfg.connections[1].health_check.is_none());
        assert_eq!(cfg.routes.len(), 2);
        assert_eq!(
            (
                cfg.routes[1].connection,
                cfg.routes[1].weight,
                cfg.routes[1].publish
            ),
            (1, 0, false)
        );

        let bad = |text: String, key: &str, words: &str| {
            let e = parse_str(&text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(words), "{e}");
            assert!(e.contains("test.toml:"), "names the file and line: {e}");
        };
        bad(
            format!("{two}{}", routes.replace("weight = 0", "weight = 50")),
            "route.weight",
            "100 (active) or 0",
        );
        bad(
            format!("{two}{}", routes.replace("weight = 0", "weight = 100")),
            "route.weight",
            "one active",
        );
        bad(
            format!("{two}{}", routes.replace("\"standby\"", "\"nowhere\"")),
            "route.connection",
            "nowhere",
        );
        bad(
            format!("{two}[[route]]\ndestination = \"172.16.0.0/16\"\nconnection = \"hangzhou\"\n"),
            "route.destination",
            "would drop it",
        );
        bad(format!("{two}[[route]]\ndestination = \"192.168.4.0/24\"\nsource = \"10.9.0.0/16\"\nconnection = \"hangzhou\"\n"), "route.source", "local subnets");
        bad(
            two.replace(
                "destination = \"192.168.4.10\"",
                "destination = \"10.1.1.9\"",
            ),
            "health_check.destination",
            "remote subnets",
        );
        bad(
            two.replace("source = \"10.1.1.1\"", "source = \"192.168.4.1\""),
            "health_check.source",
            "local subnets",
        );
        bad(
            two.replace(
                "destination = \"192.168.4.10\"",
                "destination = \"192.168.4.10\"\ninterval = 0",
            ),
            "health_check.interval",
            "1 to 60",
        );
        bad(format!("{two}[[route]]\ndestination = \"192.168.4.0/24\"\nconnection = \"hangzhou\"\nmetric = 5\n"), "metric", "unknown field");
    }

    #[test]
    fn alibaba_suites_parse_and_weak_ones_need_legacy() {
        let cbc = "[ipsec_connection.ipsec]\nencryption = \"aes128-sha1\"\n[ipsec_connection.ike]\npsk_env = \"KEY\"\nproposals = [\"aes128-sha1-modp2048\"]";
        let cfg = parse_str(&base(cbc)).unwrap();
        let c = &cfg.connections[0];
        assert_eq!(c.esp.algorithm.to_string(), "aes128-sha1");
        // 1500 - 20 - 8 - 8 (ESP) - 16 (IV) - 2 - 12 (ICV) = 1434, then
        // payload + 2 must fill 16-byte blocks: 1422.
        assert_eq!(c.max_inner, 1422);
        let weak = "[ipsec_connection.ipsec]\nencryption = \"3des-md5\"\n[ipsec_connection.ike]\npsk_env = \"KEY\"\nproposals = [\"aes128-md5-modp1024\"]";
        let e = parse_str(&base(weak)).unwrap_err().to_string();
        assert!(e.contains("legacy = true"), "{e}");
        assert!(
            e.contains("3des-md5") && e.contains("modp1024"),
            "names the weak ones: {e}"
        );
        let ok = format!("legacy = true\n{weak}");
        assert!(parse_str(&base(&ok)).is_ok());
    }
}

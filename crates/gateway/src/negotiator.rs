//! The IKEv2 driver: owns the sans-IO [`Endpoint`], UDP 500, the clock, and
//! applies the endpoint's events to the data-path threads (install and
//! remove SAs). IKE on UDP 4500 reaches it from the inbound thread, which
//! owns that socket; it sends on 4500 through the same socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ipsecgw_esp::{Algorithm, InboundSa, OutboundSa, SaConfig, SaKey};
use ipsecgw_ike::crypto::{Cipher, Integ};
use ipsecgw_ike::{
    identity_from_str, ChildSa, ConnectionConfig, DownReason, Endpoint, EndpointConfig,
    EspProposal, Event, IkeSaStatus,
};
use ipsecgw_policy::TrafficSelector;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Action, Config, Encapsulation, NAT_T_PORT};
use crate::dataplane::stats::{ChildView, IkeDrops, IkeSaView};
use crate::sys::socket::WanSocket;
use crate::worker::{CommandSender, InCmd, OutCmd, ToIke};

/// IKE's own port (RFC 7296 §2).
const IKE_PORT: u16 = 500;
/// Four zero octets in front of IKE on port 4500 (RFC 3948 §2.2).
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Wait before negotiating again after a failure or a dead peer.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longest datagram read on UDP 500.
const MAX_IKE_DATAGRAM: usize = 65_535;

/// Requests from the control socket.
#[derive(Debug)]
pub enum ControlReq {
    /// The IKE SAs, for status.
    Status(oneshot::Sender<(Vec<IkeSaView>, IkeDrops)>),
    /// Negotiate connection NAME now.
    Up(String, oneshot::Sender<Result<String, String>>),
    /// Delete connection NAME's SAs.
    Down(String, oneshot::Sender<Result<String, String>>),
    /// Rekey connection NAME's CHILD SAs (or, with `true`, its IKE SA) now.
    Rekey(String, bool, oneshot::Sender<Result<String, String>>),
}

/// The daemon's clock: the only place outside tests that reads it.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// Everything the driver needs, built before the runtime loop starts.
pub struct Negotiator {
    endpoint: Endpoint,
    cfg: Arc<Config>,
    /// Endpoint connection index → config connection index.
    map: Vec<usize>,
    sock500: UdpSocket,
    sock4500: Arc<WanSocket>,
    local: SocketAddr,
    out_cmd: CommandSender<OutCmd>,
    in_cmd: CommandSender<InCmd>,
    retries: Vec<(Instant, usize)>,
    /// Outbound SAs of rekeys we answered, held until the old SA's DELETE
    /// (make-before-break), by (config connection, inbound SPI).
    held: std::collections::HashMap<(usize, u32), OutCmd>,
}

impl std::fmt::Debug for Negotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Negotiator")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The data plane's algorithm for a negotiated ESP proposal (matched by
/// IKEv2 transform IDs, so both crates keep their own types).
fn esp_algorithm(p: &EspProposal) -> Option<Algorithm> {
    let (encr, bits) = p.cipher.transform();
    Algorithm::from_transforms(encr, bits, p.integ.map(Integ::id))
}

/// The proposal to offer for the data plane's configured algorithm.
fn esp_proposal(a: Algorithm, esn: bool) -> Option<EspProposal> {
    let (encr, bits, integ) = a.transforms();
    Some(EspProposal {
        cipher: Cipher::from_transform(encr, bits)?,
        integ: match integ {
            Some(id) if id != 0 => Some(Integ::from_id(id)?),
            _ => None,
        },
        esn,
    })
}

impl Negotiator {
    /// Binds UDP 500 and builds the endpoint from the connections that
    /// have `[ipsec_connection.ike]`. `None` when no connection does.
    pub async fn new(
        cfg: Arc<Config>,
        sock4500: Option<Arc<WanSocket>>,
        out_cmd: CommandSender<OutCmd>,
        in_cmd: CommandSender<InCmd>,
    ) -> anyhow::Result<Option<Self>> {
        let mut map = Vec::new();
        let mut conns = Vec::new();
        for (i, c) in cfg.connections.iter().enumerate() {
            let Some(ike) = &c.ike else { continue };
            let esp = esp_proposal(c.esp.algorithm, c.esp.esn).with_context(|| {
                format!(
                    "connection {}: {} cannot be negotiated",
                    c.name, c.esp.algorithm
                )
            })?;
            conns.push(ConnectionConfig {
                name: c.name.clone(),
                remote_addr: c.remote.ip(),
                local_id: identity_from_str(&ike.local_id),
                remote_id: identity_from_str(&ike.remote_id),
                psk: ike.psk.clone(),
                ike_proposals: ike.proposals.clone(),
                esp_proposals: vec![esp],
                local_ts: c
                    .local_subnets
                    .iter()
                    .map(|n| TrafficSelector::from_subnet(*n))
                    .collect(),
                remote_ts: c
                    .remote_subnets
                    .iter()
                    .map(|n| TrafficSelector::from_subnet(*n))
                    .collect(),
                force_encap: c.encapsulation == Encapsulation::Udp,
                dpd_delay: ike.dpd_delay,
                ike_lifetime: ike.lifetime,
                child_lifetime: c.esp.lifetime_time,
                pfs: c.esp.pfs,
            });
            map.push(i);
        }
        if conns.is_empty() {
            return Ok(None);
        }
        let Some(sock4500) = sock4500 else {
            anyhow::bail!("IKE needs the UDP 4500 socket");
        };
        let local = SocketAddr::new(cfg.public_address, IKE_PORT);
        let sock500 = UdpSocket::bind(local).await.with_context(|| {
            format!("cannot bind IKE on UDP {local} (is another IKE daemon running?)")
        })?;
        let endpoint = Endpoint::new(
            EndpointConfig {
                connections: conns,
                retransmit_timeout: cfg.ike.retransmit_timeout,
                retransmit_tries: cfg.ike.retransmit_tries,
                cookie_threshold: cfg.ike.cookie_threshold,
            },
            Box::new(rand_core::OsRng),
        );
        Ok(Some(Self {
            endpoint,
            cfg,
            map,
            sock500,
            sock4500,
            local,
            out_cmd,
            in_cmd,
            retries: Vec::new(),
            held: std::collections::HashMap::new(),
        }))
    }

    /// Runs until `shutdown` fires; then deletes every IKE SA (telling the
    /// peers) and returns.
    pub async fn run(
        mut self,
        mut from_dp: mpsc::Receiver<ToIke>,
        mut control: mpsc::Receiver<ControlReq>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let t = now();
        for i in 0..self.map.len() {
            let start = self.ike_settings(i).map(|s| s.start_action);
            if start == Some(Action::Start) {
                self.endpoint.initiate(t, i, self.local);
            }
        }
        self.flush().await;
        let mut buf = vec![0u8; MAX_IKE_DATAGRAM];
        loop {
            let deadline = self
                .endpoint
                .poll_timeout()
                .into_iter()
                .chain(self.retries.iter().map(|(t, _)| *t))
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = self.sock500.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        let local = self.local;
                        self.endpoint.handle_datagram(now(), local, from, buf.get(..n).unwrap_or(&[]));
                    }
                }
                Some(msg) = from_dp.recv() => match msg {
                    ToIke::Datagram { from, data } => {
                        let local = SocketAddr::new(self.local.ip(), NAT_T_PORT);
                        self.endpoint.handle_datagram(now(), local, from, &data);
                    }
                    ToIke::Lifetime { conn, event } => {
                        let spi = match event {
                            ipsecgw_esp::SaEvent::SoftLifetime { spi } | ipsecgw_esp::SaEvent::HardLifetime { spi } => spi,
                        };
                        if let Some(i) = self.map.iter().position(|&c| c == conn) {
                            self.endpoint.rekey_child_sa(now(), i, spi);
                        }
                    }
                    ToIke::Acquire(cfg_idx) => {
                        if let Some(i) = self.map.iter().position(|&c| c == cfg_idx) {
                            if !self.endpoint.is_active(i) {
                                tracing::info!(connection = %self.cfg.connections[cfg_idx].name, "traffic for the remote subnets: negotiating (trap)");
                                self.endpoint.initiate(now(), i, self.local);
                            }
                        }
                    }
                },
                Some(req) = control.recv() => self.control(req),
                _ = sleep => {
                    let t = now();
                    self.endpoint.handle_timeout(t);
                    let due: Vec<usize> = self.retries.iter().filter(|(at, _)| *at <= t).map(|(_, i)| *i).collect();
                    self.retries.retain(|(at, _)| *at > t);
                    for i in due {
                        if !self.endpoint.is_active(i) {
                            self.endpoint.initiate(t, i, self.local);
                        }
                    }
                }
                _ = &mut shutdown => {
                    let t = now();
                    for i in 0..self.map.len() {
                        self.endpoint.delete(t, i);
                    }
                    self.flush().await;
                    return;
                }
            }
            self.flush().await;
        }
    }

    fn ike_settings(&self, i: usize) -> Option<&crate::config::IkeSettings> {
        self.map
            .get(i)
            .and_then(|&c| self.cfg.connections.get(c))
            .and_then(|c| c.ike.as_ref())
    }

    fn control(&mut self, req: ControlReq) {
        let t = now();
        match req {
            ControlReq::Status(reply) => {
                let c = self.endpoint.counters();
                let drops = IkeDrops {
                    malformed: c.malformed,
                    unknown_spi: c.unknown_spi,
                    unknown_peer: c.unknown_peer,
                    bad_message_id: c.bad_message_id,
                    auth_failures: c.auth_failures,
                    cookies_sent: c.cookies_sent,
                };
                let sas = self
                    .endpoint
                    .status(t)
                    .iter()
                    .map(|s| self.view(s))
                    .collect();
                let _ = reply.send((sas, drops));
            }
            ControlReq::Up(name, reply) => {
                let r = match self.find(&name) {
                    Some(i) => {
                        self.endpoint.initiate(t, i, self.local);
                        Ok(format!("initiating {name}"))
                    }
                    None => Err(self.unknown(&name)),
                };
                let _ = reply.send(r);
            }
            ControlReq::Rekey(name, ike, reply) => {
                let r = match self.find(&name) {
                    Some(i) if ike => {
                        self.endpoint.rekey_ike(t, i);
                        Ok(format!("rekeying the IKE SA of {name}"))
                    }
                    Some(i) => {
                        self.endpoint.rekey_child(t, i);
                        Ok(format!("rekeying the CHILD SAs of {name}"))
                    }
                    None => Err(self.unknown(&name)),
                };
                let _ = reply.send(r);
            }
            ControlReq::Down(name, reply) => {
                let r = match self.find(&name) {
                    Some(i) => {
                        self.retries.retain(|(_, c)| *c != i);
                        self.endpoint.delete(t, i);
                        Ok(format!("deleted the SAs of {name}"))
                    }
                    None => Err(self.unknown(&name)),
                };
                let _ = reply.send(r);
            }
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.map
            .iter()
            .position(|&c| self.cfg.connections[c].name == name)
    }

    fn unknown(&self, name: &str) -> String {
        let names: Vec<&str> = self
            .map
            .iter()
            .map(|&c| self.cfg.connections[c].name.as_str())
            .collect();
        format!(
            "no IKE connection named {name:?}; there are: {}",
            names.join(", ")
        )
    }

    fn view(&self, s: &IkeSaStatus) -> IkeSaView {
        let name = self
            .map
            .get(s.conn)
            .map(|&c| self.cfg.connections[c].name.clone())
            .unwrap_or_default();
        IkeSaView {
            name,
            state: s.state.to_owned(),
            initiator: s.initiator,
            local: s.local.to_string(),
            remote: s.remote.to_string(),
            spi_i: hex::encode(s.spi_i),
            spi_r: hex::encode(s.spi_r),
            proposal: s.proposal.map(|p| p.to_string()),
            established_secs: s.established_for.map(|d| d.as_secs()),
            rekey_in_secs: s.rekey_in.map(|d| d.as_secs()),
            nat: s.nat,
            children: s
                .children
                .iter()
                .map(|c| ChildView {
                    inbound_spi: format!("{:08x}", c.inbound_spi),
                    outbound_spi: format!("{:08x}", c.outbound_spi),
                    proposal: c.proposal.to_string(),
                    local_ts: c.local_ts.iter().map(ToString::to_string).collect(),
                    remote_ts: c.remote_ts.iter().map(ToString::to_string).collect(),
                    age_secs: c.age.as_secs(),
                    rekey_in_secs: c.rekey_in.map(|d| d.as_secs()),
                    bytes_in: 0,
                    packets_in: 0,
                    bytes_out: 0,
                    packets_out: 0,
                })
                .collect(),
        }
    }

    /// Sends what the endpoint wants sent and applies its events.
    async fn flush(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            // A NAT-keepalive (one 0xFF octet, RFC 3948 §2.3) goes bare; IKE
            // on port 4500 carries the non-ESP marker.
            let r = if t.local.port() == NAT_T_PORT && t.data == [0xff] {
                self.sock4500.send_to(&t.data, t.remote)
            } else if t.local.port() == NAT_T_PORT {
                let mut d = Vec::with_capacity(NON_ESP_MARKER.len() + t.data.len());
                d.extend_from_slice(&NON_ESP_MARKER);
                d.extend_from_slice(&t.data);
                self.sock4500.send_to(&d, t.remote)
            } else {
                self.sock500.send_to(&t.data, t.remote).await
            };
            if let Err(e) = r {
                tracing::debug!(peer = %t.remote, error = %e, "cannot send an IKE message");
            }
        }
        while let Some(ev) = self.endpoint.poll_event() {
            self.apply(ev).await;
        }
    }

    async fn apply(&mut self, ev: Event) {
        match ev {
            Event::IkeUp { .. } => {}
            Event::ChildUp(child) => self.install(&child).await,
            Event::ChildActivate { conn, inbound_spi } => {
                let Some(&c) = self.map.get(conn) else { return };
                if let Some(cmd) = self.held.remove(&(c, inbound_spi)) {
                    tracing::debug!(connection = %self.cfg.connections[c].name, inbound_spi = %format_args!("{inbound_spi:08x}"), "rekeyed CHILD SA now carries outbound traffic");
                    self.out_cmd.send(cmd);
                }
            }
            Event::ChildDown {
                conn,
                inbound_spi,
                outbound_spi,
            } => {
                let Some(&c) = self.map.get(conn) else { return };
                tracing::info!(connection = %self.cfg.connections[c].name, inbound_spi = %format_args!("{inbound_spi:08x}"), outbound_spi = %format_args!("{outbound_spi:08x}"), "CHILD SA removed");
                self.held.remove(&(c, inbound_spi));
                self.out_cmd.send(OutCmd::Remove {
                    conn: c,
                    spi: outbound_spi,
                });
                self.in_cmd.send(InCmd::Remove { spi: inbound_spi });
            }
            Event::IkeDown { conn, reason, .. } => {
                let Some(ike) = self.ike_settings(conn) else {
                    return;
                };
                let retry = match &reason {
                    DownReason::PeerDead => matches!(ike.dpd_action, Action::Restart),
                    DownReason::Failed(_) => {
                        ike.start_action == Action::Start || ike.dpd_action == Action::Restart
                    }
                    _ => false,
                };
                if retry {
                    self.retries.push((now() + RETRY_AFTER, conn));
                }
            }
        }
    }

    async fn install(&mut self, child: &ChildSa) {
        let Some(&c) = self.map.get(child.conn) else {
            return;
        };
        let conn = &self.cfg.connections[c];
        let Some(algorithm) = esp_algorithm(&child.proposal) else {
            tracing::warn!(connection = %conn.name, cipher = ?child.proposal.cipher, "the negotiated CHILD SA cannot be installed: no ESP mapping for its cipher");
            return;
        };
        let mk = |spi: u32, key: &[u8]| SaConfig {
            spi,
            algorithm,
            key: SaKey::new(key.to_vec()),
            esn: child.proposal.esn,
            replay_window: conn.esp.replay_window,
            lifetime: conn.esp.lifetime,
        };
        let (inbound, outbound) = match (
            InboundSa::new(mk(child.inbound_spi, &child.inbound_key)),
            OutboundSa::new(mk(child.outbound_spi, &child.outbound_key)),
        ) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(connection = %conn.name, error = %e, "the negotiated CHILD SA cannot be installed");
                return;
            }
        };
        let (remote, encapsulation) = if child.encap {
            (
                SocketAddr::new(child.peer.ip(), child.peer.port()),
                Encapsulation::Udp,
            )
        } else {
            (SocketAddr::new(child.peer.ip(), 0), Encapsulation::Esp)
        };
        tracing::info!(
            connection = %conn.name,
            inbound_spi = %format_args!("{:08x}", child.inbound_spi),
            outbound_spi = %format_args!("{:08x}", child.outbound_spi),
            proposal = %child.proposal,
            encapsulation = %encapsulation,
            local_ts = ?child.local_ts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            remote_ts = ?child.remote_ts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "CHILD SA installed"
        );
        let (done, installed) = oneshot::channel();
        self.in_cmd.send(InCmd::Install {
            conn: c,
            sa: Box::new(inbound),
            local: child.local_ts.clone(),
            remote: child.remote_ts.clone(),
            done: Some(done),
        });
        // Inbound first: the peer's answers to our first packets must find
        // their SA (a second at most; the inbound thread wakes at once).
        let _ = tokio::time::timeout(Duration::from_secs(1), installed).await;
        let cmd = OutCmd::Install {
            conn: c,
            sa: Box::new(outbound),
            remote,
            encapsulation,
        };
        if child.activate {
            self.out_cmd.send(cmd);
        } else {
            self.held.insert((c, child.inbound_spi), cmd);
        }
    }
}

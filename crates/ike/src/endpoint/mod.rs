//! The IKEv2 endpoint: every IKE SA of one gateway, driven by datagrams and
//! time (the quinn-proto shape).
//!
//! The driver calls, in this order, after any input:
//! [`Endpoint::handle_datagram`] / [`Endpoint::handle_timeout`] /
//! a command ([`Endpoint::initiate`], [`Endpoint::delete`]); then drains
//! [`Endpoint::poll_transmit`], then [`Endpoint::poll_event`], then asks
//! [`Endpoint::poll_timeout`] for the next deadline.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsecgw_policy::TrafficSelector;
use zeroize::Zeroizing;

use crate::config::{identity_to_string, ConnectionConfig, EndpointConfig};
use crate::crypto::{
    child_keymat, cookie, nat_detection_hash, psk_auth, verify_cookie, verify_psk_auth, DhGroup,
    DhSecret, IkeKeys, Rng, SkCrypter,
};
use crate::event::{ChildSa, DownReason, Event, IkeSaId, Transmit};
use crate::proposal::{self, EspProposal, IkeProposal};
mod rekey;
mod timers;

use crate::wire::{
    emit_payloads, parse_payloads, Delete, ExchangeType, Flags, Header, Identification, Message,
    Notify, NotifyType, Payload, PayloadType, ProtocolId, SaPayload, IKE_HEADER_LEN,
};

/// Nonce length we send: at least half the PRF key size and at least 16
/// (RFC 7296 §2.10); 32 suits every PRF we offer.
const NONCE_LEN: usize = 32;
/// A half-open responder SA is forgotten after this long without IKE_AUTH.
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The IKE port and the NAT-T port (RFC 7296 §2, RFC 3948).
const IKE_PORT: u16 = 500;
const NAT_T_PORT: u16 = 4500;
/// NAT-keepalive interval (RFC 3948 §2.3 suggests 20 seconds).
const NAT_KEEPALIVE: Duration = Duration::from_secs(20);
/// Auth method 2: shared key message integrity code (RFC 7296 §3.8).
const AUTH_PSK: u8 = 2;
/// Version of the cookie secret (RFC 7296 §2.6); one secret per endpoint.
const COOKIE_VERSION: u8 = 1;

/// A CHILD SA about to be recorded.
struct NewChild {
    proposal: EspProposal,
    inbound_spi: u32,
    outbound_spi: u32,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
    /// A fresh DH shared secret (PFS), if the exchange had KE payloads.
    g_ir: Option<Zeroizing<Vec<u8>>>,
    /// The nonces of the exchange that created it.
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// Whether we initiated that exchange (decides the key order).
    we_initiated: bool,
    /// Whether its outbound SA carries traffic at once.
    activate: bool,
}

/// Counters of what the endpoint dropped, by cause.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IkeCounters {
    /// Datagrams that did not parse, or failed to decrypt.
    pub malformed: u64,
    /// Datagrams for no IKE SA we have.
    pub unknown_spi: u64,
    /// IKE_SA_INIT from an address no connection names.
    pub unknown_peer: u64,
    /// Requests with an unexpected message ID (§2.3).
    pub bad_message_id: u64,
    /// Authentication failures (either side).
    pub auth_failures: u64,
    /// COOKIE demands sent.
    pub cookies_sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Initiator: IKE_SA_INIT sent.
    InitSent,
    /// Initiator: IKE_AUTH sent.
    AuthSent,
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
    HalfOpen,
    /// Authenticated.
    Established,
    /// We sent a DELETE for the IKE SA.
    Deleting,
}

/// What a request we sent was for, to interpret its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Init,
    Auth,
    Dpd,
    DeleteIke,
    /// DELETE of the CHILD SA with this inbound SPI.
    DeleteChild(u32),
    /// CREATE_CHILD_SA rekeying the CHILD SA with this inbound SPI.
    RekeyChild(u32),
    /// CREATE_CHILD_SA rekeying the IKE SA.
    RekeyIke,
}

#[derive(Debug)]
struct Pending {
    id: u32,
    kind: RequestKind,
    bytes: Vec<u8>,
    tries: u32,
    timeout: Duration,
    deadline: Instant,
    /// What a CREATE_CHILD_SA request needs to finish when answered.
    exchange: Option<rekey::Outstanding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildState {
    /// Carrying traffic.
    Installed,
    /// Replaced by a rekey; waiting for its DELETE.
    Replaced,
}

#[derive(Debug)]
struct Child {
    inbound_spi: u32,
    outbound_spi: u32,
    proposal: EspProposal,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
    established: Instant,
    rekey_at: Option<Instant>,
    state: ChildState,
    /// A rekey of it as responder whose outbound SA waits for the old SA's
    /// DELETE before it carries traffic (make-before-break).
    successor: Option<u32>,
}

struct IkeSa {
    conn: usize,
    role: Role,
    state: State,
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    local: SocketAddr,
    remote: SocketAddr,
    proposal: Option<IkeProposal>,
    dh: Option<DhSecret>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    cookie: Option<Vec<u8>>,
    keys: Option<IkeKeys>,
    crypter_out: Option<SkCrypter>,
    crypter_in: Option<SkCrypter>,
    /// RealMessage1 and RealMessage2 of §2.15, as sent / received.
    init_request: Vec<u8>,
    init_response: Vec<u8>,
    next_iv: u64,
    /// Our next request's message ID.
    next_request_id: u32,
    /// The message ID we expect on the peer's next request.
    peer_next_id: u32,
    pending: Option<Pending>,
    queued: VecDeque<RequestKind>,
    /// The last response we sent, for a retransmitted request (§2.1).
    last_response: Option<(u32, Vec<u8>)>,
    /// Our inbound SPI offered in IKE_AUTH (initiator).
    offered_child_spi: u32,
    children: Vec<Child>,
    nat: bool,
    created: Instant,
    established: Option<Instant>,
    last_heard: Instant,
    /// When this IKE SA is to be rekeyed.
    rekey_at: Option<Instant>,
    /// A CREATE_CHILD_SA we answered while our own rekey of the same SA
    /// was outstanding (RFC 7296 §2.8.1).
    collision: Option<rekey::Collision>,
    /// Replaced by a rekey: going away is not a failure.
    rekeyed: bool,
    /// This end is behind a NAT: it keeps the mapping open (RFC 3948 §2.3).
    behind_nat: bool,
    next_keepalive: Option<Instant>,
}

impl std::fmt::Debug for IkeSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeSa")
            .field("conn", &self.conn)
            .field("role", &self.role)
            .field("state", &self.state)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl IkeSa {
    fn our_spi(&self) -> [u8; 8] {
        match self.role {
            Role::Initiator => self.spi_i,
            Role::Responder => self.spi_r,
        }
    }

    fn header(
        &self,
        exchange: ExchangeType,
        response: bool,
        id: u32,
        next: PayloadType,
        len: usize,
    ) -> Header {
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: next,
            major: 2,
            minor: 0,
            exchange,
            flags: Flags {
                initiator: self.role == Role::Initiator,
                response,
                version: false,
            },
            message_id: id,
            length: len as u32,
        }
    }

    /// Builds a message whose payloads all go inside the SK payload.
    fn seal(
        &mut self,
        exchange: ExchangeType,
        response: bool,
        id: u32,
        inner: &[Payload],
    ) -> Option<Vec<u8>> {
        let crypter = self.crypter_out.as_ref()?;
        let mut plain = Vec::new();
        let first = emit_payloads(inner, &mut plain);
        let sk_len = crypter.overhead(plain.len()) + plain.len();
        let total = IKE_HEADER_LEN + 4 + sk_len;
        let header = self.header(exchange, response, id, PayloadType::Sk, total);
        let mut out = vec![0u8; IKE_HEADER_LEN];
        header.emit(&mut out);
        let sk_payload_len = (4 + sk_len) as u16;
        out.push(u8::from(first));
        out.push(0);
        out.extend_from_slice(&sk_payload_len.to_be_bytes());
        let sk = crypter.try_encrypt(self.next_iv, &out, &plain).ok()?;
        self.next_iv += 1;
        out.extend_from_slice(&sk);
        Some(out)
    }

    /// Decrypts the SK payload of a received message.
    fn open(&self, datagram: &[u8], msg: &Message) -> Option<Vec<Payload>> {
        let crypter = self.crypter_in.as_ref()?;
        let Some(Payload::Sk { first_inner, data }) = msg.payloads.last() else {
            return None;
        };
        let end = (msg.header.length as usize).min(datagram.len());
        let aad_end = end.checked_sub(data.len())?;
        let plain = crypter.decrypt(datagram.get(..aad_end)?, data).ok()?;
        parse_payloads(*first_inner, &plain).ok()
    }
}

/// All IKE SAs of one gateway.
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: Box<dyn Rng + Send>,
    sas: HashMap<[u8; 8], IkeSa>,
    /// Responder: (peer, SPIi) → our SPIr, to recognise a retransmitted
    /// IKE_SA_INIT (§2.1).
    half_open: HashMap<(SocketAddr, [u8; 8]), [u8; 8]>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    cookie_secret: [u8; 32],
    counters: IkeCounters,
    /// Every IKE SA's next deadline, earliest first, so `poll_timeout` and
    /// `handle_timeout` cost does not grow with the number of SAs.
    timers: timers::Timers,
    /// Connection index by peer address (first connection wins).
    by_peer: HashMap<std::net::IpAddr, usize>,
    /// SAs created during the current call, to be scheduled at its end.
    fresh: Vec<[u8; 8]>,
    /// Inbound CHILD SPIs handed out (see `random_child_spi`).
    child_spis: std::collections::HashSet<u32>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("sas", &self.sas.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// One IKE SA as `ipsecgw status` shows it.
#[derive(Debug, Clone)]
pub struct IkeSaStatus {
    /// Connection index.
    pub conn: usize,
    /// Our SPI.
    pub ike: IkeSaId,
    /// SPIs on the wire.
    pub spi_i: [u8; 8],
    /// SPIs on the wire.
    pub spi_r: [u8; 8],
    /// Whether we initiated it.
    pub initiator: bool,
    /// `CONNECTING`, `ESTABLISHED` or `DELETING`.
    pub state: &'static str,
    /// The peer.
    pub remote: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// What was agreed, once known.
    pub proposal: Option<IkeProposal>,
    /// Age since it was established.
    pub established_for: Option<Duration>,
    /// Time until it is rekeyed, if a lifetime is set.
    pub rekey_in: Option<Duration>,
    /// Whether a NAT was detected (or encapsulation forced).
    pub nat: bool,
    /// Its CHILD SAs.
    pub children: Vec<ChildStatus>,
}

/// One CHILD SA as status shows it.
#[derive(Debug, Clone)]
pub struct ChildStatus {
    /// Our inbound SPI.
    pub inbound_spi: u32,
    /// Our outbound SPI.
    pub outbound_spi: u32,
    /// Algorithms.
    pub proposal: EspProposal,
    /// Local selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// Remote selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Age.
    pub age: Duration,
    /// Time until it is rekeyed, if a lifetime is set.
    pub rekey_in: Option<Duration>,
}

fn notify(kind: NotifyType, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify::new(kind, data))
}

fn find_notify(payloads: &[Payload], kind: NotifyType) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind == kind => Some(n),
        _ => None,
    })
}

fn first_error(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind.is_error() => Some(n.kind),
        _ => None,
    })
}

/// NAT detection (RFC 7296 §2.23): whether the peer's NAT_DETECTION_SOURCE_IP
/// matches the address we see it at, and its NAT_DETECTION_DESTINATION_IP
/// the address we received on. A mismatch means a NAT on that side.
fn nat_seen(
    payloads: &[Payload],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    peer: SocketAddr,
    us: SocketAddr,
) -> (bool, bool) {
    let matches = |kind, addr| {
        find_notify(payloads, kind)
            .is_some_and(|n| n.data == nat_detection_hash(spi_i, spi_r, addr))
    };
    (
        matches(NotifyType::NatDetectionSourceIp, peer),
        matches(NotifyType::NatDetectionDestinationIp, us),
    )
}

/// The payloads of one message, by kind (the last of a kind wins).
#[derive(Default)]
struct Found<'a> {
    id_i: Option<&'a Identification>,
    id_r: Option<&'a Identification>,
    auth: Option<(u8, &'a [u8])>,
    sa: Option<&'a SaPayload>,
    nonce: Option<&'a [u8]>,
    ke: Option<(u16, &'a [u8])>,
    ts_i: Option<&'a [TrafficSelector]>,
    ts_r: Option<&'a [TrafficSelector]>,
}

impl<'a> Found<'a> {
    fn of(payloads: &'a [Payload]) -> Self {
        let mut f = Found::default();
        for p in payloads {
            match p {
                Payload::IdI(i) => f.id_i = Some(i),
                Payload::IdR(i) => f.id_r = Some(i),
                Payload::Auth { method, data } => f.auth = Some((*method, data)),
                Payload::Sa(s) => f.sa = Some(s),
                Payload::Nonce(n) => f.nonce = Some(n),
                Payload::Ke { group, data } => f.ke = Some((*group, data)),
                Payload::TsI(t) => f.ts_i = Some(t),
                Payload::TsR(t) => f.ts_r = Some(t),
                _ => {}
            }
        }
        f
    }

    /// The one proposal a response carries (§3.3: exactly one).
    fn chosen(&self) -> Option<&'a crate::wire::Proposal> {
        self.sa
            .filter(|s| s.proposals.len() == 1)
            .and_then(|s| s.proposals.first())
    }
}

/// The SK payload protection of an IKE SA, (outbound, inbound) for our
/// role: the initiator sends with SK_ei, the responder with SK_er (§2.14).
fn crypters(p: &IkeProposal, keys: &IkeKeys, role: Role) -> Option<(SkCrypter, SkCrypter)> {
    let (out, inb, out_a, inb_a) = match role {
        Role::Initiator => (&keys.sk_ei, &keys.sk_er, &keys.sk_ai, &keys.sk_ar),
        Role::Responder => (&keys.sk_er, &keys.sk_ei, &keys.sk_ar, &keys.sk_ai),
    };
    let make = |e: &[u8], a: &[u8]| match p.integ {
        Some(i) => SkCrypter::with_integrity(p.cipher, i, e, a).ok(),
        None => SkCrypter::new(p.cipher, e).ok(),
    };
    Some((make(out, out_a)?, make(inb, inb_a)?))
}

/// Narrows the peer's selectors to ours (§2.9): every non-empty
/// intersection, without duplicates.
fn narrow(theirs: &[TrafficSelector], ours: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for t in theirs {
        for o in ours {
            if let Some(n) = t.narrow(o) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

fn subset(got: &[TrafficSelector], offered: &[TrafficSelector]) -> bool {
    !got.is_empty()
        && got
            .iter()
            .all(|g| offered.iter().any(|o| g.is_subset_of(o)))
}

impl Endpoint {
    /// An endpoint for these connections; randomness (SPIs, nonces, DH
    /// secrets, the cookie secret) comes from `rng`.
    pub fn new(cfg: EndpointConfig, mut rng: Box<dyn Rng + Send>) -> Self {
        let mut cookie_secret = [0u8; 32];
        rng.fill_bytes(&mut cookie_secret);
        let mut by_peer = HashMap::new();
        for (i, c) in cfg.connections.iter().enumerate() {
            by_peer.entry(c.remote_addr).or_insert(i);
        }
        Self {
            timers: timers::Timers::default(),
            by_peer,
            fresh: Vec::new(),
            child_spis: std::collections::HashSet::new(),
            cfg,
            rng,
            sas: HashMap::new(),
            half_open: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            cookie_secret,
            counters: IkeCounters::default(),
        }
    }

    /// The connection configs.
    pub fn connections(&self) -> &[ConnectionConfig] {
        &self.cfg.connections
    }

    /// What was dropped, by cause.
    pub fn counters(&self) -> IkeCounters {
        self.counters
    }

    /// Every IKE SA, for status.
    pub fn status(&self, now: Instant) -> Vec<IkeSaStatus> {
        let mut v: Vec<IkeSaStatus> = self
            .sas
            .values()
            .map(|sa| IkeSaStatus {
                conn: sa.conn,
                ike: sa.our_spi(),
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                initiator: sa.role == Role::Initiator,
                state: match sa.state {
                    State::Established => "ESTABLISHED",
                    State::Deleting => "DELETING",
                    _ => "CONNECTING",
                },
                remote: sa.remote,
                local: sa.local,
                proposal: sa.proposal,
                established_for: sa.established.map(|t| now.saturating_duration_since(t)),
                rekey_in: sa.rekey_at.map(|t| t.saturating_duration_since(now)),
                nat: sa.nat,
                children: sa
                    .children
                    .iter()
                    .map(|c| ChildStatus {
                        inbound_spi: c.inbound_spi,
                        outbound_spi: c.outbound_spi,
                        proposal: c.proposal,
                        local_ts: c.local_ts.clone(),
                        remote_ts: c.remote_ts.clone(),
                        age: now.saturating_duration_since(c.established),
                        rekey_in: c.rekey_at.map(|t| t.saturating_duration_since(now)),
                    })
                    .collect(),
            })
            .collect();
        v.sort_by_key(|s| (s.conn, s.ike));
        v
    }

    /// Whether connection `conn` has an IKE SA (established or on its way).
    pub fn is_active(&self, conn: usize) -> bool {
        self.sas.values().any(|sa| sa.conn == conn)
    }

    /// Next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant [`Self::handle_timeout`] must be called at.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first()
    }

    fn deadline(&self, sa: &IkeSa) -> Option<Instant> {
        let mut d: Option<Instant> = sa.pending.as_ref().map(|p| p.deadline);
        if sa.state == State::HalfOpen {
            let t = sa.created + HALF_OPEN_TIMEOUT;
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        if let (State::Established, true, Some(t)) = (sa.state, sa.behind_nat, sa.next_keepalive) {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        if sa.state == State::Established && sa.pending.is_none() {
            if let Some(delay) = self.cfg.connections.get(sa.conn).and_then(|c| c.dpd_delay) {
                let t = sa.last_heard + delay;
                d = Some(d.map_or(t, |x| x.min(t)));
            }
            let rekeys = sa.rekey_at.into_iter().chain(
                sa.children
                    .iter()
                    .filter(|c| c.state == ChildState::Installed)
                    .filter_map(|c| c.rekey_at),
            );
            for t in rekeys {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        }
        d
    }

    fn random_spi8(&mut self) -> [u8; 8] {
        loop {
            let mut spi = [0u8; 8];
            self.rng.fill_bytes(&mut spi);
            if spi != [0; 8] && !self.sas.contains_key(&spi) {
                return spi;
            }
        }
    }

    /// A fresh inbound ESP SPI, outside the reserved 0..=255 (RFC 4303 §2.1)
    /// and unused by any CHILD SA of this endpoint.
    ///
    /// Every SPI handed out stays in `child_spis` (a superset of those in
    /// use) until the set is rebuilt from the live SAs once it has grown to
    /// a few times their number: amortised O(1), where scanning every SA
    /// per CHILD SA made a ten-thousand-SA responder slow.
    fn random_child_spi(&mut self) -> u32 {
        if self.child_spis.len() > 4 * self.sas.len() + 1024 {
            self.child_spis = self
                .sas
                .values()
                .flat_map(|sa| {
                    std::iter::once(sa.offered_child_spi)
                        .chain(sa.children.iter().map(|c| c.inbound_spi))
                })
                .collect();
        }
        loop {
            let spi = self.rng.next_u32();
            if spi > 255 && self.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0u8; NONCE_LEN];
        self.rng.fill_bytes(&mut n);
        n
    }

    // ---- commands --------------------------------------------------------

    /// Starts an IKE SA (and its first CHILD SA) for connection `conn`, from
    /// `local` (port 500) to the peer's port 500.
    fn initiate_unsettled(&mut self, now: Instant, conn: usize, local: SocketAddr) {
        let Some(c) = self.cfg.connections.get(conn).cloned() else {
            return;
        };
        let Some(first) = c.ike_proposals.first().copied() else {
            return;
        };
        let remote = SocketAddr::new(c.remote_addr, IKE_PORT);
        let spi_i = self.random_spi8();
        let ni = self.nonce();
        let dh = DhSecret::generate(first.dh, &mut *self.rng);
        let child_spi = self.random_child_spi();
        let sa = IkeSa {
            conn,
            role: Role::Initiator,
            state: State::InitSent,
            spi_i,
            spi_r: [0; 8],
            local: SocketAddr::new(local.ip(), IKE_PORT),
            remote,
            proposal: None,
            dh: Some(dh),
            ni,
            nr: Vec::new(),
            cookie: None,
            keys: None,
            crypter_out: None,
            crypter_in: None,
            init_request: Vec::new(),
            init_response: Vec::new(),
            next_iv: 0,
            next_request_id: 0,
            peer_next_id: 0,
            pending: None,
            queued: VecDeque::new(),
            last_response: None,
            offered_child_spi: child_spi,
            children: Vec::new(),
            nat: false,
            created: now,
            established: None,
            last_heard: now,
            rekey_at: None,
            collision: None,
            rekeyed: false,
            behind_nat: false,
            next_keepalive: None,
        };
        tracing::info!(connection = %c.name, peer = %remote, "initiating IKE SA");
        self.sas.insert(spi_i, sa);
        self.fresh.push(spi_i);
        self.send_init(now, spi_i);
    }

    /// Deletes connection `conn`'s IKE SAs (and with them their CHILD SAs).
    fn delete_unsettled(&mut self, now: Instant, conn: usize) {
        let ids: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let established = self
                .sas
                .get(&id)
                .is_some_and(|sa| sa.state == State::Established);
            if established {
                self.request(now, id, RequestKind::DeleteIke);
            }
            // Make-before-break does not apply to a deliberate delete: the
            // data plane forgets the SAs now; the DELETE is a courtesy.
            self.remove(id, DownReason::Deleted);
        }
    }

    /// Rekeys connection `conn`'s CHILD SAs now (as their lifetime would).
    fn rekey_child_unsettled(&mut self, now: Instant, conn: usize) {
        let targets: Vec<([u8; 8], u32)> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == conn && sa.state == State::Established)
            .flat_map(|(id, sa)| {
                sa.children
                    .iter()
                    .filter(|c| c.state == ChildState::Installed)
                    .map(move |c| (*id, c.inbound_spi))
            })
            .collect();
        for (id, spi) in targets {
            self.request(now, id, RequestKind::RekeyChild(spi));
        }
    }

    /// Rekeys the CHILD SA of connection `conn` that uses `spi` (inbound or
    /// outbound) — the data plane's soft lifetime (bytes or packets) ran
    /// out. Nothing happens if that SA is already being replaced.
    fn rekey_child_sa_unsettled(&mut self, now: Instant, conn: usize, spi: u32) {
        let target = self.sas.iter().find_map(|(id, sa)| {
            (sa.conn == conn && sa.state == State::Established)
                .then(|| {
                    sa.children
                        .iter()
                        .find(|c| {
                            c.state == ChildState::Installed
                                && (c.inbound_spi == spi || c.outbound_spi == spi)
                        })
                        .map(|c| (*id, c.inbound_spi))
                })
                .flatten()
        });
        if let Some((id, inbound)) = target {
            self.request(now, id, RequestKind::RekeyChild(inbound));
        }
    }

    /// Rekeys connection `conn`'s IKE SA now.
    fn rekey_ike_unsettled(&mut self, now: Instant, conn: usize) {
        let ids: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == conn && sa.state == State::Established && !sa.rekeyed)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.request(now, id, RequestKind::RekeyIke);
        }
    }

    // ---- input -----------------------------------------------------------

    /// Handles one IKE datagram (without the non-ESP marker) received on
    /// `local` from `remote`.
    fn handle_datagram_unsettled(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) {
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(peer = %remote, error = %e, "malformed IKE message dropped");
                self.counters.malformed += 1;
                return;
            }
        };
        let h = msg.header;
        if h.major != 2 {
            // §1.5: a version we do not speak; answering is optional and
            // only for requests. Drop, and count.
            self.counters.malformed += 1;
            return;
        }
        // The sender's I flag says whether it is the original initiator; if
        // so, we are the responder and our SPI is SPIr.
        let ours = if h.flags.initiator { h.spi_r } else { h.spi_i };
        if h.exchange == ExchangeType::IkeSaInit && !h.flags.response && h.flags.initiator {
            if h.spi_r != [0; 8] {
                self.counters.unknown_spi += 1;
                return;
            }
            self.on_init_request(now, local, remote, data, &msg);
            return;
        }
        let Some(sa) = self.sas.get(&ours) else {
            self.counters.unknown_spi += 1;
            return;
        };
        // A response must answer a request we made in this role.
        let we_initiated = sa.role == Role::Initiator;
        if h.flags.initiator == we_initiated {
            self.counters.malformed += 1;
            return;
        }
        if h.flags.response {
            self.on_response(now, ours, local, remote, data, &msg);
        } else {
            self.on_request(now, ours, local, remote, data, &msg);
        }
    }

    /// Retransmits, checks liveness, expires half-open SAs.
    fn handle_timeout_unsettled(&mut self, now: Instant) {
        let ids = self.timers.due(now);
        for id in ids {
            let Some(sa) = self.sas.get_mut(&id) else {
                continue;
            };
            if sa.state == State::Established && sa.behind_nat {
                match sa.next_keepalive {
                    Some(t) if now < t => {}
                    Some(_) => {
                        // RFC 3948 §2.3: one 0xFF octet keeps the NAT's
                        // mapping for port 4500 open.
                        self.transmits.push_back(Transmit {
                            local: sa.local,
                            remote: sa.remote,
                            data: vec![0xff],
                        });
                        sa.next_keepalive = Some(now + NAT_KEEPALIVE);
                    }
                    None => sa.next_keepalive = Some(now + NAT_KEEPALIVE),
                }
            }
            if sa.state == State::HalfOpen && now >= sa.created + HALF_OPEN_TIMEOUT {
                let key = (sa.remote, sa.spi_i);
                self.half_open.remove(&key);
                self.sas.remove(&id);
                continue;
            }
            if let Some(p) = sa.pending.as_mut() {
                if now >= p.deadline {
                    if p.tries >= self.cfg.retransmit_tries {
                        let reason = match p.kind {
                            RequestKind::Init | RequestKind::Auth => {
                                DownReason::Failed("the peer did not answer".into())
                            }
                            _ => DownReason::PeerDead,
                        };
                        let name = self
                            .cfg
                            .connections
                            .get(sa.conn)
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        tracing::warn!(connection = %name, peer = %sa.remote, "no answer after {} retransmissions", p.tries);
                        self.remove(id, reason);
                        continue;
                    }
                    p.tries += 1;
                    p.timeout *= 2;
                    p.deadline = now + p.timeout;
                    self.transmits.push_back(Transmit {
                        local: sa.local,
                        remote: sa.remote,
                        data: p.bytes.clone(),
                    });
                }
                continue;
            }
            if sa.state == State::Established {
                if sa.rekey_at.is_some_and(|t| now >= t) {
                    sa.rekey_at = None;
                    self.request(now, id, RequestKind::RekeyIke);
                    continue;
                }
                let due = sa.children.iter_mut().find(|c| {
                    c.state == ChildState::Installed && c.rekey_at.is_some_and(|t| now >= t)
                });
                if let Some(c) = due {
                    c.rekey_at = None;
                    let spi = c.inbound_spi;
                    self.request(now, id, RequestKind::RekeyChild(spi));
                    continue;
                }
                let dpd = self.cfg.connections.get(sa.conn).and_then(|c| c.dpd_delay);
                if let Some(delay) = dpd {
                    if now >= sa.last_heard + delay {
                        self.request(now, id, RequestKind::Dpd);
                    }
                }
            }
        }
    }

    // ---- sending ---------------------------------------------------------

    fn send_init(&mut self, now: Instant, id: [u8; 8]) {
        let Some(sa) = self.sas.get(&id) else { return };
        let Some(c) = self.cfg.connections.get(sa.conn) else {
            return;
        };
        let Some(dh) = sa.dh.as_ref() else { return };
        let mut payloads = Vec::new();
        if let Some(cookie) = &sa.cookie {
            // §2.6: the COOKIE notify comes first.
            payloads.push(notify(NotifyType::Cookie, cookie.clone()));
        }
        // The KE group goes first among the proposals so the responder's
        // first choice matches it where it can.
        let mut props: Vec<IkeProposal> = c.ike_proposals.clone();
        props.sort_by_key(|p| p.dh != dh.group());
        payloads.push(Payload::Sa(SaPayload {
            proposals: props
                .iter()
                .enumerate()
                .map(|(i, p)| p.to_wire(i as u8 + 1, Vec::new()))
                .collect(),
        }));
        payloads.push(Payload::Ke {
            group: dh.group().id(),
            data: dh.public(),
        });
        payloads.push(Payload::Nonce(sa.ni.clone()));
        let src = if c.force_encap {
            // Like strongSwan's `encap = yes`: a source hash that cannot
            // match makes both ends see a NAT and move to UDP 4500.
            let mut fake = [0u8; 20];
            fake.copy_from_slice(&nat_detection_hash(&sa.spi_i, &[0xff; 8], sa.local));
            fake
        } else {
            nat_detection_hash(&sa.spi_i, &[0; 8], sa.local)
        };
        payloads.push(notify(NotifyType::NatDetectionSourceIp, src.to_vec()));
        payloads.push(notify(
            NotifyType::NatDetectionDestinationIp,
            nat_detection_hash(&sa.spi_i, &[0; 8], sa.remote).to_vec(),
        ));
        let msg = Message {
            header: sa.header(ExchangeType::IkeSaInit, false, 0, PayloadType::None, 0),
            payloads,
        };
        let bytes = msg.emit();
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.init_request = bytes.clone();
        sa.next_request_id = 1;
        self.start_request(now, id, 0, RequestKind::Init, bytes);
    }

    fn start_request(
        &mut self,
        now: Instant,
        id: [u8; 8],
        msg_id: u32,
        kind: RequestKind,
        bytes: Vec<u8>,
    ) {
        self.start_request_with(now, id, msg_id, kind, bytes, None);
    }

    fn start_request_with(
        &mut self,
        now: Instant,
        id: [u8; 8],
        msg_id: u32,
        kind: RequestKind,
        bytes: Vec<u8>,
        exchange: Option<rekey::Outstanding>,
    ) {
        let timeout = self.cfg.retransmit_timeout;
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        self.transmits.push_back(Transmit {
            local: sa.local,
            remote: sa.remote,
            data: bytes.clone(),
        });
        sa.pending = Some(Pending {
            id: msg_id,
            kind,
            bytes,
            tries: 0,
            timeout,
            deadline: now + timeout,
            exchange,
        });
    }

    /// Sends (or queues behind the outstanding one: window size 1, §2.3) an
    /// encrypted request.
    fn request(&mut self, now: Instant, id: [u8; 8], kind: RequestKind) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        if sa.pending.is_some() {
            if !sa.queued.contains(&kind) {
                sa.queued.push_back(kind);
            }
            return;
        }
        let payloads = match kind {
            RequestKind::Dpd => vec![],
            RequestKind::DeleteIke => vec![Payload::Delete(Delete {
                protocol: ProtocolId::Ike,
                spis: vec![],
            })],
            RequestKind::DeleteChild(spi) => {
                if !sa.children.iter().any(|c| c.inbound_spi == spi) {
                    return self.next_queued(now, id);
                }
                vec![Payload::Delete(Delete {
                    protocol: ProtocolId::Esp,
                    spis: vec![spi.to_be_bytes().to_vec()],
                })]
            }
            RequestKind::RekeyChild(_) | RequestKind::RekeyIke => {
                return self.rekey_request(now, id, kind);
            }
            RequestKind::Init | RequestKind::Auth => return,
        };
        let msg_id = sa.next_request_id;
        let Some(bytes) = sa.seal(ExchangeType::Informational, false, msg_id, &payloads) else {
            return;
        };
        sa.next_request_id += 1;
        if kind == RequestKind::DeleteIke {
            sa.state = State::Deleting;
            // Sent once, not retransmitted: the SA is gone either way.
            self.transmits.push_back(Transmit {
                local: sa.local,
                remote: sa.remote,
                data: bytes,
            });
            return;
        }
        self.start_request(now, id, msg_id, kind, bytes);
    }

    fn respond(&mut self, id: [u8; 8], exchange: ExchangeType, msg_id: u32, payloads: &[Payload]) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let Some(bytes) = sa.seal(exchange, true, msg_id, payloads) else {
            return;
        };
        sa.last_response = Some((msg_id, bytes.clone()));
        sa.peer_next_id = msg_id.wrapping_add(1);
        self.transmits.push_back(Transmit {
            local: sa.local,
            remote: sa.remote,
            data: bytes,
        });
    }

    /// An unencrypted IKE_SA_INIT response that creates no state (errors
    /// and COOKIE demands, §2.6, §1.2).
    fn respond_stateless(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        req: &Header,
        payload: Payload,
    ) {
        let msg = Message {
            header: Header {
                spi_i: req.spi_i,
                spi_r: [0; 8],
                next_payload: PayloadType::None,
                major: 2,
                minor: 0,
                exchange: ExchangeType::IkeSaInit,
                flags: Flags {
                    initiator: false,
                    response: true,
                    version: false,
                },
                message_id: 0,
                length: 0,
            },
            payloads: vec![payload],
        };
        self.transmits.push_back(Transmit {
            local,
            remote,
            data: msg.emit(),
        });
    }

    // ---- responder -------------------------------------------------------

    fn on_init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
        msg: &Message,
    ) {
        let h = msg.header;
        // A retransmission of a request we already answered (§2.1).
        if let Some(spi_r) = self.half_open.get(&(remote, h.spi_i)).copied() {
            if let Some(sa) = self.sas.get(&spi_r) {
                if sa.init_request == data {
                    self.transmits.push_back(Transmit {
                        local: sa.local,
                        remote: sa.remote,
                        data: sa.init_response.clone(),
                    });
                }
            }
            return;
        }
        let Some(conn) = self.by_peer.get(&remote.ip()).copied() else {
            tracing::debug!(peer = %remote, "IKE_SA_INIT from an address no connection names");
            self.counters.unknown_peer += 1;
            return;
        };
        let f = Found::of(&msg.payloads);
        let (Some(sa_prop), Some((group, ke_data)), Some(ni)) = (f.sa, f.ke, f.nonce) else {
            self.counters.malformed += 1;
            self.respond_stateless(local, remote, &h, notify(NotifyType::InvalidSyntax, vec![]));
            return;
        };
        if !(16..=256).contains(&ni.len()) {
            self.counters.malformed += 1;
            self.respond_stateless(local, remote, &h, notify(NotifyType::InvalidSyntax, vec![]));
            return;
        }
        // §2.6: past the threshold of half-open SAs, demand a cookie.
        let half_open = self.half_open.len();
        if half_open >= self.cfg.cookie_threshold {
            let expected = find_notify(&msg.payloads, NotifyType::Cookie).is_some_and(|n| {
                verify_cookie(
                    &self.cookie_secret,
                    COOKIE_VERSION,
                    ni,
                    remote.ip(),
                    &h.spi_i,
                    &n.data,
                )
            });
            if !expected {
                self.counters.cookies_sent += 1;
                let c = cookie(
                    &self.cookie_secret,
                    COOKIE_VERSION,
                    ni,
                    remote.ip(),
                    &h.spi_i,
                );
                self.respond_stateless(local, remote, &h, notify(NotifyType::Cookie, c));
                return;
            }
        }
        let c = self.cfg.connections[conn].clone();
        let Some((chosen, num)) = proposal::select_ike(&c.ike_proposals, &sa_prop.proposals) else {
            let ours: Vec<String> = c.ike_proposals.iter().map(ToString::to_string).collect();
            tracing::warn!(
                connection = %c.name,
                peer = %remote,
                "NO_PROPOSAL_CHOSEN for the IKE SA: the peer offered [{}], we accept [{}]",
                proposal::describe(&sa_prop.proposals),
                ours.join(", ")
            );
            self.respond_stateless(
                local,
                remote,
                &h,
                notify(NotifyType::NoProposalChosen, vec![]),
            );
            return;
        };
        if group != chosen.dh.id() {
            // §1.2: tell the initiator which group to use.
            self.respond_stateless(
                local,
                remote,
                &h,
                notify(
                    NotifyType::InvalidKePayload,
                    chosen.dh.id().to_be_bytes().to_vec(),
                ),
            );
            return;
        }
        let dh = DhSecret::generate(chosen.dh, &mut *self.rng);
        let Ok(g_ir) = dh.agree(ke_data) else {
            self.counters.malformed += 1;
            self.respond_stateless(local, remote, &h, notify(NotifyType::InvalidSyntax, vec![]));
            return;
        };
        let spi_r = self.random_spi8();
        let nr = self.nonce();
        let keys = IkeKeys::derive(
            chosen.prf,
            chosen.cipher,
            chosen.integ_key_len(),
            ni,
            &nr,
            &g_ir,
            &h.spi_i,
            &spi_r,
        );
        let Some((c_out, c_in)) = crypters(&chosen, &keys, Role::Responder) else {
            return;
        };
        // The request's hashes are over SPIr = 0: the initiator had none yet.
        let (src_ok, dst_ok) = nat_seen(&msg.payloads, &h.spi_i, &[0; 8], remote, local);
        let behind_nat = !dst_ok;
        let nat = !src_ok || !dst_ok || c.force_encap;
        let mut sa = IkeSa {
            conn,
            role: Role::Responder,
            state: State::HalfOpen,
            spi_i: h.spi_i,
            spi_r,
            local,
            remote,
            proposal: Some(chosen),
            dh: None,
            ni: ni.to_vec(),
            nr: nr.clone(),
            cookie: None,
            keys: Some(keys),
            crypter_out: Some(c_out),
            crypter_in: Some(c_in),
            init_request: data.get(..h.length as usize).unwrap_or(data).to_vec(),
            init_response: Vec::new(),
            next_iv: 0,
            next_request_id: 0,
            peer_next_id: 1,
            pending: None,
            queued: VecDeque::new(),
            last_response: None,
            offered_child_spi: 0,
            children: Vec::new(),
            nat,
            created: now,
            established: None,
            last_heard: now,
            rekey_at: None,
            collision: None,
            rekeyed: false,
            behind_nat,
            next_keepalive: behind_nat.then(|| now + NAT_KEEPALIVE),
        };
        let mut chosen_wire = chosen.to_wire(num, Vec::new());
        chosen_wire.num = num;
        let local_hash = if c.force_encap {
            nat_detection_hash(&h.spi_i, &[0xff; 8], local)
        } else {
            nat_detection_hash(&h.spi_i, &spi_r, local)
        };
        let payloads = vec![
            Payload::Sa(SaPayload {
                proposals: vec![chosen_wire],
            }),
            Payload::Ke {
                group: chosen.dh.id(),
                data: dh.public(),
            },
            Payload::Nonce(nr),
            notify(NotifyType::NatDetectionSourceIp, local_hash.to_vec()),
            notify(
                NotifyType::NatDetectionDestinationIp,
                nat_detection_hash(&h.spi_i, &spi_r, remote).to_vec(),
            ),
        ];
        let resp = Message {
            header: sa.header(ExchangeType::IkeSaInit, true, 0, PayloadType::None, 0),
            payloads,
        };
        let bytes = resp.emit();
        sa.init_response = bytes.clone();
        self.transmits.push_back(Transmit {
            local,
            remote,
            data: bytes,
        });
        self.half_open.insert((remote, h.spi_i), spi_r);
        self.sas.insert(spi_r, sa);
        self.fresh.push(spi_r);
    }

    fn on_request(
        &mut self,
        now: Instant,
        id: [u8; 8],
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
        msg: &Message,
    ) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let mid = msg.header.message_id;
        if let Some((last, bytes)) = &sa.last_response {
            if mid == *last {
                // A retransmitted request: send the same response (§2.1),
                // but only if it decrypts (an attacker cannot make us echo).
                if sa.open(data, msg).is_some() {
                    self.transmits.push_back(Transmit {
                        local: sa.local,
                        remote: sa.remote,
                        data: bytes.clone(),
                    });
                }
                return;
            }
        }
        if mid != sa.peer_next_id {
            self.counters.bad_message_id += 1;
            return;
        }
        let Some(payloads) = sa.open(data, msg) else {
            self.counters.malformed += 1;
            return;
        };
        sa.last_heard = now;
        // The peer may have moved to port 4500 or a NAT rebound it (§2.23):
        // follow an authenticated message.
        sa.local = local;
        sa.remote = remote;
        match (msg.header.exchange, sa.state) {
            (ExchangeType::IkeAuth, State::HalfOpen) => {
                self.on_auth_request(now, id, mid, &payloads)
            }
            (ExchangeType::Informational, State::Established | State::Deleting) => {
                self.on_informational_request(id, mid, &payloads)
            }
            (ExchangeType::CreateChildSa, State::Established) => {
                self.on_create_child_request(now, id, mid, &payloads)
            }
            _ => {
                self.counters.bad_message_id += 1;
            }
        }
    }

    fn on_auth_request(&mut self, now: Instant, id: [u8; 8], mid: u32, payloads: &[Payload]) {
        let Some(sa) = self.sas.get(&id) else { return };
        let conn = sa.conn;
        let c = self.cfg.connections[conn].clone();
        let f = Found::of(payloads);
        let (idi, auth, esp, tsi, tsr) = (f.id_i, f.auth, f.sa, f.ts_i, f.ts_r);
        let (Some(idi), Some((method, auth_data))) = (idi, auth) else {
            self.respond(
                id,
                ExchangeType::IkeAuth,
                mid,
                &[notify(NotifyType::InvalidSyntax, vec![])],
            );
            self.remove(
                id,
                DownReason::Failed("IKE_AUTH without IDi or AUTH".into()),
            );
            return;
        };
        let (prf, sk_pi, sk_pr) = match (sa.proposal, sa.keys.as_ref()) {
            (Some(p), Some(k)) => (p.prf, k.sk_pi.clone(), k.sk_pr.clone()),
            _ => return,
        };
        let id_ok = *idi == c.remote_id;
        let auth_ok = method == AUTH_PSK
            && verify_psk_auth(
                prf,
                &c.psk,
                &sa.init_request,
                &sa.nr,
                &sk_pi,
                &idi.body(),
                auth_data,
            );
        if !id_ok || !auth_ok {
            let why = if !id_ok {
                format!(
                    "the peer's identity {} is not the expected {}",
                    identity_to_string(idi),
                    identity_to_string(&c.remote_id)
                )
            } else if method != AUTH_PSK {
                format!("the peer authenticates with method {method}, not a pre-shared key")
            } else {
                "the peer's AUTH does not verify: the pre-shared keys differ".to_owned()
            };
            tracing::warn!(connection = %c.name, peer = %sa.remote, "AUTHENTICATION_FAILED: {why}");
            self.counters.auth_failures += 1;
            self.respond(
                id,
                ExchangeType::IkeAuth,
                mid,
                &[notify(NotifyType::AuthenticationFailed, vec![])],
            );
            self.remove(id, DownReason::AuthenticationFailed(why));
            return;
        }
        let my_auth = psk_auth(
            prf,
            &c.psk,
            &sa.init_response,
            &sa.ni,
            &sk_pr,
            &c.local_id.body(),
        );
        let mut out = vec![
            Payload::IdR(c.local_id.clone()),
            Payload::Auth {
                method: AUTH_PSK,
                data: my_auth.to_vec(),
            },
        ];
        // The IKE SA is up whatever happens to the CHILD SA (§1.2).
        let child = match (esp, tsi, tsr) {
            (Some(esp), Some(tsi), Some(tsr)) => {
                match proposal::select_esp(&c.esp_proposals, &esp.proposals) {
                    None => {
                        let ours: Vec<String> =
                            c.esp_proposals.iter().map(ToString::to_string).collect();
                        tracing::warn!(
                            connection = %c.name,
                            "NO_PROPOSAL_CHOSEN for the CHILD SA: the peer offered [{}], we accept [{}]",
                            proposal::describe(&esp.proposals),
                            ours.join(", ")
                        );
                        out.push(notify(NotifyType::NoProposalChosen, vec![]));
                        None
                    }
                    Some((chosen, num, peer_spi)) => {
                        // TSi is the initiator's side: our remote.
                        let n_i = narrow(tsi, &c.remote_ts);
                        let n_r = narrow(tsr, &c.local_ts);
                        if n_i.is_empty() || n_r.is_empty() {
                            tracing::warn!(
                                connection = %c.name,
                                "TS_UNACCEPTABLE: the peer proposed TSi {:?} TSr {:?}; we allow remote {:?} local {:?}",
                                tsi, tsr, c.remote_ts, c.local_ts
                            );
                            out.push(notify(NotifyType::TsUnacceptable, vec![]));
                            None
                        } else {
                            let spi = self.random_child_spi();
                            out.push(Payload::Sa(SaPayload {
                                proposals: vec![chosen.to_wire(num, spi)],
                            }));
                            out.push(Payload::TsI(n_i.clone()));
                            out.push(Payload::TsR(n_r.clone()));
                            Some((chosen, spi, peer_spi, n_r, n_i))
                        }
                    }
                }
            }
            _ => None,
        };
        self.respond(id, ExchangeType::IkeAuth, mid, &out);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.state = State::Established;
        sa.established = Some(now);
        let key = (sa.remote, sa.spi_i);
        self.half_open.remove(&key);
        let peer = self.sas.get(&id).map(|s| s.remote);
        if let (Some(peer), Some(p)) = (peer, self.sas.get(&id).and_then(|s| s.proposal)) {
            tracing::info!(connection = %c.name, %peer, proposal = %p, "IKE SA established (responder)");
            self.events.push_back(Event::IkeUp {
                conn,
                ike: id,
                peer,
                proposal: p,
            });
        }
        self.schedule_ike_rekey(now, id);
        if let Some((chosen, in_spi, out_spi, local_ts, remote_ts)) = child {
            let (ni, nr) = self
                .sas
                .get(&id)
                .map(|s| (s.ni.clone(), s.nr.clone()))
                .unwrap_or_default();
            self.install_child(
                now,
                id,
                NewChild {
                    proposal: chosen,
                    inbound_spi: in_spi,
                    outbound_spi: out_spi,
                    local_ts,
                    remote_ts,
                    g_ir: None,
                    ni,
                    nr,
                    we_initiated: false,
                    activate: true,
                },
            );
        }
    }

    /// Records a new CHILD SA and tells the driver its keys (RFC 7296 §2.17:
    /// KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr), the exchange initiator's
    /// outbound key first).
    fn install_child(&mut self, now: Instant, id: [u8; 8], n: NewChild) {
        let lifetime = self
            .sas
            .get(&id)
            .and_then(|sa| self.cfg.connections.get(sa.conn))
            .and_then(|c| c.child_lifetime);
        let rekey_at = lifetime.map(|l| now + self.jittered(l));
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let (Some(p), Some(keys)) = (sa.proposal, sa.keys.as_ref()) else {
            return;
        };
        let klen = n.proposal.key_len();
        let keymat = child_keymat(
            p.prf,
            &keys.sk_d,
            n.g_ir.as_deref().map(|g| &g[..]),
            &n.ni,
            &n.nr,
            2 * klen,
        );
        let (i2r, r2i) = (
            Zeroizing::new(keymat.get(..klen).unwrap_or_default().to_vec()),
            Zeroizing::new(keymat.get(klen..2 * klen).unwrap_or_default().to_vec()),
        );
        let (inbound_key, outbound_key) = if n.we_initiated {
            (r2i, i2r)
        } else {
            (i2r, r2i)
        };
        sa.children.push(Child {
            inbound_spi: n.inbound_spi,
            outbound_spi: n.outbound_spi,
            proposal: n.proposal,
            local_ts: n.local_ts.clone(),
            remote_ts: n.remote_ts.clone(),
            established: now,
            rekey_at,
            state: ChildState::Installed,
            successor: None,
        });
        let encap = sa.nat || sa.remote.port() == NAT_T_PORT;
        let peer = sa.remote;
        let conn = sa.conn;
        self.events.push_back(Event::ChildUp(Box::new(ChildSa {
            conn,
            ike: id,
            inbound_spi: n.inbound_spi,
            outbound_spi: n.outbound_spi,
            proposal: n.proposal,
            inbound_key,
            outbound_key,
            local_ts: n.local_ts,
            remote_ts: n.remote_ts,
            peer,
            encap,
            activate: n.activate,
        })));
    }

    /// A rekey time: between 80 % and 90 % of the lifetime, at random, so
    /// two peers with equal lifetimes rarely collide (strongSwan's
    /// rekey_time / rand_time idea).
    fn jittered(&mut self, lifetime: Duration) -> Duration {
        let spread = f64::from(self.rng.next_u32()) / f64::from(u32::MAX);
        lifetime.mul_f64(0.8 + 0.1 * spread)
    }

    fn schedule_ike_rekey(&mut self, now: Instant, id: [u8; 8]) {
        let lifetime = self
            .sas
            .get(&id)
            .and_then(|sa| self.cfg.connections.get(sa.conn))
            .and_then(|c| c.ike_lifetime);
        let at = lifetime.map(|l| now + self.jittered(l));
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.rekey_at = at;
        }
    }

    /// Drops the CHILD SA with this inbound SPI (after our DELETE was
    /// answered), reporting it down.
    fn forget_child(&mut self, id: [u8; 8], inbound_spi: u32) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let Some(pos) = sa
            .children
            .iter()
            .position(|c| c.inbound_spi == inbound_spi)
        else {
            return;
        };
        let c = sa.children.remove(pos);
        self.events.push_back(Event::ChildDown {
            conn: sa.conn,
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
        });
    }

    fn on_informational_request(&mut self, id: [u8; 8], mid: u32, payloads: &[Payload]) {
        let mut reply = Vec::new();
        let mut delete_ike = false;
        let mut gone = Vec::new();
        for p in payloads {
            if let Payload::Delete(d) = p {
                match d.protocol {
                    ProtocolId::Ike => delete_ike = true,
                    ProtocolId::Esp => {
                        let Some(sa) = self.sas.get(&id) else { return };
                        let mut ours = Vec::new();
                        for spi in &d.spis {
                            let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                                continue;
                            };
                            let out_spi = u32::from_be_bytes(b);
                            if let Some(c) = sa.children.iter().find(|c| c.outbound_spi == out_spi)
                            {
                                ours.push(c.inbound_spi.to_be_bytes().to_vec());
                                gone.push((c.inbound_spi, c.outbound_spi, c.successor));
                            }
                        }
                        if !ours.is_empty() {
                            reply.push(Payload::Delete(Delete {
                                protocol: ProtocolId::Esp,
                                spis: ours,
                            }));
                        }
                    }
                    _ => {}
                }
            }
        }
        if delete_ike {
            self.respond(id, ExchangeType::Informational, mid, &[]);
            self.remove(id, DownReason::DeletedByPeer);
            return;
        }
        self.respond(id, ExchangeType::Informational, mid, &reply);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let conn = sa.conn;
        for (i, o, successor) in gone {
            // Make-before-break: the SA that replaces this one carries our
            // traffic from now on, before this one goes.
            if let Some(next) = successor {
                if sa.children.iter().any(|c| c.inbound_spi == next) {
                    self.events.push_back(Event::ChildActivate {
                        conn,
                        inbound_spi: next,
                    });
                }
            }
            sa.children.retain(|c| c.inbound_spi != i);
            self.events.push_back(Event::ChildDown {
                conn,
                inbound_spi: i,
                outbound_spi: o,
            });
        }
    }

    // ---- initiator -------------------------------------------------------

    fn on_response(
        &mut self,
        now: Instant,
        id: [u8; 8],
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
        msg: &Message,
    ) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let Some(pending) = sa.pending.as_ref() else {
            return;
        };
        if pending.id != msg.header.message_id {
            self.counters.bad_message_id += 1;
            return;
        }
        let kind = pending.kind;
        if kind == RequestKind::Init {
            self.on_init_response(now, id, data, msg);
            return;
        }
        let Some(payloads) = sa.open(data, msg) else {
            self.counters.malformed += 1;
            return;
        };
        let exchange = sa.pending.take().and_then(|p| p.exchange);
        sa.last_heard = now;
        sa.local = local;
        sa.remote = remote;
        match kind {
            RequestKind::Auth => self.on_auth_response(now, id, &payloads),
            RequestKind::RekeyChild(_) | RequestKind::RekeyIke => {
                if let Some(ex) = exchange {
                    self.on_rekey_response(now, id, ex, &payloads);
                }
            }
            RequestKind::DeleteChild(spi) => self.forget_child(id, spi),
            RequestKind::Dpd | RequestKind::DeleteIke | RequestKind::Init => {}
        }
        self.next_queued(now, id);
    }

    fn next_queued(&mut self, now: Instant, id: [u8; 8]) {
        let next = self.sas.get_mut(&id).and_then(|sa| sa.queued.pop_front());
        if let Some(kind) = next {
            self.request(now, id, kind);
        }
    }

    fn on_init_response(&mut self, now: Instant, id: [u8; 8], data: &[u8], msg: &Message) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let c = self.cfg.connections[sa.conn].clone();
        if let Some(n) = find_notify(&msg.payloads, NotifyType::Cookie) {
            // §2.6: send the request again with the cookie first.
            sa.cookie = Some(n.data.clone());
            sa.pending = None;
            self.send_init(now, id);
            return;
        }
        if let Some(n) = find_notify(&msg.payloads, NotifyType::InvalidKePayload) {
            let group = <[u8; 2]>::try_from(n.data.as_slice())
                .ok()
                .map(u16::from_be_bytes)
                .and_then(DhGroup::from_id)
                .filter(|g| c.ike_proposals.iter().any(|p| p.dh == *g));
            let Some(group) = group else {
                self.remove(
                    id,
                    DownReason::NoProposalChosen(
                        "the peer wants a DH group we do not offer".into(),
                    ),
                );
                return;
            };
            if sa.dh.as_ref().is_some_and(|d| d.group() == group) {
                // Asked for the group we already used: a confused or
                // malicious peer; do not loop.
                self.remove(
                    id,
                    DownReason::Failed("INVALID_KE_PAYLOAD for the group we sent".into()),
                );
                return;
            }
            tracing::info!(connection = %c.name, %group, "the peer asks for another DH group; retrying");
            sa.dh = Some(DhSecret::generate(group, &mut *self.rng));
            sa.pending = None;
            self.send_init(now, id);
            return;
        }
        if let Some(err) = first_error(&msg.payloads) {
            let ours: Vec<String> = c.ike_proposals.iter().map(ToString::to_string).collect();
            let reason = if err == NotifyType::NoProposalChosen {
                tracing::warn!(connection = %c.name, "the peer chose none of our IKE proposals [{}]", ours.join(", "));
                DownReason::NoProposalChosen(format!(
                    "the peer accepts none of [{}]",
                    ours.join(", ")
                ))
            } else {
                DownReason::Failed(format!("the peer answered IKE_SA_INIT with {err:?}"))
            };
            self.remove(id, reason);
            return;
        }
        let f = Found::of(&msg.payloads);
        let chosen = f.chosen().and_then(IkeProposal::from_chosen);
        let ke = f.ke.map(|(g, d)| (g, d.to_vec()));
        let nr = f.nonce.map(<[u8]>::to_vec);
        let (Some(chosen), Some((group, ke_data)), Some(nr)) = (chosen, ke, nr) else {
            self.counters.malformed += 1;
            return;
        };
        let Some(dh) = sa.dh.as_ref() else { return };
        if !c.ike_proposals.contains(&chosen)
            || chosen.dh.id() != group
            || dh.group() != chosen.dh
            || !(16..=256).contains(&nr.len())
        {
            self.remove(
                id,
                DownReason::Failed("the peer chose a proposal we did not offer".into()),
            );
            return;
        }
        let Ok(g_ir) = dh.agree(&ke_data) else {
            self.remove(
                id,
                DownReason::Failed("the peer's key exchange value is invalid".into()),
            );
            return;
        };
        let spi_r = msg.header.spi_r;
        let keys = IkeKeys::derive(
            chosen.prf,
            chosen.cipher,
            chosen.integ_key_len(),
            &sa.ni,
            &nr,
            &g_ir,
            &sa.spi_i,
            &spi_r,
        );
        let Some((c_out, c_in)) = crypters(&chosen, &keys, Role::Initiator) else {
            return;
        };
        let (src_ok, dst_ok) = nat_seen(&msg.payloads, &sa.spi_i, &spi_r, sa.remote, sa.local);
        sa.nat = !src_ok || !dst_ok || c.force_encap;
        sa.behind_nat = !dst_ok;
        sa.next_keepalive = sa.behind_nat.then(|| now + NAT_KEEPALIVE);
        sa.spi_r = spi_r;
        sa.nr = nr;
        sa.proposal = Some(chosen);
        sa.keys = Some(keys);
        sa.crypter_out = Some(c_out);
        sa.crypter_in = Some(c_in);
        sa.dh = None;
        sa.init_response = data
            .get(..msg.header.length as usize)
            .unwrap_or(data)
            .to_vec();
        sa.pending = None;
        sa.last_heard = now;
        if sa.nat {
            // §2.23: move to port 4500 once a NAT is seen.
            sa.local.set_port(NAT_T_PORT);
            sa.remote.set_port(NAT_T_PORT);
        }
        sa.state = State::AuthSent;
        // IKE_AUTH request.
        let sk_pi = sa
            .keys
            .as_ref()
            .map(|k| k.sk_pi.clone())
            .unwrap_or_default();
        let auth = psk_auth(
            chosen.prf,
            &c.psk,
            &sa.init_request,
            &sa.nr,
            &sk_pi,
            &c.local_id.body(),
        );
        let payloads = vec![
            Payload::IdI(c.local_id.clone()),
            notify(NotifyType::InitialContact, vec![]),
            Payload::IdR(c.remote_id.clone()),
            Payload::Auth {
                method: AUTH_PSK,
                data: auth.to_vec(),
            },
            Payload::Sa(SaPayload {
                proposals: c
                    .esp_proposals
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p.to_wire(i as u8 + 1, sa.offered_child_spi))
                    .collect(),
            }),
            Payload::TsI(c.local_ts.clone()),
            Payload::TsR(c.remote_ts.clone()),
        ];
        let mid = sa.next_request_id;
        let Some(bytes) = sa.seal(ExchangeType::IkeAuth, false, mid, &payloads) else {
            return;
        };
        sa.next_request_id += 1;
        self.start_request(now, id, mid, RequestKind::Auth, bytes);
    }

    fn on_auth_response(&mut self, now: Instant, id: [u8; 8], payloads: &[Payload]) {
        let Some(sa) = self.sas.get(&id) else { return };
        let conn = sa.conn;
        let c = self.cfg.connections[conn].clone();
        let f = Found::of(payloads);
        let (idr, auth, esp, tsi, tsr) = (f.id_r, f.auth, f.sa, f.ts_i, f.ts_r);
        if find_notify(payloads, NotifyType::AuthenticationFailed).is_some() {
            let why = "the peer rejected our authentication: check that both ends have the same pre-shared key and identities".to_owned();
            tracing::warn!(connection = %c.name, peer = %sa.remote, "AUTHENTICATION_FAILED: {why}");
            self.counters.auth_failures += 1;
            self.remove(id, DownReason::AuthenticationFailed(why));
            return;
        }
        let (Some(idr), Some((method, auth_data))) = (idr, auth) else {
            let err = first_error(payloads);
            self.remove(id, DownReason::Failed(format!("IKE_AUTH failed: {err:?}")));
            return;
        };
        let (Some(p), Some(keys)) = (sa.proposal, sa.keys.as_ref()) else {
            return;
        };
        let ok = *idr == c.remote_id
            && method == AUTH_PSK
            && verify_psk_auth(
                p.prf,
                &c.psk,
                &sa.init_response,
                &sa.ni,
                &keys.sk_pr,
                &idr.body(),
                auth_data,
            );
        if !ok {
            let why = if *idr != c.remote_id {
                format!(
                    "the responder is {}, not the expected {}",
                    identity_to_string(idr),
                    identity_to_string(&c.remote_id)
                )
            } else {
                "the responder's AUTH does not verify: the pre-shared keys differ".to_owned()
            };
            tracing::warn!(connection = %c.name, "AUTHENTICATION_FAILED: {why}");
            self.counters.auth_failures += 1;
            self.remove(id, DownReason::AuthenticationFailed(why));
            return;
        }
        let child = match (esp, tsi, tsr) {
            (Some(esp), Some(tsi), Some(tsr)) if esp.proposals.len() == 1 => esp
                .proposals
                .first()
                .and_then(EspProposal::from_chosen)
                .filter(|(e, _)| c.esp_proposals.contains(e))
                .filter(|_| subset(tsi, &c.local_ts) && subset(tsr, &c.remote_ts))
                .map(|(e, spi)| (e, spi, tsi, tsr)),
            _ => None,
        };
        let offered = sa.offered_child_spi;
        let peer = sa.remote;
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        sa.state = State::Established;
        sa.established = Some(now);
        tracing::info!(connection = %c.name, %peer, proposal = %p, "IKE SA established (initiator)");
        self.events.push_back(Event::IkeUp {
            conn,
            ike: id,
            peer,
            proposal: p,
        });
        self.schedule_ike_rekey(now, id);
        match child {
            Some((e, out_spi, tsi, tsr)) => {
                let (ni, nr) = self
                    .sas
                    .get(&id)
                    .map(|s| (s.ni.clone(), s.nr.clone()))
                    .unwrap_or_default();
                self.install_child(
                    now,
                    id,
                    NewChild {
                        proposal: e,
                        inbound_spi: offered,
                        outbound_spi: out_spi,
                        local_ts: tsi.to_vec(),
                        remote_ts: tsr.to_vec(),
                        g_ir: None,
                        ni,
                        nr,
                        we_initiated: true,
                        activate: true,
                    },
                );
            }
            None => {
                let err = first_error(payloads);
                tracing::warn!(connection = %c.name, "no CHILD SA: the peer answered {:?}", err);
            }
        }
    }

    /// Forgets an IKE SA, reporting its CHILD SAs and itself down.
    fn remove(&mut self, id: [u8; 8], reason: DownReason) {
        let Some(sa) = self.sas.remove(&id) else {
            return;
        };
        let reason = if sa.rekeyed {
            DownReason::Rekeyed
        } else {
            reason
        };
        self.half_open.remove(&(sa.remote, sa.spi_i));
        for c in &sa.children {
            self.events.push_back(Event::ChildDown {
                conn: sa.conn,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
            });
        }
        if let Some(name) = self.cfg.connections.get(sa.conn).map(|c| &c.name) {
            tracing::info!(connection = %name, ?reason, "IKE SA down");
        }
        self.events.push_back(Event::IkeDown {
            conn: sa.conn,
            ike: id,
            reason,
        });
    }
}

//! The health task: the product's per-connection health checks (an ICMP
//! echo across the tunnel every few seconds; after `retries` unanswered in a
//! row the connection's routes are withdrawn so a standby route carries the
//! traffic, and one answer restores them) and `ipsecgw test` (a few echoes
//! from the local to the remote subnet, with loss and round trips).
//!
//! Echoes go out through the outbound thread on the connection under test,
//! whatever the routes say; replies come back from the inbound thread by
//! echo identifier. Withdrawing a route also takes its destination out of
//! the kernel's table (when published), so traffic of the site can fall
//! back to another path there too.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::config::Config;
use crate::dataplane::probe::{echo_request, EchoReply, ProbeTag, IDS};
use crate::dataplane::routing;
use crate::dataplane::stats::Stats;
use crate::negotiator::now;
use crate::sys::netlink::Netlink;
use crate::worker::{CommandSender, OutCmd};

/// Identifiers `base + i` are connection i's health check; test runs use
/// the upper half.
const TEST_IDS: u16 = IDS / 2;
/// Longest sleep when nothing is scheduled (no check, no test).
const IDLE: Duration = Duration::from_secs(3600);
/// Spacing of a test's echoes, and how long it waits for the last answer.
const TEST_SPACING: Duration = Duration::from_millis(500);
const TEST_WAIT: Duration = Duration::from_secs(2);
/// Most echoes one test sends.
pub const MAX_TEST_COUNT: u32 = 100;

/// `ipsecgw test NAME`: what to send.
#[derive(Debug)]
pub struct TestReq {
    /// Connection name.
    pub connection: String,
    /// Echoes to send.
    pub count: u32,
    /// Source address (default: the health check's, else a host address of
    /// the first local subnet).
    pub source: Option<IpAddr>,
    /// Destination (default: the health check's, else the first host of the
    /// first remote subnet).
    pub destination: Option<IpAddr>,
    /// Where the report goes.
    pub reply: oneshot::Sender<Result<TestReport, String>>,
}

/// What `ipsecgw test` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestReport {
    /// Connection name.
    pub connection: String,
    /// Echo source and destination.
    pub source: String,
    pub destination: String,
    /// Echoes sent and answered.
    pub sent: u32,
    pub received: u32,
    /// Lost, percent.
    pub loss_percent: f64,
    /// Round trips of the answered ones, milliseconds.
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    /// Whether the connection had an outbound SA when the test started.
    pub sa_installed: bool,
}

/// The kernel routes into the TUN device the daemon has added, shared with
/// the daemon, which removes what is left on exit.
#[derive(Debug, Clone)]
pub struct KernelRoutes {
    netlink: Netlink,
    index: u32,
    installed: Arc<Mutex<BTreeSet<IpNet>>>,
}

impl KernelRoutes {
    /// No route yet, into interface `index`.
    pub fn new(netlink: Netlink, index: u32) -> Self {
        Self {
            netlink,
            index,
            installed: Arc::default(),
        }
    }

    /// Adds and removes routes until exactly `want` are installed.
    pub async fn sync(&self, want: &BTreeSet<IpNet>) -> anyhow::Result<()> {
        let mut installed = self.installed.lock().await;
        for net in installed.difference(want).copied().collect::<Vec<_>>() {
            if let Err(e) = self.netlink.del_route(self.index, net).await {
                tracing::debug!(error = %e, "route already gone");
            }
            installed.remove(&net);
            tracing::info!(destination = %net, "route withdrawn from the site's route table");
        }
        for net in want.difference(&*installed).copied().collect::<Vec<_>>() {
            self.netlink.add_route(self.index, net).await?;
            installed.insert(net);
        }
        Ok(())
    }

    /// The routes the gateway's config asks for with every connection up.
    pub fn wanted(cfg: &Config, stats: &Stats) -> BTreeSet<IpNet> {
        if cfg.routes.is_empty() {
            cfg.connections
                .iter()
                .flat_map(|c| c.remote_subnets.iter().copied())
                .collect()
        } else {
            routing::published(&cfg.routes, |i| stats.healthy(i))
        }
    }
}

#[derive(Debug)]
struct Check {
    conn: usize,
    source: IpAddr,
    destination: IpAddr,
    interval: Duration,
    retries: u32,
    next: Instant,
    seq: u16,
    /// The probe in flight: its sequence number and when it left.
    outstanding: Option<(u16, Instant)>,
}

#[derive(Debug)]
struct Test {
    id: u16,
    conn: usize,
    source: IpAddr,
    destination: IpAddr,
    count: u32,
    sent: Vec<Instant>,
    rtts: Vec<Duration>,
    next: Instant,
    sa_installed: bool,
    reply: Option<oneshot::Sender<Result<TestReport, String>>>,
}

/// The task's state; [`Health::run`] drives it.
#[derive(Debug)]
pub struct Health {
    cfg: Arc<Config>,
    stats: Arc<Stats>,
    out: CommandSender<OutCmd>,
    kernel: KernelRoutes,
    tag: ProbeTag,
    checks: Vec<Check>,
    tests: Vec<Test>,
    next_test_id: u16,
}

impl Health {
    /// The checks of `cfg`, sending through `out`, with echoes marked by
    /// `tag`.
    pub fn new(
        cfg: Arc<Config>,
        stats: Arc<Stats>,
        out: CommandSender<OutCmd>,
        kernel: KernelRoutes,
        tag: ProbeTag,
    ) -> Self {
        let start = now();
        let checks = cfg
            .connections
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let h = c.health_check?;
                Some(Check {
                    conn: i,
                    source: h.source,
                    destination: h.destination,
                    interval: h.interval,
                    retries: h.retries,
                    next: start,
                    seq: 0,
                    outstanding: None,
                })
            })
            .collect();
        Self {
            cfg,
            stats,
            out,
            kernel,
            tag,
            checks,
            tests: Vec::new(),
            next_test_id: 0,
        }
    }

    /// Runs until both channels close.
    pub async fn run(
        mut self,
        mut replies: mpsc::Receiver<EchoReply>,
        mut requests: mpsc::Receiver<TestReq>,
    ) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => self.on_tick().await,
                Some(r) = replies.recv() => self.on_reply(r).await,
                Some(req) = requests.recv() => self.on_test(req),
                else => break,
            }
        }
    }

    /// The next instant something is due: a check's probe, a test's next
    /// echo, or the end of a test's wait for its last answer.
    fn next_deadline(&self) -> Instant {
        let checks = self.checks.iter().map(|c| c.next);
        let tests = self.tests.iter().map(|t| {
            if (t.sent.len() as u32) < t.count {
                t.next
            } else {
                t.sent.last().map_or(t.next, |last| *last + TEST_WAIT)
            }
        });
        checks.chain(tests).min().unwrap_or_else(|| now() + IDLE)
    }

    fn send(&self, conn: usize, src: IpAddr, dst: IpAddr, id: u16, seq: u16) {
        if let Some(packet) = echo_request(&self.tag, src, dst, id, seq) {
            self.out.send(OutCmd::Probe { conn, packet });
        }
    }

    async fn on_tick(&mut self) {
        let t = now();
        let mut changed = false;
        for i in 0..self.checks.len() {
            let c = &mut self.checks[i];
            if t < c.next {
                continue;
            }
            c.next = t + c.interval;
            let h = &self.stats.conns[c.conn].1.health;
            if c.outstanding.take().is_some() {
                let failures = h.failures.fetch_add(1, Relaxed) + 1;
                if failures >= c.retries && h.up.swap(false, Relaxed) {
                    h.down_events.fetch_add(1, Relaxed);
                    tracing::warn!(
                        connection = %self.cfg.connections[c.conn].name,
                        destination = %c.destination,
                        failures,
                        "health check failed: routes withdrawn"
                    );
                    changed = true;
                }
            }
            c.seq = c.seq.wrapping_add(1);
            c.outstanding = Some((c.seq, t));
            h.sent.fetch_add(1, Relaxed);
            let (conn, src, dst, seq) = (c.conn, c.source, c.destination, c.seq);
            self.send(conn, src, dst, self.tag.base.wrapping_add(conn as u16), seq);
        }
        if changed {
            self.routes_changed().await;
        }
        self.tests_tick(t);
    }

    async fn on_reply(&mut self, r: EchoReply) {
        let t = now();
        let offset = r.id.wrapping_sub(self.tag.base);
        if offset >= TEST_IDS {
            if let Some(test) = self.tests.iter_mut().find(|x| x.id == r.id) {
                let sent = usize::from(r.seq)
                    .checked_sub(1)
                    .and_then(|k| test.sent.get(k));
                if let Some(at) = sent {
                    if test.rtts.len() < test.sent.len() && r.from == test.destination {
                        test.rtts.push(t.saturating_duration_since(*at));
                    }
                }
            }
            // A test whose every echo came back reports at once.
            self.tests_tick(t);
            return;
        }
        let Some(c) = self
            .checks
            .iter_mut()
            .find(|c| c.conn == usize::from(offset))
        else {
            return;
        };
        // The answer may come back over another connection (the far site
        // routes its replies as it likes): it still proves this one carries.
        let Some((seq, at)) = c.outstanding else {
            return;
        };
        if r.seq != seq || r.from != c.destination {
            return;
        }
        c.outstanding = None;
        let h = &self.stats.conns[c.conn].1.health;
        h.failures.store(0, Relaxed);
        h.last_rtt_us
            .store(t.saturating_duration_since(at).as_micros() as u64, Relaxed);
        let restored = !h.up.swap(true, Relaxed);
        // Counted after the state flips, so a reader that sees the answer
        // also sees the connection up.
        h.answered
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        if restored {
            tracing::info!(
                connection = %self.cfg.connections[c.conn].name,
                "health check answered again: routes restored"
            );
            self.routes_changed().await;
        }
    }

    async fn routes_changed(&self) {
        self.stats.health_generation.fetch_add(1, Relaxed);
        if self.cfg.routes.is_empty() {
            return;
        }
        let want = KernelRoutes::wanted(&self.cfg, &self.stats);
        if let Err(e) = self.kernel.sync(&want).await {
            tracing::warn!(error = %e, "cannot update the site's route table");
        }
    }

    fn on_test(&mut self, req: TestReq) {
        match self.start_test(&req) {
            Ok(mut test) => {
                test.reply = Some(req.reply);
                self.tests.push(test);
            }
            Err(e) => {
                let _ = req.reply.send(Err(e));
            }
        }
    }

    fn start_test(&mut self, req: &TestReq) -> Result<Test, String> {
        let Some((conn, c)) = self
            .cfg
            .connections
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == req.connection)
        else {
            let names: Vec<&str> = self
                .cfg
                .connections
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!(
                "no connection named {:?}: this gateway has {names:?}",
                req.connection
            ));
        };
        let count = req.count.clamp(1, MAX_TEST_COUNT);
        let source = req
            .source
            .or(c.health_check.map(|h| h.source))
            .or(self
                .cfg
                .tun
                .address
                .map(|a| a.addr())
                .filter(|a| c.local_subnets.iter().any(|n| n.contains(a))))
            .or(c.local_subnets.first().map(first_host))
            .ok_or("the connection has no local subnet")?;
        let destination = req
            .destination
            .or(c.health_check.map(|h| h.destination))
            .or(c.remote_subnets.first().map(first_host))
            .ok_or("the connection has no remote subnet")?;
        if !c.local_subnets.iter().any(|n| n.contains(&source)) {
            return Err(format!(
                "source {source} is not in the local subnets {:?}: the tunnel only carries traffic between the two sites",
                c.local_subnets
            ));
        }
        if !c.remote_subnets.iter().any(|n| n.contains(&destination)) {
            return Err(format!(
                "destination {destination} is not in the remote subnets {:?}",
                c.remote_subnets
            ));
        }
        if source.is_ipv4() != destination.is_ipv4() {
            return Err("source and destination must be of the same IP version".into());
        }
        if self.tests.len() >= usize::from(TEST_IDS) {
            return Err("too many tests running".into());
        }
        let id = loop {
            let id = self
                .tag
                .base
                .wrapping_add(TEST_IDS + self.next_test_id % TEST_IDS);
            self.next_test_id = self.next_test_id.wrapping_add(1);
            if !self.tests.iter().any(|t| t.id == id) {
                break id;
            }
        };
        Ok(Test {
            id,
            conn,
            source,
            destination,
            count,
            sent: Vec::new(),
            rtts: Vec::new(),
            next: now(),
            sa_installed: self.stats.conns[conn].1.outbound.spi() != 0,
            reply: None,
        })
    }

    fn tests_tick(&mut self, t: Instant) {
        let mut i = 0;
        while i < self.tests.len() {
            let test = &mut self.tests[i];
            if (test.sent.len() as u32) < test.count && t >= test.next {
                test.sent.push(t);
                test.next = t + TEST_SPACING;
                let seq = test.sent.len() as u16;
                let (conn, src, dst, id) = (test.conn, test.source, test.destination, test.id);
                self.send(conn, src, dst, id, seq);
                i += 1;
                continue;
            }
            let done = test.rtts.len() as u32 >= test.count
                || ((test.sent.len() as u32) >= test.count
                    && test
                        .sent
                        .last()
                        .is_some_and(|last| t.saturating_duration_since(*last) >= TEST_WAIT));
            if done {
                let test = self.tests.swap_remove(i);
                let report = report(&self.cfg, &test);
                if let Some(reply) = test.reply {
                    let _ = reply.send(Ok(report));
                }
            } else {
                i += 1;
            }
        }
    }
}

fn first_host(net: &IpNet) -> IpAddr {
    match net.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).saturating_add(1)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).saturating_add(1)).into()),
    }
}

fn report(cfg: &Config, t: &Test) -> TestReport {
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let sent = t.sent.len() as u32;
    let received = t.rtts.len() as u32;
    TestReport {
        connection: cfg.connections[t.conn].name.clone(),
        source: t.source.to_string(),
        destination: t.destination.to_string(),
        sent,
        received,
        loss_percent: if sent == 0 {
            100.0
        } else {
            f64::from(sent - received) * 100.0 / f64::from(sent)
        },
        rtt_min_ms: t.rtts.iter().min().map(ms),
        rtt_avg_ms: (!t.rtts.is_empty())
            .then(|| t.rtts.iter().map(ms).sum::<f64>() / t.rtts.len() as f64),
        rtt_max_ms: t.rtts.iter().max().map(ms),
        sa_installed: t.sa_installed,
    }
}

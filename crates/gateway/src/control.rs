//! The control socket: a Unix stream socket on which the daemon answers
//! one-line requests with one line of JSON, and the CLI side that asks and
//! prints. `status` today; `up`/`down` join it with IKEv2.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use tokio::sync::{mpsc, oneshot};

use crate::dataplane::stats::{SaSnapshot, Stats, StatusSnapshot};
use crate::health::{TestReport, TestReq, MAX_TEST_COUNT};
use crate::negotiator::ControlReq;

/// The longest request line accepted.
const MAX_REQUEST: usize = 256;

/// Binds the control socket, replacing a stale one from a dead daemon but
/// refusing to steal one a live daemon still answers on.
pub async fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            bail!(
                "another ipsecgw answers on {}: stop it or set gateway.control_socket",
                path.display()
            );
        }
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path)
        .with_context(|| format!("cannot bind the control socket {}", path.display()))
}

/// Answers requests until the task is dropped.
pub async fn serve(
    listener: UnixListener,
    stats: Arc<Stats>,
    ike: Option<mpsc::Sender<ControlReq>>,
    tests: mpsc::Sender<TestReq>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let stats = stats.clone();
        let ike = ike.clone();
        let tests = tests.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            let mut rd = BufReader::new(rd.take(MAX_REQUEST as u64));
            if rd.read_line(&mut line).await.is_err() {
                return;
            }
            let reply = answer(line.trim(), &stats, ike.as_ref(), &tests).await;
            let _ = wr.write_all(reply.as_bytes()).await;
            let _ = wr.write_all(b"\n").await;
        });
    }
}

async fn answer(
    line: &str,
    stats: &Stats,
    ike: Option<&mpsc::Sender<ControlReq>>,
    tests: &mpsc::Sender<TestReq>,
) -> String {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    let error = |e: String| serde_json::json!({ "error": e }).to_string();
    match (verb, ike) {
        ("status", _) => {
            let mut snap = stats.snapshot();
            if let Some(ike) = ike {
                let (tx, rx) = oneshot::channel();
                if ike.send(ControlReq::Status(tx)).await.is_ok() {
                    let (sas, drops) = rx.await.unwrap_or_default();
                    snap.ike_sas = sas;
                    snap.ike_drops = drops;
                }
                // The data plane counts per SA; show it on each CHILD SA.
                for sa in &mut snap.ike_sas {
                    for child in &mut sa.children {
                        for c in &snap.connections {
                            if format!("{:08x}", c.inbound.spi) == child.inbound_spi {
                                child.bytes_in = c.inbound.bytes;
                                child.packets_in = c.inbound.packets;
                            }
                            if format!("{:08x}", c.outbound.spi) == child.outbound_spi {
                                child.bytes_out = c.outbound.bytes;
                                child.packets_out = c.outbound.packets;
                            }
                        }
                    }
                }
            }
            serde_json::to_string(&snap).unwrap_or_else(|e| error(e.to_string()))
        }
        ("up" | "down" | "rekey" | "rekey-ike", Some(ike)) => {
            let (tx, rx) = oneshot::channel();
            let name = arg.trim().to_owned();
            let req = match verb {
                "up" => ControlReq::Up(name, tx),
                "down" => ControlReq::Down(name, tx),
                "rekey" => ControlReq::Rekey(name, false, tx),
                _ => ControlReq::Rekey(name, true, tx),
            };
            if ike.send(req).await.is_err() {
                return error("the IKE task has stopped".into());
            }
            match rx.await {
                Ok(Ok(msg)) => serde_json::json!({ "ok": msg }).to_string(),
                Ok(Err(e)) => error(e),
                Err(_) => error("the IKE task has stopped".into()),
            }
        }
        ("test", _) => match test_request(arg) {
            Err(e) => error(e),
            Ok((connection, count, source, destination)) => {
                let (tx, rx) = oneshot::channel();
                let req = TestReq {
                    connection,
                    count,
                    source,
                    destination,
                    reply: tx,
                };
                if tests.send(req).await.is_err() {
                    return error("the health task has stopped".into());
                }
                match rx.await {
                    Ok(Ok(report)) => serde_json::json!({ "test": report }).to_string(),
                    Ok(Err(e)) => error(e),
                    Err(_) => error("the health task has stopped".into()),
                }
            }
        },
        ("up" | "down" | "rekey" | "rekey-ike", None) => {
            error("this gateway has no IKE connection: its SAs are keyed by hand".into())
        }
        (other, _) => error(format!(
            "unknown request {other:?}: the daemon understands status, up NAME, down NAME, rekey NAME, rekey-ike NAME, test NAME [count=N] [source=IP] [destination=IP]"
        )),
    }
}

/// `test NAME [count=N] [source=IP] [destination=IP]`.
type TestArgs = (String, u32, Option<IpAddr>, Option<IpAddr>);

fn test_request(arg: &str) -> Result<TestArgs, String> {
    let mut words = arg.split_whitespace();
    let name = words
        .next()
        .ok_or("say which connection to test")?
        .to_owned();
    let (mut count, mut source, mut destination) = (4, None, None);
    for w in words {
        let bad = || format!("cannot read {w:?}: use count=N, source=IP or destination=IP");
        match w.split_once('=') {
            Some(("count", v)) => count = v.parse().map_err(|_| bad())?,
            Some(("source", v)) => source = Some(v.parse().map_err(|_| bad())?),
            Some(("destination", v)) => destination = Some(v.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        }
    }
    if count == 0 || count > MAX_TEST_COUNT {
        return Err(format!("count must be 1 to {MAX_TEST_COUNT}"));
    }
    Ok((name, count, source, destination))
}

/// Asks a running daemon to test a connection.
pub async fn request_test(path: &PathBuf, line: &str) -> anyhow::Result<TestReport> {
    let value = ask(path, line).await?;
    Ok(serde_json::from_value(
        value.get("test").cloned().unwrap_or_default(),
    )?)
}

/// The human form of `ipsecgw test`, in the spirit of ping's summary.
pub fn render_test(r: &TestReport) -> String {
    let mut o = format!(
        "test {}: {} -> {} across the tunnel\n{} sent, {} received, {:.0}% loss\n",
        r.connection, r.source, r.destination, r.sent, r.received, r.loss_percent
    );
    if let (Some(min), Some(avg), Some(max)) = (r.rtt_min_ms, r.rtt_avg_ms, r.rtt_max_ms) {
        let _ = writeln!(o, "rtt min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms");
    }
    o
}

/// Sends one request line and reads the daemon's one line of JSON; an
/// `error` in it becomes this call's error.
async fn ask(path: &PathBuf, line: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "no ipsecgw answers on {} (is it running? see --socket)",
            path.display()
        )
    })?;
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    let value: serde_json::Value =
        serde_json::from_str(&reply).context("the daemon's reply is not JSON")?;
    if let Some(e) = value.get("error") {
        bail!("{}", e.as_str().unwrap_or_default());
    }
    Ok(value)
}

/// Asks a running daemon to bring a connection up or down (or rekey it).
pub async fn request(path: &PathBuf, line: &str) -> anyhow::Result<String> {
    let value = ask(path, line).await?;
    Ok(value
        .get("ok")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned())
}

/// Asks a running daemon for its status.
pub async fn request_status(path: &PathBuf) -> anyhow::Result<StatusSnapshot> {
    Ok(serde_json::from_value(ask(path, "status").await?)?)
}

/// The human form of `ipsecgw status`, in the spirit of `swanctl --list-sas`.
pub fn render(s: &StatusSnapshot) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "gateway {}", s.gateway);
    for c in &s.connections {
        let _ = writeln!(
            o,
            "  {}: {} ESP to {}, {}",
            c.info.name,
            if c.info.encapsulation == "udp" {
                "UDP-encapsulated"
            } else {
                "raw"
            },
            c.info.remote_address,
            c.info
                .algorithm
                .as_deref()
                .unwrap_or("no SA (traffic dropped)"),
        );
        let _ = writeln!(
            o,
            "    local  {}\n    remote {}",
            c.info.local_subnets.join(", "),
            c.info.remote_subnets.join(", ")
        );
        for (dir, sa) in [("out", &c.outbound), ("in ", &c.inbound)] {
            let _ = writeln!(o, "    {dir} {}", sa_line(sa));
        }
        let _ = writeln!(
            o,
            "    drops: selectors {}, too big {}, no SA {}",
            c.selector_drops, c.too_big, c.no_sa
        );
        if let Some(h) = &c.health {
            let _ = writeln!(
                o,
                "    health check {}: {} sent, {} answered, {} failed in a row, last rtt {:.3} ms, down {} times",
                h.state, h.sent, h.answered, h.failures, h.last_rtt_ms, h.down_events
            );
        }
    }
    if !s.routes.is_empty() {
        let _ = writeln!(o, "  routes:");
        for r in &s.routes {
            let _ = writeln!(
                o,
                "    {}{} via {} weight {}{}, {}",
                r.source
                    .as_ref()
                    .map(|s| format!("from {s} to "))
                    .unwrap_or_default(),
                r.destination,
                r.connection,
                r.weight,
                if r.publish { ", published" } else { "" },
                r.state,
            );
        }
    }
    for sa in &s.ike_sas {
        let _ = writeln!(
            o,
            "  {}: IKEv2 {} {}[{}] ... {}, SPIs {}_i {}_r, {}{}",
            sa.name,
            sa.state,
            if sa.initiator {
                "initiator "
            } else {
                "responder "
            },
            sa.local,
            sa.remote,
            sa.spi_i,
            sa.spi_r,
            sa.proposal.as_deref().unwrap_or("negotiating"),
            sa.established_secs
                .map(|s| format!(", established {s}s ago"))
                .unwrap_or_default()
                + &sa
                    .rekey_in_secs
                    .map(|s| format!(", rekeying in {s}s"))
                    .unwrap_or_default(),
        );
        for c in &sa.children {
            let _ = writeln!(
                o,
                "    CHILD SA INSTALLED, {}ESP:{}, SPIs {}_i {}_o, {}s{}; in {} bytes / {} packets, out {} bytes / {} packets; {} === {}",
                if sa.nat {
                    "TUNNEL-in-UDP, "
                } else {
                    "TUNNEL, "
                },
                c.proposal,
                c.inbound_spi,
                c.outbound_spi,
                c.age_secs,
                c.rekey_in_secs.map(|s| format!(", rekeying in {s}s")).unwrap_or_default(),
                c.bytes_in,
                c.packets_in,
                c.bytes_out,
                c.packets_out,
                c.local_ts.join(" "),
                c.remote_ts.join(" "),
            );
        }
    }
    let f = &s.offload;
    let _ = writeln!(
        o,
        "  offload {} (configured {}{}): TUN {}, UDP GSO {}, UDP GRO {}; {} super-packets cut into {}, {} coalesced writes of {}, {} UDP GSO sends of {}, {} UDP GRO receives of {}",
        f.mode,
        f.configured,
        if f.fell_back { ", fell back: the kernel refused" } else { "" },
        f.tun,
        if f.udp_gso { "on" } else { "off" },
        if f.udp_gro { "on" } else { "off" },
        f.gso_packets,
        f.gso_segments,
        f.gro_writes,
        f.gro_segments,
        f.udp_gso_sends,
        f.udp_gso_segments,
        f.udp_gro_receives,
        f.udp_gro_segments,
    );
    let d = &s.drops;
    let _ = writeln!(
        o,
        "  drops: no policy {}, discarded {}, unknown SPI {}, malformed {}, not ESP {}, send errors {}",
        d.no_policy, d.discarded, d.unknown_spi, d.malformed, d.not_esp, d.send_errors
    );
    if !s.ike_sas.is_empty()
        || s.ike_drops.malformed + s.ike_drops.unknown_spi + s.ike_drops.auth_failures > 0
    {
        let i = &s.ike_drops;
        let _ = writeln!(
            o,
            "  IKE drops: malformed {}, unknown SPI {}, unknown peer {}, bad message ID {}, authentication failures {}, cookies sent {}",
            i.malformed, i.unknown_spi, i.unknown_peer, i.bad_message_id, i.auth_failures, i.cookies_sent
        );
    }
    o
}

fn sa_line(sa: &SaSnapshot) -> String {
    if sa.spi == 0 {
        return "no SA".into();
    }
    format!(
        "SPI {:08x}: {} packets, {} bytes; auth failures {}, replay drops {}, malformed {}, expired {}",
        sa.spi, sa.packets, sa.bytes, sa.auth_failures, sa.replay_drops, sa.malformed, sa.lifetime_drops
    )
}

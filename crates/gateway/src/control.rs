//! The control socket: a Unix stream socket on which the daemon answers
//! one-line requests with one line of JSON, and the CLI side that asks and
//! prints. `status` today; `up`/`down` join it with IKEv2.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use tokio::sync::{mpsc, oneshot};

use crate::dataplane::stats::{SaSnapshot, Stats, StatusSnapshot};
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
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let stats = stats.clone();
        let ike = ike.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            let mut rd = BufReader::new(rd.take(MAX_REQUEST as u64));
            if rd.read_line(&mut line).await.is_err() {
                return;
            }
            let reply = answer(line.trim(), &stats, ike.as_ref()).await;
            let _ = wr.write_all(reply.as_bytes()).await;
            let _ = wr.write_all(b"\n").await;
        });
    }
}

async fn answer(line: &str, stats: &Stats, ike: Option<&mpsc::Sender<ControlReq>>) -> String {
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
        ("up" | "down" | "rekey" | "rekey-ike", None) => {
            error("this gateway has no IKE connection: its SAs are keyed by hand".into())
        }
        (other, _) => error(format!(
            "unknown request {other:?}: the daemon understands status, up NAME, down NAME, rekey NAME, rekey-ike NAME"
        )),
    }
}

/// Asks a running daemon to bring a connection up or down.
pub async fn request(path: &PathBuf, line: &str) -> anyhow::Result<String> {
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
    Ok(value
        .get("ok")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned())
}

/// Asks a running daemon for its status.
pub async fn request_status(path: &PathBuf) -> anyhow::Result<StatusSnapshot> {
    let mut stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "no ipsecgw answers on {} (is it running? see --socket)",
            path.display()
        )
    })?;
    stream.write_all(b"status\n").await?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await?;
    let value: serde_json::Value =
        serde_json::from_str(&line).context("the daemon's reply is not JSON")?;
    if let Some(e) = value.get("error") {
        bail!("the daemon says: {e}");
    }
    Ok(serde_json::from_value(value)?)
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

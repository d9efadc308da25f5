//! `ipsecgw run`: sets up the TUN device, kernel routes and WAN sockets,
//! starts the data-path threads and the control socket, and undoes the
//! routes on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{Config, Encapsulation, TunOffload, NAT_T_PORT};
use crate::control;
use crate::dataplane::inbound::Inbound;
use crate::dataplane::outbound::Outbound;
use crate::dataplane::probe::ProbeTag;
use crate::dataplane::stats::{ConnInfo, Stats};
use crate::health::{Health, KernelRoutes};
use crate::negotiator::Negotiator;
use crate::sys::netlink::Netlink;
use crate::sys::socket::WanSocket;
use crate::sys::tun::Tun;
use crate::worker::{self, Wan};

/// Runs the gateway until a signal or a fatal data-path error.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let stats = Arc::new(
        Stats::new(
            cfg.name.clone(),
            cfg.connections
                .iter()
                .map(|c| ConnInfo {
                    name: c.name.clone(),
                    encapsulation: c.encapsulation.to_string(),
                    remote_address: c.remote.ip().to_string(),
                    local_subnets: c.local_subnets.iter().map(ToString::to_string).collect(),
                    remote_subnets: c.remote_subnets.iter().map(ToString::to_string).collect(),
                    algorithm: match (&c.manual, &c.ike) {
                        (Some((o, _)), _) => Some(o.algorithm.to_string()),
                        (None, Some(_)) => Some(format!("{} (IKEv2)", c.esp.algorithm)),
                        (None, None) => None,
                    },
                })
                .collect(),
        )
        .with_routes(&cfg),
    );
    for c in cfg
        .connections
        .iter()
        .filter(|c| c.manual.is_none() && c.ike.is_none())
    {
        tracing::warn!(
            connection = %c.name,
            "neither manual_keys nor ike: traffic for {:?} is dropped (fail closed)",
            c.remote_subnets
        );
    }
    let outbound = Outbound::new(&cfg, stats.clone())?;
    // What marks this run's own echoes (random, see `ProbeTag`).
    let probe_tag = {
        let mut b = [0u8; 10];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        ProbeTag::new(b)
    };
    let inbound = Inbound::new(&cfg, stats.clone())?.with_probe_tag(probe_tag);

    let listener = control::bind(&cfg.control_socket).await?;
    let netlink = Netlink::open()?;
    let (tun, index) = open_tun(&cfg, &netlink, &stats).await?;
    if let Some(addr) = cfg.tun.address {
        netlink.add_address(index, addr).await?;
    }
    let wan = open_wan(&cfg, &stats)?;
    let kernel = KernelRoutes::new(netlink, index);
    let result = async {
        kernel.sync(&KernelRoutes::wanted(&cfg, &stats)).await?;
        let probes = Probes {
            tag: probe_tag,
            kernel: kernel.clone(),
        };
        serve(&cfg, outbound, inbound, tun, wan, stats, listener, probes).await
    }
    .await;
    if let Err(e) = kernel.sync(&Default::default()).await {
        tracing::debug!(error = %e, "routes already gone with the TUN device");
    }
    let _ = std::fs::remove_file(&cfg.control_socket);
    result
}

/// The kernel's queue of packets for the daemon to read from the TUN
/// device: the default 500 overflowed (TX drops on the TUN) at about
/// 1 Gbit/s of 1400-byte packets while the reader was descheduled.
const TUN_TXQUEUELEN: u32 = 5000;

/// Opens the TUN device with offloads as `[tun] offload` asks (auto: if
/// the kernel takes them and passes the self-test; on: or fail; off:
/// never), sets its MTU and brings it up. Returns it and its index.
async fn open_tun(cfg: &Config, netlink: &Netlink, stats: &Stats) -> anyhow::Result<(Tun, u32)> {
    let mtu = cfg.tun.mtu as usize;
    let up = |tun: Tun| async move {
        let index = netlink.link_index(tun.name()).await?;
        netlink.set_up(index, cfg.tun.mtu).await?;
        if let Err(e) = tun.set_txqueuelen(TUN_TXQUEUELEN) {
            tracing::debug!(error = %e, "cannot raise the TUN device's txqueuelen");
        }
        anyhow::Ok((tun, index))
    };
    stats.offload.configured.store(
        match cfg.tun.offload {
            TunOffload::Auto => 0,
            TunOffload::On => 1,
            TunOffload::Off => 2,
        },
        Ordering::Relaxed,
    );
    if cfg.tun.offload != TunOffload::Off {
        let attempt = async {
            let (tun, index) = up(Tun::open(&cfg.tun.name, mtu, true)?).await?;
            tun.self_test()
                .context("the kernel refused a coalesced write to the TUN device (self-test)")?;
            anyhow::Ok((tun, index))
        }
        .await;
        match attempt {
            Ok((tun, index)) => {
                let uso = tun.offloads().is_some_and(|o| o.uso);
                stats
                    .offload
                    .tun
                    .store(if uso { 2 } else { 1 }, Ordering::Relaxed);
                tracing::info!(uso, "TUN offloads on: TCP super-packets in, coalesced out");
                return Ok((tun, index));
            }
            Err(e) if cfg.tun.offload == TunOffload::On => {
                return Err(e.context(
                    "[tun] offload = \"on\" but this kernel does not support TUN offloads; set offload = \"auto\" (fall back) or \"off\"",
                ));
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "TUN offloads unavailable: using the plain device");
                stats.offload.fell_back.store(true, Ordering::Relaxed);
            }
        }
    }
    up(Tun::open(&cfg.tun.name, mtu, false)?).await
}

fn open_wan(cfg: &Config, stats: &Stats) -> anyhow::Result<Wan> {
    // IKE may float to 4500 (NAT) or stay on raw ESP: it needs both.
    let ike = cfg.connections.iter().any(|c| c.ike.is_some());
    let uses = |e| ike || cfg.connections.iter().any(|c| c.encapsulation == e);
    let local = |port| SocketAddr::new(cfg.public_address, port);
    Ok(Wan {
        udp: if uses(Encapsulation::Udp) {
            let mut sock = WanSocket::udp(local(NAT_T_PORT))?;
            // `[tun] offload = "off"` turns the socket's offloads off too
            // (one switch for the plain data path); otherwise each is used
            // where the kernel has it.
            let want = cfg.tun.offload != TunOffload::Off;
            let (gso, gro) = sock.enable_udp_offloads(want, want);
            stats.offload.udp_gso.store(gso, Ordering::Relaxed);
            stats.offload.udp_gro.store(gro, Ordering::Relaxed);
            Some(Arc::new(sock))
        } else {
            None
        },
        raw: if uses(Encapsulation::Esp) {
            Some(Arc::new(WanSocket::raw_esp(local(0))?))
        } else {
            None
        },
    })
}

/// What the health task needs from `run`.
struct Probes {
    tag: ProbeTag,
    kernel: KernelRoutes,
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    cfg: &Config,
    outbound: Outbound,
    inbound: Inbound,
    tun: Tun,
    wan: Wan,
    stats: Arc<Stats>,
    listener: tokio::net::UnixListener,
    probes: Probes,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let (died_tx, mut died_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(2);
    let (out_tx, out_rx) = worker::command_channel()?;
    let (in_tx, in_rx) = worker::command_channel()?;
    let (to_ike_tx, to_ike_rx) = tokio::sync::mpsc::channel(1024);
    let (reply_tx, reply_rx) = tokio::sync::mpsc::channel(256);
    let (test_tx, test_rx) = tokio::sync::mpsc::channel(16);
    let health = Health::new(
        Arc::new(cfg.clone()),
        stats.clone(),
        out_tx
            .try_clone()
            .context("cannot share the outbound command channel")?,
        probes.kernel,
        probes.tag,
    );
    let out_nudges_in = in_tx
        .nudge()
        .context("cannot share the inbound wake-up socket")?;
    let in_nudges_out = out_tx
        .nudge()
        .context("cannot share the outbound wake-up socket")?;
    let negotiator = Negotiator::new(Arc::new(cfg.clone()), wan.udp.clone(), out_tx, in_tx).await?;
    let to_ike = negotiator.as_ref().map(|_| to_ike_tx);
    let out_worker = worker::OutboundWorker::new(
        outbound,
        tun.clone(),
        wan.clone(),
        stats.clone(),
        out_rx,
        to_ike.clone(),
    );
    let in_worker = worker::InboundWorker::new(
        inbound,
        tun.clone(),
        wan.clone(),
        stats.clone(),
        in_rx,
        to_ike.clone(),
        Some(reply_tx),
    );
    let pool = worker::Threads {
        busy_poll: cfg.dataplane.busy_poll,
        stop: stop.clone(),
        died: died_tx,
    };
    let threads = match cfg.dataplane.threads {
        1 => worker::run_shared(out_worker, in_worker, &pool),
        _ => worker::run_split(out_worker, in_worker, out_nudges_in, in_nudges_out, &pool),
    }
    .context("cannot start the data-path threads")?;
    let (ctl_tx, ctl_rx) = tokio::sync::mpsc::channel(16);
    let (ike_stop_tx, ike_stop_rx) = tokio::sync::oneshot::channel();
    let ike_task = negotiator.map(|n| tokio::spawn(n.run(to_ike_rx, ctl_rx, ike_stop_rx)));
    let health_task = tokio::spawn(health.run(reply_rx, test_rx));
    let control = tokio::spawn(control::serve(
        listener,
        stats,
        ike_task.as_ref().map(|_| ctl_tx),
        test_tx,
    ));
    tracing::info!(
        gateway = %cfg.name,
        tun = %tun.name(),
        mtu = cfg.tun.mtu,
        connections = cfg.connections.len(),
        "ipsecgw running"
    );

    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let outcome = tokio::select! {
        _ = term.recv() => Ok(()),
        _ = int.recv() => Ok(()),
        Some(e) = died_rx.recv() => Err(e.context("a data-path thread stopped")),
    };
    tracing::info!("stopping");
    control.abort();
    health_task.abort();
    if let Some(task) = ike_task {
        // Tell the peers (DELETE) while the sockets still work.
        let _ = ike_stop_tx.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    outcome
}

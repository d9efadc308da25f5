//! The data-path threads. Two per gateway: outbound (TUN → WAN) and inbound
//! (WAN → TUN), each owning its half of the state (SPD and outbound SAs; the
//! SAD), so no lock is taken per packet and the two directions use both
//! cores. Each reads a batch, processes it in place, and writes it out;
//! buffers are allocated once.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use ipsecgw_esp::tun::{PacketBatch, TunDevice};
use ipsecgw_esp::{InboundSa, OutboundSa};
use ipsecgw_policy::TrafficSelector;
use socket2::SockAddr;

use crate::config::Encapsulation;
use crate::dataplane::inbound::Inbound;
use crate::dataplane::outbound::{OutVerdict, Outbound, TAILROOM};
use crate::dataplane::probe::EchoReply;
use crate::dataplane::stats::{bump, Stats};
use crate::sys::poll;
use crate::sys::socket::{strip_ipv4_header, WanSocket, MAX_BATCH};
use crate::sys::tun::Tun;

/// How often an idle thread looks at the stop flag.
const POLL_MS: i32 = 100;
/// A UDP 4500 payload of one 0xff byte is a NAT-keepalive (RFC 3948 §2.3).
const NAT_KEEPALIVE: u8 = 0xff;
/// Four zero bytes in front of a UDP 4500 payload mark IKE (RFC 3948 §2.2).
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Largest datagram read from the WAN.
const WAN_SLOT: usize = 65_536;

/// Changes to the outbound thread's SAs.
#[derive(Debug)]
pub enum OutCmd {
    /// Use this SA for the connection from now on.
    Install {
        /// Connection index.
        conn: usize,
        /// The SA.
        sa: Box<OutboundSa>,
        /// Where ESP goes (port 4500 for UDP encapsulation).
        remote: SocketAddr,
        /// UDP or raw.
        encapsulation: Encapsulation,
    },
    /// Stop using the SA `spi` (fail closed).
    Remove {
        /// Connection index.
        conn: usize,
        /// Outbound SPI.
        spi: u32,
    },
    /// Send this packet (a health-check or test echo) on connection `conn`.
    Probe {
        /// Connection index.
        conn: usize,
        /// The IP packet.
        packet: Vec<u8>,
    },
}

/// Changes to the inbound thread's SAD.
#[derive(Debug)]
pub enum InCmd {
    /// Accept ESP on this SA.
    Install {
        /// Connection index.
        conn: usize,
        /// The SA.
        sa: Box<InboundSa>,
        /// Our side's selectors.
        local: Vec<TrafficSelector>,
        /// The peer's side's selectors.
        remote: Vec<TrafficSelector>,
        /// Told once the SA is in place, so the outbound SA (and the
        /// first packets) go out only after replies can be decrypted.
        done: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// Forget the SA `spi`.
    Remove {
        /// Inbound SPI.
        spi: u32,
    },
}

/// What the data-path threads tell the negotiator.
#[derive(Debug)]
pub enum ToIke {
    /// An IKE message that arrived on UDP 4500 (non-ESP marker stripped).
    Datagram {
        /// Sender.
        from: SocketAddr,
        /// The IKE message.
        data: Vec<u8>,
    },
    /// A packet wants connection `conn`, which has no SA (trap).
    Acquire(usize),
    /// An SA of connection `conn` reached a byte or packet lifetime.
    Lifetime {
        /// Connection index.
        conn: usize,
        /// The SA's SPI and what happened.
        event: ipsecgw_esp::SaEvent,
    },
}

/// Forwards an SA lifetime event to the negotiator, if there is one.
fn lifetime_to_ike(
    to_ike: &Option<tokio::sync::mpsc::Sender<ToIke>>,
    conn: usize,
    event: ipsecgw_esp::SaEvent,
) {
    if let Some(tx) = to_ike {
        let _ = tx.try_send(ToIke::Lifetime { conn, event });
    }
}

/// The sending half of a command channel that also wakes the thread.
#[derive(Debug)]
pub struct CommandSender<C> {
    tx: mpsc::Sender<C>,
    wake: UnixDatagram,
}

impl<C> CommandSender<C> {
    /// A second sender on the same channel (for another task).
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            tx: self.tx.clone(),
            wake: self.wake.try_clone()?,
        })
    }

    /// Queues `cmd` and wakes the thread from poll.
    pub fn send(&self, cmd: C) {
        if self.tx.send(cmd).is_ok() {
            let _ = self.wake.send(&[1]);
        }
    }
}

/// The receiving half, owned by a data-path thread.
#[derive(Debug)]
pub struct Commands<C> {
    rx: mpsc::Receiver<C>,
    wake: UnixDatagram,
}

impl<C> Commands<C> {
    fn drain(&self, mut apply: impl FnMut(C)) {
        let mut buf = [0u8; 64];
        while self.wake.recv(&mut buf).is_ok() {}
        while let Ok(cmd) = self.rx.try_recv() {
            apply(cmd);
        }
    }
}

/// A command channel to a data-path thread.
pub fn command_channel<C>() -> anyhow::Result<(CommandSender<C>, Commands<C>)> {
    let (tx, rx) = mpsc::channel();
    let (a, b) = UnixDatagram::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((CommandSender { tx, wake: a }, Commands { rx, wake: b }))
}

/// The WAN sockets a gateway has.
#[derive(Debug, Clone)]
pub struct Wan {
    /// ESP in UDP 4500, if any connection uses it.
    pub udp: Option<Arc<WanSocket>>,
    /// Raw ESP, if any connection uses it.
    pub raw: Option<Arc<WanSocket>>,
}

/// TUN → SPD → encapsulate → WAN, until `stop`.
pub fn run_outbound(
    mut out: Outbound,
    mut tun: Tun,
    wan: Wan,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    commands: Commands<OutCmd>,
    to_ike: Option<tokio::sync::mpsc::Sender<ToIke>>,
) -> anyhow::Result<()> {
    let headroom = out.headroom();
    let mut batch = PacketBatch::new(
        MAX_BATCH,
        headroom + tun.mtu().max(1500) + TAILROOM,
        headroom,
    );
    let mut udp_items = Vec::with_capacity(MAX_BATCH);
    let mut raw_items = Vec::with_capacity(MAX_BATCH);
    // The gateway's own echoes, sent on the connection they test; a few
    // per second at most, so they may allocate.
    let mut probes: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut probe_conn: Vec<Option<usize>> = vec![None; MAX_BATCH];
    while !stop.load(Ordering::Relaxed) {
        commands.drain(|cmd| match cmd {
            OutCmd::Install {
                conn,
                sa,
                remote,
                encapsulation,
            } => out.install(conn, *sa, remote, encapsulation),
            OutCmd::Remove { conn, spi } => out.remove(conn, spi),
            OutCmd::Probe { conn, packet } => probes.push((conn, packet)),
        });
        out.refresh_routes();
        batch.clear();
        let mut released = out.release_held(&mut batch);
        probe_conn.fill(None);
        while let Some((conn, packet)) = probes.pop() {
            let Some(slot) = batch.next_free() else { break };
            if let Some(dst) = slot.get_mut(..packet.len()) {
                dst.copy_from_slice(&packet);
                batch.commit(packet.len());
                if let Some(p) = probe_conn.get_mut(released) {
                    *p = Some(conn);
                }
                released += 1;
            }
        }
        let n = released
            + match tun.recv_batch(&mut batch) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(anyhow::Error::new(e).context("reading the TUN device")),
            };
        if n == 0 {
            poll::readable(&[tun.fd(), commands.wake.as_raw_fd()], POLL_MS)?;
            continue;
        }
        udp_items.clear();
        raw_items.clear();
        for i in 0..n {
            let len = batch.packet_len(i);
            let inner = headroom..headroom + len;
            let verdict = match probe_conn.get(i).copied().flatten() {
                Some(conn) => out.process_probe(conn, batch.slot_mut(i), inner),
                None => out.process(batch.slot_mut(i), inner),
            };
            match verdict {
                OutVerdict::Send { conn, range } => {
                    let item = (i, range, SockAddr::from(out.conns[conn].remote));
                    match out.conns[conn].encapsulation {
                        Encapsulation::Udp => udp_items.push(item),
                        Encapsulation::Esp => raw_items.push(item),
                    }
                }
                OutVerdict::Reply(len) => {
                    if tun.send(out.reply(len)).is_err() {
                        bump(&stats.drops.send_errors);
                    }
                }
                OutVerdict::Acquire(conn) => {
                    if let Some(tx) = &to_ike {
                        let _ = tx.try_send(ToIke::Acquire(conn));
                    }
                }
                OutVerdict::Drop => {}
            }
        }
        for (sock, items) in [(&wan.udp, &udp_items), (&wan.raw, &raw_items)] {
            if items.is_empty() {
                continue;
            }
            let sent = match sock {
                Some(s) => s.send_batch(&mut batch, items),
                None => 0,
            };
            for _ in sent..items.len() {
                bump(&stats.drops.send_errors);
            }
        }
        out.publish(|conn, ev| lifetime_to_ike(&to_ike, conn, ev));
    }
    Ok(())
}

/// WAN → SAD → decapsulate → selectors → TUN, until `stop`; replies to
/// the gateway's own probes go to the health task instead of the TUN.
#[allow(clippy::too_many_arguments)] // each is a handle the thread owns
pub fn run_inbound(
    mut inb: Inbound,
    mut tun: Tun,
    wan: Wan,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    commands: Commands<InCmd>,
    to_ike: Option<tokio::sync::mpsc::Sender<ToIke>>,
    probe_replies: Option<tokio::sync::mpsc::Sender<EchoReply>>,
) -> anyhow::Result<()> {
    let mut batch = PacketBatch::new(MAX_BATCH, WAN_SLOT, 0);
    let mut sources = [None; MAX_BATCH];
    let socks: Vec<Arc<WanSocket>> = [wan.udp, wan.raw].into_iter().flatten().collect();
    let mut fds: Vec<_> = socks.iter().map(|s| s.fd()).collect();
    fds.push(commands.wake.as_raw_fd());
    while !stop.load(Ordering::Relaxed) {
        commands.drain(|cmd| match cmd {
            InCmd::Install {
                conn,
                sa,
                local,
                remote,
                done,
            } => {
                inb.install(conn, *sa, local, remote);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            InCmd::Remove { spi } => inb.remove(spi),
        });
        let mut any = false;
        for sock in &socks {
            batch.clear();
            let n = sock.recv_batch(&mut batch, &mut sources)?;
            if n == 0 {
                continue;
            }
            any = true;
            for (i, source) in sources.iter().enumerate().take(n) {
                let len = batch.packet_len(i);
                let slot = batch.slot_mut(i);
                let Some(datagram) = slot.get_mut(..len) else {
                    continue;
                };
                let esp = if sock.strips_ipv4_header() {
                    match strip_ipv4_header(datagram) {
                        Some(r) => &mut datagram[r],
                        None => {
                            bump(&stats.drops.malformed);
                            continue;
                        }
                    }
                } else {
                    match datagram {
                        [] => {
                            bump(&stats.drops.malformed);
                            continue;
                        }
                        [NAT_KEEPALIVE] => continue,
                        d if d.starts_with(&NON_ESP_MARKER) => {
                            // IKE on port 4500: the negotiator's.
                            match (&to_ike, *source) {
                                (Some(tx), Some(from)) => {
                                    let data = d[NON_ESP_MARKER.len()..].to_vec();
                                    if tx.try_send(ToIke::Datagram { from, data }).is_err() {
                                        bump(&stats.drops.not_esp);
                                    }
                                }
                                _ => bump(&stats.drops.not_esp),
                            }
                            continue;
                        }
                        d => d,
                    }
                };
                if let Some(inner) = inb.process(esp) {
                    let packet = &esp[inner];
                    if let (Some(tx), Some(reply)) = (&probe_replies, inb.probe_reply(packet)) {
                        // Ours: the health task's, not the site's.
                        let _ = tx.try_send(reply);
                        continue;
                    }
                    if tun.send(packet).is_err() {
                        bump(&stats.drops.send_errors);
                    }
                }
            }
        }
        inb.publish(|conn, ev| lifetime_to_ike(&to_ike, conn, ev));
        if !any {
            poll::readable(&fds, POLL_MS)?;
        }
    }
    Ok(())
}

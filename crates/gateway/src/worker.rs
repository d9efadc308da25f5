//! The data path. Each direction's state is owned by one worker (outbound:
//! the SPD and outbound SAs; inbound: the SAD), so no lock is taken per
//! packet; each worker reads a batch, processes it in place and writes it
//! out, with buffers allocated once. One thread runs both workers
//! ([`run_shared`], the default: an answer provoked by the thread's own
//! write is read without a wake-up), or one thread each ([`run_split`]).
//!
//! With TUN offloads ([`Tun::offloads`]) the outbound thread reads TCP
//! super-packets and cuts them into the batch (`TunReader`, over
//! `dataplane::gso`), and the inbound thread writes each receive batch's
//! TCP runs as coalesced super-packets (`write_coalesced`, over
//! `dataplane::gro`); UDP GSO/GRO on the WAN socket are `sys::socket`'s.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use ipsecgw_esp::tun::{PacketBatch, TunDevice};
use ipsecgw_esp::{InboundSa, OutboundSa};
use ipsecgw_policy::TrafficSelector;
use socket2::SockAddr;

use crate::config::Encapsulation;
use crate::dataplane::gro::{Coalescer, Role, MAX_SEGMENTS};
use crate::dataplane::gso::{
    complete_checksum, tcp_as_gso, Segmenter, VnetHdr, F_NEEDS_CSUM, GSO_NONE, VNET_HDR_LEN,
};
use crate::dataplane::inbound::Inbound;
use crate::dataplane::outbound::{OutVerdict, Outbound, TAILROOM};
use crate::dataplane::probe::EchoReply;
use crate::dataplane::stats::{add, bump, Stats};
use crate::sys::poll;
use crate::sys::socket::{strip_ipv4_header, SendReport, WanSocket, MAX_BATCH};
use crate::sys::tun::Tun;

/// How often an idle thread looks at the stop flag.
const POLL_MS: i32 = 100;
/// A UDP 4500 payload of one 0xff byte is a NAT-keepalive (RFC 3948 §2.3).
const NAT_KEEPALIVE: u8 = 0xff;
/// Four zero bytes in front of a UDP 4500 payload mark IKE (RFC 3948 §2.2).
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Largest datagram read from the WAN.
const WAN_SLOT: usize = 65_536;
/// Packets per outbound batch with TUN offloads: two 64 KiB super-packets
/// cut at a 1400-byte MTU, so a batch rarely stops mid-packet.
const OFFLOAD_BATCH: usize = 128;
/// Largest read from an offloading TUN device: header and a 64 KiB packet.
const TUN_READ: usize = VNET_HDR_LEN + 65_535;
/// Most inner packets one inbound batch yields: every slot a UDP GRO train.
const MAX_INNER: usize = MAX_BATCH * 64;

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
    wake: Wake,
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
            self.wake.send();
        }
    }
}

/// A thread's wake-up socket, and a flag that says something was written
/// to it: the thread, which looks for commands on every pass, reads the
/// socket only when the flag says so (no system call per pass). The byte
/// goes first and the flag after, so a byte is never left unread with the
/// flag down.
#[derive(Debug)]
struct Wake {
    sock: UnixDatagram,
    pending: Arc<AtomicBool>,
}

impl Wake {
    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            sock: self.sock.try_clone()?,
            pending: self.pending.clone(),
        })
    }

    fn send(&self) {
        let _ = self.sock.send(&[1]);
        self.pending.store(true, Ordering::Release);
    }
}

/// The receiving half, owned by a data-path thread.
#[derive(Debug)]
pub struct Commands<C> {
    rx: mpsc::Receiver<C>,
    wake: Wake,
}

impl<C> Commands<C> {
    fn drain(&self, mut apply: impl FnMut(C)) {
        if !self.wake.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let mut buf = [0u8; 64];
        while self.wake.sock.recv(&mut buf).is_ok() {}
        while let Ok(cmd) = self.rx.try_recv() {
            apply(cmd);
        }
    }
}

/// Wakes a data-path thread without a command, so that it busy-polls for
/// a while: the other thread has just sent traffic whose answers it will
/// read (see [`poll::Waiter`]).
#[derive(Debug)]
pub struct Nudge(Wake);

impl Nudge {
    fn send(&self) {
        self.0.send();
    }
}

impl<C> CommandSender<C> {
    /// A nudge for the thread this channel commands.
    pub fn nudge(&self) -> std::io::Result<Nudge> {
        Ok(Nudge(self.wake.try_clone()?))
    }
}

/// A command channel to a data-path thread.
pub fn command_channel<C>() -> anyhow::Result<(CommandSender<C>, Commands<C>)> {
    let (tx, rx) = mpsc::channel();
    let (a, b) = UnixDatagram::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    let pending = Arc::new(AtomicBool::new(false));
    Ok((
        CommandSender {
            tx,
            wake: Wake {
                sock: a,
                pending: pending.clone(),
            },
        },
        Commands {
            rx,
            wake: Wake { sock: b, pending },
        },
    ))
}

/// The WAN sockets a gateway has.
#[derive(Debug, Clone)]
pub struct Wan {
    /// ESP in UDP 4500, if any connection uses it.
    pub udp: Option<Arc<WanSocket>>,
    /// Raw ESP, if any connection uses it.
    pub raw: Option<Arc<WanSocket>>,
}

/// What a data-path thread owns for one direction, and handles a batch at
/// a time with [`OutboundWorker::step`] / [`InboundWorker::step`]: the
/// threads that run them ([`run_split`], [`run_shared`]) only decide how
/// to wait.
///
/// TUN → SPD → encapsulate → WAN.
pub struct OutboundWorker {
    out: Outbound,
    tun: Tun,
    wan: Wan,
    stats: Arc<Stats>,
    commands: Commands<OutCmd>,
    to_ike: Option<tokio::sync::mpsc::Sender<ToIke>>,
    headroom: usize,
    reader: Option<TunReader>,
    batch: PacketBatch,
    udp_items: Vec<(usize, std::ops::Range<usize>, SockAddr)>,
    raw_items: Vec<(usize, std::ops::Range<usize>, SockAddr)>,
    /// The gateway's own echoes, sent on the connection they test; a few
    /// per second at most, so they may allocate.
    probes: Vec<(usize, Vec<u8>)>,
    probe_conn: Vec<Option<usize>>,
}

impl OutboundWorker {
    /// The outbound half, with its buffers allocated once.
    pub fn new(
        out: Outbound,
        tun: Tun,
        wan: Wan,
        stats: Arc<Stats>,
        commands: Commands<OutCmd>,
        to_ike: Option<tokio::sync::mpsc::Sender<ToIke>>,
    ) -> Self {
        let headroom = out.headroom();
        let reader = tun.offloads().map(|_| TunReader::new());
        let slots = if reader.is_some() {
            OFFLOAD_BATCH
        } else {
            MAX_BATCH
        };
        let batch = PacketBatch::new(slots, headroom + tun.mtu().max(1500) + TAILROOM, headroom);
        Self {
            out,
            tun,
            wan,
            stats,
            commands,
            to_ike,
            headroom,
            reader,
            batch,
            udp_items: Vec::with_capacity(slots),
            raw_items: Vec::with_capacity(slots),
            probes: Vec::new(),
            probe_conn: vec![None; slots],
        }
    }

    /// What to wait on: the TUN device and the command wake-up socket.
    fn fds(&self) -> [RawFd; 2] {
        [self.tun.fd(), self.commands.wake.sock.as_raw_fd()]
    }

    /// Applies pending commands, then moves one batch from the TUN device to
    /// the WAN. Returns how many packets it handled (0: nothing waiting).
    pub fn step(&mut self) -> anyhow::Result<usize> {
        let Self {
            out,
            tun,
            wan,
            stats,
            commands,
            to_ike,
            headroom,
            reader,
            batch,
            udp_items,
            raw_items,
            probes,
            probe_conn,
        } = self;
        let headroom = *headroom;
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
        let mut released = out.release_held(batch);
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
        let read = match reader.as_mut() {
            Some(r) => r.fill(tun, batch, out, stats),
            None => tun.recv_batch(batch),
        };
        let n = released
            + match read {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(anyhow::Error::new(e).context("reading the TUN device")),
            };
        if n == 0 {
            return Ok(0);
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
                    if let Some(tx) = to_ike {
                        let _ = tx.try_send(ToIke::Acquire(conn));
                    }
                }
                OutVerdict::Drop => {}
            }
        }
        for (sock, items) in [(&wan.udp, &*udp_items), (&wan.raw, &*raw_items)] {
            if items.is_empty() {
                continue;
            }
            let report = match sock {
                Some(s) => s.send_batch(batch, items),
                None => SendReport::default(),
            };
            add(
                &stats.drops.send_errors,
                items.len().saturating_sub(report.packets) as u64,
            );
            add(&stats.offload.udp_gso_sends, report.gso_sends as u64);
            add(&stats.offload.udp_gso_segments, report.gso_segments as u64);
        }
        out.publish(|conn, ev| lifetime_to_ike(to_ike, conn, ev));
        Ok(n)
    }
}

/// WAN → SAD → decapsulate → selectors → TUN; replies to the gateway's
/// own probes go to the health task instead of the TUN.
pub struct InboundWorker {
    inb: Inbound,
    tun: Tun,
    socks: Vec<Arc<WanSocket>>,
    stats: Arc<Stats>,
    commands: Commands<InCmd>,
    to_ike: Option<tokio::sync::mpsc::Sender<ToIke>>,
    probe_replies: Option<tokio::sync::mpsc::Sender<EchoReply>>,
    batch: PacketBatch,
    sources: [Option<SocketAddr>; MAX_BATCH],
    /// With TUN offloads: the accepted inner packets of a receive batch
    /// (as ranges of the batch's storage) and the plan that coalesces them.
    gro: bool,
    inner_packets: Vec<std::ops::Range<usize>>,
    coalescer: Coalescer,
    segments: [usize; MAX_BATCH],
}

impl InboundWorker {
    /// The inbound half, with its buffers allocated once.
    pub fn new(
        inb: Inbound,
        tun: Tun,
        wan: Wan,
        stats: Arc<Stats>,
        commands: Commands<InCmd>,
        to_ike: Option<tokio::sync::mpsc::Sender<ToIke>>,
        probe_replies: Option<tokio::sync::mpsc::Sender<EchoReply>>,
    ) -> Self {
        let gro = tun.offloads().is_some();
        Self {
            inb,
            tun,
            socks: [wan.udp, wan.raw].into_iter().flatten().collect(),
            stats,
            commands,
            to_ike,
            probe_replies,
            batch: PacketBatch::new(MAX_BATCH, WAN_SLOT, 0),
            sources: [None; MAX_BATCH],
            gro,
            inner_packets: Vec::with_capacity(MAX_INNER),
            coalescer: Coalescer::new(MAX_INNER, MAX_BATCH),
            segments: [0usize; MAX_BATCH],
        }
    }

    /// What to wait on: the WAN sockets and the command wake-up socket.
    fn fds(&self) -> Vec<RawFd> {
        let mut fds: Vec<_> = self.socks.iter().map(|s| s.fd()).collect();
        fds.push(self.commands.wake.sock.as_raw_fd());
        fds
    }

    /// Applies pending commands, then takes one batch from each WAN socket
    /// to the TUN device. Returns how many datagrams it handled.
    pub fn step(&mut self) -> anyhow::Result<usize> {
        let Self {
            inb,
            tun,
            socks,
            stats,
            commands,
            to_ike,
            probe_replies,
            batch,
            sources,
            gro,
            inner_packets,
            coalescer,
            segments,
        } = self;
        let gro = *gro;
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
        let mut total = 0;
        for sock in socks.iter() {
            batch.clear();
            let n = sock.recv_batch(batch, sources, segments)?;
            if n == 0 {
                continue;
            }
            total += n;
            inner_packets.clear();
            let slot_size = batch.slot_size();
            for (i, source) in sources.iter().enumerate().take(n) {
                let len = batch.packet_len(i);
                let slot = batch.slot_mut(i);
                let Some(whole) = slot.get_mut(..len) else {
                    continue;
                };
                if len == 0 {
                    bump(&stats.drops.malformed);
                    continue;
                }
                // With UDP GRO a slot may hold a train of datagrams, all of
                // `segments[i]` bytes but a shorter last one.
                let seg = match segments[i] {
                    0 => len,
                    s => {
                        add(&stats.offload.udp_gro_receives, 1);
                        add(&stats.offload.udp_gro_segments, len.div_ceil(s) as u64);
                        s
                    }
                };
                for (piece, datagram) in whole.chunks_mut(seg).enumerate() {
                    let mut esp_at = piece * seg;
                    let esp = if sock.strips_ipv4_header() {
                        match strip_ipv4_header(datagram) {
                            Some(r) => {
                                esp_at += r.start;
                                &mut datagram[r]
                            }
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
                                match (&*to_ike, *source) {
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
                        let packet = &esp[inner.clone()];
                        if let (Some(tx), Some(reply)) = (&*probe_replies, inb.probe_reply(packet))
                        {
                            // Ours: the health task's, not the site's.
                            let _ = tx.try_send(reply);
                            continue;
                        }
                        if gro && inner_packets.len() < MAX_INNER {
                            let at = i * slot_size + esp_at;
                            inner_packets.push(at + inner.start..at + inner.end);
                        } else if tun.send(packet).is_err() {
                            bump(&stats.drops.send_errors);
                        }
                    }
                }
            }
            if gro {
                write_coalesced(tun, batch, inner_packets, coalescer, stats);
            }
        }
        inb.publish(|conn, ev| lifetime_to_ike(to_ike, conn, ev));
        Ok(total)
    }
}

/// How the data-path threads run: their busy-poll window, the flag that
/// stops them, and where a thread that fails reports its error.
#[derive(Debug, Clone)]
pub struct Threads {
    /// Busy-poll window after the last packet (zero: sleep at once).
    pub busy_poll: std::time::Duration,
    /// Set to stop the threads.
    pub stop: Arc<AtomicBool>,
    /// Told a thread's error when it stops on one.
    pub died: tokio::sync::mpsc::Sender<anyhow::Error>,
}

impl Threads {
    fn spawn(
        &self,
        name: &str,
        work: impl FnOnce(&Self) -> anyhow::Result<()> + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Err(e) = work(&me) {
                    let _ = me.died.blocking_send(e);
                }
            })
    }

    /// A data-path thread's loop until `stop`: `step` while it finds
    /// packets, wait on `fds` when it does not; after waking from sleep for
    /// traffic, `nudge` the other thread (then the wake-up socket must be
    /// the last of `fds`, so that a command does not count as traffic).
    fn drive(
        &self,
        fds: &[RawFd],
        nudge: Option<&Nudge>,
        mut step: impl FnMut() -> anyhow::Result<usize>,
    ) -> anyhow::Result<()> {
        let mut waiter = poll::Waiter::new(self.busy_poll);
        while !self.stop.load(Ordering::Relaxed) {
            if step()? == 0 {
                waiter.idle(fds, POLL_MS)?;
                continue;
            }
            waiter.worked();
            if let (true, Some(n)) = (waiter.take_woke_by_traffic(), nudge) {
                n.send();
            }
        }
        Ok(())
    }
}

/// Two threads, one per direction, until `stop`: the two cores share the
/// work of a busy tunnel. A thread that wakes for traffic after sleeping
/// nudges the other, which will carry the answers.
pub fn run_split(
    mut out: OutboundWorker,
    mut inb: InboundWorker,
    out_nudges_in: Nudge,
    in_nudges_out: Nudge,
    threads: &Threads,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let outbound = threads.spawn("ipsecgw-out", move |t| {
        t.drive(&out.fds(), Some(&out_nudges_in), || out.step())
    })?;
    let inbound = threads.spawn("ipsecgw-in", move |t| {
        t.drive(&inb.fds(), Some(&in_nudges_out), || inb.step())
    })?;
    Ok(vec![outbound, inbound])
}

/// One thread for both directions, until `stop`: an answer that the
/// thread's own write provoked (the far host's reply to a packet just
/// written to the TUN device, say) is read by the same thread at once,
/// with no wake-up in between.
pub fn run_shared(
    mut out: OutboundWorker,
    mut inb: InboundWorker,
    threads: &Threads,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let handle = threads.spawn("ipsecgw-data", move |t| {
        let fds: Vec<RawFd> = out.fds().into_iter().chain(inb.fds()).collect();
        // No other thread to nudge.
        t.drive(&fds, None, || Ok(out.step()? + inb.step()?))
    })?;
    Ok(vec![handle])
}

/// Reads an offloading TUN device: one read brings a packet or a TCP
/// super-packet of up to 64 KiB, which is cut into the batch's slots; a
/// super-packet that does not fit the batch is finished in the next one.
struct TunReader {
    buf: Vec<u8>,
    len: usize,
    /// The super-packet in `buf` being cut, and the next segment.
    cut: Option<(Segmenter, usize)>,
}

impl TunReader {
    fn new() -> Self {
        Self {
            buf: vec![0; TUN_READ],
            len: 0,
            cut: None,
        }
    }

    /// Fills the free slots of `batch`: segments left from the last call
    /// first, then new reads, until the batch is full or the device has
    /// nothing more. Returns how many packets it added.
    fn fill(
        &mut self,
        tun: &Tun,
        batch: &mut PacketBatch,
        out: &Outbound,
        stats: &Stats,
    ) -> std::io::Result<usize> {
        // What a slot holds with room for the ESP trailer after it.
        let room = batch.max_packet().saturating_sub(TAILROOM);
        // Packets up to this size fit every connection's tunnel.
        let smallest_fit = out.conns.iter().map(|c| c.max_inner).min().unwrap_or(room);
        let mut n = 0;
        loop {
            let Self { buf, len, cut } = self;
            if let Some((seg, next)) = cut.as_mut() {
                let pkt = buf.get(VNET_HDR_LEN..*len).unwrap_or_default();
                while *next < seg.count() {
                    let Some(slot) = batch.next_free() else {
                        return Ok(n);
                    };
                    match seg.segment(pkt, *next, slot) {
                        Some(l) => {
                            batch.commit(l);
                            n += 1;
                        }
                        None => bump(&stats.drops.malformed),
                    }
                    *next += 1;
                }
                *cut = None;
            }
            if batch.is_full() {
                return Ok(n);
            }
            let got = match tun.read_raw(buf) {
                Ok(l) => l,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    return Ok(n)
                }
                Err(e) => return Err(e),
            };
            let Some(hdr) = VnetHdr::parse(buf.get(..got).unwrap_or_default()) else {
                bump(&stats.drops.malformed);
                continue;
            };
            let Some(pkt) = buf.get_mut(VNET_HDR_LEN..got) else {
                bump(&stats.drops.malformed);
                continue;
            };
            // A single TCP packet larger than a tunnel takes is cut like a
            // super-packet: the kernel may not take the ICMP error that
            // would make the sender smaller (see `Outbound::process`).
            let hdr = tcp_as_gso(&hdr, pkt, smallest_fit).unwrap_or(hdr);
            if hdr.gso_type == GSO_NONE {
                if hdr.flags & F_NEEDS_CSUM != 0 && complete_checksum(pkt, &hdr).is_err() {
                    bump(&stats.drops.malformed);
                    continue;
                }
                let Some(slot) = batch.next_free() else {
                    return Ok(n);
                };
                match slot.get_mut(..pkt.len()).filter(|_| pkt.len() <= room) {
                    Some(dst) => {
                        dst.copy_from_slice(pkt);
                        batch.commit(pkt.len());
                        n += 1;
                    }
                    None => bump(&stats.drops.malformed),
                }
                continue;
            }
            match Segmenter::new(&hdr, pkt) {
                Ok(mut seg) => {
                    // Segments sized to fit the connection's tunnel (TCP).
                    let fit = out.max_inner_for(pkt).unwrap_or(room).min(room);
                    seg.clamp(fit);
                    if seg.max_segment() > room {
                        bump(&stats.drops.malformed);
                        continue;
                    }
                    add(&stats.offload.gso_packets, 1);
                    add(&stats.offload.gso_segments, seg.count() as u64);
                    *len = got;
                    *cut = Some((seg, 0));
                }
                Err(e) => {
                    tracing::trace!(error = %e, "unusable packet from the TUN device");
                    bump(&stats.drops.malformed);
                }
            }
        }
    }
}

/// Writes a receive batch's inner packets (`packets`, ranges of `batch`'s
/// storage, in arrival order) to an offloading TUN device: runs of one TCP
/// flow as coalesced super-packets, everything else one by one with an
/// empty virtio-net header.
fn write_coalesced(
    tun: &Tun,
    batch: &mut PacketBatch,
    packets: &[std::ops::Range<usize>],
    coalescer: &mut Coalescer,
    stats: &Stats,
) {
    let (data, _, _, _) = batch.free_slots_mut();
    coalescer.clear();
    for (k, r) in packets.iter().enumerate() {
        coalescer.push(k, data.get(r.clone()).unwrap_or_default());
    }
    let none = [0u8; VNET_HDR_LEN];
    for (k, r) in packets.iter().enumerate() {
        let (hdr, members) = match coalescer.role(k) {
            Role::Head(g) if coalescer.segments(g) > 1 => {
                let Some(head) = data.get_mut(r.clone()) else {
                    continue;
                };
                match coalescer.finish(g, head) {
                    Some(h) => (h.emit(), Some(g)),
                    None => (none, None),
                }
            }
            Role::Head(_) | Role::Single => (none, None),
            Role::Member | Role::Absent => continue,
        };
        let data: &[u8] = data;
        let mut iov = [IoSlice::new(&[]); MAX_SEGMENTS + 1];
        iov[0] = IoSlice::new(&hdr);
        iov[1] = IoSlice::new(data.get(r.clone()).unwrap_or_default());
        let mut parts = 2;
        if let Some(g) = members {
            let payload = coalescer.member_payload(g).start;
            for (slot, m) in iov[2..].iter_mut().zip(coalescer.members(g)) {
                let bytes = packets
                    .get(m)
                    .and_then(|r| data.get(r.start + payload..r.end))
                    .unwrap_or_default();
                *slot = IoSlice::new(bytes);
                parts += 1;
            }
        }
        let segs = parts as u64 - 1;
        if tun.write_parts(&iov[..parts]).is_err() {
            add(&stats.drops.send_errors, segs);
        } else if segs > 1 {
            add(&stats.offload.gro_writes, 1);
            add(&stats.offload.gro_segments, segs);
        }
    }
}

//! The data-path threads. Two per gateway: outbound (TUN → WAN) and inbound
//! (WAN → TUN), each owning its half of the state (SPD and outbound SAs; the
//! SAD), so no lock is taken per packet and the two directions use both
//! cores. Each reads a batch, processes it in place, and writes it out;
//! buffers are allocated once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ipsecgw_esp::tun::{PacketBatch, TunDevice};
use socket2::SockAddr;

use crate::config::Encapsulation;
use crate::dataplane::inbound::Inbound;
use crate::dataplane::outbound::{OutVerdict, Outbound, TAILROOM};
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
) -> anyhow::Result<()> {
    let headroom = out.headroom();
    let mut batch = PacketBatch::new(
        MAX_BATCH,
        headroom + tun.mtu().max(1500) + TAILROOM,
        headroom,
    );
    let dests: Vec<SockAddr> = out.conns.iter().map(|c| SockAddr::from(c.remote)).collect();
    let mut udp_items = Vec::with_capacity(MAX_BATCH);
    let mut raw_items = Vec::with_capacity(MAX_BATCH);
    while !stop.load(Ordering::Relaxed) {
        batch.clear();
        let n = match tun.recv_batch(&mut batch) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(anyhow::Error::new(e).context("reading the TUN device")),
        };
        if n == 0 {
            poll::readable(&[tun.fd()], POLL_MS)?;
            continue;
        }
        udp_items.clear();
        raw_items.clear();
        for i in 0..n {
            let len = batch.packet_len(i);
            let verdict = out.process(batch.slot_mut(i), headroom..headroom + len);
            match verdict {
                OutVerdict::Send { conn, range } => {
                    let item = (i, range, dests[conn].clone());
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
        out.publish();
    }
    Ok(())
}

/// WAN → SAD → decapsulate → selectors → TUN, until `stop`.
pub fn run_inbound(
    mut inb: Inbound,
    mut tun: Tun,
    wan: Wan,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut batch = PacketBatch::new(MAX_BATCH, WAN_SLOT, 0);
    let socks: Vec<Arc<WanSocket>> = [wan.udp, wan.raw].into_iter().flatten().collect();
    let fds: Vec<_> = socks.iter().map(|s| s.fd()).collect();
    while !stop.load(Ordering::Relaxed) {
        let mut any = false;
        for sock in &socks {
            batch.clear();
            let n = sock.recv_batch(&mut batch)?;
            if n == 0 {
                continue;
            }
            any = true;
            for i in 0..n {
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
                            // IKE on port 4500: the negotiator's, once it lands.
                            bump(&stats.drops.not_esp);
                            continue;
                        }
                        d => d,
                    }
                };
                if let Some(inner) = inb.process(esp) {
                    if tun.send(&esp[inner]).is_err() {
                        bump(&stats.drops.send_errors);
                    }
                }
            }
        }
        inb.publish();
        if !any {
            poll::readable(&fds, POLL_MS)?;
        }
    }
    Ok(())
}

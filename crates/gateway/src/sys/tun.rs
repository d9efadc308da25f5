//! The kernel TUN device, through the `tun-tap` crate, behind the data
//! path's [`TunDevice`] trait.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use anyhow::Context;
use ipsecgw_esp::tun::{PacketBatch, TunDevice};
use tun_tap::{Iface, Mode};

/// One handle on the TUN device; clones share the descriptor, so the
/// outbound thread reads while the inbound thread writes.
#[derive(Debug, Clone)]
pub struct Tun {
    iface: Arc<Iface>,
    mtu: usize,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`, without the packet
    /// information header, non-blocking.
    pub fn open(name: &str, mtu: usize) -> anyhow::Result<Self> {
        let iface = Iface::without_packet_info(name, Mode::Tun).with_context(|| {
            format!("cannot create TUN device {name:?} (needs CAP_NET_ADMIN and /dev/net/tun)")
        })?;
        iface
            .set_non_blocking()
            .context("cannot make the TUN device non-blocking")?;
        Ok(Self {
            iface: Arc::new(iface),
            mtu,
        })
    }

    /// The interface name the kernel gave it.
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// For poll.
    pub fn fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}

impl TunDevice for Tun {
    fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let mut n = 0;
        while let Some(slot) = batch.next_free() {
            match self.iface.recv(slot) {
                Ok(len) => {
                    batch.commit(len);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.iface.send(packet).map(|_| ())
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

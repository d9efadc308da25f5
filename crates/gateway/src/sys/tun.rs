//! The kernel TUN device, opened with the ioctls directly, behind the data
//! path's [`TunDevice`] trait.
//!
//! With offloads (`IFF_VNET_HDR` + `TUNSETOFFLOAD`) every read and write
//! carries a virtio-net header: the kernel hands over TCP super-packets of
//! up to 64 KiB (cut by `dataplane::gso`) and takes coalesced ones
//! (`dataplane::gro`), so one system call moves dozens of packets. Some
//! kernels accept the flags and then refuse such writes: [`Tun::self_test`]
//! finds out before the device carries traffic, and the daemon falls back
//! to the plain device.
#![allow(unsafe_code)] // TUNSETIFF, TUNSETOFFLOAD and SIOCSIFTXQLEN have no safe wrapper.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use anyhow::Context;
use ipsecgw_esp::tun::{PacketBatch, TunDevice};

use crate::dataplane::gso::{VnetHdr, F_NEEDS_CSUM, GSO_TCPV4, TCP_CSUM_OFFSET, VNET_HDR_LEN};

/// What the kernel agreed to hand over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    /// UDP segmentation offload (`TUN_F_USO4/6`, Linux 6.2+) as well as TSO.
    pub uso: bool,
}

/// One handle on the TUN device; clones share the descriptor, so the
/// outbound thread reads while the inbound thread writes.
#[derive(Debug, Clone)]
pub struct Tun {
    file: Arc<File>,
    name: String,
    mtu: usize,
    offloads: Option<Offloads>,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`, without the packet
    /// information header, non-blocking; with `offload`, also with the
    /// virtio-net header and TSO (and USO where the kernel has it). An
    /// error with `offload` means the kernel refused it: try without.
    pub fn open(name: &str, mtu: usize, offload: bool) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")
            .context("cannot open /dev/net/tun (needs CAP_NET_ADMIN and the tun module)")?;
        let mut req = ifreq(name)?;
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
        if offload {
            flags |= libc::IFF_VNET_HDR;
        }
        req.ifr_ifru.ifru_flags = flags as libc::c_short;
        // SAFETY: `req` is a valid, initialised ifreq that outlives the call;
        // TUNSETIFF reads it and writes the chosen name back into it.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error()).with_context(|| {
                format!("cannot create TUN device {name:?} (needs CAP_NET_ADMIN and /dev/net/tun)")
            });
        }
        let name = ifname(&req);
        let offloads = if offload {
            Some(enable_offloads(&file).context("the kernel refused TUN offloads")?)
        } else {
            None
        };
        Ok(Self {
            file: Arc::new(file),
            name,
            mtu,
            offloads,
        })
    }

    /// The interface name the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// For poll.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The offloads in use (`None`: the plain device, one packet a read).
    pub fn offloads(&self) -> Option<Offloads> {
        self.offloads
    }

    /// Reads one packet as the kernel hands it over: with offloads, a
    /// virtio-net header and a packet of up to 64 KiB.
    pub fn read_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.file).read(buf)
    }

    /// Writes one packet made of `parts` (with offloads, the first part is
    /// the virtio-net header).
    pub fn write_parts(&self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        (&*self.file).write_vectored(parts).map(|_| ())
    }

    /// Checks that the kernel takes what the data path will write: a
    /// coalesced TCP packet (two segments, partial checksum) and a plain one.
    /// They go from and to 127.0.0.1, which the kernel drops as martians
    /// once it has parsed them. Call with the device up.
    pub fn self_test(&self) -> io::Result<()> {
        if self.offloads.is_none() {
            return Ok(());
        }
        let mut pkt = [0u8; 20 + 20 + 16];
        let total = pkt.len() as u16;
        pkt[0] = 0x45;
        pkt[2..4].copy_from_slice(&total.to_be_bytes());
        pkt[6] = 0x40;
        pkt[8] = 1;
        pkt[9] = 6;
        pkt[12..16].copy_from_slice(&[127, 0, 0, 1]);
        pkt[16..20].copy_from_slice(&[127, 0, 0, 1]);
        crate::dataplane::csum::fix_ipv4_header(&mut pkt[..20]);
        pkt[20..22].copy_from_slice(&9u16.to_be_bytes());
        pkt[22..24].copy_from_slice(&9u16.to_be_bytes());
        pkt[32] = 5 << 4;
        pkt[33] = 0x10;
        pkt[34..36].copy_from_slice(&1024u16.to_be_bytes());
        let pseudo = crate::dataplane::csum::pseudo_header(&pkt, 6, 36).unwrap_or(0);
        pkt[36..38].copy_from_slice(&crate::dataplane::csum::fold(pseudo).to_ne_bytes());
        let gso = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 8,
            csum_start: 20,
            csum_offset: TCP_CSUM_OFFSET,
        }
        .emit();
        self.write_parts(&[IoSlice::new(&gso), IoSlice::new(&pkt)])?;
        let plain = VnetHdr {
            flags: F_NEEDS_CSUM,
            ..VnetHdr::default()
        };
        let plain = VnetHdr {
            csum_start: 20,
            csum_offset: TCP_CSUM_OFFSET,
            ..plain
        }
        .emit();
        self.write_parts(&[IoSlice::new(&plain), IoSlice::new(&pkt)])
    }

    /// Sets the device's transmit queue length (the kernel's queue of
    /// packets waiting for this daemon to read them).
    pub fn set_txqueuelen(&self, qlen: u32) -> io::Result<()> {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        let mut req = ifreq(&self.name).map_err(io::Error::other)?;
        req.ifr_ifru.ifru_metric = qlen as libc::c_int;
        // SAFETY: `req` is a valid ifreq naming our device, alive for the
        // call; SIOCSIFTXQLEN only reads it.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFTXQLEN, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// An all-zero ifreq carrying `name`.
fn ifreq(name: &str) -> anyhow::Result<libc::ifreq> {
    if name.len() >= libc::IFNAMSIZ || name.as_bytes().contains(&0) {
        anyhow::bail!("{name:?} is not a valid interface name");
    }
    // SAFETY: ifreq is plain old data (a name array and a union of plain
    // data and a pointer); all-zero is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn ifname(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn enable_offloads(file: &File) -> io::Result<Offloads> {
    let size: libc::c_int = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which
    // points at `size`, alive for the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let tso = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    for (flags, uso) in [
        (tso | libc::TUN_F_USO4 | libc::TUN_F_USO6, true),
        (tso, false),
    ] {
        // SAFETY: TUNSETOFFLOAD takes its flags by value; no memory is shared.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        };
        if rc == 0 {
            return Ok(Offloads { uso });
        }
    }
    Err(io::Error::last_os_error())
}

impl TunDevice for Tun {
    /// The plain device only: with offloads the outbound thread reads with
    /// [`Tun::read_raw`] and cuts super-packets itself.
    fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        if self.offloads.is_some() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let mut n = 0;
        while let Some(slot) = batch.next_free() {
            match (&*self.file).read(slot) {
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
        if self.offloads.is_some() {
            let none = [0u8; VNET_HDR_LEN];
            self.write_parts(&[IoSlice::new(&none), IoSlice::new(packet)])
        } else {
            (&*self.file).write(packet).map(|_| ())
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

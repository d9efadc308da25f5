//! The WAN sockets: ESP in UDP 4500 and raw ESP (IP protocol 50), read and
//! written in batches with recvmmsg(2) / sendmmsg(2) so a burst of packets
//! costs one system call, not one each.
//!
//! On the UDP socket, runs of same-size ESP packets to one peer (the
//! segments of one TCP super-packet) go out as one UDP GSO send
//! (`UDP_SEGMENT`, Linux 4.18+): one trip through the stack for up to 64 KiB,
//! cut by the kernel (or the NIC) at the end. With `UDP_GRO` (Linux 5.0+)
//! the kernel hands such a train over as one buffer with its segment size,
//! and [`WanSocket::recv_batch`] reports it so the caller can split it. A
//! kernel that refuses either is used without it.
#![allow(unsafe_code)] // recvmmsg/sendmmsg and cmsgs have no safe wrapper in std or socket2.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use ipsecgw_esp::tun::PacketBatch;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The most messages one system call moves.
pub const MAX_BATCH: usize = 64;

/// IANA protocol number of ESP.
const IPPROTO_ESP: i32 = 50;

/// Socket buffers large enough to ride out a burst at several Gbit/s.
const SOCKET_BUFFER: usize = 8 << 20;

/// Most segments in one UDP GSO send (the kernel's UDP_MAX_SEGMENTS is 64
/// on older kernels).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes in one UDP GSO send: a UDP payload's limit (RFC 768 length
/// field) less the UDP header.
const GSO_MAX_BYTES: usize = 65_535 - 8;
/// Control buffer per message: one cmsghdr (16) and an int, aligned.
const CMSG_BUF: usize = 32;

/// A WAN socket: UDP bound to port 4500, or raw ESP.
#[derive(Debug)]
pub struct WanSocket {
    sock: Socket,
    /// Raw IPv4 sockets deliver the IP header in front of the ESP packet.
    strips_ipv4_header: bool,
    /// UDP GSO sends are in use (cleared if the kernel refuses one).
    gso: AtomicBool,
    /// UDP GRO is on: receives may hold several datagrams.
    gro: bool,
}

/// A sendmmsg control buffer with the alignment a cmsghdr needs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg([u8; CMSG_BUF]);

impl WanSocket {
    /// UDP on `local:port`, for ESP in UDP (RFC 3948).
    pub fn udp(local: SocketAddr) -> anyhow::Result<Self> {
        let sock = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))
            .context("cannot create the UDP socket")?;
        // Blocking for sends (a full socket buffer pushes back on the TUN
        // reader instead of dropping); receives pass MSG_DONTWAIT.
        tune_buffers(&sock);
        sock.bind(&local.into()).with_context(|| {
            format!("cannot bind UDP {local} (is another IPsec daemon running?)")
        })?;
        Ok(Self {
            sock,
            strips_ipv4_header: false,
            gso: AtomicBool::new(false),
            gro: false,
        })
    }

    /// Turns on what the kernel supports of UDP GSO (sends) and GRO
    /// (receives), as asked; returns which are on.
    pub fn enable_udp_offloads(&mut self, gso: bool, gro: bool) -> (bool, bool) {
        if gso {
            // Probing: reading the option fails on kernels without UDP GSO.
            let mut v: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `v` and `len` are live locals of the sizes passed;
            // getsockopt writes at most `len` bytes into `v`.
            let rc = unsafe {
                libc::getsockopt(
                    self.sock.as_raw_fd(),
                    libc::SOL_UDP,
                    libc::UDP_SEGMENT,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            self.gso.store(rc == 0, Ordering::Relaxed);
        }
        if gro {
            let on: libc::c_int = 1;
            // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `on`,
            // a live local.
            let rc = unsafe {
                libc::setsockopt(
                    self.sock.as_raw_fd(),
                    libc::SOL_UDP,
                    libc::UDP_GRO,
                    (&on as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            self.gro = rc == 0;
        }
        (self.gso.load(Ordering::Relaxed), self.gro)
    }

    /// Whether UDP GSO sends are (still) in use.
    pub fn gso(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Raw ESP (IP protocol 50) bound to `local` (needs CAP_NET_RAW).
    pub fn raw_esp(local: SocketAddr) -> anyhow::Result<Self> {
        let sock = Socket::new(
            Domain::for_address(local),
            Type::RAW,
            Some(Protocol::from(IPPROTO_ESP)),
        )
        .context("cannot create the raw ESP socket (needs CAP_NET_RAW)")?;
        // Blocking for sends (a full socket buffer pushes back on the TUN
        // reader instead of dropping); receives pass MSG_DONTWAIT.
        tune_buffers(&sock);
        sock.bind(&SocketAddr::new(local.ip(), 0).into())
            .with_context(|| format!("cannot bind raw ESP to {}", local.ip()))?;
        Ok(Self {
            sock,
            strips_ipv4_header: local.is_ipv4(),
            gso: AtomicBool::new(false),
            gro: false,
        })
    }

    /// For poll.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Whether each received datagram starts with an IPv4 header to skip.
    pub fn strips_ipv4_header(&self) -> bool {
        self.strips_ipv4_header
    }

    /// Receives up to the free slots of `batch` (at most [`MAX_BATCH`]) in
    /// one recvmmsg; each datagram lands after the slot's headroom, its
    /// sender in `sources[k]` (k counting from 0 for this call) and, with
    /// UDP GRO, in `segments[k]` the size of the datagrams the slot holds
    /// back to back (0: one datagram). Returns how many slots were filled
    /// (0 when nothing was waiting).
    pub fn recv_batch(
        &self,
        batch: &mut PacketBatch,
        sources: &mut [Option<SocketAddr>; MAX_BATCH],
        segments: &mut [usize; MAX_BATCH],
    ) -> io::Result<usize> {
        let (data, slot_size, headroom, first) = batch.free_slots_mut();
        let free = (data.len() / slot_size)
            .saturating_sub(first)
            .min(MAX_BATCH);
        if free == 0 {
            return Ok(0);
        }
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        // SAFETY: mmsghdr is plain old data for which all-zero is a valid value.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut ctrl = [Cmsg([0; CMSG_BUF]); MAX_BATCH];
        for i in 0..free {
            let start = (first + i) * slot_size + headroom;
            let slot = &mut data[start..(first + i + 1) * slot_size];
            iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if self.gro {
                msgs[i].msg_hdr.msg_control = ctrl[i].0.as_mut_ptr().cast();
                msgs[i].msg_hdr.msg_controllen = CMSG_BUF as _;
            }
        }
        // SAFETY: every msg_iov points at a distinct, live region of `data`
        // that `batch` keeps borrowed mutably for this call; every msg_name at
        // a distinct, live sockaddr_storage of `names` with its true size;
        // every msg_control (with GRO) at a distinct, live, aligned buffer
        // of `ctrl` with its true size; `free <= MAX_BATCH` entries are valid.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                free as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (k, m) in msgs[..n].iter().enumerate() {
            sources[k] = socket_addr(&names[k], m.msg_hdr.msg_namelen);
            segments[k] = if self.gro { gro_segment(&m.msg_hdr) } else { 0 };
            // A datagram larger than the slot is truncated: mark it empty so
            // it is counted as malformed instead of processed.
            let len = if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                0
            } else {
                m.msg_len as usize
            };
            batch.commit(len);
        }
        Ok(n)
    }

    /// Sends one datagram now (IKE on port 4500); errors are the caller's.
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.sock.send_to(data, &to.into())
    }

    /// Sends `items` (slot index, byte range in the slot, destination) out of
    /// `batch` with as few sendmmsg calls as possible, runs of same-size
    /// packets to one destination as single UDP GSO sends when those are
    /// on. Returns how many packets the kernel took, and in how many GSO
    /// sends of several; the rest are dropped (the caller counts them).
    pub fn send_batch(
        &self,
        batch: &mut PacketBatch,
        items: &[(usize, std::ops::Range<usize>, SockAddr)],
    ) -> SendReport {
        if self.gso() {
            match self.send_gso(batch, items) {
                Ok(report) => return report,
                Err((mut report, rest)) => {
                    // The kernel refused a GSO send: without from now on.
                    tracing::debug!("UDP GSO refused by the kernel; sending packet by packet");
                    self.gso.store(false, Ordering::Relaxed);
                    report.packets += self.send_each(batch, &items[rest..]);
                    return report;
                }
            }
        }
        SendReport {
            packets: self.send_each(batch, items),
            ..SendReport::default()
        }
    }

    /// UDP GSO sends: each message carries a run of items as one iovec
    /// each, cut by the kernel at the run's first size. On a refused GSO
    /// message, returns what was sent and the index of the first item not
    /// sent.
    fn send_gso(
        &self,
        batch: &mut PacketBatch,
        items: &[(usize, std::ops::Range<usize>, SockAddr)],
    ) -> Result<SendReport, (SendReport, usize)> {
        let (data, slot_size, _, _) = batch.free_slots_mut();
        let mut report = SendReport::default();
        let mut next = 0;
        while next < items.len() {
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_BATCH];
            // SAFETY: all-zero is a valid mmsghdr.
            let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
            let mut ctrl = [Cmsg([0; CMSG_BUF]); MAX_BATCH];
            // Per message: its first item, how many it carries, its first iovec.
            let mut runs = [(0usize, 0usize, 0usize); MAX_BATCH];
            let mut nmsg = 0;
            let mut niov = 0;
            while next < items.len() && nmsg < MAX_BATCH && niov < MAX_BATCH {
                let first = next;
                let (_, r0, to) = &items[first];
                let seg = r0.len();
                let mut bytes = 0;
                let iov_start = niov;
                while next < items.len() && niov < MAX_BATCH {
                    let (slot, range, dest) = &items[next];
                    let len = range.len();
                    let fits = next == first
                        || (dest == to
                            && len <= seg
                            && next - first < GSO_MAX_SEGMENTS
                            && bytes + len <= GSO_MAX_BYTES);
                    if !fits {
                        break;
                    }
                    let base = slot * slot_size;
                    let buf = if range.end <= slot_size {
                        data.get(base + range.start..base + range.end)
                    } else {
                        None
                    };
                    // An item out of range is sent as nothing (never happens:
                    // the ranges come from encapsulate).
                    let buf = buf.unwrap_or_default();
                    iovs[niov] = libc::iovec {
                        iov_base: buf.as_ptr() as *mut libc::c_void,
                        iov_len: buf.len(),
                    };
                    niov += 1;
                    bytes += len;
                    next += 1;
                    if len < seg {
                        break; // a shorter one ends a run
                    }
                }
                let count = next - first;
                let m = &mut msgs[nmsg].msg_hdr;
                m.msg_iovlen = count as _;
                m.msg_name = to.as_ptr() as *mut libc::c_void;
                m.msg_namelen = to.len();
                if count > 1 {
                    set_udp_segment(m, &mut ctrl[nmsg], seg as u16);
                }
                runs[nmsg] = (first, count, iov_start);
                nmsg += 1;
            }
            let base = iovs.as_mut_ptr();
            for (m, &(_, _, iov_start)) in msgs.iter_mut().zip(&runs).take(nmsg) {
                m.msg_hdr.msg_iov = base.wrapping_add(iov_start);
            }
            let mut done = 0;
            while done < nmsg {
                // SAFETY: entries done..nmsg point at iovecs of `iovs` (each at
                // a live region of `data`), `SockAddr`s borrowed from `items`
                // and control buffers of `ctrl`, all outliving the call;
                // sendmmsg only reads them.
                let n = unsafe {
                    libc::sendmmsg(
                        self.sock.as_raw_fd(),
                        msgs[done..].as_mut_ptr(),
                        (nmsg - done) as libc::c_uint,
                        0,
                    )
                };
                if n <= 0 {
                    let e = io::Error::last_os_error();
                    if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    let (first, count, _) = runs[done];
                    if count > 1
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                        )
                    {
                        return Err((report, first));
                    }
                    tracing::trace!(error = %e, "sendmmsg refused a message");
                    done += 1;
                    continue;
                }
                for &(_, count, _) in &runs[done..done + n as usize] {
                    report.packets += count;
                    if count > 1 {
                        report.gso_sends += 1;
                        report.gso_segments += count;
                    }
                }
                done += n as usize;
            }
        }
        Ok(report)
    }

    /// One message per item.
    fn send_each(
        &self,
        batch: &mut PacketBatch,
        items: &[(usize, std::ops::Range<usize>, SockAddr)],
    ) -> usize {
        let (data, slot_size, _, _) = batch.free_slots_mut();
        let mut sent = 0;
        for chunk in items.chunks(MAX_BATCH) {
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_BATCH];
            // SAFETY: all-zero is a valid mmsghdr.
            let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
            let mut count = 0;
            for (slot, range, to) in chunk {
                let base = slot * slot_size;
                let Some(bytes) = data.get(base + range.start..base + range.end) else {
                    continue;
                };
                if range.end > slot_size {
                    continue;
                }
                iovs[count] = libc::iovec {
                    iov_base: bytes.as_ptr() as *mut libc::c_void,
                    iov_len: bytes.len(),
                };
                msgs[count].msg_hdr.msg_iov = &mut iovs[count];
                msgs[count].msg_hdr.msg_iovlen = 1;
                msgs[count].msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
                msgs[count].msg_hdr.msg_namelen = to.len();
                count += 1;
            }
            let mut done = 0;
            while done < count {
                // SAFETY: entries done..count point at live regions of `data`
                // and at `SockAddr`s borrowed from `items`, all outliving the
                // call; sendmmsg only reads them.
                let n = unsafe {
                    libc::sendmmsg(
                        self.sock.as_raw_fd(),
                        msgs[done..].as_mut_ptr(),
                        (count - done) as libc::c_uint,
                        0,
                    )
                };
                if n <= 0 {
                    let e = io::Error::last_os_error();
                    if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    // Drop this packet (e.g. EMSGSIZE, ENOBUFS) and go on.
                    tracing::trace!(error = %e, "sendmmsg refused a packet");
                    done += 1;
                    continue;
                }
                done += n as usize;
                sent += n as usize;
            }
        }
        sent
    }
}

fn tune_buffers(sock: &Socket) {
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
}

/// The ESP packet inside a datagram a raw IPv4 socket delivered: after the
/// IP header, whose length is checked against the datagram.
pub fn strip_ipv4_header(datagram: &[u8]) -> Option<std::ops::Range<usize>> {
    let ihl = usize::from(datagram.first()? & 0x0f) * 4;
    if ihl < 20 || datagram.len() < ihl {
        return None;
    }
    Some(ihl..datagram.len())
}

/// The address a recvmmsg wrote into a sockaddr_storage.
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, which is
            // smaller than and alignment-compatible with sockaddr_storage.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into(),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::new(
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into(),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// What [`WanSocket::send_batch`] got out.
#[derive(Debug, Default, Clone, Copy)]
pub struct SendReport {
    /// Packets the kernel took.
    pub packets: usize,
    /// UDP GSO sends of several packets, and how many packets they carried.
    pub gso_sends: usize,
    pub gso_segments: usize,
}

/// Puts a `UDP_SEGMENT` cmsg with `size` into `ctrl` and points `m` at it.
fn set_udp_segment(m: &mut libc::msghdr, ctrl: &mut Cmsg, size: u16) {
    m.msg_control = ctrl.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    m.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) } as _;
    // SAFETY: `m` points at `ctrl`, 8-byte aligned and CMSG_BUF (32) bytes,
    // more than CMSG_SPACE(2) (24): CMSG_FIRSTHDR returns its start, and the
    // header and the two data bytes written lie within it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(m);
        if c.is_null() {
            return;
        }
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as libc::c_uint) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size);
    }
}

/// The segment size of a UDP GRO receive, from its cmsgs (0: none).
#[allow(clippy::unnecessary_cast)] // the cmsg length types differ between libcs (size_t, socklen_t)
fn gro_segment(m: &libc::msghdr) -> usize {
    if m.msg_control.is_null() || (m.msg_controllen as usize) < size_of::<libc::cmsghdr>() {
        return 0;
    }
    // SAFETY: the kernel filled `msg_controllen` bytes of the control buffer
    // `m` points at (alive in the caller) with well-formed cmsgs; the CMSG
    // macros stay within that length, and the int read is within the cmsg
    // whose length says it holds one.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP
                && (*c).cmsg_type == libc::UDP_GRO
                && (*c).cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<libc::c_int>() as libc::c_uint) as usize
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
    0
}

//! The WAN sockets: ESP in UDP 4500 and raw ESP (IP protocol 50), read and
//! written in batches with recvmmsg(2) / sendmmsg(2) so a burst of packets
//! costs one system call, not one each.
#![allow(unsafe_code)] // recvmmsg/sendmmsg have no safe wrapper in std or socket2.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use anyhow::Context;
use ipsecgw_esp::tun::PacketBatch;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The most messages one system call moves.
pub const MAX_BATCH: usize = 64;

/// IANA protocol number of ESP.
const IPPROTO_ESP: i32 = 50;

/// Socket buffers large enough to ride out a burst at several Gbit/s.
const SOCKET_BUFFER: usize = 8 << 20;

/// A WAN socket: UDP bound to port 4500, or raw ESP.
#[derive(Debug)]
pub struct WanSocket {
    sock: Socket,
    /// Raw IPv4 sockets deliver the IP header in front of the ESP packet.
    strips_ipv4_header: bool,
}

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
        })
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
    /// one recvmmsg; each datagram lands after the slot's headroom and its
    /// sender in `sources[k]` (k counting from 0 for this call). Returns how
    /// many arrived (0 when none was waiting).
    pub fn recv_batch(
        &self,
        batch: &mut PacketBatch,
        sources: &mut [Option<SocketAddr>; MAX_BATCH],
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
        }
        // SAFETY: every msg_iov points at a distinct, live region of `data`
        // that `batch` keeps borrowed mutably for this call; every msg_name at
        // a distinct, live sockaddr_storage of `names` with its true size;
        // `free <= MAX_BATCH` entries are valid.
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
    /// `batch` with as few sendmmsg calls as possible. Returns how many the
    /// kernel took; the rest are dropped (the caller counts them).
    pub fn send_batch(
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

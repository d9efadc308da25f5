//! Waiting on several descriptors at once.
#![allow(unsafe_code)] // poll(2) has no safe wrapper in std.

use std::io;
use std::os::fd::RawFd;

/// Waits until one of `fds` is readable or `timeout_ms` passes; returns
/// which were readable (by position, up to 4).
pub fn readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<[bool; 4]> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 4];
    let n = fds.len().min(4);
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    // SAFETY: `pfds` is a valid, initialised array of `n <= 4` pollfd that
    // outlives the call; poll only writes `revents` within it.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok([false; 4]);
        }
        return Err(e);
    }
    let mut out = [false; 4];
    for (o, p) in out.iter_mut().zip(&pfds[..n]) {
        *o = p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    }
    Ok(out)
}

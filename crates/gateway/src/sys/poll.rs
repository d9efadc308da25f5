//! Waiting on several descriptors at once.
#![allow(unsafe_code)] // poll(2) has no safe wrapper in std.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::negotiator::now;

/// Most descriptors one wait takes.
const MAX_FDS: usize = 8;

/// Waits until one of `fds` is readable or `timeout_ms` passes; returns
/// which were readable (by position, up to 8).
pub fn readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<[bool; MAX_FDS]> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_FDS];
    let n = fds.len().min(MAX_FDS);
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    // SAFETY: `pfds` is a valid, initialised array of `n <= MAX_FDS` pollfd that
    // outlives the call; poll only writes `revents` within it.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok([false; MAX_FDS]);
        }
        return Err(e);
    }
    let mut out = [false; MAX_FDS];
    for (o, p) in out.iter_mut().zip(&pfds[..n]) {
        *o = p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    }
    Ok(out)
}

/// How a data-path thread waits for work: it keeps polling its descriptors
/// (without sleeping) for a short window after the last packet, and sleeps
/// in poll(2) only once the window has passed. A thread that sleeps costs a
/// wake-up (tens of microseconds on a virtual machine) per packet that
/// finds it asleep.
#[derive(Debug)]
pub struct Waiter {
    window: Duration,
    until: Instant,
    /// Woken from sleep by traffic: the caller tells the other thread.
    woke_by_traffic: bool,
}

impl Waiter {
    /// Busy-polls for `window` after each burst (zero: always sleep).
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            until: now(),
            woke_by_traffic: false,
        }
    }

    /// The last pass found packets: the window starts again.
    pub fn worked(&mut self) {
        if !self.window.is_zero() {
            self.until = now() + self.window;
        }
    }

    /// The last pass found nothing: within the window, lets other threads
    /// run and returns at once; after it, sleeps until one of `fds` is
    /// readable (the last of them is the thread's wake-up socket) or
    /// `timeout_ms` passes, and opens a new window.
    pub fn idle(&mut self, fds: &[RawFd], timeout_ms: i32) -> io::Result<()> {
        if self.window.is_zero() {
            readable(fds, timeout_ms)?;
            return Ok(());
        }
        if now() < self.until {
            std::thread::yield_now();
            return Ok(());
        }
        let r = readable(fds, timeout_ms)?;
        let data = fds.len().saturating_sub(1).min(r.len());
        self.woke_by_traffic = r[..data].iter().any(|&x| x);
        self.until = now() + self.window;
        Ok(())
    }

    /// Whether the thread just woke from sleep because packets came (once):
    /// the answers will come to the other thread, which should be awake
    /// for them.
    pub fn take_woke_by_traffic(&mut self) -> bool {
        std::mem::take(&mut self.woke_by_traffic)
    }
}

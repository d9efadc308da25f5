//! Byte and packet lifetimes (RFC 4301 §4.4.2.1), shared by both directions.
//!
//! Time-based lifetimes are the daemon's: this crate has no clock.

use crate::sa::{SaCounters, SaEvent};

/// Volume limits of an SA. `None` means no limit. Bytes count inner
/// (plaintext) bytes, packets count packets, both as processed successfully.
///
/// When a soft limit is reached the SA emits [`SaEvent::SoftLifetime`] once
/// (time to rekey); when a hard limit is reached it emits
/// [`SaEvent::HardLifetime`] once and refuses every further packet with
/// `Expired`. The packet that reaches a limit is still processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Rekey after this many inner bytes.
    pub soft_bytes: Option<u64>,
    /// Stop after this many inner bytes.
    pub hard_bytes: Option<u64>,
    /// Rekey after this many packets.
    pub soft_packets: Option<u64>,
    /// Stop after this many packets.
    pub hard_packets: Option<u64>,
}

impl Lifetime {
    fn soft_reached(&self, c: &SaCounters) -> bool {
        reached(self.soft_packets, c.packets) || reached(self.soft_bytes, c.bytes)
    }

    fn hard_reached(&self, c: &SaCounters) -> bool {
        reached(self.hard_packets, c.packets) || reached(self.hard_bytes, c.bytes)
    }
}

fn reached(limit: Option<u64>, value: u64) -> bool {
    limit.is_some_and(|l| value >= l)
}

/// Tracks which lifetime events have fired and which are still to be polled.
/// No allocation: at most one of each event per SA.
#[derive(Debug, Clone)]
pub(crate) struct LifetimeTracker {
    spi: u32,
    limits: Lifetime,
    soft_fired: bool,
    hard_fired: bool,
    soft_pending: bool,
    hard_pending: bool,
}

impl LifetimeTracker {
    pub(crate) fn new(spi: u32, limits: Lifetime) -> Self {
        let mut t = Self {
            spi,
            limits,
            soft_fired: false,
            hard_fired: false,
            soft_pending: false,
            hard_pending: false,
        };
        // A limit of 0 is reached before the first packet.
        t.update(&SaCounters::default());
        t
    }

    /// True once a hard limit (or sequence exhaustion) was reached.
    pub(crate) fn expired(&self) -> bool {
        self.hard_fired
    }

    /// Re-evaluates the limits after the counters advanced.
    pub(crate) fn update(&mut self, c: &SaCounters) {
        if !self.soft_fired && self.limits.soft_reached(c) {
            self.soft_fired = true;
            self.soft_pending = true;
        }
        if !self.hard_fired && self.limits.hard_reached(c) {
            self.expire();
        }
    }

    /// Hard expiry for a reason other than volume (sequence numbers exhausted).
    pub(crate) fn expire(&mut self) {
        if !self.hard_fired {
            self.hard_fired = true;
            self.hard_pending = true;
        }
    }

    /// Soft before hard, each once.
    pub(crate) fn poll_event(&mut self) -> Option<SaEvent> {
        if self.soft_pending {
            self.soft_pending = false;
            return Some(SaEvent::SoftLifetime { spi: self.spi });
        }
        if self.hard_pending {
            self.hard_pending = false;
            return Some(SaEvent::HardLifetime { spi: self.spi });
        }
        None
    }
}

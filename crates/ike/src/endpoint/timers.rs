//! The endpoint's timer index: each IKE SA's next deadline in an ordered
//! set, so the driver's `poll_timeout` after every input and a
//! `handle_timeout` cost O(log n) and O(due), not a scan of every SA (a
//! responder with ten thousand SAs would otherwise spend milliseconds per
//! datagram scanning).
//!
//! An SA's deadline changes only when the endpoint touches it; every public
//! entry point ends by rescheduling the SAs it may have touched: those named
//! by the datagram it handled, by the messages it queued, by the timers that
//! fired, those it created, and for commands every SA of the connection.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use super::Endpoint;

/// IKE header: SPIi (8) and SPIr (8) first (RFC 7296 §3.1).
const SPIS: usize = 16;

/// Deadlines by instant, and the one each SA is filed under.
#[derive(Debug, Default)]
pub(super) struct Timers {
    by_time: BTreeSet<(Instant, [u8; 8])>,
    of: HashMap<[u8; 8], Instant>,
}

impl Timers {
    /// The earliest deadline.
    pub(super) fn first(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// The SAs whose deadline is at or before `now`.
    pub(super) fn due(&self, now: Instant) -> Vec<[u8; 8]> {
        self.by_time
            .range(..=(now, [0xff; 8]))
            .map(|(_, id)| *id)
            .collect()
    }

    fn set(&mut self, id: [u8; 8], deadline: Option<Instant>) {
        if let Some(old) = self.of.remove(&id) {
            self.by_time.remove(&(old, id));
        }
        if let Some(t) = deadline {
            self.by_time.insert((t, id));
            self.of.insert(id, t);
        }
    }
}

/// The two SPIs of an IKE message, if it is long enough to have them.
fn spis(data: &[u8]) -> impl Iterator<Item = [u8; 8]> + '_ {
    data.get(..SPIS)
        .into_iter()
        .flat_map(|b| b.chunks_exact(8))
        .filter_map(|c| <[u8; 8]>::try_from(c).ok())
}

impl Endpoint {
    /// Files SA `id` under its current deadline (or drops it if it is gone).
    fn reschedule(&mut self, id: [u8; 8]) {
        let deadline = self.sas.get(&id).and_then(|sa| self.deadline(sa));
        self.timers.set(id, deadline);
    }

    /// Reschedules what the call that queued transmits from `tx_start` on
    /// may have touched, plus `ids`.
    fn settle(&mut self, tx_start: usize, ids: Vec<[u8; 8]>) {
        let mut touched = ids;
        touched.append(&mut self.fresh);
        for t in self.transmits.iter().skip(tx_start) {
            touched.extend(spis(&t.data));
        }
        touched.sort_unstable();
        touched.dedup();
        for id in touched {
            self.reschedule(id);
        }
    }

    fn settle_conn(&mut self, tx_start: usize, conn: usize) {
        let ids = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        self.settle(tx_start, ids);
    }

    /// Starts an IKE SA (and its first CHILD SA) for connection `conn`, from
    /// `local` (port 500) to the peer's port 500.
    pub fn initiate(&mut self, now: Instant, conn: usize, local: SocketAddr) {
        let tx = self.transmits.len();
        self.initiate_unsettled(now, conn, local);
        self.settle_conn(tx, conn);
    }

    /// Deletes connection `conn`'s IKE SAs (and with them their CHILD SAs).
    pub fn delete(&mut self, now: Instant, conn: usize) {
        let tx = self.transmits.len();
        self.delete_unsettled(now, conn);
        self.settle_conn(tx, conn);
    }

    /// Rekeys connection `conn`'s CHILD SAs now (as their lifetime would).
    pub fn rekey_child(&mut self, now: Instant, conn: usize) {
        let tx = self.transmits.len();
        self.rekey_child_unsettled(now, conn);
        self.settle_conn(tx, conn);
    }

    /// Rekeys the CHILD SA of connection `conn` that uses `spi` (inbound or
    /// outbound): the data plane's soft lifetime (bytes or packets) ran
    /// out. Nothing happens if that SA is already being replaced.
    pub fn rekey_child_sa(&mut self, now: Instant, conn: usize, spi: u32) {
        let tx = self.transmits.len();
        self.rekey_child_sa_unsettled(now, conn, spi);
        self.settle_conn(tx, conn);
    }

    /// Rekeys connection `conn`'s IKE SA now.
    pub fn rekey_ike(&mut self, now: Instant, conn: usize) {
        let tx = self.transmits.len();
        self.rekey_ike_unsettled(now, conn);
        self.settle_conn(tx, conn);
    }

    /// Handles one IKE datagram (without the non-ESP marker) received on
    /// `local` from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) {
        let tx = self.transmits.len();
        self.handle_datagram_unsettled(now, local, remote, data);
        self.settle(tx, spis(data).collect());
    }

    /// Retransmits, checks liveness, expires half-open SAs: for the SAs
    /// whose deadline has come, only.
    pub fn handle_timeout(&mut self, now: Instant) {
        let tx = self.transmits.len();
        let due = self.timers.due(now);
        self.handle_timeout_unsettled(now);
        self.settle(tx, due);
    }
}

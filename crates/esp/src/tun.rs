//! The batch-shaped TUN interface the data path is written against, and an
//! in-memory double for tests.
//!
//! Packets are read into fixed-size slots of one allocation, each slot with
//! headroom in front of the packet so the ESP header and IV go on in place
//! (the wireguard-go shape). The daemon's real device implements the same
//! trait, so a data path can run over [`ChannelTun`] in a test process with
//! no root and no kernel.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc;

/// Fixed-size packet slots in one allocation, reused batch after batch.
#[derive(Debug)]
pub struct PacketBatch {
    data: Vec<u8>,
    slot_size: usize,
    headroom: usize,
    lens: Vec<usize>,
    count: usize,
}

impl PacketBatch {
    /// `capacity` slots of `slot_size` bytes; a packet is stored at
    /// `headroom` bytes into its slot.
    pub fn new(capacity: usize, slot_size: usize, headroom: usize) -> Self {
        let slot_size = slot_size.max(headroom + 1);
        Self {
            data: vec![0; capacity * slot_size],
            slot_size,
            headroom,
            lens: vec![0; capacity],
            count: 0,
        }
    }

    /// How many slots the batch has.
    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// How many packets are in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.count == self.lens.len()
    }

    /// Bytes reserved in front of each packet.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// The size of one slot, headroom included.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// The largest packet a slot holds after its headroom.
    pub fn max_packet(&self) -> usize {
        self.slot_size - self.headroom
    }

    /// Forgets every packet; the memory stays.
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// The whole of slot `i` (headroom, packet and tailroom), for in-place
    /// encapsulation. Empty if `i` is out of range.
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i.saturating_mul(self.slot_size);
        self.data
            .get_mut(start..start + self.slot_size)
            .unwrap_or(&mut [])
    }

    /// The packet in slot `i`.
    pub fn packet(&self, i: usize) -> &[u8] {
        let Some(&len) = self.lens.get(i) else {
            return &[];
        };
        let start = i * self.slot_size + self.headroom;
        self.data.get(start..start + len).unwrap_or(&[])
    }

    /// The length of the packet in slot `i`.
    pub fn packet_len(&self, i: usize) -> usize {
        self.lens.get(i).copied().unwrap_or(0)
    }

    /// The free slot a reader fills next: the area after its headroom.
    /// `None` when the batch is full.
    pub fn next_free(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let start = self.count * self.slot_size + self.headroom;
        let end = (self.count + 1) * self.slot_size;
        self.data.get_mut(start..end)
    }

    /// Marks the slot [`Self::next_free`] returned as holding `len` bytes.
    pub fn commit(&mut self, len: usize) {
        if let Some(slot) = self.lens.get_mut(self.count) {
            *slot = len.min(self.slot_size - self.headroom);
            self.count += 1;
        }
    }

    /// The raw storage and slot size, for a reader that fills several slots
    /// in one system call (recvmmsg); it then calls [`Self::commit`] per packet.
    pub fn free_slots_mut(&mut self) -> (&mut [u8], usize, usize, usize) {
        let first = self.count;
        (&mut self.data, self.slot_size, self.headroom, first)
    }
}

/// A TUN device as the data path sees it: batches in, packets out.
pub trait TunDevice {
    /// Reads packets into the free slots of `batch` until it is full or the
    /// device has nothing more right now; returns how many were read.
    /// Blocks only if the device is in blocking mode and nothing was read.
    fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize>;

    /// Writes one IP packet to the device.
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;

    /// The device MTU: the largest inner packet the data path is handed.
    fn mtu(&self) -> usize;
}

/// One end of an in-memory TUN pair: what one end sends, the other receives.
#[derive(Debug)]
pub struct ChannelTun {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    pending: VecDeque<Vec<u8>>,
    mtu: usize,
}

impl ChannelTun {
    /// Two connected ends, like the kernel side and the daemon side of a TUN.
    pub fn pair(mtu: usize) -> (ChannelTun, ChannelTun) {
        let (a_tx, b_rx) = mpsc::channel();
        let (b_tx, a_rx) = mpsc::channel();
        let a = ChannelTun {
            tx: a_tx,
            rx: a_rx,
            pending: VecDeque::new(),
            mtu,
        };
        let b = ChannelTun {
            tx: b_tx,
            rx: b_rx,
            pending: VecDeque::new(),
            mtu,
        };
        (a, b)
    }

    /// Takes the next packet the other end sent, if any (test helper).
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.pending.pop_front().or_else(|| self.rx.try_recv().ok())
    }
}

impl TunDevice for ChannelTun {
    fn recv_batch(&mut self, batch: &mut PacketBatch) -> io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some(pkt) = self.try_recv() else { break };
            let Some(slot) = batch.next_free() else {
                self.pending.push_front(pkt);
                break;
            };
            if pkt.len() > slot.len() {
                // Larger than a slot: the kernel would have refused it at the MTU.
                continue;
            }
            slot[..pkt.len()].copy_from_slice(&pkt);
            batch.commit(pkt.len());
            n += 1;
        }
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.tx
            .send(packet.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_slots_keep_headroom() {
        let mut b = PacketBatch::new(2, 64, 16);
        let slot = b.next_free().unwrap();
        assert_eq!(slot.len(), 48);
        slot[..3].copy_from_slice(b"abc");
        b.commit(3);
        assert_eq!(b.packet(0), b"abc");
        assert_eq!(&b.slot_mut(0)[16..19], b"abc");
        b.commit(5);
        assert!(b.is_full());
        assert!(b.next_free().is_none());
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn channel_pair_carries_packets_both_ways() {
        let (mut a, mut b) = ChannelTun::pair(1400);
        a.send(b"one").unwrap();
        a.send(b"two").unwrap();
        let mut batch = PacketBatch::new(1, 64, 16);
        assert_eq!(b.recv_batch(&mut batch).unwrap(), 1);
        assert_eq!(batch.packet(0), b"one");
        batch.clear();
        assert_eq!(b.recv_batch(&mut batch).unwrap(), 1);
        assert_eq!(batch.packet(0), b"two");
        batch.clear();
        assert_eq!(
            b.recv_batch(&mut batch).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        b.send(b"back").unwrap();
        assert_eq!(a.try_recv().unwrap(), b"back");
    }
}

//! Anti-replay window for 64-bit sequence numbers (RFC 4303 §3.4.3, with the
//! bitmap layout of RFC 6479).
//!
//! The bitmap is a ring of `u64` blocks indexed by `seq / 64`. Advancing the
//! window clears only the blocks it moves over, so both [`ReplayWindow::check`]
//! and [`ReplayWindow::update`] are O(1) per packet however large the window
//! (a jump of more than the whole ring clears the ring once, which is bounded
//! by the window size, not by the jump).
//!
//! The window is split in two steps on purpose: `check` is the cheap
//! pre-filter run before any crypto, `update` is run only after the ICV
//! verified, so forged packets cannot move the window (RFC 4303 §3.4.3).

/// Bits per bitmap block.
const BLOCK_BITS: u64 = 64;

/// Which sequence numbers have been received, for the last `size` numbers up
/// to the highest one accepted.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Ring of blocks; length is a power of two, at least `size / 64 + 1` so
    /// the `size` numbers ending at `top` never share a block index.
    blocks: Box<[u64]>,
    /// Window size in sequence numbers, a non-zero multiple of 64.
    size: u64,
    /// Highest sequence number accepted so far; 0 before the first packet
    /// (0 is never a valid ESP sequence number, RFC 4303 §3.3.3).
    top: u64,
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// A window of at least `size` packets: `size` is rounded up to a
    /// multiple of 64 (one bitmap word), and 0 becomes 64. Allocates once.
    pub fn new(size: u32) -> Self {
        let size = u64::from(size.max(1)).div_ceil(BLOCK_BITS) * BLOCK_BITS;
        let n_blocks = (size / BLOCK_BITS + 1).next_power_of_two() as usize;
        Self {
            blocks: vec![0; n_blocks].into_boxed_slice(),
            size,
            top: 0,
        }
    }

    /// The window size in packets (after rounding).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The highest sequence number accepted so far (0 if none).
    pub fn top(&self) -> u64 {
        self.top
    }

    fn locate(&self, seq: u64) -> (usize, u64) {
        let mask = self.blocks.len() as u64 - 1;
        (
            ((seq / BLOCK_BITS) & mask) as usize,
            1u64 << (seq % BLOCK_BITS),
        )
    }

    /// Would `seq` be accepted? True if it is above the top, or within the
    /// window and not yet seen. Changes nothing.
    pub fn check(&self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.top {
            return true;
        }
        if self.top - seq >= self.size {
            return false;
        }
        let (block, bit) = self.locate(seq);
        self.blocks.get(block).is_some_and(|b| b & bit == 0)
    }

    /// Records `seq` as received, sliding the window forward if it is new.
    /// Call only after the packet authenticated. Returns false (and changes
    /// nothing) if `seq` would not pass [`check`](Self::check).
    pub fn update(&mut self, seq: u64) -> bool {
        if !self.check(seq) {
            return false;
        }
        if seq > self.top {
            let old_block = self.top / BLOCK_BITS;
            let new_block = seq / BLOCK_BITS;
            let n = self.blocks.len() as u64;
            if new_block - old_block >= n {
                self.blocks.fill(0);
            } else {
                let mask = n - 1;
                for b in old_block + 1..=new_block {
                    if let Some(word) = self.blocks.get_mut((b & mask) as usize) {
                        *word = 0;
                    }
                }
            }
            self.top = seq;
        }
        let (block, bit) = self.locate(seq);
        if let Some(word) = self.blocks.get_mut(block) {
            *word |= bit;
        }
        true
    }

    /// Moves the top to `top` with nothing marked as received. For tests that
    /// start an SA in the middle of the sequence space (ESN vectors).
    #[doc(hidden)]
    pub fn reset_to(&mut self, top: u64) {
        self.blocks.fill(0);
        self.top = top;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_64() {
        assert_eq!(ReplayWindow::new(1).size(), 64);
        assert_eq!(ReplayWindow::new(64).size(), 64);
        assert_eq!(ReplayWindow::new(65).size(), 128);
        assert_eq!(ReplayWindow::new(1024).size(), 1024);
        assert_eq!(ReplayWindow::new(65536).size(), 65536);
    }

    #[test]
    fn zero_never_accepted() {
        let mut w = ReplayWindow::new(64);
        assert!(!w.check(0));
        assert!(!w.update(0));
    }

    #[test]
    fn duplicate_and_too_old() {
        let mut w = ReplayWindow::new(64);
        assert!(w.update(1));
        assert!(!w.check(1));
        assert!(!w.update(1));
        assert!(w.update(100));
        // 100 - 64 = 36 is just outside, 37 just inside.
        assert!(!w.check(36));
        assert!(w.check(37));
        assert!(w.update(37));
        assert!(!w.check(37));
        assert!(w.check(99));
    }

    #[test]
    fn far_jump_clears() {
        let mut w = ReplayWindow::new(128);
        for s in 1..=128 {
            assert!(w.update(s));
        }
        let far = 128 + 10_000;
        assert!(w.update(far));
        for s in 1..=128 {
            assert!(!w.check(s), "{s} is far below the window");
        }
        for s in far - 127..far {
            assert!(w.check(s), "{s} is in the window and unseen");
        }
    }

    #[test]
    fn jump_less_than_ring_clears_stale_bits() {
        let mut w = ReplayWindow::new(64);
        // Mark everything in 1..=64, then move by one block-and-a-bit so the
        // ring reuses indices that held old bits.
        for s in 1..=64 {
            assert!(w.update(s));
        }
        assert!(w.update(64 + 70));
        for s in 71..134 {
            assert!(w.check(s), "{s} must be fresh after the slide");
        }
    }

    #[test]
    fn top_of_u64() {
        let mut w = ReplayWindow::new(64);
        w.reset_to(u64::MAX - 10);
        assert!(w.update(u64::MAX));
        assert!(!w.check(u64::MAX));
        assert!(w.check(u64::MAX - 1));
    }
}

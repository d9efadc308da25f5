//! The deterministic pseudo-random byte stream `nettool tcp-source` sends,
//! so a test can know the plaintext without seeing it.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough to make
/// bytes that never repeat a 16-byte pattern by chance.
#[derive(Debug, Clone)]
pub struct Stream {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl Stream {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            buf: [0; 8],
            used: 8,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used == 8 {
                self.buf = self.next_u64().to_le_bytes();
                self.used = 0;
            }
            *byte = self.buf[self.used];
            self.used += 1;
        }
    }
}

/// Bytes `offset .. offset + len` of the stream for `seed`.
pub fn slice(seed: u64, offset: usize, len: usize) -> Vec<u8> {
    let mut stream = Stream::new(seed);
    let mut skip = vec![0u8; 64 * 1024];
    let mut left = offset;
    while left > 0 {
        let n = left.min(skip.len());
        stream.fill(&mut skip[..n]);
        left -= n;
    }
    let mut out = vec![0u8; len];
    stream.fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_the_stream() {
        let mut whole = vec![0u8; 1000];
        Stream::new(7).fill(&mut whole);
        let mut s = Stream::new(7);
        let mut pieces = Vec::new();
        for n in [1usize, 3, 8, 13, 975] {
            let mut part = vec![0u8; n];
            s.fill(&mut part);
            pieces.extend(part);
        }
        assert_eq!(whole, pieces);
        assert_eq!(slice(7, 123, 40), whole[123..163]);
        assert_ne!(slice(8, 0, 16), whole[..16]);
    }
}

//! The Internet checksum (RFC 1071) for the packet surgery in [`super::gso`]
//! and [`super::gro`]: IPv4 header, TCP and UDP checksums.
//!
//! Sums are taken over native-endian 32-bit words in a 64-bit accumulator
//! and folded to 16 bits at the end; RFC 1071 §2(B) shows the result is byte
//! order independent as long as it is stored in the same (native) order.

/// Adds `data` to the running sum `acc`. Only the last piece of a checksum
/// may have an odd length (its final byte is padded with a zero).
///
/// 32-bit words are summed into a 64-bit accumulator, which cannot overflow
/// for any packet (under 2^32 words), so the loop has no carries to chase
/// and the compiler vectorises it; 2^16 ≡ 1 (mod 2^16 - 1) makes the result
/// the same as a sum of 16-bit words.
pub fn add(acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    let mut sum: u64 = 0;
    for c in &mut chunks {
        sum += u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 4];
        w[..rest.len()].copy_from_slice(rest);
        sum += u64::from(u32::from_ne_bytes(w));
    }
    let (s, carry) = acc.overflowing_add(sum);
    s + u64::from(carry)
}

/// Folds a running sum to 16 bits (not inverted), in native order.
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The bytes to store in a checksum field for the sum `acc` (the field
/// itself counted as zero): the inverted fold, with 0 sent as 0xffff (both
/// are zero in ones' complement; UDP needs the latter, RFC 768).
pub fn finish(acc: u64) -> [u8; 2] {
    match !fold(acc) {
        0 => [0xff, 0xff],
        c => c.to_ne_bytes(),
    }
}

/// The TCP/UDP pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1) for an IP
/// packet `ip` (its version picks the layout) carrying `l4_len` bytes of
/// protocol `proto`. `None` if `ip` is too short for its addresses.
pub fn pseudo_header(ip: &[u8], proto: u8, l4_len: usize) -> Option<u64> {
    match ip.first()? >> 4 {
        4 => {
            let addrs = ip.get(12..20)?;
            let len = (l4_len as u16).to_be_bytes();
            Some(add(add(0, addrs), &[0, proto, len[0], len[1]]))
        }
        6 => {
            let addrs = ip.get(8..40)?;
            let len = (l4_len as u32).to_be_bytes();
            Some(add(add(add(0, addrs), &len), &[0, 0, 0, proto]))
        }
        _ => None,
    }
}

/// Rewrites the header checksum of the IPv4 header `hdr` (exactly IHL*4 bytes).
pub fn fix_ipv4_header(hdr: &mut [u8]) {
    if let Some(field) = hdr.get_mut(10..12) {
        field.copy_from_slice(&[0, 0]);
    }
    let c = !fold(add(0, hdr));
    if let Some(field) = hdr.get_mut(10..12) {
        field.copy_from_slice(&c.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The straightforward big-endian 16-bit word sum, as the oracle.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
            acc += w;
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(
            u16::from_be_bytes(fold(add(0, &data)).to_ne_bytes()),
            0xddf2
        );
    }

    #[test]
    fn ipv4_header_checksum_matches_a_capture() {
        // A real IPv4 header (checksum b861).
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        fix_ipv4_header(&mut h);
        assert_eq!(&h[10..12], &[0xb8, 0x61]);
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_naive_sum(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            let fast = u16::from_be_bytes(fold(add(0, &data)).to_ne_bytes());
            proptest::prop_assert_eq!(fast, naive(&data));
        }
    }
}

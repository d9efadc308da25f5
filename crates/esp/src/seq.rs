//! Extended Sequence Numbers: recovering the untransmitted high 32 bits on
//! receive (RFC 4303 Appendix A2.2).

/// The full 64-bit sequence number of a received packet whose low 32 bits are
/// `seq_low`, given the highest number accepted so far (`top`) and the window
/// size in packets (`window`, 1..=2^31).
///
/// The guess is the high half that puts the packet closest to the window: if
/// the low half is at or above the window's bottom it belongs to the top's
/// epoch, otherwise to the next one (RFC 4303 A2.2, cases A and B). A wrong
/// guess is harmless: the high half is in the AAD, so the ICV then fails.
///
/// Returns `None` when the guess would leave the 64-bit space: below epoch 0
/// (a number from before the SA started) or above epoch 2^32-1 (a number after
/// the last one a sender may use). Either way the packet cannot be genuine
/// and new.
pub(crate) fn infer_esn(top: u64, window: u64, seq_low: u32) -> Option<u64> {
    let th = (top >> 32) as u32;
    let tl = top as u32;
    // The window is far smaller than 2^32 (MAX_REPLAY_WINDOW); clamping keeps
    // `w - 1` below from underflowing whatever the caller passes.
    let w = window.clamp(1, 1 << 31) as u32;
    let bottom = tl.wrapping_sub(w).wrapping_add(1);
    let high = if tl >= w - 1 {
        // Case A: the window lies within one epoch.
        if seq_low >= bottom {
            Some(th)
        } else {
            th.checked_add(1)
        }
    } else {
        // Case B: the window straddles the epoch boundary below the top.
        if seq_low >= bottom {
            th.checked_sub(1)
        } else {
            Some(th)
        }
    }?;
    Some((u64::from(high) << 32) | u64::from(seq_low))
}

#[cfg(test)]
mod tests {
    use super::infer_esn;

    const W: u64 = 64;

    #[test]
    fn same_epoch() {
        assert_eq!(infer_esn(1000, W, 1001), Some(1001));
        assert_eq!(infer_esn(1000, W, 990), Some(990));
        assert_eq!(infer_esn(5 << 32 | 1000, W, 990), Some(5 << 32 | 990));
    }

    #[test]
    fn below_window_means_next_epoch() {
        // Case A: a low half below the window's bottom is read as a wrap.
        assert_eq!(infer_esn(1000, W, 10), Some(1 << 32 | 10));
        let top = 0xffff_fff0;
        assert_eq!(infer_esn(top, W, 3), Some(1 << 32 | 3));
        assert_eq!(infer_esn(top, W, 0xffff_ffff), Some(0xffff_ffff));
    }

    #[test]
    fn straddling_the_boundary() {
        // Case B: top just past a wrap; numbers from the end of the previous
        // epoch are still in the window.
        let top = 3 << 32 | 5;
        assert_eq!(infer_esn(top, W, 0xffff_fff0), Some(2 << 32 | 0xffff_fff0));
        assert_eq!(infer_esn(top, W, 4), Some(3 << 32 | 4));
        assert_eq!(infer_esn(top, W, 100), Some(3 << 32 | 100));
    }

    #[test]
    fn outside_the_64_bit_space() {
        // Fresh SA: the "previous epoch" does not exist.
        assert_eq!(infer_esn(0, W, 0xffff_fff0), None);
        assert_eq!(infer_esn(0, W, 1), Some(1));
        // Last epoch: no next one.
        assert_eq!(infer_esn(u64::MAX - 5, W, 1), None);
    }

    proptest::proptest! {
        /// RFC 4303 A2.2 places the packet in the 2^32 numbers starting at
        /// the window's bottom (top - W + 1); the answer keeps the low half.
        #[test]
        fn lands_in_the_epoch_window(
            top in proptest::prelude::any::<u64>(),
            w in proptest::prop_oneof![proptest::strategy::Just(64u64), 1u64..=65536],
            low in proptest::prelude::any::<u32>(),
        ) {
            let bottom = i128::from(top) - i128::from(w) + 1;
            // The unique value in [bottom, bottom + 2^32) with this low half.
            let offset = (i128::from(low) - bottom).rem_euclid(1i128 << 32);
            let want = bottom + offset;
            let got = infer_esn(top, w, low);
            if want < 0 || want > i128::from(u64::MAX) {
                proptest::prop_assert_eq!(got, None);
            } else {
                proptest::prop_assert_eq!(got.map(i128::from), Some(want));
            }
        }
    }
}

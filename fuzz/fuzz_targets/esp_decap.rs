//! ESP decapsulation of arbitrary packets on an SA whose key the seeds
//! share: no panic; a success returns an inner range inside the buffer and
//! counts one packet; a failure bumps exactly one drop counter; an accepted
//! packet replayed is refused.
//!
//! Input: a flags byte choosing the SA (see `ipsecgw_fuzz::esp_config`),
//! then packets as (u16 length, bytes).
#![no_main]

use ipsecgw_esp::{DecapError, InboundSa, SaCounters};
use ipsecgw_fuzz::{esp_config, esp_late_start, esp_packets, ESP_LATE_START};
use libfuzzer_sys::fuzz_target;

fn drops(c: &SaCounters) -> u64 {
    c.malformed + c.auth_failures + c.replay_drops + c.lifetime_drops
}

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut sa = match InboundSa::new(esp_config(*flags)) {
        Ok(sa) => sa,
        Err(e) => panic!("the fuzz SA config is valid: {e}"),
    };
    if esp_late_start(*flags) {
        sa.set_replay_top_for_test(ESP_LATE_START - 1);
    }
    for packet in esp_packets(rest) {
        let mut buf = packet.to_vec();
        let before = *sa.counters();
        match sa.decapsulate(&mut buf) {
            Ok(d) => {
                assert!(
                    d.inner.start <= d.inner.end && d.inner.end <= buf.len(),
                    "inner range {:?} outside a {}-byte buffer",
                    d.inner,
                    buf.len()
                );
                let after = *sa.counters();
                assert_eq!(after.packets, before.packets + 1);
                assert_eq!(after.bytes, before.bytes + d.inner.len() as u64);
                assert_eq!(drops(&after), drops(&before));
                let mut again = packet.to_vec();
                let replay = sa.decapsulate(&mut again);
                assert!(
                    matches!(replay, Err(DecapError::Replayed | DecapError::Expired)),
                    "an accepted packet was not refused when replayed: {replay:?}"
                );
            }
            Err(_) => {
                let after = *sa.counters();
                assert_eq!((after.packets, after.bytes), (before.packets, before.bytes));
                assert_eq!(drops(&after), drops(&before) + 1, "a drop not counted once");
            }
        }
        while sa.poll_event().is_some() {}
    }
});

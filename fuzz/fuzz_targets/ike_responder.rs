//! An IKE responder fed arbitrary datagrams from its configured peers, at
//! advancing virtual times: no panic, no timer livelock, everything it
//! sends parses, and once the clock runs on with no input nothing is left
//! half-open or waiting.
//!
//! Input: chunks of (control byte, u16 length, datagram), see
//! `ipsecgw_fuzz::chunks`. The seeds in fuzz/seeds/ike_responder are real
//! exchanges recorded against this very responder, so they decrypt.
#![no_main]

use ipsecgw_fuzz::{replay, FINAL_ADVANCE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (r, _events, _sent) = replay(data, true);
    // Five minutes of silence: half-open SAs expired (30 s), requests
    // retransmitted and given up, the DPD connection (index 0) declared its
    // peer dead. Only an established SA of connection 1 (no DPD) may stay.
    for sa in r.ep.status(r.now) {
        assert!(
            sa.state == "ESTABLISHED" && sa.conn == 1,
            "IKE SA left behind after {FINAL_ADVANCE:?} of silence: conn {} {} initiator={}",
            sa.conn,
            sa.state,
            sa.initiator
        );
    }
});

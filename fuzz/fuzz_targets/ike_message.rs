//! The IKE message codec: whatever parses emits, and parses back to the
//! same payloads (and the same header, less the two fields `emit`
//! recomputes). Parsing arbitrary bytes must never panic.
#![no_main]

use ipsecgw_ike::wire::{Header, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = Message::parse(data) else {
        return;
    };
    let bytes = first.emit();
    assert_eq!(
        bytes.len(),
        first.buffer_len(),
        "buffer_len() disagrees with emit()"
    );
    let second = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => panic!("an emitted message does not parse: {e}"),
    };
    assert_eq!(
        second.payloads, first.payloads,
        "payloads changed in a round trip"
    );
    assert_eq!(
        second.header,
        Header {
            length: bytes.len() as u32,
            next_payload: second.header.next_payload,
            ..first.header
        },
        "header changed in a round trip"
    );
    // Emitting is a fixed point after one round.
    assert_eq!(second.emit(), bytes, "emit() is not stable");
});

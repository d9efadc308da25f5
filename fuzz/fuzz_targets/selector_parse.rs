//! Traffic selector text (config files, the control socket) and the
//! per-packet 5-tuple parser: no panic; a selector that parses prints as
//! text that parses back to it; a flow key is self-consistent.
#![no_main]

use ipsecgw_policy::{FlowKey, TrafficSelector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let selector = std::str::from_utf8(data)
        .ok()
        .and_then(|text| text.parse::<TrafficSelector>().ok());
    if let Some(ts) = selector {
        let shown = ts.to_string();
        match shown.parse::<TrafficSelector>() {
            Ok(back) => assert_eq!(back, ts, "{shown:?} parses to another selector"),
            Err(e) => panic!("{shown:?}, printed from {ts:?}, does not parse: {e}"),
        }
        assert!(ts.is_subset_of(&ts));
        assert_eq!(ts.narrow(&ts), Some(ts));
        // The prefix cover is exact and in order.
        let nets = ts.to_subnets();
        assert_eq!(nets.first().map(|n| n.network()), Some(ts.start));
        assert_eq!(nets.last().map(|n| n.broadcast()), Some(ts.end));
        assert_eq!(ts.as_prefix().is_some(), nets.len() == 1);
    }
    if let Some(key) = FlowKey::from_ip_packet(data) {
        assert_eq!(key.reversed().reversed(), key);
        assert_eq!(key.src.is_ipv4(), key.dst.is_ipv4());
        assert_eq!(key.src.is_ipv4(), data[0] >> 4 == 4);
        if let Some(ts) = selector {
            let _ = ts.matches(key.src, key.proto, key.src_port);
            let _ = ts.matches(key.dst, key.proto, key.dst_port);
        }
    }
});

//! Self-tests of the harness, without the daemon: plain routing between the
//! sites, so the capture checks, the traffic and replay tools and the
//! clean-up can be shown to work (and to fail when they should).
//! Run as root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use etherparse::{IpNumber, PacketBuilder};
use ipsecgw_tests::pcap::{Pcap, LINKTYPE_ETHERNET};
use ipsecgw_tests::topology::{GW_LAN_IF, GW_R_WAN, GW_WAN_IF, HOST_L, HOST_R};
use ipsecgw_tests::{stream, traffic, Capture, Encapsulation, Netns, Topology};

const NETTOOL: &str = env!("CARGO_BIN_EXE_nettool");

#[test]
fn harness_cleans_up_namespaces_and_processes() {
    let topo = Topology::build();
    let names = topo.names();
    for name in &names {
        assert!(
            Netns::exists(name),
            "{name} should exist while the guard lives"
        );
    }
    let mut sleeper = topo
        .gw_l
        .spawn("sleep", &["300"], Stdio::null(), Stdio::null());
    drop(topo);
    for name in &names {
        assert!(
            !Netns::exists(name),
            "{name} still exists after the guard dropped"
        );
    }
    let status = sleeper.wait().expect("waiting for sleep");
    assert!(
        !status.success(),
        "the process in the namespace should have been killed"
    );
}

#[test]
fn harness_cleans_up_after_a_panic() {
    let names = Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let topo = Topology::build();
        *names.lock().unwrap() = topo.names();
        panic!("deliberate panic inside a test body");
    });
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 4);
    for name in &names {
        assert!(!Netns::exists(name), "{name} survived a panic");
    }
}

#[test]
fn plain_routing_without_a_tunnel_is_caught_by_the_capture_checks() {
    let topo = Topology::build();
    // Without routes, the sites cannot reach each other.
    assert!(!Topology::ping_quick(&topo.host_l, HOST_R, &[]));
    topo.route_in_clear();

    let lan = Capture::start(&topo.gw_l, GW_LAN_IF, topo.dir(), "lan");
    let wan = Capture::start(&topo.gw_l, GW_WAN_IF, topo.dir(), "wan");
    assert!(Topology::ping(&topo.host_l, HOST_R, 3, &[]));
    assert!(Topology::ping(&topo.host_r, HOST_L, 3, &[]));
    let seed = 42;
    let len = 1_000_000;
    let (sent, received) = traffic::tcp_transfer(
        Path::new(NETTOOL),
        &topo.host_l,
        &topo.host_r,
        &format!("{HOST_R}:5001"),
        len,
        seed,
    );
    assert_eq!(sent.bytes, len);
    assert_eq!(sent, received);
    let lan = lan.stop();
    let wan = wan.stop();

    // In clear, the checker must complain, and the plaintext must be found.
    let complaint = wan
        .only_esp(Encapsulation::Udp)
        .expect_err("clear traffic must not pass as ESP");
    assert!(complaint.contains("protocol 6"), "{complaint}");
    assert!(complaint.contains("protocol 1"), "{complaint}");
    let patterns: Vec<Vec<u8>> = (1..10)
        .map(|i| stream::slice(seed, i * 100_000, 16))
        .collect();
    let seen_wan: usize = patterns.iter().map(|p| wan.frames_containing(p)).sum();
    let seen_lan: usize = patterns.iter().map(|p| lan.frames_containing(p)).sum();
    assert!(
        seen_wan > 0,
        "plaintext patterns should be visible on a clear WAN"
    );
    assert!(
        seen_lan > 0,
        "plaintext patterns should be visible on the LAN"
    );
    assert_eq!(wan.frames_containing(&stream::slice(seed + 1, 0, 16)), 0);
}

fn esp_frame(udp: bool, marker: u8) -> Vec<u8> {
    // An ESP-looking payload: SPI, sequence number, then a marker-filled body.
    let mut payload = vec![0u8, 0, 0x10, 0x01, 0, 0, 0, marker];
    payload.extend(std::iter::repeat_n(marker, 40));
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut out = Vec::new();
    if udp {
        eth.ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
            .udp(4500, 4500)
            .write(&mut out, &payload)
            .unwrap();
    } else {
        eth.ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
            .write(&mut out, IpNumber::ENCAPSULATING_SECURITY_PAYLOAD, &payload)
            .unwrap();
    }
    out
}

#[test]
fn replay_tools_resend_captured_payloads_byte_for_byte() {
    let topo = Topology::build();
    let source = Pcap {
        linktype: LINKTYPE_ETHERNET,
        frames: vec![
            esp_frame(true, 0xa1),
            esp_frame(false, 0xb1),
            esp_frame(true, 0xa2),
            esp_frame(false, 0xb2),
            esp_frame(true, 0xa3),
            esp_frame(false, 0xb3),
        ],
    };
    let source_path = topo.dir().join("synthetic.pcap");
    source.write(&source_path).unwrap();

    let cap = Capture::start(&topo.gw_r, GW_WAN_IF, topo.dir(), "replayed");
    let nettool = Path::new(NETTOOL);
    traffic::replay(nettool, &topo.gw_l, &source_path, GW_R_WAN, Some(4500), 2);
    traffic::replay(nettool, &topo.gw_l, &source_path, GW_R_WAN, None, 2);
    let cap = cap.stop();

    let gw_r: Ipv4Addr = GW_R_WAN.parse().unwrap();
    let udp = cap.esp_in_udp_payloads(SocketAddrV4::new(gw_r, 4500));
    let esp = cap.esp_payloads(gw_r);
    let want_udp: Vec<&[u8]> = source
        .esp_in_udp_payloads(SocketAddrV4::new(gw_r, 4500))
        .into_iter()
        .take(2)
        .collect();
    let want_esp: Vec<&[u8]> = source.esp_payloads(gw_r).into_iter().take(2).collect();
    assert_eq!(
        udp, want_udp,
        "udp-replay must resend exactly the first two payloads"
    );
    assert_eq!(
        esp, want_esp,
        "esp-replay must resend exactly the first two payloads"
    );
    // Replayed from an ephemeral port, not 4500.
    assert!(cap
        .ipv4_packets()
        .iter()
        .filter_map(|ip| ip.udp)
        .filter(|(_, dport, _)| *dport == 4500)
        .all(|(sport, _, _)| sport != 4500));
}

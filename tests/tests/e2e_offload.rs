//! End-to-end tests of the offloaded data path (`[tun] offload`): TCP
//! super-packets cut on the way out, coalesced on the way in, UDP GSO/GRO on
//! the WAN, against the plain path; each byte-exact, only ciphertext on the
//! WAN, and the mode shown by `ipsecgw status`. Root and the daemon
//! (`IPSECGW_BIN` or `cargo build --release -p ipsecgw`) required.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::path::Path;

use ipsecgw_tests::topology::{GW_LAN_IF, GW_WAN_IF, HOST_R};
use ipsecgw_tests::{stream, traffic, Capture, Encapsulation, Gateway, GatewayConfig, Topology};

const NETTOOL: &str = env!("CARGO_BIN_EXE_nettool");
const CONN_ON_LEFT: &str = "hangzhou";
const CONN_ON_RIGHT: &str = "onprem";

/// Field order is drop order: the daemons stop before the namespaces go.
struct Sites {
    left: Gateway,
    right: Gateway,
    topo: Topology,
}

fn start_sites(encapsulation: Encapsulation, tun_extra: &str) -> Sites {
    let topo = Topology::build();
    let (mut left_cfg, mut right_cfg) = GatewayConfig::site_pair(encapsulation);
    left_cfg.extra_tun = Some(tun_extra.to_owned());
    right_cfg.extra_tun = Some(tun_extra.to_owned());
    let left = Gateway::start(&topo.gw_l, &left_cfg, topo.dir());
    let right = Gateway::start(&topo.gw_r, &right_cfg, topo.dir());
    Sites { left, right, topo }
}

fn offload_field<'a>(st: &'a ipsecgw_tests::gateway::Status, key: &str) -> &'a serde_json::Value {
    &st.0["offload"][key]
}

fn offload_counter(st: &ipsecgw_tests::gateway::Status, key: &str) -> u64 {
    offload_field(st, key).as_u64().unwrap_or(0)
}

/// 10 MiB from hostL to hostR: exact, encrypted, counted; returns both
/// gateways' status afterwards.
fn transfer(
    s: &Sites,
    encapsulation: Encapsulation,
) -> (
    ipsecgw_tests::gateway::Status,
    ipsecgw_tests::gateway::Status,
) {
    const LEN: u64 = 10 * 1024 * 1024;
    let seed = 0x0ff1_0000 + u64::from(std::process::id());
    let lan = Capture::start(&s.topo.gw_l, GW_LAN_IF, s.topo.dir(), "lan");
    let wan = Capture::start(&s.topo.gw_l, GW_WAN_IF, s.topo.dir(), "wan");
    let (sent, received) = traffic::tcp_transfer(
        Path::new(NETTOOL),
        &s.topo.host_l,
        &s.topo.host_r,
        &format!("{HOST_R}:5001"),
        LEN,
        seed,
    );
    let wan = wan.stop();
    let lan = lan.stop();
    assert_eq!(sent.bytes, LEN);
    assert_eq!(
        received, sent,
        "hostR did not receive exactly what hostL sent"
    );
    let esp = wan
        .only_esp(encapsulation)
        .unwrap_or_else(|e| panic!("non-ESP traffic on the WAN:\n{e}"));
    assert!(esp > 100, "only {esp} ESP frames on the WAN for 10 MiB");
    let patterns: Vec<Vec<u8>> = (0..10)
        .map(|i| stream::slice(seed, i * 1024 * 1024 + 777, 16))
        .collect();
    for p in &patterns {
        assert_eq!(
            wan.frames_containing(p),
            0,
            "plaintext {} appears on the WAN",
            hex::encode(p)
        );
    }
    let on_lan: usize = patterns.iter().map(|p| lan.frames_containing(p)).sum();
    assert!(
        on_lan > 0,
        "no plaintext pattern seen on the LAN: the check is blind"
    );

    let left = s
        .left
        .status_until(|st| st.sa(CONN_ON_LEFT, "outbound", "bytes") >= LEN);
    let right = s
        .right
        .status_until(|st| st.sa(CONN_ON_RIGHT, "inbound", "bytes") >= LEN);
    assert!(left.sa(CONN_ON_LEFT, "outbound", "bytes") >= LEN, "{left}");
    assert!(
        right.sa(CONN_ON_RIGHT, "inbound", "bytes") >= LEN,
        "{right}"
    );
    for (st, conn) in [(&left, CONN_ON_LEFT), (&right, CONN_ON_RIGHT)] {
        assert_eq!(st.sa(conn, "inbound", "auth_failures"), 0, "{st}");
        assert_eq!(st.sa(conn, "inbound", "replay_drops"), 0, "{st}");
        assert_eq!(st.drops("malformed"), 0, "{st}");
    }
    (left, right)
}

fn offloaded_transfer(encapsulation: Encapsulation, setting: &str) {
    let s = start_sites(encapsulation, &format!("offload = \"{setting}\""));
    let (left, right) = transfer(&s, encapsulation);
    for st in [&left, &right] {
        assert_eq!(
            offload_field(st, "configured").as_str(),
            Some(setting),
            "{st}"
        );
        assert_eq!(offload_field(st, "mode").as_str(), Some("on"), "{st}");
        assert_eq!(
            offload_field(st, "fell_back").as_bool(),
            Some(false),
            "{st}"
        );
    }
    // The sender was handed super-packets and cut them; the receiver
    // wrote coalesced ones.
    assert!(offload_counter(&left, "gso_packets") > 0, "{left}");
    assert!(
        offload_counter(&left, "gso_segments") > offload_counter(&left, "gso_packets"),
        "{left}"
    );
    assert!(offload_counter(&right, "gro_writes") > 0, "{right}");
    if encapsulation == Encapsulation::Udp {
        assert!(offload_counter(&left, "udp_gso_sends") > 0, "{left}");
        assert!(offload_counter(&right, "udp_gro_receives") > 0, "{right}");
    }
    let text = s.left.status_text();
    assert!(text.contains("offload on (configured"), "{text}");
}

/// The other thread model: one data-path thread per direction (`[dataplane]
/// threads = 2`) moves the same transfer exactly, offloaded, and pings
/// cross both ways.
#[test]
fn tcp_10_mib_with_a_thread_per_direction_is_exact() {
    let topo = Topology::build();
    let (mut left_cfg, mut right_cfg) = GatewayConfig::site_pair(Encapsulation::Udp);
    for cfg in [&mut left_cfg, &mut right_cfg] {
        cfg.extra_toml = Some("[dataplane]\nthreads = 2\nbusy_poll_us = 0\n".into());
    }
    let left = Gateway::start(&topo.gw_l, &left_cfg, topo.dir());
    let right = Gateway::start(&topo.gw_r, &right_cfg, topo.dir());
    let threads = left.thread_names();
    assert!(
        threads.contains(&"ipsecgw-out".to_owned()) && threads.contains(&"ipsecgw-in".to_owned()),
        "{threads:?}"
    );
    let s = Sites { left, right, topo };
    let (left, right) = transfer(&s, Encapsulation::Udp);
    assert!(offload_counter(&left, "gso_packets") > 0, "{left}");
    assert!(offload_counter(&right, "gro_writes") > 0, "{right}");
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 3, &[]));
    assert!(Topology::ping(&s.topo.host_r, "10.1.1.10", 3, &[]));
}

#[test]
fn tcp_10_mib_with_offload_auto_esp_in_udp_is_exact_and_offloaded() {
    offloaded_transfer(Encapsulation::Udp, "auto");
}

#[test]
fn tcp_10_mib_with_offload_on_raw_esp_is_exact_and_offloaded() {
    offloaded_transfer(Encapsulation::Esp, "on");
}

#[test]
fn tcp_10_mib_with_offload_off_is_exact_and_not_offloaded() {
    let s = start_sites(Encapsulation::Udp, "offload = \"off\"");
    let (left, right) = transfer(&s, Encapsulation::Udp);
    for st in [&left, &right] {
        assert_eq!(
            offload_field(st, "configured").as_str(),
            Some("off"),
            "{st}"
        );
        assert_eq!(offload_field(st, "mode").as_str(), Some("off"), "{st}");
        assert_eq!(offload_field(st, "udp_gso").as_bool(), Some(false), "{st}");
        for key in [
            "gso_packets",
            "gro_writes",
            "udp_gso_sends",
            "udp_gro_receives",
        ] {
            assert_eq!(offload_counter(st, key), 0, "{key}: {st}");
        }
    }
    let text = s.left.status_text();
    assert!(text.contains("offload off (configured off"), "{text}");
}

#[test]
fn a_tun_mtu_above_the_tunnel_gets_segments_cut_to_fit() {
    // The TUN device takes 1500-byte packets, the tunnel carries 1438: the
    // kernel's TSO segments (MSS 1460) are cut smaller by the gateway, so
    // the transfer neither fragments nor stalls.
    let s = start_sites(Encapsulation::Udp, "mtu = 1500\noffload = \"on\"");
    let (left, _) = transfer(&s, Encapsulation::Udp);
    assert!(offload_counter(&left, "gso_segments") > 0, "{left}");
}

/// UDP through the offloaded path (UDP GSO/GRO on the ESP socket, the
/// vnet-header TUN device): hostR gets every datagram byte for byte, small
/// ones, tunnel-sized ones, and sizes that change mid-flow, sent in bursts.
#[test]
fn udp_datagrams_cross_the_offloaded_path_exact() {
    let s = start_sites(Encapsulation::Udp, "offload = \"auto\"");
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 1, &[]), "no tunnel");
    let tool = NETTOOL;
    let (sizes, each) = ("64,1372,200,1", 500usize);
    let count = 4 * each;
    let sink = s.topo.host_r.spawn(
        "timeout",
        &[
            "60",
            tool,
            "udp-sink",
            "--listen",
            &format!("{HOST_R}:5002"),
            "--count",
            &count.to_string(),
        ],
        std::process::Stdio::piped(),
        std::process::Stdio::inherit(),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sent = s.topo.host_l.exec(
        "timeout",
        &[
            "60",
            tool,
            "udp-source",
            "--connect",
            &format!("{HOST_R}:5002"),
            "--sizes",
            sizes,
            "--each",
            &each.to_string(),
        ],
    );
    assert!(sent.status.success(), "{sent:?}");
    let out = sink.wait_with_output().unwrap();
    let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        got,
        format!("datagrams={count} bad=0"),
        "what hostR received"
    );
    let right = s.right.status();
    assert!(offload_counter(&right, "udp_gro_receives") > 0, "{right}");
}

/// A packet with DF set that the TUN device takes but the tunnel cannot
/// carry is answered with ICMP "fragmentation needed" carrying the
/// tunnel's size, and the sender hears it (the kernel drops an ICMP error
/// written into the TUN device with one of the gateway's own addresses as
/// source, so it comes from the packet's destination).
#[test]
fn a_df_packet_too_big_for_the_tunnel_gets_frag_needed_back() {
    let s = start_sites(Encapsulation::Udp, "mtu = 1500");
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 1, &[]), "no tunnel");
    // 1460 bytes of ICMP payload: a 1488-byte packet, over the 1438 the
    // tunnel carries, under the TUN device's 1500.
    let out = s.topo.host_l.exec(
        "ping",
        &["-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1460", HOST_R],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Frag needed") && text.contains("mtu = 1438"),
        "hostL did not hear the tunnel's MTU:\n{text}\n{}",
        s.left.status()
    );
    let st = s.left.status();
    assert!(st.conn_counter(CONN_ON_LEFT, "too_big") >= 1, "{st}");
    // The sender now fits its packets to the tunnel.
    assert!(Topology::ping(
        &s.topo.host_l,
        HOST_R,
        1,
        &["-M", "do", "-s", "1400"]
    ));
}

#[test]
fn pings_cross_the_offloaded_path_both_ways() {
    let s = start_sites(Encapsulation::Udp, "offload = \"auto\"");
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 3, &[]));
    assert!(Topology::ping(&s.topo.host_r, "10.1.1.10", 3, &[]));
    let st = s.left.status();
    assert_eq!(offload_field(&st, "mode").as_str(), Some("on"), "{st}");
    // The default: one data-path thread for both directions.
    let threads = s.left.thread_names();
    assert!(
        threads.contains(&"ipsecgw-data".to_owned())
            && !threads.contains(&"ipsecgw-out".to_owned()),
        "{threads:?}"
    );
}

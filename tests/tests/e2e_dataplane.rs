//! End-to-end tests of the ipsecgw data path: two daemons, each in its own
//! network namespace, between two hosts in two more (see
//! `ipsecgw_tests::topology`). Run as root with the daemon built
//! (`cargo build --release -p ipsecgw`, or set `IPSECGW_BIN`); each test
//! fails, never skips, when either is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use ipsecgw_tests::topology::{GW_LAN_IF, GW_R_WAN, GW_WAN_IF, HOST_IF, HOST_L, HOST_R};
use ipsecgw_tests::{stream, traffic, Capture, Encapsulation, Gateway, GatewayConfig, Topology};

const NETTOOL: &str = env!("CARGO_BIN_EXE_nettool");
/// Connection names as each side sees the other.
const CONN_ON_LEFT: &str = "hangzhou";
const CONN_ON_RIGHT: &str = "onprem";

/// Both gateways running over the topology. Field order is drop order: the
/// daemons stop before the namespaces go.
struct Sites {
    left: Gateway,
    right: Gateway,
    topo: Topology,
}

fn start_sites(
    encapsulation: Encapsulation,
    tweak: impl FnOnce(&Topology, &mut GatewayConfig, &mut GatewayConfig),
) -> Sites {
    let topo = Topology::build();
    let (mut left_cfg, mut right_cfg) = GatewayConfig::site_pair(encapsulation);
    tweak(&topo, &mut left_cfg, &mut right_cfg);
    let left = Gateway::start(&topo.gw_l, &left_cfg, topo.dir());
    let right = Gateway::start(&topo.gw_r, &right_cfg, topo.dir());
    Sites { left, right, topo }
}

fn ping_both_ways(encapsulation: Encapsulation) {
    let s = start_sites(encapsulation, |_, _, _| {});
    let wan = Capture::start(&s.topo.gw_l, GW_WAN_IF, s.topo.dir(), "wan");
    assert!(
        Topology::ping(&s.topo.host_l, HOST_R, 3, &[]),
        "hostL could not ping hostR through the tunnel"
    );
    assert!(
        Topology::ping(&s.topo.host_r, HOST_L, 3, &[]),
        "hostR could not ping hostL through the tunnel"
    );
    let wan = wan.stop();
    let esp = wan
        .only_esp(encapsulation)
        .unwrap_or_else(|e| panic!("non-ESP traffic on the WAN:\n{e}"));
    // 3 requests and 3 replies each way.
    assert!(esp >= 12, "only {esp} ESP packets on the WAN for 12 pings");

    for (gw, conn) in [(&s.left, CONN_ON_LEFT), (&s.right, CONN_ON_RIGHT)] {
        let st = gw.status_until(|st| {
            st.sa(conn, "outbound", "packets") >= 6 && st.sa(conn, "inbound", "packets") >= 6
        });
        assert!(
            st.sa(conn, "outbound", "packets") >= 6,
            "{}: {st}",
            gw.name()
        );
        assert!(
            st.sa(conn, "inbound", "packets") >= 6,
            "{}: {st}",
            gw.name()
        );
        assert_eq!(
            st.sa(conn, "inbound", "auth_failures"),
            0,
            "{}: {st}",
            gw.name()
        );
        assert_eq!(
            st.sa(conn, "inbound", "replay_drops"),
            0,
            "{}: {st}",
            gw.name()
        );
        assert_eq!(
            st.connection(conn)["encapsulation"].as_str(),
            Some(encapsulation.as_str()),
            "{}: {st}",
            gw.name()
        );
    }
    println!("onprem status:\n{}", s.left.status_text());
}

#[test]
fn ping_both_ways_esp_in_udp() {
    ping_both_ways(Encapsulation::Udp);
}

#[test]
fn ping_both_ways_raw_esp() {
    ping_both_ways(Encapsulation::Esp);
}

/// The gateway takes the replies to its own health-check echoes off the
/// inbound path; a host's ping must never be mistaken for one, whatever
/// identifier it uses. One identifier in each window of 256 (the gateway
/// picks its identifiers as one such window at random) meets the gateway's
/// window exactly once: before the payload cookie, that ping's replies
/// vanished.
#[test]
fn host_pings_come_back_whatever_their_identifier() {
    let s = start_sites(Encapsulation::Udp, |_, _, _| {});
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 1, &[]), "no tunnel");
    let script = format!(
        "for k in $(seq 0 255); do id=$((k * 256 + 7)); \
         (ping -q -n -c 1 -W 5 -e $id {HOST_R} >/dev/null 2>&1 || echo \"lost $id\") & \
         done; wait"
    );
    let out = s.topo.host_l.exec("sh", &["-c", &script]);
    let lost = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        lost.trim().is_empty(),
        "echo replies that never reached hostL:\n{lost}\nleft: {}",
        s.left.status()
    );
}

fn tcp_transfer_is_exact_and_encrypted(encapsulation: Encapsulation) {
    const LEN: u64 = 10 * 1024 * 1024;
    let seed = 0x5eed_0000 + std::process::id() as u64;
    let s = start_sites(encapsulation, |_, _, _| {});
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
    // 10 MiB is over 7000 packets; even as 64 KiB GSO super-frames, or with
    // some lost by tcpdump, well over 100 frames.
    assert!(esp > 100, "only {esp} ESP frames on the WAN for 10 MiB");
    // Ten 16-byte pieces of the plaintext: never on the WAN; at least one
    // on the LAN, which shows that the search would find leaked plaintext.
    let patterns: Vec<Vec<u8>> = (0..10)
        .map(|i| stream::slice(seed, i * 1024 * 1024 + 4321, 16))
        .collect();
    for pattern in &patterns {
        assert_eq!(
            wan.frames_containing(pattern),
            0,
            "plaintext {} appears on the WAN",
            hex::encode(pattern)
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
    for (st, conn) in [(&left, CONN_ON_LEFT), (&right, CONN_ON_RIGHT)] {
        assert!(st.sa(conn, "outbound", "packets") > 0, "{st}");
        assert!(st.sa(conn, "inbound", "packets") > 0, "{st}");
        assert_eq!(st.sa(conn, "inbound", "auth_failures"), 0, "{st}");
    }
    assert!(left.sa(CONN_ON_LEFT, "outbound", "bytes") >= LEN, "{left}");
    assert!(
        right.sa(CONN_ON_RIGHT, "inbound", "bytes") >= LEN,
        "{right}"
    );
}

#[test]
fn tcp_10_mib_esp_in_udp_arrives_exact_and_only_ciphertext_crosses_the_wan() {
    tcp_transfer_is_exact_and_encrypted(Encapsulation::Udp);
}

#[test]
fn tcp_10_mib_raw_esp_arrives_exact_and_only_ciphertext_crosses_the_wan() {
    tcp_transfer_is_exact_and_encrypted(Encapsulation::Esp);
}

#[test]
fn wrong_key_fails_authentication_and_nothing_gets_through() {
    let s = start_sites(Encapsulation::Udp, |_, _, right| {
        // gwR expects a different key than the one gwL encrypts with.
        right.connection().inbound_key = ipsecgw_tests::gateway::random_key_aes256gcm16();
    });
    assert!(
        !Topology::ping_quick(&s.topo.host_l, HOST_R, &[]),
        "ping succeeded although gwR has the wrong inbound key"
    );
    let st = s
        .right
        .status_until(|st| st.sa(CONN_ON_RIGHT, "inbound", "auth_failures") >= 3);
    assert!(
        st.sa(CONN_ON_RIGHT, "inbound", "auth_failures") >= 3,
        "{st}"
    );
    assert_eq!(st.sa(CONN_ON_RIGHT, "inbound", "packets"), 0, "{st}");
    assert_eq!(st.sa(CONN_ON_RIGHT, "outbound", "packets"), 0, "{st}");
}

#[test]
fn traffic_outside_the_policy_is_dropped_not_tunnelled() {
    let s = start_sites(Encapsulation::Udp, |_, _, _| {});
    // A route into the TUN that no policy covers.
    let tun = s.left.tun_name().to_owned();
    s.topo
        .gw_l
        .ip(&["route", "add", "192.168.5.0/24", "dev", &tun]);
    let left_before = s.left.status();
    let right_before = s.right.status();

    assert!(
        !Topology::ping_quick(&s.topo.host_l, "192.168.5.10", &[]),
        "192.168.5.10 answered: it is outside every policy"
    );
    let no_policy_before = left_before.drops("no_policy");
    let left = s
        .left
        .status_until(|st| st.drops("no_policy") >= no_policy_before + 3);
    assert!(
        left.drops("no_policy") >= no_policy_before + 3,
        "gwL did not count the 3 pings as no_policy drops: {left}"
    );
    assert_eq!(
        left.sa(CONN_ON_LEFT, "outbound", "packets"),
        left_before.sa(CONN_ON_LEFT, "outbound", "packets"),
        "gwL encrypted a packet outside its policy: {left}"
    );
    let right = s.right.status();
    assert_eq!(
        right.sa(CONN_ON_RIGHT, "inbound", "packets"),
        right_before.sa(CONN_ON_RIGHT, "inbound", "packets"),
        "gwR received something: {right}"
    );
    assert_eq!(
        right.drops("unknown_spi"),
        right_before.drops("unknown_spi")
    );

    // The tunnel itself still works.
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 1, &[]));
}

#[test]
fn source_outside_the_peer_selectors_is_dropped_after_decapsulation() {
    let s = start_sites(Encapsulation::Udp, |_, _, right| {
        // gwR claims 192.168.5.0/24 too; gwL accepts only 192.168.4.0/24.
        right
            .connection()
            .local_subnets
            .push("192.168.5.0/24".into());
    });
    s.topo
        .host_r
        .ip(&["addr", "add", "192.168.5.10/24", "dev", HOST_IF]);
    s.topo
        .gw_r
        .ip(&["route", "add", "192.168.5.0/24", "via", HOST_R]);

    assert!(
        !Topology::ping_quick(&s.topo.host_r, HOST_L, &["-I", "192.168.5.10"]),
        "a source outside gwL's remote selectors reached hostL"
    );
    let left = s
        .left
        .status_until(|st| st.conn_counter(CONN_ON_LEFT, "selector_drops") >= 3);
    assert!(
        left.conn_counter(CONN_ON_LEFT, "selector_drops") >= 3,
        "gwL did not count the spoofed packets as selector drops: {left}"
    );
    // They were tunnelled by gwR (so it is gwL that dropped them) ...
    let right = s.right.status();
    assert!(
        right.sa(CONN_ON_RIGHT, "outbound", "packets") >= 3,
        "{right}"
    );
    // ... and the legitimate source still gets through.
    assert!(Topology::ping(&s.topo.host_r, HOST_L, 1, &[]));
    let left = s.left.status();
    assert_eq!(
        left.sa(CONN_ON_LEFT, "inbound", "auth_failures"),
        0,
        "{left}"
    );
}

fn replayed_packets_are_dropped(encapsulation: Encapsulation) {
    const COUNT: usize = 5;
    let s = start_sites(encapsulation, |_, _, _| {});
    let wan = Capture::start(&s.topo.gw_l, GW_WAN_IF, s.topo.dir(), "wan");
    let wan_file = wan.path.clone();
    assert!(Topology::ping(&s.topo.host_l, HOST_R, COUNT as u32, &[]));
    let wan = wan.stop();
    let gw_r: Ipv4Addr = GW_R_WAN.parse().unwrap();
    let captured = match encapsulation {
        Encapsulation::Udp => wan.esp_in_udp_payloads(SocketAddrV4::new(gw_r, 4500)).len(),
        Encapsulation::Esp => wan.esp_payloads(gw_r).len(),
    };
    assert!(
        captured >= COUNT,
        "captured only {captured} ESP packets to gwR"
    );

    let before = s
        .right
        .status_until(|st| st.sa(CONN_ON_RIGHT, "inbound", "packets") >= COUNT as u64);
    let packets = before.sa(CONN_ON_RIGHT, "inbound", "packets");
    let replays = before.sa(CONN_ON_RIGHT, "inbound", "replay_drops");
    let auth = before.sa(CONN_ON_RIGHT, "inbound", "auth_failures");
    assert!(packets >= COUNT as u64, "{before}");

    let port = (encapsulation == Encapsulation::Udp).then_some(4500);
    traffic::replay(
        Path::new(NETTOOL),
        &s.topo.gw_l,
        &wan_file,
        GW_R_WAN,
        port,
        COUNT,
    );
    let after = s.right.status_until(|st| {
        st.sa(CONN_ON_RIGHT, "inbound", "replay_drops") >= replays + COUNT as u64
    });
    assert!(
        after.sa(CONN_ON_RIGHT, "inbound", "replay_drops") >= replays + COUNT as u64,
        "gwR did not count {COUNT} replays: before {before}\nafter {after}"
    );
    assert_eq!(
        after.sa(CONN_ON_RIGHT, "inbound", "packets"),
        packets,
        "gwR accepted a replayed packet: {after}"
    );
    assert_eq!(after.sa(CONN_ON_RIGHT, "inbound", "auth_failures"), auth);
    // The SA still works after the replays.
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 1, &[]));
}

#[test]
fn replayed_esp_in_udp_packets_are_dropped() {
    replayed_packets_are_dropped(Encapsulation::Udp);
}

#[test]
fn replayed_raw_esp_packets_are_dropped() {
    replayed_packets_are_dropped(Encapsulation::Esp);
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_removes_its_tun_and_routes() {
    let mut s = start_sites(Encapsulation::Udp, |_, _, _| {});
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 1, &[]));
    let tun = s.left.tun_name().to_owned();
    let status = s.left.stop();
    assert!(status.success(), "ipsecgw exited with {status} on SIGTERM");
    let link = s.topo.gw_l.exec("ip", &["link", "show", "dev", &tun]);
    assert!(
        !link.status.success(),
        "TUN {tun} still exists after the daemon stopped:\n{}",
        String::from_utf8_lossy(&link.stdout)
    );
    let routes = s.topo.gw_l.ip(&["-4", "route", "show"]);
    assert!(
        !routes.contains("192.168.4.0/24"),
        "route to the remote subnet left behind:\n{routes}"
    );
    // With gwL gone, nothing reaches hostR any more: fail closed.
    assert!(!Topology::ping_quick(&s.topo.host_l, HOST_R, &[]));
}

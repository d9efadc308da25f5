//! End-to-end tests of IKEv2 between two ipsecgw daemons in network
//! namespaces: negotiation, traffic, wrong PSK, dead peers, trap, up/down.
//! Run as root with the daemon built; each test fails, never skips, when
//! either is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::path::Path;
use std::time::Duration;

use ipsecgw_tests::topology::{GW_WAN_IF, HOST_L, HOST_R};
use ipsecgw_tests::util::poll;
use ipsecgw_tests::{stream, traffic, Capture, Encapsulation, Gateway, GatewayConfig, Topology};

const NETTOOL: &str = env!("CARGO_BIN_EXE_nettool");
const CONN_ON_LEFT: &str = "hangzhou";
const CONN_ON_RIGHT: &str = "onprem";
const PSK: &str = "a pre-shared key for the tests";
const LONG: Duration = Duration::from_secs(30);

struct Sites {
    left: Gateway,
    right: Gateway,
    topo: Topology,
}

fn start(
    encapsulation: Encapsulation,
    tweak: impl FnOnce(&mut GatewayConfig, &mut GatewayConfig),
) -> Sites {
    let topo = Topology::build();
    let (mut l, mut r) = GatewayConfig::ike_site_pair(encapsulation, PSK);
    tweak(&mut l, &mut r);
    // The responder first, so the initiator's first IKE_SA_INIT is answered.
    let right = Gateway::start(&topo.gw_r, &r, topo.dir());
    let left = Gateway::start(&topo.gw_l, &l, topo.dir());
    Sites { left, right, topo }
}

fn wait_established(gw: &Gateway, conn: &str) {
    let st = gw.status_until(|st| st.ike_established(conn));
    assert!(
        st.ike_established(conn),
        "{}: no established IKE SA with a CHILD SA for {conn}:\n{}\nlog:\n{}",
        gw.name(),
        gw.status_text(),
        gw.log()
    );
}

#[test]
fn ike_negotiates_and_carries_exact_traffic_only_as_ike_and_esp_in_udp() {
    const LEN: u64 = 4 * 1024 * 1024;
    let topo_capture;
    let s = start(Encapsulation::Udp, |_, _| {});
    topo_capture = Capture::start(&s.topo.gw_l, GW_WAN_IF, s.topo.dir(), "wan");
    wait_established(&s.left, CONN_ON_LEFT);
    wait_established(&s.right, CONN_ON_RIGHT);
    assert!(
        Topology::ping(&s.topo.host_l, HOST_R, 3, &[]),
        "hostL → hostR through the negotiated tunnel"
    );
    assert!(
        Topology::ping(&s.topo.host_r, HOST_L, 3, &[]),
        "hostR → hostL through the negotiated tunnel"
    );
    let seed = 0x1ce0_0000 + u64::from(std::process::id());
    let (sent, received) = traffic::tcp_transfer(
        Path::new(NETTOOL),
        &s.topo.host_l,
        &s.topo.host_r,
        &format!("{HOST_R}:5002"),
        LEN,
        seed,
    );
    assert_eq!(received, sent, "the TCP transfer arrived altered");
    let wan = topo_capture.stop();
    let n = wan
        .only_udp_ports(&[500, 4500])
        .unwrap_or_else(|e| panic!("something other than IKE and ESP in UDP on the WAN:\n{e}"));
    assert!(n > 100, "only {n} packets on the WAN");
    for i in 0..4 {
        let pattern = stream::slice(seed, i * 1024 * 1024 + 777, 16);
        assert_eq!(wan.frames_containing(&pattern), 0, "plaintext on the WAN");
    }
    let st = s.left.status();
    let sa = &st.ike_sas()[0];
    assert_eq!(sa["proposal"], "aes256gcm16-prfsha256-curve25519", "{st}");
    assert_eq!(sa["children"][0]["proposal"], "aes256gcm16-esn", "{st}");
    assert_eq!(sa["remote"], "198.51.100.2:4500", "floated to 4500: {st}");
    println!("{}", s.left.status_text());
}

#[test]
fn ike_without_nat_or_forced_encapsulation_uses_raw_esp() {
    let s = start(Encapsulation::Esp, |_, _| {});
    let cap = Capture::start(&s.topo.gw_l, GW_WAN_IF, s.topo.dir(), "wan");
    wait_established(&s.left, CONN_ON_LEFT);
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 3, &[]));
    let wan = cap.stop();
    let esp = wan
        .ipv4_packets()
        .iter()
        .filter(|p| p.protocol == 50)
        .count();
    assert!(
        esp >= 6,
        "raw ESP (protocol 50) carries the pings: {esp} packets"
    );
    let st = s.left.status();
    assert_eq!(
        st.ike_sas()[0]["remote"],
        "198.51.100.2:500",
        "IKE stayed on 500: {st}"
    );
}

#[test]
fn ike_wrong_psk_fails_authentication_with_a_clear_log_and_no_sa() {
    let s = start(Encapsulation::Udp, |l, _| {
        l.connection().ike.as_mut().unwrap().psk = "not the same pre-shared key".into();
    });
    let failed = poll(LONG, || {
        s.right
            .log()
            .contains("AUTHENTICATION_FAILED")
            .then_some(())
    });
    assert!(
        failed.is_some(),
        "the responder did not log AUTHENTICATION_FAILED:\n{}",
        s.right.log()
    );
    let log = s.right.log();
    let line = log
        .lines()
        .find(|l| l.contains("AUTHENTICATION_FAILED"))
        .unwrap();
    assert!(
        line.contains("connection=onprem"),
        "the log line names the connection: {line}"
    );
    assert!(
        line.contains("pre-shared keys differ"),
        "the log line says why: {line}"
    );
    assert!(
        poll(LONG, || s
            .left
            .log()
            .contains("AUTHENTICATION_FAILED")
            .then_some(()))
        .is_some(),
        "the initiator did not log the failure:\n{}",
        s.left.log()
    );
    assert!(
        !Topology::ping(&s.topo.host_l, HOST_R, 2, &[]),
        "nothing may pass without an SA"
    );
    let st = s.left.status();
    assert!(!st.ike_established(CONN_ON_LEFT), "{st}");
    assert!(
        st.connection(CONN_ON_LEFT)["no_sa"].as_u64().unwrap() >= 2,
        "fail closed, counted: {st}"
    );
    let right = s.right.status();
    assert!(right.ike_sas().is_empty());
    assert!(
        right.0["ike_drops"]["auth_failures"].as_u64().unwrap() >= 1,
        "counted: {right}"
    );
}

#[test]
fn ike_dead_peer_is_detected_and_the_tunnel_returns_when_it_restarts() {
    let mut s = start(Encapsulation::Udp, |l, r| {
        for c in [&mut *l, &mut *r] {
            c.ike_retransmit_timeout_ms = Some(200);
            c.ike_retransmit_tries = Some(3);
            let ike = c.connection().ike.as_mut().unwrap();
            ike.dpd_delay = 1;
        }
        l.connection().ike.as_mut().unwrap().dpd_action = "restart".into();
    });
    wait_established(&s.left, CONN_ON_LEFT);
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 2, &[]));
    let right_cfg = s.right.config.clone();
    s.right.kill(&s.topo.gw_r);
    let gone = poll(LONG, || {
        s.left.log().contains("reason=PeerDead").then_some(())
    });
    assert!(
        gone.is_some(),
        "DPD did not notice the dead peer:\n{}",
        s.left.log()
    );
    assert!(
        !Topology::ping(&s.topo.host_l, HOST_R, 1, &[]),
        "no tunnel, no traffic (fail closed)"
    );
    // The peer comes back: the initiator's restart finds it.
    s.right = Gateway::start(&s.topo.gw_r, &right_cfg, s.topo.dir());
    wait_established(&s.left, CONN_ON_LEFT);
    let back = poll(LONG, || {
        Topology::ping_quick(&s.topo.host_l, HOST_R, &[]).then_some(())
    });
    assert!(
        back.is_some(),
        "the tunnel did not come back:\n{}",
        s.left.log()
    );
}

#[test]
fn ike_trap_negotiates_when_the_first_packet_arrives() {
    let s = start(Encapsulation::Udp, |l, _| {
        l.connection().ike.as_mut().unwrap().start_action = "trap".into();
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.left.status().ike_sas().is_empty(),
        "trap: nothing negotiated before traffic"
    );
    // The very first packet triggers the negotiation, is held meanwhile,
    // and is delivered once the SA exists: one echo request, one reply.
    let out = s
        .topo
        .host_l
        .exec("ping", &["-n", "-c", "1", "-W", "5", HOST_R]);
    assert!(
        out.status.success(),
        "the first packet was not held and delivered:\n{}\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        s.left.log(),
        s.left.status_text(),
        s.right.status_text()
    );
    assert_eq!(
        s.left.status().connection(CONN_ON_LEFT)["no_sa"],
        0,
        "nothing dropped"
    );
    assert!(s.left.status().ike_established(CONN_ON_LEFT));
    assert!(s.left.log().contains("negotiating (trap)"));
}

#[test]
fn ike_up_and_down_commands_drive_the_connection() {
    let s = start(Encapsulation::Udp, |l, _| {
        l.connection().ike.as_mut().unwrap().start_action = "none".into();
    });
    assert!(s.left.status().ike_sas().is_empty());
    let out = s.left.cli(&["up", CONN_ON_LEFT]);
    assert!(
        out.status.success(),
        "ipsecgw up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_established(&s.left, CONN_ON_LEFT);
    wait_established(&s.right, CONN_ON_RIGHT);
    assert!(Topology::ping(&s.topo.host_l, HOST_R, 2, &[]));
    let out = s.left.cli(&["down", CONN_ON_LEFT]);
    assert!(
        out.status.success(),
        "ipsecgw down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = poll(LONG, || s.right.status().ike_sas().is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "the peer did not see the DELETE:\n{}",
        s.right.log()
    );
    assert!(
        !Topology::ping(&s.topo.host_l, HOST_R, 1, &[]),
        "down means no traffic"
    );
    let out = s.left.cli(&["up", "nonexistent"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hangzhou"),
        "the error lists the connections"
    );
}

/// Pings hostL → hostR 200 times at 20 ms while `during` runs; returns
/// the ping summary line.
fn ping_through(s: &Sites, during: impl FnOnce()) -> String {
    std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            s.topo.host_l.exec(
                "ping",
                &["-q", "-i", "0.02", "-c", "200", "-W", "1", HOST_R],
            )
        });
        std::thread::sleep(Duration::from_millis(500));
        during();
        let out = pinger.join().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
}

fn spis(gw: &Gateway) -> (String, Vec<String>) {
    let st = gw.status();
    let sa = st.ike_sas().first().cloned().unwrap_or_default();
    let children = sa["children"].as_array().cloned().unwrap_or_default();
    (
        format!("{}{}", sa["spi_i"], sa["spi_r"]),
        children
            .iter()
            .map(|c| c["inbound_spi"].to_string())
            .collect(),
    )
}

#[test]
fn ike_rekeys_from_either_side_lose_no_ping() {
    let s = start(Encapsulation::Udp, |_, _| {});
    wait_established(&s.left, CONN_ON_LEFT);
    wait_established(&s.right, CONN_ON_RIGHT);
    let (ike0, child0) = spis(&s.left);
    let summary = ping_through(&s, || {
        for (gw, conn, ike) in [
            (&s.left, CONN_ON_LEFT, false),
            (&s.right, CONN_ON_RIGHT, false),
            (&s.left, CONN_ON_LEFT, true),
            (&s.right, CONN_ON_RIGHT, true),
        ] {
            let mut args = vec!["rekey", conn];
            if ike {
                args.push("--ike");
            }
            let out = gw.cli(&args);
            assert!(
                out.status.success(),
                "ipsecgw {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(600));
        }
    });
    assert!(
        summary.contains(" 0% packet loss"),
        "pings were lost across the rekeys:\n{summary}\nleft:\n{}\nright:\n{}",
        s.left.log(),
        s.right.log()
    );
    let (ike1, child1) = spis(&s.left);
    assert_ne!(ike0, ike1, "the IKE SA was rekeyed");
    assert_eq!(child1.len(), 1, "one CHILD SA remains: {child1:?}");
    assert_ne!(child0, child1, "the CHILD SA was rekeyed");
    let (_, right_children) = spis(&s.right);
    assert_eq!(right_children.len(), 1);
    assert!(s.left.log().matches("CHILD SA installed").count() >= 3);
}

#[test]
fn ike_lifetimes_rekey_by_themselves() {
    let s = start(Encapsulation::Udp, |l, _| {
        l.extra_ike = Some("lifetime = 10".into());
        l.extra_ipsec = Some("lifetime = 10".into());
    });
    wait_established(&s.left, CONN_ON_LEFT);
    let (ike0, child0) = spis(&s.left);
    let summary = ping_through(&s, || std::thread::sleep(Duration::from_secs(9)));
    assert!(summary.contains(" 0% packet loss"), "{summary}");
    let (ike1, child1) = spis(&s.left);
    assert_ne!(ike0, ike1);
    assert_ne!(child0, child1);
}

#[test]
fn ike_detects_a_nat_and_floats_to_udp_4500_by_itself() {
    use ipsecgw_tests::topology::{GW_L_PRIVATE, NAT_OUTSIDE};
    let topo = Topology::build_with_nat();
    // Raw ESP is asked for on both sides: only NAT detection can move the
    // tunnel to UDP 4500.
    let (mut l, mut r) = GatewayConfig::ike_site_pair(Encapsulation::Esp, PSK);
    l.public_address = GW_L_PRIVATE.into();
    r.connection().remote_address = NAT_OUTSIDE.into();
    r.connection().ike.as_mut().unwrap().remote_id = Some(GW_L_PRIVATE.into());
    let right = Gateway::start(&topo.gw_r, &r, topo.dir());
    let cap = Capture::start(&topo.gw_r, GW_WAN_IF, topo.dir(), "outside");
    let left = Gateway::start(&topo.gw_l, &l, topo.dir());
    wait_established(&left, CONN_ON_LEFT);
    wait_established(&right, CONN_ON_RIGHT);
    assert!(
        Topology::ping(&topo.host_l, HOST_R, 3, &[]),
        "through the NAT"
    );
    assert!(
        Topology::ping(&topo.host_r, HOST_L, 3, &[]),
        "back through the NAT"
    );
    let outside = cap.stop();
    let n = outside
        .only_udp_ports(&[500, 4500])
        .unwrap_or_else(|e| panic!("raw ESP or clear traffic crossed the NAT:\n{e}"));
    assert!(n >= 12, "{n}");
    assert!(
        outside
            .ipv4_packets()
            .iter()
            .all(|p| p.src.to_string() != GW_L_PRIVATE),
        "the private address never shows outside"
    );
    let st = left.status();
    assert_eq!(st.ike_sas()[0]["nat"], true, "{st}");
    assert_eq!(st.ike_sas()[0]["remote"], "198.51.100.2:4500", "{st}");
    assert_eq!(
        st.connection(CONN_ON_LEFT)["encapsulation"],
        "udp",
        "ESP moved into UDP: {st}"
    );
    drop(left);
    drop(right);
}

#[test]
fn ike_rekeys_when_a_packet_lifetime_runs_out_without_loss() {
    // Soft at 90 % (135 packets), hard at 150 (200 pings cross both): the soft limit triggers a
    // CHILD SA rekey long before the hard one would drop anything.
    let s = start(Encapsulation::Udp, |l, r| {
        l.extra_ipsec = Some("lifetime_packets = 150".into());
        r.extra_ipsec = Some("lifetime_packets = 150".into());
    });
    wait_established(&s.left, CONN_ON_LEFT);
    let (_, child0) = spis(&s.left);
    let summary = ping_through(&s, || std::thread::sleep(Duration::from_secs(3)));
    assert!(
        summary.contains(" 0% packet loss"),
        "{summary}\n{}",
        s.left.log()
    );
    let (_, child1) = spis(&s.left);
    assert_ne!(child0, child1, "the CHILD SA was rekeyed");
    assert!(s.left.log().contains("SoftLifetime"), "{}", s.left.log());
    let st = s.left.status();
    assert_eq!(st.sa(CONN_ON_LEFT, "outbound", "lifetime_drops"), 0, "{st}");
}

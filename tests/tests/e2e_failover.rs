//! Active/standby IPsec connections with health checks, as the product has
//! them: one VPN gateway, two customer gateways of one site (two WAN
//! uplinks), a route of weight 100 over the first and of weight 0 over the
//! second. Cutting the active uplink moves the traffic to the standby once
//! the health check gives up; restoring it moves the traffic back. No
//! plaintext on either WAN link meanwhile. Also `ipsecgw test`.
//!
//! ```text
//!                      ┌ p1 ── wan0 cpe1 lan0 10.1.1.1 ┐
//! hvpc ── vpngw br-wan ┤  198.51.100.11                ├ br0 hprem 10.1.1.10
//! .4.10   .4.1  .100.2 └ p2 ── wan0 cpe2 lan0 10.1.1.2 ┘
//!                         198.51.100.12
//! ```
//! cpe1 is hprem's default gateway; when its own health check withdraws its
//! route into the tunnel, the kernel falls back to a static route via cpe2.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests report failure by panicking, helpers included; the failover time is wall-clock"
)]

use std::time::{Duration, Instant};

use ipsecgw_tests::gateway::{ConnectionConfig, IkeKeying};
use ipsecgw_tests::util::{poll, require_root_and_tools, unique_prefix, TempDir};
use ipsecgw_tests::{Capture, Encapsulation, Gateway, GatewayConfig, Netns, Status};

const PSK: &str = "failover test pre-shared key";
const VPC: &str = "192.168.4.0/24";
const DC: &str = "10.1.1.0/24";
const HVPC: &str = "192.168.4.10";
const HPREM: &str = "10.1.1.10";
const VPNGW_WAN: &str = "198.51.100.2";
const CPE1_WAN: &str = "198.51.100.11";
const CPE2_WAN: &str = "198.51.100.12";
/// The source of the VPN gateway's health check on cpe2.
const CPE2_CHECK_SOURCE: &str = "192.168.4.2";
/// ping -p: a pattern that must never be seen in clear on a WAN link.
const PATTERN: &str = "5a17ce11de7ec7ab1e5a17ce11de7ec7";
const LONG: Duration = Duration::from_secs(40);

// Field order is drop order: daemons, then namespaces, then the temp dir.
struct Net {
    vpngw_d: Option<Gateway>,
    cpe1_d: Option<Gateway>,
    cpe2_d: Option<Gateway>,
    hvpc: Netns,
    vpngw: Netns,
    cpe1: Netns,
    cpe2: Netns,
    hprem: Netns,
    tmp: TempDir,
}

fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

fn bridge(ns: &Netns, br: &str, ports: &[&str], addr: &str) {
    ns.ip(&["link", "add", br, "type", "bridge"]);
    for p in ports {
        ns.ip(&["link", "set", p, "master", br]);
    }
    ns.ip(&["link", "set", br, "up"]);
    ns.ip(&["addr", "add", addr, "dev", br]);
}

fn build() -> Net {
    require_root_and_tools();
    Netns::remove_stale();
    let prefix = unique_prefix();
    let n = Net {
        vpngw_d: None,
        cpe1_d: None,
        cpe2_d: None,
        hvpc: Netns::new(&format!("{prefix}hvpc")),
        vpngw: Netns::new(&format!("{prefix}vpngw")),
        cpe1: Netns::new(&format!("{prefix}cpe1")),
        cpe2: Netns::new(&format!("{prefix}cpe2")),
        hprem: Netns::new(&format!("{prefix}hprem")),
        tmp: TempDir::new("failover"),
    };
    for ns in [&n.hvpc, &n.vpngw, &n.cpe1, &n.cpe2, &n.hprem] {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6=1");
        ns.sysctl("net.ipv6.conf.default.disable_ipv6=1");
        ns.sysctl("net.ipv4.conf.all.rp_filter=0");
        ns.sysctl("net.ipv4.conf.default.rp_filter=0");
        ns.sysctl("net.ipv4.conf.all.send_redirects=0");
    }
    veth(&n.hvpc, "eth0", &n.vpngw, "lan0");
    veth(&n.vpngw, "p1", &n.cpe1, "wan0");
    veth(&n.vpngw, "p2", &n.cpe2, "wan0");
    veth(&n.cpe1, "lan0", &n.hprem, "q1");
    veth(&n.cpe2, "lan0", &n.hprem, "q2");
    n.hvpc
        .ip(&["addr", "add", "192.168.4.10/24", "dev", "eth0"]);
    n.hvpc
        .ip(&["route", "add", "default", "via", "192.168.4.1"]);
    n.vpngw
        .ip(&["addr", "add", "192.168.4.1/24", "dev", "lan0"]);
    bridge(&n.vpngw, "br-wan", &["p1", "p2"], "198.51.100.2/24");
    n.cpe1
        .ip(&["addr", "add", "198.51.100.11/24", "dev", "wan0"]);
    n.cpe1.ip(&["addr", "add", "10.1.1.1/24", "dev", "lan0"]);
    n.cpe2
        .ip(&["addr", "add", "198.51.100.12/24", "dev", "wan0"]);
    n.cpe2.ip(&["addr", "add", "10.1.1.2/24", "dev", "lan0"]);
    bridge(&n.hprem, "br0", &["q1", "q2"], "10.1.1.10/24");
    n.hprem.ip(&["route", "add", "default", "via", "10.1.1.1"]);
    n.hprem.ip(&[
        "route",
        "add",
        &format!("{CPE2_CHECK_SOURCE}/32"),
        "via",
        "10.1.1.2",
    ]);
    // The floating static route: used only while cpe1's own route into its
    // tunnel is withdrawn (lower priority than the daemon's).
    n.cpe1
        .ip(&["route", "add", VPC, "via", "10.1.1.2", "metric", "200"]);
    for ns in [&n.vpngw, &n.cpe1, &n.cpe2] {
        ns.sysctl("net.ipv4.ip_forward=1");
    }
    n
}

fn connection(
    name: &str,
    remote: &str,
    local: &str,
    remote_net: &str,
    start: &str,
) -> ConnectionConfig {
    let mut ike = IkeKeying::psk(PSK, start);
    // The health check, not DPD, decides here: the SAs outlive the outage.
    ike.dpd_delay = 0;
    ConnectionConfig {
        name: name.into(),
        remote_address: remote.into(),
        local_subnets: vec![local.into()],
        remote_subnets: vec![remote_net.into()],
        encapsulation: Encapsulation::Udp,
        encryption: "aes256gcm16".into(),
        esn: true,
        replay_window: 1024,
        outbound_spi: 0,
        inbound_spi: 0,
        outbound_key: String::new(),
        inbound_key: String::new(),
        ike: Some(ike),
        extra: None,
        legacy: false,
    }
}

fn health_check(source: &str, destination: &str) -> Option<String> {
    Some(format!(
        "[ipsec_connection.health_check]\nsource = \"{source}\"\ndestination = \"{destination}\"\ninterval = 1\nretries = 3"
    ))
}

fn gateway(
    name: &str,
    public: &str,
    tun: &str,
    connections: Vec<ConnectionConfig>,
    routes: Option<String>,
) -> GatewayConfig {
    GatewayConfig {
        name: name.into(),
        public_address: public.into(),
        tun_name: tun.into(),
        wan_mtu: 1500,
        connections,
        ike_retransmit_timeout_ms: None,
        ike_retransmit_tries: None,
        extra_ike: None,
        extra_ipsec: None,
        extra_toml: routes,
        extra_tun: None,
    }
}

fn vpngw_config() -> GatewayConfig {
    let mut c1 = connection("cpe1", CPE1_WAN, VPC, DC, "none");
    c1.extra = health_check("192.168.4.1", HPREM);
    let mut c2 = connection("cpe2", CPE2_WAN, VPC, DC, "none");
    // Its own source, which hprem routes back through cpe2: the standby's
    // check must not depend on the active uplink (with one source for
    // both, the standby's answers came back through cpe1 and failed with
    // it, whenever the cut was seen here before cpe1 withdrew its route).
    c2.extra = health_check(CPE2_CHECK_SOURCE, HPREM);
    gateway(
        "vpngw",
        VPNGW_WAN,
        "ipsgw-cloud",
        vec![c1, c2],
        Some(format!(
            "[[route]]\ndestination = \"{DC}\"\nconnection = \"cpe1\"\nweight = 100\npublish = true\n\n\
             [[route]]\ndestination = \"{DC}\"\nconnection = \"cpe2\"\nweight = 0\npublish = true\n"
        )),
    )
}

fn cpe_config(name: &str, public: &str, checked: bool) -> GatewayConfig {
    let mut c = connection("cloud", VPNGW_WAN, DC, VPC, "start");
    let mut routes = None;
    if checked {
        c.extra = health_check(
            if name == "cpe1" {
                "10.1.1.1"
            } else {
                "10.1.1.2"
            },
            HVPC,
        );
        routes = Some(format!(
            "[[route]]\ndestination = \"{VPC}\"\nconnection = \"cloud\"\nweight = 100\npublish = true\n"
        ));
    }
    gateway(name, public, "ipsgw-cpe", vec![c], routes)
}

/// 50 echoes 20 ms apart, with the pattern; true if all came back.
fn burst(from: &Netns, to: &str) -> bool {
    let out = from.exec(
        "ping",
        &[
            "-n", "-q", "-c", "50", "-i", "0.02", "-W", "2", "-p", PATTERN, to,
        ],
    );
    out.status.success()
}

fn out_packets(st: &Status, conn: &str) -> u64 {
    st.sa(conn, "outbound", "packets")
}

fn route_state(st: &Status, conn: &str) -> String {
    st.0["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["connection"] == conn))
        .and_then(|r| r["state"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

/// The connection carrying a burst from the VPC: the one whose outbound
/// packet count grew by the burst (health probes add only a few).
fn carrier(n: &Net) -> Option<&'static str> {
    let gw = n.vpngw_d.as_ref().unwrap();
    let before = gw.status();
    if !burst(&n.hvpc, HPREM) {
        return None;
    }
    let after = gw.status();
    let d1 = out_packets(&after, "cpe1") - out_packets(&before, "cpe1");
    let d2 = out_packets(&after, "cpe2") - out_packets(&before, "cpe2");
    eprintln!("burst: cpe1 +{d1}, cpe2 +{d2}");
    match (d1 >= 50, d2 >= 50) {
        (true, false) => Some("cpe1"),
        (false, true) => Some("cpe2"),
        _ => None,
    }
}

#[test]
fn traffic_moves_to_the_standby_connection_and_back_with_the_health_check() {
    let mut n = build();
    let dir = n.tmp.path().to_owned();
    n.vpngw_d = Some(Gateway::start(&n.vpngw, &vpngw_config(), &dir));

    // Step 6 of the tutorial before the CPEs exist: a clear failure.
    let out = n
        .vpngw_d
        .as_ref()
        .unwrap()
        .cli(&["test", "cpe1", "--count", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the test passed with no tunnel");
    assert!(
        stderr.contains("no SA") && stderr.contains("cpe1"),
        "unclear failure: {stderr}"
    );

    let caps = [
        Capture::start(&n.cpe1, "wan0", &dir, "wan-cpe1"),
        Capture::start(&n.cpe2, "wan0", &dir, "wan-cpe2"),
    ];
    n.cpe1_d = Some(Gateway::start(
        &n.cpe1,
        &cpe_config("cpe1", CPE1_WAN, true),
        &dir,
    ));
    n.cpe2_d = Some(Gateway::start(
        &n.cpe2,
        &cpe_config("cpe2", CPE2_WAN, false),
        &dir,
    ));
    let gw = n.vpngw_d.as_ref().unwrap();
    // Before the customer gateways came up the checks failed (no SA): wait
    // until both answer again and the active route is back in use.
    let st = gw.status_until(|st| {
        st.ike_established("cpe1")
            && st.ike_established("cpe2")
            && st.connection("cpe1")["health"]["state"] == "up"
            && st.connection("cpe2")["health"]["state"] == "up"
            && route_state(st, "cpe1") == "in use"
    });
    assert!(
        st.ike_established("cpe1") && st.ike_established("cpe2"),
        "both connections up: {}\n{}",
        gw.status_text(),
        gw.log()
    );
    assert_eq!(route_state(&st, "cpe1"), "in use", "{}", gw.status_text());
    assert_eq!(route_state(&st, "cpe2"), "standby", "{}", gw.status_text());
    assert_eq!(
        carrier(&n),
        Some("cpe1"),
        "the active route carries: {}",
        gw.status_text()
    );

    let out = gw.cli(&["test", "cpe1", "--json"]);
    assert!(
        out.status.success(),
        "test cpe1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["received"], 4, "{report}");
    assert_eq!(
        report["destination"], HPREM,
        "the health check's destination: {report}"
    );
    assert!(
        report["rtt_avg_ms"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );

    // Cut the active uplink: the standby takes over once 3 probes are lost.
    n.vpngw.ip(&["link", "set", "p1", "down"]);
    let cut = Instant::now();
    let st = poll(LONG, || {
        let st = gw.status();
        (route_state(&st, "cpe1") == "withdrawn").then_some(st)
    })
    .unwrap_or_else(|| panic!("cpe1's route never withdrawn:\n{}", gw.status_text()));
    let detected = cut.elapsed();
    assert_eq!(route_state(&st, "cpe2"), "in use", "{}", gw.status_text());
    assert_eq!(st.connection("cpe1")["health"]["state"], "down");
    let moved = poll(LONG, || (carrier(&n) == Some("cpe2")).then_some(()));
    assert!(
        moved.is_some(),
        "traffic did not move to the standby:\n{}\ncpe1:\n{}",
        gw.status_text(),
        n.cpe1_d.as_ref().unwrap().status_text()
    );
    eprintln!(
        "failover: route withdrawn after {detected:?}, traffic on the standby after {:?}",
        cut.elapsed()
    );
    let out = gw.cli(&["test", "cpe1", "--count", "2"]);
    assert!(!out.status.success(), "test passed over a cut link");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed the test"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Restore it: the active route comes back and carries again.
    n.vpngw.ip(&["link", "set", "p1", "up"]);
    let st = poll(LONG, || {
        let st = gw.status();
        (route_state(&st, "cpe1") == "in use").then_some(st)
    })
    .unwrap_or_else(|| panic!("cpe1's route never restored:\n{}", gw.status_text()));
    assert_eq!(route_state(&st, "cpe2"), "standby");
    assert!(st.connection("cpe1")["health"]["down_events"].as_u64() >= Some(1));
    let back = poll(LONG, || (carrier(&n) == Some("cpe1")).then_some(()));
    assert!(
        back.is_some(),
        "traffic did not move back:\n{}",
        gw.status_text()
    );

    let pattern = hex::decode(PATTERN).unwrap();
    for cap in caps {
        let pcap = cap.stop();
        let n = pcap
            .only_udp_ports(&[500, 4500])
            .unwrap_or_else(|e| panic!("something other than IKE and ESP on a WAN link:\n{e}"));
        assert!(n > 50, "only {n} packets on a WAN link");
        assert_eq!(
            pcap.frames_containing(&pattern),
            0,
            "plaintext on a WAN link"
        );
    }
}

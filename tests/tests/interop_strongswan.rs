//! Interop tests against a real strongSwan (charon-systemd with userspace ESP,
//! one per namespace; see `ipsecgw_tests::strongswan`). For now strongSwan on
//! both gateways, which proves the harness; ipsecgw ↔ strongSwan tests build
//! on the same `Charon` guard. Run as root with strongSwan installed
//! (scripts/test installs it); each test fails, never skips, without them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Mutex;

use ipsecgw_tests::strongswan::{
    ChildSa, LOG_PSK_MISMATCH, LOG_RECEIVED_AUTH_FAILED, LOG_SENDING_AUTH_FAILED,
};
use ipsecgw_tests::topology::{GW_L_WAN, GW_R_WAN, GW_WAN_IF, HOST_L, HOST_R, SUBNET_L, SUBNET_R};
use ipsecgw_tests::{time_to_first_ping, Capture, Charon, Sas, Topology};

const IKE_PROPOSAL: &str = "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519";
const ESP_PROPOSAL: &str = "ESP:AES_GCM_16-256";

fn net_ns_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/ns/net: {e}"))
        .to_string_lossy()
        .into_owned()
}

fn comm_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The CHILD SA on one side, checked in full; returns it for the SPI and
/// byte-counter checks.
fn assert_tunnel_up<'a>(
    side: &str,
    sas: &'a Sas,
    charon: &Charon,
    local_ts: &str,
    remote_ts: &str,
) -> &'a ChildSa {
    let ike = sas.established(charon.ike_name()).unwrap_or_else(|| {
        panic!(
            "{side}: no ESTABLISHED IKE SA {}:\n{sas}",
            charon.ike_name()
        )
    });
    assert_eq!(ike.version, "IKEv2", "{side}:\n{sas}");
    assert_eq!(ike.proposal, IKE_PROPOSAL, "{side}:\n{sas}");
    // encap = yes: IKE moved to port 4500 along with ESP.
    assert!(ike.local.ends_with("[4500]"), "{side}:\n{sas}");
    assert!(ike.remote.ends_with("[4500]"), "{side}:\n{sas}");
    let child = ike.installed(charon.child_name()).unwrap_or_else(|| {
        panic!(
            "{side}: no INSTALLED CHILD SA {}:\n{sas}",
            charon.child_name()
        )
    });
    assert_eq!(child.mode, "TUNNEL-in-UDP", "{side}:\n{sas}");
    assert_eq!(child.proposal, ESP_PROPOSAL, "{side}:\n{sas}");
    assert_eq!(child.local_ts, [local_ts], "{side}:\n{sas}");
    assert_eq!(child.remote_ts, [remote_ts], "{side}:\n{sas}");
    assert_eq!(child.spi_in.len(), 8, "{side}:\n{sas}");
    assert_eq!(child.spi_out.len(), 8, "{side}:\n{sas}");
    child
}

#[test]
fn strongswan_to_strongswan_psk_tunnel_carries_pings_in_udp() {
    let topo = Topology::build();
    // Declared after the topology, so dropped (charon stopped) before it.
    let right = Charon::builder(&topo.gw_r)
        .site_right()
        .psk("interop test secret")
        .start();
    let left = Charon::builder(&topo.gw_l)
        .site_left()
        .psk("interop test secret")
        .start();

    // Two charon-systemd at once, each in its own namespace, each ours.
    let (lpid, rpid) = (left.pid().unwrap(), right.pid().unwrap());
    assert_ne!(lpid, rpid);
    assert_eq!(comm_of(lpid), "charon-systemd");
    assert_eq!(comm_of(rpid), "charon-systemd");
    assert_ne!(net_ns_of(lpid), net_ns_of(rpid));
    assert!(
        topo.gw_l.pids().contains(&lpid),
        "charon {lpid} is not in gwL"
    );
    assert!(
        topo.gw_r.pids().contains(&rpid),
        "charon {rpid} is not in gwR"
    );

    let wan = Capture::start(&topo.gw_l, GW_WAN_IF, topo.dir(), "wan");

    // Initiate from gwL while hostL pings hostR every 10 ms.
    let (elapsed, initiated) = time_to_first_ping(&topo.host_l, HOST_R, || {
        left.initiate(left.child_name(), left.ike_name())
    });
    let output = initiated.unwrap_or_else(|e| panic!("initiate failed: {e:#}"));
    eprintln!("swanctl --initiate:\n{output}");
    eprintln!(
        "strongSwan <-> strongSwan: time from swanctl --initiate to the first ping reply \
         hostL -> hostR: {elapsed:?}"
    );

    let lsas = left.sas();
    let rsas = right.sas_until(|s| s.installed(right.ike_name(), right.child_name()).is_some());
    eprintln!("gwL swanctl --list-sas:\n{lsas}\ngwR swanctl --list-sas:\n{rsas}");
    let lchild = assert_tunnel_up("gwL", &lsas, &left, SUBNET_L, SUBNET_R).clone();
    let rchild = assert_tunnel_up("gwR", &rsas, &right, SUBNET_R, SUBNET_L).clone();
    assert!(lsas.established(left.ike_name()).unwrap().initiator);
    assert!(!rsas.established(right.ike_name()).unwrap().initiator);
    // One CHILD SA, seen from both ends: each end's inbound SPI is the other's outbound.
    assert_eq!(lchild.spi_in, rchild.spi_out, "\n{lsas}\n{rsas}");
    assert_eq!(lchild.spi_out, rchild.spi_in, "\n{lsas}\n{rsas}");

    assert!(
        Topology::ping(&topo.host_l, HOST_R, 3, &[]),
        "hostL could not ping hostR through the strongSwan tunnel"
    );
    assert!(
        Topology::ping(&topo.host_r, HOST_L, 3, &[]),
        "hostR could not ping hostL through the strongSwan tunnel"
    );

    let wan = wan.stop();
    let udp = wan
        .only_udp_ports(&[500, 4500])
        .unwrap_or_else(|e| panic!("traffic other than UDP 500/4500 on gwL's WAN:\n{e}"));
    let to_r = wan.esp_in_udp_payloads(SocketAddrV4::new(GW_R_WAN.parse().unwrap(), 4500));
    let to_l = wan.esp_in_udp_payloads(SocketAddrV4::new(GW_L_WAN.parse().unwrap(), 4500));
    // 1 + 3 requests and replies to hostR, 3 + 3 the other way.
    assert!(
        to_r.len() >= 7,
        "only {} ESP-in-UDP packets to gwR",
        to_r.len()
    );
    assert!(
        to_l.len() >= 7,
        "only {} ESP-in-UDP packets to gwL",
        to_l.len()
    );
    // Each carries one of the CHILD SA's SPIs.
    let spi = |hex: &str| u32::from_str_radix(hex, 16).unwrap().to_be_bytes();
    assert!(to_r.iter().all(|p| p[..4] == spi(&lchild.spi_out)));
    assert!(to_l.iter().all(|p| p[..4] == spi(&lchild.spi_in)));
    // No plaintext ICMP between the hosts leaked onto the WAN.
    let host = |a: &str| a.parse::<Ipv4Addr>().unwrap().octets();
    assert_eq!(wan.frames_containing(&host(HOST_L)), 0);
    assert_eq!(wan.frames_containing(&host(HOST_R)), 0);
    eprintln!(
        "gwL WAN: {udp} UDP packets, {} + {} ESP in UDP",
        to_r.len(),
        to_l.len()
    );

    // The counters moved on both sides.
    let lsas = left.sas();
    let lchild = lsas.installed(left.ike_name(), left.child_name()).unwrap();
    assert!(lchild.packets_out >= 4 && lchild.packets_in >= 4, "{lsas}");
    assert!(lchild.bytes_out > 0 && lchild.bytes_in > 0, "{lsas}");
    let rsas = right.sas();
    let rchild = rsas
        .installed(right.ike_name(), right.child_name())
        .unwrap();
    assert!(rchild.packets_out >= 4 && rchild.packets_in >= 4, "{rsas}");

    // Rekeying the CHILD SA, then the IKE SA: new SPIs, and traffic flows.
    let (ike, child) = (left.ike_name(), left.child_name());
    let old_spi = lchild.spi_in.clone();
    left.rekey_child(child);
    let lsas = left.sas_until(|s| s.installed(ike, child).is_some_and(|c| c.spi_in != old_spi));
    let new_child = lsas
        .installed(ike, child)
        .unwrap_or_else(|| panic!("no CHILD SA after the rekey:\n{lsas}"));
    assert_ne!(
        new_child.spi_in, old_spi,
        "the CHILD SA was not rekeyed:\n{lsas}"
    );
    let old_ike_spi = lsas.established(ike).unwrap().spi_i.clone();
    left.rekey_ike(ike);
    let lsas = left.sas_until(|s| {
        s.established(ike).is_some_and(|sa| sa.spi_i != old_ike_spi) && s.ike.len() == 1
    });
    let new_ike = lsas
        .established(ike)
        .unwrap_or_else(|| panic!("no IKE SA after the rekey:\n{lsas}"));
    assert_ne!(
        new_ike.spi_i, old_ike_spi,
        "the IKE SA was not rekeyed:\n{lsas}"
    );
    assert_eq!(new_ike.proposal, IKE_PROPOSAL, "{lsas}");
    assert!(
        new_ike.installed(child).is_some(),
        "the CHILD SA did not move over:\n{lsas}"
    );
    eprintln!("gwL after rekeying the CHILD SA and the IKE SA:\n{lsas}");
    assert!(
        Topology::ping(&topo.host_l, HOST_R, 2, &[]),
        "hostL could not ping hostR after the rekeys"
    );

    // Terminating deletes the SAs on both ends.
    left.terminate_ike(left.ike_name());
    let rsas = right.sas_until(|s| s.ike.is_empty());
    assert!(
        rsas.ike.is_empty(),
        "gwR still lists SAs after terminate:\n{rsas}"
    );
    assert!(left.sas().ike.is_empty(), "{}", left.list_sas());
}

#[test]
fn strongswan_wrong_psk_fails_authentication() {
    let topo = Topology::build();
    let right = Charon::builder(&topo.gw_r)
        .site_right()
        .psk("the responder's secret")
        .start();
    let left = Charon::builder(&topo.gw_l)
        .site_left()
        .psk("not the responder's secret")
        .start();

    let err = left
        .initiate(left.child_name(), left.ike_name())
        .expect_err("initiate with a wrong PSK succeeded");
    eprintln!("initiate failed as it should:\n{err:#}");

    for (side, charon) in [("gwL", &left), ("gwR", &right)] {
        let sas = charon.sas();
        assert!(
            sas.children().next().is_none(),
            "{side} has a CHILD SA after a failed authentication:\n{sas}"
        );
        assert!(
            sas.established(charon.ike_name()).is_none(),
            "{side} has an ESTABLISHED IKE SA after a failed authentication:\n{sas}"
        );
    }
    let rlog = right.log();
    assert!(
        rlog.contains(LOG_PSK_MISMATCH) && rlog.contains(LOG_SENDING_AUTH_FAILED),
        "the responder's log does not say {LOG_PSK_MISMATCH:?} / {LOG_SENDING_AUTH_FAILED:?}:\n{rlog}"
    );
    let llog = left.log();
    assert!(
        llog.contains(LOG_RECEIVED_AUTH_FAILED),
        "the initiator's log does not say {LOG_RECEIVED_AUTH_FAILED:?}:\n{llog}"
    );
    assert!(
        !Topology::ping_quick(&topo.host_l, HOST_R, &[]),
        "hostL reached hostR without a tunnel"
    );
}

#[test]
fn charon_guard_stops_charon_and_removes_its_dir_after_a_panic() {
    let seen = Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let topo = Topology::build();
        let charon = Charon::builder(&topo.gw_l).site_left().psk("x").start();
        *seen.lock().unwrap() = Some((charon.pid().unwrap(), charon.dir().to_path_buf()));
        panic!("deliberate panic with a charon running");
    });
    assert!(result.is_err());
    let (pid, dir) = seen.into_inner().unwrap().expect("charon started");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || comm_of(pid) != "charon-systemd",
        "charon {pid} still runs after its guard dropped"
    );
    assert!(
        !dir.exists(),
        "{} still exists after the guard dropped",
        dir.display()
    );
}

#[test]
fn strongswan_gives_up_on_a_silent_peer_after_its_retransmit_tries() {
    let topo = Topology::build();
    // Nobody answers on gwR. These knobs live in strongswan.conf: seeing them
    // obeyed shows charon reads the per-instance file.
    let left = Charon::builder(&topo.gw_l)
        .site_left()
        .psk("nobody listens")
        .retransmit_tries(2)
        .retransmit_timeout(0.5)
        .start();
    let wan = Capture::start(&topo.gw_l, GW_WAN_IF, topo.dir(), "wan");
    let err = left
        .initiate(left.child_name(), left.ike_name())
        .expect_err("initiate towards a silent peer succeeded");
    eprintln!("initiate failed as it should:\n{err:#}");
    let log = left.log();
    assert!(
        log.contains("giving up after 2 retransmits"),
        "charon did not give up after 2 retransmits:\n{log}"
    );
    let wan = wan.stop();
    // gwR answers each with ICMP port unreachable; gwL sends IKE only.
    let sent: Vec<_> = wan
        .ipv4_packets()
        .into_iter()
        .filter(|ip| ip.src.to_string() == GW_L_WAN)
        .collect();
    assert!(
        sent.iter().all(|ip| ip.dst.to_string() == GW_R_WAN
            && ip.udp.is_some_and(|(s, d, _)| s == 500 && d == 500)),
        "gwL sent something other than IKE to gwR port 500: {sent:?}"
    );
    let requests = sent.len();
    assert_eq!(requests, 3, "expected IKE_SA_INIT and 2 retransmissions");
    assert!(left.sas().ike.is_empty(), "{}", left.list_sas());
}

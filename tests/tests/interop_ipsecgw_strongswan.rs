//! ipsecgw against a real strongSwan (charon with userspace ESP, kernel-
//! libipsec): each as initiator and as responder, traffic, rekeys with
//! traffic flowing, a wrong PSK, and dead peers. Run as root with strongSwan
//! installed (scripts/test installs it) and the daemon built; every test
//! fails, never skips, without them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::path::Path;
use std::time::Duration;

use ipsecgw_tests::strongswan::{require_strongswan, DpdAction, StartAction, LOG_PSK_MISMATCH};
use ipsecgw_tests::topology::{GW_WAN_IF, HOST_L, HOST_R};
use ipsecgw_tests::util::poll;
use ipsecgw_tests::{
    stream, time_to_first_ping, traffic, Capture, Charon, Encapsulation, Gateway, GatewayConfig,
    Topology,
};

const NETTOOL: &str = env!("CARGO_BIN_EXE_nettool");
const PSK: &str = "an interop pre-shared key";
const IKE_PROPOSAL: &str = "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519";
const LONG: Duration = Duration::from_secs(30);

/// ipsecgw's side of the pair, `left` (gwL, initiating) or right (gwR,
/// waiting), with ESN off to match strongSwan's `aes256gcm16`.
fn ipsecgw_config(left: bool, start_action: &str) -> GatewayConfig {
    let (mut l, mut r) = GatewayConfig::ike_site_pair(Encapsulation::Udp, PSK);
    let cfg = if left { &mut l } else { &mut r };
    cfg.connection().esn = false;
    cfg.connection().ike.as_mut().unwrap().start_action = start_action.into();
    cfg.clone()
}

fn ping_through(topo: &Topology, during: impl FnOnce()) -> String {
    std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            topo.host_l.exec(
                "ping",
                &["-q", "-i", "0.02", "-c", "250", "-W", "1", HOST_R],
            )
        });
        std::thread::sleep(Duration::from_millis(500));
        during();
        String::from_utf8_lossy(&pinger.join().unwrap().stdout).into_owned()
    })
}

fn assert_strongswan_sa(charon: &Charon) {
    let sas = charon.sas_until(|s| {
        s.established(charon.ike_name())
            .is_some_and(|i| i.installed(charon.child_name()).is_some())
    });
    let ike = sas.established(charon.ike_name()).unwrap_or_else(|| {
        panic!(
            "strongSwan has no ESTABLISHED IKE SA:\n{sas}\n{}",
            charon.log()
        )
    });
    assert_eq!(ike.proposal, IKE_PROPOSAL, "{sas}");
    let child = ike
        .installed(charon.child_name())
        .unwrap_or_else(|| panic!("no INSTALLED CHILD SA:\n{sas}"));
    assert_eq!(child.mode, "TUNNEL-in-UDP", "{sas}");
    assert_eq!(child.proposal, "ESP:AES_GCM_16-256", "{sas}");
}

#[test]
fn ipsecgw_initiates_to_strongswan_and_carries_exact_traffic() {
    require_strongswan();
    let topo = Topology::build();
    let charon = Charon::builder(&topo.gw_r).site_right().psk(PSK).start();
    let wan = Capture::start(&topo.gw_l, GW_WAN_IF, topo.dir(), "wan");
    let (took, gw) = time_to_first_ping(&topo.host_l, HOST_R, || {
        Gateway::start(&topo.gw_l, &ipsecgw_config(true, "start"), topo.dir())
    });
    println!("ipsecgw → strongSwan: first ping reply {took:?} after starting ipsecgw");
    assert_strongswan_sa(&charon);
    assert!(gw
        .status_until(|s| s.ike_established("hangzhou"))
        .ike_established("hangzhou"));
    assert!(
        Topology::ping(&topo.host_r, HOST_L, 3, &[]),
        "strongSwan's side reaches ipsecgw's"
    );
    let seed = 0x5_0000 + u64::from(std::process::id());
    let (sent, received) = traffic::tcp_transfer(
        Path::new(NETTOOL),
        &topo.host_l,
        &topo.host_r,
        &format!("{HOST_R}:5003"),
        4 << 20,
        seed,
    );
    assert_eq!(
        received, sent,
        "the TCP transfer through ipsecgw → strongSwan arrived altered"
    );
    let wan = wan.stop();
    wan.only_udp_ports(&[500, 4500])
        .unwrap_or_else(|e| panic!("not only IKE/ESP-in-UDP on the WAN:\n{e}"));
    assert_eq!(
        wan.frames_containing(&stream::slice(seed, 1 << 20, 16)),
        0,
        "plaintext on the WAN"
    );
    println!("{}\n{}", gw.status_text(), charon.list_sas());
    drop(gw);
    drop(charon);
}

#[test]
fn strongswan_initiates_to_ipsecgw_and_both_see_the_sa() {
    require_strongswan();
    let topo = Topology::build();
    let gw = Gateway::start(&topo.gw_r, &ipsecgw_config(false, "none"), topo.dir());
    let charon = Charon::builder(&topo.gw_l).site_left().psk(PSK).start();
    let (took, out) = time_to_first_ping(&topo.host_l, HOST_R, || {
        charon.initiate(charon.child_name(), charon.ike_name())
    });
    out.unwrap_or_else(|e| {
        panic!(
            "strongSwan could not initiate to ipsecgw: {e}\nipsecgw log:\n{}",
            gw.log()
        )
    });
    println!("strongSwan → ipsecgw: first ping reply {took:?} after swanctl --initiate");
    assert_strongswan_sa(&charon);
    let st = gw.status_until(|s| s.ike_established("onprem"));
    assert!(st.ike_established("onprem"), "{st}");
    assert_eq!(
        st.ike_sas()[0]["proposal"],
        "aes256gcm16-prfsha256-curve25519"
    );
    assert!(Topology::ping(&topo.host_r, HOST_L, 3, &[]));
    assert!(Topology::ping(&topo.host_l, HOST_R, 3, &[]));
    drop(charon);
    drop(gw);
}

#[test]
fn rekeys_started_by_either_side_lose_no_ping() {
    require_strongswan();
    let topo = Topology::build();
    let charon = Charon::builder(&topo.gw_r).site_right().psk(PSK).start();
    let gw = Gateway::start(&topo.gw_l, &ipsecgw_config(true, "start"), topo.dir());
    assert_strongswan_sa(&charon);
    let before = charon.sas();
    let summary = ping_through(&topo, || {
        for step in 0..4 {
            match step {
                0 => {
                    let out = gw.cli(&["rekey", "hangzhou"]);
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                1 => {
                    charon.rekey_child(charon.child_name());
                }
                2 => {
                    let out = gw.cli(&["rekey", "hangzhou", "--ike"]);
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                _ => {
                    charon.rekey_ike(charon.ike_name());
                }
            }
            std::thread::sleep(Duration::from_millis(900));
        }
    });
    assert!(
        summary.contains(" 0% packet loss"),
        "pings lost across rekeys:\n{summary}\nipsecgw:\n{}\nstrongSwan:\n{}",
        gw.log(),
        charon.log()
    );
    let after = charon.sas_until(|s| s.ike.len() == 1 && s.ike[0].children.len() == 1);
    assert_eq!(after.ike.len(), 1, "one IKE SA left:\n{after}");
    assert_ne!(
        before.ike[0].spi_i, after.ike[0].spi_i,
        "the IKE SA was rekeyed:\n{after}"
    );
    assert_ne!(
        before.ike[0].children[0].spi_in, after.ike[0].children[0].spi_in,
        "the CHILD SA was rekeyed:\n{after}"
    );
    assert_eq!(
        after.ike[0].children.len(),
        1,
        "old CHILD SAs deleted:\n{after}"
    );
    let st = gw.status();
    assert_eq!(st.ike_sas().len(), 1, "{st}");
    assert_eq!(
        st.ike_sas()[0]["children"].as_array().unwrap().len(),
        1,
        "{st}"
    );
    assert!(Topology::ping(&topo.host_l, HOST_R, 2, &[]));
    drop(gw);
    drop(charon);
}

#[test]
fn a_wrong_psk_fails_on_both_and_ipsecgw_says_why() {
    require_strongswan();
    let topo = Topology::build();
    let charon = Charon::builder(&topo.gw_r)
        .site_right()
        .psk("strongSwan's other key")
        .start();
    let gw = Gateway::start(&topo.gw_l, &ipsecgw_config(true, "start"), topo.dir());
    let seen = poll(LONG, || {
        charon.log().contains(LOG_PSK_MISMATCH).then_some(())
    });
    assert!(
        seen.is_some(),
        "strongSwan did not reject the PSK:\n{}",
        charon.log()
    );
    let logged = poll(LONG, || {
        gw.log().contains("AUTHENTICATION_FAILED").then_some(())
    });
    assert!(
        logged.is_some(),
        "ipsecgw did not log the failure:\n{}",
        gw.log()
    );
    let line = gw
        .log()
        .lines()
        .find(|l| l.contains("AUTHENTICATION_FAILED"))
        .unwrap()
        .to_owned();
    assert!(line.contains("connection=hangzhou"), "{line}");
    assert!(charon.sas().established(charon.ike_name()).is_none());
    assert!(!Topology::ping(&topo.host_l, HOST_R, 2, &[]));
    drop(gw);
    drop(charon);
}

#[test]
fn dead_peers_are_detected_both_ways_and_tunnels_come_back() {
    require_strongswan();
    let topo = Topology::build();
    // strongSwan initiates with DPD restart; ipsecgw answers with DPD too.
    let mut cfg = ipsecgw_config(false, "none");
    cfg.ike_retransmit_timeout_ms = Some(200);
    cfg.ike_retransmit_tries = Some(2);
    {
        let ike = cfg.connection().ike.as_mut().unwrap();
        ike.dpd_delay = 1;
        ike.dpd_action = "clear".into();
    }
    let mut gw = Gateway::start(&topo.gw_r, &cfg, topo.dir());
    let charon = Charon::builder(&topo.gw_l)
        .site_left()
        .psk(PSK)
        .start_action(StartAction::Start)
        .dpd_delay(Duration::from_secs(1))
        .dpd_action(DpdAction::Restart)
        .retransmit_tries(2)
        .retransmit_timeout(0.5)
        .start();
    assert_strongswan_sa(&charon);
    assert!(Topology::ping(&topo.host_l, HOST_R, 2, &[]));

    // ipsecgw dies: strongSwan's DPD notices, and when ipsecgw is back the
    // restart brings the tunnel up again.
    gw.kill(&topo.gw_r);
    let noticed = poll(LONG, || {
        charon.log().contains("giving up after").then_some(())
    });
    assert!(
        noticed.is_some(),
        "strongSwan did not notice the dead peer:\n{}",
        charon.log()
    );
    let mut gw = Gateway::start(&topo.gw_r, &cfg, topo.dir());
    let back = poll(Duration::from_secs(60), || {
        Topology::ping_quick(&topo.host_l, HOST_R, &[]).then_some(())
    });
    assert!(
        back.is_some(),
        "the tunnel did not come back after ipsecgw restarted:\n{}\n{}",
        charon.log(),
        gw.log()
    );

    // strongSwan dies without a word (SIGKILL): ipsecgw's DPD notices and
    // clears the SA.
    ipsecgw_tests::util::send_signal(charon.pid().expect("charon runs"), "KILL");
    let cleared = poll(LONG, || gw.log().contains("reason=PeerDead").then_some(()));
    assert!(
        cleared.is_some(),
        "ipsecgw did not notice the dead peer:\n{}",
        gw.log()
    );
    assert!(gw
        .status_until(|s| s.ike_sas().is_empty())
        .ike_sas()
        .is_empty());
    gw.stop();
    drop(charon);
}

#[test]
fn ipsecgw_behind_a_nat_reaches_strongswan_over_4500() {
    use ipsecgw_tests::topology::{GW_L_PRIVATE, NAT_OUTSIDE};
    require_strongswan();
    let topo = Topology::build_with_nat();
    let charon = Charon::builder(&topo.gw_r)
        .site_right()
        .remote(NAT_OUTSIDE)
        .remote_id(GW_L_PRIVATE)
        .psk(PSK)
        .start();
    let mut cfg = ipsecgw_config(true, "start");
    cfg.public_address = GW_L_PRIVATE.into();
    cfg.connection().encapsulation = Encapsulation::Esp;
    let gw = Gateway::start(&topo.gw_l, &cfg, topo.dir());
    assert_strongswan_sa(&charon);
    assert!(
        Topology::ping(&topo.host_l, HOST_R, 3, &[]),
        "through the NAT to strongSwan"
    );
    assert!(
        Topology::ping(&topo.host_r, HOST_L, 3, &[]),
        "from strongSwan's side back through the NAT"
    );
    let sas = charon.sas();
    let ike = sas.established(charon.ike_name()).unwrap();
    assert!(
        ike.remote.starts_with(NAT_OUTSIDE),
        "strongSwan sees the NAT's address: {sas}"
    );
    assert_eq!(gw.status().ike_sas()[0]["nat"], true);
    drop(gw);
    drop(charon);
}

/// Alibaba Cloud's VPN gateway offers AES-CBC with HMAC and MODP groups
/// (and, for old devices, MD5, 3DES and the small groups: `legacy = true`);
/// ipsecgw and strongSwan agree on each suite whichever side initiates.
#[test]
fn alibaba_suites_interoperate_with_strongswan_both_ways() {
    require_strongswan();
    let suites = [
        (
            "aes128-sha1-modp2048",
            "aes128-sha1",
            "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048",
            "ESP:AES_CBC-128/HMAC_SHA1_96",
        ),
        (
            "aes256-sha256-modp2048",
            "aes256-sha256",
            "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
            "ESP:AES_CBC-256/HMAC_SHA2_256_128",
        ),
        // The console's defaults (aes / md5 / group2).
        (
            "aes128-md5-modp1024",
            "aes128-md5",
            "AES_CBC-128/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024",
            "ESP:AES_CBC-128/HMAC_MD5_96",
        ),
        (
            "3des-sha1-modp1536",
            "3des-sha1",
            "3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1536",
            "ESP:3DES_CBC/HMAC_SHA1_96",
        ),
    ];
    for (i, (ike, esp, ss_ike, ss_esp)) in suites.into_iter().flat_map(|s| [s, s]).enumerate() {
        let topo = Topology::build();
        let ipsecgw_initiates = i % 2 == 0;
        let mut cfg = ipsecgw_config(
            ipsecgw_initiates,
            if ipsecgw_initiates { "start" } else { "none" },
        );
        cfg.connection().encryption = esp.into();
        cfg.connection().legacy = ike.contains("md5") || ike.contains("3des");
        cfg.connection().ike.as_mut().unwrap().proposals = vec![ike.into()];
        let (gw_ns, ss_ns) = if ipsecgw_initiates {
            (&topo.gw_l, &topo.gw_r)
        } else {
            (&topo.gw_r, &topo.gw_l)
        };
        let builder = Charon::builder(ss_ns)
            .psk(PSK)
            .ike_proposals(ike)
            .esp_proposals(esp);
        let charon = if ipsecgw_initiates {
            builder.site_right()
        } else {
            builder.site_left()
        }
        .start();
        let gw = Gateway::start(gw_ns, &cfg, topo.dir());
        if !ipsecgw_initiates {
            charon
                .initiate(charon.child_name(), charon.ike_name())
                .unwrap_or_else(|e| panic!("{ike}: {e}\n{}", gw.log()));
        }
        let sas = charon.sas_until(|s| {
            s.established(charon.ike_name())
                .is_some_and(|x| x.installed(charon.child_name()).is_some())
        });
        let sa = sas
            .established(charon.ike_name())
            .unwrap_or_else(|| panic!("{ike}: not established:\n{sas}\n{}", gw.log()));
        assert_eq!(sa.proposal, ss_ike, "{sas}");
        assert_eq!(
            sa.installed(charon.child_name()).unwrap().proposal,
            ss_esp,
            "{sas}"
        );
        assert!(
            Topology::ping(&topo.host_l, HOST_R, 3, &[]),
            "{esp}: hostL → hostR"
        );
        assert!(
            Topology::ping(&topo.host_r, HOST_L, 3, &[]),
            "{esp}: hostR → hostL"
        );
        drop(gw);
        drop(charon);
    }
}

//! The seed tutorial's procedure end to end, as a user runs it: the cloud
//! side is created with `ipsecgw vpn-gateway|customer-gateway|
//! ipsec-connection|route` commands on a fresh state file and run with
//! `ipsecgw run --state FILE --vpn-gateway vpn-hz` (gwR, in front of the
//! "VPC" 192.168.4.0/24); the customer gateway's device (gwL, the data
//! center 10.1.1.0/24) gets the configuration `ipsecgw export` writes,
//! loaded as it is: by a real strongSwan, by ipsecgw, or by ipsecgw after
//! a round trip through Alibaba's JSON (`export --for alibaba`, then
//! `ipsecgw import`). Each test pings between the two hosts across the
//! tunnel and checks both ends' SAs and ESP counters.
//!
//! Run as root with strongSwan installed (scripts/test installs it) and the
//! daemon built (`IPSECGW_BIN`); every test fails, never skips, without
//! them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ipsecgw_tests::strongswan::require_strongswan;
use ipsecgw_tests::topology::{HOST_L, HOST_R, SUBNET_L, SUBNET_R};
use ipsecgw_tests::util::{ipsecgw_bin, poll, send_signal, WAIT_LIMIT};
use ipsecgw_tests::{Charon, Netns, Status, Topology};

/// The cloud side's names, as in configs/cloud.toml.
const VPN_GATEWAY: &str = "vpn-hz";
const CUSTOMER_GATEWAY: &str = "onprem-cpe";
const CONNECTION: &str = "onprem";
/// The VPN gateway's TUN device: the default, `ipsgw-<name>`.
const CLOUD_TUN: &str = "ipsgw-vpn-hz";

/// Runs `ipsecgw ARGS` (the state-file commands need no namespace).
fn ipsecgw(args: &[&str]) -> Output {
    Command::new(ipsecgw_bin())
        .args(args)
        .env_remove("IPSECGW_STATE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run ipsecgw {}: {e}", args.join(" ")))
}

/// Runs `ipsecgw ARGS`, panicking with its output unless it succeeds;
/// returns stdout.
#[track_caller]
fn ipsecgw_ok(args: &[&str]) -> String {
    let out = ipsecgw(args);
    assert!(
        out.status.success(),
        "ipsecgw {} failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cloud state file of one test, in the topology's temp dir.
struct Cloud {
    dir: PathBuf,
    state: String,
}

impl Cloud {
    fn new(topo: &Topology) -> Self {
        let dir = topo.dir().to_owned();
        let state = dir.join("state/cloud.toml").to_string_lossy().into_owned();
        Self { dir, state }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// `ipsecgw ARGS --state STATE`, which must succeed.
    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--state", &self.state]);
        ipsecgw_ok(&all)
    }

    /// `ipsecgw ARGS --state STATE`, which must fail; returns stderr.
    #[track_caller]
    fn refused(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--state", &self.state]);
        let out = ipsecgw(&all);
        assert!(
            !out.status.success(),
            "ipsecgw {} should have failed:\n{}",
            all.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Tutorial steps 1, 2, 3 and 5: the VPN gateway in front of the VPC,
    /// the customer gateway, the IPsec connection (with `connection_args`
    /// added) and a published route to the data center. Returns the
    /// generated pre-shared key, which `create` prints once.
    fn tutorial(&self, connection_args: &[&str]) -> String {
        let control = self.path("vpn-hz.sock");
        let out = self.run(&[
            "vpn-gateway",
            "create",
            "--name",
            VPN_GATEWAY,
            "--public-address",
            "198.51.100.2",
            "--vpc",
            "hangzhou-vpc",
            "--vpc-cidr",
            SUBNET_R,
            "--control-socket",
            &control,
        ]);
        assert!(out.contains("up to 10 IPsec connections"), "{out}");
        let mode = fs::metadata(&self.state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the state file holds keys");
        self.run(&[
            "customer-gateway",
            "create",
            "--name",
            CUSTOMER_GATEWAY,
            "--public-address",
            "198.51.100.1",
        ]);
        let mut args = vec![
            "ipsec-connection",
            "create",
            "--name",
            CONNECTION,
            "--vpn-gateway",
            VPN_GATEWAY,
            "--customer-gateway",
            CUSTOMER_GATEWAY,
            "--local-subnet",
            SUBNET_R,
            "--remote-subnet",
            SUBNET_L,
        ];
        args.extend_from_slice(connection_args);
        let out = self.run(&args);
        let psk = out
            .lines()
            .find_map(|l| l.strip_prefix("Pre-shared key: "))
            .unwrap_or_else(|| panic!("create printed no generated key:\n{out}"))
            .to_owned();
        assert_eq!(psk.len(), 16, "{out}");
        assert!(out.contains("shown once"), "{out}");
        let listed = self.run(&["ipsec-connection", "list"]);
        assert!(listed.contains(CONNECTION), "{listed}");
        assert!(
            !listed.contains(&psk),
            "list never shows the key:\n{listed}"
        );
        self.run(&[
            "route",
            "add",
            "--vpn-gateway",
            VPN_GATEWAY,
            "--destination",
            SUBNET_L,
            "--next-hop",
            CONNECTION,
            "--publish",
        ]);
        let routes = self.run(&["route", "list"]);
        assert!(routes.contains("yes"), "published:\n{routes}");
        psk
    }

    /// `ipsecgw export onprem --for FORMAT -o DIR/FILE (extra)`; returns
    /// the file's text, after checking that it is private.
    fn export(&self, format: &str, file: &str, extra: &[&str]) -> (String, String) {
        let path = self.path(file);
        let mut args = vec!["export", CONNECTION, "--for", format, "-o", &path];
        args.extend_from_slice(extra);
        self.run(&args);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path} holds the key");
        (fs::read_to_string(&path).unwrap(), path)
    }

    /// The VPN gateway, run from the state file in gwR.
    fn start_vpn_gateway(&self, topo: &Topology) -> Daemon {
        Daemon::start(
            &topo.gw_r,
            "vpn-hz",
            &["run", "--state", &self.state, "--vpn-gateway", VPN_GATEWAY],
            Path::new(&self.path("vpn-hz.sock")),
            &self.dir,
            CLOUD_TUN,
            SUBNET_L,
        )
    }
}

/// An `ipsecgw run ...` in a namespace. Drop sends SIGTERM (SIGKILL after
/// 10 s) and prints the log if the test is panicking.
struct Daemon {
    label: String,
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `ipsecgw ARGS` in `ns` and waits until its control socket
    /// answers and the kernel routes `route` into its TUN device `tun`.
    fn start(
        ns: &Netns,
        label: &str,
        args: &[&str],
        socket: &Path,
        dir: &Path,
        tun: &str,
        route: &str,
    ) -> Self {
        let log = dir.join(format!("{label}.log"));
        let file = fs::File::create(&log).unwrap();
        let bin = ipsecgw_bin().to_string_lossy().into_owned();
        let mut cmd = ns.command(&bin, args);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd
            .env_remove("IPSECGW_STATE")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting ipsecgw in {}: {e}", ns.name()));
        let mut d = Self {
            label: label.into(),
            child: Some(child),
            socket: socket.to_owned(),
            log,
        };
        let ready = poll(WAIT_LIMIT, || {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "ipsecgw ({label}) exited during start-up with {status}:\n{}",
                    d.log()
                );
            }
            d.status_output().status.success().then_some(())
        });
        assert!(
            ready.is_some(),
            "ipsecgw ({label}) never answered on {}:\n{}",
            socket.display(),
            d.log()
        );
        let routed = poll(WAIT_LIMIT, || {
            let out = ns.exec("ip", &["-4", "route", "show", "exact", route]);
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("dev {tun}"))
                .then_some(())
        });
        assert!(
            routed.is_some(),
            "ipsecgw ({label}) routed no {route} into {tun}:\n{}\n{}",
            ns.ip(&["-4", "route"]),
            d.log()
        );
        d
    }

    fn status_output(&self) -> Output {
        let socket = self.socket.to_string_lossy().into_owned();
        ipsecgw(&["status", "--socket", &socket, "--json"])
    }

    fn status(&self) -> Status {
        let out = self.status_output();
        assert!(
            out.status.success(),
            "status ({}): {}",
            self.label,
            String::from_utf8_lossy(&out.stderr)
        );
        Status(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn status_until(&self, mut pred: impl FnMut(&Status) -> bool) -> Status {
        poll(WAIT_LIMIT, || {
            let st = self.status();
            pred(&st).then_some(st)
        })
        .unwrap_or_else(|| self.status())
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "TERM");
            if poll(Duration::from_secs(10), || child.try_wait().ok().flatten()).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "----- ipsecgw log of {} -----\n{}\n----- end -----",
                self.label,
                self.log()
            );
        }
    }
}

/// The tunnel carries pings both ways; the daemon at `end` saw its IKE SA
/// of `connection` established with `proposal`, and counted ESP packets
/// both ways.
#[track_caller]
fn assert_tunnel(topo: &Topology, end: &Daemon, connection: &str, proposal: &str) {
    let st = end.status_until(|s| s.ike_established(connection));
    assert!(
        st.ike_established(connection),
        "{}: no IKE SA:\n{st}\n{}",
        end.label,
        end.log()
    );
    assert!(
        Topology::ping(&topo.host_l, HOST_R, 3, &[]),
        "data center → VPC across the tunnel\n{}",
        end.log()
    );
    assert!(
        Topology::ping(&topo.host_r, HOST_L, 3, &[]),
        "VPC → data center across the tunnel\n{}",
        end.log()
    );
    let st = end.status_until(|s| {
        s.sa(connection, "inbound", "packets") >= 6 && s.sa(connection, "outbound", "packets") >= 6
    });
    let sa = st
        .ike_sas()
        .into_iter()
        .find(|sa| sa["name"] == connection)
        .unwrap_or_else(|| panic!("{st}"));
    assert_eq!(sa["proposal"], proposal, "{st}");
    assert!(st.sa(connection, "inbound", "packets") >= 6, "{st}");
    assert!(st.sa(connection, "outbound", "packets") >= 6, "{st}");
}

/// strongSwan's view: the exported connection established with these
/// proposals, between the two sites.
#[track_caller]
fn assert_strongswan_sa(charon: &Charon, ike: &str, esp: &str) {
    let sas = charon.sas_until(|s| s.installed(CONNECTION, CONNECTION).is_some());
    let sa = sas.established(CONNECTION).unwrap_or_else(|| {
        panic!(
            "strongSwan has no ESTABLISHED IKE SA:\n{sas}\n{}",
            charon.log()
        )
    });
    assert_eq!(sa.proposal, ike, "{sas}");
    let child = sa
        .installed(CONNECTION)
        .unwrap_or_else(|| panic!("no CHILD SA:\n{sas}"));
    assert_eq!(child.proposal, esp, "{sas}");
    assert_eq!(
        child.mode, "TUNNEL-in-UDP",
        "NAT traversal is on by default:\n{sas}"
    );
    assert_eq!(child.local_ts, [SUBNET_L], "{sas}");
    assert_eq!(child.remote_ts, [SUBNET_R], "{sas}");
}

/// strongSwan counted the pings' ESP packets both ways.
#[track_caller]
fn assert_strongswan_counted(charon: &Charon) {
    let sas = charon.sas_until(|s| {
        s.installed(CONNECTION, CONNECTION)
            .is_some_and(|c| c.packets_in >= 6 && c.packets_out >= 6)
    });
    let child = sas
        .installed(CONNECTION, CONNECTION)
        .unwrap_or_else(|| panic!("no CHILD SA:\n{sas}"));
    assert!(child.packets_in >= 6 && child.packets_out >= 6, "{sas}");
}

/// Tutorial steps 1 to 5 as commands; the exported swanctl.conf, loaded as
/// it is by a real charon on the customer gateway, brings the tunnel up
/// against `ipsecgw run --state ... --vpn-gateway vpn-hz`.
#[test]
fn the_tutorial_with_an_exported_strongswan_config() {
    require_strongswan();
    let topo = Topology::build();
    let cloud = Cloud::new(&topo);
    let psk = cloud.tutorial(&[]);
    let (conf, _) = cloud.export("strongswan", "swanctl.conf", &[]);
    assert!(conf.contains(&format!("secret = \"{psk}\"")), "{conf}");
    assert!(
        conf.contains("proposals = aes256-sha256-modp2048"),
        "{conf}"
    );
    assert!(
        conf.contains("esp_proposals = aes256-sha256-modp2048"),
        "{conf}"
    );
    assert!(
        conf.contains("local_ts = 10.1.1.0/24"),
        "the CPE's view:\n{conf}"
    );

    let vpn = cloud.start_vpn_gateway(&topo);
    let charon = Charon::builder(&topo.gw_l)
        .ike_name(CONNECTION)
        .child_name(CONNECTION)
        .swanctl_conf_text(&conf)
        .start();
    assert_strongswan_sa(
        &charon,
        "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
        "ESP:AES_CBC-256/HMAC_SHA2_256_128",
    );
    assert_tunnel(&topo, &vpn, CONNECTION, "aes256-sha256-prfsha256-modp2048");
    assert_strongswan_counted(&charon);
    assert!(!vpn.log().contains(&psk), "the daemon logged the key");
    drop(charon);
    drop(vpn);
}

/// The same with `export --for ipsecgw`: ipsecgw as the customer gateway's
/// device, started from the exported file as it is.
#[test]
fn the_tutorial_with_an_exported_ipsecgw_config() {
    require_strongswan();
    let topo = Topology::build();
    let cloud = Cloud::new(&topo);
    let psk = cloud.tutorial(&[]);
    let cpe_socket = cloud.path("cpe.sock");
    let (conf, path) = cloud.export("ipsecgw", "cpe.toml", &["--control-socket", &cpe_socket]);
    assert!(conf.contains("start_action = \"start\""), "{conf}");
    assert!(conf.contains(&format!("psk = \"{psk}\"")), "{conf}");
    ipsecgw_ok(&["check", "--config", &path]);

    let vpn = cloud.start_vpn_gateway(&topo);
    let cpe = Daemon::start(
        &topo.gw_l,
        "onprem-cpe",
        &["run", "--config", &path],
        Path::new(&cpe_socket),
        topo.dir(),
        "ipsgw-onprem-cp",
        SUBNET_R,
    );
    assert_tunnel(&topo, &cpe, CONNECTION, "aes256-sha256-prfsha256-modp2048");
    assert_tunnel(&topo, &vpn, CONNECTION, "aes256-sha256-prfsha256-modp2048");
    let initiator = cpe.status().ike_sas()[0]["initiator"].clone();
    assert_eq!(
        initiator, true,
        "the CPE initiates; the cloud waits for traffic"
    );
    drop(cpe);
    drop(vpn);
}

/// `export --for alibaba` writes DownloadVpnConnectionConfig's JSON; `ipsecgw
/// import` turns it into a CPE config that brings the tunnel up, as it
/// would with a file downloaded from the real console.
#[test]
fn an_alibaba_download_imported_brings_the_tunnel_up() {
    require_strongswan();
    let topo = Topology::build();
    let cloud = Cloud::new(&topo);
    let psk = cloud.tutorial(&[
        "--ike-encryption",
        "aes",
        "--ike-integrity",
        "sha1",
        "--ipsec-encryption",
        "aes256",
        "--ipsec-integrity",
        "sha256",
    ]);
    let (json, json_path) = cloud.export("alibaba", "download.json", &[]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &v["VpnConnectionConfig"];
    assert_eq!(c["LocalSubnet"], SUBNET_L, "the CPE's view:\n{json}");
    assert_eq!(c["RemoteSubnet"], SUBNET_R, "{json}");
    assert_eq!(c["Local"], "198.51.100.1", "{json}");
    assert_eq!(c["Remote"], "198.51.100.2", "{json}");
    assert_eq!(c["IkeConfig"]["Psk"], psk.as_str(), "{json}");
    assert_eq!(c["IkeConfig"]["IkeEncAlg"], "aes", "{json}");
    assert_eq!(c["IkeConfig"]["IkeAuthAlg"], "sha1", "{json}");
    assert_eq!(c["IkeConfig"]["IkeVersion"], "ikev2", "{json}");
    assert_eq!(c["IpsecConfig"]["IpsecPfs"], "group14", "{json}");

    // The real console's download carries a RequestId too.
    let mut downloaded = v.clone();
    downloaded["RequestId"] = "0C68048B-0F70-40DA-B8AE-1B79B5CF62E3".into();
    fs::write(
        &json_path,
        serde_json::to_string_pretty(&downloaded).unwrap(),
    )
    .unwrap();
    let cpe_path = cloud.path("imported.toml");
    let cpe_socket = cloud.path("imported.sock");
    let out = ipsecgw(&[
        "import",
        &json_path,
        "-o",
        &cpe_path,
        "--control-socket",
        &cpe_socket,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::metadata(&cpe_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let conf = fs::read_to_string(&cpe_path).unwrap();
    assert!(
        conf.contains("proposals = [\"aes128-sha1-modp2048\"]"),
        "{conf}"
    );

    let vpn = cloud.start_vpn_gateway(&topo);
    let cpe = Daemon::start(
        &topo.gw_l,
        "imported-cpe",
        &["run", "--config", &cpe_path],
        Path::new(&cpe_socket),
        topo.dir(),
        "ipsgw-cpe",
        SUBNET_R,
    );
    assert_tunnel(&topo, &cpe, "alibaba-vpn", "aes128-sha1-prfsha1-modp2048");
    assert_tunnel(&topo, &vpn, CONNECTION, "aes128-sha1-prfsha1-modp2048");
    drop(cpe);
    drop(vpn);
}

/// The console's defaults (`--profile alibaba-default`: aes / md5 / group2)
/// need `--legacy`; with it, the exported swanctl.conf brings the tunnel up
/// with aes128-md5-modp1024 on both ends.
#[test]
fn the_alibaba_default_profile_with_strongswan() {
    require_strongswan();
    let topo = Topology::build();
    let cloud = Cloud::new(&topo);
    let psk = cloud.tutorial(&["--profile", "alibaba-default", "--legacy"]);
    // The same without --legacy, or with an algorithm the console does not
    // offer, is refused with the key named (for another customer gateway:
    // one connection per pair of gateways).
    cloud.run(&[
        "customer-gateway",
        "create",
        "--name",
        "branch-cpe",
        "--public-address",
        "203.0.113.7",
    ]);
    for (extra, says) in [
        (
            &["--profile", "alibaba-default"][..],
            "ipsec_connection.legacy",
        ),
        (
            &["--ike-encryption", "chacha20"][..],
            "ipsec_connection.ike.encryption",
        ),
    ] {
        let mut args = vec![
            "ipsec-connection",
            "create",
            "--name",
            "second",
            "--vpn-gateway",
            VPN_GATEWAY,
            "--customer-gateway",
            "branch-cpe",
            "--local-subnet",
            SUBNET_R,
            "--remote-subnet",
            "10.9.0.0/16",
        ];
        args.extend_from_slice(extra);
        let err = cloud.refused(&args);
        assert!(err.contains(says), "{err}");
    }
    let (conf, _) = cloud.export("strongswan", "swanctl.conf", &[]);
    assert!(conf.contains("proposals = aes128-md5-modp1024"), "{conf}");
    assert!(
        conf.contains("esp_proposals = aes128-md5-modp1024"),
        "{conf}"
    );
    assert!(conf.contains(&psk), "{conf}");

    let vpn = cloud.start_vpn_gateway(&topo);
    let charon = Charon::builder(&topo.gw_l)
        .ike_name(CONNECTION)
        .child_name(CONNECTION)
        .swanctl_conf_text(&conf)
        .start();
    assert_strongswan_sa(
        &charon,
        "AES_CBC-128/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024",
        "ESP:AES_CBC-128/HMAC_MD5_96",
    );
    assert_tunnel(&topo, &vpn, CONNECTION, "aes128-md5-prfmd5-modp1024");
    assert_strongswan_counted(&charon);
    assert!(
        vpn.log().contains("legacy"),
        "the weak suite is logged as such:\n{}",
        vpn.log()
    );
    drop(charon);
    drop(vpn);
}

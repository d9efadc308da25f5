//! The seed's site-to-site topology in four namespaces:
//!
//! ```text
//! hostL eth0 ── lan0 gwL wan0 ── wan0 gwR lan0 ── eth0 hostR
//! 10.1.1.10     10.1.1.1 198.51.100.1  198.51.100.2 192.168.4.1  192.168.4.10
//! ```
//!
//! The gateways forward but have no route to each other's LAN: only the
//! daemon (through its TUN device) or a test (`route_in_clear`) adds one.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::path::Path;

use crate::netns::Netns;
use crate::util::{self, unique_prefix, TempDir};

pub const HOST_L: &str = "10.1.1.10";
pub const GW_L_LAN: &str = "10.1.1.1";
pub const GW_L_WAN: &str = "198.51.100.1";
pub const GW_R_WAN: &str = "198.51.100.2";
pub const GW_R_LAN: &str = "192.168.4.1";
pub const HOST_R: &str = "192.168.4.10";
pub const SUBNET_L: &str = "10.1.1.0/24";
pub const SUBNET_R: &str = "192.168.4.0/24";

/// The NAT variant ([`Topology::build_with_nat`]): gwL's WAN is private,
/// behind a masquerading router whose outside address gwR sees.
pub const GW_L_PRIVATE: &str = "172.16.0.1";
pub const NAT_INSIDE: &str = "172.16.0.254";
pub const NAT_OUTSIDE: &str = "198.51.100.254";

/// Interface names inside the namespaces (names are per namespace, so they
/// need not be unique across parallel tests).
pub const HOST_IF: &str = "eth0";
pub const GW_LAN_IF: &str = "lan0";
pub const GW_WAN_IF: &str = "wan0";

/// The four namespaces and a temp dir for configs, sockets, logs and pcaps.
/// Field order is drop order: the namespaces go first, then the temp dir.
#[derive(Debug)]
pub struct Topology {
    pub host_l: Netns,
    pub gw_l: Netns,
    pub gw_r: Netns,
    pub host_r: Netns,
    /// The NAT router between gwL and gwR, in the NAT variant.
    pub nat: Option<Netns>,
    pub tmp: TempDir,
}

impl Topology {
    /// Builds the four namespaces with unique names and wires them up.
    /// Panics (after cleaning up) if not root or a tool is missing.
    pub fn build() -> Self {
        util::require_root_and_tools();
        Netns::remove_stale();
        let prefix = unique_prefix();
        let tmp = TempDir::new("topo");
        let topo = Self {
            host_l: Netns::new(&format!("{prefix}hostL")),
            gw_l: Netns::new(&format!("{prefix}gwL")),
            gw_r: Netns::new(&format!("{prefix}gwR")),
            host_r: Netns::new(&format!("{prefix}hostR")),
            nat: None,
            tmp,
        };
        for ns in topo.all() {
            // No IPv6: the links then carry only ARP and IPv4, so a capture
            // can be checked frame by frame.
            if Path::new("/proc/sys/net/ipv6").exists() {
                ns.sysctl("net.ipv6.conf.all.disable_ipv6=1");
                ns.sysctl("net.ipv6.conf.default.disable_ipv6=1");
            }
        }
        // Each veth pair is created inside one namespace with its peer placed
        // directly in the other: nothing ever appears in the root namespace.
        veth(&topo.host_l, HOST_IF, &topo.gw_l, GW_LAN_IF);
        veth(&topo.gw_l, GW_WAN_IF, &topo.gw_r, GW_WAN_IF);
        veth(&topo.gw_r, GW_LAN_IF, &topo.host_r, HOST_IF);

        address(&topo.host_l, HOST_IF, "10.1.1.10/24");
        address(&topo.gw_l, GW_LAN_IF, "10.1.1.1/24");
        address(&topo.gw_l, GW_WAN_IF, "198.51.100.1/24");
        address(&topo.gw_r, GW_WAN_IF, "198.51.100.2/24");
        address(&topo.gw_r, GW_LAN_IF, "192.168.4.1/24");
        address(&topo.host_r, HOST_IF, "192.168.4.10/24");

        topo.host_l
            .ip(&["route", "add", "default", "via", GW_L_LAN]);
        topo.host_r
            .ip(&["route", "add", "default", "via", GW_R_LAN]);
        topo.gw_l.sysctl("net.ipv4.ip_forward=1");
        topo.gw_r.sysctl("net.ipv4.ip_forward=1");
        topo
    }

    /// The same hosts and gateways, but gwL's WAN (172.16.0.1) sits behind a
    /// NAT router (nftables masquerade) whose outside address 198.51.100.254
    /// is all gwR sees:
    ///
    /// ```text
    /// gwL wan0 172.16.0.1 ── in0 nat out0 198.51.100.254 ── wan0 gwR 198.51.100.2
    /// ```
    pub fn build_with_nat() -> Self {
        let mut topo = Self::build();
        let name = topo.gw_l.name().replace("gwL", "nat");
        let nat = Netns::new(&name);
        if Path::new("/proc/sys/net/ipv6").exists() {
            nat.sysctl("net.ipv6.conf.all.disable_ipv6=1");
            nat.sysctl("net.ipv6.conf.default.disable_ipv6=1");
        }
        // Re-cable gwL's WAN through the NAT.
        topo.gw_l.ip(&["link", "del", GW_WAN_IF]);
        veth(&topo.gw_l, GW_WAN_IF, &nat, "in0");
        veth(&nat, "out0", &topo.gw_r, GW_WAN_IF);
        address(&topo.gw_l, GW_WAN_IF, "172.16.0.1/24");
        address(&nat, "in0", "172.16.0.254/24");
        address(&nat, "out0", "198.51.100.254/24");
        address(&topo.gw_r, GW_WAN_IF, "198.51.100.2/24");
        topo.gw_l
            .ip(&["route", "add", "default", "via", NAT_INSIDE]);
        nat.sysctl("net.ipv4.ip_forward=1");
        for args in [
            &["add", "table", "ip", "nat"][..],
            &[
                "add",
                "chain",
                "ip",
                "nat",
                "post",
                "{ type nat hook postrouting priority 100 ; }",
            ][..],
            &[
                "add",
                "rule",
                "ip",
                "nat",
                "post",
                "oifname",
                "out0",
                "masquerade",
            ][..],
        ] {
            let out = nat.exec("nft", args);
            assert!(
                out.status.success(),
                "nft {args:?} in {}: {}",
                nat.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        topo.nat = Some(nat);
        topo
    }

    pub fn all(&self) -> [&Netns; 4] {
        [&self.host_l, &self.gw_l, &self.gw_r, &self.host_r]
    }

    /// Names of the four namespaces.
    pub fn names(&self) -> Vec<String> {
        self.all().iter().map(|ns| ns.name().to_owned()).collect()
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Plain routing between the LANs over the WAN, without any tunnel: used
    /// by the harness self-tests only.
    pub fn route_in_clear(&self) {
        self.gw_l.ip(&["route", "add", SUBNET_R, "via", GW_R_WAN]);
        self.gw_r.ip(&["route", "add", SUBNET_L, "via", GW_L_WAN]);
    }

    /// `ping -c count -i 0.2 -w 20 dst` from `ns` (plus `extra` options):
    /// true when all `count` replies came back within 20 s.
    pub fn ping(ns: &Netns, dst: &str, count: u32, extra: &[&str]) -> bool {
        let count = count.to_string();
        let mut args = vec!["-n", "-c", &count, "-i", "0.2", "-w", "20"];
        args.extend_from_slice(extra);
        args.push(dst);
        let out = ns.exec("ping", &args);
        eprintln!(
            "[{}] ping {dst}: {}\n{}",
            ns.name(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        out.status.success()
    }

    /// `ping -c 3 -W 1 dst` from `ns` (plus `extra`): true if any reply came.
    /// For the cases where the ping must fail.
    pub fn ping_quick(ns: &Netns, dst: &str, extra: &[&str]) -> bool {
        let mut args = vec!["-n", "-c", "3", "-W", "1", "-i", "0.2"];
        args.extend_from_slice(extra);
        args.push(dst);
        let out = ns.exec("ping", &args);
        eprintln!(
            "[{}] ping {dst}: {}\n{}",
            ns.name(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        out.status.success()
    }
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

fn address(ns: &Netns, iface: &str, cidr: &str) {
    ns.ip(&["addr", "add", cidr, "dev", iface]);
}

//! Putting the wanted routes (and a few sysctls) into the namespaces.
//!
//! Netlink talks to the namespace of the socket that sends it, and entering
//! another namespace from a running process takes `setns(2)`, i.e. unsafe
//! code. So the lab re-executes its own binary inside each namespace
//! (`ip netns exec NS ipsecgw lab netns-apply ...`), and that process syncs
//! its namespace's table over rtnetlink: it adds what is missing and deletes
//! the extra routes that carry the lab's protocol number, never touching a
//! route it did not make (the kernel's connected routes, the gateways' TUN
//! routes).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Stdio};

use anyhow::{bail, Context};
use ipnet::IpNet;

use super::netns;
use super::routes::{Target, Want};
use crate::sys::netlink::{Netlink, TableRoute};

/// The routing protocol number of every route the lab installs (`proto 76`
/// in `ip route`): one that no routing daemon listed in iproute2's
/// `rt_protos` uses, so the lab can tell its routes from everyone else's.
pub const LAB_PROTOCOL: u8 = 76;

/// The sysctls of a namespace: forwarding for routers and gateways, and no
/// ICMP redirects anywhere, so that traffic follows the route tables the
/// engine computed (a router that redirects a host straight to the VPN
/// gateway would let it keep reaching the data center after the route is
/// deleted). No IPv6: the lab is IPv4-only and keeps its links quiet.
/// `*` stands for every interface; a leading `?` marks a key that may be
/// missing (a kernel without IPv6).
pub fn sysctls(forwarding: bool) -> Vec<String> {
    vec![
        "?net.ipv6.conf.all.disable_ipv6=1".into(),
        "?net.ipv6.conf.default.disable_ipv6=1".into(),
        "net.ipv4.conf.*.rp_filter=0".into(),
        "net.ipv4.conf.*.send_redirects=0".into(),
        "net.ipv4.conf.*.accept_redirects=0".into(),
        format!("net.ipv4.ip_forward={}", u8::from(forwarding)),
    ]
}

/// One namespace's share of an apply: its sysctls and its whole lab table.
#[derive(Debug, Clone)]
pub struct NsApply {
    /// The namespace.
    pub ns: String,
    /// `key=value` settings (see [`sysctls`]).
    pub sysctls: Vec<String>,
    /// Every route the lab wants there; others it made are deleted.
    pub routes: Vec<Want>,
}

/// Applies every namespace's table, all namespaces at once (each is its own
/// process), and fails naming each namespace that failed.
pub fn apply_all(exe: &Path, plan: &[NsApply]) -> anyhow::Result<()> {
    let mut running: Vec<(&str, Child)> = Vec::new();
    let mut failures = Vec::new();
    for p in plan {
        let mut cmd = netns::exec_command(&p.ns, exe);
        cmd.args(["lab", "netns-apply"]);
        for s in &p.sysctls {
            cmd.arg("--sysctl").arg(s);
        }
        for r in &p.routes {
            cmd.arg("--route").arg(r.to_string());
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn");
        match cmd.spawn() {
            Ok(child) => running.push((&p.ns, child)),
            Err(e) => failures.push(format!("{}: cannot start `ip netns exec`: {e}", p.ns)),
        }
    }
    for (ns, child) in running {
        match child.wait_with_output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => failures.push(format!(
                "{ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => failures.push(format!("{ns}: {e}")),
        }
    }
    if !failures.is_empty() {
        bail!(
            "could not apply the routes in every namespace:\n  {}",
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// Inside a namespace (`lab netns-apply`): writes the sysctls, then makes
/// the lab's routes in the main table exactly `wants`.
pub async fn netns_apply(sysctls: &[String], wants: &[Want]) -> anyhow::Result<()> {
    for s in sysctls {
        write_sysctl(s)?;
    }
    let netlink = Netlink::open()?;
    let mut wanted = Vec::new();
    for w in wants {
        let (gateway, oif) = match &w.target {
            Target::Via(gw) => (Some(IpAddr::V4(*gw)), None),
            Target::Dev(dev) => (None, Some(netlink.link_index(dev).await?)),
        };
        wanted.push(TableRoute {
            destination: IpNet::V4(w.destination),
            gateway,
            oif,
            protocol: LAB_PROTOCOL,
        });
    }
    // A via route is read back with its output interface filled in: match
    // on what was asked for.
    let same = |want: &TableRoute, have: &TableRoute| {
        want.destination == have.destination
            && want.gateway == have.gateway
            && (want.oif.is_none() || want.oif == have.oif)
    };
    let table = netlink.main_table_v4().await?;
    let (ours, others): (Vec<_>, Vec<_>) =
        table.into_iter().partition(|r| r.protocol == LAB_PROTOCOL);
    for have in &ours {
        if !wanted.iter().any(|w| same(w, have)) {
            netlink.del_table_route(have).await?;
        }
    }
    let others: BTreeMap<IpNet, &TableRoute> = others.iter().map(|r| (r.destination, r)).collect();
    for want in &wanted {
        if ours.iter().any(|have| same(want, have)) {
            continue;
        }
        if let Some(other) = others.get(&want.destination) {
            bail!(
                "a route for {} that the lab did not make (protocol {}) is in the way; the lab leaves it alone",
                want.destination,
                other.protocol
            );
        }
        netlink.add_table_route(want).await?;
    }
    Ok(())
}

/// Writes one `key=value` sysctl under /proc/sys (per namespace for
/// `net.*`), expanding `*` to every entry of that directory.
fn write_sysctl(setting: &str) -> anyhow::Result<()> {
    let (optional, setting) = match setting.strip_prefix('?') {
        Some(rest) => (true, rest),
        None => (false, setting),
    };
    let (key, value) = setting
        .split_once('=')
        .with_context(|| format!("sysctl {setting:?}: expected key=value"))?;
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let paths: Vec<std::path::PathBuf> = match path.split_once("/*/") {
        Some((dir, leaf)) => std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {dir}"))?
            .filter_map(Result::ok)
            .map(|e| e.path().join(leaf))
            .collect(),
        None => vec![path.into()],
    };
    for p in paths {
        if optional && !p.exists() {
            continue;
        }
        std::fs::write(&p, value).with_context(|| format!("cannot set {}", p.display()))?;
    }
    Ok(())
}

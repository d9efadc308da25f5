//! Network namespaces through `ip`: creating them, wiring veth pairs between
//! them, running commands inside them, and removing them. Every command
//! names its namespace (`ip -n NS`, `ip netns exec NS`), so nothing is ever
//! configured in the root namespace.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context};

/// Runs `ip args` and fails with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = run("ip", args)?;
    checked(&format!("ip {}", args.join(" ")), out)
}

/// Runs `ip -n ns args`.
pub fn ip_in(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

/// Runs a program to completion, capturing its output.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!("cannot run `{program}`: is it installed? (`ip` is in iproute2, `ping` in iputils-ping, `kill` in procps)")
        })
}

fn checked(what: &str, out: Output) -> anyhow::Result<String> {
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command that runs `program` inside `ns`.
pub fn exec_command(ns: &str, program: &Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// The namespaces whose names start with `prefix`.
pub fn list(prefix: &str) -> anyhow::Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect())
}

/// Creates `name` with its loopback up.
pub fn add(name: &str) -> anyhow::Result<()> {
    ip(&["netns", "add", name])?;
    ip_in(name, &["link", "set", "lo", "up"])?;
    Ok(())
}

/// Kills whatever still runs in `name`, then deletes it.
pub fn delete(name: &str) -> anyhow::Result<()> {
    for _ in 0..3 {
        let pids = pids(name);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            super::daemons::signal(pid, "KILL");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ip(&["netns", "del", name]).map(|_| ())
}

/// The processes inside `name`.
pub fn pids(name: &str) -> Vec<u32> {
    ip(&["netns", "pids", name])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A veth pair created inside `a` with its peer placed directly in `b`
/// (never passing through the root namespace), both ends up.
pub fn veth(a: &str, a_if: &str, b: &str, b_if: &str) -> anyhow::Result<()> {
    ip_in(
        a,
        &[
            "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
        ],
    )?;
    ip_in(a, &["link", "set", a_if, "up"])?;
    ip_in(b, &["link", "set", b_if, "up"])?;
    Ok(())
}

/// A bridge `br` in `ns` with `ports` enslaved, up.
pub fn bridge(ns: &str, br: &str, ports: &[&str]) -> anyhow::Result<()> {
    ip_in(ns, &["link", "add", br, "type", "bridge"])?;
    for port in ports {
        ip_in(ns, &["link", "set", port, "master", br])?;
    }
    ip_in(ns, &["link", "set", br, "up"])?;
    Ok(())
}

/// Adds `addr/prefix` to `dev` in `ns`.
pub fn address(ns: &str, dev: &str, cidr: &str) -> anyhow::Result<()> {
    ip_in(ns, &["addr", "add", cidr, "dev", dev]).map(|_| ())
}

/// Whether `dev` exists in `ns`.
pub fn has_link(ns: &str, dev: &str) -> bool {
    run("ip", &["-n", ns, "link", "show", "dev", dev]).is_ok_and(|o| o.status.success())
}

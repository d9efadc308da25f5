//! The two `ipsecgw run` daemons of the lab: their configs (IKEv2 with a
//! pre-shared key fresh for each lab), starting them in their namespaces,
//! waiting for them and for the IKE SA, and stopping them.
//!
//! The daemons outlive `lab up` (they are what the lab *is* between
//! commands), so they run in their own process group with their output in
//! the state dir, and are found again through their pid files.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use ipnet::Ipv4Net;

use super::netns;
use super::spec::Spec;
use super::state::{Role, State};
use super::topology::TUN_IF;
use crate::control;
use crate::dataplane::stats::{IkeSaView, StatusSnapshot};

/// The connection's name at each end: named for the peer, as the configs
/// in `configs/` do.
pub fn connection_name(spec: &Spec, role: Role) -> String {
    match role {
        Role::Cpe => spec.vpn.id.clone(),
        Role::VpnGateway => spec.datacenter.name.clone(),
    }
}

/// A fresh pre-shared key: 32 random bytes, hex.
pub fn new_psk() -> String {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    hex::encode(key)
}

fn toml_list(nets: &[Ipv4Net]) -> String {
    let items: Vec<String> = nets.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// The config of one gateway. The customer gateway protects the data
/// center's block towards every VPC's; the VPN gateway mirrors it. The
/// customer gateway's `[[route]]`s carry the traffic but are not put into
/// its kernel table (`publish = false`): the lab installs the on-premises
/// route variant there instead, so that table is the seed's.
pub fn config_text(spec: &Spec, state: &State, role: Role, psk: &Path) -> String {
    let dc = [spec.datacenter.cidr.trunc()];
    let vpcs: Vec<Ipv4Net> = spec.vpcs.iter().map(|v| v.cidr.trunc()).collect();
    let conn = connection_name(spec, role);
    let (name, public, peer, local, remote, start, dpd) = match role {
        Role::Cpe => (
            format!("{}-cpe", spec.datacenter.name),
            spec.vpn.cpe_wan,
            spec.vpn.wan,
            &dc[..],
            &vpcs[..],
            "start",
            "restart",
        ),
        Role::VpnGateway => (
            spec.vpn.id.clone(),
            spec.vpn.wan,
            spec.vpn.cpe_wan,
            &vpcs[..],
            &dc[..],
            "none",
            "clear",
        ),
    };
    let mut text = format!(
        r#"# Written by `ipsecgw lab up` for lab {instance:?}: the {title}.
[gateway]
name = "{name}"
public_address = "{public}"
control_socket = "{socket}"

[tun]
name = "{TUN_IF}"
wan_mtu = 1500

[[ipsec_connection]]
name = "{conn}"
remote_address = "{peer}"
local_subnets = {local}
remote_subnets = {remote}
encapsulation = "udp"

[ipsec_connection.ike]
version = "ikev2"
proposals = ["aes256gcm16-prfsha256-curve25519"]
psk_file = "{psk}"
start_action = "{start}"
dpd_delay = 10
dpd_action = "{dpd}"

[ipsec_connection.ipsec]
encryption = "aes256gcm16"
esn = true
"#,
        instance = state.instance,
        title = role.title(),
        socket = state.socket(role).display(),
        local = toml_list(local),
        remote = toml_list(remote),
        psk = psk.display(),
    );
    if role == Role::Cpe {
        for v in &vpcs {
            let _ = write!(
                text,
                "\n[[route]]\ndestination = \"{v}\"\nconnection = \"{conn}\"\npublish = false\n"
            );
        }
    }
    text
}

/// Writes the key and both configs, and checks them as `ipsecgw check`
/// would.
pub fn write_configs(spec: &Spec, state: &State) -> anyhow::Result<()> {
    let psk = state.write_psk(&new_psk())?;
    for role in Role::ALL {
        let path = state.config(role);
        fs::write(&path, config_text(spec, state, role, &psk))
            .with_context(|| format!("cannot write {}", path.display()))?;
        crate::config::load(&path)
            .with_context(|| format!("the generated {} config is invalid", role.title()))?;
    }
    Ok(())
}

/// Starts one gateway in its namespace, in the background.
pub fn start(state: &State, role: Role, exe: &Path) -> anyhow::Result<Child> {
    let ns = role.ns(&state.names);
    let log_path = state.log(role);
    let log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let err = log.try_clone()?;
    let mut cmd = netns::exec_command(&ns, exe);
    cmd.arg("run")
        .arg("--config")
        .arg(state.config(role))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        // Its own process group: a Ctrl-C meant for a lab command does not
        // reach the daemons, which live until `lab down`.
        .process_group(0);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start the {} in {ns}", role.title()))?;
    fs::write(state.pid(role), format!("{}\n", child.id()))?;
    Ok(child)
}

/// The last lines of a gateway's log, for error messages.
pub fn log_tail(state: &State, role: Role) -> String {
    let text = fs::read_to_string(state.log(role)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
    format!(
        "{} log ({}):\n    {tail}",
        role.title(),
        state.log(role).display()
    )
}

/// Waits until the gateway answers on its control socket and its TUN device
/// exists; fails at once if it exits.
pub async fn wait_ready(state: &State, role: Role, child: &mut Child) -> anyhow::Result<()> {
    let ns = role.ns(&state.names);
    let socket = state.socket(role);
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the {} exited ({status}) while starting\n{}",
                role.title(),
                log_tail(state, role)
            );
        }
        if control::request_status(&socket).await.is_ok() && netns::has_link(&ns, TUN_IF) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the {} did not come up within 20 s\n{}",
        role.title(),
        log_tail(state, role)
    )
}

/// A gateway's status, through its control socket.
pub async fn status(state: &State, role: Role) -> anyhow::Result<StatusSnapshot> {
    control::request_status(&state.socket(role)).await
}

/// The established IKE SA with at least one CHILD SA, if there is one.
pub fn established(status: &StatusSnapshot) -> Option<&IkeSaView> {
    status
        .ike_sas
        .iter()
        .find(|sa| sa.state == "ESTABLISHED" && !sa.children.is_empty())
}

/// Waits until the customer gateway has an established IKE SA with a
/// CHILD SA (it initiates at start).
pub async fn wait_established(state: &State) -> anyhow::Result<IkeSaView> {
    for _ in 0..300 {
        if let Ok(st) = status(state, Role::Cpe).await {
            if let Some(sa) = established(&st) {
                return Ok(sa.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "no IKE SA within 30 s\n{}\n{}",
        log_tail(state, Role::Cpe),
        log_tail(state, Role::VpnGateway)
    )
}

/// The gateway's pid from its pid file, if that process still runs the
/// lab's config (a pid reused by something else is never signalled).
pub fn running_pid(state: &State, role: Role) -> Option<u32> {
    let pid: u32 = fs::read_to_string(state.pid(role))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let config = state.config(role);
    let ours = String::from_utf8_lossy(&cmdline).contains(&*config.to_string_lossy());
    (ours && alive(pid)).then_some(pid)
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// Sends `signal` ("TERM", "KILL") to `pid` with kill(1): the lab has no
/// unsafe code to call kill(2) itself.
pub fn signal(pid: u32, signal: &str) {
    // Already gone is fine.
    let _ = netns::run("kill", &[&format!("-{signal}"), &pid.to_string()]);
}

/// Stops both gateways: SIGTERM (they delete their SAs, telling the peer,
/// and remove their routes), then SIGKILL after 5 s. Returns what it did.
pub fn stop_all(state: &State) -> Vec<String> {
    let mut done = Vec::new();
    // The initiating side first, so the answering one sees the DELETE.
    for role in [Role::Cpe, Role::VpnGateway] {
        let Some(pid) = running_pid(state, role) else {
            continue;
        };
        signal(pid, "TERM");
        let mut killed = false;
        for i in 0..=50 {
            if !alive(pid) {
                break;
            }
            if i == 50 {
                signal(pid, "KILL");
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        done.push(format!(
            "stopped the {} (pid {pid}{})",
            role.title(),
            if killed { ", killed after 5 s" } else { "" }
        ));
    }
    done
}

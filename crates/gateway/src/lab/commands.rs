//! The commands on a running lab: route operations (publish, withdraw, add,
//! delete) and pings between its hosts.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};
use ipnet::IpNet;
use ipsecgw_policy::cen::Cen;

use super::routes::{self, Op};
use super::spec::Spec;
use super::state::State;
use super::up;

/// Applies one route operation: the engine first (an invalid operation
/// changes nothing and says why), then the log, then every namespace.
pub fn route_op(state: &State, op: Op, exe: &Path) -> anyhow::Result<()> {
    up::require_root("route commands")?;
    let (_, spec) = state.load()?;
    let mut cen = routes::replay(&spec, &state.ops()?)?;
    op.apply(&spec, &mut cen)?;
    state.append_op(&op)?;
    up::apply_routes(state, &spec, &cen, exe).context(
        "the CEN changed but the namespaces could not follow; `ipsecgw lab status` shows what runs",
    )?;
    println!("{}", done_text(&op, &cen));
    print_destination(&spec, &cen, destination(&op))?;
    Ok(())
}

fn destination(op: &Op) -> IpNet {
    match op {
        Op::Publish { destination, .. }
        | Op::Withdraw { destination, .. }
        | Op::RouteAdd { destination, .. }
        | Op::RouteDelete { destination, .. } => *destination,
    }
}

fn done_text(op: &Op, cen: &Cen) -> String {
    match op {
        Op::Publish {
            network,
            destination,
        } => format!(
            "{network}: published its route for {destination} to CEN {}",
            cen.name()
        ),
        Op::Withdraw {
            network,
            destination,
        } => format!(
            "{network}: withdrew its route for {destination} from CEN {}",
            cen.name()
        ),
        Op::RouteAdd {
            network,
            destination,
            next_hop,
        } => format!("{network}: added a custom route {destination} -> {next_hop}"),
        Op::RouteDelete {
            network,
            destination,
        } => format!(
            "{network}: deleted its route for {destination} (and so from CEN {}, if it was published)",
            cen.name()
        ),
    }
}

/// Each VPC's route for `destination` now, so the effect of a command is
/// visible at once.
fn print_destination(spec: &Spec, cen: &Cen, destination: IpNet) -> anyhow::Result<()> {
    for v in &spec.vpcs {
        let route = cen
            .routes(&v.name)?
            .into_iter()
            .find(|r| r.destination == destination);
        match route {
            Some(r) => println!("  {:<12} {r}   ({})", v.name, routes::origin(&r)),
            None => println!("  {:<12} no route for {destination}", v.name),
        }
    }
    Ok(())
}

/// `lab ping FROM TO`: ICMP echoes from one network's host to another's
/// (or to an address); fails when no reply comes back.
pub fn ping(state: &State, from: &str, to: &str, count: u32, wait: u32) -> anyhow::Result<()> {
    up::require_root("ping")?;
    let (_, spec) = state.load()?;
    let names = spec.network_names().join(", ");
    let Some(src) = spec.host_of(from) else {
        bail!("no network named {from:?} in this lab: ping from one of {names}");
    };
    let dst: Ipv4Addr = match spec.host_of(to) {
        Some(a) => a,
        None => to.parse().map_err(|_| {
            anyhow::anyhow!("{to:?} is neither a network of this lab ({names}) nor an IPv4 address")
        })?,
    };
    if count == 0 || wait == 0 {
        bail!("--count and --wait must be at least 1");
    }
    let ns = state.names.host(from);
    println!("ping from {from} ({src}) to {to} ({dst}):");
    let status = super::netns::exec_command(&ns, Path::new("ping"))
        .args(["-n", "-c", &count.to_string(), "-W", &wait.to_string()])
        .args(["-i", "0.2", &dst.to_string()])
        .stdin(Stdio::null())
        .status()
        .context("cannot run ping (install iputils-ping)")?;
    if !status.success() {
        bail!("{from} ({src}) got no reply from {to} ({dst})");
    }
    Ok(())
}

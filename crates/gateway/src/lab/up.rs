//! `lab up` and `lab down`: the whole lab made and unmade.

use std::path::Path;

use anyhow::{bail, Context};

use super::apply::{self, NsApply};
use super::daemons;
use super::netns;
use super::routes;
use super::spec::{OnpremRoutes, Spec};
use super::state::{Record, Role, State};
use super::topology;
use ipsecgw_policy::cen::Cen;

/// Fails unless the effective uid is 0: namespaces, veths and TUN devices
/// need it, and a clear message beats the first `ip` command's EPERM.
pub fn require_root(what: &str) -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        bail!("`ipsecgw lab {what}` must run as root: it creates and changes network namespaces, veth pairs and TUN devices (try sudo)");
    }
    Ok(())
}

/// Brings the lab up: namespaces and cables, the two gateways, the routes
/// the engine computes, then waits for the IKE SA. On any failure it
/// removes everything it made before returning the error.
pub async fn up(
    state: &State,
    spec_path: &Path,
    onprem: Option<OnpremRoutes>,
    exe: &Path,
) -> anyhow::Result<()> {
    require_root("up")?;
    let text = std::fs::read_to_string(spec_path).with_context(|| {
        format!(
            "cannot read the lab spec {} (give one with --spec FILE; the seed network is configs/lab/seed.toml in the source tree)",
            spec_path.display()
        )
    })?;
    let mut spec =
        Spec::parse(&text).with_context(|| format!("lab spec {}", spec_path.display()))?;
    if let Some(v) = onprem {
        spec.onprem_routes = v;
    }
    // The engine must accept the spec before anything is made.
    let cen = routes::base_cen(&spec)?;

    let prefix = state.names.prefix();
    let existing = netns::list(prefix)?;
    if state.is_recorded() || !existing.is_empty() {
        bail!(
            "lab {:?} is already up (state in {}, {} namespace(s) named {prefix}*): use it, or take it down first with `ipsecgw lab down {}`",
            state.instance,
            state.dir.display(),
            existing.len(),
            state.cli_flags()
        );
    }
    let record = Record {
        instance: state.instance.clone(),
        onprem_routes: spec.onprem_routes,
        spec_origin: std::fs::canonicalize(spec_path).unwrap_or_else(|_| spec_path.into()),
    };
    state.create(&record, &text)?;
    match build(state, &spec, &cen, exe).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let cleanup = down_quietly(state);
            Err(e.context(format!(
                "lab {:?} did not come up; {}",
                state.instance,
                match cleanup {
                    Ok(()) => "everything it made was removed".to_owned(),
                    Err(c) => format!("cleaning up failed too ({c:#}): run `ipsecgw lab down`"),
                }
            )))
        }
    }
}

async fn build(state: &State, spec: &Spec, cen: &Cen, exe: &Path) -> anyhow::Result<()> {
    topology::build(spec, &state.names)?;
    daemons::write_configs(spec, state)?;
    for role in Role::ALL {
        let mut child = daemons::start(state, role, exe)?;
        daemons::wait_ready(state, role, &mut child).await?;
    }
    apply_routes(state, spec, cen, exe)?;
    let sa = daemons::wait_established(state).await?;
    super::show::summary(state, spec, &sa);
    Ok(())
}

/// Puts every namespace's table (and sysctls) in place for `cen`.
pub fn apply_routes(state: &State, spec: &Spec, cen: &Cen, exe: &Path) -> anyhow::Result<()> {
    let names = &state.names;
    let hosts: Vec<String> = spec.network_names().iter().map(|n| names.host(n)).collect();
    let plan: Vec<NsApply> = routes::kernel_tables(spec, names, cen)?
        .into_iter()
        .map(|(ns, routes)| NsApply {
            sysctls: apply::sysctls(!hosts.contains(&ns)),
            ns,
            routes,
        })
        .collect();
    apply::apply_all(exe, &plan)
}

/// `lab down`: stops the gateways, deletes every namespace named for the
/// instance, removes the state dir. Works from whatever is left after a
/// crash; says so when there was nothing to remove.
pub fn down(state: &State) -> anyhow::Result<()> {
    require_root("down")?;
    let existed = state.dir.exists() || !netns::list(state.names.prefix())?.is_empty();
    if !existed {
        println!(
            "lab {:?} is not up: no namespace named {}* and no state in {}",
            state.instance,
            state.names.prefix(),
            state.dir.display()
        );
        return Ok(());
    }
    for line in daemons::stop_all(state) {
        println!("{line}");
    }
    let namespaces = remove_namespaces(state)?;
    println!(
        "deleted {namespaces} namespace(s) named {}*",
        state.names.prefix()
    );
    state.remove()?;
    println!(
        "removed {}\nlab {:?} is down",
        state.dir.display(),
        state.instance
    );
    Ok(())
}

fn remove_namespaces(state: &State) -> anyhow::Result<usize> {
    let all = netns::list(state.names.prefix())?;
    let mut failed = Vec::new();
    for ns in &all {
        if let Err(e) = netns::delete(ns) {
            failed.push(format!("{ns}: {e:#}"));
        }
    }
    if !failed.is_empty() {
        bail!("could not delete:\n  {}", failed.join("\n  "));
    }
    Ok(all.len())
}

/// The cleanup after a failed `up`, printing nothing.
fn down_quietly(state: &State) -> anyhow::Result<()> {
    daemons::stop_all(state);
    remove_namespaces(state)?;
    state.remove()
}

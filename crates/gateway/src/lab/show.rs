//! What the lab prints: the summary after `lab up`, each network's route
//! table with where each route came from (`lab routes`), and `lab status`.
//! Route rows are the engine's own `Display`, so the lab and the policy
//! crate's tests read the same.

use std::fmt::Write as _;

use anyhow::bail;
use ipsecgw_policy::cen::{Cen, EffectiveRoute};

use super::daemons;
use super::netns;
use super::routes::{self, Op};
use super::spec::{OnpremRoutes, Spec};
use super::state::{Record, Role, State};
use crate::dataplane::stats::IkeSaView;

/// The short role of a namespace name, for tables (`r-east`).
fn short<'a>(state: &State, ns: &'a str) -> &'a str {
    ns.strip_prefix(state.names.prefix()).unwrap_or(ns)
}

fn variant_text(v: OnpremRoutes) -> &'static str {
    match v {
        OnpremRoutes::PerVpc => "per-vpc: each VPC's block -> VPN gateway",
        OnpremRoutes::Default => "default: 0.0.0.0/0 -> VPN gateway",
    }
}

/// One line about an IKE SA and its CHILD SAs.
fn sa_line(sa: &IkeSaView) -> String {
    let children: Vec<String> = sa
        .children
        .iter()
        .map(|c| format!("{} <-> {}", c.local_ts.join(","), c.remote_ts.join(",")))
        .collect();
    format!(
        "IKE SA {} {} -> {} ({}), CHILD SA {}",
        sa.state,
        sa.local,
        sa.remote,
        sa.proposal.as_deref().unwrap_or("?"),
        children.join("; ")
    )
}

/// What `lab up` prints once the tunnel is up.
pub fn summary(state: &State, spec: &Spec, sa: &IkeSaView) {
    let names = &state.names;
    let mut o = String::new();
    let count = names.all(spec).len();
    let _ = writeln!(
        o,
        "lab {:?} is up: {count} namespaces named {}*, state in {}\n",
        state.instance,
        names.prefix(),
        state.dir.display()
    );
    let _ = writeln!(
        o,
        "  {:<12} {:<12} {:<18} {:<16} {:<16} namespaces",
        "network", "kind", "CIDR", "host", "router"
    );
    let dc = &spec.datacenter;
    let _ = writeln!(
        o,
        "  {:<12} {:<12} {:<18} {:<16} {:<16} {}, {} (customer gateway)",
        dc.name,
        dc.label,
        dc.cidr.to_string(),
        dc.host.to_string(),
        dc.gateway.to_string(),
        short(state, &names.host(&dc.name)),
        short(state, &names.cpe()),
    );
    for (i, v) in spec.vpcs.iter().enumerate() {
        let mut extra = String::new();
        if i == spec.vpn.vpc {
            extra = format!(
                ", {} (VPN gateway {} at {})",
                short(state, &names.vpngw()),
                spec.vpn.id,
                spec.vpn.lan
            );
        }
        let _ = writeln!(
            o,
            "  {:<12} {:<12} {:<18} {:<16} {:<16} {}, {}{extra}",
            v.name,
            "VPC",
            v.cidr.to_string(),
            v.host.to_string(),
            v.router.to_string(),
            short(state, &names.router(&v.name)),
            short(state, &names.host(&v.name)),
        );
    }
    let links: Vec<String> = spec
        .vpcs
        .iter()
        .map(|v| format!("{} {}", v.name, v.link))
        .collect();
    let _ = writeln!(
        o,
        "\n  CEN {}: router {} linked to each VPC router ({})",
        spec.cen,
        short(state, &names.cen()),
        links.join(", ")
    );
    let _ = writeln!(
        o,
        "  WAN {}: customer gateway {} <-> VPN gateway {}",
        spec.vpn.wan_net, spec.vpn.cpe_wan, spec.vpn.wan
    );
    let _ = writeln!(o, "  {}", sa_line(sa));
    let _ = writeln!(
        o,
        "  on-premises routes: {}",
        variant_text(spec.onprem_routes)
    );
    if let Ok(vpc) = spec.vpn_vpc() {
        let _ = writeln!(
            o,
            "  {}: custom route {} -> VPN gateway {}, not published to CEN",
            vpc.name,
            dc.cidr.trunc(),
            spec.vpn.id
        );
        let flags = state.cli_flags();
        let _ = writeln!(
            o,
            "\nnext:\n  ipsecgw lab routes {flags}\n  ipsecgw lab ping {} {} {flags}\n  ipsecgw lab publish {} {} {flags}\n  ipsecgw lab down {flags}",
            spec.vpcs.first().map(|v| v.name.as_str()).unwrap_or_default(),
            dc.name,
            vpc.name,
            dc.cidr.trunc()
        );
    }
    print!("{o}");
}

/// Rows of one table: the engine's text, then where the route came from,
/// aligned.
fn rows(o: &mut String, routes: &[EffectiveRoute], origin: impl Fn(&EffectiveRoute) -> String) {
    let texts: Vec<String> = routes.iter().map(ToString::to_string).collect();
    let width = texts.iter().map(String::len).max().unwrap_or(0);
    for (text, r) in texts.iter().zip(routes) {
        let _ = writeln!(o, "  {text:<width$}   {}", origin(r));
    }
}

/// `ip -4 route` of a namespace, indented, for `--kernel`.
fn kernel(o: &mut String, ns: &str) {
    let _ = writeln!(o, "  kernel table of {ns}:");
    match netns::ip_in(ns, &["-4", "route", "show"]) {
        Ok(text) => {
            for line in text.lines() {
                let _ = writeln!(o, "    {line}");
            }
        }
        Err(e) => {
            let _ = writeln!(o, "    ({e:#})");
        }
    }
}

/// `lab routes [NETWORK]`: each network's effective table and the CEN's.
pub fn routes(
    state: &State,
    spec: &Spec,
    cen: &Cen,
    only: Option<&str>,
    with_kernel: bool,
) -> anyhow::Result<String> {
    if let Some(name) = only {
        if name != "cen" && !spec.network_names().contains(&name) {
            bail!(
                "no network named {name:?} in this lab: use one of {} (or cen for the CEN's table)",
                spec.network_names().join(", ")
            );
        }
    }
    let wanted = |n: &str| only.is_none_or(|o| o == n);
    let mut o = String::new();
    let dc = &spec.datacenter;
    if wanted(&dc.name) {
        let _ = writeln!(
            o,
            "{} (on-premises {}; routes {}):",
            dc.name,
            dc.cidr.trunc(),
            variant_text(spec.onprem_routes)
        );
        rows(&mut o, &routes::onprem_routes(spec), |r| {
            if r.next_hop == ipsecgw_policy::cen::NextHop::System {
                "connected LAN".into()
            } else {
                "on-premises route, into the IPsec tunnel".into()
            }
        });
        if with_kernel {
            kernel(&mut o, &state.names.cpe());
        }
        o.push('\n');
    }
    for v in &spec.vpcs {
        if !wanted(&v.name) {
            continue;
        }
        let _ = writeln!(o, "{} (VPC {}, {}):", v.name, v.cidr.trunc(), v.label);
        rows(&mut o, &cen.routes(&v.name)?, routes::origin);
        for r in cen.rejected(&v.name)? {
            let _ = writeln!(o, "  not installed: {r}");
        }
        if with_kernel {
            kernel(&mut o, &state.names.router(&v.name));
        }
        o.push('\n');
    }
    if wanted("cen") || only.is_none() {
        let _ = writeln!(o, "CEN {} (published routes):", cen.name());
        let published = cen.published();
        if published.is_empty() {
            let _ = writeln!(o, "  (none)");
        }
        for p in published {
            let _ = writeln!(o, "  {p}");
        }
        if with_kernel {
            kernel(&mut o, &state.names.cen());
        }
    }
    Ok(o)
}

/// `lab status`: what runs, the tunnel, the route operations. Fails when
/// part of the lab is missing (a namespace gone, a gateway dead, no SA).
pub async fn status(
    state: &State,
    record: &Record,
    spec: &Spec,
    cen: &Cen,
    ops: &[Op],
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lab {:?}: spec {}, CEN {}, on-premises routes {}\n  state dir {}",
        state.instance,
        record.spec_origin.display(),
        spec.cen,
        spec.onprem_routes,
        state.dir.display()
    );
    let expected = state.names.all(spec);
    let present = netns::list(state.names.prefix())?;
    let missing: Vec<&String> = expected.iter().filter(|n| !present.contains(n)).collect();
    let _ = writeln!(
        o,
        "  namespaces: {} of {} present ({}*)",
        expected.len() - missing.len(),
        expected.len(),
        state.names.prefix()
    );
    if !missing.is_empty() {
        problems.push(format!(
            "missing namespaces: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for role in [Role::Cpe, Role::VpnGateway] {
        let socket = state.socket(role);
        let Some(pid) = daemons::running_pid(state, role) else {
            let _ = writeln!(o, "  {}: not running", role.title());
            problems.push(format!("the {} is not running", role.title()));
            continue;
        };
        let line = match daemons::status(state, role).await {
            Ok(st) => match daemons::established(&st) {
                Some(sa) => sa_line(sa),
                None => {
                    problems.push(format!("the {} has no established SA", role.title()));
                    "no established IKE SA".into()
                }
            },
            Err(e) => {
                problems.push(format!("the {} does not answer", role.title()));
                format!("{e:#}")
            }
        };
        let _ = writeln!(
            o,
            "  {} (pid {pid}, ipsecgw status --socket {}):\n    {line}",
            role.title(),
            socket.display()
        );
    }
    let _ = writeln!(o, "  route operations since up: {}", ops.len());
    for op in ops {
        let _ = writeln!(o, "    {op}");
    }
    let _ = writeln!(o, "  published to CEN {}:", cen.name());
    for p in cen.published() {
        let _ = writeln!(o, "    {p}");
    }
    print!("{o}");
    if !problems.is_empty() {
        bail!(
            "lab {:?} is degraded: {}",
            state.instance,
            problems.join("; ")
        );
    }
    Ok(())
}

//! The lab's routes: the CEN route engine rebuilt from the spec and the log
//! of route operations, and the kernel route table each namespace should
//! hold as a result.
//!
//! The engine ([`ipsecgw_policy::cen::Cen`]) is the only place that decides
//! who learns what; this module only translates its effective tables into
//! next hops the namespaces can reach:
//!
//! - a VPC router's system route is its connected LAN (nothing to add);
//! - a custom route to the VPN gateway goes via the gateway's LAN address,
//!   one to an ECS instance via the VPC's host;
//! - a learned route goes via the CEN router's address on the VPC's link;
//! - the CEN router holds the active published routes, each via the
//!   publishing VPC router's link address;
//! - hosts and the VPN gateway default to their router, and the customer
//!   gateway routes the on-premises route variant into its TUN device.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context};
use ipnet::{IpNet, Ipv4Net};
use ipsecgw_policy::cen::{
    Cen, EffectiveRoute, NetworkKind, NextHop, PublishStatus, RouteOrigin, RouteType,
};

use super::spec::{OnpremRoutes, Spec};
use super::topology::{Names, TUN_IF};

/// What a route added with `lab route-add` points at. Only next hops that
/// exist in the lab can be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HopKind {
    /// The VPC's VPN gateway (only in the VPC that has it).
    VpnGateway,
    /// The VPC's host, standing in for an ECS instance.
    EcsInstance,
}

impl fmt::Display for HopKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VpnGateway => "vpn-gateway",
            Self::EcsInstance => "ecs-instance",
        })
    }
}

/// One route operation on the running lab, as logged in its state dir and
/// replayed into a fresh [`Cen`] by every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// PublishRouteEntries.
    Publish {
        /// The VPC.
        network: String,
        /// The route's destination.
        destination: IpNet,
    },
    /// WithdrawPublishedRouteEntries.
    Withdraw {
        /// The VPC.
        network: String,
        /// The route's destination.
        destination: IpNet,
    },
    /// A custom route added to a VPC.
    RouteAdd {
        /// The VPC.
        network: String,
        /// The route's destination.
        destination: IpNet,
        /// Where it points.
        next_hop: HopKind,
    },
    /// A custom route deleted from a VPC (and so from the CEN).
    RouteDelete {
        /// The VPC.
        network: String,
        /// The route's destination.
        destination: IpNet,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Publish {
                network,
                destination,
            } => write!(f, "publish {network} {destination}"),
            Self::Withdraw {
                network,
                destination,
            } => write!(f, "withdraw {network} {destination}"),
            Self::RouteAdd {
                network,
                destination,
                next_hop,
            } => write!(f, "route-add {network} {destination} {next_hop}"),
            Self::RouteDelete {
                network,
                destination,
            } => write!(f, "route-delete {network} {destination}"),
        }
    }
}

impl FromStr for Op {
    type Err = anyhow::Error;

    /// Parses a line of the operations log (what `Display` wrote).
    fn from_str(line: &str) -> anyhow::Result<Self> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let net = |i: usize| -> anyhow::Result<IpNet> {
            words
                .get(i)
                .context("missing destination")?
                .parse()
                .map_err(|e| anyhow!("{e}"))
        };
        let name = || {
            words
                .get(1)
                .map(|s| (*s).to_owned())
                .context("missing network")
        };
        Ok(match words.first().copied() {
            Some("publish") => Self::Publish {
                network: name()?,
                destination: net(2)?,
            },
            Some("withdraw") => Self::Withdraw {
                network: name()?,
                destination: net(2)?,
            },
            Some("route-delete") => Self::RouteDelete {
                network: name()?,
                destination: net(2)?,
            },
            Some("route-add") => Self::RouteAdd {
                network: name()?,
                destination: net(2)?,
                next_hop: match words.get(3).copied() {
                    Some("vpn-gateway") => HopKind::VpnGateway,
                    Some("ecs-instance") => HopKind::EcsInstance,
                    other => bail!("unknown next hop {other:?}"),
                },
            },
            other => bail!("unknown operation {other:?}"),
        })
    }
}

impl Op {
    /// Applies the operation to the engine; on error the CEN is unchanged.
    pub fn apply(&self, spec: &Spec, cen: &mut Cen) -> anyhow::Result<()> {
        match self {
            Self::Publish {
                network,
                destination,
            } => {
                vpc_name(spec, network)?;
                cen.publish(network, *destination)?;
            }
            Self::Withdraw {
                network,
                destination,
            } => {
                vpc_name(spec, network)?;
                cen.withdraw(network, *destination)?;
            }
            Self::RouteDelete {
                network,
                destination,
            } => {
                vpc_name(spec, network)?;
                cen.delete_route(network, *destination)?;
            }
            Self::RouteAdd {
                network,
                destination,
                next_hop,
            } => {
                vpc_name(spec, network)?;
                if !destination.addr().is_ipv4() {
                    bail!("{destination}: the lab is IPv4-only");
                }
                let hop = match next_hop {
                    HopKind::VpnGateway => {
                        let vpn_vpc = spec.vpn_vpc()?;
                        if vpn_vpc.name != *network {
                            bail!(
                                "VPC {network} has no VPN gateway: the lab's VPN gateway {} is in VPC {}",
                                spec.vpn.id,
                                vpn_vpc.name
                            );
                        }
                        NextHop::VpnGateway(spec.vpn.id.clone())
                    }
                    HopKind::EcsInstance => NextHop::EcsInstance(ecs_id(network)),
                };
                cen.add_route(network, *destination, hop)?;
            }
        }
        Ok(())
    }
}

/// The id the lab gives a VPC's host when a route points at it.
fn ecs_id(vpc: &str) -> String {
    format!("{vpc}-host")
}

/// Checks that `name` is a VPC of the lab, the only networks CEN commands
/// act on, with a message saying what the name is otherwise.
pub fn vpc_name(spec: &Spec, name: &str) -> anyhow::Result<()> {
    if spec.vpc(name).is_some() {
        return Ok(());
    }
    let vpcs: Vec<&str> = spec.vpcs.iter().map(|v| v.name.as_str()).collect();
    if name == spec.datacenter.name {
        bail!(
            "{name} is the on-premises data center, which reaches the cloud through the VPN gateway and is not attached to the CEN; its routes are the on-premises variant chosen at `lab up --onprem-routes` ({}). Route commands act on the VPCs: {}",
            spec.onprem_routes,
            vpcs.join(", ")
        );
    }
    bail!(
        "no network named {name:?} in this lab: the VPCs are {} (and {} is the data center)",
        vpcs.join(", "),
        spec.datacenter.name
    )
}

/// A destination given on the command line: a CIDR block, or the name of a
/// network meaning its block (`lab publish east office`).
pub fn parse_destination(spec: &Spec, text: &str) -> anyhow::Result<IpNet> {
    if let Some(cidr) = spec.cidr_of(text) {
        return Ok(IpNet::V4(cidr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        anyhow!(
            "{text:?} is neither a CIDR block (such as {}) nor a network of this lab ({})",
            spec.datacenter.cidr,
            spec.network_names().join(", ")
        )
    })?;
    if net.trunc() != net {
        bail!("{net} has host bits set: did you mean {}?", net.trunc());
    }
    Ok(net)
}

/// The CEN as `lab up` leaves it: every VPC attached with its block (their
/// system routes published, as by default), and the VPN gateway's VPC with
/// its custom route to the data center through the gateway, not published
/// (the seed's starting point).
pub fn base_cen(spec: &Spec) -> anyhow::Result<Cen> {
    let mut cen = Cen::new(spec.cen.clone());
    for v in &spec.vpcs {
        cen.attach(&v.name, NetworkKind::Vpc, &[IpNet::V4(v.cidr)])?;
    }
    let vpn_vpc = spec.vpn_vpc()?;
    cen.add_route(
        &vpn_vpc.name,
        IpNet::V4(spec.datacenter.cidr.trunc()),
        NextHop::VpnGateway(spec.vpn.id.clone()),
    )?;
    Ok(cen)
}

/// The base CEN with `ops` applied in order.
pub fn replay(spec: &Spec, ops: &[Op]) -> anyhow::Result<Cen> {
    let mut cen = base_cen(spec)?;
    for (i, op) in ops.iter().enumerate() {
        op.apply(spec, &mut cen).with_context(|| {
            format!(
                "the lab's route log no longer replays (operation {} `{op}`)",
                i + 1
            )
        })?;
    }
    Ok(cen)
}

/// Where a kernel route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Via a gateway on a connected network.
    Via(Ipv4Addr),
    /// Into a device (the gateways' TUN).
    Dev(String),
}

/// A route the lab wants in a namespace's main table. Written on the
/// command line of `lab netns-apply` as `DEST=via:ADDR` or `DEST=dev:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Want {
    /// Host bits cleared.
    pub destination: Ipv4Net,
    /// Next hop.
    pub target: Target,
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Via(gw) => write!(f, "{}=via:{gw}", self.destination),
            Target::Dev(dev) => write!(f, "{}=dev:{dev}", self.destination),
        }
    }
}

impl FromStr for Want {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (dest, target) = s
            .split_once('=')
            .with_context(|| format!("{s:?}: expected DEST=via:ADDR or DEST=dev:NAME"))?;
        let destination: Ipv4Net = dest.parse().map_err(|e| anyhow!("{dest}: {e}"))?;
        let target = match target.split_once(':') {
            Some(("via", gw)) => Target::Via(gw.parse().map_err(|e| anyhow!("{gw}: {e}"))?),
            Some(("dev", dev)) if !dev.is_empty() => Target::Dev(dev.to_owned()),
            _ => bail!("{s:?}: expected DEST=via:ADDR or DEST=dev:NAME"),
        };
        Ok(Self {
            destination: destination.trunc(),
            target,
        })
    }
}

fn default_via(gw: Ipv4Addr) -> Want {
    Want {
        destination: Ipv4Net::default(),
        target: Target::Via(gw),
    }
}

fn v4(net: IpNet) -> anyhow::Result<Ipv4Net> {
    match net {
        IpNet::V4(n) => Ok(n),
        IpNet::V6(n) => bail!("{n}: the lab is IPv4-only"),
    }
}

/// The kernel table every namespace of the lab should hold, given the
/// engine's state: `(namespace, routes)`.
pub fn kernel_tables(
    spec: &Spec,
    names: &Names,
    cen: &Cen,
) -> anyhow::Result<Vec<(String, Vec<Want>)>> {
    let vpn_vpc = spec.vpn_vpc()?;
    let mut tables = vec![
        (
            names.host(&spec.datacenter.name),
            vec![default_via(spec.datacenter.gateway)],
        ),
        (names.cpe(), onprem_table(spec)),
        (names.vpngw(), vec![default_via(vpn_vpc.router)]),
    ];
    for (i, v) in spec.vpcs.iter().enumerate() {
        tables.push((names.host(&v.name), vec![default_via(v.router)]));
        let mut table = Vec::new();
        for r in cen.routes(&v.name)? {
            let target = match (&r.origin, &r.next_hop) {
                (RouteOrigin::Learned { .. }, _) => Target::Via(v.link_cen),
                (RouteOrigin::Own { .. }, NextHop::System) => continue,
                (RouteOrigin::Own { .. }, NextHop::VpnGateway(_)) if i == spec.vpn.vpc => {
                    Target::Via(spec.vpn.lan)
                }
                (RouteOrigin::Own { .. }, NextHop::EcsInstance(_)) => Target::Via(v.host),
                (RouteOrigin::Own { .. }, hop) => bail!(
                    "VPC {}: the lab has nothing to stand in for the next hop {hop} of {}",
                    v.name,
                    r.destination
                ),
            };
            table.push(Want {
                destination: v4(r.destination)?,
                target,
            });
        }
        tables.push((names.router(&v.name), table));
    }
    let mut cen_table = Vec::new();
    for p in cen.published() {
        if p.status != PublishStatus::Active {
            continue;
        }
        let v = spec
            .vpc(&p.network)
            .with_context(|| format!("the CEN names an unknown network {}", p.network))?;
        cen_table.push(Want {
            destination: v4(p.destination)?,
            target: Target::Via(v.link_vpc),
        });
    }
    tables.push((names.cen(), cen_table));
    Ok(tables)
}

/// The on-premises route configuration of the seed: each VPC block, or one
/// default route, to the VPN gateway (into the customer gateway's tunnel).
fn onprem_table(spec: &Spec) -> Vec<Want> {
    let dev = || Target::Dev(TUN_IF.to_owned());
    match spec.onprem_routes {
        OnpremRoutes::PerVpc => spec
            .vpcs
            .iter()
            .map(|v| Want {
                destination: v.cidr.trunc(),
                target: dev(),
            })
            .collect(),
        OnpremRoutes::Default => vec![Want {
            destination: Ipv4Net::default(),
            target: dev(),
        }],
    }
}

/// The data center's route table in the engine's terms, for printing next
/// to the VPCs': its LAN, and the variant's routes to the VPN gateway.
pub fn onprem_routes(spec: &Spec) -> Vec<EffectiveRoute> {
    let mut routes = vec![EffectiveRoute {
        destination: IpNet::V4(spec.datacenter.cidr.trunc()),
        next_hop: NextHop::System,
        route_type: RouteType::VpcSystem,
        origin: RouteOrigin::Own { published: false },
    }];
    routes.extend(onprem_table(spec).into_iter().map(|w| EffectiveRoute {
        destination: IpNet::V4(w.destination),
        next_hop: NextHop::VpnGateway(spec.vpn.id.clone()),
        route_type: RouteType::VpnGateway,
        origin: RouteOrigin::Own { published: false },
    }));
    routes
}

/// Where a route of a VPC's table came from, for the `lab routes` column.
pub fn origin(route: &EffectiveRoute) -> String {
    match &route.origin {
        RouteOrigin::Own { published: true } => "own, published to CEN".into(),
        RouteOrigin::Own { published: false } if route.route_type == RouteType::VpcSystem => {
            "own, withdrawn from CEN".into()
        }
        RouteOrigin::Own { published: false } => "own, not published".into(),
        RouteOrigin::Learned { .. } => "learned from CEN".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
cen = "corp"
onprem_routes = "per-vpc"
transit = "100.100.0.0/28"
wan = "203.0.113.0/29"
[datacenter]
name = "office"
cidr = "10.20.0.0/24"
host = "10.20.0.10"
[vpn_gateway]
name = "vpn-west"
vpc = "west"
[[vpc]]
name = "east"
cidr = "172.16.1.0/24"
[[vpc]]
name = "west"
cidr = "172.16.2.0/24"
"#;

    fn table(tables: &[(String, Vec<Want>)], ns: &str) -> Vec<String> {
        tables
            .iter()
            .find(|(n, _)| n == ns)
            .map(|(_, t)| t.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn publishing_the_vpn_route_reaches_the_other_vpcs_kernel_tables() {
        let spec = Spec::parse(SPEC).unwrap();
        let names = Names::new("t").unwrap();
        let cen = base_cen(&spec).unwrap();
        let t = kernel_tables(&spec, &names, &cen).unwrap();
        assert_eq!(
            table(&t, &names.router("west")),
            [
                "10.20.0.0/24=via:172.16.2.2",
                "172.16.1.0/24=via:100.100.0.5"
            ]
        );
        assert_eq!(
            table(&t, &names.router("east")),
            ["172.16.2.0/24=via:100.100.0.1"]
        );
        assert_eq!(
            table(&t, &names.cen()),
            [
                "172.16.1.0/24=via:100.100.0.2",
                "172.16.2.0/24=via:100.100.0.6"
            ]
        );
        assert_eq!(
            table(&t, &names.cpe()),
            ["172.16.1.0/24=dev:ipsgw0", "172.16.2.0/24=dev:ipsgw0"]
        );

        let ops: Vec<Op> = ["publish west 10.20.0.0/24"]
            .iter()
            .map(|l| l.parse().unwrap())
            .collect();
        let cen = replay(&spec, &ops).unwrap();
        let t = kernel_tables(&spec, &names, &cen).unwrap();
        assert_eq!(
            table(&t, &names.router("east")),
            [
                "10.20.0.0/24=via:100.100.0.1",
                "172.16.2.0/24=via:100.100.0.1"
            ]
        );
        assert!(table(&t, &names.cen()).contains(&"10.20.0.0/24=via:100.100.0.6".to_owned()));

        let ops: Vec<Op> = [
            "publish west 10.20.0.0/24",
            "route-delete west 10.20.0.0/24",
        ]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
        let cen = replay(&spec, &ops).unwrap();
        let t = kernel_tables(&spec, &names, &cen).unwrap();
        assert_eq!(
            table(&t, &names.router("west")),
            ["172.16.1.0/24=via:100.100.0.5"]
        );
        assert_eq!(
            table(&t, &names.router("east")),
            ["172.16.2.0/24=via:100.100.0.1"]
        );
    }

    #[test]
    fn ops_round_trip_and_bad_ones_say_why() {
        let spec = Spec::parse(SPEC).unwrap();
        for line in [
            "publish west 10.20.0.0/24",
            "withdraw west 10.20.0.0/24",
            "route-add east 10.30.0.0/16 ecs-instance",
            "route-delete west 10.20.0.0/24",
        ] {
            assert_eq!(line.parse::<Op>().unwrap().to_string(), line);
        }
        let mut cen = base_cen(&spec).unwrap();
        let err = |op: &str, cen: &mut Cen| {
            format!(
                "{:#}",
                op.parse::<Op>().unwrap().apply(&spec, cen).unwrap_err()
            )
        };
        assert!(err("publish north 10.20.0.0/24", &mut cen).contains("no network named"));
        assert!(err("publish office 10.20.0.0/24", &mut cen).contains("not attached to the CEN"));
        assert!(err("publish east 10.20.0.0/24", &mut cen).contains("no route"));
        assert!(err("route-add east 10.30.0.0/16 vpn-gateway", &mut cen).contains("no VPN gateway"));
        assert_eq!(
            parse_destination(&spec, "office").unwrap().to_string(),
            "10.20.0.0/24"
        );
        assert!(parse_destination(&spec, "10.20.0.1/24").is_err());
        assert_eq!(
            "0.0.0.0/0=dev:ipsgw0".parse::<Want>().unwrap().target,
            Target::Dev("ipsgw0".into())
        );
    }
}

//! The lab spec: a TOML file naming the networks of the topology to build
//! (the on-premises data center, the VPCs, which VPC hosts the VPN gateway,
//! the on-premises route variant) and the transit and WAN blocks that join
//! them. Every address the lab uses comes from here or is derived from it,
//! so the same code builds the seed document's network or any other.
//!
//! ```toml
//! cen = "cen-seed"            # the CEN instance's name
//! onprem_routes = "per-vpc"   # or "default": 0.0.0.0/0 to the VPN gateway
//! transit = "100.64.0.0/24"   # carved into a /30 per VPC router <-> CEN router
//! wan = "203.0.113.0/29"      # customer gateway: 1st host, VPN gateway: 2nd
//!
//! [datacenter]
//! name = "datacenter"
//! cidr = "10.20.0.0/24"
//! host = "10.20.0.10"         # optional (default: the last usable address)
//!
//! [vpn_gateway]
//! name = "vpn-east"           # its id, the next hop the VPC's route names
//! vpc = "east"
//!
//! [[vpc]]
//! name = "east"
//! region = "East"             # optional label
//! cidr = "172.16.1.0/24"
//! ```
//!
//! A VPC's router takes the first usable address of its block, the VPN
//! gateway the second in its VPC, the hosts the address given or the last
//! usable one. The lab is IPv4-only, like most VPC address plans.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Longest network name: the namespace names embed it.
const MAX_NETWORK_NAME: usize = 12;

/// How the on-premises data center routes to the cloud (the seed's two
/// route tables): one route per VPC block, or one default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnpremRoutes {
    /// Each VPC's CIDR block → VPN gateway.
    PerVpc,
    /// 0.0.0.0/0 → VPN gateway.
    Default,
}

impl fmt::Display for OnpremRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PerVpc => "per-vpc",
            Self::Default => "default",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    cen: String,
    onprem_routes: OnpremRoutes,
    transit: Ipv4Net,
    wan: Ipv4Net,
    datacenter: NetworkSection,
    vpn_gateway: VpnGatewaySection,
    #[serde(default)]
    vpc: Vec<NetworkSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    name: String,
    #[serde(default)]
    region: Option<String>,
    cidr: Ipv4Net,
    #[serde(default)]
    host: Option<Ipv4Addr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VpnGatewaySection {
    name: String,
    vpc: String,
}

/// The on-premises data center: its LAN, the customer gateway's address on
/// it, and its host.
#[derive(Debug, Clone)]
pub struct DataCenter {
    /// The network's name in lab commands.
    pub name: String,
    /// Free-text label.
    pub label: String,
    /// Its LAN.
    pub cidr: Ipv4Net,
    /// The customer gateway's LAN address (the hosts' default gateway).
    pub gateway: Ipv4Addr,
    /// The host that pings and answers.
    pub host: Ipv4Addr,
}

/// One VPC: its block, its router, its host and its link to the CEN router.
#[derive(Debug, Clone)]
pub struct Vpc {
    /// The network's name in lab commands and in the CEN.
    pub name: String,
    /// Free-text label (the region).
    pub label: String,
    /// Its CIDR block.
    pub cidr: Ipv4Net,
    /// The VPC router's LAN address.
    pub router: Ipv4Addr,
    /// The host (an ECS instance, in the cloud's terms).
    pub host: Ipv4Addr,
    /// The /30 between this VPC's router and the CEN router.
    pub link: Ipv4Net,
    /// The CEN router's address on that link.
    pub link_cen: Ipv4Addr,
    /// The VPC router's address on that link.
    pub link_vpc: Ipv4Addr,
}

/// The VPN gateway and the customer gateway it talks to.
#[derive(Debug, Clone)]
pub struct VpnGateway {
    /// Its id: the next hop of the VPC's custom route.
    pub id: String,
    /// Index into [`Spec::vpcs`] of the VPC it fronts.
    pub vpc: usize,
    /// Its address on that VPC's LAN.
    pub lan: Ipv4Addr,
    /// Its WAN (public) address.
    pub wan: Ipv4Addr,
    /// The customer gateway's WAN address.
    pub cpe_wan: Ipv4Addr,
    /// The WAN block both sit on.
    pub wan_net: Ipv4Net,
}

/// A validated spec: every address resolved.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The CEN instance's name.
    pub cen: String,
    /// The on-premises route variant.
    pub onprem_routes: OnpremRoutes,
    /// The data center.
    pub datacenter: DataCenter,
    /// The VPCs, in spec order.
    pub vpcs: Vec<Vpc>,
    /// The VPN gateway (and the customer gateway's WAN address).
    pub vpn: VpnGateway,
}

impl Spec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lab spec {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("lab spec {}", path.display()))
    }

    /// Validates spec text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: SpecFile = toml::from_str(text)?;
        if file.cen.trim().is_empty() {
            bail!("cen: give the CEN instance a name");
        }
        let datacenter = {
            let s = &file.datacenter;
            check_name(&s.name, "datacenter.name")?;
            let (gateway, host) = router_and_host(&s.name, s.cidr, s.host, 1)?;
            DataCenter {
                name: s.name.clone(),
                label: s.region.clone().unwrap_or_else(|| "on-premises".into()),
                cidr: s.cidr,
                gateway,
                host,
            }
        };
        if file.vpc.is_empty() {
            bail!("add at least one [[vpc]]");
        }
        let links = transit_links(file.transit, file.vpc.len())?;
        let Some(vpn_index) = file.vpc.iter().position(|v| v.name == file.vpn_gateway.vpc) else {
            bail!(
                "vpn_gateway.vpc = {:?} names no [[vpc]]: use one of {:?}",
                file.vpn_gateway.vpc,
                file.vpc.iter().map(|v| v.name.as_str()).collect::<Vec<_>>()
            );
        };
        let mut vpcs = Vec::new();
        for (i, (s, link)) in file.vpc.iter().zip(links).enumerate() {
            check_name(&s.name, "vpc.name")?;
            if s.name == datacenter.name || vpcs.iter().any(|v: &Vpc| v.name == s.name) {
                bail!(
                    "vpc.name {:?} is used twice: give each network its own name",
                    s.name
                );
            }
            // The router takes the first address; in the VPN gateway's VPC
            // the gateway takes the second.
            let taken = if i == vpn_index { 2 } else { 1 };
            let (router, host) = router_and_host(&s.name, s.cidr, s.host, taken)?;
            let mut hosts = link.hosts();
            let (Some(link_cen), Some(link_vpc)) = (hosts.next(), hosts.next()) else {
                bail!("transit link {link} has no room for two addresses");
            };
            vpcs.push(Vpc {
                name: s.name.clone(),
                label: s.region.clone().unwrap_or_else(|| s.name.clone()),
                cidr: s.cidr,
                router,
                host,
                link,
                link_cen,
                link_vpc,
            });
        }
        let id = file.vpn_gateway.name.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("vpn_gateway.name {id:?}: use letters, digits, '-' and '_'");
        }
        let vpn = {
            let v = vpcs
                .get(vpn_index)
                .context("the VPN gateway's VPC went missing")?;
            let lan = v
                .cidr
                .hosts()
                .nth(1)
                .with_context(|| format!("VPC {} has no room for the VPN gateway", v.name))?;
            let mut wan_hosts = file.wan.trunc().hosts();
            let (Some(cpe_wan), Some(wan)) = (wan_hosts.next(), wan_hosts.next()) else {
                bail!(
                    "wan = {}: give a block with at least two usable addresses (customer gateway, VPN gateway), e.g. a /29",
                    file.wan
                );
            };
            VpnGateway {
                id: id.to_owned(),
                vpc: vpn_index,
                lan,
                wan,
                cpe_wan,
                wan_net: file.wan.trunc(),
            }
        };
        let spec = Self {
            cen: file.cen.trim().to_owned(),
            onprem_routes: file.onprem_routes,
            datacenter,
            vpcs,
            vpn,
        };
        spec.check_overlaps(file.transit.trunc())?;
        Ok(spec)
    }

    /// Every block must be disjoint from every other: the routes could not
    /// tell them apart otherwise.
    fn check_overlaps(&self, transit: Ipv4Net) -> anyhow::Result<()> {
        let mut blocks: Vec<(String, Ipv4Net)> = vec![
            (
                format!("datacenter {}", self.datacenter.name),
                self.datacenter.cidr.trunc(),
            ),
            ("transit".into(), transit),
            ("wan".into(), self.vpn.wan_net),
        ];
        blocks.extend(
            self.vpcs
                .iter()
                .map(|v| (format!("vpc {}", v.name), v.cidr.trunc())),
        );
        for (i, (a_name, a)) in blocks.iter().enumerate() {
            for (b_name, b) in blocks.iter().skip(i + 1) {
                if a.contains(b) || b.contains(a) {
                    bail!("{a_name} ({a}) overlaps {b_name} ({b}): give every network its own address block");
                }
            }
        }
        Ok(())
    }

    /// The VPC that hosts the VPN gateway.
    pub fn vpn_vpc(&self) -> anyhow::Result<&Vpc> {
        self.vpcs
            .get(self.vpn.vpc)
            .context("the VPN gateway's VPC is missing")
    }

    /// A VPC by name.
    pub fn vpc(&self, name: &str) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| v.name == name)
    }

    /// The names of every network, the data center first.
    pub fn network_names(&self) -> Vec<&str> {
        std::iter::once(self.datacenter.name.as_str())
            .chain(self.vpcs.iter().map(|v| v.name.as_str()))
            .collect()
    }

    /// The host address of a network (data center or VPC), by name.
    pub fn host_of(&self, name: &str) -> Option<Ipv4Addr> {
        if name == self.datacenter.name {
            return Some(self.datacenter.host);
        }
        self.vpc(name).map(|v| v.host)
    }

    /// The CIDR block of a network, by name.
    pub fn cidr_of(&self, name: &str) -> Option<Ipv4Net> {
        if name == self.datacenter.name {
            return Some(self.datacenter.cidr.trunc());
        }
        self.vpc(name).map(|v| v.cidr.trunc())
    }
}

/// Network names go into namespace names and command lines: short, lower
/// case letters and digits.
fn check_name(name: &str, key: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NETWORK_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        bail!("{key} = {name:?}: use 1 to {MAX_NETWORK_NAME} lower-case letters and digits, starting with a letter");
    }
    Ok(())
}

/// The router's address (the block's first usable one) and the host's
/// (given, or the last usable one), checking the host is inside the block
/// and clear of the first `taken` addresses.
fn router_and_host(
    name: &str,
    cidr: Ipv4Net,
    host: Option<Ipv4Addr>,
    taken: usize,
) -> anyhow::Result<(Ipv4Addr, Ipv4Addr)> {
    if cidr.trunc() != cidr {
        bail!(
            "{name}: cidr {cidr} has host bits set: did you mean {}?",
            cidr.trunc()
        );
    }
    let usable: Vec<Ipv4Addr> = cidr.hosts().take(taken).collect();
    let last = cidr.hosts().last();
    let (Some(router), Some(last)) = (usable.first().copied(), last) else {
        bail!("{name}: {cidr} has no usable address");
    };
    let host = host.unwrap_or(last);
    if !cidr.contains(&host) || host == cidr.network() || host == cidr.broadcast() {
        bail!("{name}: host {host} is not a usable address of {cidr}");
    }
    if usable.len() < taken || usable.contains(&host) {
        bail!(
            "{name}: {cidr} needs room for the router{} and the host {host}: the first {taken} usable address(es) are taken",
            if taken > 1 { ", the VPN gateway" } else { "" }
        );
    }
    Ok((router, host))
}

/// One /30 per VPC, in order, from the start of `transit`.
fn transit_links(transit: Ipv4Net, count: usize) -> anyhow::Result<Vec<Ipv4Net>> {
    let transit = transit.trunc();
    if transit.prefix_len() > 30 {
        bail!("transit = {transit}: give a block of at least a /30 per VPC");
    }
    let links: Vec<Ipv4Net> = transit.subnets(30)?.take(count).collect();
    if links.len() < count {
        bail!(
            "transit = {transit} holds {} /30 link(s), but there are {count} VPCs: give a larger block",
            links.len()
        );
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
cen = "corp"
onprem_routes = "default"
transit = "100.100.0.0/28"
wan = "203.0.113.0/29"

[datacenter]
name = "office"
cidr = "10.20.0.0/24"

[vpn_gateway]
name = "vpn-west"
vpc = "west"

[[vpc]]
name = "east"
cidr = "172.16.1.0/24"
host = "172.16.1.10"

[[vpc]]
name = "west"
region = "West"
cidr = "172.16.2.0/24"
"#;

    #[test]
    fn derives_every_address_from_the_spec() {
        let s = Spec::parse(SPEC).unwrap();
        assert_eq!(s.onprem_routes, OnpremRoutes::Default);
        assert_eq!(s.datacenter.gateway.to_string(), "10.20.0.1");
        assert_eq!(s.datacenter.host.to_string(), "10.20.0.254");
        assert_eq!(s.vpcs[0].host.to_string(), "172.16.1.10");
        assert_eq!(s.vpcs[1].router.to_string(), "172.16.2.1");
        assert_eq!(s.vpn.lan.to_string(), "172.16.2.2");
        assert_eq!(s.vpcs[1].link.to_string(), "100.100.0.4/30");
        assert_eq!(s.vpcs[1].link_cen.to_string(), "100.100.0.5");
        assert_eq!(s.vpcs[1].link_vpc.to_string(), "100.100.0.6");
        assert_eq!(s.vpn.cpe_wan.to_string(), "203.0.113.1");
        assert_eq!(s.vpn.wan.to_string(), "203.0.113.2");
        assert_eq!(s.vpn_vpc().unwrap().name, "west");
    }

    #[test]
    fn bad_specs_are_refused_with_the_key_to_fix() {
        let cases = [
            (
                SPEC.replace("vpc = \"west\"", "vpc = \"north\""),
                "vpn_gateway.vpc",
            ),
            (SPEC.replace("172.16.2.0/24", "172.16.1.0/25"), "overlaps"),
            (SPEC.replace("100.100.0.0/28", "100.100.0.0/30"), "transit"),
            (
                SPEC.replace("name = \"east\"", "name = \"East-1\""),
                "vpc.name",
            ),
            (
                SPEC.replace("host = \"172.16.1.10\"", "host = \"172.16.1.1\""),
                "host",
            ),
            (SPEC.replace("\"default\"", "\"some\""), "onprem_routes"),
            (
                SPEC.replace("name = \"east\"", "name = \"office\""),
                "twice",
            ),
        ];
        for (text, needle) in cases {
            let e = format!("{:#}", Spec::parse(&text).unwrap_err());
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}

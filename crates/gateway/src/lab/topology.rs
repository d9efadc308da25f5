//! The lab's namespaces and cables: their names, the interface names inside
//! them, and the build that creates them with their addresses.
//!
//! ```text
//!  h-<dc> eth0 ── lan0 cpe wan0 ══ wan0 vpngw lan0 ─┐   (IKEv2/ESP over the WAN)
//!                                                    │
//!  h-<vpc> eth0 ── host0 ┐                           │
//!                        ├ lan0 (bridge) r-<vpc> ────┘ vpngw0 (its VPC only)
//!                        │  cen0 ── vpc<i> cen       (one /30 per VPC router)
//! ```
//!
//! Names are `ipsgwlab-<instance>-<role>`: unique per lab instance, and
//! distinct from the test harness's `ipsgw-<pid>-` namespaces so neither
//! cleans up the other's. Interface names are per namespace, so they are
//! short constants.

use anyhow::{bail, Context};

use super::netns;
use super::spec::Spec;

/// Prefix of every namespace a lab makes.
pub const NS_PREFIX: &str = "ipsgwlab-";
/// Longest instance name: keeps namespace names readable and bounded.
const MAX_INSTANCE: usize = 16;

/// A host's only interface.
pub const HOST_IF: &str = "eth0";
/// LAN side of a router or gateway (a bridge in VPC routers).
pub const LAN_IF: &str = "lan0";
/// WAN side of the two gateways.
pub const WAN_IF: &str = "wan0";
/// A VPC router's port towards its host.
pub const HOST_PORT: &str = "host0";
/// The VPN gateway VPC router's port towards the VPN gateway.
pub const VPNGW_PORT: &str = "vpngw0";
/// A VPC router's link to the CEN router.
pub const CEN_IF: &str = "cen0";
/// The TUN device of both gateways (one per namespace).
pub const TUN_IF: &str = "ipsgw0";

/// The namespace names of one lab instance.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// The names for `instance`, which must be 1–16 lower-case letters,
    /// digits or dashes.
    pub fn new(instance: &str) -> anyhow::Result<Self> {
        let ok = !instance.is_empty()
            && instance.len() <= MAX_INSTANCE
            && instance.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && instance
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            bail!("lab name {instance:?}: use 1 to {MAX_INSTANCE} lower-case letters, digits and dashes");
        }
        Ok(Self {
            prefix: format!("{NS_PREFIX}{instance}-"),
        })
    }

    /// `ipsgwlab-<instance>-`: every namespace of the lab starts with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The CEN router.
    pub fn cen(&self) -> String {
        format!("{}cen", self.prefix)
    }

    /// The customer gateway (on-premises, runs `ipsecgw run`).
    pub fn cpe(&self) -> String {
        format!("{}cpe", self.prefix)
    }

    /// The VPN gateway (cloud side, runs `ipsecgw run`).
    pub fn vpngw(&self) -> String {
        format!("{}vpngw", self.prefix)
    }

    /// A VPC's router.
    pub fn router(&self, vpc: &str) -> String {
        format!("{}r-{vpc}", self.prefix)
    }

    /// A network's host (a VPC's or the data center's).
    pub fn host(&self, network: &str) -> String {
        format!("{}h-{network}", self.prefix)
    }

    /// Every namespace of the lab, in build order.
    pub fn all(&self, spec: &Spec) -> Vec<String> {
        let mut all = vec![
            self.host(&spec.datacenter.name),
            self.cpe(),
            self.vpngw(),
            self.cen(),
        ];
        for v in &spec.vpcs {
            all.push(self.router(&v.name));
            all.push(self.host(&v.name));
        }
        all
    }
}

/// The CEN router's interface towards the `i`th VPC router.
pub fn cen_port(i: usize) -> String {
    format!("vpc{i}")
}

/// Creates every namespace and cable with its addresses. Routes come later,
/// from the route engine ([`super::routes`]), and the tunnel from the
/// gateways. On error, what was made stays for the caller to remove (it
/// knows the names).
pub fn build(spec: &Spec, names: &Names) -> anyhow::Result<()> {
    for ns in names.all(spec) {
        netns::add(&ns).with_context(|| format!("cannot create namespace {ns}"))?;
    }
    let dc = &spec.datacenter;
    let (dc_host, cpe, vpngw, cen) = (
        names.host(&dc.name),
        names.cpe(),
        names.vpngw(),
        names.cen(),
    );
    let dc_len = dc.cidr.prefix_len();
    netns::veth(&dc_host, HOST_IF, &cpe, LAN_IF)?;
    netns::address(&dc_host, HOST_IF, &format!("{}/{dc_len}", dc.host))?;
    netns::address(&cpe, LAN_IF, &format!("{}/{dc_len}", dc.gateway))?;

    let wan_len = spec.vpn.wan_net.prefix_len();
    netns::veth(&cpe, WAN_IF, &vpngw, WAN_IF)?;
    netns::address(&cpe, WAN_IF, &format!("{}/{wan_len}", spec.vpn.cpe_wan))?;
    netns::address(&vpngw, WAN_IF, &format!("{}/{wan_len}", spec.vpn.wan))?;

    for (i, v) in spec.vpcs.iter().enumerate() {
        let (router, host) = (names.router(&v.name), names.host(&v.name));
        let len = v.cidr.prefix_len();
        netns::veth(&router, HOST_PORT, &host, HOST_IF)?;
        netns::address(&host, HOST_IF, &format!("{}/{len}", v.host))?;
        let mut ports = vec![HOST_PORT];
        if i == spec.vpn.vpc {
            netns::veth(&router, VPNGW_PORT, &vpngw, LAN_IF)?;
            netns::address(&vpngw, LAN_IF, &format!("{}/{len}", spec.vpn.lan))?;
            ports.push(VPNGW_PORT);
        }
        netns::bridge(&router, LAN_IF, &ports)?;
        netns::address(&router, LAN_IF, &format!("{}/{len}", v.router))?;

        let port = cen_port(i);
        let link_len = v.link.prefix_len();
        netns::veth(&cen, &port, &router, CEN_IF)?;
        netns::address(&cen, &port, &format!("{}/{link_len}", v.link_cen))?;
        netns::address(&router, CEN_IF, &format!("{}/{link_len}", v.link_vpc))?;
    }
    Ok(())
}

//! Everything a state file must satisfy as a whole: one pass over the
//! model, run after parsing and after every mutation, so a create command
//! refuses exactly what a hand-edited file would be refused for.
//!
//! Items are checked in file order and each problem is reported at the
//! later of the items involved (the second of two duplicates, the
//! connection one past the limit): after a mutation that is the new item.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::connection::{IpsecConnection, DEFAULT_LIFETIME};
use super::error::ModelError;
use super::gateway::MAX_IFNAME;
use super::lines::Lines;
use super::route::{WEIGHT_ACTIVE, WEIGHT_STANDBY};
use super::Model;

/// Below this many seconds a lifetime would have the SA rekeyed all the
/// time; ipsecgw's device config refuses it too.
const MIN_LIFETIME: u64 = 10;
/// The longest name accepted.
const MAX_NAME: usize = 64;
/// The health check's ranges (those of ipsecgw's device config).
const HEALTH_INTERVAL: std::ops::RangeInclusive<u32> = 1..=60;
const HEALTH_RETRIES: std::ops::RangeInclusive<u32> = 1..=10;

/// Why `name` cannot name an item, if it cannot. Names become connection
/// and section names in device configs and swanctl.conf (where a `.` would
/// split the section), file names of control sockets and parts of
/// interface names, so they are kept plain.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    (!ok).then(|| {
        format!(
            "{name:?} is not a usable name: 1 to {MAX_NAME} letters, digits, '_' or '-', starting with a letter or digit"
        )
    })
}

/// Why `id` cannot be an IKE identity, if it cannot. The product takes an
/// IP address or an FQDN; characters that mean something in swanctl.conf
/// (quotes, `=` of a DN, `,` of a list) are refused.
pub(crate) fn identity_problem(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '=' | ','));
    (!ok).then(|| {
        format!(
            "{id:?} is not an identity: give an IP address or an FQDN such as \"cpe.example.com\""
        )
    })
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn inside(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

fn list(nets: &[IpNet]) -> String {
    let v: Vec<String> = nets.iter().map(ToString::to_string).collect();
    v.join(", ")
}

impl Model {
    /// Checks the whole model; the first problem found is returned.
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        self.validate_vpn_gateways()?;
        self.validate_customer_gateways()?;
        self.validate_connections()?;
        self.validate_routes()
    }

    fn lines_of<'a>(lines: &'a [Lines], i: usize, empty: &'a Lines) -> &'a Lines {
        lines.get(i).unwrap_or(empty)
    }

    fn validate_vpn_gateways(&self) -> Result<(), ModelError> {
        let empty = Lines::default();
        let path = self.path.as_path();
        let mut names = HashSet::new();
        for (i, g) in self.vpn_gateways.iter().enumerate() {
            let l = Self::lines_of(&self.lines.vpn_gateways, i, &empty);
            if let Some(p) = name_problem(&g.name) {
                return Err(l.error(path, "vpn_gateway.name", p));
            }
            if !names.insert(g.name.as_str()) {
                return Err(l.error(
                    path,
                    "vpn_gateway.name",
                    format!(
                        "a VPN gateway named {:?} already exists: names must be unique",
                        g.name
                    ),
                ));
            }
            if let Some(other) = self.vpn_gateways[..i]
                .iter()
                .find(|o| o.public_address == g.public_address)
            {
                return Err(l.error(
                    path,
                    "vpn_gateway.public_address",
                    format!(
                        "{} is already VPN gateway {:?}'s address: each gateway has its own public address",
                        g.public_address, other.name
                    ),
                ));
            }
            if g.public_address.is_unspecified() {
                return Err(l.error(
                    path,
                    "vpn_gateway.public_address",
                    "give the gateway's public address, not an unspecified one (0.0.0.0 or ::)",
                ));
            }
            if g.vpc.trim().is_empty() {
                return Err(l.error(path, "vpn_gateway.vpc", "name the VPC the gateway fronts"));
            }
            if g.vpc_cidr.is_empty() {
                return Err(l.error(
                    path,
                    "vpn_gateway.vpc_cidr",
                    "list the VPC's CIDR blocks, e.g. [\"192.168.4.0/24\"]",
                ));
            }
            for net in &g.vpc_cidr {
                if net.trunc() != *net {
                    return Err(l.error(
                        path,
                        "vpn_gateway.vpc_cidr",
                        format!("{net} has host bits set: did you mean {}?", net.trunc()),
                    ));
                }
            }
            if g.connection_limit == 0 {
                return Err(l.error(
                    path,
                    "vpn_gateway.connection_limit",
                    "a gateway takes at least 1 connection (the product's default is 10)",
                ));
            }
            if let Some(t) = &g.tun_name {
                if t.is_empty()
                    || t.len() > MAX_IFNAME
                    || t.contains(['/', ' ', '%'])
                    || t == "."
                    || t == ".."
                {
                    return Err(l.error(
                        path,
                        "vpn_gateway.tun_name",
                        format!("{t:?} is not a valid interface name: 1 to {MAX_IFNAME} characters, no '/', '%' or space"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_customer_gateways(&self) -> Result<(), ModelError> {
        let empty = Lines::default();
        let path = self.path.as_path();
        let mut names = HashSet::new();
        for (i, g) in self.customer_gateways.iter().enumerate() {
            let l = Self::lines_of(&self.lines.customer_gateways, i, &empty);
            if let Some(p) = name_problem(&g.name) {
                return Err(l.error(path, "customer_gateway.name", p));
            }
            if !names.insert(g.name.as_str()) {
                return Err(l.error(
                    path,
                    "customer_gateway.name",
                    format!(
                        "a customer gateway named {:?} already exists: names must be unique",
                        g.name
                    ),
                ));
            }
            // The VPN gateway tells its connections' peers apart by address.
            if let Some(other) = self.customer_gateways[..i]
                .iter()
                .find(|o| o.public_address == g.public_address)
            {
                return Err(l.error(
                    path,
                    "customer_gateway.public_address",
                    format!(
                        "{} is already customer gateway {:?}'s address: register each device once",
                        g.public_address, other.name
                    ),
                ));
            }
            if g.public_address.is_unspecified() {
                return Err(l.error(
                    path,
                    "customer_gateway.public_address",
                    "give the device's static public address, not an unspecified one (0.0.0.0 or ::)",
                ));
            }
            if let Some(p) = g.identity.as_deref().and_then(identity_problem) {
                return Err(l.error(path, "customer_gateway.identity", p));
            }
            if g.asn == Some(0) {
                return Err(l.error(
                    path,
                    "customer_gateway.asn",
                    "AS number 0 is reserved (RFC 7607): give the device's AS number, or leave it out",
                ));
            }
        }
        Ok(())
    }

    fn validate_connections(&self) -> Result<(), ModelError> {
        let empty = Lines::default();
        let path = self.path.as_path();
        let mut names = HashSet::new();
        let mut pairs = HashSet::new();
        for (i, c) in self.connections.iter().enumerate() {
            let l = Self::lines_of(&self.lines.connections, i, &empty);
            if let Some(p) = name_problem(&c.name) {
                return Err(l.error(path, "ipsec_connection.name", p));
            }
            if !names.insert(c.name.as_str()) {
                return Err(l.error(
                    path,
                    "ipsec_connection.name",
                    format!(
                        "an IPsec connection named {:?} already exists: names must be unique",
                        c.name
                    ),
                ));
            }
            let Some(vpn) = self.vpn_gateway(&c.vpn_gateway) else {
                let known: Vec<&str> = self.vpn_gateways.iter().map(|g| g.name.as_str()).collect();
                return Err(l.error(
                    path,
                    "ipsec_connection.vpn_gateway",
                    format!(
                        "no VPN gateway is named {:?} (known: {known:?}): create it first with `ipsecgw vpn-gateway create`",
                        c.vpn_gateway
                    ),
                ));
            };
            let Some(cgw) = self.customer_gateway(&c.customer_gateway) else {
                let known: Vec<&str> = self
                    .customer_gateways
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect();
                return Err(l.error(
                    path,
                    "ipsec_connection.customer_gateway",
                    format!(
                        "no customer gateway is named {:?} (known: {known:?}): create it first with `ipsecgw customer-gateway create`",
                        c.customer_gateway
                    ),
                ));
            };
            if vpn.public_address.is_ipv4() != cgw.public_address.is_ipv4() {
                return Err(l.error(
                    path,
                    "ipsec_connection.customer_gateway",
                    format!(
                        "customer gateway {:?} ({}) and VPN gateway {:?} ({}) use different IP versions: IKE cannot run between them",
                        cgw.name, cgw.public_address, vpn.name, vpn.public_address
                    ),
                ));
            }
            if !pairs.insert((c.vpn_gateway.as_str(), c.customer_gateway.as_str())) {
                return Err(l.error(
                    path,
                    "ipsec_connection.customer_gateway",
                    format!(
                        "VPN gateway {:?} already has a connection to customer gateway {:?}: one IPsec connection per pair of gateways (put several subnets in that connection instead)",
                        vpn.name, cgw.name
                    ),
                ));
            }
            let on_gateway = self.connections[..=i]
                .iter()
                .filter(|x| x.vpn_gateway == c.vpn_gateway)
                .count();
            if on_gateway > vpn.connection_limit as usize {
                return Err(l.error(
                    path,
                    "ipsec_connection.vpn_gateway",
                    format!(
                        "VPN gateway {:?} takes at most {} IPsec connections (its connection_limit) and this would be connection {on_gateway}: raise connection_limit or use another VPN gateway",
                        vpn.name, vpn.connection_limit
                    ),
                ));
            }
            self.validate_subnets(c, l)?;
            let vpc_conflict = c
                .remote_subnets
                .iter()
                .find_map(|r| vpn.vpc_cidr.iter().find(|v| overlaps(r, v)).map(|v| (r, v)));
            if let Some((r, v)) = vpc_conflict {
                return Err(l.error(
                    path,
                    "ipsec_connection.remote_subnets",
                    format!(
                        "{r} overlaps {v}, a CIDR block of VPC {:?} behind VPN gateway {:?}: the address blocks of the VPC and the data center must not conflict",
                        vpn.vpc, vpn.name
                    ),
                ));
            }
            if let Some(p) = c.psk.problem() {
                return Err(l.error(path, "ipsec_connection.psk", p));
            }
            for (value, key) in [
                (c.ike.lifetime, "ipsec_connection.ike.lifetime"),
                (c.ipsec.lifetime, "ipsec_connection.ipsec.lifetime"),
            ] {
                if value > DEFAULT_LIFETIME || (value != 0 && value < MIN_LIFETIME) {
                    return Err(l.error(
                        path,
                        key,
                        format!(
                            "{value} s is out of range: use 0 to {DEFAULT_LIFETIME} seconds (default {DEFAULT_LIFETIME}; 0: no time-based rekeying; below {MIN_LIFETIME} the SA would rekey all the time)"
                        ),
                    ));
                }
            }
            for (id, key) in [
                (&c.ike.local_id, "ipsec_connection.ike.local_id"),
                (&c.ike.remote_id, "ipsec_connection.ike.remote_id"),
            ] {
                if let Some(p) = id.as_deref().and_then(identity_problem) {
                    return Err(l.error(path, key, p));
                }
            }
            let weak = c.weak_algorithms();
            if !weak.is_empty() && !c.legacy {
                let from_profile = match c.profile {
                    Some(p) => {
                        format!(" (profile \"{p}\" chooses the console's defaults, which are weak)")
                    }
                    None => String::new(),
                };
                return Err(l.error(
                    path,
                    "ipsec_connection.legacy",
                    format!(
                        "connection {:?} uses weak algorithms ({}){from_profile}: set legacy = true to accept them for an old device, or choose aes/aes192/aes256 with sha1/sha256/sha384/sha512 and group14",
                        c.name,
                        weak.join(", ")
                    ),
                ));
            }
            if let Some(h) = &c.health_check {
                if !inside(&c.local_subnets, h.source) {
                    return Err(l.error(
                        path,
                        "ipsec_connection.health_check.source",
                        format!(
                            "{} is not in the local subnets ({}): the probe must come from the VPC side",
                            h.source,
                            list(&c.local_subnets)
                        ),
                    ));
                }
                if !inside(&c.remote_subnets, h.destination) {
                    return Err(l.error(
                        path,
                        "ipsec_connection.health_check.destination",
                        format!(
                            "{} is not in the remote subnets ({}): the probe must cross the tunnel",
                            h.destination,
                            list(&c.remote_subnets)
                        ),
                    ));
                }
                if !HEALTH_INTERVAL.contains(&h.interval) {
                    return Err(l.error(
                        path,
                        "ipsec_connection.health_check.interval",
                        format!(
                            "{} s is out of range: use 1 to 60 seconds (default 3)",
                            h.interval
                        ),
                    ));
                }
                if !HEALTH_RETRIES.contains(&h.retries) {
                    return Err(l.error(
                        path,
                        "ipsec_connection.health_check.retries",
                        format!("{} is out of range: use 1 to 10 (default 3)", h.retries),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_subnets(&self, c: &IpsecConnection, l: &Lines) -> Result<(), ModelError> {
        let path = self.path.as_path();
        for (nets, key) in [
            (&c.local_subnets, "ipsec_connection.local_subnets"),
            (&c.remote_subnets, "ipsec_connection.remote_subnets"),
        ] {
            if nets.is_empty() {
                return Err(l.error(
                    path,
                    key,
                    "list at least one subnet, e.g. [\"10.1.1.0/24\"]",
                ));
            }
            for net in nets {
                if net.trunc() != *net {
                    return Err(l.error(
                        path,
                        key,
                        format!("{net} has host bits set: did you mean {}?", net.trunc()),
                    ));
                }
            }
        }
        for r in &c.remote_subnets {
            if let Some(lo) = c.local_subnets.iter().find(|lo| overlaps(r, lo)) {
                return Err(l.error(
                    path,
                    "ipsec_connection.remote_subnets",
                    format!(
                        "{r} overlaps local subnet {lo}: the address blocks of the two sites must not conflict"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_routes(&self) -> Result<(), ModelError> {
        let empty = Lines::default();
        let path = self.path.as_path();
        for (i, r) in self.routes.iter().enumerate() {
            let l = Self::lines_of(&self.lines.routes, i, &empty);
            if self.vpn_gateway(&r.vpn_gateway).is_none() {
                let known: Vec<&str> = self.vpn_gateways.iter().map(|g| g.name.as_str()).collect();
                return Err(l.error(
                    path,
                    "route.vpn_gateway",
                    format!(
                        "no VPN gateway is named {:?} (known: {known:?})",
                        r.vpn_gateway
                    ),
                ));
            }
            let Some(c) = self.connection(&r.next_hop) else {
                let known: Vec<&str> = self
                    .connections
                    .iter()
                    .filter(|c| c.vpn_gateway == r.vpn_gateway)
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(l.error(
                    path,
                    "route.next_hop",
                    format!(
                        "no IPsec connection is named {:?}: the next hop is one of VPN gateway {:?}'s connections ({known:?})",
                        r.next_hop, r.vpn_gateway
                    ),
                ));
            };
            if c.vpn_gateway != r.vpn_gateway {
                return Err(l.error(
                    path,
                    "route.next_hop",
                    format!(
                        "IPsec connection {:?} belongs to VPN gateway {:?}, not {:?}: a route's next hop must be a connection of its own gateway",
                        c.name, c.vpn_gateway, r.vpn_gateway
                    ),
                ));
            }
            for (net, key) in [
                (Some(r.destination), "route.destination"),
                (r.source, "route.source"),
            ] {
                if let Some(net) = net {
                    if net.trunc() != net {
                        return Err(l.error(
                            path,
                            key,
                            format!("{net} has host bits set: did you mean {}?", net.trunc()),
                        ));
                    }
                }
            }
            // A route into a tunnel whose selectors do not cover it would
            // only produce drops.
            if !c.remote_subnets.iter().any(|n| n.contains(&r.destination)) {
                return Err(l.error(
                    path,
                    "route.destination",
                    format!(
                        "{} is not within the remote subnets of connection {:?} ({}): the tunnel would drop its traffic",
                        r.destination,
                        c.name,
                        list(&c.remote_subnets)
                    ),
                ));
            }
            if let Some(src) = r.source {
                if !c.local_subnets.iter().any(|n| n.contains(&src)) {
                    return Err(l.error(
                        path,
                        "route.source",
                        format!(
                            "{src} is not within the local subnets of connection {:?} ({}): the tunnel would drop its traffic",
                            c.name,
                            list(&c.local_subnets)
                        ),
                    ));
                }
            }
            if r.weight != WEIGHT_ACTIVE && r.weight != WEIGHT_STANDBY {
                return Err(l.error(
                    path,
                    "route.weight",
                    format!(
                        "{} is not a weight the product knows: use 100 (active) or 0 (standby)",
                        r.weight
                    ),
                ));
            }
            let earlier = self.routes[..i].iter().filter(|x| {
                x.vpn_gateway == r.vpn_gateway
                    && x.destination == r.destination
                    && x.source == r.source
            });
            for x in earlier {
                if x.next_hop == r.next_hop {
                    return Err(l.error(
                        path,
                        "route.destination",
                        format!(
                            "VPN gateway {:?} already has a route to {} via {:?}",
                            r.vpn_gateway, r.destination, r.next_hop
                        ),
                    ));
                }
                if x.weight == r.weight {
                    return Err(l.error(
                        path,
                        "route.weight",
                        format!(
                            "VPN gateway {:?} already has a route to {} of weight {} (via {:?}): one active (100) and one standby (0) route per destination",
                            r.vpn_gateway, r.destination, r.weight, x.next_hop
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

//! The canonical state file: every item with every setting spelled out, so
//! a file written by a create command says what the connection does without
//! knowing the defaults, and reads back into the same model. Comments of a
//! hand-edited file are not kept: the model holds values, not text.

use std::fmt::Write as _;

use ipnet::IpNet;

use super::algorithm::pfs_name;
use super::Model;

/// `s` as a TOML basic string (TOML 1.0, "Basic strings"), escaping
/// quotes, backslashes and control characters.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A list of CIDR blocks as a TOML array of strings.
pub(crate) fn quote_nets(nets: &[IpNet]) -> String {
    let v: Vec<String> = nets.iter().map(|n| quote(&n.to_string())).collect();
    format!("[{}]", v.join(", "))
}

pub(crate) fn write(model: &Model) -> String {
    let mut s = String::new();
    s.push_str(
        "# ipsecgw cloud state: VPN gateways, customer gateways, IPsec connections and\n\
         # routes, as Alibaba Cloud's console describes them. Written by ipsecgw; it\n\
         # holds pre-shared keys, so keep it readable by root only (mode 0600).\n",
    );
    for g in &model.vpn_gateways {
        let _ = writeln!(s, "\n[[vpn_gateway]]");
        let _ = writeln!(s, "name = {}", quote(&g.name));
        let _ = writeln!(
            s,
            "public_address = {}",
            quote(&g.public_address.to_string())
        );
        let _ = writeln!(s, "vpc = {}", quote(&g.vpc));
        let _ = writeln!(s, "vpc_cidr = {}", quote_nets(&g.vpc_cidr));
        let _ = writeln!(s, "connection_limit = {}", g.connection_limit);
        if let Some(b) = g.bandwidth_mbps {
            let _ = writeln!(s, "bandwidth_mbps = {b}");
        }
        if let Some(t) = &g.tun_name {
            let _ = writeln!(s, "tun_name = {}", quote(t));
        }
        if let Some(c) = &g.control_socket {
            let _ = writeln!(s, "control_socket = {}", quote(&c.to_string_lossy()));
        }
        if let Some(a) = &g.tun_address {
            let _ = writeln!(s, "tun_address = {}", quote(&a.to_string()));
        }
    }
    for g in &model.customer_gateways {
        let _ = writeln!(s, "\n[[customer_gateway]]");
        let _ = writeln!(s, "name = {}", quote(&g.name));
        let _ = writeln!(
            s,
            "public_address = {}",
            quote(&g.public_address.to_string())
        );
        if let Some(id) = &g.identity {
            let _ = writeln!(s, "identity = {}", quote(id));
        }
        if let Some(asn) = g.asn {
            let _ = writeln!(s, "asn = {asn}");
        }
    }
    for c in &model.connections {
        let _ = writeln!(s, "\n[[ipsec_connection]]");
        let _ = writeln!(s, "name = {}", quote(&c.name));
        let _ = writeln!(s, "vpn_gateway = {}", quote(&c.vpn_gateway));
        let _ = writeln!(s, "customer_gateway = {}", quote(&c.customer_gateway));
        let _ = writeln!(s, "local_subnets = {}", quote_nets(&c.local_subnets));
        let _ = writeln!(s, "remote_subnets = {}", quote_nets(&c.remote_subnets));
        let _ = writeln!(s, "effect_immediately = {}", c.effect_immediately);
        let _ = writeln!(s, "psk = {}", quote(c.psk.expose()));
        let _ = writeln!(s, "dpd = {}", c.dpd);
        let _ = writeln!(s, "nat_traversal = {}", c.nat_traversal);
        if let Some(p) = c.profile {
            let _ = writeln!(s, "profile = {}", quote(p.name()));
        }
        let _ = writeln!(s, "legacy = {}", c.legacy);
        let _ = writeln!(s, "\n[ipsec_connection.ike]");
        let _ = writeln!(s, "version = \"ikev2\"");
        let _ = writeln!(s, "mode = \"main\"");
        let _ = writeln!(s, "encryption = {}", quote(c.ike.encryption.name()));
        let _ = writeln!(s, "integrity = {}", quote(c.ike.integrity.name()));
        let _ = writeln!(s, "dh_group = {}", quote(c.ike.dh_group.name()));
        let _ = writeln!(s, "lifetime = {}", c.ike.lifetime);
        if let Some(id) = &c.ike.local_id {
            let _ = writeln!(s, "local_id = {}", quote(id));
        }
        if let Some(id) = &c.ike.remote_id {
            let _ = writeln!(s, "remote_id = {}", quote(id));
        }
        let _ = writeln!(s, "\n[ipsec_connection.ipsec]");
        let _ = writeln!(s, "encryption = {}", quote(c.ipsec.encryption.name()));
        let _ = writeln!(s, "integrity = {}", quote(c.ipsec.integrity.name()));
        let _ = writeln!(s, "pfs = {}", quote(pfs_name(c.ipsec.pfs)));
        let _ = writeln!(s, "lifetime = {}", c.ipsec.lifetime);
        if let Some(h) = &c.health_check {
            let _ = writeln!(s, "\n[ipsec_connection.health_check]");
            let _ = writeln!(s, "source = {}", quote(&h.source.to_string()));
            let _ = writeln!(s, "destination = {}", quote(&h.destination.to_string()));
            let _ = writeln!(s, "interval = {}", h.interval);
            let _ = writeln!(s, "retries = {}", h.retries);
        }
    }
    for r in &model.routes {
        let _ = writeln!(s, "\n[[route]]");
        let _ = writeln!(s, "vpn_gateway = {}", quote(&r.vpn_gateway));
        let _ = writeln!(s, "destination = {}", quote(&r.destination.to_string()));
        if let Some(src) = &r.source {
            let _ = writeln!(s, "source = {}", quote(&src.to_string()));
        }
        let _ = writeln!(s, "next_hop = {}", quote(&r.next_hop));
        let _ = writeln!(s, "weight = {}", r.weight);
        let _ = writeln!(s, "publish_to_vpc = {}", r.publish_to_vpc);
    }
    s
}

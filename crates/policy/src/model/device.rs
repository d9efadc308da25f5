//! ipsecgw device configs (the format `ipsecgw run --config` reads): the
//! cloud side of a VPN gateway, and the CPE side of one connection. Both
//! ends are written by the same code, so what one offers the other accepts.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::connection::{HealthCheck, IkeSettings, IpsecSettings};
use super::error::ModelError;
use super::psk::Psk;
use super::route::Route;
use super::writer::{quote, quote_nets};
use super::Model;

/// Seconds of silence before a liveness check when DPD is on: strongSwan's
/// usual `dpd_delay`, and what the device config defaults to.
pub const DPD_DELAY: u64 = 30;

/// The `[gateway]` and `[tun]` tables.
pub(crate) struct DeviceHeader<'a> {
    pub name: &'a str,
    pub public_address: IpAddr,
    pub control_socket: &'a Path,
    pub tun_name: &'a str,
    pub tun_address: Option<IpNet>,
}

/// One `[[ipsec_connection]]` with its `ike`, `ipsec` and `health_check`
/// tables, from this device's point of view.
pub(crate) struct DeviceConnection<'a> {
    pub name: &'a str,
    pub remote_address: IpAddr,
    pub local_subnets: &'a [IpNet],
    pub remote_subnets: &'a [IpNet],
    pub nat_traversal: bool,
    pub legacy: bool,
    pub ike: &'a IkeSettings,
    pub ipsec: &'a IpsecSettings,
    pub psk: &'a Psk,
    pub local_id: &'a str,
    pub remote_id: &'a str,
    /// `start` or `trap`.
    pub start_action: &'static str,
    pub dpd: bool,
    /// `clear` or `restart`.
    pub dpd_action: &'static str,
    pub health_check: Option<&'a HealthCheck>,
}

pub(crate) fn write_header(s: &mut String, h: &DeviceHeader<'_>) {
    let _ = writeln!(s, "[gateway]");
    let _ = writeln!(s, "name = {}", quote(h.name));
    let _ = writeln!(
        s,
        "public_address = {}",
        quote(&h.public_address.to_string())
    );
    let _ = writeln!(
        s,
        "control_socket = {}",
        quote(&h.control_socket.to_string_lossy())
    );
    let _ = writeln!(s, "\n[tun]");
    let _ = writeln!(s, "name = {}", quote(h.tun_name));
    if let Some(a) = h.tun_address {
        let _ = writeln!(s, "address = {}", quote(&a.to_string()));
    }
}

pub(crate) fn write_connection(s: &mut String, c: &DeviceConnection<'_>) {
    let _ = writeln!(s, "\n[[ipsec_connection]]");
    let _ = writeln!(s, "name = {}", quote(c.name));
    let _ = writeln!(
        s,
        "remote_address = {}",
        quote(&c.remote_address.to_string())
    );
    let _ = writeln!(s, "local_subnets = {}", quote_nets(c.local_subnets));
    let _ = writeln!(s, "remote_subnets = {}", quote_nets(c.remote_subnets));
    // NAT traversal on: ESP in UDP 4500 (RFC 3948), as strongSwan's
    // `encap = yes`; off: raw ESP.
    let _ = writeln!(
        s,
        "encapsulation = {}",
        if c.nat_traversal {
            "\"udp\""
        } else {
            "\"esp\""
        }
    );
    if c.legacy {
        let _ = writeln!(s, "legacy = true");
    }
    let _ = writeln!(s, "\n[ipsec_connection.ike]");
    let _ = writeln!(s, "version = \"ikev2\"");
    let _ = writeln!(s, "proposals = [{}]", quote(&c.ike.proposal()));
    let _ = writeln!(s, "psk = {}", quote(c.psk.expose()));
    let _ = writeln!(s, "local_id = {}", quote(c.local_id));
    let _ = writeln!(s, "remote_id = {}", quote(c.remote_id));
    let _ = writeln!(s, "start_action = {}", quote(c.start_action));
    if c.dpd {
        let _ = writeln!(s, "dpd_delay = {DPD_DELAY}");
        let _ = writeln!(s, "dpd_action = {}", quote(c.dpd_action));
    } else {
        let _ = writeln!(s, "dpd_delay = 0");
    }
    let _ = writeln!(s, "lifetime = {}", c.ike.lifetime);
    let _ = writeln!(s, "\n[ipsec_connection.ipsec]");
    let _ = writeln!(s, "encryption = {}", quote(&c.ipsec.proposal()));
    // Alibaba's gateway, and strongSwan with the exported proposals, do
    // not negotiate 64-bit sequence numbers.
    let _ = writeln!(s, "esn = false");
    let _ = writeln!(
        s,
        "pfs = {}",
        quote(c.ipsec.pfs.map_or("disabled", |g| g.strongswan()))
    );
    let _ = writeln!(s, "lifetime = {}", c.ipsec.lifetime);
    if let Some(h) = c.health_check {
        let _ = writeln!(s, "\n[ipsec_connection.health_check]");
        let _ = writeln!(s, "source = {}", quote(&h.source.to_string()));
        let _ = writeln!(s, "destination = {}", quote(&h.destination.to_string()));
        let _ = writeln!(s, "interval = {}", h.interval);
        let _ = writeln!(s, "retries = {}", h.retries);
    }
}

fn write_route(s: &mut String, r: &Route) {
    let _ = writeln!(s, "\n[[route]]");
    let _ = writeln!(s, "destination = {}", quote(&r.destination.to_string()));
    if let Some(src) = r.source {
        let _ = writeln!(s, "source = {}", quote(&src.to_string()));
    }
    let _ = writeln!(s, "connection = {}", quote(&r.next_hop));
    let _ = writeln!(s, "weight = {}", r.weight);
    let _ = writeln!(s, "publish = {}", r.publish_to_vpc);
}

impl Model {
    /// The ipsecgw device config that runs VPN gateway `gateway`: its
    /// public address, TUN device and control socket, one connection per
    /// IPsec connection of the gateway (waiting for the first packet unless
    /// `effect_immediately`; DPD clears a dead peer's SAs, as the cloud
    /// side does not redial), their health checks, and the gateway's routes.
    ///
    /// The text holds the pre-shared keys inline: give it to the daemon
    /// (`ipsecgw run --state FILE --vpn-gateway NAME` renders and parses it
    /// in memory) rather than to a file others can read.
    pub fn render_vpn_gateway(&self, gateway: &str) -> Result<String, ModelError> {
        let g = self.vpn_gateway(gateway).ok_or_else(|| {
            let known: Vec<&str> = self.vpn_gateways.iter().map(|g| g.name.as_str()).collect();
            ModelError::new(
                &self.path,
                None,
                Some("vpn_gateway"),
                format!("no VPN gateway is named {gateway:?} (known: {known:?})"),
            )
        })?;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# ipsecgw device config of VPN gateway {:?}, in front of VPC {:?} ({}).\n\
             # Rendered from the state file {}; it holds pre-shared keys.\n",
            g.name,
            g.vpc,
            g.vpc_cidr
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            self.path.display()
        );
        let control_socket = g.control_socket_or_default();
        let tun_name = g.tun_name_or_default();
        write_header(
            &mut s,
            &DeviceHeader {
                name: &g.name,
                public_address: g.public_address,
                control_socket: &control_socket,
                tun_name: &tun_name,
                tun_address: g.tun_address,
            },
        );
        for c in self.connections.iter().filter(|c| c.vpn_gateway == g.name) {
            let Some(cgw) = self.customer_gateway(&c.customer_gateway) else {
                continue;
            };
            let local_id = c
                .ike
                .local_id
                .clone()
                .unwrap_or_else(|| g.public_address.to_string());
            let remote_id = self.remote_id(c);
            write_connection(
                &mut s,
                &DeviceConnection {
                    name: &c.name,
                    remote_address: cgw.public_address,
                    local_subnets: &c.local_subnets,
                    remote_subnets: &c.remote_subnets,
                    nat_traversal: c.nat_traversal,
                    legacy: c.legacy,
                    ike: &c.ike,
                    ipsec: &c.ipsec,
                    psk: &c.psk,
                    local_id: &local_id,
                    remote_id: &remote_id,
                    start_action: if c.effect_immediately {
                        "start"
                    } else {
                        "trap"
                    },
                    dpd: c.dpd,
                    dpd_action: "clear",
                    health_check: c.health_check.as_ref(),
                },
            );
        }
        for r in self.routes.iter().filter(|r| r.vpn_gateway == g.name) {
            write_route(&mut s, r);
        }
        Ok(s)
    }
}

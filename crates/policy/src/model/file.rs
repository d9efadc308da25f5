//! The state file as written: serde structs that keep every value's span
//! and refuse unknown keys, and their conversion into the model's items
//! with the line of each key kept for later messages.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::connection::{ConnectionSpec, HealthCheckSpec, IkeSpec, IpsecSpec};
use super::error::ModelError;
use super::gateway::{CustomerGateway, VpnGateway, DEFAULT_CONNECTION_LIMIT};
use super::lines::{LineIndex, Lines};
use super::psk::Psk;
use super::route::{Route, WEIGHT_ACTIVE};
use super::{ItemLines, Model};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    vpn_gateway: Vec<Spanned<RawVpnGateway>>,
    #[serde(default)]
    customer_gateway: Vec<Spanned<RawCustomerGateway>>,
    #[serde(default)]
    ipsec_connection: Vec<Spanned<RawConnection>>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVpnGateway {
    name: Spanned<String>,
    public_address: Spanned<String>,
    vpc: Spanned<String>,
    vpc_cidr: Spanned<Vec<String>>,
    #[serde(default)]
    connection_limit: Option<Spanned<u32>>,
    #[serde(default)]
    bandwidth_mbps: Option<Spanned<u32>>,
    #[serde(default)]
    tun_name: Option<Spanned<String>>,
    #[serde(default)]
    control_socket: Option<Spanned<String>>,
    #[serde(default)]
    tun_address: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomerGateway {
    name: Spanned<String>,
    public_address: Spanned<String>,
    #[serde(default)]
    identity: Option<Spanned<String>>,
    #[serde(default)]
    asn: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    name: Spanned<String>,
    vpn_gateway: Spanned<String>,
    customer_gateway: Spanned<String>,
    local_subnets: Spanned<Vec<String>>,
    remote_subnets: Spanned<Vec<String>>,
    #[serde(default)]
    effect_immediately: Option<Spanned<bool>>,
    #[serde(default)]
    psk: Option<Spanned<String>>,
    #[serde(default)]
    dpd: Option<Spanned<bool>>,
    #[serde(default)]
    nat_traversal: Option<Spanned<bool>>,
    #[serde(default)]
    profile: Option<Spanned<String>>,
    #[serde(default)]
    legacy: Option<Spanned<bool>>,
    #[serde(default)]
    ike: Option<Spanned<RawIke>>,
    #[serde(default)]
    ipsec: Option<Spanned<RawIpsec>>,
    #[serde(default)]
    health_check: Option<Spanned<RawHealthCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIke {
    #[serde(default)]
    version: Option<Spanned<String>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    encryption: Option<Spanned<String>>,
    #[serde(default)]
    integrity: Option<Spanned<String>>,
    #[serde(default)]
    dh_group: Option<Spanned<String>>,
    #[serde(default)]
    lifetime: Option<Spanned<u64>>,
    #[serde(default)]
    local_id: Option<Spanned<String>>,
    #[serde(default)]
    remote_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpsec {
    #[serde(default)]
    encryption: Option<Spanned<String>>,
    #[serde(default)]
    integrity: Option<Spanned<String>>,
    #[serde(default)]
    pfs: Option<Spanned<String>>,
    #[serde(default)]
    lifetime: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthCheck {
    source: Spanned<String>,
    destination: Spanned<String>,
    #[serde(default)]
    interval: Option<Spanned<u32>>,
    #[serde(default)]
    retries: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    vpn_gateway: Spanned<String>,
    destination: Spanned<String>,
    #[serde(default)]
    source: Option<Spanned<String>>,
    next_hop: Spanned<String>,
    #[serde(default)]
    weight: Option<Spanned<u32>>,
    #[serde(default)]
    publish_to_vpc: Option<Spanned<bool>>,
}

/// Reads one item's values, noting where each key was written.
struct Reader<'a> {
    path: &'a Path,
    index: &'a LineIndex,
    lines: Lines,
}

impl Reader<'_> {
    fn value<T>(&mut self, key: &str, v: Spanned<T>) -> T {
        self.lines.set(self.index, key, v.span());
        v.into_inner()
    }

    fn opt<T>(&mut self, key: &str, v: Option<Spanned<T>>) -> Option<T> {
        v.map(|v| self.value(key, v))
    }

    fn addr(&mut self, key: &str, v: Spanned<String>) -> Result<IpAddr, ModelError> {
        let s = self.value(key, v);
        s.trim().parse().map_err(|_| {
            self.lines.error(
                self.path,
                key,
                format!("{s:?} is not an IP address: write it like \"198.51.100.2\""),
            )
        })
    }

    fn net(&self, key: &str, s: &str) -> Result<IpNet, ModelError> {
        s.trim().parse().map_err(|_| {
            self.lines.error(
                self.path,
                key,
                format!("{s:?} is not a CIDR block: write an address and a prefix length, like \"10.1.1.0/24\""),
            )
        })
    }

    fn nets(&mut self, key: &str, v: Spanned<Vec<String>>) -> Result<Vec<IpNet>, ModelError> {
        let list = self.value(key, v);
        list.iter().map(|s| self.net(key, s)).collect()
    }

    fn finish(self) -> Lines {
        self.lines
    }
}

/// Parses and validates a state file's text.
pub(crate) fn read(path: &Path, text: &str) -> Result<Model, ModelError> {
    let index = LineIndex::new(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| s.start);
        ModelError::new(
            path,
            at.map(|o| index.line(o)),
            at.and_then(|o| key_at(text, o).or_else(|| missing_key(text, o, e.message())))
                .as_deref(),
            e.message().trim(),
        )
    })?;
    let mut model = Model::empty(path);
    let mut lines = ItemLines::default();
    let reader = |span: std::ops::Range<usize>| Reader {
        path,
        index: &index,
        lines: Lines::at(&index, span),
    };
    for g in raw.vpn_gateway {
        let mut r = reader(g.span());
        let g = g.into_inner();
        let gateway = VpnGateway {
            name: r.value("vpn_gateway.name", g.name),
            public_address: r.addr("vpn_gateway.public_address", g.public_address)?,
            vpc: r.value("vpn_gateway.vpc", g.vpc),
            vpc_cidr: r.nets("vpn_gateway.vpc_cidr", g.vpc_cidr)?,
            connection_limit: r
                .opt("vpn_gateway.connection_limit", g.connection_limit)
                .unwrap_or(DEFAULT_CONNECTION_LIMIT),
            bandwidth_mbps: r.opt("vpn_gateway.bandwidth_mbps", g.bandwidth_mbps),
            tun_name: r.opt("vpn_gateway.tun_name", g.tun_name),
            control_socket: r
                .opt("vpn_gateway.control_socket", g.control_socket)
                .map(PathBuf::from),
            tun_address: match r.opt("vpn_gateway.tun_address", g.tun_address) {
                Some(s) => Some(r.net("vpn_gateway.tun_address", &s)?),
                None => None,
            },
        };
        model.vpn_gateways.push(gateway);
        lines.vpn_gateways.push(r.finish());
    }
    for g in raw.customer_gateway {
        let mut r = reader(g.span());
        let g = g.into_inner();
        let gateway = CustomerGateway {
            name: r.value("customer_gateway.name", g.name),
            public_address: r.addr("customer_gateway.public_address", g.public_address)?,
            identity: r.opt("customer_gateway.identity", g.identity),
            asn: r.opt("customer_gateway.asn", g.asn),
        };
        model.customer_gateways.push(gateway);
        lines.customer_gateways.push(r.finish());
    }
    for c in raw.ipsec_connection {
        let mut r = reader(c.span());
        let c = c.into_inner();
        let mut spec = ConnectionSpec {
            name: r.value("ipsec_connection.name", c.name),
            vpn_gateway: r.value("ipsec_connection.vpn_gateway", c.vpn_gateway),
            customer_gateway: r.value("ipsec_connection.customer_gateway", c.customer_gateway),
            local_subnets: r.nets("ipsec_connection.local_subnets", c.local_subnets)?,
            remote_subnets: r.nets("ipsec_connection.remote_subnets", c.remote_subnets)?,
            effect_immediately: r
                .opt("ipsec_connection.effect_immediately", c.effect_immediately)
                .unwrap_or(false),
            psk: r.opt("ipsec_connection.psk", c.psk).map(Psk::new),
            dpd: r.opt("ipsec_connection.dpd", c.dpd),
            nat_traversal: r.opt("ipsec_connection.nat_traversal", c.nat_traversal),
            profile: r.opt("ipsec_connection.profile", c.profile),
            legacy: r.opt("ipsec_connection.legacy", c.legacy).unwrap_or(false),
            ..ConnectionSpec::default()
        };
        if let Some(ike) = c.ike {
            r.lines.set(&index, "ipsec_connection.ike", ike.span());
            let ike = ike.into_inner();
            spec.ike = IkeSpec {
                version: r.opt("ipsec_connection.ike.version", ike.version),
                mode: r.opt("ipsec_connection.ike.mode", ike.mode),
                encryption: r.opt("ipsec_connection.ike.encryption", ike.encryption),
                integrity: r.opt("ipsec_connection.ike.integrity", ike.integrity),
                dh_group: r.opt("ipsec_connection.ike.dh_group", ike.dh_group),
                lifetime: r.opt("ipsec_connection.ike.lifetime", ike.lifetime),
                local_id: r.opt("ipsec_connection.ike.local_id", ike.local_id),
                remote_id: r.opt("ipsec_connection.ike.remote_id", ike.remote_id),
            };
        }
        if let Some(ipsec) = c.ipsec {
            r.lines.set(&index, "ipsec_connection.ipsec", ipsec.span());
            let ipsec = ipsec.into_inner();
            spec.ipsec = IpsecSpec {
                encryption: r.opt("ipsec_connection.ipsec.encryption", ipsec.encryption),
                integrity: r.opt("ipsec_connection.ipsec.integrity", ipsec.integrity),
                pfs: r.opt("ipsec_connection.ipsec.pfs", ipsec.pfs),
                lifetime: r.opt("ipsec_connection.ipsec.lifetime", ipsec.lifetime),
            };
        }
        if let Some(h) = c.health_check {
            r.lines
                .set(&index, "ipsec_connection.health_check", h.span());
            let h = h.into_inner();
            spec.health_check = Some(HealthCheckSpec {
                source: r.addr("ipsec_connection.health_check.source", h.source)?,
                destination: r.addr("ipsec_connection.health_check.destination", h.destination)?,
                interval: r.opt("ipsec_connection.health_check.interval", h.interval),
                retries: r.opt("ipsec_connection.health_check.retries", h.retries),
            });
        }
        let lines_of = r.finish();
        let connection = spec.resolve(path, &lines_of)?;
        model.connections.push(connection);
        lines.connections.push(lines_of);
    }
    for rt in raw.route {
        let mut r = reader(rt.span());
        let rt = rt.into_inner();
        let destination = r.value("route.destination", rt.destination);
        let destination = r.net("route.destination", &destination)?;
        let source = match r.opt("route.source", rt.source) {
            Some(s) => Some(r.net("route.source", &s)?),
            None => None,
        };
        let route = Route {
            vpn_gateway: r.value("route.vpn_gateway", rt.vpn_gateway),
            destination,
            source,
            next_hop: r.value("route.next_hop", rt.next_hop),
            weight: r.opt("route.weight", rt.weight).unwrap_or(WEIGHT_ACTIVE),
            publish_to_vpc: r
                .opt("route.publish_to_vpc", rt.publish_to_vpc)
                .unwrap_or(false),
        };
        model.routes.push(route);
        lines.routes.push(r.finish());
    }
    model.lines = lines;
    model.validate()?;
    Ok(model)
}

/// The dotted key written on the line holding `offset`, with the table it
/// is in (`ipsec_connection.ike.lifetime`), for parse errors whose message
/// names only the value.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let end = offset.min(text.len());
    let line_start = text.get(..end)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = text
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or(l)
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned()
        });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// For "missing field `x`" (reported at the table): `table.x`.
fn missing_key(text: &str, offset: usize, message: &str) -> Option<String> {
    let field = message.strip_prefix("missing field `")?.split('`').next()?;
    let line_start = text
        .get(..offset.min(text.len()))?
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let header = text.get(line_start..)?.lines().next()?.trim();
    let table = header
        .split('#')
        .next()
        .unwrap_or(header)
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .trim();
    Some(if header.starts_with('[') && !table.is_empty() {
        format!("{table}.{field}")
    } else {
        field.to_owned()
    })
}

//! The VPN gateway's routes and each connection's health check, as the
//! product has them: destination-based and policy-based routes naming a
//! connection, weight 100 (active) or 0 (standby), a "publish" flag that
//! puts the destination in the site's (VPC's) route table, and an ICMP
//! health check whose failure withdraws the routes of its connection.
//!
//! Without any `[[route]]` the gateway routes each connection's remote
//! subnets into the tunnel, as before; with routes, only they decide.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Connection, Validator};

/// Weight of an active route (the product's value).
pub const WEIGHT_ACTIVE: u8 = 100;
/// Weight of a standby route.
pub const WEIGHT_STANDBY: u8 = 0;
/// The product's health-check interval and retries.
const DEFAULT_INTERVAL: u64 = 3;
const DEFAULT_RETRIES: u32 = 3;

/// An ICMP echo sent across the tunnel from `source` to `destination`
/// every `interval`; `retries` unanswered in a row mark the connection
/// down, one answer marks it up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// An address in the local subnets (the echo's source).
    pub source: IpAddr,
    /// An address in the remote subnets.
    pub destination: IpAddr,
    /// Time between probes.
    pub interval: Duration,
    /// Unanswered probes in a row before the connection is down.
    pub retries: u32,
}

/// One route of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub destination: IpNet,
    /// Source prefix: a policy-based route (wins over destination routes).
    pub source: Option<IpNet>,
    /// The connection, by index in [`super::Config::connections`].
    pub connection: usize,
    /// 100 (active) or 0 (standby).
    pub weight: u8,
    /// Put the destination into the site's route table (the TUN route).
    pub publish: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthCheckSection {
    source: Spanned<IpAddr>,
    destination: Spanned<IpAddr>,
    #[serde(default)]
    interval: Option<Spanned<u64>>,
    #[serde(default)]
    retries: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteSection {
    destination: Spanned<IpNet>,
    #[serde(default)]
    source: Option<Spanned<IpNet>>,
    connection: Spanned<String>,
    #[serde(default)]
    weight: Option<Spanned<u8>>,
    #[serde(default)]
    publish: Option<bool>,
}

fn inside(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

impl Validator<'_> {
    pub(super) fn health_check(
        &self,
        s: Spanned<HealthCheckSection>,
        local: &[IpNet],
        remote: &[IpNet],
    ) -> Result<HealthCheck, ConfigError> {
        let s = s.into_inner();
        let source = *s.source.get_ref();
        if !inside(local, source) {
            return Err(self.err(
                s.source.span(),
                "ipsec_connection.health_check.source",
                format!("{source} is not in the local subnets {local:?}: the probe must come from this site"),
            ));
        }
        let destination = *s.destination.get_ref();
        if !inside(remote, destination) {
            return Err(self.err(
                s.destination.span(),
                "ipsec_connection.health_check.destination",
                format!("{destination} is not in the remote subnets {remote:?}: the probe must cross the tunnel"),
            ));
        }
        let interval = match &s.interval {
            Some(v) if !(1..=60).contains(v.get_ref()) => {
                return Err(self.err(
                    v.span(),
                    "ipsec_connection.health_check.interval",
                    format!("use 1 to 60 seconds (default {DEFAULT_INTERVAL})"),
                ))
            }
            Some(v) => *v.get_ref(),
            None => DEFAULT_INTERVAL,
        };
        let retries = match &s.retries {
            Some(v) if !(1..=10).contains(v.get_ref()) => {
                return Err(self.err(
                    v.span(),
                    "ipsec_connection.health_check.retries",
                    format!("use 1 to 10 (default {DEFAULT_RETRIES})"),
                ))
            }
            Some(v) => *v.get_ref(),
            None => DEFAULT_RETRIES,
        };
        Ok(HealthCheck {
            source,
            destination,
            interval: Duration::from_secs(interval),
            retries,
        })
    }

    pub(super) fn routes(
        &self,
        sections: Vec<Spanned<RouteSection>>,
        connections: &[Connection],
    ) -> Result<Vec<Route>, ConfigError> {
        let mut routes: Vec<Route> = Vec::new();
        for spanned in sections {
            let span = spanned.span();
            let r = spanned.into_inner();
            let name = r.connection.get_ref();
            let Some((connection, conn)) = connections
                .iter()
                .enumerate()
                .find(|(_, c)| &c.name == name)
            else {
                let known: Vec<&str> = connections.iter().map(|c| c.name.as_str()).collect();
                return Err(self.err(
                    r.connection.span(),
                    "route.connection",
                    format!("no ipsec_connection is named {name:?}: use one of {known:?}"),
                ));
            };
            let destination = *r.destination.get_ref();
            if destination.trunc() != destination {
                return Err(self.err(
                    r.destination.span(),
                    "route.destination",
                    format!(
                        "{destination} has host bits set: did you mean {}?",
                        destination.trunc()
                    ),
                ));
            }
            // A route into a tunnel whose selectors do not cover it would
            // only produce drops: say so now.
            if !conn.remote_subnets.iter().any(|n| n.contains(&destination)) {
                return Err(self.err(
                    r.destination.span(),
                    "route.destination",
                    format!(
                        "{destination} is not within the remote subnets of {name:?} ({:?}): the tunnel would drop it",
                        conn.remote_subnets
                    ),
                ));
            }
            let source = match &r.source {
                Some(s) => {
                    let net = *s.get_ref();
                    if net.trunc() != net || !conn.local_subnets.iter().any(|n| n.contains(&net)) {
                        return Err(self.err(
                            s.span(),
                            "route.source",
                            format!(
                                "{net} must be a prefix within the local subnets of {name:?} ({:?})",
                                conn.local_subnets
                            ),
                        ));
                    }
                    Some(net)
                }
                None => None,
            };
            let weight = match &r.weight {
                None => WEIGHT_ACTIVE,
                Some(w) if [WEIGHT_ACTIVE, WEIGHT_STANDBY].contains(w.get_ref()) => *w.get_ref(),
                Some(w) => {
                    return Err(self.err(
                        w.span(),
                        "route.weight",
                        format!(
                            "{} is not a weight the gateway knows: use 100 (active) or 0 (standby)",
                            w.get_ref()
                        ),
                    ))
                }
            };
            let same: Vec<&Route> = routes
                .iter()
                .filter(|x| x.destination == destination && x.source == source)
                .collect();
            if same.iter().any(|x| x.connection == connection) {
                return Err(self.err(
                    span,
                    "route.destination",
                    format!("{destination} already has a route via {name:?}"),
                ));
            }
            if same.iter().any(|x| x.weight == weight) {
                return Err(self.err(
                    span,
                    "route.weight",
                    format!(
                        "{destination} already has a route of weight {weight}: one active (100) and one standby (0) route per destination"
                    ),
                ));
            }
            routes.push(Route {
                destination,
                source,
                connection,
                weight,
                publish: r.publish.unwrap_or(true),
            });
        }
        Ok(routes)
    }
}

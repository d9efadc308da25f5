//! The cloud side as Alibaba Cloud's console describes it: VPN gateways,
//! customer gateways, IPsec connections and VPN gateway routes, kept in a
//! TOML "state file", and what the console derives from them: the device
//! config of a VPN gateway, and the configuration an on-premises engineer
//! downloads for the customer gateway's device.
//!
//! The seed tutorial's steps map onto this module: create a VPN gateway
//! ([`Model::add_vpn_gateway`]), a customer gateway
//! ([`Model::add_customer_gateway`]), an IPsec connection
//! ([`Model::add_connection`], which generates the pre-shared key when none
//! is given), configure the local gateway ([`Model::export`] as strongSwan,
//! ipsecgw or Alibaba's own JSON; [`import_alibaba`] for a file downloaded
//! from the real console), and configure routes ([`Model::add_route`],
//! [`Model::set_route_published`]). Running a VPN gateway is
//! [`Model::render_vpn_gateway`] handed to the daemon.
//!
//! Pure like the rest of the crate: no file is read or written here (the
//! caller passes the text in and takes the text out), no clock, and the
//! only randomness, for generated keys, comes from the caller.
//!
//! Every error names the file, the line and the key, and says what would
//! be valid ([`ModelError`]). Validation is one pass over the whole model,
//! run after parsing and after each mutation, so a create command refuses
//! exactly what a hand-edited state file would be refused for; a failed
//! mutation leaves the model as it was.
//!
//! ```
//! use ipsecgw_policy::model::{ConnectionSpec, CustomerGateway, ExportFormat, Model, VpnGateway};
//!
//! # fn main() -> Result<(), ipsecgw_policy::model::ModelError> {
//! let mut model = Model::empty("cloud.toml".as_ref());
//! model.add_vpn_gateway(VpnGateway::new(
//!     "vpn-hz",
//!     "198.51.100.2".parse().unwrap(),
//!     "hangzhou-vpc",
//!     vec!["192.168.4.0/24".parse().unwrap()],
//! ))?;
//! model.add_customer_gateway(CustomerGateway::new("onprem-cpe", "198.51.100.1".parse().unwrap()))?;
//! let spec = ConnectionSpec::new(
//!     "onprem",
//!     "vpn-hz",
//!     "onprem-cpe",
//!     vec!["192.168.4.0/24".parse().unwrap()],
//!     vec!["10.1.1.0/24".parse().unwrap()],
//! );
//! let mut counter = 0u8;
//! let psk = model.add_connection(spec, &mut |buf: &mut [u8]| {
//!     for b in buf.iter_mut() {
//!         counter = counter.wrapping_add(37);
//!         *b = counter;
//!     }
//! })?;
//! assert_eq!(psk.map(|p| p.expose().len()), Some(16));
//! let swanctl = model.export("onprem", ExportFormat::Strongswan)?;
//! assert!(swanctl.contains("proposals = aes256-sha256-modp2048"));
//! let again = Model::parse("cloud.toml".as_ref(), &model.to_toml())?;
//! assert_eq!(again, model);
//! # Ok(())
//! # }
//! ```

mod algorithm;
mod alibaba;
mod connection;
mod cpe;
mod device;
mod error;
mod file;
mod gateway;
mod lines;
mod psk;
mod route;
mod swanctl;
mod validate;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use ipnet::IpNet;

pub use algorithm::{DhGroup, Encryption, Integrity, Profile, Suite};
pub use alibaba::{import_alibaba, IMPORTED_CONNECTION_NAME, IMPORTED_GATEWAY_NAME};
pub use connection::{
    ConnectionSpec, HealthCheck, HealthCheckSpec, IkeSettings, IkeSpec, IpsecConnection,
    IpsecSettings, IpsecSpec, DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_RETRIES, DEFAULT_LIFETIME,
};
pub use cpe::{CpeConfig, CpeDevice, ExportFormat};
pub use device::DPD_DELAY;
pub use error::ModelError;
pub use gateway::{CustomerGateway, VpnGateway, DEFAULT_CONNECTION_LIMIT};
pub use psk::{Psk, GENERATED_PSK_LEN, MAX_PSK_LEN, MIN_PSK_LEN};
pub use route::{Route, WEIGHT_ACTIVE, WEIGHT_STANDBY};

use lines::Lines;

/// The lines each item's keys were written on, per kind of item, in item
/// order; an item added by a mutation has an empty entry.
#[derive(Debug, Clone, Default)]
struct ItemLines {
    vpn_gateways: Vec<Lines>,
    customer_gateways: Vec<Lines>,
    connections: Vec<Lines>,
    routes: Vec<Lines>,
}

/// The cloud side: what a state file holds, validated.
///
/// Getters (`vpn_gateways`, `connection`, ...) read it; commands
/// (`add_*`, [`Model::set_route_published`]) change it, validating the
/// result and leaving the model unchanged when it is refused; renderers
/// ([`Model::render_vpn_gateway`], [`Model::export`], [`Model::to_toml`])
/// write text from it. Equality compares the items, not where they were
/// read from.
#[derive(Debug, Clone)]
pub struct Model {
    path: PathBuf,
    vpn_gateways: Vec<VpnGateway>,
    customer_gateways: Vec<CustomerGateway>,
    connections: Vec<IpsecConnection>,
    routes: Vec<Route>,
    lines: ItemLines,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.vpn_gateways == other.vpn_gateways
            && self.customer_gateways == other.customer_gateways
            && self.connections == other.connections
            && self.routes == other.routes
    }
}

impl Eq for Model {}

impl Model {
    /// A model with nothing in it, to be saved to `path` (named in errors).
    pub fn empty(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            vpn_gateways: Vec::new(),
            customer_gateways: Vec::new(),
            connections: Vec::new(),
            routes: Vec::new(),
            lines: ItemLines::default(),
        }
    }

    /// Parses and validates a state file's text; `path` is named in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ModelError> {
        file::read(path, text)
    }

    /// The canonical state file: every setting spelled out, in the order
    /// gateways, customer gateways, connections, routes.
    /// `Model::parse(path, &m.to_toml()) == Ok(m)`.
    pub fn to_toml(&self) -> String {
        writer::write(self)
    }

    /// The file named in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every VPN gateway, in file order.
    pub fn vpn_gateways(&self) -> &[VpnGateway] {
        &self.vpn_gateways
    }

    /// Every customer gateway, in file order.
    pub fn customer_gateways(&self) -> &[CustomerGateway] {
        &self.customer_gateways
    }

    /// Every IPsec connection, in file order.
    pub fn connections(&self) -> &[IpsecConnection] {
        &self.connections
    }

    /// Every route, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The VPN gateway named `name`.
    pub fn vpn_gateway(&self, name: &str) -> Option<&VpnGateway> {
        self.vpn_gateways.iter().find(|g| g.name == name)
    }

    /// The customer gateway named `name`.
    pub fn customer_gateway(&self, name: &str) -> Option<&CustomerGateway> {
        self.customer_gateways.iter().find(|g| g.name == name)
    }

    /// The IPsec connection named `name`.
    pub fn connection(&self, name: &str) -> Option<&IpsecConnection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// Applies `change` to a copy, validates the copy and keeps it only if
    /// it is valid.
    fn change(&mut self, change: impl FnOnce(&mut Model)) -> Result<(), ModelError> {
        let mut next = self.clone();
        change(&mut next);
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Step 1 of the tutorial: a VPN gateway.
    pub fn add_vpn_gateway(&mut self, gateway: VpnGateway) -> Result<(), ModelError> {
        self.change(|m| {
            m.vpn_gateways.push(gateway);
            m.lines.vpn_gateways.push(Lines::default());
        })
    }

    /// Step 2: a customer gateway.
    pub fn add_customer_gateway(&mut self, gateway: CustomerGateway) -> Result<(), ModelError> {
        self.change(|m| {
            m.customer_gateways.push(gateway);
            m.lines.customer_gateways.push(Lines::default());
        })
    }

    /// Step 3: an IPsec connection. Without a key in `spec`, one is
    /// generated from `rng` ([`Psk::generate`]) and returned, so the caller
    /// can show it once; with one, `None` is returned.
    pub fn add_connection(
        &mut self,
        mut spec: ConnectionSpec,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Option<Psk>, ModelError> {
        let generated = match spec.psk {
            Some(_) => None,
            None => {
                let psk = Psk::generate(rng);
                spec.psk = Some(psk.clone());
                Some(psk)
            }
        };
        let connection = spec.resolve(&self.path, &Lines::default())?;
        self.change(|m| {
            m.connections.push(connection);
            m.lines.connections.push(Lines::default());
        })?;
        Ok(generated)
    }

    /// Step 5: a route of a VPN gateway.
    pub fn add_route(&mut self, route: Route) -> Result<(), ModelError> {
        self.change(|m| {
            m.routes.push(route);
            m.lines.routes.push(Lines::default());
        })
    }

    /// Publishes (`publish = true`) or withdraws the routes of VPN gateway
    /// `gateway` to `destination` (and `source`, for policy routes; and
    /// `next_hop` when given) in the VPC's route table. Returns how many
    /// routes matched; none is an error.
    pub fn set_route_published(
        &mut self,
        gateway: &str,
        destination: IpNet,
        source: Option<IpNet>,
        next_hop: Option<&str>,
        publish: bool,
    ) -> Result<usize, ModelError> {
        let matches = |r: &Route| {
            r.vpn_gateway == gateway
                && r.destination == destination
                && r.source == source
                && next_hop.is_none_or(|n| r.next_hop == n)
        };
        let count = self.routes.iter().filter(|r| matches(r)).count();
        if count == 0 {
            return Err(ModelError::new(
                &self.path,
                None,
                Some("route"),
                format!(
                    "VPN gateway {gateway:?} has no route to {destination}{}{}: `ipsecgw route list` shows its routes",
                    source.map(|s| format!(" from {s}")).unwrap_or_default(),
                    next_hop.map(|n| format!(" via {n:?}")).unwrap_or_default(),
                ),
            ));
        }
        self.change(|m| {
            for r in m.routes.iter_mut().filter(|r| matches(r)) {
                r.publish_to_vpc = publish;
            }
        })?;
        Ok(count)
    }
}

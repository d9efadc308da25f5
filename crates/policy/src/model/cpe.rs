//! One IPsec connection from the customer gateway's (CPE's) point of view:
//! what "download configuration" gives an on-premises engineer. Local and
//! remote are swapped relative to the cloud side: the CPE's own subnets are
//! local, the VPC's are remote.
//!
//! The three export formats and the import all go through [`CpeConfig`],
//! so an exported Alibaba JSON imports into the same CPE config that
//! `export --for ipsecgw` writes.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::connection::{weak_algorithms, IkeSettings, IpsecSettings};
use super::device::{write_connection, write_header, DeviceConnection, DeviceHeader};
use super::error::ModelError;
use super::gateway::{default_control_socket, default_tun_name, MAX_IFNAME};
use super::psk::Psk;
use super::validate::name_problem;
use super::Model;

/// Which configuration `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A complete strongSwan `swanctl.conf` (connection and secret).
    Strongswan,
    /// A complete ipsecgw device config.
    Ipsecgw,
    /// The JSON Alibaba Cloud's `DownloadVpnConnectionConfig` returns.
    Alibaba,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "strongswan" | "swanctl" => Ok(ExportFormat::Strongswan),
            "ipsecgw" => Ok(ExportFormat::Ipsecgw),
            "alibaba" | "json" => Ok(ExportFormat::Alibaba),
            other => Err(format!(
                "{other:?} is not an export format: use strongswan, ipsecgw or alibaba"
            )),
        }
    }
}

/// A connection as the CPE sees it, every choice made and both identities
/// spelled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpeConfig {
    /// The CPE device's name (the customer gateway's).
    pub gateway_name: String,
    /// The connection's name on the CPE.
    pub connection_name: String,
    /// The CPE's public address (Alibaba's `Local`).
    pub local_address: IpAddr,
    /// The VPN gateway's public address (`Remote`).
    pub remote_address: IpAddr,
    /// The data center's subnets (`LocalSubnet`).
    pub local_subnets: Vec<IpNet>,
    /// The VPC's subnets (`RemoteSubnet`).
    pub remote_subnets: Vec<IpNet>,
    /// The pre-shared key.
    pub psk: Psk,
    /// The CPE's identity (`LocalId`).
    pub local_id: String,
    /// The VPN gateway's identity (`RemoteId`).
    pub remote_id: String,
    /// Phase 1 (its `local_id`/`remote_id` are unused: see above).
    pub ike: IkeSettings,
    /// Phase 2.
    pub ipsec: IpsecSettings,
    /// Dead peer detection.
    pub dpd: bool,
    /// ESP in UDP.
    pub nat_traversal: bool,
}

/// Device settings of the CPE that the cloud side does not know: each
/// `None` keeps the default (names from the model, `ipsgw-<name>`,
/// `/run/ipsecgw/<name>.sock`, the public address the cloud knows).
#[derive(Debug, Clone, Default)]
pub struct CpeDevice {
    /// The device's `[gateway] name`.
    pub gateway_name: Option<String>,
    /// The connection's name.
    pub connection_name: Option<String>,
    /// The WAN address the device sends from, when it differs from the one
    /// the cloud knows (a CPE behind NAT).
    pub public_address: Option<IpAddr>,
    /// The TUN device.
    pub tun_name: Option<String>,
    /// The control socket.
    pub control_socket: Option<PathBuf>,
}

impl CpeConfig {
    /// The weak algorithms it uses, by the console's names.
    pub fn weak_algorithms(&self) -> Vec<&'static str> {
        weak_algorithms(&self.ike, &self.ipsec)
    }

    /// A complete ipsecgw device config for the CPE: it initiates at start
    /// (`start_action = "start"`, as a CPE facing a cloud gateway that
    /// waits for traffic must) and redials a dead peer
    /// (`dpd_action = "restart"`). `path` names the source in errors about
    /// `device`.
    pub fn to_ipsecgw(&self, path: &Path, device: &CpeDevice) -> Result<String, ModelError> {
        let err = |key: &str, message: String| ModelError::new(path, None, Some(key), message);
        let gateway_name = device
            .gateway_name
            .clone()
            .unwrap_or_else(|| self.gateway_name.clone());
        let connection_name = device
            .connection_name
            .clone()
            .unwrap_or_else(|| self.connection_name.clone());
        for (name, key) in [
            (&gateway_name, "gateway name"),
            (&connection_name, "connection name"),
        ] {
            if let Some(p) = name_problem(name) {
                return Err(err(key, p));
            }
        }
        let tun_name = device
            .tun_name
            .clone()
            .unwrap_or_else(|| default_tun_name(&gateway_name));
        if tun_name.is_empty() || tun_name.len() > MAX_IFNAME || tun_name.contains(['/', ' ', '%'])
        {
            return Err(err(
                "tun name",
                format!("{tun_name:?} is not a valid interface name: 1 to {MAX_IFNAME} characters, no '/', '%' or space"),
            ));
        }
        let control_socket = device
            .control_socket
            .clone()
            .unwrap_or_else(|| default_control_socket(&gateway_name));
        let public_address = device.public_address.unwrap_or(self.local_address);
        let weak = self.weak_algorithms();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# ipsecgw device config of the customer gateway (CPE) {gateway_name:?}:\n\
             # IPsec connection {connection_name:?} to the VPN gateway at {},\n\
             # local {} <-> remote (VPC) {}.\n\
             # Run it with `ipsecgw run --config THIS_FILE`. It holds the pre-shared\n\
             # key: keep it readable by root only (mode 0600).",
            self.remote_address,
            join(&self.local_subnets),
            join(&self.remote_subnets),
        );
        if !weak.is_empty() {
            let _ = writeln!(
                s,
                "# The connection uses weak algorithms ({}), hence legacy = true.",
                weak.join(", ")
            );
        }
        s.push('\n');
        write_header(
            &mut s,
            &DeviceHeader {
                name: &gateway_name,
                public_address,
                control_socket: &control_socket,
                tun_name: &tun_name,
                tun_address: None,
            },
        );
        write_connection(
            &mut s,
            &DeviceConnection {
                name: &connection_name,
                remote_address: self.remote_address,
                local_subnets: &self.local_subnets,
                remote_subnets: &self.remote_subnets,
                nat_traversal: self.nat_traversal,
                legacy: !weak.is_empty(),
                ike: &self.ike,
                ipsec: &self.ipsec,
                psk: &self.psk,
                local_id: &self.local_id,
                remote_id: &self.remote_id,
                start_action: "start",
                dpd: self.dpd,
                dpd_action: "restart",
                health_check: None,
            },
        );
        Ok(s)
    }
}

pub(crate) fn join(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Model {
    /// The identity the VPN gateway presents in connection `c`: its
    /// `ike.local_id`, else the gateway's public address.
    pub fn local_id(&self, c: &super::IpsecConnection) -> String {
        c.ike.local_id.clone().unwrap_or_else(|| {
            self.vpn_gateway(&c.vpn_gateway)
                .map(|g| g.public_address.to_string())
                .unwrap_or_default()
        })
    }

    /// The identity the customer gateway must present in connection `c`:
    /// its `ike.remote_id`, else the customer gateway's identity, else its
    /// public address.
    pub fn remote_id(&self, c: &super::IpsecConnection) -> String {
        c.ike.remote_id.clone().unwrap_or_else(|| {
            self.customer_gateway(&c.customer_gateway)
                .map(|g| {
                    g.identity
                        .clone()
                        .unwrap_or_else(|| g.public_address.to_string())
                })
                .unwrap_or_default()
        })
    }

    /// Connection `connection` from the CPE's point of view.
    pub fn cpe_config(&self, connection: &str) -> Result<CpeConfig, ModelError> {
        let c = self.connection(connection).ok_or_else(|| {
            let known: Vec<&str> = self.connections.iter().map(|c| c.name.as_str()).collect();
            ModelError::new(
                &self.path,
                None,
                Some("ipsec_connection"),
                format!("no IPsec connection is named {connection:?} (known: {known:?})"),
            )
        })?;
        let (Some(vpn), Some(cgw)) = (
            self.vpn_gateway(&c.vpn_gateway),
            self.customer_gateway(&c.customer_gateway),
        ) else {
            return Err(ModelError::new(
                &self.path,
                None,
                Some("ipsec_connection"),
                format!("connection {connection:?} names a gateway that does not exist"),
            ));
        };
        Ok(CpeConfig {
            gateway_name: cgw.name.clone(),
            connection_name: c.name.clone(),
            local_address: cgw.public_address,
            remote_address: vpn.public_address,
            local_subnets: c.remote_subnets.clone(),
            remote_subnets: c.local_subnets.clone(),
            psk: c.psk.clone(),
            local_id: self.remote_id(c),
            remote_id: self.local_id(c),
            ike: IkeSettings {
                local_id: None,
                remote_id: None,
                ..c.ike.clone()
            },
            ipsec: c.ipsec.clone(),
            dpd: c.dpd,
            nat_traversal: c.nat_traversal,
        })
    }

    /// The configuration of the customer gateway's device for connection
    /// `connection`, written from its point of view (local and remote
    /// swapped), pre-shared key and proposals included, ready to load as
    /// it is: see [`ExportFormat`]. The text holds the key: write it to a
    /// file only the device's administrator can read.
    pub fn export(&self, connection: &str, format: ExportFormat) -> Result<String, ModelError> {
        self.export_with(connection, format, &CpeDevice::default())
    }

    /// [`Model::export`] with device settings for the ipsecgw format (the
    /// other formats ignore them).
    pub fn export_with(
        &self,
        connection: &str,
        format: ExportFormat,
        device: &CpeDevice,
    ) -> Result<String, ModelError> {
        let cpe = self.cpe_config(connection)?;
        match format {
            ExportFormat::Strongswan => Ok(cpe.to_swanctl()),
            ExportFormat::Ipsecgw => cpe.to_ipsecgw(&self.path, device),
            ExportFormat::Alibaba => Ok(cpe.to_alibaba_json()),
        }
    }
}

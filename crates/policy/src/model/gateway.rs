//! The two kinds of gateway of the product: the VPN gateway in front of a
//! VPC (the cloud side) and the customer gateway that registers an
//! on-premises device (the CPE).

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// How many IPsec connections a VPN gateway takes unless told otherwise:
/// the product's limit ("up to 10 IPsec-VPN connections", seed tutorial).
pub const DEFAULT_CONNECTION_LIMIT: u32 = 10;

/// Linux limits interface names to IFNAMSIZ - 1 bytes.
pub(crate) const MAX_IFNAME: usize = 15;

/// A VPN gateway: the cloud end of IPsec connections, fronting one VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnGateway {
    /// Name, unique among VPN gateways.
    pub name: String,
    /// The public (WAN) address IKE and ESP use.
    pub public_address: IpAddr,
    /// The VPC it fronts, by name.
    pub vpc: String,
    /// That VPC's CIDR blocks: no remote (on-premises) subnet may overlap them.
    pub vpc_cidr: Vec<IpNet>,
    /// How many IPsec connections it takes.
    pub connection_limit: u32,
    /// The bandwidth of the product's specification, in Mbit/s: a note, not
    /// enforced.
    pub bandwidth_mbps: Option<u32>,
    /// The TUN device of the rendered device config (default
    /// `ipsgw-<name>`, cut to 15 characters).
    pub tun_name: Option<String>,
    /// The control socket of the rendered device config (default
    /// `/run/ipsecgw/<name>.sock`).
    pub control_socket: Option<PathBuf>,
    /// An address for the TUN device (the source of the ICMP errors the
    /// gateway sends), if any.
    pub tun_address: Option<IpNet>,
}

impl VpnGateway {
    /// A VPN gateway with the product's defaults for everything else.
    pub fn new(name: &str, public_address: IpAddr, vpc: &str, vpc_cidr: Vec<IpNet>) -> Self {
        Self {
            name: name.to_owned(),
            public_address,
            vpc: vpc.to_owned(),
            vpc_cidr,
            connection_limit: DEFAULT_CONNECTION_LIMIT,
            bandwidth_mbps: None,
            tun_name: None,
            control_socket: None,
            tun_address: None,
        }
    }

    /// The TUN device name the device config gets.
    pub fn tun_name_or_default(&self) -> String {
        self.tun_name
            .clone()
            .unwrap_or_else(|| default_tun_name(&self.name))
    }

    /// The control socket the device config gets.
    pub fn control_socket_or_default(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| default_control_socket(&self.name))
    }
}

/// A customer gateway: the on-premises device, as the cloud knows it. One
/// customer gateway may serve several VPN gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerGateway {
    /// Name, unique among customer gateways.
    pub name: String,
    /// The device's public address (a static one, as the tutorial requires).
    pub public_address: IpAddr,
    /// The IKE identity it presents (an FQDN or an address), if not its
    /// public address.
    pub identity: Option<String>,
    /// Its BGP AS number: a note (this gateway routes statically).
    pub asn: Option<u32>,
}

impl CustomerGateway {
    /// A customer gateway identified by its address.
    pub fn new(name: &str, public_address: IpAddr) -> Self {
        Self {
            name: name.to_owned(),
            public_address,
            identity: None,
            asn: None,
        }
    }
}

/// `ipsgw-<name>`, cut to what Linux takes.
pub(crate) fn default_tun_name(name: &str) -> String {
    let mut s = format!("ipsgw-{name}");
    while s.len() > MAX_IFNAME {
        s.pop();
    }
    s
}

/// Where the daemon's own default puts the control socket.
pub(crate) fn default_control_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/ipsecgw/{name}.sock"))
}

//! The JSON of Alibaba Cloud's `DownloadVpnConnectionConfig`: written for
//! `ipsecgw export --for alibaba`, and read back from a file downloaded from
//! the real console by `ipsecgw import`, which turns it into a CPE config.
//!
//! The API's reference (alibabacloud.com/help/doc-detail/53053.htm,
//! "DownloadVpnConnectionConfig", updated Aug 2023) describes the response
//! as "the configurations of the peer gateway device", i.e. the CPE's view:
//! `Local` is "the identifier of the customer gateway" and `Remote` "the
//! identifier of the VPN gateway"; `LocalSubnet` is "the CIDR block on the
//! data center side" and `RemoteSubnet` "the CIDR block on the virtual
//! private cloud (VPC) side"; `IkeConfig.LocalId` is the customer gateway's
//! identity and `RemoteId` the VPN gateway's (FQDN or IP, defaulting to the
//! addresses). Its examples spell the values `"ikev1"`/`"ikev2"`, `"main"`,
//! `"aes"`, `"sha1"`, `"group2"`, lifetimes as numbers (`86400`), and the
//! API takes several CIDR blocks comma-separated (`"10.1.1.0/24,10.1.2.0/24"`,
//! ModifyVpnConnectionAttribute, CreateVpnConnection). An older revision of
//! the same page (doc-detail/120377) words `LocalId` as the VPN gateway's;
//! the CPE's view is the one its examples and the newer page agree on.
//! PFS off is written `"disabled"`, the console's word for it (the API
//! page's examples show only groups). The file says nothing of DPD and NAT
//! traversal; "Create and manage IPsec-VPN connections in single-tunnel
//! mode" has both enabled by default, so an import turns both on.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Map, Value};

use super::algorithm::{parse_pfs, pfs_name, DhGroup, Encryption, Integrity};
use super::connection::{IkeSettings, IpsecSettings, DEFAULT_LIFETIME};
use super::cpe::{join, CpeConfig};
use super::error::ModelError;
use super::psk::Psk;
use super::validate::identity_problem;

/// The CPE device's name when an imported file does not say (it never does).
pub const IMPORTED_GATEWAY_NAME: &str = "cpe";
/// The connection's name on an imported CPE.
pub const IMPORTED_CONNECTION_NAME: &str = "alibaba-vpn";

#[derive(Serialize)]
struct Download<'a> {
    #[serde(rename = "VpnConnectionConfig")]
    config: VpnConnectionConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VpnConnectionConfig<'a> {
    local_subnet: String,
    remote_subnet: String,
    local: String,
    remote: String,
    ike_config: IkeConfig<'a>,
    ipsec_config: IpsecConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IkeConfig<'a> {
    psk: &'a str,
    ike_version: &'static str,
    ike_mode: &'static str,
    ike_enc_alg: &'static str,
    ike_auth_alg: &'static str,
    ike_pfs: &'static str,
    ike_lifetime: u64,
    local_id: &'a str,
    remote_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IpsecConfig {
    ipsec_enc_alg: &'static str,
    ipsec_auth_alg: &'static str,
    ipsec_pfs: &'static str,
    ipsec_lifetime: u64,
}

impl CpeConfig {
    /// The JSON `DownloadVpnConnectionConfig` returns for this connection
    /// (without the `RequestId` of an API call), pretty-printed.
    pub fn to_alibaba_json(&self) -> String {
        let doc = Download {
            config: VpnConnectionConfig {
                local_subnet: join(&self.local_subnets),
                remote_subnet: join(&self.remote_subnets),
                local: self.local_address.to_string(),
                remote: self.remote_address.to_string(),
                ike_config: IkeConfig {
                    psk: self.psk.expose(),
                    ike_version: "ikev2",
                    ike_mode: "main",
                    ike_enc_alg: self.ike.encryption.name(),
                    ike_auth_alg: self.ike.integrity.name(),
                    ike_pfs: self.ike.dh_group.name(),
                    ike_lifetime: self.ike.lifetime,
                    local_id: &self.local_id,
                    remote_id: &self.remote_id,
                },
                ipsec_config: IpsecConfig {
                    ipsec_enc_alg: self.ipsec.encryption.name(),
                    ipsec_auth_alg: self.ipsec.integrity.name(),
                    ipsec_pfs: pfs_name(self.ipsec.pfs),
                    ipsec_lifetime: self.ipsec.lifetime,
                },
            },
        };
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Reads one JSON object's fields, naming each by its path in errors.
struct Fields<'a> {
    path: &'a Path,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn err(&self, name: &str, message: impl Into<String>) -> ModelError {
        ModelError::new(self.path, None, Some(&self.key(name)), message)
    }

    fn object(&self, name: &str) -> Result<Fields<'a>, ModelError> {
        match self.map.get(name) {
            Some(Value::Object(map)) => Ok(Fields {
                path: self.path,
                prefix: format!("{}.", self.key(name)),
                map,
            }),
            Some(_) => Err(self.err(name, "must be a JSON object")),
            None => Err(self.err(
                name,
                "is missing: is this a DownloadVpnConnectionConfig file?",
            )),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<&'a str>, ModelError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(self.err(name, "must be a string")),
        }
    }

    fn string(&self, name: &str) -> Result<&'a str, ModelError> {
        self.opt_string(name)?
            .ok_or_else(|| self.err(name, "is missing or empty"))
    }

    /// A number of seconds: the API returns a number; a numeric string is
    /// taken too. Missing: the product's default.
    fn lifetime(&self, name: &str) -> Result<u64, ModelError> {
        let value = match self.map.get(name) {
            None | Some(Value::Null) => return Ok(DEFAULT_LIFETIME),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match value {
            Some(v) if v == 0 || (10..=DEFAULT_LIFETIME).contains(&v) => Ok(v),
            _ => Err(self.err(
                name,
                format!("must be a number of seconds, 0 or 10 to {DEFAULT_LIFETIME}"),
            )),
        }
    }

    fn address(&self, name: &str) -> Result<IpAddr, ModelError> {
        let s = self.string(name)?;
        s.parse().map_err(|_| {
            self.err(
                name,
                format!("{s:?} is not an IP address (a masked address such as 116.62.XX.XX from the documentation will not do)"),
            )
        })
    }

    /// Comma-separated CIDR blocks; a bare address is its host prefix.
    fn subnets(&self, name: &str) -> Result<Vec<IpNet>, ModelError> {
        let s = self.string(name)?;
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    self.err(
                        name,
                        format!("{part:?} is not a CIDR block: the field lists blocks like \"10.1.1.0/24\", separated by commas"),
                    )
                })?;
            if net.trunc() != net {
                return Err(self.err(
                    name,
                    format!("{net} has host bits set: did you mean {}?", net.trunc()),
                ));
            }
            out.push(net);
        }
        if out.is_empty() {
            return Err(self.err(name, "lists no CIDR block"));
        }
        Ok(out)
    }

    fn encryption(&self, name: &str) -> Result<Encryption, ModelError> {
        let s = self.string(name)?;
        Encryption::parse(s).ok_or_else(|| {
            self.err(
                name,
                format!(
                    "{s:?} is not an encryption algorithm ipsecgw knows from Alibaba Cloud: expected aes, aes192, aes256, des or 3des"
                ),
            )
        })
    }

    fn integrity(&self, name: &str) -> Result<Integrity, ModelError> {
        let s = self.string(name)?;
        Integrity::parse(s).ok_or_else(|| {
            self.err(
                name,
                format!(
                    "{s:?} is not an integrity algorithm ipsecgw knows from Alibaba Cloud: expected md5, sha1, sha256, sha384 or sha512"
                ),
            )
        })
    }
}

/// Reads the JSON of `DownloadVpnConnectionConfig` (as the console's
/// download or the API returns it: with or without the outer
/// `VpnConnectionConfig` object and `RequestId`; unknown fields ignored)
/// into the CPE's configuration, named [`IMPORTED_GATEWAY_NAME`] and
/// [`IMPORTED_CONNECTION_NAME`] unless renamed when rendered. Alibaba's
/// file says nothing of DPD and NAT traversal, which the console turns on
/// by default: both are on. Errors name the JSON field (`path` is the
/// file's, for messages).
pub fn import_alibaba(path: &Path, json: &str) -> Result<CpeConfig, ModelError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| ModelError::new(path, Some(e.line()), None, format!("not valid JSON: {e}")))?;
    let Value::Object(map) = &root else {
        return Err(ModelError::new(
            path,
            None,
            None,
            "expected a JSON object, as DownloadVpnConnectionConfig returns",
        ));
    };
    let top = Fields {
        path,
        prefix: String::new(),
        map,
    };
    let config = if map.contains_key("VpnConnectionConfig") {
        top.object("VpnConnectionConfig")?
    } else {
        top
    };
    if !config.map.contains_key("IkeConfig") && config.map.contains_key("TunnelsConfig") {
        return Err(config.err(
            "TunnelsConfig",
            "this connection is in dual-tunnel mode, which ipsecgw does not import: download the configuration of a single-tunnel connection",
        ));
    }
    let local_subnets = config.subnets("LocalSubnet")?;
    let remote_subnets = config.subnets("RemoteSubnet")?;
    let local_address = config.address("Local")?;
    let remote_address = config.address("Remote")?;
    for r in &remote_subnets {
        if let Some(l) = local_subnets
            .iter()
            .find(|l| l.contains(&r.network()) || r.contains(&l.network()))
        {
            return Err(config.err(
                "RemoteSubnet",
                format!("{r} overlaps LocalSubnet {l}: the address blocks of the VPC and the data center must not conflict"),
            ));
        }
    }
    if local_address.is_ipv4() != remote_address.is_ipv4() {
        return Err(config.err(
            "Remote",
            format!("{remote_address} and Local {local_address} are of different IP versions: IKE cannot run between them"),
        ));
    }
    let ike = config.object("IkeConfig")?;
    let ipsec = config.object("IpsecConfig")?;

    match ike.opt_string("IkeVersion")?.map(str::to_ascii_lowercase).as_deref() {
        None | Some("ikev2") => {}
        Some("ikev1") => {
            return Err(ike.err(
                "IkeVersion",
                "this gateway speaks IKEv2 only (IKEv1 is not supported): set the connection's IKE version to ikev2 in Alibaba Cloud's console, then download the configuration again",
            ))
        }
        Some(other) => {
            return Err(ike.err(
                "IkeVersion",
                format!("{other:?} is not an IKE version: expected ikev2"),
            ))
        }
    }
    // Negotiation modes are IKEv1's: with IKEv2 the field is ignored, but
    // it must still be one of the console's two words.
    if let Some(mode) = ike.opt_string("IkeMode")? {
        if !["main", "aggressive"].contains(&mode.to_ascii_lowercase().as_str()) {
            return Err(ike.err(
                "IkeMode",
                format!(
                    "{mode:?} is not an IKE mode: expected main or aggressive (ignored with IKEv2)"
                ),
            ));
        }
    }
    let psk = Psk::new(ike.string("Psk")?);
    if let Some(p) = psk.problem() {
        return Err(ike.err("Psk", p));
    }
    let dh = ike.string("IkePfs")?;
    let dh_group = DhGroup::parse(dh).ok_or_else(|| {
        ike.err(
            "IkePfs",
            format!("{dh:?} is not a DH group ipsecgw knows from Alibaba Cloud: expected group1, group2, group5 or group14"),
        )
    })?;
    let pfs_text = ipsec.opt_string("IpsecPfs")?.unwrap_or("disabled");
    let pfs = parse_pfs(pfs_text).ok_or_else(|| {
        ipsec.err(
            "IpsecPfs",
            format!("{pfs_text:?} is not a PFS setting ipsecgw knows from Alibaba Cloud: expected disabled, group1, group2, group5 or group14"),
        )
    })?;
    let local_id = match ike.opt_string("LocalId")? {
        Some(id) => id.to_owned(),
        None => local_address.to_string(),
    };
    let remote_id = match ike.opt_string("RemoteId")? {
        Some(id) => id.to_owned(),
        None => remote_address.to_string(),
    };
    for (id, name) in [(&local_id, "LocalId"), (&remote_id, "RemoteId")] {
        if let Some(p) = identity_problem(id) {
            return Err(ike.err(name, p));
        }
    }
    Ok(CpeConfig {
        gateway_name: IMPORTED_GATEWAY_NAME.into(),
        connection_name: IMPORTED_CONNECTION_NAME.into(),
        local_address,
        remote_address,
        local_subnets,
        remote_subnets,
        psk,
        local_id,
        remote_id,
        ike: IkeSettings {
            encryption: ike.encryption("IkeEncAlg")?,
            integrity: ike.integrity("IkeAuthAlg")?,
            dh_group,
            lifetime: ike.lifetime("IkeLifetime")?,
            local_id: None,
            remote_id: None,
        },
        ipsec: IpsecSettings {
            encryption: ipsec.encryption("IpsecEncAlg")?,
            integrity: ipsec.integrity("IpsecAuthAlg")?,
            pfs,
            lifetime: ipsec.lifetime("IpsecLifetime")?,
        },
        dpd: true,
        nat_traversal: true,
    })
}

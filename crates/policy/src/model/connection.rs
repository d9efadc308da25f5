//! IPsec connections: a VPN gateway and a customer gateway, the subnets on
//! each side, the two negotiation phases' settings and the key.
//!
//! A connection is written (state file, create command) as a
//! [`ConnectionSpec`], where most keys may be left out, and resolved into an
//! [`IpsecConnection`], where every choice is made: explicit keys first,
//! then the profile's, then the defaults ([`Suite::DEFAULT`], 86400 s).

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::algorithm::{parse_pfs, DhGroup, Encryption, Integrity, Profile, Suite};
use super::error::ModelError;
use super::lines::Lines;
use super::psk::Psk;

/// SA lifetime when none is given, and the largest the product takes (s).
pub const DEFAULT_LIFETIME: u64 = 86_400;
/// The health check's defaults (the product's): a probe every 3 s, 3 lost
/// in a row mark the connection down.
pub const DEFAULT_HEALTH_INTERVAL: u32 = 3;
/// See [`DEFAULT_HEALTH_INTERVAL`].
pub const DEFAULT_HEALTH_RETRIES: u32 = 3;

/// A connection with every choice made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecConnection {
    /// Name, unique among connections.
    pub name: String,
    /// The VPN gateway (cloud end), by name.
    pub vpn_gateway: String,
    /// The customer gateway (on-premises end), by name.
    pub customer_gateway: String,
    /// The cloud side's subnets.
    pub local_subnets: Vec<IpNet>,
    /// The on-premises side's subnets.
    pub remote_subnets: Vec<IpNet>,
    /// Negotiate as soon as the connection exists (`true`), or when the
    /// first packet for the remote subnets arrives (`false`, the API's
    /// default).
    pub effect_immediately: bool,
    /// The pre-shared key.
    pub psk: Psk,
    /// Dead peer detection.
    pub dpd: bool,
    /// NAT traversal: ESP in UDP 4500 (RFC 3948) instead of raw ESP.
    pub nat_traversal: bool,
    /// The preset the connection was created from, kept as a note: the
    /// settings below are what counts.
    pub profile: Option<Profile>,
    /// Whether DES, 3DES, MD5 and groups 1, 2 and 5 are accepted.
    pub legacy: bool,
    /// Phase 1 (IKE SA).
    pub ike: IkeSettings,
    /// Phase 2 (CHILD SA).
    pub ipsec: IpsecSettings,
    /// The ICMP health check, if any.
    pub health_check: Option<HealthCheck>,
}

/// Phase 1: the IKE SA. The version is always IKEv2 and the mode, an IKEv1
/// notion, is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSettings {
    /// Encryption.
    pub encryption: Encryption,
    /// Integrity and PRF.
    pub integrity: Integrity,
    /// DH group.
    pub dh_group: DhGroup,
    /// Lifetime in seconds, 0 to 86400 (0: no time-based rekeying).
    pub lifetime: u64,
    /// The VPN gateway's identity; `None`: its public address.
    pub local_id: Option<String>,
    /// The identity the customer gateway must present; `None`: its
    /// `identity`, else its public address.
    pub remote_id: Option<String>,
}

/// Phase 2: the CHILD SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecSettings {
    /// Encryption.
    pub encryption: Encryption,
    /// Integrity.
    pub integrity: Integrity,
    /// DH group of rekeys (perfect forward secrecy), or none.
    pub pfs: Option<DhGroup>,
    /// Lifetime in seconds, 0 to 86400.
    pub lifetime: u64,
}

/// ICMP from `source` (in the local subnets) to `destination` (in the
/// remote subnets) across the tunnel; `retries` lost in a row withdraw the
/// connection's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// The probe's source address, on the cloud side.
    pub source: IpAddr,
    /// The address probed, on the premises.
    pub destination: IpAddr,
    /// Seconds between probes (1 to 60).
    pub interval: u32,
    /// Probes lost in a row before the connection is down (1 to 10).
    pub retries: u32,
}

impl IpsecConnection {
    /// The IKE proposal in strongSwan's notation, as both strongSwan and
    /// ipsecgw configs take it: `aes256-sha256-modp2048`.
    pub fn ike_proposal(&self) -> String {
        self.ike.proposal()
    }

    /// The ESP transform in strongSwan's notation, without the PFS group:
    /// `aes256-sha256`.
    pub fn esp_proposal(&self) -> String {
        self.ipsec.proposal()
    }

    /// The weak algorithms the connection uses (`legacy = true` needed),
    /// by the console's names, each once.
    pub fn weak_algorithms(&self) -> Vec<&'static str> {
        weak_algorithms(&self.ike, &self.ipsec)
    }
}

impl IkeSettings {
    /// The IKE proposal in strongSwan's notation: `aes256-sha256-modp2048`
    /// (the PRF follows the integrity hash, as strongSwan and ipsecgw
    /// derive it).
    pub fn proposal(&self) -> String {
        format!(
            "{}-{}-{}",
            self.encryption.strongswan(),
            self.integrity.name(),
            self.dh_group.strongswan()
        )
    }
}

impl IpsecSettings {
    /// The ESP transform in strongSwan's notation: `aes256-sha256`.
    pub fn proposal(&self) -> String {
        format!("{}-{}", self.encryption.strongswan(), self.integrity.name())
    }

    /// strongSwan's `esp_proposals`: the transform with the PFS group
    /// appended when PFS is on (`aes256-sha256-modp2048`), which strongSwan
    /// then uses for rekeys only, as RFC 7296 §1.2 has it.
    pub fn strongswan_proposal(&self) -> String {
        match self.pfs {
            Some(g) => format!("{}-{}", self.proposal(), g.strongswan()),
            None => self.proposal(),
        }
    }
}

/// The weak algorithms of a pair of phase settings, by the console's names,
/// each once, in the order phase 1 then phase 2.
pub(crate) fn weak_algorithms(ike: &IkeSettings, ipsec: &IpsecSettings) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let names = [
        (ike.encryption.is_legacy(), ike.encryption.name()),
        (ike.integrity.is_legacy(), ike.integrity.name()),
        (ike.dh_group.is_legacy(), ike.dh_group.name()),
        (ipsec.encryption.is_legacy(), ipsec.encryption.name()),
        (ipsec.integrity.is_legacy(), ipsec.integrity.name()),
        (
            ipsec.pfs.is_some_and(DhGroup::is_legacy),
            ipsec.pfs.map_or("", DhGroup::name),
        ),
    ];
    for (weak, name) in names {
        if weak && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// A connection as written: what a state file's `[[ipsec_connection]]` or
/// `ipsecgw ipsec-connection create` gives. `None` takes the profile's
/// value, else the default. Build it with [`ConnectionSpec::new`] and set
/// what differs.
#[derive(Debug, Clone, Default)]
pub struct ConnectionSpec {
    /// Name.
    pub name: String,
    /// The VPN gateway, by name.
    pub vpn_gateway: String,
    /// The customer gateway, by name.
    pub customer_gateway: String,
    /// Cloud-side subnets.
    pub local_subnets: Vec<IpNet>,
    /// On-premises subnets.
    pub remote_subnets: Vec<IpNet>,
    /// Negotiate now instead of on the first packet.
    pub effect_immediately: bool,
    /// The key; [`super::Model::add_connection`] generates one when `None`.
    pub psk: Option<Psk>,
    /// DPD (default on).
    pub dpd: Option<bool>,
    /// NAT traversal (default on).
    pub nat_traversal: Option<bool>,
    /// A preset's name (`alibaba-default`).
    pub profile: Option<String>,
    /// Accept the weak algorithms.
    pub legacy: bool,
    /// Phase 1 as written.
    pub ike: IkeSpec,
    /// Phase 2 as written.
    pub ipsec: IpsecSpec,
    /// The health check as written.
    pub health_check: Option<HealthCheckSpec>,
}

/// Phase 1 as written: the console's names, any left out.
#[derive(Debug, Clone, Default)]
pub struct IkeSpec {
    /// `ikev2` (`ikev1` is refused with what to do instead).
    pub version: Option<String>,
    /// `main` (an IKEv1 notion, ignored with IKEv2).
    pub mode: Option<String>,
    /// `aes`, `aes192`, `aes256`, `des`, `3des`.
    pub encryption: Option<String>,
    /// `md5`, `sha1`, `sha256`, `sha384`, `sha512`.
    pub integrity: Option<String>,
    /// `group1`, `group2`, `group5`, `group14`.
    pub dh_group: Option<String>,
    /// Seconds.
    pub lifetime: Option<u64>,
    /// The VPN gateway's identity.
    pub local_id: Option<String>,
    /// The customer gateway's identity.
    pub remote_id: Option<String>,
}

/// Phase 2 as written.
#[derive(Debug, Clone, Default)]
pub struct IpsecSpec {
    /// As for phase 1.
    pub encryption: Option<String>,
    /// As for phase 1.
    pub integrity: Option<String>,
    /// A group, or `disabled`.
    pub pfs: Option<String>,
    /// Seconds.
    pub lifetime: Option<u64>,
}

/// The health check as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// An address in the local subnets.
    pub source: IpAddr,
    /// An address in the remote subnets.
    pub destination: IpAddr,
    /// Seconds (default 3).
    pub interval: Option<u32>,
    /// Default 3.
    pub retries: Option<u32>,
}

impl ConnectionSpec {
    /// A connection between the two gateways for these subnets, everything
    /// else left to the defaults.
    pub fn new(
        name: &str,
        vpn_gateway: &str,
        customer_gateway: &str,
        local_subnets: Vec<IpNet>,
        remote_subnets: Vec<IpNet>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            vpn_gateway: vpn_gateway.to_owned(),
            customer_gateway: customer_gateway.to_owned(),
            local_subnets,
            remote_subnets,
            ..Self::default()
        }
    }

    /// Makes every choice. Only names are checked here (algorithms, the
    /// profile, the IKE version and mode); whether the whole fits together
    /// is [`super::Model`]'s validation. `lines` says where each key was
    /// written, for messages.
    pub(crate) fn resolve(self, path: &Path, lines: &Lines) -> Result<IpsecConnection, ModelError> {
        let err = |key: &str, message: String| lines.error(path, key, message);
        let profile = match &self.profile {
            None => None,
            Some(p) => Some(Profile::parse(p).ok_or_else(|| {
                err(
                    "ipsec_connection.profile",
                    format!(
                        "{p:?} is not a profile: use \"alibaba-default\" (the console's defaults: aes / md5 / group2, 86400 s; needs legacy = true), or leave it out for aes256 / sha256 / group14"
                    ),
                )
            })?),
        };
        let suite = profile.map_or(Suite::DEFAULT, Profile::suite);
        if let Some(v) = &self.ike.version {
            match v.trim().to_ascii_lowercase().as_str() {
                "ikev2" | "2" => {}
                "ikev1" | "1" => {
                    return Err(err(
                        "ipsec_connection.ike.version",
                        "this gateway speaks IKEv2 only (IKEv1 is not supported): set version = \"ikev2\" here, and choose IKEv2 on the customer gateway's device too".into(),
                    ))
                }
                other => {
                    return Err(err(
                        "ipsec_connection.ike.version",
                        format!("{other:?} is not an IKE version: use \"ikev2\""),
                    ))
                }
            }
        }
        if let Some(m) = &self.ike.mode {
            if !m.trim().eq_ignore_ascii_case("main") {
                return Err(err(
                    "ipsec_connection.ike.mode",
                    format!(
                        "{m:?} is not accepted: use \"main\" (the console's default). Negotiation modes are an IKEv1 notion; with IKEv2, which this gateway speaks, the mode is ignored"
                    ),
                ));
            }
        }
        let encryption = |v: &Option<String>, key: &str, default: Encryption| {
            match v {
            None => Ok(default),
            Some(s) => Encryption::parse(s).ok_or_else(|| {
                err(
                    key,
                    format!(
                        "{s:?} is not an encryption algorithm Alibaba Cloud's VPN gateway offers: use {}",
                        Encryption::valid()
                    ),
                )
            }),
        }
        };
        let integrity = |v: &Option<String>, key: &str, default: Integrity| {
            match v {
            None => Ok(default),
            Some(s) => Integrity::parse(s).ok_or_else(|| {
                err(
                    key,
                    format!(
                        "{s:?} is not an integrity algorithm Alibaba Cloud's VPN gateway offers: use {}",
                        Integrity::valid()
                    ),
                )
            }),
        }
        };
        let dh_group = match &self.ike.dh_group {
            None => suite.dh_group,
            Some(s) => DhGroup::parse(s).ok_or_else(|| {
                err(
                    "ipsec_connection.ike.dh_group",
                    format!(
                        "{s:?} is not a DH group Alibaba Cloud's VPN gateway offers: use {}",
                        DhGroup::valid()
                    ),
                )
            })?,
        };
        let pfs = match &self.ipsec.pfs {
            None => suite.pfs,
            Some(s) => parse_pfs(s).ok_or_else(|| {
                err(
                    "ipsec_connection.ipsec.pfs",
                    format!(
                        "{s:?} is not a PFS setting Alibaba Cloud's VPN gateway offers: use disabled, {}",
                        DhGroup::valid()
                    ),
                )
            })?,
        };
        let ike_encryption = encryption(
            &self.ike.encryption,
            "ipsec_connection.ike.encryption",
            suite.ike_encryption,
        )?;
        let ike_integrity = integrity(
            &self.ike.integrity,
            "ipsec_connection.ike.integrity",
            suite.ike_integrity,
        )?;
        let ipsec_encryption = encryption(
            &self.ipsec.encryption,
            "ipsec_connection.ipsec.encryption",
            suite.ipsec_encryption,
        )?;
        let ipsec_integrity = integrity(
            &self.ipsec.integrity,
            "ipsec_connection.ipsec.integrity",
            suite.ipsec_integrity,
        )?;
        let Some(psk) = self.psk else {
            return Err(err(
                "ipsec_connection.psk",
                format!(
                    "connection {:?} has no pre-shared key: run `ipsecgw ipsec-connection create`, which generates one, or set psk",
                    self.name
                ),
            ));
        };
        Ok(IpsecConnection {
            ike: IkeSettings {
                encryption: ike_encryption,
                integrity: ike_integrity,
                dh_group,
                lifetime: self.ike.lifetime.unwrap_or(DEFAULT_LIFETIME),
                local_id: self.ike.local_id,
                remote_id: self.ike.remote_id,
            },
            ipsec: IpsecSettings {
                encryption: ipsec_encryption,
                integrity: ipsec_integrity,
                pfs,
                lifetime: self.ipsec.lifetime.unwrap_or(DEFAULT_LIFETIME),
            },
            health_check: self.health_check.map(|h| HealthCheck {
                source: h.source,
                destination: h.destination,
                interval: h.interval.unwrap_or(DEFAULT_HEALTH_INTERVAL),
                retries: h.retries.unwrap_or(DEFAULT_HEALTH_RETRIES),
            }),
            name: self.name,
            vpn_gateway: self.vpn_gateway,
            customer_gateway: self.customer_gateway,
            local_subnets: self.local_subnets,
            remote_subnets: self.remote_subnets,
            effect_immediately: self.effect_immediately,
            psk,
            dpd: self.dpd.unwrap_or(true),
            nat_traversal: self.nat_traversal.unwrap_or(true),
            profile,
            legacy: self.legacy,
        })
    }
}

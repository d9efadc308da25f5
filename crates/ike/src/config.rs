//! What the negotiator is told about each connection.

use std::net::IpAddr;
use std::time::Duration;

use ipsecgw_policy::TrafficSelector;
use zeroize::Zeroizing;

use crate::proposal::{EspProposal, IkeProposal};
use crate::wire::{IdType, Identification};

/// One connection the endpoint may initiate or answer.
#[derive(Clone)]
pub struct ConnectionConfig {
    /// Name, for logs and events.
    pub name: String,
    /// The peer's address; an IKE_SA_INIT from it is matched to this
    /// connection.
    pub remote_addr: IpAddr,
    /// Our identity (IDi or IDr).
    pub local_id: Identification,
    /// The identity the peer must present.
    pub remote_id: Identification,
    /// The pre-shared key (RFC 7296 §2.15).
    pub psk: Zeroizing<Vec<u8>>,
    /// IKE proposals, most preferred first.
    pub ike_proposals: Vec<IkeProposal>,
    /// ESP proposals, most preferred first.
    pub esp_proposals: Vec<EspProposal>,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Always use UDP encapsulation (port 4500), as if behind a NAT.
    pub force_encap: bool,
    /// Idle time after which a liveness check is sent; `None` disables DPD.
    pub dpd_delay: Option<Duration>,
    /// IKE SA lifetime: rekeyed at 80–90 % of it; `None`: never.
    pub ike_lifetime: Option<Duration>,
    /// CHILD SA lifetime: rekeyed at 80–90 % of it; `None`: never.
    pub child_lifetime: Option<Duration>,
    /// DH group for CHILD SA rekeys (perfect forward secrecy), if any.
    pub pfs: Option<crate::crypto::DhGroup>,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("name", &self.name)
            .field("remote_addr", &self.remote_addr)
            .field("ike_proposals", &self.ike_proposals)
            .field("esp_proposals", &self.esp_proposals)
            .field("psk", &"redacted")
            .finish_non_exhaustive()
    }
}

/// Endpoint-wide settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The connections, by index.
    pub connections: Vec<ConnectionConfig>,
    /// First retransmission timeout (RFC 7296 §2.4); doubled each time.
    pub retransmit_timeout: Duration,
    /// Retransmissions before the peer is declared dead.
    pub retransmit_tries: u32,
    /// Half-open IKE SAs above which a responder demands a COOKIE (§2.6).
    pub cookie_threshold: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            connections: Vec::new(),
            retransmit_timeout: Duration::from_secs(1),
            retransmit_tries: 5,
            cookie_threshold: 64,
        }
    }
}

/// An identity from the text a config holds: an IP address becomes
/// ID_IPV4_ADDR / ID_IPV6_ADDR, `@name` or anything with a dot becomes
/// ID_FQDN, `keyid:...` becomes ID_KEY_ID (RFC 7296 §3.5).
pub fn identity_from_str(s: &str) -> Identification {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => Identification {
                kind: IdType::Ipv4Addr,
                data: v4.octets().to_vec(),
            },
            IpAddr::V6(v6) => Identification {
                kind: IdType::Ipv6Addr,
                data: v6.octets().to_vec(),
            },
        };
    }
    if let Some(k) = s.strip_prefix("keyid:") {
        return Identification {
            kind: IdType::KeyId,
            data: k.as_bytes().to_vec(),
        };
    }
    let fqdn = s.strip_prefix('@').unwrap_or(s);
    Identification {
        kind: IdType::Fqdn,
        data: fqdn.as_bytes().to_vec(),
    }
}

/// The identity in strongSwan's notation, for logs and status.
pub fn identity_to_string(id: &Identification) -> String {
    match id.kind {
        IdType::Ipv4Addr => <[u8; 4]>::try_from(id.data.as_slice())
            .map(|o| std::net::Ipv4Addr::from(o).to_string())
            .unwrap_or_else(|_| "invalid-ipv4".into()),
        IdType::Ipv6Addr => <[u8; 16]>::try_from(id.data.as_slice())
            .map(|o| std::net::Ipv6Addr::from(o).to_string())
            .unwrap_or_else(|_| "invalid-ipv6".into()),
        IdType::Fqdn | IdType::Rfc822Addr => String::from_utf8_lossy(&id.data).into_owned(),
        IdType::KeyId => format!("keyid:{}", String::from_utf8_lossy(&id.data)),
        _ => format!("{:?}", id.kind),
    }
}

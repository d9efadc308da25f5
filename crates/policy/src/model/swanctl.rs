//! The CPE's configuration as a strongSwan `swanctl.conf`: one connection
//! with one child and its pre-shared key, to load with
//! `swanctl --load-all --file FILE` (or to drop into /etc/swanctl/conf.d).
//!
//! Lifetimes map onto strongSwan's knobs so that the SAs are rekeyed before
//! Alibaba's lifetime runs out and never outlive it: `rekey_time` at 90 %
//! of the lifetime, the hard end (`over_time` for the IKE SA, `life_time`
//! for the CHILD SA) at the lifetime itself; a lifetime of 0 turns
//! time-based rekeying off (`rekey_time = 0s`).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::cpe::{join, CpeConfig};
use super::device::DPD_DELAY;

/// A swanctl.conf value in double quotes (swanctl's settings syntax takes
/// `\"` and `\\` escapes there).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An identity as strongSwan must read it: an address as it is, anything
/// else with a leading `@`, which makes strongSwan take it as an FQDN
/// (ID_FQDN) the way ipsecgw and Alibaba do, even when it holds an `@`.
fn identity(id: &str) -> String {
    if id.parse::<IpAddr>().is_ok() {
        quoted(id)
    } else {
        quoted(&format!("@{}", id.trim_start_matches('@')))
    }
}

/// The pre-shared key: quoted when it is printable ASCII without `$` (which
/// strongswan.conf-style files may take for a reference), else hex
/// (`0x...`), which strongSwan takes for any bytes.
fn secret(psk: &str) -> String {
    if psk.chars().all(|c| c.is_ascii_graphic() && c != '$') {
        quoted(psk)
    } else {
        let hex: String = psk.bytes().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    }
}

impl CpeConfig {
    /// A complete swanctl.conf for the CPE. It initiates when loaded
    /// (`start_action = start`: Alibaba's gateway, and ipsecgw's cloud
    /// side, wait for the customer gateway unless told otherwise), restarts
    /// after a dead peer, and turns MOBIKE off (the cloud side does not
    /// speak it).
    pub fn to_swanctl(&self) -> String {
        let name = &self.connection_name;
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# strongSwan swanctl.conf of the customer gateway {:?} ({}):\n\
             # IPsec connection {name:?} to the VPN gateway at {}.\n\
             # Written by `ipsecgw export`; load it with\n\
             # `swanctl --load-all --file THIS_FILE`. It holds the pre-shared key:\n\
             # keep it readable by root only (mode 0600).",
            self.gateway_name, self.local_address, self.remote_address
        );
        let _ = writeln!(s, "connections {{");
        let _ = writeln!(s, "    {name} {{");
        let _ = writeln!(s, "        version = 2");
        let _ = writeln!(s, "        local_addrs = {}", self.local_address);
        let _ = writeln!(s, "        remote_addrs = {}", self.remote_address);
        let _ = writeln!(s, "        proposals = {}", self.ike.proposal());
        let _ = writeln!(s, "        encap = {}", yes_no(self.nat_traversal));
        let _ = writeln!(s, "        mobike = no");
        let _ = writeln!(
            s,
            "        dpd_delay = {}s",
            if self.dpd { DPD_DELAY } else { 0 }
        );
        let ike_life = self.ike.lifetime;
        if ike_life == 0 {
            let _ = writeln!(s, "        rekey_time = 0s");
        } else {
            let _ = writeln!(s, "        rekey_time = {}s", ike_life - ike_life / 10);
            let _ = writeln!(s, "        over_time = {}s", ike_life / 10);
        }
        let _ = writeln!(s, "        local {{");
        let _ = writeln!(s, "            auth = psk");
        let _ = writeln!(s, "            id = {}", identity(&self.local_id));
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "        remote {{");
        let _ = writeln!(s, "            auth = psk");
        let _ = writeln!(s, "            id = {}", identity(&self.remote_id));
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "        children {{");
        let _ = writeln!(s, "            {name} {{");
        let _ = writeln!(s, "                mode = tunnel");
        let _ = writeln!(
            s,
            "                local_ts = {}",
            join(&self.local_subnets)
        );
        let _ = writeln!(
            s,
            "                remote_ts = {}",
            join(&self.remote_subnets)
        );
        let _ = writeln!(
            s,
            "                esp_proposals = {}",
            self.ipsec.strongswan_proposal()
        );
        let child_life = self.ipsec.lifetime;
        if child_life == 0 {
            let _ = writeln!(s, "                rekey_time = 0s");
        } else {
            let _ = writeln!(
                s,
                "                rekey_time = {}s",
                child_life - child_life / 10
            );
            let _ = writeln!(s, "                life_time = {child_life}s");
        }
        let _ = writeln!(s, "                start_action = start");
        if self.dpd {
            let _ = writeln!(s, "                dpd_action = restart");
        }
        let _ = writeln!(s, "            }}");
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "}}");
        let _ = writeln!(s, "secrets {{");
        let _ = writeln!(s, "    ike-{name} {{");
        let _ = writeln!(s, "        id-local = {}", identity(&self.local_id));
        let _ = writeln!(s, "        id-remote = {}", identity(&self.remote_id));
        let _ = writeln!(s, "        secret = {}", secret(self.psk.expose()));
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "}}");
        s
    }
}

//! The `ipsecgw` daemon as a guarded child process, its config, and its
//! `status --json` counters.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::topology::{GW_L_WAN, GW_R_WAN, SUBNET_L, SUBNET_R};
use crate::util::{self, poll, random_bytes, send_signal, WAIT_LIMIT};

/// How ESP travels between the gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// ESP in UDP port 4500 (RFC 3948).
    Udp,
    /// Raw IP protocol 50.
    Esp,
}

impl Encapsulation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Esp => "esp",
        }
    }
}

/// One `[[ipsec_connection]]` with manual keys.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub name: String,
    pub remote_address: String,
    pub local_subnets: Vec<String>,
    pub remote_subnets: Vec<String>,
    pub encapsulation: Encapsulation,
    pub encryption: String,
    pub esn: bool,
    pub replay_window: u32,
    pub outbound_spi: u32,
    pub inbound_spi: u32,
    /// Key material including the 4-byte salt, as hex without `0x`.
    pub outbound_key: String,
    pub inbound_key: String,
    /// Negotiate the SAs with IKEv2 instead of the manual keys above.
    pub ike: Option<IkeKeying>,
    /// Extra tables for this connection (e.g. `[ipsec_connection.health_check]`),
    /// written after its other tables.
    pub extra: Option<String>,
    /// `legacy = true`: accept DES, 3DES, MD5 and the small MODP groups.
    pub legacy: bool,
}

/// `[ipsec_connection.ike]`: IKEv2 with a pre-shared key.
#[derive(Debug, Clone)]
pub struct IkeKeying {
    pub psk: String,
    pub proposals: Vec<String>,
    /// `start`, `trap` or `none`.
    pub start_action: String,
    /// Seconds; 0 disables DPD.
    pub dpd_delay: u64,
    /// `restart`, `clear` or `trap`.
    pub dpd_action: String,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
}

impl IkeKeying {
    /// The modern suite with this PSK, initiating (`start`) or waiting (`none`).
    pub fn psk(psk: &str, start_action: &str) -> Self {
        Self {
            psk: psk.into(),
            proposals: vec!["aes256gcm16-prfsha256-curve25519".into()],
            start_action: start_action.into(),
            dpd_delay: 0,
            dpd_action: "clear".into(),
            local_id: None,
            remote_id: None,
        }
    }
}

/// One gateway's whole config (the control socket is chosen by `Gateway::start`).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub name: String,
    pub public_address: String,
    pub tun_name: String,
    pub wan_mtu: u32,
    pub connections: Vec<ConnectionConfig>,
    /// `[ike] retransmit_timeout_ms` / `retransmit_tries` (short in tests,
    /// so a dead peer is noticed in seconds).
    pub ike_retransmit_timeout_ms: Option<u64>,
    pub ike_retransmit_tries: Option<u32>,
    /// Extra lines for the (first) connection's `[ipsec_connection.ike]`
    /// and `[ipsec_connection.ipsec]` tables.
    pub extra_ike: Option<String>,
    pub extra_ipsec: Option<String>,
    /// Extra top-level tables written after the connections (e.g. `[[route]]`).
    pub extra_toml: Option<String>,
    /// Extra lines for the `[tun]` table (e.g. `offload = "off"`).
    pub extra_tun: Option<String>,
}

/// 36 random bytes (AES-256 key and 4-byte salt, RFC 4106 §8.1) as hex.
pub fn random_key_aes256gcm16() -> String {
    hex::encode(random_bytes(36))
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

impl GatewayConfig {
    /// The two ends of the seed topology with fresh AES-256-GCM keys:
    /// "onprem" (gwL, 10.1.1.0/24) and "hangzhou" (gwR, 192.168.4.0/24),
    /// each the mirror of the other.
    pub fn site_pair(encapsulation: Encapsulation) -> (Self, Self) {
        let key_lr = random_key_aes256gcm16();
        let key_rl = random_key_aes256gcm16();
        let left = Self {
            name: "onprem".into(),
            public_address: GW_L_WAN.into(),
            tun_name: "ipsgw0".into(),
            wan_mtu: 1500,
            connections: vec![ConnectionConfig {
                name: "hangzhou".into(),
                remote_address: GW_R_WAN.into(),
                local_subnets: vec![SUBNET_L.into()],
                remote_subnets: vec![SUBNET_R.into()],
                encapsulation,
                encryption: "aes256gcm16".into(),
                esn: true,
                replay_window: 1024,
                outbound_spi: 0x1001,
                inbound_spi: 0x2001,
                outbound_key: key_lr.clone(),
                inbound_key: key_rl.clone(),
                ike: None,
                extra: None,
                legacy: false,
            }],
            ike_retransmit_timeout_ms: None,
            ike_retransmit_tries: None,
            extra_ike: None,
            extra_ipsec: None,
            extra_toml: None,
            extra_tun: None,
        };
        let right = Self {
            name: "hangzhou".into(),
            public_address: GW_R_WAN.into(),
            tun_name: "ipsgw1".into(),
            wan_mtu: 1500,
            connections: vec![ConnectionConfig {
                name: "onprem".into(),
                remote_address: GW_L_WAN.into(),
                local_subnets: vec![SUBNET_R.into()],
                remote_subnets: vec![SUBNET_L.into()],
                encapsulation,
                encryption: "aes256gcm16".into(),
                esn: true,
                replay_window: 1024,
                outbound_spi: 0x2001,
                inbound_spi: 0x1001,
                outbound_key: key_rl,
                inbound_key: key_lr,
                ike: None,
                extra: None,
                legacy: false,
            }],
            ike_retransmit_timeout_ms: None,
            ike_retransmit_tries: None,
            extra_ike: None,
            extra_ipsec: None,
            extra_toml: None,
            extra_tun: None,
        };
        (left, right)
    }

    /// The seed pair keyed by IKEv2 with one PSK: the left (on-premises)
    /// gateway initiates, the right one waits.
    pub fn ike_site_pair(encapsulation: Encapsulation, psk: &str) -> (Self, Self) {
        let (mut l, mut r) = Self::site_pair(encapsulation);
        l.connection().ike = Some(IkeKeying::psk(psk, "start"));
        r.connection().ike = Some(IkeKeying::psk(psk, "none"));
        (l, r)
    }

    /// The first (in the tests, only) connection.
    pub fn connection(&mut self) -> &mut ConnectionConfig {
        self.connections
            .first_mut()
            .expect("config has a connection")
    }

    /// The config as TOML, with the given control socket.
    pub fn to_toml(&self, control_socket: &Path) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "[gateway]\nname = \"{}\"\npublic_address = \"{}\"\ncontrol_socket = \"{}\"\n\n\
             [tun]\nname = \"{}\"\nwan_mtu = {}\n",
            self.name,
            self.public_address,
            control_socket.display(),
            self.tun_name,
            self.wan_mtu
        );
        if let Some(extra) = &self.extra_tun {
            let _ = writeln!(s, "{extra}");
        }
        if self.ike_retransmit_timeout_ms.is_some() || self.ike_retransmit_tries.is_some() {
            s.push_str("\n[ike]\n");
            if let Some(t) = self.ike_retransmit_timeout_ms {
                let _ = writeln!(s, "retransmit_timeout_ms = {t}");
            }
            if let Some(t) = self.ike_retransmit_tries {
                let _ = writeln!(s, "retransmit_tries = {t}");
            }
        }
        for c in &self.connections {
            if let Some(ike) = &c.ike {
                let _ = write!(
                    s,
                    "\n[[ipsec_connection]]\nname = \"{}\"\nremote_address = \"{}\"\n\
                     local_subnets = {}\nremote_subnets = {}\nencapsulation = \"{}\"\nlegacy = {}\n\n\
                     [ipsec_connection.ipsec]\nencryption = \"{}\"\nesn = {}\nreplay_window = {}\n{}\n\
                     [ipsec_connection.ike]\npsk = \"{}\"\nproposals = {}\nstart_action = \"{}\"\n\
                     dpd_delay = {}\ndpd_action = \"{}\"\n",
                    c.name,
                    c.remote_address,
                    quoted_list(&c.local_subnets),
                    quoted_list(&c.remote_subnets),
                    c.encapsulation.as_str(),
                    c.legacy,
                    c.encryption,
                    c.esn,
                    c.replay_window,
                    self.extra_ipsec.as_deref().unwrap_or(""),
                    ike.psk,
                    quoted_list(&ike.proposals),
                    ike.start_action,
                    ike.dpd_delay,
                    ike.dpd_action,
                );
                if let Some(id) = &ike.local_id {
                    let _ = writeln!(s, "local_id = \"{id}\"");
                }
                if let Some(id) = &ike.remote_id {
                    let _ = writeln!(s, "remote_id = \"{id}\"");
                }
                if let Some(extra) = &self.extra_ike {
                    let _ = writeln!(s, "{extra}");
                }
                if let Some(extra) = &c.extra {
                    let _ = writeln!(s, "\n{extra}");
                }
                continue;
            }
            let _ = write!(
                s,
                "\n[[ipsec_connection]]\nname = \"{}\"\nremote_address = \"{}\"\n\
                 local_subnets = {}\nremote_subnets = {}\nencapsulation = \"{}\"\n\n\
                 [ipsec_connection.ipsec]\nencryption = \"{}\"\nesn = {}\nreplay_window = {}\n\n\
                 [ipsec_connection.manual_keys]\noutbound_spi = {:#x}\ninbound_spi = {:#x}\n\
                 outbound_key = \"0x{}\"\ninbound_key = \"0x{}\"\n",
                c.name,
                c.remote_address,
                quoted_list(&c.local_subnets),
                quoted_list(&c.remote_subnets),
                c.encapsulation.as_str(),
                c.encryption,
                c.esn,
                c.replay_window,
                c.outbound_spi,
                c.inbound_spi,
                c.outbound_key,
                c.inbound_key
            );
            if let Some(extra) = &c.extra {
                let _ = writeln!(s, "\n{extra}");
            }
        }
        if let Some(extra) = &self.extra_toml {
            let _ = writeln!(s, "\n{extra}");
        }
        s
    }
}

/// A running `ipsecgw run` inside a namespace. Drop sends SIGTERM (SIGKILL
/// after 10 s) and, if the test is panicking, prints the daemon's log.
#[derive(Debug)]
pub struct Gateway {
    ns_name: String,
    bin: PathBuf,
    pub config: GatewayConfig,
    pub config_path: PathBuf,
    pub socket: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl Gateway {
    /// Writes the config to `dir/<name>.toml`, starts the daemon in `ns`, and
    /// waits until its control socket answers `status` and the kernel routes
    /// for every remote subnet point at its TUN device.
    pub fn start(ns: &Netns, config: &GatewayConfig, dir: &Path) -> Self {
        let bin = util::ipsecgw_bin();
        let socket = dir.join(format!("{}.sock", config.name));
        let config_path = dir.join(format!("{}.toml", config.name));
        let log_path = dir.join(format!("{}.log", config.name));
        fs::write(&config_path, config.to_toml(&socket))
            .unwrap_or_else(|e| panic!("writing {}: {e}", config_path.display()));
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
        let bin_str = bin.to_string_lossy().into_owned();
        let config_str = config_path.to_string_lossy().into_owned();
        let mut cmd = ns.command(&bin_str, &["run", "--config", &config_str]);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin_str} in {}: {e}", ns.name()));
        let mut gw = Self {
            ns_name: ns.name().to_owned(),
            bin,
            config: config.clone(),
            config_path,
            socket,
            log_path,
            child: Some(child),
        };
        gw.wait_ready(ns);
        gw
    }

    fn wait_ready(&mut self, ns: &Netns) {
        let ready = poll(WAIT_LIMIT, || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "ipsecgw ({}) exited during start-up with {status}; log:\n{}",
                    self.config.name,
                    self.log()
                );
            }
            self.status_output(false).status.success().then_some(())
        });
        if ready.is_none() {
            panic!(
                "ipsecgw ({}) did not answer `status --socket {}` within {WAIT_LIMIT:?}; log:\n{}",
                self.config.name,
                self.socket.display(),
                self.log()
            );
        }
        let tun = self.config.tun_name.clone();
        let subnets: Vec<String> = self
            .config
            .connections
            .iter()
            .flat_map(|c| c.remote_subnets.clone())
            .collect();
        for subnet in subnets {
            let routed = poll(WAIT_LIMIT, || {
                let out = ns.exec("ip", &["-4", "route", "show", "exact", &subnet]);
                String::from_utf8_lossy(&out.stdout)
                    .contains(&format!("dev {tun}"))
                    .then_some(())
            });
            if routed.is_none() {
                panic!(
                    "ipsecgw ({}) did not install a route for {subnet} via its TUN {tun} within \
                     {WAIT_LIMIT:?}; routes:\n{}\nlog:\n{}",
                    self.config.name,
                    ns.ip(&["-4", "route"]),
                    self.log()
                );
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The names of the daemon's threads (from /proc), sorted.
    pub fn thread_names(&self) -> Vec<String> {
        let Some(pid) = self.child.as_ref().map(|c| c.id()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
            .map(|dir| {
                dir.flatten()
                    .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
                    .map(|n| n.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn tun_name(&self) -> &str {
        &self.config.tun_name
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn status_output(&self, json: bool) -> std::process::Output {
        let socket = self.socket.to_string_lossy().into_owned();
        let bin = self.bin.to_string_lossy().into_owned();
        let mut args = vec![
            "netns",
            "exec",
            &self.ns_name,
            &bin,
            "status",
            "--socket",
            &socket,
        ];
        if json {
            args.push("--json");
        }
        util::run("ip", &args)
    }

    /// `ipsecgw status --socket S` (the human form).
    pub fn status_text(&self) -> String {
        let out = self.status_output(false);
        assert!(
            out.status.success(),
            "ipsecgw status ({}) failed: {}\nlog:\n{}",
            self.config.name,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ipsecgw status --socket S --json`, parsed.
    pub fn status(&self) -> Status {
        let out = self.status_output(true);
        assert!(
            out.status.success(),
            "ipsecgw status --json ({}) failed: {}\nlog:\n{}",
            self.config.name,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ipsecgw status --json ({}) printed no JSON object ({e}):\n{}",
                self.config.name,
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Status(value)
    }

    /// Polls `status` until `pred` holds (at most 20 s); returns the last
    /// status either way so the caller can assert with a clear message.
    pub fn status_until(&self, mut pred: impl FnMut(&Status) -> bool) -> Status {
        poll(WAIT_LIMIT, || {
            let st = self.status();
            pred(&st).then_some(st)
        })
        .unwrap_or_else(|| self.status())
    }

    /// Kills the daemon with SIGKILL (no DELETE reaches the peer: a crash),
    /// and removes the TUN device it leaves behind.
    pub fn kill(&mut self, ns: &Netns) {
        let mut child = self.child.take().expect("gateway already stopped");
        let _ = child.kill();
        let _ = child.wait();
        let _ = ns.exec("ip", &["link", "del", &self.config.tun_name]);
    }

    /// Runs `ipsecgw ARGS... --socket S` inside the namespace.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let socket = self.socket.to_string_lossy().into_owned();
        let bin = self.bin.to_string_lossy().into_owned();
        let mut all = vec!["netns", "exec", &self.ns_name, &bin];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--socket", &socket]);
        util::run("ip", &all)
    }

    /// Stops the daemon with SIGTERM and returns its exit status (SIGKILL and
    /// a panic if it has not exited within 20 s).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("gateway already stopped");
        send_signal(child.id(), "TERM");
        let status = poll(WAIT_LIMIT, || child.try_wait().ok().flatten());
        match status {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ipsecgw ({}) did not exit within {WAIT_LIMIT:?} of SIGTERM; log:\n{}",
                    self.config.name,
                    self.log()
                );
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "TERM");
            let exited = poll(Duration::from_secs(10), || child.try_wait().ok().flatten());
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "----- ipsecgw log of {} ({}) -----\n{}\n----- end of log -----",
                self.config.name,
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// The parsed `status --json` object, with accessors that panic naming the
/// missing field and showing the whole object.
#[derive(Debug, Clone)]
pub struct Status(pub Value);

impl Status {
    fn field<'a>(&'a self, v: &'a Value, path: &[&str]) -> &'a Value {
        let mut cur = v;
        for key in path {
            cur = cur.get(key).unwrap_or_else(|| {
                panic!(
                    "status --json has no field {:?} (path {path:?}):\n{:#}",
                    key, self.0
                )
            });
        }
        cur
    }

    fn number(&self, v: &Value, path: &[&str]) -> u64 {
        let field = self.field(v, path);
        field.as_u64().unwrap_or_else(|| {
            panic!(
                "status --json field {path:?} is not an unsigned number: {field}\n{:#}",
                self.0
            )
        })
    }

    /// The IKE SAs (`ike_sas`), empty if there are none.
    pub fn ike_sas(&self) -> Vec<Value> {
        self.0
            .get("ike_sas")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether an IKE SA of connection `name` is ESTABLISHED with a CHILD SA.
    pub fn ike_established(&self, name: &str) -> bool {
        self.ike_sas().iter().any(|sa| {
            sa.get("name").and_then(Value::as_str) == Some(name)
                && sa.get("state").and_then(Value::as_str) == Some("ESTABLISHED")
                && sa
                    .get("children")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty())
        })
    }

    /// The connection named `name`.
    pub fn connection(&self, name: &str) -> &Value {
        self.field(&self.0, &["connections"])
            .as_array()
            .and_then(|conns| {
                conns
                    .iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            })
            .unwrap_or_else(|| panic!("status --json has no connection {name:?}:\n{:#}", self.0))
    }

    /// `connections[name].<direction>.<counter>`; direction is "inbound" or "outbound".
    pub fn sa(&self, conn: &str, direction: &str, counter: &str) -> u64 {
        self.number(self.connection(conn), &[direction, counter])
    }

    /// `connections[name].<counter>` (e.g. "selector_drops", "too_big").
    pub fn conn_counter(&self, conn: &str, counter: &str) -> u64 {
        self.number(self.connection(conn), &[counter])
    }

    /// `drops.<counter>` (e.g. "no_policy").
    pub fn drops(&self, counter: &str) -> u64 {
        self.number(&self.0, &["drops", counter])
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

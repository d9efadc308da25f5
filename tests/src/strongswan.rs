//! strongSwan as a guarded peer: one `charon-systemd` per network namespace
//! with userspace ESP (`kernel-libipsec`), configured through its own
//! strongswan.conf and swanctl.conf and driven by `swanctl` over its own vici
//! socket.
//!
//! ```no_run
//! # use ipsecgw_tests::{Charon, Topology};
//! let topo = Topology::build();
//! let left = Charon::builder(&topo.gw_l).site_left().psk("secret").start();
//! let right = Charon::builder(&topo.gw_r).site_right().psk("secret").start();
//! left.initiate(left.child_name(), left.ike_name()).unwrap();
//! ```
//!
//! Everything an instance uses lives in a temp dir of its own (configs, the
//! vici socket, the log), because `ip netns exec` keeps the mount namespace:
//! two instances must share no path. `charon-systemd` (not `ipsec`/`charon`,
//! which insist on `/var/run/charon.pid`) writes no pid file, and reads the
//! `charon-systemd { }` section of the file `STRONGSWAN_CONF` names.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::netns::Netns;
use crate::topology::{GW_L_WAN, GW_R_WAN, SUBNET_L, SUBNET_R};
use crate::util::{find_tool, poll, send_signal, TempDir, WAIT_LIMIT};

/// The kernel-libipsec (userspace ESP) plugin, from `libcharon-extra-plugins`.
pub const LIBIPSEC_PLUGIN: &str = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so";

/// The Debian 12 packages `scripts/test` (`ensure_strongswan`) installs.
pub const PACKAGES: &str = "strongswan-swanctl charon-systemd strongswan-charon \
                            libcharon-extra-plugins libstrongswan-standard-plugins \
                            libstrongswan-extra-plugins";

/// Plugins loaded with `load_modular = no`. kernel-libipsec comes before
/// kernel-netlink, so ESP is done in userspace (the kernel here has no ESP);
/// openssl gives the MODP/ECP groups and DES/3DES (Debian builds no `des`
/// plugin), md5/sha1 the legacy integrity algorithms.
pub const PLUGINS: &str = "random nonce openssl aes gcm sha2 sha1 md5 hmac kdf curve25519 pem \
                           pkcs1 x509 pubkey revocation constraints vici kernel-libipsec \
                           kernel-netlink socket-default updown";

/// What charon logs when a peer's PSK AUTH payload does not verify (the
/// responder, at IKE level 1), with the two identities in between.
pub const LOG_PSK_MISMATCH: &str = "but MAC mismatched";
/// What the responder logs right after, when it answers with the notify
/// (IKE_AUTH response carrying only an AUTHENTICATION_FAILED notify).
pub const LOG_SENDING_AUTH_FAILED: &str = "IKE_AUTH response 1 [ N(AUTH_FAILED) ]";
/// What the initiator logs when the responder rejected its AUTH.
pub const LOG_RECEIVED_AUTH_FAILED: &str = "received AUTHENTICATION_FAILED notify error";

/// Numbers the output files of concurrent swanctl calls.
static SWANCTL_CALLS: AtomicU64 = AtomicU64::new(0);

/// Panics with a message that says how to install strongSwan unless
/// `charon-systemd`, `swanctl` and the kernel-libipsec plugin are there.
pub fn require_strongswan() {
    for tool in ["charon-systemd", "swanctl"] {
        assert!(
            find_tool(tool).is_some(),
            "`{tool}` is missing: the strongSwan interop tests need strongSwan; run scripts/test \
             (ensure_strongswan) or `apt-get install {PACKAGES}`"
        );
    }
    assert!(
        Path::new(LIBIPSEC_PLUGIN).is_file(),
        "{LIBIPSEC_PLUGIN} is missing: install libcharon-extra-plugins (scripts/test does)"
    );
}

/// `children.<child>.start_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    None,
    Start,
    Trap,
}

impl StartAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Start => "start",
            Self::Trap => "trap",
        }
    }
}

/// `children.<child>.dpd_action` (also what happens on a peer's DELETE timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    Clear,
    Trap,
    Restart,
}

impl DpdAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Trap => "trap",
            Self::Restart => "restart",
        }
    }
}

/// Settings of one charon instance with one connection and one child. Build
/// it with [`Charon::builder`], then [`CharonBuilder::start`].
#[derive(Debug, Clone)]
pub struct CharonBuilder<'a> {
    ns: &'a Netns,
    /// Instance label (temp dir name, log headers). Defaults to the last
    /// part of the namespace name (e.g. `gwL`).
    pub label: String,
    pub ike_name: String,
    pub child_name: String,
    pub local_addrs: String,
    pub remote_addrs: String,
    /// `local.id` / `remote.id` as swanctl takes them (`198.51.100.1`,
    /// `@gw.example`, `gw@example`); default: the address.
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub psk: String,
    pub ike_proposals: String,
    pub esp_proposals: String,
    pub local_ts: String,
    pub remote_ts: String,
    pub encap: bool,
    pub mobike: bool,
    pub start_action: StartAction,
    pub dpd_delay: Option<Duration>,
    pub dpd_action: Option<DpdAction>,
    /// CHILD SA `rekey_time`, `life_time` (hard expiry), `rand_time`.
    pub child_rekey_time: Option<Duration>,
    pub child_life_time: Option<Duration>,
    pub child_rand_time: Option<Duration>,
    /// IKE SA `rekey_time`, `over_time`, `rand_time`.
    pub ike_rekey_time: Option<Duration>,
    pub ike_over_time: Option<Duration>,
    pub ike_rand_time: Option<Duration>,
    /// strongswan.conf `charon.retransmit_tries` / `retransmit_timeout` (s).
    pub retransmit_tries: Option<u32>,
    pub retransmit_timeout: Option<f64>,
    /// strongswan.conf `charon.port` / `port_nat_t` (500 / 4500).
    pub port: u16,
    pub port_nat_t: u16,
    /// `remote_port` of the connection (default 500).
    pub remote_port: u16,
    /// A whole swanctl.conf to load as it is (an exported configuration)
    /// instead of the one the settings above describe; see
    /// [`CharonBuilder::swanctl_conf_text`].
    pub swanctl_text: Option<String>,
}

impl<'a> CharonBuilder<'a> {
    fn new(ns: &'a Netns) -> Self {
        let label = ns.name().rsplit('-').next().unwrap_or("charon").to_owned();
        Self {
            ns,
            label,
            ike_name: "site".into(),
            child_name: "lan".into(),
            local_addrs: String::new(),
            remote_addrs: String::new(),
            local_id: None,
            remote_id: None,
            psk: String::new(),
            ike_proposals: "aes256gcm16-prfsha256-curve25519".into(),
            esp_proposals: "aes256gcm16".into(),
            local_ts: String::new(),
            remote_ts: String::new(),
            encap: true,
            mobike: false,
            start_action: StartAction::None,
            dpd_delay: None,
            dpd_action: None,
            child_rekey_time: None,
            child_life_time: None,
            child_rand_time: None,
            ike_rekey_time: None,
            ike_over_time: None,
            ike_rand_time: None,
            retransmit_tries: None,
            retransmit_timeout: None,
            port: 500,
            port_nat_t: 4500,
            remote_port: 500,
            swanctl_text: None,
        }
    }

    /// gwL of the standard topology: its WAN address to gwR's, 10.1.1.0/24
    /// to 192.168.4.0/24.
    pub fn site_left(self) -> Self {
        self.local(GW_L_WAN)
            .remote(GW_R_WAN)
            .local_ts(SUBNET_L)
            .remote_ts(SUBNET_R)
    }

    /// gwR of the standard topology, the mirror of [`Self::site_left`].
    pub fn site_right(self) -> Self {
        self.local(GW_R_WAN)
            .remote(GW_L_WAN)
            .local_ts(SUBNET_R)
            .remote_ts(SUBNET_L)
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }
    /// The connection (IKE SA config) name.
    pub fn ike_name(mut self, name: &str) -> Self {
        self.ike_name = name.into();
        self
    }
    /// The child (CHILD SA config) name.
    pub fn child_name(mut self, name: &str) -> Self {
        self.child_name = name.into();
        self
    }
    /// `local_addrs`.
    pub fn local(mut self, addr: &str) -> Self {
        self.local_addrs = addr.into();
        self
    }
    /// `remote_addrs`.
    pub fn remote(mut self, addr: &str) -> Self {
        self.remote_addrs = addr.into();
        self
    }
    pub fn local_id(mut self, id: &str) -> Self {
        self.local_id = Some(id.into());
        self
    }
    pub fn remote_id(mut self, id: &str) -> Self {
        self.remote_id = Some(id.into());
        self
    }
    pub fn psk(mut self, psk: &str) -> Self {
        self.psk = psk.into();
        self
    }
    /// IKE `proposals`, e.g. `aes256gcm16-prfsha256-curve25519` (comma-separated list).
    pub fn ike_proposals(mut self, proposals: &str) -> Self {
        self.ike_proposals = proposals.into();
        self
    }
    /// `esp_proposals`, e.g. `aes256gcm16`.
    pub fn esp_proposals(mut self, proposals: &str) -> Self {
        self.esp_proposals = proposals.into();
        self
    }
    pub fn local_ts(mut self, ts: &str) -> Self {
        self.local_ts = ts.into();
        self
    }
    pub fn remote_ts(mut self, ts: &str) -> Self {
        self.remote_ts = ts.into();
        self
    }
    /// `encap` (default yes: kernel-libipsec in 5.9.8 only does ESP in UDP).
    pub fn encap(mut self, encap: bool) -> Self {
        self.encap = encap;
        self
    }
    /// `mobike` (default no here, unlike strongSwan's default).
    pub fn mobike(mut self, mobike: bool) -> Self {
        self.mobike = mobike;
        self
    }
    pub fn start_action(mut self, action: StartAction) -> Self {
        self.start_action = action;
        self
    }
    pub fn dpd_delay(mut self, delay: Duration) -> Self {
        self.dpd_delay = Some(delay);
        self
    }
    pub fn dpd_action(mut self, action: DpdAction) -> Self {
        self.dpd_action = Some(action);
        self
    }
    /// CHILD SA `rekey_time`.
    pub fn rekey_time(mut self, time: Duration) -> Self {
        self.child_rekey_time = Some(time);
        self
    }
    /// CHILD SA `life_time` (hard expiry; the CHILD SA's "over time").
    pub fn life_time(mut self, time: Duration) -> Self {
        self.child_life_time = Some(time);
        self
    }
    /// CHILD SA `rand_time`.
    pub fn rand_time(mut self, time: Duration) -> Self {
        self.child_rand_time = Some(time);
        self
    }
    /// IKE SA `rekey_time`.
    pub fn ike_rekey_time(mut self, time: Duration) -> Self {
        self.ike_rekey_time = Some(time);
        self
    }
    /// IKE SA `over_time`.
    pub fn over_time(mut self, time: Duration) -> Self {
        self.ike_over_time = Some(time);
        self
    }
    /// IKE SA `rand_time`.
    pub fn ike_rand_time(mut self, time: Duration) -> Self {
        self.ike_rand_time = Some(time);
        self
    }
    pub fn retransmit_tries(mut self, tries: u32) -> Self {
        self.retransmit_tries = Some(tries);
        self
    }
    /// `retransmit_timeout` in seconds (the first retransmission's delay).
    pub fn retransmit_timeout(mut self, seconds: f64) -> Self {
        self.retransmit_timeout = Some(seconds);
        self
    }
    /// The local IKE ports (`port`, `port_nat_t`).
    pub fn ports(mut self, port: u16, port_nat_t: u16) -> Self {
        self.port = port;
        self.port_nat_t = port_nat_t;
        self
    }
    /// The peer's IKE port (`remote_port`).
    pub fn remote_port(mut self, port: u16) -> Self {
        self.remote_port = port;
        self
    }
    /// Loads `text` as the instance's swanctl.conf, byte for byte, instead
    /// of writing one from the builder's settings: for configurations
    /// another program wrote (`ipsecgw export --for strongswan`). It must
    /// hold exactly one connection; set [`Self::ike_name`] and
    /// [`Self::child_name`] to its connection's and child's names so that
    /// `initiate` and the SA checks find them. The strongswan.conf (plugins,
    /// ports, logging, vici socket) is still the builder's.
    pub fn swanctl_conf_text(mut self, text: &str) -> Self {
        self.swanctl_text = Some(text.into());
        self
    }

    /// strongswan.conf for an instance living in `dir`. Self-contained (no
    /// includes of /etc/strongswan.d). Leaves `threads` at its default of 16:
    /// kernel-libipsec, kernel-netlink, the sockets and vici keep about 9
    /// threads busy, and with `threads = 8` vici never answers.
    pub fn strongswan_conf(&self, dir: &Path) -> String {
        let d = dir.display();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Written by ipsecgw-tests for one charon-systemd in namespace {ns}.\n\
             charon-systemd {{\n\
             \x20   load_modular = no\n\
             \x20   load = {PLUGINS}\n\
             \x20   port = {port}\n\
             \x20   port_nat_t = {port_nat_t}\n\
             \x20   install_routes = yes\n\
             \x20   install_virtual_ip = no",
            ns = self.ns.name(),
            port = self.port,
            port_nat_t = self.port_nat_t,
        );
        if let Some(tries) = self.retransmit_tries {
            let _ = writeln!(s, "    retransmit_tries = {tries}");
        }
        if let Some(timeout) = self.retransmit_timeout {
            let _ = writeln!(s, "    retransmit_timeout = {timeout}");
        }
        let _ = writeln!(
            s,
            "    journal {{\n\
             \x20       default = -1\n\
             \x20   }}\n\
             \x20   filelog {{\n\
             \x20       charon {{\n\
             \x20           path = {d}/charon.log\n\
             \x20           append = no\n\
             \x20           flush_line = yes\n\
             \x20           time_format = %H:%M:%S\n\
             \x20           ike_name = yes\n\
             \x20           default = 1\n\
             \x20           ike = 2\n\
             \x20           cfg = 2\n\
             \x20           chd = 2\n\
             \x20           knl = 2\n\
             \x20           net = 2\n\
             \x20       }}\n\
             \x20   }}\n\
             \x20   plugins {{\n\
             \x20       vici {{\n\
             \x20           socket = unix://{d}/charon.vici\n\
             \x20       }}\n\
             \x20       kernel-libipsec {{\n\
             \x20           allow_peer_ts = no\n\
             \x20       }}\n\
             \x20   }}\n\
             }}\n\
             swanctl {{\n\
             \x20   socket = unix://{d}/charon.vici\n\
             }}"
        );
        s
    }

    /// swanctl.conf: one connection with one child, and its PSK (or the
    /// text given to [`Self::swanctl_conf_text`], as it is).
    pub fn swanctl_conf(&self) -> String {
        if let Some(text) = &self.swanctl_text {
            return text.clone();
        }
        let local_id = self.local_id.as_deref().unwrap_or(&self.local_addrs);
        let remote_id = self.remote_id.as_deref().unwrap_or(&self.remote_addrs);
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let secs = |d: Duration| format!("{}s", d.as_secs());
        let mut ike_extra = String::new();
        for (key, value) in [
            ("rekey_time", self.ike_rekey_time),
            ("over_time", self.ike_over_time),
            ("rand_time", self.ike_rand_time),
            ("dpd_delay", self.dpd_delay),
        ] {
            if let Some(v) = value {
                let _ = writeln!(ike_extra, "        {key} = {}", secs(v));
            }
        }
        let mut child_extra = String::new();
        for (key, value) in [
            ("rekey_time", self.child_rekey_time),
            ("life_time", self.child_life_time),
            ("rand_time", self.child_rand_time),
        ] {
            if let Some(v) = value {
                let _ = writeln!(child_extra, "                {key} = {}", secs(v));
            }
        }
        if let Some(action) = self.dpd_action {
            let _ = writeln!(
                child_extra,
                "                dpd_action = {}",
                action.as_str()
            );
        }
        format!(
            "# Written by ipsecgw-tests.\n\
             connections {{\n\
             \x20   {ike} {{\n\
             \x20       version = 2\n\
             \x20       local_addrs = {local_addrs}\n\
             \x20       remote_addrs = {remote_addrs}\n\
             \x20       remote_port = {remote_port}\n\
             \x20       proposals = {ike_proposals}\n\
             \x20       encap = {encap}\n\
             \x20       mobike = {mobike}\n\
             {ike_extra}\
             \x20       local {{\n\
             \x20           auth = psk\n\
             \x20           id = {local_id_q}\n\
             \x20       }}\n\
             \x20       remote {{\n\
             \x20           auth = psk\n\
             \x20           id = {remote_id_q}\n\
             \x20       }}\n\
             \x20       children {{\n\
             \x20           {child} {{\n\
             \x20               mode = tunnel\n\
             \x20               local_ts = {local_ts}\n\
             \x20               remote_ts = {remote_ts}\n\
             \x20               esp_proposals = {esp_proposals}\n\
             \x20               start_action = {start_action}\n\
             {child_extra}\
             \x20           }}\n\
             \x20       }}\n\
             \x20   }}\n\
             }}\n\
             secrets {{\n\
             \x20   ike-{ike} {{\n\
             \x20       id-local = {local_id_q}\n\
             \x20       id-remote = {remote_id_q}\n\
             \x20       secret = 0x{psk_hex}\n\
             \x20   }}\n\
             }}\n",
            ike = self.ike_name,
            child = self.child_name,
            local_addrs = self.local_addrs,
            remote_addrs = self.remote_addrs,
            remote_port = self.remote_port,
            ike_proposals = self.ike_proposals,
            esp_proposals = self.esp_proposals,
            encap = yes_no(self.encap),
            mobike = yes_no(self.mobike),
            local_id_q = quote(local_id),
            remote_id_q = quote(remote_id),
            local_ts = self.local_ts,
            remote_ts = self.remote_ts,
            start_action = self.start_action.as_str(),
            // Hex, so that any PSK survives swanctl.conf's syntax.
            psk_hex = hex::encode(self.psk.as_bytes()),
        )
    }

    /// Writes the configs into a fresh temp dir, starts charon-systemd in
    /// the namespace, waits for its vici socket and loads swanctl.conf.
    pub fn start(self) -> Charon {
        require_strongswan();
        for (what, value) in [
            ("local address", &self.local_addrs),
            ("remote address", &self.remote_addrs),
            ("psk", &self.psk),
            ("local_ts", &self.local_ts),
            ("remote_ts", &self.remote_ts),
        ] {
            // A swanctl.conf given as text carries its own settings.
            assert!(
                !value.is_empty() || self.swanctl_text.is_some(),
                "Charon::builder: no {what} set for {}",
                self.label
            );
        }
        let dir = TempDir::new(&format!("charon-{}", self.label));
        let socket = dir.path().join("charon.vici");
        // sun_path holds 108 bytes; "unix://" is not part of it.
        assert!(
            socket.as_os_str().len() < 100,
            "vici socket path {} is too long for a unix socket; use a shorter TMPDIR",
            socket.display()
        );
        let conf = dir.path().join("strongswan.conf");
        let swanctl_conf = dir.path().join("swanctl.conf");
        fs::write(&conf, self.strongswan_conf(dir.path()))
            .unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        fs::write(&swanctl_conf, self.swanctl_conf())
            .unwrap_or_else(|e| panic!("writing {}: {e}", swanctl_conf.display()));
        let out_path = dir.path().join("charon.out");
        let out = fs::File::create(&out_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", out_path.display()));
        // `ip netns exec` execs the program: the child's pid is charon's.
        let child = self
            .ns
            .command("charon-systemd", &[])
            .env("STRONGSWAN_CONF", &conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup charon.out fd"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting charon-systemd in {}: {e}", self.ns.name()));
        let mut charon = Charon {
            label: self.label.clone(),
            ns_name: self.ns.name().to_owned(),
            ike_name: self.ike_name.clone(),
            child_name: self.child_name.clone(),
            conf,
            swanctl_conf,
            socket,
            child: Some(child),
            dir,
        };
        charon.wait_ready();
        charon.load_all();
        charon
    }
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running `charon-systemd` in a namespace. Drop sends SIGTERM to it (its
/// own pid only; SIGKILL after 10 s), prints its log if the test is
/// panicking, and removes its directory.
#[derive(Debug)]
pub struct Charon {
    label: String,
    ns_name: String,
    ike_name: String,
    child_name: String,
    pub conf: PathBuf,
    pub swanctl_conf: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    /// Last field: removed after the process is gone.
    dir: TempDir,
}

impl Charon {
    /// A builder for a charon in `ns`; see [`CharonBuilder`].
    pub fn builder(ns: &Netns) -> CharonBuilder<'_> {
        CharonBuilder::new(ns)
    }

    pub fn label(&self) -> &str {
        &self.label
    }
    /// The connection name from the builder.
    pub fn ike_name(&self) -> &str {
        &self.ike_name
    }
    /// The child name from the builder.
    pub fn child_name(&self) -> &str {
        &self.child_name
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// charon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn uri(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn wait_ready(&mut self) {
        let ready = poll(WAIT_LIMIT, || {
            if let Some(status) = self.exited() {
                panic!(
                    "charon-systemd ({}) in {} exited during start-up with {status}\n{}",
                    self.label,
                    self.ns_name,
                    self.all_output()
                );
            }
            (self.socket.exists() && self.swanctl(&["--stats"]).status.success()).then_some(())
        });
        if ready.is_none() {
            panic!(
                "charon-systemd ({}) in {} did not answer on {} within {WAIT_LIMIT:?}\n{}",
                self.label,
                self.ns_name,
                self.socket.display(),
                self.all_output()
            );
        }
    }

    fn load_all(&self) {
        let file = self.swanctl_conf.to_string_lossy().into_owned();
        let out = self.swanctl(&["--load-all", "--noprompt", "--file", &file]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("successfully loaded 1 connections"),
            "swanctl --load-all ({}) failed ({}):\n{stdout}\n{}\nswanctl.conf:\n{}\n{}",
            self.label,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            fs::read_to_string(&self.swanctl_conf).unwrap_or_default(),
            self.all_output()
        );
    }

    /// A `swanctl ARGS --uri unix://DIR/charon.vici` command, isolated from
    /// /etc (its strongswan.conf and credential dir are the instance's).
    /// The vici socket is a file: swanctl needs not run in the namespace.
    pub fn swanctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("swanctl");
        cmd.args(args)
            .args(["--uri", &self.uri()])
            .env("STRONGSWAN_CONF", &self.conf)
            .env("SWANCTL_DIR", self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `swanctl ARGS` against this instance; kills it (and reports a
    /// failure, exit status from the signal) after `limit`. Its output goes
    /// through files in the instance dir, so nothing blocks on a full pipe.
    pub fn swanctl_within(&self, args: &[&str], limit: Duration) -> Output {
        let n = SWANCTL_CALLS.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("swanctl-{n}.out"));
        let err_path = self.dir.path().join(format!("swanctl-{n}.err"));
        let create = |path: &Path| {
            fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
        };
        let mut child = self
            .swanctl_command(args)
            .stdout(create(&out_path))
            .stderr(create(&err_path))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run swanctl {}: {e}", args.join(" ")));
        let status = match poll(limit, || child.try_wait().ok().flatten()) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                child.wait().expect("waiting for the killed swanctl")
            }
        };
        let read = |path: &Path| {
            let bytes = fs::read(path).unwrap_or_default();
            let _ = fs::remove_file(path);
            bytes
        };
        let mut stderr = read(&err_path);
        if !status.success() && status.code().is_none() {
            stderr.extend_from_slice(
                format!("\n(swanctl killed after {limit:?}: {status})\n").as_bytes(),
            );
        }
        Output {
            status,
            stdout: read(&out_path),
            stderr,
        }
    }

    /// Runs `swanctl ARGS` against this instance (killed after 20 s).
    pub fn swanctl(&self, args: &[&str]) -> Output {
        self.swanctl_within(args, WAIT_LIMIT)
    }

    /// Runs `swanctl ARGS`; panics with its output and charon's log unless it
    /// succeeds within 20 s. Returns stdout.
    pub fn swanctl_ok(&self, args: &[&str]) -> String {
        let out = self.swanctl(args);
        assert!(
            out.status.success(),
            "swanctl {} ({}) failed ({}):\nstdout: {}\nstderr: {}\n{}",
            args.join(" "),
            self.label,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.all_output()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `swanctl --initiate --child CHILD --ike IKE`: Ok(swanctl's output)
    /// once swanctl says the CHILD SA is established (installed); an error
    /// with its output when it fails, or does not finish within 20 s.
    pub fn initiate(&self, child: &str, ike: &str) -> Result<String> {
        let timeout = WAIT_LIMIT.as_secs().to_string();
        let out = self.swanctl_within(
            &[
                "--initiate",
                "--child",
                child,
                "--ike",
                ike,
                "--timeout",
                &timeout,
            ],
            WAIT_LIMIT + Duration::from_secs(2),
        );
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Printed when the CHILD SA is installed: "[IKE] CHILD_SA lan{1}
        // established with SPIs ...", then "initiate completed successfully".
        if out.status.success()
            && output.contains("initiate completed successfully")
            && output.contains(&format!("CHILD_SA {child}{{"))
            && output.contains("established with SPIs")
        {
            Ok(output)
        } else {
            bail!(
                "swanctl --initiate --child {child} --ike {ike} ({}) failed ({}):\n{output}",
                self.label,
                out.status
            )
        }
    }

    /// `swanctl --terminate --ike NAME` (waits for the DELETE exchange).
    pub fn terminate_ike(&self, name: &str) -> String {
        self.swanctl_ok(&[
            "--terminate",
            "--ike",
            name,
            "--timeout",
            &WAIT_LIMIT.as_secs().to_string(),
        ])
    }

    /// `swanctl --rekey --child NAME` (queues the rekeying and returns).
    pub fn rekey_child(&self, name: &str) -> String {
        self.swanctl_ok(&["--rekey", "--child", name])
    }

    /// `swanctl --rekey --ike NAME` (queues the rekeying and returns).
    pub fn rekey_ike(&self, name: &str) -> String {
        self.swanctl_ok(&["--rekey", "--ike", name])
    }

    /// The raw text of `swanctl --list-sas`.
    pub fn list_sas(&self) -> String {
        self.swanctl_ok(&["--list-sas"])
    }

    /// `swanctl --list-sas`, parsed.
    pub fn sas(&self) -> Sas {
        Sas::parse(&self.list_sas())
    }

    /// Polls `--list-sas` until `pred` holds (at most 20 s); returns the
    /// last listing either way, so the caller asserts with a clear message.
    pub fn sas_until(&self, mut pred: impl FnMut(&Sas) -> bool) -> Sas {
        poll(WAIT_LIMIT, || {
            let sas = self.sas();
            pred(&sas).then_some(sas)
        })
        .unwrap_or_else(|| self.sas())
    }

    /// charon's file log (DIR/charon.log) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("charon.log"))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// charon's stdout/stderr (normally empty: it logs to the file).
    fn stdout(&self) -> String {
        fs::read_to_string(self.dir.path().join("charon.out")).unwrap_or_default()
    }

    fn all_output(&self) -> String {
        format!(
            "----- charon log of {} ({}) -----\n{}\n----- charon stdout/stderr -----\n{}\n\
             ----- end of charon output -----",
            self.label,
            self.dir.path().display(),
            self.log(),
            self.stdout()
        )
    }

    /// Stops charon with SIGTERM (SIGKILL after 10 s). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "TERM");
            let exited = poll(Duration::from_secs(10), || child.try_wait().ok().flatten());
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("{}", self.all_output());
        }
        // `dir` (a TempDir) is removed when the fields drop, after this.
    }
}

/// The IKE SAs of `swanctl --list-sas`.
#[derive(Debug, Clone, Default)]
pub struct Sas {
    pub ike: Vec<IkeSa>,
    /// The text parsed, for assertion messages.
    pub raw: String,
}

/// One IKE SA of `swanctl --list-sas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IkeSa {
    pub name: String,
    pub unique_id: u32,
    /// `ESTABLISHED`, `CONNECTING`, `REKEYING`, `DELETING`, ...
    pub state: String,
    /// `IKEv2`.
    pub version: String,
    pub spi_i: String,
    pub spi_r: String,
    /// True when this end is the initiator (the `*` after the initiator SPI).
    pub initiator: bool,
    /// e.g. `198.51.100.1[4500]` (after the `@`), and the id before it.
    pub local: String,
    pub local_id: String,
    pub remote: String,
    pub remote_id: String,
    /// e.g. `AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519`.
    pub proposal: String,
    pub children: Vec<ChildSa>,
}

/// One CHILD SA of `swanctl --list-sas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSa {
    pub name: String,
    pub unique_id: u32,
    pub reqid: u32,
    /// `INSTALLED`, `REKEYED`, ...
    pub state: String,
    /// `TUNNEL`, `TUNNEL-in-UDP`, ...
    pub mode: String,
    /// e.g. `ESP:AES_GCM_16-256`.
    pub proposal: String,
    pub spi_in: String,
    pub spi_out: String,
    pub bytes_in: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub packets_out: u64,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
}

/// `name: #N, rest` → (name, N, rest).
fn header(line: &str) -> Option<(&str, u32, &str)> {
    let (name, rest) = line.split_once(": #")?;
    let (id, rest) = rest.split_once(", ").unwrap_or((rest, ""));
    Some((name, id.trim().parse().ok()?, rest))
}

/// `in  c2e8ee6f,    84 bytes,     1 packets, ...` → (spi, bytes, packets).
fn traffic(rest: &str) -> (String, u64, u64) {
    let mut parts = rest.split(',').map(str::trim);
    let spi = parts
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut bytes = 0;
    let mut packets = 0;
    for part in parts {
        let mut words = part.split_whitespace();
        if let (Some(n), Some(unit)) = (words.next(), words.next()) {
            match unit {
                "bytes" => bytes = n.parse().unwrap_or(0),
                "packets" => packets = n.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    (spi, bytes, packets)
}

/// `'id' @ addr[port]` → (id, addr[port]).
fn endpoint(rest: &str) -> (String, String) {
    let rest = rest.trim();
    match rest.rsplit_once(" @ ") {
        Some((id, addr)) => (id.trim_matches('\'').to_owned(), addr.trim().to_owned()),
        None => (String::new(), rest.to_owned()),
    }
}

impl Sas {
    /// Parses the text `swanctl --list-sas` prints (strongSwan 5.9).
    pub fn parse(text: &str) -> Self {
        let mut ike: Vec<IkeSa> = Vec::new();
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let body = line.trim();
            if body.is_empty() {
                continue;
            }
            if indent == 0 {
                if let Some((name, unique_id, rest)) = header(body) {
                    let fields: Vec<&str> = rest.split(", ").collect();
                    let mut sa = IkeSa {
                        name: name.to_owned(),
                        unique_id,
                        state: fields.first().copied().unwrap_or_default().to_owned(),
                        version: fields.get(1).copied().unwrap_or_default().to_owned(),
                        ..IkeSa::default()
                    };
                    if let Some(spis) = fields.get(2) {
                        for spi in spis.split_whitespace() {
                            let local = spi.ends_with('*');
                            let spi = spi.trim_end_matches('*');
                            if let Some(s) = spi.strip_suffix("_i") {
                                sa.spi_i = s.to_owned();
                                sa.initiator = local;
                            } else if let Some(s) = spi.strip_suffix("_r") {
                                sa.spi_r = s.to_owned();
                            }
                        }
                    }
                    ike.push(sa);
                }
                continue;
            }
            let Some(sa) = ike.last_mut() else {
                continue;
            };
            if indent <= 2 {
                if let Some(rest) = body.strip_prefix("local ") {
                    (sa.local_id, sa.local) = endpoint(rest);
                } else if let Some(rest) = body.strip_prefix("remote ") {
                    (sa.remote_id, sa.remote) = endpoint(rest);
                } else if let Some((name, unique_id, rest)) = header(body) {
                    let fields: Vec<&str> = rest.split(", ").collect();
                    let reqid = fields
                        .first()
                        .and_then(|f| f.strip_prefix("reqid "))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    sa.children.push(ChildSa {
                        name: name.to_owned(),
                        unique_id,
                        reqid,
                        state: fields.get(1).copied().unwrap_or_default().to_owned(),
                        mode: fields.get(2).copied().unwrap_or_default().to_owned(),
                        proposal: fields.get(3..).map(|f| f.join(", ")).unwrap_or_default(),
                        ..ChildSa::default()
                    });
                } else if body.contains('/')
                    && !body.contains(' ')
                    && sa.proposal.is_empty()
                    && sa.children.is_empty()
                {
                    body.clone_into(&mut sa.proposal);
                }
                continue;
            }
            let Some(child) = sa.children.last_mut() else {
                continue;
            };
            if let Some(rest) = body.strip_prefix("in ") {
                (child.spi_in, child.bytes_in, child.packets_in) = traffic(rest);
            } else if let Some(rest) = body.strip_prefix("out ") {
                (child.spi_out, child.bytes_out, child.packets_out) = traffic(rest);
            } else if let Some(rest) = body.strip_prefix("local ") {
                child.local_ts = rest.split_whitespace().map(str::to_owned).collect();
            } else if let Some(rest) = body.strip_prefix("remote ") {
                child.remote_ts = rest.split_whitespace().map(str::to_owned).collect();
            }
        }
        Self {
            ike,
            raw: text.to_owned(),
        }
    }

    /// The ESTABLISHED IKE SA of connection `name`, if any.
    pub fn established(&self, name: &str) -> Option<&IkeSa> {
        self.ike
            .iter()
            .find(|sa| sa.name == name && sa.state == "ESTABLISHED")
    }

    /// The INSTALLED CHILD SA `child` of an ESTABLISHED IKE SA `ike`, if any.
    pub fn installed(&self, ike: &str, child: &str) -> Option<&ChildSa> {
        self.established(ike).and_then(|sa| sa.installed(child))
    }

    /// Every CHILD SA of every IKE SA.
    pub fn children(&self) -> impl Iterator<Item = &ChildSa> {
        self.ike.iter().flat_map(|sa| sa.children.iter())
    }
}

impl IkeSa {
    /// The INSTALLED CHILD SA named `name`, if any.
    pub fn installed(&self, name: &str) -> Option<&ChildSa> {
        self.children
            .iter()
            .find(|c| c.name == name && c.state == "INSTALLED")
    }
}

impl std::fmt::Display for Sas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
site: #1, ESTABLISHED, IKEv2, 6b9b2c4f1e0d3a57_i* 5e0fcb7a2d9e8b16_r
  local  '198.51.100.1' @ 198.51.100.1[4500]
  remote '198.51.100.2' @ 198.51.100.2[4500]
  AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519
  established 3s ago, rekeying in 13965s
  lan: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256
    installed 3s ago, rekeying in 3312s, expires in 3960s
    in  c2e8ee6f,    252 bytes,     3 packets,     1s ago
    out c9a77dc2,    252 bytes,     3 packets,     1s ago
    local  10.1.1.0/24
    remote 192.168.4.0/24
";

    #[test]
    fn parses_an_established_listing() {
        let sas = Sas::parse(LISTING);
        let ike = sas.established("site").expect("established");
        assert_eq!(ike.unique_id, 1);
        assert_eq!(ike.version, "IKEv2");
        assert_eq!(ike.spi_i, "6b9b2c4f1e0d3a57");
        assert_eq!(ike.spi_r, "5e0fcb7a2d9e8b16");
        assert!(ike.initiator);
        assert_eq!(ike.local, "198.51.100.1[4500]");
        assert_eq!(ike.remote_id, "198.51.100.2");
        assert_eq!(ike.proposal, "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519");
        let child = sas.installed("site", "lan").expect("installed");
        assert_eq!(child.reqid, 1);
        assert_eq!(child.mode, "TUNNEL-in-UDP");
        assert_eq!(child.proposal, "ESP:AES_GCM_16-256");
        assert_eq!(child.spi_in, "c2e8ee6f");
        assert_eq!(child.spi_out, "c9a77dc2");
        assert_eq!((child.bytes_in, child.packets_in), (252, 3));
        assert_eq!((child.bytes_out, child.packets_out), (252, 3));
        assert_eq!(child.local_ts, ["10.1.1.0/24"]);
        assert_eq!(child.remote_ts, ["192.168.4.0/24"]);
    }

    #[test]
    fn parses_a_connecting_responder_and_empty_listing() {
        let sas = Sas::parse(
            "site: #2, CONNECTING, IKEv2, 0123456789abcdef_i 0000000000000000_r*\n  \
             local  '198.51.100.2' @ 198.51.100.2[500]\n",
        );
        assert_eq!(sas.ike.len(), 1);
        assert!(!sas.ike[0].initiator);
        assert!(sas.established("site").is_none());
        assert!(sas.children().next().is_none());
        assert!(Sas::parse("").ike.is_empty());
    }
}

//! A lab instance's state directory (default `/run/ipsecgw-lab/<instance>`):
//! what every command after `lab up` needs, and what `lab down` removes.
//!
//! ```text
//! lab.json        instance name, on-premises route variant, where the spec came from
//! spec.toml       the spec, copied as it was at `lab up`
//! routes.log      route operations since `lab up`, one per line, replayed
//!                 into a fresh CEN by every command
//! psk             the pre-shared key of both gateways (0600)
//! cpe.toml, vpngw.toml      the gateways' configs
//! cpe.log, vpngw.log        their logs
//! cpe.pid, vpngw.pid        their process ids
//! cpe.sock, vpngw.sock      their control sockets
//! ```
//!
//! Keeping the log of operations, not the CEN's tables, means the engine
//! stays the one place that computes routes: the state cannot disagree with
//! what the engine would say.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::routes::Op;
use super::spec::{OnpremRoutes, Spec};
use super::topology::Names;

/// Where state directories go unless `--state-dir` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/ipsecgw-lab";
/// The instance name unless `--name` says otherwise.
pub const DEFAULT_INSTANCE: &str = "lab";

const RECORD: &str = "lab.json";
const SPEC: &str = "spec.toml";
const OPS: &str = "routes.log";
const PSK: &str = "psk";

/// The two gateways the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The customer gateway, on-premises; it initiates.
    Cpe,
    /// The VPN gateway in front of its VPC; it answers.
    VpnGateway,
}

impl Role {
    /// Both, in start order: the answering side first.
    pub const ALL: [Self; 2] = [Self::VpnGateway, Self::Cpe];

    /// File stem in the state dir.
    pub fn stem(self) -> &'static str {
        match self {
            Self::Cpe => "cpe",
            Self::VpnGateway => "vpngw",
        }
    }

    /// What to call it in messages.
    pub fn title(self) -> &'static str {
        match self {
            Self::Cpe => "customer gateway",
            Self::VpnGateway => "VPN gateway",
        }
    }

    /// Its namespace.
    pub fn ns(self, names: &Names) -> String {
        match self {
            Self::Cpe => names.cpe(),
            Self::VpnGateway => names.vpngw(),
        }
    }
}

/// What `lab up` recorded about the instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The instance name.
    pub instance: String,
    /// The on-premises route variant in force (the spec's, or the one
    /// given on the command line).
    pub onprem_routes: OnpremRoutes,
    /// The spec file `lab up` read.
    pub spec_origin: PathBuf,
}

/// A lab instance: its name, its namespaces' names, its state directory.
#[derive(Debug, Clone)]
pub struct State {
    /// The instance name.
    pub instance: String,
    /// Its namespaces' names.
    pub names: Names,
    /// Its state directory.
    pub dir: PathBuf,
}

impl State {
    /// Finds the instance from the command line: `--state-dir` alone names
    /// the instance through its record (so `lab down --state-dir D` works
    /// whatever the name was), `--name` alone implies the default directory.
    pub fn locate(name: Option<&str>, dir: Option<&Path>) -> anyhow::Result<Self> {
        let recorded = dir
            .map(|d| d.join(RECORD))
            .filter(|p| p.exists())
            .map(|p| read_record(&p))
            .transpose()?;
        let instance = match (name, &recorded) {
            (Some(n), Some(r)) if n != r.instance => bail!(
                "the state dir {} belongs to lab {:?}, not {n:?}",
                dir.map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                r.instance
            ),
            (Some(n), _) => n.to_owned(),
            (None, Some(r)) => r.instance.clone(),
            (None, None) => DEFAULT_INSTANCE.to_owned(),
        };
        let names = Names::new(&instance)?;
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => Path::new(DEFAULT_ROOT).join(&instance),
        };
        Ok(Self {
            instance,
            names,
            dir,
        })
    }

    /// The options that name this instance on a command line: `--name`
    /// when its state lives in the default place, `--state-dir` otherwise.
    pub fn cli_flags(&self) -> String {
        if self.dir == Path::new(DEFAULT_ROOT).join(&self.instance) {
            format!("--name {}", self.instance)
        } else {
            format!("--state-dir {}", self.dir.display())
        }
    }

    /// Whether `lab up` has recorded this instance.
    pub fn is_recorded(&self) -> bool {
        self.dir.join(RECORD).exists()
    }

    /// The record and the spec (with the recorded route variant), or an
    /// error saying the lab is not up.
    pub fn load(&self) -> anyhow::Result<(Record, Spec)> {
        if !self.is_recorded() {
            bail!(
                "lab {:?} is not up (no state in {}): bring it up with `ipsecgw lab up {}`",
                self.instance,
                self.dir.display(),
                self.cli_flags()
            );
        }
        let record = read_record(&self.dir.join(RECORD))?;
        let mut spec = Spec::load(&self.dir.join(SPEC))?;
        spec.onprem_routes = record.onprem_routes;
        Ok((record, spec))
    }

    /// Creates the directory (0700) with the record and the spec text.
    /// Refuses a directory that holds anything already.
    pub fn create(&self, record: &Record, spec_text: &str) -> anyhow::Result<()> {
        if self.dir.exists() {
            let busy = fs::read_dir(&self.dir)
                .with_context(|| format!("cannot read {}", self.dir.display()))?
                .next()
                .is_some();
            if busy {
                bail!(
                    "the state dir {} is not empty: give an empty or new directory with --state-dir",
                    self.dir.display()
                );
            }
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create the state dir {}", self.dir.display()))?;
        fs::write(self.dir.join(SPEC), spec_text)?;
        fs::write(self.dir.join(OPS), "")?;
        fs::write(
            self.dir.join(RECORD),
            serde_json::to_string_pretty(record)? + "\n",
        )
        .with_context(|| format!("cannot write {}", self.dir.join(RECORD).display()))?;
        Ok(())
    }

    /// The route operations since `lab up`.
    pub fn ops(&self) -> anyhow::Result<Vec<Op>> {
        let path = self.dir.join(OPS);
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                l.parse()
                    .with_context(|| format!("{} line {}: {l:?}", path.display(), i + 1))
            })
            .collect()
    }

    /// Appends one operation to the log.
    pub fn append_op(&self, op: &Op) -> anyhow::Result<()> {
        let path = self.dir.join(OPS);
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(f, "{op}").with_context(|| format!("cannot write {}", path.display()))
    }

    /// Writes the pre-shared key, readable by root only.
    pub fn write_psk(&self, psk: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(PSK);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(psk.as_bytes())?;
        Ok(path)
    }

    /// A gateway's config file.
    pub fn config(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.toml", role.stem()))
    }

    /// A gateway's log.
    pub fn log(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.log", role.stem()))
    }

    /// A gateway's pid file.
    pub fn pid(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.pid", role.stem()))
    }

    /// A gateway's control socket.
    pub fn socket(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.sock", role.stem()))
    }

    /// Removes the files the lab made and then the directory (and the
    /// default parent, once empty). Anything else found there is left, with
    /// a warning.
    pub fn remove(&self) -> anyhow::Result<()> {
        if !self.dir.exists() {
            return Ok(());
        }
        let mut ours = vec![
            self.dir.join(RECORD),
            self.dir.join(SPEC),
            self.dir.join(OPS),
            self.dir.join(PSK),
        ];
        for role in Role::ALL {
            ours.extend([
                self.config(role),
                self.log(role),
                self.pid(role),
                self.socket(role),
            ]);
        }
        for path in ours {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    bail!("cannot remove {}: {e}", path.display());
                }
            }
        }
        fs::remove_dir(&self.dir).with_context(|| {
            format!(
                "{} holds files the lab did not make; left in place",
                self.dir.display()
            )
        })?;
        if self.dir.parent() == Some(Path::new(DEFAULT_ROOT)) {
            // Only when empty: another instance may live there.
            let _ = fs::remove_dir(DEFAULT_ROOT);
        }
        Ok(())
    }
}

fn read_record(path: &Path) -> anyhow::Result<Record> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a lab record", path.display()))
}

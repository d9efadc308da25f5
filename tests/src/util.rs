//! Small shared helpers: unique names, temp dirs, locating binaries, the
//! root check, randomness from `/dev/urandom`, polling.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// Prefix of every namespace and temp dir the harness creates.
pub const NAME_PREFIX: &str = "ipsgw-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A prefix unique to this process and call: `ipsgw-<pid>-<n>-`.
pub fn unique_prefix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{NAME_PREFIX}{}-{n}-", std::process::id())
}

/// The workspace root (the parent of this package's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The daemon binary: `$IPSECGW_BIN`, else `target/release/ipsecgw`, else
/// `target/debug/ipsecgw`. Panics, saying how to build it, when none exists.
pub fn ipsecgw_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("IPSECGW_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "IPSECGW_BIN={} does not exist; build it with `cargo build --release -p ipsecgw`",
            bin.display()
        );
        return bin;
    }
    let target = target_dir();
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("ipsecgw");
        if bin.is_file() {
            return bin;
        }
    }
    panic!(
        "the ipsecgw daemon binary was not found (looked at $IPSECGW_BIN, {0}/release/ipsecgw, \
         {0}/debug/ipsecgw); build it with `cargo build --release -p ipsecgw`",
        target.display()
    );
}

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Finds `tool` on `$PATH` (and the sbin directories, which a non-login
/// root shell may lack).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Panics with a clear message unless we are root and `ip`, `tcpdump`,
/// `ping` and `kill` are installed. Every namespace test calls this first.
pub fn require_root_and_tools() {
    assert!(
        is_root(),
        "this end-to-end test needs root (it creates network namespaces, veth pairs and TUN \
         devices); run it as root, e.g. `sudo -E cargo test -p ipsecgw-tests` or scripts/test"
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("tcpdump", "tcpdump"),
        ("ping", "iputils-ping"),
        ("kill", "procps"),
        ("nft", "nftables"),
    ] {
        assert!(
            find_tool(tool).is_some(),
            "`{tool}` is missing: install it with `apt-get install {package}` (scripts/test does)"
        );
    }
}

/// Runs a command to completion and returns its output; panics if it cannot
/// be started at all.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program} {}`: {e}", args.join(" ")))
}

/// Runs a command and panics with its output unless it succeeds; returns stdout.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `n` random bytes from `/dev/urandom`.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf
}

/// The generous upper bound on every wait in the harness.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls `check` every 100 ms until it returns `Some`, for at most `limit`.
/// Counts sleeps instead of reading the clock (the workspace bans
/// `Instant::now` outside the daemon).
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let rounds = (limit.as_millis() / POLL_INTERVAL.as_millis()).max(1);
    for _ in 0..rounds {
        if let Some(value) = check() {
            return Some(value);
        }
        thread::sleep(POLL_INTERVAL);
    }
    check()
}

/// Sends `signal` (e.g. "TERM", "INT", "KILL") to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    // A process that is already gone is fine: ignore the result.
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .output();
}

/// A temporary directory under `std::env::temp_dir()`, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/ipsgw-<pid>-<n>-<label>`.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{}{label}", unique_prefix()));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", path.display()));
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

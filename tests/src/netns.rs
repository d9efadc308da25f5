//! A network namespace that exists exactly as long as its guard.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::fs;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;

use crate::util::{self, find_tool, send_signal, NAME_PREFIX};

/// A network namespace created with `ip netns add` and, on drop, emptied of
/// processes (SIGKILL) and deleted, also when the test panicked.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` and brings its `lo` up.
    pub fn new(name: &str) -> Self {
        assert!(
            name.starts_with(NAME_PREFIX),
            "harness namespaces are named {NAME_PREFIX}*"
        );
        util::run_ok("ip", &["netns", "add", name]);
        // The guard exists from here on, so a failure below still deletes it.
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program args` inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }

    /// Runs `program args` in the namespace to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.command(program, args).output().unwrap_or_else(|e| {
            panic!(
                "cannot run `{program} {}` in {}: {e}",
                args.join(" "),
                self.name
            )
        })
    }

    /// Runs `program args` in the namespace; panics with its output unless it
    /// succeeds. Returns stdout.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "`{program} {}` in {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `program args` in the namespace with the given stdio.
    pub fn spawn(&self, program: &str, args: &[&str], stdout: Stdio, stderr: Stdio) -> Child {
        self.command(program, args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{program} {}` in {}: {e}",
                    args.join(" "),
                    self.name
                )
            })
    }

    /// `ip -n NS args...`, panicking on failure. Returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        util::run_ok("ip", &full)
    }

    /// `sysctl -qw key=value` inside the namespace.
    pub fn sysctl(&self, setting: &str) {
        self.exec_ok("sysctl", &["-qw", setting]);
    }

    /// Pids of the processes living in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        let out = util::run("ip", &["netns", "pids", &self.name]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    }

    /// True while `ip netns list` shows the namespace.
    pub fn exists(name: &str) -> bool {
        let out = util::run("ip", &["netns", "list"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line.split_whitespace().next() == Some(name))
    }

    /// Deletes harness namespaces left behind by processes that no longer
    /// exist (a test run killed with SIGKILL cannot run its destructors).
    /// The first call in a process also deletes those named with this
    /// process's own pid: a dead run that had the same pid left them, since
    /// this process has created none yet.
    pub fn remove_stale() {
        static FIRST: Once = Once::new();
        FIRST.call_once(|| Self::remove_stale_with(true));
        Self::remove_stale_with(false);
    }

    fn remove_stale_with(include_own_pid: bool) {
        if find_tool("ip").is_none() {
            return;
        }
        let own = std::process::id();
        let out = util::run("ip", &["netns", "list"]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let dead = !fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.is_dir());
            if dead || (include_own_pid && pid == own) {
                let stale = Self {
                    name: name.to_owned(),
                };
                drop(stale);
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside (daemons, tcpdump, ping), so that
        // nothing keeps the namespace or its TUN devices alive.
        for _ in 0..3 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                send_signal(pid, "KILL");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = util::run("ip", &["netns", "del", &self.name]);
        if !out.status.success() && Self::exists(&self.name) {
            eprintln!(
                "warning: could not delete network namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

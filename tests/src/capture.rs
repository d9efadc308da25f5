//! tcpdump as a guarded child process.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::pcap::Pcap;
use crate::util::{poll, send_signal, WAIT_LIMIT};

/// `tcpdump -i IF -w FILE -U` running in a namespace. `stop` returns the
/// parsed capture; drop kills tcpdump if the test did not stop it.
#[derive(Debug)]
pub struct Capture {
    pub path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Capture {
    /// Starts capturing on `iface` in `ns` into `dir/<label>.pcap` and waits
    /// until tcpdump says it is listening.
    pub fn start(ns: &Netns, iface: &str, dir: &Path, label: &str) -> Self {
        let path = dir.join(format!("{label}.pcap"));
        let log_path = dir.join(format!("{label}.tcpdump.log"));
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
        let file = path.to_string_lossy().into_owned();
        // -B 8192: an 8 MiB buffer, so bulk transfers lose few packets to the
        // capture. -Z root: do not drop privileges, or the savefile in our 0700 temp dir
        // could not be written. --immediate-mode and -U: every packet reaches
        // the file at once.
        let child = ns.spawn(
            "tcpdump",
            &[
                "-i",
                iface,
                "-n",
                "-U",
                "--immediate-mode",
                "-s",
                "0",
                "-B",
                "8192",
                "-Z",
                "root",
                "-w",
                &file,
            ],
            Stdio::null(),
            Stdio::from(log),
        );
        let mut cap = Self {
            path,
            log_path,
            child: Some(child),
        };
        let ready = poll(WAIT_LIMIT, || {
            if let Some(status) = cap.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "tcpdump on {iface} in {} exited with {status}:\n{}",
                    ns.name(),
                    cap.log()
                );
            }
            (cap.path.exists() && cap.log().contains("listening on")).then_some(())
        });
        if ready.is_none() {
            panic!(
                "tcpdump on {iface} in {} did not start within {WAIT_LIMIT:?}:\n{}",
                ns.name(),
                cap.log()
            );
        }
        cap
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops tcpdump (SIGINT, after a short grace period so the last packets
    /// are written) and parses the capture.
    pub fn stop(mut self) -> Pcap {
        std::thread::sleep(Duration::from_millis(500));
        self.kill();
        // tcpdump's closing statistics ("N packets captured ... M dropped by kernel").
        eprintln!("[{}] {}", self.path.display(), self.log().trim());
        Pcap::read(&self.path)
            .unwrap_or_else(|e| panic!("reading capture {}: {e:#}", self.path.display()))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "INT");
            if poll(Duration::from_secs(10), || child.try_wait().ok().flatten()).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.kill();
    }
}

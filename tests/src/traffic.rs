//! Traffic between the namespaces with `nettool`.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;

use crate::netns::Netns;
use crate::util::send_signal;

/// What one side of a TCP transfer saw: `bytes=N sha256=HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub bytes: u64,
    pub sha256: String,
}

impl Summary {
    /// Parses nettool's `bytes=N sha256=HEX` line.
    pub fn parse(line: &str) -> Option<Self> {
        let mut bytes = None;
        let mut sha256 = None;
        for word in line.split_whitespace() {
            if let Some(v) = word.strip_prefix("bytes=") {
                bytes = v.parse().ok();
            } else if let Some(v) = word.strip_prefix("sha256=") {
                sha256 = Some(v.to_owned());
            }
        }
        Some(Self {
            bytes: bytes?,
            sha256: sha256?,
        })
    }
}

/// Sends `bytes` bytes of the stream for `seed` from `src` to a sink
/// listening on `listen` (an `ADDR:PORT` of `dst`). Returns (sent, received).
/// Each side is bounded by `timeout 300`.
pub fn tcp_transfer(
    nettool: &Path,
    src: &Netns,
    dst: &Netns,
    listen: &str,
    bytes: u64,
    seed: u64,
) -> (Summary, Summary) {
    let tool = nettool.to_string_lossy().into_owned();
    let mut sink = dst.spawn(
        "timeout",
        &["300", &tool, "tcp-sink", "--listen", listen],
        Stdio::piped(),
        Stdio::inherit(),
    );
    let bytes_arg = bytes.to_string();
    let seed_arg = seed.to_string();
    let source = src.exec(
        "timeout",
        &[
            "300",
            &tool,
            "tcp-source",
            "--connect",
            listen,
            "--bytes",
            &bytes_arg,
            "--seed",
            &seed_arg,
        ],
    );
    if !source.status.success() {
        send_signal(sink.id(), "KILL");
        let _ = sink.wait();
        panic!(
            "tcp-source {} -> {listen} failed ({}): {}",
            src.name(),
            source.status,
            String::from_utf8_lossy(&source.stderr)
        );
    }
    let sent_line = String::from_utf8_lossy(&source.stdout).into_owned();
    let mut received_line = String::new();
    if let Some(mut out) = sink.stdout.take() {
        let _ = out.read_to_string(&mut received_line);
    }
    let status = sink.wait().expect("waiting for tcp-sink");
    assert!(status.success(), "tcp-sink on {listen} failed: {status}");
    let sent = Summary::parse(&sent_line)
        .unwrap_or_else(|| panic!("tcp-source printed no summary: {sent_line:?}"));
    let received = Summary::parse(&received_line)
        .unwrap_or_else(|| panic!("tcp-sink printed no summary: {received_line:?}"));
    (sent, received)
}

/// Runs `nettool udp-replay` (or `esp-replay` when `to_port` is `None`) in
/// `ns`, re-sending the first `count` ESP packets to `to` found in `pcap`.
pub fn replay(
    nettool: &Path,
    ns: &Netns,
    pcap: &Path,
    to: &str,
    to_port: Option<u16>,
    count: usize,
) {
    let tool = nettool.to_string_lossy().into_owned();
    let pcap = pcap.to_string_lossy().into_owned();
    let count_arg = count.to_string();
    let (cmd, dest) = match to_port {
        Some(port) => ("udp-replay", format!("{to}:{port}")),
        None => ("esp-replay", to.to_owned()),
    };
    let out = ns.exec_ok(
        &tool,
        &[cmd, "--pcap", &pcap, "--to", &dest, "--count", &count_arg],
    );
    assert_eq!(
        out.trim(),
        format!("sent={count}"),
        "nettool {cmd} did not send {count} packets"
    );
}

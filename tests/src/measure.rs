//! Measurements the tests print (and never assert on): how long a tunnel
//! takes from "go" to carrying traffic.
#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a failed setup step must fail the test loudly"
)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::util::WAIT_LIMIT;

/// Runs `start` (which kicks off a negotiation and may block until it ends,
/// e.g. `swanctl --initiate`) on a second thread while `from` pings `dst`
/// every 10 ms (`ping -i 0.01 -c 2000`, stopped at the first reply). Returns the
/// time from just before `start` was called to ping printing its first reply,
/// and what `start` returned. Panics when no reply came within 20 s.
///
/// The figure includes starting `ping` in the namespace (a few ms) and up to
/// the 10 ms ping interval; it is a measurement to print next to another
/// implementation's, taken the same way, not something to assert on.
#[allow(
    clippy::disallowed_methods,
    reason = "a measurement for humans: the test harness reads the clock here, never the daemon's \
              sans-IO crates"
)]
pub fn time_to_first_ping<T: Send>(
    from: &Netns,
    dst: &str,
    start: impl FnOnce() -> T + Send,
) -> (Duration, T) {
    let deadline = WAIT_LIMIT.as_secs().to_string();
    std::thread::scope(|scope| {
        let t0 = Instant::now();
        let negotiation = scope.spawn(start);
        // Neither `-c 1` nor `-w`: iputils ping counts the "Destination Net
        // Unreachable" errors seen before the tunnel is up towards `-c`, and
        // with `-w` stops at the first error. 2000 pings 10 ms apart: 20 s.
        let count = (WAIT_LIMIT.as_millis() / 10).to_string();
        let mut ping = from
            .command("ping", &["-n", "-i", "0.01", "-c", &count, dst])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ping in {}: {e}", from.name()));
        let stdout = ping.stdout.take().expect("ping stdout is piped");
        let mut before = 0usize;
        let mut first = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("bytes from") {
                first = Some((t0.elapsed(), line));
                break;
            }
            before += 1;
        }
        // `ip netns exec` execs ping: this is ping's own pid.
        let _ = ping.kill();
        let _ = ping.wait();
        let value = match negotiation.join() {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        };
        let Some((elapsed, line)) = first else {
            panic!(
                "[{}] no ping reply from {dst} within {deadline} s",
                from.name()
            );
        };
        eprintln!(
            "[{}] first ping reply from {dst} after {elapsed:?} ({before} lines of ping output \
             before it): {line}",
            from.name()
        );
        (elapsed, value)
    })
}

//! `ipsecgw check`: the config validator (no root needed, but the daemon
//! binary must be built; the test fails when it is not).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::process::Command;

use ipsecgw_tests::{ipsecgw_bin, Encapsulation, GatewayConfig, TempDir};

#[test]
fn check_accepts_a_good_config_and_names_file_line_and_key_of_a_bad_one() {
    let bin = ipsecgw_bin();
    let dir = TempDir::new("check");
    let (left, _) = GatewayConfig::site_pair(Encapsulation::Udp);
    let good = left.to_toml(&dir.path().join("onprem.sock"));
    let good_path = dir.path().join("good.toml");
    std::fs::write(&good_path, &good).unwrap();
    let out = Command::new(&bin)
        .args(["check", "--config"])
        .arg(&good_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ipsecgw check rejected a good config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = good.replace("replay_window = 1024", "replay_window = \"lots\"");
    assert_ne!(bad, good);
    let line = bad
        .lines()
        .position(|l| l.starts_with("replay_window"))
        .unwrap()
        + 1;
    let bad_path = dir.path().join("bad.toml");
    std::fs::write(&bad_path, &bad).unwrap();
    let out = Command::new(&bin)
        .args(["check", "--config"])
        .arg(&bad_path)
        .output()
        .unwrap();
    let message = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "ipsecgw check accepted:\n{bad}");
    assert!(
        message.contains(&bad_path.display().to_string()),
        "message does not name the file: {message}"
    );
    assert!(
        message.contains("replay_window"),
        "message does not name the key: {message}"
    );
    assert!(
        message.contains(&format!("line {line}")) || message.contains(&format!(":{line}")),
        "message does not name line {line}: {message}"
    );
}

//! The seed document, walked end to end with `ipsecgw lab` (root): the
//! on-premises data center behind its customer gateway, four VPCs on one
//! CEN, the VPN gateway in front of the Hangzhou VPC, and the route
//! publishing that decides who reaches the data center.
//!
//! For both on-premises route variants (each VPC block → VPN gateway, and
//! 0.0.0.0/0 → VPN gateway): the tunnel comes up; Hangzhou has its custom
//! route to the data center through the VPN gateway, unpublished, so only
//! Hangzhou reaches the data center; once published every VPC does, both
//! ways; withdrawn, only Hangzhou again; deleted in Hangzhou, it leaves the
//! CEN too and nobody reaches the data center. And the same with other
//! address blocks (`configs/lab/other.toml`).
//!
//! Each test is one lab instance with its own name and state dir, always
//! taken down (also after a panic), and checked to leave no namespace.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failure by panicking, helpers included"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ipsecgw_tests::util::{find_tool, ipsecgw_bin, is_root, run, workspace_root, TempDir};

const DC: &str = "10.1.1.0/24";
const VPCS: [&str; 4] = ["beijing", "hongkong", "shanghai", "hangzhou"];
const NS_PREFIX: &str = "ipsgwlab-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One running lab, taken down on drop.
struct Lab {
    bin: PathBuf,
    name: String,
    /// Removed by `lab down` itself; the guard only covers a failed `up`.
    dir: TempDir,
    down: bool,
}

impl Lab {
    /// `lab up --spec SPEC extra...` under a fresh instance name.
    fn up(spec: &str, extra: &[&str]) -> Self {
        assert!(
            is_root(),
            "this end-to-end test needs root (the lab creates network namespaces); run it as root, e.g. scripts/test"
        );
        for (tool, package) in [
            ("ip", "iproute2"),
            ("ping", "iputils-ping"),
            ("kill", "procps"),
        ] {
            assert!(
                find_tool(tool).is_some(),
                "`{tool}` is missing: install {package}"
            );
        }
        remove_stale_labs();
        let name = format!(
            "e2e-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Self {
            bin: ipsecgw_bin(),
            dir: TempDir::new(&format!("lab-{name}")),
            name,
            down: false,
        };
        let spec = workspace_root().join(spec);
        let mut args = vec!["up", "--spec", spec.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = lab.ok(&args);
        assert!(out.contains("ESTABLISHED"), "no IKE SA after up:\n{out}");
        lab
    }

    fn command(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("lab")
            .args(args)
            .arg("--name")
            .arg(&self.name)
            .arg("--state-dir")
            .arg(self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs a lab command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args);
        assert!(
            out.status.success(),
            "`ipsecgw lab {}` failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a lab command that must fail cleanly; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.command(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "`ipsecgw lab {}` succeeded",
            args.join(" ")
        );
        assert!(
            !stderr.contains("panicked"),
            "`ipsecgw lab {}` panicked: {stderr}",
            args.join(" ")
        );
        stderr
    }

    /// Whether `from`'s host reaches `to`'s, checked the way the
    /// expectation needs: a few single pings for a reply, or two quick ones
    /// that must all go unanswered.
    fn reaches(&self, from: &str, to: &str, expect: bool) -> bool {
        if expect {
            (0..3).any(|_| {
                self.command(&["ping", from, to, "--count", "1", "--wait", "2"])
                    .status
                    .success()
            })
        } else {
            self.command(&["ping", from, to, "--count", "2", "--wait", "1"])
                .status
                .success()
        }
    }

    /// Checks, in parallel, that exactly the VPCs in `expected` reach the
    /// data center and are reached from it.
    fn assert_reach(&self, dc: &str, vpcs: &[&str], expected: &[&str], step: &str) {
        let results: Vec<(String, bool, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = vpcs
                .iter()
                .map(|vpc| {
                    let expect = expected.contains(vpc);
                    s.spawn(move || {
                        let out = self.reaches(vpc, dc, expect);
                        let back = self.reaches(dc, vpc, expect);
                        (vpc.to_string(), out, back)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wrong: Vec<String> = results
            .iter()
            .filter(|(vpc, out, back)| {
                let expect = expected.contains(&vpc.as_str());
                *out != expect || *back != expect
            })
            .map(|(vpc, out, back)| format!("{vpc}: to {dc} {out}, from {dc} {back}"))
            .collect();
        assert!(
            wrong.is_empty(),
            "{step}: expected exactly {expected:?} to reach {dc} both ways, but\n  {}\n{}",
            wrong.join("\n  "),
            self.ok(&["routes", "--kernel"])
        );
        eprintln!("{step}: {expected:?} reach {dc} both ways, the others do not");
    }

    /// `lab down`, then nothing of the lab may remain.
    fn down(mut self) {
        self.down = true;
        let out = self.ok(&["down"]);
        assert!(out.contains("is down"), "{out}");
        let left = namespaces(&format!("{NS_PREFIX}{}-", self.name));
        assert!(left.is_empty(), "left behind by lab down: {left:?}");
        assert!(
            !self.dir.path().exists(),
            "lab down left its state dir {}",
            self.dir.path().display()
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let out = self.command(&["down"]);
            if !out.status.success() {
                eprintln!(
                    "warning: lab down {} failed: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// Namespaces whose names start with `prefix`.
fn namespaces(prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&run("ip", &["netns", "list"]).stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Labs of earlier test runs that were killed before their guards ran
/// (`ipsgwlab-e2e-<pid>-…` with that pid gone): their daemons are killed
/// and their namespaces deleted.
fn remove_stale_labs() {
    for ns in namespaces(&format!("{NS_PREFIX}e2e-")) {
        let pid = ns
            .trim_start_matches(&format!("{NS_PREFIX}e2e-"))
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pids = String::from_utf8_lossy(&run("ip", &["netns", "pids", &ns]).stdout).into_owned();
        for p in pids.split_whitespace() {
            let _ = run("kill", &["-KILL", p]);
        }
        let _ = run("ip", &["netns", "del", &ns]);
    }
}

/// Lines of a `lab routes` section (the lines after `header` up to the
/// blank line).
fn section<'a>(routes: &'a str, header: &str) -> Vec<&'a str> {
    routes
        .lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

fn has_route(lines: &[&str], destination: &str) -> bool {
    lines
        .iter()
        .any(|l| l.trim_start().starts_with(&format!("{destination} ")))
}

/// The seed walk for one on-premises route variant.
fn walk_the_seed(variant: &str) {
    let lab = Lab::up("configs/lab/seed.toml", &["--onprem-routes", variant]);

    // The data center's routes to the cloud: the variant's table, in the
    // customer gateway's kernel table too.
    let dc_routes = lab.ok(&["routes", "datacenter", "--kernel"]);
    match variant {
        "per-vpc" => {
            for cidr in [
                "192.168.1.0/24",
                "192.168.2.0/24",
                "192.168.3.0/24",
                "192.168.4.0/24",
            ] {
                assert!(
                    dc_routes.contains(&format!("{cidr}  custom  vpn gateway vpn-hangzhou"))
                        && dc_routes.contains(&format!("{cidr} dev ipsgw0")),
                    "no on-premises route {cidr} -> VPN gateway:\n{dc_routes}"
                );
            }
            assert!(!dc_routes.contains("default dev ipsgw0"), "{dc_routes}");
        }
        _ => {
            assert!(
                dc_routes.contains("0.0.0.0/0  custom  vpn gateway vpn-hangzhou")
                    && dc_routes.contains("default dev ipsgw0"),
                "no on-premises default route -> VPN gateway:\n{dc_routes}"
            );
            assert!(
                !dc_routes.contains("192.168.1.0/24 dev ipsgw0"),
                "{dc_routes}"
            );
        }
    }

    // Hangzhou's custom route to the data center through the VPN gateway,
    // not published: only Hangzhou has it.
    let routes = lab.ok(&["routes"]);
    let hangzhou = section(&routes, "hangzhou ");
    assert!(
        hangzhou.iter().any(
            |l| l.contains(&format!("{DC}  custom  vpn gateway vpn-hangzhou"))
                && l.contains("own, not published")
        ),
        "no unpublished custom route in Hangzhou:\n{routes}"
    );
    for vpc in &VPCS[..3] {
        assert!(
            !has_route(&section(&routes, &format!("{vpc} ")), DC),
            "{routes}"
        );
    }
    lab.assert_reach("datacenter", &VPCS, &["hangzhou"], "before publishing");

    // PublishRouteEntries: every VPC learns it and reaches the data center.
    lab.ok(&["publish", "hangzhou", DC]);
    let routes = lab.ok(&["routes"]);
    for vpc in &VPCS[..3] {
        assert!(
            section(&routes, &format!("{vpc} "))
                .iter()
                .any(|l| l.contains(&format!(
                    "{DC}  cen  learned from hangzhou (vpn gateway vpn-hangzhou)"
                ))),
            "{vpc} did not learn {DC}:\n{routes}"
        );
    }
    assert!(
        section(&routes, "CEN ")
            .iter()
            .any(|l| l.contains(&format!("{DC}  hangzhou  vpn gateway vpn-hangzhou  active"))),
        "{routes}"
    );
    lab.assert_reach("datacenter", &VPCS, &VPCS, "after publishing");

    // WithdrawPublishedRouteEntries: back to Hangzhou only.
    lab.ok(&["withdraw", "hangzhou", DC]);
    let routes = lab.ok(&["routes"]);
    assert!(!has_route(&section(&routes, "CEN "), DC), "{routes}");
    lab.assert_reach("datacenter", &VPCS, &["hangzhou"], "after withdrawing");

    // Published again, then deleted in Hangzhou: gone from the CEN too.
    lab.ok(&["publish", "hangzhou", DC]);
    assert!(
        lab.reaches("beijing", "datacenter", true),
        "published again"
    );
    lab.ok(&["route-delete", "hangzhou", DC]);
    let routes = lab.ok(&["routes"]);
    for vpc in VPCS {
        assert!(
            !has_route(&section(&routes, &format!("{vpc} ")), DC),
            "{vpc} still routes {DC} after it was deleted:\n{routes}"
        );
    }
    assert!(!has_route(&section(&routes, "CEN "), DC), "{routes}");
    lab.assert_reach("datacenter", &VPCS, &[], "after deleting the route");

    let status = lab.ok(&["status"]);
    assert_eq!(status.matches("IKE SA ESTABLISHED").count(), 2, "{status}");
    assert!(
        status.contains(&format!("route-delete hangzhou {DC}")),
        "{status}"
    );
    lab.down();
}

#[test]
fn seed_walk_with_a_route_per_vpc_on_premises() {
    walk_the_seed("per-vpc");
}

#[test]
fn seed_walk_with_a_default_route_on_premises() {
    walk_the_seed("default");
}

#[test]
fn other_address_blocks_work_the_same_and_bad_input_is_refused() {
    let lab = Lab::up("configs/lab/other.toml", &[]);
    let vpcs = ["east", "west", "north"];
    lab.assert_reach("office", &vpcs, &["west"], "before publishing");
    // The destination may be given by network name.
    lab.ok(&["publish", "west", "office"]);
    lab.assert_reach("office", &vpcs, &vpcs, "after publishing");

    // Bad input: clear errors, nothing changes.
    for (args, needle) in [
        (
            &["publish", "south", "office"][..],
            "no network named \"south\"",
        ),
        (
            &["publish", "office", "10.50.0.0/16"][..],
            "not attached to the CEN",
        ),
        (
            &["publish", "east", "192.0.2.0/24"][..],
            "has no route for 192.0.2.0/24",
        ),
        (&["publish", "west", "office"][..], "already published"),
        (&["withdraw", "north", "office"][..], "learned its route"),
        (
            &["route-delete", "east", "10.50.0.0/16"][..],
            "cannot delete the system route",
        ),
        (
            &[
                "route-add",
                "east",
                "192.0.2.0/24",
                "--next-hop",
                "vpn-gateway",
            ][..],
            "has no VPN gateway",
        ),
        (&["publish", "west", "10.1.2.3/8"][..], "host bits"),
        (&["ping", "east", "nowhere"][..], "neither a network"),
        (&["routes", "nowhere"][..], "no network named"),
    ] {
        let err = lab.fails(args);
        assert!(err.contains(needle), "`lab {}`: {err}", args.join(" "));
    }
    let spec = workspace_root().join("configs/lab/other.toml");
    let err = lab.fails(&["up", "--spec", spec.to_str().unwrap()]);
    assert!(err.contains("already up"), "{err}");
    lab.assert_reach("office", &vpcs, &vpcs, "after the refused commands");
    let routes = lab.ok(&["routes", "cen"]);
    assert_eq!(routes.matches("active").count(), 4, "{routes}");
    lab.down();
}

//! Known-answer tests of the cloud model: the state file's keys, defaults
//! and profile, each validation error with its line and key, generated
//! keys, the canonical writer, and every renderer's output.

use std::net::IpAddr;
use std::path::Path;

use super::*;

const PATH: &str = "/var/lib/ipsecgw/cloud.toml";
const PSK: &str = "Th1s-is-a-test-key";

/// Every key of the state file, set to something other than its default.
const FULL: &str = r#"
[[vpn_gateway]]
name = "vpn-hz"
public_address = "198.51.100.2"
vpc = "hangzhou-vpc"
vpc_cidr = ["192.168.4.0/24", "192.168.5.0/24"]
connection_limit = 4
bandwidth_mbps = 20
tun_name = "cloudtun"
control_socket = "/tmp/vpn-hz.sock"
tun_address = "192.168.4.254/32"

[[customer_gateway]]
name = "onprem-cpe"
public_address = "198.51.100.1"
identity = "cpe.example.com"
asn = 65001

[[ipsec_connection]]
name = "onprem"
vpn_gateway = "vpn-hz"
customer_gateway = "onprem-cpe"
local_subnets = ["192.168.4.0/24", "192.168.5.0/24"]
remote_subnets = ["10.1.1.0/24", "10.1.2.0/24"]
effect_immediately = true
psk = "Th1s-is-a-test-key"
dpd = false
nat_traversal = false
profile = "alibaba-default"
legacy = true

[ipsec_connection.ike]
version = "ikev2"
mode = "main"
encryption = "aes192"
integrity = "sha1"
dh_group = "group5"
lifetime = 28800
local_id = "vpn.example.com"
remote_id = "10.99.0.1"

[ipsec_connection.ipsec]
encryption = "3des"
integrity = "sha512"
pfs = "disabled"
lifetime = 3600

[ipsec_connection.health_check]
source = "192.168.4.1"
destination = "10.1.1.10"
interval = 5
retries = 7

[[route]]
vpn_gateway = "vpn-hz"
destination = "10.1.1.0/24"
source = "192.168.4.0/24"
next_hop = "onprem"
weight = 0
publish_to_vpc = true
"#;

/// The seed's minimal cloud side: defaults everywhere.
const BASE: &str = r#"
[[vpn_gateway]]
name = "vpn-hz"
public_address = "198.51.100.2"
vpc = "hangzhou-vpc"
vpc_cidr = ["192.168.4.0/24"]

[[customer_gateway]]
name = "onprem-cpe"
public_address = "198.51.100.1"

[[ipsec_connection]]
name = "onprem"
vpn_gateway = "vpn-hz"
customer_gateway = "onprem-cpe"
local_subnets = ["192.168.4.0/24"]
remote_subnets = ["10.1.1.0/24"]
psk = "Th1s-is-a-test-key"
"#;

fn parse(text: &str) -> Result<Model, ModelError> {
    Model::parse(Path::new(PATH), text)
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
        + 1
}

/// Parses `text`, expects an error at the line holding `at`, naming
/// `key`, with each of `says` in its message.
#[track_caller]
fn fails(text: &str, at: &str, key: &str, says: &[&str]) -> ModelError {
    let e = parse(text).expect_err("the state file should be refused");
    assert_eq!(e.key(), Some(key), "{e}");
    assert_eq!(e.line(), Some(line_of(text, at)), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{PATH}:{}: `{key}`: ", line_of(text, at))),
        "{shown}"
    );
    for s in says {
        assert!(shown.contains(s), "{s:?} missing from: {shown}");
    }
    assert!(!shown.contains(PSK), "never show the key: {shown}");
    e
}

/// A second customer gateway and connection, for limit and route tests.
const SECOND: &str = r#"
[[customer_gateway]]
name = "branch-cpe"
public_address = "203.0.113.7"

[[ipsec_connection]]
name = "branch"
vpn_gateway = "vpn-hz"
customer_gateway = "branch-cpe"
local_subnets = ["192.168.4.0/24"]
remote_subnets = ["10.1.1.0/24"]
psk = "another-test-key"
"#;

fn counter_rng(seed: u8) -> impl FnMut(&mut [u8]) {
    // An xorshift over bytes: deterministic, and different per seed.
    let mut state = u32::from(seed) | 0x1000;
    move |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b = (state >> 8) as u8;
        }
    }
}

// ---- parsing ---------------------------------------------------------------

#[test]
fn every_key_of_the_state_file_is_read() {
    let m = parse(FULL).unwrap();
    let g = &m.vpn_gateways()[0];
    assert_eq!(g.name, "vpn-hz");
    assert_eq!(g.public_address, ip("198.51.100.2"));
    assert_eq!(g.vpc, "hangzhou-vpc");
    assert_eq!(g.vpc_cidr, [net("192.168.4.0/24"), net("192.168.5.0/24")]);
    assert_eq!(g.connection_limit, 4);
    assert_eq!(g.bandwidth_mbps, Some(20));
    assert_eq!(g.tun_name.as_deref(), Some("cloudtun"));
    assert_eq!(
        g.control_socket.as_deref(),
        Some(Path::new("/tmp/vpn-hz.sock"))
    );
    assert_eq!(g.tun_address, Some(net("192.168.4.254/32")));
    let cgw = &m.customer_gateways()[0];
    assert_eq!(cgw.name, "onprem-cpe");
    assert_eq!(cgw.public_address, ip("198.51.100.1"));
    assert_eq!(cgw.identity.as_deref(), Some("cpe.example.com"));
    assert_eq!(cgw.asn, Some(65001));
    let c = m.connection("onprem").unwrap();
    assert_eq!(
        (c.vpn_gateway.as_str(), c.customer_gateway.as_str()),
        ("vpn-hz", "onprem-cpe")
    );
    assert_eq!(
        c.local_subnets,
        [net("192.168.4.0/24"), net("192.168.5.0/24")]
    );
    assert_eq!(c.remote_subnets, [net("10.1.1.0/24"), net("10.1.2.0/24")]);
    assert!(c.effect_immediately);
    assert_eq!(c.psk.expose(), PSK);
    assert!(!c.dpd);
    assert!(!c.nat_traversal);
    assert_eq!(c.profile, Some(Profile::AlibabaDefault));
    assert!(c.legacy);
    assert_eq!(
        c.ike,
        IkeSettings {
            encryption: Encryption::Aes192,
            integrity: Integrity::Sha1,
            dh_group: DhGroup::Group5,
            lifetime: 28800,
            local_id: Some("vpn.example.com".into()),
            remote_id: Some("10.99.0.1".into()),
        }
    );
    assert_eq!(
        c.ipsec,
        IpsecSettings {
            encryption: Encryption::TripleDes,
            integrity: Integrity::Sha512,
            pfs: None,
            lifetime: 3600,
        }
    );
    assert_eq!(
        c.health_check,
        Some(HealthCheck {
            source: ip("192.168.4.1"),
            destination: ip("10.1.1.10"),
            interval: 5,
            retries: 7,
        })
    );
    assert_eq!(c.ike_proposal(), "aes192-sha1-modp1536");
    assert_eq!(c.esp_proposal(), "3des-sha512");
    assert_eq!(c.weak_algorithms(), ["group5", "3des"]);
    assert_eq!(
        m.routes(),
        [Route {
            vpn_gateway: "vpn-hz".into(),
            destination: net("10.1.1.0/24"),
            source: Some(net("192.168.4.0/24")),
            next_hop: "onprem".into(),
            weight: 0,
            publish_to_vpc: true,
        }]
    );
    assert!(m.routes()[0].is_policy());
}

#[test]
fn left_out_keys_take_the_products_defaults() {
    let m = parse(BASE).unwrap();
    let g = &m.vpn_gateways()[0];
    assert_eq!(g.connection_limit, 10);
    assert_eq!(g.tun_name_or_default(), "ipsgw-vpn-hz");
    assert_eq!(
        g.control_socket_or_default(),
        Path::new("/run/ipsecgw/vpn-hz.sock")
    );
    let c = &m.connections()[0];
    assert!(
        !c.effect_immediately,
        "the API's default: negotiate on traffic"
    );
    assert!(c.dpd && c.nat_traversal && !c.legacy);
    assert_eq!(c.profile, None);
    assert_eq!(c.ike_proposal(), "aes256-sha256-modp2048");
    assert_eq!(c.esp_proposal(), "aes256-sha256");
    assert_eq!(c.ipsec.pfs, Some(DhGroup::Group14));
    assert_eq!((c.ike.lifetime, c.ipsec.lifetime), (86400, 86400));
    assert_eq!(c.health_check, None);
    assert_eq!(m.local_id(c), "198.51.100.2");
    assert_eq!(m.remote_id(c), "198.51.100.1");
    // Long names are cut to what Linux takes for an interface.
    assert_eq!(
        gateway::default_tun_name("a-very-long-gateway"),
        "ipsgw-a-very-lo"
    );

    let with_route = format!(
        "{BASE}\n[ipsec_connection.health_check]\nsource = \"192.168.4.1\"\ndestination = \"10.1.1.10\"\n\n[[route]]\nvpn_gateway = \"vpn-hz\"\ndestination = \"10.1.1.0/24\"\nnext_hop = \"onprem\"\n"
    );
    let m = parse(&with_route).unwrap();
    let r = &m.routes()[0];
    assert_eq!((r.weight, r.publish_to_vpc, r.source), (100, false, None));
    let h = m.connections()[0].health_check.unwrap();
    assert_eq!((h.interval, h.retries), (3, 3));
}

#[test]
fn the_alibaba_default_profile_is_the_consoles_and_explicit_keys_win() {
    let text = BASE.replace(
        "psk = ",
        "profile = \"alibaba-default\"\nlegacy = true\npsk = ",
    );
    let c = parse(&text).unwrap().connections()[0].clone();
    assert_eq!(c.profile, Some(Profile::AlibabaDefault));
    assert_eq!(c.ike_proposal(), "aes128-md5-modp1024");
    assert_eq!(c.esp_proposal(), "aes128-md5");
    assert_eq!(c.ipsec.pfs, Some(DhGroup::Group2));
    assert_eq!((c.ike.lifetime, c.ipsec.lifetime), (86400, 86400));
    assert_eq!(c.weak_algorithms(), ["md5", "group2"]);

    let over = format!(
        "{text}\n[ipsec_connection.ike]\nencryption = \"aes256\"\nintegrity = \"sha256\"\n\n[ipsec_connection.ipsec]\npfs = \"group14\"\n"
    );
    let c = parse(&over).unwrap().connections()[0].clone();
    assert_eq!(
        c.ike_proposal(),
        "aes256-sha256-modp1024",
        "dh_group from the profile"
    );
    assert_eq!(c.esp_proposal(), "aes128-md5");
    assert_eq!(c.ipsec.pfs, Some(DhGroup::Group14));

    // Everything overridden with strong choices: no legacy needed.
    let strong = format!(
        "{}\n[ipsec_connection.ike]\nencryption = \"aes\"\nintegrity = \"sha1\"\ndh_group = \"group14\"\n\n[ipsec_connection.ipsec]\nintegrity = \"sha1\"\npfs = \"disabled\"\n",
        BASE.replace("psk = ", "profile = \"alibaba-default\"\npsk = ")
    );
    let c = parse(&strong).unwrap().connections()[0].clone();
    assert_eq!(c.ike_proposal(), "aes128-sha1-modp2048");
    assert_eq!(c.esp_proposal(), "aes128-sha1");
    assert_eq!(c.ipsec.pfs, None);
}

#[test]
fn the_profile_without_legacy_is_refused_at_the_connection() {
    let text = BASE.replace("psk = ", "profile = \"alibaba-default\"\npsk = ");
    fails(
        &text,
        "[[ipsec_connection]]",
        "ipsec_connection.legacy",
        &["md5", "group2", "alibaba-default", "legacy = true"],
    );
    let text = BASE.replace(
        "psk = ",
        "legacy = false\nprofile = \"alibaba-default\"\npsk = ",
    );
    fails(
        &text,
        "legacy = false",
        "ipsec_connection.legacy",
        &["legacy = true"],
    );
    let weak = format!("{BASE}\n[ipsec_connection.ipsec]\nencryption = \"des\"\n");
    fails(
        &weak,
        "[[ipsec_connection]]",
        "ipsec_connection.legacy",
        &["(des)"],
    );
}

// ---- validation --------------------------------------------------------------

#[test]
fn unknown_keys_are_named_with_their_line() {
    let text = BASE.replace("vpc = ", "colour = \"blue\"\nvpc = ");
    fails(
        &text,
        "colour",
        "vpn_gateway.colour",
        &["unknown field", "vpc_cidr"],
    );
    let text = format!("{BASE}\n[ipsec_connection.ike]\nencryption = \"aes\"\nprf = \"sha1\"\n");
    fails(
        &text,
        "prf =",
        "ipsec_connection.ike.prf",
        &["unknown field", "dh_group"],
    );
    let text = format!("{BASE}\n[[vpc]]\nname = \"x\"\n");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line(), Some(line_of(&text, "[[vpc]]")), "{e}");
    assert!(e.message().contains("unknown field `vpc`"), "{e}");
}

#[test]
fn missing_and_mistyped_keys_are_named() {
    let text = BASE.replace("vpc = \"hangzhou-vpc\"\n", "");
    fails(
        &text,
        "[[vpn_gateway]]",
        "vpn_gateway.vpc",
        &["missing field `vpc`"],
    );
    let text = BASE.replace(
        "vpc_cidr = [\"192.168.4.0/24\"]",
        "vpc_cidr = \"192.168.4.0/24\"",
    );
    fails(&text, "vpc_cidr", "vpn_gateway.vpc_cidr", &[]);
    let text = format!("{BASE}\n[ipsec_connection.ike]\nlifetime = -5\n");
    fails(&text, "lifetime = -5", "ipsec_connection.ike.lifetime", &[]);
}

#[test]
fn duplicate_names_are_refused_at_the_second() {
    let text = format!(
        "{BASE}\n[[vpn_gateway]]\nname = \"vpn-hz\"\npublic_address = \"198.51.100.3\"\nvpc = \"other\"\nvpc_cidr = [\"192.168.9.0/24\"]\n"
    );
    // line_of finds the first `name = "vpn-hz"`: point at the second one.
    let e = parse(&text).unwrap_err();
    let second = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("name = \"vpn-hz\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!(e.key(), Some("vpn_gateway.name"), "{e}");
    assert_eq!(e.line(), Some(second), "{e}");
    assert!(
        e.message().contains("already exists: names must be unique"),
        "{e}"
    );

    let text = format!(
        "{BASE}\n[[customer_gateway]]\nname = \"onprem-cpe\"\npublic_address = \"203.0.113.1\"\n"
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("customer_gateway.name"), "{e}");
    let text = format!(
        "{BASE}{}",
        SECOND.replace("name = \"branch\"", "name = \"onprem\"")
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("ipsec_connection.name"), "{e}");
    let second = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "name = \"onprem\"")
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!(e.line(), Some(second), "{e}");
    assert!(e.message().contains("already exists"), "{e}");
}

#[test]
fn references_to_unknown_gateways_and_connections_are_refused() {
    let text = BASE.replace("vpn_gateway = \"vpn-hz\"", "vpn_gateway = \"vpn-bj\"");
    fails(
        &text,
        "vpn_gateway = \"vpn-bj\"",
        "ipsec_connection.vpn_gateway",
        &["\"vpn-bj\"", "vpn-hz", "ipsecgw vpn-gateway create"],
    );
    let text = BASE.replace(
        "customer_gateway = \"onprem-cpe\"",
        "customer_gateway = \"nope\"",
    );
    fails(
        &text,
        "customer_gateway = \"nope\"",
        "ipsec_connection.customer_gateway",
        &["onprem-cpe"],
    );
    let text = format!(
        "{BASE}\n[[route]]\nvpn_gateway = \"vpn-hz\"\ndestination = \"10.1.1.0/24\"\nnext_hop = \"nope\"\n"
    );
    fails(&text, "next_hop", "route.next_hop", &["\"nope\"", "onprem"]);
    let text = format!(
        "{BASE}\n[[route]]\nvpn_gateway = \"vpn-x\"\ndestination = \"10.1.1.0/24\"\nnext_hop = \"onprem\"\n"
    );
    fails(&text, "vpn-x", "route.vpn_gateway", &["vpn-hz"]);
}

#[test]
fn the_two_sites_must_not_conflict() {
    let text = BASE.replace(
        "remote_subnets = [\"10.1.1.0/24\"]",
        "remote_subnets = [\"192.168.4.128/25\"]",
    );
    fails(
        &text,
        "remote_subnets",
        "ipsec_connection.remote_subnets",
        &[
            "192.168.4.128/25 overlaps local subnet 192.168.4.0/24",
            "must not conflict",
        ],
    );
    // Not in the connection's local subnets, but in the VPC's CIDR.
    let text = BASE
        .replace(
            "vpc_cidr = [\"192.168.4.0/24\"]",
            "vpc_cidr = [\"192.168.0.0/16\", \"172.16.0.0/12\"]",
        )
        .replace(
            "remote_subnets = [\"10.1.1.0/24\"]",
            "remote_subnets = [\"10.1.1.0/24\", \"172.20.0.0/16\"]",
        );
    fails(
        &text,
        "remote_subnets",
        "ipsec_connection.remote_subnets",
        &[
            "172.20.0.0/16 overlaps 172.16.0.0/12",
            "VPC \"hangzhou-vpc\"",
            "must not conflict",
        ],
    );
    let text = BASE.replace(
        "remote_subnets = [\"10.1.1.0/24\"]",
        "remote_subnets = [\"10.1.1.1/24\"]",
    );
    fails(
        &text,
        "remote_subnets",
        "ipsec_connection.remote_subnets",
        &["did you mean 10.1.1.0/24"],
    );
    let text = BASE.replace("remote_subnets = [\"10.1.1.0/24\"]", "remote_subnets = []");
    fails(
        &text,
        "remote_subnets",
        "ipsec_connection.remote_subnets",
        &["at least one"],
    );
    let text = BASE.replace(
        "remote_subnets = [\"10.1.1.0/24\"]",
        "remote_subnets = [\"10.1.1.0/33\"]",
    );
    fails(
        &text,
        "remote_subnets",
        "ipsec_connection.remote_subnets",
        &["not a CIDR block"],
    );
    let text = BASE.replace("\"198.51.100.1\"", "\"198.51.100.300\"");
    fails(
        &text,
        "198.51.100.300",
        "customer_gateway.public_address",
        &["not an IP address"],
    );
    let text = BASE.replace("\"198.51.100.1\"", "\"2001:db8::1\"");
    fails(
        &text,
        "customer_gateway = \"onprem-cpe\"",
        "ipsec_connection.customer_gateway",
        &["IP versions"],
    );
}

#[test]
fn connections_beyond_the_gateways_limit_are_refused() {
    let text = format!(
        "{}{SECOND}",
        BASE.replace("vpc = ", "connection_limit = 1\nvpc = ")
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("ipsec_connection.vpn_gateway"), "{e}");
    let at = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("vpn_gateway = \"vpn-hz\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!(e.line(), Some(at), "{e}");
    assert!(e.message().contains("at most 1 IPsec connections"), "{e}");
    assert!(e.message().contains("connection_limit"), "{e}");
    // Ten are fine by default: the second connection passes.
    assert_eq!(
        parse(&format!("{BASE}{SECOND}"))
            .unwrap()
            .connections()
            .len(),
        2
    );
    let text = BASE.replace("vpc = ", "connection_limit = 0\nvpc = ");
    fails(
        &text,
        "connection_limit",
        "vpn_gateway.connection_limit",
        &["at least 1"],
    );
    // One connection per pair of gateways.
    let text = format!(
        "{BASE}{}",
        SECOND.replace(
            "customer_gateway = \"branch-cpe\"",
            "customer_gateway = \"onprem-cpe\""
        )
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("ipsec_connection.customer_gateway"), "{e}");
    assert!(e.message().contains("one IPsec connection per pair"), "{e}");
}

#[test]
fn ikev1_is_refused_saying_what_to_set() {
    let text = format!("{BASE}\n[ipsec_connection.ike]\nversion = \"ikev1\"\n");
    fails(
        &text,
        "version",
        "ipsec_connection.ike.version",
        &["IKEv2 only", "version = \"ikev2\"", "customer gateway"],
    );
    let text = format!("{BASE}\n[ipsec_connection.ike]\nversion = \"ikev3\"\n");
    fails(
        &text,
        "version",
        "ipsec_connection.ike.version",
        &["use \"ikev2\""],
    );
    let text = format!("{BASE}\n[ipsec_connection.ike]\nmode = \"aggressive\"\n");
    fails(
        &text,
        "mode",
        "ipsec_connection.ike.mode",
        &["\"main\"", "IKEv1", "ignored"],
    );
    let ok = format!("{BASE}\n[ipsec_connection.ike]\nversion = \"ikev2\"\nmode = \"main\"\n");
    assert!(parse(&ok).is_ok());
}

#[test]
fn algorithms_the_console_cannot_offer_are_refused_with_the_valid_ones() {
    let cases = [
        ("ike", "encryption", "chacha20", "aes192"),
        ("ike", "encryption", "aes256gcm16", "3des"),
        ("ike", "integrity", "sha3", "sha384"),
        ("ike", "dh_group", "group19", "group14"),
        ("ike", "dh_group", "modp2048", "group14"),
        ("ipsec", "encryption", "aes128gcm16", "aes256"),
        ("ipsec", "integrity", "aesxcbc", "md5"),
        ("ipsec", "pfs", "group20", "disabled"),
    ];
    for (table, key, value, valid) in cases {
        let text = format!("{BASE}\n[ipsec_connection.{table}]\n{key} = \"{value}\"\n");
        fails(
            &text,
            &format!("{key} = "),
            &format!("ipsec_connection.{table}.{key}"),
            &[value, valid, "Alibaba Cloud"],
        );
    }
    let text = BASE.replace("psk = ", "profile = \"cisco\"\npsk = ");
    fails(
        &text,
        "profile",
        "ipsec_connection.profile",
        &["alibaba-default"],
    );
    // The console's own spellings, any case, and aes128 for aes.
    let ok =
        format!("{BASE}\n[ipsec_connection.ike]\nencryption = \"AES128\"\nintegrity = \"SHA1\"\n");
    assert_eq!(
        parse(&ok).unwrap().connections()[0].ike.encryption,
        Encryption::Aes
    );
}

#[test]
fn lifetimes_stay_within_the_products_range() {
    for (table, value) in [("ike", "86401"), ("ipsec", "100000"), ("ike", "5")] {
        let text = format!("{BASE}\n[ipsec_connection.{table}]\nlifetime = {value}\n");
        fails(
            &text,
            "lifetime",
            &format!("ipsec_connection.{table}.lifetime"),
            &[value, "0 to 86400"],
        );
    }
    for value in ["0", "10", "86400"] {
        let text = format!("{BASE}\n[ipsec_connection.ike]\nlifetime = {value}\n\n[ipsec_connection.ipsec]\nlifetime = {value}\n");
        assert!(parse(&text).is_ok(), "{value}");
    }
}

#[test]
fn health_checks_must_cross_the_tunnel() {
    let hc = |s: &str, d: &str, extra: &str| {
        format!("{BASE}\n[ipsec_connection.health_check]\nsource = \"{s}\"\ndestination = \"{d}\"\n{extra}")
    };
    fails(
        &hc("10.1.1.1", "10.1.1.10", ""),
        "source =",
        "ipsec_connection.health_check.source",
        &["not in the local subnets"],
    );
    fails(
        &hc("192.168.4.1", "192.168.4.10", ""),
        "destination =",
        "ipsec_connection.health_check.destination",
        &["not in the remote subnets"],
    );
    fails(
        &hc("192.168.4.1", "10.1.1.10", "interval = 0\n"),
        "interval",
        "ipsec_connection.health_check.interval",
        &["1 to 60"],
    );
    fails(
        &hc("192.168.4.1", "10.1.1.10", "retries = 11\n"),
        "retries",
        "ipsec_connection.health_check.retries",
        &["1 to 10"],
    );
    assert!(parse(&hc("192.168.4.1", "10.1.1.10", "")).is_ok());
}

#[test]
fn routes_are_checked_against_their_gateway_and_connection() {
    // A second VPN gateway with its own connection.
    let other = r#"
[[vpn_gateway]]
name = "vpn-sh"
public_address = "198.51.100.9"
vpc = "shanghai-vpc"
vpc_cidr = ["192.168.8.0/24"]

[[ipsec_connection]]
name = "sh-onprem"
vpn_gateway = "vpn-sh"
customer_gateway = "onprem-cpe"
local_subnets = ["192.168.8.0/24"]
remote_subnets = ["10.1.1.0/24"]
psk = "third-test-key"
"#;
    let route = |dest: &str, extra: &str, hop: &str| {
        format!(
            "{BASE}{other}\n[[route]]\nvpn_gateway = \"vpn-hz\"\ndestination = \"{dest}\"\nnext_hop = \"{hop}\"\n{extra}"
        )
    };
    fails(
        &route("10.1.1.0/24", "", "sh-onprem"),
        "next_hop",
        "route.next_hop",
        &["belongs to VPN gateway \"vpn-sh\"", "its own gateway"],
    );
    fails(
        &route("10.1.1.0/24", "weight = 50\n", "onprem"),
        "weight",
        "route.weight",
        &["100 (active) or 0 (standby)"],
    );
    fails(
        &route("10.9.0.0/16", "", "onprem"),
        "destination =",
        "route.destination",
        &["not within the remote subnets"],
    );
    fails(
        &route("10.1.1.0/24", "source = \"172.16.0.0/24\"\n", "onprem"),
        "source =",
        "route.source",
        &["not within the local subnets"],
    );
    fails(
        &route("10.1.1.1/24", "", "onprem"),
        "destination =",
        "route.destination",
        &["did you mean"],
    );
    let ok = route(
        "10.1.1.0/25",
        "source = \"192.168.4.0/26\"\npublish_to_vpc = true\n",
        "onprem",
    );
    assert!(parse(&ok).is_ok());

    // Active and standby over two connections; a second active is refused.
    let base = format!("{BASE}{SECOND}");
    let two = |w2: u32| {
        format!(
            "{base}\n[[route]]\nvpn_gateway = \"vpn-hz\"\ndestination = \"10.1.1.0/24\"\nnext_hop = \"onprem\"\nweight = 100\n\n[[route]]\nvpn_gateway = \"vpn-hz\"\ndestination = \"10.1.1.0/24\"\nnext_hop = \"branch\"\nweight = {w2}\n"
        )
    };
    assert!(parse(&two(0)).is_ok());
    let e = parse(&two(100)).unwrap_err();
    assert_eq!(e.key(), Some("route.weight"), "{e}");
    assert_eq!(e.line(), Some(two(100).lines().count()), "{e}");
    assert!(
        e.message().contains("one active (100) and one standby (0)"),
        "{e}"
    );
}

#[test]
fn keys_names_and_identities_are_checked() {
    let text = BASE.replace(&format!("psk = \"{PSK}\"\n"), "");
    fails(
        &text,
        "[[ipsec_connection]]",
        "ipsec_connection.psk",
        &["ipsecgw ipsec-connection create", "set psk"],
    );
    let text = BASE.replace(PSK, "short");
    let e = fails(
        &text,
        "psk",
        "ipsec_connection.psk",
        &["5 characters", "8 to 100"],
    );
    assert!(!e.to_string().contains("short\""), "{e}");
    let text = BASE.replace(PSK, "has a space");
    fails(&text, "psk", "ipsec_connection.psk", &["printable ASCII"]);
    let text = BASE.replace("name = \"onprem\"", "name = \"on prem\"");
    fails(
        &text,
        "name = \"on prem\"",
        "ipsec_connection.name",
        &["not a usable name"],
    );
    let text = BASE.replace(
        "public_address = \"198.51.100.1\"",
        "public_address = \"198.51.100.1\"\nidentity = \"CN=cpe, O=x\"",
    );
    fails(&text, "identity", "customer_gateway.identity", &["FQDN"]);
    let text = BASE.replace("vpc = ", "tun_name = \"a-much-too-long-name\"\nvpc = ");
    fails(
        &text,
        "tun_name",
        "vpn_gateway.tun_name",
        &["15 characters"],
    );
    let text = BASE.replace("name = \"onprem\"", "name = \"on.prem\"");
    fails(&text, "on.prem", "ipsec_connection.name", &["'_' or '-'"]);
    let text = format!(
        "{BASE}\n[[customer_gateway]]\nname = \"twin\"\npublic_address = \"198.51.100.1\" # twin\n"
    );
    fails(
        &text,
        "# twin",
        "customer_gateway.public_address",
        &["already customer gateway \"onprem-cpe\"'s address"],
    );
    let text = BASE.replace("\"198.51.100.2\"", "\"0.0.0.0\"");
    fails(
        &text,
        "0.0.0.0",
        "vpn_gateway.public_address",
        &["unspecified"],
    );
}

#[test]
fn debug_output_never_shows_a_key() {
    let m = parse(BASE).unwrap();
    let debug = format!("{m:?}");
    assert!(!debug.contains(PSK), "{debug}");
    assert!(debug.contains("Psk(redacted)"));
}

#[test]
fn the_example_state_file_is_valid() {
    let text = include_str!("../../../../configs/cloud.toml");
    let m = Model::parse(Path::new("configs/cloud.toml"), text).unwrap();
    assert_eq!(m.connections()[0].ike_proposal(), "aes256-sha256-modp2048");
    assert!(m.routes()[0].publish_to_vpc);
}

// ---- generated keys ----------------------------------------------------------

#[test]
fn generated_keys_are_16_characters_of_the_alphabet_from_the_given_randomness() {
    assert_eq!(psk::ALPHABET_LEN, 89);
    for c in ['"', '\'', '\\', '`', ' ', '$'] {
        assert!(!Psk::in_alphabet(c), "{c:?}");
    }
    let a = Psk::generate(&mut counter_rng(1));
    let again = Psk::generate(&mut counter_rng(1));
    let b = Psk::generate(&mut counter_rng(2));
    assert_eq!(a.expose().len(), GENERATED_PSK_LEN);
    assert!(a.expose().chars().all(Psk::in_alphabet), "{}", a.expose());
    assert_eq!(a, again, "the same randomness gives the same key");
    assert_ne!(a, b, "different randomness, different keys");
    assert!(a.problem().is_none());

    // Bytes at or above 180 (2 × 90) are skipped, the rest taken modulo 90:
    // every character equally likely.
    let bytes = [
        255u8, 200, 180, 0, 89, 90, 179, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
    ];
    let mut fed = bytes.iter().copied().cycle();
    let k = Psk::generate(&mut |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            *b = fed.next().unwrap();
        }
    });
    let alphabet: Vec<char> = (0u8..=255)
        .map(char::from)
        .filter(|c| Psk::in_alphabet(*c))
        .collect();
    let expect: String = [0usize, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
        .iter()
        .map(|&i| alphabet[i])
        .collect();
    assert_eq!(k.expose(), expect);
}

#[test]
fn add_connection_generates_the_key_once_and_validates_like_the_file() {
    let mut m = parse(BASE).unwrap();
    let before = m.clone();
    let spec = ConnectionSpec::new(
        "branch",
        "vpn-hz",
        "nope",
        vec![net("192.168.4.0/24")],
        vec![net("10.2.0.0/16")],
    );
    let e = m.add_connection(spec, &mut counter_rng(3)).unwrap_err();
    assert_eq!(e.key(), Some("ipsec_connection.customer_gateway"), "{e}");
    assert_eq!(e.line(), None, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{PATH}: `ipsec_connection.customer_gateway`: ")),
        "{e}"
    );
    assert_eq!(m, before, "a refused change leaves the model as it was");

    m.add_customer_gateway(CustomerGateway::new("branch-cpe", ip("203.0.113.7")))
        .unwrap();
    let spec = ConnectionSpec::new(
        "branch",
        "vpn-hz",
        "branch-cpe",
        vec![net("192.168.4.0/24")],
        vec![net("10.2.0.0/16")],
    );
    let psk = m
        .add_connection(spec.clone(), &mut counter_rng(3))
        .unwrap()
        .unwrap();
    assert_eq!(psk.expose().len(), 16);
    assert_eq!(m.connection("branch").unwrap().psk, psk);
    assert_eq!(
        psk,
        Psk::generate(&mut counter_rng(3)),
        "from the given randomness"
    );

    // A given key is kept and nothing is returned.
    let mut m2 = before.clone();
    m2.add_customer_gateway(CustomerGateway::new("branch-cpe", ip("203.0.113.7")))
        .unwrap();
    let given = ConnectionSpec {
        psk: Some(Psk::new("given-key-123")),
        ..spec.clone()
    };
    assert_eq!(m2.add_connection(given, &mut counter_rng(3)).unwrap(), None);
    assert_eq!(
        m2.connection("branch").unwrap().psk.expose(),
        "given-key-123"
    );

    // The same rules as in a file: ikev1, weak without legacy, the limit.
    let mut spec_v1 = spec.clone();
    spec_v1.name = "v1".into();
    spec_v1.ike.version = Some("ikev1".into());
    let e = m.add_connection(spec_v1, &mut counter_rng(4)).unwrap_err();
    assert!(e.message().contains("IKEv2 only"), "{e}");
    let mut weak = spec.clone();
    weak.profile = Some("alibaba-default".into());
    let mut m3 = before.clone();
    m3.add_customer_gateway(CustomerGateway::new("branch-cpe", ip("203.0.113.7")))
        .unwrap();
    let e = m3
        .add_connection(weak.clone(), &mut counter_rng(4))
        .unwrap_err();
    assert_eq!(e.key(), Some("ipsec_connection.legacy"), "{e}");
    weak.legacy = true;
    m3.add_connection(weak, &mut counter_rng(4)).unwrap();
    assert_eq!(
        m3.connection("branch").unwrap().ike_proposal(),
        "aes128-md5-modp1024"
    );
    let e = m.add_connection(spec, &mut counter_rng(5)).unwrap_err();
    assert!(e.message().contains("already exists"), "{e}");
}

#[test]
fn gateways_and_routes_are_added_and_published_through_the_same_checks() {
    let mut m = Model::empty(Path::new(PATH));
    m.add_vpn_gateway(VpnGateway::new(
        "vpn-hz",
        ip("198.51.100.2"),
        "hangzhou-vpc",
        vec![net("192.168.4.0/24")],
    ))
    .unwrap();
    let e = m
        .add_vpn_gateway(VpnGateway::new(
            "vpn-hz",
            ip("198.51.100.3"),
            "v",
            vec![net("10.0.0.0/8")],
        ))
        .unwrap_err();
    assert!(e.message().contains("already exists"), "{e}");
    let e = m
        .add_vpn_gateway(VpnGateway::new("vpn-2", ip("198.51.100.3"), "v", vec![]))
        .unwrap_err();
    assert_eq!(e.key(), Some("vpn_gateway.vpc_cidr"), "{e}");
    m.add_customer_gateway(CustomerGateway::new("onprem-cpe", ip("198.51.100.1")))
        .unwrap();
    m.add_connection(
        ConnectionSpec::new(
            "onprem",
            "vpn-hz",
            "onprem-cpe",
            vec![net("192.168.4.0/24")],
            vec![net("10.1.1.0/24")],
        ),
        &mut counter_rng(9),
    )
    .unwrap();
    let e = m
        .add_route(Route::new("vpn-hz", net("10.1.1.0/24"), "nope"))
        .unwrap_err();
    assert_eq!(e.key(), Some("route.next_hop"), "{e}");
    m.add_route(Route::new("vpn-hz", net("10.1.1.0/24"), "onprem"))
        .unwrap();
    assert!(!m.routes()[0].publish_to_vpc);
    assert_eq!(
        m.set_route_published("vpn-hz", net("10.1.1.0/24"), None, None, true)
            .unwrap(),
        1
    );
    assert!(m.routes()[0].publish_to_vpc);
    m.set_route_published("vpn-hz", net("10.1.1.0/24"), None, Some("onprem"), false)
        .unwrap();
    assert!(!m.routes()[0].publish_to_vpc);
    let e = m
        .set_route_published("vpn-hz", net("10.7.0.0/16"), None, None, true)
        .unwrap_err();
    assert!(e.message().contains("no route to 10.7.0.0/16"), "{e}");
}

// ---- the canonical writer ----------------------------------------------------

#[test]
fn to_toml_round_trips() {
    for text in [FULL, BASE, include_str!("../../../../configs/cloud.toml")] {
        let m = parse(text).unwrap();
        let written = m.to_toml();
        let again = parse(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
        assert_eq!(again, m, "{written}");
        assert_eq!(again.to_toml(), written, "the writer is canonical");
    }
    let m = parse(&format!("{BASE}{SECOND}")).unwrap();
    let text = m.to_toml();
    assert!(
        text.contains(
            "[ipsec_connection.ike]\nversion = \"ikev2\"\nmode = \"main\"\nencryption = \"aes256\""
        ),
        "{text}"
    );
    assert!(
        text.contains("pfs = \"group14\"\nlifetime = 86400"),
        "{text}"
    );
    assert!(text.contains("connection_limit = 10"), "{text}");
    // Strings that need escaping survive.
    let mut m = Model::empty(Path::new(PATH));
    m.add_vpn_gateway(VpnGateway {
        control_socket: Some("/tmp/a \"quoted\" \\ path.sock".into()),
        ..VpnGateway::new("g", ip("192.0.2.1"), "vpc \"x\"", vec![net("10.0.0.0/8")])
    })
    .unwrap();
    assert_eq!(parse(&m.to_toml()).unwrap(), m);
}

// ---- renderers -----------------------------------------------------------------

fn toml_value(text: &str) -> toml::Table {
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
}

#[test]
fn the_vpn_gateways_device_config_has_every_connection_check_and_route() {
    let text = FULL.replace(
        "[[route]]",
        "[[route]]\nvpn_gateway = \"vpn-hz\"\ndestination = \"10.1.2.0/24\"\nnext_hop = \"onprem\"\n\n[[route]]",
    );
    let m = parse(&text).unwrap();
    let device = m.render_vpn_gateway("vpn-hz").unwrap();
    let expected = format!(
        r#"[gateway]
name = "vpn-hz"
public_address = "198.51.100.2"
control_socket = "/tmp/vpn-hz.sock"

[tun]
name = "cloudtun"
address = "192.168.4.254/32"

[[ipsec_connection]]
name = "onprem"
remote_address = "198.51.100.1"
local_subnets = ["192.168.4.0/24", "192.168.5.0/24"]
remote_subnets = ["10.1.1.0/24", "10.1.2.0/24"]
encapsulation = "esp"
legacy = true

[ipsec_connection.ike]
version = "ikev2"
proposals = ["aes192-sha1-modp1536"]
psk = "{PSK}"
local_id = "vpn.example.com"
remote_id = "10.99.0.1"
start_action = "start"
dpd_delay = 0
lifetime = 28800

[ipsec_connection.ipsec]
encryption = "3des-sha512"
esn = false
pfs = "disabled"
lifetime = 3600

[ipsec_connection.health_check]
source = "192.168.4.1"
destination = "10.1.1.10"
interval = 5
retries = 7

[[route]]
destination = "10.1.2.0/24"
connection = "onprem"
weight = 100
publish = false

[[route]]
destination = "10.1.1.0/24"
source = "192.168.4.0/24"
connection = "onprem"
weight = 0
publish = true
"#
    );
    let body = device.split_once("\n\n").unwrap().1;
    assert_eq!(body, expected);
    toml_value(&device);

    // The defaults: trap, DPD clearing after 30 s, ESP in UDP, PFS.
    let m = parse(BASE).unwrap();
    let device = m.render_vpn_gateway("vpn-hz").unwrap();
    for line in [
        "control_socket = \"/run/ipsecgw/vpn-hz.sock\"",
        "name = \"ipsgw-vpn-hz\"",
        "encapsulation = \"udp\"",
        "proposals = [\"aes256-sha256-modp2048\"]",
        "local_id = \"198.51.100.2\"",
        "remote_id = \"198.51.100.1\"",
        "start_action = \"trap\"",
        "dpd_delay = 30\ndpd_action = \"clear\"",
        "encryption = \"aes256-sha256\"",
        "pfs = \"modp2048\"",
        "lifetime = 86400",
    ] {
        assert!(device.contains(line), "{line:?} missing:\n{device}");
    }
    assert!(!device.contains("legacy"), "{device}");
    assert!(!device.contains("[[route]]"), "{device}");
    let e = m.render_vpn_gateway("vpn-bj").unwrap_err();
    assert!(e.message().contains("vpn-hz"), "{e}");

    // A customer gateway's identity is the remote id by default.
    let m = parse(&BASE.replace(
        "public_address = \"198.51.100.1\"",
        "public_address = \"198.51.100.1\"\nidentity = \"cpe.example.com\"",
    ))
    .unwrap();
    let device = m.render_vpn_gateway("vpn-hz").unwrap();
    assert!(
        device.contains("remote_id = \"cpe.example.com\""),
        "{device}"
    );
}

#[test]
fn the_strongswan_export_is_the_cpes_view() {
    let m = parse(BASE).unwrap();
    let conf = m.export("onprem", ExportFormat::Strongswan).unwrap();
    let expected = format!(
        r#"connections {{
    onprem {{
        version = 2
        local_addrs = 198.51.100.1
        remote_addrs = 198.51.100.2
        proposals = aes256-sha256-modp2048
        encap = yes
        mobike = no
        dpd_delay = 30s
        rekey_time = 77760s
        over_time = 8640s
        local {{
            auth = psk
            id = "198.51.100.1"
        }}
        remote {{
            auth = psk
            id = "198.51.100.2"
        }}
        children {{
            onprem {{
                mode = tunnel
                local_ts = 10.1.1.0/24
                remote_ts = 192.168.4.0/24
                esp_proposals = aes256-sha256-modp2048
                rekey_time = 77760s
                life_time = 86400s
                start_action = start
                dpd_action = restart
            }}
        }}
    }}
}}
secrets {{
    ike-onprem {{
        id-local = "198.51.100.1"
        id-remote = "198.51.100.2"
        secret = "{PSK}"
    }}
}}
"#
    );
    let body = conf.split_once("connections {").unwrap().1;
    assert_eq!(format!("connections {{{body}"), expected);
    assert!(conf.starts_with("# strongSwan swanctl.conf"), "{conf}");

    // Legacy suite, PFS off, identities as FQDNs, no DPD, no NAT-T, no rekey.
    let m = parse(FULL).unwrap();
    let conf = m.export("onprem", ExportFormat::Strongswan).unwrap();
    for line in [
        "proposals = aes192-sha1-modp1536",
        "esp_proposals = 3des-sha512\n",
        "encap = no",
        "dpd_delay = 0s",
        "id = \"10.99.0.1\"",
        "id = \"@vpn.example.com\"",
        "local_ts = 10.1.1.0/24,10.1.2.0/24",
        "remote_ts = 192.168.4.0/24,192.168.5.0/24",
        "rekey_time = 25920s\n        over_time = 2880s",
        "rekey_time = 3240s\n                life_time = 3600s",
    ] {
        assert!(conf.contains(line), "{line:?} missing:\n{conf}");
    }
    assert!(!conf.contains("dpd_action"), "{conf}");
    let m = parse(&format!("{BASE}\n[ipsec_connection.ike]\nlifetime = 0\n")).unwrap();
    let conf = m.export("onprem", ExportFormat::Strongswan).unwrap();
    assert!(conf.contains("        rekey_time = 0s\n"), "{conf}");
    assert!(!conf.contains("over_time"), "{conf}");
    // A key with a `$` goes as hex, which strongSwan reads byte for byte.
    let m2 = parse(&BASE.replace(PSK, "pa$$word-123")).unwrap();
    let conf = m2.export("onprem", ExportFormat::Strongswan).unwrap();
    assert!(
        conf.contains("secret = 0x70612424776f72642d313233"),
        "{conf}"
    );
    let e = m.export("nope", ExportFormat::Strongswan).unwrap_err();
    assert!(e.message().contains("\"onprem\""), "{e}");
}

#[test]
fn the_ipsecgw_export_is_the_cpes_device_config() {
    let m = parse(BASE).unwrap();
    let conf = m.export("onprem", ExportFormat::Ipsecgw).unwrap();
    let t = toml_value(&conf);
    let gw = t["gateway"].as_table().unwrap();
    assert_eq!(gw["name"].as_str(), Some("onprem-cpe"));
    assert_eq!(gw["public_address"].as_str(), Some("198.51.100.1"));
    assert_eq!(
        gw["control_socket"].as_str(),
        Some("/run/ipsecgw/onprem-cpe.sock")
    );
    assert_eq!(t["tun"]["name"].as_str(), Some("ipsgw-onprem-cp"));
    let c = &t["ipsec_connection"].as_array().unwrap()[0];
    assert_eq!(c["name"].as_str(), Some("onprem"));
    assert_eq!(c["remote_address"].as_str(), Some("198.51.100.2"));
    assert_eq!(
        c["local_subnets"].as_array().unwrap()[0].as_str(),
        Some("10.1.1.0/24")
    );
    assert_eq!(
        c["remote_subnets"].as_array().unwrap()[0].as_str(),
        Some("192.168.4.0/24")
    );
    assert_eq!(c["encapsulation"].as_str(), Some("udp"));
    let ike = &c["ike"];
    assert_eq!(ike["start_action"].as_str(), Some("start"));
    assert_eq!(ike["dpd_action"].as_str(), Some("restart"));
    assert_eq!(ike["psk"].as_str(), Some(PSK));
    assert_eq!(ike["local_id"].as_str(), Some("198.51.100.1"));
    assert_eq!(ike["remote_id"].as_str(), Some("198.51.100.2"));
    assert_eq!(ike["proposals"][0].as_str(), Some("aes256-sha256-modp2048"));
    assert_eq!(c["ipsec"]["encryption"].as_str(), Some("aes256-sha256"));
    assert_eq!(c["ipsec"]["pfs"].as_str(), Some("modp2048"));
    assert!(c.get("health_check").is_none());

    let device = CpeDevice {
        gateway_name: Some("edge".into()),
        connection_name: Some("to-cloud".into()),
        public_address: Some(ip("172.16.0.1")),
        tun_name: Some("tun9".into()),
        control_socket: Some("/tmp/edge.sock".into()),
    };
    let conf = m
        .export_with("onprem", ExportFormat::Ipsecgw, &device)
        .unwrap();
    for line in [
        "name = \"edge\"",
        "public_address = \"172.16.0.1\"",
        "control_socket = \"/tmp/edge.sock\"",
        "name = \"tun9\"",
        "name = \"to-cloud\"",
        "local_id = \"198.51.100.1\"",
    ] {
        assert!(conf.contains(line), "{line:?} missing:\n{conf}");
    }
    let bad = CpeDevice {
        tun_name: Some("way-too-long-for-linux".into()),
        ..CpeDevice::default()
    };
    let e = m
        .export_with("onprem", ExportFormat::Ipsecgw, &bad)
        .unwrap_err();
    assert!(e.message().contains("interface name"), "{e}");

    // The legacy profile turns legacy on in the CPE's config.
    let m = parse(&BASE.replace(
        "psk = ",
        "profile = \"alibaba-default\"\nlegacy = true\npsk = ",
    ))
    .unwrap();
    let conf = m.export("onprem", ExportFormat::Ipsecgw).unwrap();
    assert!(conf.contains("legacy = true"), "{conf}");
    assert!(
        conf.contains("proposals = [\"aes128-md5-modp1024\"]"),
        "{conf}"
    );
    assert!(conf.contains("encryption = \"aes128-md5\""), "{conf}");
    assert!(conf.contains("pfs = \"modp1024\""), "{conf}");
}

#[test]
fn the_alibaba_export_is_download_vpn_connection_configs_shape() {
    let m = parse(&BASE.replace(
        "psk = ",
        "profile = \"alibaba-default\"\nlegacy = true\npsk = ",
    ))
    .unwrap();
    let json = m.export("onprem", ExportFormat::Alibaba).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let expected = serde_json::json!({
        "VpnConnectionConfig": {
            "LocalSubnet": "10.1.1.0/24",
            "RemoteSubnet": "192.168.4.0/24",
            "Local": "198.51.100.1",
            "Remote": "198.51.100.2",
            "IkeConfig": {
                "Psk": PSK,
                "IkeVersion": "ikev2",
                "IkeMode": "main",
                "IkeEncAlg": "aes",
                "IkeAuthAlg": "md5",
                "IkePfs": "group2",
                "IkeLifetime": 86400,
                "LocalId": "198.51.100.1",
                "RemoteId": "198.51.100.2"
            },
            "IpsecConfig": {
                "IpsecEncAlg": "aes",
                "IpsecAuthAlg": "md5",
                "IpsecPfs": "group2",
                "IpsecLifetime": 86400
            }
        }
    });
    assert_eq!(v, expected);
    let m = parse(FULL).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&m.export("onprem", ExportFormat::Alibaba).unwrap()).unwrap();
    let c = &v["VpnConnectionConfig"];
    assert_eq!(c["LocalSubnet"], "10.1.1.0/24,10.1.2.0/24");
    assert_eq!(c["RemoteSubnet"], "192.168.4.0/24,192.168.5.0/24");
    assert_eq!(c["IkeConfig"]["LocalId"], "10.99.0.1");
    assert_eq!(c["IkeConfig"]["RemoteId"], "vpn.example.com");
    assert_eq!(c["IpsecConfig"]["IpsecEncAlg"], "3des");
    assert_eq!(c["IpsecConfig"]["IpsecPfs"], "disabled");
    assert_eq!("alibaba".parse::<ExportFormat>(), Ok(ExportFormat::Alibaba));
    assert!("pdf".parse::<ExportFormat>().is_err());
}

#[test]
fn an_alibaba_download_imports_into_the_same_cpe_config() {
    for text in [BASE, FULL] {
        let m = parse(text).unwrap();
        let json = m.export("onprem", ExportFormat::Alibaba).unwrap();
        let imported = import_alibaba(Path::new("download.json"), &json).unwrap();
        let mut exported = m.cpe_config("onprem").unwrap();
        // The file carries neither names, DPD nor NAT-T: the console's
        // defaults (both on) apply.
        exported.gateway_name = IMPORTED_GATEWAY_NAME.into();
        exported.connection_name = IMPORTED_CONNECTION_NAME.into();
        exported.dpd = true;
        exported.nat_traversal = true;
        assert_eq!(imported, exported);
    }
}

/// A response as the real API returns it: with `RequestId`, fields the
/// model does not know, and spaces after the commas.
const DOWNLOADED: &str = r#"{
  "RequestId": "0C68048B-0F70-40DA-B8AE-1B79B5CF62E3",
  "VpnConnectionConfig": {
    "LocalSubnet": "10.1.1.0/24, 10.1.2.0/24",
    "RemoteSubnet": "192.168.4.0/24",
    "Local": "198.51.100.1",
    "Remote": "198.51.100.2",
    "SomethingNew": {"Enabled": true},
    "IkeConfig": {
      "Psk": "pgw6dy7d1i8i1234",
      "IkeVersion": "ikev2",
      "IkeMode": "main",
      "IkeEncAlg": "aes",
      "IkeAuthAlg": "sha1",
      "IkePfs": "group14",
      "IkeLifetime": 86400,
      "LocalId": "198.51.100.1",
      "RemoteId": "198.51.100.2"
    },
    "IpsecConfig": {
      "IpsecEncAlg": "aes256",
      "IpsecAuthAlg": "sha256",
      "IpsecPfs": "disabled",
      "IpsecLifetime": "3600"
    }
  }
}"#;

#[test]
fn a_real_download_becomes_a_working_cpe_config() {
    let path = Path::new("/tmp/download.json");
    let cpe = import_alibaba(path, DOWNLOADED).unwrap();
    assert_eq!(cpe.local_subnets, [net("10.1.1.0/24"), net("10.1.2.0/24")]);
    assert_eq!(cpe.remote_subnets, [net("192.168.4.0/24")]);
    assert_eq!(cpe.ike.proposal(), "aes128-sha1-modp2048");
    assert_eq!(cpe.ipsec.proposal(), "aes256-sha256");
    assert_eq!(cpe.ipsec.pfs, None);
    assert_eq!(cpe.ipsec.lifetime, 3600);
    let conf = cpe.to_ipsecgw(path, &CpeDevice::default()).unwrap();
    let t = toml_value(&conf);
    assert_eq!(t["gateway"]["name"].as_str(), Some("cpe"));
    let c = &t["ipsec_connection"][0];
    assert_eq!(c["name"].as_str(), Some("alibaba-vpn"));
    assert_eq!(c["ike"]["psk"].as_str(), Some("pgw6dy7d1i8i1234"));
    assert_eq!(c["ike"]["start_action"].as_str(), Some("start"));
    assert!(!conf.contains("legacy"), "{conf}");

    // Without the outer object.
    let inner: serde_json::Value = serde_json::from_str(DOWNLOADED).unwrap();
    let inner = serde_json::to_string(&inner["VpnConnectionConfig"]).unwrap();
    assert_eq!(import_alibaba(path, &inner).unwrap(), cpe);
}

#[test]
fn import_errors_name_the_json_field() {
    let path = Path::new("/tmp/download.json");
    let cases = [
        (
            "\"IkeVersion\": \"ikev2\"",
            "\"IkeVersion\": \"ikev1\"",
            "VpnConnectionConfig.IkeConfig.IkeVersion",
            "IKEv2 only",
        ),
        (
            "\"IkeEncAlg\": \"aes\"",
            "\"IkeEncAlg\": \"chacha20\"",
            "VpnConnectionConfig.IkeConfig.IkeEncAlg",
            "aes192",
        ),
        (
            "\"IpsecPfs\": \"disabled\"",
            "\"IpsecPfs\": \"group99\"",
            "VpnConnectionConfig.IpsecConfig.IpsecPfs",
            "group14",
        ),
        (
            "\"Psk\": \"pgw6dy7d1i8i1234\",",
            "",
            "VpnConnectionConfig.IkeConfig.Psk",
            "missing",
        ),
        (
            "\"Psk\": \"pgw6dy7d1i8i1234\"",
            "\"Psk\": \"abc\"",
            "VpnConnectionConfig.IkeConfig.Psk",
            "3 characters",
        ),
        (
            "10.1.1.0/24, 10.1.2.0/24",
            "10.1.1.0/24,bogus",
            "VpnConnectionConfig.LocalSubnet",
            "\"bogus\"",
        ),
        (
            "\"Remote\": \"198.51.100.2\"",
            "\"Remote\": \"116.62.XX.XX\"",
            "VpnConnectionConfig.Remote",
            "not an IP address",
        ),
        (
            "\"RemoteSubnet\": \"192.168.4.0/24\"",
            "\"RemoteSubnet\": \"10.1.0.0/16\"",
            "VpnConnectionConfig.RemoteSubnet",
            "must not conflict",
        ),
        (
            "\"IkeLifetime\": 86400",
            "\"IkeLifetime\": 99999",
            "VpnConnectionConfig.IkeConfig.IkeLifetime",
            "86400",
        ),
        (
            "\"IkeMode\": \"main\"",
            "\"IkeMode\": \"sideways\"",
            "VpnConnectionConfig.IkeConfig.IkeMode",
            "main or aggressive",
        ),
    ];
    for (from, to, key, says) in cases {
        let json = DOWNLOADED.replace(from, to);
        assert_ne!(json, DOWNLOADED, "{from}");
        let e = import_alibaba(path, &json).unwrap_err();
        assert_eq!(e.key(), Some(key), "{e}");
        assert!(e.message().contains(says), "{says:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("/tmp/download.json: `{key}`: ")),
            "{e}"
        );
        assert!(!e.to_string().contains("pgw6dy7d1i8i1234"), "{e}");
    }
    // Aggressive mode is IKEv1's: ignored with IKEv2, accepted.
    assert!(import_alibaba(path, &DOWNLOADED.replace("\"main\"", "\"aggressive\"")).is_ok());
    let e = import_alibaba(path, "{\n  \"VpnConnectionConfig\": [\n").unwrap_err();
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.message().contains("not valid JSON"), "{e}");
    let e = import_alibaba(path, "{\"TunnelsConfig\": {}}").unwrap_err();
    assert!(e.message().contains("dual-tunnel"), "{e}");
    let e = import_alibaba(path, "[]").unwrap_err();
    assert!(e.message().contains("JSON object"), "{e}");
}

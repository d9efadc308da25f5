//! End-to-end test harness for ipsecgw: network namespaces, the four-namespace
//! site-to-site topology, gateway and tcpdump process guards, and a pcap
//! reader with the assertions the end-to-end tests make about the wire, and
//! strongSwan (`charon-systemd` per namespace) as an interop peer.
//!
//! Everything here runs real processes in network namespaces that the harness
//! itself creates under unique names (`ipsgw-<pid>-<counter>-<role>`) and
//! removes again when the guards drop, also after a panic. Nothing is ever
//! configured in, or sent from, the root namespace.
//!
//! The harness is test code: when something it needs is missing (root, `ip`,
//! `tcpdump`, the daemon binary) or a setup step fails, it panics with a
//! message that says what to do. It never skips. The `pcap` and `stream`
//! modules are also used by the `nettool` binary and return errors instead.

pub mod capture;
pub mod gateway;
pub mod measure;
pub mod netns;
pub mod pcap;
pub mod stream;
pub mod strongswan;
pub mod topology;
pub mod traffic;
pub mod util;

pub use capture::Capture;
pub use gateway::{Encapsulation, Gateway, GatewayConfig, Status};
pub use measure::time_to_first_ping;
pub use netns::Netns;
pub use pcap::Pcap;
pub use strongswan::{Charon, CharonBuilder, DpdAction, Sas, StartAction};
pub use topology::Topology;
pub use util::{ipsecgw_bin, require_root_and_tools, TempDir};

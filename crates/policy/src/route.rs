//! Longest-prefix-match tables for IPv4 and IPv6.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

/// Longest-prefix-match table for IPv4 and IPv6 (wrapping
/// [`prefix_trie::PrefixMap`], one trie per family), the building block for
/// kernel-route bookkeeping and, later, VPC/CEN route tables.
///
/// Prefixes are stored normalized (host bits cleared), so `10.1.1.5/24` and
/// `10.1.1.0/24` are the same key: that is how routing tables treat them.
/// [`RouteTable::lookup`] allocates nothing and is meant for the data path.
#[derive(Debug, Clone)]
pub struct RouteTable<V> {
    v4: PrefixMap<Ipv4Net, V>,
    v6: PrefixMap<Ipv6Net, V>,
}

impl<V> Default for RouteTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> RouteTable<V> {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
        }
    }

    /// Inserts `value` for `prefix` (normalized), returning the value it replaces.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.insert(p, value),
            IpNet::V6(p) => self.v6.insert(p, value),
        }
    }

    /// Removes the entry for exactly `prefix` (normalized); more and less
    /// specific entries stay.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.remove(&p),
            IpNet::V6(p) => self.v6.remove(&p),
        }
    }

    /// The value stored for exactly `prefix` (normalized), not a covering one.
    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.get(&p),
            IpNet::V6(p) => self.v6.get(&p),
        }
    }

    /// Mutable access to the value stored for exactly `prefix` (normalized).
    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.get_mut(&p),
            IpNet::V6(p) => self.v6.get_mut(&p),
        }
    }

    /// The longest prefix containing `addr` and its value.
    pub fn lookup(&self, addr: IpAddr) -> Option<(IpNet, &V)> {
        match addr {
            IpAddr::V4(a) => self
                .v4
                .get_lpm(&Ipv4Net::from(a))
                .map(|(p, v)| (IpNet::V4(p), v)),
            IpAddr::V6(a) => self
                .v6
                .get_lpm(&Ipv6Net::from(a))
                .map(|(p, v)| (IpNet::V6(p), v)),
        }
    }

    /// Number of prefixes stored, both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// All entries: IPv4 first, then IPv6, each in prefix order.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        self.v4
            .iter()
            .map(|(p, v)| (IpNet::V4(p), v))
            .chain(self.v6.iter().map(|(p, v)| (IpNet::V6(p), v)))
    }
}

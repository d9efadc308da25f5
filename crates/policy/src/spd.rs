//! The security policy database (RFC 4301 §4.4.1): an ordered list of
//! policies, the first one whose selectors match a packet deciding whether it
//! is protected (and by which connection), bypassed or discarded.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::{Prefix, PrefixMap};

use crate::flow::FlowKey;
use crate::selector::{flow_matches, TrafficSelector};

/// What to do with a packet that matches a policy (RFC 4301 §4.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction<C> {
    /// Send it through an SA of connection `C`.
    Protect(C),
    /// Let it pass in clear (e.g. the gateway's own IKE traffic).
    Bypass,
    /// Drop it.
    Discard,
}

/// One SPD entry: selector sets for both ends and the action.
#[derive(Debug, Clone)]
pub struct Policy<C> {
    /// Shown in logs and the CLI.
    pub name: String,
    /// Selectors for the gateway's side (the source of outbound packets).
    pub local: Vec<TrafficSelector>,
    /// Selectors for the peer's side (the destination of outbound packets).
    pub remote: Vec<TrafficSelector>,
    /// What to do with matching packets.
    pub action: PolicyAction<C>,
}

/// A handle to a policy in an [`Spd`], stable while the policy is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

/// Position of a policy in the SPD order: assigned increasingly on push and
/// never reused, so comparing two of them compares priority. Kept apart from
/// [`PolicyId`] so ids can be recycled after `u32::MAX` pushes without
/// disturbing the order.
type Seq = u64;

/// The policies whose remote selectors cover one trie prefix.
#[derive(Debug, Clone, Default)]
struct Candidates {
    /// How many policies have this exact prefix among their remote prefixes;
    /// the trie node goes when it drops to 0.
    owners: usize,
    /// Every policy with a remote prefix equal to or containing this one,
    /// sorted by priority. Holding the ancestors' policies too means one
    /// longest-prefix match finds all candidates without walking the trie.
    seqs: Vec<Seq>,
}

/// Ordered security policy database (RFC 4301 §4.4.1): the first policy in
/// order whose selectors match wins.
///
/// Lookups are not a linear scan: each policy is indexed in a per-family
/// prefix trie under the prefixes covering its remote selectors (ranges that
/// are not a clean prefix under their [`TrafficSelector::to_subnets`] cover).
/// Each trie node lists every policy whose remote prefixes contain the node's
/// prefix, in priority order, so a lookup is one longest-prefix match on the
/// remote address followed by a first-in-order check of those candidates
/// only. Lookups allocate nothing; `push` and `remove` pay for the index
/// (a node's list repeats its ancestors' policies, so memory grows with
/// nesting depth times policies: fine for site-to-site SPDs of hundreds of
/// entries, the scale this is built for).
#[derive(Debug, Clone)]
pub struct Spd<C> {
    policies: BTreeMap<Seq, (PolicyId, Policy<C>)>,
    seq_of: HashMap<PolicyId, Seq>,
    next_seq: Seq,
    next_id: u32,
    v4: PrefixMap<Ipv4Net, Candidates>,
    v6: PrefixMap<Ipv6Net, Candidates>,
}

impl<C> Default for Spd<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Spd<C> {
    /// An empty SPD (which matches nothing; the caller decides the default).
    pub fn new() -> Self {
        Self {
            policies: BTreeMap::new(),
            seq_of: HashMap::new(),
            next_seq: 0,
            next_id: 0,
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
        }
    }

    /// Appends `policy` at the lowest priority and returns its handle.
    pub fn push(&mut self, policy: Policy<C>) -> PolicyId {
        let id = self.allocate_id();
        let seq = self.next_seq;
        // 2^64 pushes cannot happen; saturating only keeps this panic-free.
        self.next_seq = self.next_seq.saturating_add(1);
        for net in remote_prefixes(&policy) {
            match net {
                IpNet::V4(p) => index_add(&mut self.v4, p, seq),
                IpNet::V6(p) => index_add(&mut self.v6, p, seq),
            }
        }
        self.policies.insert(seq, (id, policy));
        self.seq_of.insert(id, seq);
        id
    }

    /// Removes a policy; the others keep their order and ids.
    pub fn remove(&mut self, id: PolicyId) -> Option<Policy<C>> {
        let seq = self.seq_of.remove(&id)?;
        let (_, policy) = self.policies.remove(&seq)?;
        for net in remote_prefixes(&policy) {
            match net {
                IpNet::V4(p) => index_remove(&mut self.v4, p, seq),
                IpNet::V6(p) => index_remove(&mut self.v6, p, seq),
            }
        }
        Some(policy)
    }

    /// The policy behind `id`, if it is still in the SPD.
    pub fn get(&self, id: PolicyId) -> Option<&Policy<C>> {
        let seq = self.seq_of.get(&id)?;
        self.policies.get(seq).map(|(_, p)| p)
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there are no policies.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// All policies, highest priority first.
    pub fn iter(&self) -> impl Iterator<Item = (PolicyId, &Policy<C>)> {
        self.policies.values().map(|(id, p)| (*id, p))
    }

    /// Outbound lookup (a packet read from the TUN device): `flow.src` and
    /// `src_port` against the policy's local selectors, `flow.dst` and
    /// `dst_port` against its remote selectors. The first matching policy in
    /// order wins; `None` when nothing matches.
    pub fn lookup_outbound(&self, flow: &FlowKey) -> Option<(PolicyId, &Policy<C>)> {
        self.lookup(flow.src, flow.src_port, flow.dst, flow.dst_port, flow.proto)
    }

    /// Inbound lookup (a packet decapsulated from, or arriving in clear for,
    /// the local side): `flow.dst` against the local selectors, `flow.src`
    /// against the remote ones, so the policy an outbound packet of the same
    /// connection would hit is found for its replies too.
    pub fn lookup_inbound(&self, flow: &FlowKey) -> Option<(PolicyId, &Policy<C>)> {
        self.lookup(flow.dst, flow.dst_port, flow.src, flow.src_port, flow.proto)
    }

    fn lookup(
        &self,
        local_addr: IpAddr,
        local_port: u16,
        remote_addr: IpAddr,
        remote_port: u16,
        proto: u8,
    ) -> Option<(PolicyId, &Policy<C>)> {
        let candidates = match remote_addr {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a))?.1,
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a))?.1,
        };
        candidates.seqs.iter().find_map(|seq| {
            let (id, policy) = self.policies.get(seq)?;
            flow_matches(
                &policy.local,
                &policy.remote,
                local_addr,
                local_port,
                remote_addr,
                remote_port,
                proto,
            )
            .then_some((*id, policy))
        })
    }

    /// The next id not in use. Ids count up; after `u32::MAX` pushes they
    /// wrap and skip live ones, so a handle stays unique while its policy is
    /// in the SPD (fewer than 2^32 policies fit in memory anyway).
    fn allocate_id(&mut self) -> PolicyId {
        loop {
            let id = PolicyId(self.next_id);
            self.next_id = self.next_id.wrapping_add(1);
            if !self.seq_of.contains_key(&id) {
                return id;
            }
        }
    }
}

/// The prefixes a policy is indexed under: the exact cover of each remote
/// selector's address range, without duplicates (so that the owner counts
/// in the trie stay balanced between push and remove).
fn remote_prefixes<C>(policy: &Policy<C>) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = policy
        .remote
        .iter()
        .flat_map(TrafficSelector::to_subnets)
        .collect();
    nets.sort_unstable();
    nets.dedup();
    nets
}

/// Adds policy `seq` under `net`: creates the node if needed (inheriting the
/// candidates of its closest ancestor, whose prefixes all contain `net`),
/// then lists `seq` at `net` and every node below it.
fn index_add<P: Prefix + Copy>(map: &mut PrefixMap<P, Candidates>, net: P, seq: Seq) {
    if let Some(node) = map.get_mut(&net) {
        node.owners += 1;
    } else {
        let seqs = map
            .get_lpm(&net)
            .map(|(_, ancestor)| ancestor.seqs.clone())
            .unwrap_or_default();
        map.insert(net, Candidates { owners: 1, seqs });
    }
    for (_, node) in map.children_mut(&net) {
        if let Err(at) = node.seqs.binary_search(&seq) {
            node.seqs.insert(at, seq);
        }
    }
}

/// Undoes [`index_add`] for a policy being removed entirely: drops `seq`
/// from `net` and everything below it (any other prefix of the same policy
/// that also covered them is being removed too), and the node itself once no
/// policy owns it.
fn index_remove<P: Prefix>(map: &mut PrefixMap<P, Candidates>, net: P, seq: Seq) {
    for (_, node) in map.children_mut(&net) {
        if let Ok(at) = node.seqs.binary_search(&seq) {
            node.seqs.remove(at);
        }
    }
    let now_unowned = match map.get_mut(&net) {
        Some(node) => {
            node.owners = node.owners.saturating_sub(1);
            node.owners == 0
        }
        None => false,
    };
    if now_unowned {
        map.remove(&net);
    }
}

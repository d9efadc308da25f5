//! What the negotiator tells its driver: datagrams to send and events.

use std::net::SocketAddr;

use ipsecgw_policy::TrafficSelector;
use zeroize::Zeroizing;

use crate::proposal::{EspProposal, IkeProposal};

/// Our SPI of an IKE SA: how the driver names it.
pub type IkeSaId = [u8; 8];

/// A datagram to send. When `local` is on port 4500 the driver prepends the
/// four-byte non-ESP marker (RFC 3948 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address and port to send from.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// The IKE message.
    pub data: Vec<u8>,
}

/// A CHILD SA both sides agreed on, with its keys: what the data plane needs.
pub struct ChildSa {
    /// Connection index.
    pub conn: usize,
    /// The IKE SA it belongs to.
    pub ike: IkeSaId,
    /// The SPI the peer puts on packets to us.
    pub inbound_spi: u32,
    /// The SPI we put on packets to the peer.
    pub outbound_spi: u32,
    /// Algorithms.
    pub proposal: EspProposal,
    /// Key material (key || salt) for inbound packets.
    pub inbound_key: Zeroizing<Vec<u8>>,
    /// Key material (key || salt) for outbound packets.
    pub outbound_key: Zeroizing<Vec<u8>>,
    /// Our side's selectors, as narrowed.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's selectors, as narrowed.
    pub remote_ts: Vec<TrafficSelector>,
    /// Where ESP goes.
    pub peer: SocketAddr,
    /// ESP in UDP 4500 (a NAT was detected, or encapsulation forced).
    pub encap: bool,
    /// Whether the outbound SA carries traffic now. When `false` (a rekey
    /// we answered), install the inbound SA now and hold the outbound one
    /// until [`Event::ChildActivate`], so no packet is sent on an SA the
    /// peer cannot yet decrypt (make-before-break).
    pub activate: bool,
}

impl std::fmt::Debug for ChildSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSa")
            .field("conn", &self.conn)
            .field("inbound_spi", &format_args!("{:08x}", self.inbound_spi))
            .field("outbound_spi", &format_args!("{:08x}", self.outbound_spi))
            .field("proposal", &self.proposal)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("peer", &self.peer)
            .field("encap", &self.encap)
            .field("keys", &"redacted")
            .finish()
    }
}

/// Why an IKE SA went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We deleted it.
    Deleted,
    /// The peer deleted it.
    DeletedByPeer,
    /// No answer to retransmitted requests (dead peer, RFC 7296 §2.4).
    PeerDead,
    /// The PSK or identity did not match.
    AuthenticationFailed(String),
    /// No proposal in common; the text lists both sides'.
    NoProposalChosen(String),
    /// Anything else; the text says what.
    Failed(String),
    /// Replaced by a rekeyed IKE SA (its CHILD SAs moved over).
    Rekeyed,
}

/// Things the driver must act on, in the order they happened.
#[derive(Debug)]
pub enum Event {
    /// An IKE SA is established.
    IkeUp {
        /// Connection index.
        conn: usize,
        /// Our SPI.
        ike: IkeSaId,
        /// The peer's address.
        peer: SocketAddr,
        /// What was agreed.
        proposal: IkeProposal,
    },
    /// A CHILD SA is ready: install it.
    ChildUp(Box<ChildSa>),
    /// The held outbound SA of a rekeyed CHILD SA now carries traffic.
    ChildActivate {
        /// Connection index.
        conn: usize,
        /// The new CHILD SA's inbound SPI (names it).
        inbound_spi: u32,
    },
    /// A CHILD SA is gone: remove it.
    ChildDown {
        /// Connection index.
        conn: usize,
        /// Our inbound SPI.
        inbound_spi: u32,
        /// Our outbound SPI.
        outbound_spi: u32,
    },
    /// An IKE SA is gone (its CHILD SAs were reported down first).
    IkeDown {
        /// Connection index.
        conn: usize,
        /// Our SPI.
        ike: IkeSaId,
        /// Why.
        reason: DownReason,
    },
}

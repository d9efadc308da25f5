//! The IKEv2 message codec (RFC 7296 §3): parse and emit, nothing else.
//!
//! A [`Message`] is the fixed [`Header`] plus a chain of [`Payload`]s. Parsing
//! checks every length the peer claims: the header's message length against
//! the datagram, each payload's length against what remains, each
//! substructure's length against its payload, and the fixed minimum size of
//! each payload body. No parser indexes wire data directly (all reads go
//! through a bounds-checked reader), so no input can panic.
//!
//! What this module does not do: decrypt or verify the SK payload (it hands
//! out IV || ciphertext || ICV; the caller decrypts and feeds the plaintext
//! back to [`parse_payloads`]), choose proposals, or decide which payloads a
//! given exchange must carry. Registry values (payload, exchange, notify,
//! transform, ID types) are enums with an `Unknown(raw)` variant so values
//! this code does not know still round-trip.
//!
//! Build registry values with `From<u8>`/`From<u16>`: a hand-made
//! `Unknown(34)` emits as 34 and parses back as the named variant.

/// An IANA registry as an enum with an `Unknown(raw)` catch-all, with
/// conversions both ways.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $raw:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this code does not know, kept so it round-trips.
            Unknown($raw),
        }

        impl From<$raw> for $name {
            fn from(raw: $raw) -> Self {
                match raw {
                    $( $value => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $raw {
            fn from(value: $name) -> $raw {
                match value {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

mod delete;
mod error;
mod header;
mod id;
mod message;
mod notify;
mod payload;
mod sa;
mod ts;

pub use delete::Delete;
pub use error::InvalidMessage;
pub use header::{field as header_field, ExchangeType, Flags, Header, IkePacket, PayloadType};
pub use id::{IdType, Identification};
pub use message::Message;
pub use notify::{Notify, NotifyType};
pub use payload::{auth_method, emit_payloads, parse_payloads, Payload};
pub use sa::{
    transform_id, Proposal, ProtocolId, SaPayload, Transform, TransformType, ATTR_KEY_LENGTH,
};
pub use ts::{TrafficSelector, TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE};

/// The fixed IKE header, RFC 7296 §3.1.
pub const IKE_HEADER_LEN: usize = 28;

/// Next Payload, C + reserved, Payload Length: RFC 7296 §3.2.
pub const GENERIC_PAYLOAD_HEADER_LEN: usize = 4;

//! ESP wire format (RFC 4303 §2) as zero-copy views over caller buffers.
//!
//! [`EspPacket`] checks once that the buffer holds header, IV, the two trailer
//! bytes and the ICV; after that its accessors cannot panic. [`EspHeader`]
//! parses and emits the 8-byte clear-text header. [`Trailer`] parses and emits
//! the decrypted padding, pad length and next header.

mod esp;

pub use esp::{
    field, EspHeader, EspPacket, Trailer, WireError, HEADER_LEN, MIN_PACKET_LEN, TRAILER_LEN,
};

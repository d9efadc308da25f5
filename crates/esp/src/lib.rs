//! ESP (RFC 4303) for ipsecgw: placeholder until the helper lands the crate.
#![forbid(unsafe_code)]

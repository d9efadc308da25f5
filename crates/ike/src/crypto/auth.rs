//! PSK authentication (RFC 7296 §2.15), NAT detection hashes (§2.23) and
//! stateless cookies (§2.6).

use std::net::{IpAddr, SocketAddr};

use ring::digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Prf;

/// The fixed key pad of RFC 7296 §2.15 (17 ASCII octets, no terminator).
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// Computes a shared-key AUTH value (RFC 7296 §2.15):
///
/// ```text
/// AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
/// SignedOctets = RealMessage | NonceOfOtherSide | prf(SK_p, RestOfIDPayload)
/// ```
///
/// For the initiator: `real_message` = its IKE_SA_INIT request, `peer_nonce` =
/// Nr, `sk_p` = SK_pi, `id_body` = the IDi payload body after the generic
/// header (ID Type, RESERVED, Identification Data). For the responder: its
/// IKE_SA_INIT response, Ni, SK_pr, IDr.
pub fn psk_auth(
    prf: Prf,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Zeroizing<Vec<u8>> {
    let maced_id = prf.prf(sk_p, &[id_body]);
    let auth_key = prf.prf(psk, &[KEY_PAD]);
    prf.prf(&auth_key, &[real_message, peer_nonce, &maced_id])
}

/// Checks a received shared-key AUTH value in constant time (RFC 7296 §2.15).
/// A value of the wrong length is rejected.
pub fn verify_psk_auth(
    prf: Prf,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    received: &[u8],
) -> bool {
    let expected = psk_auth(prf, psk, real_message, peer_nonce, sk_p, id_body);
    // subtle's slice comparison returns 0 at once for unequal lengths (the
    // length is public: it is the PRF's output length) and is constant time
    // in the contents otherwise.
    bool::from(expected.as_slice().ct_eq(received))
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// NAT_DETECTION_SOURCE_IP / NAT_DETECTION_DESTINATION_IP notification data
/// (RFC 7296 §2.23):
///
/// ```text
/// SHA-1(SPIi | SPIr | IP | Port)
/// ```
///
/// with the address as 4 or 16 octets (as the IP header carries it: an
/// IPv6 `SocketAddr` is hashed as 16 octets even if it is IPv4-mapped) and the
/// port in network byte order. In the IKE_SA_INIT request SPIr is zero.
pub fn nat_detection_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(spi_i);
    ctx.update(spi_r);
    ctx.update(&ip_octets(addr.ip()));
    ctx.update(&addr.port().to_be_bytes());
    let d = ctx.finish();
    let mut out = [0u8; 20];
    // SHA-1 output is exactly 20 octets; copy defensively without panicking.
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

/// Length of a cookie from [`cookie`]: version octet plus a full SHA-256 (33
/// octets, within the 1..=64 of RFC 7296 §2.6).
pub const COOKIE_LEN: usize = 1 + 32;

/// A stateless responder cookie (RFC 7296 §2.6):
///
/// ```text
/// Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
/// ```
///
/// Hash is full (untruncated) SHA-256; IPi is 4 or 16 octets. The responder
/// rotates `secret` from time to time and bumps `version`, so it can still
/// verify cookies made with the previous secret (it picks the secret by the
/// received cookie's first octet).
pub fn cookie(secret: &[u8; 32], version: u8, ni: &[u8], ip_i: IpAddr, spi_i: &[u8; 8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(ni);
    ctx.update(&ip_octets(ip_i));
    ctx.update(spi_i);
    ctx.update(secret);
    let d = ctx.finish();
    let mut out = Vec::with_capacity(COOKIE_LEN);
    out.push(version);
    out.extend_from_slice(d.as_ref());
    out
}

/// Checks a cookie returned by the initiator against `secret` / `version`,
/// in constant time. A cookie of the wrong length or version is rejected.
pub fn verify_cookie(
    secret: &[u8; 32],
    version: u8,
    ni: &[u8],
    ip_i: IpAddr,
    spi_i: &[u8; 8],
    received: &[u8],
) -> bool {
    let expected = cookie(secret, version, ni, ip_i, spi_i);
    bool::from(expected.as_slice().ct_eq(received))
}

//! IKE SA and CHILD SA key derivation (RFC 7296 §2.14, §2.17, §2.18).

use core::fmt;

use zeroize::Zeroizing;

use super::{Cipher, Prf};

/// The seven secrets of one IKE SA (RFC 7296 §2.14). Zeroized on drop.
pub struct IkeKeys {
    /// Key for deriving CHILD SA keys and the next IKE SA's SKEYSEED.
    pub sk_d: Zeroizing<Vec<u8>>,
    /// Integrity key, initiator to responder (empty for AEAD ciphers).
    pub sk_ai: Zeroizing<Vec<u8>>,
    /// Integrity key, responder to initiator (empty for AEAD ciphers).
    pub sk_ar: Zeroizing<Vec<u8>>,
    /// Encryption key (with salt for GCM), initiator to responder.
    pub sk_ei: Zeroizing<Vec<u8>>,
    /// Encryption key (with salt for GCM), responder to initiator.
    pub sk_er: Zeroizing<Vec<u8>>,
    /// Key for the initiator's AUTH payload (§2.15).
    pub sk_pi: Zeroizing<Vec<u8>>,
    /// Key for the responder's AUTH payload (§2.15).
    pub sk_pr: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeKeys")
            .field("sk_d", &"<redacted>")
            .field("sk_ai", &"<redacted>")
            .field("sk_ar", &"<redacted>")
            .field("sk_ei", &"<redacted>")
            .field("sk_er", &"<redacted>")
            .field("sk_pi", &"<redacted>")
            .field("sk_pr", &"<redacted>")
            .finish()
    }
}

/// Takes the next `n` octets of `rest` (fewer if it runs out: never panics).
fn take(rest: &mut &[u8], n: usize) -> Zeroizing<Vec<u8>> {
    let n = n.min(rest.len());
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Zeroizing::new(head.to_vec())
}

impl IkeKeys {
    /// Keys of a new IKE SA from IKE_SA_INIT (RFC 7296 §2.14):
    ///
    /// ```text
    /// SKEYSEED = prf(Ni | Nr, g^ir)
    /// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
    ///          = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
    /// ```
    ///
    /// `ni`, `nr` are the Nonce Data of the two Nonce payloads. All PRFs here
    /// are HMAC, which takes `Ni | Nr` as its key whatever its length; §2.14's
    /// rule of using halves of each nonce applies only to fixed-key-size PRFs.
    ///
    /// Lengths: SK_d, SK_pi, SK_pr = `prf.key_len()`; SK_ei, SK_er =
    /// `cipher.key_len()` (with salt for GCM, RFC 5282 §7.1; the encryption
    /// key alone for CBC); SK_ai, SK_ar = `integ_key_len`, except that for
    /// AEAD ciphers it is ignored and both are empty (RFC 5282 §7.1: no
    /// integrity keys are derived). A non-AEAD cipher's integrity key length
    /// is the INTEG transform's key size, [`Integ::key_len`](super::Integ::key_len)
    /// (at most 64 octets), far within prf+'s 255-block bound.
    #[allow(clippy::too_many_arguments)]
    pub fn derive(
        prf: Prf,
        cipher: Cipher,
        integ_key_len: usize,
        ni: &[u8],
        nr: &[u8],
        g_ir: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
    ) -> IkeKeys {
        let skeyseed = prf.prf(&[ni, nr].concat(), &[g_ir]);
        Self::from_skeyseed(prf, cipher, integ_key_len, &skeyseed, ni, nr, spi_i, spi_r)
    }

    /// Keys of a rekeyed IKE SA from CREATE_CHILD_SA (RFC 7296 §2.18):
    ///
    /// ```text
    /// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
    /// ```
    ///
    /// computed with the *old* IKE SA's PRF, then the seven keys by prf+ as
    /// in §2.14 with the *new* SA's PRF, nonces and SPIs.
    #[allow(clippy::too_many_arguments)]
    pub fn derive_rekey(
        old_prf: Prf,
        old_sk_d: &[u8],
        prf: Prf,
        cipher: Cipher,
        integ_key_len: usize,
        g_ir: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
    ) -> IkeKeys {
        let skeyseed = old_prf.prf(old_sk_d, &[g_ir, ni, nr]);
        Self::from_skeyseed(prf, cipher, integ_key_len, &skeyseed, ni, nr, spi_i, spi_r)
    }

    #[allow(clippy::too_many_arguments)]
    fn from_skeyseed(
        prf: Prf,
        cipher: Cipher,
        integ_key_len: usize,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
    ) -> IkeKeys {
        let integ = if cipher.is_aead() { 0 } else { integ_key_len };
        let prf_key = prf.key_len();
        let enc = cipher.key_len();
        let total = 3 * prf_key + 2 * integ + 2 * enc;
        let material = prf.prf_plus(skeyseed, &[ni, nr, spi_i, spi_r], total);
        let mut rest: &[u8] = &material;
        IkeKeys {
            sk_d: take(&mut rest, prf_key),
            sk_ai: take(&mut rest, integ),
            sk_ar: take(&mut rest, integ),
            sk_ei: take(&mut rest, enc),
            sk_er: take(&mut rest, enc),
            sk_pi: take(&mut rest, prf_key),
            sk_pr: take(&mut rest, prf_key),
        }
    }
}

/// CHILD SA keying material (RFC 7296 §2.17):
///
/// ```text
/// KEYMAT = prf+(SK_d, Ni | Nr)                    (no PFS)
/// KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)       (with a KE exchange)
/// ```
///
/// `len` covers both directions; the caller takes the initiator-to-responder
/// keys first, then responder-to-initiator (encryption key before integrity
/// key within each, §2.17). Clamped to prf+'s 255-block limit like
/// [`Prf::prf_plus`].
pub fn child_keymat(
    prf: Prf,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    match g_ir {
        Some(g) => prf.prf_plus(sk_d, &[g, ni, nr], len),
        None => prf.prf_plus(sk_d, &[ni, nr], len),
    }
}

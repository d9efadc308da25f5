//! Pre-shared keys: held so that they never show in `Debug` output or error
//! messages, wiped from memory when dropped, and generated from randomness
//! the caller passes in (this crate never reads the OS's).

use std::fmt;

use zeroize::Zeroizing;

/// Length of a generated key: the 16 printable characters the product
/// generates when the console's key field is left empty.
pub const GENERATED_PSK_LEN: usize = 16;

/// The shortest key ipsecgw's device config accepts (its `MIN_PSK_LEN`): a
/// shorter one falls to a dictionary.
pub const MIN_PSK_LEN: usize = 8;

/// The longest key the product accepts.
pub const MAX_PSK_LEN: usize = 100;

/// What a generated key is drawn from: printable ASCII without the space,
/// the two quotes, the backslash, the backtick and the dollar sign, so the
/// key pastes into a TOML file, a swanctl.conf, a JSON document, a shell
/// command (in single quotes) or the console's form without escaping or
/// expansion. 89 characters: 6.5 bits each, 103 bits for 16.
#[cfg(test)]
pub(crate) const ALPHABET_LEN: usize = ALPHABET.len();

const ALPHABET: &[u8] =
    b"!#%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|}~";

/// A pre-shared key. `Debug` prints `Psk(redacted)`; the text is zeroized
/// on drop. Read it with [`Psk::expose`] only to write a config.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk(Zeroizing<String>);

impl Psk {
    /// Wraps a key as given.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// 16 characters of printable ASCII without the space, the quotes, the
    /// backslash, the backtick and `$`, drawn from `rng` without bias: a
    /// random byte is used only when it is below the largest multiple of
    /// the alphabet's size (178 of 256), so each character is equally
    /// likely.
    pub fn generate(rng: &mut dyn FnMut(&mut [u8])) -> Self {
        let n = ALPHABET.len();
        let limit = 256 - 256 % n;
        let mut out = Zeroizing::new(String::with_capacity(GENERATED_PSK_LEN));
        let mut buf = Zeroizing::new([0u8; 32]);
        while out.len() < GENERATED_PSK_LEN {
            rng(&mut buf[..]);
            for &b in buf.iter() {
                if out.len() == GENERATED_PSK_LEN {
                    break;
                }
                if usize::from(b) < limit {
                    out.push(char::from(ALPHABET[usize::from(b) % n]));
                }
            }
        }
        Self(out)
    }

    /// The key's text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `c` may appear in a generated key.
    pub fn in_alphabet(c: char) -> bool {
        c.is_ascii() && ALPHABET.contains(&(c as u8))
    }

    /// Why this key cannot be used, if it cannot: too short for ipsecgw,
    /// too long for the product, or holding characters the product refuses
    /// (it takes printable ASCII without spaces). Never quotes the key.
    pub(crate) fn problem(&self) -> Option<String> {
        let len = self.0.chars().count();
        if len < MIN_PSK_LEN {
            return Some(format!(
                "the pre-shared key has {len} characters: use {MIN_PSK_LEN} to {MAX_PSK_LEN} (leave it out and `ipsecgw ipsec-connection create` generates one)"
            ));
        }
        if len > MAX_PSK_LEN {
            return Some(format!(
                "the pre-shared key has {len} characters: Alibaba Cloud takes at most {MAX_PSK_LEN}"
            ));
        }
        if !self.0.chars().all(|c| c.is_ascii_graphic()) {
            return Some(
                "the pre-shared key may hold only printable ASCII characters without spaces (as Alibaba Cloud's console)"
                    .into(),
            );
        }
        None
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(redacted)")
    }
}

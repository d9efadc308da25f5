//! Alibaba Cloud's algorithm choices for an IPsec connection, by the names
//! its console and API use (`aes`, `sha1`, `group2`), and their strongSwan
//! names, which ipsecgw's own configs use as well (`aes128`, `modp1024`).
//!
//! Only what the console can offer is here: a name outside these lists
//! (`chacha20`, `aes256gcm16`, `group19`) cannot have come from an Alibaba
//! VPN gateway, so the model refuses it rather than produce a configuration
//! the other end will never accept.

use std::fmt;

/// Phase 1 and phase 2 encryption (`IkeEncAlg`, `IpsecEncAlg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// AES-CBC with a 128-bit key: the console calls it `aes`.
    Aes,
    /// AES-CBC with a 192-bit key.
    Aes192,
    /// AES-CBC with a 256-bit key.
    Aes256,
    /// DES-CBC. Legacy.
    Des,
    /// 3DES-CBC. Legacy.
    TripleDes,
}

/// Phase 1 and phase 2 integrity (`IkeAuthAlg`, `IpsecAuthAlg`): HMAC with
/// these hashes (in IKE also the PRF, as strongSwan derives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// HMAC-MD5-96. Legacy.
    Md5,
    /// HMAC-SHA1-96.
    Sha1,
    /// HMAC-SHA2-256-128.
    Sha256,
    /// HMAC-SHA2-384-192.
    Sha384,
    /// HMAC-SHA2-512-256.
    Sha512,
}

/// Diffie-Hellman groups (`IkePfs`, `IpsecPfs`), all MODP (RFC 2409, 3526).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// MODP-768. Legacy.
    Group1,
    /// MODP-1024. Legacy.
    Group2,
    /// MODP-1536. Legacy.
    Group5,
    /// MODP-2048.
    Group14,
}

/// A named preset of algorithm choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// What the console fills in for a new IPsec connection: IKE and IPsec
    /// aes / md5 / group2, 86400 s. MD5 and group2 are weak, so a connection
    /// using it needs `legacy = true`.
    AlibabaDefault,
}

const ENCRYPTIONS: &str = "aes (AES-128), aes192, aes256, and with legacy = true des, 3des";
const INTEGRITIES: &str = "sha1, sha256, sha384, sha512, and with legacy = true md5";
const GROUPS: &str = "group14, and with legacy = true group1, group2, group5";

impl Encryption {
    /// Every choice, in the console's order.
    pub const ALL: [Encryption; 5] = [
        Encryption::Aes,
        Encryption::Aes192,
        Encryption::Aes256,
        Encryption::Des,
        Encryption::TripleDes,
    ];

    /// The console's name (`aes`, `3des`).
    pub fn name(self) -> &'static str {
        match self {
            Encryption::Aes => "aes",
            Encryption::Aes192 => "aes192",
            Encryption::Aes256 => "aes256",
            Encryption::Des => "des",
            Encryption::TripleDes => "3des",
        }
    }

    /// strongSwan's (and ipsecgw's) keyword: `aes` is AES-128 there too,
    /// but `aes128` says so.
    pub fn strongswan(self) -> &'static str {
        match self {
            Encryption::Aes => "aes128",
            other => other.name(),
        }
    }

    /// DES and 3DES: 64-bit blocks, and for DES a key found by brute force.
    pub fn is_legacy(self) -> bool {
        matches!(self, Encryption::Des | Encryption::TripleDes)
    }

    /// The console's name, any case; `aes128` is taken for `aes`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "aes128" {
            return Some(Encryption::Aes);
        }
        Self::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Says what the console offers, for error messages.
    pub fn valid() -> &'static str {
        ENCRYPTIONS
    }
}

impl Integrity {
    /// Every choice, in the console's order.
    pub const ALL: [Integrity; 5] = [
        Integrity::Md5,
        Integrity::Sha1,
        Integrity::Sha256,
        Integrity::Sha384,
        Integrity::Sha512,
    ];

    /// The console's name, which is also strongSwan's.
    pub fn name(self) -> &'static str {
        match self {
            Integrity::Md5 => "md5",
            Integrity::Sha1 => "sha1",
            Integrity::Sha256 => "sha256",
            Integrity::Sha384 => "sha384",
            Integrity::Sha512 => "sha512",
        }
    }

    /// MD5.
    pub fn is_legacy(self) -> bool {
        self == Integrity::Md5
    }

    /// The console's name, any case.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|i| i.name() == s)
    }

    /// Says what the console offers, for error messages.
    pub fn valid() -> &'static str {
        INTEGRITIES
    }
}

impl DhGroup {
    /// Every choice, in the console's order.
    pub const ALL: [DhGroup; 4] = [
        DhGroup::Group1,
        DhGroup::Group2,
        DhGroup::Group5,
        DhGroup::Group14,
    ];

    /// The console's name (`group2`).
    pub fn name(self) -> &'static str {
        match self {
            DhGroup::Group1 => "group1",
            DhGroup::Group2 => "group2",
            DhGroup::Group5 => "group5",
            DhGroup::Group14 => "group14",
        }
    }

    /// strongSwan's keyword: the MODP group by its size (RFC 2409 §6,
    /// RFC 3526 §2-3).
    pub fn strongswan(self) -> &'static str {
        match self {
            DhGroup::Group1 => "modp768",
            DhGroup::Group2 => "modp1024",
            DhGroup::Group5 => "modp1536",
            DhGroup::Group14 => "modp2048",
        }
    }

    /// Groups below 2048 bits.
    pub fn is_legacy(self) -> bool {
        self != DhGroup::Group14
    }

    /// The console's name, any case.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|g| g.name() == s)
    }

    /// Says what the console offers, for error messages.
    pub fn valid() -> &'static str {
        GROUPS
    }
}

/// The PFS setting of phase 2: a group, or `disabled` (the console's word).
pub(crate) fn parse_pfs(s: &str) -> Option<Option<DhGroup>> {
    if s.trim().eq_ignore_ascii_case("disabled") {
        return Some(None);
    }
    DhGroup::parse(s).map(Some)
}

/// The console's word for a PFS setting.
pub(crate) fn pfs_name(pfs: Option<DhGroup>) -> &'static str {
    pfs.map_or("disabled", DhGroup::name)
}

impl Profile {
    /// Every preset.
    pub const ALL: [Profile; 1] = [Profile::AlibabaDefault];

    /// Its name in a state file.
    pub fn name(self) -> &'static str {
        match self {
            Profile::AlibabaDefault => "alibaba-default",
        }
    }

    /// The name, any case.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The algorithms it stands for.
    pub fn suite(self) -> Suite {
        match self {
            Profile::AlibabaDefault => Suite {
                ike_encryption: Encryption::Aes,
                ike_integrity: Integrity::Md5,
                dh_group: DhGroup::Group2,
                ipsec_encryption: Encryption::Aes,
                ipsec_integrity: Integrity::Md5,
                pfs: Some(DhGroup::Group2),
            },
        }
    }
}

/// One full choice of algorithms: what a profile, or the defaults, fill in
/// for the keys a connection leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// Phase 1 encryption.
    pub ike_encryption: Encryption,
    /// Phase 1 integrity (and PRF).
    pub ike_integrity: Integrity,
    /// Phase 1 DH group.
    pub dh_group: DhGroup,
    /// Phase 2 encryption.
    pub ipsec_encryption: Encryption,
    /// Phase 2 integrity.
    pub ipsec_integrity: Integrity,
    /// Phase 2 PFS group, or none.
    pub pfs: Option<DhGroup>,
}

impl Suite {
    /// Without a profile: the strongest of what the console offers that
    /// needs no legacy switch (aes256 / sha256 / group14, PFS group14).
    pub const DEFAULT: Suite = Suite {
        ike_encryption: Encryption::Aes256,
        ike_integrity: Integrity::Sha256,
        dh_group: DhGroup::Group14,
        ipsec_encryption: Encryption::Aes256,
        ipsec_integrity: Integrity::Sha256,
        pfs: Some(DhGroup::Group14),
    };
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

//! The model's one error type: where the problem is (file, line, key) and
//! what would be valid, in the shape `ipsecgw check` prints for device
//! configs, so both read the same.

use std::fmt;
use std::path::{Path, PathBuf};

/// A state file, a command or an imported file asked for something the
/// product (or this gateway) does not allow.
///
/// `Display` is `path:line: `key`: message`; the line is left out when the
/// problem is not in a file (a create command's arguments) and the key when
/// it concerns the whole file. Messages never contain a pre-shared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    file: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

impl ModelError {
    pub(crate) fn new(
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The file the problem is in (the state file, or the imported file).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line of the offending key, when it came from a file.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The dotted key (`ipsec_connection.ike.encryption`) or, for an import,
    /// the JSON field (`VpnConnectionConfig.IkeConfig.IkeEncAlg`).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong and what would be valid.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ModelError {}

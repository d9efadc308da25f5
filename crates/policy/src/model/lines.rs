//! Where each key of a state file was written, so that a problem found long
//! after parsing (an unknown reference, an overlap between two items) is
//! still reported at its line.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::error::ModelError;

/// Byte offset to 1-based line number, for one text.
#[derive(Debug)]
pub(crate) struct LineIndex {
    /// Offsets at which each line starts.
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self { starts }
    }

    /// The line holding byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// The lines of one item's keys (full dotted keys), and of its table for
/// keys that were left out. Empty for an item a command added: its errors
/// name the key without a line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lines {
    table: Option<usize>,
    keys: HashMap<String, usize>,
}

impl Lines {
    /// Lines for an item whose table starts at `span`.
    pub(crate) fn at(index: &LineIndex, span: Range<usize>) -> Self {
        Self {
            table: Some(index.line(span.start)),
            keys: HashMap::new(),
        }
    }

    /// Records that `key` was written at `span`.
    pub(crate) fn set(&mut self, index: &LineIndex, key: &str, span: Range<usize>) {
        self.keys.insert(key.to_owned(), index.line(span.start));
    }

    /// The line of `key`, or of the item's table when the key was not
    /// written.
    pub(crate) fn line(&self, key: &str) -> Option<usize> {
        self.keys.get(key).copied().or(self.table)
    }

    /// An error at `key`.
    pub(crate) fn error(&self, path: &Path, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::new(path, self.line(key), Some(key), message)
    }
}

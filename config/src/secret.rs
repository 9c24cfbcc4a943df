//! [`Secret`]: a string that is never printed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string (RPC bearer token, signing seed) whose `Debug` and `Display` print
/// `<redacted>`, so a config dumped to a log or an error never leaks it.
///
/// Serde sees it as a plain string (transparent) so it can be written in TOML as usual.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is actually used (auth compare, key decode).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

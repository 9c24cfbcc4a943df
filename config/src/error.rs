//! The crate's error types.

use std::path::PathBuf;

/// Everything that can go wrong while loading or validating a [`crate::Config`].
///
/// Every variant names where the problem came from (the file, or the environment variable) and,
/// where there is one, the dotted key, so an operator can fix it without reading code. No variant
/// ever carries a secret value (RPC token, signing key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file that was asked for, so the operator sees which path was tried.
        path: PathBuf,
        /// The underlying I/O error (not found, permission denied, invalid UTF-8).
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or test label) the text came from.
        origin: String,
        /// toml's own message, which names line, column and the offending key; redacted when
        /// the offending line holds a secret.
        message: String,
    },
    /// A value parsed but breaks a rule (range, band order, format).
    #[error("{origin}: invalid `{key}`: {message}")]
    Invalid {
        /// Where the value came from: the file, or `environment variable TB_…` when an override
        /// set it.
        origin: String,
        /// Dotted key, e.g. `gates.storage.enter_utilization_min_ppm`.
        key: String,
        /// What rule was broken and what is expected (never a secret value).
        message: String,
    },
    /// An environment override could not be parsed.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable's name, e.g. `TB_GOVERNOR_SHADOW_ONLY`.
        var: String,
        /// What was wrong and what is accepted (the value is shown only for non-secret variables).
        message: String,
    },
}

/// A string that is not one of the three [`crate::Mode`] names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {value:?}: expected one of shadow, apply, paused")]
pub struct ParseModeError {
    /// The rejected input, kept so callers (RPC, CLI) can echo it back.
    pub value: String,
}

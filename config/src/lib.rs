//! Configuration of the Launch Governor: every knob as a typed struct with its documented default,
//! loading from `governor.toml` plus `TB_*` environment overrides, validation whose errors name
//! the file (or variable) and the dotted key, and the `config_hash` that binds decisions to the
//! decision-relevant knobs (docs/configuration.md).
//!
//! ```
//! let config = tb_config::Config::load(None, |_| None)?;
//! assert_eq!(config.mode(), tb_config::Mode::Shadow);
//! # Ok::<(), tb_config::ConfigError>(())
//! ```
//!
//! Loading never guesses: an unknown key, a malformed boolean (in the file or in
//! `TB_GOVERNOR_SHADOW_ONLY`) or an out-of-range knob is an error, never a fallback to a default.
//! Secrets ([`Secret`]) never appear in `Debug`, `Display` or error messages.
//!
//! # Layout
//!
//! - `lib.rs` — [`Config`], [`Mode`], loading, [`Config::config_hash`], [`is_id`].
//! - `sections.rs` — `[governor]`, `[chain]`, `[rpc]`, `[signing]`, `[apply]`.
//! - `economics.rs` — `[economics]`, the control-law knobs (docs/economics.md).
//! - `gates.rs` — `[gates.*]`, the eight gate tables and [`StreakConfig`] (docs/gates.md); [`Gate`]
//!   and [`PerGate`], the gates in their fixed order.
//! - `knobs.rs` — the `knob_table!` macro that declares integer-knob tables with their defaults.
//! - `env.rs` — the `TB_*` environment overrides.
//! - `boolean.rs` — [`parse_bool`], the strict boolean words shared by env and TOML.
//! - `secret.rs` — [`Secret`].
//! - `validate.rs` — the validation pass.
//! - `error.rs` — [`ConfigError`], [`ParseModeError`].
//! - `../governor.example.toml` — every knob with its default; a test keeps it equal to
//!   [`Config::default`].

mod boolean;
mod economics;
mod env;
mod error;
mod gates;
mod knobs;
mod secret;
mod sections;
mod validate;

pub use boolean::{parse_bool, BOOL_WORDS};
pub use economics::EconomicsConfig;
pub use env::ENV_VARS;
pub use error::{ConfigError, ParseModeError};
pub use gates::{
    AdTierGate, EconomicsGate, Gate, GatesConfig, MarketGate, OperationalGate, ParseGateError,
    PerGate, StreakConfig, GATE_NAMES,
};
pub use secret::Secret;
pub use sections::{
    ApplyConfig, ChainConfig, GovernorConfig, PeerTlsConfig, PeersConfig, RpcConfig, RpcTlsConfig,
    SigningConfig,
};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// 2^53 − 1: the largest integer every hashed JSON document may hold (JCS writes numbers as
/// IEEE doubles, so anything larger would not round-trip exactly).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Whether `s` is an id: 1..=128 ASCII characters from `[A-Za-z0-9._:-]` (chain ids, provider
/// ids, contract ids, …; shared with the replay so there is one definition).
pub fn is_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The governor's operating mode, derived from `enabled` and `shadow_only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Gates are judged and intents recorded, but only `shadow_params` change (the default).
    Shadow,
    /// Activated intents change the runtime `params`.
    Apply,
    /// Snapshots and decision files continue; gates are not judged and params are frozen.
    Paused,
}

impl Mode {
    /// Every mode, for listings and tests.
    pub const ALL: [Mode; 3] = [Mode::Shadow, Mode::Apply, Mode::Paused];

    /// The lowercase name used in JSON, the journal and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shadow => "shadow",
            Mode::Apply => "apply",
            Mode::Paused => "paused",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ParseModeError;

    /// Exactly `shadow`, `apply` or `paused` (lowercase, no whitespace): a mode switch must never
    /// be guessed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| ParseModeError {
                value: s.to_owned(),
            })
    }
}

/// The whole `governor.toml`, after environment overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[governor]`: chain identity, epoch grid, mode, data directory.
    pub governor: GovernorConfig,
    /// `[chain]`: chain export and providers file locations, receipt rules.
    pub chain: ChainConfig,
    /// `[economics]`: control-law knobs.
    pub economics: EconomicsConfig,
    /// `[gates.*]`: gate streak rules and thresholds.
    pub gates: GatesConfig,
    /// `[rpc]`: JSON-RPC listener and limits.
    pub rpc: RpcConfig,
    /// `[signing]`: attestation signing key.
    pub signing: SigningConfig,
    /// `[apply]`: post-apply hook.
    pub apply: ApplyConfig,
    /// `[peers]`: other governors to compare decisions with.
    pub peers: PeersConfig,
}

/// The decision-relevant part of the config, exactly as hashed into `config_hash`.
#[derive(Serialize)]
struct DecisionRelevant<'a> {
    chain_id: &'a str,
    epoch_blocks: u64,
    genesis_height: u64,
    economics: &'a EconomicsConfig,
    gates: &'a GatesConfig,
    min_payment_micro: u64,
    proof_verification_budget_ms: u64,
    providers_blake3: &'a str,
}

impl Config {
    /// Loads the configuration: the TOML file at `path` (no path → all defaults), then the `TB_*`
    /// overrides looked up through `env` (a variable set to the empty string counts as unset),
    /// then validation.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (mut config, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let origin = path.display().to_string();
                (Self::parse(&text, &origin)?, origin)
            }
            None => (Config::default(), "defaults".to_owned()),
        };
        let overrides = env::apply_env(&mut config, &env)?;
        validate::validate(&config, &origin, &overrides)?;
        Ok(config)
    }

    /// [`Config::load`] with the process environment. A variable that is set but not valid
    /// Unicode is passed on lossily, so it fails validation instead of being ignored.
    pub fn load_from_process_env(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load(path, |var| {
            std::env::var_os(var).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Parses and validates TOML text without looking at the environment; `origin` names the
    /// text in errors (a file name, or a label in tests).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config = Self::parse(text, origin)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks every rule (ranges, band order, formats, signing key presence); errors name
    /// `origin` and the dotted key.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        validate::validate(self, origin, &Vec::new())
    }

    fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse {
            origin: origin.to_owned(),
            message: parse_error_message(text, &err),
        })
    }

    /// The mode these settings ask for: `!enabled` → paused, `shadow_only` → shadow, else apply.
    pub fn mode(&self) -> Mode {
        if !self.governor.enabled {
            Mode::Paused
        } else if self.governor.shadow_only {
            Mode::Shadow
        } else {
            Mode::Apply
        }
    }

    /// The JCS (RFC 8785) bytes of the decision-relevant object hashed by
    /// [`Config::config_hash`]: `chain_id`, `epoch_blocks`, `genesis_height`, `economics`,
    /// `gates`, `min_payment_micro`, `proof_verification_budget_ms` and `providers_blake3`
    /// (the caller's blake3 hex of the providers file). Paths, ports, mode, secrets and RPC
    /// settings are deliberately not part of it.
    pub fn decision_relevant_jcs(&self, providers_file_blake3_hex: &str) -> Vec<u8> {
        let view = DecisionRelevant {
            chain_id: &self.governor.chain_id,
            epoch_blocks: self.governor.epoch_blocks,
            genesis_height: self.governor.genesis_height,
            economics: &self.economics,
            gates: &self.gates,
            min_payment_micro: self.chain.min_payment_micro,
            proof_verification_budget_ms: self.chain.proof_verification_budget_ms,
            providers_blake3: providers_file_blake3_hex,
        };
        tb_canonical::to_vec(&view)
    }

    /// `config_hash` = lowercase hex of blake3(JCS(decision-relevant object)); see
    /// [`Config::decision_relevant_jcs`] for what it covers.
    pub fn config_hash(&self, providers_file_blake3_hex: &str) -> String {
        tb_canonical::hash_hex(&self.decision_relevant_jcs(providers_file_blake3_hex))
    }

    /// `replay_config_hash` = lowercase hex of blake3(JCS(the decision-relevant object without
    /// `gates`)): the settings snapshots depend on. Two nodes with equal replay hashes must
    /// compute equal snapshots from the same chain, whatever their gate thresholds.
    pub fn replay_config_hash(&self, providers_file_blake3_hex: &str) -> String {
        #[derive(Serialize)]
        struct ReplayRelevant<'a> {
            chain_id: &'a str,
            epoch_blocks: u64,
            genesis_height: u64,
            economics: &'a EconomicsConfig,
            min_payment_micro: u64,
            proof_verification_budget_ms: u64,
            providers_blake3: &'a str,
        }
        tb_canonical::hash(&ReplayRelevant {
            chain_id: &self.governor.chain_id,
            epoch_blocks: self.governor.epoch_blocks,
            genesis_height: self.governor.genesis_height,
            economics: &self.economics,
            min_payment_micro: self.chain.min_payment_micro,
            proof_verification_budget_ms: self.chain.proof_verification_budget_ms,
            providers_blake3: providers_file_blake3_hex,
        })
    }

    /// Dotted keys of the decision-relevant knobs that differ between `self` and `other`
    /// (empty when a reload may proceed mid-chain). The providers file is not part of `Config`;
    /// compare its hash separately.
    pub fn decision_relevant_diff(&self, other: &Config) -> Vec<String> {
        let mut diff = Vec::new();
        if self.governor.chain_id != other.governor.chain_id {
            diff.push("governor.chain_id".to_owned());
        }
        let scalars = [
            (
                "governor.epoch_blocks",
                self.governor.epoch_blocks,
                other.governor.epoch_blocks,
            ),
            (
                "governor.genesis_height",
                self.governor.genesis_height,
                other.governor.genesis_height,
            ),
            (
                "chain.min_payment_micro",
                self.chain.min_payment_micro,
                other.chain.min_payment_micro,
            ),
            (
                "chain.proof_verification_budget_ms",
                self.chain.proof_verification_budget_ms,
                other.chain.proof_verification_budget_ms,
            ),
        ];
        for (key, a, b) in scalars {
            if a != b {
                diff.push(key.to_owned());
            }
        }
        for ((key, a), (_, b)) in self
            .economics
            .knobs()
            .into_iter()
            .zip(other.economics.knobs())
        {
            if a != b {
                diff.push(format!("economics.{key}"));
            }
        }
        for ((key, a), (_, b)) in self.gates.knobs().into_iter().zip(other.gates.knobs()) {
            if a != b {
                diff.push(format!("gates.{key}"));
            }
        }
        diff
    }

    /// Whether the decision-relevant knobs of both configs are equal (same `config_hash` for the
    /// same providers file).
    pub fn decision_relevant_eq(&self, other: &Config) -> bool {
        self.decision_relevant_diff(other).is_empty()
    }
}

/// Key names whose values are secrets: a parse error on a line holding one is redacted.
const SECRET_KEYS: [&str; 3] = ["token", "tokens", "key_hex"];

/// A table whose every value is a secret: a parse error on any line inside it is redacted.
const SECRET_TABLE: &str = "[peers.tokens]";

/// toml's own message (line, column, snippet naming the key), unless the offending line assigns
/// a secret, in which case only the position is kept.
fn parse_error_message(text: &str, err: &toml::de::Error) -> String {
    let rendered = err.to_string().trim_end().to_owned();
    let position = err.span().and_then(|span| {
        let start = span.start.min(text.len());
        let before = text.get(..start)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line = text.get(line_start..line_end)?;
        let line_no = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        Some((line, line_no, column))
    });
    let secret = match position {
        Some((line, line_no, _)) => assigns_secret(line) || in_secret_table(text, line_no),
        None => ["`rpc.token`", "`signing.key_hex`", "`peers.tokens"]
            .iter()
            .any(|k| rendered.contains(k)),
    };
    if !secret {
        return rendered;
    }
    let at = match position {
        Some((_, line_no, column)) => format!(" at line {line_no}, column {column}"),
        None => String::new(),
    };
    format!(
        "TOML parse error{at}: the line holds a secret (`rpc.token`, `signing.key_hex` or \
         `peers.tokens`), so it is not shown; its value must be a quoted string and the key may \
         appear only once"
    )
}

/// Whether line `line_no` (from 1) of `text` lies inside the [`SECRET_TABLE`] section.
fn in_secret_table(text: &str, line_no: usize) -> bool {
    text.lines()
        .take(line_no)
        .filter(|l| l.trim_start().starts_with('['))
        .last()
        .is_some_and(|header| header.trim().replace(' ', "") == SECRET_TABLE)
}

/// Whether a TOML line assigns one of [`SECRET_KEYS`] (`token = …`, `"key_hex"=…`,
/// `rpc.token = …`, or inside an inline table).
fn assigns_secret(line: &str) -> bool {
    SECRET_KEYS.iter().any(|key| {
        line.match_indices(key).any(|(i, _)| {
            line[i + key.len()..]
                .trim_start_matches(['"', '\''])
                .trim_start()
                .starts_with('=')
        })
    })
}

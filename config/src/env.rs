//! `TB_*` environment overrides (docs/configuration.md, "Environment variables").

use crate::boolean::{parse_bool, BOOL_WORDS};
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::Config;
use std::path::PathBuf;

/// Every environment variable [`Config::load`] reads, in the order it applies them.
pub const ENV_VARS: [&str; 15] = [
    "TB_GOVERNOR_ENABLED",
    "TB_GOVERNOR_SHADOW_ONLY",
    "TB_GOVERNOR_SIGN",
    "TB_NODE_KEY_HEX",
    "TB_GOVERNOR_KEY_FILE",
    "TB_GOVERNOR_DATA_DIR",
    "TB_GOVERNOR_CHAIN_DIR",
    "TB_GOVERNOR_RPC_LISTEN",
    "TB_GOVERNOR_RPC_TOKEN",
    "TB_GOVERNOR_RPC_RPS",
    "TB_GOVERNOR_RPC_MAX_CONNECTIONS",
    "TB_TLS_HANDSHAKE_TIMEOUT_MS",
    "TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST",
    "TB_BLOCKTORCH_BENCHMARK_COMMIT",
    "TB_GOVERNOR_PEERS",
];

/// `(dotted key, variable)` for every knob an environment variable set, so validation errors can
/// name the variable instead of the file.
pub(crate) type Overrides = Vec<(&'static str, &'static str)>;

/// Applies every set (non-empty) `TB_*` variable to `config` and returns which keys they set.
pub(crate) fn apply_env(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Overrides, ConfigError> {
    let get = |var: &str| env(var).filter(|value| !value.is_empty());
    let mut overrides = Overrides::new();

    for (var, key, slot) in [
        (
            "TB_GOVERNOR_ENABLED",
            "governor.enabled",
            &mut config.governor.enabled,
        ),
        (
            "TB_GOVERNOR_SHADOW_ONLY",
            "governor.shadow_only",
            &mut config.governor.shadow_only,
        ),
        (
            "TB_GOVERNOR_SIGN",
            "signing.enabled",
            &mut config.signing.enabled,
        ),
    ] {
        if let Some(value) = get(var) {
            *slot = parse_bool(&value).ok_or_else(|| ConfigError::Env {
                var: var.to_owned(),
                message: format!(
                    "invalid boolean {}: expected one of {BOOL_WORDS}",
                    show(&value)
                ),
            })?;
            overrides.push((key, var));
        }
    }

    if let Some(value) = get("TB_NODE_KEY_HEX") {
        config.signing.key_hex = Some(Secret::new(value));
        overrides.push(("signing.key_hex", "TB_NODE_KEY_HEX"));
    }
    if let Some(value) = get("TB_GOVERNOR_KEY_FILE") {
        config.signing.key_file = Some(PathBuf::from(value));
        overrides.push(("signing.key_file", "TB_GOVERNOR_KEY_FILE"));
    }
    if let Some(value) = get("TB_GOVERNOR_DATA_DIR") {
        config.governor.data_dir = PathBuf::from(value);
        overrides.push(("governor.data_dir", "TB_GOVERNOR_DATA_DIR"));
    }
    if let Some(value) = get("TB_GOVERNOR_CHAIN_DIR") {
        config.chain.dir = PathBuf::from(value);
        overrides.push(("chain.dir", "TB_GOVERNOR_CHAIN_DIR"));
    }
    if let Some(value) = get("TB_GOVERNOR_RPC_LISTEN") {
        config.rpc.listen = value;
        overrides.push(("rpc.listen", "TB_GOVERNOR_RPC_LISTEN"));
    }
    if let Some(value) = get("TB_GOVERNOR_RPC_TOKEN") {
        config.rpc.token = Some(Secret::new(value));
        overrides.push(("rpc.token", "TB_GOVERNOR_RPC_TOKEN"));
    }
    for (var, key, slot) in [
        ("TB_GOVERNOR_RPC_RPS", "rpc.rps", &mut config.rpc.rps),
        (
            "TB_GOVERNOR_RPC_MAX_CONNECTIONS",
            "rpc.max_connections",
            &mut config.rpc.max_connections,
        ),
    ] {
        if let Some(value) = get(var) {
            *slot = parse_u32(&value).ok_or_else(|| ConfigError::Env {
                var: var.to_owned(),
                message: format!(
                    "invalid number {}: expected a decimal integer in 1..=4294967295",
                    show(&value)
                ),
            })?;
            overrides.push((key, var));
        }
    }
    if let Some(value) = get("TB_TLS_HANDSHAKE_TIMEOUT_MS") {
        let var = "TB_TLS_HANDSHAKE_TIMEOUT_MS";
        config.rpc.tls.handshake_timeout_ms =
            parse_u32(&value)
                .map(u64::from)
                .ok_or_else(|| ConfigError::Env {
                    var: var.to_owned(),
                    message: format!(
                    "invalid number {}: expected milliseconds, a decimal integer in 1..=4294967295",
                    show(&value)
                ),
                })?;
        overrides.push(("rpc.tls.handshake_timeout_ms", var));
    }
    if let Some(value) = get("TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST") {
        config.governor.blocktorch_kernel_digest = Some(value);
        overrides.push((
            "governor.blocktorch_kernel_digest",
            "TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST",
        ));
    }
    if let Some(value) = get("TB_BLOCKTORCH_BENCHMARK_COMMIT") {
        config.governor.blocktorch_benchmark_commit = Some(value);
        overrides.push((
            "governor.blocktorch_benchmark_commit",
            "TB_BLOCKTORCH_BENCHMARK_COMMIT",
        ));
    }
    if let Some(value) = get("TB_GOVERNOR_PEERS") {
        config.peers.urls = value
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        overrides.push(("peers.urls", "TB_GOVERNOR_PEERS"));
    }
    Ok(overrides)
}

/// A plain decimal `u32` (surrounding whitespace ignored; no sign, no fraction, no exponent).
fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A non-secret value quoted for an error message, cut short so a huge value can't flood a log.
pub(crate) fn show(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    if value.chars().count() > MAX_CHARS {
        let head: String = value.chars().take(MAX_CHARS).collect();
        format!("{head:?}…")
    } else {
        format!("{value:?}")
    }
}

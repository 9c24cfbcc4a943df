//! The non-numeric tables: `[governor]`, `[chain]`, `[rpc]` (with `[rpc.tls]`), `[signing]`,
//! `[apply]`, `[peers]`.

use crate::boolean::flexible_bool;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[governor]`: identity of the chain being governed, the epoch grid and the operating mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernorConfig {
    /// `false` pauses the governor: snapshots and decision files continue, gates are not judged
    /// (`TB_GOVERNOR_ENABLED`).
    #[serde(deserialize_with = "flexible_bool")]
    pub enabled: bool,
    /// `true` (the default) only records intents in `shadow_params`; `false` applies them
    /// (`TB_GOVERNOR_SHADOW_ONLY`).
    #[serde(deserialize_with = "flexible_bool")]
    pub shadow_only: bool,
    /// Where decisions, journal, checkpoint and runtime params live (`TB_GOVERNOR_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The chain's id, bound into every signed receipt message; must be an id (see
    /// [`crate::is_id`]). Decision-relevant.
    pub chain_id: String,
    /// Blocks per epoch (≥ 2). Decision-relevant.
    pub epoch_blocks: u64,
    /// Height of the first block of the export. Decision-relevant.
    pub genesis_height: u64,
    /// Status-only fallback for the BlockTorch kernel digest (64 lowercase hex) shown when no
    /// receipt has carried one yet (`TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST`).
    pub blocktorch_kernel_digest: Option<String>,
    /// Status-only fallback for the BlockTorch benchmark commit (an id) shown when no receipt
    /// has carried one yet (`TB_BLOCKTORCH_BENCHMARK_COMMIT`).
    pub blocktorch_benchmark_commit: Option<String>,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            shadow_only: true,
            data_dir: PathBuf::from("data"),
            chain_id: "tb-mainnet".to_owned(),
            epoch_blocks: 120,
            genesis_height: 0,
            blocktorch_kernel_digest: None,
            blocktorch_benchmark_commit: None,
        }
    }
}

/// `[chain]`: where the chain export and provider keys come from, and receipt rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Directory of `*.jsonl` block files (`TB_GOVERNOR_CHAIN_DIR`).
    pub dir: PathBuf,
    /// The providers file (ids and ed25519 keys); its blake3 is part of `config_hash`.
    pub providers: PathBuf,
    /// How often the daemon polls the chain directory for new lines, in ms (≥ 1).
    pub poll_ms: u64,
    /// Receipts paying less than this are rejected as `below_min_payment`. Decision-relevant.
    pub min_payment_micro: u64,
    /// Compute proof latency above this counts as an SLA violation. Decision-relevant.
    pub proof_verification_budget_ms: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("chain"),
            providers: PathBuf::from("providers.json"),
            poll_ms: 500,
            min_payment_micro: 1_000,
            proof_verification_budget_ms: 100,
        }
    }
}

/// `[rpc]`: the JSON-RPC / metrics listener and its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Socket address to listen on, `host:port` (`TB_GOVERNOR_RPC_LISTEN`).
    pub listen: String,
    /// Bearer token for mutating methods; without one they are refused
    /// (`TB_GOVERNOR_RPC_TOKEN`). Must not be empty when set.
    pub token: Option<Secret>,
    /// Per-client request limit per second (≥ 1, `TB_GOVERNOR_RPC_RPS`).
    pub rps: u32,
    /// Request bodies larger than this are refused (≥ 1).
    pub max_body_bytes: u32,
    /// Most HTTP connections open at once (≥ 1, `TB_GOVERNOR_RPC_MAX_CONNECTIONS`); one more is
    /// answered `503` and closed at once.
    pub max_connections: u32,
    /// Accept mutating methods over plain HTTP from a non-loopback address. Off, so that a bearer
    /// token is not sent across a network in clear text by mistake; TLS (`[rpc.tls]`) is the
    /// way to take mutations from another host.
    #[serde(deserialize_with = "flexible_bool")]
    pub allow_plain_remote_mutations: bool,
    /// `[rpc.tls]`: TLS on the listener; off while `cert` is unset.
    pub tls: RpcTlsConfig,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7878".to_owned(),
            token: None,
            rps: 50,
            max_body_bytes: 1_048_576,
            max_connections: 256,
            allow_plain_remote_mutations: false,
            tls: RpcTlsConfig::default(),
        }
    }
}

/// `[rpc.tls]`: with `cert` set the listener speaks only TLS (rustls). The certificate and key
/// files are read at start and again on `SIGHUP`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcTlsConfig {
    /// PEM certificate chain served to clients, leaf first; setting it turns TLS on.
    pub cert: Option<PathBuf>,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1); required with `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to (mutual TLS); unset accepts clients
    /// without certificates.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: `true` also accepts clients that present no certificate (one that is
    /// presented must still chain to `client_ca`).
    #[serde(deserialize_with = "flexible_bool")]
    pub client_cert_optional: bool,
    /// A connection that has not finished its handshake after this many ms is closed (≥ 1,
    /// `TB_TLS_HANDSHAKE_TIMEOUT_MS`), so a stalled client cannot hold a connection slot.
    pub handshake_timeout_ms: u64,
}

impl Default for RpcTlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            client_ca: None,
            client_cert_optional: false,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl RpcTlsConfig {
    /// Whether the listener speaks TLS (`cert` is set).
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }
}

/// `[signing]`: ed25519 attestation sidecars for decision files.
///
/// When enabled, exactly one of `key_hex` and `key_file` must be set; a missing or malformed key
/// is a startup error, never a silent no-op.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// Write an attestation sidecar for every decision file (`TB_GOVERNOR_SIGN`).
    #[serde(deserialize_with = "flexible_bool")]
    pub enabled: bool,
    /// The 32-byte ed25519 seed as 64 hex digits (`TB_NODE_KEY_HEX`).
    pub key_hex: Option<Secret>,
    /// A file holding the seed; the daemon requires mode 0600 (`TB_GOVERNOR_KEY_FILE`).
    pub key_file: Option<PathBuf>,
}

/// `[apply]`: what happens after apply mode writes `runtime/params.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplyConfig {
    /// Command run with the params file's path after each write; failures are logged, not fatal.
    pub hook: Option<PathBuf>,
    /// The hook is killed after this many ms (≥ 1).
    pub hook_timeout_ms: u64,
}

impl Default for ApplyConfig {
    fn default() -> Self {
        Self {
            hook: None,
            hook_timeout_ms: 5_000,
        }
    }
}

/// `[peers]`: other governors whose decisions this node compares with its own. Peers never
/// change this node's decisions; they are only compared. Not decision-relevant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeersConfig {
    /// The peers' JSON-RPC URLs, `http://host:port` or `https://host:port`
    /// (`TB_GOVERNOR_PEERS`, comma-separated).
    pub urls: Vec<String>,
    /// How often each peer is polled, in ms (≥ 100).
    pub poll_ms: u64,
    /// Time limit of one call to a peer, in ms (≥ 1); a slower peer is `unreachable`.
    pub timeout_ms: u64,
    /// Bearer tokens of the peers that need one, by URL (each must be one of `urls`).
    pub tokens: BTreeMap<String, Secret>,
    /// TLS settings of `https://` peers, by URL (each must be one of `urls`); an `https://` peer
    /// without an entry is verified against the system's root certificates.
    pub tls: BTreeMap<String, PeerTlsConfig>,
}

/// `[peers.tls."https://host:port"]`: how this node verifies one peer and proves itself to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerTlsConfig {
    /// PEM CA bundle the peer's certificate must chain to, instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain, for a peer that requires mutual TLS; needs `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// The name the peer's certificate must carry, when it differs from the URL's host (a peer
    /// reached by IP address whose certificate names a host, for instance).
    pub server_name: Option<String>,
}

impl Default for PeersConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            poll_ms: 5_000,
            timeout_ms: 2_000,
            tokens: BTreeMap::new(),
            tls: BTreeMap::new(),
        }
    }
}

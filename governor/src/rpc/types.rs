//! Result types of the RPC methods, shared by the daemon and `tb-cli`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tb_config::Mode;
use tb_replay::Snapshot;

use crate::engine::{GateRecord, Intent, Params};

/// `governor.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// False when paused (`TB_GOVERNOR_ENABLED=0` or `set_mode paused`).
    pub enabled: bool,
    /// The mode the journal currently asks for (in force from `mode_effective_epoch`).
    pub mode: Mode,
    /// Epoch from which `mode` applies.
    pub mode_effective_epoch: u64,
    /// Replay/gate logic version.
    pub rules_version: u64,
    /// Hash of the decision-relevant configuration.
    pub config_hash: String,
    /// Height of the last ingested block; null before the first.
    pub tip_height: Option<u64>,
    /// Last closed epoch; null before the first.
    pub last_closed_epoch: Option<u64>,
    /// Where ingestion stands, and why it is stalled if it is.
    pub ingest: Ingest,
    /// Every gate as the last decision recorded it, in gate order.
    pub gates: Vec<GateRecord>,
    /// Intents waiting for their epoch.
    pub pending_intents: Vec<Intent>,
    /// Hash of the last snapshot.
    pub last_economics_snapshot_hash: Option<String>,
    /// Headline figures of the last closed epoch.
    pub economics: Option<EconomicsSample>,
    /// Per-market utilization and margin of the last closed epoch, ppm (null = no data).
    pub telemetry_gauges_ppm: BTreeMap<String, Option<i64>>,
    /// Runtime params in force.
    pub params: Params,
    /// What the params would be if every activation had been applied.
    pub shadow_params: Params,
    /// The last decision and its attestation.
    pub release_provenance: Option<ReleaseProvenance>,
    /// Receipt verdict counters since genesis, with hints.
    pub receipt_health: ReceiptHealth,
    /// Compute proof (BlockTorch) timeline of the last closed epoch.
    pub blocktorch: Blocktorch,
    /// The last configuration reload's problem, if it was refused.
    pub config_reload_error: Option<String>,
    /// Hash of the settings snapshots depend on (`config_hash` without the gates), so a peer can
    /// tell whether snapshots must agree when configurations differ.
    #[serde(default)]
    pub replay_config_hash: String,
    /// How each configured peer's decisions compare with this node's, in configuration order.
    #[serde(default)]
    pub peers: Vec<PeerStatus>,
}

/// How a peer governor compares with this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Not polled yet.
    Pending,
    /// Every epoch both closed agrees (through `agreed_through`).
    Agree,
    /// It agrees as far as it goes, but its last closed epoch is `behind_by` lower.
    Behind,
    /// Its configuration differs: decisions may legitimately differ; snapshots are still
    /// compared while the replay settings agree.
    ConfigDiffers,
    /// An epoch's snapshot or decision differs under comparable configuration; sticky until an
    /// operator acknowledges it.
    Diverged,
    /// The last poll failed or its answer was not valid (`error` says which).
    Unreachable,
}

impl PeerState {
    /// The state as status prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Pending => "pending",
            PeerState::Agree => "agree",
            PeerState::Behind => "behind",
            PeerState::ConfigDiffers => "config differs",
            PeerState::Diverged => "diverged",
            PeerState::Unreachable => "unreachable",
        }
    }
}

/// One peer in `governor.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's JSON-RPC URL, as configured.
    pub url: String,
    /// How it compares now.
    pub state: PeerState,
    /// The last epoch both closed and found equal (snapshots only when configurations differ).
    pub agreed_through: Option<u64>,
    /// The peer's last closed epoch at its last successful poll.
    pub last_closed_epoch: Option<u64>,
    /// How many epochs the peer is behind this node.
    pub behind_by: Option<u64>,
    /// The peer's `config_hash` at its last successful poll.
    pub config_hash: Option<String>,
    /// Whether snapshots are still compared although configurations differ.
    pub snapshots_compared: bool,
    /// The first divergence found; it stays until acknowledged, also across restarts.
    pub divergence: Option<Divergence>,
    /// Why the last poll failed (unreachable only).
    pub error: Option<String>,
}

/// The first epoch at which a peer's hashes differ from this node's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The epoch.
    pub epoch: u64,
    /// Which hash differs (the snapshot's when both do).
    pub differs: crate::fleet::Differs,
    /// This node's hashes of the epoch.
    pub mine: crate::fleet::EpochHashes,
    /// The peer's hashes of the epoch.
    pub theirs: crate::fleet::EpochHashes,
    /// Dotted paths of the snapshot fields that differ (at most 32; empty when only the decision
    /// differs or the snapshots could not be fetched).
    pub fields: Vec<String>,
}

/// Ingestion progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingest {
    /// Chain file being read.
    pub file: String,
    /// Next line to read in it.
    pub line: u64,
    /// Why ingestion stopped (file:line: field: problem), or null while it flows.
    pub stall: Option<String>,
}

/// Headline economics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // snapshot field names
pub struct EconomicsSample {
    pub epoch: u64,
    pub tx_count: u64,
    pub tx_volume_micro: u64,
    pub treasury_inflow_micro: u64,
    pub unique_miners: u64,
    pub block_reward_per_block_micro: u64,
    pub reward_volatility_bps: u64,
    pub subsidy_share_bps: BTreeMap<String, i64>,
}

/// The last decision, as an auditor would check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseProvenance {
    /// Its epoch.
    pub epoch: u64,
    /// blake3 of the decision file.
    pub decision_hash: String,
    /// Its snapshot's hash.
    pub snapshot_hash: String,
    /// keyid of the sidecar, null when signing is off.
    pub attestation: Option<String>,
    /// The sidecar verified against this node's own key after writing.
    pub verified: bool,
    /// What to do about it.
    pub hint: String,
}

/// Receipt verdicts since genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptHealth {
    /// Accepted receipts per market and slash.
    pub accepted: BTreeMap<String, u64>,
    /// Rejected receipts per reason.
    pub rejected: BTreeMap<String, u64>,
    /// Receipts whose signature does not verify (`bad_signature`), since genesis.
    #[serde(default)]
    pub signature_mismatch_total: u64,
    /// Receipts rejected by validation (`below_min_payment`, `key_not_found`,
    /// `replayed_nonce`, `invalid_values`), since genesis.
    #[serde(default)]
    pub validation_failure_total: u64,
    /// Receipts that did not decode (`schema`), since genesis.
    #[serde(default)]
    pub decoding_failure_total: u64,
    /// Storage receipts in complete chain lines not yet ingested.
    #[serde(default)]
    pub pending_storage: u64,
    /// Compute receipts in complete chain lines not yet ingested.
    #[serde(default)]
    pub pending_compute: u64,
    /// Energy receipts in complete chain lines not yet ingested.
    #[serde(default)]
    pub pending_energy: u64,
    /// Receipts of every market in complete chain lines not yet ingested.
    #[serde(default)]
    pub drain_depth: u64,
    /// Suggestions when a counter looks wrong.
    pub hints: Vec<String>,
}

/// Compute proof telemetry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocktorch {
    /// Kernel variant digest (chain, else `TB_BLOCKTORCH_KERNEL_VARIANT_DIGEST`).
    pub kernel_digest: Option<String>,
    /// Benchmark commit (chain, else `TB_BLOCKTORCH_BENCHMARK_COMMIT`).
    pub benchmark_commit: Option<String>,
    /// p95 proof latency of the last closed epoch, ms.
    pub proof_latency_p95_ms: Option<u64>,
    /// Proof budget, ms.
    pub budget_ms: u64,
    /// blake3 of the epoch's proof records (the aggregator trace).
    pub aggregator_trace: Option<String>,
    /// `chain` when the values come from receipts, `env` for the fallbacks, `none`.
    pub source: String,
}

/// `governor.intents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentsResult {
    /// Newest first.
    pub intents: Vec<Intent>,
}

/// One line of `governor.decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionSummary {
    /// Epoch.
    pub epoch: u64,
    /// blake3 of the decision file.
    pub decision_hash: String,
    /// Its snapshot's hash.
    pub snapshot_hash: String,
    /// Mode of that close.
    pub mode: Mode,
    /// Ids of the intents created at that close.
    pub intents: Vec<String>,
    /// Whether a sidecar exists.
    pub attested: bool,
}

/// `governor.decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionsResult {
    /// Ascending by epoch.
    pub decisions: Vec<DecisionSummary>,
}

/// `governor.snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResult {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// blake3 of its JCS bytes.
    pub snapshot_hash: String,
    /// blake3 of the decision file that holds it.
    pub decision_hash: String,
    /// The sidecar, if any.
    pub attestation: Option<tb_decisions::Attestation>,
    /// `matches` (the sidecar verifies against this node's key), `mismatch` (it does not),
    /// `unchecked` (signed, but this node has no key to check it against) or `missing`.
    #[serde(default)]
    pub attestation_state: String,
    /// What the state means and, when the sidecar is missing, the command that adds it.
    #[serde(default)]
    pub attestation_hint: String,
}

/// What a journaled operator action got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalReceipt {
    /// Its journal seq.
    pub seq: u64,
    /// The epoch at whose close it takes effect.
    pub effective_epoch: u64,
}

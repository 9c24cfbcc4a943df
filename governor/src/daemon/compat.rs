//! The dialect of The Block's own `contract-cli governor status|intents`.
//!
//! That client POSTs `governor.status` with params `[]` and `governor.decisions` with params
//! `[limit]`, and reads its own shapes: a status with `epoch`, `window_secs`, `gates[]` with one
//! `streak_required`, `pending[]` intents with a `params_patch`, …, and for `governor.decisions`
//! a bare array of intents, newest first. Array params on these two methods select this dialect;
//! named params keep this product's own API. Its envelope also needs both `result` and `error`
//! members, which [`super::http`] adds for responses marked [`Dialect`].
//!
//! The mapping is documented in docs/rpc.md ("The Block's contract-cli").

use serde::Serialize;
use serde_json::{json, Value};
use tb_config::Mode;

use super::state::Shared;
use crate::engine::{Action, Gate, GateStatus, Intent, RULES_VERSION};
use crate::rpc::{Status, DEFAULT_LIMIT, MAX_LIMIT};
use jsonrpsee::types::ErrorObjectOwned;

/// The methods that accept the dialect (array params).
pub const DIALECT_METHODS: [&str; 2] = ["governor.status", "governor.decisions"];

/// Marks a JSON-RPC response to a dialect request (in the response's extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect;

/// `governor.status` in the client's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliStatus {
    /// False when paused.
    pub enabled: bool,
    /// The last closed epoch (0 before the first).
    pub epoch: u64,
    /// Chain time the last closed epoch spanned, seconds (0 before the first).
    pub window_secs: u64,
    /// Every gate, in gate order.
    pub gates: Vec<CliGate>,
    /// Intents waiting for their epoch.
    pub pending: Vec<CliIntent>,
    /// Headline figures of the last closed epoch; null before the first.
    pub economics_sample: Option<CliEconomics>,
    /// Utilization and margin per market with data, ppm.
    pub economics_prev_market_metrics: Vec<CliMarketMetric>,
    /// `params.economics_autopilot`.
    pub autopilot_enabled: bool,
    /// This product's `rules_version`.
    pub schema_version: u64,
    /// The last snapshot's hash.
    pub last_economics_snapshot_hash: Option<String>,
    /// Mode shadow.
    pub shadow_only: bool,
    /// The compute proof timeline; null when there is nothing to show.
    pub blocktorch: Option<CliBlocktorch>,
    /// Receipt verdicts and backlog.
    pub receipt_health: CliReceiptHealth,
    /// The last decision file and its attestation.
    pub release_provenance: Option<CliProvenance>,
}

/// A gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliGate {
    /// Gate name.
    pub name: String,
    /// `active` or `inactive`.
    pub state: String,
    /// Consecutive ok epochs while inactive.
    pub enter_streak: u64,
    /// Consecutive bad epochs while active.
    pub exit_streak: u64,
    /// The requirement of the streak that moves in this state.
    pub streak_required: u64,
    /// The last close's reason.
    pub last_reason: String,
}

/// An intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliIntent {
    /// Intent id.
    pub id: String,
    /// Gate name.
    pub gate: String,
    /// `enter` or `exit`.
    pub action: String,
    /// First epoch it governs.
    pub epoch_apply: u64,
    /// pending, applied, shadowed, superseded or cancelled.
    pub state: String,
    /// The params fields its activation sets.
    pub params_patch: Value,
    /// The gate's metrics when it was created.
    pub metrics: Value,
    /// Why.
    pub reason: String,
    /// The snapshot it was decided on.
    pub snapshot_hash_hex: String,
}

/// Headline economics, in the chain's integer units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliEconomics {
    /// Its epoch.
    pub epoch: u64,
    /// `tx_count`.
    pub epoch_tx_count: u64,
    /// `tx_volume_micro`.
    pub epoch_tx_volume: u64,
    /// `treasury_inflow_micro`.
    pub epoch_treasury_inflow: u64,
    /// `controls.block_reward_per_block_micro`.
    pub block_reward: u64,
    /// Markets with data.
    pub market_metrics: Vec<CliMarketMetric>,
}

/// One market's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliMarketMetric {
    /// Market name.
    pub market: String,
    /// ppm.
    pub utilization_ppm: i64,
    /// ppm.
    pub provider_margin_ppm: i64,
}

/// Compute proofs; absent members are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliBlocktorch {
    /// Kernel digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_digest: Option<String>,
    /// Benchmark commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benchmark_commit: Option<String>,
    /// p95 proof latency of the last closed epoch, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_latency_ms: Option<u64>,
    /// Aggregator trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator_trace: Option<String>,
    /// The proof latency budget, ms.
    pub proof_verification_budget_ms: u64,
}

/// Receipt health, only the members this chain format gives a meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliReceiptHealth {
    /// `bad_signature` rejections.
    pub signature_mismatch_total: u64,
    /// Validation rejections.
    pub validation_failure_total: u64,
    /// `schema` rejections.
    pub decoding_failure_total: u64,
    /// Pending storage receipts.
    pub pending_storage: u64,
    /// Pending compute receipts.
    pub pending_compute: u64,
    /// Pending energy receipts.
    pub pending_energy: u64,
    /// Every pending receipt.
    pub drain_depth: u64,
}

/// The last decision file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliProvenance {
    /// Its epoch.
    pub epoch: u64,
    /// blake3 of the decision file (what its attestation signs).
    pub snapshot_hash: Option<String>,
    /// Its sidecar, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<CliAttestation>,
}

/// A sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CliAttestation {
    /// The signer's public key.
    pub pubkey_hex: String,
    /// The sidecar's `payload_blake3`.
    pub payload_hash_hex: String,
    /// The signature when it verifies under `pubkey_hex` over the decision file, else empty.
    pub signature_hex: String,
}

fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        jsonrpsee::types::error::INVALID_PARAMS_CODE,
        msg.into(),
        None::<()>,
    )
}

/// Answers `method` called with the array `params` (raw JSON).
pub fn call(shared: &Shared, method: &str, params: &str) -> Result<Value, ErrorObjectOwned> {
    let args: Vec<Value> =
        serde_json::from_str(params).map_err(|e| invalid_params(format!("params: {e}")))?;
    match method {
        "governor.status" => {
            if !args.is_empty() {
                return Err(invalid_params("governor.status takes no params: send []"));
            }
            to_value(&status(shared))
        }
        "governor.decisions" => {
            let limit = match args.as_slice() {
                [] | [Value::Null] => DEFAULT_LIMIT,
                [v] => v
                    .as_u64()
                    .filter(|n| (1..=u64::from(MAX_LIMIT)).contains(n))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid_params(format!("limit must be an integer in 1..={MAX_LIMIT}"))
                    })?,
                _ => return Err(invalid_params("governor.decisions takes [limit]")),
            };
            to_value(&decisions(shared, limit as usize))
        }
        other => Err(invalid_params(format!(
            "{other} takes named params (a JSON object); positional (array) params are only \
             accepted by governor.status and governor.decisions"
        ))),
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, ErrorObjectOwned> {
    serde_json::to_value(v).map_err(|e| {
        ErrorObjectOwned::owned(
            jsonrpsee::types::error::INTERNAL_ERROR_CODE,
            e.to_string(),
            None::<()>,
        )
    })
}

/// The newest `limit` intents of every state, newest first.
pub fn decisions(shared: &Shared, limit: usize) -> Vec<CliIntent> {
    let view = shared.view();
    view.history
        .intents
        .iter()
        .rev()
        .take(limit)
        .map(intent)
        .collect()
}

/// The params fields activating an intent of `gate` with `action` sets. With the economics flag
/// on, the reward and the shares follow each close's control law (null while it is off).
pub fn params_patch(gate: Gate, action: Action) -> Value {
    let on = action == Action::Enter;
    let mode = if on { "trade" } else { "rehearsal" };
    match gate {
        Gate::Economics if on => json!({"economics_autopilot": true}),
        Gate::Economics => json!({
            "economics_autopilot": false,
            "block_reward_per_block_micro": null,
            "subsidy_share_bps": null
        }),
        Gate::Storage | Gate::Compute | Gate::Energy | Gate::Ad => {
            json!({"market_mode": {gate.as_str(): mode}})
        }
        Gate::AdContextual => json!({"ad_contextual_enabled": on}),
        Gate::AdPresence => json!({"ad_presence_enabled": on}),
        Gate::Operational => json!({"launch_operational": on}),
    }
}

fn intent(i: &Intent) -> CliIntent {
    CliIntent {
        id: i.id.clone(),
        gate: i.gate.as_str().to_owned(),
        action: i.action.as_str().to_owned(),
        epoch_apply: i.epoch_apply,
        state: i.state.as_str().to_owned(),
        params_patch: params_patch(i.gate, i.action),
        metrics: serde_json::to_value(&i.metrics).unwrap_or(Value::Null),
        reason: i.reason.clone(),
        snapshot_hash_hex: i.snapshot_hash.clone(),
    }
}

/// The status in the client's shape.
pub fn status(shared: &Shared) -> CliStatus {
    let s: Status = super::status::build(shared);
    let (window_secs, markets) = {
        let view = shared.view();
        let snap = view.last.as_ref().map(|l| &l.decision.snapshot);
        let window = snap.map_or(0, |s| {
            s.last_timestamp_ms.saturating_sub(s.first_timestamp_ms) / 1000
        });
        let markets: Vec<CliMarketMetric> = snap
            .map(|s| {
                ["storage", "compute", "energy", "ad"]
                    .iter()
                    .zip(s.markets.as_array())
                    .filter_map(|(name, m)| {
                        Some(CliMarketMetric {
                            market: (*name).to_owned(),
                            utilization_ppm: i64::try_from(m.utilization_ppm?).ok()?,
                            provider_margin_ppm: m.provider_margin_ppm?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        (window, markets)
    };
    let gates = s
        .gates
        .iter()
        .map(|g| CliGate {
            name: g.name.as_str().to_owned(),
            state: match g.state {
                GateStatus::Active => "active",
                GateStatus::Inactive => "inactive",
            }
            .to_owned(),
            enter_streak: g.enter_streak,
            exit_streak: g.exit_streak,
            streak_required: match g.state {
                GateStatus::Active => g.exit_streak_required,
                GateStatus::Inactive => g.enter_streak_required,
            },
            last_reason: g.reason.clone(),
        })
        .collect();
    let economics_sample = s.economics.as_ref().map(|e| CliEconomics {
        epoch: e.epoch,
        epoch_tx_count: e.tx_count,
        epoch_tx_volume: e.tx_volume_micro,
        epoch_treasury_inflow: e.treasury_inflow_micro,
        block_reward: e.block_reward_per_block_micro,
        market_metrics: markets.clone(),
    });
    let b = &s.blocktorch;
    let blocktorch = (b.kernel_digest.is_some()
        || b.benchmark_commit.is_some()
        || b.proof_latency_p95_ms.is_some()
        || b.aggregator_trace.is_some())
    .then(|| CliBlocktorch {
        kernel_digest: b.kernel_digest.clone(),
        benchmark_commit: b.benchmark_commit.clone(),
        proof_latency_ms: b.proof_latency_p95_ms,
        aggregator_trace: b.aggregator_trace.clone(),
        proof_verification_budget_ms: b.budget_ms,
    });
    let h = &s.receipt_health;
    let release_provenance = s.release_provenance.as_ref().map(|p| CliProvenance {
        epoch: p.epoch,
        snapshot_hash: Some(p.decision_hash.clone()),
        attestation: attestation(shared, p.epoch),
    });
    CliStatus {
        enabled: s.enabled,
        epoch: s.last_closed_epoch.unwrap_or(0),
        window_secs,
        gates,
        pending: s.pending_intents.iter().map(intent).collect(),
        economics_sample,
        economics_prev_market_metrics: markets,
        autopilot_enabled: s.params.economics_autopilot,
        schema_version: RULES_VERSION,
        last_economics_snapshot_hash: s.last_economics_snapshot_hash.clone(),
        shadow_only: s.mode == Mode::Shadow,
        blocktorch,
        receipt_health: CliReceiptHealth {
            signature_mismatch_total: h.signature_mismatch_total,
            validation_failure_total: h.validation_failure_total,
            decoding_failure_total: h.decoding_failure_total,
            pending_storage: h.pending_storage,
            pending_compute: h.pending_compute,
            pending_energy: h.pending_energy,
            drain_depth: h.drain_depth,
        },
        release_provenance,
    }
}

/// The sidecar of `epoch` as the client reads it; the signature is kept only when it verifies
/// under the sidecar's own public key over the decision file.
fn attestation(shared: &Shared, epoch: u64) -> Option<CliAttestation> {
    let sidecar = shared.node.decisions.read_sidecar(epoch).ok()??;
    let att: tb_decisions::Attestation = serde_json::from_slice(&sidecar).ok()?;
    let body = shared.node.decisions.read(epoch).ok()??;
    let own_key = tb_replay::decode::parse_hex::<32>(&att.public_key)
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok());
    let valid =
        own_key.is_some_and(|k| tb_decisions::verify::check_one(&body, &sidecar, &[k]).is_none());
    Some(CliAttestation {
        pubkey_hex: att.public_key,
        payload_hash_hex: att.payload_blake3,
        signature_hex: if valid { att.signature } else { String::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patch_names_a_params_field() {
        let fields = serde_json::to_value(crate::engine::Params::initial(1))
            .map(|v| v.as_object().cloned().unwrap_or_default())
            .unwrap_or_default();
        for gate in Gate::ALL {
            for action in [Action::Enter, Action::Exit] {
                let patch = params_patch(gate, action);
                let keys = patch.as_object().cloned().unwrap_or_default();
                assert!(!keys.is_empty(), "{gate} {action:?}");
                for (k, v) in keys {
                    assert!(fields.contains_key(&k), "{k} is not a params field");
                    if k == "market_mode" {
                        assert_eq!(
                            v[gate.as_str()],
                            if action == Action::Enter {
                                "trade"
                            } else {
                                "rehearsal"
                            }
                        );
                    }
                }
            }
        }
    }
}

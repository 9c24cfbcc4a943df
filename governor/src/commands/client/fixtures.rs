//! Daemon answers the client tests share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use tb_config::Mode;

use crate::engine::{Action, Gate, GateRecord, GateStatus, Intent, IntentState, Params};
use crate::rpc::{
    Blocktorch, EconomicsSample, Ingest, ReceiptHealth, ReleaseProvenance, SnapshotResult, Status,
};

/// A pending enter intent of `gate` created at `epoch`.
pub(super) fn intent(gate: Gate, epoch: u64) -> Intent {
    Intent {
        id: format!("{gate}-{epoch:08}-enter"),
        gate,
        action: Action::Enter,
        created_epoch: epoch,
        epoch_apply: epoch + 2,
        reason: "enter streak 3/3".to_owned(),
        metrics: BTreeMap::new(),
        snapshot_hash: format!("{:064x}", epoch),
        state: IntentState::Pending,
    }
}

/// A shadow-mode status after epoch 11.
pub(super) fn status() -> Status {
    Status {
        enabled: true,
        mode: Mode::Shadow,
        mode_effective_epoch: 0,
        rules_version: 1,
        config_hash: "c0ffee".to_owned(),
        tip_height: Some(1450),
        last_closed_epoch: Some(11),
        ingest: Ingest {
            file: "chain/000000.jsonl".to_owned(),
            line: 1451,
            stall: None,
        },
        gates: Gate::ALL
            .into_iter()
            .map(|name| GateRecord {
                name,
                state: GateStatus::Inactive,
                enter_streak: 2,
                exit_streak: 0,
                enter_streak_required: 3,
                exit_streak_required: 2,
                enter_ok: true,
                exit_bad: false,
                reason: format!("{name}: enter ok"),
                metrics: Default::default(),
            })
            .collect(),
        pending_intents: vec![intent(Gate::Compute, 11)],
        last_economics_snapshot_hash: Some("ab".repeat(32)),
        economics: Some(EconomicsSample {
            epoch: 11,
            tx_count: 1000,
            tx_volume_micro: 5_000_000,
            treasury_inflow_micro: 10_000,
            unique_miners: 7,
            block_reward_per_block_micro: 1_000_000,
            reward_volatility_bps: 12,
            subsidy_share_bps: BTreeMap::from([
                ("storage".to_owned(), 2500),
                ("compute".to_owned(), 2500),
            ]),
        }),
        telemetry_gauges_ppm: BTreeMap::from([
            ("compute.utilization".to_owned(), Some(600_000)),
            ("energy.utilization".to_owned(), None),
        ]),
        params: Params::initial(500),
        shadow_params: Params::initial(500),
        release_provenance: Some(ReleaseProvenance {
            epoch: 11,
            decision_hash: "de".repeat(32),
            snapshot_hash: "ab".repeat(32),
            attestation: None,
            verified: false,
            hint: "signing is off: set TB_GOVERNOR_SIGN=1".to_owned(),
        }),
        receipt_health: ReceiptHealth {
            accepted: BTreeMap::from([("storage".to_owned(), 10), ("compute".to_owned(), 5)]),
            rejected: BTreeMap::from([("bad_signature".to_owned(), 1)]),
            signature_mismatch_total: 1,
            validation_failure_total: 0,
            decoding_failure_total: 0,
            pending_storage: 3,
            pending_compute: 2,
            pending_energy: 1,
            drain_depth: 7,
            hints: vec![],
        },
        blocktorch: Blocktorch {
            kernel_digest: Some("kd".to_owned()),
            benchmark_commit: None,
            proof_latency_p95_ms: Some(120),
            budget_ms: 500,
            aggregator_trace: None,
            source: "chain".to_owned(),
        },
        config_reload_error: None,
        replay_config_hash: "cd".repeat(32),
        peers: vec![],
    }
}

/// The snapshot of epoch 3 of a small chain.
fn sample_snapshot() -> tb_replay::Snapshot {
    let market = serde_json::json!({
        "settlements": 1, "providers": 1, "units_delivered": 1, "units_offered": 2,
        "revenue_micro": 10, "cost_micro": 5, "slashed_micro": 0,
        "utilization_ppm": 500000, "provider_margin_ppm": 500000
    });
    let tier = serde_json::json!({
        "settlements": 0, "impressions": 0, "conversions": 0, "min_privacy_remaining_ppm": null
    });
    serde_json::from_value(serde_json::json!({
        "schema": "tb.economics.snapshot.v1", "chain_id": "tb-sim", "epoch": 3,
        "first_height": 360, "last_height": 479,
        "first_timestamp_ms": 1, "last_timestamp_ms": 2,
        "tx_count": 9, "tx_volume_micro": 90, "coinbase_micro": 1, "emitted_micro": 1,
        "treasury_inflow_micro": 3, "unique_miners": 2,
        "block_spacing": {"median_ms": 1000, "mad_ms": 10},
        "markets": {"storage": market, "compute": market, "energy": market, "ad": market},
        "compute_proofs": {
            "count": 0, "p50_ms": null, "p95_ms": null, "max_ms": null, "budget_ms": 500,
            "sla_violations": 0, "last_kernel_digest": null, "last_benchmark_commit": null,
            "trace_hash": null
        },
        "ad_tiers": {"contextual": tier, "presence": tier},
        "receipts": {
            "accepted": {"storage": 1, "compute": 1, "energy": 1, "ad": 1, "slash": 0},
            "rejected": {"schema": 0, "below_min_payment": 0, "key_not_found": 0,
                         "bad_signature": 0, "replayed_nonce": 0, "invalid_values": 0}
        },
        "controls": {
            "block_reward_per_block_micro": 1000, "reward_volatility_bps": 0,
            "activity_ppm": 0, "decentralization_ppm": 0, "decay_ppm": 0,
            "baseline_tx_count_milli": 0, "baseline_tx_volume_micro": 0,
            "baseline_miners_milli": 0,
            "subsidy_share_bps": {"storage": 2500, "compute": 2500, "energy": 2500, "ad": 2500}
        },
        "prev_snapshot_hash": null, "saturated": []
    }))
    .unwrap()
}

/// `governor.snapshot` of epoch 3, unsigned.
pub(super) fn snapshot_result() -> SnapshotResult {
    let snapshot = sample_snapshot();
    SnapshotResult {
        snapshot_hash: snapshot.hash(),
        snapshot,
        decision_hash: "de".repeat(32),
        attestation: None,
        attestation_state: "missing".to_owned(),
        attestation_hint: "epoch 3 has no attestation. Add it: tb-governor sign".to_owned(),
    }
}

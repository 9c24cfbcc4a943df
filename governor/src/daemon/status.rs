//! `governor.status`: the shared view turned into what an operator reads at 3 a.m.

use std::collections::BTreeMap;

use super::state::{LastClose, Shared, Unsigned};
use crate::engine::RULES_VERSION;
use crate::rpc::{Blocktorch, EconomicsSample, ReceiptHealth, ReleaseProvenance, Status};
use tb_config::Mode;
use tb_replay::backlog::ReceiptCounts;

/// Builds the status from the shared state.
pub fn build(shared: &Shared) -> Status {
    let j = shared.journal_summary();
    let (mode, mode_effective_epoch, last_closed) = (j.mode, j.mode_effective_epoch, j.last_closed);
    let view = shared.view();
    let last = view.last.as_ref();
    let snap = last.map(|l| &l.decision.snapshot);
    let gates = last.map(|l| l.decision.gates.clone()).unwrap_or_default();
    let economics = snap.map(economics_sample);
    let mut gauges = BTreeMap::new();
    if let Some(s) = snap {
        for (name, m) in ["storage", "compute", "energy", "ad"]
            .iter()
            .zip(s.markets.as_array())
        {
            let util = m
                .utilization_ppm
                .map(|u| i64::try_from(u).unwrap_or(i64::MAX));
            gauges.insert(format!("{name}.utilization_ppm"), util);
            gauges.insert(format!("{name}.provider_margin_ppm"), m.provider_margin_ppm);
        }
    }
    let release_provenance = last.map(|l| ReleaseProvenance {
        epoch: l.decision.epoch,
        decision_hash: l.decision_hash.clone(),
        snapshot_hash: l.decision.snapshot_hash.clone(),
        attestation: l.keyid.clone(),
        verified: l.verified,
        hint: provenance_hint(shared, l, &view.unsigned),
    });
    let receipt_health = receipt_health(
        &view.history.accepted,
        &view.history.rejected,
        &view.pending_receipts,
        view.ingest.stall.as_deref(),
    );
    let blocktorch = blocktorch(shared, snap);
    Status {
        enabled: mode != Mode::Paused,
        mode,
        mode_effective_epoch,
        rules_version: RULES_VERSION,
        config_hash: shared.node.config_hash.clone(),
        tip_height: view.tip_height,
        last_closed_epoch: last_closed,
        ingest: view.ingest.clone(),
        gates,
        pending_intents: view.pending.clone(),
        last_economics_snapshot_hash: last.map(|l| l.decision.snapshot_hash.clone()),
        economics,
        telemetry_gauges_ppm: gauges,
        params: view.params.clone(),
        shadow_params: view.shadow_params.clone(),
        release_provenance,
        receipt_health,
        blocktorch,
        config_reload_error: view.config_reload_error.clone(),
        replay_config_hash: shared.node.replay_config_hash.clone(),
        peers: view.peers.clone(),
    }
}

/// What to do about the latest decision's attestation, and about unsigned epochs left.
fn provenance_hint(shared: &Shared, l: &LastClose, unsigned: &Unsigned) -> String {
    let epoch = l.decision.epoch;
    let dir = shared.node.decisions.dir().display();
    let main = match (&l.keyid, l.verified) {
        (Some(k), true) => format!(
            "Attestation matches (epoch {epoch}, keyid {k}); auditors check it offline: \
             tb-cli governor verify --decisions {dir} --trusted-key {}",
            shared
                .node
                .public_key
                .as_deref()
                .unwrap_or("<node public key>")
        ),
        (Some(k), false) if shared.node.key.is_none() => format!(
            "epoch {epoch} is signed (keyid {k}) but signing is off here, so this node cannot \
             check it: auditors run tb-cli governor verify --decisions {dir} --trusted-key <key>"
        ),
        (Some(k), false) => format!(
            "the attestation of epoch {epoch} (keyid {k}) did not verify against this node's \
             key: check the key file"
        ),
        (None, _) if shared.node.key.is_none() => format!(
            "decisions are unsigned: set TB_GOVERNOR_SIGN=1 with TB_NODE_KEY_HEX or \
             TB_GOVERNOR_KEY_FILE and restart (unsigned decisions are signed at start), or sign \
             a copy offline: tb-governor sign --decisions {dir}"
        ),
        (None, _) => format!(
            "epoch {epoch} is unsigned although signing is on: {}",
            unsigned
                .reason
                .as_deref()
                .unwrap_or("restart the daemon: it signs unsigned decisions at start")
        ),
    };
    // The latest epoch is counted among the unsigned ones when it is unsigned itself.
    let others = unsigned.count.saturating_sub(u64::from(l.keyid.is_none()));
    if others == 0 {
        return main;
    }
    match unsigned.reason.as_deref() {
        Some(why) if !main.contains(why) => {
            format!("{main}; {others} other epochs are unsigned: {why}")
        }
        _ => format!("{main}; {others} other epochs are unsigned"),
    }
}

/// The headline economics of one snapshot, as `governor.status` shows them.
pub fn economics_sample(s: &tb_replay::Snapshot) -> EconomicsSample {
    EconomicsSample {
        epoch: s.epoch,
        tx_count: s.tx_count,
        tx_volume_micro: s.tx_volume_micro,
        treasury_inflow_micro: s.treasury_inflow_micro,
        unique_miners: s.unique_miners,
        block_reward_per_block_micro: s.controls.block_reward_per_block_micro,
        reward_volatility_bps: s.controls.reward_volatility_bps,
        subsidy_share_bps: ["storage", "compute", "energy", "ad"]
            .iter()
            .zip(s.controls.subsidy_share_bps.as_array())
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    }
}

fn receipt_health(
    accepted: &BTreeMap<String, u64>,
    rejected: &BTreeMap<String, u64>,
    pending: &ReceiptCounts,
    stall: Option<&str>,
) -> ReceiptHealth {
    let n = |k: &str| rejected.get(k).copied().unwrap_or(0);
    let mut hints = Vec::new();
    if n("bad_signature") > 0 {
        hints.push(format!(
            "{} receipts failed signature checks: check providers.json keys (a rotation?) and chain_id",
            n("bad_signature")
        ));
    }
    if n("key_not_found") > 0 {
        hints.push(format!(
            "{} receipts name a provider with no key valid at their height: update providers.json",
            n("key_not_found")
        ));
    }
    if n("replayed_nonce") > 0 {
        hints.push(format!(
            "{} receipts reused a nonce: a replay attempt or a provider that reset its counter",
            n("replayed_nonce")
        ));
    }
    if n("schema") > 0 {
        hints.push(format!(
            "{} receipts did not decode: check the exporter's tb.chain.v1 version",
            n("schema")
        ));
    }
    if n("below_min_payment") > 0 {
        hints.push(format!(
            "{} dust receipts below min_payment_micro",
            n("below_min_payment")
        ));
    }
    if n("invalid_values") > 0 {
        hints.push(format!(
            "{} receipts carried impossible values (zero units, conversions > impressions, …)",
            n("invalid_values")
        ));
    }
    let depth = pending.total();
    if depth > 0 {
        let what = format!(
            "{depth} receipts (storage {}, compute {}, energy {}) are in complete chain lines \
             not yet ingested",
            pending.storage, pending.compute, pending.energy
        );
        hints.push(match stall {
            Some(s) if super::state::is_halted(s) => {
                format!("{what}: ingestion is halted ({s}); fix the cause and restart the daemon")
            }
            Some(s) => format!(
                "{what}: they wait behind the stall at {s}; have the exporter rewrite that line \
                 and ingestion resumes by itself"
            ),
            None => format!(
                "{what}: the governor is catching up; they drain as blocks are applied \
                 (governor_tip_height climbs)"
            ),
        });
    }
    ReceiptHealth {
        accepted: accepted.clone(),
        rejected: rejected.clone(),
        signature_mismatch_total: n("bad_signature"),
        validation_failure_total: [
            "below_min_payment",
            "key_not_found",
            "replayed_nonce",
            "invalid_values",
        ]
        .iter()
        .fold(0u64, |sum, k| sum.saturating_add(n(k))),
        decoding_failure_total: n("schema"),
        pending_storage: pending.storage,
        pending_compute: pending.compute,
        pending_energy: pending.energy,
        drain_depth: depth,
        hints,
    }
}

fn blocktorch(shared: &Shared, snap: Option<&tb_replay::Snapshot>) -> Blocktorch {
    let proofs = snap.map(|s| &s.compute_proofs);
    let chain_digest = proofs.and_then(|p| p.last_kernel_digest.clone());
    let chain_commit = proofs.and_then(|p| p.last_benchmark_commit.clone());
    let source = if chain_digest.is_some() {
        "chain"
    } else if shared.node.blocktorch_env.0.is_some() || shared.node.blocktorch_env.1.is_some() {
        "env"
    } else {
        "none"
    };
    Blocktorch {
        kernel_digest: chain_digest.or_else(|| shared.node.blocktorch_env.0.clone()),
        benchmark_commit: chain_commit.or_else(|| shared.node.blocktorch_env.1.clone()),
        proof_latency_p95_ms: proofs.and_then(|p| p.p95_ms),
        budget_ms: shared.node.budget_ms,
        aggregator_trace: proofs.and_then(|p| p.trace_hash.clone()),
        source: source.to_owned(),
    }
}

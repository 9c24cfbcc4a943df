//! Shared helpers: replaying a chain directory through replay and engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tb_config::{Config, EconomicsConfig, GatesConfig};
use tb_governor::engine::{ClosedDecision, Engine, EngineConfig, JournalEvent};
use tb_replay::feed;
use tb_replay::{ChainReader, ClosedEpoch, Position, Registry, ReplayConfig, Replayer};

/// The vector directory shipped with tb-replay's tests.
pub(crate) fn vectors(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../replay/tests/vectors")
        .join(name)
}

/// Default replay settings for `chain_id`.
pub(crate) fn replay_config(chain_id: &str, epoch_blocks: u64) -> ReplayConfig {
    ReplayConfig {
        chain_id: chain_id.to_owned(),
        epoch_blocks,
        genesis_height: 0,
        min_payment_micro: 1_000,
        proof_verification_budget_ms: 100,
        economics: EconomicsConfig::default(),
        verify: true,
    }
}

/// Default engine settings.
pub(crate) fn engine_config(gates: GatesConfig) -> EngineConfig {
    EngineConfig {
        gates,
        proof_verification_budget_ms: Config::default().chain.proof_verification_budget_ms,
        config_hash: "test".to_owned(),
    }
}

/// Every closed epoch of the chain under `dir` (chain/ and providers.json).
pub(crate) fn snapshots(dir: &Path, cfg: ReplayConfig) -> Vec<ClosedEpoch> {
    let registry =
        Registry::from_json(&std::fs::read(dir.join("providers.json")).unwrap()).unwrap();
    let mut replayer = Replayer::new(cfg, Arc::new(registry));
    let mut reader = ChainReader::open(dir.join("chain"), Position::default());
    let mut out = Vec::new();
    loop {
        let step = feed::step(&mut reader, &mut replayer, 1 << 22).unwrap();
        out.extend(step.closed.into_iter().map(|(c, _)| c));
        if step.blocks == 0 {
            return out;
        }
    }
}

/// Runs the engine over `closed` with `journal`.
pub(crate) fn decide(
    closed: &[ClosedEpoch],
    cfg: EngineConfig,
    journal: &[JournalEvent],
) -> Vec<ClosedDecision> {
    let mut engine = Engine::new(cfg);
    closed
        .iter()
        .map(|c| engine.close_epoch(c, journal))
        .collect()
}

/// Every closed epoch of the `healthy` vector chain, replayed once per test binary.
pub(crate) fn healthy_vector() -> &'static [ClosedEpoch] {
    static CLOSED: std::sync::OnceLock<Vec<ClosedEpoch>> = std::sync::OnceLock::new();
    CLOSED.get_or_init(|| {
        let closed = snapshots(&vectors("healthy"), replay_config("vector-healthy", 120));
        assert!(
            closed.len() >= 3,
            "the healthy vector has at least 3 epochs"
        );
        closed
    })
}

/// A realistic snapshot on which every gate is `enter_ok` and none `exit_bad` (the healthy
/// vector's epoch 2), to be cloned and mutated.
pub(crate) fn base_snapshot() -> tb_replay::Snapshot {
    healthy_vector()[2].snapshot.clone()
}

/// The base snapshot relabelled as epoch `epoch` (heights moved along), with a made-up hash.
pub(crate) fn closed_at(epoch: u64) -> ClosedEpoch {
    let mut snapshot = base_snapshot();
    snapshot.epoch = epoch;
    snapshot.first_height = epoch * 120;
    snapshot.last_height = epoch * 120 + 119;
    ClosedEpoch {
        snapshot,
        canonical: Vec::new(),
        hash: format!("snapshot-{epoch}"),
    }
}

/// A verdict with no reasons or metrics, for [`Engine::close_judged`].
pub(crate) fn verdict(enter_ok: bool, exit_bad: bool) -> tb_governor::engine::Judgement {
    tb_governor::engine::Judgement {
        enter_ok,
        exit_bad,
        enter_fails: vec![],
        exit_reasons: vec![],
        metrics: Default::default(),
    }
}

/// Simulates `scenario` for `epochs` epochs (chain id `tb-sim`, default epoch length and seed)
/// into a temporary directory and replays it.
pub(crate) fn simulate(scenario: tb_replay::sim::Scenario, epochs: u64) -> Vec<ClosedEpoch> {
    let sim = tb_replay::sim::SimConfig {
        scenario,
        epochs,
        ..tb_replay::sim::SimConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    tb_replay::sim::write_to_dir(&sim, dir.path()).unwrap();
    let closed = snapshots(dir.path(), replay_config(&sim.chain_id, sim.epoch_blocks));
    assert_eq!(
        closed.len() as u64,
        epochs,
        "{scenario}: every epoch closed"
    );
    closed
}

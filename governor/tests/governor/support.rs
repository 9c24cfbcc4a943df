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

//! The replay pipeline: inputs resolved from a configuration, then chain → replay → engine.
//!
//! Shared by the daemon (which resolves its [`Inputs`] at start and on SIGHUP) and the offline
//! commands (`replay`, `audit`, `demo`, which also run the whole pipeline).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tb_config::{Config, Mode};
use tb_replay::feed;
use tb_replay::{ChainReader, ClosedEpoch, Position, Registry, ReplayConfig, Replayer};

use crate::engine::ClosedDecision;
use crate::engine::{Engine, EngineConfig, JournalEvent};
use crate::errln;

/// Bytes of complete lines read per step. Small enough that the pipeline fills and drains
/// quickly and at most five batches in flight stay a few MiB; large enough that a step's
/// decoding keeps every core busy.
const BATCH_BYTES: usize = 1 << 20;

/// Everything a replay needs, resolved from a validated configuration.
#[derive(Debug)]
pub struct Inputs {
    /// The full configuration after overrides.
    pub config: Config,
    /// Chain directory.
    pub chain_dir: PathBuf,
    /// Providers file path, for messages.
    pub providers_path: PathBuf,
    /// The parsed registry.
    pub registry: Arc<Registry>,
    /// blake3 of the providers file, part of `config_hash`.
    pub providers_blake3: String,
}

impl Inputs {
    /// Reads the providers file a validated configuration names.
    pub fn from_config(config: Config) -> Result<Inputs> {
        let providers_path = config.chain.providers.clone();
        let bytes = std::fs::read(&providers_path)
            .with_context(|| format!("reading providers file {}", providers_path.display()))?;
        let registry = Registry::from_json(&bytes)
            .with_context(|| format!("in {}", providers_path.display()))?;
        Ok(Inputs {
            chain_dir: config.chain.dir.clone(),
            providers_blake3: tb_canonical::hash_hex(&bytes),
            config,
            providers_path,
            registry: Arc::new(registry),
        })
    }

    /// `config_hash` of these inputs.
    pub fn config_hash(&self) -> String {
        self.config.config_hash(&self.providers_blake3)
    }

    /// `replay_config_hash` of these inputs: what their snapshots depend on.
    pub fn replay_config_hash(&self) -> String {
        self.config.replay_config_hash(&self.providers_blake3)
    }

    /// An engine before the first close for these inputs, starting in `mode`.
    pub fn engine(&self, mode: Mode) -> Engine {
        let mut engine = Engine::new(self.engine_config());
        engine.set_initial_mode(mode);
        engine
    }

    /// The engine settings of these inputs.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            gates: self.config.gates.clone(),
            proof_verification_budget_ms: self.config.chain.proof_verification_budget_ms,
            config_hash: self.config_hash(),
        }
    }

    /// A replayer at genesis for these inputs.
    pub fn replayer(&self, verify: bool) -> Replayer {
        let mut cfg = ReplayConfig::from_config(&self.config);
        cfg.verify = verify;
        Replayer::new(cfg, self.registry.clone())
    }
}

/// Replays the whole chain, calling `on_closed` for each closed epoch; returns the number of
/// blocks applied. A progress bar is drawn on stderr when it is a terminal.
pub fn replay_all(
    chain_dir: &Path,
    replayer: &mut Replayer,
    mut on_closed: impl FnMut(&ClosedEpoch) -> Result<()> + Send,
) -> Result<u64> {
    let mut reader = ChainReader::open(chain_dir, Position::default());
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} blocks replayed ({per_sec}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut blocks = 0u64;
    feed::run(&mut reader, replayer, BATCH_BYTES, |step| {
        for (closed, _) in &step.closed {
            bar.suspend(|| on_closed(closed))?;
        }
        blocks += step.blocks as u64;
        bar.set_position(blocks);
        if let Some(e) = step.read_error {
            return Err(anyhow::Error::new(e).context("reading the chain"));
        }
        if let Some(stall) = step.stall {
            return Err(anyhow::Error::new(stall).context(format!(
                "chain {} stops at a bad block (nothing after it was read)",
                chain_dir.display()
            )));
        }
        Ok(())
    })
    .inspect_err(|_| bar.finish_and_clear())?;
    bar.finish_and_clear();
    if reader.pending_bytes() > 0 {
        errln!(
            "note: {}:{}: unterminated last line ({} bytes) not read: a writer may be mid-line",
            reader.position().file,
            reader.position().line,
            reader.pending_bytes()
        );
    }
    Ok(blocks)
}

/// Replays the chain through replay and engine (the engine starting in `mode`, reading the
/// operator events of `journal`), calling `on_epoch` with each closed epoch and
/// its decision; returns the number of blocks applied.
pub fn replay_decisions(
    inputs: &Inputs,
    journal: &[JournalEvent],
    mode: Mode,
    verify: bool,
    mut on_epoch: impl FnMut(&ClosedEpoch, &ClosedDecision) -> Result<()> + Send,
) -> Result<u64> {
    let mut replayer = inputs.replayer(verify);
    let mut engine = inputs.engine(mode);
    replay_all(&inputs.chain_dir, &mut replayer, |closed| {
        let decision = engine.close_epoch(closed, journal);
        on_epoch(closed, &decision)
    })
}

//! Shared helpers: replay settings, a small simulated chain (built once) and its reference replay.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tb_config::EconomicsConfig;
use tb_replay::feed;
use tb_replay::sim::{self, Scenario, SimConfig};
use tb_replay::{
    Block, ChainReader, ClosedEpoch, Position, Registry, ReplayConfig, ReplayState, Replayer,
    Verdict,
};

/// Replay settings with every knob at its default.
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

/// A simulated chain held in memory.
pub(crate) struct SimChain {
    /// The replay settings matching the simulation.
    pub(crate) cfg: ReplayConfig,
    /// The providers of the simulation.
    pub(crate) registry: Arc<Registry>,
    /// The providers file text.
    pub(crate) providers_json: String,
    /// One block per line, without the `\n`.
    pub(crate) lines: Vec<Vec<u8>>,
}

impl SimChain {
    /// Generates the chain of `sim` in memory.
    pub(crate) fn generate(sim: &SimConfig) -> SimChain {
        let providers = sim::providers(sim);
        let providers_json = sim::providers_json(&providers);
        let registry = Registry::from_json(providers_json.as_bytes()).unwrap();
        let mut lines = Vec::new();
        sim::generate(sim, &providers, |_, line| {
            assert_eq!(line.last(), Some(&b'\n'));
            lines.push(line[..line.len() - 1].to_vec());
            Ok(())
        })
        .unwrap();
        let mut cfg = replay_config(&sim.chain_id, sim.epoch_blocks);
        cfg.genesis_height = sim.genesis_height;
        SimChain {
            cfg,
            registry: Arc::new(registry),
            providers_json,
            lines,
        }
    }

    /// A replayer at genesis for this chain.
    pub(crate) fn replayer(&self) -> Replayer {
        Replayer::new(self.cfg.clone(), self.registry.clone())
    }

    /// The lines `range` as file bytes (each with its `\n`).
    pub(crate) fn text(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines[range] {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }
}

/// The uninterrupted, block-by-block replay of a chain: the yardstick of every property.
pub(crate) struct Reference {
    /// Decoded blocks, in order.
    pub(crate) blocks: Vec<Block>,
    /// The verdicts of each block's receipts.
    pub(crate) verdicts: Vec<Vec<Verdict>>,
    /// `states[k]` = the checkpoint after the first `k` blocks (`k` in `0..=n`).
    pub(crate) states: Vec<ReplayState>,
    /// Every closed epoch, in order.
    pub(crate) closed: Vec<ClosedEpoch>,
}

impl Reference {
    /// Replays `chain` one block at a time.
    pub(crate) fn of(chain: &SimChain) -> Reference {
        let mut replayer = chain.replayer();
        let mut out = Reference {
            blocks: Vec::new(),
            verdicts: Vec::new(),
            states: vec![replayer.checkpoint()],
            closed: Vec::new(),
        };
        for line in &chain.lines {
            let block = replayer.decode(line).unwrap();
            out.closed.extend(replayer.push(&block).unwrap());
            out.verdicts.push(replayer.verdicts().to_vec());
            out.states.push(replayer.checkpoint());
            out.blocks.push(block);
        }
        out
    }

    /// The snapshot hashes, in epoch order.
    pub(crate) fn hashes(&self) -> Vec<String> {
        self.closed.iter().map(|c| c.hash.clone()).collect()
    }

    /// The checkpoint after the last block.
    pub(crate) fn final_state(&self) -> &ReplayState {
        self.states.last().unwrap()
    }
}

/// The small hostile chain of the property tests: 3 epochs of 12 blocks, every rejection reason
/// and slash receipts included.
pub(crate) fn small_chain() -> &'static (SimChain, Reference) {
    static CHAIN: OnceLock<(SimChain, Reference)> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let chain = SimChain::generate(&SimConfig {
            scenario: Scenario::Hostile,
            seed: 7,
            epochs: 3,
            epoch_blocks: 12,
            chain_id: "prop-chain".into(),
            genesis_height: 0,
        });
        let reference = Reference::of(&chain);
        assert_eq!(reference.closed.len(), 3);
        (chain, reference)
    })
}

/// Feeds `replayer` from `dir` with [`feed::step`] until nothing new is read; returns the closed
/// epochs. Panics on a read error or a stall.
pub(crate) fn feed_all(
    dir: &Path,
    start: Position,
    replayer: &mut Replayer,
    max_bytes: usize,
) -> Vec<ClosedEpoch> {
    let mut reader = ChainReader::open(dir, start);
    let mut closed = Vec::new();
    loop {
        let step = feed::step(&mut reader, replayer, max_bytes).unwrap();
        assert_eq!(step.stall, None);
        if step.blocks == 0 {
            assert!(step.closed.is_empty());
            return closed;
        }
        closed.extend(step.closed.into_iter().map(|(c, _)| c));
    }
}

/// The hashes of `closed`.
pub(crate) fn hashes(closed: &[ClosedEpoch]) -> Vec<String> {
    closed.iter().map(|c| c.hash.clone()).collect()
}

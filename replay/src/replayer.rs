//! The incremental replayer: blocks in, one snapshot per closed epoch out.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tb_config::{Config, EconomicsConfig};

use crate::block::{decode_block, Block, BlockError};
use crate::control::{self, ControlInputs, ControlState};
use crate::epoch::{EpochAcc, Saturation};
use crate::providers::Registry;
use crate::receipt::{Decoded, Reason, ReceiptContext};
use crate::snapshot::{Snapshot, SNAPSHOT_SCHEMA};

/// The decision-relevant settings of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Chain id, mixed into signatures and written into snapshots.
    pub chain_id: String,
    /// Blocks per epoch (≥ 2).
    pub epoch_blocks: u64,
    /// Height of the first block.
    pub genesis_height: u64,
    /// Receipts paying less are rejected as `below_min_payment`.
    pub min_payment_micro: u64,
    /// Proof latency above this is an SLA violation.
    pub proof_verification_budget_ms: u64,
    /// Control-law knobs and the treasury share.
    pub economics: EconomicsConfig,
    /// Check receipt signatures; off only for trusted exports (`--no-verify`), where check 4 is
    /// skipped and everything else is unchanged.
    pub verify: bool,
}

impl ReplayConfig {
    /// The replay part of a full configuration (signatures verified).
    pub fn from_config(cfg: &Config) -> Self {
        ReplayConfig {
            chain_id: cfg.governor.chain_id.clone(),
            epoch_blocks: cfg.governor.epoch_blocks,
            genesis_height: cfg.governor.genesis_height,
            min_payment_micro: cfg.chain.min_payment_micro,
            proof_verification_budget_ms: cfg.chain.proof_verification_budget_ms,
            economics: cfg.economics.clone(),
            verify: true,
        }
    }
}

/// The verdict on one receipt, in block order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: it counts in the metrics (a slash counts under `accepted.slash`).
    Accept,
    /// Rejected for this reason.
    Reject(Reason),
}

impl Verdict {
    /// `"accept"` or the reason's name, as in `verdicts.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject(r) => r.as_str(),
        }
    }
}

/// A closed epoch: the snapshot, its canonical bytes and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedEpoch {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Its JCS bytes, exactly what goes to disk.
    pub canonical: Vec<u8>,
    /// blake3 of `canonical`, lowercase hex.
    pub hash: String,
}

/// Everything the replayer carries between blocks. Serialised, it is the replay part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayState {
    /// Height the next block must have.
    next_height: u64,
    /// Timestamp of the previous block, for spacing and the non-decreasing rule.
    prev_timestamp_ms: Option<u64>,
    /// Coinbase since genesis, exact (snapshots show it clamped).
    emitted_micro: u128,
    /// Last accepted nonce per provider id (sorted, so the checkpoint is deterministic).
    nonces: BTreeMap<Box<str>, u64>,
    /// The open epoch, if its first block has arrived.
    open: Option<EpochAcc>,
    /// Control-law memory.
    control: ControlState,
    /// Hash of the last closed snapshot.
    prev_snapshot_hash: Option<String>,
}

/// Why a checkpoint cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The checkpoint names a provider the registry does not have.
    #[error("checkpoint names provider {0}, which is not in the providers file")]
    UnknownProvider(String),
}

/// Replays blocks in order into epoch snapshots.
///
/// Feed it blocks one at a time ([`Replayer::push`]) or in batches ([`Replayer::push_lines`]);
/// the result is the same either way, and the same for every thread count, because everything
/// done in parallel is a pure function of one line.
#[derive(Debug, Clone)]
pub struct Replayer {
    cfg: ReplayConfig,
    registry: Arc<Registry>,
    state: ReplayState,
    /// Last accepted nonce by registry index: the hot-path copy of `state.nonces`.
    nonces: Vec<Option<u64>>,
    /// Verdicts of the receipts of the last pushed block.
    verdicts: Vec<Verdict>,
}

/// What [`Replayer::push_lines`] did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Epochs closed by the batch, in order, each with the index of the line that closed it.
    pub closed: Vec<(usize, ClosedEpoch)>,
    /// How many lines were applied (all of them unless `error` is set).
    pub applied: usize,
    /// The first bad line's index in the batch and its error; nothing after it was applied.
    pub error: Option<(usize, BlockError)>,
}

/// Decodes lines into blocks with the checks that need no chain state (docs/formats.md,
/// "Validation order", checks 1–4): what a [`Replayer`] does in parallel. Cheap to clone and
/// safe to share between threads; the same line always decodes to the same result.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Provider keys, for signatures and `key_not_found`.
    registry: Arc<Registry>,
    /// Mixed into every signed message.
    chain_id: String,
    /// Receipts paying less are rejected.
    min_payment_micro: u64,
    /// Whether signatures are checked ([`ReplayConfig::verify`]).
    verify: bool,
}

impl Decoder {
    /// Decodes one line.
    pub fn decode(&self, line: &[u8]) -> Result<Block, BlockError> {
        let ctx = ReceiptContext {
            registry: &self.registry,
            chain_id: &self.chain_id,
            min_payment_micro: self.min_payment_micro,
            verify: self.verify,
        };
        decode_block(line, &ctx)
    }

    /// Decodes `lines` on all cores (rayon's pool), results in line order.
    pub fn decode_all<L: AsRef<[u8]> + Sync>(&self, lines: &[L]) -> Vec<Result<Block, BlockError>> {
        lines.par_iter().map(|l| self.decode(l.as_ref())).collect()
    }
}

impl Replayer {
    /// A replayer at genesis.
    pub fn new(cfg: ReplayConfig, registry: Arc<Registry>) -> Self {
        let state = ReplayState {
            next_height: cfg.genesis_height,
            prev_timestamp_ms: None,
            emitted_micro: 0,
            nonces: BTreeMap::new(),
            open: None,
            control: ControlState::new(&cfg.economics),
            prev_snapshot_hash: None,
        };
        let nonces = vec![None; registry.len()];
        Replayer {
            cfg,
            registry,
            state,
            nonces,
            verdicts: Vec::new(),
        }
    }

    /// Restores a replayer from [`Replayer::checkpoint`] output.
    pub fn restore(
        cfg: ReplayConfig,
        registry: Arc<Registry>,
        state: ReplayState,
    ) -> Result<Self, RestoreError> {
        let mut nonces = vec![None; registry.len()];
        for (id, n) in &state.nonces {
            let idx = registry
                .index_of(id)
                .ok_or_else(|| RestoreError::UnknownProvider(id.to_string()))?;
            nonces[idx as usize] = Some(*n);
        }
        Ok(Replayer {
            cfg,
            registry,
            state,
            nonces,
            verdicts: Vec::new(),
        })
    }

    /// The whole replay state, to be serialised into a checkpoint.
    pub fn checkpoint(&self) -> ReplayState {
        let mut state = self.state.clone();
        state.nonces = self
            .nonces
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let id = &self.registry.get(i as u32)?.id;
                n.map(|n| (id.clone(), n))
            })
            .collect();
        state
    }

    /// The settings this replayer runs with.
    pub fn config(&self) -> &ReplayConfig {
        &self.cfg
    }

    /// Height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.state.next_height
    }

    /// Hash of the last closed snapshot.
    pub fn last_snapshot_hash(&self) -> Option<&str> {
        self.state.prev_snapshot_hash.as_deref()
    }

    /// Verdicts on the receipts of the last block pushed.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// Decodes one line with the stateless checks. Pure; safe to call from any thread.
    pub fn decode(&self, line: &[u8]) -> Result<Block, BlockError> {
        self.decoder().decode(line)
    }

    /// The stateless half of this replayer, to decode lines on other threads while this one
    /// applies earlier ones.
    pub fn decoder(&self) -> Decoder {
        Decoder {
            registry: self.registry.clone(),
            chain_id: self.cfg.chain_id.clone(),
            min_payment_micro: self.cfg.min_payment_micro,
            verify: self.cfg.verify,
        }
    }

    /// Decodes `lines` on all cores, then applies them in order; stops at the first bad line.
    pub fn push_lines<L: AsRef<[u8]> + Sync>(&mut self, lines: &[L]) -> BatchOutcome {
        let decoded = self.decoder().decode_all(lines);
        self.apply(decoded)
    }

    /// Applies lines decoded by [`Decoder::decode_all`], in order; stops at the first bad one.
    pub fn apply(&mut self, decoded: Vec<Result<Block, BlockError>>) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        for (i, block) in decoded.into_iter().enumerate() {
            match block.and_then(|b| self.push(&b)) {
                Ok(closed) => {
                    out.applied += 1;
                    out.closed.extend(closed.map(|c| (i, c)));
                }
                Err(e) => {
                    out.error = Some((i, e));
                    break;
                }
            }
        }
        out
    }

    /// Applies one decoded block; returns the epoch it closes, if any. A block that breaks a
    /// chain rule changes nothing.
    pub fn push(&mut self, block: &Block) -> Result<Option<ClosedEpoch>, BlockError> {
        if block.height != self.state.next_height {
            return Err(BlockError::Height {
                expected: self.state.next_height,
                found: block.height,
            });
        }
        if let Some(previous) = self.state.prev_timestamp_ms {
            if block.timestamp_ms < previous {
                return Err(BlockError::Timestamp {
                    previous,
                    found: block.timestamp_ms,
                });
            }
        }
        let spacing = self.state.prev_timestamp_ms.map(|p| block.timestamp_ms - p);
        let acc = self.state.open.get_or_insert_with(|| EpochAcc::open(block));
        acc.add_block(block, spacing, self.cfg.economics.treasury_bps);
        self.verdicts.clear();
        for receipt in &block.receipts {
            let verdict = match receipt {
                Decoded::Rejected { reason, .. } => Verdict::Reject(*reason),
                Decoded::Slash {
                    invalid: Some(_), ..
                } => Verdict::Reject(Reason::InvalidValues),
                Decoded::Slash {
                    market,
                    amount_micro,
                    invalid: None,
                } => {
                    acc.slash(*market, *amount_micro);
                    Verdict::Accept
                }
                Decoded::Settlement(s) => {
                    let last = &mut self.nonces[s.provider as usize];
                    if last.is_some_and(|l| s.nonce <= l) {
                        Verdict::Reject(Reason::ReplayedNonce)
                    } else if s.invalid.is_some() {
                        Verdict::Reject(Reason::InvalidValues)
                    } else {
                        *last = Some(s.nonce);
                        acc.settle(s, self.cfg.proof_verification_budget_ms);
                        Verdict::Accept
                    }
                }
            };
            if let Verdict::Reject(reason) = verdict {
                acc.reject(reason);
            }
            self.verdicts.push(verdict);
        }
        self.state.emitted_micro += u128::from(block.coinbase_micro);
        self.state.prev_timestamp_ms = Some(block.timestamp_ms);
        self.state.next_height += 1;
        let offset = block.height - self.cfg.genesis_height;
        if (offset + 1).is_multiple_of(self.cfg.epoch_blocks.max(1)) {
            let acc = self.state.open.take().unwrap_or_default();
            return Ok(Some(self.close(acc, offset / self.cfg.epoch_blocks.max(1))));
        }
        Ok(None)
    }

    fn close(&mut self, acc: EpochAcc, epoch: u64) -> ClosedEpoch {
        let mut sat = Saturation(Default::default());
        let t = acc.totals(self.cfg.proof_verification_budget_ms, &mut sat);
        let emitted_micro = sat.u("emitted_micro", self.state.emitted_micro);
        let markets = t.markets.as_array();
        let inputs = ControlInputs {
            tx_count: t.tx_count,
            tx_volume_micro: t.tx_volume_micro,
            unique_miners: t.unique_miners,
            emitted_micro,
            utilization_ppm: markets.map(|m| m.utilization_ppm),
            provider_margin_ppm: markets.map(|m| m.provider_margin_ppm),
        };
        let controls = control::close(&mut self.state.control, &inputs, &self.cfg.economics);
        let snapshot = Snapshot {
            schema: SNAPSHOT_SCHEMA.to_owned(),
            chain_id: self.cfg.chain_id.clone(),
            epoch,
            first_height: acc.first_height,
            last_height: acc.last_height,
            first_timestamp_ms: acc.first_timestamp_ms,
            last_timestamp_ms: acc.last_timestamp_ms,
            tx_count: t.tx_count,
            tx_volume_micro: t.tx_volume_micro,
            coinbase_micro: t.coinbase_micro,
            emitted_micro,
            treasury_inflow_micro: t.treasury_inflow_micro,
            unique_miners: t.unique_miners,
            block_spacing: t.block_spacing,
            markets: t.markets,
            compute_proofs: t.compute_proofs,
            ad_tiers: t.ad_tiers,
            receipts: t.receipts,
            controls,
            prev_snapshot_hash: self.state.prev_snapshot_hash.take(),
            saturated: sat.0.into_iter().collect(),
        };
        let tb_canonical::Canonical { bytes, hash } = tb_canonical::Canonical::of(&snapshot);
        self.state.prev_snapshot_hash = Some(hash.clone());
        ClosedEpoch {
            snapshot,
            canonical: bytes,
            hash,
        }
    }
}

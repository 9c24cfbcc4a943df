//! What the ingest thread publishes and the RPC server reads.

use std::sync::{Mutex, RwLock};

use tb_config::{Mode, Secret};
use tb_decisions::RecordStore;

use super::files::{History, JournalFile};
use super::metrics::Metrics;
use crate::engine::{Decision, Intent, Params};
use crate::rpc::Ingest;
use tb_replay::backlog::ReceiptCounts;

/// How status's `ingest.stall` marks a halt (a write failure or a start-up problem that stops
/// ingestion until a restart), as opposed to a stall that clears by itself.
const HALTED: &str = "halted: ";

/// The stall text of a halt for `why`.
pub fn halted(why: &str) -> String {
    format!("{HALTED}{why}")
}

/// Whether the stall text `stall` is a halt.
pub fn is_halted(stall: &str) -> bool {
    stall.starts_with(HALTED)
}

/// The last close, as status shows it.
#[derive(Debug, Clone)]
pub struct LastClose {
    /// The decision (its snapshot included).
    pub decision: Decision,
    /// blake3 of the decision file.
    pub decision_hash: String,
    /// keyid of its sidecar, when signed.
    pub keyid: Option<String>,
    /// The sidecar verified against our own key right after writing.
    pub verified: bool,
}

/// The ingest's published view.
#[derive(Debug, Clone)]
pub struct View {
    /// Height of the last applied block.
    pub tip_height: Option<u64>,
    /// Reading position and stall.
    pub ingest: Ingest,
    /// The last close.
    pub last: Option<LastClose>,
    /// Intents waiting for their epoch.
    pub pending: Vec<Intent>,
    /// Every intent and the receipt counters.
    pub history: History,
    /// Runtime params in force.
    pub params: Params,
    /// Shadow params.
    pub shadow_params: Params,
    /// The last refused configuration reload.
    pub config_reload_error: Option<String>,
    /// Receipts in complete chain lines not yet ingested.
    pub pending_receipts: ReceiptCounts,
    /// Decision files on disk without an attestation sidecar.
    pub unsigned: Unsigned,
    /// Chart figures of the newest closed epochs, oldest first: kept at each close so the
    /// status page (which needs no token) never makes the daemon read decision files.
    pub recent: Recent,
}

/// The chart figures of at most [`HISTORY_EPOCHS`](super::page::HISTORY_EPOCHS) newest epochs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent(std::collections::VecDeque<super::page::Point>);

impl Recent {
    /// Adds the newest epoch's figures, dropping the oldest beyond the window.
    pub fn push(&mut self, point: super::page::Point) {
        let window = usize::try_from(super::page::HISTORY_EPOCHS).unwrap_or(usize::MAX);
        while self.0.len() >= window {
            self.0.pop_front();
        }
        self.0.push_back(point);
    }

    /// The figures, oldest first.
    pub fn points(&self) -> Vec<super::page::Point> {
        self.0.iter().cloned().collect()
    }
}

/// Decision files without an attestation sidecar, and why they stay that way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsigned {
    /// How many.
    pub count: u64,
    /// Why they are not signed (signing off, or the chain check that failed).
    pub reason: Option<String>,
}

/// What readers need from the journal, published by whoever holds the journal mutex, so that
/// status never waits behind a close (whose decision write holds the mutex through fsync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSummary {
    /// The mode the journal currently asks for.
    pub mode: Mode,
    /// Epoch from which it applies.
    pub mode_effective_epoch: u64,
    /// The last epoch decided on disk.
    pub last_closed: Option<u64>,
}

impl JournalSummary {
    /// The summary of `journal`.
    pub fn of(journal: &JournalFile) -> Self {
        let (mode, mode_effective_epoch) = journal.current_mode().unwrap_or((Mode::Shadow, 0));
        JournalSummary {
            mode,
            mode_effective_epoch,
            last_closed: journal.last_closed,
        }
    }
}

/// Settings SIGHUP may change without a restart.
#[derive(Debug, Clone)]
pub struct Live {
    /// Bearer token for mutating methods; none = they are refused.
    pub token: Option<Secret>,
    /// Requests per second per client.
    pub rps: u32,
}

/// State shared by the ingest thread, the RPC server and the signal handlers.
#[derive(Debug)]
pub struct Shared {
    /// `config_hash` in force.
    pub config_hash: String,
    /// Proof budget (status).
    pub budget_ms: u64,
    /// BlockTorch fallbacks from the environment (status only).
    pub blocktorch_env: (Option<String>, Option<String>),
    /// Decision files.
    pub decisions: RecordStore,
    /// This node's attestation public key (hex), when signing is on, for status hints.
    pub node_public_key: Option<String>,
    /// The same key, to check sidecars against.
    pub node_key: Option<ed25519_dalek::VerifyingKey>,
    /// The operator journal; held from consuming events to publishing an epoch as closed.
    pub journal: Mutex<JournalFile>,
    /// Mode and last closed epoch, for readers that must not wait on the journal mutex.
    pub journal_summary: RwLock<JournalSummary>,
    /// What status serves.
    pub view: RwLock<View>,
    /// Token and rate limit.
    pub live: RwLock<Live>,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

/// Locks a mutex even if a panicking thread poisoned it (the data is still consistent: every
/// writer replaces whole values).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Read access, poison-tolerant.
pub fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write access, poison-tolerant.
pub fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Republishes the journal summary; call while holding the journal mutex after a change.
    pub fn publish_journal(&self, journal: &JournalFile) {
        *write(&self.journal_summary) = JournalSummary::of(journal);
    }

    /// The published journal summary.
    pub fn journal_summary(&self) -> JournalSummary {
        *read(&self.journal_summary)
    }
}

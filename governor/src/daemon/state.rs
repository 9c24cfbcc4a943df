//! What the ingest thread publishes and the RPC server reads: [`Shared`] keeps the locks to
//! itself and offers one method per change, so every writer keeps the same invariants (the
//! journal summary follows the journal; metrics and view change together at a close).

use std::sync::{Mutex, RwLock, RwLockReadGuard};

use tb_config::{Mode, Secret};
use tb_decisions::RecordStore;

use super::files::{History, JournalFile};
use super::metrics::Metrics;
use crate::engine::{ClosedDecision, Decision, EngineState, Intent, Params};
use crate::rpc::Ingest;
use tb_replay::backlog::ReceiptCounts;
use tb_replay::{Position, Snapshot};

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
    /// How each configured peer compares, in configuration order (the peer poller writes it).
    pub peers: Vec<crate::rpc::PeerStatus>,
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

/// What this node is, fixed at start: read by everyone without a lock.
#[derive(Debug)]
pub struct Node {
    /// `config_hash` in force: status shows it, and a reload may not change it.
    pub config_hash: String,
    /// `replay_config_hash` in force: peers compare snapshots under it when configs differ.
    pub replay_config_hash: String,
    /// Proof budget, for status and the budget gauges.
    pub budget_ms: u64,
    /// BlockTorch fallbacks from the environment, shown by status when no proof was seen yet.
    pub blocktorch_env: (Option<String>, Option<String>),
    /// Decision files: RPC reads them, ingest writes them.
    pub decisions: RecordStore,
    /// This node's attestation public key (hex), when signing is on, for status hints.
    pub public_key: Option<String>,
    /// The same key, to check sidecars against when RPC shows an epoch's attestation.
    pub key: Option<ed25519_dalek::VerifyingKey>,
}

/// State shared by the ingest thread, the RPC server and the signal handlers.
#[derive(Debug)]
pub struct Shared {
    /// What never changes after start.
    pub node: Node,
    /// Prometheus metrics (internally synchronised).
    pub metrics: Metrics,
    /// The operator journal; held from consuming events to publishing an epoch as closed, so an
    /// operator event is always stamped with the first epoch not yet decided on disk.
    journal: Mutex<JournalFile>,
    /// Mode and last closed epoch, republished after every journal change, for readers that must
    /// not wait on the journal mutex (a close holds it through its fsyncs).
    journal_summary: RwLock<JournalSummary>,
    /// What status serves.
    view: RwLock<View>,
    /// Token and rate limit, which SIGHUP may change.
    live: RwLock<Live>,
}

/// Locks a mutex even if a panicking thread poisoned it. The one thread that may panic while
/// holding a lock is ingest, and its panic stops the daemon (exit 2); until then readers go on
/// serving what was last published.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Read access, poison-tolerant (see [`lock`]).
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write access, poison-tolerant (see [`lock`]).
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one close changes in the published state.
#[derive(Debug)]
pub struct Close<'a> {
    /// The closed epoch's snapshot.
    pub snapshot: &'a Snapshot,
    /// Its decision, bytes and hash.
    pub decision: ClosedDecision,
    /// The engine after the close: pending intents and params in force.
    pub engine: &'a EngineState,
    /// Where reading stands after the epoch's last block.
    pub position: &'a Position,
    /// keyid of the decision's sidecar, when signing is on.
    pub keyid: Option<String>,
    /// The sidecar verified against this node's key.
    pub verified: bool,
    /// The decision file is new (not one already on disk with the same bytes).
    pub written: bool,
}

impl Shared {
    /// The shared state at start.
    pub fn new(node: Node, metrics: Metrics, journal: JournalFile, view: View, live: Live) -> Self {
        Shared {
            node,
            metrics,
            journal_summary: RwLock::new(JournalSummary::of(&journal)),
            journal: Mutex::new(journal),
            view: RwLock::new(view),
            live: RwLock::new(live),
        }
    }

    /// Runs `change` on the journal, then republishes its summary. Blocks while a close holds
    /// the journal: call it off the async workers.
    pub fn with_journal<R>(&self, change: impl FnOnce(&mut JournalFile) -> R) -> R {
        let mut journal = lock(&self.journal);
        let out = change(&mut journal);
        *write(&self.journal_summary) = JournalSummary::of(&journal);
        out
    }

    /// The published journal summary.
    pub fn journal_summary(&self) -> JournalSummary {
        *read(&self.journal_summary)
    }

    /// What status serves, read-locked: hold it only to copy out what you need.
    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        read(&self.view)
    }

    /// Token and rate limit in force.
    pub fn live(&self) -> Live {
        read(&self.live).clone()
    }

    /// Replaces token and rate limit (SIGHUP).
    pub fn set_live(&self, live: Live) {
        *write(&self.live) = live;
    }

    /// Shows `stall` (or its end) at `position`, logging each time it starts, changes or clears.
    pub fn set_stall(&self, stall: Option<String>, position: &Position) {
        write(&self.view).set_stall(stall, position);
    }

    /// Shows a halt: ingestion stops for `why` until an operator fixes it and restarts.
    pub fn halt(&self, why: &str) {
        write(&self.view).ingest.stall = Some(halted(why));
    }

    /// Publishes the reading position, the tip and the stall, together.
    pub fn set_position(&self, tip: Option<u64>, position: &Position, stall: Option<String>) {
        if let Some(t) = tip {
            self.metrics.set_tip_height(t);
        }
        let mut view = write(&self.view);
        view.tip_height = tip;
        view.ingest.file.clone_from(&position.file);
        view.ingest.line = position.line;
        view.set_stall(stall, position);
    }

    /// Publishes the receipts waiting in the chain directory.
    pub fn set_pending_receipts(&self, pending: ReceiptCounts) {
        self.metrics.set_pending(&pending);
        write(&self.view).pending_receipts = pending;
    }

    /// Publishes a close. Metrics change under the view lock, so a reader holding it (`GET
    /// /wrappers`) sees the gauges and the snapshot hash of the same close.
    pub fn publish_close(&self, close: Close<'_>) {
        let Close {
            snapshot,
            decision,
            engine,
            position,
            keyid,
            verified,
            written,
        } = close;
        let mut view = write(&self.view);
        self.metrics.record_close(snapshot, &decision);
        self.metrics.set_tip_height(snapshot.last_height);
        if keyid.is_none() && written {
            view.unsigned.count += 1;
        }
        view.tip_height = Some(snapshot.last_height);
        view.recent.push(super::page::Point::of(snapshot));
        view.ingest.file.clone_from(&position.file);
        view.ingest.line = position.line;
        view.pending.clone_from(&engine.pending);
        view.params.clone_from(&engine.params);
        view.shadow_params.clone_from(&engine.shadow_params);
        view.history.record(&decision.decision, snapshot);
        view.last = Some(LastClose {
            decision: decision.decision,
            decision_hash: decision.hash,
            keyid,
            verified,
        });
    }

    /// Publishes what start-up signing found: the unsigned count and, when the last close's
    /// attestation changed, that close as it is now.
    pub fn set_signing(&self, unsigned: Unsigned, last: Option<LastClose>) {
        let mut view = write(&self.view);
        view.unsigned = unsigned;
        if last.is_some() {
            view.last = last;
        }
    }

    /// Publishes how peer `index` (in configuration order) compares now.
    pub fn set_peer(&self, index: usize, peer: crate::rpc::PeerStatus) {
        if let Some(slot) = write(&self.view).peers.get_mut(index) {
            *slot = peer;
        }
    }

    /// Shows the outcome of the last configuration reload (`None`: it succeeded).
    pub fn set_reload_error(&self, error: Option<String>) {
        write(&self.view).config_reload_error = error;
    }
}

impl View {
    fn set_stall(&mut self, stall: Option<String>, position: &Position) {
        if self.ingest.stall == stall {
            return;
        }
        match (&stall, &self.ingest.stall) {
            (Some(s), _) => tracing::warn!(
                file = %position.file,
                line = position.line,
                stall = %s,
                "ingest stalled"
            ),
            (None, Some(was)) => tracing::info!(
                file = %position.file,
                line = position.line,
                cleared = %was,
                "ingest resumed"
            ),
            (None, None) => {}
        }
        self.ingest.stall = stall;
    }
}

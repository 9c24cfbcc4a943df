//! The engine's records and state: what a close decides, and what the engine carries between closes.

use serde::{Deserialize, Serialize};
use tb_config::{GatesConfig, Mode, PerGate};
use tb_replay::Snapshot;

use super::gates::{Gate, Metrics};
use super::journal::JournalEvent;
use super::params::Params;

/// Whether a gate is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// Not (or no longer) entered.
    Inactive,
    /// Entered.
    Active,
}

/// What an intent asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Turn the gate's flag on (one epoch of notice).
    Enter,
    /// Turn it off (immediately).
    Exit,
}

impl Action {
    /// `enter` / `exit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enter => "enter",
            Action::Exit => "exit",
        }
    }
}

/// Lifecycle of an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentState {
    /// Waiting for `epoch_apply`.
    Pending,
    /// Activated in apply mode: the runtime params changed.
    Applied,
    /// Activated in shadow mode: only the shadow params changed.
    Shadowed,
    /// An Exit of the same gate came first.
    Superseded,
    /// Dropped because the governor was paused.
    Cancelled,
}

impl IntentState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentState::Pending => "pending",
            IntentState::Applied => "applied",
            IntentState::Shadowed => "shadowed",
            IntentState::Superseded => "superseded",
            IntentState::Cancelled => "cancelled",
        }
    }
}

/// An Enter or Exit decided at some epoch close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// `{gate}-{epoch:08}-{enter|exit}`, unique by construction.
    pub id: String,
    /// The gate concerned.
    pub gate: Gate,
    /// Enter or exit.
    pub action: Action,
    /// Epoch whose close created it.
    pub created_epoch: u64,
    /// First epoch it governs; it is activated at the close of `epoch_apply − 1`.
    pub epoch_apply: u64,
    /// Why (the streak, or the operator's words).
    pub reason: String,
    /// The gate's metrics when it was created.
    pub metrics: Metrics,
    /// The snapshot it was decided on.
    pub snapshot_hash: String,
    /// State at the end of the close that wrote it.
    pub state: IntentState,
}

/// A gate as recorded in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRecord {
    /// The gate.
    pub name: Gate,
    /// State after this close.
    pub state: GateStatus,
    /// Consecutive ok epochs while inactive.
    pub enter_streak: u64,
    /// Consecutive bad epochs while active.
    pub exit_streak: u64,
    /// Knob: ok epochs needed to enter.
    pub enter_streak_required: u64,
    /// Knob: bad epochs needed to exit.
    pub exit_streak_required: u64,
    /// Enter conditions held this epoch.
    pub enter_ok: bool,
    /// Some exit condition held this epoch.
    pub exit_bad: bool,
    /// Readable explanation (free text, not compared across implementations).
    pub reason: String,
    /// The values judged.
    pub metrics: Metrics,
}

/// An intent whose state changed during a close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// The intent.
    pub id: String,
    /// Its new state.
    pub outcome: IntentState,
}

/// The decision record of one closed epoch (docs/formats.md, "Decision file"); its JCS bytes are the decision file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // docs/formats.md, "Decision file", defines each field
pub struct Decision {
    pub schema: String,
    pub epoch: u64,
    pub first_height: u64,
    pub last_height: u64,
    pub mode: Mode,
    pub snapshot: Snapshot,
    pub snapshot_hash: String,
    pub gates: Vec<GateRecord>,
    pub intents: Vec<Intent>,
    pub activations: Vec<Activation>,
    pub reconciled: Vec<String>,
    pub journal: Vec<JournalEvent>,
    pub params: Params,
    pub shadow_params: Params,
    pub params_hash: String,
    pub config_hash: String,
    pub rules_version: u64,
    pub prev_decision_hash: Option<String>,
}

/// A decision with its file bytes and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedDecision {
    /// The record.
    pub decision: Decision,
    /// Its JCS bytes: the decision file.
    pub bytes: Vec<u8>,
    /// `decision_hash` = blake3(bytes), lowercase hex.
    pub hash: String,
}

/// One gate's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    /// Entered or not.
    pub state: GateStatus,
    /// Consecutive ok epochs while inactive.
    pub enter_streak: u64,
    /// Consecutive bad epochs while active.
    pub exit_streak: u64,
}

/// Everything the engine carries between closes; serialised, the engine part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineState {
    /// Per gate, in gate order.
    pub gates: PerGate<GateState>,
    /// Intents still pending, in creation order.
    pub pending: Vec<Intent>,
    /// Mode after the last consumed journal event (shadow before any).
    pub mode: Mode,
    /// Mode of the last close; reconciliation happens on the first apply close after another mode.
    pub last_close_mode: Option<Mode>,
    /// Journal events with a smaller seq have been consumed.
    pub next_journal_seq: u64,
    /// The previous epoch's treasury inflow (economics gate).
    pub prev_treasury_inflow: Option<u64>,
    /// Per-gate flags counting applied and reconciled activations (drive `params`).
    pub applied_flags: PerGate<bool>,
    /// Per-gate flags counting every activation (drive `shadow_params`).
    pub shadow_flags: PerGate<bool>,
    /// Runtime params after the last close.
    pub params: Params,
    /// Shadow params after the last close.
    pub shadow_params: Params,
    /// Hash of the last decision file.
    pub prev_decision_hash: Option<String>,
    /// Epoch of the last close.
    pub last_epoch: Option<u64>,
}

/// The decision-relevant settings of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Thresholds and streak knobs.
    pub gates: GatesConfig,
    /// Copied into params.
    pub proof_verification_budget_ms: u64,
    /// Recorded in every decision.
    pub config_hash: String,
}

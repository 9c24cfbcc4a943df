//! The gate engine (docs/gates.md): a pure function of (snapshot, previous state, journal, config).
//!
//! [`Engine::close_epoch`] takes a closed epoch's snapshot and the operator journal and returns
//! the decision record of that epoch, advancing the engine state. No I/O and no clock: the
//! daemon and the offline replay call exactly this code, which is what lets an auditor
//! reproduce every decision byte for byte.

pub mod gates;
pub mod journal;
pub mod params;

use serde::{Deserialize, Serialize};
use tb_config::{GatesConfig, Mode};
use tb_replay::{ClosedEpoch, Snapshot};

pub use gates::{Gate, Judgement, Metrics};
pub use journal::{EventKind, JournalEvent};
pub use params::{MarketMode, Params};

/// Schema tag of every decision file.
pub const DECISION_SCHEMA: &str = "tb.governor.decision.v1";

/// Bumped only when replay or gate logic changes the decisions for the same inputs.
pub const RULES_VERSION: u64 = 1;

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
    pub gates: Vec<GateState>,
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
    pub applied_flags: [bool; 8],
    /// Per-gate flags counting every activation (drive `shadow_params`).
    pub shadow_flags: [bool; 8],
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

/// The gate engine.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    state: EngineState,
}

impl Engine {
    /// An engine before the first close (shadow mode, every gate inactive).
    pub fn new(cfg: EngineConfig) -> Self {
        let budget = cfg.proof_verification_budget_ms;
        let state = EngineState {
            gates: vec![
                GateState {
                    state: GateStatus::Inactive,
                    enter_streak: 0,
                    exit_streak: 0,
                };
                8
            ],
            pending: Vec::new(),
            mode: Mode::Shadow,
            last_close_mode: None,
            next_journal_seq: 0,
            prev_treasury_inflow: None,
            applied_flags: [false; 8],
            shadow_flags: [false; 8],
            params: Params::initial(budget),
            shadow_params: Params::initial(budget),
            prev_decision_hash: None,
            last_epoch: None,
        };
        Engine { cfg, state }
    }

    /// Sets the mode in force before the journal's first event (default shadow). Only
    /// meaningful before the first close.
    pub fn set_initial_mode(&mut self, mode: Mode) {
        self.state.mode = mode;
    }

    /// An engine resumed from a checkpoint.
    pub fn restore(cfg: EngineConfig, state: EngineState) -> Self {
        Engine { cfg, state }
    }

    /// The state to checkpoint.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Closes one epoch. `journal` is the whole journal in seq order (or any prefix holding
    /// every event due now); the engine consumes, in seq order, the events not yet consumed up
    /// to the first whose `effective_epoch` is still in the future.
    pub fn close_epoch(
        &mut self,
        closed: &ClosedEpoch,
        journal: &[JournalEvent],
    ) -> ClosedDecision {
        let prev_inflow = self.state.prev_treasury_inflow;
        let judgements =
            Gate::ALL.map(|g| gates::judge(g, &closed.snapshot, prev_inflow, &self.cfg.gates));
        self.close_judged(closed, journal, judgements)
    }

    /// [`Engine::close_epoch`] with the gates' judgements given rather than computed from the
    /// snapshot: the seam that lets streak and intent rules be tested on any verdict sequence.
    pub fn close_judged(
        &mut self,
        closed: &ClosedEpoch,
        journal: &[JournalEvent],
        judgements: [Judgement; 8],
    ) -> ClosedDecision {
        let snap = &closed.snapshot;
        let e = snap.epoch;
        let st = &mut self.state;

        // 1. Journal events due at this close, before the gates.
        let mut consumed = Vec::new();
        let mut manual_exits: Vec<(Gate, String)> = Vec::new();
        let from = st.next_journal_seq;
        for ev in journal
            .iter()
            .filter(|ev| ev.seq >= from)
            .take_while(|ev| ev.effective_epoch <= e)
        {
            match (ev.kind, ev.mode, ev.gate.as_deref().map(str::parse::<Gate>)) {
                (EventKind::SetMode, Some(mode), _) => st.mode = mode,
                (EventKind::ManualExit, _, Some(Ok(gate))) => manual_exits.push((
                    gate,
                    format!("manual exit by {}: {}", ev.operator, ev.reason),
                )),
                _ => {} // recorded and ignored: a malformed event never changes state
            }
            st.next_journal_seq = ev.seq + 1;
            consumed.push(ev.clone());
        }
        let mode = st.mode;

        // 2. Gates, 3. intents.
        let mut records = Vec::with_capacity(8);
        let mut created: Vec<Intent> = Vec::new();
        let mut activations: Vec<(u64, usize, Action, Activation)> = Vec::new();
        for (gate, judgement) in Gate::ALL.into_iter().zip(judgements) {
            let knobs = self
                .cfg
                .gates
                .streaks()
                .get(gate.index())
                .map(|(_, s)| *s)
                .unwrap_or(tb_config::StreakConfig {
                    enter_streak_required: 3,
                    exit_streak_required: 2,
                    min_epochs: 2,
                });
            let g = &mut st.gates[gate.index()];
            let mut action = None;
            let reason;
            if mode == Mode::Paused {
                g.enter_streak = 0;
                g.exit_streak = 0;
                reason = format!("{gate}: paused, not judged");
            } else {
                let manual = manual_exits.iter().find(|(mg, _)| *mg == gate);
                match g.state {
                    GateStatus::Inactive => {
                        g.enter_streak = if judgement.enter_ok {
                            g.enter_streak + 1
                        } else {
                            0
                        };
                        reason = explain(gate, &judgement.enter_fails, "enter conditions hold");
                        if g.enter_streak >= knobs.enter_streak_required
                            && e + 1 >= knobs.min_epochs
                        {
                            action = Some((
                                Action::Enter,
                                format!("{gate}: {} consecutive healthy epochs", g.enter_streak),
                            ));
                        }
                    }
                    GateStatus::Active => {
                        g.exit_streak = if judgement.exit_bad {
                            g.exit_streak + 1
                        } else {
                            0
                        };
                        reason = explain(gate, &judgement.exit_reasons, "within exit bands");
                        if let Some((_, why)) = manual {
                            action = Some((Action::Exit, why.clone()));
                        } else if g.exit_streak >= knobs.exit_streak_required {
                            action = Some((
                                Action::Exit,
                                format!(
                                    "{gate}: {} consecutive bad epochs: {}",
                                    g.exit_streak,
                                    judgement.exit_reasons.join("; ")
                                ),
                            ));
                        }
                    }
                }
            }
            if let Some((act, why)) = action {
                g.state = match act {
                    Action::Enter => GateStatus::Active,
                    Action::Exit => GateStatus::Inactive,
                };
                g.enter_streak = 0;
                g.exit_streak = 0;
                let delay = match act {
                    Action::Enter => 1,
                    Action::Exit => 0,
                };
                created.push(Intent {
                    id: format!("{gate}-{e:08}-{}", act.as_str()),
                    gate,
                    action: act,
                    created_epoch: e,
                    epoch_apply: e + 1 + delay,
                    reason: why,
                    metrics: judgement.metrics.clone(),
                    snapshot_hash: closed.hash.clone(),
                    state: IntentState::Pending,
                });
            }
            records.push(GateRecord {
                name: gate,
                state: g.state,
                enter_streak: g.enter_streak,
                exit_streak: g.exit_streak,
                enter_streak_required: knobs.enter_streak_required,
                exit_streak_required: knobs.exit_streak_required,
                enter_ok: mode != Mode::Paused && judgement.enter_ok,
                exit_bad: mode != Mode::Paused && judgement.exit_bad,
                reason,
                metrics: judgement.metrics,
            });
        }

        // Supersede: an Exit created while the same gate's Enter is pending.
        let mut still_pending = Vec::with_capacity(st.pending.len());
        for mut intent in std::mem::take(&mut st.pending) {
            let exited = created
                .iter()
                .any(|c| c.gate == intent.gate && c.action == Action::Exit);
            if intent.action == Action::Enter && exited {
                intent.state = IntentState::Superseded;
                activations.push(activation(&intent));
            } else if mode == Mode::Paused {
                intent.state = IntentState::Cancelled;
                activations.push(activation(&intent));
            } else {
                still_pending.push(intent);
            }
        }
        let mut index_of_created = Vec::new();
        for (i, intent) in created.iter().enumerate() {
            still_pending.push(intent.clone());
            index_of_created.push((intent.id.clone(), i));
        }

        // Activation: every pending intent due by the next epoch.
        let outcome = match mode {
            Mode::Apply => IntentState::Applied,
            _ => IntentState::Shadowed,
        };
        let mut pending = Vec::with_capacity(still_pending.len());
        let mut due: Vec<Intent> = Vec::new();
        for intent in still_pending {
            if mode != Mode::Paused && intent.epoch_apply <= e + 1 {
                due.push(intent);
            } else {
                pending.push(intent);
            }
        }
        due.sort_by_key(|i| (i.epoch_apply, i.gate, i.action));
        for mut intent in due {
            intent.state = outcome;
            let on = intent.action == Action::Enter;
            st.shadow_flags[intent.gate.index()] = on;
            if outcome == IntentState::Applied {
                st.applied_flags[intent.gate.index()] = on;
            }
            if let Some((_, i)) = index_of_created.iter().find(|(id, _)| *id == intent.id) {
                created[*i].state = outcome;
            }
            activations.push(activation(&intent));
        }
        st.pending = pending;
        activations.sort_by_key(|(apply, gate, action, _)| (*apply, *gate, *action));

        // Params: frozen while paused; reconciled on the first apply close after another mode.
        let budget = self.cfg.proof_verification_budget_ms;
        let mut reconciled = Vec::new();
        if mode != Mode::Paused {
            let controls = &snap.controls;
            let mut params = Params::from_flags(&st.applied_flags, controls, budget);
            let shadow = Params::from_flags(&st.shadow_flags, controls, budget);
            if mode == Mode::Apply && st.last_close_mode != Some(Mode::Apply) {
                reconciled = params.changed_fields(&shadow);
                st.applied_flags = st.shadow_flags;
                params = shadow.clone();
            }
            st.params = params;
            st.shadow_params = shadow;
        }
        st.last_close_mode = Some(mode);
        st.prev_treasury_inflow = Some(snap.treasury_inflow_micro);
        st.last_epoch = Some(e);

        let decision = Decision {
            schema: DECISION_SCHEMA.to_owned(),
            epoch: e,
            first_height: snap.first_height,
            last_height: snap.last_height,
            mode,
            snapshot: snap.clone(),
            snapshot_hash: closed.hash.clone(),
            gates: records,
            intents: created,
            activations: activations.into_iter().map(|(_, _, _, a)| a).collect(),
            reconciled,
            journal: consumed,
            params_hash: st.params.hash(),
            params: st.params.clone(),
            shadow_params: st.shadow_params.clone(),
            config_hash: self.cfg.config_hash.clone(),
            rules_version: RULES_VERSION,
            prev_decision_hash: st.prev_decision_hash.clone(),
        };
        let tb_canonical::Canonical { bytes, hash } = tb_canonical::Canonical::of(&decision);
        st.prev_decision_hash = Some(hash.clone());
        ClosedDecision {
            decision,
            bytes,
            hash,
        }
    }
}

fn activation(intent: &Intent) -> (u64, usize, Action, Activation) {
    (
        intent.epoch_apply,
        intent.gate.index(),
        intent.action,
        Activation {
            id: intent.id.clone(),
            outcome: intent.state,
        },
    )
}

fn explain(gate: Gate, problems: &[String], ok: &str) -> String {
    if problems.is_empty() {
        format!("{gate}: {ok}")
    } else {
        format!("{gate}: {}", problems.join("; "))
    }
}

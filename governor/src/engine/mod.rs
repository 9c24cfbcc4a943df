//! The gate engine (docs/gates.md): a pure function of (snapshot, previous state, journal, config).
//!
//! [`Engine::close_epoch`] takes a closed epoch's snapshot and the operator journal and returns
//! the decision record of that epoch, advancing the engine state. No I/O and no clock: the
//! daemon and the offline replay call exactly this code, which is what lets an auditor
//! reproduce every decision byte for byte.

pub mod gates;
pub mod journal;
pub mod params;
mod types;

use tb_config::{Mode, PerGate, StreakConfig};
use tb_replay::snapshot::Controls;
use tb_replay::ClosedEpoch;

pub use gates::{Gate, Judgement, Metrics};
pub use journal::{EventKind, JournalEvent};
pub use params::{MarketMode, Params};
pub use types::{
    Action, Activation, ClosedDecision, Decision, EngineConfig, EngineState, GateRecord, GateState,
    GateStatus, Intent, IntentState,
};

/// Schema tag of every decision file.
pub const DECISION_SCHEMA: &str = "tb.governor.decision.v1";

/// Bumped only when replay or gate logic changes the decisions for the same inputs.
pub const RULES_VERSION: u64 = 1;

/// An activation with its sort key: `(epoch_apply, gate index, action)`.
type KeyedActivation = (u64, usize, Action, Activation);

/// The gate engine.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The settings every close is decided under.
    cfg: EngineConfig,
    /// What the engine carries from one close to the next (checkpointed).
    state: EngineState,
}

impl Engine {
    /// An engine before the first close (shadow mode, every gate inactive).
    pub fn new(cfg: EngineConfig) -> Self {
        let budget = cfg.proof_verification_budget_ms;
        let state = EngineState {
            gates: PerGate::from_fn(|_| GateState {
                state: GateStatus::Inactive,
                enter_streak: 0,
                exit_streak: 0,
            }),
            pending: Vec::new(),
            mode: Mode::Shadow,
            last_close_mode: None,
            next_journal_seq: 0,
            prev_treasury_inflow: None,
            applied_flags: PerGate::default(),
            shadow_flags: PerGate::default(),
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
            PerGate::from_fn(|g| gates::judge(g, &closed.snapshot, prev_inflow, &self.cfg.gates));
        self.close_judged(closed, journal, judgements)
    }

    /// [`Engine::close_epoch`] with the gates' judgements given rather than computed from the
    /// snapshot: the seam that lets streak and intent rules be tested on any verdict sequence.
    /// The steps are those of docs/gates.md, "One close, step by step".
    pub fn close_judged(
        &mut self,
        closed: &ClosedEpoch,
        journal: &[JournalEvent],
        judgements: PerGate<Judgement>,
    ) -> ClosedDecision {
        let snap = &closed.snapshot;
        let (consumed, manual_exits) = self.consume_journal(snap.epoch, journal);
        let mode = self.state.mode;
        let (gates, mut intents) = self.judge_gates(closed, mode, judgements, &manual_exits);
        let mut activations = self.supersede_pending(mode, &intents);
        activations.extend(self.activate_due(snap.epoch, mode, &mut intents));
        activations.sort_by_key(|(apply, gate, action, _)| (*apply, *gate, *action));
        let reconciled = self.update_params(mode, &snap.controls);
        self.record(Decision {
            schema: DECISION_SCHEMA.to_owned(),
            epoch: snap.epoch,
            first_height: snap.first_height,
            last_height: snap.last_height,
            mode,
            snapshot: snap.clone(),
            snapshot_hash: closed.hash.clone(),
            gates,
            intents,
            activations: activations.into_iter().map(|(_, _, _, a)| a).collect(),
            reconciled,
            journal: consumed,
            params_hash: self.state.params.hash(),
            params: self.state.params.clone(),
            shadow_params: self.state.shadow_params.clone(),
            config_hash: self.cfg.config_hash.clone(),
            rules_version: RULES_VERSION,
            prev_decision_hash: self.state.prev_decision_hash.clone(),
        })
    }

    /// Step 1, journal: consumes, in seq order, the events not yet consumed up to the first due
    /// after epoch `e`, and sets the mode. Returns them, and per gate the reason of its first
    /// manual exit among them.
    fn consume_journal(
        &mut self,
        e: u64,
        journal: &[JournalEvent],
    ) -> (Vec<JournalEvent>, PerGate<Option<String>>) {
        let st = &mut self.state;
        let mut consumed = Vec::new();
        let mut manual_exits = PerGate::<Option<String>>::default();
        let from = st.next_journal_seq;
        for ev in journal
            .iter()
            .filter(|ev| ev.seq >= from)
            .take_while(|ev| ev.effective_epoch <= e)
        {
            match &ev.kind {
                EventKind::SetMode { mode } => st.mode = *mode,
                EventKind::ManualExit { gate } => {
                    // A name that is no gate is recorded and changes nothing.
                    if let Ok(gate) = gate.parse::<Gate>() {
                        manual_exits[gate].get_or_insert_with(|| {
                            format!("manual exit by {}: {}", ev.operator, ev.reason)
                        });
                    }
                }
                // Not an input of the decision: one node's acknowledgement must not make its
                // decisions differ from its peers'.
                EventKind::AckPeer { .. } => {
                    st.next_journal_seq = ev.seq + 1;
                    continue;
                }
            }
            st.next_journal_seq = ev.seq + 1;
            consumed.push(ev.clone());
        }
        (consumed, manual_exits)
    }

    /// Steps 2 and 3, gates and intents: advances every gate's streaks on its judgement (none
    /// is judged while paused); a gate that enters or exits emits an intent. Returns the gate
    /// records and the new intents, both in gate order.
    fn judge_gates(
        &mut self,
        closed: &ClosedEpoch,
        mode: Mode,
        judgements: PerGate<Judgement>,
        manual_exits: &PerGate<Option<String>>,
    ) -> (Vec<GateRecord>, Vec<Intent>) {
        let e = closed.snapshot.epoch;
        let mut records = Vec::with_capacity(Gate::ALL.len());
        let mut created = Vec::new();
        for (gate, judgement) in judgements {
            let knobs = self.cfg.gates.streak(gate);
            let g = &mut self.state.gates[gate];
            let (action, reason) = if mode == Mode::Paused {
                g.enter_streak = 0;
                g.exit_streak = 0;
                (None, format!("{gate}: paused, not judged"))
            } else {
                advance(g, gate, &judgement, knobs, e, manual_exits[gate].as_deref())
            };
            if let Some((action, why)) = action {
                created.push(new_intent(closed, gate, action, why, &judgement.metrics));
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
        (records, created)
    }

    /// Step 3, continued: a pending Enter whose gate has just emitted an Exit is superseded,
    /// and while paused every pending intent is cancelled; the new intents join the pending
    /// ones. Returns the activations of the intents taken off.
    fn supersede_pending(&mut self, mode: Mode, created: &[Intent]) -> Vec<KeyedActivation> {
        let mut activations = Vec::new();
        let mut pending = Vec::with_capacity(self.state.pending.len() + created.len());
        for mut intent in std::mem::take(&mut self.state.pending) {
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
                pending.push(intent);
            }
        }
        pending.extend_from_slice(created);
        self.state.pending = pending;
        activations
    }

    /// Step 4, activation: every pending intent due by the next epoch (none while paused) is
    /// applied in apply mode, shadowed otherwise, in (epoch_apply, gate, action) order, and
    /// sets its gate's flags; an intent of this close in `created` records its outcome too.
    fn activate_due(&mut self, e: u64, mode: Mode, created: &mut [Intent]) -> Vec<KeyedActivation> {
        let st = &mut self.state;
        let outcome = match mode {
            Mode::Apply => IntentState::Applied,
            _ => IntentState::Shadowed,
        };
        let (mut due, pending): (Vec<Intent>, Vec<Intent>) = std::mem::take(&mut st.pending)
            .into_iter()
            .partition(|intent| mode != Mode::Paused && intent.epoch_apply <= e + 1);
        st.pending = pending;
        due.sort_by_key(|i| (i.epoch_apply, i.gate, i.action));
        let mut activations = Vec::with_capacity(due.len());
        for mut intent in due {
            intent.state = outcome;
            let on = intent.action == Action::Enter;
            st.shadow_flags[intent.gate] = on;
            if outcome == IntentState::Applied {
                st.applied_flags[intent.gate] = on;
            }
            if let Some(new) = created.iter_mut().find(|c| c.id == intent.id) {
                new.state = outcome;
            }
            activations.push(activation(&intent));
        }
        activations
    }

    /// Step 5, params: both sets follow their flags on this close's `controls`, frozen while
    /// paused. The first apply close after another mode sets `params` to `shadow_params`;
    /// returns the fields that reconciliation changed.
    fn update_params(&mut self, mode: Mode, controls: &Controls) -> Vec<String> {
        if mode == Mode::Paused {
            return Vec::new();
        }
        let st = &mut self.state;
        let budget = self.cfg.proof_verification_budget_ms;
        let mut params = Params::from_flags(&st.applied_flags, controls, budget);
        let shadow = Params::from_flags(&st.shadow_flags, controls, budget);
        let mut reconciled = Vec::new();
        if mode == Mode::Apply && st.last_close_mode != Some(Mode::Apply) {
            reconciled = params.changed_fields(&shadow);
            st.applied_flags = st.shadow_flags;
            params = shadow.clone();
        }
        st.params = params;
        st.shadow_params = shadow;
        reconciled
    }

    /// Step 6, decision: the record's file bytes and hash; the state remembers this close.
    fn record(&mut self, decision: Decision) -> ClosedDecision {
        let tb_canonical::Canonical { bytes, hash } = tb_canonical::Canonical::of(&decision);
        let st = &mut self.state;
        st.last_close_mode = Some(decision.mode);
        st.prev_treasury_inflow = Some(decision.snapshot.treasury_inflow_micro);
        st.last_epoch = Some(decision.epoch);
        st.prev_decision_hash = Some(hash.clone());
        ClosedDecision {
            decision,
            bytes,
            hash,
        }
    }
}

/// Step 2 for one gate, not paused: counts its streak on `judgement`; when the streak
/// completes (or, for an active gate, a manual exit is due) the gate enters or exits and both
/// streaks restart. Returns that action with its reason, and the gate's readable reason.
fn advance(
    g: &mut GateState,
    gate: Gate,
    judgement: &Judgement,
    knobs: StreakConfig,
    e: u64,
    manual_exit: Option<&str>,
) -> (Option<(Action, String)>, String) {
    let (action, reason) = match g.state {
        GateStatus::Inactive => {
            g.enter_streak = if judgement.enter_ok {
                g.enter_streak + 1
            } else {
                0
            };
            let reason = explain(gate, &judgement.enter_fails, "enter conditions hold");
            let enter = g.enter_streak >= knobs.enter_streak_required && e + 1 >= knobs.min_epochs;
            let why = || format!("{gate}: {} consecutive healthy epochs", g.enter_streak);
            (enter.then(|| (Action::Enter, why())), reason)
        }
        GateStatus::Active => {
            g.exit_streak = if judgement.exit_bad {
                g.exit_streak + 1
            } else {
                0
            };
            let reason = explain(gate, &judgement.exit_reasons, "within exit bands");
            let why = match manual_exit {
                Some(why) => Some(why.to_owned()),
                None => (g.exit_streak >= knobs.exit_streak_required).then(|| {
                    format!(
                        "{gate}: {} consecutive bad epochs: {}",
                        g.exit_streak,
                        judgement.exit_reasons.join("; ")
                    )
                }),
            };
            (why.map(|why| (Action::Exit, why)), reason)
        }
    };
    if let Some((action, _)) = &action {
        *g = GateState {
            state: match action {
                Action::Enter => GateStatus::Active,
                Action::Exit => GateStatus::Inactive,
            },
            enter_streak: 0,
            exit_streak: 0,
        };
    }
    (action, reason)
}

/// Step 3 for one gate: the intent it emits at the close of `closed`. An Enter applies after
/// one epoch of notice, an Exit from the next epoch.
fn new_intent(
    closed: &ClosedEpoch,
    gate: Gate,
    action: Action,
    reason: String,
    metrics: &Metrics,
) -> Intent {
    let e = closed.snapshot.epoch;
    let delay = match action {
        Action::Enter => 1,
        Action::Exit => 0,
    };
    Intent {
        id: format!("{gate}-{e:08}-{}", action.as_str()),
        gate,
        action,
        created_epoch: e,
        epoch_apply: e + 1 + delay,
        reason,
        metrics: metrics.clone(),
        snapshot_hash: closed.hash.clone(),
        state: IntentState::Pending,
    }
}

fn activation(intent: &Intent) -> KeyedActivation {
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

//! Modes, the operator journal and the decision record (docs/gates.md, docs/formats.md), as unit tests on
//! hand-written verdict sequences through `Engine::close_judged`.

use tb_config::{GatesConfig, Mode, StreakConfig};
use tb_governor::engine::journal::parse_journal;
use tb_governor::engine::{
    Action, Decision, Engine, EngineConfig, EngineState, EventKind, Gate, GateStatus, IntentState,
    JournalEvent, MarketMode, Params, DECISION_SCHEMA, RULES_VERSION,
};
use tb_replay::ClosedEpoch;

use crate::streaks::{config_with, judgements};
use crate::support::{closed_at, decide, engine_config, healthy_vector};

type Verdicts = [(bool, bool); 8];

const OK: (bool, bool) = (true, false);
const BAD: (bool, bool) = (false, true);
const MEH: (bool, bool) = (false, false);
const ALL_OK: Verdicts = [OK; 8];
const ALL_BAD: Verdicts = [BAD; 8];

/// `base` with `gate`'s verdict replaced.
fn with(mut base: Verdicts, gate: Gate, v: (bool, bool)) -> Verdicts {
    base[gate.index()] = v;
    base
}

/// An engine, its journal and the next epoch to close.
struct Harness {
    engine: Engine,
    journal: Vec<JournalEvent>,
    next: u64,
}

impl Harness {
    fn new(cfg: EngineConfig) -> Self {
        Harness {
            engine: Engine::new(cfg),
            journal: Vec::new(),
            next: 0,
        }
    }

    fn defaults() -> Self {
        Harness::new(engine_config(GatesConfig::default()))
    }

    /// Appends a journal event (next seq) and returns it.
    fn push(&mut self, effective_epoch: u64, kind: EventKind) -> JournalEvent {
        let ev = JournalEvent {
            seq: self.journal.len() as u64,
            effective_epoch,
            kind,
            reason: format!("reason {}", self.journal.len()),
            operator: "alice".to_owned(),
        };
        self.journal.push(ev.clone());
        ev
    }

    fn set_mode(&mut self, effective_epoch: u64, mode: &str) -> JournalEvent {
        let mode = mode.parse().unwrap();
        self.push(effective_epoch, EventKind::SetMode { mode })
    }

    fn manual_exit(&mut self, effective_epoch: u64, gate: &str) -> JournalEvent {
        let gate = gate.to_owned();
        self.push(effective_epoch, EventKind::ManualExit { gate })
    }

    /// Closes the next epoch (base snapshot) with these verdicts.
    fn close(&mut self, v: Verdicts) -> Decision {
        let closed = closed_at(self.next);
        self.close_on(&closed, v)
    }

    /// Closes the next epoch on `closed` (whose epoch must be the next one).
    fn close_on(&mut self, closed: &ClosedEpoch, v: Verdicts) -> Decision {
        assert_eq!(closed.snapshot.epoch, self.next);
        self.next += 1;
        self.engine
            .close_judged(closed, &self.journal, judgements(&v))
            .decision
    }

    /// Closes `n` epochs with the same verdicts; returns the last decision.
    fn close_n(&mut self, n: u64, v: Verdicts) -> Decision {
        let mut last = None;
        for _ in 0..n {
            last = Some(self.close(v));
        }
        last.unwrap()
    }
}

fn initial() -> Params {
    Params::initial(engine_config(GatesConfig::default()).proof_verification_budget_ms)
}

fn intent_ids(d: &Decision) -> Vec<String> {
    d.intents.iter().map(|i| i.id.clone()).collect()
}

fn activations(d: &Decision) -> Vec<(String, IntentState)> {
    d.activations
        .iter()
        .map(|a| (a.id.clone(), a.outcome))
        .collect()
}

/// `{gate}-{epoch:08}-{action}` for every gate, with `outcome`.
fn all(epoch: u64, action: &str, outcome: IntentState) -> Vec<(String, IntentState)> {
    Gate::ALL
        .iter()
        .map(|g| (format!("{g}-{epoch:08}-{action}"), outcome))
        .collect()
}

fn states(d: &Decision) -> Vec<(GateStatus, u64, u64)> {
    d.gates
        .iter()
        .map(|g| (g.state, g.enter_streak, g.exit_streak))
        .collect()
}

#[test]
fn set_mode_events_are_consumed_at_their_effective_epoch_before_the_gates() {
    let mut h = Harness::defaults();
    let paused = h.set_mode(0, "paused");
    let s1 = h.set_mode(1, "shadow");
    let a1 = h.set_mode(1, "apply");
    let s2 = h.set_mode(1, "shadow");
    let apply = h.set_mode(4, "apply");

    let d = h.close(ALL_OK);
    assert_eq!(d.journal, vec![paused]);
    assert_eq!(d.mode, Mode::Paused);
    // Paused before the gates: epoch 0 is not judged, so no streak.
    assert!(d.gates.iter().all(|g| g.enter_streak == 0));

    let d = h.close(ALL_OK);
    assert_eq!(d.journal, vec![s1, a1, s2]);
    assert_eq!(d.mode, Mode::Shadow, "the mode after the close's events");
    assert!(d.gates.iter().all(|g| g.enter_streak == 1));

    let d = h.close(ALL_OK);
    assert!(d.journal.is_empty(), "a future event is not consumed early");
    assert_eq!(d.mode, Mode::Shadow);
    let d = h.close(ALL_OK);
    assert!(d.journal.is_empty());
    assert_eq!(intent_ids(&d).len(), 8, "entered at the close of epoch 3");
    assert_eq!(d.params, initial());

    // Apply from epoch 4: the Enters activated at this close are applied, not shadowed.
    let d = h.close(ALL_OK);
    assert_eq!(d.journal, vec![apply]);
    assert_eq!(d.mode, Mode::Apply);
    assert_eq!(activations(&d), all(3, "enter", IntentState::Applied));
    assert!(d.params.economics_autopilot);
    assert_eq!(d.params, d.shadow_params);
    assert!(
        d.reconciled.is_empty(),
        "nothing to reconcile: {:?}",
        d.reconciled
    );
    assert_eq!(h.engine.state().next_journal_seq, 5);

    let d = h.close(ALL_OK);
    assert!(d.journal.is_empty(), "each event is consumed once");
    assert_eq!(d.mode, Mode::Apply);
}

#[test]
fn manual_exit_of_an_active_gate_exits_it_at_that_close() {
    let mut h = Harness::defaults();
    h.close_n(4, ALL_OK);
    let ev = h.manual_exit(4, "storage");
    let d = h.close(ALL_OK);
    assert_eq!(d.journal, vec![ev.clone()]);
    assert_eq!(intent_ids(&d), vec!["storage-00000004-exit"]);
    let exit = &d.intents[0];
    assert_eq!(exit.action, Action::Exit);
    assert_eq!((exit.created_epoch, exit.epoch_apply), (4, 5));
    assert_eq!(exit.state, IntentState::Shadowed);
    assert!(exit.reason.contains(&ev.reason), "{}", exit.reason);
    assert_eq!(
        activations(&d),
        vec![("storage-00000004-exit".to_owned(), IntentState::Shadowed)]
    );
    for g in &d.gates {
        let want = if g.name == Gate::Storage {
            GateStatus::Inactive
        } else {
            GateStatus::Active
        };
        assert_eq!((g.state, g.enter_streak, g.exit_streak), (want, 0, 0));
    }
    assert_eq!(d.shadow_params.market_mode.storage, MarketMode::Rehearsal);
    assert_eq!(d.shadow_params.market_mode.compute, MarketMode::Trade);
    assert_eq!(d.params, initial(), "shadow mode never moves params");

    // The gate is judged again from a zero streak.
    let d = h.close(ALL_OK);
    assert!(d.intents.is_empty());
    assert_eq!(d.gates[Gate::Storage.index()].enter_streak, 1);
}

#[test]
fn manual_exit_of_an_inactive_gate_is_recorded_and_ignored() {
    let mut h = Harness::defaults();
    h.close(ALL_OK);
    let ev = h.manual_exit(1, "storage");
    let unknown = h.manual_exit(1, "no_such_gate");
    let d = h.close(ALL_OK);
    assert_eq!(d.journal, vec![ev, unknown]);
    assert!(d.intents.is_empty());
    assert!(d.activations.is_empty());
    assert_eq!(
        states(&d)[Gate::Storage.index()],
        (GateStatus::Inactive, 2, 0),
        "the streak carries on"
    );
    // And storage enters with every other gate.
    let d = h.close(ALL_OK);
    assert_eq!(intent_ids(&d).len(), 8);
    assert!(intent_ids(&d).contains(&"storage-00000002-enter".to_owned()));
}

#[test]
fn manual_exit_while_the_enter_is_pending_supersedes_it() {
    let mut h = Harness::defaults();
    h.close_n(3, ALL_OK);
    h.manual_exit(3, "ad");
    let d = h.close(ALL_OK);
    assert_eq!(intent_ids(&d), vec!["ad-00000003-exit"]);
    let mut want = all(2, "enter", IntentState::Shadowed);
    want[Gate::Ad.index()].1 = IntentState::Superseded;
    want.insert(
        Gate::Ad.index() + 1,
        ("ad-00000003-exit".to_owned(), IntentState::Shadowed),
    );
    assert_eq!(activations(&d), want);
    assert_eq!(d.shadow_params.market_mode.ad, MarketMode::Rehearsal);
    assert_eq!(d.shadow_params.market_mode.energy, MarketMode::Trade);
    assert!(h.engine.state().pending.is_empty());
}

#[test]
fn an_exit_supersedes_the_pending_enter_of_the_same_gate() {
    let knobs = [StreakConfig {
        enter_streak_required: 3,
        exit_streak_required: 1,
        min_epochs: 2,
    }; 8];
    let mut h = Harness::new(config_with(&knobs));
    let d = h.close_n(3, ALL_OK);
    assert_eq!(intent_ids(&d).len(), 8);
    let d = h.close(with(ALL_OK, Gate::Storage, BAD));
    assert_eq!(intent_ids(&d), vec!["storage-00000003-exit"]);
    assert_eq!(d.intents[0].state, IntentState::Shadowed);
    assert_eq!(d.intents[0].epoch_apply, 4);
    let got = activations(&d);
    assert_eq!(
        got[..3].to_vec(),
        vec![
            ("economics-00000002-enter".to_owned(), IntentState::Shadowed),
            ("storage-00000002-enter".to_owned(), IntentState::Superseded),
            ("storage-00000003-exit".to_owned(), IntentState::Shadowed),
        ]
    );
    assert_eq!(got.len(), 9);
    assert_eq!(d.shadow_params.market_mode.storage, MarketMode::Rehearsal);
    assert!(d.shadow_params.economics_autopilot);
    assert_eq!(states(&d)[1], (GateStatus::Inactive, 0, 0));
}

#[test]
fn activations_are_ordered_by_gate_not_by_creation() {
    // ad_presence enters one close after the others; economics exits at the close where
    // ad_presence's Enter activates, so the economics Exit (created later) comes first.
    let mut h = Harness::defaults();
    h.close(with(ALL_OK, Gate::AdPresence, MEH));
    h.close_n(2, ALL_OK);
    let d = h.close(with(ALL_OK, Gate::Economics, BAD));
    assert_eq!(intent_ids(&d), vec!["ad_presence-00000003-enter"]);
    let d = h.close(with(ALL_OK, Gate::Economics, BAD));
    assert_eq!(intent_ids(&d), vec!["economics-00000004-exit"]);
    assert_eq!(
        activations(&d),
        vec![
            ("economics-00000004-exit".to_owned(), IntentState::Shadowed),
            (
                "ad_presence-00000003-enter".to_owned(),
                IntentState::Shadowed
            ),
        ]
    );
}

#[test]
fn activations_are_ordered_by_epoch_apply_first() {
    // A checkpointed state holding pending intents with different epoch_apply (e.g. from an
    // older rules version): the earlier epoch_apply is activated first whatever the gate.
    let mut h = Harness::defaults();
    let d = h.close_n(3, with(ALL_OK, Gate::Economics, MEH));
    assert_eq!(intent_ids(&d).len(), 7);
    let mut state: EngineState = h.engine.state().clone();
    let mut early = state.pending[6].clone();
    assert_eq!(early.gate, Gate::Operational);
    early.id = "operational-00000001-enter".to_owned();
    early.created_epoch = 1;
    early.epoch_apply = 3;
    state.pending[6] = early;
    let mut engine = Engine::restore(h.engine.config().clone(), state);
    let d = engine
        .close_judged(&closed_at(3), &[], judgements(&ALL_OK))
        .decision;
    let ids: Vec<String> = d.activations.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids[0], "operational-00000001-enter");
    assert_eq!(ids[1], "storage-00000002-enter");
    assert_eq!(ids[6], "ad_presence-00000002-enter");
    assert_eq!(ids.len(), 7);
}

#[test]
fn paused_cancels_pending_intents_and_keeps_gate_states() {
    let mut h = Harness::defaults();
    h.close_n(3, ALL_OK);
    let ev = h.set_mode(3, "paused");
    let d = h.close(ALL_OK);
    assert_eq!(d.journal, vec![ev]);
    assert_eq!(d.mode, Mode::Paused);
    assert!(d.intents.is_empty());
    assert_eq!(activations(&d), all(2, "enter", IntentState::Cancelled));
    assert_eq!(states(&d), vec![(GateStatus::Active, 0, 0); 8]);
    assert_eq!(d.params, initial());
    assert_eq!(
        d.shadow_params,
        initial(),
        "the cancelled Enters never activate"
    );
    assert!(h.engine.state().pending.is_empty());

    let d = h.close(ALL_BAD);
    assert!(d.intents.is_empty() && d.activations.is_empty());
    assert_eq!(states(&d), vec![(GateStatus::Active, 0, 0); 8]);

    // Resumed: judged from zero streaks; the gates are still active and exit after two bad
    // epochs (their flags were never set, so the params do not move).
    h.set_mode(5, "shadow");
    let d = h.close(ALL_BAD);
    assert_eq!(states(&d), vec![(GateStatus::Active, 0, 1); 8]);
    assert!(d.intents.is_empty());
    let d = h.close(ALL_BAD);
    assert_eq!(activations(&d), all(6, "exit", IntentState::Shadowed));
    assert_eq!(d.shadow_params, initial());
}

/// The base snapshot as epoch `epoch` with a different recommended reward.
fn closed_with_reward(epoch: u64, reward: u64) -> ClosedEpoch {
    let mut closed = closed_at(epoch);
    closed.snapshot.controls.block_reward_per_block_micro = reward;
    closed.snapshot.controls.subsidy_share_bps.storage += 1;
    closed.snapshot.controls.subsidy_share_bps.ad -= 1;
    closed
}

#[test]
fn paused_freezes_both_params_and_resume_restarts_streaks() {
    let mut h = Harness::new(config_with(
        &[StreakConfig {
            enter_streak_required: 3,
            exit_streak_required: 2,
            min_epochs: 2,
        }; 8],
    ));
    h.set_mode(0, "apply");
    // Operational is not ok until epoch 3; everything else enters at 2, applied at 3.
    h.close_n(3, with(ALL_OK, Gate::Operational, MEH));
    let d = h.close(ALL_OK);
    assert!(d.params.economics_autopilot);
    let reward = d.snapshot.controls.block_reward_per_block_micro;
    assert_eq!(d.params.block_reward_per_block_micro, Some(reward));
    // Epoch 4: economics bad once, operational ok twice.
    let before = h.close(with(ALL_OK, Gate::Economics, BAD));
    assert_eq!(before.gates[0].exit_streak, 1);
    assert_eq!(before.gates[7].enter_streak, 2);

    h.set_mode(5, "paused");
    for e in 5..7 {
        let d = h.close_on(
            &closed_with_reward(e, reward + 1_000 + e),
            with(ALL_BAD, Gate::Operational, OK),
        );
        assert_eq!(d.mode, Mode::Paused);
        assert_eq!(d.params, before.params, "params frozen at {e}");
        assert_eq!(
            d.shadow_params, before.shadow_params,
            "shadow frozen at {e}"
        );
        assert_eq!(d.params_hash, before.params.hash());
        assert!(d.intents.is_empty());
        assert_eq!(d.gates[0].state, GateStatus::Active);
        assert_eq!(d.gates[7].state, GateStatus::Inactive);
        assert!(d
            .gates
            .iter()
            .all(|g| g.enter_streak == 0 && g.exit_streak == 0));
    }

    h.set_mode(7, "apply");
    let new_reward = reward + 7_777;
    let d = h.close_on(
        &closed_with_reward(7, new_reward),
        with(with(ALL_OK, Gate::Economics, BAD), Gate::Operational, OK),
    );
    assert_eq!(d.mode, Mode::Apply);
    assert!(d.intents.is_empty(), "{:?}", intent_ids(&d));
    assert_eq!(d.gates[0].exit_streak, 1, "economics restarts from zero");
    assert_eq!(d.gates[7].enter_streak, 1, "operational restarts from zero");
    assert_eq!(d.params.block_reward_per_block_micro, Some(new_reward));
    assert!(d.reconciled.is_empty(), "{:?}", d.reconciled);

    let d = h.close(with(ALL_OK, Gate::Economics, BAD));
    assert_eq!(intent_ids(&d), vec!["economics-00000008-exit"]);
    assert_eq!(d.intents[0].state, IntentState::Applied);
    assert!(!d.params.economics_autopilot);
    assert_eq!(d.params.block_reward_per_block_micro, None);
    let d = h.close(ALL_OK);
    assert_eq!(intent_ids(&d), vec!["operational-00000009-enter"]);
}

#[test]
fn first_apply_close_after_shadow_reconciles_once() {
    let mut h = Harness::defaults();
    let some = {
        let mut v = [MEH; 8];
        v[Gate::Economics.index()] = OK;
        v[Gate::Storage.index()] = OK;
        v
    };
    let d = h.close_n(4, some);
    assert_eq!(d.mode, Mode::Shadow);
    assert_eq!(d.params, initial());
    assert!(d.shadow_params.economics_autopilot);

    h.set_mode(4, "apply");
    let d = h.close(some);
    assert_eq!(d.mode, Mode::Apply);
    assert_eq!(
        d.reconciled,
        vec![
            "block_reward_per_block_micro",
            "economics_autopilot",
            "market_mode.storage",
            "subsidy_share_bps",
        ]
    );
    assert_eq!(d.params, d.shadow_params);
    assert_eq!(d.params_hash, d.shadow_params.hash());
    assert_eq!(d.params.market_mode.storage, MarketMode::Trade);
    assert_eq!(d.params.market_mode.compute, MarketMode::Rehearsal);
    assert!(
        d.activations.is_empty(),
        "reconciliation is not an activation"
    );

    let d = h.close(some);
    assert!(d.reconciled.is_empty(), "{:?}", d.reconciled);
    assert_eq!(d.params, d.shadow_params);

    // Back to shadow: economics exits there (shadow params only) ...
    h.set_mode(6, "shadow");
    h.close(with(some, Gate::Economics, BAD));
    let d = h.close(with(some, Gate::Economics, BAD));
    assert_eq!(intent_ids(&d), vec!["economics-00000007-exit"]);
    assert_eq!(d.intents[0].state, IntentState::Shadowed);
    assert!(d.params.economics_autopilot);
    assert!(!d.shadow_params.economics_autopilot);
    // ... and the next first apply close reconciles again.
    h.set_mode(8, "apply");
    let d = h.close(some);
    assert_eq!(
        d.reconciled,
        vec![
            "block_reward_per_block_micro",
            "economics_autopilot",
            "subsidy_share_bps",
        ]
    );
    assert_eq!(d.params, d.shadow_params);
    assert!(!d.params.economics_autopilot);
}

#[test]
fn decisions_chain_by_hash() {
    let decisions = decide(healthy_vector(), engine_config(GatesConfig::default()), &[]);
    assert!(decisions.len() >= 3);
    let mut prev: Option<String> = None;
    for d in &decisions {
        assert_eq!(d.hash, blake3::hash(&d.bytes).to_hex().to_string());
        assert_eq!(d.decision.prev_decision_hash, prev);
        assert_eq!(d.decision.schema, DECISION_SCHEMA);
        assert_eq!(d.decision.rules_version, RULES_VERSION);
        assert_eq!(d.decision.config_hash, "test");
        assert_eq!(d.decision.params_hash, d.decision.params.hash());
        // The bytes are the JCS form of the record.
        let parsed: Decision = serde_json::from_slice(&d.bytes).unwrap();
        assert_eq!(parsed, d.decision);
        assert_eq!(tb_canonical::to_vec(&parsed), d.bytes);
        prev = Some(d.hash.clone());
    }
    assert_eq!(decisions[0].decision.prev_decision_hash, None);
}

#[test]
fn economics_sees_the_previous_epochs_inflow_across_a_restore() {
    let cfg = engine_config(GatesConfig::default());
    let mut engine = Engine::new(cfg.clone());
    let mut c0 = closed_at(0);
    c0.snapshot.treasury_inflow_micro = 1_000;
    let d = engine.close_epoch(&c0, &[]).decision;
    assert!(d.gates[0].enter_ok);

    let state: EngineState =
        serde_json::from_str(&serde_json::to_string(engine.state()).unwrap()).unwrap();
    let mut restored = Engine::restore(cfg, state);
    let mut c1 = closed_at(1);
    c1.snapshot.treasury_inflow_micro = 499;
    let d = restored.close_epoch(&c1, &[]).decision;
    assert!(!d.gates[0].enter_ok, "499·2 < 1000");
    assert!(!d.gates[0].exit_bad);
    assert_eq!(d.gates[0].enter_streak, 0);
    let mut c2 = closed_at(2);
    c2.snapshot.treasury_inflow_micro = 998;
    let d = restored.close_epoch(&c2, &[]).decision;
    assert!(d.gates[0].enter_ok, "998·2 ≥ 499");
}

#[test]
fn engine_state_keeps_per_gate_values_as_arrays_in_gate_order() {
    let engine = Engine::new(engine_config(GatesConfig::default()));
    let text = serde_json::to_string(engine.state()).unwrap();
    let gate = r#"{"state":"inactive","enter_streak":0,"exit_streak":0}"#;
    let gates = format!(r#"{{"gates":[{}],"#, [gate; 8].join(","));
    assert!(text.starts_with(&gates), "{text}");
    let flags = ["false"; 8].join(",");
    let both = format!(r#","applied_flags":[{flags}],"shadow_flags":[{flags}],"#);
    assert!(text.contains(&both), "{text}");
    // A checkpoint holding other than eight gates is refused.
    let seven = text.replacen(&format!("{gate},"), "", 1);
    assert!(serde_json::from_str::<EngineState>(&seven).is_err());
    assert!(serde_json::from_str::<EngineState>(&text).is_ok());
}

const LINE0: &str = r#"{"seq":0,"effective_epoch":0,"kind":"set_mode","mode":"shadow","reason":"first start","operator":"daemon"}"#;
const LINE1: &str = r#"{"seq":1,"effective_epoch":7,"kind":"manual_exit","gate":"storage","reason":"recall","operator":"alice"}"#;

#[test]
fn parse_journal_reads_events_in_order() {
    let events = parse_journal(&format!("{LINE0}\n{LINE1}\n")).unwrap();
    assert_eq!(
        events,
        vec![
            JournalEvent {
                seq: 0,
                effective_epoch: 0,
                kind: EventKind::SetMode { mode: Mode::Shadow },
                reason: "first start".to_owned(),
                operator: "daemon".to_owned(),
            },
            JournalEvent {
                seq: 1,
                effective_epoch: 7,
                kind: EventKind::ManualExit {
                    gate: "storage".to_owned(),
                },
                reason: "recall".to_owned(),
                operator: "alice".to_owned(),
            },
        ]
    );
    // Written back, each event is the same line, byte for byte.
    for (ev, line) in events.iter().zip([LINE0, LINE1]) {
        assert_eq!(serde_json::to_string(ev).unwrap(), line);
    }
    assert!(parse_journal("").unwrap().is_empty());
}

#[test]
fn parse_journal_ignores_an_unterminated_last_line() {
    let partial = &LINE1[..LINE1.len() / 2];
    assert_eq!(
        parse_journal(&format!("{LINE0}\n{partial}")).unwrap().len(),
        1
    );
    assert_eq!(
        parse_journal(&format!("{LINE0}\n{LINE1}")).unwrap().len(),
        1
    );
    assert!(parse_journal(LINE0).unwrap().is_empty());
}

#[test]
fn parse_journal_rejects_bad_events() {
    let gap = LINE1.replace(r#""seq":1"#, r#""seq":2"#);
    let late_start = LINE0.replace(r#""seq":0"#, r#""seq":1"#);
    let no_mode = LINE0.replace(r#","mode":"shadow""#, "");
    let no_gate = LINE1.replace(r#","gate":"storage""#, "");
    let mode_and_gate = LINE0.replace(r#","reason""#, r#","gate":"storage","reason""#);
    let gate_and_mode = LINE1.replace(r#","reason""#, r#","mode":"apply","reason""#);
    let unknown_field = LINE1.replace(r#""operator""#, r#""extra":1,"operator""#);
    let unknown_mode = LINE0.replace(r#""shadow""#, r#""turbo""#);
    let unknown_kind = LINE0.replace("set_mode", "set_speed");
    let no_operator = LINE1.replace(r#","operator":"alice""#, "");
    let cases = [
        ("seq gap", format!("{LINE0}\n{gap}\n"), 2),
        ("seq not from 0", format!("{late_start}\n"), 1),
        ("set_mode without mode", format!("{no_mode}\n"), 1),
        (
            "manual_exit without gate",
            format!("{LINE0}\n{no_gate}\n"),
            2,
        ),
        ("set_mode with a gate", format!("{mode_and_gate}\n"), 1),
        (
            "manual_exit with a mode",
            format!("{LINE0}\n{gate_and_mode}\n"),
            2,
        ),
        ("unknown field", format!("{LINE0}\n{unknown_field}\n"), 2),
        ("unknown mode", format!("{unknown_mode}\n"), 1),
        ("unknown kind", format!("{unknown_kind}\n"), 1),
        ("missing operator", format!("{LINE0}\n{no_operator}\n"), 2),
        ("not JSON", format!("{LINE0}\nnope\n"), 2),
        ("empty line", format!("{LINE0}\n\n{LINE1}\n"), 2),
    ];
    for (what, text, line) in cases {
        match parse_journal(&text) {
            Ok(events) => panic!("{what}: accepted as {events:?}"),
            Err(err) => assert_eq!(err.line, line, "{what}: {err}"),
        }
    }
}

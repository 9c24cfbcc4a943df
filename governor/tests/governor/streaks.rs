//! Property tests of the streak and intent rules (docs/gates.md) through `Engine::close_judged`:
//! random per-epoch verdicts and random streak knobs per gate, checked against the rules as
//! stated (never enter early, exit exactly when the bad streak is met, intent ids, epochs,
//! supersede, activations), shadow against apply against paused, and determinism across
//! re-runs and checkpoint/restore.

use std::collections::HashSet;

use proptest::prelude::*;
use tb_config::{GatesConfig, Mode, PerGate, StreakConfig};
use tb_governor::engine::{
    Action, ClosedDecision, Engine, EngineConfig, EngineState, EventKind, Gate, GateStatus,
    IntentState, JournalEvent, Judgement, Params,
};

use crate::support::{closed_at, engine_config, verdict};

/// One epoch's `(enter_ok, exit_bad)` per gate, in gate order.
type Verdicts = [(bool, bool); 8];

fn set_streak(g: &mut GatesConfig, gate: Gate, k: StreakConfig) {
    macro_rules! set {
        ($t:expr) => {{
            $t.enter_streak_required = k.enter_streak_required;
            $t.exit_streak_required = k.exit_streak_required;
            $t.min_epochs = k.min_epochs;
        }};
    }
    match gate {
        Gate::Economics => set!(g.economics),
        Gate::Storage => set!(g.storage),
        Gate::Compute => set!(g.compute),
        Gate::Energy => set!(g.energy),
        Gate::Ad => set!(g.ad),
        Gate::AdContextual => set!(g.ad_contextual),
        Gate::AdPresence => set!(g.ad_presence),
        Gate::Operational => set!(g.operational),
    }
}

/// An engine config with these streak knobs, gate by gate.
pub(crate) fn config_with(knobs: &[StreakConfig; 8]) -> EngineConfig {
    let mut gates = GatesConfig::default();
    for (gate, k) in Gate::ALL.into_iter().zip(knobs) {
        set_streak(&mut gates, gate, *k);
    }
    assert_eq!(gates.streaks().map(|(_, s)| s), *knobs);
    engine_config(gates)
}

pub(crate) fn judgements(v: &Verdicts) -> PerGate<Judgement> {
    PerGate::from(*v).map(|(ok, bad)| verdict(ok, bad))
}

/// Runs a fresh engine (initial `mode`) over `verdicts`, epoch 0 onwards.
fn run(
    cfg: &EngineConfig,
    mode: Mode,
    verdicts: &[Verdicts],
    journal: &[JournalEvent],
) -> Vec<ClosedDecision> {
    let mut engine = Engine::new(cfg.clone());
    engine.set_initial_mode(mode);
    continue_run(&mut engine, 0, verdicts, journal)
}

/// Closes epochs `from..` with `verdicts[from..]` on `engine`.
fn continue_run(
    engine: &mut Engine,
    from: usize,
    verdicts: &[Verdicts],
    journal: &[JournalEvent],
) -> Vec<ClosedDecision> {
    verdicts
        .iter()
        .enumerate()
        .skip(from)
        .map(|(e, v)| engine.close_judged(&closed_at(e as u64), journal, judgements(v)))
        .collect()
}

fn bytes(decisions: &[ClosedDecision]) -> Vec<&[u8]> {
    decisions.iter().map(|d| d.bytes.as_slice()).collect()
}

/// Checks a shadow or apply run (no journal) against the rules of docs/gates.md, read directly off the
/// verdict history: `outcome` is what an activation becomes in this mode.
fn check_rules(
    knobs: &[StreakConfig; 8],
    verdicts: &[Verdicts],
    decisions: &[ClosedDecision],
    outcome: IntentState,
    budget: u64,
) {
    assert_eq!(decisions.len(), verdicts.len());
    // Per gate: active or not before this close, and the first epoch its streak may count from
    // (streaks restart after every state change).
    let mut active = [false; 8];
    let mut since = [0u64; 8];
    let mut prev_created: [Option<Action>; 8] = [None; 8];
    let mut flags = [false; 8];
    let mut ids = HashSet::new();
    for (e, (v, d)) in verdicts.iter().zip(decisions).enumerate() {
        let e = e as u64;
        let d = &d.decision;
        assert_eq!(d.epoch, e);
        let mut created: [Option<Action>; 8] = [None; 8];
        for intent in &d.intents {
            let g = intent.gate.index();
            assert!(
                created[g].is_none(),
                "two intents for {} at {e}",
                intent.gate
            );
            created[g] = Some(intent.action);
        }
        for gate in Gate::ALL {
            let g = gate.index();
            let k = knobs[g];
            let at = |t: u64| v_at(verdicts, t, g);
            let rec = &d.gates[g];
            assert_eq!(rec.name, gate);
            assert_eq!(
                (rec.enter_ok, rec.exit_bad),
                v[g],
                "{gate}@{e} recorded verdict"
            );
            assert_eq!(rec.enter_streak_required, k.enter_streak_required);
            assert_eq!(rec.exit_streak_required, k.exit_streak_required);
            let trailing_ok = (since[g]..=e).rev().take_while(|t| at(*t).0).count() as u64;
            let trailing_bad = (since[g]..=e).rev().take_while(|t| at(*t).1).count() as u64;
            let want = if active[g] {
                (trailing_bad >= k.exit_streak_required).then_some(Action::Exit)
            } else {
                (trailing_ok >= k.enter_streak_required && e + 1 >= k.min_epochs)
                    .then_some(Action::Enter)
            };
            assert_eq!(
                created[g], want,
                "{gate}@{e}: knobs {k:?}, active {}, trailing ok {trailing_ok} bad {trailing_bad}",
                active[g]
            );
            if let Some(act) = want {
                active[g] = act == Action::Enter;
                since[g] = e + 1;
            }
            let (status, enter_streak, exit_streak) = match (want, active[g]) {
                (Some(_), true) => (GateStatus::Active, 0, 0),
                (Some(_), false) => (GateStatus::Inactive, 0, 0),
                (None, true) => (GateStatus::Active, 0, trailing_bad),
                (None, false) => (GateStatus::Inactive, trailing_ok, 0),
            };
            assert_eq!(
                (rec.state, rec.enter_streak, rec.exit_streak),
                (status, enter_streak, exit_streak),
                "{gate}@{e} record"
            );
        }
        // Intents: in gate order, id format, unique, epochs, state at the end of the close.
        let mut want_activations = Vec::new();
        for intent in &d.intents {
            let id = format!("{}-{e:08}-{}", intent.gate.as_str(), intent.action.as_str());
            assert_eq!(intent.id, id);
            assert!(ids.insert(id.clone()), "duplicate intent id {id}");
            assert_eq!(intent.created_epoch, e);
            assert_eq!(intent.snapshot_hash, format!("snapshot-{e}"));
            let (apply, state) = match intent.action {
                Action::Enter => (e + 2, IntentState::Pending),
                Action::Exit => (e + 1, outcome),
            };
            assert_eq!((intent.epoch_apply, intent.state), (apply, state), "{id}");
        }
        let order: Vec<Gate> = d.intents.iter().map(|i| i.gate).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "intents in gate order");
        // Activations: last close's Enters (superseded by an Exit of this close) and this
        // close's Exits, all with epoch_apply e + 1, so in gate order.
        for gate in Gate::ALL {
            let g = gate.index();
            if prev_created[g] == Some(Action::Enter) {
                let id = format!("{gate}-{:08}-enter", e - 1);
                if created[g] == Some(Action::Exit) {
                    want_activations.push((id, IntentState::Superseded));
                } else {
                    want_activations.push((id, outcome));
                    flags[g] = true;
                }
            }
            if created[g] == Some(Action::Exit) {
                want_activations.push((format!("{gate}-{e:08}-exit"), outcome));
                flags[g] = false;
            }
        }
        let got: Vec<_> = d
            .activations
            .iter()
            .map(|a| (a.id.clone(), a.outcome))
            .collect();
        assert_eq!(got, want_activations, "activations at {e}");
        assert_eq!(
            d.shadow_params,
            Params::from_flags(&PerGate::from(flags), &d.snapshot.controls, budget),
            "shadow params at {e}"
        );
        assert!(d.reconciled.is_empty(), "reconciled at {e}");
        prev_created = created;
    }
}

fn v_at(verdicts: &[Verdicts], t: u64, g: usize) -> (bool, bool) {
    verdicts[usize::try_from(t).unwrap()][g]
}

fn knobs_strategy() -> impl Strategy<Value = [StreakConfig; 8]> {
    prop::array::uniform8(
        (1..5u64, 1..4u64, 0..6u64).prop_map(|(enter, exit, min)| StreakConfig {
            enter_streak_required: enter,
            exit_streak_required: exit,
            min_epochs: min,
        }),
    )
}

/// Verdict histories biased towards healthy so that gates do enter.
fn verdicts_strategy(max_epochs: usize) -> impl Strategy<Value = Vec<Verdicts>> {
    prop::collection::vec(
        prop::array::uniform8((prop::bool::weighted(0.7), prop::bool::weighted(0.5))),
        1..max_epochs,
    )
}

/// A journal in seq order with non-decreasing effective epochs: mode switches and manual
/// exits (index 8 names no gate).
fn journal_strategy(max_epoch: u64) -> impl Strategy<Value = Vec<JournalEvent>> {
    prop::collection::vec((0..max_epoch, 0..4u8, 0..9usize), 0..8).prop_map(|mut evs| {
        evs.sort_by_key(|(eff, _, _)| *eff);
        evs.into_iter()
            .enumerate()
            .map(|(seq, (eff, kind, gate))| {
                let kind = match kind {
                    0 => EventKind::SetMode { mode: Mode::Shadow },
                    1 => EventKind::SetMode { mode: Mode::Apply },
                    2 => EventKind::SetMode { mode: Mode::Paused },
                    _ => EventKind::ManualExit {
                        gate: Gate::ALL
                            .get(gate)
                            .map_or("no_such_gate", |g| g.as_str())
                            .to_owned(),
                    },
                };
                JournalEvent {
                    seq: seq as u64,
                    effective_epoch: eff,
                    kind,
                    reason: format!("event {seq}"),
                    operator: "prop".to_owned(),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Shadow and apply follow the streak rules, agree on everything but which params set
    /// moves, and re-running gives the same bytes.
    #[test]
    fn streaks_and_intents_follow_the_rules(
        knobs in knobs_strategy(),
        verdicts in verdicts_strategy(30),
    ) {
        let cfg = config_with(&knobs);
        let budget = cfg.proof_verification_budget_ms;
        let initial = Params::initial(budget);
        let shadow = run(&cfg, Mode::Shadow, &verdicts, &[]);
        check_rules(&knobs, &verdicts, &shadow, IntentState::Shadowed, budget);
        let apply = run(&cfg, Mode::Apply, &verdicts, &[]);
        check_rules(&knobs, &verdicts, &apply, IntentState::Applied, budget);

        for (s, a) in shadow.iter().zip(&apply) {
            let (s, a) = (&s.decision, &a.decision);
            prop_assert_eq!(s.mode, Mode::Shadow);
            prop_assert_eq!(a.mode, Mode::Apply);
            prop_assert_eq!(&s.gates, &a.gates);
            let key = |d: &tb_governor::engine::Decision| -> Vec<_> {
                d.intents
                    .iter()
                    .map(|i| (i.id.clone(), i.gate, i.action, i.epoch_apply, i.reason.clone()))
                    .collect()
            };
            prop_assert_eq!(key(s), key(a));
            let ids = |d: &tb_governor::engine::Decision| -> Vec<_> {
                d.activations.iter().map(|x| x.id.clone()).collect()
            };
            prop_assert_eq!(ids(s), ids(a));
            prop_assert_eq!(&s.shadow_params, &a.shadow_params);
            // Apply: params follow the shadow params exactly; shadow: they never move.
            prop_assert_eq!(&a.params, &a.shadow_params);
            prop_assert_eq!(&a.params_hash, &a.params.hash());
            prop_assert_eq!(&s.params, &initial);
            prop_assert_eq!(&s.params_hash, &initial.hash());
        }

        let again = run(&cfg, Mode::Shadow, &verdicts, &[]);
        prop_assert_eq!(bytes(&shadow), bytes(&again));
    }

    /// Paused from the start: never an intent, never a params change, streaks stay 0.
    #[test]
    fn paused_never_creates_intents(
        knobs in knobs_strategy(),
        verdicts in verdicts_strategy(20),
    ) {
        let cfg = config_with(&knobs);
        let initial = Params::initial(cfg.proof_verification_budget_ms);
        for d in run(&cfg, Mode::Paused, &verdicts, &[]) {
            let d = d.decision;
            prop_assert_eq!(d.mode, Mode::Paused);
            prop_assert!(d.intents.is_empty());
            prop_assert!(d.activations.is_empty());
            prop_assert_eq!(&d.params, &initial);
            prop_assert_eq!(&d.shadow_params, &initial);
            for g in &d.gates {
                prop_assert_eq!(g.state, GateStatus::Inactive);
                prop_assert_eq!((g.enter_streak, g.exit_streak), (0, 0));
            }
        }
    }

    /// With a random journal: checkpointing the engine state (serde JSON round trip) at any
    /// epoch and resuming gives the same decision bytes; and the journal-driven invariants hold.
    #[test]
    fn checkpoint_restore_gives_identical_bytes(
        knobs in knobs_strategy(),
        verdicts in verdicts_strategy(25),
        journal in journal_strategy(25),
        cut in 0..25usize,
    ) {
        let cfg = config_with(&knobs);
        let whole = run(&cfg, Mode::Shadow, &verdicts, &journal);
        let cut = cut % verdicts.len();

        let mut engine = Engine::new(cfg.clone());
        let mut resumed = continue_run(&mut engine, 0, &verdicts[..cut], &journal);
        let text = serde_json::to_string(engine.state()).unwrap();
        let state: EngineState = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&state, engine.state());
        let mut restored = Engine::restore(cfg.clone(), state);
        resumed.extend(continue_run(&mut restored, cut, &verdicts, &journal));
        prop_assert_eq!(bytes(&whole), bytes(&resumed));

        let again = run(&cfg, Mode::Shadow, &verdicts, &journal);
        prop_assert_eq!(bytes(&whole), bytes(&again));

        let initial = Params::initial(cfg.proof_verification_budget_ms);
        check_journal_invariants(&whole, &journal, initial);
    }
}

/// What must hold with any journal (sorted by effective epoch, so every event is consumed at
/// the close of its effective epoch).
fn check_journal_invariants(
    decisions: &[ClosedDecision],
    journal: &[JournalEvent],
    initial: Params,
) {
    let mut mode = Mode::Shadow;
    let mut params = initial.clone();
    let mut shadow_params = initial;
    let mut ids = HashSet::new();
    let mut prev_hash: Option<String> = None;
    let mut prev_states = [GateStatus::Inactive; 8];
    for d in decisions {
        let e = d.decision.epoch;
        let d_hash = &d.hash;
        let d = &d.decision;
        let due: Vec<JournalEvent> = journal
            .iter()
            .filter(|ev| ev.effective_epoch == e)
            .cloned()
            .collect();
        for ev in &due {
            if let EventKind::SetMode { mode: m } = ev.kind {
                mode = m;
            }
        }
        assert_eq!(d.journal, due, "journal consumed at {e}");
        assert_eq!(d.mode, mode, "mode at {e}");
        assert_eq!(d.prev_decision_hash, prev_hash);
        prev_hash = Some(d_hash.clone());
        for intent in &d.intents {
            assert!(ids.insert(intent.id.clone()), "duplicate id {}", intent.id);
        }
        for a in &d.activations {
            let allowed: &[IntentState] = match mode {
                Mode::Shadow => &[IntentState::Shadowed, IntentState::Superseded],
                Mode::Apply => &[IntentState::Applied, IntentState::Superseded],
                Mode::Paused => &[IntentState::Cancelled],
            };
            assert!(
                allowed.contains(&a.outcome),
                "{} {:?} in {mode:?}",
                a.id,
                a.outcome
            );
        }
        match mode {
            Mode::Paused => {
                assert!(d.intents.is_empty(), "paused at {e}");
                assert_eq!(d.params, params, "paused params at {e}");
                assert_eq!(
                    d.shadow_params, shadow_params,
                    "paused shadow params at {e}"
                );
            }
            Mode::Shadow => assert_eq!(d.params, params, "shadow params at {e}"),
            Mode::Apply => assert_eq!(d.params, d.shadow_params, "apply params at {e}"),
        }
        // A manual exit of a gate active before this close exits it now, with the operator's
        // words; on an inactive gate it is recorded and ignored.
        for gate in Gate::ALL {
            let manual = due.iter().find(
                |ev| matches!(&ev.kind, EventKind::ManualExit { gate: g } if g == gate.as_str()),
            );
            let exit = d
                .intents
                .iter()
                .find(|i| i.gate == gate && i.action == Action::Exit);
            match (manual, prev_states[gate.index()], mode) {
                (Some(ev), GateStatus::Active, Mode::Shadow | Mode::Apply) => {
                    let exit = exit.unwrap_or_else(|| panic!("manual exit of {gate} at {e}"));
                    assert!(exit.reason.contains(&ev.reason), "{}", exit.reason);
                    assert!(exit.reason.contains(&ev.operator), "{}", exit.reason);
                }
                (_, GateStatus::Inactive, _) => assert!(exit.is_none(), "{gate} at {e}"),
                _ => {}
            }
        }
        for (g, rec) in d.gates.iter().enumerate() {
            prev_states[g] = rec.state;
        }
        params = d.params.clone();
        shadow_params = d.shadow_params.clone();
    }
}

//! Simulated chains through replay and the default engine: the launch stories of the simulator's
//! scenarios produce Enter and Exit intents at exactly the expected epoch closes.

use tb_config::{GatesConfig, GATE_NAMES};
use tb_governor::engine::{ClosedDecision, GateStatus, IntentState};
use tb_replay::sim::Scenario;

use crate::support::{decide, engine_config, simulate};

/// Runs `scenario` for `epochs` epochs through the default engine (shadow, no journal).
fn run(scenario: Scenario, epochs: u64) -> Vec<ClosedDecision> {
    let closed = simulate(scenario, epochs);
    let decisions = decide(&closed, engine_config(GatesConfig::default()), &[]);
    assert_eq!(decisions.len() as u64, epochs);
    for (e, d) in decisions.iter().enumerate() {
        assert_eq!(d.decision.epoch, e as u64);
    }
    decisions
}

/// Every intent created over the run, as its id, in creation order.
fn intent_ids(decisions: &[ClosedDecision]) -> Vec<String> {
    decisions
        .iter()
        .flat_map(|d| d.decision.intents.iter().map(|i| i.id.clone()))
        .collect()
}

/// The ids `{gate}-{epoch:08}-{action}` for `gates` in gate order.
fn ids(gates: &[&str], epoch: u64, action: &str) -> Vec<String> {
    GATE_NAMES
        .iter()
        .filter(|g| gates.contains(g))
        .map(|g| format!("{g}-{epoch:08}-{action}"))
        .collect()
}

/// Activations of one close as `(id, outcome)`.
fn activations(d: &ClosedDecision) -> Vec<(String, IntentState)> {
    d.decision
        .activations
        .iter()
        .map(|a| (a.id.clone(), a.outcome))
        .collect()
}

#[test]
fn healthy_chain_enters_every_gate_at_epoch_2() {
    let decisions = run(Scenario::Healthy, 6);
    assert_eq!(intent_ids(&decisions), ids(&GATE_NAMES, 2, "enter"));
    let enters = &decisions[2].decision.intents;
    for intent in enters {
        assert_eq!(intent.created_epoch, 2);
        assert_eq!(intent.epoch_apply, 4);
        assert_eq!(intent.state, IntentState::Pending);
        assert_eq!(intent.snapshot_hash, decisions[2].decision.snapshot_hash);
    }
    for (e, d) in decisions.iter().enumerate() {
        let want = if e >= 2 {
            GateStatus::Active
        } else {
            GateStatus::Inactive
        };
        for g in &d.decision.gates {
            assert_eq!(g.state, want, "epoch {e} gate {}", g.name);
        }
        let acts = activations(d);
        if e == 3 {
            let want: Vec<_> = ids(&GATE_NAMES, 2, "enter")
                .into_iter()
                .map(|id| (id, IntentState::Shadowed))
                .collect();
            assert_eq!(acts, want, "epoch 3 activations");
        } else {
            assert!(acts.is_empty(), "epoch {e}: {acts:?}");
        }
        // Shadow mode: only the shadow params move, from the close of epoch 3.
        assert!(!d.decision.params.economics_autopilot);
        assert_eq!(d.decision.shadow_params.economics_autopilot, e >= 3);
        assert_eq!(d.decision.shadow_params.launch_operational, e >= 3);
    }
}

#[test]
fn market_shock_exits_and_reenters_storage() {
    let decisions = run(Scenario::MarketShock, 12);
    let mut want = ids(&GATE_NAMES, 2, "enter");
    want.extend(ids(&["economics", "storage"], 5, "exit"));
    want.extend(ids(&["economics", "storage"], 9, "enter"));
    assert_eq!(intent_ids(&decisions), want);
    // Exits are immediate; the re-entry is shadowed one close later.
    assert_eq!(
        activations(&decisions[5]),
        ids(&["economics", "storage"], 5, "exit")
            .into_iter()
            .map(|id| (id, IntentState::Shadowed))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        activations(&decisions[10]),
        ids(&["economics", "storage"], 9, "enter")
            .into_iter()
            .map(|id| (id, IntentState::Shadowed))
            .collect::<Vec<_>>()
    );
    for (e, d) in decisions.iter().enumerate() {
        let e = e as u64;
        for g in &d.decision.gates {
            let shocked = matches!(g.name.as_str(), "economics" | "storage");
            let active = e >= 2 && !(shocked && (5..9).contains(&e));
            let want = if active {
                GateStatus::Active
            } else {
                GateStatus::Inactive
            };
            assert_eq!(g.state, want, "epoch {e} gate {}", g.name);
        }
        let storage_trade = (3..5).contains(&e) || e >= 10;
        assert_eq!(
            d.decision.shadow_params.market_mode.storage == tb_governor::engine::MarketMode::Trade,
            storage_trade,
            "epoch {e} storage market mode"
        );
        // Storage is judged bad during the shock.
        let storage = &d.decision.gates[1];
        assert_eq!(
            storage.exit_bad,
            (4..=6).contains(&e),
            "epoch {e} storage exit_bad"
        );
    }
}

#[test]
fn treasury_collapse_exits_economics() {
    let decisions = run(Scenario::TreasuryCollapse, 8);
    let mut want = ids(&GATE_NAMES, 2, "enter");
    want.extend(ids(&["economics"], 5, "exit"));
    assert_eq!(intent_ids(&decisions), want);
    for (e, d) in decisions.iter().enumerate() {
        let economics = &d.decision.gates[0];
        assert_eq!(economics.exit_bad, e >= 4, "epoch {e} economics exit_bad");
        assert_eq!(
            d.decision.snapshot.treasury_inflow_micro == 0,
            e >= 4,
            "epoch {e} inflow"
        );
    }
    let last = &decisions[7].decision;
    assert!(!last.shadow_params.economics_autopilot);
    assert_eq!(last.shadow_params.block_reward_per_block_micro, None);
    assert!(last.shadow_params.launch_operational);
}

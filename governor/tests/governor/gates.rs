//! Table-driven tests of `gates::judge`: every threshold of docs/configuration.md, "[gates.*]", judged at the threshold,
//! just inside and just outside, on a mutated copy of a realistic snapshot (the healthy
//! vector's epoch 2, on which every gate is `enter_ok` and none `exit_bad`).

use tb_config::{GatesConfig, PerGate, GATE_NAMES};
use tb_governor::engine::gates::judge;
use tb_governor::engine::Gate;
use tb_replay::snapshot::{MarketStats, TierStats};
use tb_replay::Snapshot;

use crate::support::base_snapshot;

const MARKET_GATES: [Gate; 4] = [Gate::Storage, Gate::Compute, Gate::Energy, Gate::Ad];
const TIER_GATES: [Gate; 2] = [Gate::AdContextual, Gate::AdPresence];

/// `(enter_ok, exit_bad)` of `gate`, after checking that the reasons agree with the verdict.
fn verdict(gate: Gate, snap: &Snapshot, prev: Option<u64>, cfg: &GatesConfig) -> (bool, bool) {
    let j = judge(gate, snap, prev, cfg);
    assert_eq!(
        j.enter_ok,
        j.enter_fails.is_empty(),
        "{gate}: enter_ok and enter_fails disagree: {:?}",
        j.enter_fails
    );
    assert_eq!(
        j.exit_bad,
        !j.exit_reasons.is_empty(),
        "{gate}: exit_bad and exit_reasons disagree: {:?}",
        j.exit_reasons
    );
    (j.enter_ok, j.exit_bad)
}

fn market_mut(s: &mut Snapshot, gate: Gate) -> &mut MarketStats {
    match gate {
        Gate::Storage => &mut s.markets.storage,
        Gate::Compute => &mut s.markets.compute,
        Gate::Energy => &mut s.markets.energy,
        Gate::Ad => &mut s.markets.ad,
        other => panic!("{other} is not a market gate"),
    }
}

fn tier_mut(s: &mut Snapshot, gate: Gate) -> &mut TierStats {
    match gate {
        Gate::AdContextual => &mut s.ad_tiers.contextual,
        Gate::AdPresence => &mut s.ad_tiers.presence,
        other => panic!("{other} is not an ad tier gate"),
    }
}

#[test]
fn per_gate_values_follow_the_fixed_gate_order() {
    let names = PerGate::from_fn(Gate::as_str);
    let order: Vec<Gate> = names.iter().map(|(gate, _)| gate).collect();
    assert_eq!(order, Gate::ALL);
    for (gate, name) in names {
        assert_eq!(names[gate], name);
        assert_eq!(name.parse::<Gate>(), Ok(gate));
        assert_eq!(serde_json::to_string(&gate).unwrap(), format!("{name:?}"));
    }
    assert_eq!(
        names.map(str::len)[Gate::AdContextual],
        "ad_contextual".len()
    );
    assert_eq!(
        serde_json::to_string(&names).unwrap(),
        serde_json::to_string(&GATE_NAMES).unwrap()
    );
    assert_eq!(
        "nope".parse::<Gate>().unwrap_err().to_string(),
        "unknown gate \"nope\" (one of: economics, storage, compute, energy, ad, ad_contextual, \
         ad_presence, operational)"
    );
}

#[test]
fn base_snapshot_passes_every_gate() {
    let snap = base_snapshot();
    let cfg = GatesConfig::default();
    for gate in Gate::ALL {
        assert_eq!(
            verdict(gate, &snap, None, &cfg),
            (true, false),
            "{gate} on the base snapshot"
        );
    }
    // Room for the cases below: the base values sit well inside every band.
    for m in snap.markets.as_array() {
        let u = m.utilization_ppm.unwrap();
        let margin = m.provider_margin_ppm.unwrap();
        assert!((50_000..=900_000).contains(&u), "{u}");
        assert!((0..=800_000).contains(&margin), "{margin}");
        assert!(m.settlements >= 5);
    }
}

type SnapCase = (&'static str, Option<u64>, fn(&mut Snapshot), (bool, bool));

/// Economics cases: `(what, prev_inflow, mutation, (enter_ok, exit_bad))`.
const ECONOMICS: &[SnapCase] = &[
    ("tx_count = 10", None, |s| s.tx_count = 10, (true, false)),
    ("tx_count = 9", None, |s| s.tx_count = 9, (false, true)),
    ("tx_count = 0", None, |s| s.tx_count = 0, (false, true)),
    (
        "tx_volume = 1000 BLOCK",
        None,
        |s| s.tx_volume_micro = 1_000_000_000,
        (true, false),
    ),
    (
        "tx_volume just below",
        None,
        |s| s.tx_volume_micro = 999_999_999,
        (false, false),
    ),
    (
        "volatility = 2000",
        None,
        |s| s.controls.reward_volatility_bps = 2_000,
        (true, false),
    ),
    (
        "volatility = 2001",
        None,
        |s| s.controls.reward_volatility_bps = 2_001,
        (false, false),
    ),
    (
        "volatility = 3000",
        None,
        |s| s.controls.reward_volatility_bps = 3_000,
        (false, false),
    ),
    (
        "volatility = 3001",
        None,
        |s| s.controls.reward_volatility_bps = 3_001,
        (false, true),
    ),
    (
        "inflow 0, no previous epoch",
        None,
        |s| s.treasury_inflow_micro = 0,
        (false, true),
    ),
    (
        "inflow 0, previous 0",
        Some(0),
        |s| s.treasury_inflow_micro = 0,
        (false, true),
    ),
    (
        "inflow 1, no previous epoch",
        None,
        |s| s.treasury_inflow_micro = 1,
        (true, false),
    ),
    (
        "inflow 1, previous 0",
        Some(0),
        |s| s.treasury_inflow_micro = 1,
        (true, false),
    ),
    (
        "2·inflow = previous",
        Some(1_000),
        |s| s.treasury_inflow_micro = 500,
        (true, false),
    ),
    (
        "2·inflow = previous − 1",
        Some(1_001),
        |s| s.treasury_inflow_micro = 500,
        (false, false),
    ),
    (
        "inflow far below previous (no exit: only 0 exits)",
        Some(u64::MAX / 2),
        |s| s.treasury_inflow_micro = 1,
        (false, false),
    ),
    (
        "inflow above previous",
        Some(1),
        |s| s.treasury_inflow_micro = 1_000_000,
        (true, false),
    ),
];

type MarketCase = (&'static str, fn(&mut MarketStats), (bool, bool));

/// The economics gate's market band, applied to each of the four markets in turn.
const ECONOMICS_MARKET: &[MarketCase] = &[
    (
        "util = 10_000",
        |m| m.utilization_ppm = Some(10_000),
        (true, false),
    ),
    (
        "util = 9_999",
        |m| m.utilization_ppm = Some(9_999),
        (false, true),
    ),
    (
        "util = 950_000",
        |m| m.utilization_ppm = Some(950_000),
        (true, false),
    ),
    (
        "util = 950_001",
        |m| m.utilization_ppm = Some(950_001),
        (false, true),
    ),
    ("util = 0", |m| m.utilization_ppm = Some(0), (false, true)),
    (
        "margin = −500_000",
        |m| m.provider_margin_ppm = Some(-500_000),
        (true, false),
    ),
    (
        "margin = −500_001",
        |m| m.provider_margin_ppm = Some(-500_001),
        (false, true),
    ),
    (
        "margin = 950_000",
        |m| m.provider_margin_ppm = Some(950_000),
        (true, false),
    ),
    (
        "margin = 950_001",
        |m| m.provider_margin_ppm = Some(950_001),
        (false, true),
    ),
    // Looser than the market gates' own bands: fine for economics.
    (
        "util = 20_000",
        |m| m.utilization_ppm = Some(20_000),
        (true, false),
    ),
    (
        "margin = −400_000",
        |m| m.provider_margin_ppm = Some(-400_000),
        (true, false),
    ),
    // No data is never a reason to exit, and never enough to enter.
    (
        "no utilization",
        |m| m.utilization_ppm = None,
        (false, false),
    ),
    (
        "no margin",
        |m| m.provider_margin_ppm = None,
        (false, false),
    ),
    (
        "no utilization, margin far out of band",
        |m| {
            m.utilization_ppm = None;
            m.provider_margin_ppm = Some(-900_000);
        },
        (false, false),
    ),
    (
        "no margin, utilization 0",
        |m| {
            m.utilization_ppm = Some(0);
            m.provider_margin_ppm = None;
        },
        (false, false),
    ),
    (
        "no data at all",
        |m| {
            m.utilization_ppm = None;
            m.provider_margin_ppm = None;
            m.settlements = 0;
        },
        (false, false),
    ),
];

#[test]
fn economics_thresholds() {
    let cfg = GatesConfig::default();
    for (what, prev, set, want) in ECONOMICS {
        let mut snap = base_snapshot();
        set(&mut snap);
        assert_eq!(
            verdict(Gate::Economics, &snap, *prev, &cfg),
            *want,
            "economics: {what}"
        );
    }
    for market in MARKET_GATES {
        for (what, set, want) in ECONOMICS_MARKET {
            let mut snap = base_snapshot();
            set(market_mut(&mut snap, market));
            assert_eq!(
                verdict(Gate::Economics, &snap, None, &cfg),
                *want,
                "economics: {market} {what}"
            );
        }
    }
}

#[test]
fn economics_exits_on_a_market_with_data_even_when_another_has_none() {
    let cfg = GatesConfig::default();
    let mut snap = base_snapshot();
    snap.markets.storage.utilization_ppm = None;
    snap.markets.ad.provider_margin_ppm = Some(-600_000);
    assert_eq!(verdict(Gate::Economics, &snap, None, &cfg), (false, true));
    // Every market without data: cannot enter, but nothing to exit on either.
    let mut snap = base_snapshot();
    for m in MARKET_GATES {
        market_mut(&mut snap, m).utilization_ppm = None;
    }
    assert_eq!(verdict(Gate::Economics, &snap, None, &cfg), (false, false));
}

/// The market gates' cases, applied to each of storage, compute, energy and ad.
const MARKET: &[MarketCase] = &[
    ("settlements = 5", |m| m.settlements = 5, (true, false)),
    ("settlements = 4", |m| m.settlements = 4, (false, false)),
    ("settlements = 0", |m| m.settlements = 0, (false, false)),
    (
        "util = 50_000",
        |m| m.utilization_ppm = Some(50_000),
        (true, false),
    ),
    (
        "util = 49_999",
        |m| m.utilization_ppm = Some(49_999),
        (false, false),
    ),
    (
        "util = 900_000",
        |m| m.utilization_ppm = Some(900_000),
        (true, false),
    ),
    (
        "util = 900_001",
        |m| m.utilization_ppm = Some(900_001),
        (false, false),
    ),
    (
        "util = 10_000",
        |m| m.utilization_ppm = Some(10_000),
        (false, false),
    ),
    (
        "util = 9_999",
        |m| m.utilization_ppm = Some(9_999),
        (false, true),
    ),
    ("util = 0", |m| m.utilization_ppm = Some(0), (false, true)),
    (
        "util = 950_000",
        |m| m.utilization_ppm = Some(950_000),
        (false, false),
    ),
    (
        "util = 950_001",
        |m| m.utilization_ppm = Some(950_001),
        (false, true),
    ),
    (
        "util = 1_000_000",
        |m| m.utilization_ppm = Some(1_000_000),
        (false, true),
    ),
    (
        "margin = 0",
        |m| m.provider_margin_ppm = Some(0),
        (true, false),
    ),
    (
        "margin = −1",
        |m| m.provider_margin_ppm = Some(-1),
        (false, false),
    ),
    (
        "margin = 800_000",
        |m| m.provider_margin_ppm = Some(800_000),
        (true, false),
    ),
    (
        "margin = 800_001",
        |m| m.provider_margin_ppm = Some(800_001),
        (false, false),
    ),
    (
        "margin = −250_000",
        |m| m.provider_margin_ppm = Some(-250_000),
        (false, false),
    ),
    (
        "margin = −250_001",
        |m| m.provider_margin_ppm = Some(-250_001),
        (false, true),
    ),
    (
        "margin = 950_000",
        |m| m.provider_margin_ppm = Some(950_000),
        (false, false),
    ),
    (
        "margin = 950_001",
        |m| m.provider_margin_ppm = Some(950_001),
        (false, true),
    ),
    (
        "margin = 1_000_000",
        |m| m.provider_margin_ppm = Some(1_000_000),
        (false, true),
    ),
    (
        "no utilization",
        |m| m.utilization_ppm = None,
        (false, false),
    ),
    (
        "no margin",
        |m| m.provider_margin_ppm = None,
        (false, false),
    ),
    (
        "no utilization, margin far out of band",
        |m| {
            m.utilization_ppm = None;
            m.provider_margin_ppm = Some(-900_000);
        },
        (false, false),
    ),
    (
        "no margin, utilization 0",
        |m| {
            m.utilization_ppm = Some(0);
            m.provider_margin_ppm = None;
        },
        (false, false),
    ),
];

#[test]
fn market_gate_thresholds() {
    let cfg = GatesConfig::default();
    for gate in MARKET_GATES {
        for (what, set, want) in MARKET {
            let mut snap = base_snapshot();
            set(market_mut(&mut snap, gate));
            assert_eq!(verdict(gate, &snap, None, &cfg), *want, "{gate}: {what}");
        }
    }
}

#[test]
fn a_market_gate_judges_only_its_own_market() {
    let cfg = GatesConfig::default();
    for gate in MARKET_GATES {
        for other in MARKET_GATES.into_iter().filter(|o| *o != gate) {
            let mut snap = base_snapshot();
            let m = market_mut(&mut snap, other);
            m.utilization_ppm = Some(0);
            m.settlements = 0;
            assert_eq!(
                verdict(gate, &snap, None, &cfg),
                (true, false),
                "{gate} with {other} broken"
            );
        }
    }
}

/// `(what, proof count, sla_violations, compute market has data, (enter_ok, exit_bad))`.
type SlaCase = (&'static str, u64, u64, bool, (bool, bool));

/// Compute's proof SLA cases.
const SLA: &[SlaCase] = &[
    ("1 %", 100, 1, true, (true, false)),
    ("2 %", 100, 2, true, (false, false)),
    ("5 %", 100, 5, true, (false, false)),
    ("6 %", 100, 6, true, (false, true)),
    ("100 %", 1, 1, true, (false, true)),
    ("1 of 1000 (0.1 %)", 1_000, 1, true, (true, false)),
    ("10 of 1000", 1_000, 10, true, (true, false)),
    ("11 of 1000", 1_000, 11, true, (false, false)),
    ("50 of 1000", 1_000, 50, true, (false, false)),
    ("51 of 1000", 1_000, 51, true, (false, true)),
    ("no proofs", 0, 0, true, (true, false)),
    ("no proofs, no data", 0, 0, false, (false, false)),
    ("6 %, no data: exits anyway", 100, 6, false, (false, true)),
    ("5 %, no data", 100, 5, false, (false, false)),
];

#[test]
fn compute_proof_sla_thresholds() {
    let cfg = GatesConfig::default();
    for (what, count, violations, data, want) in SLA {
        let mut snap = base_snapshot();
        snap.compute_proofs.count = *count;
        snap.compute_proofs.sla_violations = *violations;
        if !data {
            snap.markets.compute.utilization_ppm = None;
        }
        assert_eq!(
            verdict(Gate::Compute, &snap, None, &cfg),
            *want,
            "compute SLA: {what}"
        );
    }
}

#[test]
fn proof_sla_is_judged_only_by_compute() {
    let cfg = GatesConfig::default();
    let mut snap = base_snapshot();
    snap.compute_proofs.count = 10;
    snap.compute_proofs.sla_violations = 10;
    for gate in Gate::ALL {
        let want = if gate == Gate::Compute {
            (false, true)
        } else {
            (true, false)
        };
        assert_eq!(verdict(gate, &snap, None, &cfg), want, "{gate}");
    }
    let metrics = judge(Gate::Compute, &snap, None, &cfg).metrics;
    assert_eq!(metrics.get("sla_violations"), Some(&Some(10)));
    assert_eq!(metrics.get("proofs"), Some(&Some(10)));
}

type TierCase = (&'static str, fn(&mut TierStats), (bool, bool));

/// Sets a tier's settlements, impressions, conversions and min privacy.
fn tier(t: &mut TierStats, settlements: u64, impressions: u64, conversions: u64, privacy: u64) {
    t.settlements = settlements;
    t.impressions = impressions;
    t.conversions = conversions;
    t.min_privacy_remaining_ppm = Some(privacy);
}

/// Cases for both ad tiers.
const TIER: &[TierCase] = &[
    (
        "all at the enter bounds",
        |t| tier(t, 5, 1_000_000, 1_000, 50_001),
        (true, false),
    ),
    (
        "settlements = 4",
        |t| tier(t, 4, 1_000_000, 1_000, 50_001),
        (false, false),
    ),
    (
        "conversion = 999 ppm",
        |t| tier(t, 5, 1_000_000, 999, 50_001),
        (false, false),
    ),
    (
        "conversion = 200 ppm",
        |t| tier(t, 5, 1_000_000, 200, 90_000),
        (false, false),
    ),
    (
        "conversion = 199 ppm",
        |t| tier(t, 5, 1_000_000, 199, 90_000),
        (false, true),
    ),
    // 3_000·1e6 / 3_000_001 = 999.99… floors to 999.
    (
        "conversion floors to 999",
        |t| tier(t, 9, 3_000_001, 3_000, 90_000),
        (false, false),
    ),
    // 1_000·1e6 / 5_000_001 = 199.99… floors to 199.
    (
        "conversion floors to 199",
        |t| tier(t, 9, 5_000_001, 1_000, 90_000),
        (false, true),
    ),
    (
        "privacy = 50_000",
        |t| tier(t, 9, 1_000_000, 5_000, 50_000),
        (false, true),
    ),
    (
        "privacy = 0",
        |t| tier(t, 9, 1_000_000, 5_000, 0),
        (false, true),
    ),
    (
        "privacy = 50_001",
        |t| tier(t, 9, 1_000_000, 5_000, 50_001),
        (true, false),
    ),
    (
        "one settlement, bad privacy",
        |t| tier(t, 1, 10, 1, 10),
        (false, true),
    ),
    (
        "one settlement, bad conversion",
        |t| tier(t, 1, 1_000_000, 0, 900_000),
        (false, true),
    ),
    // Settlements 0 is never exit_bad, whatever the other values.
    (
        "no settlements, all bad",
        |t| tier(t, 0, 1_000_000, 0, 0),
        (false, false),
    ),
    (
        "no settlements, all good",
        |t| tier(t, 0, 1_000_000, 5_000, 900_000),
        (false, false),
    ),
    (
        "no privacy data",
        |t| {
            tier(t, 9, 1_000_000, 5_000, 0);
            t.min_privacy_remaining_ppm = None;
        },
        (false, false),
    ),
];

#[test]
fn ad_tier_thresholds() {
    let cfg = GatesConfig::default();
    for gate in TIER_GATES {
        for (what, set, want) in TIER {
            let mut snap = base_snapshot();
            set(tier_mut(&mut snap, gate));
            assert_eq!(verdict(gate, &snap, None, &cfg), *want, "{gate}: {what}");
        }
    }
}

#[test]
fn ad_tier_without_impressions_cannot_enter() {
    let cfg = GatesConfig::default();
    for gate in TIER_GATES {
        let mut snap = base_snapshot();
        tier(tier_mut(&mut snap, gate), 9, 0, 0, 900_000);
        assert!(!judge(gate, &snap, None, &cfg).enter_ok, "{gate}");
    }
}

#[test]
fn each_ad_tier_judges_only_its_own_receipts() {
    let cfg = GatesConfig::default();
    let mut snap = base_snapshot();
    tier(&mut snap.ad_tiers.contextual, 9, 1_000_000, 5_000, 0);
    assert_eq!(
        verdict(Gate::AdContextual, &snap, None, &cfg),
        (false, true)
    );
    assert_eq!(verdict(Gate::AdPresence, &snap, None, &cfg), (true, false));
    assert_eq!(verdict(Gate::Ad, &snap, None, &cfg), (true, false));
}

/// Operational cases.
const OPERATIONAL: &[SnapCase] = &[
    ("miners = 3", None, |s| s.unique_miners = 3, (true, false)),
    ("miners = 2", None, |s| s.unique_miners = 2, (false, false)),
    ("miners = 1", None, |s| s.unique_miners = 1, (false, true)),
    ("miners = 0", None, |s| s.unique_miners = 0, (false, true)),
    (
        "MAD = 25 %",
        None,
        |s| spacing(s, 10_000, 2_500),
        (true, false),
    ),
    (
        "MAD just above 25 %",
        None,
        |s| spacing(s, 10_000, 2_501),
        (false, false),
    ),
    (
        "MAD = 50 %",
        None,
        |s| spacing(s, 10_000, 5_000),
        (false, false),
    ),
    (
        "MAD just above 50 %",
        None,
        |s| spacing(s, 10_000, 5_001),
        (false, true),
    ),
    // 1·1e6 / 4 = 250_000 exactly; 1·1e6 / 3 = 333_333 (floored).
    ("MAD 1 of 4", None, |s| spacing(s, 4, 1), (true, false)),
    ("MAD 1 of 3", None, |s| spacing(s, 3, 1), (false, false)),
    ("MAD 1 of 2", None, |s| spacing(s, 2, 1), (false, false)),
    // 4·1e6 / 7 = 571_428.
    ("MAD 4 of 7", None, |s| spacing(s, 7, 4), (false, true)),
    ("MAD 0", None, |s| spacing(s, 10_000, 0), (true, false)),
    // max(median, 1): a zero median divides by 1.
    ("median 0, MAD 0", None, |s| spacing(s, 0, 0), (true, false)),
    ("median 0, MAD 1", None, |s| spacing(s, 0, 1), (false, true)),
    (
        "no spacing data",
        None,
        |s| {
            s.block_spacing.median_ms = None;
            s.block_spacing.mad_ms = None;
        },
        (false, false),
    ),
    (
        "no spacing data, one miner",
        None,
        |s| {
            s.block_spacing.median_ms = None;
            s.block_spacing.mad_ms = None;
            s.unique_miners = 1;
        },
        (false, true),
    ),
];

fn spacing(s: &mut Snapshot, median: u64, mad: u64) {
    s.block_spacing.median_ms = Some(median);
    s.block_spacing.mad_ms = Some(mad);
}

#[test]
fn operational_thresholds() {
    let cfg = GatesConfig::default();
    for (what, prev, set, want) in OPERATIONAL {
        let mut snap = base_snapshot();
        set(&mut snap);
        assert_eq!(
            verdict(Gate::Operational, &snap, *prev, &cfg),
            *want,
            "operational: {what}"
        );
    }
}

#[test]
fn non_default_knobs_are_honoured() {
    let mut cfg = GatesConfig::default();
    cfg.storage.settlements_min = 50;
    let mut snap = base_snapshot();
    snap.markets.storage.settlements = 49;
    snap.markets.compute.settlements = 5;
    assert_eq!(verdict(Gate::Storage, &snap, None, &cfg), (false, false));
    assert_eq!(verdict(Gate::Compute, &snap, None, &cfg), (true, false));
    snap.markets.storage.settlements = 50;
    assert_eq!(verdict(Gate::Storage, &snap, None, &cfg), (true, false));

    let mut cfg = GatesConfig::default();
    cfg.compute.sla_exit_max_ppm = 100_000;
    cfg.compute.enter_utilization_min_ppm = 600_000;
    let mut snap = base_snapshot();
    snap.compute_proofs.count = 100;
    snap.compute_proofs.sla_violations = 10;
    snap.markets.compute.utilization_ppm = Some(599_999);
    assert_eq!(verdict(Gate::Compute, &snap, None, &cfg), (false, false));
    snap.compute_proofs.sla_violations = 11;
    assert_eq!(verdict(Gate::Compute, &snap, None, &cfg), (false, true));

    let mut cfg = GatesConfig::default();
    cfg.economics.tx_count_min = 100;
    cfg.economics.volatility_exit_max_bps = 5_000;
    cfg.economics.margin_min_ppm = -100_000;
    let mut snap = base_snapshot();
    snap.tx_count = 99;
    assert_eq!(verdict(Gate::Economics, &snap, None, &cfg), (false, true));
    let mut snap = base_snapshot();
    snap.controls.reward_volatility_bps = 5_000;
    assert_eq!(verdict(Gate::Economics, &snap, None, &cfg), (false, false));
    let mut snap = base_snapshot();
    snap.markets.energy.provider_margin_ppm = Some(-100_001);
    assert_eq!(verdict(Gate::Economics, &snap, None, &cfg), (false, true));

    let mut cfg = GatesConfig::default();
    cfg.ad_contextual.exit_privacy_max_ppm = 80_000;
    cfg.ad_contextual.enter_privacy_min_exclusive_ppm = 80_000;
    let mut snap = base_snapshot();
    tier(&mut snap.ad_tiers.contextual, 9, 1_000_000, 5_000, 80_000);
    tier(&mut snap.ad_tiers.presence, 9, 1_000_000, 5_000, 80_000);
    assert_eq!(
        verdict(Gate::AdContextual, &snap, None, &cfg),
        (false, true)
    );
    assert_eq!(verdict(Gate::AdPresence, &snap, None, &cfg), (true, false));

    let mut cfg = GatesConfig::default();
    cfg.operational.enter_miners_min = 5;
    cfg.operational.exit_spacing_mad_max_ppm = 250_000;
    let mut snap = base_snapshot();
    snap.unique_miners = 4;
    assert_eq!(
        verdict(Gate::Operational, &snap, None, &cfg),
        (false, false)
    );
    spacing(&mut snap, 10_000, 2_501);
    assert_eq!(verdict(Gate::Operational, &snap, None, &cfg), (false, true));
}

#[test]
fn judgements_record_the_metrics_judged() {
    let cfg = GatesConfig::default();
    let mut snap = base_snapshot();
    snap.markets.energy.utilization_ppm = Some(123_456);
    snap.markets.energy.provider_margin_ppm = None;
    let m = judge(Gate::Energy, &snap, None, &cfg).metrics;
    assert_eq!(m.get("utilization_ppm"), Some(&Some(123_456)));
    assert_eq!(m.get("provider_margin_ppm"), Some(&None));

    snap.treasury_inflow_micro = 777;
    let m = judge(Gate::Economics, &snap, Some(999), &cfg).metrics;
    assert_eq!(m.get("treasury_inflow_micro"), Some(&Some(777)));
    assert_eq!(m.get("prev_treasury_inflow_micro"), Some(&Some(999)));

    tier(&mut snap.ad_tiers.presence, 9, 1_000_000, 4_321, 60_000);
    let m = judge(Gate::AdPresence, &snap, None, &cfg).metrics;
    assert_eq!(m.get("conversion_ppm"), Some(&Some(4_321)));
    assert_eq!(m.get("min_privacy_remaining_ppm"), Some(&Some(60_000)));

    spacing(&mut snap, 10_000, 1_234);
    let m = judge(Gate::Operational, &snap, None, &cfg).metrics;
    assert_eq!(m.get("spacing_mad_ppm"), Some(&Some(123_400)));
}

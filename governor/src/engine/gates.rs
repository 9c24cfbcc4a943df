//! The eight gates and what each judges (docs/gates.md). Pure functions of one snapshot.

use std::collections::BTreeMap;

pub use tb_config::Gate;
use tb_config::{AdTierGate, GatesConfig, MarketGate};
use tb_replay::snapshot::{MarketStats, TierStats};
use tb_replay::Snapshot;

/// The metrics a gate judged, by name; `None` = no data.
pub type Metrics = BTreeMap<String, Option<i64>>;

/// One gate's verdict on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// All enter conditions hold.
    pub enter_ok: bool,
    /// Some exit condition holds.
    pub exit_bad: bool,
    /// Why entering is not ok (empty when it is).
    pub enter_fails: Vec<String>,
    /// Why the gate is bad (empty when it is not).
    pub exit_reasons: Vec<String>,
    /// The values judged.
    pub metrics: Metrics,
}

/// Collects failed conditions with readable messages.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    /// Requires `lo ≤ v ≤ hi`.
    fn band(&mut self, what: &str, v: i64, lo: i64, hi: i64, unit: &str) {
        if v < lo {
            self.0.push(format!("{what} {v}{unit} < {lo}{unit}"));
        } else if v > hi {
            self.0.push(format!("{what} {v}{unit} > {hi}{unit}"));
        }
    }

    /// Requires `cond`; otherwise records `msg`.
    fn require(&mut self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            self.0.push(msg());
        }
    }
}

fn int(v: u64) -> i64 {
    // Every snapshot value is ≤ 2^53 − 1, so this never saturates in practice.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `num · 1e6 / den` (floored), saturating at `i64::MAX` rather than wrapping.
fn ppm(num: u64, den: u64) -> i64 {
    let r = u128::from(num) * 1_000_000 / u128::from(den.max(1));
    i64::try_from(r).unwrap_or(i64::MAX)
}

fn metrics<const N: usize>(pairs: [(&str, Option<i64>); N]) -> Metrics {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Judges `gate` on `snap`; `prev_inflow` is the previous epoch's treasury inflow.
pub fn judge(
    gate: Gate,
    snap: &Snapshot,
    prev_inflow: Option<u64>,
    cfg: &GatesConfig,
) -> Judgement {
    let markets = snap.markets.as_array();
    match gate {
        Gate::Economics => economics(snap, prev_inflow, cfg),
        Gate::Storage => market(markets[0], None, &cfg.storage),
        Gate::Compute => market(markets[1], Some(snap), &cfg.compute),
        Gate::Energy => market(markets[2], None, &cfg.energy),
        Gate::Ad => market(markets[3], None, &cfg.ad),
        Gate::AdContextual => tier(&snap.ad_tiers.contextual, &cfg.ad_contextual),
        Gate::AdPresence => tier(&snap.ad_tiers.presence, &cfg.ad_presence),
        Gate::Operational => operational(snap, cfg),
    }
}

fn economics(snap: &Snapshot, prev_inflow: Option<u64>, cfg: &GatesConfig) -> Judgement {
    let c = &cfg.economics;
    let vol = snap.controls.reward_volatility_bps;
    let inflow = snap.treasury_inflow_micro;
    let mut enter = Checks::default();
    let mut exit = Checks::default();
    enter.require(snap.tx_count >= c.tx_count_min, || {
        format!("tx_count {} < {}", snap.tx_count, c.tx_count_min)
    });
    enter.require(snap.tx_volume_micro >= c.tx_volume_min_micro, || {
        format!(
            "tx_volume_micro {} < {}",
            snap.tx_volume_micro, c.tx_volume_min_micro
        )
    });
    enter.require(vol <= c.volatility_enter_max_bps, || {
        format!(
            "reward_volatility {vol}bps > {}bps",
            c.volatility_enter_max_bps
        )
    });
    enter.require(inflow > 0, || "treasury inflow is 0".to_owned());
    if let Some(prev) = prev_inflow {
        enter.require(u128::from(inflow) * 2 >= u128::from(prev), || {
            format!("treasury inflow {inflow} fell below half of the previous epoch's {prev}")
        });
    }
    exit.require(snap.tx_count >= c.tx_count_min, || {
        format!("tx_count {} < {}", snap.tx_count, c.tx_count_min)
    });
    exit.require(inflow > 0, || "treasury inflow is 0".to_owned());
    exit.require(vol <= c.volatility_exit_max_bps, || {
        format!(
            "reward_volatility {vol}bps > {}bps",
            c.volatility_exit_max_bps
        )
    });
    for (name, m) in ["storage", "compute", "energy", "ad"]
        .iter()
        .zip(snap.markets.as_array())
    {
        match (m.utilization_ppm, m.provider_margin_ppm) {
            (Some(u), Some(margin)) => {
                for checks in [&mut enter, &mut exit] {
                    let util = format!("{name} utilization");
                    checks.band(
                        &util,
                        int(u),
                        int(c.utilization_min_ppm),
                        int(c.utilization_max_ppm),
                        "ppm",
                    );
                    let mar = format!("{name} margin");
                    checks.band(&mar, margin, c.margin_min_ppm, c.margin_max_ppm, "ppm");
                }
            }
            _ => enter.0.push(format!("{name}: no data")),
        }
    }
    Judgement {
        enter_ok: enter.0.is_empty(),
        exit_bad: !exit.0.is_empty(),
        enter_fails: enter.0,
        exit_reasons: exit.0,
        metrics: metrics([
            ("prev_treasury_inflow_micro", prev_inflow.map(int)),
            ("reward_volatility_bps", Some(int(vol))),
            ("treasury_inflow_micro", Some(int(inflow))),
            ("tx_count", Some(int(snap.tx_count))),
            ("tx_volume_micro", Some(int(snap.tx_volume_micro))),
        ]),
    }
}

/// A market gate; `proofs` is given for compute, whose proof SLA also counts.
fn market(m: &MarketStats, proofs: Option<&Snapshot>, c: &MarketGate) -> Judgement {
    let mut enter = Checks::default();
    let mut exit = Checks::default();
    match (m.utilization_ppm, m.provider_margin_ppm) {
        (Some(u), Some(margin)) => {
            enter.require(m.settlements >= c.settlements_min, || {
                format!("settlements {} < {}", m.settlements, c.settlements_min)
            });
            let (u, lo, hi) = (
                int(u),
                int(c.enter_utilization_min_ppm),
                int(c.enter_utilization_max_ppm),
            );
            enter.band("utilization", u, lo, hi, "ppm");
            enter.band(
                "margin",
                margin,
                c.enter_margin_min_ppm,
                c.enter_margin_max_ppm,
                "ppm",
            );
            let (lo, hi) = (
                int(c.exit_utilization_min_ppm),
                int(c.exit_utilization_max_ppm),
            );
            exit.band("utilization", u, lo, hi, "ppm");
            exit.band(
                "margin",
                margin,
                c.exit_margin_min_ppm,
                c.exit_margin_max_ppm,
                "ppm",
            );
        }
        _ => enter.0.push("no data".to_owned()),
    }
    let mut out = metrics([
        ("provider_margin_ppm", m.provider_margin_ppm),
        ("settlements", Some(int(m.settlements))),
        ("utilization_ppm", m.utilization_ppm.map(int)),
    ]);
    if let Some(snap) = proofs {
        let p = &snap.compute_proofs;
        let violations = u128::from(p.sla_violations) * 1_000_000;
        enter.require(
            violations <= u128::from(c.sla_enter_max_ppm) * u128::from(p.count),
            || {
                format!(
                    "proof SLA violations {}/{} > {}ppm",
                    p.sla_violations, p.count, c.sla_enter_max_ppm
                )
            },
        );
        exit.require(
            violations <= u128::from(c.sla_exit_max_ppm) * u128::from(p.count),
            || {
                format!(
                    "proof SLA violations {}/{} > {}ppm",
                    p.sla_violations, p.count, c.sla_exit_max_ppm
                )
            },
        );
        out.insert("proofs".to_owned(), Some(int(p.count)));
        out.insert("sla_violations".to_owned(), Some(int(p.sla_violations)));
    }
    Judgement {
        enter_ok: enter.0.is_empty(),
        exit_bad: !exit.0.is_empty(),
        enter_fails: enter.0,
        exit_reasons: exit.0,
        metrics: out,
    }
}

fn tier(t: &TierStats, c: &AdTierGate) -> Judgement {
    let conversion = (t.impressions > 0).then(|| ppm(t.conversions, t.impressions));
    let mut enter = Checks::default();
    let mut exit = Checks::default();
    enter.require(t.settlements >= c.settlements_min, || {
        format!("settlements {} < {}", t.settlements, c.settlements_min)
    });
    match conversion {
        Some(conv) => {
            enter.require(conv >= int(c.enter_conversion_min_ppm), || {
                format!("conversion {conv}ppm < {}ppm", c.enter_conversion_min_ppm)
            });
            if t.settlements > 0 {
                exit.require(conv >= int(c.exit_conversion_min_ppm), || {
                    format!("conversion {conv}ppm < {}ppm", c.exit_conversion_min_ppm)
                });
            }
        }
        None => enter.0.push("no impressions".to_owned()),
    }
    match t.min_privacy_remaining_ppm {
        Some(p) => {
            enter.require(p > c.enter_privacy_min_exclusive_ppm, || {
                format!(
                    "min privacy {p}ppm <= {}ppm",
                    c.enter_privacy_min_exclusive_ppm
                )
            });
            if t.settlements > 0 {
                exit.require(p > c.exit_privacy_max_ppm, || {
                    format!("min privacy {p}ppm <= {}ppm", c.exit_privacy_max_ppm)
                });
            }
        }
        None => enter.0.push("no privacy data".to_owned()),
    }
    Judgement {
        enter_ok: enter.0.is_empty(),
        exit_bad: !exit.0.is_empty(),
        enter_fails: enter.0,
        exit_reasons: exit.0,
        metrics: metrics([
            ("conversion_ppm", conversion),
            (
                "min_privacy_remaining_ppm",
                t.min_privacy_remaining_ppm.map(int),
            ),
            ("settlements", Some(int(t.settlements))),
        ]),
    }
}

fn operational(snap: &Snapshot, cfg: &GatesConfig) -> Judgement {
    let c = &cfg.operational;
    let miners = snap.unique_miners;
    let s = &snap.block_spacing;
    let ratio = match (s.median_ms, s.mad_ms) {
        (Some(median), Some(mad)) => Some(int(
            (u128::from(mad) * 1_000_000 / u128::from(median.max(1))) as u64
        )),
        _ => None,
    };
    let mut enter = Checks::default();
    let mut exit = Checks::default();
    enter.require(miners >= c.enter_miners_min, || {
        format!("unique_miners {miners} < {}", c.enter_miners_min)
    });
    exit.require(miners >= c.exit_miners_min, || {
        format!("unique_miners {miners} < {}", c.exit_miners_min)
    });
    match ratio {
        Some(r) => {
            enter.require(r <= int(c.enter_spacing_mad_max_ppm), || {
                format!(
                    "spacing MAD {r}ppm of median > {}ppm",
                    c.enter_spacing_mad_max_ppm
                )
            });
            exit.require(r <= int(c.exit_spacing_mad_max_ppm), || {
                format!(
                    "spacing MAD {r}ppm of median > {}ppm",
                    c.exit_spacing_mad_max_ppm
                )
            });
        }
        None => enter.0.push("no block spacing data".to_owned()),
    }
    Judgement {
        enter_ok: enter.0.is_empty(),
        exit_bad: !exit.0.is_empty(),
        enter_fails: enter.0,
        exit_reasons: exit.0,
        metrics: metrics([
            ("spacing_mad_ppm", ratio),
            ("unique_miners", Some(int(miners))),
        ]),
    }
}

//! `[gates.*]`: streak rules and thresholds of the eight gates (docs/configuration.md, "[gates.*]"; the rules in docs/gates.md).

use std::fmt;
use std::ops::{Index, IndexMut};
use std::str::FromStr;

use crate::knobs::knob_table;
use serde::{Deserialize, Serialize};

/// The eight gate names in the fixed evaluation order; also the `[gates.<name>]` table names.
pub const GATE_NAMES: [&str; 8] = [
    "economics",
    "storage",
    "compute",
    "energy",
    "ad",
    "ad_contextual",
    "ad_presence",
    "operational",
];

/// The gates, in the fixed evaluation order ([`GATE_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Whole-economy health: activity, treasury, reward stability, every market.
    Economics,
    /// The storage market.
    Storage,
    /// The compute market (plus proof SLA).
    Compute,
    /// The energy market.
    Energy,
    /// The ad market.
    Ad,
    /// Contextual ads.
    AdContextual,
    /// Presence ads.
    AdPresence,
    /// Block production: miners and spacing.
    Operational,
}

impl Gate {
    /// Every gate in evaluation order.
    pub const ALL: [Gate; 8] = [
        Gate::Economics,
        Gate::Storage,
        Gate::Compute,
        Gate::Energy,
        Gate::Ad,
        Gate::AdContextual,
        Gate::AdPresence,
        Gate::Operational,
    ];

    /// The gate's name.
    pub fn as_str(self) -> &'static str {
        GATE_NAMES[self.index()]
    }

    /// Position in [`Gate::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Gate {
    type Err = ParseGateError;

    /// Exactly one of [`GATE_NAMES`].
    fn from_str(s: &str) -> Result<Self, ParseGateError> {
        Gate::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| ParseGateError {
                value: s.to_owned(),
            })
    }
}

/// A string that is not one of the eight gate names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown gate {value:?} (one of: {})", GATE_NAMES.join(", "))]
pub struct ParseGateError {
    /// The rejected input, kept so callers (RPC, CLI) can echo it back.
    pub value: String,
}

/// One value per gate, indexed by [`Gate`] and iterated in the fixed gate order. Serialised as
/// the array of its eight values in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PerGate<T>([T; 8]);

impl<T> PerGate<T> {
    /// The value of every gate, `f(gate)`, computed in gate order.
    pub fn from_fn(f: impl FnMut(Gate) -> T) -> Self {
        PerGate(Gate::ALL.map(f))
    }

    /// Every gate with its value, in gate order.
    pub fn iter(&self) -> impl Iterator<Item = (Gate, &T)> {
        Gate::ALL.into_iter().zip(&self.0)
    }

    /// The values turned by `f`, gate by gate.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerGate<U> {
        PerGate(self.0.map(f))
    }
}

impl<T> From<[T; 8]> for PerGate<T> {
    /// The values given in gate order.
    fn from(values: [T; 8]) -> Self {
        PerGate(values)
    }
}

impl<T> Index<Gate> for PerGate<T> {
    type Output = T;

    fn index(&self, gate: Gate) -> &T {
        &self.0[gate.index()]
    }
}

impl<T> IndexMut<Gate> for PerGate<T> {
    fn index_mut(&mut self, gate: Gate) -> &mut T {
        &mut self.0[gate.index()]
    }
}

impl<T> IntoIterator for PerGate<T> {
    type Item = (Gate, T);
    type IntoIter = std::iter::Zip<std::array::IntoIter<Gate, 8>, std::array::IntoIter<T, 8>>;

    /// Every gate with its value, in gate order.
    fn into_iter(self) -> Self::IntoIter {
        Gate::ALL.into_iter().zip(self.0)
    }
}

/// The streak rule shared by every gate, copied out of a gate table by `streak()` so the engine
/// can run one streak state machine for all gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreakConfig {
    /// Consecutive `enter_ok` epochs needed before an Enter intent (entering is slow).
    pub enter_streak_required: u64,
    /// Consecutive `exit_bad` epochs needed before an Exit intent (leaving is fast).
    pub exit_streak_required: u64,
    /// No Enter before this many epochs have closed (`e + 1 ≥ min_epochs`).
    pub min_epochs: u64,
}

knob_table! {
    /// `[gates.economics]`: when the economics autopilot may take over the block reward and
    /// subsidy shares. Bands are inclusive.
    pub struct EconomicsGate {
        /// Consecutive `enter_ok` epochs needed to enter (≥ 1).
        pub enter_streak_required: u64 = 3,
        /// Consecutive `exit_bad` epochs needed to exit (≥ 1).
        pub exit_streak_required: u64 = 2,
        /// No Enter before this many epochs have closed.
        pub min_epochs: u64 = 2,
        /// Enter needs at least this many transactions in the epoch; fewer is `exit_bad`.
        pub tx_count_min: u64 = 10,
        /// Enter needs at least this much transaction volume in the epoch.
        pub tx_volume_min_micro: u64 = 1_000_000_000,
        /// Enter needs `reward_volatility_bps` at most this.
        pub volatility_enter_max_bps: u64 = 2_000,
        /// Volatility above this is `exit_bad` (looser than the enter bound: hysteresis).
        pub volatility_exit_max_bps: u64 = 3_000,
        /// Lower end of the utilization band every market must be in (enter: all four with data;
        /// exit_bad: any market with data outside it).
        pub utilization_min_ppm: u64 = 10_000,
        /// Upper end of that utilization band.
        pub utilization_max_ppm: u64 = 950_000,
        /// Lower end of the provider-margin band, used to enter and to exit (signed ppm).
        pub margin_min_ppm: i64 = -500_000,
        /// Upper end of that provider-margin band (signed ppm).
        pub margin_max_ppm: i64 = 950_000,
    }
}

knob_table! {
    /// `[gates.storage]`, `[gates.compute]`, `[gates.energy]`, `[gates.ad]`: when a market moves
    /// from rehearsal to trade. Enter bands are tighter than exit bands (hysteresis); all bands
    /// are inclusive.
    pub struct MarketGate {
        /// Consecutive `enter_ok` epochs needed to enter (≥ 1).
        pub enter_streak_required: u64 = 3,
        /// Consecutive `exit_bad` epochs needed to exit (≥ 1).
        pub exit_streak_required: u64 = 2,
        /// No Enter before this many epochs have closed.
        pub min_epochs: u64 = 2,
        /// Enter needs at least this many accepted settlements in the epoch.
        pub settlements_min: u64 = 5,
        /// Enter needs utilization at least this.
        pub enter_utilization_min_ppm: u64 = 50_000,
        /// Enter needs utilization at most this.
        pub enter_utilization_max_ppm: u64 = 900_000,
        /// Enter needs provider margin at least this (signed ppm).
        pub enter_margin_min_ppm: i64 = 0,
        /// Enter needs provider margin at most this (signed ppm).
        pub enter_margin_max_ppm: i64 = 800_000,
        /// With data, utilization below this is `exit_bad`.
        pub exit_utilization_min_ppm: u64 = 10_000,
        /// With data, utilization above this is `exit_bad`.
        pub exit_utilization_max_ppm: u64 = 950_000,
        /// With data, provider margin below this is `exit_bad` (signed ppm).
        pub exit_margin_min_ppm: i64 = -250_000,
        /// With data, provider margin above this is `exit_bad` (signed ppm).
        pub exit_margin_max_ppm: i64 = 950_000,
        /// Enter needs `sla_violations·1e6 ≤ this·count` (proof latency over budget). Judged only
        /// by the compute gate; ignored for storage, energy and ad.
        pub sla_enter_max_ppm: u64 = 10_000,
        /// `sla_violations·1e6 > this·count` is `exit_bad`. Judged only by the compute gate;
        /// ignored for storage, energy and ad.
        pub sla_exit_max_ppm: u64 = 50_000,
    }
}

knob_table! {
    /// `[gates.ad_contextual]`, `[gates.ad_presence]`: when an ad tier may be enabled, judged on
    /// that tier's receipts only.
    pub struct AdTierGate {
        /// Consecutive `enter_ok` epochs needed to enter (≥ 1).
        pub enter_streak_required: u64 = 3,
        /// Consecutive `exit_bad` epochs needed to exit (≥ 1).
        pub exit_streak_required: u64 = 2,
        /// No Enter before this many epochs have closed.
        pub min_epochs: u64 = 2,
        /// Enter needs at least this many settlements of the tier.
        pub settlements_min: u64 = 5,
        /// Enter needs `conversions·1e6 / impressions` at least this.
        pub enter_conversion_min_ppm: u64 = 1_000,
        /// Enter needs `min_privacy_remaining_ppm` strictly greater than this.
        pub enter_privacy_min_exclusive_ppm: u64 = 50_000,
        /// With settlements, `conversions·1e6 / impressions` below this is `exit_bad`.
        pub exit_conversion_min_ppm: u64 = 200,
        /// With settlements, `min_privacy_remaining_ppm` at or below this is `exit_bad`.
        pub exit_privacy_max_ppm: u64 = 50_000,
    }
}

knob_table! {
    /// `[gates.operational]`: when the launch counts as operational (enough miners, regular
    /// block spacing).
    pub struct OperationalGate {
        /// Consecutive `enter_ok` epochs needed to enter (≥ 1).
        pub enter_streak_required: u64 = 3,
        /// Consecutive `exit_bad` epochs needed to exit (≥ 1).
        pub exit_streak_required: u64 = 2,
        /// No Enter before this many epochs have closed.
        pub min_epochs: u64 = 2,
        /// Enter needs at least this many distinct miners in the epoch.
        pub enter_miners_min: u64 = 3,
        /// Enter needs `mad_ms·1e6 / max(median_ms, 1)` at most this.
        pub enter_spacing_mad_max_ppm: u64 = 250_000,
        /// Fewer distinct miners than this is `exit_bad`.
        pub exit_miners_min: u64 = 2,
        /// A spacing ratio above this is `exit_bad`.
        pub exit_spacing_mad_max_ppm: u64 = 500_000,
    }
}

macro_rules! impl_streak {
    ($($gate:ty),*) => {
        $(
            impl $gate {
                /// The streak rule of this gate (`enter_streak_required`, `exit_streak_required`,
                /// `min_epochs`).
                pub fn streak(&self) -> StreakConfig {
                    StreakConfig {
                        enter_streak_required: self.enter_streak_required,
                        exit_streak_required: self.exit_streak_required,
                        min_epochs: self.min_epochs,
                    }
                }
            }
        )*
    };
}

impl_streak!(EconomicsGate, MarketGate, AdTierGate, OperationalGate);

/// `[gates]`: one table per gate, in the fixed evaluation order. Decision-relevant: part of
/// `config_hash`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatesConfig {
    /// `[gates.economics]`: the economics autopilot gate.
    pub economics: EconomicsGate,
    /// `[gates.storage]`: the storage market gate.
    pub storage: MarketGate,
    /// `[gates.compute]`: the compute market gate (the only one that judges the SLA knobs).
    pub compute: MarketGate,
    /// `[gates.energy]`: the energy market gate.
    pub energy: MarketGate,
    /// `[gates.ad]`: the ad market gate.
    pub ad: MarketGate,
    /// `[gates.ad_contextual]`: the contextual ad tier gate.
    pub ad_contextual: AdTierGate,
    /// `[gates.ad_presence]`: the presence ad tier gate.
    pub ad_presence: AdTierGate,
    /// `[gates.operational]`: the launch-operational gate.
    pub operational: OperationalGate,
}

impl GatesConfig {
    /// The streak rule of `gate`.
    pub fn streak(&self, gate: Gate) -> StreakConfig {
        match gate {
            Gate::Economics => self.economics.streak(),
            Gate::Storage => self.storage.streak(),
            Gate::Compute => self.compute.streak(),
            Gate::Energy => self.energy.streak(),
            Gate::Ad => self.ad.streak(),
            Gate::AdContextual => self.ad_contextual.streak(),
            Gate::AdPresence => self.ad_presence.streak(),
            Gate::Operational => self.operational.streak(),
        }
    }

    /// Every gate's streak rule, in the fixed evaluation order ([`GATE_NAMES`]).
    pub fn streaks(&self) -> [(&'static str, StreakConfig); 8] {
        Gate::ALL.map(|gate| (gate.as_str(), self.streak(gate)))
    }

    /// The streak rule of the gate called `gate`, or `None` for an unknown name.
    pub fn streak_of(&self, gate: &str) -> Option<StreakConfig> {
        gate.parse().ok().map(|gate| self.streak(gate))
    }

    /// Every gate knob as `("<gate>.<knob>", value)`, gates in evaluation order.
    pub fn knobs(&self) -> Vec<(String, i128)> {
        let tables: [(&str, Vec<(&'static str, i128)>); 8] = [
            (GATE_NAMES[0], self.economics.knobs()),
            (GATE_NAMES[1], self.storage.knobs()),
            (GATE_NAMES[2], self.compute.knobs()),
            (GATE_NAMES[3], self.energy.knobs()),
            (GATE_NAMES[4], self.ad.knobs()),
            (GATE_NAMES[5], self.ad_contextual.knobs()),
            (GATE_NAMES[6], self.ad_presence.knobs()),
            (GATE_NAMES[7], self.operational.knobs()),
        ];
        tables
            .into_iter()
            .flat_map(|(gate, knobs)| {
                knobs
                    .into_iter()
                    .map(move |(knob, value)| (format!("{gate}.{knob}"), value))
            })
            .collect()
    }
}

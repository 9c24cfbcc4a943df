//! The economics control law (docs/economics.md, "Control law"): block reward, volatility, baselines and subsidy shares, in
//! integer arithmetic exactly as written in the design.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tb_config::EconomicsConfig;

use crate::snapshot::{Controls, PerMarket};
use crate::stats::{lower_median, nearest_rank};

/// Subsidy share each market starts with, bps, in market order.
pub const INITIAL_SHARES_BPS: [i64; 4] = [1_500, 3_000, 2_000, 3_500];
/// Target utilization per market, ppm.
pub const TARGET_UTILIZATION_PPM: [i64; 4] = [400_000, 600_000, 500_000, 500_000];
/// Target provider margin per market, ppm.
pub const TARGET_MARGIN_PPM: [i64; 4] = [500_000, 500_000, 250_000, 300_000];

const PPM: u128 = 1_000_000;

/// What the control law carries from one epoch to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    /// EMA of transactions per epoch, ×1000 so small counts still move it.
    pub baseline_tx_count_milli: u64,
    /// EMA of transaction volume per epoch.
    pub baseline_tx_volume_micro: u64,
    /// EMA of distinct miners per epoch, ×1000.
    pub baseline_miners_milli: u64,
    /// The last `volatility_window` recommended rewards, oldest first.
    pub recent_rewards: VecDeque<u64>,
    /// Current subsidy shares, bps, market order; they always sum to 10_000.
    pub subsidy_share_bps: [i64; 4],
}

impl ControlState {
    /// The state before genesis.
    pub fn new(cfg: &EconomicsConfig) -> Self {
        ControlState {
            baseline_tx_count_milli: cfg.baseline_tx_count_milli,
            baseline_tx_volume_micro: cfg.baseline_tx_volume_micro,
            baseline_miners_milli: cfg.baseline_miners_milli,
            recent_rewards: VecDeque::new(),
            subsidy_share_bps: INITIAL_SHARES_BPS,
        }
    }
}

/// The epoch figures the control law reads (already clamped to MAX_SAFE).
#[derive(Debug, Clone, Copy)]
pub struct ControlInputs {
    /// Transactions in the epoch.
    pub tx_count: u64,
    /// Transaction volume in the epoch.
    pub tx_volume_micro: u64,
    /// Distinct miners in the epoch.
    pub unique_miners: u64,
    /// Cumulative coinbase since genesis, this epoch included.
    pub emitted_micro: u64,
    /// Per market utilization, market order.
    pub utilization_ppm: [Option<u64>; 4],
    /// Per market provider margin, market order.
    pub provider_margin_ppm: [Option<i64>; 4],
}

fn clamp(v: u128, lo: u64, hi: u64) -> u64 {
    // lo ≤ hi is a config invariant; the result fits in u64 because it is ≤ hi.
    v.clamp(u128::from(lo), u128::from(hi.max(lo))) as u64
}

fn ema(obs: u128, prev: u64, alpha: u64, lo: u64, hi: u64) -> u64 {
    let a = u128::from(alpha);
    clamp((a * obs + (PPM - a) * u128::from(prev)) / PPM, lo, hi)
}

/// Closes one epoch: returns its `controls` and advances the state.
pub fn close(state: &mut ControlState, inp: &ControlInputs, cfg: &EconomicsConfig) -> Controls {
    let floor = u128::from(cfg.ratio_floor_ppm);
    let r_tx = (u128::from(inp.tx_count) * 1_000_000_000
        / u128::from(state.baseline_tx_count_milli.max(1)))
    .max(floor);
    let r_vol = (u128::from(inp.tx_volume_micro) * PPM
        / u128::from(state.baseline_tx_volume_micro.max(1)))
    .max(floor);
    let with_data: Vec<u64> = inp.utilization_ppm.iter().flatten().copied().collect();
    let avg_util = match with_data.len() {
        0 => 0,
        n => with_data.iter().map(|&u| u128::from(u)).sum::<u128>() / n as u128,
    };
    let activity = clamp(
        r_tx.saturating_mul(r_vol)
            .isqrt()
            .saturating_mul(PPM + avg_util)
            / PPM,
        cfg.activity_min_ppm,
        cfg.activity_max_ppm,
    );
    let r_m = (u128::from(inp.unique_miners) * 1_000_000_000
        / u128::from(state.baseline_miners_milli.max(1)))
    .max(floor);
    let decent = clamp(
        (r_m * PPM).isqrt(),
        cfg.decentralization_min_ppm,
        cfg.decentralization_max_ppm,
    );
    let max_supply = u128::from(cfg.max_supply_micro.max(1));
    let remaining = max_supply - u128::from(inp.emitted_micro).min(max_supply);
    let decay = remaining * remaining * PPM / (max_supply * max_supply);
    // Saturating: with default knobs the product is far below u128::MAX, but knobs are operator input.
    let reward = (u128::from(cfg.base_reward_micro)
        .saturating_mul(u128::from(activity))
        .saturating_mul(u128::from(decent))
        .saturating_mul(decay)
        / 1_000_000_000_000_000_000)
        .min(remaining);
    // reward ≤ remaining ≤ max_supply ≤ MAX_SAFE (validated), so it fits.
    let reward = reward as u64;

    state.recent_rewards.push_back(reward);
    while state.recent_rewards.len() > cfg.volatility_window.max(1) as usize {
        state.recent_rewards.pop_front();
    }
    let volatility = volatility_bps(&state.recent_rewards);

    state.baseline_tx_count_milli = ema(
        u128::from(inp.tx_count) * 1000,
        state.baseline_tx_count_milli,
        cfg.ema_alpha_ppm,
        cfg.baseline_tx_count_min_milli,
        cfg.baseline_tx_count_max_milli,
    );
    state.baseline_tx_volume_micro = ema(
        u128::from(inp.tx_volume_micro),
        state.baseline_tx_volume_micro,
        cfg.ema_alpha_ppm,
        cfg.baseline_tx_volume_min_micro,
        cfg.baseline_tx_volume_max_micro,
    );
    state.baseline_miners_milli = ema(
        u128::from(inp.unique_miners) * 1000,
        state.baseline_miners_milli,
        cfg.ema_alpha_ppm,
        cfg.baseline_miners_min_milli,
        cfg.baseline_miners_max_milli,
    );
    state.subsidy_share_bps = next_shares(
        &state.subsidy_share_bps,
        &inp.utilization_ppm,
        &inp.provider_margin_ppm,
    );

    Controls {
        block_reward_per_block_micro: reward,
        reward_volatility_bps: volatility,
        activity_ppm: activity,
        decentralization_ppm: decent,
        decay_ppm: decay as u64,
        baseline_tx_count_milli: state.baseline_tx_count_milli,
        baseline_tx_volume_micro: state.baseline_tx_volume_micro,
        baseline_miners_milli: state.baseline_miners_milli,
        subsidy_share_bps: PerMarket::from_array(state.subsidy_share_bps),
    }
}

/// `reward_volatility_bps` over the recent rewards (this epoch's included).
pub fn volatility_bps(rewards: &VecDeque<u64>) -> u64 {
    const CAP: u64 = 10_000_000;
    if rewards.len() < 2 {
        return 0;
    }
    let mut diffs: Vec<u64> = rewards
        .iter()
        .zip(rewards.iter().skip(1))
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    diffs.sort_unstable();
    let mut sorted: Vec<u64> = rewards.iter().copied().collect();
    sorted.sort_unstable();
    let median = lower_median(&sorted).unwrap_or(0);
    let p90 = nearest_rank(&diffs, 90).unwrap_or(0);
    if median == 0 {
        return CAP;
    }
    (u128::from(p90) * 10_000 / u128::from(median)).min(u128::from(CAP)) as u64
}

/// One step of the subsidy share law.
pub fn next_shares(
    shares: &[i64; 4],
    utilization: &[Option<u64>; 4],
    margin: &[Option<i64>; 4],
) -> [i64; 4] {
    let mut w = [0i128; 4];
    for i in 0..4 {
        let (u, m) = match (utilization[i], margin[i]) {
            (Some(u), Some(m)) => (i128::from(u), i128::from(m)),
            _ => (
                i128::from(TARGET_UTILIZATION_PPM[i]),
                i128::from(TARGET_MARGIN_PPM[i]),
            ),
        };
        let distress = (600_000 * (i128::from(TARGET_UTILIZATION_PPM[i]) - u)
            + 400_000 * (i128::from(TARGET_MARGIN_PPM[i]) - m))
            / 1_000_000;
        w[i] = distress.max(0) + 10_000;
    }
    let total: i128 = w.iter().sum();
    // The first market with the largest weight absorbs rounding.
    let heaviest = (0..4).fold(0, |best, i| if w[i] > w[best] { i } else { best });
    let mut target = [0i128; 4];
    for i in 0..4 {
        target[i] = w[i] * 10_000 / total;
    }
    target[heaviest] += 10_000 - target.iter().sum::<i128>();
    let mut next = [0i128; 4];
    for i in 0..4 {
        let s = i128::from(shares[i]);
        next[i] = s + 50_000 * (target[i] - s) / 1_000_000;
    }
    next[heaviest] += 10_000 - next.iter().sum::<i128>();
    // Each share stays within [0, 10_000], so the narrowing is exact.
    next.map(|v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_match_a_hand_computed_step() {
        // Worked by hand in docs/economics.md: distress weights 18_531, 93_310, 10_000, 10_000.
        let next = next_shares(
            &INITIAL_SHARES_BPS,
            &[Some(450_971), Some(570_711), Some(491_814), Some(532_831)],
            &[Some(402_216), Some(335_657), Some(277_751), Some(417_478)],
        );
        assert_eq!(next, [1_496, 3_203, 1_938, 3_363]);
        assert_eq!(next.iter().sum::<i64>(), 10_000);
    }

    #[test]
    fn shares_without_data_use_targets_and_still_sum() {
        let next = next_shares(&[2_500; 4], &[None; 4], &[None; 4]);
        assert_eq!(next.iter().sum::<i64>(), 10_000);
        assert_eq!(next, [2_500; 4]);
    }

    #[test]
    fn reward_matches_a_hand_computed_epoch() {
        let cfg = EconomicsConfig::default();
        let mut st = ControlState::new(&cfg);
        let c = close(
            &mut st,
            &ControlInputs {
                tx_count: 4_734,
                tx_volume_micro: 23_482_362_719,
                unique_miners: 6,
                emitted_micro: 216_000_579,
                utilization_ppm: [Some(450_971), Some(570_711), Some(491_814), Some(532_831)],
                provider_margin_ppm: [Some(402_216), Some(335_657), Some(277_751), Some(417_478)],
            },
            &cfg,
        );
        // r_m = 6e9/10_000 = 600_000; isqrt(6e11) = 774_596.
        assert_eq!(c.decentralization_ppm, 774_596);
        // remaining = 4e13 − 216_000_579; remaining²·1e6/max² = 999_989.
        assert_eq!(c.decay_ppm, 999_989);
        // activity saturates at 2_000_000.
        assert_eq!(c.activity_ppm, 2_000_000);
        // 1.8e6 · 2e6 · 774_596 · 999_989 / 1e18 = 2_788_514.9…
        assert_eq!(c.block_reward_per_block_micro, 2_788_514);
        // (50_000·4_734_000 + 950_000·100_000)/1e6 = 331_700.
        assert_eq!(c.baseline_tx_count_milli, 331_700);
        assert_eq!(c.baseline_miners_milli, 9_800);
        assert_eq!(c.reward_volatility_bps, 0);
    }

    #[test]
    fn volatility_rules() {
        let v = |xs: &[u64]| volatility_bps(&xs.iter().copied().collect());
        assert_eq!(v(&[5]), 0);
        assert_eq!(v(&[0, 0]), 10_000_000);
        // diffs [10, 10]; p90 = 10; lower median of [100, 110, 120] = 110; 10·10_000/110 = 909.
        assert_eq!(v(&[100, 110, 120]), 909);
        assert_eq!(v(&[1, 1_000_000]), 10_000_000);
    }

    #[test]
    fn empty_epoch_hits_the_floors() {
        let cfg = EconomicsConfig::default();
        let mut st = ControlState::new(&cfg);
        let c = close(
            &mut st,
            &ControlInputs {
                tx_count: 0,
                tx_volume_micro: 0,
                unique_miners: 0,
                emitted_micro: cfg.max_supply_micro + 5,
                utilization_ppm: [None; 4],
                provider_margin_ppm: [None; 4],
            },
            &cfg,
        );
        assert_eq!(c.activity_ppm, cfg.activity_min_ppm);
        assert_eq!(c.decentralization_ppm, cfg.decentralization_min_ppm);
        assert_eq!(c.decay_ppm, 0);
        assert_eq!(c.block_reward_per_block_micro, 0);
        assert_eq!(c.baseline_tx_count_milli, 95_000);
    }
}

//! `[economics]`: the knobs of the integer control law (docs/economics.md, "Control law").

use crate::knobs::knob_table;

knob_table! {
    /// `[economics]`: knobs of the control law that turns each epoch's snapshot into a
    /// recommended block reward, subsidy shares and updated baselines (docs/economics.md, "Control law"). Decision-relevant:
    /// part of `config_hash`.
    pub struct EconomicsConfig {
        /// Hard cap on total emission; the reward decays quadratically towards it. Must be > 0.
        pub max_supply_micro: u64 = 40_000_000_000_000,
        /// Block reward at activity = decentralization = 1.0 and no emission yet.
        pub base_reward_micro: u64 = 1_800_000,
        /// Share of each block's coinbase that counts as treasury inflow (≤ 10_000).
        pub treasury_bps: u64 = 1_000,
        /// EMA weight of a new observation when baselines are updated (≤ 1_000_000).
        pub ema_alpha_ppm: u64 = 50_000,
        /// Lower bound of the tx/volume/miner ratios, so a quiet epoch never zeroes the reward.
        pub ratio_floor_ppm: u64 = 10_000,
        /// Lower clamp of the activity factor.
        pub activity_min_ppm: u64 = 500_000,
        /// Upper clamp of the activity factor.
        pub activity_max_ppm: u64 = 2_000_000,
        /// Lower clamp of the decentralization factor.
        pub decentralization_min_ppm: u64 = 500_000,
        /// Upper clamp of the decentralization factor.
        pub decentralization_max_ppm: u64 = 1_500_000,
        /// Number of recent recommended rewards the volatility measure looks at (≥ 1).
        pub volatility_window: u64 = 8,
        /// Initial tx-count baseline, in thousandths of a transaction per epoch.
        pub baseline_tx_count_milli: u64 = 100_000,
        /// Lower clamp of the tx-count baseline (> 0: it is a divisor).
        pub baseline_tx_count_min_milli: u64 = 50_000,
        /// Upper clamp of the tx-count baseline.
        pub baseline_tx_count_max_milli: u64 = 10_000_000,
        /// Initial tx-volume baseline per epoch.
        pub baseline_tx_volume_micro: u64 = 10_000_000_000,
        /// Lower clamp of the tx-volume baseline (> 0: it is a divisor).
        pub baseline_tx_volume_min_micro: u64 = 5_000_000_000,
        /// Upper clamp of the tx-volume baseline.
        pub baseline_tx_volume_max_micro: u64 = 1_000_000_000_000,
        /// Initial unique-miners baseline, in thousandths of a miner.
        pub baseline_miners_milli: u64 = 10_000,
        /// Lower clamp of the miners baseline (> 0: it is a divisor).
        pub baseline_miners_min_milli: u64 = 5_000,
        /// Upper clamp of the miners baseline.
        pub baseline_miners_max_milli: u64 = 100_000,
    }
}

//! Per-epoch aggregation (docs/economics.md, "Snapshot figures"): what accepted receipts and blocks add up to.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::block::Block;
use crate::json::MAX_SAFE;
use crate::receipt::{Blocktorch, Detail, Market, Reason, Settlement, Tier};
use crate::snapshot::{
    Accepted, AdTiers, BlockSpacing, ComputeProofs, MarketStats, PerMarket, ReceiptCounts,
    Rejected, TierStats,
};
use crate::stats::{median_and_mad, nearest_rank};

/// One market's running sums.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MarketAcc {
    settlements: u64,
    /// Registry indices of distinct providers with an accepted settlement.
    providers: BTreeSet<u32>,
    delivered: u128,
    offered: u128,
    revenue: u128,
    cost: u128,
    slashed: u128,
}

/// One ad tier's running sums.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TierAcc {
    settlements: u64,
    impressions: u128,
    conversions: u128,
    min_privacy: Option<u64>,
}

/// Everything an open epoch has accumulated; serialisable so a checkpoint can stop mid-epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EpochAcc {
    pub(crate) first_height: u64,
    pub(crate) first_timestamp_ms: u64,
    pub(crate) last_height: u64,
    pub(crate) last_timestamp_ms: u64,
    tx_count: u128,
    tx_volume: u128,
    coinbase: u128,
    treasury_inflow: u128,
    miners: BTreeSet<Box<str>>,
    spacings: Vec<u64>,
    markets: [MarketAcc; 4],
    /// Proof latencies of accepted compute receipts with `blocktorch`, chain order.
    proofs: Vec<Blocktorch>,
    sla_violations: u64,
    tiers: [TierAcc; 2],
    accepted: [u64; 5],
    rejected: [u64; 6],
}

/// Adds `v` to a snapshot, clamping it to `MAX_SAFE` and noting the path when it does.
pub(crate) struct Saturation(pub(crate) BTreeSet<String>);

impl Saturation {
    pub(crate) fn u(&mut self, path: &str, v: u128) -> u64 {
        if v > u128::from(MAX_SAFE) {
            self.0.insert(path.to_owned());
            MAX_SAFE
        } else {
            v as u64
        }
    }

    pub(crate) fn i(&mut self, path: &str, v: i128) -> i64 {
        let max = i128::from(MAX_SAFE);
        if v > max || v < -max {
            self.0.insert(path.to_owned());
            v.clamp(-max, max) as i64
        } else {
            v as i64
        }
    }
}

impl EpochAcc {
    /// Starts an epoch at its first block.
    pub(crate) fn open(block: &Block) -> Self {
        EpochAcc {
            first_height: block.height,
            first_timestamp_ms: block.timestamp_ms,
            ..Default::default()
        }
    }

    /// Adds the block-level figures; `spacing` is the gap to the previous block, if any.
    pub(crate) fn add_block(&mut self, block: &Block, spacing: Option<u64>, treasury_bps: u64) {
        self.last_height = block.height;
        self.last_timestamp_ms = block.timestamp_ms;
        self.tx_count += u128::from(block.tx_count);
        self.tx_volume += u128::from(block.tx_volume_micro);
        self.coinbase += u128::from(block.coinbase_micro);
        self.treasury_inflow +=
            u128::from(block.coinbase_micro) * u128::from(treasury_bps) / 10_000;
        if !self.miners.contains(&block.miner) {
            self.miners.insert(block.miner.clone());
        }
        self.spacings.extend(spacing);
        for (m, cap) in self.markets.iter_mut().zip(block.capacity) {
            m.offered += u128::from(cap);
        }
    }

    /// Counts a rejection.
    pub(crate) fn reject(&mut self, reason: Reason) {
        self.rejected[reason.index()] += 1;
    }

    /// Adds an accepted slash receipt.
    pub(crate) fn slash(&mut self, market: Market, amount: u64) {
        self.accepted[4] += 1;
        self.markets[market.index()].slashed += u128::from(amount);
    }

    /// Adds an accepted settlement.
    pub(crate) fn settle(&mut self, s: &Settlement, budget_ms: u64) {
        self.accepted[s.market.index()] += 1;
        let m = &mut self.markets[s.market.index()];
        m.settlements += 1;
        m.providers.insert(s.provider);
        m.delivered += u128::from(s.units);
        m.revenue += u128::from(s.payment_micro);
        m.cost += u128::from(s.cost_micro);
        match &s.detail {
            Detail::Plain | Detail::Compute(None) => {}
            Detail::Compute(Some(b)) => {
                if b.proof_latency_ms > budget_ms {
                    self.sla_violations += 1;
                }
                self.proofs.push(b.clone());
            }
            Detail::Ad {
                tier,
                conversions,
                privacy_remaining_ppm,
            } => {
                let t = &mut self.tiers[tier.index()];
                t.settlements += 1;
                t.impressions += u128::from(s.units);
                t.conversions += u128::from(*conversions);
                t.min_privacy = Some(
                    t.min_privacy
                        .map_or(*privacy_remaining_ppm, |p| p.min(*privacy_remaining_ppm)),
                );
            }
        }
    }
}

/// The epoch's figures before the control law runs.
pub(crate) struct Totals {
    pub(crate) tx_count: u64,
    pub(crate) tx_volume_micro: u64,
    pub(crate) coinbase_micro: u64,
    pub(crate) treasury_inflow_micro: u64,
    pub(crate) unique_miners: u64,
    pub(crate) block_spacing: BlockSpacing,
    pub(crate) markets: PerMarket<MarketStats>,
    pub(crate) compute_proofs: ComputeProofs,
    pub(crate) ad_tiers: AdTiers,
    pub(crate) receipts: ReceiptCounts,
}

impl EpochAcc {
    /// Turns the sums into snapshot figures, clamping into `sat`.
    pub(crate) fn totals(&self, budget_ms: u64, sat: &mut Saturation) -> Totals {
        let markets = std::array::from_fn(|i| {
            let m = &self.markets[i];
            let name = Market::ALL[i].as_str();
            let p = |field: &str| format!("markets.{name}.{field}");
            let delivered = sat.u(&p("units_delivered"), m.delivered);
            let offered = sat.u(&p("units_offered"), m.offered);
            let revenue = sat.u(&p("revenue_micro"), m.revenue);
            let cost = sat.u(&p("cost_micro"), m.cost);
            let utilization_ppm = (offered > 0).then(|| {
                (u128::from(delivered) * 1_000_000 / u128::from(offered)).min(1_000_000) as u64
            });
            let provider_margin_ppm = (revenue > 0).then(|| {
                let diff = i128::from(revenue) - i128::from(cost);
                sat.i(
                    &p("provider_margin_ppm"),
                    diff * 1_000_000 / i128::from(revenue),
                )
            });
            MarketStats {
                settlements: m.settlements,
                providers: m.providers.len() as u64,
                units_delivered: delivered,
                units_offered: offered,
                revenue_micro: revenue,
                cost_micro: cost,
                slashed_micro: sat.u(&p("slashed_micro"), m.slashed),
                utilization_ppm,
                provider_margin_ppm,
            }
        });
        let tiers = std::array::from_fn(|i| {
            let t = &self.tiers[i];
            let name = [Tier::Contextual, Tier::Presence][i].as_str();
            TierStats {
                settlements: t.settlements,
                impressions: sat.u(&format!("ad_tiers.{name}.impressions"), t.impressions),
                conversions: sat.u(&format!("ad_tiers.{name}.conversions"), t.conversions),
                min_privacy_remaining_ppm: t.min_privacy,
            }
        });
        let [contextual, presence] = tiers;
        let mut spacings = self.spacings.clone();
        let (median_ms, mad_ms) = median_and_mad(&mut spacings);
        Totals {
            tx_count: sat.u("tx_count", self.tx_count),
            tx_volume_micro: sat.u("tx_volume_micro", self.tx_volume),
            coinbase_micro: sat.u("coinbase_micro", self.coinbase),
            treasury_inflow_micro: sat.u("treasury_inflow_micro", self.treasury_inflow),
            unique_miners: self.miners.len() as u64,
            block_spacing: BlockSpacing { median_ms, mad_ms },
            markets: PerMarket::from_array(markets),
            compute_proofs: self.compute_proofs(budget_ms),
            ad_tiers: AdTiers {
                contextual,
                presence,
            },
            receipts: ReceiptCounts {
                accepted: Accepted {
                    storage: self.accepted[0],
                    compute: self.accepted[1],
                    energy: self.accepted[2],
                    ad: self.accepted[3],
                    slash: self.accepted[4],
                },
                rejected: Rejected {
                    schema: self.rejected[0],
                    below_min_payment: self.rejected[1],
                    key_not_found: self.rejected[2],
                    bad_signature: self.rejected[3],
                    replayed_nonce: self.rejected[4],
                    invalid_values: self.rejected[5],
                },
            },
        }
    }

    fn compute_proofs(&self, budget_ms: u64) -> ComputeProofs {
        let mut latencies: Vec<u64> = self.proofs.iter().map(|b| b.proof_latency_ms).collect();
        latencies.sort_unstable();
        let last = self.proofs.last();
        ComputeProofs {
            count: latencies.len() as u64,
            p50_ms: nearest_rank(&latencies, 50),
            p95_ms: nearest_rank(&latencies, 95),
            max_ms: latencies.last().copied(),
            budget_ms,
            sla_violations: self.sla_violations,
            last_kernel_digest: last.map(|b| b.kernel_digest.to_string()),
            last_benchmark_commit: last.map(|b| b.benchmark_commit.to_string()),
            trace_hash: last.map(|_| tb_canonical::hash_hex(&trace_bytes(&self.proofs))),
        }
    }
}

/// JCS of the epoch's proof records. Their fields are declared in sorted order and hold only
/// validated ids, hex and safe integers, so compact serde_json output is already JCS (docs/formats.md, "The signed message");
/// a test checks it against the general canonicaliser. This runs at every epoch close.
pub(crate) fn trace_bytes(proofs: &[Blocktorch]) -> Vec<u8> {
    let mut out = Vec::new();
    tb_canonical::extend_sorted(&mut out, &proofs);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tb_canonical::to_vec as canonical_bytes;

    #[test]
    fn trace_bytes_are_jcs() {
        let proofs: Vec<Blocktorch> = (0..5)
            .map(|i| Blocktorch {
                benchmark_commit: format!("bench-{i}").into(),
                kernel_digest: tb_canonical::hash_hex(&[i]).into(),
                proof_latency_ms: u64::from(i) * 37 + 1,
            })
            .collect();
        assert_eq!(trace_bytes(&proofs), canonical_bytes(&proofs));
        assert_eq!(
            trace_bytes(&[]),
            canonical_bytes::<Vec<Blocktorch>>(&vec![])
        );
    }
}

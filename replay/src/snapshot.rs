//! The economics snapshot of one closed epoch (docs/formats.md, "Snapshot") and its hash.

use serde::{Deserialize, Serialize};

/// Schema tag of every snapshot.
pub const SNAPSHOT_SCHEMA: &str = "tb.economics.snapshot.v1";

/// One closed epoch's economics, exactly the shape of docs/formats.md, "Snapshot". Serialised with JCS its bytes are the
/// file `b3sum` checks; [`Snapshot::hash`] is that blake3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // docs/formats.md, "Snapshot", gives each field's meaning
pub struct Snapshot {
    pub schema: String,
    pub chain_id: String,
    pub epoch: u64,
    pub first_height: u64,
    pub last_height: u64,
    pub first_timestamp_ms: u64,
    pub last_timestamp_ms: u64,
    pub tx_count: u64,
    pub tx_volume_micro: u64,
    pub coinbase_micro: u64,
    pub emitted_micro: u64,
    pub treasury_inflow_micro: u64,
    pub unique_miners: u64,
    pub block_spacing: BlockSpacing,
    pub markets: PerMarket<MarketStats>,
    pub compute_proofs: ComputeProofs,
    pub ad_tiers: AdTiers,
    pub receipts: ReceiptCounts,
    pub controls: Controls,
    pub prev_snapshot_hash: Option<String>,
    pub saturated: Vec<String>,
}

/// Block spacing statistics over the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpacing {
    /// Lower median of the spacings, null when there are none.
    pub median_ms: Option<u64>,
    /// Lower median of absolute deviations from that median.
    pub mad_ms: Option<u64>,
}

/// One value per market, in the fixed market order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PerMarket<T> {
    pub storage: T,
    pub compute: T,
    pub energy: T,
    pub ad: T,
}

impl<T> PerMarket<T> {
    /// The values in market order.
    pub fn as_array(&self) -> [&T; 4] {
        [&self.storage, &self.compute, &self.energy, &self.ad]
    }

    /// Builds from an array in market order.
    pub fn from_array([storage, compute, energy, ad]: [T; 4]) -> Self {
        PerMarket {
            storage,
            compute,
            energy,
            ad,
        }
    }
}

/// One market's epoch figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MarketStats {
    pub settlements: u64,
    pub providers: u64,
    pub units_delivered: u64,
    pub units_offered: u64,
    pub revenue_micro: u64,
    pub cost_micro: u64,
    pub slashed_micro: u64,
    pub utilization_ppm: Option<u64>,
    pub provider_margin_ppm: Option<i64>,
}

impl MarketStats {
    /// A market "has data" when both utilization and margin are known (docs/gates.md).
    pub fn has_data(&self) -> bool {
        self.utilization_ppm.is_some() && self.provider_margin_ppm.is_some()
    }
}

/// Compute proof statistics over accepted compute receipts that carry `blocktorch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ComputeProofs {
    pub count: u64,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub budget_ms: u64,
    pub sla_violations: u64,
    pub last_kernel_digest: Option<String>,
    pub last_benchmark_commit: Option<String>,
    pub trace_hash: Option<String>,
}

/// Ad tier figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AdTiers {
    pub contextual: TierStats,
    pub presence: TierStats,
}

/// One ad tier's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TierStats {
    pub settlements: u64,
    pub impressions: u64,
    pub conversions: u64,
    pub min_privacy_remaining_ppm: Option<u64>,
}

/// Receipt verdict counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ReceiptCounts {
    pub accepted: Accepted,
    pub rejected: Rejected,
}

impl ReceiptCounts {
    /// `(name, count)` of accepted receipts: the four markets, then `slash`.
    pub fn accepted_by_kind(&self) -> [(&'static str, u64); 5] {
        let a = &self.accepted;
        [
            ("storage", a.storage),
            ("compute", a.compute),
            ("energy", a.energy),
            ("ad", a.ad),
            ("slash", a.slash),
        ]
    }

    /// `(reason, count)` of rejected receipts, in the validation order (docs/formats.md).
    pub fn rejected_by_reason(&self) -> [(&'static str, u64); 6] {
        let r = &self.rejected;
        [
            ("schema", r.schema),
            ("below_min_payment", r.below_min_payment),
            ("key_not_found", r.key_not_found),
            ("bad_signature", r.bad_signature),
            ("replayed_nonce", r.replayed_nonce),
            ("invalid_values", r.invalid_values),
        ]
    }

    /// All accepted receipts.
    pub fn accepted_total(&self) -> u64 {
        self.accepted_by_kind().iter().map(|(_, n)| n).sum()
    }

    /// All rejected receipts.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_by_reason().iter().map(|(_, n)| n).sum()
    }
}

/// Accepted receipts per market, slashes together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Accepted {
    pub storage: u64,
    pub compute: u64,
    pub energy: u64,
    pub ad: u64,
    pub slash: u64,
}

/// Rejected receipts per reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Rejected {
    pub schema: u64,
    pub below_min_payment: u64,
    pub key_not_found: u64,
    pub bad_signature: u64,
    pub replayed_nonce: u64,
    pub invalid_values: u64,
}

/// The control law's output for this epoch (docs/economics.md, "Control law").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Controls {
    pub block_reward_per_block_micro: u64,
    pub reward_volatility_bps: u64,
    pub activity_ppm: u64,
    pub decentralization_ppm: u64,
    pub decay_ppm: u64,
    pub baseline_tx_count_milli: u64,
    pub baseline_tx_volume_micro: u64,
    pub baseline_miners_milli: u64,
    pub subsidy_share_bps: PerMarket<i64>,
}

impl Snapshot {
    /// The canonical (RFC 8785) bytes: what is written to disk and hashed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        tb_canonical::to_vec(self)
    }

    /// `snapshot_hash` = blake3(JCS(snapshot)), lowercase hex.
    pub fn hash(&self) -> String {
        tb_canonical::hash(self)
    }
}

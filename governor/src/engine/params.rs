//! Runtime parameters (docs/gates.md, step 5): what node integrators read from `runtime/params.json`.

use serde::{Deserialize, Serialize};
use tb_config::PerGate;
use tb_replay::snapshot::{Controls, PerMarket};

use super::gates::Gate;

/// Whether a market trades for real or rehearses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketMode {
    /// The market's gate is on.
    Trade,
    /// The market's gate is off.
    Rehearsal,
}

/// A params set: exactly the fields of docs/formats.md, "Params".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The economics gate's flag.
    pub economics_autopilot: bool,
    /// The control law's reward while the autopilot is on, else null.
    pub block_reward_per_block_micro: Option<u64>,
    /// The control law's shares while the autopilot is on, else null.
    pub subsidy_share_bps: Option<PerMarket<i64>>,
    /// The four market gates' flags.
    pub market_mode: PerMarket<MarketMode>,
    /// The contextual ad tier's flag.
    pub ad_contextual_enabled: bool,
    /// The presence ad tier's flag.
    pub ad_presence_enabled: bool,
    /// The operational gate's flag.
    pub launch_operational: bool,
    /// From config, so integrators read it in one place.
    pub proof_verification_budget_ms: u64,
}

impl Params {
    /// The params for the per-gate `flags` and this close's `controls`.
    pub fn from_flags(flags: &PerGate<bool>, controls: &Controls, budget_ms: u64) -> Params {
        let on = |g: Gate| flags[g];
        let mode = |g: Gate| {
            if on(g) {
                MarketMode::Trade
            } else {
                MarketMode::Rehearsal
            }
        };
        let autopilot = on(Gate::Economics);
        Params {
            economics_autopilot: autopilot,
            block_reward_per_block_micro: autopilot
                .then_some(controls.block_reward_per_block_micro),
            subsidy_share_bps: autopilot.then(|| controls.subsidy_share_bps.clone()),
            market_mode: PerMarket {
                storage: mode(Gate::Storage),
                compute: mode(Gate::Compute),
                energy: mode(Gate::Energy),
                ad: mode(Gate::Ad),
            },
            ad_contextual_enabled: on(Gate::AdContextual),
            ad_presence_enabled: on(Gate::AdPresence),
            launch_operational: on(Gate::Operational),
            proof_verification_budget_ms: budget_ms,
        }
    }

    /// The params before any gate has entered.
    pub fn initial(budget_ms: u64) -> Params {
        Params {
            economics_autopilot: false,
            block_reward_per_block_micro: None,
            subsidy_share_bps: None,
            market_mode: PerMarket {
                storage: MarketMode::Rehearsal,
                compute: MarketMode::Rehearsal,
                energy: MarketMode::Rehearsal,
                ad: MarketMode::Rehearsal,
            },
            ad_contextual_enabled: false,
            ad_presence_enabled: false,
            launch_operational: false,
            proof_verification_budget_ms: budget_ms,
        }
    }

    /// `params_hash` = blake3(JCS(params)), lowercase hex.
    pub fn hash(&self) -> String {
        tb_canonical::hash(self)
    }

    /// Dotted names of the fields that differ from `other`, sorted.
    pub fn changed_fields(&self, other: &Params) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for (k, va) in a {
                let vb = b.get(k);
                match (k.as_str(), va.as_object(), vb.and_then(|v| v.as_object())) {
                    ("market_mode", Some(ma), Some(mb)) => {
                        for (m, x) in ma {
                            if mb.get(m) != Some(x) {
                                out.push(format!("market_mode.{m}"));
                            }
                        }
                    }
                    _ if vb != Some(va) => out.push(k.clone()),
                    _ => {}
                }
            }
        }
        out.sort();
        out
    }
}

//! The simulator's scenarios behave as docs/gates.md and the simulator's documentation predict,
//! measured on the replayed snapshots.

use ed25519_dalek::Signature;
use serde_json::Value;
use tb_replay::json::{self, Json};
use tb_replay::receipt::signing_message;
use tb_replay::sim::{Scenario, SimConfig, COLLAPSE_FIRST_EPOCH, SHOCK_EPOCHS, SHOCK_FIRST_EPOCH};
use tb_replay::snapshot::MarketStats;
use tb_replay::Snapshot;

use crate::common::SimChain;

/// Simulates `epochs` epochs of 120 blocks of `scenario` and replays them in one batch.
fn run(scenario: Scenario, epochs: u64) -> (SimChain, Vec<Snapshot>) {
    let chain = SimChain::generate(&SimConfig {
        scenario,
        seed: 1,
        epochs,
        epoch_blocks: 120,
        chain_id: format!("scenario-{scenario}"),
        genesis_height: 0,
    });
    let mut replayer = chain.replayer();
    let out = replayer.push_lines(&chain.lines);
    assert!(out.error.is_none(), "{:?}", out.error);
    let snapshots: Vec<Snapshot> = out.closed.into_iter().map(|(_, c)| c.snapshot).collect();
    assert_eq!(snapshots.len() as u64, epochs);
    (chain, snapshots)
}

fn rejected_total(s: &Snapshot) -> u64 {
    let r = &s.receipts.rejected;
    r.schema
        + r.below_min_payment
        + r.key_not_found
        + r.bad_signature
        + r.replayed_nonce
        + r.invalid_values
}

fn in_band(v: Option<u64>, lo: u64, hi: u64) -> bool {
    v.is_some_and(|v| (lo..=hi).contains(&v))
}

/// The market gates' enter conditions (docs/configuration.md) on one market.
fn market_enters(m: &MarketStats) -> bool {
    m.settlements >= 5
        && in_band(m.utilization_ppm, 50_000, 900_000)
        && m.provider_margin_ppm
            .is_some_and(|p| (0..=800_000).contains(&p))
}

#[test]
fn healthy_meets_every_enter_condition_in_every_epoch() {
    let (_, snapshots) = run(Scenario::Healthy, 6);
    for s in &snapshots {
        let e = s.epoch;
        for (name, m) in ["storage", "compute", "energy", "ad"]
            .iter()
            .zip(s.markets.as_array())
        {
            assert!(market_enters(m), "epoch {e}: {name}: {m:?}");
            assert!(m.providers >= 2, "epoch {e}: {name}");
        }
        let p = &s.compute_proofs;
        assert!(p.count > 0, "epoch {e}");
        assert!(
            p.sla_violations * 1_000_000 <= 10_000 * p.count,
            "epoch {e}"
        );
        for (name, t) in [
            ("contextual", &s.ad_tiers.contextual),
            ("presence", &s.ad_tiers.presence),
        ] {
            assert!(t.settlements >= 5, "epoch {e}: {name}");
            assert!(t.impressions > 0, "epoch {e}: {name}");
            assert!(
                t.conversions * 1_000_000 / t.impressions >= 1_000,
                "epoch {e}: {name}"
            );
            assert!(
                t.min_privacy_remaining_ppm.is_some_and(|p| p > 50_000),
                "epoch {e}: {name}"
            );
        }
        assert!(s.unique_miners >= 3, "epoch {e}");
        let median = s.block_spacing.median_ms.unwrap();
        let mad = s.block_spacing.mad_ms.unwrap();
        assert!(
            mad * 1_000_000 / median.max(1) <= 250_000,
            "epoch {e}: {median} {mad}"
        );
        assert!(s.tx_count >= 10, "epoch {e}");
        assert!(s.tx_volume_micro >= 1_000_000_000, "epoch {e}");
        assert!(
            s.controls.reward_volatility_bps <= 2_000,
            "epoch {e}: {:?}",
            s.controls
        );
        assert!(s.treasury_inflow_micro > 0, "epoch {e}");
        assert_eq!(rejected_total(s), 0, "epoch {e}");
        assert_eq!(s.receipts.accepted.slash, 0, "epoch {e}");
        assert!(s.saturated.is_empty(), "epoch {e}");
        assert_eq!(
            s.controls
                .subsidy_share_bps
                .as_array()
                .into_iter()
                .sum::<i64>(),
            10_000
        );
    }
}

#[test]
fn market_shock_hits_storage_in_epochs_4_to_6() {
    let (_, snapshots) = run(Scenario::MarketShock, 8);
    let shocked = SHOCK_FIRST_EPOCH..SHOCK_FIRST_EPOCH + SHOCK_EPOCHS;
    assert_eq!(shocked, 4..7);
    for s in &snapshots {
        let storage = &s.markets.storage;
        let util = storage.utilization_ppm.unwrap();
        if shocked.contains(&s.epoch) {
            assert!(util < 10_000, "epoch {}: {util}", s.epoch);
            assert!(storage.settlements >= 5, "the market still settles");
        } else {
            assert!(market_enters(storage), "epoch {}: {storage:?}", s.epoch);
        }
        // The other markets are untouched.
        for m in &s.markets.as_array()[1..] {
            assert!(market_enters(m), "epoch {}: {m:?}", s.epoch);
        }
        assert_eq!(rejected_total(s), 0);
    }
}

#[test]
fn treasury_collapse_zeroes_inflow_from_epoch_4() {
    let (_, snapshots) = run(Scenario::TreasuryCollapse, 6);
    assert_eq!(COLLAPSE_FIRST_EPOCH, 4);
    for s in &snapshots {
        if s.epoch >= COLLAPSE_FIRST_EPOCH {
            assert_eq!(s.treasury_inflow_micro, 0, "epoch {}", s.epoch);
            assert_eq!(s.coinbase_micro, 5 * 120, "epoch {}", s.epoch);
        } else {
            assert_eq!(s.treasury_inflow_micro, 180_000 * 120, "epoch {}", s.epoch);
        }
        for m in s.markets.as_array() {
            assert!(market_enters(m), "epoch {}: {m:?}", s.epoch);
        }
    }
    // emitted_micro is cumulative coinbase.
    let total: u64 = snapshots.iter().map(|s| s.coinbase_micro).sum();
    assert_eq!(snapshots.last().unwrap().emitted_micro, total);
}

#[test]
fn hostile_rejects_each_reason_at_its_known_rate() {
    let (_, snapshots) = run(Scenario::Hostile, 4);
    for s in &snapshots {
        let r = &s.receipts.rejected;
        // One hostile receipt in every 4th block (30 per epoch), cycling the six reasons.
        assert_eq!(
            [
                r.schema,
                r.below_min_payment,
                r.key_not_found,
                r.bad_signature,
                r.replayed_nonce,
                r.invalid_values
            ],
            [5; 6],
            "epoch {}",
            s.epoch
        );
        let a = &s.receipts.accepted;
        assert_eq!(a.slash, 12, "epoch {}: a slash every 10th block", s.epoch);
        assert_eq!(
            [a.storage, a.compute, a.energy, a.ad],
            [120; 4],
            "epoch {}",
            s.epoch
        );
        let slashed: u64 = s.markets.as_array().iter().map(|m| m.slashed_micro).sum();
        assert!(slashed >= 12 * 1_000);
        assert_eq!(s.markets.ad.slashed_micro, 0, "ad has no slash market");
        // Hostile receipts never reach the metrics: the markets look healthy.
        for m in s.markets.as_array() {
            assert!(market_enters(m), "epoch {}: {m:?}", s.epoch);
        }
    }
}

#[test]
fn rotation_rotates_multi_theta_without_rejections() {
    let (chain, snapshots) = run(Scenario::Rotation, 4);
    for s in &snapshots {
        assert_eq!(rejected_total(s), 0, "epoch {}", s.epoch);
        assert_eq!(
            s.receipts.accepted.storage
                + s.receipts.accepted.compute
                + s.receipts.accepted.energy
                + s.receipts.accepted.ad,
            480
        );
    }
    let providers: Value = serde_json::from_str(&chain.providers_json).unwrap();
    for p in providers["providers"].as_array().unwrap() {
        let keys = p["keys"].as_array().unwrap();
        if p["id"] == "multi-theta" {
            assert_eq!(keys.len(), 2);
            // Rotation at the middle height (240) with 10 blocks of overlap.
            assert_eq!(keys[0]["from_height"], 0);
            assert_eq!(keys[0]["until_height"], 250);
            assert_eq!(keys[1]["from_height"], 240);
            assert_eq!(keys[1]["until_height"], Value::Null);
            assert_ne!(keys[0]["public_key"], keys[1]["public_key"]);
        } else {
            assert_eq!(keys.len(), 1, "{}", p["id"]);
        }
    }
    // Both keys really sign: the simulator moves to the new key 5 blocks into the overlap.
    let keys = &chain
        .registry
        .get(chain.registry.index_of("multi-theta").unwrap())
        .unwrap()
        .keys;
    assert_eq!(keys.len(), 2);
    let mut used = [Vec::new(), Vec::new()];
    for line in &chain.lines {
        let Json::Obj(block) = json::parse(line).unwrap() else {
            panic!("a block is an object")
        };
        let Some(Json::Uint(height)) = block.get("height") else {
            panic!("height")
        };
        let Some(Json::Arr(receipts)) = block.get("receipts") else {
            panic!("receipts")
        };
        for r in receipts {
            let Json::Obj(r) = r else { panic!("receipt") };
            if r.get("provider") != Some(&Json::Str("multi-theta".into())) {
                continue;
            }
            let Some(Json::Str(sig)) = r.get("signature") else {
                panic!("signature")
            };
            let sig = Signature::from_bytes(&hex::decode(&**sig).unwrap().try_into().unwrap());
            let message = signing_message(r, &chain.cfg.chain_id, *height).unwrap();
            let signer: Vec<usize> = (0..2)
                .filter(|&i| keys[i].key.verify_strict(&message, &sig).is_ok())
                .collect();
            assert_eq!(signer.len(), 1, "height {height}");
            let want = usize::from(*height >= 245);
            assert_eq!(signer[0], want, "height {height}");
            used[signer[0]].push(*height);
        }
    }
    assert!(
        used[0].iter().any(|&h| h >= 240),
        "old key used in the overlap: {used:?}"
    );
    assert!(
        used[1].iter().any(|&h| h < 250),
        "new key used in the overlap: {used:?}"
    );
    assert!(!used[0].is_empty() && !used[1].is_empty());
}

#[test]
fn demo_combines_shock_and_hostile() {
    let (_, snapshots) = run(Scenario::Demo, 7);
    for s in &snapshots {
        let util = s.markets.storage.utilization_ppm.unwrap();
        assert_eq!(
            util < 10_000,
            (4..7).contains(&s.epoch),
            "epoch {}: {util}",
            s.epoch
        );
        assert_eq!(rejected_total(s), 30, "epoch {}", s.epoch);
        assert_eq!(s.receipts.accepted.slash, 12, "epoch {}", s.epoch);
    }
}

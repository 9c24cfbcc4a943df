//! The rejection reasons of docs/formats.md, "Validation order", on hand-built, hand-signed receipts: each one fires, the
//! first failing check names it, and only an accepted receipt advances its provider's nonce.

use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{json, Value};
use tb_replay::json::{self, Json};
use tb_replay::receipt::{decode_receipt, signing_message, Decoded, ReceiptContext};
use tb_replay::{ClosedEpoch, Reason, Registry, ReplayConfig, Replayer, Verdict};

use crate::common::replay_config;

const CHAIN: &str = "reasons-test";

/// `prov-one`: one key for ever.
fn k1() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

/// `prov-two`'s old key, valid for heights [0, 20).
fn k2_old() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// `prov-two`'s new key, valid from height 10 (10 blocks of overlap).
fn k2_new() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

/// `prov-late`: its only key becomes valid at height 100.
fn k_late() -> SigningKey {
    SigningKey::from_bytes(&[4; 32])
}

/// Not in the registry.
fn k_ghost() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn pk(k: &SigningKey) -> String {
    hex::encode(k.verifying_key().as_bytes())
}

fn registry() -> Arc<Registry> {
    let text = json!({"providers": [
        {"id": "prov-one", "keys": [{"public_key": pk(&k1()), "from_height": 0}]},
        {"id": "prov-two", "keys": [
            {"public_key": pk(&k2_old()), "from_height": 0, "until_height": 20},
            {"public_key": pk(&k2_new()), "from_height": 10, "until_height": null},
        ]},
        {"id": "prov-late", "keys": [{"public_key": pk(&k_late()), "from_height": 100}]},
    ]});
    Arc::new(Registry::from_json(text.to_string().as_bytes()).unwrap())
}

fn storage(provider: &str, nonce: u64, payment: u64) -> Value {
    json!({"market": "storage", "provider": provider, "nonce": nonce, "payment_micro": payment,
           "cost_micro": payment / 2, "contract_id": "sc-1", "bytes": 1_000, "escrow_micro": 5})
}

fn compute(provider: &str, nonce: u64) -> Value {
    json!({"market": "compute", "provider": provider, "nonce": nonce, "payment_micro": 50_000,
           "cost_micro": 20_000, "job_id": "job-1", "compute_units": 40, "verified": true,
           "blocktorch": {"kernel_digest": "ab".repeat(32), "benchmark_commit": "bench-1",
                          "proof_latency_ms": 20}})
}

fn energy(provider: &str, nonce: u64) -> Value {
    json!({"market": "energy", "provider": provider, "nonce": nonce, "payment_micro": 50_000,
           "cost_micro": 20_000, "contract_id": "ec-1", "energy_milli_kwh": 70,
           "proof_hash": "cd".repeat(32)})
}

fn ad(provider: &str, nonce: u64) -> Value {
    json!({"market": "ad", "provider": provider, "nonce": nonce, "payment_micro": 50_000,
           "cost_micro": 20_000, "campaign_id": "cmp-1", "impressions": 1_000, "conversions": 10,
           "tier": "contextual", "privacy_remaining_ppm": 500_000})
}

fn slash(amount: u64) -> Value {
    json!({"market": "storage_slash", "provider": "someone-else", "amount_micro": amount,
           "reason": "late-proof"})
}

/// Parses `v` the way the replayer does.
fn tree(v: &Value) -> Json {
    json::parse(v.to_string().as_bytes()).unwrap()
}

/// `v` with a signature by `key` over its message at `height` on `chain_id`.
fn sign_for(mut v: Value, key: &SigningKey, chain_id: &str, height: u64) -> Value {
    let Json::Obj(obj) = tree(&v) else {
        panic!("receipt is not an object")
    };
    // A receipt holding a number the schema refuses has no message: sign the empty one, since
    // the schema check rejects it before its signature is looked at.
    let message = signing_message(&obj, chain_id, height).unwrap_or_default();
    let signature = key.sign(&message);
    v["signature"] = Value::String(hex::encode(signature.to_bytes()));
    v
}

fn sign(v: Value, key: &SigningKey, height: u64) -> Value {
    sign_for(v, key, CHAIN, height)
}

fn ctx(registry: &Registry, verify: bool) -> ReceiptContext<'_> {
    ReceiptContext {
        registry,
        chain_id: CHAIN,
        min_payment_micro: 1_000,
        verify,
    }
}

/// The stateless checks (1–4) on receipt text at `height`.
fn decode_text(text: &str, height: u64) -> Decoded {
    let registry = registry();
    let tree = json::parse(text.as_bytes()).unwrap();
    decode_receipt(&tree, height, &ctx(&registry, true))
}

/// The stateless checks (1–4) on `v` at `height`: the reason, or `None` when they pass.
fn stateless(v: &Value, height: u64) -> Option<Reason> {
    match decode_text(&v.to_string(), height) {
        Decoded::Rejected { reason, .. } => Some(reason),
        Decoded::Settlement(_) | Decoded::Slash { .. } => None,
    }
}

/// A chain under test: blocks of hand-built receipts pushed through a real replayer.
struct Chain {
    replayer: Replayer,
    closed: Vec<ClosedEpoch>,
}

impl Chain {
    fn new(epoch_blocks: u64) -> Chain {
        Chain::with_config(replay_config(CHAIN, epoch_blocks))
    }

    fn with_config(cfg: ReplayConfig) -> Chain {
        Chain {
            replayer: Replayer::new(cfg, registry()),
            closed: Vec::new(),
        }
    }

    /// Height of the next block (the one receipts must be signed for).
    fn height(&self) -> u64 {
        self.replayer.next_height()
    }

    /// Pushes a block with these receipts (as raw JSON texts); returns the verdicts.
    fn push_texts(&mut self, receipts: &[String]) -> Vec<Verdict> {
        let h = self.height();
        let line = format!(
            r#"{{"height":{h},"timestamp_ms":{},"miner":"miner-1","difficulty":1,"coinbase_micro":1800000,"tx_count":20,"tx_volume_micro":100000000,"capacity":{{"storage_bytes":10000,"compute_units":100,"energy_milli_kwh":100,"ad_impressions":10000}},"receipts":[{}]}}"#,
            1_000_000 + 10_000 * h,
            receipts.join(",")
        );
        let block = self.replayer.decode(line.as_bytes()).unwrap();
        assert_eq!(block.receipts.len(), receipts.len());
        self.closed.extend(self.replayer.push(&block).unwrap());
        let verdicts = self.replayer.verdicts().to_vec();
        assert_eq!(verdicts.len(), receipts.len());
        verdicts
    }

    fn push(&mut self, receipts: &[Value]) -> Vec<Verdict> {
        let texts: Vec<String> = receipts.iter().map(Value::to_string).collect();
        self.push_texts(&texts)
    }

    /// Pushes empty blocks until the next height is `h`.
    fn advance_to(&mut self, h: u64) {
        while self.height() < h {
            assert!(self.push(&[]).is_empty());
        }
    }
}

/// `v` with `field` set to `value`.
fn with(mut v: Value, field: &str, value: Value) -> Value {
    v[field] = value;
    v
}

/// `v` without `field`.
fn without(mut v: Value, field: &str) -> Value {
    v.as_object_mut().unwrap().remove(field);
    v
}

use Reason::*;
use Verdict::{Accept, Reject};

#[test]
fn each_reason_fires_and_is_counted() {
    let mut chain = Chain::new(2);
    let h = chain.height();
    let verdicts = chain.push(&[
        sign(storage("prov-one", 0, 5_000), &k1(), h),
        with(
            sign(storage("prov-one", 10, 5_000), &k1(), h),
            "memo",
            json!("hi"),
        ),
        sign(storage("prov-one", 11, 999), &k1(), h),
        sign(storage("ghost", 12, 5_000), &k_ghost(), h),
        sign(storage("prov-one", 13, 5_000), &k2_old(), h),
        sign(storage("prov-one", 0, 5_000), &k1(), h),
        sign(
            with(storage("prov-one", 14, 5_000), "bytes", json!(0)),
            &k1(),
            h,
        ),
        slash(7),
    ]);
    assert_eq!(
        verdicts,
        [
            Accept,
            Reject(Schema),
            Reject(BelowMinPayment),
            Reject(KeyNotFound),
            Reject(BadSignature),
            Reject(ReplayedNonce),
            Reject(InvalidValues),
            Accept,
        ]
    );
    assert!(chain.closed.is_empty());
    assert!(chain.push(&[]).is_empty());
    let [epoch] = &chain.closed[..] else {
        panic!("one epoch should have closed")
    };
    let r = &epoch.snapshot.receipts;
    assert_eq!(
        [
            r.rejected.schema,
            r.rejected.below_min_payment,
            r.rejected.key_not_found,
            r.rejected.bad_signature,
            r.rejected.replayed_nonce,
            r.rejected.invalid_values,
        ],
        [1; 6]
    );
    assert_eq!(
        [
            r.accepted.storage,
            r.accepted.compute,
            r.accepted.energy,
            r.accepted.ad,
            r.accepted.slash
        ],
        [1, 0, 0, 0, 1]
    );
    let storage = &epoch.snapshot.markets.storage;
    assert_eq!(storage.settlements, 1);
    assert_eq!(storage.providers, 1, "slash providers do not count");
    assert_eq!(storage.units_delivered, 1_000);
    assert_eq!(storage.revenue_micro, 5_000);
    assert_eq!(storage.slashed_micro, 7);
}

#[test]
fn below_min_payment_comes_before_provider_and_signature() {
    // Unknown provider and below the minimum: below_min_payment.
    assert_eq!(
        stateless(&sign(storage("ghost", 0, 999), &k_ghost(), 0), 0),
        Some(BelowMinPayment)
    );
    // Bad signature and below the minimum: below_min_payment.
    assert_eq!(
        stateless(&sign(storage("prov-one", 0, 999), &k2_old(), 0), 0),
        Some(BelowMinPayment)
    );
    // Known provider without a key at this height and below the minimum: below_min_payment.
    assert_eq!(
        stateless(&sign(storage("prov-late", 0, 0), &k_late(), 0), 0),
        Some(BelowMinPayment)
    );
    // The boundary: exactly the minimum passes, one less does not.
    assert_eq!(
        stateless(&sign(storage("prov-one", 0, 1_000), &k1(), 0), 0),
        None
    );
    assert_eq!(
        stateless(&sign(storage("prov-one", 0, 999), &k1(), 0), 0),
        Some(BelowMinPayment)
    );
    // The minimum is the configured one.
    let mut cfg = replay_config(CHAIN, 10);
    cfg.min_payment_micro = 5_001;
    let mut chain = Chain::with_config(cfg);
    let v = chain.push(&[
        sign(storage("prov-one", 0, 5_000), &k1(), 0),
        sign(storage("prov-one", 1, 5_001), &k1(), 0),
    ]);
    assert_eq!(v, [Reject(BelowMinPayment), Accept]);
}

#[test]
fn schema_comes_before_everything() {
    // Unknown field and a bad signature: schema.
    let forged = with(
        sign(storage("prov-one", 0, 5_000), &k2_old(), 0),
        "memo",
        json!("x"),
    );
    assert_eq!(stateless(&forged, 0), Some(Schema));
    // Unknown field, unknown provider and below the minimum: schema.
    let worst = with(storage("ghost", 0, 1), "memo", json!("x"));
    assert_eq!(stateless(&sign(worst, &k_ghost(), 0), 0), Some(Schema));
    // Zero units with a malformed id: schema, not invalid_values.
    let zero = with(
        with(storage("prov-one", 0, 5_000), "bytes", json!(0)),
        "contract_id",
        json!("no spaces"),
    );
    assert_eq!(stateless(&sign(zero, &k1(), 0), 0), Some(Schema));
}

#[test]
fn key_not_found_comes_before_the_signature() {
    // Unknown provider with a garbage signature.
    let v = with(
        storage("ghost", 0, 5_000),
        "signature",
        json!("00".repeat(64)),
    );
    assert_eq!(stateless(&v, 0), Some(KeyNotFound));
    // Known provider, no key valid yet, signature by its own (future) key.
    assert_eq!(
        stateless(&sign(storage("prov-late", 0, 5_000), &k_late(), 99), 99),
        Some(KeyNotFound)
    );
    // The same provider once its key is valid.
    assert_eq!(
        stateless(&sign(storage("prov-late", 0, 5_000), &k_late(), 100), 100),
        None
    );
    assert_eq!(
        stateless(&sign(storage("prov-late", 0, 5_000), &k1(), 100), 100),
        Some(BadSignature)
    );
}

#[test]
fn forged_receipt_does_not_burn_a_nonce() {
    let mut chain = Chain::new(1_000);
    let h = chain.height();
    let v = chain.push(&[
        sign(storage("prov-one", 4, 5_000), &k1(), h),
        // Forged, with the next nonce: bad_signature.
        sign(storage("prov-one", 5, 5_000), &k2_old(), h),
        // Forged, with a replayed nonce: still bad_signature (the signature is checked first).
        sign(storage("prov-one", 4, 5_000), &k2_old(), h),
        // Garbage signature bytes, replayed nonce: bad_signature.
        with(
            storage("prov-one", 3, 5_000),
            "signature",
            json!("11".repeat(64)),
        ),
        // The real receipt with nonce 5: accepted, the forgery did not burn it.
        sign(storage("prov-one", 5, 5_000), &k1(), h),
    ]);
    assert_eq!(
        v,
        [
            Accept,
            Reject(BadSignature),
            Reject(BadSignature),
            Reject(BadSignature),
            Accept
        ]
    );
    // Across blocks too.
    let h = chain.height();
    let v = chain.push(&[sign(storage("prov-one", 9, 5_000), &k_ghost(), h)]);
    assert_eq!(v, [Reject(BadSignature)]);
    let h = chain.height();
    let v = chain.push(&[
        sign(storage("prov-one", 6, 5_000), &k1(), h),
        sign(storage("prov-one", 6, 5_000), &k1(), h),
    ]);
    assert_eq!(v, [Accept, Reject(ReplayedNonce)]);
}

#[test]
fn replayed_nonce_comes_before_invalid_values() {
    let mut chain = Chain::new(1_000);
    let h = chain.height();
    let zero = |n| {
        sign(
            with(storage("prov-one", n, 5_000), "bytes", json!(0)),
            &k1(),
            h,
        )
    };
    let v = chain.push(&[
        sign(storage("prov-one", 3, 5_000), &k1(), h),
        zero(3),
        zero(2),
        zero(4),
    ]);
    assert_eq!(
        v,
        [
            Accept,
            Reject(ReplayedNonce),
            Reject(ReplayedNonce),
            Reject(InvalidValues)
        ]
    );
}

#[test]
fn invalid_values_does_not_advance_the_nonce() {
    let mut chain = Chain::new(1_000);
    let h = chain.height();
    let v = chain.push(&[
        sign(storage("prov-one", 1, 5_000), &k1(), h),
        sign(
            with(storage("prov-one", 7, 5_000), "bytes", json!(0)),
            &k1(),
            h,
        ),
        sign(storage("prov-one", 2, 5_000), &k1(), h),
        sign(storage("prov-one", 2, 5_000), &k1(), h),
        sign(storage("prov-one", 7, 5_000), &k1(), h),
    ]);
    assert_eq!(
        v,
        [
            Accept,
            Reject(InvalidValues),
            Accept,
            Reject(ReplayedNonce),
            Accept
        ]
    );
    // Rejections of checks 1–4 never touch the nonce either.
    let h = chain.height();
    let v = chain.push(&[
        sign(storage("prov-one", 100, 999), &k1(), h),
        with(
            sign(storage("prov-one", 101, 5_000), &k1(), h),
            "memo",
            json!(1),
        ),
        sign(storage("prov-one", 8, 5_000), &k1(), h),
    ]);
    assert_eq!(v, [Reject(BelowMinPayment), Reject(Schema), Accept]);
}

#[test]
fn nonces_are_per_provider_across_markets() {
    let mut chain = Chain::new(1_000);
    let h = chain.height();
    let v = chain.push(&[
        // A provider's first nonce may be anything, 0 included.
        sign(storage("prov-one", 0, 5_000), &k1(), h),
        sign(ad("prov-one", 0), &k1(), h),
        sign(compute("prov-one", 1), &k1(), h),
        sign(energy("prov-one", 1), &k1(), h),
        sign(ad("prov-one", 2), &k1(), h),
        // Another provider has its own sequence.
        sign(storage("prov-two", 0, 5_000), &k2_old(), h),
        sign(storage("prov-two", 2, 5_000), &k2_old(), h),
        sign(energy("prov-two", 1), &k2_old(), h),
    ]);
    assert_eq!(
        v,
        [
            Accept,
            Reject(ReplayedNonce),
            Accept,
            Reject(ReplayedNonce),
            Accept,
            Accept,
            Accept,
            Reject(ReplayedNonce)
        ]
    );
    // Nonces survive a checkpoint.
    let state = chain.replayer.checkpoint();
    let bytes = serde_json::to_vec(&state).unwrap();
    let restored = Replayer::restore(
        replay_config(CHAIN, 1_000),
        registry(),
        serde_json::from_slice(&bytes).unwrap(),
    )
    .unwrap();
    let mut chain = Chain {
        replayer: restored,
        closed: Vec::new(),
    };
    let h = chain.height();
    let v = chain.push(&[
        sign(compute("prov-one", 2), &k1(), h),
        sign(compute("prov-two", 2), &k2_old(), h),
        sign(compute("prov-one", 3), &k1(), h),
        sign(compute("prov-two", 3), &k2_old(), h),
    ]);
    assert_eq!(
        v,
        [Reject(ReplayedNonce), Reject(ReplayedNonce), Accept, Accept]
    );
}

#[test]
fn every_invalid_value_kind() {
    let mut chain = Chain::new(1_000);
    let h = chain.height();
    let bt = |latency: u64| json!({"kernel_digest": "ab".repeat(32), "benchmark_commit": "b", "proof_latency_ms": latency});
    let bad = [
        with(storage("prov-one", 0, 5_000), "bytes", json!(0)),
        with(compute("prov-one", 1), "compute_units", json!(0)),
        with(compute("prov-one", 2), "blocktorch", bt(0)),
        with(energy("prov-one", 3), "energy_milli_kwh", json!(0)),
        with(energy("prov-one", 4), "proof_hash", json!("0".repeat(64))),
        with(ad("prov-one", 5), "impressions", json!(0)),
        with(ad("prov-one", 6), "conversions", json!(1_001)),
        with(ad("prov-one", 7), "privacy_remaining_ppm", json!(1_000_001)),
    ];
    // Each passes checks 1–4 (it carries its `invalid` mark to check 6) ...
    for v in &bad {
        let signed = sign(v.clone(), &k1(), h);
        match decode_text(&signed.to_string(), h) {
            Decoded::Settlement(s) => assert!(s.invalid.is_some(), "{v}"),
            other => panic!("{v}: {other:?}"),
        }
    }
    // ... and is rejected as invalid_values by the replayer.
    let signed: Vec<Value> = bad.iter().map(|v| sign(v.clone(), &k1(), h)).collect();
    assert_eq!(chain.push(&signed), [Reject(InvalidValues); 8]);
    // The boundaries are valid.
    let h = chain.height();
    let good = [
        with(ad("prov-one", 10), "conversions", json!(1_000)),
        with(
            ad("prov-one", 11),
            "privacy_remaining_ppm",
            json!(1_000_000),
        ),
        with(ad("prov-one", 12), "privacy_remaining_ppm", json!(0)),
        with(compute("prov-one", 13), "blocktorch", bt(1)),
        without(compute("prov-one", 14), "blocktorch"),
        with(
            energy("prov-one", 15),
            "proof_hash",
            json!(format!("{}1", "0".repeat(63))),
        ),
        with(
            storage("prov-one", 16, 9_007_199_254_740_991),
            "cost_micro",
            json!(0),
        ),
    ];
    let signed: Vec<Value> = good.into_iter().map(|v| sign(v, &k1(), h)).collect();
    assert_eq!(chain.push(&signed), [Accept; 7]);
}

#[test]
fn every_schema_kind() {
    let base = || storage("prov-one", 0, 5_000);
    let signed = |v: Value| sign(v, &k1(), 0);
    let cases: Vec<Value> = vec![
        signed(with(base(), "market", json!("gas"))),
        signed(with(base(), "market", json!(1))),
        signed(without(base(), "market")),
        signed(without(base(), "nonce")),
        signed(without(base(), "cost_micro")),
        signed(without(base(), "escrow_micro")),
        without(base(), "signature"),
        with(base(), "signature", json!("AB".repeat(64))),
        with(base(), "signature", json!("ab".repeat(63))),
        with(base(), "signature", json!(format!("{}g", "a".repeat(127)))),
        signed(with(base(), "provider", json!("bad id"))),
        signed(with(base(), "provider", json!("p".repeat(129)))),
        signed(with(base(), "provider", json!(""))),
        signed(with(base(), "contract_id", json!("é"))),
        signed(with(base(), "nonce", json!(9_007_199_254_740_992_u64))),
        signed(with(base(), "nonce", json!(-1))),
        signed(with(base(), "payment_micro", json!(1.5))),
        signed(with(base(), "payment_micro", json!("5000"))),
        signed(with(base(), "bytes", json!(null))),
        signed(with(base(), "escrow_micro", json!(true))),
        signed(with(compute("prov-one", 0), "blocktorch", json!(null))),
        signed(with(compute("prov-one", 0), "verified", json!("yes"))),
        signed(with(
            compute("prov-one", 0),
            "blocktorch",
            json!({"kernel_digest": "ab".repeat(32), "benchmark_commit": "b", "proof_latency_ms": 5, "x": 1}),
        )),
        signed(with(
            compute("prov-one", 0),
            "blocktorch",
            json!({"kernel_digest": "ab".repeat(32), "proof_latency_ms": 5}),
        )),
        signed(with(
            compute("prov-one", 0),
            "blocktorch",
            json!({"kernel_digest": "AB".repeat(32), "benchmark_commit": "b", "proof_latency_ms": 5}),
        )),
        signed(with(
            energy("prov-one", 0),
            "proof_hash",
            json!("cd".repeat(31)),
        )),
        signed(with(ad("prov-one", 0), "tier", json!("video"))),
        signed(with(ad("prov-one", 0), "job_id", json!("j"))),
        json!([1, 2]),
        json!("receipt"),
        json!(null),
    ];
    for v in &cases {
        assert_eq!(stateless(v, 0), Some(Schema), "{v}");
    }
    // Texts serde_json::Value cannot express: duplicate keys, non-plain integer literals.
    let good = signed(base()).to_string();
    assert!(matches!(decode_text(&good, 0), Decoded::Settlement(_)));
    let texts = [
        good.replacen('{', r#"{"bytes":1000,"#, 1),
        good.replacen('{', r#"{"signature":"00","#, 1),
        good.replace(r#""nonce":0"#, r#""nonce":-0"#),
        good.replace(r#""nonce":0"#, r#""nonce":0.0"#),
        good.replace(r#""nonce":0"#, r#""nonce":0e0"#),
        good.replace(r#""bytes":1000"#, r#""bytes":1e3"#),
        good.replace(r#""bytes":1000"#, r#""bytes":1000.0"#),
        good.replace(r#""bytes":1000"#, r#""bytes":18446744073709551616"#),
    ];
    for text in &texts {
        assert_ne!(text, &good);
        match decode_text(text, 0) {
            Decoded::Rejected { reason, .. } => assert_eq!(reason, Schema, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    // MAX_SAFE itself is a valid integer.
    let max = sign(
        with(base(), "bytes", json!(9_007_199_254_740_991_u64)),
        &k1(),
        0,
    );
    assert_eq!(stateless(&max, 0), None);
}

#[test]
fn slash_receipts() {
    let mut chain = Chain::new(1_000);
    let v = chain.push(&[
        slash(1),
        slash(0),
        with(slash(5), "nonce", json!(1)),
        with(slash(5), "signature", json!("00".repeat(64))),
        with(slash(0), "nonce", json!(1)),
        without(slash(5), "reason"),
        without(slash(5), "provider"),
        with(slash(5), "reason", json!("not an id")),
        with(slash(5), "amount_micro", json!(-5)),
        with(slash(5), "market", json!("ad_slash")),
        with(slash(5), "market", json!("compute_slash")),
        with(slash(5), "market", json!("energy_slash")),
    ]);
    assert_eq!(
        v,
        [
            Accept,
            Reject(InvalidValues),
            Reject(Schema),
            Reject(Schema),
            Reject(Schema),
            Reject(Schema),
            Reject(Schema),
            Reject(Schema),
            Reject(Schema),
            Reject(Schema),
            Accept,
            Accept,
        ]
    );
}

#[test]
fn key_rotation_windows() {
    let mut chain = Chain::new(1_000);
    // Before the overlap only the old key is valid.
    chain.advance_to(5);
    let v = chain.push(&[
        sign(storage("prov-two", 0, 5_000), &k2_old(), 5),
        sign(storage("prov-two", 1, 5_000), &k2_new(), 5),
    ]);
    assert_eq!(v, [Accept, Reject(BadSignature)]);
    // During the overlap [10, 20) either key is accepted.
    for h in [10, 19] {
        chain.advance_to(h);
        let v = chain.push(&[
            sign(storage("prov-two", 2 * h, 5_000), &k2_old(), h),
            sign(storage("prov-two", 2 * h + 1, 5_000), &k2_new(), h),
        ]);
        assert_eq!(v, [Accept, Accept], "height {h}");
    }
    // From until_height on, the old key's signatures are bad.
    chain.advance_to(20);
    let v = chain.push(&[
        sign(storage("prov-two", 100, 5_000), &k2_old(), 20),
        sign(storage("prov-two", 101, 5_000), &k2_new(), 20),
    ]);
    assert_eq!(v, [Reject(BadSignature), Accept]);
}

#[test]
fn signature_binds_chain_id_and_height() {
    let v = sign(storage("prov-one", 0, 5_000), &k1(), 3);
    assert_eq!(stateless(&v, 3), None);
    assert_eq!(stateless(&v, 4), Some(BadSignature));
    assert_eq!(stateless(&v, 2), Some(BadSignature));
    let other_chain = sign_for(storage("prov-one", 0, 5_000), &k1(), "other-chain", 3);
    assert_eq!(stateless(&other_chain, 3), Some(BadSignature));
    // Key order in the receipt does not matter (the message is JCS).
    let text = v.to_string();
    let reversed: Vec<String> = v
        .as_object()
        .unwrap()
        .iter()
        .rev()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    let moved = format!("{{{}}}", reversed.join(","));
    assert_ne!(moved, text);
    assert!(moved.starts_with(r#"{"signature":"#), "{moved}");
    assert!(matches!(decode_text(&moved, 3), Decoded::Settlement(_)));
}

#[test]
fn verify_off_skips_only_the_signature_check() {
    let mut cfg = replay_config(CHAIN, 1_000);
    cfg.verify = false;
    let mut chain = Chain::with_config(cfg);
    let v = chain.push(&[
        sign(storage("prov-one", 0, 5_000), &k2_old(), 0),
        sign(storage("prov-one", 0, 5_000), &k1(), 0),
        sign(storage("prov-one", 1, 999), &k1(), 0),
        sign(storage("ghost", 1, 5_000), &k_ghost(), 0),
        sign(storage("prov-late", 1, 5_000), &k_late(), 0),
        with(
            sign(storage("prov-one", 1, 5_000), &k1(), 0),
            "memo",
            json!(1),
        ),
    ]);
    assert_eq!(
        v,
        [
            Accept,
            Reject(ReplayedNonce),
            Reject(BelowMinPayment),
            Reject(KeyNotFound),
            Reject(KeyNotFound),
            Reject(Schema)
        ]
    );
}

#[test]
fn receipt_signing_vector() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/signing-vectors.json"
    );
    let vectors: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let vector = &vectors["receipt_signature"];
    let receipt = &vector["receipt"];
    let chain_id = vector["chain_id"].as_str().unwrap();
    let height = vector["height"].as_u64().unwrap();
    let Json::Obj(obj) = tree(receipt) else {
        panic!("receipt is not an object")
    };
    let message = signing_message(&obj, chain_id, height).unwrap();
    assert_eq!(
        std::str::from_utf8(&message).unwrap(),
        vector["message_utf8"].as_str().unwrap()
    );
    assert_eq!(
        blake3::hash(&message).to_hex().as_str(),
        vector["message_blake3"].as_str().unwrap()
    );
    let key_bytes: [u8; 32] = hex::decode(vector["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&key_bytes).unwrap();
    let sig_bytes: [u8; 64] = hex::decode(receipt["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signature = ed25519_dalek::Signature::from_bytes(&sig_bytes);
    key.verify_strict(&message, &signature).unwrap();
    key.verify(&message, &signature).unwrap();
    // And the replayer's own check accepts it.
    let providers = json!({"providers": [{"id": receipt["provider"], "keys": [
        {"public_key": vector["public_key"], "from_height": 0}]}]});
    let registry = Registry::from_json(providers.to_string().as_bytes()).unwrap();
    let ctx = ReceiptContext {
        registry: &registry,
        chain_id,
        min_payment_micro: 1_000,
        verify: true,
    };
    assert!(matches!(
        decode_receipt(&tree(receipt), height, &ctx),
        Decoded::Settlement(_)
    ));
    assert!(matches!(
        decode_receipt(&tree(receipt), height + 1, &ctx),
        Decoded::Rejected {
            reason: BadSignature,
            ..
        }
    ));
}

/// An unknown field is a `schema` rejection whatever its name, the empty string included.
#[test]
fn an_empty_field_name_is_an_unknown_field() {
    for v in [
        storage("prov-one", 0, 5_000),
        compute("prov-one", 0),
        energy("prov-one", 0),
        ad("prov-one", 0),
    ] {
        let v = sign(with(v, "", json!(1)), &k1(), 0);
        assert_eq!(stateless(&v, 0), Some(Schema), "{v}");
    }
}

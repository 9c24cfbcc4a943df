//! Receipts: decoding, the validation order and the signed message (docs/formats.md, "Receipts").
//!
//! Everything here is a pure function of one receipt, its block height and the static registry,
//! so it runs on any core. The one stateful check, the per-provider nonce, is left to the
//! [`Replayer`](crate::Replayer), which sees receipts in chain order.

use std::fmt;

use ed25519_dalek::Signature;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::decode::{self, FieldError};
use crate::json::{Json, Key, Obj};
use crate::providers::Registry;

/// Domain separator in front of every signed receipt message.
pub const RECEIPT_DOMAIN: &[u8] = b"tb.receipt.v1\n";

/// The four settlement markets, in the fixed order used everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Market {
    /// Storage contracts, measured in bytes.
    Storage,
    /// Compute jobs, measured in compute units.
    Compute,
    /// Energy contracts, measured in milli-kWh.
    Energy,
    /// Ad campaigns, measured in impressions.
    Ad,
}

impl Market {
    /// All markets in the fixed order.
    pub const ALL: [Market; 4] = [Market::Storage, Market::Compute, Market::Energy, Market::Ad];

    /// The market's name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Storage => "storage",
            Market::Compute => "compute",
            Market::Energy => "energy",
            Market::Ad => "ad",
        }
    }

    /// Position in [`Market::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The two ad tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Contextual ads.
    Contextual,
    /// Presence ads.
    Presence,
}

impl Tier {
    /// Position in the fixed order contextual, presence.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The tier's name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Contextual => "contextual",
            Tier::Presence => "presence",
        }
    }
}

/// Why a receipt was rejected; the first failing check of the validation order (docs/formats.md) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Does not decode, unknown market or field, id/hex format, integer > MAX_SAFE.
    Schema,
    /// `payment_micro < min_payment_micro`.
    BelowMinPayment,
    /// No provider key valid at this height (or an unknown provider).
    KeyNotFound,
    /// The signature does not verify (strictly) under any valid key.
    BadSignature,
    /// Nonce not strictly greater than the provider's last accepted nonce.
    ReplayedNonce,
    /// Zero delivered units or an out-of-range value.
    InvalidValues,
}

impl Reason {
    /// All reasons in snapshot order.
    pub const ALL: [Reason; 6] = [
        Reason::Schema,
        Reason::BelowMinPayment,
        Reason::KeyNotFound,
        Reason::BadSignature,
        Reason::ReplayedNonce,
        Reason::InvalidValues,
    ];

    /// The reason's name in snapshots and verdicts.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Schema => "schema",
            Reason::BelowMinPayment => "below_min_payment",
            Reason::KeyNotFound => "key_not_found",
            Reason::BadSignature => "bad_signature",
            Reason::ReplayedNonce => "replayed_nonce",
            Reason::InvalidValues => "invalid_values",
        }
    }

    /// Position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The optional proof record of a compute receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Blocktorch {
    /// Commit of the benchmark the proof ran against.
    pub benchmark_commit: Box<str>,
    /// Digest of the kernel variant, 64 lowercase hex.
    pub kernel_digest: Box<str>,
    /// Proof verification latency; 0 is invalid.
    pub proof_latency_ms: u64,
}

/// What a market-specific part of an accepted settlement contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Storage and energy carry nothing beyond their units.
    Plain,
    /// A compute receipt, with its proof record if any.
    Compute(Option<Blocktorch>),
    /// An ad receipt.
    Ad {
        /// Which tier the campaign runs in.
        tier: Tier,
        /// Conversions (≤ impressions when valid).
        conversions: u64,
        /// Privacy budget left, ppm (≤ 1_000_000 when valid).
        privacy_remaining_ppm: u64,
    },
}

/// A signed settlement that passed checks 1–4 of the validation order (docs/formats.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Market settled.
    pub market: Market,
    /// Registry index of the provider (only registered providers get this far).
    pub provider: u32,
    /// Provider nonce, checked in chain order by the replayer.
    pub nonce: u64,
    /// Amount paid, micro-BLOCK.
    pub payment_micro: u64,
    /// Provider's declared cost basis, micro-BLOCK.
    pub cost_micro: u64,
    /// Delivered units (bytes, compute units, milli-kWh, impressions).
    pub units: u64,
    /// Market-specific part.
    pub detail: Detail,
    /// The `invalid_values` problem, if any; judged only after the nonce (check 6 follows check 5).
    pub invalid: Option<&'static str>,
}

/// One receipt after the stateless checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A signed settlement still subject to the nonce and value checks.
    Settlement(Settlement),
    /// A protocol slash receipt; `invalid` is set when `amount_micro` is 0.
    Slash {
        /// Market whose `slashed_micro` it adds to.
        market: Market,
        /// Amount slashed.
        amount_micro: u64,
        /// The `invalid_values` problem, if any.
        invalid: Option<&'static str>,
    },
    /// Rejected by one of checks 1–4.
    Rejected {
        /// The first failing check.
        reason: Reason,
        /// A human-readable detail (not part of any hash).
        detail: String,
    },
}

/// What the stateless checks need besides the receipt.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptContext<'a> {
    /// The provider registry.
    pub registry: &'a Registry,
    /// Chain id mixed into every signed message.
    pub chain_id: &'a str,
    /// Minimum payment, micro-BLOCK.
    pub min_payment_micro: u64,
    /// Whether to check signatures (off only for trusted exports).
    pub verify: bool,
}

fn reject(reason: Reason, detail: impl Into<String>) -> Decoded {
    Decoded::Rejected {
        reason,
        detail: detail.into(),
    }
}

/// Field names of a signed receipt, common part first.
const COMMON: [&str; 6] = [
    "market",
    "provider",
    "nonce",
    "payment_micro",
    "cost_micro",
    "signature",
];

/// The fields of each market's signed receipt after [`COMMON`].
const STORAGE: [&str; 3] = ["contract_id", "bytes", "escrow_micro"];
const COMPUTE: [&str; 4] = ["job_id", "compute_units", "verified", "blocktorch"];
const ENERGY: [&str; 3] = ["contract_id", "energy_milli_kwh", "proof_hash"];
const AD: [&str; 5] = [
    "campaign_id",
    "impressions",
    "conversions",
    "tier",
    "privacy_remaining_ppm",
];
/// The fields of a slash receipt, and of a compute receipt's `blocktorch` object.
const SLASH: [&str; 4] = ["market", "provider", "amount_micro", "reason"];
const BLOCKTORCH: [&str; 3] = ["kernel_digest", "benchmark_commit", "proof_latency_ms"];

/// Every field name the receipt decoders read, for the parser's list of known keys.
#[cfg(test)]
pub(crate) fn field_names() -> impl Iterator<Item = &'static str> {
    [
        &COMMON[..],
        &STORAGE,
        &COMPUTE,
        &ENERGY,
        &AD,
        &SLASH,
        &BLOCKTORCH,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// Runs checks 1–4 of the validation order on one receipt of the block at `height`.
pub fn decode_receipt(value: &Json, height: u64, ctx: &ReceiptContext<'_>) -> Decoded {
    let obj = match decode::object(value, "receipt") {
        Ok(o) => o,
        Err(e) => return reject(Reason::Schema, e.to_string()),
    };
    let market = match obj.get("market") {
        None => return reject(Reason::Schema, "missing field market"),
        Some(Json::Str(m)) => m,
        Some(_) => return reject(Reason::Schema, "market: not a string"),
    };
    let parsed = match &**market {
        "storage" => signed(obj, Market::Storage, &STORAGE),
        "compute" => signed(obj, Market::Compute, &COMPUTE),
        "energy" => signed(obj, Market::Energy, &ENERGY),
        "ad" => signed(obj, Market::Ad, &AD),
        "storage_slash" => return slash(obj, Market::Storage),
        "compute_slash" => return slash(obj, Market::Compute),
        "energy_slash" => return slash(obj, Market::Energy),
        other => return reject(Reason::Schema, format!("unknown market '{other}'")),
    };
    let (head, settlement) = match parsed {
        Ok(p) => p,
        Err(e) => return reject(Reason::Schema, e.to_string()),
    };
    if head.payment_micro < ctx.min_payment_micro {
        return reject(Reason::BelowMinPayment, head.payment_micro.to_string());
    }
    let Some(provider) = ctx.registry.index_of(head.provider) else {
        return reject(Reason::KeyNotFound, head.provider);
    };
    let keys = ctx
        .registry
        .get(provider)
        .map(|p| &p.keys[..])
        .unwrap_or_default();
    let mut valid = keys.iter().filter(|k| k.valid_at(height)).peekable();
    if valid.peek().is_none() {
        return reject(Reason::KeyNotFound, head.provider);
    }
    if ctx.verify {
        let Some(message) = signing_message(obj, ctx.chain_id, height) else {
            return reject(
                Reason::Schema,
                "a number that is not a plain unsigned integer",
            );
        };
        let signature = Signature::from_bytes(&head.signature);
        if !valid.any(|k| k.key.verify_strict(&message, &signature).is_ok()) {
            return reject(Reason::BadSignature, head.provider);
        }
    }
    Decoded::Settlement(Settlement {
        provider,
        ..settlement
    })
}

/// The common fields of a signed receipt.
struct Head<'a> {
    provider: &'a str,
    payment_micro: u64,
    signature: [u8; 64],
}

/// Decodes a signed receipt of `market` whose market-specific field names are `extra`.
fn signed<'a>(
    obj: &'a Obj,
    market: Market,
    extra: &[&str],
) -> Result<(Head<'a>, Settlement), FieldError> {
    // One slot array sized for the largest market (6 common + 5 ad fields).
    let mut all = [""; 11];
    all[..6].copy_from_slice(&COMMON);
    all[6..6 + extra.len()].copy_from_slice(extra);
    let names = &all[..6 + extra.len()];
    let s: [Option<&Json>; 11] = decode::slots(obj, names)?;
    let req = |i: usize| decode::required(s[i], names[i]);
    let uint = |i: usize| decode::uint(req(i)?, names[i]);
    let provider = decode::id(req(1)?, "provider")?;
    let nonce = uint(2)?;
    let payment_micro = uint(3)?;
    let cost_micro = uint(4)?;
    let signature = decode::hex_bytes::<64>(req(5)?, "signature")?;
    let mut invalid = None;
    let (units, detail) = match market {
        Market::Storage => {
            decode::id(req(6)?, "contract_id")?;
            let bytes = uint(7)?;
            uint(8)?;
            if bytes == 0 {
                invalid = Some("zero bytes");
            }
            (bytes, Detail::Plain)
        }
        Market::Compute => {
            decode::id(req(6)?, "job_id")?;
            let units = uint(7)?;
            decode::boolean(req(8)?, "verified")?;
            let blocktorch = match s[9] {
                None => None,
                Some(v) => Some(blocktorch(v).map_err(|e| e.under("blocktorch"))?),
            };
            if units == 0 {
                invalid = Some("zero compute_units");
            } else if blocktorch.as_ref().is_some_and(|b| b.proof_latency_ms == 0) {
                invalid = Some("proof_latency_ms == 0");
            }
            (units, Detail::Compute(blocktorch))
        }
        Market::Energy => {
            decode::id(req(6)?, "contract_id")?;
            let units = uint(7)?;
            let proof = decode::hex_bytes::<32>(req(8)?, "proof_hash")?;
            if units == 0 {
                invalid = Some("zero energy_milli_kwh");
            } else if proof == [0; 32] {
                invalid = Some("proof_hash all zero");
            }
            (units, Detail::Plain)
        }
        Market::Ad => {
            decode::id(req(6)?, "campaign_id")?;
            let impressions = uint(7)?;
            let conversions = uint(8)?;
            let tier = match decode::string(req(9)?, "tier")? {
                "contextual" => Tier::Contextual,
                "presence" => Tier::Presence,
                _ => return Err(FieldError::new("tier", "unknown tier")),
            };
            let privacy_remaining_ppm = uint(10)?;
            if impressions == 0 {
                invalid = Some("zero impressions");
            } else if conversions > impressions {
                invalid = Some("conversions > impressions");
            } else if privacy_remaining_ppm > 1_000_000 {
                invalid = Some("privacy_remaining_ppm > 1_000_000");
            }
            let detail = Detail::Ad {
                tier,
                conversions,
                privacy_remaining_ppm,
            };
            (impressions, detail)
        }
    };
    let head = Head {
        provider,
        payment_micro,
        signature,
    };
    let settlement = Settlement {
        market,
        provider: u32::MAX,
        nonce,
        payment_micro,
        cost_micro,
        units,
        detail,
        invalid,
    };
    Ok((head, settlement))
}

fn blocktorch(value: &Json) -> Result<Blocktorch, FieldError> {
    let obj = decode::object(value, "blocktorch")?;
    let names = BLOCKTORCH;
    let [digest, commit, latency] = decode::slots(obj, &names)?;
    let kernel_digest = decode::required(digest, names[0])?;
    decode::hex_bytes::<32>(kernel_digest, names[0])?;
    let benchmark_commit = decode::id(decode::required(commit, names[1])?, names[1])?;
    let proof_latency_ms = decode::uint(decode::required(latency, names[2])?, names[2])?;
    Ok(Blocktorch {
        benchmark_commit: benchmark_commit.into(),
        kernel_digest: decode::string(kernel_digest, names[0])?.into(),
        proof_latency_ms,
    })
}

fn slash(obj: &Obj, market: Market) -> Decoded {
    let decoded = (|| {
        let names = SLASH;
        let [_, provider, amount, reason] = decode::slots(obj, &names)?;
        decode::id(decode::required(provider, names[1])?, names[1])?;
        let amount_micro = decode::uint(decode::required(amount, names[2])?, names[2])?;
        decode::id(decode::required(reason, names[3])?, names[3])?;
        Ok::<_, FieldError>(amount_micro)
    })();
    match decoded {
        Ok(amount_micro) => Decoded::Slash {
            market,
            amount_micro,
            invalid: (amount_micro == 0).then_some("slash amount_micro == 0"),
        },
        Err(e) => reject(Reason::Schema, e.to_string()),
    }
}

/// The exact bytes a provider signs for `receipt` at `height` (docs/formats.md, "The signed message"):
/// `"tb.receipt.v1\n"` ‖ JCS(receipt without `signature`, plus `chain_id` and `height`).
///
/// As docs/formats.md notes, for a receipt that passed the schema check (ASCII ids and hex, safe
/// integers) JCS is compact JSON with keys sorted, which is what this writes through
/// serde_json: about seven times faster than a general canonicaliser on this hot path. A
/// property test checks it against `serde_json_canonicalizer` byte for byte.
///
/// `None` when the receipt holds a number that is never written back (not a plain unsigned
/// integer): such a receipt fails the schema check, so it has no message to verify.
pub fn signing_message(receipt: &Obj, chain_id: &str, height: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(RECEIPT_DOMAIN.len() + 320);
    out.extend_from_slice(RECEIPT_DOMAIN);
    let view = SigningView {
        receipt,
        chain_id,
        height,
    };
    tb_canonical::try_extend_compact(&mut out, &view).ok()?;
    Some(out)
}

/// A JSON value whose objects serialise with their keys in sorted (byte) order.
struct Sorted<'a>(&'a Json);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Json::Obj(o) => {
                let mut entries: Vec<&(Key, Json)> = o.entries.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&**k, &Sorted(v))?;
                }
                map.end()
            }
            Json::Arr(items) => s.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(s),
        }
    }
}

/// The receipt as signed: without `signature`, with `chain_id` and `height`.
struct SigningView<'a> {
    receipt: &'a Obj,
    chain_id: &'a str,
    height: u64,
}

impl Serialize for SigningView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let chain_id = Json::Str(self.chain_id.into());
        let height = Json::Uint(self.height);
        let mut entries: Vec<(&str, &Json)> = self
            .receipt
            .entries
            .iter()
            .filter(|(k, _)| &**k != "signature")
            .map(|(k, v)| (&**k, v))
            .chain([("chain_id", &chain_id), ("height", &height)])
            .collect();
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, &Sorted(v))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod jcs_tests {
    use proptest::prelude::*;

    use super::*;

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._:-]{1,12}"
    }

    fn value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Json::Bool),
            (0u64..=crate::json::MAX_SAFE).prop_map(Json::Uint),
            id().prop_map(|s| Json::Str(s.into())),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop::collection::btree_map(id(), inner, 0..4).prop_map(|m| {
                Json::Obj(Obj {
                    entries: m.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                    duplicate_key: false,
                })
            })
        })
    }

    proptest! {
        /// The sorted compact form equals RFC 8785 JCS for every receipt-shaped object.
        #[test]
        fn signing_message_is_jcs(
            fields in prop::collection::btree_map(id(), value(), 1..10),
            reversed: bool,
            chain_id in id(),
            height in 0u64..=crate::json::MAX_SAFE,
        ) {
            let mut entries: Vec<(Key, Json)> = fields
                .into_iter()
                .filter(|(k, _)| k != "chain_id" && k != "height")
                .map(|(k, v)| (k.into(), v))
                .collect();
            if reversed {
                entries.reverse();
            }
            let obj = Obj { entries, duplicate_key: false };
            let view = SigningView { receipt: &obj, chain_id: &chain_id, height };
            let mut want = RECEIPT_DOMAIN.to_vec();
            want.extend(serde_json_canonicalizer::to_vec(&NaturalView(&view)).unwrap());
            prop_assert_eq!(signing_message(&obj, &chain_id, height), Some(want));
        }
    }

    /// The signing view with entries in their natural order, for the canonicaliser to sort.
    struct NaturalView<'a>(&'a SigningView<'a>);

    impl Serialize for NaturalView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let v = self.0;
            let mut map = s.serialize_map(None)?;
            for (k, val) in &v.receipt.entries {
                if &**k != "signature" {
                    map.serialize_entry(&**k, val)?;
                }
            }
            map.serialize_entry("chain_id", v.chain_id)?;
            map.serialize_entry("height", &v.height)?;
            map.end()
        }
    }
}

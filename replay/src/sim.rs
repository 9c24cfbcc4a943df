//! A deterministic chain simulator: the same seed and settings give the same bytes.
//!
//! It writes a chain directory of `tb.chain.v1` files, the providers file and the provider
//! secret seeds, for demos, tests and benchmarks. Every scenario starts from a healthy launch
//! whose markets sit well inside the gates' enter bands (utilization about 50 %, margins about
//! 30–45 %, six miners, 10 s ± 5 % block spacing), then perturbs it:
//!
//! | scenario | what changes |
//! | --- | --- |
//! | `healthy` | nothing |
//! | `market_shock` | epochs 4–6: the shocked market (storage) delivers 1/100 of its usual units |
//! | `treasury_collapse` | from epoch 4: coinbase drops to 5 micro, so the treasury inflow is 0 |
//! | `hostile` | one hostile receipt every 4th block, cycling through the six rejection reasons (each reason in 1 of 24 blocks), and a slash receipt every 10th block |
//! | `rotation` | provider `multi-theta` rotates its key at the middle height (10 blocks of overlap) |
//! | `demo` | `market_shock` and `hostile` together |

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey};
use rayon::prelude::*;

use crate::json::{Json, Key, Obj};
use crate::receipt::signing_message;

/// Blocks per chain file the simulator writes.
pub const FILE_BLOCKS: u64 = 1_000;

/// A named simulation scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A healthy launch.
    Healthy,
    /// A storage market shock in epochs 4–6, then recovery.
    MarketShock,
    /// Treasury inflow collapses from epoch 4.
    TreasuryCollapse,
    /// Every rejection reason at a known rate, plus slashes.
    Hostile,
    /// A provider rotates its key mid-chain.
    Rotation,
    /// Market shock plus hostile receipts: the demo's launch story.
    Demo,
}

impl Scenario {
    /// Every scenario, for help texts and tests.
    pub const ALL: [Scenario; 6] = [
        Scenario::Healthy,
        Scenario::MarketShock,
        Scenario::TreasuryCollapse,
        Scenario::Hostile,
        Scenario::Rotation,
        Scenario::Demo,
    ];

    /// The scenario's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::MarketShock => "market_shock",
            Scenario::TreasuryCollapse => "treasury_collapse",
            Scenario::Hostile => "hostile",
            Scenario::Rotation => "rotation",
            Scenario::Demo => "demo",
        }
    }

    fn shock(self) -> bool {
        matches!(self, Scenario::MarketShock | Scenario::Demo)
    }

    fn hostile(self) -> bool {
        matches!(self, Scenario::Hostile | Scenario::Demo)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown scenario {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// First epoch of the market shock.
pub const SHOCK_FIRST_EPOCH: u64 = 4;
/// Epochs the market shock lasts.
pub const SHOCK_EPOCHS: u64 = 3;
/// First epoch of the treasury collapse.
pub const COLLAPSE_FIRST_EPOCH: u64 = 4;

/// Settings of one simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// What happens on the chain.
    pub scenario: Scenario,
    /// PRNG seed; everything derives from it.
    pub seed: u64,
    /// Epochs to simulate.
    pub epochs: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// Chain id the receipts are signed for.
    pub chain_id: String,
    /// Height of the first block.
    pub genesis_height: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            scenario: Scenario::Healthy,
            seed: 1,
            epochs: 12,
            epoch_blocks: 120,
            chain_id: "tb-sim".to_owned(),
            genesis_height: 0,
        }
    }
}

/// SplitMix64: tiny, fast, and fully specified, so the chain never depends on a crate's PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (inclusive; tiny modulo bias is irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// `v · [lo_pct, hi_pct] / 100`.
    fn around(&mut self, v: u64, lo_pct: u64, hi_pct: u64) -> u64 {
        v * self.range(lo_pct, hi_pct) / 100
    }
}

/// A simulated provider key with its validity window.
#[derive(Debug, Clone)]
pub struct SimKey {
    /// The secret seed (test keys only).
    pub signing: SigningKey,
    /// First valid height.
    pub from_height: u64,
    /// First height no longer valid.
    pub until_height: Option<u64>,
}

/// A simulated provider.
#[derive(Debug, Clone)]
pub struct SimProvider {
    /// Provider id.
    pub id: &'static str,
    /// Markets it settles in (indices into storage, compute, energy, ad).
    pub markets: &'static [usize],
    /// Its keys, oldest first.
    pub keys: Vec<SimKey>,
}

const PROVIDERS: [(&str, &[usize]); 8] = [
    ("stor-alpha", &[0]),
    ("stor-beta", &[0, 2]),
    ("comp-gamma", &[1]),
    ("comp-delta", &[1, 3]),
    ("enrg-epsilon", &[2]),
    ("ads-zeta", &[3]),
    ("ads-eta", &[3, 0]),
    ("multi-theta", &[0, 1, 2, 3]),
];

/// Per-block capacity offered by each market, before ±10 % noise.
const CAPACITY: [u64; 4] = [16_000_000, 2_400, 13_000, 28_000];

fn derive_key(seed: u64, label: &str) -> SigningKey {
    let mut material = seed.to_le_bytes().to_vec();
    material.extend_from_slice(label.as_bytes());
    SigningKey::from_bytes(&blake3::derive_key("tb-sim provider key v1", &material))
}

/// The providers of a simulation, with keys derived from the seed.
pub fn providers(cfg: &SimConfig) -> Vec<SimProvider> {
    let total = cfg.epochs * cfg.epoch_blocks;
    PROVIDERS
        .iter()
        .map(|(id, markets)| {
            let first = derive_key(cfg.seed, id);
            let keys = if cfg.scenario == Scenario::Rotation && *id == "multi-theta" {
                let rotate = cfg.genesis_height + total / 2;
                vec![
                    SimKey {
                        signing: first,
                        from_height: 0,
                        until_height: Some(rotate + 10),
                    },
                    SimKey {
                        signing: derive_key(cfg.seed, &format!("{id}#2")),
                        from_height: rotate,
                        until_height: None,
                    },
                ]
            } else {
                vec![SimKey {
                    signing: first,
                    from_height: 0,
                    until_height: None,
                }]
            };
            SimProvider { id, markets, keys }
        })
        .collect()
}

/// The providers file (`providers.json`) for `providers`.
pub fn providers_json(providers: &[SimProvider]) -> String {
    let list: Vec<serde_json::Value> = providers
        .iter()
        .map(|p| {
            let keys: Vec<_> = p
                .keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "public_key": hex::encode(k.signing.verifying_key().as_bytes()),
                        "from_height": k.from_height,
                        "until_height": k.until_height,
                    })
                })
                .collect();
            serde_json::json!({ "id": p.id, "keys": keys })
        })
        .collect();
    tb_canonical::to_pretty_string(&serde_json::json!({ "providers": list }))
}

/// The provider secret seeds (`keys.json`), test keys only.
pub fn keys_json(providers: &[SimProvider]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = providers
        .iter()
        .map(|p| {
            let keys: Vec<_> = p
                .keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "seed_hex": hex::encode(k.signing.to_bytes()),
                        "public_key": hex::encode(k.signing.verifying_key().as_bytes()),
                        "from_height": k.from_height,
                        "until_height": k.until_height,
                    })
                })
                .collect();
            (p.id.to_owned(), serde_json::Value::Array(keys))
        })
        .collect();
    let doc = serde_json::json!({
        "note": "TEST KEYS ONLY: ed25519 32-byte secret seeds, hex",
        "providers": map,
    });
    tb_canonical::to_pretty_string(&doc)
}

/// A receipt waiting for its signature.
struct Pending {
    obj: Obj,
    /// Key to sign with; `None` leaves the receipt unsigned (slashes).
    key: Option<SigningKey>,
}

/// A block whose receipts are not yet signed.
struct Draft {
    head: Obj,
    height: u64,
    receipts: Vec<Pending>,
}

fn entry(k: &str, v: Json) -> (Key, Json) {
    (k.into(), v)
}

fn s(v: &str) -> Json {
    Json::Str(v.into())
}

/// The block generator: sequential state (PRNG, nonces, counters) in one place.
struct Generator<'a> {
    cfg: &'a SimConfig,
    providers: &'a [SimProvider],
    rng: Rng,
    next_nonce: Vec<u64>,
    timestamp_ms: u64,
    serial: u64,
}

/// The six hostile kinds, in the order the `hostile` scenario cycles through them.
const HOSTILE_KINDS: [&str; 6] = [
    "schema",
    "below_min_payment",
    "key_not_found",
    "bad_signature",
    "replayed_nonce",
    "invalid_values",
];

impl Generator<'_> {
    fn key_at(&self, provider: usize, height: u64) -> SigningKey {
        let keys = &self.providers[provider].keys;
        // Sign with the newest key valid at this height; rotation moves over 10 blocks early.
        keys.iter()
            .rev()
            .find(|k| {
                k.from_height + 5 <= height.max(5) && k.until_height.is_none_or(|u| height < u)
            })
            .unwrap_or(&keys[0])
            .signing
            .clone()
    }

    fn settlement(&mut self, market: usize, provider: usize, epoch: u64, units_scale: u64) -> Obj {
        self.serial += 1;
        let nonce = self.next_nonce[provider];
        self.next_nonce[provider] += 1;
        let payment = self.rng.range(40_000, 400_000);
        let cost = self.rng.around(payment, 55, 70);
        let mut entries = vec![
            entry("market", s(["storage", "compute", "energy", "ad"][market])),
            entry("provider", s(self.providers[provider].id)),
            entry("nonce", Json::Uint(nonce)),
            entry("payment_micro", Json::Uint(payment)),
            entry("cost_micro", Json::Uint(cost)),
        ];
        let units = (self.rng.around(CAPACITY[market], 35, 65) / units_scale).max(1);
        let serial = self.serial;
        match market {
            0 => entries.extend([
                entry("contract_id", s(&format!("sc-{serial:07}"))),
                entry("bytes", Json::Uint(units)),
                entry("escrow_micro", Json::Uint(payment * 3)),
            ]),
            1 => {
                entries.extend([
                    entry("job_id", s(&format!("job-{serial:07}"))),
                    entry("compute_units", Json::Uint(units)),
                    entry("verified", Json::Bool(self.rng.range(0, 9) > 0)),
                ]);
                if self.rng.range(0, 3) > 0 {
                    let digest = tb_canonical::hash_hex(&[(epoch % 3) as u8]);
                    let bt = Obj {
                        entries: vec![
                            entry("kernel_digest", s(&digest)),
                            entry("benchmark_commit", s(&format!("bench-{:04}", epoch % 3))),
                            entry("proof_latency_ms", Json::Uint(self.rng.range(10, 95))),
                        ],
                        duplicate_key: false,
                    };
                    entries.push(entry("blocktorch", Json::Obj(bt)));
                }
            }
            2 => entries.extend([
                entry("contract_id", s(&format!("ec-{serial:07}"))),
                entry("energy_milli_kwh", Json::Uint(units)),
                entry(
                    "proof_hash",
                    s(&tb_canonical::hash_hex(&serial.to_le_bytes())),
                ),
            ]),
            _ => {
                let conversions = self.rng.around(units, 1, 3);
                let tier = if self.rng.range(0, 1) == 0 {
                    "contextual"
                } else {
                    "presence"
                };
                entries.extend([
                    entry("campaign_id", s(&format!("cmp-{serial:07}"))),
                    entry("impressions", Json::Uint(units)),
                    entry("conversions", Json::Uint(conversions)),
                    entry("tier", s(tier)),
                    entry(
                        "privacy_remaining_ppm",
                        Json::Uint(self.rng.range(100_000, 900_000)),
                    ),
                ]);
            }
        }
        Obj {
            entries,
            duplicate_key: false,
        }
    }

    fn pick_provider(&mut self, market: usize) -> usize {
        let eligible: Vec<usize> = (0..self.providers.len())
            .filter(|&p| self.providers[p].markets.contains(&market))
            .collect();
        eligible[self.rng.range(0, eligible.len() as u64 - 1) as usize]
    }

    fn block(&mut self, height: u64) -> Draft {
        let cfg = self.cfg;
        let offset = height - cfg.genesis_height;
        let epoch = offset / cfg.epoch_blocks;
        let shocked = cfg.scenario.shock()
            && (SHOCK_FIRST_EPOCH..SHOCK_FIRST_EPOCH + SHOCK_EPOCHS).contains(&epoch);
        let collapsed = cfg.scenario == Scenario::TreasuryCollapse && epoch >= COLLAPSE_FIRST_EPOCH;
        if offset > 0 {
            self.timestamp_ms += self.rng.range(9_500, 10_500);
        }
        let mut receipts = Vec::new();
        let mut order = [0usize, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, self.rng.range(0, i as u64) as usize);
        }
        for market in order {
            let provider = self.pick_provider(market);
            let scale = if shocked && market == 0 { 100 } else { 1 };
            let obj = self.settlement(market, provider, epoch, scale);
            let key = Some(self.key_at(provider, height));
            receipts.push(Pending { obj, key });
        }
        if cfg.scenario.hostile() && offset % 4 == 2 {
            let kind = HOSTILE_KINDS[((offset / 4) % 6) as usize];
            receipts.push(self.hostile(kind, height, &receipts));
        }
        if cfg.scenario.hostile() && offset % 10 == 5 {
            let market =
                ["storage_slash", "compute_slash", "energy_slash"][(offset / 10 % 3) as usize];
            let provider = self.pick_provider(0);
            let obj = Obj {
                entries: vec![
                    entry("market", s(market)),
                    entry("provider", s(self.providers[provider].id)),
                    entry("amount_micro", Json::Uint(self.rng.range(1_000, 50_000))),
                    entry("reason", s("late-proof")),
                ],
                duplicate_key: false,
            };
            receipts.push(Pending { obj, key: None });
        }
        let capacity = Obj {
            entries: [
                "storage_bytes",
                "compute_units",
                "energy_milli_kwh",
                "ad_impressions",
            ]
            .iter()
            .zip(CAPACITY)
            .map(|(k, c)| entry(k, Json::Uint(self.rng.around(c, 95, 105))))
            .collect(),
            duplicate_key: false,
        };
        let coinbase = if collapsed { 5 } else { 1_800_000 };
        let head = Obj {
            entries: vec![
                entry("height", Json::Uint(height)),
                entry("timestamp_ms", Json::Uint(self.timestamp_ms)),
                entry("miner", s(&format!("miner-{:02}", self.rng.range(1, 6)))),
                entry(
                    "difficulty",
                    Json::Uint(self.rng.range(1_000_000, 2_000_000)),
                ),
                entry("coinbase_micro", Json::Uint(coinbase)),
                entry("tx_count", Json::Uint(self.rng.range(10, 70))),
                entry(
                    "tx_volume_micro",
                    Json::Uint(self.rng.range(50_000_000, 300_000_000)),
                ),
                entry("capacity", Json::Obj(capacity)),
            ],
            duplicate_key: false,
        };
        Draft {
            head,
            height,
            receipts,
        }
    }

    /// One receipt that fails check `kind` of the validation order (docs/formats.md) (and no earlier check).
    fn hostile(&mut self, kind: &str, height: u64, honest: &[Pending]) -> Pending {
        let provider = self.pick_provider(3);
        let epoch = (height - self.cfg.genesis_height) / self.cfg.epoch_blocks;
        let mut obj = self.settlement(3, provider, epoch, 1);
        let mut key = Some(self.key_at(provider, height));
        let set = |obj: &mut Obj, k: &str, v: Json| {
            if let Some(e) = obj.entries.iter_mut().find(|(n, _)| &**n == k) {
                e.1 = v;
            }
        };
        match kind {
            "schema" => obj.entries.push(entry("memo", s("free text"))),
            "below_min_payment" => set(&mut obj, "payment_micro", Json::Uint(999)),
            "key_not_found" => {
                set(&mut obj, "provider", s("ghost-provider"));
                key = Some(derive_key(self.cfg.seed, "ghost-provider"));
            }
            "bad_signature" => {
                let other = (provider + 1) % self.providers.len();
                key = Some(self.key_at(other, height));
            }
            "replayed_nonce" => {
                // Reuse the nonce of this block's first honest receipt (accepted just before).
                if let Some(first) = honest.first() {
                    for k in ["provider", "nonce"] {
                        if let Some(v) = first.obj.get(k) {
                            set(&mut obj, k, v.clone());
                        }
                    }
                    key = first.key.clone();
                }
            }
            _ => set(&mut obj, "impressions", Json::Uint(0)),
        }
        Pending { obj, key }
    }
}

/// Signs and serialises one block into a line (with its `\n`).
fn finish(draft: Draft, chain_id: &str) -> Vec<u8> {
    let receipts = draft
        .receipts
        .into_iter()
        .map(|p| {
            let mut obj = p.obj;
            if let Some(key) = p.key {
                let Some(message) = signing_message(&obj, chain_id, draft.height) else {
                    unreachable!("the simulator writes only plain unsigned integers")
                };
                let sig = key.sign(&message);
                obj.entries
                    .push(entry("signature", s(&hex::encode(sig.to_bytes()))));
            }
            Json::Obj(obj)
        })
        .collect();
    let mut head = draft.head;
    head.entries.push(entry("receipts", Json::Arr(receipts)));
    let mut line = Vec::new();
    tb_canonical::extend_compact(&mut line, &Json::Obj(head));
    line.push(b'\n');
    line
}

/// Generates the chain, handing each line to `sink` in order; signing runs on all cores.
pub fn generate(
    cfg: &SimConfig,
    providers: &[SimProvider],
    mut sink: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut gen = Generator {
        cfg,
        providers,
        rng: Rng(cfg.seed ^ 0x7462_2d73_696d), // "tb-sim"
        next_nonce: vec![0; providers.len()],
        timestamp_ms: 1_767_225_600_000,
        serial: 0,
    };
    let total = cfg.epochs * cfg.epoch_blocks;
    let mut height = cfg.genesis_height;
    let end = cfg.genesis_height + total;
    while height < end {
        let chunk_end = (height + 512).min(end);
        let drafts: Vec<Draft> = (height..chunk_end).map(|h| gen.block(h)).collect();
        let lines: Vec<Vec<u8>> = drafts
            .into_par_iter()
            .map(|d| finish(d, &cfg.chain_id))
            .collect();
        for (h, line) in (height..chunk_end).zip(&lines) {
            sink(h, line)?;
        }
        height = chunk_end;
    }
    Ok(())
}

/// Writes `chain/blocks-NNNNNN.jsonl` ([`FILE_BLOCKS`] blocks each), `providers.json` and
/// `keys.json` under `out`.
pub fn write_to_dir(cfg: &SimConfig, out: &Path) -> io::Result<()> {
    let providers = providers(cfg);
    let chain = out.join("chain");
    std::fs::create_dir_all(&chain)?;
    std::fs::write(out.join("providers.json"), providers_json(&providers))?;
    std::fs::write(out.join("keys.json"), keys_json(&providers))?;
    let mut file: Option<(u64, io::BufWriter<std::fs::File>)> = None;
    generate(cfg, &providers, |height, line| {
        let index = (height - cfg.genesis_height) / FILE_BLOCKS;
        if file.as_ref().is_none_or(|(i, _)| *i != index) {
            if let Some((_, mut f)) = file.take() {
                f.flush()?;
            }
            let path = chain.join(format!("blocks-{index:06}.jsonl"));
            file = Some((index, io::BufWriter::new(std::fs::File::create(path)?)));
        }
        match file.as_mut() {
            Some((_, f)) => f.write_all(line),
            None => Ok(()),
        }
    })?;
    if let Some((_, mut f)) = file {
        f.flush()?;
    }
    Ok(())
}

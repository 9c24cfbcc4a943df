//! Replay throughput against its floors, on one simulated chain, all in the same run.
//!
//! What is timed (see `docs/performance.md` for the reading):
//!
//! - `parse` — **parse floor**: read the chain files and `serde_json::from_slice::<Value>` every
//!   line, the lines of each ~4 MiB batch spread over all cores with rayon, exactly as
//!   [`Replayer::push_lines`] spreads its decoding; each value is dropped where it was parsed.
//!   For reference also `parse-1t` (the same on one thread), `parse-tree` (into the crate's own
//!   [`json::parse`] tree) and `parse-syntax` (`serde::de::IgnoredAny`: syntax only, no tree).
//! - `verify` — **verify floor**: `verify_strict` of every receipt signature of the chain over all
//!   cores with rayon, nothing else (keys, messages and signatures prepared beforehand).
//! - `replay` and `replay-no-verify`: the real pipeline, [`feed::run`] over a [`ChainReader`]
//!   with the batch size of `tb-governor replay`, without writing snapshot files.
//! - `aggregation`: [`Replayer::push`] over blocks decoded beforehand (no parsing, no
//!   signatures), epoch closes included.
//! - `read`, `decode-no-verify`, `decode-verify`: the pipeline's stages alone.
//! - Cost model of the two hot spots found (single thread): `aggregation-no-close` (`push` with
//!   no epoch ever closing), `close-snapshot-jcs` / `close-trace-jcs` (the two JCS serialisations
//!   an epoch close hashes), `message-jcs` (building signed messages with
//!   [`signing_message`]); and, as *what-if* rows checked byte for byte against those,
//!   `close-trace-direct` and `message-direct`: cheaper ways to produce the same bytes.
//!
//! A plain `main` (`harness = false`): every measurement is a whole pass over the chain. Passes
//! run in interleaved rounds until each measurement has `TB_BENCH_RUNS` (default 3) *quiet* passes
//! or `TB_BENCH_MAX_ROUNDS` (default 3 × runs) rounds have run; the best quiet pass is reported. A
//! pass is quiet when other processes and the hypervisor's steal used at most `TB_BENCH_QUIET`
//! CPUs on average meanwhile (default 0.10; from `/proc/stat` minus this process's own ticks), so
//! other work on a shared machine marks passes instead of skewing the figures. Passes shorter
//! than 0.25 s repeat the measurement and report the mean.
//! `TB_BENCH_ONLY=aggregation,read` runs only the named measurements (e.g. under `perf`);
//! `TB_BENCH_REPORT=FILE` also writes `name seconds` lines (the best pass of each) to FILE, which
//! is how `scripts/bench-replay.sh` takes the floors for its whole-process measurement.
//!
//! `TB_BENCH_DATA` is an absolute path to a `tb-governor simulate` output directory (`chain/`,
//! `providers.json`; chain id `tb-sim`, 120-block epochs). Without it the chain is simulated
//! (healthy, seed 1, `TB_BENCH_EPOCHS` epochs of 120, default 834 ≈ 100k blocks) into
//! `target/bench-data/` and reused. `scripts/bench-replay.sh` wraps all of this and adds the
//! peak-RSS runs of the binary.

// A benchmark has nothing to recover from: bad input or a failed sanity check must abort loudly;
// and the report is float arithmetic on timings that never feeds into any replay output.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::float_arithmetic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use tb_canonical::to_vec as canonical_bytes;
use tb_config::Config;
use tb_replay::block::Block;
use tb_replay::feed;
use tb_replay::json::{self, Json, Obj};
use tb_replay::reader::{chain_files, Batch};
use tb_replay::receipt::{
    signing_message, Blocktorch, Decoded, Detail, Settlement, RECEIPT_DOMAIN,
};
use tb_replay::sim::{self, SimConfig};
use tb_replay::{ChainReader, Position, Registry, ReplayConfig, Replayer, Snapshot};

/// Bytes of complete lines per step: the same as `tb-governor replay` (`BATCH_BYTES` there).
const BATCH_BYTES: usize = 1 << 20;
/// Bytes per batch of the parse floor, which spreads each batch's lines over all cores.
const FLOOR_BATCH_BYTES: usize = 4 << 20;
/// Chain id and epoch length the simulator and the benchmark agree on.
const CHAIN_ID: &str = "tb-sim";
const EPOCH_BLOCKS: u64 = 120;

/// Targets from the issue.
const VERIFY_TARGET: f64 = 0.85;
const NO_VERIFY_TARGET: f64 = 0.60;
const AGGREGATION_TARGET_NS: f64 = 1_000.0;

/// Every measurement, in round order.
const NAMES: [&str; 17] = [
    "parse",
    "parse-1t",
    "parse-tree",
    "parse-syntax",
    "verify",
    "replay",
    "replay-no-verify",
    "aggregation",
    "read",
    "decode-no-verify",
    "decode-verify",
    "aggregation-no-close",
    "close-snapshot-jcs",
    "close-trace-jcs",
    "close-trace-direct",
    "message-jcs",
    "message-direct",
];

/// Blocks whose receipts the (single-threaded) signed-message measurements use.
const MESSAGE_BLOCKS: usize = 10_000;

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

/// The simulator output directory to use, simulating it first when needed.
fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TB_BENCH_DATA").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let epochs: u64 = env_num("TB_BENCH_EPOCHS", 834);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let dir = root.join(format!("healthy-s1-{}", epochs * EPOCH_BLOCKS));
    if !dir.join(".complete").exists() {
        let tmp = root.join(format!(".tmp-{}", std::process::id()));
        eprintln!(
            "simulating {} blocks into {}",
            epochs * EPOCH_BLOCKS,
            dir.display()
        );
        let cfg = SimConfig {
            epochs,
            epoch_blocks: EPOCH_BLOCKS,
            chain_id: CHAIN_ID.to_owned(),
            ..SimConfig::default()
        };
        sim::write_to_dir(&cfg, &tmp).expect("simulating the chain");
        std::fs::write(tmp.join(".complete"), b"").expect("marking the chain complete");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).expect("moving the simulated chain into place");
    }
    dir
}

/// One signature check of the verify floor.
struct Triple<'a> {
    key: &'a VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
}

/// Every signed receipt of one line as (key valid at its height, signed message, signature).
fn triples<'a>(line: &[u8], registry: &'a Registry) -> Vec<Triple<'a>> {
    let Json::Obj(block) = json::parse(line).expect("block JSON") else {
        panic!("block is not an object");
    };
    let Some(&Json::Uint(height)) = block.get("height") else {
        panic!("block without height");
    };
    let Some(Json::Arr(receipts)) = block.get("receipts") else {
        panic!("block without receipts");
    };
    receipts
        .iter()
        .filter_map(|r| {
            let Json::Obj(obj) = r else { return None };
            let (Some(Json::Str(provider)), Some(Json::Str(sig))) =
                (obj.get("provider"), obj.get("signature"))
            else {
                return None; // slash receipts carry no signature
            };
            let provider = registry.get(registry.index_of(provider)?)?;
            let key = &provider.keys.iter().find(|k| k.valid_at(height))?.key;
            let sig: [u8; 64] = hex::decode(&**sig).ok()?.try_into().ok()?;
            Some(Triple {
                key,
                message: signing_message(obj, CHAIN_ID, height)?,
                signature: Signature::from_bytes(&sig),
            })
        })
        .collect()
}

/// Reads the chain files whole, in order, as batches of at least `FLOOR_BATCH_BYTES` and hands
/// each batch's lines to `f`. The parse floors read this way: no position bookkeeping, nothing
/// else.
fn for_each_raw_batch(chain: &Path, files: &[String], mut f: impl FnMut(&[&[u8]])) {
    let mut buf = Vec::with_capacity(2 * FLOOR_BATCH_BYTES);
    let mut flush = |buf: &mut Vec<u8>| {
        let lines: Vec<&[u8]> = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        f(&lines);
        buf.clear();
    };
    for name in files {
        let mut file = std::fs::File::open(chain.join(name)).expect("opening a chain file");
        std::io::Read::read_to_end(&mut file, &mut buf).expect("reading a chain file");
        if buf.len() >= FLOOR_BATCH_BYTES {
            flush(&mut buf);
        }
    }
    if !buf.is_empty() {
        flush(&mut buf);
    }
}

/// Parses every line into a `T` and drops it where it was parsed (on all cores when `parallel`);
/// returns the lines parsed. Nothing is kept: this is the parse cost alone.
fn parse_with<T>(
    chain: &Path,
    files: &[String],
    parallel: bool,
    parse: impl Fn(&[u8]) -> T + Sync,
) -> u64 {
    let mut parsed = 0u64;
    for_each_raw_batch(chain, files, |lines| {
        let one = |l: &&[u8]| drop(black_box(parse(l)));
        if parallel {
            lines.par_iter().for_each(one);
        } else {
            lines.iter().for_each(one);
        }
        parsed += lines.len() as u64;
    });
    parsed
}

fn value(line: &[u8]) -> serde_json::Value {
    serde_json::from_slice(line).expect("valid JSON")
}

fn syntax(line: &[u8]) -> serde::de::IgnoredAny {
    serde_json::from_slice(line).expect("valid JSON")
}

fn tree(line: &[u8]) -> Json {
    json::parse(line).expect("valid JSON")
}

fn verify_floor(triples: &[Triple<'_>]) -> u64 {
    triples
        .par_iter()
        .filter(|t| t.key.verify_strict(&t.message, &t.signature).is_ok())
        .count() as u64
}

/// The real pipeline: what `tb-governor replay` does ([`feed::run`]), minus the engine and
/// writing files. Returns (blocks, last snapshot hash).
fn replay(chain: &Path, cfg: &ReplayConfig, registry: &Arc<Registry>) -> (u64, String) {
    let mut reader = ChainReader::open(chain, Position::default());
    let mut replayer = Replayer::new(cfg.clone(), registry.clone());
    let mut blocks = 0u64;
    feed::run(&mut reader, &mut replayer, BATCH_BYTES, |step| {
        if let Some(stall) = step.stall {
            panic!("the chain stalls at {stall}");
        }
        blocks += step.blocks as u64;
        black_box(step.closed);
        Ok::<(), ()>(())
    })
    .expect("replaying");
    let hash = replayer.last_snapshot_hash().unwrap_or_default().to_owned();
    (blocks, hash)
}

/// The reader stage alone: every batch `feed::step` would get, nothing done with it.
fn read_all(chain: &Path) -> Vec<Batch> {
    let mut reader = ChainReader::open(chain, Position::default());
    let mut batches = Vec::new();
    loop {
        let batch = reader.next_batch(BATCH_BYTES).expect("reading the chain");
        if batch.lines.is_empty() {
            return batches;
        }
        batches.push(batch);
    }
}

/// The decode stage alone: `push_lines`' parallel part over batches already in memory.
fn decode_all(batches: &[Batch], replayer: &Replayer) -> u64 {
    let mut n = 0u64;
    for batch in batches {
        let lines: Vec<&[u8]> = (0..batch.lines.len()).map(|i| batch.line(i)).collect();
        let decoded: Vec<Block> = lines
            .par_iter()
            .map(|l| replayer.decode(l).expect("decoding"))
            .collect();
        n += black_box(decoded).len() as u64;
    }
    n
}

/// The apply stage alone: `Replayer::push` over decoded blocks, epoch closes included.
fn aggregate(blocks: &[Block], cfg: &ReplayConfig, registry: &Arc<Registry>) -> String {
    let mut replayer = Replayer::new(cfg.clone(), registry.clone());
    for block in blocks {
        black_box(replayer.push(block).expect("applying"));
    }
    replayer.last_snapshot_hash().unwrap_or_default().to_owned()
}

/// The proof records each epoch hashes into `compute_proofs.trace_hash`, in chain order (every
/// compute settlement of the healthy chain is accepted, so this is what the replayer collects).
fn proofs_by_epoch(blocks: &[Block]) -> Vec<Vec<Blocktorch>> {
    let mut epochs: Vec<Vec<Blocktorch>> = Vec::new();
    for block in blocks {
        let epoch = (block.height / EPOCH_BLOCKS) as usize;
        if epochs.len() <= epoch {
            epochs.resize_with(epoch + 1, Vec::new);
        }
        for r in &block.receipts {
            if let Decoded::Settlement(Settlement {
                detail: Detail::Compute(Some(b)),
                ..
            }) = r
            {
                epochs[epoch].push(b.clone());
            }
        }
    }
    epochs
}

/// What-if: the JCS bytes of a proof list written directly. Exact for these records because ids
/// and hex digests never need escaping, integers ≤ 2^53 print as plain decimals, and the three
/// keys are already in JCS order.
fn trace_direct(proofs: &[Blocktorch]) -> Vec<u8> {
    let mut out = Vec::with_capacity(proofs.len() * 150 + 2);
    out.push(b'[');
    for (i, b) in proofs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(
            out,
            r#"{{"benchmark_commit":"{}","kernel_digest":"{}","proof_latency_ms":{}}}"#,
            b.benchmark_commit, b.kernel_digest, b.proof_latency_ms
        )
        .expect("writing to a Vec");
    }
    out.push(b']');
    out
}

/// A value of the signed view of a receipt.
enum View<'a> {
    Json(&'a Json),
    Str(&'a str),
    Uint(u64),
}

/// What-if: JCS of a parsed value written directly: keys sorted by UTF-16 code units, strings
/// with serde_json's escaping (the same as JCS), integers as decimals. `None` for any other
/// number (a receipt with one never reaches the signature check).
fn jcs_direct(value: &View<'_>, out: &mut Vec<u8>) -> Option<()> {
    match value {
        View::Uint(n) | View::Json(Json::Uint(n)) => write!(out, "{n}").ok()?,
        View::Str(s) => serde_json::to_writer(&mut *out, s).ok()?,
        View::Json(Json::Str(s)) => serde_json::to_writer(&mut *out, &**s).ok()?,
        View::Json(Json::Null) => out.extend_from_slice(b"null"),
        View::Json(Json::Bool(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        View::Json(Json::OtherNumber(_)) => return None,
        View::Json(Json::Arr(items)) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                jcs_direct(&View::Json(item), out)?;
            }
            out.push(b']');
        }
        View::Json(Json::Obj(obj)) => {
            let entries: Vec<(&str, View<'_>)> = obj
                .entries
                .iter()
                .map(|(k, v)| (&**k, View::Json(v)))
                .collect();
            jcs_object(entries, out)?;
        }
    }
    Some(())
}

fn jcs_object(mut entries: Vec<(&str, View<'_>)>, out: &mut Vec<u8>) -> Option<()> {
    entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).ok()?;
        out.push(b':');
        jcs_direct(v, out)?;
    }
    out.push(b'}');
    Some(())
}

/// What-if: [`signing_message`] through [`jcs_direct`].
fn message_direct(receipt: &Obj, chain_id: &str, height: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(RECEIPT_DOMAIN.len() + 320);
    out.extend_from_slice(RECEIPT_DOMAIN);
    let mut entries: Vec<(&str, View<'_>)> = receipt
        .entries
        .iter()
        .filter(|(k, _)| &**k != "signature")
        .map(|(k, v)| (&**k, View::Json(v)))
        .collect();
    entries.push(("chain_id", View::Str(chain_id)));
    entries.push(("height", View::Uint(height)));
    jcs_object(entries, &mut out)?;
    Some(out)
}

/// The receipts of the first `n` lines, parsed, with their block heights.
fn parsed_receipts(batches: &[Batch], n: usize) -> Vec<(u64, Obj)> {
    let mut out = Vec::new();
    let lines = batches
        .iter()
        .flat_map(|b| (0..b.lines.len()).map(move |i| b.line(i)));
    for line in lines.take(n) {
        let Json::Obj(block) = json::parse(line).expect("block JSON") else {
            panic!("block is not an object");
        };
        let Some(&Json::Uint(height)) = block.get("height") else {
            panic!("block without height");
        };
        let Some(Json::Arr(receipts)) = block.get("receipts") else {
            panic!("block without receipts");
        };
        for r in receipts {
            if let Json::Obj(obj) = r {
                if obj.get("signature").is_some() {
                    out.push((height, obj.clone()));
                }
            }
        }
    }
    out
}

/// CPU ticks from `/proc`: the machine's busy ticks (steal included), all its ticks, and this
/// process's own (all threads, user + system).
fn cpu_sample() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // cpu  user nice system idle iowait irq softirq steal
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let all: u64 = cpu.iter().sum();
    let busy = all - cpu.get(3)? - cpu.get(4)?;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name start at stat(5)'s field 3, so utime (14) and stime (15)
    // are at 11 and 12.
    let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let mine = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((busy, all, mine))
}

/// Shortest pass: shorter measurements repeat within one pass (and report the mean), so the
/// clock and the 10 ms `/proc` ticks resolve them.
const MIN_PASS_SECS: f64 = 0.25;

/// One pass: wall seconds per iteration, and the CPUs other processes (and the hypervisor's
/// steal) used meanwhile, on average.
#[derive(Clone, Copy)]
struct Pass {
    secs: f64,
    contention: f64,
}

struct Bench {
    runs: usize,
    quiet: f64,
    only: Option<Vec<String>>,
    passes: BTreeMap<&'static str, Vec<Pass>>,
}

impl Bench {
    fn selected(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == name))
    }

    fn quiet_passes(&self, name: &str) -> impl Iterator<Item = &Pass> {
        let quiet = self.quiet;
        self.passes
            .get(name)
            .into_iter()
            .flatten()
            .filter(move |p| p.contention <= quiet)
    }

    /// Whether `name` still needs passes.
    fn wants(&self, name: &str) -> bool {
        self.selected(name) && self.quiet_passes(name).count() < self.runs
    }

    fn time<T>(&mut self, name: &'static str, mut f: impl FnMut() -> T) -> T {
        // Let the previous pass's idle rayon workers fall asleep first.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = cpu_sample();
        let start = Instant::now();
        let mut iterations = 0u32;
        let out = loop {
            let out = f();
            iterations += 1;
            if start.elapsed().as_secs_f64() >= MIN_PASS_SECS {
                break out;
            }
            drop(out);
        };
        let secs = start.elapsed().as_secs_f64() / f64::from(iterations);
        let contention = match (before, cpu_sample()) {
            (Some((b0, a0, m0)), Some((b1, a1, m1))) if a1 > a0 => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                (b1 - b0).saturating_sub(m1 - m0) as f64 / (a1 - a0) as f64 * cpus
            }
            _ => 0.0,
        };
        self.passes
            .entry(name)
            .or_default()
            .push(Pass { secs, contention });
        out
    }

    /// The best quiet pass, else the best pass (flagged), else nothing.
    fn best(&self, name: &str) -> Option<(f64, bool)> {
        let min = |it: &mut dyn Iterator<Item = &Pass>| it.map(|p| p.secs).reduce(f64::min);
        if let Some(s) = min(&mut self.quiet_passes(name)) {
            return Some((s, true));
        }
        min(&mut self.passes.get(name)?.iter()).map(|s| (s, false))
    }
}

fn main() {
    let dir = data_dir();
    let chain = dir.join("chain");
    let runs: usize = env_num("TB_BENCH_RUNS", 3).max(1);
    let mut bench = Bench {
        runs,
        quiet: env_num("TB_BENCH_QUIET", 0.10),
        only: std::env::var("TB_BENCH_ONLY")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(|n| n.trim().to_owned()).collect()),
        passes: BTreeMap::new(),
    };
    if let Some(only) = &bench.only {
        for name in only {
            assert!(NAMES.contains(&name.as_str()), "unknown measurement {name}");
        }
    }
    let max_rounds: usize = env_num("TB_BENCH_MAX_ROUNDS", 3 * runs).max(1);
    let threads = rayon::current_num_threads();

    // Setup, untimed: configuration, the chain in memory (for the stages), the verify floor's
    // inputs and the decoded blocks (for the aggregation).
    let providers = std::fs::read(dir.join("providers.json")).expect("reading providers.json");
    let registry = Arc::new(Registry::from_json(&providers).expect("providers.json"));
    let mut cfg = ReplayConfig::from_config(&Config::default());
    cfg.chain_id = CHAIN_ID.to_owned();
    cfg.epoch_blocks = EPOCH_BLOCKS;
    let cfg_verify = ReplayConfig {
        verify: true,
        ..cfg.clone()
    };
    let cfg_trusted = ReplayConfig {
        verify: false,
        ..cfg
    };
    let files = chain_files(&chain).expect("listing the chain");
    let batches = read_all(&chain);
    let blocks_total: u64 = batches.iter().map(|b| b.lines.len() as u64).sum();
    let bytes_total: u64 = batches.iter().map(|b| b.buf.len() as u64).sum();
    assert!(blocks_total > 0, "{} holds no blocks", chain.display());
    let start = Instant::now();
    let triples: Vec<Triple<'_>> = if bench.selected("verify") {
        batches
            .par_iter()
            .flat_map_iter(|b| {
                let registry = &*registry;
                (0..b.lines.len()).flat_map(move |i| triples(b.line(i), registry))
            })
            .collect()
    } else {
        Vec::new()
    };
    let prepare_secs = start.elapsed().as_secs_f64();
    let trusted = Replayer::new(cfg_trusted.clone(), registry.clone());
    let verifying = Replayer::new(cfg_verify.clone(), registry.clone());
    let needs = |names: &[&str]| names.iter().any(|n| bench.selected(n));
    let decoded: Vec<Block> = if needs(&[
        "aggregation",
        "aggregation-no-close",
        "close-snapshot-jcs",
        "close-trace-jcs",
        "close-trace-direct",
    ]) {
        batches
            .par_iter()
            .flat_map_iter(|b| {
                let trusted = &trusted;
                (0..b.lines.len()).map(move |i| trusted.decode(b.line(i)).expect("decoding"))
            })
            .collect()
    } else {
        Vec::new()
    };

    let cfg_no_close = ReplayConfig {
        epoch_blocks: u64::MAX,
        ..cfg_trusted.clone()
    };
    // The cost model's inputs, each checked against the bytes the replayer produces.
    let snapshots: Vec<Snapshot> = if needs(&["close-snapshot-jcs"]) {
        let mut r = Replayer::new(cfg_trusted.clone(), registry.clone());
        decoded
            .iter()
            .filter_map(|b| r.push(b).expect("applying"))
            .map(|c| c.snapshot)
            .collect()
    } else {
        Vec::new()
    };
    let proofs: Vec<Vec<Blocktorch>> = if needs(&["close-trace-jcs", "close-trace-direct"]) {
        let proofs = proofs_by_epoch(&decoded);
        for p in &proofs {
            assert_eq!(trace_direct(p), canonical_bytes(p), "what-if trace bytes");
        }
        proofs
    } else {
        Vec::new()
    };
    let receipts: Vec<(u64, Obj)> = if needs(&["message-jcs", "message-direct"]) {
        let receipts = parsed_receipts(&batches, MESSAGE_BLOCKS);
        for (h, r) in &receipts {
            let direct = message_direct(r, CHAIN_ID, *h);
            assert_eq!(direct, signing_message(r, CHAIN_ID, *h), "what-if message");
        }
        receipts
    } else {
        Vec::new()
    };

    println!(
        "chain: {} ({blocks_total} blocks, {} signatures, {:.1} MiB); {threads} rayon threads",
        dir.display(),
        triples.len(),
        bytes_total as f64 / f64::from(1 << 20),
    );

    // All replays must end at the same snapshot.
    let mut reference: Option<String> = None;
    let mut check_hash = |hash: String, what: &str| match &reference {
        None => reference = Some(hash),
        Some(r) => assert_eq!(&hash, r, "{what} ends at a different snapshot"),
    };
    let mut rounds = 0;
    while rounds < max_rounds && NAMES.iter().any(|n| bench.wants(n)) {
        rounds += 1;
        eprintln!("round {rounds}");
        if bench.wants("parse") {
            let n = bench.time("parse", || parse_with(&chain, &files, true, value));
            assert_eq!(n, blocks_total, "parse floor saw every line");
        }
        if bench.wants("parse-1t") {
            bench.time("parse-1t", || parse_with(&chain, &files, false, value));
        }
        if bench.wants("parse-tree") {
            bench.time("parse-tree", || parse_with(&chain, &files, true, tree));
        }
        if bench.wants("parse-syntax") {
            bench.time("parse-syntax", || parse_with(&chain, &files, true, syntax));
        }
        if bench.wants("verify") {
            let ok = bench.time("verify", || verify_floor(&triples));
            assert_eq!(ok, triples.len() as u64, "every signature verifies");
        }
        if bench.wants("replay") {
            let (b, hash) = bench.time("replay", || replay(&chain, &cfg_verify, &registry));
            assert_eq!(b, blocks_total, "verified replay applied every block");
            check_hash(hash, "verified replay");
        }
        if bench.wants("replay-no-verify") {
            let (b, hash) = bench.time("replay-no-verify", || {
                replay(&chain, &cfg_trusted, &registry)
            });
            assert_eq!(b, blocks_total, "trusted replay applied every block");
            check_hash(hash, "trusted replay");
        }
        if bench.wants("aggregation") {
            let hash = bench.time("aggregation", || {
                aggregate(&decoded, &cfg_trusted, &registry)
            });
            check_hash(hash, "aggregation alone");
        }
        if bench.wants("read") {
            let n: u64 = bench.time("read", || {
                read_all(&chain).iter().map(|b| b.lines.len() as u64).sum()
            });
            assert_eq!(n, blocks_total);
        }
        if bench.wants("decode-no-verify") {
            bench.time("decode-no-verify", || decode_all(&batches, &trusted));
        }
        if bench.wants("decode-verify") {
            bench.time("decode-verify", || decode_all(&batches, &verifying));
        }
        if bench.wants("aggregation-no-close") {
            bench.time("aggregation-no-close", || {
                aggregate(&decoded, &cfg_no_close, &registry)
            });
        }
        if bench.wants("close-snapshot-jcs") {
            bench.time("close-snapshot-jcs", || {
                for s in &snapshots {
                    black_box(blake3::hash(&s.canonical_bytes()));
                }
            });
        }
        if bench.wants("close-trace-jcs") {
            bench.time("close-trace-jcs", || {
                for p in &proofs {
                    black_box(blake3::hash(&canonical_bytes(p)));
                }
            });
        }
        if bench.wants("close-trace-direct") {
            bench.time("close-trace-direct", || {
                for p in &proofs {
                    black_box(blake3::hash(&trace_direct(p)));
                }
            });
        }
        if bench.wants("message-jcs") {
            bench.time("message-jcs", || {
                for (h, r) in &receipts {
                    black_box(signing_message(r, CHAIN_ID, *h));
                }
            });
        }
        if bench.wants("message-direct") {
            bench.time("message-direct", || {
                for (h, r) in &receipts {
                    black_box(message_direct(r, CHAIN_ID, *h));
                }
            });
        }
    }
    let counts = Counts {
        blocks: blocks_total as f64,
        signatures: triples.len() as f64,
        messages: receipts.len() as f64,
        epochs: (blocks_total / EPOCH_BLOCKS) as f64,
        threads,
        prepare_secs,
    };
    report(&bench, &counts);
    if let Some(path) = std::env::var_os("TB_BENCH_REPORT").filter(|p| !p.is_empty()) {
        // For scripts: `name seconds` of the best pass of each measurement that ran.
        let lines: String = NAMES
            .iter()
            .filter_map(|n| bench.best(n).map(|(s, _)| format!("{n} {s:.6}\n")))
            .collect();
        std::fs::write(&path, lines).expect("writing TB_BENCH_REPORT");
    }
}

/// What the report divides by.
struct Counts {
    blocks: f64,
    signatures: f64,
    messages: f64,
    epochs: f64,
    threads: usize,
    prepare_secs: f64,
}

fn report(bench: &Bench, c: &Counts) {
    let (blocks, threads, prepare_secs) = (c.blocks, c.threads, c.prepare_secs);
    let signatures = c.signatures;
    let best = |name: &str| bench.best(name).map(|(s, _)| s);
    let ratio = |floor: &str, name: &str| Some(best(floor)? / best(name)?);
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!();
    println!(
        "| {:<42} | {:>10} | {:>9} | {:>21} | {:>15} | {:<4} |",
        "measurement", "time (s)", "blocks/s", "ratio vs floor", "target", "pass"
    );
    println!(
        "|{:-<44}|{:->12}|{:->11}|{:->23}|{:->17}|{:-<6}|",
        "", ":", ":", ":", ":", ""
    );
    let row = |label: &str, name: &str, ratio: String, target: &str, pass: &str| {
        let Some((secs, quiet)) = bench.best(name) else {
            return;
        };
        let secs = format!("{secs:.3}{}", if quiet { "" } else { "*" });
        let rate = blocks / bench.best(name).map_or(f64::NAN, |b| b.0);
        println!(
            "| {label:<42} | {secs:>10} | {rate:>9.0} | {ratio:>21} | {target:>15} | {pass:<4} |"
        );
    };
    let t = threads;
    row(
        &format!("parse floor: serde_json::Value, {t} threads"),
        "parse",
        "floor".into(),
        "",
        "",
    );
    row("  same, 1 thread", "parse-1t", String::new(), "", "");
    row(
        &format!("  parse into tb_replay::json, {t} threads"),
        "parse-tree",
        String::new(),
        "",
        "",
    );
    row(
        &format!("  syntax only (IgnoredAny), {t} threads"),
        "parse-syntax",
        String::new(),
        "",
        "",
    );
    row(
        &format!("verify floor: verify_strict, {t} threads"),
        "verify",
        "floor".into(),
        "",
        "",
    );
    if let Some(r) = ratio("verify", "replay") {
        row(
            "replay, verify",
            "replay",
            format!("{:.1} % of verify", 100.0 * r),
            "≥ 85 %",
            verdict(r >= VERIFY_TARGET),
        );
    }
    if let Some(r) = ratio("parse", "replay-no-verify") {
        row(
            "replay, --no-verify",
            "replay-no-verify",
            format!("{:.1} % of parse", 100.0 * r),
            "≥ 60 %",
            verdict(r >= NO_VERIFY_TARGET),
        );
    }
    if let Some(s) = best("aggregation") {
        let ns = s * 1e9 / blocks;
        row(
            "aggregation alone (push on decoded blocks)",
            "aggregation",
            format!("{ns:.0} ns/block"),
            "≤ 1000 ns/block",
            verdict(ns <= AGGREGATION_TARGET_NS),
        );
    }
    println!();
    println!("stages (each alone; a replay overlaps read, decode and apply, per 1 MiB batch):");
    for (label, name) in [
        ("read: ChainReader::next_batch, 1 thread".to_owned(), "read"),
        (
            format!("decode, no verify, {t} threads"),
            "decode-no-verify",
        ),
        (format!("decode, verify, {t} threads"), "decode-verify"),
        (
            "apply: aggregation alone, 1 thread".to_owned(),
            "aggregation",
        ),
        ("replay, --no-verify".to_owned(), "replay-no-verify"),
        ("replay, verify".to_owned(), "replay"),
        ("parse floor".to_owned(), "parse"),
        ("  parse into tb_replay::json".to_owned(), "parse-tree"),
        ("verify floor".to_owned(), "verify"),
    ] {
        if let Some(s) = best(name) {
            println!(
                "  {label:<40} {s:>8.3} s {:>8.0} ns/block",
                s * 1e9 / blocks
            );
        }
    }
    if let (Some(s), true) = (best("verify"), signatures > 0.0) {
        println!(
            "  verify_strict: {:.1} µs per signature of wall time on {t} threads = {:.1} µs of CPU",
            s * 1e6 / signatures,
            s * 1e6 * t as f64 / signatures
        );
        println!(
            "  preparing the verify floor's inputs (parse + signing_message + hex, {t} threads, once): {prepare_secs:.3} s"
        );
    }
    cost_model(bench, c);
    println!();
    println!(
        "passes: seconds [CPUs used by other processes + steal, on average]; quiet ≤ {}; * = no quiet pass:",
        bench.quiet
    );
    for name in NAMES {
        let Some(passes) = bench.passes.get(name) else {
            continue;
        };
        let all: Vec<String> = passes
            .iter()
            .map(|p| format!("{:.3}[{:.2}]", p.secs, p.contention))
            .collect();
        println!("  {name:<17} {}", all.join(" "));
    }
}

/// The hot spots, per unit, with what the what-if rows would save.
fn cost_model(bench: &Bench, c: &Counts) {
    let best = |name: &str| bench.best(name).map(|(s, _)| s);
    let t = c.threads as f64;
    println!();
    println!("cost model (single thread; what-if rows produce byte-identical output, checked):");
    if let (Some(agg), Some(open)) = (best("aggregation"), best("aggregation-no-close")) {
        let close_us = (agg - open) * 1e6 / c.epochs;
        println!(
            "  push without epoch closes        {:>8.0} ns/block",
            open * 1e9 / c.blocks
        );
        println!(
            "  epoch close (by difference)      {close_us:>8.1} µs/epoch = {:>5.0} ns/block",
            close_us * 1e3 / EPOCH_BLOCKS as f64
        );
    }
    let per_epoch = |name: &str| best(name).map(|s| s * 1e6 / c.epochs);
    for (label, name) in [
        ("  of which snapshot JCS + blake3", "close-snapshot-jcs"),
        ("  of which proof-trace JCS + blake3", "close-trace-jcs"),
        ("    what-if written directly", "close-trace-direct"),
    ] {
        if let Some(us) = per_epoch(name) {
            println!(
                "{label:<34} {us:>8.1} µs/epoch = {:>5.0} ns/block",
                us * 1e3 / EPOCH_BLOCKS as f64
            );
        }
    }
    if c.messages > 0.0 {
        let per_msg = |name: &str| best(name).map(|s| s * 1e6 / c.messages);
        if let (Some(jcs), Some(direct)) = (per_msg("message-jcs"), per_msg("message-direct")) {
            println!(
                "  signing_message (JCS)            {jcs:>8.2} µs/receipt ({} receipts)",
                c.messages
            );
            println!("    what-if written directly       {direct:>8.2} µs/receipt");
            if let (Some(replay), Some(verify)) = (best("replay"), best("verify")) {
                let saved = (jcs - direct) * 1e-6 * c.signatures / t;
                println!(
                    "  => replay, verify with the direct message ≈ {:.3} s = {:.1} % of the verify floor (now {:.1} %)",
                    replay - saved,
                    100.0 * verify / (replay - saved),
                    100.0 * verify / replay
                );
            }
        }
    }
}

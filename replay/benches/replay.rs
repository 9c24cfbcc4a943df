//! Replay throughput against its floors, on one simulated chain, all in the same run.
//!
//! What is timed (see `docs/performance.md` for the reading):
//!
//! - **parse floor**: read the chain files and `serde_json::from_slice::<serde_json::Value>`
//!   every line, lines of each ~4 MiB batch spread over all cores with rayon, exactly as
//!   [`Replayer::push_lines`] spreads its decoding. Also once single-threaded, for reference.
//! - **verify floor**: `verify_strict` of every receipt signature of the chain, over all cores
//!   with rayon and nothing else (keys, messages and signatures prepared beforehand).
//! - **replay, verify** and **replay, no-verify**: the real pipeline, [`feed::step`] over a
//!   [`ChainReader`] with the same batch size as `tb-governor replay`.
//! - **aggregation alone**: [`Replayer::push`] over blocks decoded beforehand (no parsing, no
//!   signatures), epoch closes included.
//! - **stages**: the reader alone and the parallel decode alone, to see where replay time goes.
//!
//! A plain `main` (`harness = false`): every measurement is a whole pass over the chain, repeated
//! `TB_BENCH_RUNS` times (default 3) in interleaved rounds, best run reported.
//!
//! Environment: `TB_BENCH_DATA` = a `tb-governor simulate` output directory (`chain/`,
//! `providers.json`; chain id `tb-sim`, 120-block epochs). Without it the chain is simulated
//! (healthy, seed 1, `TB_BENCH_EPOCHS` epochs of 120, default 834 ≈ 100k blocks) into
//! `target/bench-data/` and reused. `scripts/bench-replay.sh` wraps all of this and adds the
//! peak-RSS runs of the binary.

// A benchmark has nothing to recover from: bad input or a failed sanity check must abort loudly,
// and the report is float arithmetic on timings that never feeds into any replay output.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::float_arithmetic)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use tb_config::Config;
use tb_replay::block::Block;
use tb_replay::feed;
use tb_replay::json::{self, Json};
use tb_replay::reader::{chain_files, Batch};
use tb_replay::receipt::signing_message;
use tb_replay::sim::{self, SimConfig};
use tb_replay::{ChainReader, Position, Registry, ReplayConfig, Replayer};

/// Bytes of complete lines per step: the same as `tb-governor replay` (`BATCH_BYTES` there).
const BATCH_BYTES: usize = 4 << 20;
/// Chain id and epoch length the simulator and the benchmark agree on.
const CHAIN_ID: &str = "tb-sim";
const EPOCH_BLOCKS: u64 = 120;

/// Targets from the issue.
const VERIFY_TARGET: f64 = 0.85;
const NO_VERIFY_TARGET: f64 = 0.60;
const AGGREGATION_TARGET_NS: f64 = 1_000.0;

fn env_u64(name: &str, default: u64) -> u64 {
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
    let epochs = env_u64("TB_BENCH_EPOCHS", 834);
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
                message: signing_message(obj, CHAIN_ID, height),
                signature: Signature::from_bytes(&sig),
            })
        })
        .collect()
}

/// Reads the chain files whole, in order, as batches of at least `BATCH_BYTES` and hands each
/// batch's lines to `f`. The floors read this way: no position bookkeeping, nothing else.
fn for_each_raw_batch(chain: &Path, files: &[String], mut f: impl FnMut(&[&[u8]])) {
    let mut buf = Vec::with_capacity(2 * BATCH_BYTES);
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
        if buf.len() >= BATCH_BYTES {
            flush(&mut buf);
        }
    }
    if !buf.is_empty() {
        flush(&mut buf);
    }
}

fn parse_floor(chain: &Path, files: &[String], parallel: bool) -> u64 {
    let mut parsed = 0u64;
    for_each_raw_batch(chain, files, |lines| {
        let values: Vec<serde_json::Value> = if parallel {
            lines
                .par_iter()
                .map(|l| serde_json::from_slice(l).expect("valid JSON"))
                .collect()
        } else {
            lines
                .iter()
                .map(|l| serde_json::from_slice(l).expect("valid JSON"))
                .collect()
        };
        parsed += black_box(values).len() as u64;
    });
    parsed
}

fn verify_floor(triples: &[Triple<'_>]) -> u64 {
    triples
        .par_iter()
        .filter(|t| t.key.verify_strict(&t.message, &t.signature).is_ok())
        .count() as u64
}

/// The real pipeline: what `tb-governor replay` does, minus writing snapshot files.
/// Returns (blocks, closed epochs, last snapshot hash).
fn replay(chain: &Path, cfg: &ReplayConfig, registry: &Arc<Registry>) -> (u64, u64, String) {
    let mut reader = ChainReader::open(chain, Position::default());
    let mut replayer = Replayer::new(cfg.clone(), registry.clone());
    let (mut blocks, mut epochs) = (0u64, 0u64);
    loop {
        let step = feed::step(&mut reader, &mut replayer, BATCH_BYTES).expect("replaying");
        if step.blocks == 0 {
            break;
        }
        blocks += step.blocks as u64;
        epochs += step.closed.len() as u64;
    }
    let hash = replayer.last_snapshot_hash().unwrap_or_default().to_owned();
    (blocks, epochs, hash)
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
        let decoded: Vec<Block> = (0..batch.lines.len())
            .into_par_iter()
            .map(|i| replayer.decode(batch.line(i)).expect("decoding"))
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

/// Best and all times of one measurement.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.0.push(start.elapsed());
        out
    }

    fn best(&self) -> f64 {
        self.0
            .iter()
            .min()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
    }

    fn all(&self) -> String {
        let all: Vec<String> = self
            .0
            .iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect();
        all.join(" ")
    }
}

fn main() {
    let dir = data_dir();
    let chain = dir.join("chain");
    let runs = env_u64("TB_BENCH_RUNS", 3).max(1);
    let threads = rayon::current_num_threads();

    // Setup, untimed.
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
    let triples: Vec<Triple<'_>> = batches
        .par_iter()
        .flat_map_iter(|b| {
            let registry = &*registry;
            (0..b.lines.len()).flat_map(move |i| triples(b.line(i), registry))
        })
        .collect();
    let trusted = Replayer::new(cfg_trusted.clone(), registry.clone());
    let verifying = Replayer::new(cfg_verify.clone(), registry.clone());
    let decoded: Vec<Block> = batches
        .par_iter()
        .flat_map_iter(|b| (0..b.lines.len()).map(|i| trusted.decode(b.line(i)).expect("decoding")))
        .collect();
    let receipts: usize = decoded.iter().map(|b| b.receipts.len()).sum();

    println!(
        "chain: {} ({} blocks, {} receipts, {} signatures, {:.1} MiB); {} rayon threads; best of {}",
        dir.display(),
        blocks_total,
        receipts,
        triples.len(),
        bytes_total as f64 / (1 << 20) as f64,
        threads,
        runs
    );

    let [mut parse_par, mut parse_seq, mut verify_fl, mut replay_v, mut replay_nv, mut agg, mut read, mut dec_nv, mut dec_v] =
        std::array::from_fn(|_| Samples::default());
    for round in 1..=runs {
        eprintln!("round {round}/{runs}");
        let n = parse_par.time(|| parse_floor(&chain, &files, true));
        assert_eq!(n, blocks_total, "parse floor saw every line");
        parse_seq.time(|| parse_floor(&chain, &files, false));
        let ok = verify_fl.time(|| verify_floor(&triples));
        assert_eq!(ok, triples.len() as u64, "every signature verifies");
        let (b, e, hash_v) = replay_v.time(|| replay(&chain, &cfg_verify, &registry));
        assert_eq!(b, blocks_total, "verified replay applied every block");
        let (b, e2, hash_nv) = replay_nv.time(|| replay(&chain, &cfg_trusted, &registry));
        assert_eq!(
            (b, e2),
            (blocks_total, e),
            "trusted replay applied every block"
        );
        assert_eq!(
            hash_v, hash_nv,
            "verify and no-verify end at the same snapshot"
        );
        let hash_agg = agg.time(|| aggregate(&decoded, &cfg_trusted, &registry));
        assert_eq!(
            hash_agg, hash_v,
            "aggregation alone ends at the same snapshot"
        );
        let n: u64 = read.time(|| read_all(&chain).iter().map(|b| b.lines.len() as u64).sum());
        assert_eq!(n, blocks_total);
        dec_nv.time(|| decode_all(&batches, &trusted));
        dec_v.time(|| decode_all(&batches, &verifying));
    }

    let blocks = blocks_total as f64;
    let rate = |t: f64| format!("{:>12.0}", blocks / t);
    let secs = |s: &Samples| format!("{:>9.3} s", s.best());
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!();
    println!(
        "| {:<44} | {:>11} | {:>12} | {:>18} | {:>14} | {:<4} |",
        "measurement", "time", "blocks/s", "ratio vs floor", "target", "pass"
    );
    println!(
        "|{:-<46}|{:-<13}|{:-<14}|{:-<20}|{:-<16}|{:-<6}|",
        "", "", "", "", "", ""
    );
    let row = |name: &str, s: &Samples, ratio: &str, target: &str, pass: &str| {
        println!(
            "| {:<44} | {} | {} | {:>18} | {:>14} | {:<4} |",
            name,
            secs(s),
            rate(s.best()),
            ratio,
            target,
            pass
        );
    };
    let floor_label = format!("parse floor (serde_json::Value, {threads} threads)");
    row(&floor_label, &parse_par, "floor", "", "");
    row("parse, single thread (reference)", &parse_seq, "", "", "");
    let verify_label = format!("verify floor (verify_strict, {threads} threads)");
    row(&verify_label, &verify_fl, "floor", "", "");
    let r_v = verify_fl.best() / replay_v.best();
    row(
        "replay, verify",
        &replay_v,
        &format!("{:.1} % of verify", 100.0 * r_v),
        "≥ 85 %",
        verdict(r_v >= VERIFY_TARGET),
    );
    let r_nv = parse_par.best() / replay_nv.best();
    row(
        "replay, --no-verify",
        &replay_nv,
        &format!("{:.1} % of parse", 100.0 * r_nv),
        "≥ 60 %",
        verdict(r_nv >= NO_VERIFY_TARGET),
    );
    let ns = agg.best() * 1e9 / blocks;
    row(
        "aggregation alone (push, decoded blocks)",
        &agg,
        &format!("{ns:.0} ns/block"),
        "≤ 1000 ns/block",
        verdict(ns <= AGGREGATION_TARGET_NS),
    );
    println!();
    println!("stages of the pipeline (each alone; replay ≈ read + decode + apply, run one after the other):");
    let stage = |name: &str, s: &Samples| {
        println!(
            "  {:<52} {} {:>9.0} ns/block",
            name,
            secs(s),
            s.best() * 1e9 / blocks
        );
    };
    stage("read (ChainReader::next_batch, 1 thread)", &read);
    stage(&format!("decode, no verify ({threads} threads)"), &dec_nv);
    stage(&format!("decode, verify ({threads} threads)"), &dec_v);
    stage("apply = aggregation alone (1 thread)", &agg);
    stage("parse floor", &parse_par);
    stage("verify floor", &verify_fl);
    println!(
        "  verify floor per signature: {:.1} µs of wall time on {threads} threads ({:.1} µs of CPU)",
        verify_fl.best() * 1e6 / triples.len() as f64,
        verify_fl.best() * 1e6 * threads as f64 / triples.len() as f64
    );
    println!();
    println!("all runs (s):");
    for (name, s) in [
        ("parse floor", &parse_par),
        ("parse single thread", &parse_seq),
        ("verify floor", &verify_fl),
        ("replay verify", &replay_v),
        ("replay no-verify", &replay_nv),
        ("aggregation", &agg),
        ("read", &read),
        ("decode no-verify", &dec_nv),
        ("decode verify", &dec_v),
    ] {
        println!("  {:<22} {}", name, s.all());
    }
}

//! A bounded crash campaign against the real daemon: `kill -9` at seeded random instants while
//! the chain grows (whole lines, partial lines, a second chain file) and operator events arrive
//! over RPC from another thread. After the last restart the daemon catches up and stops cleanly,
//! and then
//!
//! - `tb-cli governor audit` reproduces every decision file and `tb-cli governor verify` accepts
//!   every attestation sidecar,
//! - the journal's seq numbers count up from 0 without a gap and every line is complete,
//! - every event `tb-cli` reported as journaled is in the journal, at the seq it was given,
//! - no `.tmp-*` file is left anywhere under the data dir.
//!
//! The kill instants are chosen by polling progress (the daemon's status, the journal receipts
//! of the RPC thread) plus seeded random amounts of appended chain and RPC calls; nothing waits a
//! fixed time. The campaign is deterministic in its choices, not in the daemon's timing: a
//! failure prints the seed and every cycle's choices. `TB_E2E_CRASH_SEED=<u64>` reruns another
//! seed and `TB_E2E_CRASH_KILLS=<n>` (20 to 230) runs a longer campaign.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::{
    assert_audit_reproduces, run, run_expect, simulate, temp_files, Config, Daemon, DEADLINE,
};
use serde_json::Value;

/// Blocks per epoch: small, so kills land around many closes.
const L: usize = 10;
/// Epochs of the simulated chain.
const EPOCHS: usize = 24;
/// Kills of the default campaign.
const KILLS: usize = 30;
/// The default seed.
const SEED: u64 = 0x5eed_0009_c4a5_0001;
/// The RPC token.
const TOKEN: &str = "crash-campaign-token";
/// Operator name on the events the test journals.
const OPERATOR: &str = "crash-campaign";
/// Gates a manual exit may name.
const GATES: [&str; 8] = [
    "economics",
    "storage",
    "compute",
    "energy",
    "ad",
    "ad_contextual",
    "ad_presence",
    "operational",
];

/// xorshift64: enough randomness for choosing kill instants, and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // xorshift has one fixed point, 0.
        Rng(if seed == 0 { SEED } else { seed })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// In `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// Reads a `u64` test knob from the environment.
fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v:?} is not a u64: {e}"))
        }
        _ => default,
    }
}

/// The campaign's record: printed (with the seed) when the test fails.
struct Trail {
    seed: u64,
    cycles: Vec<String>,
}

impl Drop for Trail {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- crash campaign failed: seed {:#x} (rerun with TB_E2E_CRASH_SEED={:#x})",
                self.seed, self.seed
            );
            for c in &self.cycles {
                eprintln!("  {c}");
            }
        }
    }
}

/// The watched chain directory and the simulated chain the test copies into it: the first half
/// of the lines go to `blocks-000000.jsonl`, the rest to `blocks-000001.jsonl`.
struct Chain {
    dir: PathBuf,
    bytes: Vec<u8>,
    /// Byte offset where the second file starts (a line boundary).
    split: usize,
    /// Bytes copied so far.
    written: usize,
    /// Byte offset of the end of each line (after its `\n`).
    line_ends: Vec<usize>,
}

impl Chain {
    fn new(dir: PathBuf, bytes: Vec<u8>) -> Chain {
        let line_ends: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(
            line_ends.len(),
            EPOCHS * L,
            "one simulated file of whole lines"
        );
        assert_eq!(line_ends.last(), Some(&bytes.len()));
        std::fs::create_dir_all(&dir).unwrap();
        Chain {
            dir,
            split: line_ends[EPOCHS * L / 2 - 1],
            bytes,
            written: 0,
            line_ends,
        }
    }

    /// Appends the simulated bytes up to offset `end`, one write per file touched.
    fn append_to(&mut self, end: usize) {
        use std::io::Write;
        let end = end.min(self.bytes.len());
        while self.written < end {
            let (file, stop) = if self.written < self.split {
                ("blocks-000000.jsonl", end.min(self.split))
            } else {
                ("blocks-000001.jsonl", end)
            };
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(file))
                .unwrap();
            f.write_all(&self.bytes[self.written..stop]).unwrap();
            self.written = stop;
        }
    }

    /// Complete lines copied so far.
    fn lines(&self) -> usize {
        self.line_ends.partition_point(|&e| e <= self.written)
    }

    /// The tip height once the daemon has read every complete line (heights start at 0).
    fn tip(&self) -> Option<u64> {
        self.lines().checked_sub(1).map(|t| t as u64)
    }

    /// The last epoch the copied lines complete.
    fn last_epoch(&self) -> Option<u64> {
        (self.lines() / L).checked_sub(1).map(|e| e as u64)
    }
}

/// An operator event `tb-cli` reported as journaled.
#[derive(Debug, Clone)]
struct Ack {
    reason: String,
    seq: u64,
    effective_epoch: u64,
    /// `set_mode` or `manual_exit`.
    kind: &'static str,
    /// The mode or the gate.
    what: String,
}

/// What one cycle's RPC thread does and reports.
struct Operator<'a> {
    url: String,
    cwd: &'a Path,
    /// Calls to make; the thread stops early when `stop` is set.
    calls: usize,
    seed: u64,
    cycle: usize,
    stop: AtomicBool,
    done: AtomicBool,
    acked: AtomicUsize,
    acks: &'a Mutex<Vec<Ack>>,
    attempts: &'a AtomicUsize,
}

impl Operator<'_> {
    /// Sends `calls` mode changes and manual exits (each with a reason no other call uses) one
    /// after the other and records the acknowledged ones.
    fn run(&self) {
        let mut rng = Rng::new(self.seed);
        for n in 0..self.calls {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let reason = format!("crash cycle {} call {n} seed {:#x}", self.cycle, self.seed);
            let (kind, what) = match rng.below(6) {
                0 | 1 => ("set_mode", "apply"),
                2 => ("set_mode", "paused"),
                3 => ("set_mode", "shadow"),
                _ => ("manual_exit", GATES[rng.below(GATES.len())]),
            };
            let mut args = vec!["governor"];
            match kind {
                "set_mode" => args.extend_from_slice(&["mode", what]),
                _ => args.extend_from_slice(&["exit", "--gate", what]),
            }
            args.extend_from_slice(&[
                "--reason",
                &reason,
                "--operator",
                OPERATOR,
                "--token",
                TOKEN,
                "--rpc",
                &self.url,
                "--json",
                "--timeout",
                "10",
            ]);
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let r = run("tb-cli", &args, self.cwd, &[]);
            if r.code != Some(0) {
                // Refused or cut off by the kill: not acknowledged, so nothing is promised.
                continue;
            }
            let receipt: Value = serde_json::from_str(&r.stdout)
                .unwrap_or_else(|e| panic!("tb-cli {args:?} exited 0 without JSON ({e}): {r:?}"));
            let (Some(seq), Some(effective_epoch)) =
                (receipt["seq"].as_u64(), receipt["effective_epoch"].as_u64())
            else {
                panic!("tb-cli {args:?}: not a journal receipt: {receipt}");
            };
            self.acks.lock().unwrap().push(Ack {
                reason,
                seq,
                effective_epoch,
                kind,
                what: what.to_owned(),
            });
            self.acked.fetch_add(1, Ordering::SeqCst);
        }
        self.done.store(true, Ordering::SeqCst);
    }
}

/// Polls the daemon's status over raw HTTP (1 ms apart: a `tb-cli` process per poll is too slow
/// to catch it mid-ingest) until `pred` holds, at most [`DEADLINE`].
fn poll(d: &Daemon, what: &str, mut pred: impl FnMut(Option<&Value>) -> bool) {
    let start = Instant::now();
    let mut last = None;
    loop {
        let st = d.status_raw();
        if pred(st.as_ref()) {
            return;
        }
        if st.is_some() {
            last = st;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}\n--- last status\n{}\n--- daemon stderr\n{}",
            last.map(|v| v.to_string()).unwrap_or_default(),
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The epoch of `data`'s checkpoint, if there is a readable one.
fn checkpoint_epoch(data: &Path) -> Option<u64> {
    let bytes = std::fs::read(data.join("state/checkpoint.json")).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["epoch"].as_u64()
}

/// How a cycle chooses its kill instant.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Append the cycle's chain in one write and kill as soon as the daemon listens: mid-start,
    /// mid-resume or mid-first-read.
    AtOnce,
    /// Append the cycle's chain in `chunks` pieces cut at random bytes (mid-line included), one
    /// status call between two pieces, and kill right after piece `after`.
    MidAppend { chunks: usize, after: usize },
    /// Append, and kill the moment status shows `more` closes beyond the one it showed at start
    /// (mid-sidecar, mid-checkpoint, mid-params), or the tip reached when no epoch completes.
    AfterClose { more: u64 },
    /// Append, and kill the moment the RPC thread has `acks` receipts (or gave up).
    AfterAcks { acks: usize },
    /// Append, wait until the daemon has caught up and checkpointed, then kill once the RPC
    /// thread has `acks` receipts (or gave up).
    CaughtUp { acks: usize },
}

#[test]
fn kill_9_at_random_instants_loses_no_acknowledged_event_and_audits_clean() {
    let seed = knob("TB_E2E_CRASH_SEED", SEED);
    let kills = usize::try_from(knob("TB_E2E_CRASH_KILLS", KILLS as u64)).unwrap();
    assert!(
        (20..=(EPOCHS - 1) * L).contains(&kills),
        "TB_E2E_CRASH_KILLS must be within 20..={}",
        (EPOCHS - 1) * L
    );
    let mut trail = Trail {
        seed,
        cycles: Vec::new(),
    };
    let mut rng = Rng::new(seed);
    let campaign = Instant::now();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sim = simulate(dir, "demo", EPOCHS, L);
    let keygen = run_expect("tb-governor", &["keygen", "--out", "node.key"], dir, &[], 0);
    let public_key = keygen
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key:"))
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|| panic!("keygen printed no public key: {keygen:?}"));
    let data = dir.join("data");
    let cfg = Config::new(dir, L)
        .poll_ms(20)
        .rpc_extra(&format!("token = {TOKEN:?}\nrps = 1000000\n"))
        .rpc_extra(&format!(
            "[signing]\nenabled = true\nkey_file = {:?}",
            dir.join("node.key").display().to_string()
        ))
        .write(&dir.join("gov.toml"));
    let log = dir.join("gov.stderr.log");
    let mut chain = Chain::new(dir.join("chain"), sim.concat().into_bytes());

    let acks = Mutex::new(Vec::<Ack>::new());
    let attempts = AtomicUsize::new(0);
    // The campaign copies all but the last epoch; the final start gets the rest.
    let campaign_lines = (EPOCHS - 1) * L;
    for cycle in 0..kills {
        let lines = (cycle + 1) * campaign_lines / kills;
        let mut target = chain.line_ends[lines - 1];
        if rng.below(3) == 0 {
            // End the cycle inside the next line: its rest comes with a later write.
            let next_len = chain.line_ends[lines] - target;
            target += rng.between(1, next_len - 1);
        }
        let target = target.max(chain.written);
        let kill = match rng.below(5) {
            0 => Kill::AtOnce,
            1 => {
                let chunks = rng.between(2, 6);
                Kill::MidAppend {
                    chunks,
                    after: rng.between(1, chunks),
                }
            }
            2 => Kill::AfterClose {
                more: rng.between(1, 2) as u64,
            },
            3 => Kill::AfterAcks {
                acks: rng.between(1, 3),
            },
            _ => Kill::CaughtUp {
                acks: rng.between(0, 2),
            },
        };
        let calls = match kill {
            Kill::AfterAcks { acks } | Kill::CaughtUp { acks } => acks + rng.below(3),
            _ => rng.below(5),
        };
        let thread_seed = rng.next();
        trail.cycles.push(format!(
            "cycle {cycle}: chain bytes {}..{target} ({} lines), {calls} RPC calls, kill {kill:?}",
            chain.written,
            chain.line_ends.partition_point(|&e| e <= target),
        ));

        let mut d = Daemon::start(&cfg, &log);
        let operator = Operator {
            url: d.url.clone(),
            cwd: dir,
            calls,
            seed: thread_seed,
            cycle,
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            acked: AtomicUsize::new(0),
            acks: &acks,
            attempts: &attempts,
        };
        std::thread::scope(|scope| {
            scope.spawn(|| operator.run());
            let acked_or_done = |n: usize| {
                operator.acked.load(Ordering::SeqCst) >= n || operator.done.load(Ordering::SeqCst)
            };
            match kill {
                Kill::AtOnce => chain.append_to(target),
                Kill::MidAppend { chunks, after } => {
                    let start = chain.written;
                    let mut cuts: Vec<usize> = (1..chunks)
                        .map(|_| start + rng.below(target - start + 1))
                        .collect();
                    cuts.push(target);
                    cuts.sort_unstable();
                    for (i, cut) in cuts.into_iter().enumerate() {
                        chain.append_to(cut);
                        if i + 1 == after {
                            break;
                        }
                        let _ = d.status_raw();
                    }
                }
                Kill::AfterClose { more } => {
                    let from = d
                        .status_raw()
                        .and_then(|s| s["release_provenance"]["epoch"].as_u64());
                    chain.append_to(target);
                    let (want_epoch, tip) = (chain.last_epoch(), chain.tip());
                    let goal = match (from, want_epoch) {
                        (_, None) => None,
                        (None, Some(w)) => Some((more - 1).min(w)),
                        (Some(f), Some(w)) => Some((f + more).min(w)),
                    };
                    poll(&d, "a close (or the tip)", |st| {
                        let Some(st) = st else { return false };
                        let epoch = st["release_provenance"]["epoch"].as_u64();
                        match goal {
                            Some(g) if from.is_none_or(|f| g > f) => epoch >= Some(g),
                            _ => st["tip_height"].as_u64() == tip,
                        }
                    });
                }
                Kill::AfterAcks { acks } => {
                    chain.append_to(target);
                    poll(&d, "journal receipts", |_| acked_or_done(acks));
                }
                Kill::CaughtUp { acks } => {
                    chain.append_to(target);
                    let (want_epoch, tip) = (chain.last_epoch(), chain.tip());
                    poll(&d, "the daemon to catch up and checkpoint", |st| {
                        st.is_some_and(|st| {
                            st["tip_height"].as_u64() == tip
                                && st["release_provenance"]["epoch"].as_u64() == want_epoch
                        }) && checkpoint_epoch(&data) == want_epoch
                    });
                    poll(&d, "journal receipts", |_| acked_or_done(acks));
                }
            }
            d.kill();
            operator.stop.store(true, Ordering::SeqCst);
        });
        drop(d);
    }

    // The last start: the rest of the chain, catch up, stop cleanly.
    chain.append_to(chain.bytes.len());
    let last = EPOCHS as u64 - 1;
    let tip = (EPOCHS * L) as u64 - 1;
    let mut d = Daemon::start(&cfg, &log);
    let st = d.wait_caught_up(last, tip);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    poll(&d, "the final checkpoint", |_| {
        checkpoint_epoch(&data) == Some(last)
    });
    d.signal("TERM");
    let exit = d.wait_exit(DEADLINE);
    assert_eq!(exit.code(), Some(0), "{}", d.stderr());
    drop(d);

    let acks = acks.into_inner().unwrap();
    let attempts = attempts.into_inner();
    trail.cycles.push(format!(
        "final start caught up; {} of {attempts} RPC calls acknowledged; {:.1?} so far",
        acks.len(),
        campaign.elapsed()
    ));

    // Every decision file is reproduced by an offline replay of the chain and the journal.
    assert_audit_reproduces(dir, &cfg, &data, EPOCHS);
    let journal_path = data.join("journal.jsonl");
    let decisions = data.join("decisions");
    // …and every one carries a valid attestation, chained to the one before.
    let verify = run(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            decisions.to_str().unwrap(),
            "--trusted-key",
            &public_key,
        ],
        dir,
        &[],
    );
    assert_eq!(verify.code, Some(0), "verify failed: {verify:?}");

    // The journal: complete lines, seq contiguous from 0.
    let text = std::fs::read_to_string(&journal_path).unwrap();
    assert!(text.ends_with('\n'), "a torn last journal line:\n{text}");
    let events: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {}: {e}: {l}", i + 1))
        })
        .collect();
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(
            ev["seq"].as_u64(),
            Some(i as u64),
            "journal line {}: {ev}\n--- journal\n{text}",
            i + 1
        );
    }
    // Every acknowledged event, at the seq and epoch its receipt named.
    for ack in &acks {
        let found: Vec<&Value> = events
            .iter()
            .filter(|e| e["reason"] == ack.reason.as_str())
            .collect();
        assert_eq!(
            found.len(),
            1,
            "acknowledged event {ack:?} is not in the journal exactly once\n--- journal\n{text}"
        );
        let ev = found[0];
        assert_eq!(ev["seq"].as_u64(), Some(ack.seq), "{ack:?}: {ev}");
        assert_eq!(
            ev["effective_epoch"].as_u64(),
            Some(ack.effective_epoch),
            "{ack:?}: {ev}"
        );
        assert_eq!(ev["kind"], ack.kind, "{ack:?}: {ev}");
        assert_eq!(ev["operator"], OPERATOR, "{ack:?}: {ev}");
        let field = if ack.kind == "set_mode" {
            "mode"
        } else {
            "gate"
        };
        assert_eq!(ev[field], ack.what.as_str(), "{ack:?}: {ev}");
    }
    // Not a campaign that never reached the journal.
    assert!(
        !acks.is_empty(),
        "no RPC call was acknowledged in {attempts} attempts"
    );

    // Nothing a kill left half-written survives the final start.
    let leftovers = temp_files(&data);
    assert!(
        leftovers.is_empty(),
        "temp files left under the data dir after the final clean start: {leftovers:?}"
    );
}

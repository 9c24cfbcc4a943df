//! The daemon (`tb-governor run`) on real sockets: tailing a growing chain, crash safety,
//! operator actions, `/metrics`, bad requests and signals.
//!
//! Every test simulates a small chain (20 blocks per epoch), feeds some prefix of it into a
//! watched chain directory, starts the real daemon on `127.0.0.1:0` and talks to it with the real
//! `tb-cli` (or raw HTTP for protocol checks). Waits poll a condition with a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{
    append, assert_audit_reproduces, files, http_request, rpc_call, rpc_post, wait_until, Config,
    Daemon, Sim, DEADLINE,
};
use serde_json::{json, Value};

/// Blocks per epoch of every chain here.
const L: usize = 20;
/// The RPC token of the tests that need one.
const TOKEN: &str = "s3cret-token";

/// A test's directory: a simulated chain (all its lines in memory), the watched chain directory
/// the test fills, a data dir and a config.
struct Setup(Sim);

impl std::ops::Deref for Setup {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.0
    }
}

impl Setup {
    /// Simulates `epochs` epochs of `scenario`.
    fn new(scenario: &str, epochs: usize) -> Setup {
        Setup(Sim::new(scenario, epochs, L))
    }

    /// Writes `<name>.toml` for data dir `data` and chain dir `chain` (both relative to the
    /// test's directory), with `rpc_extra` TOML lines appended to its `[rpc]` section.
    fn config(&self, name: &str, data: &str, chain: &str, rpc_extra: &str) -> PathBuf {
        std::fs::create_dir_all(self.path(chain)).unwrap();
        Config::new(&self.dir, L)
            .data(&self.path(data))
            .chain(&self.path(chain))
            .rpc_extra(rpc_extra)
            .write(&self.path(&format!("{name}.toml")))
    }

    /// Appends raw bytes to `file` in one write.
    fn append(&self, file: &str, bytes: &[u8]) {
        append(&self.path(file), bytes);
    }

    fn start(&self, config: &Path) -> Daemon {
        Daemon::start(config, &config.with_extension("stderr.log"))
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn decision_path(data: &Path, epoch: u64) -> PathBuf {
    data.join(format!("decisions/epoch-{epoch:020}.json"))
}

fn ids(intents: &Value) -> Vec<String> {
    intents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// How long a change to the chain may take to show in status: the daemon polls every 50 ms.
const PROMPTLY: Duration = Duration::from_secs(15);

#[test]
fn follows_a_growing_chain_across_partial_lines_and_new_files() {
    let s = Setup::new("demo", 12);
    let cfg = s.config("gov", "data", "chain", "");
    // Epochs 0..=2 only.
    s.feed("chain/blocks-000000.jsonl", 0..3 * L);
    let d = s.start(&cfg);
    // The close (release_provenance) is published before the tip: wait for both.
    let st = d.wait_status("epoch 2 to close", |s| {
        s["release_provenance"]["epoch"] == 2 && s["tip_height"] == 3 * L - 1
    });
    assert_eq!(st["last_closed_epoch"], 2, "{st}");
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    let intents = d.cli_json(&["intents", "--limit", "100"]);
    assert_eq!(
        ids(&intents["intents"]).len(),
        8,
        "every gate enters at epoch 2 of the demo: {intents}"
    );

    // Two more epochs and the first half of the next line, in one write.
    let next = &s.lines[5 * L];
    let (head, tail) = next.split_at(next.len() / 2);
    let mut bytes = s.lines[3 * L..5 * L].concat();
    bytes.push_str(head);
    s.append("chain/blocks-000000.jsonl", bytes.as_bytes());
    let st = d.wait_status_within("epoch 4 to close", PROMPTLY, |s| {
        s["release_provenance"]["epoch"] == 4 && s["tip_height"].as_u64() >= Some(5 * L as u64 - 1)
    });
    assert_eq!(st["last_closed_epoch"], 4, "{st}");
    // The unterminated line is not read, and it is no error.
    assert_eq!(st["tip_height"], 5 * L - 1, "{st}");
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    assert_eq!(st["ingest"]["file"], "blocks-000000.jsonl", "{st}");
    assert_eq!(st["ingest"]["line"], 5 * L + 1, "{st}");

    // Completing the line (and the rest of epoch 5) closes epoch 5, with its intents.
    let mut bytes = tail.to_owned();
    bytes.push_str(&s.lines[5 * L + 1..6 * L].concat());
    s.append("chain/blocks-000000.jsonl", bytes.as_bytes());
    let st = d.wait_status_within("epoch 5 to close", PROMPTLY, |s| {
        s["release_provenance"]["epoch"] == 5 && s["tip_height"] == 6 * L - 1
    });
    assert_eq!(st["tip_height"], 6 * L - 1, "{st}");
    let intents = d.cli_json(&["intents", "--limit", "2"]);
    assert_eq!(
        ids(&intents["intents"]),
        ["storage-00000005-exit", "economics-00000005-exit"],
        "newest first: {intents}"
    );

    // A new file continues the chain.
    s.feed("chain/blocks-000001.jsonl", 6 * L..12 * L);
    let st = d.wait_status_within("epoch 11 to close", PROMPTLY, |s| {
        s["release_provenance"]["epoch"] == 11 && s["tip_height"] == 12 * L - 1
    });
    assert_eq!(st["last_closed_epoch"], 11, "{st}");
    assert_eq!(st["tip_height"], 12 * L - 1, "{st}");
    assert_eq!(st["ingest"]["file"], "blocks-000001.jsonl", "{st}");
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");

    // Server-side filtering: storage has three intents (epochs 2, 5 and 9).
    let storage = d.cli_json(&["intents", "--gate", "storage", "--limit", "2"]);
    let list = storage["intents"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{storage}");
    assert!(list.iter().all(|i| i["gate"] == "storage"), "{storage}");
    assert_eq!(
        ids(&storage["intents"]),
        ["storage-00000009-enter", "storage-00000005-exit"],
        "{storage}"
    );
    let all_storage = d.cli_json(&["intents", "--gate", "storage", "--limit", "50"]);
    assert_eq!(
        ids(&all_storage["intents"]),
        [
            "storage-00000009-enter",
            "storage-00000005-exit",
            "storage-00000002-enter"
        ],
        "{all_storage}"
    );
    let older = d.cli_json(&["intents", "--gate", "storage", "--before-epoch", "5"]);
    assert_eq!(
        ids(&older["intents"]),
        ["storage-00000002-enter"],
        "{older}"
    );

    let decisions = d.cli_json(&["decisions"]);
    let epochs: Vec<u64> = decisions["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, (0..12).collect::<Vec<u64>>(), "{decisions}");
    // The snapshot served over RPC hashes to its snapshot_hash.
    let out = s.path("snap-7.json");
    let r = d.cli(&["snapshot", "--epoch", "7", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let snap = d.cli_json(&["snapshot", "--epoch", "7"]);
    assert_eq!(
        tb_decisions::hash_hex(&std::fs::read(&out).unwrap()),
        snap["snapshot_hash"].as_str().unwrap()
    );
}

fn assert_same_decisions(reference: &Path, other: &Path) {
    let want = files(&reference.join("decisions"));
    let got = files(&other.join("decisions"));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "the same decision files");
    for ((name, a), (_, b)) in want.iter().zip(&got) {
        assert!(a == b, "{name} differs from the uninterrupted run's");
    }
}

/// The epoch of the last decision this run of the daemon published (its checkpoint's after a
/// restart), from a raw status call.
fn published_epoch(d: &Daemon) -> Option<u64> {
    d.status_raw()?["release_provenance"]["epoch"].as_u64()
}

/// Polls (raw HTTP, 1 ms apart: a `tb-cli` process per poll is too slow to catch the daemon
/// mid-ingest) until `pred` holds on the published epoch and tip, at most [`DEADLINE`].
fn poll_raw(d: &Daemon, what: &str, pred: impl Fn(Option<u64>, Option<u64>) -> bool) {
    let start = Instant::now();
    loop {
        if let Some(st) = d.status_raw() {
            let epoch = st["release_provenance"]["epoch"].as_u64();
            if pred(epoch, st["tip_height"].as_u64()) {
                return;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}\n{}",
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

#[test]
fn crashes_at_any_point_lose_and_duplicate_nothing() {
    let s = Setup::new("demo", 12);
    let last: u64 = 11;
    let tip = 12 * L as u64 - 1;

    // The reference: one uninterrupted run on the whole chain.
    // The polls below are raw and 1 ms apart: lift the rate limit (not decision-relevant).
    let fast = "rps = 1000000";
    let ref_cfg = s.config("ref", "ref-data", "ref-chain", fast);
    s.feed("ref-chain/blocks-000000.jsonl", 0..12 * L);
    let mut d = s.start(&ref_cfg);
    let started = Instant::now();
    poll_raw(&d, "the reference run to finish", |e, t| {
        e == Some(last) && t == Some(tip)
    });
    let full_ingest = started.elapsed().min(Duration::from_secs(1));
    d.kill();
    let ref_data = s.path("ref-data");
    assert_eq!(files(&ref_data.join("decisions")).len(), 12);

    // Crash run 1: the chain grows in three stages (a partial line at the end of the first,
    // completed by the second; the third is a new file). In each stage the daemon is SIGKILLed
    // as soon as it has published one, then two more decisions than it started from (usually
    // while the rest of the stage's decisions are still being written), then once caught up.
    let grow_cfg = s.config("grow", "grow-data", "grow-chain", fast);
    let grow = s.path("grow-data");
    let cut = 4 * L;
    let (head, tail) = s.lines[cut].split_at(s.lines[cut].len() / 3);
    let stages: [(&str, String, u64); 3] = [
        (
            "blocks-000000.jsonl",
            [s.lines[..cut].concat(), head.to_owned()].concat(),
            3,
        ),
        (
            "blocks-000000.jsonl",
            [tail.to_owned(), s.lines[cut + 1..8 * L].concat()].concat(),
            7,
        ),
        ("blocks-000001.jsonl", s.lines[8 * L..12 * L].concat(), 11),
    ];
    for (file, text, stage_last) in &stages {
        s.append(&format!("grow-chain/{file}"), text.as_bytes());
        let stage_tip = (stage_last + 1) * L as u64 - 1;
        // A run checkpoints once per ingest step (after that step's burst of decisions), so
        // after two early kills the third run is left to catch up with the stage before its
        // kill; the next stage resumes from that checkpoint.
        for more in [Some(1), Some(2), None] {
            let mut d = s.start(&grow_cfg);
            let from = published_epoch(&d).map_or(-1, |e| e as i64);
            poll_raw(&d, "more decisions, or the stage's end", |e, t| {
                // Status publishes each close as it happens; the checkpoint follows the step.
                let caught_up = e == Some(*stage_last)
                    && t == Some(stage_tip)
                    && checkpoint_epoch(&grow) == Some(*stage_last);
                caught_up || more.is_some_and(|m| e.is_some_and(|e| e as i64 >= from + m))
            });
            d.kill();
        }
        assert_eq!(checkpoint_epoch(&grow), Some(*stage_last));
    }
    let d = s.start(&grow_cfg);
    let st = d.wait_caught_up(last, tip);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    assert_eq!(st["ingest"]["file"], "blocks-000001.jsonl", "{st}");
    drop(d);
    assert_same_decisions(&ref_data, &grow);
    assert_eq!(
        std::fs::read(grow.join("journal.jsonl")).unwrap(),
        std::fs::read(ref_data.join("journal.jsonl")).unwrap(),
        "one set_mode shadow at seq 0 in both journals, nothing else"
    );

    // Crash run 2: the whole chain from the start, killed at delays spread over the time an
    // uninterrupted run needed (these delays are the crash points under test, not a
    // synchronisation), restarted each time from whatever the last run left.
    let cfg = s.config("gov", "data", "chain", fast);
    let data = s.path("data");
    s.feed("chain/blocks-000000.jsonl", 0..12 * L);
    for k in [1u32, 3, 5, 6, 7, 8, 10] {
        let mut d = s.start(&cfg);
        std::thread::sleep(full_ingest * k / 8);
        d.kill();
    }
    let d = s.start(&cfg);
    let st = d.wait_caught_up(last, tip);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    drop(d);
    assert_same_decisions(&ref_data, &data);

    // An offline audit of the crash run's files passes.
    assert_audit_reproduces(&s.dir, &cfg, &data, 12);

    // Without a checkpoint (deleted, then corrupt) the daemon replays from genesis, meets the
    // existing files with identical bytes, and carries on.
    let checkpoint = data.join("state/checkpoint.json");
    for broken in [None, Some("{\"format\":1,")] {
        match broken {
            None => std::fs::remove_file(&checkpoint).unwrap(),
            Some(text) => std::fs::write(&checkpoint, text).unwrap(),
        }
        let d = s.start(&cfg);
        let st = d.wait_status("a replay from genesis to reach the tip or stall", |st| {
            let done = st["tip_height"] == tip && checkpoint_epoch(&data) == Some(last);
            done || !st["ingest"]["stall"].is_null()
        });
        assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
        assert_eq!(st["tip_height"], tip, "{st}");
        assert!(
            d.stderr().contains("resuming from genesis"),
            "{}",
            d.stderr()
        );
        if broken.is_some() {
            assert!(d.stderr().contains("checkpoint not used"), "{}", d.stderr());
        }
        assert_eq!(checkpoint_epoch(&data), Some(last), "a fresh checkpoint");
        drop(d);
        assert_same_decisions(&ref_data, &data);
    }
}

#[test]
fn mode_flip_to_apply_publishes_reconciled_params_and_needs_the_token() {
    let s = Setup::new("healthy", 6);
    let cfg = s.config("gov", "data", "chain", &format!("token = {TOKEN:?}"));
    let data = s.path("data");
    let params_path = data.join("runtime/params.json");
    s.feed("chain/blocks-000000.jsonl", 0..4 * L);
    let d = s.start(&cfg);
    let st = d.wait_closed(3);
    // Shadow: the Enters of epoch 2 activated at the close of 3 in the shadow params only.
    assert_eq!(st["mode"], "shadow", "{st}");
    assert_eq!(st["params"]["economics_autopilot"], false, "{st}");
    assert_eq!(st["shadow_params"]["economics_autopilot"], true, "{st}");
    assert!(!params_path.exists(), "shadow mode publishes no params");

    // Refused without the right token, and nothing is journaled.
    for token in [Some("wrong"), None] {
        let mut args = vec!["mode", "apply", "--reason", "r", "--operator", "o"];
        if let Some(t) = token {
            args.extend_from_slice(&["--token", t]);
        }
        let r = d.cli(&args);
        assert_eq!(r.code, Some(2), "token {token:?}: {r:?}");
        assert!(r.stderr.contains("-33009"), "{}", r.stderr);
        assert!(r.stderr.contains("unauthorized"), "{}", r.stderr);
    }
    let r = d.cli(&[
        "exit",
        "--gate",
        "storage",
        "--reason",
        "r",
        "--operator",
        "o",
    ]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("-33009"), "{}", r.stderr);
    let journal = std::fs::read_to_string(data.join("journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 1, "{journal}");

    let receipt = d.cli_json(&[
        "mode",
        "apply",
        "--reason",
        "r",
        "--operator",
        "o",
        "--token",
        TOKEN,
    ]);
    assert_eq!(receipt, json!({"seq": 1, "effective_epoch": 4}));
    let st = d.status();
    assert_eq!(st["mode"], "apply", "{st}");
    assert_eq!(st["mode_effective_epoch"], 4, "{st}");

    // Epoch 4 is the first close in apply mode: params are reconciled to the shadow params.
    s.feed("chain/blocks-000000.jsonl", 4 * L..5 * L);
    let read_params = || -> Option<Value> {
        std::fs::read(&params_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let published = wait_until(
        "runtime/params.json of epoch 4",
        DEADLINE,
        read_params,
        || d.stderr(),
    );
    let decision_bytes = std::fs::read(decision_path(&data, 4)).unwrap();
    let decision: Value = serde_json::from_slice(&decision_bytes).unwrap();
    assert_eq!(decision["mode"], "apply");
    assert_eq!(published["epoch_effective"], 5, "{published}");
    assert_eq!(published["params"], decision["params"], "{published}");
    assert_eq!(published["params_hash"], decision["params_hash"]);
    assert_eq!(
        published["decision_hash"].as_str().unwrap(),
        tb_decisions::hash_hex(&decision_bytes)
    );
    assert_eq!(decision["params"], decision["shadow_params"]);
    let p = &decision["params"];
    assert_eq!(p["economics_autopilot"], true, "{p}");
    assert_eq!(p["launch_operational"], true, "{p}");
    assert_eq!(p["ad_contextual_enabled"], true, "{p}");
    assert_eq!(p["ad_presence_enabled"], true, "{p}");
    assert_eq!(
        p["market_mode"],
        json!({"storage": "trade", "compute": "trade", "energy": "trade", "ad": "trade"}),
        "{p}"
    );
    assert_eq!(
        p["block_reward_per_block_micro"],
        decision["snapshot"]["controls"]["block_reward_per_block_micro"]
    );
    let reconciled: Vec<&str> = decision["reconciled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        reconciled.contains(&"economics_autopilot") && reconciled.contains(&"launch_operational"),
        "{reconciled:?}"
    );
    let consumed = decision["journal"].as_array().unwrap();
    assert_eq!(consumed.len(), 1, "{decision}");
    assert_eq!(consumed[0]["kind"], "set_mode");
    assert_eq!(consumed[0]["mode"], "apply");
    let st = d.wait_closed(4);
    assert_eq!(st["params"], decision["params"], "{st}");

    // Each later close republishes.
    s.feed("chain/blocks-000000.jsonl", 5 * L..6 * L);
    let published = wait_until(
        "runtime/params.json of epoch 5",
        DEADLINE,
        || read_params().filter(|p| p["epoch_effective"] == 6),
        || d.stderr(),
    );
    let decision_bytes = std::fs::read(decision_path(&data, 5)).unwrap();
    assert_eq!(
        published["decision_hash"].as_str().unwrap(),
        tb_decisions::hash_hex(&decision_bytes)
    );

    // The configuration still says shadow: a restart journals set_mode shadow (docs/gates.md: a
    // start whose configured mode differs from the journal's appends an event), and says so.
    drop(d);
    let d = s.start(&cfg);
    let st = d.status();
    assert_eq!(st["mode"], "shadow", "{st}");
    assert_eq!(st["mode_effective_epoch"], 6, "{st}");
    let text = std::fs::read_to_string(data.join("journal.jsonl")).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    assert_eq!(events[2]["kind"], "set_mode", "{text}");
    assert_eq!(events[2]["mode"], "shadow", "{text}");
    assert_eq!(events[2]["operator"], "tb-governor", "{text}");
    assert!(
        d.stderr().lines().any(|l| l.contains(" WARN ")
            && l.contains("journaling set_mode with the configuration's mode")
            && l.ends_with(" mode=shadow journal_mode=apply")),
        "{}",
        d.stderr()
    );
}

#[test]
fn a_burst_over_the_rate_limit_is_refused_and_the_daemon_keeps_serving() {
    let s = Setup::new("healthy", 1);
    let cfg = s.config("gov", "data", "chain", "rps = 5");
    s.feed("chain/blocks-000000.jsonl", 0..L);
    let d = s.start(&cfg);
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "governor.status"}).to_string();
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| rpc_post(&d.addr, status.as_bytes()).unwrap().json()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let limited = answers
        .iter()
        .filter(|a| a["error"]["code"] == -33010)
        .count();
    let ok = answers.iter().filter(|a| a.get("result").is_some()).count();
    assert!(limited >= 1, "no -33010 in a burst of 20: {answers:?}");
    assert!(ok >= 1, "no success in a burst of 20: {answers:?}");
    assert_eq!(limited + ok, 20, "{answers:?}");
    // The window is one second: the daemon answers again.
    wait_until(
        "status to succeed after the burst",
        DEADLINE,
        || {
            std::thread::sleep(Duration::from_millis(200));
            rpc_post(&d.addr, status.as_bytes())
                .ok()
                .filter(|r| r.json().get("result").is_some())
        },
        || d.stderr(),
    );
    let r = d.cli(&["status"]);
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn a_manual_exit_is_journaled_and_decided_at_the_next_close() {
    let s = Setup::new("healthy", 4);
    let cfg = s.config("gov", "data", "chain", &format!("token = {TOKEN:?}"));
    let data = s.path("data");
    s.feed("chain/blocks-000000.jsonl", 0..3 * L);
    let d = s.start(&cfg);
    let st = d.wait_closed(2);
    let operational = st["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "operational")
        .unwrap();
    assert_eq!(operational["state"], "active", "{st}");

    let receipt = d.cli_json(&[
        "exit",
        "--gate",
        "operational",
        "--reason",
        "drill",
        "--operator",
        "o",
        "--token",
        TOKEN,
    ]);
    assert_eq!(receipt, json!({"seq": 1, "effective_epoch": 3}));
    let journal = std::fs::read_to_string(data.join("journal.jsonl")).unwrap();
    let events: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{journal}");
    let event = &events[1];
    assert_eq!(event["kind"], "manual_exit", "{event}");
    assert_eq!(event["gate"], "operational", "{event}");
    assert_eq!(event["reason"], "drill", "{event}");
    assert_eq!(event["operator"], "o", "{event}");
    assert_eq!(event["effective_epoch"], 3, "{event}");

    s.feed("chain/blocks-000000.jsonl", 3 * L..4 * L);
    let st = d.wait_closed(3);
    let decision = read_json(&decision_path(&data, 3));
    assert_eq!(decision["journal"], json!([event]), "{decision}");
    let exit = decision["intents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "operational-00000003-exit")
        .unwrap_or_else(|| panic!("no manual exit intent: {}", decision["intents"]));
    assert_eq!(exit["action"], "exit", "{exit}");
    assert_eq!(exit["gate"], "operational", "{exit}");
    assert!(exit["reason"].as_str().unwrap().contains("drill"), "{exit}");
    // The Exit supersedes the gate's Enter of epoch 2, still pending (it applies from epoch 4).
    assert!(
        decision["activations"]
            .as_array()
            .unwrap()
            .contains(&json!({"id": "operational-00000002-enter", "outcome": "superseded"})),
        "{}",
        decision["activations"]
    );
    let gate = |v: &Value, name: &str| {
        v["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(gate(&decision, "operational"), "inactive");
    assert_eq!(
        gate(&decision, "economics"),
        "active",
        "other gates untouched"
    );
    assert_eq!(gate(&st, "operational"), "inactive", "{st}");
    let listed = d.cli_json(&["intents", "--gate", "operational"]);
    assert_eq!(
        ids(&listed["intents"]),
        ["operational-00000003-exit", "operational-00000002-enter"],
        "{listed}"
    );
    assert_eq!(listed["intents"][1]["state"], "superseded", "{listed}");
}

/// The metric names (the operations runbook's).
const METRICS: [&str; 20] = [
    "economics_block_reward_per_block",
    "economics_prev_market_metrics_utilization_ppm",
    "economics_prev_market_metrics_provider_margin_ppm",
    "economics_epoch_tx_count",
    "economics_epoch_tx_volume_block",
    "economics_epoch_treasury_inflow_block",
    "receipt_emitted_total",
    "receipt_validation_errors_total",
    "receipt_min_payment_rejected_total",
    "receipt_decoding_failures_total",
    "proof_verification_latency_ms",
    "governor_gate_state",
    "governor_gate_enter_streak",
    "governor_gate_exit_streak",
    "governor_intents_total",
    "governor_mode",
    "governor_last_closed_epoch",
    "governor_tip_height",
    "governor_decision_write_failures_total",
    "governor_rpc_requests_total",
];

/// The value of the sample `series` (name with labels, as written) in an exposition.
fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::trim)
}

#[test]
fn metrics_pass_promtool_and_healthz_answers() {
    let s = Setup::new("healthy", 3);
    let cfg = s.config("gov", "data", "chain", "");
    s.feed("chain/blocks-000000.jsonl", 0..3 * L);
    let d = s.start(&cfg);
    d.wait_caught_up(2, 3 * L as u64 - 1);

    let health = http_request(&d.addr, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.body.trim(), "ok", "{health:?}");

    let m = http_request(&d.addr, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(m.status, 200, "{m:?}");
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{m:?}"
    );
    let text = &m.body;
    for name in METRICS {
        let present = text.lines().any(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        });
        assert!(present, "metric {name} missing from /metrics:\n{text}");
    }
    assert_eq!(
        sample(text, "governor_last_closed_epoch"),
        Some("2"),
        "{text}"
    );
    assert_eq!(
        sample(text, "governor_tip_height"),
        Some((3 * L - 1).to_string().as_str()),
        "{text}"
    );
    assert_eq!(
        sample(text, "governor_mode{mode=\"shadow\"}"),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        sample(text, "governor_gate_state{gate=\"operational\"}"),
        Some("1"),
        "{text}"
    );

    // promtool parses the exposition. Its one allowed lint finding: the name
    // `proof_verification_latency_ms` carries an abbreviated unit, but that name is fixed by the
    // operations runbook, so it stays.
    let path = s.path("metrics.txt");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is needed for this test (apt install prometheus): {e}")
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0: clean, 3: lint findings only; anything else (1: parse error) fails.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool check metrics failed ({:?}):\n{report}",
        out.status
    );
    for finding in report.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            (finding.contains("proof_verification_latency_ms")
                || finding.contains("proof_verification_budget_ms"))
                && finding.contains("abbreviated unit"),
            "unexpected promtool finding: {finding}\n--- whole report\n{report}"
        );
    }
}

#[test]
fn bad_requests_never_kill_the_daemon() {
    let s = Setup::new("healthy", 1);
    let cfg = s.config("gov", "data", "chain", "max_body_bytes = 4096");
    s.feed("chain/blocks-000000.jsonl", 0..L);
    let mut d = s.start(&cfg);
    d.wait_closed(0);
    let addr = d.addr.clone();
    let code = |v: &Value| v["error"]["code"].as_i64();

    let r = rpc_post(&addr, b"{\"jsonrpc\":\"2.0\",\"id\":1,").unwrap();
    assert_eq!(code(&r.json()), Some(-32700), "{r:?}");
    let r = rpc_post(&addr, b"\xff\xfe not even utf-8").unwrap();
    assert_eq!(code(&r.json()), Some(-32700), "{r:?}");

    let v = rpc_call(&addr, "governor.nope", json!({}));
    assert_eq!(code(&v), Some(-32601), "{v}");

    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"governor.status\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(10 * 1024)
    );
    let r = rpc_post(&addr, big.as_bytes()).unwrap();
    let is_error = r.status == 413
        || serde_json::from_str::<Value>(&r.body)
            .ok()
            .is_some_and(|v| v.get("error").is_some());
    assert!(is_error, "a 10 KiB body over max_body_bytes 4096: {r:?}");
    assert!(r.status >= 400 || r.body.contains("error"), "{r:?}");

    let v = rpc_call(&addr, "governor.snapshot", json!({"epoch": 999}));
    assert_eq!(code(&v), Some(-33004), "{v}");
    let r = d.cli(&["snapshot", "--epoch", "999"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("unknown epoch"), "{}", r.stderr);

    let v = rpc_call(&addr, "governor.intents", json!({"limit": 5000}));
    assert_eq!(code(&v), Some(-32602), "{v}");
    let v = rpc_call(&addr, "governor.intents", json!({"gate": "moon"}));
    assert_eq!(code(&v), Some(-32602), "{v}");
    let v = rpc_call(&addr, "governor.snapshot", json!({"epoch": "zero"}));
    assert_eq!(code(&v), Some(-32602), "{v}");

    let r = http_request(&addr, "GET", "/nowhere", &[], b"").unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    // Half a request, then the connection closes.
    {
        use std::io::Write;
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        sock.write_all(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
            .unwrap();
    }

    assert!(d.alive(), "the daemon died:\n{}", d.stderr());
    let st = d.status();
    assert_eq!(st["last_closed_epoch"], 0, "{st}");
    let v = rpc_call(&addr, "governor.status", json!({}));
    assert!(v.get("result").is_some(), "{v}");
}

#[test]
fn a_diverging_decision_file_halts_ingest_but_not_rpc() {
    let s = Setup::new("healthy", 3);
    let cfg = s.config("gov", "data", "chain", "");
    s.feed("chain/blocks-000000.jsonl", 0..3 * L);
    // Epoch 1's file already exists with other bytes: "something changed the inputs".
    let data = s.path("data");
    std::fs::create_dir_all(data.join("decisions")).unwrap();
    std::fs::write(decision_path(&data, 1), b"{}").unwrap();
    let mut d = s.start(&cfg);
    let st = d.wait_status("ingestion to halt", |s| !s["ingest"]["stall"].is_null());
    let stall = st["ingest"]["stall"].as_str().unwrap();
    assert!(stall.contains("decision divergence at epoch 1"), "{stall}");
    assert_eq!(st["release_provenance"]["epoch"], 0, "{st}");
    // Nothing after the divergence is decided, the foreign file is left alone, RPC serves on.
    assert!(!decision_path(&data, 2).exists());
    assert_eq!(std::fs::read(decision_path(&data, 1)).unwrap(), b"{}");
    let m = http_request(&d.addr, "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.body
            .lines()
            .any(|l| l == "governor_decision_write_failures_total 1"),
        "{}",
        m.body
    );
    assert!(d.alive(), "{}", d.stderr());
    d.signal("TERM");
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0), "{}", d.stderr());
}

#[test]
fn sighup_reloads_what_may_change_and_sigterm_stops_cleanly() {
    let s = Setup::new("healthy", 1);
    let cfg = s.config("gov", "data", "chain", "rps = 50");
    s.feed("chain/blocks-000000.jsonl", 0..L);
    let mut d = s.start(&cfg);
    let st = d.wait_closed(0);
    assert_eq!(st["config_reload_error"], Value::Null, "{st}");
    let original = std::fs::read_to_string(&cfg).unwrap();

    // A decision-relevant change is refused; the daemon stays up.
    std::fs::write(
        &cfg,
        original.replace(&format!("epoch_blocks = {L}"), "epoch_blocks = 30"),
    )
    .unwrap();
    d.signal("HUP");
    let st = d.wait_status("the reload to be refused", |s| {
        !s["config_reload_error"].is_null()
    });
    let err = st["config_reload_error"].as_str().unwrap();
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("governor.epoch_blocks"), "{err}");
    assert!(d.alive(), "{}", d.stderr());

    // Only the rate limit changes: accepted, and the error clears.
    std::fs::write(&cfg, original.replace("rps = 50", "rps = 40")).unwrap();
    d.signal("HUP");
    let st = d.wait_status("the reload to be accepted", |s| {
        s["config_reload_error"].is_null()
    });
    assert_eq!(st["last_closed_epoch"], 0, "{st}");
    // (logged before the error is cleared)
    assert!(
        d.stderr()
            .contains("configuration reloaded mode=shadow rps=40 token="),
        "{}",
        d.stderr()
    );
    let journal = s.path("data/journal.jsonl");
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        1
    );

    // The mode changes without a restart, journaled as a set_mode event.
    std::fs::write(
        &cfg,
        original
            .replace("rps = 50", "rps = 40")
            .replace("[governor]\n", "[governor]\nshadow_only = false\n"),
    )
    .unwrap();
    d.signal("HUP");
    let st = d.wait_status("the mode to become apply", |s| s["mode"] == "apply");
    assert_eq!(st["config_reload_error"], Value::Null, "{st}");
    assert_eq!(st["mode_effective_epoch"], 1, "{st}");
    let text = std::fs::read_to_string(&journal).unwrap();
    let event: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(event["kind"], "set_mode", "{text}");
    assert_eq!(event["mode"], "apply", "{text}");
    assert_eq!(event["effective_epoch"], 1, "{text}");

    // SIGTERM: a clean exit within the time limit.
    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(d.stderr().contains("stopped cleanly"), "{}", d.stderr());
}

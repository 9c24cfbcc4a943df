//! Every step of the operations runbook against the real binaries: re-signing old decisions,
//! receipt health as the runbook names it, `GET /wrappers`, the BlockTorch budget, mode changes
//! through the environment, rollback step 3, and The Block's own `contract-cli` reading the
//! daemon (request fixtures in governor/tests/e2e/fixtures/contract-cli/).
//!
//! Each test simulates a chain of 20-block epochs, feeds a prefix of it into a watched chain
//! directory and starts `tb-governor run` on 127.0.0.1:0. Waits poll a condition with a deadline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{
    append, http_request, rpc_call, rpc_post, run, wait_until, Config, Daemon, Sim, DEADLINE,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// Blocks per epoch.
const L: usize = 20;
/// The RPC token of the tests that need one.
const TOKEN: &str = "runbook-token";
/// The node's signing seed (test key).
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
/// The chain file every test writes.
const FILE: &str = "chain/blocks-000000.jsonl";

fn node_public_key() -> String {
    tb_decisions::Signer::from_seed_hex(KEY, "test key")
        .unwrap()
        .public_key_hex()
}

/// A test's directory: the simulated chain (lines in memory), the watched chain directory the
/// test fills, a data dir and a config.
struct Setup(Sim);

impl std::ops::Deref for Setup {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.0
    }
}

impl Setup {
    fn new(epochs: usize) -> Setup {
        Setup(Sim::new("demo", epochs, L))
    }

    /// `gov.toml` for `data/` and `chain/`, with extra lines in `[chain]` and `[rpc]`.
    fn config(&self, chain_extra: &str, rpc_extra: &str) -> PathBuf {
        std::fs::create_dir_all(self.path("chain")).unwrap();
        Config::new(&self.dir, L)
            .chain_extra(chain_extra)
            .rpc_extra(rpc_extra)
            .write(&self.path("gov.toml"))
    }

    fn append(&self, bytes: &str) {
        append(&self.path(FILE), bytes.as_bytes());
    }

    fn append_epochs(&self, epochs: std::ops::Range<usize>) {
        self.append(&self.lines[epochs.start * L..epochs.end * L].concat());
    }

    fn start(&self, cfg: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_env(cfg, &self.path("daemon.log"), env)
    }

    fn decision(&self, epoch: u64) -> PathBuf {
        self.path(&format!("data/decisions/epoch-{epoch:020}.json"))
    }

    fn sidecar(&self, epoch: u64) -> PathBuf {
        self.path(&format!("data/decisions/epoch-{epoch:020}.json.sig"))
    }
}

fn signing_env() -> [(&'static str, &'static str); 2] {
    [("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", KEY)]
}

fn journal(s: &Setup) -> Vec<Value> {
    std::fs::read_to_string(s.path("data/journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Stops the daemon with SIGTERM (it finishes the write in progress, checkpoint included).
fn stop(mut d: Daemon) {
    d.signal("TERM");
    let status = d.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", d.stderr());
}

/// `GET path` on the daemon.
fn get(d: &Daemon, path: &str) -> crate::support::HttpResponse {
    let r = http_request(&d.addr, "GET", path, &[], b"").unwrap();
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r
}

/// The value of the sample `series` (name with labels, exactly as exported) in `/metrics`.
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// The sample lines of `/metrics` as (name, labels, value); labels here never hold escapes.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, String)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => {
                    let inner = rest.strip_suffix('}').unwrap();
                    let labels = inner
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once("=\"").unwrap();
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (n.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            (name, labels, value.to_owned())
        })
        .collect()
}

/// Receipts per `market` value in chain `lines`.
fn receipts_by_market(lines: &[String]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in lines {
        let block: Value = serde_json::from_str(line).unwrap();
        for r in block["receipts"].as_array().unwrap() {
            *out.entry(r["market"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Re-signing old decisions (auditing step 4).

#[test]
fn signing_turned_on_signs_old_decisions_at_start_and_offline() {
    let s = Setup::new(5);
    let cfg = s.config("", "");
    s.append_epochs(0..3);
    let d = s.start(&cfg, &[]);
    let st = d.wait_closed(2);
    let hint = st["release_provenance"]["hint"].as_str().unwrap();
    assert!(hint.starts_with("decisions are unsigned"), "{hint}");
    assert!(hint.contains("tb-governor sign --decisions"), "{hint}");
    // The snapshot command names the attestation state and the exact fix.
    let r = d.cli(&["snapshot", "--epoch", "1"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.contains("missing (no .sig sidecar)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("TB_GOVERNOR_SIGN=1 and TB_NODE_KEY_HEX=<key>"),
        "{}",
        r.stdout
    );
    let decisions_dir = s.path("data/decisions");
    assert!(
        r.stdout.contains(&format!(
            "tb-governor sign --decisions {}",
            decisions_dir.display()
        )),
        "{}",
        r.stdout
    );
    assert_eq!(
        d.cli_json(&["snapshot", "--epoch", "1"])["attestation_state"],
        "missing"
    );
    stop(d);

    // A copy for the offline command, and a sidecar made by another key for epoch 0: existing
    // sidecars are never replaced.
    let copy = s.path("copy");
    std::fs::create_dir_all(&copy).unwrap();
    let before: Vec<Vec<u8>> = (0..=2)
        .map(|e| std::fs::read(s.decision(e)).unwrap())
        .collect();
    for (e, bytes) in before.iter().enumerate() {
        std::fs::write(copy.join(format!("epoch-{e:020}.json")), bytes).unwrap();
    }
    let other = tb_decisions::Signer::from_seed([9; 32]);
    let foreign = other.attest(&before[0]).to_bytes();
    std::fs::write(s.sidecar(0), &foreign).unwrap();

    // Restart with signing on: by the time it listens, every decision file has its sidecar.
    let d = s.start(&cfg, &signing_env());
    for e in 0..=2 {
        assert!(s.sidecar(e).exists(), "epoch {e} unsigned after start");
    }
    assert_eq!(std::fs::read(s.sidecar(0)).unwrap(), foreign, "replaced");
    for (e, bytes) in before.iter().enumerate() {
        assert_eq!(&std::fs::read(s.decision(e as u64)).unwrap(), bytes);
    }
    let log = d.stderr();
    assert!(
        log.contains("signed the decision files that had no attestation signed=2 first=1 last=2"),
        "{log}"
    );
    let st = d.status();
    let hint = st["release_provenance"]["hint"].as_str().unwrap();
    assert!(hint.starts_with("Attestation matches (epoch 2"), "{hint}");
    assert!(!hint.contains("unsigned"), "{hint}");
    assert_eq!(st["release_provenance"]["verified"], true);
    let r = d.cli(&["snapshot", "--epoch", "1"]);
    assert!(r.stdout.contains("(matches)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("hint: Attestation matches"),
        "{}",
        r.stdout
    );
    let pk = node_public_key();
    let other_pk = other.public_key_hex();
    let dir = decisions_dir.to_str().unwrap();
    let v = run(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            dir,
            "--trusted-key",
            &pk,
            "--trusted-key",
            &other_pk,
        ],
        &s.dir,
        &[],
    );
    assert_eq!(v.code, Some(0), "{v:?}");
    assert!(v.stdout.contains("verified 3 epochs: 3 match"), "{v:?}");
    // Later epochs are signed as they close.
    s.append_epochs(3..4);
    d.wait_closed(3);
    assert!(s.sidecar(3).exists());
    stop(d);

    // The same, offline, for the copied directory.
    let copy_dir = copy.to_str().unwrap();
    let r = run(
        "tb-governor",
        &["sign", "--decisions", copy_dir],
        &s.dir,
        &[("TB_NODE_KEY_HEX", KEY)],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("signed 3 decision files"), "{}", r.stdout);
    let r = run(
        "tb-governor",
        &["sign", "--decisions", copy_dir],
        &s.dir,
        &[("TB_NODE_KEY_HEX", KEY)],
    );
    assert!(r.stdout.contains("nothing to sign"), "{r:?}");
    let v = run(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            copy_dir,
            "--trusted-key",
            &pk,
        ],
        &s.dir,
        &[],
    );
    assert_eq!(v.code, Some(0), "{v:?}");
    // Without a key the command refuses, naming the variables.
    let r = run(
        "tb-governor",
        &["sign", "--decisions", copy_dir],
        &s.dir,
        &[],
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("TB_NODE_KEY_HEX"), "{}", r.stderr);

    // A key without TB_GOVERNOR_SIGN=1 signs nothing, and the log says so.
    let d = s.start(&cfg, &[("TB_NODE_KEY_HEX", KEY)]);
    let log = d.stderr();
    assert!(
        log.contains("TB_NODE_KEY_HEX (signing.key_hex) is set but signing is off"),
        "{log}"
    );
    assert!(!log.contains(KEY), "the key must never be logged");
}

#[test]
fn a_decision_file_changed_underneath_is_not_signed_and_stalls() {
    let s = Setup::new(4);
    let cfg = s.config("", "");
    s.append_epochs(0..4);
    let d = s.start(&cfg, &[]);
    d.wait_caught_up(3, 4 * L as u64 - 1);
    stop(d);
    // Epoch 1's file is changed underneath: epoch 2 no longer links to it.
    let tampered = std::fs::read_to_string(s.decision(1)).unwrap().replacen(
        "\"mode\":\"shadow\"",
        "\"mode\":\"paused\"",
        1,
    );
    std::fs::write(s.decision(1), &tampered).unwrap();
    let copy = s.path("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in 0..=3u64 {
        std::fs::copy(s.decision(e), copy.join(format!("epoch-{e:020}.json"))).unwrap();
    }

    let d = s.start(&cfg, &signing_env());
    let st = d.status();
    let stall = st["ingest"]["stall"].as_str().unwrap_or_default();
    assert!(
        stall.starts_with("halted: the decision chain does not verify at epoch 2"),
        "{st}"
    );
    assert!(
        stall.contains("3 unsigned decision files from epoch 1 on were not signed"),
        "{stall}"
    );
    // Epoch 1 changed (or epoch 2 did): neither is signed, nor anything after them.
    assert!(s.sidecar(0).exists());
    for e in 1..=3 {
        assert!(!s.sidecar(e).exists(), "epoch {e} signed");
    }
    assert_eq!(std::fs::read_to_string(s.decision(1)).unwrap(), tampered);
    let hint = st["release_provenance"]["hint"].as_str().unwrap();
    assert!(hint.contains("unsigned although signing is on"), "{hint}");
    assert!(hint.contains("2 other epochs are unsigned"), "{hint}");
    let r = d.cli(&["status"]);
    assert!(
        r.stdout
            .contains("STALLED: halted: the decision chain does not verify at epoch 2"),
        "{r:?}"
    );
    assert!(
        d.stderr().lines().any(|l| l.contains(" ERROR ")
            && l.contains("the decision chain does not verify")
            && l.contains(" epoch=2 ")),
        "{}",
        d.stderr()
    );

    // The offline command refuses the same file and says which.
    let r = run(
        "tb-governor",
        &["sign", "--decisions", copy.to_str().unwrap()],
        &s.dir,
        &[("TB_NODE_KEY_HEX", KEY)],
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout
            .contains("NOT SIGNED from epoch 1: the decision chain does not verify at epoch 2"),
        "{}",
        r.stdout
    );
    assert!(copy.join(format!("epoch-{:020}.json.sig", 0)).exists());
    assert!(!copy.join(format!("epoch-{:020}.json.sig", 1)).exists());
}

// ---------------------------------------------------------------------------------------------
// 2. Receipt health as the runbook names it.

#[test]
fn receipt_health_and_backlog_under_the_runbook_names() {
    let s = Setup::new(6);
    let cfg = s.config("", "");
    s.append_epochs(0..3);
    let d = s.start(&cfg, &[]);
    let st = d.wait_caught_up(2, 3 * L as u64 - 1);
    let h = &st["receipt_health"];
    let rej = |k: &str| h["rejected"][k].as_u64().unwrap_or(0);
    let validation = rej("below_min_payment")
        + rej("key_not_found")
        + rej("replayed_nonce")
        + rej("invalid_values");
    assert!(
        rej("bad_signature") > 0 && validation > 0 && rej("schema") > 0,
        "{h}"
    );
    assert_eq!(h["signature_mismatch_total"], rej("bad_signature"), "{h}");
    assert_eq!(h["validation_failure_total"], validation, "{h}");
    assert_eq!(h["decoding_failure_total"], rej("schema"), "{h}");
    assert_eq!(h["drain_depth"], 0, "{h}");
    let m = get(&d, "/metrics").body;
    let num = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("{series}:\n{m}"));
    assert_eq!(
        num("receipt_aggregate_sig_mismatch_total"),
        rej("bad_signature").to_string()
    );
    assert_eq!(
        num("receipt_validation_failures_total"),
        validation.to_string()
    );
    assert_eq!(
        num("receipt_decoding_failures_total"),
        rej("schema").to_string()
    );
    for g in [
        "pending_receipts_storage",
        "pending_receipts_compute",
        "pending_receipts_energy",
        "receipt_drain_depth",
    ] {
        assert_eq!(num(g), "0", "{g}");
    }
    // No source in tb.chain.v1: not exported at all (docs/operations.md says why).
    assert!(!m.contains("receipt_header_mismatch"), "{m}");
    assert!(!m.contains("receipt_shard_diversity_violation"), "{m}");
    let text = d.cli(&["status"]).stdout;
    for row in [
        "signature_mismatch_total",
        "validation_failure_total",
        "decoding_failure_total",
        "pending_receipts",
        "receipt_drain_depth",
    ] {
        assert!(text.contains(row), "{row}:\n{text}");
    }

    // A bad line with complete lines behind it: those receipts are pending, per market.
    let good = s.lines[3 * L].clone();
    let bad = good.replacen("{\"height\":60,", "{\"height\":61,", 1);
    assert_ne!(good, bad);
    let behind = &s.lines[3 * L..5 * L];
    let want = receipts_by_market(behind);
    let total: u64 = want.values().sum();
    s.append(&bad);
    s.append(&s.lines[3 * L + 1..5 * L].concat());
    let st = d.wait_status("the stall and its backlog", |st| {
        st["ingest"]["stall"].is_string() && st["receipt_health"]["drain_depth"] == total
    });
    let h = &st["receipt_health"];
    assert_eq!(h["pending_storage"], want["storage"], "{h}");
    assert_eq!(h["pending_compute"], want["compute"], "{h}");
    assert_eq!(h["pending_energy"], want["energy"], "{h}");
    let hints: Vec<&str> = h["hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        hints
            .iter()
            .any(|h| h.contains("wait behind the stall") && h.contains(":61:")),
        "{hints:?}"
    );
    let m = get(&d, "/metrics").body;
    assert_eq!(
        sample(&m, "pending_receipts_storage").unwrap(),
        want["storage"].to_string()
    );
    assert_eq!(
        sample(&m, "receipt_drain_depth").unwrap(),
        total.to_string()
    );

    // The exporter rewrites the line: ingestion resumes and the backlog drains to zero.
    let fixed = s.lines[..5 * L].concat();
    let tmp = s.path("chain/.rewrite");
    std::fs::write(&tmp, fixed).unwrap();
    std::fs::rename(&tmp, s.path(FILE)).unwrap();
    let st = d.wait_status("the backlog to drain", |st| {
        st["last_closed_epoch"] == 4
            && st["ingest"]["stall"].is_null()
            && st["receipt_health"]["drain_depth"] == 0
    });
    assert_eq!(st["receipt_health"]["pending_storage"], 0, "{st}");
    let m = get(&d, "/metrics").body;
    assert_eq!(sample(&m, "receipt_drain_depth").unwrap(), "0");
}

// ---------------------------------------------------------------------------------------------
// 3. GET /wrappers.

#[test]
fn wrappers_summarise_every_exported_series_with_the_snapshot_hash() {
    let s = Setup::new(8);
    let cfg = s.config("", "");
    s.append_epochs(0..3);
    let d = s.start(&cfg, &[]);
    let st = d.wait_caught_up(2, 3 * L as u64 - 1);
    let metrics = get(&d, "/metrics").body;
    let w = get(&d, "/wrappers");
    assert_eq!(w.header("content-type"), Some("application/json"));
    let body = w.json();
    let hash = body["hash"].as_str().unwrap();
    assert_eq!(w.header("x-wrappers-blake3"), Some(hash));
    let summary = &body["summary"];
    // The hash covers the summary's canonical (JCS) bytes, which the body carries verbatim.
    let jcs = serde_json_canonicalizer::to_vec(summary).unwrap();
    assert_eq!(tb_decisions::hash_hex(&jcs), hash);
    assert!(w.body.contains(std::str::from_utf8(&jcs).unwrap()));
    assert_eq!(summary["schema"], "tb.governor.wrappers.v1");
    assert_eq!(summary["last_closed_epoch"], 2);
    let decision: Value = serde_json::from_slice(&std::fs::read(s.decision(2)).unwrap()).unwrap();
    assert_eq!(
        summary["last_economics_snapshot_hash"],
        decision["snapshot_hash"]
    );
    assert_eq!(
        summary["last_economics_snapshot_hash"],
        st["last_economics_snapshot_hash"]
    );
    // Every series of /metrics, with the same value (no RPC call happened in between).
    let exported = samples(&metrics);
    let listed: Vec<(String, BTreeMap<String, String>, String)> = summary["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let labels = m["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                m["name"].as_str().unwrap().to_owned(),
                labels,
                m["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = exported.clone();
    sorted.sort();
    // The process gauges (CPU time, memory, open files) are read from the OS at each scrape, so
    // their values move between the two requests: compare their names and labels only.
    let steady = |v: &[(String, BTreeMap<String, String>, String)]| {
        v.iter()
            .map(|(n, l, value)| {
                let value = if n.starts_with("process_") {
                    String::new()
                } else {
                    value.clone()
                };
                (n.clone(), l.clone(), value)
            })
            .collect::<Vec<_>>()
    };
    assert!(listed.iter().any(|(n, _, _)| n == "process_open_fds"));
    assert_eq!(steady(&listed), steady(&sorted));
    assert!(listed
        .iter()
        .any(|(n, _, v)| n == "governor_last_closed_epoch" && v == "2"));
    // The snapshot the hash names is the one an auditor fetches and b3sums.
    let out = s.path("snap.json");
    let r = d.cli(&["snapshot", "--epoch", "2", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        tb_decisions::hash_hex(&std::fs::read(&out).unwrap()),
        summary["last_economics_snapshot_hash"].as_str().unwrap()
    );

    // While epochs close one after another, every summary shows the gauges of the close whose
    // snapshot hash it names: never two closes mixed.
    let value = |summary: &Value, name: &str| {
        summary["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name && m["labels"].as_object().unwrap().is_empty())
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let mut seen = std::collections::BTreeSet::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for e in 3..8 {
                s.append_epochs(e..e + 1);
                d.wait_closed(e as u64);
            }
        });
        wait_until(
            "epoch 7 in /wrappers",
            DEADLINE,
            || {
                let summary = get(&d, "/wrappers").json()["summary"].take();
                let epoch = summary["last_closed_epoch"].as_u64().unwrap();
                let file: Value =
                    serde_json::from_slice(&std::fs::read(s.decision(epoch)).unwrap()).unwrap();
                assert_eq!(
                    summary["last_economics_snapshot_hash"], file["snapshot_hash"],
                    "epoch {epoch}"
                );
                assert_eq!(
                    value(&summary, "governor_last_closed_epoch"),
                    epoch.to_string()
                );
                assert_eq!(
                    value(&summary, "economics_epoch_tx_count"),
                    file["snapshot"]["tx_count"].to_string()
                );
                seen.insert(epoch);
                (epoch == 7).then_some(())
            },
            || d.stderr(),
        );
    });
    assert!(seen.len() >= 2, "{seen:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. BlockTorch budget.

#[test]
fn proof_budget_is_exported_and_the_timeline_reads_in_runbook_order() {
    let s = Setup::new(3);
    let cfg = s.config("proof_verification_budget_ms = 777", "");
    s.append_epochs(0..3);
    let d = s.start(&cfg, &[]);
    let st = d.wait_caught_up(2, 3 * L as u64 - 1);
    let m = get(&d, "/metrics").body;
    assert!(
        m.contains("# TYPE proof_verification_budget_ms gauge"),
        "{m}"
    );
    assert_eq!(sample(&m, "proof_verification_budget_ms").unwrap(), "777");
    let b = &st["blocktorch"];
    assert_eq!(b["budget_ms"], 777, "{b}");
    let p95 = b["proof_latency_p95_ms"].as_u64().unwrap();
    assert_eq!(
        sample(&m, "proof_verification_latency_ms{stat=\"p95\"}").unwrap(),
        p95.to_string()
    );
    let text = d.cli(&["status"]).stdout;
    let start = text.find("BlockTorch job timeline").unwrap();
    let timeline: Vec<&str> = text[start..].lines().map(str::trim).collect();
    let expected = [
        "BlockTorch job timeline".to_owned(),
        "header              epoch 2".to_owned(),
        format!(
            "→ kernel digest     {}",
            b["kernel_digest"].as_str().unwrap()
        ),
        format!(
            "→ benchmark commit  {}",
            b["benchmark_commit"].as_str().unwrap()
        ),
        format!("→ proof latency     p95 {p95} ms (budget 777 ms)"),
        format!(
            "→ aggregator trace  {}",
            b["aggregator_trace"].as_str().unwrap()
        ),
    ];
    assert_eq!(&timeline[..expected.len()], &expected[..], "{text}");
}

// ---------------------------------------------------------------------------------------------
// 5. Mode changes through the environment are attributed.

#[test]
fn mode_changes_through_the_environment_are_journaled_with_the_variable() {
    let s = Setup::new(2);
    let cfg = s.config("", "");
    s.append_epochs(0..1);
    let d = s.start(&cfg, &[]);
    d.wait_closed(0);
    stop(d);

    // Apply mode through TB_GOVERNOR_SHADOW_ONLY=0 while the file says shadow.
    let d = s.start(&cfg, &[("TB_GOVERNOR_SHADOW_ONLY", "0")]);
    assert_eq!(d.status()["mode"], "apply");
    let events = journal(&s);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["kind"], "set_mode");
    assert_eq!(events[1]["mode"], "apply");
    assert_eq!(events[1]["operator"], "env:TB_GOVERNOR_SHADOW_ONLY");
    assert_eq!(
        events[1]["reason"],
        "environment: TB_GOVERNOR_SHADOW_ONLY=0"
    );
    let log = d.stderr();
    assert!(
        log.contains(
            "mode set through the environment: journaled set_mode mode=apply \
             journal_mode=shadow env=TB_GOVERNOR_SHADOW_ONLY=0"
        ),
        "{log}"
    );
    assert!(
        !log.contains("WARN"),
        "a deliberate change is no warning:\n{log}"
    );

    // SIGHUP says that the environment overrides the file, and journals nothing new.
    d.signal("HUP");
    wait_until(
        "the SIGHUP override message",
        DEADLINE,
        || d.stderr().contains("configuration reloaded").then_some(()),
        || d.stderr(),
    );
    let log = d.stderr();
    assert!(
        log.lines().any(|l| l.contains(" WARN ")
            && l.contains("SIGHUP: the process environment overrides the configuration's mode")
            && l.contains(" env=TB_GOVERNOR_SHADOW_ONLY=0 config=")
            && l.ends_with(" config_mode=shadow mode=apply")),
        "{log}"
    );
    assert_eq!(journal(&s).len(), 2);
    stop(d);

    // Rollback step 1: TB_GOVERNOR_ENABLED=0 pauses, attributed the same way.
    let d = s.start(&cfg, &[("TB_GOVERNOR_ENABLED", "0")]);
    let st = d.status();
    assert_eq!(
        (st["mode"].as_str(), st["enabled"].as_bool()),
        (Some("paused"), Some(false))
    );
    let events = journal(&s);
    assert_eq!(events[2]["operator"], "env:TB_GOVERNOR_ENABLED");
    assert_eq!(events[2]["reason"], "environment: TB_GOVERNOR_ENABLED=0");
    stop(d);

    // Back to the file alone: the configuration's mode, by the daemon, with the warning.
    let d = s.start(&cfg, &[]);
    assert_eq!(d.status()["mode"], "shadow");
    let events = journal(&s);
    assert_eq!(events[3]["operator"], "tb-governor");
    assert!(
        d.stderr().lines().any(|l| l.contains(" WARN ")
            && l.contains("journaling set_mode with the configuration's mode")
            && l.ends_with(" mode=shadow journal_mode=paused")),
        "{}",
        d.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Rollback step 3.

#[test]
fn exits_outside_apply_mode_say_how_to_reach_it_and_status_confirms_the_autopilot() {
    let s = Setup::new(7);
    let cfg = s.config("", &format!("token = {TOKEN:?}"));
    s.append_epochs(0..3);
    let d = s.start(&cfg, &[]);
    d.wait_closed(2);
    let tb_cli = |args: &[&str]| {
        let mut all = vec!["governor"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--rpc", &d.url]);
        let r = run("tb-cli", &all, &s.dir, &[("TB_GOVERNOR_RPC_TOKEN", TOKEN)]);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        r.stdout
    };
    assert!(
        tb_cli(&["status"]).contains("economics_autopilot=false"),
        "shadow mode never sets params"
    );
    let out = tb_cli(&[
        "exit",
        "--gate",
        "storage",
        "--reason",
        "drill",
        "--operator",
        "ops",
    ]);
    assert!(out.starts_with("journaled manual exit of storage"), "{out}");
    assert!(out.contains("the governor is in shadow mode"), "{out}");
    assert!(out.contains("change only in apply mode"), "{out}");
    assert!(out.contains("tb-cli governor mode apply"), "{out}");

    // Apply mode: the first apply close sets params to shadow_params (the autopilot entered).
    tb_cli(&[
        "mode",
        "apply",
        "--reason",
        "launch review",
        "--operator",
        "ops",
    ]);
    s.append_epochs(3..5);
    d.wait_closed(4);
    assert!(tb_cli(&["status"]).contains("economics_autopilot=true"));

    // An exit in apply mode needs no note; the autopilot is off after its close.
    let out = tb_cli(&[
        "exit",
        "--gate",
        "economics",
        "--reason",
        "anomaly",
        "--operator",
        "ops",
    ]);
    assert!(!out.contains("note:"), "{out}");
    s.append_epochs(5..6);
    d.wait_closed(5);
    let text = tb_cli(&["status"]);
    assert!(
        text.contains("autopilot          economics_autopilot=false"),
        "{text}"
    );

    // Paused: the note says the exit would be ignored.
    tb_cli(&["mode", "paused", "--reason", "freeze", "--operator", "ops"]);
    let out = tb_cli(&[
        "exit",
        "--gate",
        "compute",
        "--reason",
        "drill",
        "--operator",
        "ops",
    ]);
    assert!(out.contains("the governor is paused"), "{out}");
    assert!(out.contains("paused close is ignored"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// 7. The Block's own CLI.
//
// The structs mirror what `contract-cli` (cli/src/governor.rs, cli/src/rpc.rs) requires: its
// deserializer needs every member that has no `#[serde(default)]`, `Option`s included, so such
// members are required here too (`deserialize_with` makes serde refuse a missing field).
// Unknown members are ignored, as there.

#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
struct CliEnvelope<T> {
    #[serde(deserialize_with = "Option::deserialize")]
    result: Option<T>,
    #[serde(deserialize_with = "Option::deserialize")]
    error: Option<CliError>,
}

#[derive(Debug, Deserialize)]
struct CliError {
    code: i64,
    message: String,
}

#[derive(Debug, Deserialize)]
struct CliStatusView {
    enabled: bool,
    epoch: u64,
    window_secs: u64,
    gates: Vec<CliGateView>,
    pending: Vec<CliIntentView>,
    economics_sample: Value,
    #[serde(default)]
    economics_prev_market_metrics: Vec<CliMarketView>,
    autopilot_enabled: bool,
    schema_version: u64,
    #[serde(default)]
    last_economics_snapshot_hash: Option<String>,
    #[serde(default)]
    shadow_only: bool,
    #[serde(default)]
    blocktorch: Option<CliBlockTorchView>,
    #[serde(default)]
    receipt_health: CliReceiptHealthView,
    #[serde(default)]
    release_provenance: Option<CliProvenanceView>,
}

#[derive(Debug, Deserialize)]
struct CliGateView {
    name: String,
    state: String,
    enter_streak: u64,
    exit_streak: u64,
    streak_required: u64,
    last_reason: String,
}

#[derive(Debug, Deserialize)]
struct CliEconomicsView {
    #[serde(default)]
    epoch_tx_count: u64,
    #[serde(default)]
    epoch_tx_volume: u64,
    #[serde(default)]
    epoch_treasury_inflow: u64,
    #[serde(default)]
    block_reward: u64,
    #[serde(default)]
    market_metrics: Vec<CliMarketView>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct CliMarketView {
    market: String,
    utilization_ppm: i64,
    provider_margin_ppm: i64,
}

#[derive(Debug, Deserialize)]
struct CliBlockTorchView {
    #[serde(default)]
    kernel_digest: Option<String>,
    #[serde(default)]
    benchmark_commit: Option<String>,
    #[serde(default)]
    tensor_profile_epoch: Option<String>,
    #[serde(default)]
    proof_latency_ms: Option<f64>,
    #[serde(default)]
    aggregator_trace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CliProvenanceView {
    epoch: u64,
    #[serde(default)]
    snapshot_hash: Option<String>,
    #[serde(default)]
    attestation: Option<CliAttestationView>,
}

#[derive(Debug, Deserialize)]
struct CliAttestationView {
    #[serde(default)]
    pubkey_hex: Option<String>,
    #[serde(default)]
    payload_hash_hex: Option<String>,
    #[serde(default)]
    signature_hex: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct CliReceiptHealthView {
    #[serde(default)]
    signature_mismatch_total: u64,
    #[serde(default)]
    header_mismatch_total: u64,
    #[serde(default)]
    diversity_violation_total: u64,
    #[serde(default)]
    validation_failure_total: u64,
    #[serde(default)]
    decoding_failure_total: u64,
    #[serde(default)]
    pending_storage: i64,
    #[serde(default)]
    pending_compute: i64,
    #[serde(default)]
    pending_energy: i64,
    #[serde(default)]
    drain_depth: i64,
}

#[derive(Debug, Deserialize)]
struct CliIntentView {
    id: String,
    gate: String,
    action: String,
    epoch_apply: u64,
    state: String,
    params_patch: Value,
    metrics: Value,
    reason: String,
    #[serde(default)]
    snapshot_hash_hex: String,
}

/// The hint `contract-cli governor status` prints under release provenance (its logic).
fn cli_provenance_hint(p: &CliProvenanceView) -> &'static str {
    let has_snapshot = p.snapshot_hash.as_deref().is_some_and(|s| !s.is_empty());
    match &p.attestation {
        _ if !has_snapshot => "no snapshot hash",
        Some(a) if a.payload_hash_hex.as_deref() != p.snapshot_hash.as_deref() => {
            "Snapshot hash != attestation payload"
        }
        Some(a) if a.signature_hex.as_deref().is_none_or(str::is_empty) => {
            "Attestation lacks a signature"
        }
        Some(_) => "Attestation matches",
        None => "No attestation recorded",
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/fixtures/contract-cli")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// POSTs raw `body`; returns the raw response text, checked to be a complete envelope.
fn post_envelope<T: for<'de> Deserialize<'de>>(
    d: &Daemon,
    body: &[u8],
) -> (String, CliEnvelope<T>) {
    let r = rpc_post(&d.addr, body).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let env: CliEnvelope<T> = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("contract-cli could not read {}: {e}", r.body));
    (r.body, env)
}

#[test]
fn the_block_contract_cli_reads_status_and_intents() {
    let s = Setup::new(5);
    let cfg = s.config("", "");
    s.append_epochs(0..4);
    let d = s.start(&cfg, &signing_env());
    let ours = d.wait_caught_up(3, 4 * L as u64 - 1);

    // contract-cli governor status --rpc URL
    let (raw, env) = post_envelope::<CliStatusView>(&d, &fixture("governor.status.request.json"));
    assert!(raw.contains("\"error\":null"), "{raw}");
    assert!(env.error.is_none());
    let view = env.result.unwrap();
    assert!(view.enabled);
    assert_eq!(view.epoch, 3);
    assert!(view.window_secs > 0);
    assert_eq!(view.schema_version, ours["rules_version"].as_u64().unwrap());
    assert!(view.shadow_only && !view.autopilot_enabled);
    assert_eq!(
        view.last_economics_snapshot_hash.as_deref(),
        ours["last_economics_snapshot_hash"].as_str()
    );
    let our_gates = ours["gates"].as_array().unwrap();
    assert_eq!(view.gates.len(), our_gates.len());
    for (g, o) in view.gates.iter().zip(our_gates) {
        assert_eq!(g.name, o["name"].as_str().unwrap());
        assert_eq!(g.state, o["state"].as_str().unwrap());
        assert!(["inactive", "active", "rehearsal", "trade"].contains(&g.state.as_str()));
        assert_eq!(
            (g.enter_streak, g.exit_streak),
            (
                o["enter_streak"].as_u64().unwrap(),
                o["exit_streak"].as_u64().unwrap()
            )
        );
        let required = if g.state == "active" {
            "exit_streak_required"
        } else {
            "enter_streak_required"
        };
        assert_eq!(g.streak_required, o[required].as_u64().unwrap());
        assert_eq!(g.last_reason, o["reason"].as_str().unwrap());
    }
    let pending: Vec<&str> = view.pending.iter().map(|i| i.id.as_str()).collect();
    let our_pending: Vec<&str> = ours["pending_intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(pending, our_pending);
    let sample: CliEconomicsView = serde_json::from_value(view.economics_sample.clone()).unwrap();
    let e = &ours["economics"];
    assert_eq!(sample.epoch_tx_count, e["tx_count"].as_u64().unwrap());
    assert_eq!(
        sample.epoch_tx_volume,
        e["tx_volume_micro"].as_u64().unwrap()
    );
    assert_eq!(
        sample.epoch_treasury_inflow,
        e["treasury_inflow_micro"].as_u64().unwrap()
    );
    assert_eq!(
        sample.block_reward,
        e["block_reward_per_block_micro"].as_u64().unwrap()
    );
    assert_eq!(sample.market_metrics, view.economics_prev_market_metrics);
    assert!(!view.economics_prev_market_metrics.is_empty());
    for m in &view.economics_prev_market_metrics {
        let gauge = &ours["telemetry_gauges_ppm"];
        assert_eq!(
            Some(m.utilization_ppm),
            gauge[format!("{}.utilization_ppm", m.market)].as_i64()
        );
        assert_eq!(
            Some(m.provider_margin_ppm),
            gauge[format!("{}.provider_margin_ppm", m.market)].as_i64()
        );
    }
    let b = view.blocktorch.unwrap();
    assert_eq!(
        b.kernel_digest.as_deref(),
        ours["blocktorch"]["kernel_digest"].as_str()
    );
    assert_eq!(
        b.benchmark_commit.as_deref(),
        ours["blocktorch"]["benchmark_commit"].as_str()
    );
    assert_eq!(
        b.aggregator_trace.as_deref(),
        ours["blocktorch"]["aggregator_trace"].as_str()
    );
    assert!(b.tensor_profile_epoch.is_none());
    assert_eq!(
        b.proof_latency_ms.map(|v| v.to_string()),
        ours["blocktorch"]["proof_latency_p95_ms"]
            .as_u64()
            .map(|v| v.to_string())
    );
    let h = &view.receipt_health;
    let oh = &ours["receipt_health"];
    assert_eq!(
        h.signature_mismatch_total,
        oh["signature_mismatch_total"].as_u64().unwrap()
    );
    assert!(h.signature_mismatch_total > 0);
    assert_eq!(
        h.validation_failure_total,
        oh["validation_failure_total"].as_u64().unwrap()
    );
    assert_eq!(
        h.decoding_failure_total,
        oh["decoding_failure_total"].as_u64().unwrap()
    );
    assert_eq!(
        (h.header_mismatch_total, h.diversity_violation_total),
        (0, 0)
    );
    assert_eq!(
        (
            h.pending_storage,
            h.pending_compute,
            h.pending_energy,
            h.drain_depth
        ),
        (0, 0, 0, 0)
    );
    // Release provenance: the decision file's blake3 and its attestation.
    let p = view.release_provenance.unwrap();
    assert_eq!(p.epoch, 3);
    let file_hash = tb_decisions::hash_hex(&std::fs::read(s.decision(3)).unwrap());
    assert_eq!(p.snapshot_hash.as_deref(), Some(file_hash.as_str()));
    let a = p.attestation.as_ref().unwrap();
    assert_eq!(a.pubkey_hex.as_deref(), Some(node_public_key().as_str()));
    assert_eq!(a.payload_hash_hex.as_deref(), Some(file_hash.as_str()));
    assert_eq!(cli_provenance_hint(&p), "Attestation matches");

    // contract-cli governor intents --rpc URL: a bare array of intents, newest first.
    let (raw, env) =
        post_envelope::<Vec<CliIntentView>>(&d, &fixture("governor.decisions.request.json"));
    assert!(raw.contains("\"error\":null"), "{raw}");
    let intents = env.result.unwrap();
    let ours_list = d.cli_json(&["intents", "--limit", "20"]);
    let our_ids: Vec<&str> = ours_list["intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let ids: Vec<&str> = intents.iter().map(|i| i.id.as_str()).collect();
    assert!(!ids.is_empty());
    assert_eq!(ids, our_ids);
    for (i, o) in intents.iter().zip(ours_list["intents"].as_array().unwrap()) {
        assert_eq!(i.gate, o["gate"].as_str().unwrap());
        assert_eq!(i.action, o["action"].as_str().unwrap());
        assert_eq!(i.state, o["state"].as_str().unwrap());
        assert_eq!(i.epoch_apply, o["epoch_apply"].as_u64().unwrap());
        assert_eq!(i.reason, o["reason"].as_str().unwrap());
        assert_eq!(i.metrics, o["metrics"]);
        assert_eq!(i.snapshot_hash_hex, o["snapshot_hash"].as_str().unwrap());
        assert!(i.params_patch.is_object(), "{:?}", i.params_patch);
    }
    let enter = intents
        .iter()
        .find(|i| i.gate == "economics" && i.action == "enter")
        .unwrap();
    assert_eq!(enter.params_patch, json!({"economics_autopilot": true}));
    // [limit] is honoured.
    let (_, env) = post_envelope::<Vec<CliIntentView>>(
        &d,
        br#"{"jsonrpc":"2.0","id":1,"method":"governor.decisions","params":[2]}"#,
    );
    assert_eq!(env.result.unwrap().len(), 2);

    // Errors in the dialect carry "result": null; bad params never hurt the daemon.
    for bad in [
        r#"{"jsonrpc":"2.0","id":1,"method":"governor.decisions","params":[0]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"governor.decisions","params":["x"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"governor.decisions","params":[1,2]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"governor.status","params":[1]}"#,
    ] {
        let (raw, env) = post_envelope::<Value>(&d, bad.as_bytes());
        assert!(raw.contains("\"result\":null"), "{raw}");
        let err = env.error.unwrap();
        assert_eq!(err.code, -32602, "{bad}");
        assert!(!err.message.is_empty());
    }
    // Array params on any other method: -32602, in this product's own envelope.
    let r = rpc_post(
        &d.addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"governor.snapshot","params":[1]}"#,
    )
    .unwrap()
    .json();
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r.get("result").is_none(), "{r}");
    let e = r["error"]["message"].as_str().unwrap();
    assert!(e.contains("named params"), "{e}");
    // Named params keep the product's own shapes and envelope; tb-cli is unchanged.
    let own = rpc_call(&d.addr, "governor.status", json!({}));
    assert!(own.get("error").is_none(), "{own}");
    assert_eq!(own["result"]["last_closed_epoch"], 3);
    let r = rpc_post(
        &d.addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"governor.decisions","params":{"limit":1}}"#,
    )
    .unwrap();
    assert!(!r.body.contains("\"error\""), "{}", r.body);
    assert!(r.json()["result"]["decisions"].is_array());
    assert_eq!(d.status()["last_closed_epoch"], 3);
}

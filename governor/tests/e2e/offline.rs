//! simulate → replay (signed) → verify → audit, and what each does with bad input.

use std::path::Path;

use crate::support::{
    bin, clean_env, on_sim, run, run_expect, tree, wait_until, Lock, Sim, DEADLINE,
};
use tb_decisions::{RecordStore, Signer};

const SEED_HEX: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn public_key() -> String {
    Signer::from_seed_hex(SEED_HEX, "test")
        .unwrap()
        .public_key_hex()
}

/// Simulates `epochs` of the demo scenario and replays it signed into `dir/out`.
fn signed_replay(dir: &Path, epochs: &str) {
    run_expect(
        "tb-governor",
        &[
            "simulate",
            "--out",
            "sim",
            "--scenario",
            "demo",
            "--epochs",
            epochs,
        ],
        dir,
        &[],
        0,
    );
    let r = run_expect(
        "tb-governor",
        &on_sim(&["replay"], &["--out", "out"]),
        dir,
        &[("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", SEED_HEX)],
        0,
    );
    assert!(r.stdout.contains("signed, keyid"), "{}", r.stdout);
}

fn audit(dir: &Path, code: i32) -> String {
    run_expect(
        "tb-cli",
        &on_sim(&["governor", "audit"], &["--decisions", "out/decisions"]),
        dir,
        &[],
        code,
    )
    .stdout
}

#[test]
fn snapshot_files_hash_to_the_printed_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    signed_replay(tmp.path(), "3");
    let r = run_expect(
        "tb-governor",
        &on_sim(&["replay"], &["--out", "again"]),
        tmp.path(),
        &[],
        0,
    );
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("epoch"))
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    for (epoch, line) in lines.iter().enumerate() {
        let printed = line
            .split("snapshot_hash=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let file = tmp
            .path()
            .join(format!("again/snapshots/epoch-{epoch:020}.json"));
        let actual = blake3_hex(&std::fs::read(file).unwrap());
        assert_eq!(printed, actual);
    }
    // A second replay into the same directory writes nothing new and succeeds.
    run_expect(
        "tb-governor",
        &on_sim(&["replay"], &["--out", "again"]),
        tmp.path(),
        &[],
        0,
    );
}

fn blake3_hex(bytes: &[u8]) -> String {
    tb_decisions::hash_hex(bytes)
}

#[test]
fn verify_and_audit_pass_on_a_replays_own_output() {
    let tmp = tempfile::tempdir().unwrap();
    signed_replay(tmp.path(), "3");
    let pk = public_key();
    let r = run_expect(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            "out/decisions",
            "--trusted-key",
            &pk,
        ],
        tmp.path(),
        &[],
        0,
    );
    assert_eq!(
        r.stdout.matches("Attestation matches").count(),
        3,
        "{}",
        r.stdout
    );
    let out = audit(tmp.path(), 0);
    assert_eq!(out.matches("reproduced (decision_hash").count(), 3, "{out}");
    let json = run_expect(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            "out/decisions",
            "--trusted-key",
            &pk,
            "--json",
        ],
        tmp.path(),
        &[],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["epochs"].as_array().unwrap().len(), 3);
}

#[test]
fn an_edited_and_re_signed_decision_passes_verify_but_fails_audit() {
    let tmp = tempfile::tempdir().unwrap();
    signed_replay(tmp.path(), "3");
    let dir = tmp.path().join("out/decisions");
    // Edit one snapshot value of the last epoch and re-sign it with the trusted key.
    let path = dir.join("epoch-00000000000000000002.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let tx = v["snapshot"]["tx_count"].as_u64().unwrap();
    v["snapshot"]["tx_count"] = (tx + 1).into();
    let bytes = serde_json_canonicalizer::to_vec(&v).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let signer = Signer::from_seed_hex(SEED_HEX, "test").unwrap();
    let store = RecordStore::open(&dir, "decision").unwrap();
    std::fs::remove_file(store.sidecar_path(2)).unwrap();
    store
        .write_sidecar(2, &signer.attest(&bytes).to_bytes())
        .unwrap();

    let pk = public_key();
    let r = run_expect(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            "out/decisions",
            "--trusted-key",
            &pk,
        ],
        tmp.path(),
        &[],
        0,
    );
    assert_eq!(
        r.stdout.matches("Attestation matches").count(),
        3,
        "{}",
        r.stdout
    );
    let out = audit(tmp.path(), 1);
    assert!(
        out.contains("epoch 2: DIVERGENCE: first differing field snapshot.tx_count"),
        "{out}"
    );
    assert!(out.contains("epoch 1: reproduced"), "{out}");
}

#[test]
fn tampering_is_reported_per_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    signed_replay(tmp.path(), "3");
    let pk = public_key();
    let dir = tmp.path().join("out/decisions");
    let path = dir.join("epoch-00000000000000000001.json");
    let mut bytes = std::fs::read(&path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let r = run_expect(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            "out/decisions",
            "--trusted-key",
            &pk,
        ],
        tmp.path(),
        &[],
        1,
    );
    assert!(
        r.stdout.contains("epoch 0: Attestation matches"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("epoch 1: FAILED: hash mismatch"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("epoch 2: FAILED: chain broken at epoch 2"),
        "{}",
        r.stdout
    );
    let other = Signer::from_seed([3; 32]).public_key_hex();
    let r = run_expect(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            "out/decisions",
            "--trusted-key",
            &other,
        ],
        tmp.path(),
        &[],
        1,
    );
    assert!(
        r.stdout.contains("epoch 0: FAILED: untrusted key"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Attestation matches"), "{}", r.stdout);
}

#[test]
fn bad_input_gets_a_clear_error_and_a_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    run_expect(
        "tb-governor",
        &["simulate", "--out", "sim", "--epochs", "1"],
        d,
        &[],
        0,
    );
    let replay = |env: &[(&str, &str)]| {
        run(
            "tb-governor",
            &on_sim(&["replay"], &["--out", "out"]),
            d,
            env,
        )
    };
    let r = replay(&[("TB_GOVERNOR_SHADOW_ONLY", "maybe")]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("TB_GOVERNOR_SHADOW_ONLY"), "{}", r.stderr);
    let r = replay(&[("TB_GOVERNOR_SIGN", "1")]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("no key"), "{}", r.stderr);
    let r = replay(&[("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", "abc")]);
    assert_eq!(r.code, Some(2));
    assert!(!r.stderr.contains("abc"), "a secret leaked: {}", r.stderr);
    // A broken block stops the replay with file, line and field.
    let chain = d.join("sim/chain/blocks-000000.jsonl");
    let text = std::fs::read_to_string(&chain).unwrap();
    let broken = text.replacen("\"height\":3,", "\"height\":4,", 1);
    std::fs::write(&chain, broken).unwrap();
    let r = replay(&[]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr
            .contains("blocks-000000.jsonl:4: height: expected 3, found 4"),
        "{}",
        r.stderr
    );
}

/// `kill -9` of a replay between an epoch's snapshot and its decision (the fault
/// `replay-park:<epoch>` stops it there): every file it left is whole and the same as a clean
/// run's, and running it again completes the directory to exactly what a clean run writes, with
/// and without `--durable`.
#[test]
fn a_replay_killed_mid_run_leaves_whole_files_and_a_rerun_completes_them() {
    let sim = Sim::new("demo", 6, 10);
    let d = &sim.dir;
    let replay = |rest: &[&'static str]| on_sim(&["replay", "--epoch-blocks", "10"], rest);
    run_expect("tb-governor", &replay(&["--out", "clean"]), d, &[], 0);
    let clean = tree(&d.join("clean"), Lock::Skip);
    for (out, flags, park) in [("a", &[][..], "3"), ("b", &["--durable"][..], "0")] {
        let args = replay(&[&["--out", out][..], flags].concat());
        let log = d.join(format!("{out}.stderr"));
        let mut cmd = std::process::Command::new(bin("tb-governor"));
        cmd.args(&args)
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let fault = format!("replay-park:{park}");
        let mut child = clean_env(&mut cmd, &[("TB_GOVERNOR_TEST_FAULT", &fault)])
            .spawn()
            .unwrap();
        wait_until(
            "the replay to stop at its fault",
            DEADLINE,
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.contains("fault replay-park").then_some(())
            },
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        child.kill().unwrap();
        assert!(!child.wait().unwrap().success());

        let park: u64 = park.parse().unwrap();
        let left = tree(&d.join(out), Lock::Skip);
        let names = |kind: &str, through: u64| -> Vec<std::path::PathBuf> {
            (0..=through)
                .map(|e| format!("{kind}/epoch-{e:020}.json").into())
                .collect()
        };
        let mut want = names("snapshots", park);
        if park > 0 {
            want.extend(names("decisions", park - 1));
        }
        let mut records: Vec<_> = left
            .iter()
            .filter(|(path, bytes)| bytes.is_some() && !path.starts_with("LOCK"))
            .map(|(path, bytes)| {
                assert_eq!(bytes, &clean[path], "{out}: {} differs", path.display());
                path.clone()
            })
            .collect();
        records.sort();
        want.sort();
        assert_eq!(records, want, "{out}: the files a killed replay left");

        run_expect("tb-governor", &args, d, &[], 0);
        assert_eq!(
            tree(&d.join(out), Lock::Skip),
            clean,
            "{out}: after the rerun"
        );
    }
}

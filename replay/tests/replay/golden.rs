//! A committed golden chain (`tests/fixtures/golden/`, simulated `hostile`, seed 42, 3 epochs of
//! 20 blocks): its snapshot hashes are pinned, guarding determinism across platforms and
//! toolchains, and the simulator must still reproduce its files byte for byte.
//!
//! After an intended change to the simulator or the snapshot, regenerate with
//! `cargo test -p tb-replay --test replay golden::regenerate -- --ignored` and update
//! [`GOLDEN_HASHES`] from the failure message of `golden_chain_replays_to_pinned_hashes`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tb_replay::sim::{self, Scenario, SimConfig};
use tb_replay::{Position, Registry, Replayer};

use crate::common::{feed_all, hashes, replay_config};

/// The snapshot hashes of the golden chain, epoch by epoch.
const GOLDEN_HASHES: [&str; 3] = [
    "c679f7ab648e2547ae2e336d48884cbc53a8d2b530a8377ab3c1b40407d1e1e1",
    "4c137f2f9947f6bd569bf9e11f1336be1e00aaf5aadc75a1a9087d8d44281cd8",
    "30d228ad29da9024f694b2408d82366a1c12a8734f6a71d364e13e0092c4a62b",
];

fn golden_config() -> SimConfig {
    SimConfig {
        scenario: Scenario::Hostile,
        seed: 42,
        epochs: 3,
        epoch_blocks: 20,
        chain_id: "golden".into(),
        genesis_height: 0,
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// Every file under `dir`, as (relative path, bytes), sorted.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
#[ignore = "writes the fixture; run by hand after an intended simulator change"]
fn regenerate() {
    let dir = fixture_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    sim::write_to_dir(&golden_config(), &dir).unwrap();
}

#[test]
fn golden_chain_replays_to_pinned_hashes() {
    let dir = fixture_dir();
    let providers = std::fs::read(dir.join("providers.json")).unwrap();
    let registry = Arc::new(Registry::from_json(&providers).unwrap());
    let mut replayer = Replayer::new(replay_config("golden", 20), registry);
    let closed = feed_all(
        &dir.join("chain"),
        Position::default(),
        &mut replayer,
        1 << 20,
    );
    assert_eq!(hashes(&closed), GOLDEN_HASHES);
    // The snapshots chain to each other and really are hostile.
    for (i, c) in closed.iter().enumerate() {
        assert_eq!(c.snapshot.epoch, i as u64);
        assert_eq!(c.hash, c.snapshot.hash());
        let prev = i.checked_sub(1).map(|p| closed[p].hash.clone());
        assert_eq!(c.snapshot.prev_snapshot_hash, prev);
        let r = &c.snapshot.receipts.rejected;
        let rejected = r.schema
            + r.below_min_payment
            + r.key_not_found
            + r.bad_signature
            + r.replayed_nonce
            + r.invalid_values;
        assert_eq!(rejected, 5, "one hostile receipt every 4th block");
        assert_eq!(c.snapshot.receipts.accepted.slash, 2);
    }
}

#[test]
fn the_simulator_reproduces_the_golden_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    sim::write_to_dir(&golden_config(), a.path()).unwrap();
    sim::write_to_dir(&golden_config(), b.path()).unwrap();
    let generated = files(a.path());
    assert_eq!(
        generated
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>(),
        ["chain/blocks-000000.jsonl", "keys.json", "providers.json"]
    );
    assert!(
        generated == files(b.path()),
        "two runs of the simulator differ"
    );
    let committed = files(&fixture_dir());
    for ((path, want), (got_path, got)) in committed.iter().zip(&generated) {
        assert_eq!(path, got_path);
        assert!(want == got, "{path} differs from the committed fixture");
    }
    assert_eq!(committed.len(), generated.len());
}

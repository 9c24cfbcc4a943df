//! Conformance with the independent implementation's vectors (`tests/vectors/`, see its README):
//! every snapshot byte for byte, and the verdict of every receipt.
//!
//! (Formerly the `conformance` test binary; folded into this one unchanged.)

use std::path::PathBuf;
use std::sync::Arc;

use tb_config::EconomicsConfig;
use tb_replay::{ChainReader, Position, Registry, ReplayConfig, Replayer};

fn vectors(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn config(chain_id: &str) -> ReplayConfig {
    ReplayConfig {
        chain_id: chain_id.to_owned(),
        epoch_blocks: 120,
        genesis_height: 0,
        min_payment_micro: 1_000,
        proof_verification_budget_ms: 100,
        economics: EconomicsConfig::default(),
        verify: true,
    }
}

fn check(name: &str) {
    let dir = vectors(name);
    let registry =
        Registry::from_json(&std::fs::read(dir.join("providers.json")).unwrap()).unwrap();
    let mut replayer = Replayer::new(config(&format!("vector-{name}")), Arc::new(registry));
    let mut reader = ChainReader::open(dir.join("chain"), Position::default());
    let expected_verdicts: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.join("verdicts.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let mut verdict_idx = 0;
    let mut closed = Vec::new();
    loop {
        let batch = reader.next_batch(1 << 20).unwrap();
        if batch.lines.is_empty() {
            break;
        }
        for i in 0..batch.lines.len() {
            let block = replayer.decode(batch.line(i)).unwrap();
            closed.extend(replayer.push(&block).unwrap());
            for (index, verdict) in replayer.verdicts().iter().enumerate() {
                let want = &expected_verdicts[verdict_idx];
                assert_eq!(want["height"], block.height, "{name}: verdict order");
                assert_eq!(want["index"], index as u64, "{name}: verdict order");
                assert_eq!(
                    want["verdict"].as_str().unwrap(),
                    verdict.as_str(),
                    "{name}: receipt {index} at height {} ({})",
                    block.height,
                    want["detail"]
                );
                verdict_idx += 1;
            }
        }
    }
    assert_eq!(
        verdict_idx,
        expected_verdicts.len(),
        "{name}: every verdict seen"
    );
    let mut expected_files: Vec<_> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    expected_files.sort();
    assert_eq!(closed.len(), expected_files.len(), "{name}: epoch count");
    for (epoch, path) in closed.iter().zip(&expected_files) {
        let want = std::fs::read_to_string(path).unwrap();
        let got = String::from_utf8(epoch.canonical.clone()).unwrap();
        assert_eq!(got, want, "{name}: snapshot {}", path.display());
        assert_eq!(
            epoch.hash,
            blake3::hash(want.as_bytes()).to_hex().to_string()
        );
    }
}

#[test]
fn healthy_vector_matches_byte_for_byte() {
    check("healthy");
}

#[test]
fn hostile_vector_matches_byte_for_byte() {
    check("hostile");
}

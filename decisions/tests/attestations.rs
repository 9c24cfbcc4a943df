//! Known answers, tamper detection and chain checks of attested record directories.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use ed25519_dalek::VerifyingKey;
use proptest::prelude::*;
use serde_json::Value;
use tb_decisions::attest::{keyid, pae, PAYLOAD_TYPE};
use tb_decisions::{hash_hex, verify_dir, Problem, RecordStore, Signer};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../replay/tests/vectors/signing-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rfc8032_test_1_through_the_signing_path() {
    let signer = Signer::from_seed_hex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "test",
    )
    .unwrap();
    assert_eq!(
        signer.public_key_hex(),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(
        hex::encode(signer.sign(b"")),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
}

#[test]
fn attestation_vector() {
    let v = &vectors()["attestation"];
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let signer = Signer::from_seed_hex(&s("seed_hex"), "test").unwrap();
    let body = s("body_utf8");
    assert_eq!(pae(PAYLOAD_TYPE, body.as_bytes()), s("pae_utf8").as_bytes());
    let att = signer.attest(body.as_bytes());
    assert_eq!(att.public_key, s("public_key"));
    assert_eq!(att.keyid, s("keyid"));
    assert_eq!(att.payload_blake3, s("payload_blake3"));
    assert_eq!(att.payload_type, s("payload_type"));
    assert_eq!(att.signature, s("signature"));
    let mut pk = [0u8; 32];
    hex::decode_to_slice(s("public_key"), &mut pk).unwrap();
    assert_eq!(keyid(&pk), s("keyid"));
}

/// Three chained, attested records in a fresh directory.
fn chain(signer: &Signer) -> (tempfile::TempDir, RecordStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(dir.path(), "decision").unwrap();
    let mut prev: Option<String> = None;
    for epoch in 0..3u64 {
        let record = serde_json::json!({
            "epoch": epoch, "prev_decision_hash": prev, "schema": "tb.governor.decision.v1",
            "value": format!("payload of epoch {epoch}"),
        });
        let bytes = tb_canonical::to_vec(&record);
        store.write(epoch, &bytes).unwrap();
        store
            .write_sidecar(epoch, &signer.attest(&bytes).to_bytes())
            .unwrap();
        prev = Some(hash_hex(&bytes));
    }
    (dir, store)
}

fn signer() -> Signer {
    Signer::from_seed([7; 32])
}

fn trusted() -> Vec<VerifyingKey> {
    vec![signer().verifying_key()]
}

#[test]
fn an_intact_chain_verifies() {
    let (_d, store) = chain(&signer());
    let checks = verify_dir(&store, &trusted()).unwrap();
    assert_eq!(checks.len(), 3);
    assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
}

#[test]
fn an_untrusted_key_is_reported_as_untrusted() {
    let (_d, store) = chain(&Signer::from_seed([9; 32]));
    let checks = verify_dir(&store, &trusted()).unwrap();
    assert!(checks
        .iter()
        .all(|c| matches!(c.problem, Some(Problem::UntrustedKey { .. }))));
}

#[test]
fn a_missing_middle_file_breaks_the_chain() {
    let (_d, store) = chain(&signer());
    std::fs::remove_file(store.path(1)).unwrap();
    let checks = verify_dir(&store, &trusted()).unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].problem, None);
    assert_eq!(
        checks[1].problem,
        Some(Problem::ChainBroken {
            at: 2,
            detail: "epoch 1 is missing".to_owned()
        })
    );
}

#[test]
fn a_missing_sidecar_is_reported() {
    let (_d, store) = chain(&signer());
    std::fs::remove_file(store.sidecar_path(2)).unwrap();
    let checks = verify_dir(&store, &trusted()).unwrap();
    assert_eq!(checks[2].problem, Some(Problem::MissingSidecar));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Flipping any single byte of any record or sidecar makes that epoch fail.
    #[test]
    fn any_flipped_byte_fails_its_epoch(epoch in 0u64..3, sidecar: bool, pos: prop::sample::Index, bit in 0u8..8) {
        let (_d, store) = chain(&signer());
        let path = if sidecar { store.sidecar_path(epoch) } else { store.path(epoch) };
        let mut bytes = std::fs::read(&path).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        let checks = verify_dir(&store, &trusted()).unwrap();
        let check = checks.iter().find(|c| c.epoch == epoch);
        prop_assert!(check.is_some_and(|c| c.problem.is_some()), "{checks:?}");
    }
}

//! Durable record files for the Launch Governor: one canonical JSON file per epoch, written
//! atomically and never overwritten, chained by hash, and attested by ed25519 sidecars that any
//! standard tool can check. The crate knows nothing about gates: a record is bytes plus the one
//! field it chains on (`prev_decision_hash`).
//!
//! # Layout
//!
//! - [`store`]: atomic, durable, idempotent writes; listing and loading by epoch.
//! - [`diff`]: the first differing field between two JSON documents, for divergence reports.
//! - [`attest`]: signing keys, the DSSE pre-authentication encoding, `.sig` sidecars.
//! - [`verify`]: checking a directory against trusted keys: hash, signature, chain.

pub mod attest;
pub mod diff;
pub mod store;
pub mod verify;

pub use attest::{Attestation, KeyError, Signer};
pub use store::{Attested, Durability, Epochs, Listing, RecordStore, StoreError, WriteOutcome};
pub use verify::{verify_dir, verify_each, EpochCheck, Problem};

/// File name of the record of `epoch`: `epoch-{e:020}.json`.
pub fn record_name(epoch: u64) -> String {
    format!("epoch-{epoch:020}.json")
}

/// File name of the attestation sidecar of `epoch`.
pub fn sidecar_name(epoch: u64) -> String {
    format!("epoch-{epoch:020}.json.sig")
}

/// The epoch a record file name stands for, if it is one.
pub fn parse_record_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("epoch-")?.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// blake3 of `bytes`, lowercase hex: the hash by which records chain.
pub use tb_canonical::hash_hex;

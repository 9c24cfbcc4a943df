//! Checking a record directory against trusted keys: every epoch's hash, signature and link.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::attest::{keyid, pae, Attestation, ATTESTATION_SCHEMA, PAYLOAD_TYPE};
use crate::store::{RecordStore, StoreError};

/// Why an epoch does not verify. The first failing check, in this order, is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No `.sig` sidecar next to the record.
    MissingSidecar,
    /// The sidecar is not a valid attestation (the detail says how).
    MalformedSidecar(String),
    /// Signed by a key that is not trusted.
    UntrustedKey {
        /// The sidecar's keyid.
        keyid: String,
    },
    /// `payload_blake3` is not the record file's hash.
    HashMismatch {
        /// The sidecar's claim.
        claimed: String,
        /// The file's actual hash.
        actual: String,
    },
    /// The signature does not verify under the (trusted) key.
    BadSignature,
    /// `prev_decision_hash` does not link to the previous record.
    ChainBroken {
        /// The epoch whose link fails.
        at: u64,
        /// Why.
        detail: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingSidecar => f.write_str("missing sidecar (no .sig file)"),
            Problem::MalformedSidecar(d) => write!(f, "malformed sidecar: {d}"),
            Problem::UntrustedKey { keyid } => write!(f, "untrusted key (keyid {keyid})"),
            Problem::HashMismatch { claimed, actual } => write!(
                f,
                "hash mismatch: sidecar says payload_blake3={claimed}, file hashes to {actual}"
            ),
            Problem::BadSignature => f.write_str("bad signature"),
            Problem::ChainBroken { at, detail } => {
                write!(f, "chain broken at epoch {at}: {detail}")
            }
        }
    }
}

/// The verdict on one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCheck {
    /// The epoch.
    pub epoch: u64,
    /// blake3 of the record file.
    pub decision_hash: String,
    /// The signing key's id, when the sidecar names one.
    pub keyid: Option<String>,
    /// `None` = "Attestation matches".
    pub problem: Option<Problem>,
}

/// Checks every record in `store` against `trusted` keys, in epoch order.
pub fn verify_dir(
    store: &RecordStore,
    trusted: &[VerifyingKey],
) -> Result<Vec<EpochCheck>, StoreError> {
    verify_each(store, trusted)?.collect()
}

/// [`verify_dir`] one epoch at a time: it holds one record at a time (and, when the epochs have
/// gaps, their numbers), so memory does not grow with the directory.
pub fn verify_each<'a>(
    store: &'a RecordStore,
    trusted: &'a [VerifyingKey],
) -> Result<impl Iterator<Item = Result<EpochCheck, StoreError>> + 'a, StoreError> {
    let mut prev: Option<(u64, String)> = None;
    Ok(store.epochs()?.map(move |epoch| {
        let bytes = store.read(epoch)?.unwrap_or_default();
        let hash = crate::hash_hex(&bytes);
        let sidecar = store.read_sidecar(epoch)?;
        let (keyid, mut problem) = check_sidecar(&bytes, &hash, sidecar.as_deref(), trusted);
        if problem.is_none() {
            problem = check_link(epoch, &bytes, prev.as_ref());
        }
        prev = Some((epoch, hash.clone()));
        Ok(EpochCheck {
            epoch,
            decision_hash: hash,
            keyid,
            problem,
        })
    }))
}

/// Checks one record against its sidecar bytes (no chain link); `None` = attestation matches.
pub fn check_one(body: &[u8], sidecar: &[u8], trusted: &[VerifyingKey]) -> Option<Problem> {
    check_sidecar(body, &crate::hash_hex(body), Some(sidecar), trusted).1
}

fn check_sidecar(
    body: &[u8],
    hash: &str,
    sidecar: Option<&[u8]>,
    trusted: &[VerifyingKey],
) -> (Option<String>, Option<Problem>) {
    let Some(sidecar) = sidecar else {
        return (None, Some(Problem::MissingSidecar));
    };
    let att: Attestation = match serde_json::from_slice(sidecar) {
        Ok(a) => a,
        Err(e) => return (None, Some(Problem::MalformedSidecar(e.to_string()))),
    };
    let kid = Some(att.keyid.clone());
    let malformed = |d: &str| (kid.clone(), Some(Problem::MalformedSidecar(d.to_owned())));
    if att.schema != ATTESTATION_SCHEMA || att.payload_type != PAYLOAD_TYPE {
        return malformed("unknown schema or payload_type");
    }
    let Some(pk) = lower_hex::<32>(&att.public_key) else {
        return malformed("public_key is not 64 lowercase hex characters");
    };
    if keyid(&pk) != att.keyid {
        return malformed("keyid does not match public_key");
    }
    let Some(key) = trusted.iter().find(|k| k.as_bytes() == &pk) else {
        return (kid, Some(Problem::UntrustedKey { keyid: att.keyid }));
    };
    if att.payload_blake3 != hash {
        return (
            kid,
            Some(Problem::HashMismatch {
                claimed: att.payload_blake3,
                actual: hash.to_owned(),
            }),
        );
    }
    let Some(sig) = lower_hex::<64>(&att.signature) else {
        return malformed("signature is not 128 lowercase hex characters");
    };
    let ok = key
        .verify_strict(&pae(PAYLOAD_TYPE, body), &Signature::from_bytes(&sig))
        .is_ok();
    (kid, (!ok).then_some(Problem::BadSignature))
}

/// Decodes lowercase hex of exactly `N` bytes; anything else (uppercase included) is refused,
/// so a sidecar has exactly one valid spelling.
fn lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Checks that the record of `epoch` links to `prev` (the previous record's epoch and hash):
/// epoch 0 has `prev_decision_hash` null, every later epoch the hash of epoch − 1's file.
pub fn check_link(epoch: u64, body: &[u8], prev: Option<&(u64, String)>) -> Option<Problem> {
    let broken = |detail: String| Some(Problem::ChainBroken { at: epoch, detail });
    let claimed = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => v.get("prev_decision_hash").cloned(),
        Err(e) => return broken(format!("record is not JSON: {e}")),
    };
    let claimed = match claimed {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Null) => None,
        _ => return broken("prev_decision_hash missing or not a string".to_owned()),
    };
    match (epoch, prev, claimed) {
        (0, _, None) => None,
        (0, _, Some(_)) => broken("epoch 0 must have prev_decision_hash null".to_owned()),
        (_, Some((p, h)), Some(c)) if *p + 1 == epoch && *h == c => None,
        (_, Some((p, h)), Some(c)) if *p + 1 == epoch => broken(format!(
            "prev_decision_hash {c} is not the hash of epoch {p}'s file ({h})"
        )),
        _ => broken(format!("epoch {} is missing", epoch - 1)),
    }
}

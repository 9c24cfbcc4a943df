//! `tb-cli governor verify`.

use anyhow::{Context, Result};
use ed25519_dalek::VerifyingKey;
use serde_json::json;
use tb_decisions::{verify_each, RecordStore};

use super::report::EpochsJson;
use crate::cli::VerifyArgs;
use crate::{out, outln};

/// Parses a `--trusted-key` value.
pub fn parse_trusted_key(text: &str) -> Result<VerifyingKey> {
    let bytes = tb_replay::decode::parse_hex::<32>(text).with_context(|| {
        format!("--trusted-key {text:?} is not a public key (64 lowercase hex characters)")
    })?;
    VerifyingKey::from_bytes(&bytes)
        .with_context(|| format!("--trusted-key {text} is not a valid ed25519 public key"))
}

/// Verifies the directory; `Ok(false)` when any epoch fails (the caller exits non-zero).
pub fn run(args: &VerifyArgs) -> Result<bool> {
    let trusted = args
        .trusted_keys
        .iter()
        .map(|k| parse_trusted_key(k))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(
        args.decisions.is_dir(),
        "{} is not a directory",
        args.decisions.display()
    );
    let store = RecordStore::open(&args.decisions, "decision")?;
    // One epoch at a time, printed as it is checked: memory does not grow with the directory.
    let mut json = if args.json {
        Some(EpochsJson::begin(&args.decisions, |s| out!("{s}"))?)
    } else {
        None
    };
    let (mut checked, mut failed) = (0usize, 0usize);
    for c in verify_each(&store, &trusted)? {
        let c = c?;
        checked += 1;
        failed += usize::from(c.problem.is_some());
        if let Some(json) = &mut json {
            json.epoch(&json!({
                "epoch": c.epoch,
                "ok": c.problem.is_none(),
                "decision_hash": c.decision_hash,
                "keyid": c.keyid,
                "problem": c.problem.as_ref().map(|p| p.to_string()),
            }))?;
            continue;
        }
        match &c.problem {
            None => outln!(
                "epoch {}: Attestation matches (keyid {}, decision_hash {})",
                c.epoch,
                c.keyid.as_deref().unwrap_or("?"),
                c.decision_hash
            ),
            Some(p) => outln!("epoch {}: FAILED: {p}", c.epoch),
        }
    }
    let ok = failed == 0 && checked > 0;
    if let Some(json) = json {
        json.end(ok);
        return Ok(ok);
    }
    if checked == 0 {
        outln!("no decision files in {}", args.decisions.display());
    } else {
        outln!(
            "verified {checked} epochs: {} match, {failed} failed",
            checked - failed
        );
    }
    Ok(ok)
}

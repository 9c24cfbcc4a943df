//! `tb-cli governor verify`.

use anyhow::{Context, Result};
use ed25519_dalek::VerifyingKey;
use serde_json::json;
use tb_decisions::{verify_dir, RecordStore};

use crate::cli::VerifyArgs;
use crate::outln;

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
    let checks = verify_dir(&store, &trusted)?;
    let failed = checks.iter().filter(|c| c.problem.is_some()).count();
    let ok = failed == 0 && !checks.is_empty();
    if args.json {
        let epochs: Vec<_> = checks
            .iter()
            .map(|c| {
                json!({
                    "epoch": c.epoch,
                    "ok": c.problem.is_none(),
                    "decision_hash": c.decision_hash,
                    "keyid": c.keyid,
                    "problem": c.problem.as_ref().map(|p| p.to_string()),
                })
            })
            .collect();
        let out = json!({ "decisions": args.decisions, "ok": ok, "epochs": epochs });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ok);
    }
    for c in &checks {
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
    if checks.is_empty() {
        outln!("no decision files in {}", args.decisions.display());
    } else {
        outln!(
            "verified {} epochs: {} match, {failed} failed",
            checks.len(),
            checks.len() - failed
        );
    }
    Ok(ok)
}

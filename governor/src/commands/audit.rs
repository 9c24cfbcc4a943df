//! `tb-cli governor audit`: replay offline and compare every decision file byte for byte.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;
use tb_canonical::hash_hex;
use tb_decisions::diff::first_difference;
use tb_decisions::RecordStore;

use super::offline::{load_journal, resolve};
use crate::cli::AuditArgs;
use crate::outln;
use crate::pipeline::replay_decisions;

/// The audit verdict on one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The file is byte-identical to the replay's.
    Reproduced,
    /// The file differs; the first differing field.
    Divergence(String),
    /// The replay produced this epoch but the directory lacks it.
    Missing,
    /// The directory has this epoch but the chain does not reach it.
    NotReproducible,
}

/// Audits; `Ok(false)` when any epoch is not reproduced.
pub fn run(args: &AuditArgs) -> Result<bool> {
    anyhow::ensure!(
        args.decisions.is_dir(),
        "{} is not a directory",
        args.decisions.display()
    );
    let store = RecordStore::open(&args.decisions, "decision")?;
    let inputs = resolve(&args.input)?;
    let journal = load_journal(&args.engine)?;
    let mut findings: BTreeMap<u64, Finding> = BTreeMap::new();
    replay_decisions(&inputs, &journal, args.engine.mode, true, |_, decision| {
        let epoch = decision.decision.epoch;
        let finding = match store.read(epoch)? {
            None => Finding::Missing,
            Some(existing) if existing == decision.bytes => Finding::Reproduced,
            Some(existing) => Finding::Divergence(
                first_difference(&existing, &decision.bytes).unwrap_or_else(|| "(bytes)".into()),
            ),
        };
        findings.insert(epoch, finding);
        Ok(())
    })?;
    for epoch in store.epochs()? {
        findings.entry(epoch).or_insert(Finding::NotReproducible);
    }
    let bad = findings
        .values()
        .filter(|f| **f != Finding::Reproduced)
        .count();
    let ok = bad == 0 && !findings.is_empty();
    if args.json {
        let epochs: Vec<_> = findings
            .iter()
            .map(|(epoch, f)| {
                let (status, field) = match f {
                    Finding::Reproduced => ("reproduced", None),
                    Finding::Divergence(p) => ("divergence", Some(p.as_str())),
                    Finding::Missing => ("missing", None),
                    Finding::NotReproducible => ("not_reproducible", None),
                };
                json!({"epoch": epoch, "status": status, "field": field})
            })
            .collect();
        let out = json!({"decisions": args.decisions, "ok": ok, "epochs": epochs});
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ok);
    }
    for (epoch, f) in &findings {
        match f {
            Finding::Reproduced => {
                let hash = store.read(*epoch)?.map(|b| hash_hex(&b)).unwrap_or_default();
                outln!("epoch {epoch}: reproduced (decision_hash {hash})");
            }
            Finding::Divergence(path) => {
                outln!("epoch {epoch}: DIVERGENCE: first differing field {path}")
            }
            Finding::Missing => outln!(
                "epoch {epoch}: MISSING: the replay closes this epoch but {} has no file for it",
                args.decisions.display()
            ),
            Finding::NotReproducible => outln!(
                "epoch {epoch}: NOT REPRODUCIBLE: the file exists but the chain does not reach this epoch"
            ),
        }
    }
    outln!(
        "audit: {} epochs, {} reproduced, {bad} not reproduced",
        findings.len(),
        findings.len() - bad
    );
    Ok(ok)
}

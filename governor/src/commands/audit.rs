//! `tb-cli governor audit`: replay offline and compare every decision file byte for byte.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tb_canonical::hash_hex;
use tb_decisions::diff::first_difference;
use tb_decisions::RecordStore;

use super::offline::{load_journal, resolve};
use super::report::EpochsJson;
use crate::cli::AuditArgs;
use crate::pipeline::replay_decisions;
use crate::{out, outln};

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

/// Audits; `Ok(false)` when any epoch is not reproduced. Epochs are reported in order as the
/// replay reaches them, merged with the directory's files (both ascending), so memory does not
/// grow with the number of epochs.
pub fn run(args: &AuditArgs) -> Result<bool> {
    anyhow::ensure!(
        args.decisions.is_dir(),
        "{} is not a directory",
        args.decisions.display()
    );
    let store = RecordStore::open(&args.decisions, "decision")?;
    let inputs = resolve(&args.input)?;
    let journal = load_journal(&args.engine)?;
    let mut report = Report::begin(args)?;
    let mut on_disk = store.epochs()?.peekable();
    replay_decisions(&inputs, &journal, args.engine.mode, true, |_, decision| {
        let epoch = decision.decision.epoch;
        // Files of epochs the replay went past without closing them.
        while let Some(skipped) = on_disk.next_if(|e| *e < epoch) {
            report.add(skipped, &Finding::NotReproducible, None)?;
        }
        on_disk.next_if_eq(&epoch);
        match store.read(epoch)? {
            None => report.add(epoch, &Finding::Missing, None),
            Some(existing) if existing == decision.bytes => {
                report.add(epoch, &Finding::Reproduced, Some(&existing))
            }
            Some(existing) => {
                let field = first_difference(&existing, &decision.bytes)
                    .unwrap_or_else(|| "(bytes)".into());
                report.add(epoch, &Finding::Divergence(field), None)
            }
        }
    })?;
    for beyond in on_disk {
        report.add(beyond, &Finding::NotReproducible, None)?;
    }
    Ok(report.end())
}

/// The audit's output, printed one epoch at a time, and its tally.
struct Report<'a> {
    /// The decision directory, for the messages.
    decisions: &'a Path,
    /// The `--json` printer; none for text.
    json: Option<EpochsJson<fn(&str)>>,
    /// Epochs reported.
    epochs: usize,
    /// Epochs not reproduced.
    bad: usize,
}

impl<'a> Report<'a> {
    fn begin(args: &'a AuditArgs) -> Result<Self> {
        let print: fn(&str) = |s| out!("{s}");
        Ok(Report {
            decisions: &args.decisions,
            json: if args.json {
                Some(EpochsJson::begin(&args.decisions, print)?)
            } else {
                None
            },
            epochs: 0,
            bad: 0,
        })
    }

    /// Reports `epoch`; `bytes`, its file, when reproduced.
    fn add(&mut self, epoch: u64, f: &Finding, bytes: Option<&[u8]>) -> Result<()> {
        self.epochs += 1;
        self.bad += usize::from(*f != Finding::Reproduced);
        if let Some(json) = &mut self.json {
            let (status, field) = match f {
                Finding::Reproduced => ("reproduced", None),
                Finding::Divergence(p) => ("divergence", Some(p.as_str())),
                Finding::Missing => ("missing", None),
                Finding::NotReproducible => ("not_reproducible", None),
            };
            return json.epoch(&json!({"epoch": epoch, "status": status, "field": field}));
        }
        match f {
            Finding::Reproduced => {
                let hash = bytes.map(hash_hex).unwrap_or_default();
                outln!("epoch {epoch}: reproduced (decision_hash {hash})");
            }
            Finding::Divergence(path) => {
                outln!("epoch {epoch}: DIVERGENCE: first differing field {path}")
            }
            Finding::Missing => outln!(
                "epoch {epoch}: MISSING: the replay closes this epoch but {} has no file for it",
                self.decisions.display()
            ),
            Finding::NotReproducible => outln!(
                "epoch {epoch}: NOT REPRODUCIBLE: the file exists but the chain does not reach this epoch"
            ),
        }
        Ok(())
    }

    /// Prints the end of the report; whether every epoch was reproduced.
    fn end(self) -> bool {
        let ok = self.bad == 0 && self.epochs > 0;
        match self.json {
            Some(json) => json.end(ok),
            None => outln!(
                "audit: {} epochs, {} reproduced, {} not reproduced",
                self.epochs,
                self.epochs - self.bad,
                self.bad
            ),
        }
        ok
    }
}

//! `tb-governor replay`: the offline one-shot replay.

use std::sync::mpsc::{self, TrySendError};

use anyhow::{bail, Result};
use tb_decisions::store::remove_temp_files;
use tb_decisions::{Durability, RecordStore, Signer};
use tb_replay::ClosedEpoch;

use super::offline::{load_journal, resolve};
use crate::cli::ReplayArgs;
use crate::daemon::datadir::DataDirLock;
use crate::daemon::fault;
use crate::pipeline::replay_decisions;
use crate::signing::load_signer;
use crate::{errln, outln};

/// One human line per closed epoch: hash, accepted and rejected counts.
pub fn epoch_line(c: &ClosedEpoch) -> String {
    let s = &c.snapshot;
    let accepted = s.receipts.accepted_total();
    let rejected = s.receipts.rejected_by_reason();
    let total = s.receipts.rejected_total();
    let detail: Vec<String> = rejected
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", detail.join(" "))
    };
    format!(
        "epoch {:>6}  heights {}..={}  snapshot_hash={}  accepted={} rejected={}{}",
        s.epoch, s.first_height, s.last_height, c.hash, accepted, total, detail
    )
}

/// Epochs written between two flushes of the output in the background.
const FLUSH_EVERY: u64 = 16;

/// Runs `tb-governor replay`.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let inputs = resolve(&args.input)?;
    let journal = load_journal(&args.engine)?;
    let signer: Option<Signer> = load_signer(&inputs.config)?;
    // --out may be a daemon's data directory: never write into one another process is using.
    let mut out_lock = DataDirLock::acquire(&args.out)?;
    out_lock.record_pid()?;
    let durability = if args.durable {
        Durability::EachWrite
    } else {
        Durability::AtFlush
    };
    let snapshots =
        RecordStore::open(args.out.join("snapshots"), "snapshot")?.with_durability(durability);
    let decisions =
        RecordStore::open(args.out.join("decisions"), "decision")?.with_durability(durability);
    // Holding the lock makes this the directories' only writer: what an earlier run that was
    // killed mid-write left in their temp directories is garbage.
    for store in [&snapshots, &decisions] {
        remove_temp_files(&store.temp_dir())?;
    }
    let park_at: Option<u64> = fault::requested("replay-park").and_then(|e| e.parse().ok());
    let mut epochs = 0u64;
    // Write-back runs alongside the replay: every `FLUSH_EVERY` epochs written, a thread of its
    // own flushes the file system, so the flush at the end finds little left to write.
    let (tick, ticks) = mpsc::sync_channel::<()>(1);
    let (replayed, flushed_early) = std::thread::scope(|scope| {
        let flusher = scope.spawn({
            let snapshots = &snapshots;
            move || ticks.into_iter().try_for_each(|()| snapshots.flush())
        });
        let replayed = replay_decisions(
            &inputs,
            &journal,
            args.engine.mode,
            !args.no_verify,
            |closed, decision| {
                let epoch = closed.snapshot.epoch;
                snapshots.write(epoch, &closed.canonical)?;
                if park_at == Some(epoch) {
                    errln!("fault replay-park: epoch {epoch}'s snapshot written, its decision not");
                    loop {
                        std::thread::park();
                    }
                }
                decisions.write_attested(epoch, &decision.bytes, signer.as_ref())?;
                outln!("{}", epoch_line(closed));
                for intent in &decision.decision.intents {
                    outln!(
                        "         intent {} ({}, applies from epoch {}): {}",
                        intent.id,
                        intent.state.as_str(),
                        intent.epoch_apply,
                        intent.reason
                    );
                }
                epochs += 1;
                if epochs.is_multiple_of(FLUSH_EVERY) {
                    if let Err(TrySendError::Disconnected(())) = tick.try_send(()) {
                        bail!("flushing the output stopped");
                    }
                }
                Ok(())
            },
        );
        // The flusher stops once every tick is taken.
        drop(tick);
        let flushed = flusher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (replayed, flushed)
    });
    // What was written is flushed even when the replay stopped at a bad block (those epochs
    // stand) or a write failed. A flush that failed along the way fails the replay even if the
    // last one succeeds (the file system reports a failed write-back only once).
    snapshots.flush()?;
    decisions.flush()?;
    flushed_early?;
    let blocks = replayed?;
    outln!(
        "replayed {blocks} blocks into {epochs} closed epochs; snapshots in {}, decisions in {}{}",
        snapshots.dir().display(),
        decisions.dir().display(),
        match &signer {
            Some(s) => format!(" (signed, keyid {})", s.keyid()),
            None => " (unsigned: signing is off)".to_owned(),
        }
    );
    if epochs == 0 && blocks == 0 {
        errln!(
            "hint: {} holds no complete block yet (files must be named *.jsonl)",
            inputs.chain_dir.display()
        );
    }
    Ok(())
}

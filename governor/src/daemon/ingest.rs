//! The ingest loop: tail the chain, close epochs through the same replay and engine code as the
//! offline replay, and write decision file → checkpoint → runtime params, in that order.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tb_decisions::Signer;
use tb_replay::backlog::Backlog;
use tb_replay::feed;
use tb_replay::{ChainReader, ClosedEpoch, Position, Replayer};

use super::files::{write_replace, Checkpoint, RuntimeParams, CHECKPOINT_FORMAT};
use super::state::{Close, Shared};
use crate::engine::Engine;
use tb_config::Mode;

/// Bytes of chain read per step while tailing.
const STEP_BYTES: usize = 1 << 20;

/// Everything the ingest thread owns.
pub struct Ingest {
    /// Chain reader at the resume position.
    pub reader: ChainReader,
    /// Replay state.
    pub replayer: Replayer,
    /// Gate engine.
    pub engine: Engine,
    /// Attestation key, when signing is on.
    pub signer: Option<Signer>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// `state/checkpoint.json`.
    pub checkpoint_path: PathBuf,
    /// `runtime/params.json`.
    pub params_path: PathBuf,
    /// Optional hook run with the params path after each apply-mode close.
    pub hook: Option<PathBuf>,
    /// Hook time limit.
    pub hook_timeout: Duration,
    /// The daemon's tokio runtime: this thread runs the hook on it (child process, time limit,
    /// kill) and waits for the outcome.
    pub runtime: tokio::runtime::Handle,
    /// Chain poll interval.
    pub poll: Duration,
    /// Receipts written to the chain directory but not yet read.
    pub backlog: Backlog,
    /// A problem found at start that stops ingestion before it begins (shown as the stall).
    pub halted: Option<String>,
    /// Decision files through the last closed epoch without a sidecar, for the checkpoint.
    pub unsigned: u64,
}

impl Ingest {
    /// Runs until `stop` fires (or its sender is dropped). A write failure halts ingestion
    /// (shown in status); RPC keeps serving.
    pub fn run(mut self, stop: Receiver<()>) {
        if super::fault::requested("ingest-panic").is_some() {
            panic!("injected fault ingest-panic ({})", super::fault::FAULT_VAR);
        }
        if let Some(why) = self.halted.take() {
            return self.halt(&why, &stop);
        }
        // A crash between the checkpoint and the params file leaves the params one close
        // behind: bring them up to date (apply mode only, and only if they differ).
        if let Err(e) = self.apply_params(true) {
            tracing::error!(error = %format!("{e:#}"), "republishing runtime params failed");
        }
        loop {
            let progressed = match self.step() {
                Ok(p) => p,
                Err(e) => return self.halt(&format!("{e:#}"), &stop),
            };
            let wait = if progressed {
                Duration::ZERO
            } else {
                self.poll
            };
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// One read-and-apply step; true when blocks were applied. A chain that cannot be read or
    /// stops at a bad line is a stall (retried at every poll); an error here is a write failure
    /// that halts ingestion.
    fn step(&mut self) -> Result<bool> {
        let before = self.reader.position().clone();
        let step = match feed::step(&mut self.reader, &mut self.replayer, STEP_BYTES) {
            Ok(s) => s,
            Err(e) => {
                // Nothing was applied and the reader did not move: the next poll retries.
                self.publish_position(Some(e.to_string()));
                return Ok(false);
            }
        };
        let stall = match (&step.stall, &step.read_error) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(e)) => Some(e.to_string()),
            (None, None) => None,
        };
        // A stall the step got past is cleared before its closes are shown, so that a close seen
        // in status never comes with it; a new stall is shown after them (with the tip), so that
        // a stall seen in status comes with every block applied before it.
        if stall.is_none() {
            self.publish_stall(None);
        }
        self.record(&step)?;
        let caught_up = step.blocks == 0 && stall.is_none();
        self.publish_position(stall);
        self.publish_backlog(&before, caught_up);
        Ok(step.blocks > 0)
    }

    /// Writes what a step closed: decision files, then the checkpoint and the runtime params.
    fn record(&mut self, step: &feed::Step) -> Result<()> {
        for (closed, position) in &step.closed {
            self.close(closed, position)?;
        }
        if let Some((last, _)) = step.closed.last() {
            self.checkpoint(last.snapshot.epoch)?;
            self.apply_params(false)?;
        }
        Ok(())
    }

    /// Halts ingestion: logs `why`, shows it as the stall (`halted: …`), and waits for shutdown;
    /// nothing more is ingested until an operator fixes the cause and restarts.
    fn halt(&self, why: &str, stop: &Receiver<()>) {
        tracing::error!(error = %why, "ingest halted");
        self.shared.halt(why);
        let _ = stop.recv();
    }

    /// Publishes the stall (status; the gauges follow it at each scrape), logging it once each
    /// time it starts or changes, and when it clears.
    fn publish_stall(&self, stall: Option<String>) {
        self.shared.set_stall(stall, self.reader.position());
    }

    /// Updates the receipt backlog after a step from `before`; `caught_up` when the step found
    /// no complete line to read (then nothing is pending).
    fn publish_backlog(&mut self, before: &Position, caught_up: bool) {
        let pending = if caught_up {
            self.backlog.caught_up(self.reader.position());
            self.backlog.pending()
        } else {
            match self.backlog.update(before, self.reader.position()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "counting the receipt backlog failed");
                    return;
                }
            }
        };
        self.shared.set_pending_receipts(pending);
    }

    /// Publishes the reading position, the tip and the stall, together.
    fn publish_position(&self, stall: Option<String>) {
        let tip = self
            .replayer
            .next_height()
            .checked_sub(1)
            .filter(|_| self.replayer.next_height() > self.replayer.config().genesis_height);
        self.shared.set_position(tip, self.reader.position(), stall);
    }

    fn close(&mut self, closed: &ClosedEpoch, position: &Position) -> Result<()> {
        let epoch = closed.snapshot.epoch;
        let (engine, shared, signer) = (&mut self.engine, &self.shared, self.signer.as_ref());
        // The journal stays locked from consuming its events to publishing the epoch as closed,
        // so an operator action is always stamped with the first epoch not yet decided on disk.
        let (decision, attested) = shared
            .with_journal(|journal| {
                let d = engine.close_epoch(closed, &journal.events);
                let decisions = &shared.node.decisions;
                let attested = decisions.write_attested(epoch, &d.bytes, signer);
                // Decided once its file is in place, even if its sidecar then failed: a later
                // operator event must take the next epoch, or a restart would decide this one anew.
                if attested.is_ok() || decisions.path(epoch).exists() {
                    journal.last_closed = Some(journal.last_closed.map_or(epoch, |l| l.max(epoch)));
                }
                let attested =
                    attested.with_context(|| format!("writing the decision of epoch {epoch}"))?;
                anyhow::Ok((d, attested))
            })
            .inspect_err(|_| {
                shared.metrics.governor_decision_write_failures.inc();
            })?;
        // With signing on every decision has its sidecar now; without, one may already exist.
        if signer.is_none() && !shared.node.decisions.sidecar_path(epoch).exists() {
            self.unsigned += 1;
        }
        // Logged before it is published, so a close seen in status is already in the log.
        tracing::info!(
            epoch,
            file = %position.file,
            line = position.line,
            mode = %decision.decision.mode,
            decision_hash = %decision.hash,
            "epoch closed"
        );
        shared.publish_close(Close {
            snapshot: &closed.snapshot,
            decision,
            engine: engine.state(),
            position,
            keyid: signer.map(Signer::keyid),
            verified: attested.verified,
            written: attested.outcome == tb_decisions::WriteOutcome::Written,
        });
        Ok(())
    }

    fn checkpoint(&self, epoch: u64) -> Result<()> {
        let st = self.engine.state();
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT,
            config_hash: self.shared.node.config_hash.clone(),
            epoch,
            decision_hash: st.prev_decision_hash.clone().unwrap_or_default(),
            position: self.reader.position().clone(),
            replay: self.replayer.checkpoint(),
            engine: st.clone(),
            history: self.shared.view().history.clone(),
            unsigned: Some(self.unsigned),
            keyid: self.signer.as_ref().map(Signer::keyid),
        };
        let bytes = serde_json::to_vec(&cp)?;
        write_replace(&self.checkpoint_path, &bytes)
            .with_context(|| format!("writing {}", self.checkpoint_path.display()))
    }

    /// Publishes the params in force and runs the hook, when the last close was in apply mode
    /// and `runtime/params.json` is missing or holds other bytes (an unchanged file is neither
    /// rewritten nor pushed again). `at_start` (the republish before ingesting) also needs the
    /// journal's current mode to be apply: a start in paused or shadow mode pushes nothing.
    fn apply_params(&self, at_start: bool) -> Result<()> {
        let view = self.shared.view();
        let Some(last) = &view.last else {
            return Ok(());
        };
        if last.decision.mode != Mode::Apply {
            return Ok(());
        }
        let doc = RuntimeParams {
            epoch_effective: last.decision.epoch + 1,
            params: last.decision.params.clone(),
            params_hash: last.decision.params_hash.clone(),
            decision_hash: last.decision_hash.clone(),
        };
        drop(view);
        let bytes = serde_json::to_vec_pretty(&doc)?;
        let current = std::fs::read(&self.params_path).ok();
        let path = self.params_path.display();
        if at_start {
            let mode = self.shared.journal_summary().mode;
            if mode != Mode::Apply {
                if current.as_deref() != Some(&bytes[..]) {
                    tracing::warn!(
                        path = %path,
                        epoch = doc.epoch_effective - 1,
                        mode = %mode,
                        "the runtime params file does not hold the params of the last apply-mode \
                         close; the mode is no longer apply, so it is not rewritten and the hook \
                         is not run"
                    );
                }
                return Ok(());
            }
        }
        if current.as_deref() == Some(&bytes[..]) {
            tracing::debug!(path = %path, "runtime params up to date: not rewritten, hook not run");
            return Ok(());
        }
        write_replace(&self.params_path, &bytes).with_context(|| format!("writing {path}"))?;
        if let Some(hook) = &self.hook {
            let run = run_hook(hook, &self.params_path, self.hook_timeout);
            if let Err(e) = self.runtime.block_on(run) {
                self.shared.metrics.governor_hook_failures.inc();
                tracing::warn!(
                    hook = %hook.display(),
                    error = %format!("{e:#}"),
                    "apply hook failed"
                );
            }
        }
        Ok(())
    }
}

/// Runs `hook <params path>`, killing it after `timeout`.
async fn run_hook(
    hook: &std::path::Path,
    params: &std::path::Path,
    timeout: Duration,
) -> Result<()> {
    let mut child = tokio::process::Command::new(hook)
        .arg(params)
        .stdin(std::process::Stdio::null())
        .spawn()
        .context("starting the hook")?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status.context("waiting for the hook")?;
            anyhow::ensure!(status.success(), "hook exited with {status}");
            Ok(())
        }
        Err(_) => {
            // SIGKILL, then reap it.
            let _ = child.kill().await;
            anyhow::bail!("hook timed out after {} ms", timeout.as_millis())
        }
    }
}

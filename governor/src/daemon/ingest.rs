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
use super::state::{lock, write, LastClose, Shared};
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
            tracing::error!("republishing runtime params failed: {e:#}");
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
        tracing::error!("ingest halted: {why}");
        write(&self.shared.view).ingest.stall = Some(super::state::halted(why));
        let _ = stop.recv();
    }

    /// Publishes the stall (status; the gauges follow it at each scrape), logging it once each
    /// time it starts or changes, and when it clears.
    fn publish_stall(&self, stall: Option<String>) {
        self.set_stall(&mut write(&self.shared.view), stall);
    }

    fn set_stall(&self, view: &mut super::state::View, stall: Option<String>) {
        if view.ingest.stall == stall {
            return;
        }
        let pos = self.reader.position();
        match (&stall, &view.ingest.stall) {
            (Some(s), _) => tracing::warn!(
                file = %pos.file,
                line = pos.line,
                "ingest stalled: {s}"
            ),
            (None, Some(was)) => tracing::info!(
                file = %pos.file,
                line = pos.line,
                "ingest resumed (it was stalled: {was})"
            ),
            (None, None) => {}
        }
        view.ingest.stall = stall;
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
                    tracing::debug!("counting the receipt backlog failed: {e}");
                    return;
                }
            }
        };
        self.shared.metrics.set_pending(&pending);
        write(&self.shared.view).pending_receipts = pending;
    }

    /// Publishes the reading position, the tip and the stall, together.
    fn publish_position(&self, stall: Option<String>) {
        let pos = self.reader.position().clone();
        let tip = self
            .replayer
            .next_height()
            .checked_sub(1)
            .filter(|_| self.replayer.next_height() > self.replayer.config().genesis_height);
        if let Some(t) = tip {
            self.shared
                .metrics
                .governor_tip_height
                .set(i64::try_from(t).unwrap_or(i64::MAX));
        }
        let mut view = write(&self.shared.view);
        view.tip_height = tip;
        view.ingest.file = pos.file;
        view.ingest.line = pos.line;
        self.set_stall(&mut view, stall);
    }

    fn close(&mut self, closed: &ClosedEpoch, position: &Position) -> Result<()> {
        let epoch = closed.snapshot.epoch;
        // The journal stays locked from consuming its events to publishing the epoch as closed,
        // so an operator action is always stamped with the first epoch not yet decided on disk.
        let (decision, outcome) = {
            let mut journal = lock(&self.shared.journal);
            let d = self.engine.close_epoch(closed, &journal.events);
            let outcome = match self.shared.decisions.write(epoch, &d.bytes) {
                Ok(o) => o,
                Err(e) => {
                    self.shared.metrics.governor_decision_write_failures.inc();
                    return Err(e).context(format!("writing the decision of epoch {epoch}"));
                }
            };
            journal.last_closed = Some(journal.last_closed.map_or(epoch, |l| l.max(epoch)));
            self.shared.publish_journal(&journal);
            (d, outcome)
        };
        let (keyid, verified) = match &self.signer {
            Some(signer) => {
                let att = signer.attest(&decision.bytes);
                self.shared
                    .decisions
                    .write_sidecar(epoch, &att.to_bytes())
                    .with_context(|| format!("writing the attestation of epoch {epoch}"))?;
                let on_disk = self
                    .shared
                    .decisions
                    .read_sidecar(epoch)?
                    .unwrap_or_default();
                let checks = tb_decisions::verify::check_one(
                    &decision.bytes,
                    &on_disk,
                    &[signer.verifying_key()],
                );
                (Some(att.keyid), checks.is_none())
            }
            None => (None, false),
        };
        let s = &closed.snapshot;
        let st = self.engine.state();
        let tip = closed.snapshot.last_height;
        // Metrics change under the view lock, so a reader holding it (GET /wrappers) sees the
        // gauges and the snapshot hash of the same close.
        let mut view = write(&self.shared.view);
        self.shared.metrics.record_close(s, &decision);
        self.shared
            .metrics
            .governor_tip_height
            .set(i64::try_from(tip).unwrap_or(i64::MAX));
        if keyid.is_none() && outcome == tb_decisions::WriteOutcome::Written {
            view.unsigned.count += 1;
        }
        view.tip_height = Some(tip);
        view.recent.push(super::page::Point::of(s));
        view.ingest.file = position.file.clone();
        view.ingest.line = position.line;
        view.pending = st.pending.clone();
        view.params = st.params.clone();
        view.shadow_params = st.shadow_params.clone();
        // History, updated in place (its one copy lives in the view): created intents, then
        // state changes, then receipt counters.
        let h = &mut view.history;
        h.intents.extend(decision.decision.intents.iter().cloned());
        for a in &decision.decision.activations {
            if let Some(i) = h.intents.iter_mut().rev().find(|i| i.id == a.id) {
                i.state = a.outcome;
            }
        }
        for (k, n) in s.receipts.accepted_by_kind() {
            *h.accepted.entry(k.to_owned()).or_default() += n;
        }
        for (k, n) in s.receipts.rejected_by_reason() {
            *h.rejected.entry(k.to_owned()).or_default() += n;
        }
        view.last = Some(LastClose {
            decision: decision.decision,
            decision_hash: decision.hash,
            keyid,
            verified,
        });
        Ok(())
    }

    fn checkpoint(&self, epoch: u64) -> Result<()> {
        let st = self.engine.state();
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT,
            config_hash: self.shared.config_hash.clone(),
            epoch,
            decision_hash: st.prev_decision_hash.clone().unwrap_or_default(),
            position: self.reader.position().clone(),
            replay: self.replayer.checkpoint(),
            engine: st.clone(),
            history: super::state::read(&self.shared.view).history.clone(),
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
        let view = super::state::read(&self.shared.view);
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
                        "{path} does not hold the params of the last apply-mode close (epoch \
                         {}); the mode is now {mode}, so it is not rewritten and the hook is not \
                         run",
                        doc.epoch_effective - 1
                    );
                }
                return Ok(());
            }
        }
        if current.as_deref() == Some(&bytes[..]) {
            tracing::debug!("{path} is up to date: not rewritten, hook not run");
            return Ok(());
        }
        write_replace(&self.params_path, &bytes).with_context(|| format!("writing {path}"))?;
        if let Some(hook) = &self.hook {
            let run = run_hook(hook, &self.params_path, self.hook_timeout);
            if let Err(e) = self.runtime.block_on(run) {
                self.shared.metrics.governor_hook_failures.inc();
                tracing::warn!("apply hook {} failed: {e:#}", hook.display());
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

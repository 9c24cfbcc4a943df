//! `tb-cli governor status|intents|decisions|snapshot|exit|mode`: the RPC client commands.
//!
//! Each command builds a current-thread tokio runtime, calls one `governor.*` method through
//! `endpoint` (which also turns failed calls into operator-facing messages with hints), and
//! prints either the method's `result` as pretty JSON (`--json`, nothing else on stdout) or a
//! human rendering: one of the `render` views, which implement `Display` so their exact text is
//! unit-tested.

mod endpoint;
#[cfg(test)]
mod fixtures;
mod render;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{
    DecisionsArgs, ExitArgs, IntentsArgs, JournalArgs, ModeArgs, PeersAction, PeersArgs,
    SnapshotArgs, StatusArgs,
};
use crate::rpc::SnapshotResult;
use crate::{errln, out, outln};
use endpoint::{
    ack_peer, fetch_decisions, fetch_intents, fetch_snapshot, fetch_status, set_mode, submit_exit,
    Endpoint,
};
use render::{
    Change, DecisionsView, ExitNoteView, IntentsView, JournaledView, PeersView, SnapshotView,
    SnapshotWrittenView, StatusView, WatchFrame,
};

/// Runs `fut` to completion on a fresh current-thread runtime.
fn block_on<F: Future>(fut: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(fut))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `tb-cli governor status`.
pub fn status(args: &StatusArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    if args.watch {
        return watch_status(&endpoint, Duration::from_secs(args.interval));
    }
    let status = block_on(fetch_status(&endpoint))??;
    if args.rpc.json {
        print_json(&status)?;
    } else {
        out!("{}", StatusView(&status));
    }
    Ok(true)
}

/// `tb-cli governor status --watch`: fetches and redraws the status every `every` until Ctrl-C
/// (exit 0) or until stdout is closed. A failed fetch is shown in the frame and retried, so the
/// watch survives a daemon restart. Frames are written straight to stdout, not through
/// [`out!`](crate::out), because a failed write must end the loop.
fn watch_status(endpoint: &Endpoint, every: Duration) -> Result<bool> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stdout().is_terminal();
    block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let fetched = tokio::select! {
                _ = &mut ctrl_c => return Ok(true),
                r = fetch_status(endpoint) => r,
            };
            let frame = WatchFrame {
                tty,
                every_secs: every.as_secs(),
                url: &endpoint.url,
                unix_secs: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                fetched: &fetched,
            };
            let mut out = std::io::stdout().lock();
            match write!(out, "{frame}").and_then(|()| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(true),
                Err(e) => return Err(anyhow::Error::new(e).context("writing to stdout")),
            }
            drop(out);
            tokio::select! {
                _ = &mut ctrl_c => return Ok(true),
                () = tokio::time::sleep(every) => {}
            }
        }
    })?
}

/// `tb-cli governor intents`.
pub fn intents(args: &IntentsArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let intents = block_on(fetch_intents(&endpoint, args))??;
    if args.rpc.json {
        print_json(&crate::rpc::IntentsResult { intents })?;
    } else {
        out!("{}", IntentsView(&intents));
    }
    Ok(true)
}

/// `tb-cli governor decisions`.
pub fn decisions(args: &DecisionsArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let decisions = block_on(fetch_decisions(&endpoint, args.from_epoch, args.limit))??;
    if args.rpc.json {
        print_json(&crate::rpc::DecisionsResult { decisions })?;
    } else {
        out!("{}", DecisionsView(&decisions));
    }
    Ok(true)
}

/// `tb-cli governor snapshot`. Exit 1 when the written file does not hash to `snapshot_hash`.
pub fn snapshot(args: &SnapshotArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let result = block_on(fetch_snapshot(&endpoint, args.epoch))??;
    let Some(path) = &args.out else {
        if args.rpc.json {
            print_json(&result)?;
        } else {
            out!("{}", SnapshotView(&result));
        }
        return Ok(true);
    };
    let written = write_snapshot(path, &result)?;
    if args.rpc.json {
        print_json(&result)?;
    }
    match written {
        Ok(()) => {
            if !args.rpc.json {
                out!(
                    "{}",
                    SnapshotWrittenView {
                        path,
                        result: &result
                    }
                );
            }
            Ok(true)
        }
        Err(problem) => {
            errln!("error: {problem}");
            Ok(false)
        }
    }
}

/// Writes the snapshot's JCS bytes to `path` and checks blake3 of the file against the
/// governor's `snapshot_hash`: the inner `Err` says why they differ.
fn write_snapshot(path: &Path, result: &SnapshotResult) -> Result<Result<(), String>> {
    let bytes = tb_canonical::to_vec(&result.snapshot);
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    let written =
        std::fs::read(path).with_context(|| format!("cannot read back {}", path.display()))?;
    let local = tb_canonical::hash_hex(&written);
    if local == result.snapshot_hash {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "snapshot hash mismatch for epoch {}: blake3 of {} is {local}, but the governor \
             reported snapshot_hash={}; do not trust this file (are tb-cli and tb-governor the \
             same version?)",
            result.snapshot.epoch,
            path.display(),
            result.snapshot_hash
        )))
    }
}

/// `tb-cli governor exit`.
pub fn exit(args: &ExitArgs) -> Result<bool> {
    let (j, endpoint) = journaled(&args.journal)?;
    let receipt = block_on(submit_exit(&endpoint, args.gate, &j.reason, &j.operator))??;
    if j.rpc.json {
        print_json(&receipt)?;
        return Ok(true);
    }
    outln!(
        "{}",
        JournaledView {
            change: Change::Exit(args.gate),
            receipt: &receipt
        }
    );
    // The journal's mode now is the mode of that close unless another set_mode follows.
    match block_on(fetch_status(&endpoint))? {
        Ok(status) => out!(
            "{}",
            ExitNoteView {
                mode: status.mode,
                effective_epoch: receipt.effective_epoch
            }
        ),
        Err(e) => errln!(
            "note: could not read the governor's mode ({e:#}); runtime params change only in \
             apply mode"
        ),
    }
    Ok(true)
}

/// `tb-cli governor peers` (and `peers ack`).
pub fn peers(args: &PeersArgs) -> Result<bool> {
    if let Some(PeersAction::Ack(ack)) = &args.action {
        let (j, endpoint) = journaled(&ack.journal)?;
        let receipt = block_on(ack_peer(&endpoint, &ack.peer, &j.reason, &j.operator))??;
        if j.rpc.json {
            print_json(&receipt)?;
        } else {
            outln!(
                "journaled the acknowledgement of peer {} as seq {}; comparing resumes at the \
                 epoch that diverged",
                ack.peer,
                receipt.seq
            );
        }
        return Ok(true);
    }
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let status = block_on(fetch_status(&endpoint))??;
    if args.rpc.json {
        print_json(&status.peers)?;
    } else {
        out!("{}", PeersView(&status.peers));
    }
    Ok(status.peers.iter().all(|p| p.divergence.is_none()))
}

/// `tb-cli governor mode`.
pub fn mode(args: &ModeArgs) -> Result<bool> {
    let (j, endpoint) = journaled(&args.journal)?;
    let receipt = block_on(set_mode(&endpoint, args.mode, &j.reason, &j.operator))??;
    if j.rpc.json {
        print_json(&receipt)?;
    } else {
        outln!(
            "{}",
            JournaledView {
                change: Change::Mode(args.mode),
                receipt: &receipt
            }
        );
    }
    Ok(true)
}

/// A journaled command's arguments, once its reason and operator are checked, and the endpoint
/// (with the token) it calls.
fn journaled(args: &JournalArgs) -> Result<(&JournalArgs, Endpoint)> {
    check_words(&args.reason, "--reason")?;
    check_words(&args.operator, "--operator")?;
    Ok((args, Endpoint::from_args(&args.rpc, Some(&args.token))))
}

fn check_words(text: &str, flag: &str) -> Result<()> {
    anyhow::ensure!(
        !text.trim().is_empty(),
        "{flag} must not be empty: the journal keeps it forever"
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::fixtures::snapshot_result;
    use super::*;
    use crate::engine::{Gate, IntentState};

    #[test]
    fn intent_state_and_gate_parse_from_snake_case() {
        assert_eq!(
            crate::cli::parse_intent_state("shadowed").unwrap(),
            IntentState::Shadowed
        );
        assert!(crate::cli::parse_intent_state("Shadowed").is_err());
        assert_eq!("ad_contextual".parse::<Gate>().unwrap(), Gate::AdContextual);
    }
    #[test]
    fn snapshot_out_writes_exact_jcs_bytes_and_checks_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        let good = snapshot_result();
        write_snapshot(&path, &good).unwrap().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, good.snapshot.canonical_bytes());
        assert_eq!(tb_canonical::hash_hex(&bytes), good.snapshot_hash);

        let mut bad = good.clone();
        bad.snapshot_hash = "00".repeat(32);
        let problem = write_snapshot(&path, &bad).unwrap().unwrap_err();
        assert_eq!(
            problem,
            format!(
                "snapshot hash mismatch for epoch 3: blake3 of {} is {}, but the governor \
                 reported snapshot_hash={}; do not trust this file (are tb-cli and tb-governor \
                 the same version?)",
                path.display(),
                good.snapshot_hash,
                bad.snapshot_hash
            )
        );
    }
}

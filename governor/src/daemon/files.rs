//! The daemon's own files: the operator journal, the checkpoint and the runtime params.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tb_config::Mode;
use tb_replay::{Position, ReplayState, Snapshot};

use crate::engine::journal::{parse_journal, JournalError};
use crate::engine::{Decision, EngineState, EventKind, Intent, JournalEvent, Params};

/// Replaces `path` atomically: temp file in the same directory, fsync, rename, fsync directory.
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `journal.jsonl`: append-only, fsynced before an action is acknowledged. An append is all or
/// nothing: a failed write or fsync is rolled back to the previous length before the error is
/// reported, so the file only ever holds acknowledged lines (plus, after a crash mid-append, one
/// unterminated line that [`JournalFile::open_for_append`] cuts off).
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    /// Every event, in seq order.
    pub events: Vec<JournalEvent>,
    /// The last epoch closed or already decided on disk: runtime events take the next one.
    pub last_closed: Option<u64>,
    /// Bytes of complete lines: the file's length after the last acknowledged append.
    len: u64,
    /// Bytes after the last complete line when loaded (a crash mid-append).
    torn: u64,
    /// Appends are allowed ([`JournalFile::open_for_append`] was called).
    open: bool,
}

/// The journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalFileError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A line is malformed.
    #[error("{path}: {source}")]
    Parse {
        /// The journal file.
        path: PathBuf,
        /// The error.
        source: JournalError,
    },
    /// An append failed; the file was rolled back to its previous length.
    #[error(
        "{path}: appending seq {seq} failed ({source}); the journal was rolled back to its last \
         acknowledged event and nothing was journaled"
    )]
    RolledBack {
        /// The journal file.
        path: PathBuf,
        /// The seq the event would have had.
        seq: u64,
        /// The error.
        source: io::Error,
    },
    /// An append failed and so did the rollback; the next append retries the rollback.
    #[error(
        "{path}: appending seq {seq} failed ({source}) and cutting the partial line off failed \
         too ({rollback}); nothing was journaled, and the next append (or restart) cuts it off"
    )]
    RollbackFailed {
        /// The journal file.
        path: PathBuf,
        /// The seq the event would have had.
        seq: u64,
        /// The append's error.
        source: io::Error,
        /// The rollback's error.
        rollback: io::Error,
    },
    /// The file is shorter than what this process wrote: something changed it underneath.
    #[error(
        "{path} is {on_disk} bytes but this process has written {expected}: it was truncated \
         or replaced underneath; nothing was journaled (restart the daemon to re-read it)"
    )]
    Changed {
        /// The journal file.
        path: PathBuf,
        /// Its length now.
        on_disk: u64,
        /// The length this process left.
        expected: u64,
    },
    /// Appends before start-up finished.
    #[error("{path} is not open for appends yet (the daemon is starting); retry")]
    NotOpen {
        /// The journal file.
        path: PathBuf,
    },
}

impl JournalFile {
    /// Reads and checks the journal without writing anything (a missing file is an empty
    /// journal). An unterminated last line (a crash mid-append, never acknowledged) is left out
    /// of the events; [`JournalFile::open_for_append`] cuts it off.
    pub fn load(path: &Path) -> Result<Self, JournalFileError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(JournalFileError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let parse = |source| JournalFileError::Parse {
            path: path.to_owned(),
            source,
        };
        let text = std::str::from_utf8(&bytes[..complete]).map_err(|e| {
            let at = e.valid_up_to();
            parse(JournalError {
                line: bytes[..at].iter().filter(|b| **b == b'\n').count() + 1,
                message: format!("not UTF-8 (byte {at} of the file)"),
            })
        })?;
        let events = parse_journal(text).map_err(parse)?;
        Ok(JournalFile {
            path: path.to_owned(),
            events,
            last_closed: None,
            len: complete as u64,
            torn: (bytes.len() - complete) as u64,
            open: false,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes after the last complete line when the journal was loaded (0 once cut off).
    pub fn torn_bytes(&self) -> u64 {
        self.torn
    }

    /// Allows appends, first cutting off an unterminated last line left by a crash mid-append
    /// (it was never acknowledged). Returns the number of bytes cut off.
    pub fn open_for_append(&mut self) -> Result<u64, JournalFileError> {
        let torn = self.torn;
        if torn > 0 {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(|source| self.io(source))?;
            f.set_len(self.len)
                .and_then(|()| f.sync_all())
                .map_err(|source| self.io(source))?;
            tracing::warn!(
                path = %self.path.display(),
                bytes = torn,
                "cut off an unterminated last journal line (an append interrupted before it was \
                 acknowledged)"
            );
            self.torn = 0;
        }
        self.open = true;
        Ok(torn)
    }

    fn io(&self, source: io::Error) -> JournalFileError {
        JournalFileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The mode after the last `set_mode` event, if any.
    pub fn current_mode(&self) -> Option<(Mode, u64)> {
        self.events.iter().rev().find_map(|e| match e.kind {
            EventKind::SetMode { mode } => Some((mode, e.effective_epoch)),
            EventKind::ManualExit { .. } | EventKind::AckPeer { .. } => None,
        })
    }

    /// The epoch a runtime event takes effect at: the first not yet closed.
    pub fn next_epoch(&self) -> u64 {
        self.last_closed.map_or(0, |e| e + 1)
    }

    /// Appends an event durably (written and fsynced) and returns it. On any error the file is
    /// back at its previous length and the in-memory events are unchanged.
    pub fn append(
        &mut self,
        kind: EventKind,
        reason: &str,
        operator: &str,
    ) -> Result<JournalEvent, JournalFileError> {
        if !self.open {
            return Err(JournalFileError::NotOpen {
                path: self.path.clone(),
            });
        }
        let event = JournalEvent {
            seq: self.events.len() as u64,
            effective_epoch: self.next_epoch(),
            kind,
            reason: reason.to_owned(),
            operator: operator.to_owned(),
        };
        let mut line = serde_json::to_vec(&event).map_err(|e| self.io(io::Error::other(e)))?;
        line.push(b'\n');
        // Only the first append may create the file: a journal deleted underneath is an error.
        let mut f = std::fs::OpenOptions::new()
            .create(self.len == 0)
            .append(true)
            .open(&self.path)
            .map_err(|source| self.io(source))?;
        let on_disk = f.metadata().map_err(|source| self.io(source))?.len();
        if on_disk < self.len {
            return Err(JournalFileError::Changed {
                path: self.path.clone(),
                on_disk,
                expected: self.len,
            });
        }
        if on_disk > self.len {
            // A partial line an earlier failed append could not cut off.
            f.set_len(self.len)
                .and_then(|()| f.sync_all())
                .map_err(|source| self.io(source))?;
            tracing::warn!(
                path = %self.path.display(),
                bytes = on_disk - self.len,
                "cut off the partial line of an earlier failed append"
            );
        }
        let written = write_line(&mut f, &line)
            .and_then(|()| f.sync_all())
            .and_then(|()| {
                // A new file's directory entry must be durable too.
                if self.len == 0 {
                    let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
                    std::fs::File::open(dir)?.sync_all()
                } else {
                    Ok(())
                }
            });
        if let Err(source) = written {
            let seq = event.seq;
            let path = self.path.clone();
            return Err(match f.set_len(self.len).and_then(|()| f.sync_all()) {
                Ok(()) => JournalFileError::RolledBack { path, seq, source },
                Err(rollback) => JournalFileError::RollbackFailed {
                    path,
                    seq,
                    source,
                    rollback,
                },
            });
        }
        self.len += line.len() as u64;
        self.events.push(event.clone());
        Ok(event)
    }
}

/// Writes one journal line; the `journal-torn-append` test fault writes half of it and fails.
fn write_line(f: &mut std::fs::File, line: &[u8]) -> io::Result<()> {
    if let Some(marker) = super::fault::requested("journal-torn-append") {
        if Path::new(&marker).exists() {
            let half = line.len() / 2;
            f.write_all(&line[..half])?;
            return Err(io::Error::other(format!(
                "injected fault journal-torn-append: the write stopped after {half} of {} bytes",
                line.len()
            )));
        }
    }
    f.write_all(line)
}

/// What the daemon remembers beyond replay and engine state, so a restart needs no history scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Every intent ever created, with its latest state, oldest first.
    pub intents: Vec<Intent>,
    /// Accepted receipts since genesis, per market (and `slash`).
    pub accepted: BTreeMap<String, u64>,
    /// Rejected receipts since genesis, per reason.
    pub rejected: BTreeMap<String, u64>,
}

impl History {
    /// Adds what a close brings, in this order: the intents it created, the state changes of
    /// earlier intents, then the receipt counters of its snapshot.
    pub fn record(&mut self, decision: &Decision, snapshot: &Snapshot) {
        self.intents.extend(decision.intents.iter().cloned());
        for a in &decision.activations {
            if let Some(i) = self.intents.iter_mut().rev().find(|i| i.id == a.id) {
                i.state = a.outcome;
            }
        }
        for (k, n) in snapshot.receipts.accepted_by_kind() {
            *self.accepted.entry(k.to_owned()).or_default() += n;
        }
        for (k, n) in snapshot.receipts.rejected_by_reason() {
            *self.rejected.entry(k.to_owned()).or_default() += n;
        }
    }
}

/// `state/checkpoint.json`: replay and engine state after the last closed epoch's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version of this file.
    pub format: u32,
    /// The configuration it was taken under.
    pub config_hash: String,
    /// The last closed epoch.
    pub epoch: u64,
    /// blake3 of that epoch's decision file (checked on start).
    pub decision_hash: String,
    /// Where reading resumes.
    pub position: Position,
    /// Replayer state at `position`.
    pub replay: ReplayState,
    /// Engine state after `epoch`.
    pub engine: EngineState,
    /// Intents and counters.
    pub history: History,
    /// Decision files through `epoch` that had no sidecar, so that a start counts them without
    /// listing `decisions/`. Absent from checkpoints of older versions (a start then lists it).
    #[serde(default)]
    pub unsigned: Option<u64>,
    /// keyid of the key that signed the decisions through `epoch` (none: signing was off), so
    /// that a start with another key, or with signing just turned on, checks every sidecar.
    #[serde(default)]
    pub keyid: Option<String>,
}

/// Current checkpoint format.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// `runtime/params.json`, what node integrators read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeParams {
    /// First epoch these params govern.
    pub epoch_effective: u64,
    /// The params.
    pub params: Params,
    /// blake3(JCS(params)).
    pub params_hash: String,
    /// The decision that set them.
    pub decision_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(j: &mut JournalFile, reason: &str) -> Result<JournalEvent, JournalFileError> {
        j.append(EventKind::SetMode { mode: Mode::Paused }, reason, "test")
    }

    #[test]
    fn loading_writes_nothing_and_opening_cuts_an_unterminated_last_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let mut j = JournalFile::load(&path).unwrap();
        assert!(matches!(
            append(&mut j, "early"),
            Err(JournalFileError::NotOpen { .. })
        ));
        assert!(!path.exists(), "an append before opening created the file");
        j.open_for_append().unwrap();
        append(&mut j, "first").unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(b"{\"seq\":1,\"effective_ep");
        std::fs::write(&path, &torn).unwrap();

        let mut j = JournalFile::load(&path).unwrap();
        assert_eq!(j.events.len(), 1);
        assert_eq!(j.torn_bytes(), 22);
        assert_eq!(std::fs::read(&path).unwrap(), torn, "load must not write");
        assert_eq!(j.open_for_append().unwrap(), 22);
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert_eq!(append(&mut j, "second").unwrap().seq, 1);
        assert_eq!(JournalFile::load(&path).unwrap().events.len(), 2);
    }

    #[test]
    fn a_partial_line_left_on_disk_is_cut_before_the_next_append() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let mut j = JournalFile::load(&path).unwrap();
        j.open_for_append().unwrap();
        append(&mut j, "first").unwrap();
        // What a failed append whose rollback also failed leaves behind.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"seq\":1,").unwrap();
        drop(f);
        append(&mut j, "second").unwrap();
        let reloaded = JournalFile::load(&path).unwrap();
        assert_eq!(reloaded.torn_bytes(), 0);
        assert_eq!(reloaded.events, j.events);
    }

    #[test]
    fn a_journal_shortened_underneath_is_refused_and_nothing_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let mut j = JournalFile::load(&path).unwrap();
        j.open_for_append().unwrap();
        append(&mut j, "first").unwrap();
        append(&mut j, "second").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..10]).unwrap();
        let err = append(&mut j, "third").unwrap_err();
        assert!(matches!(err, JournalFileError::Changed { .. }), "{err}");
        assert_eq!(j.events.len(), 2);
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[..10]);
        std::fs::remove_file(&path).unwrap();
        assert!(append(&mut j, "fourth").is_err());
        assert!(!path.exists(), "a deleted journal was recreated");
    }
}

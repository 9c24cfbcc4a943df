//! The daemon's own files: the operator journal, the checkpoint and the runtime params.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tb_config::Mode;
use tb_replay::{Position, ReplayState};

use crate::engine::journal::{parse_journal, JournalError};
use crate::engine::{EngineState, EventKind, Gate, Intent, JournalEvent, Params};

/// Replaces `path` atomically: temp file in the same directory, fsync, rename, fsync directory.
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `journal.jsonl`: append-only, fsynced before an action is acknowledged.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    /// Every event, in seq order.
    pub events: Vec<JournalEvent>,
    /// The last epoch closed or already decided on disk: runtime events take the next one.
    pub last_closed: Option<u64>,
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
}

impl JournalFile {
    /// Loads the journal (a missing file is an empty journal). An unterminated last line (a
    /// crash mid-append, never acknowledged) is cut off so later appends stay well-formed.
    pub fn load(path: &Path) -> Result<Self, JournalFileError> {
        let io = |source| JournalFileError::Io {
            path: path.to_owned(),
            source,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let events = parse_journal(&text).map_err(|source| JournalFileError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            f.set_len(complete as u64)
                .and_then(|()| f.sync_all())
                .map_err(io)?;
        }
        Ok(JournalFile {
            path: path.to_owned(),
            events,
            last_closed: None,
        })
    }

    /// The mode after the last `set_mode` event, if any.
    pub fn current_mode(&self) -> Option<(Mode, u64)> {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.mode.map(|m| (m, e.effective_epoch)))
    }

    /// The epoch a runtime event takes effect at: the first not yet closed.
    pub fn next_epoch(&self) -> u64 {
        self.last_closed.map_or(0, |e| e + 1)
    }

    /// Appends an event durably and returns it.
    pub fn append(
        &mut self,
        kind: EventKind,
        mode: Option<Mode>,
        gate: Option<Gate>,
        reason: &str,
        operator: &str,
    ) -> Result<JournalEvent, JournalFileError> {
        let event = JournalEvent {
            seq: self.events.len() as u64,
            effective_epoch: self.next_epoch(),
            kind,
            mode,
            gate: gate.map(|g| g.as_str().to_owned()),
            reason: reason.to_owned(),
            operator: operator.to_owned(),
        };
        let mut line = serde_json::to_vec(&event).map_err(|e| JournalFileError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        line.push(b'\n');
        let io = |source| JournalFileError::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(&line).and_then(|()| f.sync_all()).map_err(io)?;
        self.events.push(event.clone());
        Ok(event)
    }
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

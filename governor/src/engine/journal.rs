//! The operator journal (docs/formats.md, "Operator journal"): the only input besides the chain and the config.

use serde::{Deserialize, Serialize};
use tb_config::Mode;

/// What an operator did, with what it needs: the `kind` of a journal line and its argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    /// Switch between shadow, apply and paused.
    SetMode {
        /// The new mode.
        mode: Mode,
    },
    /// Force an active gate to exit.
    ManualExit {
        /// The gate's name; a name that is no gate is recorded and changes nothing.
        gate: String,
    },
    /// Acknowledge a peer's divergence (the fleet cross-check). The engine skips it: it is
    /// journaled for the record and changes no decision.
    AckPeer {
        /// The peer's URL, as configured.
        peer: String,
    },
}

/// One line of `journal.jsonl`. Its fields are written in declaration order, `kind` and its
/// argument in the place of `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// Position in the journal, from 0, strictly increasing.
    pub seq: u64,
    /// The epoch at whose close the event is consumed (before the gates).
    pub effective_epoch: u64,
    /// What the event does. Unknown fields of the line end up here and are refused.
    #[serde(flatten)]
    pub kind: EventKind,
    /// Why, in the operator's words.
    pub reason: String,
    /// Who.
    pub operator: String,
}

/// A journal line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("journal line {line}: {message}")]
pub struct JournalError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a whole journal (JSON Lines), checking each event's shape and that `seq` counts up
/// from 0 without gaps. An unterminated last line is ignored (a writer may be mid-append).
pub fn parse_journal(text: &str) -> Result<Vec<JournalEvent>, JournalError> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut events = Vec::new();
    for (i, line) in complete.lines().enumerate() {
        let err = |message: String| JournalError {
            line: i + 1,
            message,
        };
        let ev: JournalEvent = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        if ev.seq != events.len() as u64 {
            return Err(err(format!(
                "seq {} where {} was expected",
                ev.seq,
                events.len()
            )));
        }
        events.push(ev);
    }
    Ok(events)
}

//! The operator journal (docs/formats.md, "Operator journal"): the only input besides the chain and the config.

use serde::{Deserialize, Serialize};
use tb_config::Mode;

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Switch between shadow, apply and paused.
    SetMode,
    /// Force an active gate to exit.
    ManualExit,
}

/// One line of `journal.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEvent {
    /// Position in the journal, from 0, strictly increasing.
    pub seq: u64,
    /// The epoch at whose close the event is consumed (before the gates).
    pub effective_epoch: u64,
    /// What the event does.
    pub kind: EventKind,
    /// The new mode (`set_mode` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The gate to exit (`manual_exit` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
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
        match ev.kind {
            EventKind::SetMode if ev.mode.is_none() => {
                return Err(err("set_mode without mode".to_owned()))
            }
            EventKind::ManualExit if ev.gate.is_none() => {
                return Err(err("manual_exit without gate".to_owned()))
            }
            _ => {}
        }
        events.push(ev);
    }
    Ok(events)
}

//! Driving a [`Replayer`] from a [`ChainReader`]: the one loop the offline replay, the auditor
//! and the daemon all share.

use crate::block::BlockError;
use crate::reader::{ChainReader, Position, ReadError};
use crate::replayer::{ClosedEpoch, Replayer};

/// A block error with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {error}")]
pub struct ChainError {
    /// Chain file name.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub error: BlockError,
}

/// What one [`step`] applied.
#[derive(Debug, Default)]
pub struct Step {
    /// Lines (blocks) applied.
    pub blocks: usize,
    /// Epochs closed, each with the position just after its last block.
    pub closed: Vec<(ClosedEpoch, Position)>,
    /// Set when a line is not a valid next block: the blocks before it were applied (and the
    /// epochs they closed are in `closed`), nothing after it was, and the reader waits at it.
    pub stall: Option<ChainError>,
    /// Set when reading failed after the lines of this step were read (a listing that failed,
    /// a file that changed): they were applied, nothing after them was read, and the next step
    /// retries from there.
    pub read_error: Option<ReadError>,
}

/// Reads up to about `max_bytes` of complete lines and applies them. A step that applies
/// nothing (and has no stall) means the chain has nothing new yet. On a block error the lines
/// before it are applied and the reader is left at the bad line, so a later step retries it.
/// A read error met before any line comes as `Err`, with nothing applied and the reader where
/// it was; one met after lines were read comes in [`Step::read_error`], after those lines are
/// applied. Either way the next step retries.
pub fn step(
    reader: &mut ChainReader,
    replayer: &mut Replayer,
    max_bytes: usize,
) -> Result<Step, ReadError> {
    let start = reader.position().clone();
    let mut batch = reader.next_batch(max_bytes)?;
    let lines: Vec<&[u8]> = (0..batch.lines.len()).map(|i| batch.line(i)).collect();
    let outcome = replayer.push_lines(&lines);
    let closed = outcome
        .closed
        .into_iter()
        .map(|(i, c)| (c, batch.lines[i].next.clone()))
        .collect();
    let mut applied = Step {
        blocks: outcome.applied,
        closed,
        stall: None,
        read_error: None,
    };
    let failure = match outcome.error {
        Some((i, error)) => Some((batch.lines[i].file.clone(), batch.lines[i].line, error)),
        None => batch.stop.take(),
    };
    if let Some((file, line, error)) = failure {
        // The reader moves back to just after the last line applied: nothing read past it is
        // lost, and the next step starts at the bad line again.
        match applied.blocks {
            0 => reader.rewind(start),
            n => reader.resume_after(&batch, n - 1),
        }
        applied.stall = Some(ChainError { file, line, error });
    } else {
        applied.read_error = batch.error.take();
    }
    Ok(applied)
}

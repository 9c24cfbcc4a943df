//! Driving a [`Replayer`] from a [`ChainReader`]: [`step`] reads and applies one batch (the
//! daemon, following a chain that grows); [`run`] goes through everything the chain holds with
//! reading, decoding and applying overlapped (the offline replay, the audit, the demo). Both
//! apply the same blocks in the same order, so they give the same snapshots.

use std::sync::mpsc;

use crate::block::{Block, BlockError};
use crate::reader::{Batch, ChainReader, Position, ReadError};
use crate::replayer::{ClosedEpoch, Decoder, Replayer};

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
    let batch = reader.next_batch(max_bytes)?;
    let decoded = decode_batch(&replayer.decoder(), &batch);
    let (step, batch) = apply(replayer, batch, decoded);
    if step.stall.is_some() {
        // The reader moves back to just after the last line applied: nothing read past it is
        // lost, and the next step starts at the bad line again.
        match step.blocks {
            0 => reader.rewind(start),
            n => reader.resume_after(&batch, n - 1),
        }
    }
    reader.recycle(batch);
    Ok(step)
}

/// Everything the chain holds now, step by step: what calling [`step`] until a step applies
/// nothing, stalls or meets a read error would do, with the same steps in the same order, but
/// with reading, decoding and applying overlapped. One thread reads batches of about
/// `max_bytes`, the calling thread decodes them (on its rayon pool, so `pool.install` chooses
/// the thread count as it does for [`step`]), and one thread applies them and calls `on_step`;
/// each hands its batch to the next through a channel holding one, and the applied batches go
/// back to the reader for their memory, so at most five batches are in memory at a time.
///
/// A read error before any line of a batch comes as a step that applies nothing and has
/// [`Step::read_error`] set. The run ends after the step that applies nothing, stalls or has a
/// read error, or at the first error `on_step` returns (which is returned). Only after a run
/// that ended with a step applying nothing does the reader stand where [`step`] would have left
/// it; otherwise it may have read ahead.
pub fn run<E: Send>(
    reader: &mut ChainReader,
    replayer: &mut Replayer,
    max_bytes: usize,
    mut on_step: impl FnMut(Step) -> Result<(), E> + Send,
) -> Result<(), E> {
    let decoder = replayer.decoder();
    std::thread::scope(|scope| {
        // When a stage stops early, its receiver goes away, the next send to it fails, and the
        // stages before it end in turn.
        let (read_tx, read_rx) = mpsc::sync_channel::<Result<Batch, ReadError>>(1);
        let (decoded_tx, decoded_rx) = mpsc::sync_channel(1);
        // Applied batches go back to the reader, which reuses their memory. The channel holds as
        // many as can be in flight (one being read, one in each channel, one being decoded, one
        // being applied), so no batch is freed before the run ends: freeing multi-MiB buffers
        // mid-run raises glibc's mmap threshold and lets the heap grow with the chain.
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
        scope.spawn(move || loop {
            if let Ok(spare) = spare_rx.try_recv() {
                reader.recycle(spare);
            }
            let read = reader.next_batch(max_bytes);
            let last = match &read {
                Ok(b) => b.lines.is_empty() || b.stop.is_some() || b.error.is_some(),
                Err(_) => true,
            };
            if read_tx.send(read).is_err() || last {
                break;
            }
        });
        let applier = scope.spawn(move || {
            for (read, decoded) in decoded_rx {
                let step = match read {
                    Ok(batch) => {
                        let (step, batch) = apply(replayer, batch, decoded);
                        // Dropped only once the reader has stopped.
                        let _ = spare_tx.try_send(batch);
                        step
                    }
                    Err(e) => Step {
                        read_error: Some(e),
                        ..Step::default()
                    },
                };
                let last = step.blocks == 0 || step.stall.is_some() || step.read_error.is_some();
                on_step(step)?;
                if last {
                    break;
                }
            }
            Ok(())
        });
        for read in read_rx {
            let decoded = match &read {
                Ok(batch) => decode_batch(&decoder, batch),
                Err(_) => Vec::new(),
            };
            if decoded_tx.send((read, decoded)).is_err() {
                break;
            }
        }
        drop(decoded_tx);
        applier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Batches a [`run`] can hold at once.
const IN_FLIGHT: usize = 5;

/// Decodes every line of `batch` on all cores.
fn decode_batch(decoder: &Decoder, batch: &Batch) -> Vec<Result<Block, BlockError>> {
    let lines: Vec<&[u8]> = (0..batch.lines.len()).map(|i| batch.line(i)).collect();
    decoder.decode_all(&lines)
}

/// Applies the decoded lines of `batch` in order: the step, and the batch back (the reader
/// needs it to resume after a stall).
fn apply(
    replayer: &mut Replayer,
    mut batch: Batch,
    decoded: Vec<Result<Block, BlockError>>,
) -> (Step, Batch) {
    let outcome = replayer.apply(decoded);
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
    match failure {
        Some((file, line, error)) => applied.stall = Some(ChainError { file, line, error }),
        None => applied.read_error = batch.error.take(),
    }
    (applied, batch)
}

//! Reading `tb.chain.v1` JSON Lines from a chain directory (§2).
//!
//! Files `*.jsonl` (not starting with `.`) are read in byte-wise name order. A line is handed out
//! only once its `\n` is present, so a writer may be mid-line; the reader then simply has nothing
//! more until the line completes. Its position (file name, byte offset, line number) is plain data
//! that a checkpoint stores and [`ChainReader::open`] resumes from.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where reading stands: the next unread byte.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// File name within the chain directory; empty before the first file is opened.
    pub file: String,
    /// Byte offset of the next unread line in that file.
    pub offset: u64,
    /// 1-based number of that line.
    pub line: u64,
}

/// One complete line of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRef {
    /// Byte range in the batch buffer, without `\n` and a trailing `\r`.
    pub range: std::ops::Range<usize>,
    /// File it came from.
    pub file: String,
    /// 1-based line number in that file.
    pub line: u64,
    /// Position just after this line (where to resume once it is applied).
    pub next: Position,
}

/// Lines read in one go; `buf` holds their bytes.
#[derive(Debug, Default)]
pub struct Batch {
    /// The bytes of all lines.
    pub buf: Vec<u8>,
    /// The lines, in chain order.
    pub lines: Vec<LineRef>,
    /// Set when reading hit an unterminated line followed by a later file: a block error at
    /// this (file, line) after the lines above.
    pub unterminated: Option<(String, u64)>,
}

impl Batch {
    /// The bytes of line `i`.
    pub fn line(&self, i: usize) -> &[u8] {
        &self.buf[self.lines[i].range.clone()]
    }
}

/// A chain directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ReadError {
    /// File or directory involved.
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

/// Reads complete lines from a chain directory, resumably.
#[derive(Debug)]
pub struct ChainReader {
    dir: PathBuf,
    pos: Position,
    /// Open handle on `pos.file`, positioned at `pos.offset + carry.len()`.
    file: Option<File>,
    /// Bytes read past the last complete line (an unfinished line).
    carry: Vec<u8>,
    /// Read buffer, allocated once (a fresh 1 MiB per read made the allocator's footprint
    /// wander on long replays).
    chunk: Vec<u8>,
}

fn err(path: &Path, source: io::Error) -> ReadError {
    ReadError {
        path: path.to_owned(),
        source,
    }
}

/// The chain files of `dir`, sorted byte-wise.
pub fn chain_files(dir: &Path) -> Result<Vec<String>, ReadError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| err(dir, e))? {
        let entry = entry.map_err(|e| err(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".jsonl") {
            continue;
        }
        // Follows symlinks: an exporter may link its files into the watched directory.
        let is_file = std::fs::metadata(entry.path())
            .map_err(|e| err(&entry.path(), e))?
            .is_file();
        if is_file {
            names.push(name);
        }
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

impl ChainReader {
    /// A reader of `dir` that resumes at `pos` (use `Position::default()` for genesis).
    pub fn open(dir: impl Into<PathBuf>, pos: Position) -> Self {
        ChainReader {
            dir: dir.into(),
            pos,
            file: None,
            carry: Vec::new(),
            chunk: Vec::new(),
        }
    }

    /// Moves back (or forward) to `pos`, dropping any buffered partial line.
    pub fn rewind(&mut self, pos: Position) {
        self.pos = pos;
        self.file = None;
        self.carry.clear();
    }

    /// The position after the last line handed out.
    pub fn position(&self) -> &Position {
        &self.pos
    }

    /// Bytes of an unfinished last line, if any (a writer is mid-line, or the export was cut).
    pub fn pending_bytes(&self) -> usize {
        self.carry.len()
    }

    /// Reads up to about `max_bytes` of complete lines (at least one line when one is ready).
    /// An empty batch means nothing new is complete yet.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Batch, ReadError> {
        let mut batch = Batch::default();
        loop {
            if self.file.is_none() && !self.open_current()? {
                return Ok(batch);
            }
            self.fill(&mut batch, max_bytes)?;
            if batch.buf.len() >= max_bytes {
                return Ok(batch);
            }
            // End of this file for now: move on only if a later file exists.
            let files = chain_files(&self.dir)?;
            let Some(next) = files
                .iter()
                .find(|f| f.as_bytes() > self.pos.file.as_bytes())
            else {
                return Ok(batch);
            };
            // Re-read once more: the writer may have finished the file before starting the next.
            self.fill(&mut batch, max_bytes)?;
            if batch.buf.len() >= max_bytes {
                return Ok(batch);
            }
            if !self.carry.is_empty() {
                batch.unterminated = Some((self.pos.file.clone(), self.pos.line));
                return Ok(batch);
            }
            self.pos = Position {
                file: next.clone(),
                offset: 0,
                line: 1,
            };
            self.file = None;
        }
    }

    /// Opens `pos.file` (or the first file at genesis); false when there is none yet.
    fn open_current(&mut self) -> Result<bool, ReadError> {
        if self.pos.file.is_empty() {
            match chain_files(&self.dir)?.into_iter().next() {
                Some(first) => {
                    self.pos = Position {
                        file: first,
                        offset: 0,
                        line: 1,
                    }
                }
                None => return Ok(false),
            }
        }
        let path = self.dir.join(&self.pos.file);
        let mut file = File::open(&path).map_err(|e| err(&path, e))?;
        file.seek(SeekFrom::Start(self.pos.offset))
            .map_err(|e| err(&path, e))?;
        self.carry.clear();
        self.file = Some(file);
        Ok(true)
    }

    /// Reads what the current file has now, moving complete lines into `batch`.
    fn fill(&mut self, batch: &mut Batch, max_bytes: usize) -> Result<(), ReadError> {
        let path = self.dir.join(&self.pos.file);
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if self.chunk.is_empty() {
            self.chunk = vec![0u8; 1 << 20];
        }
        while batch.buf.len() < max_bytes {
            let n = file.read(&mut self.chunk).map_err(|e| err(&path, e))?;
            if n == 0 {
                break;
            }
            self.carry.extend_from_slice(&self.chunk[..n]);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &self.carry[start..]) {
                let end = start + nl;
                let content_end = if end > start && self.carry[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                let at = batch.buf.len();
                batch.buf.extend_from_slice(&self.carry[start..content_end]);
                let line = self.pos.line;
                self.pos.offset += (end + 1 - start) as u64;
                self.pos.line += 1;
                batch.lines.push(LineRef {
                    range: at..batch.buf.len(),
                    file: self.pos.file.clone(),
                    line,
                    next: self.pos.clone(),
                });
                start = end + 1;
            }
            self.carry.drain(..start);
        }
        Ok(())
    }
}

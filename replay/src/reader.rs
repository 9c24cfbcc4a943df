//! Reading `tb.chain.v1` JSON Lines from a chain directory (docs/formats.md, "Chain export").
//!
//! Files `*.jsonl` (not starting with `.`; symbolic links are followed) are read in byte-wise
//! name order. A line is handed out only once its `\n` is present, so a writer may be mid-line;
//! the reader then simply has nothing more until the line completes. Its position (file name,
//! byte offset, line number, and marks of what was read before it) is plain data that a
//! checkpoint stores and [`ChainReader::open`] resumes from.
//!
//! The reader never skips a line: its position moves only over lines it hands out, and an error
//! met after lines were read in the same call does not lose them (they are handed out with the
//! error). A chain that changes under the reader is an
//! error naming the file and the change, every time it is asked, until the chain is put back:
//!
//! - the file being read was removed, truncated below the position, or rewritten or replaced
//!   (the line just before the position is no longer the one read);
//! - a chain file before the current one appeared, vanished, or changed its length;
//! - the chain directory is missing, or a `*.jsonl` symbolic link cannot be followed.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::block::BlockError;

/// The longest chain line the reader accepts, without its line ending: 16 MiB. A longer line
/// (complete or still without its `\n`) stops reading there with [`BlockError::TooLong`], so
/// memory stays bounded whatever the file holds.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Bytes read from a file at a time.
const CHUNK: usize = 1 << 20;

/// Where reading stands: the next unread byte, and marks of what was read before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// File name within the chain directory; empty before the first file is opened.
    pub file: String,
    /// Byte offset of the next unread line in that file.
    pub offset: u64,
    /// 1-based number of that line.
    pub line: u64,
    /// The line that ends at `offset`, checked whenever the file is reopened and before each
    /// read. `None` at the start of a file, in the per-line positions of a [`Batch`] and in
    /// positions saved by older versions; the reader then only checks that a line ends there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LineMark>,
    /// The chain files before `file` with their lengths, as the reader left them; checked
    /// against the directory on resuming. `None` when not known (older versions, genesis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier: Option<EarlierMark>,
}

/// A line already read, as a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineMark {
    /// Its length in bytes, line ending included.
    pub len: u64,
    /// blake3 (hex) of those bytes.
    pub blake3: String,
}

impl LineMark {
    /// The mark of a line with `content` (as in a [`Batch`]) that took `raw_len` bytes in its
    /// file: the content plus `\n`, or `\r\n` when one byte more.
    fn of(content: &[u8], raw_len: u64) -> LineMark {
        let mut h = blake3::Hasher::new();
        h.update(content);
        h.update(if raw_len == content.len() as u64 + 2 {
            b"\r\n"
        } else {
            b"\n"
        });
        LineMark {
            len: raw_len,
            blake3: h.finalize().to_hex().to_string(),
        }
    }
}

/// The chain files before the current one, as a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlierMark {
    /// How many there are.
    pub count: u64,
    /// blake3 (hex) of `name \0 length \n` for each, in reading order.
    pub blake3: String,
}

impl EarlierMark {
    fn of(files: &[ChainFile]) -> EarlierMark {
        let mut h = blake3::Hasher::new();
        for f in files {
            h.update(f.name.as_bytes());
            h.update(b"\0");
            h.update(f.len.to_string().as_bytes());
            h.update(b"\n");
        }
        EarlierMark {
            count: files.len() as u64,
            blake3: h.finalize().to_hex().to_string(),
        }
    }
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
    /// Byte offset in that file where the line starts.
    pub offset: u64,
    /// Position just after this line (where to resume once it is applied), without marks:
    /// [`ChainReader::resume_after`] adds them.
    pub next: Position,
}

/// Lines read in one go; `buf` holds their bytes.
#[derive(Debug, Default)]
pub struct Batch {
    /// The bytes of all lines.
    pub buf: Vec<u8>,
    /// The lines, in chain order.
    pub lines: Vec<LineRef>,
    /// Set when reading stopped at a line that cannot be read as it stands (an unterminated last
    /// line followed by a later file, or a line over [`MAX_LINE_BYTES`]): a block error at this
    /// file and line, after the lines above.
    pub stop: Option<(String, u64, BlockError)>,
    /// Set when reading failed after the lines above were read: nothing after them was read.
    pub error: Option<ReadError>,
}

impl Batch {
    /// The bytes of line `i`.
    pub fn line(&self, i: usize) -> &[u8] {
        &self.buf[self.lines[i].range.clone()]
    }
}

/// A chain directory could not be read, or changed under the reader.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Listing the directory, or opening or reading a file, failed (for example too many open
    /// files). Asking again retries.
    #[error("{}: {source}", path.display())]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The chain directory does not exist (removed, renamed, or not mounted).
    #[error("chain directory {} is missing", dir.display())]
    DirMissing {
        /// The chain directory.
        dir: PathBuf,
    },
    /// A `*.jsonl` symbolic link whose target cannot be read (missing, or a loop).
    #[error("{}: symbolic link cannot be followed ({source})", path.display())]
    BadLink {
        /// The link.
        path: PathBuf,
        /// Why following it failed.
        source: io::Error,
    },
    /// A chain file changed under the reader.
    #[error("{file}: {change}")]
    Changed {
        /// Chain file name.
        file: String,
        /// What changed.
        change: Change,
    },
}

/// How a chain file changed under the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Change {
    /// The file being read was removed.
    #[error("removed while being read (reading stood at line {line})")]
    Removed {
        /// The next line to read.
        line: u64,
    },
    /// The file being read is now shorter than what was read of it.
    #[error(
        "now {len} bytes, shorter than the {offset} bytes already read (truncated or replaced)"
    )]
    Shrunk {
        /// Its length now.
        len: u64,
        /// The bytes already read.
        offset: u64,
    },
    /// The last line read from the file is no longer there as it was read.
    #[error("line {line}, already read, now holds different bytes (rewritten or replaced)")]
    Rewritten {
        /// That line's number.
        line: u64,
    },
    /// A new chain file sorts before the file being read.
    #[error("a new chain file that sorts before {current}, which is already being read")]
    Appeared {
        /// The file being read.
        current: String,
    },
    /// A chain file read before the current one is gone.
    #[error("removed, although it was read before {current}")]
    Vanished {
        /// The file being read.
        current: String,
    },
    /// A chain file read before the current one changed its length.
    #[error("now {len} bytes, but it had been read to its end at {read} bytes before {current}")]
    Resized {
        /// Its length now.
        len: u64,
        /// Its length when it was read.
        read: u64,
        /// The file being read.
        current: String,
    },
    /// After resuming: the chain files before the current one are not those saved with the
    /// position.
    #[error(
        "the chain files before it are not the ones read before it ({then} files then, {now} now, \
         or their lengths changed)"
    )]
    EarlierDiffer {
        /// How many there were.
        then: u64,
        /// How many there are.
        now: u64,
    },
}

/// A chain file found by listing the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChainFile {
    name: String,
    len: u64,
}

/// (device, inode) of a file, where the platform has them.
type FileId = Option<(u64, u64)>;

#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &fs::Metadata) -> FileId {
    None
}

/// What a file looked like: identity, length and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    id: FileId,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            id: file_id(meta),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// The open current file.
#[derive(Debug)]
struct Open {
    file: File,
    id: FileId,
}

/// A line found too long, and its file as it was then: not read again until the file changes.
#[derive(Debug)]
struct TooLong {
    file: String,
    offset: u64,
    stamp: Stamp,
}

/// Reads complete lines from a chain directory, resumably.
#[derive(Debug)]
pub struct ChainReader {
    dir: PathBuf,
    pos: Position,
    /// Open handle on `pos.file`, positioned at `pos.offset + carry.len()`.
    file: Option<Open>,
    /// Bytes read past the last complete line (an unfinished line).
    carry: Vec<u8>,
    /// The chain files before `pos.file` as this reader last saw them, with the length each was
    /// read to; `None` until the first listing after opening (which checks `pos.earlier`).
    earlier: Option<Vec<ChainFile>>,
    /// The last line found too long.
    too_long: Option<TooLong>,
    /// A batch handed back by [`ChainReader::recycle`]: the next batch reuses its memory rather
    /// than allocating (and faulting in) fresh buffers.
    spare: Option<Batch>,
}

fn io_err(path: &Path, source: io::Error) -> ReadError {
    ReadError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The chain files of `dir`, sorted byte-wise.
pub fn chain_files(dir: &Path) -> Result<Vec<String>, ReadError> {
    Ok(list(dir)?.into_iter().map(|f| f.name).collect())
}

/// The chain files of `dir` with their lengths, sorted byte-wise by name. A file removed while
/// the directory is listed is left out; a symbolic link that cannot be followed is an error.
fn list(dir: &Path) -> Result<Vec<ChainFile>, ReadError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            ReadError::DirMissing {
                dir: dir.to_owned(),
            }
        } else {
            io_err(dir, e)
        }
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".jsonl") {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links: an exporter may link its files into the watched directory.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(ChainFile {
                name,
                len: meta.len(),
            }),
            Ok(_) => {}
            Err(e) => match fs::symlink_metadata(&path) {
                // The entry itself exists: a link whose target is missing, a loop, or a file
                // that cannot be examined.
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ReadError::BadLink { path, source: e })
                }
                Ok(_) => return Err(io_err(&path, e)),
                // Removed since the directory was listed: not part of the chain now.
                Err(_) => {}
            },
        }
    }
    files.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(files)
}

/// Reads `buf.len()` bytes of `file` at `offset` without moving its cursor.
#[cfg(unix)]
fn read_at(file: &File, _path: &Path, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(_file: &File, path: &Path, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// Checks that `file` (now `len` bytes) still holds what was read before `pos`.
fn verify(file: &File, path: &Path, len: u64, pos: &Position) -> Result<(), ReadError> {
    let changed = |change| ReadError::Changed {
        file: pos.file.clone(),
        change,
    };
    if len < pos.offset {
        return Err(changed(Change::Shrunk {
            len,
            offset: pos.offset,
        }));
    }
    if pos.offset == 0 {
        return Ok(());
    }
    let mark = pos
        .last
        .as_ref()
        .filter(|m| (1..=pos.offset).contains(&m.len) && m.len <= MAX_LINE_BYTES as u64 + 2);
    let size = mark.map_or(1, |m| m.len);
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(1)];
    read_at(file, path, &mut buf, pos.offset - size).map_err(|e| io_err(path, e))?;
    let same = match mark {
        Some(m) => tb_canonical::hash_hex(&buf) == m.blake3,
        None => buf == b"\n",
    };
    if same {
        Ok(())
    } else {
        Err(changed(Change::Rewritten {
            line: pos.line.saturating_sub(1),
        }))
    }
}

/// Length of a partial line's content so far (a trailing `\r` may still be its line ending).
fn partial_len(carry: &[u8]) -> usize {
    carry.len() - usize::from(carry.last() == Some(&b'\r'))
}

impl ChainReader {
    /// A reader of `dir` that resumes at `pos` (use `Position::default()` for genesis).
    pub fn open(dir: impl Into<PathBuf>, pos: Position) -> Self {
        ChainReader {
            dir: dir.into(),
            pos,
            file: None,
            carry: Vec::new(),
            earlier: None,
            too_long: None,
            spare: None,
        }
    }

    /// Moves back (or forward) to `pos`, dropping any buffered partial line. What the reader knows
    /// of the files before `pos.file` is kept when `pos` is not after the current position.
    pub fn rewind(&mut self, mut pos: Position) {
        let back = !pos.file.is_empty() && pos.file.as_bytes() <= self.pos.file.as_bytes();
        match self.earlier.take() {
            Some(mut files) if back => {
                files.retain(|f| f.name.as_bytes() < pos.file.as_bytes());
                pos.earlier = Some(EarlierMark::of(&files));
                self.earlier = Some(files);
            }
            _ => {
                if pos.earlier.is_none() && pos.file == self.pos.file {
                    pos.earlier = self.pos.earlier.clone();
                }
            }
        }
        self.pos = pos;
        self.close();
    }

    /// Moves back to just after line `i` of `batch` (the last line applied), with the marks
    /// that let the next read check the file still holds that line.
    pub fn resume_after(&mut self, batch: &Batch, i: usize) {
        let Some(l) = batch.lines.get(i) else {
            return;
        };
        let mut pos = l.next.clone();
        pos.last = Some(LineMark::of(batch.line(i), l.next.offset - l.offset));
        self.rewind(pos);
    }

    /// The position after the last line handed out.
    pub fn position(&self) -> &Position {
        &self.pos
    }

    /// Bytes of an unfinished last line, if any (a writer is mid-line, or the export was cut).
    pub fn pending_bytes(&self) -> usize {
        self.carry.len()
    }

    /// Takes back a batch whose lines are no longer needed, for the next [`next_batch`] to
    /// reuse its memory.
    ///
    /// [`next_batch`]: ChainReader::next_batch
    pub fn recycle(&mut self, mut batch: Batch) {
        if batch.buf.capacity() > 8 * CHUNK {
            // Grown for an unusually long line: not kept for the rest of a long run.
            return;
        }
        batch.buf.clear();
        batch.lines.clear();
        batch.stop = None;
        batch.error = None;
        self.spare = Some(batch);
    }

    /// Reads up to about `max_bytes` of complete lines (at least one line when one is ready).
    /// An empty batch means nothing new is complete yet. An error met before any line is
    /// returned as `Err`; one met after lines were read is in [`Batch::error`], with those
    /// lines. The position stands after the lines handed out either way, so asking again
    /// retries from there.
    pub fn next_batch(&mut self, max_bytes: usize) -> Result<Batch, ReadError> {
        let mut batch = self.spare.take().unwrap_or_default();
        let read = self.read_into(&mut batch, max_bytes);
        self.mark_last(&batch);
        match read {
            Ok(()) => Ok(batch),
            Err(e) if batch.lines.is_empty() => Err(e),
            Err(e) => {
                batch.error = Some(e);
                Ok(batch)
            }
        }
    }

    fn read_into(&mut self, batch: &mut Batch, max_bytes: usize) -> Result<(), ReadError> {
        if self.earlier.is_none() && !self.pos.file.is_empty() {
            // First read since opening: check the files before the saved position.
            let files = list(&self.dir)?;
            self.check_listing(&files)?;
        }
        self.check_current()?;
        loop {
            if self.file.is_none() && !self.pos.file.is_empty() {
                self.open_current()?;
            }
            self.fill(batch, max_bytes)?;
            if batch.stop.is_some() || batch.buf.len() >= max_bytes {
                return Ok(());
            }
            // End of this file for now: move on only if a later file exists.
            let files = list(&self.dir)?;
            self.check_listing(&files)?;
            let Some(next) = files
                .iter()
                .find(|f| f.name.as_bytes() > self.pos.file.as_bytes())
            else {
                return Ok(());
            };
            // Re-read once more: the writer may have finished the file before starting the next.
            self.fill(batch, max_bytes)?;
            if batch.stop.is_some() || batch.buf.len() >= max_bytes {
                return Ok(());
            }
            if !self.carry.is_empty() {
                batch.stop = Some((
                    self.pos.file.clone(),
                    self.pos.line,
                    BlockError::Unterminated,
                ));
                return Ok(());
            }
            let mut earlier = self.earlier.take().unwrap_or_default();
            if files.iter().any(|f| f.name == self.pos.file) {
                earlier.push(ChainFile {
                    name: self.pos.file.clone(),
                    len: self.pos.offset,
                });
            }
            self.pos = Position {
                file: next.name.clone(),
                offset: 0,
                line: 1,
                last: None,
                earlier: Some(EarlierMark::of(&earlier)),
            };
            self.earlier = Some(earlier);
            self.close();
        }
    }

    /// Drops the open file and any partial line.
    fn close(&mut self) {
        self.file = None;
        if self.carry.capacity() > 2 * CHUNK {
            self.carry = Vec::new();
        } else {
            self.carry.clear();
        }
    }

    /// The error for `pos.file` not being found at `path`; `None` when nothing was read from it
    /// yet (it may still come, or the chain goes on with a later file).
    fn missing(&self, path: &Path, e: io::Error) -> Option<ReadError> {
        if e.kind() != io::ErrorKind::NotFound {
            return Some(io_err(path, e));
        }
        if !self.dir.is_dir() {
            return Some(ReadError::DirMissing {
                dir: self.dir.clone(),
            });
        }
        if fs::symlink_metadata(path).is_ok() {
            return Some(ReadError::BadLink {
                path: path.to_owned(),
                source: e,
            });
        }
        (self.pos.offset > 0).then(|| ReadError::Changed {
            file: self.pos.file.clone(),
            change: Change::Removed {
                line: self.pos.line,
            },
        })
    }

    /// Checks that the open file is still the one read: the same file under its name, not
    /// shorter than what was read, and the line before the position unchanged. A file replaced
    /// under its name, or a partial line that changed, is closed so that it is opened (and
    /// checked) again.
    fn check_current(&mut self) -> Result<(), ReadError> {
        let Some(open) = &self.file else {
            return Ok(());
        };
        let path = self.dir.join(&self.pos.file);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                self.close();
                return self.missing(&path, e).map_or(Ok(()), Err);
            }
        };
        if file_id(&meta) != open.id || meta.len() < self.pos.offset + self.carry.len() as u64 {
            self.close();
            return Ok(());
        }
        let checked = verify(&open.file, &path, meta.len(), &self.pos);
        if checked.is_err() {
            self.close();
            return checked;
        }
        if !self.carry.is_empty() {
            // A partial line the writer took back and wrote differently is read again.
            let mut now = vec![0u8; self.carry.len()];
            let same =
                read_at(&open.file, &path, &mut now, self.pos.offset).is_ok() && now == self.carry;
            if !same {
                self.close();
            }
        }
        Ok(())
    }

    /// Opens `pos.file` at `pos.offset` after checking it still holds what was read before. No
    /// file is opened when it is absent and nothing was read from it.
    fn open_current(&mut self) -> Result<(), ReadError> {
        let path = self.dir.join(&self.pos.file);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => return self.missing(&path, e).map_or(Ok(()), Err),
        };
        let meta = file.metadata().map_err(|e| io_err(&path, e))?;
        verify(&file, &path, meta.len(), &self.pos)?;
        file.seek(SeekFrom::Start(self.pos.offset))
            .map_err(|e| io_err(&path, e))?;
        self.carry.clear();
        self.file = Some(Open {
            file,
            id: file_id(&meta),
        });
        Ok(())
    }

    /// Checks a fresh listing against the files before the current one, and that the current
    /// file is still there once something was read from it.
    fn check_listing(&mut self, files: &[ChainFile]) -> Result<(), ReadError> {
        if self.pos.file.is_empty() {
            return Ok(());
        }
        let current = self.pos.file.as_bytes();
        let split = files.partition_point(|f| f.name.as_bytes() < current);
        let (before, rest) = files.split_at(split);
        let changed = |file: &str, change| ReadError::Changed {
            file: file.to_owned(),
            change,
        };
        match &self.earlier {
            Some(known) => {
                if let Some((file, change)) = first_difference(known, before, &self.pos.file) {
                    if !(known.is_empty() && self.pos.offset == 0) {
                        return Err(changed(&file, change));
                    }
                    // Nothing of the chain was read yet: start again from its first file.
                    self.pos = Position::default();
                    self.earlier = Some(Vec::new());
                    self.close();
                    return Ok(());
                }
            }
            None => {
                if let Some(mark) = &self.pos.earlier {
                    if EarlierMark::of(before) != *mark {
                        return Err(changed(
                            &self.pos.file,
                            Change::EarlierDiffer {
                                then: mark.count,
                                now: before.len() as u64,
                            },
                        ));
                    }
                }
                self.earlier = Some(before.to_vec());
            }
        }
        let present = rest.first().is_some_and(|f| f.name == self.pos.file);
        if !present && self.pos.offset > 0 {
            return Err(changed(
                &self.pos.file,
                Change::Removed {
                    line: self.pos.line,
                },
            ));
        }
        Ok(())
    }

    /// Sets `pos.last` from the batch's last line, when the position is just after it.
    fn mark_last(&mut self, batch: &Batch) {
        if self.pos.last.is_some() || self.pos.offset == 0 {
            return;
        }
        let Some(i) = batch.lines.len().checked_sub(1) else {
            return;
        };
        let l = &batch.lines[i];
        if l.file == self.pos.file && l.next.offset == self.pos.offset {
            self.pos.last = Some(LineMark::of(batch.line(i), l.next.offset - l.offset));
        }
    }

    /// Reads what the current file has now, moving complete lines into `batch`.
    fn fill(&mut self, batch: &mut Batch, max_bytes: usize) -> Result<(), ReadError> {
        let Some(open) = self.file.as_mut() else {
            return Ok(());
        };
        // A line found too long is not read again while its file is unchanged.
        let unchanged = self
            .too_long
            .as_ref()
            .filter(|t| t.file == self.pos.file && t.offset == self.pos.offset)
            .map(|t| open.file.metadata().is_ok_and(|m| Stamp::of(&m) == t.stamp));
        match unchanged {
            Some(true) => {
                batch.stop = Some((
                    self.pos.file.clone(),
                    self.pos.line,
                    BlockError::TooLong {
                        max: MAX_LINE_BYTES,
                    },
                ));
                return Ok(());
            }
            Some(false) => self.too_long = None,
            None => {}
        }
        // Reads append to the batch's buffer, after the unfinished line carried over, so the
        // bytes of a line are copied once, by the kernel; only the unfinished line at the end
        // goes back to `carry`. `start` is where the next line starts.
        let mut start = batch.buf.len();
        batch.buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let mut failed = None;
        let mut too_long = false;
        while start < max_bytes && !too_long {
            let read_at = batch.buf.len();
            batch.buf.resize(read_at + CHUNK, 0);
            let read = open.file.read(&mut batch.buf[read_at..]);
            batch.buf.truncate(read_at + *read.as_ref().unwrap_or(&0));
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if n == 0 {
                break;
            }
            let first = start;
            // The bytes before `read_at` hold no `\n` past `start`: search only the new ones.
            let mut from = read_at;
            while let Some(nl) = memchr::memchr(b'\n', &batch.buf[from..]) {
                let end = from + nl;
                let content_end = if end > start && batch.buf[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                if content_end - start > MAX_LINE_BYTES {
                    too_long = true;
                    break;
                }
                let line = self.pos.line;
                let offset = self.pos.offset;
                self.pos.offset += (end + 1 - start) as u64;
                self.pos.line += 1;
                batch.lines.push(LineRef {
                    range: start..content_end,
                    file: self.pos.file.clone(),
                    line,
                    offset,
                    next: Position {
                        file: self.pos.file.clone(),
                        offset: self.pos.offset,
                        line: self.pos.line,
                        last: None,
                        earlier: None,
                    },
                });
                start = end + 1;
                from = start;
            }
            if start > first {
                self.pos.last = None;
            }
            too_long = too_long || partial_len(&batch.buf[start..]) > MAX_LINE_BYTES;
        }
        if failed.is_none() && !too_long {
            self.carry.extend_from_slice(&batch.buf[start..]);
        }
        batch.buf.truncate(start);
        if let Some(e) = failed {
            let path = self.dir.join(&self.pos.file);
            self.close();
            return Err(io_err(&path, e));
        }
        if too_long {
            self.too_long = open.file.metadata().ok().map(|m| TooLong {
                file: self.pos.file.clone(),
                offset: self.pos.offset,
                stamp: Stamp::of(&m),
            });
            batch.stop = Some((
                self.pos.file.clone(),
                self.pos.line,
                BlockError::TooLong {
                    max: MAX_LINE_BYTES,
                },
            ));
            self.close();
        }
        Ok(())
    }
}

/// The first way `now` (the chain files before `current` in a fresh listing) differs from
/// `known`: the file concerned and the change.
fn first_difference(
    known: &[ChainFile],
    now: &[ChainFile],
    current: &str,
) -> Option<(String, Change)> {
    let (mut i, mut j) = (0, 0);
    loop {
        let (k, n) = match (known.get(i), now.get(j)) {
            (None, None) => return None,
            (Some(k), None) => return Some((k.name.clone(), vanished(current))),
            (None, Some(n)) => return Some((n.name.clone(), appeared(current))),
            (Some(k), Some(n)) => (k, n),
        };
        match k.name.as_bytes().cmp(n.name.as_bytes()) {
            std::cmp::Ordering::Less => return Some((k.name.clone(), vanished(current))),
            std::cmp::Ordering::Greater => return Some((n.name.clone(), appeared(current))),
            std::cmp::Ordering::Equal if k.len != n.len => {
                return Some((
                    k.name.clone(),
                    Change::Resized {
                        len: n.len,
                        read: k.len,
                        current: current.to_owned(),
                    },
                ))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
}

fn vanished(current: &str) -> Change {
    Change::Vanished {
        current: current.to_owned(),
    }
}

fn appeared(current: &str) -> Change {
    Change::Appeared {
        current: current.to_owned(),
    }
}

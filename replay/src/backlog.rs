//! The receipt backlog: receipts in complete chain lines that are already written but not yet
//! ingested.
//!
//! A [`Backlog`] follows a [`ChainReader`](crate::ChainReader) from behind and ahead at once: it
//! keeps a *frontier* (the end of the complete lines it has counted) and the receipts between the
//! reader's position and that frontier. After each reading step the caller passes the reader's
//! old and new positions: newly completed lines past the frontier are added, the lines the reader
//! consumed are subtracted. Each byte of the chain is therefore counted twice in its life (once
//! when it appears, once when it is consumed), with a plain byte search for `"market"` keys; no
//! line is decoded. The counts are of *written* receipts, before any validation.
//!
//! The work and memory are bounded: one update scans at most [`LOOKAHEAD_BYTES`] past the
//! frontier (so a daemon far behind a long chain reaches the true count over a few steps instead
//! of reading the whole chain before its next step), and counting stops, as the reader does, at a
//! line longer than [`MAX_LINE_BYTES`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::reader::{chain_files, Position, ReadError, MAX_LINE_BYTES};

/// Receipts per `market` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptCounts {
    /// `"market":"storage"`.
    pub storage: u64,
    /// `"market":"compute"`.
    pub compute: u64,
    /// `"market":"energy"`.
    pub energy: u64,
    /// `"market":"ad"`.
    pub ad: u64,
    /// `storage_slash`, `compute_slash` and `energy_slash`.
    pub slash: u64,
    /// Any other `market` value (the receipt will be rejected as `schema`).
    pub other: u64,
}

impl ReceiptCounts {
    /// Every receipt counted.
    pub fn total(&self) -> u64 {
        [
            self.storage,
            self.compute,
            self.energy,
            self.ad,
            self.slash,
            self.other,
        ]
        .iter()
        .fold(0u64, |sum, n| sum.saturating_add(*n))
    }

    fn add(&mut self, o: &ReceiptCounts) {
        self.storage = self.storage.saturating_add(o.storage);
        self.compute = self.compute.saturating_add(o.compute);
        self.energy = self.energy.saturating_add(o.energy);
        self.ad = self.ad.saturating_add(o.ad);
        self.slash = self.slash.saturating_add(o.slash);
        self.other = self.other.saturating_add(o.other);
    }

    fn sub(&mut self, o: &ReceiptCounts) {
        self.storage = self.storage.saturating_sub(o.storage);
        self.compute = self.compute.saturating_sub(o.compute);
        self.energy = self.energy.saturating_sub(o.energy);
        self.ad = self.ad.saturating_sub(o.ad);
        self.slash = self.slash.saturating_sub(o.slash);
        self.other = self.other.saturating_sub(o.other);
    }
}

/// Counts the receipts in `bytes` (whole lines of `tb.chain.v1`) by their `market` value.
///
/// In a block line the key `"market"` occurs only in receipts (ids and hex strings cannot hold
/// a quote), so every occurrence followed by `:` and a string is one receipt.
pub fn count_receipts(bytes: &[u8]) -> ReceiptCounts {
    let mut c = ReceiptCounts::default();
    let key = b"\"market\"";
    for at in memchr::memmem::find_iter(bytes, key) {
        let Some(value) = string_value(&bytes[at + key.len()..]) else {
            continue;
        };
        let slot = match value {
            b"storage" => &mut c.storage,
            b"compute" => &mut c.compute,
            b"energy" => &mut c.energy,
            b"ad" => &mut c.ad,
            b"storage_slash" | b"compute_slash" | b"energy_slash" => &mut c.slash,
            _ => &mut c.other,
        };
        *slot = slot.saturating_add(1);
    }
    c
}

/// The string after `: "` (JSON whitespace allowed around the colon), up to its closing quote.
fn string_value(rest: &[u8]) -> Option<&[u8]> {
    let rest = skip_ws(rest).strip_prefix(b":")?;
    let rest = skip_ws(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// `s` without its leading JSON whitespace.
fn skip_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(s.len());
    &s[start..]
}

/// Where counting stands inside one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Mark {
    /// File name; empty = before the first file.
    file: String,
    /// Byte offset in it.
    offset: u64,
}

impl Mark {
    fn of(p: &Position) -> Mark {
        Mark {
            file: p.file.clone(),
            offset: p.offset,
        }
    }
}

/// Receipts waiting between a reader's position and the end of the complete lines on disk.
#[derive(Debug)]
pub struct Backlog {
    dir: PathBuf,
    frontier: Mark,
    pending: ReceiptCounts,
    buf: Vec<u8>,
    /// Bytes one update scans past the frontier at most ([`LOOKAHEAD_BYTES`]; smaller in tests).
    lookahead: u64,
    /// The frontier stopped at a line over [`MAX_LINE_BYTES`]: that file's path and length then.
    /// Until the file changes length nothing past the frontier is rescanned (it would only read
    /// the same long line again at every poll).
    stuck: Option<(PathBuf, u64)>,
}

/// Bytes read per system call while counting.
const CHUNK: usize = 1 << 20;

/// The most bytes past the frontier one [`Backlog::update`] scans.
pub const LOOKAHEAD_BYTES: u64 = 64 << 20;

impl Backlog {
    /// A backlog of `dir` for a reader at `at`, with nothing counted yet: the first
    /// [`Backlog::update`] counts everything complete after `at`.
    pub fn new(dir: impl Into<PathBuf>, at: &Position) -> Backlog {
        Backlog {
            dir: dir.into(),
            frontier: Mark::of(at),
            pending: ReceiptCounts::default(),
            buf: Vec::new(),
            lookahead: LOOKAHEAD_BYTES,
            stuck: None,
        }
    }

    /// Receipts in complete lines past the reader, as of the last update.
    pub fn pending(&self) -> ReceiptCounts {
        self.pending
    }

    /// The reader moved from `from` to `to` (each a position at a line boundary, `to` not
    /// before `from`): counts the lines completed since the last update and drops the ones the
    /// reader consumed. Returns the new pending counts.
    pub fn update(&mut self, from: &Position, to: &Position) -> Result<ReceiptCounts, ReadError> {
        let unchanged = self
            .stuck
            .as_ref()
            .is_some_and(|(path, len)| std::fs::metadata(path).is_ok_and(|m| m.len() == *len));
        if !unchanged {
            self.stuck = None;
            let (fresh, frontier) = self.count(&self.frontier.clone(), None, self.lookahead)?;
            self.frontier = frontier;
            self.pending.add(&fresh);
        }
        let (consumed, _) = self.count(&Mark::of(from), Some(&Mark::of(to)), u64::MAX)?;
        self.pending.sub(&consumed);
        Ok(self.pending)
    }

    /// The reader at `at` has consumed every complete line: nothing is pending.
    pub fn caught_up(&mut self, at: &Position) {
        self.frontier = Mark::of(at);
        self.pending = ReceiptCounts::default();
    }

    /// Counts the receipts of the complete lines from `from` up to `to` (or, with `None`, up to
    /// the end of the last complete line in the chain), reading at most about `budget` bytes.
    /// Returns the counts and where counting stopped. Counting stops early at an unterminated
    /// line that is followed by a later file, or one over [`MAX_LINE_BYTES`] (the reader stalls
    /// there too).
    fn count(
        &mut self,
        from: &Mark,
        to: Option<&Mark>,
        mut budget: u64,
    ) -> Result<(ReceiptCounts, Mark), ReadError> {
        let mut total = ReceiptCounts::default();
        let files = chain_files(&self.dir)?;
        let mut at = from.clone();
        for name in &files {
            if !from.file.is_empty() && name.as_bytes() < from.file.as_bytes() {
                continue;
            }
            if let Some(to) = to {
                if !to.file.is_empty() && name.as_bytes() > to.file.as_bytes() {
                    break;
                }
                if to.file.is_empty() {
                    break;
                }
            }
            let start = if *name == from.file { from.offset } else { 0 };
            let to_end = to.filter(|t| t.file == *name).map(|t| t.offset);
            let capped = to_end.unwrap_or(u64::MAX).min(start.saturating_add(budget));
            let end = (capped != u64::MAX).then_some(capped);
            let path = self.dir.join(name);
            let (counts, complete_end, tail) = self.count_file(&path, start, end)?;
            total.add(&counts);
            budget = budget.saturating_sub(complete_end - start);
            at = Mark {
                file: name.clone(),
                offset: complete_end,
            };
            if to_end.is_some() || tail || budget == 0 {
                break;
            }
        }
        Ok((total, at))
    }

    /// Counts complete lines of one file from `start` to `end` (or its current end). Returns the
    /// counts, the offset after the last complete line counted, and whether unterminated bytes
    /// follow it.
    fn count_file(
        &mut self,
        path: &Path,
        start: u64,
        end: Option<u64>,
    ) -> Result<(ReceiptCounts, u64, bool), ReadError> {
        let err = |source| ReadError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(err)?;
        file.seek(SeekFrom::Start(start)).map_err(err)?;
        let mut counts = ReceiptCounts::default();
        let mut done = start;
        let mut carry: Vec<u8> = Vec::new();
        if self.buf.len() != CHUNK {
            self.buf = vec![0u8; CHUNK];
        }
        loop {
            let want = match end {
                Some(e) => {
                    let left = e.saturating_sub(done + carry.len() as u64);
                    usize::try_from(left).unwrap_or(CHUNK).min(CHUNK)
                }
                None => CHUNK,
            };
            if want == 0 {
                break;
            }
            let n = file.read(&mut self.buf[..want]).map_err(err)?;
            if n == 0 {
                break;
            }
            carry.extend_from_slice(&self.buf[..n]);
            if let Some(last) = memchr::memrchr(b'\n', &carry) {
                counts.add(&count_receipts(&carry[..=last]));
                done += (last + 1) as u64;
                carry.drain(..=last);
            }
            if carry.len() > MAX_LINE_BYTES {
                // An over-long line: the reader stops at it, and so does counting.
                let len = file.metadata().map_err(err)?.len();
                self.stuck = Some((path.to_owned(), len));
                break;
            }
        }
        Ok((counts, done, !carry.is_empty()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(markets: &[&str]) -> String {
        let receipts: Vec<String> = markets
            .iter()
            .map(|m| format!("{{\"market\":\"{m}\",\"provider\":\"p\"}}"))
            .collect();
        format!("{{\"height\":0,\"receipts\":[{}]}}\n", receipts.join(","))
    }

    #[test]
    fn counts_markets_with_json_whitespace() {
        let bytes = b"{\"receipts\":[{\"market\" : \"storage\"},{\"market\":\"compute_slash\"},\
                      {\"market\":\"nope\"},{\"market\":\t\"ad\"}],\"x\":\"market\"}\n";
        let c = count_receipts(bytes);
        assert_eq!((c.storage, c.slash, c.other, c.ad), (1, 1, 1, 1));
        assert_eq!(c.total(), 4);
    }

    #[test]
    fn follows_a_reader_across_files_and_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("blocks-000000.jsonl");
        let l1 = line(&["storage", "compute"]);
        let l2 = line(&["energy"]);
        std::fs::write(&a, format!("{l1}{l2}{{\"partial\":")).unwrap();
        let start = Position::default();
        let mut b = Backlog::new(dir.path(), &start);
        // Nothing consumed yet: both complete lines are pending, the partial line is not.
        let p = b.update(&start, &start).unwrap();
        assert_eq!((p.storage, p.compute, p.energy, p.total()), (1, 1, 1, 3));
        // The reader consumed the first line.
        let after1 = Position {
            file: "blocks-000000.jsonl".into(),
            offset: l1.len() as u64,
            line: 2,
            ..Position::default()
        };
        let p = b.update(&start, &after1).unwrap();
        assert_eq!((p.storage, p.compute, p.energy), (0, 0, 1));
        // A second file appears; the partial line of the first is completed.
        std::fs::write(
            &a,
            format!(
                "{l1}{l2}{}",
                line(&["ad", "ad"]).replacen('{', "{\"partial\":0,", 1)
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("blocks-000001.jsonl"),
            line(&["storage", "energy_slash"]),
        )
        .unwrap();
        let p = b.update(&after1, &after1).unwrap();
        assert_eq!((p.energy, p.ad, p.storage, p.slash), (1, 2, 1, 1), "{p:?}");
        // The reader drains everything and moves to the second file's end.
        let end = Position {
            file: "blocks-000001.jsonl".into(),
            offset: line(&["storage", "energy_slash"]).len() as u64,
            line: 2,
            ..Position::default()
        };
        let p = b.update(&after1, &end).unwrap();
        assert_eq!(p, ReceiptCounts::default());
    }

    #[test]
    fn one_update_scans_a_bounded_stretch_and_later_ones_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let l = line(&["storage"]);
        std::fs::write(dir.path().join("blocks-000000.jsonl"), l.repeat(10)).unwrap();
        std::fs::write(dir.path().join("blocks-000001.jsonl"), l.repeat(10)).unwrap();
        let start = Position::default();
        let mut b = Backlog::new(dir.path(), &start);
        b.lookahead = 3 * l.len() as u64 + 1; // three whole lines and a bit
        let seen: Vec<u64> = (0..8)
            .map(|_| b.update(&start, &start).unwrap().storage)
            .collect();
        assert_eq!(seen, [3, 6, 9, 12, 15, 18, 20, 20]);
    }

    #[test]
    fn counting_stops_at_an_over_long_line_as_the_reader_does() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}{}", line(&["energy"]), "x".repeat(MAX_LINE_BYTES + 10));
        std::fs::write(dir.path().join("blocks-000000.jsonl"), long).unwrap();
        std::fs::write(dir.path().join("blocks-000001.jsonl"), line(&["ad"])).unwrap();
        let start = Position::default();
        let mut b = Backlog::new(dir.path(), &start);
        let p = b.update(&start, &start).unwrap();
        assert_eq!((p.energy, p.ad, p.total()), (1, 0, 1), "{p:?}");
        // Not read again while the file keeps its length; read again once it changes.
        let first = dir.path().join("blocks-000000.jsonl");
        assert_eq!(b.stuck.as_ref().map(|(p, _)| p), Some(&first));
        assert_eq!(b.update(&start, &start).unwrap().total(), 1);
        std::fs::write(&first, line(&["energy"]).repeat(2)).unwrap();
        let p = b.update(&start, &start).unwrap();
        assert_eq!((p.energy, p.ad), (2, 1), "{p:?}");
        assert!(b.stuck.is_none());
    }
}

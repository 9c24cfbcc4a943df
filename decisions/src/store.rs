//! Atomic, durable, idempotent record writes.
//!
//! A record is written to a temp file in the directory's own temp directory ([`TEMP_DIR`], on
//! the same file system), fsynced, linked into place only if no file of that name exists (never
//! overwriting), and the record directory is fsynced. Writing a record that already exists is a
//! no-op when the bytes are equal and a divergence error when they are not: something changed
//! the inputs, and an operator must look.
//!
//! Temp files live apart so that cleaning up after an interrupted write means emptying
//! [`TEMP_DIR`], whatever the number of records; older versions wrote them (`.tmp-*`) next to
//! the records, and [`remove_temp_files`] of the record directory removes those.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::diff::first_difference;
use crate::verify::check_one;
use crate::Signer;
use crate::{parse_record_name, record_name, sidecar_name};

/// A record directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error while doing `what` to `path`. The message includes the I/O error's text,
    /// so it is not also given as the error's source (each cause is shown once).
    #[error("{what} {path}: {error}")]
    Io {
        /// What was being done: `writing`, `reading`, `listing`, ….
        what: &'static str,
        /// The record file (never the temp file a write goes through) or the directory.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// A different record already exists for this epoch.
    #[error(
        "{kind} divergence at epoch {epoch}: {path} already exists with different content \
         (first differing field: {field}); the inputs changed since it was written"
    )]
    Divergence {
        /// What kind of record (`decision`, `snapshot`).
        kind: &'static str,
        /// The epoch.
        epoch: u64,
        /// The existing file.
        path: PathBuf,
        /// Dotted path of the first differing field.
        field: String,
    },
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file did not exist and now does.
    Written,
    /// The file existed with exactly these bytes.
    Unchanged,
}

/// What [`RecordStore::write_attested`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attested {
    /// What writing the record did.
    pub outcome: WriteOutcome,
    /// The sidecar on disk checks against the record and the signer's key (false unsigned).
    pub verified: bool,
}

/// The steps of a write, for fault injection in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The temp file holds every byte.
    Written,
    /// The temp file is fsynced.
    Synced,
    /// The record is in place under its final name.
    Renamed,
    /// The directory entry is fsynced.
    DirSynced,
}

/// The subdirectory of a record directory that holds the temp files of writes in progress.
pub const TEMP_DIR: &str = ".tmp";

/// When written records reach the disk. Either way a record appears whole under its name or not
/// at all, is never overwritten, and survives the writing process being killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each write returns once the record and its directory entry are on disk (the temp file
    /// and then the directory fsynced): a power loss at any moment loses no record written
    /// before it. What a daemon needs, whose records others act on as they appear.
    #[default]
    EachWrite,
    /// Records reach the disk when the kernel writes them back, or at the latest at
    /// [`RecordStore::flush`]: for a one-shot command that flushes once before it reports
    /// success. A power loss before the flush may leave records written since then missing or
    /// empty. On systems other than Linux this is [`Durability::EachWrite`].
    AtFlush,
}

/// A directory of per-epoch records.
#[derive(Debug, Clone)]
pub struct RecordStore {
    /// Where the records are.
    dir: PathBuf,
    /// What they are (`decision`, `snapshot`), for messages.
    kind: &'static str,
    /// Whether each write waits for the disk.
    durability: Durability,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io {
        what,
        path: path.to_owned(),
        error,
    }
}

/// The error without the temp file path `tempfile` appends to its messages (` at path "…"`), so
/// a failed write names only the record file. Other errors pass through unchanged.
fn without_temp_path(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() || e.get_ref().is_none() {
        return e;
    }
    let text = e.to_string();
    match text.rfind(" at path \"") {
        Some(cut) => io::Error::new(e.kind(), &text[..cut]),
        None => e,
    }
}

/// Removes the `.tmp-*` files an interrupted atomic write left in `dir` (a missing `dir` has
/// none) and returns how many. Only for the directory's single writer, at startup: a temp file
/// is never read, and nothing else writes there.
pub fn remove_temp_files(dir: &Path) -> Result<usize, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            std::fs::remove_file(entry.path()).map_err(io_err("removing", &entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl RecordStore {
    /// Opens (creating if needed) a record directory; `kind` names the records in errors.
    pub fn open(dir: impl Into<PathBuf>, kind: &'static str) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))?;
        Ok(RecordStore {
            dir,
            kind,
            durability: Durability::EachWrite,
        })
    }

    /// The same store with writes of this durability (default [`Durability::EachWrite`]).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        if cfg!(target_os = "linux") {
            self.durability = durability;
        }
        self
    }

    /// Makes every record written so far durable: with [`Durability::AtFlush`], flushes the
    /// file system holding the directory (`syncfs`), which also reports a write-back that
    /// failed; with [`Durability::EachWrite`] there is nothing left to do.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.durability == Durability::EachWrite {
            return Ok(());
        }
        let dir = File::open(&self.dir).map_err(io_err("flushing", &self.dir))?;
        sync_fs(&dir).map_err(io_err("flushing", &self.dir))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the temp files writes go through ([`TEMP_DIR`]; created by the first
    /// write).
    pub fn temp_dir(&self) -> PathBuf {
        self.dir.join(TEMP_DIR)
    }

    /// Path of the record of `epoch`.
    pub fn path(&self, epoch: u64) -> PathBuf {
        self.dir.join(record_name(epoch))
    }

    /// Path of the sidecar of `epoch`.
    pub fn sidecar_path(&self, epoch: u64) -> PathBuf {
        self.dir.join(sidecar_name(epoch))
    }

    /// Writes the record of `epoch` (see the module doc).
    pub fn write(&self, epoch: u64, bytes: &[u8]) -> Result<WriteOutcome, StoreError> {
        self.write_with(epoch, bytes, &mut |_| Ok(()))
    }

    /// [`RecordStore::write`] with `hook` called after each [`Step`]; an error from the hook
    /// aborts the write there, as a crash would.
    pub fn write_with(
        &self,
        epoch: u64,
        bytes: &[u8],
        hook: &mut dyn FnMut(Step) -> io::Result<()>,
    ) -> Result<WriteOutcome, StoreError> {
        let path = self.path(epoch);
        if let Some(outcome) = self.compare_existing(epoch, &path, bytes)? {
            if self.durability == Durability::EachWrite {
                sync_dir_of(&self.dir, &path)?;
            }
            return Ok(outcome);
        }
        match write_new(&self.dir, &path, bytes, self.durability, hook) {
            Err(StoreError::Io { error, .. }) if error.kind() == io::ErrorKind::AlreadyExists => {
                // Someone else wrote it between our check and our link: compare again.
                self.compare_existing(epoch, &path, bytes)?
                    .ok_or_else(|| io_err("writing", &path)(error))
            }
            other => other,
        }
    }

    /// Writes the record of `epoch`, then, with a `signer`, its attestation sidecar: the order
    /// every writer keeps, so that a sidecar never exists without its record. The sidecar on disk
    /// afterwards (possibly an older one, never replaced) is checked against the record and the
    /// signer's key.
    pub fn write_attested(
        &self,
        epoch: u64,
        bytes: &[u8],
        signer: Option<&Signer>,
    ) -> Result<Attested, StoreError> {
        let outcome = self.write(epoch, bytes)?;
        let Some(signer) = signer else {
            return Ok(Attested {
                outcome,
                verified: false,
            });
        };
        self.write_sidecar(epoch, &signer.attest(bytes).to_bytes())?;
        let on_disk = self.read_sidecar(epoch)?.unwrap_or_default();
        let verified = check_one(bytes, &on_disk, &[signer.verifying_key()]).is_none();
        Ok(Attested { outcome, verified })
    }

    /// Writes a sidecar for `epoch` unless one exists (an existing sidecar is never replaced).
    pub fn write_sidecar(&self, epoch: u64, bytes: &[u8]) -> Result<WriteOutcome, StoreError> {
        let path = self.sidecar_path(epoch);
        if path.exists() {
            return Ok(WriteOutcome::Unchanged);
        }
        match write_new(&self.dir, &path, bytes, self.durability, &mut |_| Ok(())) {
            Err(StoreError::Io { error, .. }) if error.kind() == io::ErrorKind::AlreadyExists => {
                Ok(WriteOutcome::Unchanged)
            }
            other => other,
        }
    }

    fn compare_existing(
        &self,
        epoch: u64,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Option<WriteOutcome>, StoreError> {
        match std::fs::read(path) {
            Ok(existing) if existing == bytes => Ok(Some(WriteOutcome::Unchanged)),
            Ok(existing) => Err(StoreError::Divergence {
                kind: self.kind,
                epoch,
                path: path.to_owned(),
                field: first_difference(&existing, bytes).unwrap_or_else(|| "(bytes)".to_owned()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", path)(e)),
        }
    }

    /// Reads the record of `epoch`, if present.
    pub fn read(&self, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
        read_optional(&self.path(epoch))
    }

    /// Reads the sidecar of `epoch`, if present.
    pub fn read_sidecar(&self, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
        read_optional(&self.sidecar_path(epoch))
    }

    /// The epochs that have a record, ascending. A directory whose records have no gap (what a
    /// writer of consecutive epochs leaves) costs one pass over its names and no memory; one with
    /// gaps costs a second pass and holds its epoch numbers.
    pub fn epochs(&self) -> Result<Epochs, StoreError> {
        let mut span: Option<(u64, u64, u64)> = None;
        self.each_name(|name| {
            if let Some(e) = parse_record_name(name) {
                span = Some(match span {
                    None => (e, e, 1),
                    Some((lo, hi, n)) => (lo.min(e), hi.max(e), n + 1),
                });
            }
        })?;
        Ok(Epochs(match span {
            None => Walk::Listed(Vec::new().into_iter()),
            Some((lo, hi, n)) if hi - lo == n - 1 => Walk::Run(lo..=hi),
            Some(_) => Walk::Listed(self.list()?.records.into_iter()),
        }))
    }

    /// The epochs with a record and the epochs with a sidecar, each ascending, from one
    /// directory listing.
    pub fn list(&self) -> Result<Listing, StoreError> {
        let mut out = Listing::default();
        self.each_name(|name| match name.strip_suffix(".sig") {
            Some(record) => out.sidecars.extend(parse_record_name(record)),
            None => out.records.extend(parse_record_name(name)),
        })?;
        out.records.sort_unstable();
        out.sidecars.sort_unstable();
        Ok(out)
    }

    /// The records from epoch `from` up to the first epoch without one, and which of them have
    /// a sidecar: what lies beyond a known epoch, found without listing the directory.
    pub fn list_from(&self, from: u64) -> Result<Listing, StoreError> {
        let mut out = Listing::default();
        let mut next = Some(from);
        while let Some(epoch) = next {
            if !exists(&self.path(epoch))? {
                break;
            }
            out.records.push(epoch);
            if exists(&self.sidecar_path(epoch))? {
                out.sidecars.push(epoch);
            }
            next = epoch.checked_add(1);
        }
        Ok(out)
    }

    /// Calls `each` with every UTF-8 name in the directory.
    fn each_name(&self, mut each: impl FnMut(&str)) -> Result<(), StoreError> {
        for entry in std::fs::read_dir(&self.dir).map_err(io_err("listing", &self.dir))? {
            let entry = entry.map_err(io_err("listing", &self.dir))?;
            if let Some(name) = entry.file_name().to_str() {
                each(name);
            }
        }
        Ok(())
    }
}

/// The epochs of a record directory, ascending ([`RecordStore::epochs`]).
#[derive(Debug, Clone)]
pub struct Epochs(Walk);

/// How [`Epochs`] walks: a gapless run needs only its ends.
#[derive(Debug, Clone)]
enum Walk {
    Run(std::ops::RangeInclusive<u64>),
    Listed(std::vec::IntoIter<u64>),
}

impl Iterator for Epochs {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match &mut self.0 {
            Walk::Run(r) => r.next(),
            Walk::Listed(l) => l.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Walk::Run(r) => r.size_hint(),
            Walk::Listed(l) => l.size_hint(),
        }
    }
}

/// What a record directory holds, by epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Epochs with a record file, ascending.
    pub records: Vec<u64>,
    /// Epochs with a sidecar, ascending (a sidecar without its record is listed too).
    pub sidecars: Vec<u64>,
}

impl Listing {
    /// Epochs with a record but no sidecar, ascending.
    pub fn unsigned(&self) -> Vec<u64> {
        self.records
            .iter()
            .copied()
            .filter(|e| self.sidecars.binary_search(e).is_err())
            .collect()
    }
}

/// Whether `path` exists; an error other than "not found" is reported, naming it.
fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists().map_err(io_err("reading", path))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

/// fsyncs `dir`, the directory holding `path`; a failure names `path`.
fn sync_dir_of(dir: &Path, path: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing the directory entry of", path))
}

/// Temp file in `dir`'s [`TEMP_DIR`] (created if missing), write, fsync, link into place
/// without replacing anything, fsync `dir`; the fsyncs only with [`Durability::EachWrite`].
/// Every error names `path`, never the temp file.
fn write_new(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    durability: Durability,
    hook: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<WriteOutcome, StoreError> {
    let e = io_err("writing", path);
    let each = durability == Durability::EachWrite;
    let mut tmp = match temp_file_in(&dir.join(TEMP_DIR)) {
        Ok(tmp) => tmp,
        Err(err) => return Err(e(without_temp_path(err))),
    };
    tmp.write_all(bytes)
        .and_then(|()| hook(Step::Written))
        .and_then(|()| {
            if each {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .and_then(|()| hook(Step::Synced))
        .and_then(|()| tmp.persist_noclobber(path).map(drop).map_err(|p| p.error))
        .and_then(|()| hook(Step::Renamed))
        .map_err(|err| e(without_temp_path(err)))?;
    if each {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .and_then(|()| hook(Step::DirSynced))
            .map_err(io_err("syncing the directory entry of", path))?;
    }
    Ok(WriteOutcome::Written)
}

/// Flushes the file system holding `file` (Linux only: elsewhere [`Durability::AtFlush`] is
/// never in effect, so this is not called).
#[cfg(target_os = "linux")]
fn sync_fs(file: &File) -> io::Result<()> {
    rustix::fs::syncfs(file).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_fs(_file: &File) -> io::Result<()> {
    Ok(())
}

/// A `.tmp-*` file in `temp_dir`, creating the directory the first time. The directory entry
/// need not be durable: a record linked out of it is made durable by its own directory's fsync.
fn temp_file_in(temp_dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let create = || {
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(temp_dir)
    };
    match create() {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            match std::fs::create_dir(temp_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            create()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, RecordStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::open(dir.path().join("decisions"), "decision").unwrap();
        (dir, store)
    }

    #[test]
    fn same_bytes_are_a_no_op_and_different_bytes_diverge() {
        let (_d, s) = store();
        assert_eq!(s.write(3, br#"{"a":1}"#).unwrap(), WriteOutcome::Written);
        assert_eq!(s.write(3, br#"{"a":1}"#).unwrap(), WriteOutcome::Unchanged);
        let err = s.write(3, br#"{"a":2}"#).unwrap_err().to_string();
        assert!(err.contains("decision divergence at epoch 3"), "{err}");
        assert!(err.contains("first differing field: a"), "{err}");
        assert_eq!(s.read(3).unwrap().unwrap(), br#"{"a":1}"#);
        assert_eq!(s.epochs().unwrap().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn an_interrupted_write_leaves_nothing_or_everything_and_a_rerun_completes() {
        let bytes = br#"{"epoch":7,"x":"complete"}"#;
        for fail_at in [Step::Written, Step::Synced, Step::Renamed, Step::DirSynced] {
            let (_d, s) = store();
            interrupted_write(fail_at, bytes, s);
        }
        // Deferred durability goes through the same steps but the last (nothing to fsync).
        for fail_at in [Step::Written, Step::Synced, Step::Renamed] {
            let (_d, s) = store();
            interrupted_write(fail_at, bytes, s.with_durability(Durability::AtFlush));
        }
    }

    #[test]
    fn deferred_writes_reach_no_directory_fsync_and_flush_names_a_missing_directory() {
        let (_d, s) = store();
        let s = s.with_durability(Durability::AtFlush);
        let mut steps = Vec::new();
        let outcome = s.write_with(1, b"{}", &mut |step| {
            steps.push(step);
            Ok(())
        });
        assert_eq!(outcome.unwrap(), WriteOutcome::Written);
        assert_eq!(steps, [Step::Written, Step::Synced, Step::Renamed]);
        assert_eq!(s.write(1, b"{}").unwrap(), WriteOutcome::Unchanged);
        assert!(matches!(
            s.write(1, b"[]"),
            Err(StoreError::Divergence { .. })
        ));
        s.flush().unwrap();
        std::fs::remove_dir_all(s.dir()).unwrap();
        let err = s.flush().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("flushing {}: ", s.dir().display())),
            "{err}"
        );
        // Immediate durability has nothing left to flush.
        let (_d, s) = store();
        std::fs::remove_dir_all(s.dir()).unwrap();
        s.flush().unwrap();
    }

    /// Fails a write of epoch 7 at `fail_at`, checks what is left, then writes it again.
    fn interrupted_write(fail_at: Step, bytes: &[u8], s: RecordStore) {
        let err = s
            .write_with(7, bytes, &mut |step| {
                if step == fail_at {
                    Err(io::Error::other("injected crash"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("injected crash"),
            "{fail_at:?}: {err}"
        );
        match s.read(7).unwrap() {
            None => assert!(
                matches!(fail_at, Step::Written | Step::Synced),
                "{fail_at:?}"
            ),
            Some(b) => assert_eq!(b, bytes, "{fail_at:?}: partial file"),
        }
        // No stray record names: temp files live in their own directory.
        assert!(s.epochs().unwrap().count() <= 1);
        let names: Vec<_> = std::fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != TEMP_DIR && parse_record_name(n).is_none())
            .collect();
        assert!(names.is_empty(), "{fail_at:?}: {names:?}");
        let again = s.write(7, bytes).unwrap();
        assert_eq!(s.read(7).unwrap().unwrap(), bytes, "{fail_at:?}");
        let expected = if matches!(fail_at, Step::Written | Step::Synced) {
            WriteOutcome::Written
        } else {
            WriteOutcome::Unchanged
        };
        assert_eq!(again, expected, "{fail_at:?}");
    }

    #[test]
    fn a_failed_write_names_the_record_file_once_and_never_its_temp_file() {
        let bytes = br#"{"epoch":7}"#;
        for fail_at in [Step::Written, Step::Synced, Step::Renamed] {
            let (_d, s) = store();
            let err = s
                .write_with(7, bytes, &mut |step| {
                    if step == fail_at {
                        Err(io::Error::other("disk on fire"))
                    } else {
                        Ok(())
                    }
                })
                .unwrap_err();
            let text = err.to_string();
            let record = s.path(7).display().to_string();
            assert_eq!(
                text,
                format!("writing {record}: disk on fire"),
                "{fail_at:?}"
            );
            // The message carries the I/O error, so it is not repeated as a source.
            assert!(std::error::Error::source(&err).is_none());
        }
        // A real failure from the temp file itself (its directory is gone): tempfile's message
        // names the temp path; ours names the record.
        let (_d, s) = store();
        std::fs::remove_dir(s.dir()).unwrap();
        let text = s.write(7, bytes).unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("writing {}: ", s.path(7).display())),
            "{text}"
        );
        assert!(!text.contains(".tmp-"), "{text}");
        assert!(text.contains("os error 2"), "{text}");
    }

    #[test]
    fn sidecars_are_never_replaced() {
        let (_d, s) = store();
        assert_eq!(s.write_sidecar(0, b"first").unwrap(), WriteOutcome::Written);
        assert_eq!(
            s.write_sidecar(0, b"second").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(s.read_sidecar(0).unwrap().unwrap(), b"first");
    }

    #[test]
    fn stale_temp_files_are_removed_and_a_missing_directory_has_none() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(".tmp-abc"), b"x").unwrap();
        std::fs::write(tmp.path().join("keep.json"), b"x").unwrap();
        assert_eq!(remove_temp_files(tmp.path()).unwrap(), 1);
        assert!(tmp.path().join("keep.json").exists());
        assert!(!tmp.path().join(".tmp-abc").exists());
        assert_eq!(remove_temp_files(&tmp.path().join("nope")).unwrap(), 0);
    }

    #[test]
    fn temp_files_live_in_the_temp_dir() {
        let (_d, s) = store();
        s.write(1, b"{}").unwrap();
        let left = std::fs::read_dir(s.temp_dir()).unwrap().count();
        assert_eq!(left, 0, "a completed write left its temp file");
        // What a crash between the temp file's creation and its link leaves behind.
        std::fs::write(s.temp_dir().join(".tmp-left"), b"{").unwrap();
        assert_eq!(remove_temp_files(s.dir()).unwrap(), 0);
        assert_eq!(remove_temp_files(&s.temp_dir()).unwrap(), 1);
        assert_eq!(s.epochs().unwrap().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn epochs_come_in_order_with_or_without_gaps() {
        let (_d, s) = store();
        assert_eq!(s.epochs().unwrap().count(), 0);
        for e in [5, 3, 4] {
            s.write(e, b"{}").unwrap();
        }
        s.write_sidecar(4, b"sig").unwrap();
        assert_eq!(s.epochs().unwrap().collect::<Vec<_>>(), [3, 4, 5]);
        s.write(9, b"{}").unwrap();
        assert_eq!(s.epochs().unwrap().collect::<Vec<_>>(), [3, 4, 5, 9]);
        // From a known epoch up to the first gap, with the sidecars found on the way.
        let from = s.list_from(4).unwrap();
        assert_eq!((from.records, from.sidecars), (vec![4, 5], vec![4]));
        assert_eq!(s.list_from(6).unwrap(), Listing::default());
    }
}

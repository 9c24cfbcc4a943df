//! The data directory's exclusive lock: an OS lock (`flock`) on `<data_dir>/LOCK`.
//!
//! Every command that writes into a data directory takes it first and holds it for the rest of
//! the process's life; the kernel releases it when the process ends, crash or not. The file is
//! never deleted (deleting a lock file races with the next process opening it); only the lock on
//! it counts. Its content is the holder's PID, for the message a second process prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// A held lock on a data directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "data directory {dir} is in use: {path} is locked by another process ({holder}); \
         stop that process first (nothing was written)"
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// Its lock file.
        path: PathBuf,
        /// Who holds it, as far as the lock file says.
        holder: String,
    },
    /// I/O on the lock file or the directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl DataDirLock {
    /// Takes the lock on `<dir>/LOCK` without waiting, creating `dir` and the lock file when
    /// missing (the only write before the lock is held, and only into a never-used directory).
    /// The file's content is left as it is: call [`DataDirLock::record_pid`] once the process
    /// is committed to using the directory.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LockError::Io { path, source }
        };
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { file, path }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held {
                dir: dir.to_owned(),
                holder: holder(&path),
                path,
            }),
            Err(TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// Writes this process's PID into the lock file (replacing the previous holder's) and
    /// fsyncs it. The file is rewritten in place: replacing it would drop the lock.
    pub fn record_pid(&mut self) -> Result<(), LockError> {
        let text = format!("{}\n", std::process::id());
        let file = &mut self.file;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|source| LockError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What the lock file says about its holder.
fn holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|f| f.take(64).read_to_string(&mut text));
    match read {
        Ok(_) => match text.trim().parse::<u32>() {
            Ok(pid) => format!("PID {pid}"),
            Err(_) if text.trim().is_empty() => "its PID is not recorded yet".to_owned(),
            Err(_) => format!("the file holds {:?}, not a PID", text.trim()),
        },
        Err(e) => format!("its PID could not be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut first = DataDirLock::acquire(&dir).unwrap();
        let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(err.contains("its PID is not recorded yet"), "{err}");
        first.record_pid().unwrap();
        let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&dir.join(LOCK_FILE).display().to_string()));
        drop(first);
        let mut second = DataDirLock::acquire(&dir).unwrap();
        second.record_pid().unwrap();
        assert_eq!(
            std::fs::read_to_string(second.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }
}

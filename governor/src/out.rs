//! Printing for commands: stdout and stderr writes that never panic.
//!
//! A Rust program ignores `SIGPIPE`, so once the reader of a pipe is gone (`tb-cli governor
//! audit … | head -1`) every write to it fails with `BrokenPipe`, and `println!` panics on that.
//! Commands print through [`outln!`](crate::outln), [`out!`](crate::out) and
//! [`errln!`](crate::errln) instead:
//!
//! - stdout: the first failed write stops printing for the rest of the process, and the command
//!   carries on with its work (a replay still writes every file). A closed pipe is the reader's
//!   choice and is never reported; any other failure (a full disk behind `> report.json`) is
//!   reported once by [`crate::exit`] at the end and makes the exit code non-zero, so a script
//!   never mistakes a lost report for a good one.
//! - stderr: failures are ignored; there is nowhere left to report them.
//!
//! Progress bars (indicatif, on stderr and only when it is a terminal) ignore their own draw
//! errors, and clap swallows a broken pipe when it prints help.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A stream that stops printing after its first failed write and keeps that failure, unless it
/// was a closed pipe, for the end of the command.
#[derive(Debug)]
pub struct Printer {
    stopped: AtomicBool,
    failure: Mutex<Option<io::Error>>,
}

impl Printer {
    /// A printer that has not failed yet.
    pub const fn new() -> Self {
        Printer {
            stopped: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// Writes `args` to `w` unless an earlier write failed; a failure stops later writes.
    pub fn print(&self, w: &mut dyn Write, args: fmt::Arguments<'_>) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = w.write_fmt(args) {
            self.stop(e);
        }
    }

    /// Flushes `w` unless an earlier write failed; a failure stops later writes.
    pub fn flush(&self, w: &mut dyn Write) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = w.flush() {
            self.stop(e);
        }
    }

    /// Whether printing has stopped (a write failed).
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Takes the failure to report: the first failed write's error, unless it was a closed pipe.
    pub fn take_failure(&self) -> Option<io::Error> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn stop(&self, e: io::Error) {
        if self.stopped.swap(true, Ordering::Relaxed) {
            return;
        }
        if e.kind() != io::ErrorKind::BrokenPipe {
            *self
                .failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
        }
    }
}

impl Default for Printer {
    fn default() -> Self {
        Self::new()
    }
}

/// The process's stdout printer.
static STDOUT: Printer = Printer::new();

/// Prints to stdout (what [`outln!`](crate::outln) and [`out!`](crate::out) expand to).
pub fn print_stdout(args: fmt::Arguments<'_>) {
    STDOUT.print(&mut io::stdout().lock(), args);
}

/// Prints to stderr, ignoring failures (what [`errln!`](crate::errln) expands to).
pub fn print_stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Flushes stdout and returns the failure to report, if printing to stdout failed for another
/// reason than a closed pipe. Called once, at the end of a command, by [`crate::exit`].
pub fn finish_stdout() -> Option<io::Error> {
    STDOUT.flush(&mut io::stdout().lock());
    STDOUT.take_failure()
}

/// Like `println!`, but a closed or failing stdout never panics (see [`crate::out`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::print_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::print_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Like `print!`, but a closed or failing stdout never panics (see [`crate::out`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::print_stdout(format_args!($($arg)*))
    };
}

/// Like `eprintln!`, but a closed or failing stderr never panics (see [`crate::out`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::print_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `ok` writes, then fails every write with `kind`.
    struct Failing {
        ok: usize,
        kind: io::ErrorKind,
        written: Vec<u8>,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::from(self.kind));
            }
            self.ok -= 1;
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn failing(ok: usize, kind: io::ErrorKind) -> Failing {
        Failing {
            ok,
            kind,
            written: Vec::new(),
        }
    }

    #[test]
    fn a_closed_pipe_stops_printing_and_is_not_reported() {
        let p = Printer::new();
        let mut w = failing(1, io::ErrorKind::BrokenPipe);
        p.print(&mut w, format_args!("one\n"));
        assert!(!p.stopped());
        p.print(&mut w, format_args!("two\n"));
        assert!(p.stopped());
        // Later prints do not even try (the writer would fail again).
        w.ok = 5;
        p.print(&mut w, format_args!("three\n"));
        assert_eq!(w.written, b"one\n");
        assert!(p.take_failure().is_none());
    }

    #[test]
    fn another_failure_stops_printing_and_is_reported_once() {
        let p = Printer::new();
        let mut w = failing(0, io::ErrorKind::StorageFull);
        p.print(&mut w, format_args!("one\n"));
        p.print(&mut w, format_args!("two\n"));
        let failure = p.take_failure().map(|e| e.kind());
        assert_eq!(failure, Some(io::ErrorKind::StorageFull));
        assert!(p.take_failure().is_none());
        assert!(p.stopped());
    }
}

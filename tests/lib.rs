//! Helpers for end-to-end tests: locating the real binaries and running them.
//!
//! The binaries are the ones `cargo test --workspace` (or `scripts/test`) builds into the same
//! target directory as the test executable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a workspace binary (`tb-governor`, `tb-cli`) next to the running test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (scripts/test does: cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A finished command: exit status and its output as text.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs binary `name` with `args` in `cwd`, with `env` added to a clean `TB_*`-free environment.
pub fn run(name: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin(name));
    cmd.args(args).current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("TB_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    match cmd.output() {
        Ok(o) => o.into(),
        Err(e) => Run {
            code: None,
            stdout: String::new(),
            stderr: format!("could not start {name}: {e}"),
        },
    }
}

/// Like [`run`], but panics with both outputs unless the exit code is `code`.
pub fn run_expect(name: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)], code: i32) -> Run {
    let r = run(name, args, cwd, env);
    assert_eq!(
        r.code,
        Some(code),
        "{name} {args:?}\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    r
}

//! Helpers for the end-to-end tests: running the real binaries, the daemon, raw HTTP.
//!
//! Cargo builds the package's binaries (`tb-governor`, `tb-cli`) before it builds these tests and
//! tells them where they are (`CARGO_BIN_EXE_<name>`), so `cargo test` alone is enough.

mod http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use http::Conn;
pub(crate) use http::HttpResponse;

/// Path of a binary of this package: `tb-governor` or `tb-cli`.
pub(crate) fn bin(name: &str) -> &'static str {
    match name {
        "tb-governor" => env!("CARGO_BIN_EXE_tb-governor"),
        "tb-cli" => env!("CARGO_BIN_EXE_tb-cli"),
        other => panic!("no binary {other:?} in this package (tb-governor, tb-cli)"),
    }
}

/// A finished command: exit status and its output as text.
#[derive(Debug)]
pub(crate) struct Run {
    /// Exit code (`None` when killed by a signal).
    pub(crate) code: Option<i32>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
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
pub(crate) fn run(name: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin(name));
    cmd.args(args).current_dir(cwd);
    clean_env(&mut cmd, env);
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
pub(crate) fn run_expect(
    name: &str,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
    code: i32,
) -> Run {
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

// ---------------------------------------------------------------------------------------------
// The daemon (`tb-governor run`) and raw HTTP.

/// How long any wait for the daemon may take before a test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// Pause between two polls of a condition.
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// Polls `f` (with [`POLL`] between attempts) until it returns `Some`, or panics after `timeout`
/// with `what` and the message `on_timeout` builds.
pub(crate) fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    on_timeout: impl FnOnce() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() >= timeout {
            panic!(
                "timed out after {:?} waiting for {what}\n{}",
                timeout,
                on_timeout()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// A running `tb-governor run --config F`: started by [`Daemon::start`], killed (SIGKILL) and
/// reaped when dropped. Its stderr goes to a log file (appended, so restarts share one log) that
/// failure messages quote.
#[derive(Debug)]
pub(crate) struct Daemon {
    /// The process: for its PID, liveness checks, kill and reaping.
    child: Child,
    /// `http://127.0.0.1:PORT`, from the daemon's `listening on` line.
    pub(crate) url: String,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// Directory the daemon and the `tb-cli` calls run in.
    pub(crate) cwd: PathBuf,
    /// The stderr log file, quoted by failure messages.
    log: PathBuf,
    /// Length of the log when this run started: [`Daemon::stderr`] shows only this run's part.
    log_start: u64,
}

impl Daemon {
    /// Starts `tb-governor run --config <config>` in the config's directory with a `TB_*`-free
    /// environment, appending its stderr to `log`, and waits for its `listening on` line.
    pub(crate) fn start(config: &Path, log: &Path) -> Daemon {
        Daemon::start_with_env(config, log, &[])
    }

    /// Like [`Daemon::start`], with `env` added.
    pub(crate) fn start_with_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(config, log, &[], env)
    }

    /// Like [`Daemon::start`], with `args` after `--config <config>` and `env` added.
    pub(crate) fn start_with(
        config: &Path,
        log: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let cwd = config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let log_start = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(bin("tb-governor"));
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file));
        clean_env(&mut cmd, env);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start tb-governor: {e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            // Sends the first line, then drains stdout so the daemon never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = tx.send(lines.next().and_then(Result::ok));
                for _ in lines {}
            });
        }
        let first = rx.recv_timeout(DEADLINE).ok().flatten();
        let mut daemon = Daemon {
            child,
            url: String::new(),
            addr: String::new(),
            cwd,
            log: log.to_path_buf(),
            log_start,
        };
        match first
            .as_deref()
            .and_then(|l| l.strip_prefix("listening on "))
            .and_then(|url| url.trim().split_once("://"))
        {
            Some((scheme, addr)) => {
                daemon.addr = addr.to_owned();
                daemon.url = format!("{scheme}://{addr}");
                daemon
            }
            None => {
                daemon.kill();
                panic!(
                    "tb-governor run did not print `listening on http://…` (first stdout line: \
                     {first:?})\n--- stderr\n{}",
                    daemon.stderr()
                );
            }
        }
    }

    /// The daemon's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What this run of the daemon wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(self.log_start)
            .unwrap_or(0)
            .min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Whether the process is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. `TERM`, `HUP`) with `kill -<signal> <pid>`.
    pub(crate) fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {} failed", self.pid());
    }

    /// Kills the daemon with SIGKILL (a crash: no cleanup of any kind) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (polling) until the daemon exits, at most `timeout`; panics if it does not.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        let log = self.log.clone();
        wait_until(
            "the daemon to exit",
            timeout,
            || child.try_wait().ok().flatten(),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    /// Runs `tb-cli governor <args…> --rpc <url>` in the daemon's directory.
    pub(crate) fn cli(&self, args: &[&str]) -> Run {
        let mut all = vec!["governor"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--rpc", &self.url]);
        run("tb-cli", &all, &self.cwd, &[])
    }

    /// `tb-cli governor <args…> --json`: panics unless it exits 0 with JSON on stdout.
    pub(crate) fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let r = self.cli(&all);
        assert_eq!(
            r.code,
            Some(0),
            "tb-cli governor {all:?}\n--- stdout\n{}\n--- stderr\n{}\n--- daemon stderr\n{}",
            r.stdout,
            r.stderr,
            self.stderr()
        );
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("tb-cli {all:?} printed no JSON ({e}):\n{}", r.stdout))
    }

    /// `tb-cli governor status --json`.
    pub(crate) fn status(&self) -> serde_json::Value {
        self.cli_json(&["status"])
    }

    /// Polls `status` until `pred` holds (at most [`DEADLINE`]) and returns that status.
    pub(crate) fn wait_status(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_status_within(what, DEADLINE, pred)
    }

    /// Like [`Daemon::wait_status`] with an explicit time limit. A failing status call is
    /// retried until the time limit.
    pub(crate) fn wait_status_within(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let last = std::cell::RefCell::new(String::new());
        wait_until(
            what,
            timeout,
            || {
                let r = self.cli(&["status", "--json"]);
                if r.code != Some(0) {
                    *last.borrow_mut() = format!("status failed: {}", r.stderr);
                    return None;
                }
                let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
                if pred(&v) {
                    Some(v)
                } else {
                    *last.borrow_mut() = r.stdout;
                    None
                }
            },
            || {
                format!(
                    "--- last status\n{}\n--- daemon stderr\n{}",
                    last.borrow(),
                    self.stderr()
                )
            },
        )
    }

    /// Waits until epoch `epoch` is closed and its decision file written: status shows it as
    /// `last_closed_epoch` and as the epoch of `release_provenance` (set after the write).
    pub(crate) fn wait_closed(&self, epoch: u64) -> serde_json::Value {
        self.wait_status(&format!("epoch {epoch} to close"), |s| {
            s["last_closed_epoch"].as_u64() >= Some(epoch)
                && s["release_provenance"]["epoch"].as_u64() >= Some(epoch)
        })
    }
}

impl Daemon {
    /// `governor.status` over raw HTTP, without starting a process: for tight polling loops.
    /// `None` when the call fails.
    pub(crate) fn status_raw(&self) -> Option<serde_json::Value> {
        let req = r#"{"jsonrpc":"2.0","id":1,"method":"governor.status"}"#;
        let mut v = rpc_post(&self.addr, req.as_bytes()).ok()?.json_opt()?;
        Some(v.get_mut("result")?.take())
    }

    /// Waits until epoch `epoch` is the last closed one and the tip is `tip`: the close is
    /// published as soon as its decision file is written, the tip at the end of the ingest step,
    /// so a test that checks both waits for both.
    pub(crate) fn wait_caught_up(&self, epoch: u64, tip: u64) -> serde_json::Value {
        self.wait_status(&format!("epoch {epoch} to close at tip {tip}"), |s| {
            s["last_closed_epoch"].as_u64() == Some(epoch)
                && s["release_provenance"]["epoch"].as_u64() == Some(epoch)
                && s["tip_height"].as_u64() == Some(tip)
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- stderr of tb-governor (pid {}, {})\n{}",
                self.pid(),
                self.log.display(),
                self.stderr()
            );
        }
    }
}

impl HttpResponse {
    /// The body as JSON, if it is JSON.
    pub(crate) fn json_opt(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The body as JSON (panics when it is not).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.body)
        })
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub(crate) fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut all = vec![("Connection", "close")];
    all.extend_from_slice(headers);
    Conn::connect(addr, Duration::from_secs(10))?.request(method, path, &all, body)
}

/// POSTs `body` as a JSON-RPC request (`Content-Type: application/json`).
pub(crate) fn rpc_post(addr: &str, body: &[u8]) -> std::io::Result<HttpResponse> {
    http_request(
        addr,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        body,
    )
}

/// Calls `method` with named `params` over raw HTTP and returns the whole JSON-RPC response.
pub(crate) fn rpc_call(addr: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let req = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r = rpc_post(addr, req.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{method} over HTTP to {addr} failed: {e}"));
    r.json()
}

/// The inputs of the chain [`simulate`] writes, as the offline commands take them.
pub(crate) const SIM_INPUTS: [&str; 6] = [
    "--chain",
    "sim/chain",
    "--providers",
    "sim/providers.json",
    "--chain-id",
    "tb-sim",
];

/// Runs `tb-cli governor audit` in `cwd` over the data directory `data` of the daemon configured
/// by `config`, and panics unless it exits 0 having reproduced exactly `epochs` decision files.
pub(crate) fn assert_audit_reproduces(
    cwd: &Path,
    config: &Path,
    data: &Path,
    epochs: usize,
) -> Run {
    let (journal, decisions) = (data.join("journal.jsonl"), data.join("decisions"));
    let audit = run_expect(
        "tb-cli",
        &[
            "governor",
            "audit",
            "--config",
            &config.display().to_string(),
            "--journal",
            &journal.display().to_string(),
            "--decisions",
            &decisions.display().to_string(),
        ],
        cwd,
        &[],
        0,
    );
    assert_eq!(
        audit.stdout.matches("reproduced (decision_hash").count(),
        epochs,
        "{}",
        audit.stdout
    );
    audit
}

/// `command`, then [`SIM_INPUTS`], then `rest`: an offline command's arguments over the
/// simulated chain.
pub(crate) fn on_sim<'a>(command: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    [command, &SIM_INPUTS, rest].concat()
}

/// Runs `tb-governor simulate --out sim --scenario <scenario> --epochs <epochs> --epoch-blocks
/// <epoch_blocks>` in `dir` and returns the lines of the simulated chain file
/// `sim/chain/blocks-000000.jsonl`, each with its `\n`, after checking it holds exactly
/// `epochs * epoch_blocks` whole lines.
pub(crate) fn simulate(
    dir: &Path,
    scenario: &str,
    epochs: usize,
    epoch_blocks: usize,
) -> Vec<String> {
    run_expect(
        "tb-governor",
        &[
            "simulate",
            "--out",
            "sim",
            "--scenario",
            scenario,
            "--epochs",
            &epochs.to_string(),
            "--epoch-blocks",
            &epoch_blocks.to_string(),
        ],
        dir,
        &[],
        0,
    );
    let file = dir.join("sim/chain/blocks-000000.jsonl");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    assert_eq!(
        lines.len(),
        epochs * epoch_blocks,
        "one simulated file of whole lines"
    );
    assert!(
        text.ends_with('\n'),
        "the simulated chain ends with a whole line"
    );
    lines
}

/// A daemon config file: the `[governor]`, `[chain]` and `[rpc]` sections every end-to-end test
/// writes (chain id `tb-sim`, `listen = "127.0.0.1:0"`), plus per-test extra lines.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `governor.data_dir`.
    data: PathBuf,
    /// `chain.dir`, the watched chain directory.
    chain: PathBuf,
    /// `chain.providers`.
    providers: PathBuf,
    /// `governor.epoch_blocks`.
    epoch_blocks: usize,
    /// `chain.poll_ms`.
    poll_ms: u64,
    /// Extra lines of the `[governor]` section.
    governor_extra: String,
    /// Extra lines of the `[chain]` section.
    chain_extra: String,
    /// Extra TOML at the end of the file (the `[rpc]` section and any after it).
    rpc_extra: String,
}

impl Config {
    /// The config of a test directory `dir`: data dir `dir/data`, chain dir `dir/chain`, the
    /// simulated `dir/sim/providers.json`, `epoch_blocks` blocks per epoch, polled every 50 ms.
    pub(crate) fn new(dir: &Path, epoch_blocks: usize) -> Config {
        Config {
            data: dir.join("data"),
            chain: dir.join("chain"),
            providers: dir.join("sim/providers.json"),
            epoch_blocks,
            poll_ms: 50,
            governor_extra: String::new(),
            chain_extra: String::new(),
            rpc_extra: String::new(),
        }
    }

    /// Uses `data` as the data dir.
    pub(crate) fn data(mut self, data: &Path) -> Config {
        self.data = data.to_path_buf();
        self
    }

    /// Uses `chain` as the watched chain dir.
    pub(crate) fn chain(mut self, chain: &Path) -> Config {
        self.chain = chain.to_path_buf();
        self
    }

    /// Polls the chain every `ms` milliseconds.
    pub(crate) fn poll_ms(mut self, ms: u64) -> Config {
        self.poll_ms = ms;
        self
    }

    /// Appends TOML lines to the `[governor]` section.
    pub(crate) fn governor_extra(mut self, lines: &str) -> Config {
        self.governor_extra.push_str(lines);
        self.governor_extra.push('\n');
        self
    }

    /// Appends TOML lines to the `[chain]` section.
    pub(crate) fn chain_extra(mut self, lines: &str) -> Config {
        self.chain_extra.push_str(lines);
        self.chain_extra.push('\n');
        self
    }

    /// Appends TOML to the end of the file, which is the `[rpc]` section: `[rpc]` keys, or
    /// further sections (e.g. `[signing]`).
    pub(crate) fn rpc_extra(mut self, lines: &str) -> Config {
        self.rpc_extra.push_str(lines);
        self.rpc_extra.push('\n');
        self
    }

    /// The config's text.
    pub(crate) fn text(&self) -> String {
        format!(
            "[governor]\n\
             data_dir = {data:?}\n\
             chain_id = \"tb-sim\"\n\
             epoch_blocks = {blocks}\n\
             {governor_extra}\
             \n\
             [chain]\n\
             dir = {chain:?}\n\
             providers = {providers:?}\n\
             poll_ms = {poll_ms}\n\
             {chain_extra}\
             \n\
             [rpc]\n\
             listen = \"127.0.0.1:0\"\n\
             {rpc_extra}",
            data = self.data.display().to_string(),
            blocks = self.epoch_blocks,
            chain = self.chain.display().to_string(),
            providers = self.providers.display().to_string(),
            poll_ms = self.poll_ms,
            governor_extra = self.governor_extra,
            chain_extra = self.chain_extra,
            rpc_extra = self.rpc_extra,
        )
    }

    /// Writes the config to `path` and returns `path`.
    pub(crate) fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.text())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// Appends `bytes` to `file` (created if missing) in one write, and syncs it.
pub(crate) fn append(file: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", file.display()));
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .unwrap_or_else(|e| panic!("cannot append to {}: {e}", file.display()));
}

/// Every non-hidden file directly in `dir` with its bytes, sorted by name (hidden `.tmp-*` files
/// are the atomic writer's scratch files, which a SIGKILL may leave behind; they are never read).
pub(crate) fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let path = dir.join(&n);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Whether [`tree`] lists data-directory `LOCK` files (they hold the PID of the process that
/// last wrote the directory, so two runs' trees differ there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// List `LOCK` files like any other file.
    Keep,
    /// Leave `LOCK` files out.
    Skip,
}

/// Every directory (as `None`) and file (with its bytes) under `dir`, hidden ones included, by
/// path relative to `dir`.
pub(crate) fn tree(dir: &Path, lock: Lock) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, lock: Lock, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                walk(root, &path, lock, out);
            } else if lock == Lock::Skip && path.file_name().is_some_and(|n| n == "LOCK") {
                continue;
            } else {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.insert(rel, Some(bytes));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, lock, &mut out);
    out
}

/// Every `.tmp-*` file (an atomic writer's scratch file) under `dir`, recursively, sorted.
pub(crate) fn temp_files(dir: &Path) -> Vec<PathBuf> {
    tree(dir, Lock::Keep)
        .into_iter()
        .filter(|(rel, bytes)| {
            bytes.is_some()
                && rel
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
        })
        .map(|(rel, _)| dir.join(rel))
        .collect()
}

/// A test's own temporary directory (removed on drop) holding a chain simulated by [`simulate`]
/// in `sim/`, with the chain's lines in memory for the test to feed into a watched directory.
#[derive(Debug)]
pub(crate) struct Sim {
    /// The test's directory.
    pub(crate) dir: PathBuf,
    /// Every line of the simulated chain, each with its `\n`.
    pub(crate) lines: Vec<String>,
    /// Owns the directory: removed when the test's `Sim` is dropped.
    _tmp: tempfile::TempDir,
}

impl Sim {
    /// A fresh temporary directory with `epochs` epochs of `scenario` at `epoch_blocks` blocks
    /// per epoch simulated into its `sim/`.
    pub(crate) fn new(scenario: &str, epochs: usize, epoch_blocks: usize) -> Sim {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
        let dir = tmp.path().to_path_buf();
        let lines = simulate(&dir, scenario, epochs, epoch_blocks);
        Sim {
            dir,
            lines,
            _tmp: tmp,
        }
    }

    /// `rel` inside the test's directory.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Appends the simulated lines `range` to `file` (relative to the test's directory) in one
    /// write, and syncs it.
    pub(crate) fn feed(&self, file: &str, range: std::ops::Range<usize>) {
        append(&self.path(file), self.lines[range].concat().as_bytes());
    }
}

/// Gives `cmd` a clean environment for the binaries under test: every inherited `TB_*` variable
/// removed, then `env` added.
pub(crate) fn clean_env<'a>(cmd: &'a mut Command, env: &[(&str, &str)]) -> &'a mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("TB_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
}

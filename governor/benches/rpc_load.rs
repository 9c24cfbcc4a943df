//! `rpc_load`: the load generator and timing probes behind `scripts/bench-daemon.sh`
//! (docs/performance.md, "Daemon").
//!
//! Not a criterion benchmark: each subcommand measures one thing against a running (or, for
//! `restart`, a spawned) `tb-governor run` and prints one JSON object on stdout. Without a
//! subcommand (as under a plain `cargo bench` or `cargo test --all-targets`) it only says so.
//! `rpc_load <subcommand> --help` lists the options.
//!
//! | subcommand | what it measures |
//! | --- | --- |
//! | `load` | latency of one method (`governor.status` unless `--method`/`--params` say otherwise) under an open-loop schedule: request `i` is due at `t0 + i/rate`, spread round-robin over `conns` HTTP/1.1 keep-alive connections, and its latency runs from that due time (not the send time) to the last response byte, so a stalled server is charged for the requests queued behind the stall; `--series` writes `due_us latency_us` per measured request |
//! | `close-time` | hard-links chain files into the watched directory and times until status shows the last decision asked for: wall time per epoch, and close-to-close time from the decision files' mtimes |
//! | `wait` | waits until status shows a decision |
//! | `restart` | spawns the daemon command given after `--`, times spawn → `listening on` line → first successful `governor.status`, then SIGTERM → exit |
//! | `fsync-probe` | the floor: one decision-file write exactly as the daemon does it (`RecordStore::write`: temp file, fsync, link, directory fsync); with `--prefill`, writes alternate with the same writes into a directory already holding `N` entries, under `big` |
//! | `synth-intents` | not a measurement: rewrites a stopped daemon's checkpoint with one made-up intent every `N` epochs of its history (the simulated chains never create one), so that `governor.intents` has a history to search |
//!
//! HTTP goes through the end-to-end tests' std-only client (`tests/e2e/support/http.rs`): no
//! client library's pooling or buffering stands between the schedule and the socket.
// A benchmark driver: failing loudly on a broken setup is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/e2e/support/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use http::Conn;

/// The load generator and timing probes behind scripts/bench-daemon.sh.
#[derive(Parser)]
#[command(name = "rpc_load")]
struct Cli {
    /// Passed by `cargo bench`; changes nothing.
    #[arg(long, hide = true, global = true)]
    bench: bool,
    /// What to measure; none under a plain `cargo bench`.
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// One measurement.
#[derive(Subcommand)]
enum Cmd {
    /// Latency of one method (`governor.status` by default) under an open-loop schedule.
    Load(LoadArgs),
    /// Time to close the epochs of chain files linked into the watched directory.
    CloseTime(CloseTimeArgs),
    /// Wait until status shows a decision.
    Wait(WaitArgs),
    /// Time from spawning the daemon to its first answer, and from SIGTERM to its exit.
    Restart(RestartArgs),
    /// Time of one decision-file write, the floor of a close.
    FsyncProbe(FsyncArgs),
    /// Fill a checkpoint's intent history with made-up intents.
    SynthIntents(SynthIntentsArgs),
}

/// `load`.
#[derive(Args)]
struct LoadArgs {
    /// The daemon, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// Requests per second of the schedule.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Keep-alive connections the requests are spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    conns: u64,
    /// Seconds of the same schedule before the measured window (not counted).
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Writes `due_us latency_us` per measured request to this file.
    #[arg(long)]
    series: Option<PathBuf>,
    /// The method called.
    #[arg(long, default_value = "governor.status")]
    method: String,
    /// Its params, as JSON (none by default).
    #[arg(long)]
    params: Option<String>,
}

/// `close-time`.
#[derive(Args)]
struct CloseTimeArgs {
    /// The daemon, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// The daemon's watched chain directory.
    #[arg(long)]
    into: PathBuf,
    /// Chain files to link into it (repeatable).
    #[arg(long, required = true)]
    link: Vec<PathBuf>,
    /// The last epoch those files close.
    #[arg(long)]
    until_epoch: u64,
    /// The daemon's decision directory, for close-to-close times from the files' mtimes.
    #[arg(long)]
    decisions: Option<PathBuf>,
    /// Status poll interval.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Give up after this long.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// `wait`.
#[derive(Args)]
struct WaitArgs {
    /// The daemon, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// The decision to wait for.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
    /// Status poll interval.
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// Give up after this long.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
}

/// `restart`.
#[derive(Args)]
struct RestartArgs {
    /// Restarts timed.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Holds the PID of the running daemon, so that a script can stop it on exit.
    #[arg(long)]
    pidfile: Option<PathBuf>,
    /// Appends the daemon's stderr to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// The daemon command (`tb-governor run --config F`).
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

/// `fsync-probe`.
#[derive(Args)]
struct FsyncArgs {
    /// Scratch directory (removed afterwards).
    #[arg(long)]
    dir: PathBuf,
    /// Writes timed.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    n: u64,
    /// Bytes per write (a decision file's size).
    #[arg(long, default_value_t = 6000)]
    bytes: usize,
    /// Entries already in the second (`big`) directory; 0 for none.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
}

/// `synth-intents`.
#[derive(Args)]
struct SynthIntentsArgs {
    /// The checkpoint to rewrite (`state/checkpoint.json` of a stopped daemon).
    #[arg(long)]
    checkpoint: PathBuf,
    /// One intent every this many epochs, from epoch 0 to the checkpoint's.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
}

fn main() -> Result<()> {
    let Some(command) = Cli::parse().command else {
        eprintln!(
            "rpc_load: nothing to do without a subcommand (load, close-time, wait, restart, \
             fsync-probe, synth-intents); scripts/bench-daemon.sh drives it"
        );
        return Ok(());
    };
    let out = match command {
        Cmd::Load(a) => load(&a)?,
        Cmd::CloseTime(a) => close_time(&a)?,
        Cmd::Wait(a) => wait(&a)?,
        Cmd::Restart(a) => restart(&a)?,
        Cmd::FsyncProbe(a) => fsync_probe(&a)?,
        Cmd::SynthIntents(a) => synth_intents(&a)?,
    };
    println!("{out}");
    Ok(())
}

/// `http://host:port[/]` → `host:port`.
fn addr_of(url: &str) -> Result<String> {
    let hostport = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("URL {url:?} must start with http://"))?;
    Ok(hostport.trim_end_matches('/').to_owned())
}

/// One HTTP/1.1 keep-alive connection speaking JSON-RPC.
struct Rpc {
    /// The connection.
    conn: Conn,
    /// The server said it closes the connection after its last answer.
    closing: bool,
}

/// Why a call failed.
#[derive(Debug)]
enum CallError {
    /// Connect, send or receive failed; the connection is unusable.
    Io(io::Error),
    /// A response arrived but is not a JSON-RPC result (HTTP status, JSON-RPC error code…).
    Bad(String),
}

impl CallError {
    fn label(&self) -> String {
        match self {
            CallError::Io(e) => format!("io: {:?}", e.kind()),
            CallError::Bad(s) => s.clone(),
        }
    }
}

impl From<io::Error> for CallError {
    fn from(e: io::Error) -> Self {
        CallError::Io(e)
    }
}

impl Rpc {
    fn connect(addr: &str, timeout: Duration) -> io::Result<Rpc> {
        Ok(Rpc {
            conn: Conn::connect(addr, timeout)?,
            closing: false,
        })
    }

    /// Sends one JSON-RPC call and returns its `result`.
    fn call(&mut self, id: u64, method: &str) -> Result<Value, CallError> {
        self.call_with(id, method, None)
    }

    /// [`Rpc::call`] with `params` (JSON text).
    fn call_with(
        &mut self,
        id: u64,
        method: &str,
        params: Option<&str>,
    ) -> Result<Value, CallError> {
        let params = params.map_or_else(String::new, |p| format!(r#","params":{p}"#));
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"{params}}}"#);
        let r = self.conn.request(
            "POST",
            "/",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?;
        self.closing = r
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if r.status != 200 {
            return Err(CallError::Bad(format!("http {}", r.status)));
        }
        let v: Value =
            serde_json::from_str(&r.body).map_err(|e| CallError::Bad(format!("bad json: {e}")))?;
        if v.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(CallError::Bad("wrong id".to_owned()));
        }
        match (v.get("result"), v.get("error")) {
            (Some(r), None) => Ok(r.clone()),
            (_, Some(e)) => Err(CallError::Bad(format!(
                "rpc error {}",
                e.get("code").and_then(Value::as_i64).unwrap_or(0)
            ))),
            _ => Err(CallError::Bad("neither result nor error".to_owned())),
        }
    }
}

/// One `governor.status` call on a fresh connection.
fn status_once(addr: &str) -> Result<Value, CallError> {
    Rpc::connect(addr, Duration::from_secs(5))?.call(1, "governor.status")
}

/// The epoch of the newest decision status shows (its decision file is written by then).
fn decided_epoch(status: &Value) -> Option<u64> {
    status
        .get("release_provenance")
        .and_then(|p| p.get("epoch"))
        .and_then(Value::as_u64)
}

/// Nearest-rank percentile (`per_mille` of 1000) of sorted `v`.
fn pct(v: &[u64], per_mille: usize) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (v.len() * per_mille).div_ceil(1000).max(1);
    v[rank.min(v.len()) - 1]
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What one load connection saw.
#[derive(Default)]
struct Tally {
    /// Latencies (µs) of the successful measured requests.
    lat: Vec<u64>,
    /// (due time since the measured window began, latency), µs, for `--series`.
    series: Vec<(u64, u64)>,
    /// Failed measured requests, by kind of failure.
    errors: BTreeMap<String, u64>,
    /// Requests sent more than 1 ms after their due time (the connection was still busy).
    late: u64,
    /// Connections opened again after one became unusable or was closed by the server.
    reconnects: u64,
    /// Last response of the measured window.
    last_done: Option<Instant>,
}

fn load(a: &LoadArgs) -> Result<Value> {
    let addr = addr_of(&a.url)?;
    let (rate, secs, conns, warmup) = (a.rate, a.secs, a.conns, a.warmup_secs);
    let period_ns = 1_000_000_000 / rate;
    let warm_n = rate * warmup;
    let total = warm_n + rate * secs;
    if let Some(p) = &a.params {
        serde_json::from_str::<Value>(p).with_context(|| format!("--params {p:?}"))?;
    }
    let mut pool = Vec::new();
    for _ in 0..conns {
        let mut c = Rpc::connect(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        c.call_with(0, &a.method, a.params.as_deref())
            .map_err(|e| anyhow!("first {} call failed: {}", a.method, e.label()))?;
        pool.push(c);
    }
    let t0 = Instant::now() + Duration::from_millis(50);
    let measured_from = t0 + Duration::from_nanos(warm_n * period_ns);
    let threads: Vec<_> = pool
        .into_iter()
        .enumerate()
        .map(|(k, conn)| {
            let addr = addr.clone();
            let (method, params) = (a.method.clone(), a.params.clone());
            std::thread::spawn(move || {
                let mut conn = Some(conn);
                let mut t = Tally::default();
                let mut i = k as u64;
                while i < total {
                    let due = t0 + Duration::from_nanos(i * period_ns);
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep(due - now);
                    } else if now - due > Duration::from_millis(1) && i >= warm_n {
                        t.late += 1;
                    }
                    let c = match conn.take() {
                        Some(c) => Ok(c),
                        None => {
                            t.reconnects += 1;
                            Rpc::connect(&addr, Duration::from_secs(5))
                        }
                    };
                    let res = c.map_err(CallError::Io).and_then(|mut c| {
                        let r = c.call_with(i + 1, &method, params.as_deref());
                        if !matches!(r, Err(CallError::Io(_))) && !c.closing {
                            conn = Some(c);
                        }
                        r
                    });
                    let done = Instant::now();
                    if i >= warm_n {
                        match res {
                            Ok(_) => {
                                t.lat.push(micros(done - due));
                                t.series.push((
                                    micros(due.saturating_duration_since(measured_from)),
                                    micros(done - due),
                                ));
                            }
                            Err(e) => *t.errors.entry(e.label()).or_default() += 1,
                        }
                        t.last_done = Some(t.last_done.map_or(done, |d| d.max(done)));
                    }
                    i += conns;
                }
                t
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut series = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut late, mut reconnects, mut last_done) = (0, 0, measured_from);
    for th in threads {
        let t = th.join().map_err(|_| anyhow!("a load thread panicked"))?;
        lat.extend(t.lat);
        series.extend(t.series);
        for (k, n) in t.errors {
            *errors.entry(k).or_default() += n;
        }
        late += t.late;
        reconnects += t.reconnects;
        if let Some(d) = t.last_done {
            last_done = last_done.max(d);
        }
    }
    lat.sort_unstable();
    if let Some(path) = &a.series {
        series.sort_unstable();
        let text: String = series.iter().map(|(d, l)| format!("{d} {l}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let n_err: u64 = errors.values().sum();
    let sent = lat.len() as u64 + n_err;
    let window_us = micros(last_done - measured_from).max(1);
    Ok(json!({
        "method": a.method,
        "rate": rate,
        "secs": secs,
        "conns": conns,
        "sent": sent,
        "ok": lat.len(),
        "errors": n_err,
        "error_kinds": errors,
        "achieved_rps": sent * 1_000_000 / window_us,
        "late_sends": late,
        "reconnects": reconnects,
        "p50_us": pct(&lat, 500),
        "p90_us": pct(&lat, 900),
        "p99_us": pct(&lat, 990),
        "p999_us": pct(&lat, 999),
        "max_us": lat.last().copied().unwrap_or(0),
    }))
}

/// Polls status every `every` until decision `epoch` shows; returns the status.
fn poll_until(addr: &str, epoch: u64, every: Duration, timeout: Duration) -> Result<Value> {
    let start = Instant::now();
    let mut conn: Option<Rpc> = None;
    let mut id = 0;
    loop {
        id += 1;
        let c = match conn.take() {
            Some(c) => c,
            None => Rpc::connect(addr, Duration::from_secs(5))
                .with_context(|| format!("connecting to {addr}"))?,
        };
        let mut c = c;
        match c.call(id, "governor.status") {
            Ok(st) => {
                if !c.closing {
                    conn = Some(c);
                }
                if let Some(stall) = st
                    .get("ingest")
                    .and_then(|i| i.get("stall"))
                    .and_then(Value::as_str)
                {
                    bail!("ingest stalled: {stall}");
                }
                if decided_epoch(&st).is_some_and(|e| e >= epoch) {
                    return Ok(st);
                }
            }
            Err(CallError::Bad(e)) => {
                conn = Some(c);
                eprintln!("rpc_load: status: {e}");
            }
            Err(CallError::Io(e)) => eprintln!("rpc_load: status: {e}"),
        }
        if start.elapsed() > timeout {
            bail!("decision {epoch} not shown after {} s", timeout.as_secs());
        }
        std::thread::sleep(every);
    }
}

fn wait(a: &WaitArgs) -> Result<Value> {
    let addr = addr_of(&a.url)?;
    let timeout = Duration::from_secs(a.timeout_secs);
    let start = Instant::now();
    let st = poll_until(&addr, a.epoch, Duration::from_millis(a.poll_ms), timeout)?;
    Ok(json!({
        "epoch": decided_epoch(&st),
        "elapsed_ms": start.elapsed().as_millis() as u64,
    }))
}

/// Links (or, across file systems, copies and renames) `src` into `dir` under its own name.
fn publish(src: &Path, dir: &Path) -> Result<()> {
    let name = src
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", src.display()))?;
    let dst = dir.join(name);
    if std::fs::hard_link(src, &dst).is_err() {
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        std::fs::copy(src, &tmp).with_context(|| format!("copying {}", src.display()))?;
        std::fs::rename(&tmp, &dst)?;
    }
    Ok(())
}

fn mtime_ns(path: &Path) -> Result<u128> {
    let m = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("mtime of {}", path.display()))?;
    Ok(m.duration_since(SystemTime::UNIX_EPOCH)?.as_nanos())
}

fn close_time(a: &CloseTimeArgs) -> Result<Value> {
    let addr = addr_of(&a.url)?;
    let until = a.until_epoch;
    let every = Duration::from_millis(a.poll_ms);
    let timeout = Duration::from_secs(a.timeout_secs);
    let before = status_once(&addr)
        .map_err(|e| anyhow!("status before: {}", e.label()))
        .and_then(|st| decided_epoch(&st).ok_or_else(|| anyhow!("no decision yet")))?;
    anyhow::ensure!(until > before, "--until-epoch {until} ≤ current {before}");
    let epochs = until - before;
    let t0 = Instant::now();
    for l in &a.link {
        publish(l, &a.into)?;
    }
    poll_until(&addr, until, every, timeout)?;
    let wall = t0.elapsed();
    let mut out = json!({
        "from_epoch": before + 1,
        "to_epoch": until,
        "epochs": epochs,
        "wall_us": micros(wall),
        "per_epoch_us_wall": micros(wall) / epochs,
    });
    if let Some(dir) = &a.decisions {
        // Close to close: the first decision file of the batch to the last.
        let first = mtime_ns(&dir.join(tb_decisions::record_name(before + 1)))?;
        let last = mtime_ns(&dir.join(tb_decisions::record_name(until)))?;
        if epochs > 1 {
            let per = last.saturating_sub(first) / u128::from(epochs - 1) / 1000;
            out["per_epoch_us_files"] = json!(u64::try_from(per).unwrap_or(u64::MAX));
        }
    }
    Ok(out)
}

/// SIGTERM through kill(1): the workspace forbids `unsafe`, so no direct libc call.
fn sigterm(pid: u32) -> Result<()> {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("running kill")?
        .success();
    anyhow::ensure!(ok, "kill -TERM {pid} failed");
    Ok(())
}

fn restart(a: &RestartArgs) -> Result<Value> {
    let (cmd, args) = a
        .cmd
        .split_first()
        .ok_or_else(|| anyhow!("restart needs -- CMD ARGS…"))?;
    let mut rows = Vec::new();
    let (mut serve, mut listen, mut stop) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs {
        let stderr = match &a.log {
            Some(p) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => Stdio::null(),
        };
        let t0 = Instant::now();
        let mut child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {cmd}"))?;
        if let Some(p) = &a.pidfile {
            std::fs::write(p, child.id().to_string())?;
        }
        let result = (|| -> Result<(Duration, Duration, Value)> {
            let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
            let mut line = String::new();
            let url = loop {
                line.clear();
                if out.read_line(&mut line)? == 0 {
                    bail!("the daemon exited before listening (see its log)");
                }
                if let Some(u) = line.trim().strip_prefix("listening on ") {
                    break u.to_owned();
                }
            };
            let t_listen = t0.elapsed();
            let addr = addr_of(&url)?;
            let st = loop {
                match status_once(&addr) {
                    Ok(st) => break st,
                    Err(e) if t0.elapsed() > Duration::from_secs(60) => {
                        bail!("no status within 60 s: {}", e.label())
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            };
            Ok((t_listen, t0.elapsed(), st))
        })();
        let ts = Instant::now();
        let term = sigterm(child.id());
        let exit = child.wait()?;
        let t_stop = ts.elapsed();
        if let Some(p) = &a.pidfile {
            let _ = std::fs::remove_file(p);
        }
        let (t_listen, t_serve, st) = result?;
        term?;
        listen.push(micros(t_listen));
        serve.push(micros(t_serve));
        stop.push(micros(t_stop));
        rows.push(json!({
            "listen_us": micros(t_listen),
            "serve_us": micros(t_serve),
            "stop_us": micros(t_stop),
            "exit": exit.code(),
            "last_closed_epoch": st.get("last_closed_epoch"),
            "decided_epoch": decided_epoch(&st),
        }));
    }
    for v in [&mut serve, &mut listen, &mut stop] {
        v.sort_unstable();
    }
    Ok(json!({
        "runs": rows,
        "serve_us_median": pct(&serve, 500),
        "serve_us_max": serve.last().copied().unwrap_or(0),
        "listen_us_median": pct(&listen, 500),
        "stop_us_median": pct(&stop, 500),
    }))
}

fn write_stats(t: &mut [u64]) -> Value {
    t.sort_unstable();
    let n = t.len().max(1) as u64;
    json!({
        "writes": t.len(),
        "mean_us": t.iter().sum::<u64>() / n,
        "p50_us": pct(t, 500),
        "p90_us": pct(t, 900),
        "max_us": t.last().copied().unwrap_or(0),
    })
}

fn fsync_probe(a: &FsyncArgs) -> Result<Value> {
    let (dir, n, prefill) = (&a.dir, a.n, a.prefill);
    let bytes = vec![b'x'; a.bytes];
    let small = tb_decisions::RecordStore::open(dir.join("small"), "probe")?;
    let big = tb_decisions::RecordStore::open(dir.join("big"), "probe")?;
    // The big directory gets `prefill` other entries first (empty files named like decision
    // files, far above the probed epochs), synced once, so both stores differ only in size.
    for i in 0..prefill {
        std::fs::File::create(big.path(1_000_000_000_000 + i))?;
    }
    std::fs::File::open(big.dir())?.sync_all()?;
    let (mut ts, mut tb) = (Vec::new(), Vec::new());
    for e in 0..n {
        let s = Instant::now();
        small.write(e, &bytes)?;
        ts.push(micros(s.elapsed()));
        if prefill > 0 {
            let s = Instant::now();
            big.write(e, &bytes)?;
            tb.push(micros(s.elapsed()));
        }
    }
    std::fs::remove_dir_all(dir)?;
    let mut out = write_stats(&mut ts);
    if prefill > 0 {
        out["prefill"] = json!(prefill);
        out["big"] = write_stats(&mut tb);
    }
    Ok(out)
}

fn synth_intents(a: &SynthIntentsArgs) -> Result<Value> {
    use tb_governor::daemon::files::Checkpoint;
    use tb_governor::engine::{Action, Gate, Intent, IntentState};
    let path = &a.checkpoint;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut cp: Checkpoint = serde_json::from_slice(&bytes)?;
    cp.history.intents = (0..=cp.epoch)
        .step_by(usize::try_from(a.every)?)
        .enumerate()
        .map(|(i, epoch)| {
            let gate = Gate::ALL[i % Gate::ALL.len()];
            let action = if i % 2 == 0 {
                Action::Enter
            } else {
                Action::Exit
            };
            Intent {
                id: format!("{gate}-{epoch:08}-{}", action.as_str()),
                gate,
                action,
                created_epoch: epoch,
                epoch_apply: epoch + 1,
                reason: "made up by rpc_load synth-intents".to_owned(),
                metrics: [("settlements".to_owned(), Some(7))].into(),
                snapshot_hash: "00".repeat(32),
                state: IntentState::Shadowed,
            }
        })
        .collect();
    tb_governor::daemon::files::write_replace(path, &serde_json::to_vec(&cp)?)?;
    Ok(json!({
        "intents": cp.history.intents.len(),
        "checkpoint_bytes": std::fs::metadata(path)?.len(),
    }))
}

//! `tb-cli governor status|intents|decisions|snapshot|exit|mode`: the RPC client commands.
//!
//! Each command builds a current-thread tokio runtime, calls one `governor.*` method through the
//! generated [`GovernorApiClient`], and prints either the method's `result` as pretty JSON
//! (`--json`, nothing else on stdout) or a human rendering. The renderings are pure functions
//! (`render_*`) so their layout is unit-tested; errors are turned into operator-facing messages
//! with hints by [`Endpoint::explain`].

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use serde::Serialize;
use tb_config::{Mode, Secret};

use crate::cli::{
    DecisionsArgs, ExitArgs, IntentsArgs, ModeArgs, RpcArgs, SnapshotArgs, StatusArgs, TokenArgs,
    DEFAULT_RPC_URL, RPC_TOKEN_ENV, RPC_URL_ENV,
};
use crate::engine::Intent;
use crate::rpc::{
    DecisionSummary, GovernorApiClient, JournalReceipt, SnapshotResult, Status, RATE_LIMITED,
    UNAUTHORIZED, UNKNOWN_EPOCH,
};
use crate::{errln, out, outln};

/// Shown after an `unauthorized` error.
const TOKEN_HINT: &str = "hint: pass --token or set TB_GOVERNOR_RPC_TOKEN; the daemon refuses \
                          mutating calls when no token is configured";

/// Where and how to reach the daemon, resolved from flags and the environment.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The JSON-RPC URL.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Bearer token for mutating calls (never printed).
    pub token: Option<Secret>,
}

impl Endpoint {
    /// Resolves `--rpc` (else `$TB_GOVERNOR_RPC_URL`, else the default) and, when `token` is
    /// given, `--token` (else `$TB_GOVERNOR_RPC_TOKEN`).
    pub fn from_args(rpc: &RpcArgs, token: Option<&TokenArgs>) -> Endpoint {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = resolve_url(rpc.rpc.as_deref(), env(RPC_URL_ENV));
        let token = token.and_then(|t| {
            t.token
                .clone()
                .or_else(|| env(RPC_TOKEN_ENV).map(Secret::new))
        });
        Endpoint {
            url,
            timeout: Duration::from_secs(rpc.timeout),
            token,
        }
    }

    /// An HTTP client for this endpoint, carrying `Authorization: Bearer …` when there is a
    /// token. Call inside the runtime.
    pub fn client(&self) -> Result<HttpClient> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            // The error must not echo the value: it is a secret.
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    anyhow!("the RPC token contains characters an HTTP header cannot carry")
                })?;
            value.set_sensitive(true);
            headers.insert("authorization", value);
        }
        HttpClientBuilder::default()
            .request_timeout(self.timeout)
            .set_headers(headers)
            .build(&self.url)
            .map_err(|err| {
                anyhow!(
                    "invalid --rpc URL {:?}: {err} (expected e.g. {DEFAULT_RPC_URL})",
                    self.url
                )
            })
    }

    /// Turns a failed call of `method` into an operator-facing error with a hint.
    pub fn explain(&self, method: &str, err: ClientError) -> anyhow::Error {
        let url = &self.url;
        match err {
            ClientError::Call(obj) => {
                let server = server_said(obj.code(), obj.message(), obj.data().map(|d| d.get()));
                match obj.code() {
                    UNAUTHORIZED => anyhow!("{}", self.unauthorized(method, &server)),
                    RATE_LIMITED => anyhow!(
                        "rate limited: the governor at {url} refused {method} ({server}); \
                         retry in a second"
                    ),
                    UNKNOWN_EPOCH => anyhow!(
                        "unknown epoch: {server} (hint: `tb-cli governor decisions` lists the \
                         closed epochs)"
                    ),
                    -32601 => anyhow!(
                        "the governor at {url} does not know {method} ({server}); is tb-cli \
                         newer than the daemon?"
                    ),
                    -32602 => anyhow!("the governor rejected the parameters of {method}: {server}"),
                    _ => anyhow!("{method} failed: {server}"),
                }
            }
            ClientError::RequestTimeout => anyhow!(
                "the governor at {url} did not answer {method} within {} s (is it overloaded or \
                 stuck? retry, or raise --timeout)",
                self.timeout.as_secs()
            ),
            ClientError::ParseError(err) => anyhow::Error::new(err).context(format!(
                "the governor at {url} sent a {method} result tb-cli cannot read (are tb-cli and \
                 tb-governor the same version? check --rpc)"
            )),
            ClientError::Transport(err) => {
                use jsonrpsee::http_client::transport::Error as TransportError;
                if let Some(TransportError::Rejected { status_code }) = err.downcast_ref() {
                    let status = *status_code;
                    return match status {
                        401 | 403 => {
                            anyhow!("{}", self.unauthorized(method, &format!("HTTP {status}")))
                        }
                        429 => anyhow!(
                            "rate limited: the governor at {url} refused {method} (HTTP 429); \
                             retry in a second"
                        ),
                        _ => anyhow!(
                            "the server at {url} answered {method} with HTTP {status} (is --rpc \
                             the governor's RPC address?)"
                        ),
                    };
                }
                let what = if is_connection_refused(&*err) {
                    "connection refused"
                } else {
                    "request failed"
                };
                anyhow::Error::from_boxed(err).context(format!(
                    "cannot reach the governor at {url}: {what} (is `tb-governor run` running? \
                     check --rpc)"
                ))
            }
            other => anyhow::Error::new(other)
                .context(format!("{method} to the governor at {url} failed")),
        }
    }

    fn unauthorized(&self, method: &str, server: &str) -> String {
        let given = if self.token.is_some() {
            "the token was not accepted"
        } else {
            "no token was given"
        };
        format!("unauthorized: the governor refused {method}: {given} ({server}) ({TOKEN_HINT})")
    }
}

/// `--rpc` if given, else the environment's URL, else [`DEFAULT_RPC_URL`].
pub fn resolve_url(flag: Option<&str>, env: Option<String>) -> String {
    flag.map(str::to_owned)
        .or(env)
        .unwrap_or_else(|| DEFAULT_RPC_URL.to_owned())
}

fn server_said(code: i32, message: &str, data: Option<&str>) -> String {
    match data {
        Some(data) => format!("server said: {message} [{data}], code {code}"),
        None => format!("server said: {message}, code {code}"),
    }
}

/// Whether an I/O "connection refused" is somewhere in the error's source chain.
fn is_connection_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// Runs `fut` to completion on a fresh current-thread runtime.
fn block_on<F: Future>(fut: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(fut))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Calls `governor.status`.
pub async fn fetch_status(endpoint: &Endpoint) -> Result<Status> {
    let client = endpoint.client()?;
    client
        .status()
        .await
        .map_err(|e| endpoint.explain("governor.status", e))
}

/// Calls `governor.intents` with the command's filters.
pub async fn fetch_intents(endpoint: &Endpoint, args: &IntentsArgs) -> Result<Vec<Intent>> {
    let client = endpoint.client()?;
    let result = client
        .intents(args.gate, args.state, args.limit, args.before_epoch)
        .await
        .map_err(|e| endpoint.explain("governor.intents", e))?;
    Ok(result.intents)
}

/// Calls `governor.decisions`.
pub async fn fetch_decisions(
    endpoint: &Endpoint,
    from_epoch: Option<u64>,
    limit: Option<u32>,
) -> Result<Vec<DecisionSummary>> {
    let client = endpoint.client()?;
    let result = client
        .decisions(from_epoch, limit)
        .await
        .map_err(|e| endpoint.explain("governor.decisions", e))?;
    Ok(result.decisions)
}

/// Calls `governor.snapshot`.
pub async fn fetch_snapshot(endpoint: &Endpoint, epoch: u64) -> Result<SnapshotResult> {
    let client = endpoint.client()?;
    client
        .snapshot(epoch)
        .await
        .map_err(|e| endpoint.explain("governor.snapshot", e))
}

/// `tb-cli governor status`.
pub fn status(args: &StatusArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    if args.watch {
        return watch_status(&endpoint, Duration::from_secs(args.interval));
    }
    let status = block_on(fetch_status(&endpoint))??;
    if args.rpc.json {
        print_json(&status)?;
    } else {
        out!("{}", render_status(&status));
    }
    Ok(true)
}

/// `tb-cli governor status --watch`: fetches and redraws the status every `every` until Ctrl-C
/// (exit 0) or until stdout is closed. A failed fetch is shown in the frame and retried, so the
/// watch survives a daemon restart.
fn watch_status(endpoint: &Endpoint, every: Duration) -> Result<bool> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stdout().is_terminal();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let fetched = tokio::select! {
                _ = &mut ctrl_c => return Ok(true),
                r = fetch_status(endpoint) => r,
            };
            let body = match fetched {
                Ok(status) => render_status(&status),
                Err(e) => format!("error: {e:#}\n(retrying every {} s)\n", every.as_secs()),
            };
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let frame = watch_frame(tty, every.as_secs(), &endpoint.url, clock, &body);
            let mut out = std::io::stdout().lock();
            match out.write_all(frame.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(true),
                Err(e) => return Err(anyhow::Error::new(e).context("writing to stdout")),
            }
            drop(out);
            tokio::select! {
                _ = &mut ctrl_c => return Ok(true),
                () = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// One `--watch` frame: on a terminal the screen is cleared first; every frame starts with a
/// header line `Every N s: tb-cli governor status (URL)  HH:MM:SS UTC  Ctrl-C to stop`.
pub fn watch_frame(tty: bool, every_secs: u64, url: &str, unix_secs: u64, body: &str) -> String {
    let day = unix_secs % 86_400;
    let clear = if tty { "\x1b[H\x1b[2J" } else { "" };
    format!(
        "{clear}Every {every_secs} s: tb-cli governor status ({url})  {:02}:{:02}:{:02} UTC  \
         Ctrl-C to stop\n\n{body}\n",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// `tb-cli governor intents`.
pub fn intents(args: &IntentsArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let intents = block_on(fetch_intents(&endpoint, args))??;
    if args.rpc.json {
        print_json(&crate::rpc::IntentsResult { intents })?;
    } else {
        out!("{}", render_intents(&intents));
    }
    Ok(true)
}

/// `tb-cli governor decisions`.
pub fn decisions(args: &DecisionsArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let decisions = block_on(fetch_decisions(&endpoint, args.from_epoch, args.limit))??;
    if args.rpc.json {
        print_json(&crate::rpc::DecisionsResult { decisions })?;
    } else {
        out!("{}", render_decisions(&decisions));
    }
    Ok(true)
}

/// `tb-cli governor snapshot`. Exit 1 when the written file does not hash to `snapshot_hash`.
pub fn snapshot(args: &SnapshotArgs) -> Result<bool> {
    let endpoint = Endpoint::from_args(&args.rpc, None);
    let result = block_on(fetch_snapshot(&endpoint, args.epoch))??;
    let Some(out) = &args.out else {
        if args.rpc.json {
            print_json(&result)?;
        } else {
            out!("{}", render_snapshot(&result));
        }
        return Ok(true);
    };
    let written = write_snapshot(out, &result)?;
    if args.rpc.json {
        print_json(&result)?;
    }
    match written {
        Ok(()) => {
            if !args.rpc.json {
                outln!("wrote {}", out.display());
                outln!("snapshot_hash={}", result.snapshot_hash);
                outln!("check it with: b3sum {}", out.display());
                if !result.attestation_state.is_empty() {
                    outln!("attestation={}", result.attestation_state);
                    outln!("hint: {}", result.attestation_hint);
                }
            }
            Ok(true)
        }
        Err(problem) => {
            errln!("error: {problem}");
            Ok(false)
        }
    }
}

/// Writes the snapshot's JCS bytes to `path` and checks blake3 of the file against the
/// governor's `snapshot_hash`: the inner `Err` says why they differ.
pub fn write_snapshot(path: &Path, result: &SnapshotResult) -> Result<Result<(), String>> {
    let bytes = tb_replay::snapshot::canonical_bytes(&result.snapshot);
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    let written =
        std::fs::read(path).with_context(|| format!("cannot read back {}", path.display()))?;
    let local = blake3::hash(&written).to_hex().to_string();
    if local == result.snapshot_hash {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "snapshot hash mismatch for epoch {}: blake3 of {} is {local}, but the governor \
             reported snapshot_hash={}; do not trust this file (are tb-cli and tb-governor the \
             same version?)",
            result.snapshot.epoch,
            path.display(),
            result.snapshot_hash
        )))
    }
}

/// `tb-cli governor exit`.
pub fn exit(args: &ExitArgs) -> Result<bool> {
    check_words(&args.reason, "--reason")?;
    check_words(&args.operator, "--operator")?;
    let endpoint = Endpoint::from_args(&args.rpc, Some(&args.token));
    let receipt = block_on(async {
        let client = endpoint.client()?;
        client
            .submit_exit(args.gate, args.reason.clone(), args.operator.clone())
            .await
            .map_err(|e| endpoint.explain("governor.submit_exit", e))
    })??;
    if args.rpc.json {
        print_json(&receipt)?;
    } else {
        outln!(
            "{}",
            render_receipt(&format!("manual exit of {}", args.gate), &receipt)
        );
        // The journal's mode now is the mode of that close unless another set_mode follows.
        let mode = block_on(fetch_status(&endpoint))?.map(|s| s.mode);
        match mode {
            Ok(mode) => {
                if let Some(note) = exit_mode_note(mode, receipt.effective_epoch) {
                    outln!("{note}");
                }
            }
            Err(e) => errln!(
                "note: could not read the governor's mode ({e:#}); runtime params change only in \
                 apply mode"
            ),
        }
    }
    Ok(true)
}

/// What an exit journaled in shadow or paused mode does, and how to reach apply mode, where
/// runtime params change; `None` in apply mode.
pub fn exit_mode_note(mode: Mode, effective_epoch: u64) -> Option<String> {
    let e = effective_epoch;
    let how = format!(
        "to get there, journal before epoch {e} closes: tb-cli governor mode apply --reason \
         \"…\" --operator <name> (and set shadow_only = false, enabled = true in governor.toml \
         so a restart keeps it)"
    );
    match mode {
        Mode::Apply => None,
        Mode::Shadow => Some(format!(
            "note: the governor is in shadow mode. Runtime params (params, runtime/params.json) \
             change only in apply mode: at the close of epoch {e} this exit turns the gate's \
             flag off in shadow_params only. The first apply-mode close then sets params equal \
             to shadow_params (this exit included); {how}"
        )),
        Mode::Paused => Some(format!(
            "note: the governor is paused. A manual exit consumed at a paused close is ignored, \
             and runtime params (params, runtime/params.json) change only in apply mode. The mode \
             of a close is the one after all its journal events, so this exit counts if apply \
             mode is journaled for the same close; {how}"
        )),
    }
}

/// `tb-cli governor mode`.
pub fn mode(args: &ModeArgs) -> Result<bool> {
    check_words(&args.reason, "--reason")?;
    check_words(&args.operator, "--operator")?;
    let endpoint = Endpoint::from_args(&args.rpc, Some(&args.token));
    let receipt = block_on(async {
        let client = endpoint.client()?;
        client
            .set_mode(args.mode, args.reason.clone(), args.operator.clone())
            .await
            .map_err(|e| endpoint.explain("governor.set_mode", e))
    })??;
    if args.rpc.json {
        print_json(&receipt)?;
    } else {
        outln!(
            "{}",
            render_receipt(&format!("mode change to {}", args.mode), &receipt)
        );
    }
    Ok(true)
}

fn check_words(text: &str, flag: &str) -> Result<()> {
    anyhow::ensure!(
        !text.trim().is_empty(),
        "{flag} must not be empty: the journal keeps it forever"
    );
    Ok(())
}

/// `journaled <what> as seq N, effective at the close of epoch E`.
pub fn render_receipt(what: &str, receipt: &JournalReceipt) -> String {
    format!(
        "journaled {what} as seq {}, effective at the close of epoch {}",
        receipt.seq, receipt.effective_epoch
    )
}

// ---------------------------------------------------------------------------------------------
// Human rendering. Plain text, no colour, columns aligned by character count.

/// `-` for a missing value.
fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// Appends `rows` as `  key  value` lines with the keys padded to one width.
fn push_pairs(out: &mut String, indent: &str, rows: &[(&str, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, value) in rows {
        let line = format!("{indent}{key:<width$}  {value}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Appends a table: every column but the last padded to its widest cell.
fn push_table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = indent.to_owned();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths[i];
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// A counter map's total, with its non-zero counters by name.
fn counters(map: &std::collections::BTreeMap<String, u64>) -> String {
    let total = map.values().fold(0u64, |sum, v| sum.saturating_add(*v));
    let parts: Vec<String> = map
        .iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total}  ({})", parts.join(", "))
    }
}

/// `economics_autopilot=true|false` from the runtime params (the runbook's confirmation line),
/// noting the shadow params when they differ.
fn autopilot(s: &Status) -> String {
    let runtime = format!("economics_autopilot={}", s.params.economics_autopilot);
    if s.shadow_params.economics_autopilot == s.params.economics_autopilot {
        runtime
    } else {
        format!(
            "{runtime} (shadow_params: economics_autopilot={})",
            s.shadow_params.economics_autopilot
        )
    }
}

/// The human `status`, in the order of docs/operations.md, "Reading `tb-cli governor status`": header, gates, pending intents, economics,
/// telemetry gauges, release provenance + hint, receipt health + hints, BlockTorch timeline.
pub fn render_status(s: &Status) -> String {
    let mut out = String::new();

    // Header.
    out.push_str("Launch Governor\n");
    let mut header = vec![
        (
            "enabled",
            if s.enabled {
                "yes".to_owned()
            } else {
                "no (paused: gates are not judged, params are frozen)".to_owned()
            },
        ),
        (
            "mode",
            format!(
                "{} (effective from epoch {})",
                s.mode, s.mode_effective_epoch
            ),
        ),
        (
            "last closed epoch",
            s.last_closed_epoch
                .map_or_else(|| "- (none yet)".to_owned(), |e| e.to_string()),
        ),
        ("tip height", or_dash(s.tip_height)),
        ("autopilot", autopilot(s)),
        ("rules_version", s.rules_version.to_string()),
        ("config_hash", s.config_hash.clone()),
        ("ingest", format!("{}:{}", s.ingest.file, s.ingest.line)),
    ];
    if s.ingest.stall.is_some() {
        header.push(("ingest state", "STALLED".to_owned()));
    }
    push_pairs(&mut out, "  ", &header);
    if let Some(stall) = &s.ingest.stall {
        let _ = writeln!(
            out,
            "STALLED: {stall}\n         \
             (ingestion has stopped here; no epoch closes until it resumes)"
        );
    }
    if let Some(err) = &s.config_reload_error {
        let _ = writeln!(
            out,
            "CONFIG RELOAD REFUSED: {err}\n         (still running on the previous configuration)"
        );
    }

    // Gates.
    out.push_str("\ngates\n");
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "STATE".to_owned(),
        "ENTER".to_owned(),
        "EXIT".to_owned(),
        "REASON".to_owned(),
    ]];
    for g in &s.gates {
        rows.push(vec![
            g.name.to_string(),
            match g.state {
                crate::engine::GateStatus::Active => "active".to_owned(),
                crate::engine::GateStatus::Inactive => "inactive".to_owned(),
            },
            format!("enter {}/{}", g.enter_streak, g.enter_streak_required),
            format!("exit {}/{}", g.exit_streak, g.exit_streak_required),
            g.reason.clone(),
        ]);
    }
    push_table(&mut out, "  ", &rows);

    // Pending intents.
    let _ = writeln!(out, "\npending intents ({})", s.pending_intents.len());
    if s.pending_intents.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut rows = vec![vec![
            "ID".to_owned(),
            "EPOCH_APPLY".to_owned(),
            "REASON".to_owned(),
        ]];
        for i in &s.pending_intents {
            rows.push(vec![
                i.id.clone(),
                i.epoch_apply.to_string(),
                i.reason.clone(),
            ]);
        }
        push_table(&mut out, "  ", &rows);
    }

    // Economics sample.
    match &s.economics {
        Some(e) => {
            let _ = writeln!(out, "\neconomics sample (epoch {})", e.epoch);
            let shares: Vec<String> = e
                .subsidy_share_bps
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            push_pairs(
                &mut out,
                "  ",
                &[
                    ("tx_count", e.tx_count.to_string()),
                    ("tx_volume_micro", e.tx_volume_micro.to_string()),
                    ("treasury_inflow_micro", e.treasury_inflow_micro.to_string()),
                    ("unique_miners", e.unique_miners.to_string()),
                    (
                        "block_reward_per_block_micro",
                        e.block_reward_per_block_micro.to_string(),
                    ),
                    ("reward_volatility_bps", e.reward_volatility_bps.to_string()),
                    ("subsidy_share_bps", shares.join(", ")),
                    (
                        "last_economics_snapshot_hash",
                        or_dash(s.last_economics_snapshot_hash.as_deref()),
                    ),
                ],
            );
        }
        None => {
            out.push_str("\neconomics sample\n  none: no epoch has closed yet\n");
            push_pairs(
                &mut out,
                "  ",
                &[(
                    "last_economics_snapshot_hash",
                    or_dash(s.last_economics_snapshot_hash.as_deref()),
                )],
            );
        }
    }

    // Telemetry gauges.
    out.push_str("\ntelemetry gauges (ppm)\n");
    if s.telemetry_gauges_ppm.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows: Vec<(&str, String)> = s
            .telemetry_gauges_ppm
            .iter()
            .map(|(k, v)| (k.as_str(), or_dash(*v)))
            .collect();
        push_pairs(&mut out, "  ", &rows);
    }

    // Release provenance.
    out.push_str("\nrelease provenance\n");
    match &s.release_provenance {
        Some(p) => {
            push_pairs(
                &mut out,
                "  ",
                &[
                    ("epoch", p.epoch.to_string()),
                    ("decision_hash", p.decision_hash.clone()),
                    ("snapshot_hash", p.snapshot_hash.clone()),
                    (
                        "attestation",
                        p.attestation
                            .as_ref()
                            .map_or_else(|| "unsigned".to_owned(), |k| format!("keyid {k}")),
                    ),
                    ("verified", yes_no(p.verified).to_owned()),
                ],
            );
            let _ = writeln!(out, "  hint: {}", p.hint);
        }
        None => {
            out.push_str("  none: no decision has been written yet\n");
            out.push_str(
                "  hint: no epoch has closed yet; provenance appears when the first epoch \
                 closes and its decision file is written\n",
            );
        }
    }

    // Receipt health.
    out.push_str("\nreceipt health summary\n");
    let h = &s.receipt_health;
    push_pairs(
        &mut out,
        "  ",
        &[
            ("accepted", counters(&h.accepted)),
            ("rejected", counters(&h.rejected)),
            (
                "signature_mismatch_total",
                h.signature_mismatch_total.to_string(),
            ),
            (
                "validation_failure_total",
                h.validation_failure_total.to_string(),
            ),
            (
                "decoding_failure_total",
                h.decoding_failure_total.to_string(),
            ),
            (
                "pending_receipts",
                format!(
                    "storage {}, compute {}, energy {}",
                    h.pending_storage, h.pending_compute, h.pending_energy
                ),
            ),
            ("receipt_drain_depth", h.drain_depth.to_string()),
        ],
    );
    if s.receipt_health.hints.is_empty() {
        out.push_str("  hint: receipts look healthy\n");
    } else {
        for hint in &s.receipt_health.hints {
            let _ = writeln!(out, "  hint: {hint}");
        }
    }

    // BlockTorch.
    let b = &s.blocktorch;
    out.push_str("\nBlockTorch job timeline\n");
    let latency = match b.proof_latency_p95_ms {
        Some(ms) if ms > b.budget_ms => {
            format!("p95 {ms} ms (budget {} ms) OVER BUDGET", b.budget_ms)
        }
        Some(ms) => format!("p95 {ms} ms (budget {} ms)", b.budget_ms),
        None => "-".to_owned(),
    };
    push_pairs(
        &mut out,
        "  ",
        &[
            (
                "header",
                s.last_closed_epoch
                    .map_or_else(|| "-".to_owned(), |e| format!("epoch {e}")),
            ),
            ("→ kernel digest", or_dash(b.kernel_digest.as_deref())),
            ("→ benchmark commit", or_dash(b.benchmark_commit.as_deref())),
            ("→ proof latency", latency),
            ("→ aggregator trace", or_dash(b.aggregator_trace.as_deref())),
            ("source", b.source.clone()),
        ],
    );
    out
}

/// Intents: `id  action  state  created_epoch → epoch_apply`, then indented `reason:` and
/// `snapshot_hash=` lines.
pub fn render_intents(intents: &[Intent]) -> String {
    if intents.is_empty() {
        return "no intents match\n".to_owned();
    }
    let width = |f: &dyn Fn(&Intent) -> usize| intents.iter().map(f).max().unwrap_or(0);
    let id_w = width(&|i| i.id.chars().count());
    let action_w = width(&|i| i.action.as_str().len());
    let state_w = width(&|i| i.state.as_str().len());
    let mut out = String::new();
    for i in intents {
        let _ = writeln!(
            out,
            "{:<id_w$}  {:<action_w$}  {:<state_w$}  {} → {}",
            i.id,
            i.action.as_str(),
            i.state.as_str(),
            i.created_epoch,
            i.epoch_apply
        );
        let _ = writeln!(out, "    reason: {}", i.reason);
        let _ = writeln!(out, "    snapshot_hash={}", i.snapshot_hash);
    }
    out
}

/// One line per decision.
pub fn render_decisions(decisions: &[DecisionSummary]) -> String {
    if decisions.is_empty() {
        return "no decisions yet (no epoch has closed)\n".to_owned();
    }
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            vec![
                format!("epoch {}", d.epoch),
                d.mode.to_string(),
                if d.attested { "signed" } else { "unsigned" }.to_owned(),
                format!("decision_hash={}", d.decision_hash),
                format!("snapshot_hash={}", d.snapshot_hash),
                if d.intents.is_empty() {
                    "intents: -".to_owned()
                } else {
                    format!("intents: {}", d.intents.join(", "))
                },
            ]
        })
        .collect();
    let mut out = String::new();
    push_table(&mut out, "", &rows);
    out
}

/// The hashes and a short summary of one snapshot.
pub fn render_snapshot(r: &SnapshotResult) -> String {
    let s = &r.snapshot;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "snapshot of epoch {} (chain {}, heights {}..={})",
        s.epoch, s.chain_id, s.first_height, s.last_height
    );
    let accepted = &s.receipts.accepted;
    let rejected = &s.receipts.rejected;
    let accepted_total = [
        accepted.storage,
        accepted.compute,
        accepted.energy,
        accepted.ad,
        accepted.slash,
    ]
    .iter()
    .fold(0u64, |a, v| a.saturating_add(*v));
    let rejected_total = [
        rejected.schema,
        rejected.below_min_payment,
        rejected.key_not_found,
        rejected.bad_signature,
        rejected.replayed_nonce,
        rejected.invalid_values,
    ]
    .iter()
    .fold(0u64, |a, v| a.saturating_add(*v));
    push_pairs(
        &mut out,
        "  ",
        &[
            ("snapshot_hash", r.snapshot_hash.clone()),
            ("decision_hash", r.decision_hash.clone()),
            (
                "prev_snapshot_hash",
                or_dash(s.prev_snapshot_hash.as_deref()),
            ),
            (
                "attestation",
                match (&r.attestation, r.attestation_state.as_str()) {
                    (None, _) => "missing (no .sig sidecar)".to_owned(),
                    (Some(a), "") => format!("keyid {}", a.keyid),
                    (Some(a), state) => format!("keyid {} ({state})", a.keyid),
                },
            ),
            ("tx_count", s.tx_count.to_string()),
            ("tx_volume_micro", s.tx_volume_micro.to_string()),
            ("treasury_inflow_micro", s.treasury_inflow_micro.to_string()),
            ("unique_miners", s.unique_miners.to_string()),
            (
                "block_reward_per_block_micro",
                s.controls.block_reward_per_block_micro.to_string(),
            ),
            (
                "receipts",
                format!("accepted {accepted_total}, rejected {rejected_total}"),
            ),
            (
                "compute proofs",
                format!(
                    "{} (p95 {} ms)",
                    s.compute_proofs.count,
                    or_dash(s.compute_proofs.p95_ms)
                ),
            ),
        ],
    );
    if !r.attestation_hint.is_empty() {
        let _ = writeln!(out, "  hint: {}", r.attestation_hint);
    }
    out.push_str("  hint: pass --out FILE to save the exact bytes, then check them with b3sum\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use jsonrpsee::core::{async_trait, RpcResult};
    use jsonrpsee::types::ErrorObjectOwned;
    use tb_config::Mode;

    use super::*;
    use crate::engine::{Action, Gate, GateRecord, GateStatus, IntentState, Params};
    use crate::rpc::{
        Blocktorch, DecisionsResult, EconomicsSample, GovernorApiServer, Ingest, IntentsResult,
        ReceiptHealth, ReleaseProvenance,
    };

    fn intent(gate: Gate, epoch: u64) -> Intent {
        Intent {
            id: format!("{gate}-{epoch:08}-enter"),
            gate,
            action: Action::Enter,
            created_epoch: epoch,
            epoch_apply: epoch + 2,
            reason: "enter streak 3/3".to_owned(),
            metrics: BTreeMap::new(),
            snapshot_hash: format!("{:064x}", epoch),
            state: IntentState::Pending,
        }
    }

    fn status() -> Status {
        Status {
            enabled: true,
            mode: Mode::Shadow,
            mode_effective_epoch: 0,
            rules_version: 1,
            config_hash: "c0ffee".to_owned(),
            tip_height: Some(1450),
            last_closed_epoch: Some(11),
            ingest: Ingest {
                file: "chain/000000.jsonl".to_owned(),
                line: 1451,
                stall: None,
            },
            gates: Gate::ALL
                .into_iter()
                .map(|name| GateRecord {
                    name,
                    state: GateStatus::Inactive,
                    enter_streak: 2,
                    exit_streak: 0,
                    enter_streak_required: 3,
                    exit_streak_required: 2,
                    enter_ok: true,
                    exit_bad: false,
                    reason: format!("{name}: enter ok"),
                    metrics: Default::default(),
                })
                .collect(),
            pending_intents: vec![intent(Gate::Compute, 11)],
            last_economics_snapshot_hash: Some("ab".repeat(32)),
            economics: Some(EconomicsSample {
                epoch: 11,
                tx_count: 1000,
                tx_volume_micro: 5_000_000,
                treasury_inflow_micro: 10_000,
                unique_miners: 7,
                block_reward_per_block_micro: 1_000_000,
                reward_volatility_bps: 12,
                subsidy_share_bps: BTreeMap::from([
                    ("storage".to_owned(), 2500),
                    ("compute".to_owned(), 2500),
                ]),
            }),
            telemetry_gauges_ppm: BTreeMap::from([
                ("compute.utilization".to_owned(), Some(600_000)),
                ("energy.utilization".to_owned(), None),
            ]),
            params: Params::initial(500),
            shadow_params: Params::initial(500),
            release_provenance: Some(ReleaseProvenance {
                epoch: 11,
                decision_hash: "de".repeat(32),
                snapshot_hash: "ab".repeat(32),
                attestation: None,
                verified: false,
                hint: "signing is off: set TB_GOVERNOR_SIGN=1".to_owned(),
            }),
            receipt_health: ReceiptHealth {
                accepted: BTreeMap::from([("storage".to_owned(), 10), ("compute".to_owned(), 5)]),
                rejected: BTreeMap::from([("bad_signature".to_owned(), 1)]),
                signature_mismatch_total: 1,
                validation_failure_total: 0,
                decoding_failure_total: 0,
                pending_storage: 3,
                pending_compute: 2,
                pending_energy: 1,
                drain_depth: 7,
                hints: vec![],
            },
            blocktorch: Blocktorch {
                kernel_digest: Some("kd".to_owned()),
                benchmark_commit: None,
                proof_latency_p95_ms: Some(120),
                budget_ms: 500,
                aggregator_trace: None,
                source: "chain".to_owned(),
            },
            config_reload_error: None,
        }
    }

    #[test]
    fn status_in_design_order() {
        let expected = "\
Launch Governor
  enabled            yes
  mode               shadow (effective from epoch 0)
  last closed epoch  11
  tip height         1450
  autopilot          economics_autopilot=false
  rules_version      1
  config_hash        c0ffee
  ingest             chain/000000.jsonl:1451

gates
  NAME           STATE     ENTER      EXIT      REASON
  economics      inactive  enter 2/3  exit 0/2  economics: enter ok
  storage        inactive  enter 2/3  exit 0/2  storage: enter ok
  compute        inactive  enter 2/3  exit 0/2  compute: enter ok
  energy         inactive  enter 2/3  exit 0/2  energy: enter ok
  ad             inactive  enter 2/3  exit 0/2  ad: enter ok
  ad_contextual  inactive  enter 2/3  exit 0/2  ad_contextual: enter ok
  ad_presence    inactive  enter 2/3  exit 0/2  ad_presence: enter ok
  operational    inactive  enter 2/3  exit 0/2  operational: enter ok

pending intents (1)
  ID                      EPOCH_APPLY  REASON
  compute-00000011-enter  13           enter streak 3/3

economics sample (epoch 11)
  tx_count                      1000
  tx_volume_micro               5000000
  treasury_inflow_micro         10000
  unique_miners                 7
  block_reward_per_block_micro  1000000
  reward_volatility_bps         12
  subsidy_share_bps             compute 2500, storage 2500
  last_economics_snapshot_hash  abababababababababababababababababababababababababababababababab

telemetry gauges (ppm)
  compute.utilization  600000
  energy.utilization   -

release provenance
  epoch          11
  decision_hash  dededededededededededededededededededededededededededededededede
  snapshot_hash  abababababababababababababababababababababababababababababababab
  attestation    unsigned
  verified       no
  hint: signing is off: set TB_GOVERNOR_SIGN=1

receipt health summary
  accepted                  15  (compute 5, storage 10)
  rejected                  1  (bad_signature 1)
  signature_mismatch_total  1
  validation_failure_total  0
  decoding_failure_total    0
  pending_receipts          storage 3, compute 2, energy 1
  receipt_drain_depth       7
  hint: receipts look healthy

BlockTorch job timeline
  header              epoch 11
  → kernel digest     kd
  → benchmark commit  -
  → proof latency     p95 120 ms (budget 500 ms)
  → aggregator trace  -
  source              chain
";
        assert_eq!(render_status(&status()), expected);
    }

    #[test]
    fn status_when_stalled_signed_and_over_budget() {
        let mut s = status();
        s.ingest.stall = Some("chain/000000.jsonl:1451: amount: not an integer".to_owned());
        s.config_reload_error = Some("gates.compute changed mid-chain".to_owned());
        s.blocktorch.proof_latency_p95_ms = Some(501);
        s.gates[0].state = GateStatus::Active;
        if let Some(p) = &mut s.release_provenance {
            p.attestation = Some("0123456789abcdef".to_owned());
            p.verified = true;
        }
        let expected = "\
Launch Governor
  enabled            yes
  mode               shadow (effective from epoch 0)
  last closed epoch  11
  tip height         1450
  autopilot          economics_autopilot=false
  rules_version      1
  config_hash        c0ffee
  ingest             chain/000000.jsonl:1451
  ingest state       STALLED
STALLED: chain/000000.jsonl:1451: amount: not an integer
         (ingestion has stopped here; no epoch closes until it resumes)
CONFIG RELOAD REFUSED: gates.compute changed mid-chain
         (still running on the previous configuration)

gates
  NAME           STATE     ENTER      EXIT      REASON
  economics      active    enter 2/3  exit 0/2  economics: enter ok
  storage        inactive  enter 2/3  exit 0/2  storage: enter ok
  compute        inactive  enter 2/3  exit 0/2  compute: enter ok
  energy         inactive  enter 2/3  exit 0/2  energy: enter ok
  ad             inactive  enter 2/3  exit 0/2  ad: enter ok
  ad_contextual  inactive  enter 2/3  exit 0/2  ad_contextual: enter ok
  ad_presence    inactive  enter 2/3  exit 0/2  ad_presence: enter ok
  operational    inactive  enter 2/3  exit 0/2  operational: enter ok

pending intents (1)
  ID                      EPOCH_APPLY  REASON
  compute-00000011-enter  13           enter streak 3/3

economics sample (epoch 11)
  tx_count                      1000
  tx_volume_micro               5000000
  treasury_inflow_micro         10000
  unique_miners                 7
  block_reward_per_block_micro  1000000
  reward_volatility_bps         12
  subsidy_share_bps             compute 2500, storage 2500
  last_economics_snapshot_hash  abababababababababababababababababababababababababababababababab

telemetry gauges (ppm)
  compute.utilization  600000
  energy.utilization   -

release provenance
  epoch          11
  decision_hash  dededededededededededededededededededededededededededededededede
  snapshot_hash  abababababababababababababababababababababababababababababababab
  attestation    keyid 0123456789abcdef
  verified       yes
  hint: signing is off: set TB_GOVERNOR_SIGN=1

receipt health summary
  accepted                  15  (compute 5, storage 10)
  rejected                  1  (bad_signature 1)
  signature_mismatch_total  1
  validation_failure_total  0
  decoding_failure_total    0
  pending_receipts          storage 3, compute 2, energy 1
  receipt_drain_depth       7
  hint: receipts look healthy

BlockTorch job timeline
  header              epoch 11
  → kernel digest     kd
  → benchmark commit  -
  → proof latency     p95 501 ms (budget 500 ms) OVER BUDGET
  → aggregator trace  -
  source              chain
";
        assert_eq!(render_status(&s), expected);
    }

    #[test]
    fn status_before_the_first_epoch() {
        let mut s = status();
        s.last_closed_epoch = None;
        s.tip_height = None;
        s.economics = None;
        s.last_economics_snapshot_hash = None;
        s.release_provenance = None;
        s.pending_intents.clear();
        s.telemetry_gauges_ppm.clear();
        s.receipt_health.hints = vec!["many bad signatures: check providers.json".to_owned()];
        s.receipt_health.rejected = BTreeMap::from([("schema".to_owned(), 0)]);
        s.shadow_params.economics_autopilot = true;
        let expected = "\
Launch Governor
  enabled            yes
  mode               shadow (effective from epoch 0)
  last closed epoch  - (none yet)
  tip height         -
  autopilot          economics_autopilot=false (shadow_params: economics_autopilot=true)
  rules_version      1
  config_hash        c0ffee
  ingest             chain/000000.jsonl:1451

gates
  NAME           STATE     ENTER      EXIT      REASON
  economics      inactive  enter 2/3  exit 0/2  economics: enter ok
  storage        inactive  enter 2/3  exit 0/2  storage: enter ok
  compute        inactive  enter 2/3  exit 0/2  compute: enter ok
  energy         inactive  enter 2/3  exit 0/2  energy: enter ok
  ad             inactive  enter 2/3  exit 0/2  ad: enter ok
  ad_contextual  inactive  enter 2/3  exit 0/2  ad_contextual: enter ok
  ad_presence    inactive  enter 2/3  exit 0/2  ad_presence: enter ok
  operational    inactive  enter 2/3  exit 0/2  operational: enter ok

pending intents (0)
  none

economics sample
  none: no epoch has closed yet
  last_economics_snapshot_hash  -

telemetry gauges (ppm)
  none

release provenance
  none: no decision has been written yet
  hint: no epoch has closed yet; provenance appears when the first epoch closes and its decision file is written

receipt health summary
  accepted                  15  (compute 5, storage 10)
  rejected                  0
  signature_mismatch_total  1
  validation_failure_total  0
  decoding_failure_total    0
  pending_receipts          storage 3, compute 2, energy 1
  receipt_drain_depth       7
  hint: many bad signatures: check providers.json

BlockTorch job timeline
  header              -
  → kernel digest     kd
  → benchmark commit  -
  → proof latency     p95 120 ms (budget 500 ms)
  → aggregator trace  -
  source              chain
";
        assert_eq!(render_status(&s), expected);
    }

    #[test]
    fn intents_show_their_action_state_and_snapshot_hash() {
        let intents = vec![intent(Gate::AdContextual, 12), intent(Gate::Compute, 9)];
        let expected = "\
ad_contextual-00000012-enter  enter  pending  12 → 14
    reason: enter streak 3/3
    snapshot_hash=000000000000000000000000000000000000000000000000000000000000000c
compute-00000009-enter        enter  pending  9 → 11
    reason: enter streak 3/3
    snapshot_hash=0000000000000000000000000000000000000000000000000000000000000009
";
        assert_eq!(render_intents(&intents), expected);
        assert_eq!(render_intents(&[]), "no intents match\n");
    }

    #[test]
    fn decisions_one_line_each() {
        let d = |epoch: u64, attested, intents: &[&str]| DecisionSummary {
            epoch,
            decision_hash: "de".repeat(32),
            snapshot_hash: "ab".repeat(32),
            mode: Mode::Shadow,
            intents: intents.iter().map(|i| (*i).to_owned()).collect(),
            attested,
        };
        let expected = "\
epoch 9   shadow  signed    decision_hash=dededededededededededededededededededededededededededededededede  snapshot_hash=abababababababababababababababababababababababababababababababab  intents: a, b
epoch 10  shadow  unsigned  decision_hash=dededededededededededededededededededededededededededededededede  snapshot_hash=abababababababababababababababababababababababababababababababab  intents: -
";
        assert_eq!(
            render_decisions(&[d(9, true, &["a", "b"]), d(10, false, &[])]),
            expected
        );
        assert_eq!(
            render_decisions(&[]),
            "no decisions yet (no epoch has closed)\n"
        );
    }

    #[test]
    fn receipt_line_wording() {
        let r = JournalReceipt {
            seq: 4,
            effective_epoch: 12,
        };
        assert_eq!(
            render_receipt("manual exit of compute", &r),
            "journaled manual exit of compute as seq 4, effective at the close of epoch 12"
        );
    }

    #[test]
    fn exit_notes_say_how_to_reach_apply_mode() {
        assert_eq!(exit_mode_note(Mode::Apply, 12), None);
        let shadow = "\
note: the governor is in shadow mode. Runtime params (params, runtime/params.json) change only in apply mode: at the close of epoch 12 this exit turns the gate's flag off in shadow_params only. The first apply-mode close then sets params equal to shadow_params (this exit included); to get there, journal before epoch 12 closes: tb-cli governor mode apply --reason \"…\" --operator <name> (and set shadow_only = false, enabled = true in governor.toml so a restart keeps it)";
        assert_eq!(exit_mode_note(Mode::Shadow, 12).as_deref(), Some(shadow));
        let paused = "\
note: the governor is paused. A manual exit consumed at a paused close is ignored, and runtime params (params, runtime/params.json) change only in apply mode. The mode of a close is the one after all its journal events, so this exit counts if apply mode is journaled for the same close; to get there, journal before epoch 12 closes: tb-cli governor mode apply --reason \"…\" --operator <name> (and set shadow_only = false, enabled = true in governor.toml so a restart keeps it)";
        assert_eq!(exit_mode_note(Mode::Paused, 12).as_deref(), Some(paused));
    }

    #[test]
    fn watch_frames_clear_the_screen_only_on_a_terminal() {
        let frame = watch_frame(true, 2, "http://127.0.0.1:7878", 86_400 + 3_723, "body\n");
        assert_eq!(
            frame,
            "\x1b[H\x1b[2JEvery 2 s: tb-cli governor status (http://127.0.0.1:7878)  01:02:03 UTC  \
             Ctrl-C to stop\n\nbody\n\n"
        );
        let piped = watch_frame(false, 5, "u", 0, "b");
        assert_eq!(
            piped,
            "Every 5 s: tb-cli governor status (u)  00:00:00 UTC  Ctrl-C to stop\n\nb\n"
        );
    }

    #[test]
    fn snapshot_summary() {
        let r = SnapshotResult {
            snapshot_hash: "5a".repeat(32),
            ..snapshot_result()
        };
        let expected = "\
snapshot of epoch 3 (chain tb-sim, heights 360..=479)
  snapshot_hash                 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
  decision_hash                 dededededededededededededededededededededededededededededededede
  prev_snapshot_hash            -
  attestation                   missing (no .sig sidecar)
  tx_count                      9
  tx_volume_micro               90
  treasury_inflow_micro         3
  unique_miners                 2
  block_reward_per_block_micro  1000
  receipts                      accepted 4, rejected 0
  compute proofs                0 (p95 - ms)
  hint: epoch 3 has no attestation. Add it: tb-governor sign
  hint: pass --out FILE to save the exact bytes, then check them with b3sum
";
        assert_eq!(render_snapshot(&r), expected);
    }

    #[test]
    fn url_resolution() {
        assert_eq!(resolve_url(None, None), DEFAULT_RPC_URL);
        assert_eq!(resolve_url(None, Some("http://h:1".into())), "http://h:1");
        assert_eq!(
            resolve_url(Some("http://f:2"), Some("http://h:1".into())),
            "http://f:2"
        );
    }

    #[test]
    fn intent_state_and_gate_parse_from_snake_case() {
        assert_eq!(
            crate::cli::parse_intent_state("shadowed").unwrap(),
            IntentState::Shadowed
        );
        assert!(crate::cli::parse_intent_state("Shadowed").is_err());
        assert_eq!("ad_contextual".parse::<Gate>().unwrap(), Gate::AdContextual);
    }

    fn sample_snapshot() -> tb_replay::Snapshot {
        let market = serde_json::json!({
            "settlements": 1, "providers": 1, "units_delivered": 1, "units_offered": 2,
            "revenue_micro": 10, "cost_micro": 5, "slashed_micro": 0,
            "utilization_ppm": 500000, "provider_margin_ppm": 500000
        });
        let tier = serde_json::json!({
            "settlements": 0, "impressions": 0, "conversions": 0, "min_privacy_remaining_ppm": null
        });
        serde_json::from_value(serde_json::json!({
            "schema": "tb.economics.snapshot.v1", "chain_id": "tb-sim", "epoch": 3,
            "first_height": 360, "last_height": 479,
            "first_timestamp_ms": 1, "last_timestamp_ms": 2,
            "tx_count": 9, "tx_volume_micro": 90, "coinbase_micro": 1, "emitted_micro": 1,
            "treasury_inflow_micro": 3, "unique_miners": 2,
            "block_spacing": {"median_ms": 1000, "mad_ms": 10},
            "markets": {"storage": market, "compute": market, "energy": market, "ad": market},
            "compute_proofs": {
                "count": 0, "p50_ms": null, "p95_ms": null, "max_ms": null, "budget_ms": 500,
                "sla_violations": 0, "last_kernel_digest": null, "last_benchmark_commit": null,
                "trace_hash": null
            },
            "ad_tiers": {"contextual": tier, "presence": tier},
            "receipts": {
                "accepted": {"storage": 1, "compute": 1, "energy": 1, "ad": 1, "slash": 0},
                "rejected": {"schema": 0, "below_min_payment": 0, "key_not_found": 0,
                             "bad_signature": 0, "replayed_nonce": 0, "invalid_values": 0}
            },
            "controls": {
                "block_reward_per_block_micro": 1000, "reward_volatility_bps": 0,
                "activity_ppm": 0, "decentralization_ppm": 0, "decay_ppm": 0,
                "baseline_tx_count_milli": 0, "baseline_tx_volume_micro": 0,
                "baseline_miners_milli": 0,
                "subsidy_share_bps": {"storage": 2500, "compute": 2500, "energy": 2500, "ad": 2500}
            },
            "prev_snapshot_hash": null, "saturated": []
        }))
        .unwrap()
    }

    fn snapshot_result() -> SnapshotResult {
        let snapshot = sample_snapshot();
        SnapshotResult {
            snapshot_hash: snapshot.hash(),
            snapshot,
            decision_hash: "de".repeat(32),
            attestation: None,
            attestation_state: "missing".to_owned(),
            attestation_hint: "epoch 3 has no attestation. Add it: tb-governor sign".to_owned(),
        }
    }

    #[test]
    fn snapshot_out_writes_exact_jcs_bytes_and_checks_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        let good = snapshot_result();
        write_snapshot(&path, &good).unwrap().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, good.snapshot.canonical_bytes());
        assert_eq!(
            blake3::hash(&bytes).to_hex().to_string(),
            good.snapshot_hash
        );

        let mut bad = good.clone();
        bad.snapshot_hash = "00".repeat(32);
        let problem = write_snapshot(&path, &bad).unwrap().unwrap_err();
        assert_eq!(
            problem,
            format!(
                "snapshot hash mismatch for epoch 3: blake3 of {} is {}, but the governor \
                 reported snapshot_hash={}; do not trust this file (are tb-cli and tb-governor \
                 the same version?)",
                path.display(),
                good.snapshot_hash,
                bad.snapshot_hash
            )
        );
    }

    // --- Against a real jsonrpsee server ------------------------------------------------------

    struct Mock;

    fn err(code: i32, message: &str) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(code, message.to_owned(), None::<()>)
    }

    #[async_trait]
    impl GovernorApiServer for Mock {
        async fn status(&self) -> RpcResult<Status> {
            Ok(status())
        }
        async fn intents(
            &self,
            gate: Option<Gate>,
            state: Option<IntentState>,
            limit: Option<u32>,
            before_epoch: Option<u64>,
        ) -> RpcResult<IntentsResult> {
            // Echo the filters back through the intent so the test can see them.
            let mut i = intent(gate.unwrap_or(Gate::Economics), before_epoch.unwrap_or(1));
            i.state = state.unwrap_or(IntentState::Applied);
            i.reason = format!("limit {limit:?}");
            Ok(IntentsResult { intents: vec![i] })
        }
        async fn decisions(
            &self,
            _from_epoch: Option<u64>,
            _limit: Option<u32>,
        ) -> RpcResult<DecisionsResult> {
            Err(err(RATE_LIMITED, "too many requests"))
        }
        async fn snapshot(&self, epoch: u64) -> RpcResult<SnapshotResult> {
            if epoch == 3 {
                Ok(snapshot_result())
            } else {
                Err(err(UNKNOWN_EPOCH, "no decision for epoch 99"))
            }
        }
        async fn submit_exit(
            &self,
            _gate: Gate,
            _reason: String,
            _operator: String,
        ) -> RpcResult<JournalReceipt> {
            Err(err(UNAUTHORIZED, "unauthorized"))
        }
        async fn set_mode(
            &self,
            _mode: Mode,
            _reason: String,
            _operator: String,
        ) -> RpcResult<JournalReceipt> {
            Ok(JournalReceipt {
                seq: 7,
                effective_epoch: 12,
            })
        }
    }

    fn endpoint(url: String, token: Option<&str>) -> Endpoint {
        Endpoint {
            url,
            timeout: Duration::from_secs(5),
            token: token.map(Secret::new),
        }
    }

    #[test]
    fn calls_a_server_and_explains_its_errors() {
        block_on(async {
            let server = jsonrpsee::server::Server::builder()
                .build("127.0.0.1:0")
                .await
                .unwrap();
            let url = format!("http://{}", server.local_addr().unwrap());
            let handle = server.start(Mock.into_rpc());
            let ep = endpoint(url.clone(), None);

            assert_eq!(fetch_status(&ep).await.unwrap(), status());

            let args = IntentsArgs {
                gate: Some(Gate::Storage),
                state: Some(IntentState::Superseded),
                limit: Some(5),
                before_epoch: Some(8),
                rpc: RpcArgs {
                    rpc: None,
                    json: false,
                    timeout: 5,
                },
            };
            let got = fetch_intents(&ep, &args).await.unwrap();
            assert_eq!(got[0].gate, Gate::Storage);
            assert_eq!(got[0].state, IntentState::Superseded);
            assert_eq!(got[0].created_epoch, 8);
            assert_eq!(got[0].reason, "limit Some(5)");

            assert_eq!(fetch_snapshot(&ep, 3).await.unwrap(), snapshot_result());
            let e = fetch_snapshot(&ep, 99).await.unwrap_err().to_string();
            assert!(e.starts_with("unknown epoch"), "{e}");

            let e = fetch_decisions(&ep, None, None)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("rate limited") && e.contains("retry in a second"),
                "{e}"
            );

            let client = ep.client().unwrap();
            let e = client
                .submit_exit(Gate::Compute, "r".into(), "o".into())
                .await
                .map_err(|e| ep.explain("governor.submit_exit", e))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("unauthorized"), "{e}");
            assert!(e.contains("no token was given"), "{e}");
            assert!(
                e.contains("hint: pass --token or set TB_GOVERNOR_RPC_TOKEN"),
                "{e}"
            );

            let secret = "s3cr3t-token-value";
            let ep_tok = endpoint(url.clone(), Some(secret));
            let client = ep_tok.client().unwrap();
            let e = client
                .submit_exit(Gate::Compute, "r".into(), "o".into())
                .await
                .map_err(|e| ep_tok.explain("governor.submit_exit", e))
                .unwrap_err();
            let shown = format!("{e:?} {e:#}");
            assert!(shown.contains("the token was not accepted"), "{shown}");
            assert!(!shown.contains(secret), "the token must never be printed");
            assert!(!format!("{ep_tok:?}").contains(secret));

            let receipt = client
                .set_mode(Mode::Apply, "r".into(), "o".into())
                .await
                .unwrap();
            assert_eq!(receipt.seq, 7);

            handle.stop().unwrap();
        })
        .unwrap();
    }

    #[test]
    fn connection_refused_names_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let e = block_on(fetch_status(&endpoint(url.clone(), None)))
            .unwrap()
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot reach the governor at {url}")),
            "{msg}"
        );
        assert!(msg.contains("connection refused"), "{e:#}");
        assert!(msg.contains("tb-governor run"), "{msg}");
    }

    #[test]
    fn a_bad_url_is_explained() {
        let e = endpoint("not a url".to_owned(), None).client().unwrap_err();
        assert!(e.to_string().contains("invalid --rpc URL"), "{e}");
    }
}

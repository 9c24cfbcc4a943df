//! `tb-governor run`: the daemon, wired to the process's signals.

use std::io::Write;

use anyhow::{anyhow, Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::{LogFormat, RunArgs, LOG_FORMAT_ENV};
use crate::daemon;
use crate::outln;

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP re-reads the configuration.
pub fn run(args: &RunArgs) -> Result<()> {
    init_log(log_format(args.log_format)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let (reload_tx, reload_rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                if reload_tx.send(()).await.is_err() {
                    break;
                }
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
            }
        };
        daemon::run(args.config.clone(), shutdown, reload_rx, |url| {
            // One machine-readable line on stdout, so scripts (and tests) can find the port.
            outln!("listening on {url}");
            let _ = std::io::stdout().flush();
        })
        .await
    })
}

/// `--log-format`, else `$TB_GOVERNOR_LOG_FORMAT` (empty counts as unset), else text.
fn log_format(flag: Option<LogFormat>) -> Result<LogFormat> {
    if let Some(format) = flag {
        return Ok(format);
    }
    let value = std::env::var_os(LOG_FORMAT_ENV).map(|v| v.to_string_lossy().into_owned());
    match value.filter(|v| !v.is_empty()) {
        None => Ok(LogFormat::Text),
        Some(value) => clap::ValueEnum::from_str(&value, false).map_err(|_| {
            anyhow!(
                "environment variable {LOG_FORMAT_ENV}: invalid log format {value:?}: expected \
                 text or json"
            )
        }),
    }
}

/// Sends the log to stderr in `format`, filtered by `RUST_LOG` (default `info`).
fn init_log(format: LogFormat) {
    let stderr_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Text && stderr_is_terminal)
        // A log line that cannot be written (stderr is a closed pipe) is dropped; reporting it
        // would be another write to stderr, which panics in `eprintln!`.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        );
    match format {
        LogFormat::Text => log.init(),
        // The event's fields next to `timestamp`, `level`, `target` and `message`; the daemon
        // logs outside spans, so no span lists.
        LogFormat::Json => log
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

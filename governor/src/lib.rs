//! The Launch Governor: gate engine, daemon and command-line tools.
//!
//! # Layout
//!
//! - [`cli`]: the `tb-governor` command line, declared once so docs and tests can parse it.
//! - [`engine`]: the pure gate engine: gates, streaks, intents, journal, params, decisions.
//! - [`rpc`]: the JSON-RPC API trait (server and client) and its result types.
//! - [`commands`]: one module per subcommand; with [`signing`] the only place here that touches
//!   files and the terminal.
//! - [`daemon`]: `tb-governor run`: ingest, checkpoint, JSON-RPC, metrics, signals.
//! - [`signing`]: the node's attestation key from the configuration.

pub mod cli;
pub mod commands;
pub mod daemon;
pub mod engine;
pub mod rpc;
pub mod signing;

/// Turns a command's result into the process exit code: `Ok(true)` succeeds, `Ok(false)` is a
/// reported failure (exit 1, the command already said why), and an error prints its chain of
/// causes (exit 2).
pub fn exit(result: anyhow::Result<bool>) -> std::process::ExitCode {
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::from(2)
        }
    }
}

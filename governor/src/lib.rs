//! The Launch Governor: gate engine, daemon and command-line tools.
//!
//! # Layout
//!
//! - [`cli`]: the `tb-governor` command line, declared once so docs and tests can parse it.
//! - [`engine`]: the pure gate engine: gates, streaks, intents, journal, params, decisions.
//! - [`fleet`]: the rules for comparing this node's decisions with another governor's (pure).
//! - [`rpc`]: the JSON-RPC API trait (server and client) and its result types.
//! - [`pipeline`]: the replay pipeline (inputs from a configuration, chain → replay → engine),
//!   shared by the daemon and the offline commands.
//! - [`commands`]: one module per subcommand (the offline tools and `tb-cli`).
//! - [`daemon`]: `tb-governor run`: ingest, checkpoint, JSON-RPC, metrics, signals. With
//!   [`pipeline`], [`commands`] and [`signing`] the only places here that touch files, sockets,
//!   the clock or the terminal; [`engine`], [`fleet`] and [`rpc`] touch none.
//! - [`signing`]: the node's attestation key from the configuration.
//! - [`out`]: printing that survives a closed pipe ([`outln!`], [`errln!`]).

pub mod cli;
pub mod commands;
pub mod daemon;
pub mod engine;
pub mod fleet;
pub mod out;
pub mod pipeline;
pub mod rpc;
pub mod signing;
pub mod tls;

/// The lines `err` prints as: its own message, then each cause whose text the line before does
/// not already contain (an error that embeds its source's message is not repeated by it).
pub fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut lines = vec![err.to_string()];
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if lines.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        lines.push(text);
    }
    lines
}

/// Turns a command's result into the process exit code: `Ok(true)` succeeds, `Ok(false)` is a
/// reported failure (exit 1, the command already said why), and an error prints its chain of
/// causes, each once (exit 2). Printing to stdout that failed for another reason than a closed
/// pipe is reported too, and never exits 0.
pub fn exit(result: anyhow::Result<bool>) -> std::process::ExitCode {
    let stdout_failure = out::finish_stdout();
    let mut code = match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(err) => {
            let lines = error_lines(&err);
            for (i, line) in lines.iter().enumerate() {
                if i == 0 {
                    errln!("error: {line}");
                } else {
                    errln!("  caused by: {line}");
                }
            }
            2
        }
    };
    if let Some(e) = stdout_failure {
        errln!("error: writing to stdout: {e}");
        if code == 0 {
            code = 2;
        }
    }
    std::process::ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Repeats {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_line_before_already_shows_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Repeats {
            path: "/etc/gov.toml",
            source: io,
        })
        .context("loading the configuration");
        assert_eq!(
            error_lines(&err),
            ["loading the configuration", "/etc/gov.toml: no such file"]
        );
        // A cause that adds something is kept.
        let err = anyhow::anyhow!("disk full").context("writing epoch 3");
        assert_eq!(error_lines(&err), ["writing epoch 3", "disk full"]);
    }
}

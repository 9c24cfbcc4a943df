//! The Launch Governor: gate engine, daemon and command-line tools.
//!
//! # Layout
//!
//! - [`cli`]: the `tb-governor` command line, declared once so docs and tests can parse it.
//! - [`engine`]: the pure gate engine: gates, streaks, intents, journal, params, decisions.
//! - [`commands`]: one module per subcommand (`simulate`, `replay`); the only place here that
//!   touches files and the terminal.
//! - [`fsutil`]: atomic file writes.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod fsutil;

//! What the offline commands share: inputs from the command line and the journal file.

use anyhow::{Context, Result};
use tb_config::Config;

use crate::cli::{ChainArgs, EngineArgs};
use crate::engine::journal::parse_journal;
use crate::engine::JournalEvent;
use crate::pipeline::Inputs;

/// Loads config (file + env), applies flag overrides, reads the providers file.
pub fn resolve(args: &ChainArgs) -> Result<Inputs> {
    let mut config = Config::load_from_process_env(args.config.as_deref())?;
    if let Some(id) = &args.chain_id {
        config.governor.chain_id = id.clone();
    }
    if let Some(l) = args.epoch_blocks {
        config.governor.epoch_blocks = l;
    }
    if let Some(p) = &args.providers {
        config.chain.providers = p.clone();
    }
    if let Some(c) = &args.chain {
        config.chain.dir = c.clone();
    }
    config.validate("command-line flags")?;
    Inputs::from_config(config)
}

/// Reads the journal named by `args`, if any.
pub fn load_journal(args: &EngineArgs) -> Result<Vec<JournalEvent>> {
    let Some(path) = &args.journal else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading journal {}", path.display()))?;
    parse_journal(&text).with_context(|| format!("in {}", path.display()))
}

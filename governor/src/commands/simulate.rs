//! `tb-governor simulate`.

use anyhow::{Context, Result};
use tb_replay::sim::{self, SimConfig};

use crate::cli::SimulateArgs;
use crate::outln;

/// Writes the simulated chain and prints where it went.
pub fn run(args: &SimulateArgs) -> Result<()> {
    anyhow::ensure!(
        tb_config::is_id(&args.chain_id),
        "--chain-id {:?} is not an id (1..=128 characters from [A-Za-z0-9._:-])",
        args.chain_id
    );
    let cfg = SimConfig {
        scenario: args.scenario,
        seed: args.seed,
        epochs: args.epochs,
        epoch_blocks: args.epoch_blocks,
        chain_id: args.chain_id.clone(),
        genesis_height: 0,
    };
    sim::write_to_dir(&cfg, &args.out)
        .with_context(|| format!("writing the simulated chain to {}", args.out.display()))?;
    outln!(
        "simulated {} blocks ({} epochs of {}, scenario {}, seed {}, chain id {})",
        cfg.epochs * cfg.epoch_blocks,
        cfg.epochs,
        cfg.epoch_blocks,
        cfg.scenario,
        cfg.seed,
        cfg.chain_id
    );
    outln!("  chain:     {}", args.out.join("chain").display());
    outln!("  providers: {}", args.out.join("providers.json").display());
    outln!(
        "  keys:      {} (test keys only)",
        args.out.join("keys.json").display()
    );
    Ok(())
}

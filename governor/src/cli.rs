//! The `tb-governor` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tb_config::Mode;
use tb_replay::sim::Scenario;

/// The Launch Governor: replays The Block's settlement receipts into deterministic economics
/// snapshots and judges the launch gates.
#[derive(Debug, Parser)]
#[command(name = "tb-governor", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a deterministic simulated chain, its providers file and the provider keys.
    Simulate(SimulateArgs),
    /// Replay a chain offline into snapshot and decision files (one each per closed epoch).
    Replay(ReplayArgs),
    /// Create an attestation key file (mode 0600) and print its public key.
    Keygen(KeygenArgs),
}

/// `tb-governor keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key file to create (never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

/// `tb-governor simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Output directory: receives chain/, providers.json and keys.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Scenario: healthy, market_shock, treasury_collapse, hostile, rotation or demo.
    #[arg(long, default_value = "healthy")]
    pub scenario: Scenario,
    /// PRNG seed; the same seed and settings give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of epochs to simulate.
    #[arg(long, default_value_t = 12)]
    pub epochs: u64,
    /// Blocks per epoch (at least 2).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(2..))]
    pub epoch_blocks: u64,
    /// Chain id the receipts are signed for.
    #[arg(long, default_value = "tb-sim")]
    pub chain_id: String,
}

/// Inputs shared by every command that replays a chain (`replay`, and later `audit`).
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Chain directory of *.jsonl block files (default: the config's chain.dir).
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// Providers file (default: the config's chain.providers).
    #[arg(long)]
    pub providers: Option<PathBuf>,
    /// governor.toml; TB_* environment variables apply on top, flags on top of both.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Chain id (overrides the config).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Blocks per epoch (overrides the config).
    #[arg(long)]
    pub epoch_blocks: Option<u64>,
}

/// `tb-governor replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Chain, providers and config.
    #[command(flatten)]
    pub input: ChainArgs,
    /// Mode and journal.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output directory: receives snapshots/ and decisions/ (epoch-{e:020}.json each).
    #[arg(long)]
    pub out: PathBuf,
    /// Skip receipt signature checks (only for exports you already trust; everything else is
    /// checked as usual).
    #[arg(long)]
    pub no_verify: bool,
}

/// Engine inputs shared by `replay` and `audit`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Mode before the journal's first event (a replay without a journal runs in this mode).
    #[arg(long, default_value = "shadow")]
    pub mode: Mode,
    /// Operator journal (journal.jsonl); its events are consumed at their effective epochs.
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

/// `tb-cli`: the operator's and auditor's client of the Launch Governor.
#[derive(Debug, Parser)]
#[command(name = "tb-cli", version, propagate_version = true)]
pub struct TbCli {
    /// What to do.
    #[command(subcommand)]
    pub command: TbCliCommand,
}

/// `tb-cli` command groups.
#[derive(Debug, Subcommand)]
pub enum TbCliCommand {
    /// The Launch Governor.
    #[command(subcommand)]
    Governor(GovernorCommand),
}

/// `tb-cli governor …`.
#[derive(Debug, Subcommand)]
pub enum GovernorCommand {
    /// Check every decision file's hash, attestation (against trusted keys) and chain link.
    Verify(VerifyArgs),
    /// Replay the chain offline and compare every decision file byte for byte.
    Audit(AuditArgs),
}

/// `tb-cli governor verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Directory of decision files and their .sig sidecars.
    #[arg(long)]
    pub decisions: PathBuf,
    /// A trusted ed25519 public key (64 hex); repeat for several.
    #[arg(long = "trusted-key", required = true)]
    pub trusted_keys: Vec<String>,
    /// Print JSON only.
    #[arg(long)]
    pub json: bool,
}

/// `tb-cli governor audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Chain, providers and config: the same flags as `tb-governor replay`.
    #[command(flatten)]
    pub input: ChainArgs,
    /// Mode and journal: the same flags as `tb-governor replay`.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Directory of the decision files to audit.
    #[arg(long)]
    pub decisions: PathBuf,
    /// Print JSON only.
    #[arg(long)]
    pub json: bool,
}

//! The `tb-governor` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tb_config::{Mode, Secret};
use tb_replay::sim::Scenario;

use crate::engine::{Gate, IntentState};

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
    /// Run the daemon: ingest the chain, decide every epoch, serve JSON-RPC and /metrics.
    Run(RunArgs),
    /// Simulate a launch, replay it, sign and verify the decisions, and tell what happened.
    Demo(DemoArgs),
    /// Add the missing attestation sidecars of a decision directory (never replaces one).
    Sign(SignArgs),
    /// Print a shell completion script for tb-governor.
    Completions(CompletionsArgs),
    /// Print the tb-governor manual page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// `completions SHELL` (both binaries).
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// `man` (both binaries).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write NAME.1 for the command and each subcommand into this directory instead of printing
    /// the top page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `tb-governor sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Directory of decision files (e.g. a copy of <data_dir>/decisions).
    #[arg(long)]
    pub decisions: PathBuf,
    /// governor.toml holding signing.key_file or signing.key_hex; TB_NODE_KEY_HEX or
    /// TB_GOVERNOR_KEY_FILE apply on top (exactly one key must result).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `tb-governor demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for everything the demo writes (cleared first if a previous demo made it).
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// PRNG seed of the simulated chain.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `tb-governor run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// governor.toml; TB_* environment variables apply on top.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How the log on stderr is written [default: $TB_GOVERNOR_LOG_FORMAT, else text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// Environment variable consulted when `--log-format` is not given.
pub const LOG_FORMAT_ENV: &str = "TB_GOVERNOR_LOG_FORMAT";

/// How the daemon writes its log to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per line (timestamp, level, target, message, fields), for log shippers.
    Json,
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
    /// Put every file on disk before writing the next (fsync, as the daemon does), so that a
    /// power loss mid-run keeps every epoch written before it. Without it each file is still
    /// written atomically, and all of them are flushed to disk once at the end, before the
    /// command reports success.
    #[arg(long)]
    pub durable: bool,
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
// Parsed once per process: the size of the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TbCliCommand {
    /// The Launch Governor.
    #[command(subcommand)]
    Governor(GovernorCommand),
    /// Print a shell completion script for tb-cli.
    Completions(CompletionsArgs),
    /// Print the tb-cli manual page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// `tb-cli governor …`.
#[derive(Debug, Subcommand)]
pub enum GovernorCommand {
    /// Check every decision file's hash, attestation (against trusted keys) and chain link.
    Verify(VerifyArgs),
    /// Replay the chain offline and compare every decision file byte for byte.
    Audit(AuditArgs),
    /// Show the running governor at a glance: mode, gates, intents, economics, provenance.
    Status(StatusArgs),
    /// List intents, newest first, filtered on the server.
    Intents(IntentsArgs),
    /// List decisions (one line each), ascending by epoch.
    Decisions(DecisionsArgs),
    /// Fetch one epoch's snapshot; with --out write its exact JCS bytes (what `b3sum` checks).
    Snapshot(SnapshotArgs),
    /// Journal a manual exit of a gate (needs the RPC token).
    Exit(ExitArgs),
    /// Journal a mode change: shadow, apply or paused (needs the RPC token).
    Mode(ModeArgs),
    /// How each peer governor's decisions compare with this one's; `peers ack` clears a
    /// divergence once resolved.
    Peers(PeersArgs),
    /// Compare several governors (by RPC URL) or decision directories: agreement and the first
    /// divergence.
    Compare(CompareArgs),
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

/// Default `--rpc` endpoint (the daemon's default listen address).
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:7878";

/// Environment variable consulted when `--rpc` is not given.
pub const RPC_URL_ENV: &str = "TB_GOVERNOR_RPC_URL";

/// Environment variable consulted when `--token` is not given.
pub const RPC_TOKEN_ENV: &str = "TB_GOVERNOR_RPC_TOKEN";

/// Flags shared by every `tb-cli governor` command that talks to the daemon.
#[derive(Debug, Args)]
pub struct RpcArgs {
    /// JSON-RPC endpoint of `tb-governor run` [default: $TB_GOVERNOR_RPC_URL, else
    /// http://127.0.0.1:7878].
    #[arg(long = "rpc", value_name = "URL")]
    pub rpc: Option<String>,
    /// Print the method's JSON result only (pretty-printed), nothing else on stdout.
    #[arg(long)]
    pub json: bool,
    /// Give up on a request after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// PEM CA bundle to verify an https:// daemon with [default: $TB_RPC_TLS_CA, else
    /// $TB_HTTP_TLS_CA, else the system's roots].
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate for a daemon that requires mutual TLS; needs --tls-key
    /// [default: $TB_RPC_TLS_CERT, else $TB_HTTP_TLS_CERT].
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert [default: $TB_RPC_TLS_KEY, else $TB_HTTP_TLS_KEY].
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// The bearer token of mutating commands.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// RPC bearer token [default: $TB_GOVERNOR_RPC_TOKEN]. Prefer the environment variable:
    /// a flag is visible to other users in the process list. Never printed.
    #[arg(long, value_name = "TOKEN", value_parser = parse_secret)]
    pub token: Option<Secret>,
}

fn parse_secret(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(text))
}

/// Parses an intent state from its snake_case name.
pub fn parse_intent_state(text: &str) -> Result<IntentState, String> {
    const ALL: [IntentState; 5] = [
        IntentState::Pending,
        IntentState::Applied,
        IntentState::Shadowed,
        IntentState::Superseded,
        IntentState::Cancelled,
    ];
    ALL.into_iter()
        .find(|state| state.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|s| s.as_str()).collect();
            format!(
                "unknown intent state {text:?} (one of: {})",
                names.join(", ")
            )
        })
}

/// `tb-cli governor status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Redraw the status every --interval seconds until interrupted (Ctrl-C).
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Seconds between two redraws of --watch.
    #[arg(long, value_name = "SECS", default_value_t = 2, requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// Endpoint and output.
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// `tb-cli governor intents`.
#[derive(Debug, Args)]
pub struct IntentsArgs {
    /// Only this gate (economics, storage, compute, energy, ad, ad_contextual, ad_presence,
    /// operational).
    #[arg(long)]
    pub gate: Option<Gate>,
    /// Only this state (pending, applied, shadowed, superseded, cancelled).
    #[arg(long, value_parser = parse_intent_state)]
    pub state: Option<IntentState>,
    /// At most this many intents [server default: 20].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Only intents created before this epoch (for paging back).
    #[arg(long, value_name = "EPOCH")]
    pub before_epoch: Option<u64>,
    /// Endpoint and output.
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// `tb-cli governor decisions`.
#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// First epoch to list [default: the newest --limit decisions].
    #[arg(long, value_name = "EPOCH")]
    pub from_epoch: Option<u64>,
    /// At most this many decisions [server default: 20].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Endpoint and output.
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// `tb-cli governor snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The closed epoch.
    #[arg(long)]
    pub epoch: u64,
    /// Write the snapshot's exact JCS bytes here (blake3 of the file = snapshot_hash).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Endpoint and output.
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// What every journaled command takes besides its own argument.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// Why, in words the journal keeps forever.
    #[arg(long)]
    pub reason: String,
    /// Who decided (journaled).
    #[arg(long)]
    pub operator: String,
    /// Bearer token.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Endpoint and output.
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// `tb-cli governor exit`.
#[derive(Debug, Args)]
pub struct ExitArgs {
    /// The gate to exit (economics, storage, compute, energy, ad, ad_contextual, ad_presence,
    /// operational).
    #[arg(long)]
    pub gate: Gate,
    /// Why, who, the token and the endpoint.
    #[command(flatten)]
    pub journal: JournalArgs,
}

/// `tb-cli governor mode`.
#[derive(Debug, Args)]
pub struct ModeArgs {
    /// The new mode: shadow, apply or paused.
    pub mode: Mode,
    /// Why, who, the token and the endpoint.
    #[command(flatten)]
    pub journal: JournalArgs,
}

/// `tb-cli governor peers`.
#[derive(Debug, Args)]
pub struct PeersArgs {
    /// `ack`, or nothing to show the peers.
    #[command(subcommand)]
    pub action: Option<PeersAction>,
    /// Endpoint and output.
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// What `tb-cli governor peers` can do besides showing.
#[derive(Debug, Subcommand)]
pub enum PeersAction {
    /// Acknowledge a peer's divergence (journaled; needs the RPC token): comparing resumes at the
    /// epoch that diverged, so a divergence that persists is reported again.
    Ack(PeerAckArgs),
}

/// `tb-cli governor peers ack`.
#[derive(Debug, Args)]
pub struct PeerAckArgs {
    /// The peer's URL, as configured (see `tb-cli governor peers`).
    pub peer: String,
    /// Why, who, the token and the endpoint.
    #[command(flatten)]
    pub journal: JournalArgs,
}

/// `tb-cli governor compare`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("nodes").required(true).multiple(true).args(["rpc", "decisions"])))]
pub struct CompareArgs {
    /// A governor's JSON-RPC URL (repeat, at least twice in all).
    #[arg(long = "rpc", value_name = "URL")]
    pub rpc: Vec<String>,
    /// A decision directory (repeat, at least twice in all).
    #[arg(long = "decisions", value_name = "DIR")]
    pub decisions: Vec<PathBuf>,
    /// Print the comparison as JSON only.
    #[arg(long)]
    pub json: bool,
    /// Give up on a request after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

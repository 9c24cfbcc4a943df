//! `tb-governor demo`: a launch story in one command.
//!
//! Simulates a launch (healthy epochs, a storage market shock, recovery, hostile receipts),
//! replays it in shadow mode exactly as the daemon would on first start (same journal), signs
//! the decisions with a fresh demo key, verifies them, and tells what happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tb_config::{Config, Mode};
use tb_decisions::{verify_dir, RecordStore, Signer};
use tb_replay::sim::{self, Scenario, SimConfig};

use crate::cli::DemoArgs;
use crate::daemon::datadir::{DataDirLock, LOCK_FILE};
use crate::daemon::files::JournalFile;
use crate::daemon::{journal_mode, FIRST_START_REASON};
use crate::engine::Action;
use crate::outln;
use crate::pipeline::{replay_decisions, Inputs};

/// Marks a directory as the demo's own, so a rerun may clear it.
const MARKER: &str = ".tb-demo";

/// Creates `dir` empty; refuses a non-empty directory the demo did not create.
fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            anyhow::ensure!(
                dir.join(MARKER).exists(),
                "{} is not empty and was not made by `tb-governor demo`; choose another --dir",
                dir.display()
            );
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("clearing the previous demo in {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by tb-governor demo; safe to delete\n",
    )?;
    Ok(())
}

fn config_text(dir: &Path) -> String {
    let p = |rel: &str| dir.join(rel).display().to_string();
    format!(
        r#"# Written by `tb-governor demo`: serve the demo's decisions over RPC with
#   tb-governor run --config {config}
[governor]
data_dir = "{data}"
chain_id = "tb-sim"
shadow_only = true

[chain]
dir = "{chain}"
providers = "{providers}"

[rpc]
listen = "127.0.0.1:7878"

[signing]
enabled = true
key_file = "{key}"
"#,
        config = p("governor.toml"),
        data = p("data"),
        chain = p("sim/chain"),
        providers = p("sim/providers.json"),
        key = p("node.key"),
    )
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<()> {
    // A daemon serving a previous demo's data directory holds its lock: refuse to clear it.
    let previous = args.dir.join("data");
    let previous_lock = if previous.join(LOCK_FILE).exists() {
        Some(DataDirLock::acquire(&previous)?)
    } else {
        None
    };
    fresh_dir(&args.dir)?;
    drop(previous_lock);
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let sim_cfg = SimConfig {
        scenario: Scenario::Demo,
        seed: args.seed,
        epochs: 12,
        epoch_blocks: 120,
        chain_id: "tb-sim".to_owned(),
        genesis_height: 0,
    };
    sim::write_to_dir(&sim_cfg, &dir.join("sim")).context("simulating the launch")?;
    let signer = Signer::generate_key_file(&dir.join("node.key"))?;
    let config_path = dir.join("governor.toml");
    let text = config_text(&dir);
    std::fs::write(&config_path, &text)?;
    let config = Config::from_toml_str(&text, &config_path.display().to_string())?;

    // The journal the daemon writes on its first start, so `run` later reproduces these files.
    let data = dir.join("data");
    let mut data_lock = DataDirLock::acquire(&data)?;
    data_lock.record_pid()?;
    let journal_path = data.join("journal.jsonl");
    let mut journal = JournalFile::load(&journal_path)?;
    journal.open_for_append()?;
    journal_mode(&mut journal, Mode::Shadow, FIRST_START_REASON)?;

    let inputs = Inputs::from_config(config)?;
    let decisions = RecordStore::open(data.join("decisions"), "decision")?;
    let snapshots = RecordStore::open(dir.join("snapshots"), "snapshot")?;
    let mut story: Vec<(u64, Action, String, String)> = Vec::new();
    let mut rejected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut accepted = 0u64;
    let mut hashes = Vec::new();
    let blocks = replay_decisions(
        &inputs,
        &journal.events,
        Mode::Shadow,
        true,
        |closed, decision| {
            let epoch = closed.snapshot.epoch;
            snapshots.write(epoch, &closed.canonical)?;
            decisions.write_attested(epoch, &decision.bytes, Some(&signer))?;
            for i in &decision.decision.intents {
                story.push((
                    epoch,
                    i.action,
                    i.gate.as_str().to_owned(),
                    i.reason.clone(),
                ));
            }
            let r = &closed.snapshot.receipts;
            accepted += r.accepted_total();
            for (k, n) in r.rejected_by_reason() {
                *rejected.entry(k).or_default() += n;
            }
            hashes.push((epoch, closed.hash.clone()));
            Ok(())
        },
    )?;
    let checks = verify_dir(&decisions, &[signer.verifying_key()])?;
    let matched = checks.iter().filter(|c| c.problem.is_none()).count();

    outln!(
        "The Block launch demo: {blocks} blocks, 12 epochs of 120 (seed {}).",
        args.seed
    );
    outln!(
        "Story: a healthy launch, a storage market shock in epochs {}-{} (storage delivers 1/100 of \
         its usual units), then recovery; hostile receipts throughout.",
        sim::SHOCK_FIRST_EPOCH,
        sim::SHOCK_FIRST_EPOCH + sim::SHOCK_EPOCHS - 1
    );
    outln!("\nGates (shadow mode: the governor records what it would do; nothing is applied)");
    let mut by_epoch: BTreeMap<(u64, Action), Vec<(String, String)>> = BTreeMap::new();
    for (epoch, action, gate, reason) in story {
        by_epoch
            .entry((epoch, action))
            .or_default()
            .push((gate, reason));
    }
    for ((epoch, action), gates) in &by_epoch {
        let verb = match action {
            Action::Enter => "entered",
            Action::Exit => "exited",
        };
        let names: Vec<&str> = gates.iter().map(|(g, _)| g.as_str()).collect();
        let why = gates.first().map(|(_, r)| r.as_str()).unwrap_or_default();
        let why = why.split_once(": ").map_or(why, |(_, w)| w);
        let when = match action {
            Action::Enter => format!("takes effect from epoch {}", epoch + 2),
            Action::Exit => format!("takes effect from epoch {}", epoch + 1),
        };
        outln!(
            "  epoch {epoch:>2}: {verb:<7} {} ({why}; {when})",
            names.join(", ")
        );
    }
    let total_rejected: u64 = rejected.values().sum();
    outln!("\nReceipts: {accepted} accepted, {total_rejected} rejected");
    for (reason, n) in &rejected {
        outln!("  {reason:<18} {n}");
    }
    outln!(
        "\nVerification: {matched}/{} decision files: Attestation matches (demo key {})",
        checks.len(),
        signer.keyid()
    );
    let show = |p: PathBuf| p.display().to_string();
    outln!("\nFiles");
    outln!("  chain        {}", show(dir.join("sim/chain")));
    outln!("  snapshots    {}", show(dir.join("snapshots")));
    outln!(
        "  decisions    {} (signed .sig sidecars)",
        show(data.join("decisions"))
    );
    outln!("  journal      {}", show(journal_path.clone()));
    outln!("  config       {}", show(config_path.clone()));
    outln!(
        "  demo key     {} (public key {})",
        show(dir.join("node.key")),
        signer.public_key_hex()
    );
    let (last_epoch, last_hash) = hashes.last().cloned().unwrap_or_default();
    outln!("\nTry next (from a checkout, prefix each with `cargo run --release --bin <tool> --`)");
    outln!(
        "  tb-cli governor verify --decisions {} --trusted-key {}",
        show(data.join("decisions")),
        signer.public_key_hex()
    );
    outln!(
        "  b3sum {}    # prints {last_hash}",
        show(dir.join(format!("snapshots/epoch-{last_epoch:020}.json")))
    );
    outln!(
        "  tb-cli governor audit --config {} --journal {} --decisions {}",
        show(config_path.clone()),
        show(journal_path),
        show(data.join("decisions"))
    );
    outln!(
        "  tb-governor run --config {}    # then: tb-cli governor status",
        show(config_path)
    );
    anyhow::ensure!(
        matched == checks.len() && !checks.is_empty(),
        "verification failed for {} epochs",
        checks.len() - matched
    );
    Ok(())
}

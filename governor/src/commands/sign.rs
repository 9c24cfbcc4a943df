//! `tb-governor sign`: the daemon's start-up signing, offline, for a copied decision directory.

use anyhow::Result;
use tb_config::Config;
use tb_decisions::RecordStore;

use crate::cli::SignArgs;
use crate::outln;
use crate::signing::{configured_key, sign_missing};

/// Signs every unsigned decision file that verifies as part of the chain. `Ok(false)` (exit 1)
/// when a file does not verify: it and the unsigned files after it stay unsigned.
pub fn run(args: &SignArgs) -> Result<bool> {
    anyhow::ensure!(
        args.decisions.is_dir(),
        "--decisions {} is not a directory",
        args.decisions.display()
    );
    let config = Config::load_from_process_env(args.config.as_deref())?;
    let signer = configured_key(&config)?;
    let store = RecordStore::open(&args.decisions, "decision")?;
    let report = sign_missing(&store, &signer)?;
    let dir = args.decisions.display();
    match (report.signed.first(), report.signed.last()) {
        (Some(first), Some(last)) => outln!(
            "signed {} decision files in {dir} (epochs {first}..={last}) with keyid {}",
            report.signed.len(),
            signer.keyid()
        ),
        _ => outln!("nothing to sign in {dir}: {} decision files", report.files),
    }
    if let Some((epoch, why)) = &report.broken {
        outln!(
            "NOT SIGNED from epoch {}: the decision chain does not verify at epoch {epoch} \
             ({why}); {} unsigned files were left unsigned",
            report.unsigned.first().copied().unwrap_or(*epoch),
            report.unsigned.len()
        );
        outln!(
            "hint: find out what changed with tb-cli governor audit --decisions {dir} …; never \
             edit a decision file"
        );
        return Ok(false);
    }
    if report.files > 0 {
        outln!(
            "check them with: tb-cli governor verify --decisions {dir} --trusted-key {}",
            signer.public_key_hex()
        );
    }
    Ok(true)
}

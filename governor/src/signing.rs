//! The node's attestation key from the configuration, and signing the decision files already on
//! disk that have no attestation yet.

use anyhow::{Context, Result};
use tb_config::Config;
use tb_decisions::{Listing, RecordStore, Signer, WriteOutcome};

/// The signer when signing is on. Signing on with a missing or malformed key is an error,
/// never a silent no-op; the key itself never appears in any message.
pub fn load_signer(config: &Config) -> Result<Option<Signer>> {
    if !config.signing.enabled {
        return Ok(None);
    }
    configured_key(config).map(Some)
}

/// The configured key whether or not signing is on (`tb-governor sign` signs by being run):
/// exactly one of `TB_NODE_KEY_HEX` (`signing.key_hex`) and `TB_GOVERNOR_KEY_FILE`
/// (`signing.key_file`) must be set.
pub fn configured_key(config: &Config) -> Result<Signer> {
    let s = &config.signing;
    match (&s.key_hex, &s.key_file) {
        (Some(hex), None) => Ok(Signer::from_seed_hex(
            hex.expose(),
            "TB_NODE_KEY_HEX (signing.key_hex)",
        )?),
        (None, Some(path)) => Signer::from_key_file(path)
            .with_context(|| "loading the signing key (signing.key_file / TB_GOVERNOR_KEY_FILE)"),
        (Some(_), Some(_)) => anyhow::bail!(
            "both TB_NODE_KEY_HEX (signing.key_hex) and TB_GOVERNOR_KEY_FILE (signing.key_file) \
             are set; set exactly one so the signing key is unambiguous"
        ),
        (None, None) => anyhow::bail!(
            "no signing key is configured: set TB_NODE_KEY_HEX or TB_GOVERNOR_KEY_FILE (create \
             one with: tb-governor keygen --out FILE)"
        ),
    }
}

/// What [`sign_missing`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignReport {
    /// Decision files in the listing.
    pub files: usize,
    /// Epochs that got a sidecar now.
    pub signed: Vec<u64>,
    /// Epochs left without a sidecar because the chain does not verify around them.
    pub unsigned: Vec<u64>,
    /// The epoch whose file fails the chain check, and why.
    pub broken: Option<(u64, String)>,
}

/// Adds the missing `.sig` sidecar of every decision file in `store` that verifies as part of
/// the chain: it is a decision of its epoch, its `prev_decision_hash` links to the previous file
/// (epoch 0: null), and the next file, if any, links to it. An existing sidecar is never
/// replaced and no decision file is touched. At the first check that fails (at epoch `j`),
/// signing stops: `j`, the file before it when it was unsigned (either may be the one that
/// changed) and every unsigned file after them stay unsigned. Files after the successor of the
/// last unsigned one are not read.
pub fn sign_missing(store: &RecordStore, signer: &Signer) -> Result<SignReport> {
    sign_missing_in(store, &store.list()?, None, signer)
}

/// [`sign_missing`] over the files of `listing`: the whole directory, or the files after
/// `after` (an epoch and its file's hash, known to be signed and part of the chain), to which
/// the first of them must link.
pub fn sign_missing_in(
    store: &RecordStore,
    listing: &Listing,
    after: Option<(u64, String)>,
    signer: &Signer,
) -> Result<SignReport> {
    let epochs = &listing.records;
    let mut report = SignReport {
        files: epochs.len(),
        ..SignReport::default()
    };
    let missing = listing.unsigned();
    let Some(&last_missing) = missing.last() else {
        return Ok(report);
    };
    let walk = epochs
        .iter()
        .copied()
        .take_while(|e| *e <= last_missing)
        .chain(epochs.iter().copied().find(|e| *e > last_missing));
    let mut prev = after;
    // An unsigned file whose backward link holds, signed once the next file links to it.
    let mut waiting: Option<(u64, Vec<u8>)> = None;
    for epoch in walk {
        let bytes = store.read(epoch)?.unwrap_or_default();
        if let Some(problem) = chain_problem(epoch, &bytes, prev.as_ref()) {
            let from = waiting.as_ref().map_or(epoch, |(w, _)| *w);
            report.broken = Some((epoch, problem));
            report.unsigned = missing.iter().copied().filter(|e| *e >= from).collect();
            return Ok(report);
        }
        if let Some((w, body)) = waiting.take() {
            sign_one(store, signer, w, &body, &mut report)?;
        }
        let hash = tb_canonical::hash_hex(&bytes);
        if missing.binary_search(&epoch).is_ok() {
            waiting = Some((epoch, bytes));
        }
        prev = Some((epoch, hash));
    }
    // The newest file has no successor to check it against.
    if let Some((w, body)) = waiting.take() {
        sign_one(store, signer, w, &body, &mut report)?;
    }
    Ok(report)
}

/// Writes the sidecar of `epoch` (unless one appeared meanwhile) and checks it on disk.
fn sign_one(
    store: &RecordStore,
    signer: &Signer,
    epoch: u64,
    body: &[u8],
    report: &mut SignReport,
) -> Result<()> {
    let att = signer.attest(body);
    let outcome = store
        .write_sidecar(epoch, &att.to_bytes())
        .with_context(|| format!("writing the attestation of epoch {epoch}"))?;
    let on_disk = store.read_sidecar(epoch)?.unwrap_or_default();
    if let Some(p) = tb_decisions::verify::check_one(body, &on_disk, &[signer.verifying_key()]) {
        anyhow::bail!(
            "the attestation just written for epoch {epoch} does not verify: {p} ({})",
            store.sidecar_path(epoch).display()
        );
    }
    if outcome == WriteOutcome::Written {
        report.signed.push(epoch);
    }
    Ok(())
}

/// Why the decision file of `epoch` is not part of the chain, if it is not.
fn chain_problem(epoch: u64, bytes: &[u8], prev: Option<&(u64, String)>) -> Option<String> {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Some(format!("not JSON: {e}")),
    };
    match value.get("epoch").and_then(serde_json::Value::as_u64) {
        Some(e) if e == epoch => {}
        Some(e) => return Some(format!("its epoch field says {e}")),
        None => return Some("epoch: missing or not an integer".to_owned()),
    }
    tb_decisions::verify::check_link(epoch, bytes, prev).map(|p| p.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decision(epoch: u64, prev: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"epoch": epoch, "prev_decision_hash": prev}))
            .unwrap()
    }

    #[test]
    fn signs_the_chain_up_to_a_break_and_never_replaces_a_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::open(dir.path(), "decision").unwrap();
        let signer = Signer::from_seed([7; 32]);
        let d0 = decision(0, None);
        let h0 = tb_canonical::hash_hex(&d0);
        let d1 = decision(1, Some(&h0));
        let h1 = tb_canonical::hash_hex(&d1);
        store.write(0, &d0).unwrap();
        store.write(1, &d1).unwrap();
        store.write(2, &decision(2, Some(&h1))).unwrap();
        store
            .write(3, &decision(3, Some(&"00".repeat(32))))
            .unwrap();
        store.write(4, &decision(4, Some(&h0))).unwrap();
        // Epoch 1 already has a sidecar (any bytes): it is kept as it is.
        store.write_sidecar(1, b"kept").unwrap();
        let r = sign_missing(&store, &signer).unwrap();
        assert_eq!(r.files, 5);
        // Epoch 3 does not link to 2: either may have changed, so neither is signed.
        assert_eq!(r.signed, [0]);
        assert_eq!(r.unsigned, [2, 3, 4]);
        let (at, why) = r.broken.unwrap();
        assert_eq!(at, 3);
        assert!(why.contains("prev_decision_hash"), "{why}");
        assert_eq!(store.read_sidecar(1).unwrap().unwrap(), b"kept");
        assert!(store.read_sidecar(2).unwrap().is_none());
        assert!(store.read_sidecar(3).unwrap().is_none());
        // A second run has nothing new to sign.
        let again = sign_missing(&store, &signer).unwrap();
        assert!(again.signed.is_empty());
        // Without the broken tail, the newest file is signed (nothing follows it).
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::open(dir.path(), "decision").unwrap();
        store.write(0, &d0).unwrap();
        store.write(1, &d1).unwrap();
        let r = sign_missing(&store, &signer).unwrap();
        assert_eq!((r.signed, r.broken), (vec![0, 1], None));
    }

    #[test]
    fn files_after_a_known_epoch_must_link_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::open(dir.path(), "decision").unwrap();
        let signer = Signer::from_seed([7; 32]);
        let d5 = decision(5, Some(&"00".repeat(32)));
        let h5 = tb_canonical::hash_hex(&d5);
        store.write(5, &d5).unwrap();
        store.write(6, &decision(6, Some(&h5))).unwrap();
        let after = store.list_from(6).unwrap();
        let r = sign_missing_in(&store, &after, Some((5, h5.clone())), &signer).unwrap();
        assert_eq!((r.files, r.signed, r.broken), (1, vec![6], None));
        assert!(
            store.read_sidecar(5).unwrap().is_none(),
            "epoch 5 is not walked"
        );
        // A first file that does not link to the known one: broken, nothing signed.
        store.write(7, &decision(7, Some(&h5))).unwrap();
        let r = sign_missing_in(
            &store,
            &store.list_from(7).unwrap(),
            Some((6, "ff".repeat(32))),
            &signer,
        )
        .unwrap();
        assert_eq!((r.signed, r.unsigned), (vec![], vec![7]));
        assert_eq!(r.broken.map(|(e, _)| e), Some(7));
    }
}

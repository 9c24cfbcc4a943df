//! Loading the node's attestation key from the configuration.

use anyhow::{Context, Result};
use tb_config::Config;
use tb_decisions::Signer;

/// The signer when signing is on. Signing on with a missing or malformed key is an error,
/// never a silent no-op; the key itself never appears in any message.
pub fn load_signer(config: &Config) -> Result<Option<Signer>> {
    let s = &config.signing;
    if !s.enabled {
        return Ok(None);
    }
    if let Some(hex) = &s.key_hex {
        let signer = Signer::from_seed_hex(hex.expose(), "TB_NODE_KEY_HEX (signing.key_hex)")?;
        return Ok(Some(signer));
    }
    if let Some(path) = &s.key_file {
        let signer = Signer::from_key_file(path)
            .with_context(|| "loading the signing key (signing.key_file / TB_GOVERNOR_KEY_FILE)")?;
        return Ok(Some(signer));
    }
    anyhow::bail!(
        "signing is on (TB_GOVERNOR_SIGN / signing.enabled) but no key is configured: \
         set TB_NODE_KEY_HEX or TB_GOVERNOR_KEY_FILE (create one with: tb-governor keygen --out FILE)"
    )
}

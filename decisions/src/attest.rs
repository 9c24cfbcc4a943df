//! Attestation sidecars (docs/formats.md, "Attestation sidecar"): ed25519 over the DSSE pre-authentication encoding of the record.
//!
//! `epoch-{e:020}.json.sig` holds exactly `{schema, payload_type, payload_blake3, keyid,
//! public_key, signature}` (JCS, all hex strings but the two names). The signed bytes are
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, so any standard ed25519 tool can check
//! a sidecar given the record file.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Schema tag of every sidecar.
pub const ATTESTATION_SCHEMA: &str = "tb.governor.attestation.v1";
/// DSSE payload type of a decision record.
pub const PAYLOAD_TYPE: &str = "application/vnd.tb.governor-decision.v1+json";

/// The DSSE v1 pre-authentication encoding of `body` with `payload_type`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {} {} ",
            payload_type.len(),
            payload_type,
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

/// `keyid` = the first 16 bytes of blake3(public key), hex.
pub fn keyid(public_key: &[u8; 32]) -> String {
    hex::encode(&blake3::hash(public_key).as_bytes()[..16])
}

/// A sidecar, exactly the six fields of docs/formats.md, "Attestation sidecar".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Always [`ATTESTATION_SCHEMA`].
    pub schema: String,
    /// Always [`PAYLOAD_TYPE`].
    pub payload_type: String,
    /// blake3 of the record file, hex.
    pub payload_blake3: String,
    /// A hint naming the key: first 16 bytes of blake3(public_key), hex.
    pub keyid: String,
    /// The signer's ed25519 public key, hex.
    pub public_key: String,
    /// ed25519 signature over the PAE, hex.
    pub signature: String,
}

impl Attestation {
    /// The canonical (JCS) sidecar bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        tb_canonical::to_vec(self)
    }
}

/// A signing key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key material is not 64 hex characters (the value itself is never shown).
    #[error("{origin}: not a 32-byte ed25519 seed in hex (64 hex characters)")]
    Malformed {
        /// Where it came from (variable name or file path).
        origin: String,
    },
    /// The key file's mode grants group or others some access.
    #[error(
        "{path}: key file mode is {mode:04o}, which grants {}; only its owner may have access \
         (run: chmod 600 {path})",
        describe_access(*mode)
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file could not be read or written. The message includes the I/O error's text,
    /// so it is not also given as the error's source (each cause is shown once).
    #[error("{path}: {error}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The operating system gave no random seed for a new key file.
    #[error("{path}: no random seed for a new key from the operating system: {error}")]
    Random {
        /// The key file that was to be made.
        path: PathBuf,
        /// The operating system's error.
        error: getrandom::Error,
    },
}

/// Which access bits of `mode` group and others hold, in words: `0620` → `group write`,
/// `0644` → `group read and others read`, `0674` → `group read, write and execute, and others
/// read`.
pub fn describe_access(mode: u32) -> String {
    let class = |who: &str, bits: u32| -> Option<String> {
        let names: Vec<&str> = [(4, "read"), (2, "write"), (1, "execute")]
            .into_iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| name)
            .collect();
        match names.as_slice() {
            [] => None,
            [one] => Some(format!("{who} {one}")),
            [init @ .., last] => Some(format!("{who} {} and {last}", init.join(", "))),
        }
    };
    let parts: Vec<String> = [class("group", (mode >> 3) & 7), class("others", mode & 7)]
        .into_iter()
        .flatten()
        .collect();
    let several = parts.iter().any(|p| p.contains(" and "));
    match parts.as_slice() {
        [] => "no access to group or others".to_owned(),
        [one] => one.clone(),
        [group, others] if several => format!("{group}, and {others}"),
        [group, others] => format!("{group} and {others}"),
        _ => parts.join(", "),
    }
}

/// An ed25519 signing key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer(keyid {})", self.keyid())
    }
}

impl Signer {
    /// From a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Signer {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// From a hex seed (e.g. `TB_NODE_KEY_HEX`); `origin` names the source in errors.
    pub fn from_seed_hex(text: &str, origin: &str) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| KeyError::Malformed {
            origin: origin.to_owned(),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// From a key file holding the hex seed; refused when group or others have any access.
    pub fn from_key_file(path: &Path) -> Result<Self, KeyError> {
        let io = |error| KeyError::Io {
            path: path.to_owned(),
            error,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_seed_hex(&text, &path.display().to_string())
    }

    /// Creates a key file (mode 0600, never replacing an existing file) with a fresh random
    /// seed from the operating system.
    pub fn generate_key_file(path: &Path) -> Result<Self, KeyError> {
        let io = |error| KeyError::Io {
            path: path.to_owned(),
            error,
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Random {
            path: path.to_owned(),
            error,
        })?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        writeln!(file, "{}", hex::encode(seed))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(Self::from_seed(seed))
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key, hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The key's id.
    pub fn keyid(&self) -> String {
        keyid(self.key.verifying_key().as_bytes())
    }

    /// Plain ed25519 (RFC 8032) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Signs `body` (a record file's bytes) into a sidecar.
    pub fn attest(&self, body: &[u8]) -> Attestation {
        let signature = self.sign(&pae(PAYLOAD_TYPE, body));
        Attestation {
            schema: ATTESTATION_SCHEMA.to_owned(),
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload_blake3: crate::hash_hex(body),
            keyid: self.keyid(),
            public_key: self.public_key_hex(),
            signature: hex::encode(signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_mode_is_described_by_the_bits_it_grants() {
        assert_eq!(describe_access(0o620), "group write");
        assert_eq!(describe_access(0o640), "group read");
        assert_eq!(describe_access(0o604), "others read");
        assert_eq!(describe_access(0o644), "group read and others read");
        assert_eq!(describe_access(0o602), "others write");
        assert_eq!(describe_access(0o611), "group execute and others execute");
        assert_eq!(describe_access(0o660), "group read and write");
        assert_eq!(
            describe_access(0o674),
            "group read, write and execute, and others read"
        );
        assert_eq!(
            describe_access(0o777),
            "group read, write and execute, and others read, write and execute"
        );
        assert_eq!(describe_access(0o600), "no access to group or others");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_group_write_is_refused_with_its_mode_described() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        Signer::generate_key_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let err = Signer::from_key_file(&path).unwrap_err().to_string();
        let shown = path.display();
        assert_eq!(
            err,
            format!(
                "{shown}: key file mode is 0620, which grants group write; only its owner may \
                 have access (run: chmod 600 {shown})"
            )
        );
        assert!(!err.contains("readable"), "{err}");
    }

    #[test]
    fn a_missing_key_file_is_named_with_its_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.key");
        let err = Signer::from_key_file(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: No such file or directory (os error 2)", path.display())
        );
        assert!(std::error::Error::source(&err).is_none());
    }
}

//! The provider registry: who may sign receipts, with which key, at which heights (docs/formats.md, "Providers file").

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use crate::decode::{self, FieldError};
use crate::json::{self, Json};

/// A providers file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProvidersError {
    /// The file is not valid JSON.
    #[error("providers file: {0}")]
    Json(#[from] json::JsonError),
    /// A field breaks the format.
    #[error("providers file: {0}")]
    Field(FieldError),
}

/// One signing key and the heights at which it is valid.
#[derive(Debug, Clone)]
pub struct ProviderKey {
    /// The key itself, already checked to be a valid point of large order.
    pub key: VerifyingKey,
    /// First height at which the key signs.
    pub from_height: u64,
    /// First height at which it no longer does; `None` = still valid (this is how rotation ends a key).
    pub until_height: Option<u64>,
}

impl ProviderKey {
    /// Whether the key is valid at `height`.
    pub fn valid_at(&self, height: u64) -> bool {
        self.from_height <= height && self.until_height.is_none_or(|u| height < u)
    }
}

/// A registered provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider id receipts name.
    pub id: Box<str>,
    /// Its keys, in file order.
    pub keys: Vec<ProviderKey>,
}

/// Every registered provider, addressable by a dense index so the hot path never hashes strings twice.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Providers in file order; a provider's index is its position here.
    providers: Vec<Provider>,
    /// id → index, for lookups only (never iterated into output).
    index: HashMap<Box<str>, u32>,
}

impl Registry {
    /// Parses and validates a providers file.
    pub fn from_json(bytes: &[u8]) -> Result<Registry, ProvidersError> {
        let root = json::parse(bytes)?;
        Self::from_tree(&root).map_err(ProvidersError::Field)
    }

    fn from_tree(root: &Json) -> Result<Registry, FieldError> {
        let obj = decode::object(root, "providers file")?;
        let [list] = decode::slots(obj, &["providers"])?;
        let Json::Arr(list) = decode::required(list, "providers")? else {
            return Err(FieldError::new("providers", "not an array"));
        };
        let mut registry = Registry::default();
        for (i, entry) in list.iter().enumerate() {
            let path = format!("providers[{i}]");
            let provider = parse_provider(entry).map_err(|e| e.under(&path))?;
            let idx = u32::try_from(registry.providers.len())
                .map_err(|_| FieldError::new(&path, "too many providers"))?;
            if registry.index.insert(provider.id.clone(), idx).is_some() {
                return Err(FieldError::new(
                    &format!("{path}.id"),
                    format!("duplicate provider id {}", provider.id),
                ));
            }
            registry.providers.push(provider);
        }
        Ok(registry)
    }

    /// The dense index of provider `id`.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The provider at `index`.
    pub fn get(&self, index: u32) -> Option<&Provider> {
        self.providers.get(index as usize)
    }

    /// Number of providers.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Whether no provider is registered.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

fn parse_provider(value: &Json) -> Result<Provider, FieldError> {
    let obj = decode::object(value, "provider")?;
    let [id, keys] = decode::slots(obj, &["id", "keys"])?;
    let id = decode::id(decode::required(id, "id")?, "id")?;
    let Json::Arr(keys) = decode::required(keys, "keys")? else {
        return Err(FieldError::new("keys", "not an array"));
    };
    if keys.is_empty() {
        return Err(FieldError::new("keys", "empty key list"));
    }
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| parse_key(k).map_err(|e| e.under(&format!("keys[{i}]"))))
        .collect::<Result<_, _>>()?;
    Ok(Provider {
        id: id.into(),
        keys,
    })
}

fn parse_key(value: &Json) -> Result<ProviderKey, FieldError> {
    let obj = decode::object(value, "key")?;
    let [pk, from, until] = decode::slots(obj, &["public_key", "from_height", "until_height"])?;
    let bytes = decode::hex_bytes::<32>(decode::required(pk, "public_key")?, "public_key")?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| FieldError::new("public_key", "not a valid ed25519 point"))?;
    if key.is_weak() {
        return Err(FieldError::new("public_key", "small-order key"));
    }
    let from_height = decode::uint(decode::required(from, "from_height")?, "from_height")?;
    let until_height = match until {
        None | Some(Json::Null) => None,
        Some(v) => Some(decode::uint(v, "until_height")?),
    };
    if until_height.is_some_and(|u| u <= from_height) {
        return Err(FieldError::new(
            "until_height",
            "until_height <= from_height",
        ));
    }
    Ok(ProviderKey {
        key,
        from_height,
        until_height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "917cc3f700754b6985c05862e1fa3ce3554b8e50887963d960fa754e745369bd";

    fn file(keys: &str) -> String {
        format!(r#"{{"providers":[{{"id":"p1","keys":[{keys}]}}]}}"#)
    }

    #[test]
    fn rotation_windows() {
        let text = file(&format!(
            r#"{{"public_key":"{KEY}","from_height":0,"until_height":10}},{{"public_key":"{KEY}","from_height":5}}"#
        ));
        let r = Registry::from_json(text.as_bytes()).unwrap();
        let p = r.get(r.index_of("p1").unwrap()).unwrap();
        assert!(p.keys[0].valid_at(9) && !p.keys[0].valid_at(10));
        assert!(!p.keys[1].valid_at(4) && p.keys[1].valid_at(u64::MAX));
    }

    #[test]
    fn bad_files_name_the_field() {
        let small_order = "0100000000000000000000000000000000000000000000000000000000000000";
        let cases = [
            (file(""), "keys: empty key list"),
            (
                file(&format!(
                    r#"{{"public_key":"{KEY}","from_height":3,"until_height":3}}"#
                )),
                "until_height",
            ),
            (
                file(&format!(
                    r#"{{"public_key":"{small_order}","from_height":0}}"#
                )),
                "small-order",
            ),
            (
                file(&format!(
                    r#"{{"public_key":"{}","from_height":0}}"#,
                    &KEY[..62]
                )),
                "public_key: not 64 lowercase hex",
            ),
            (
                file(&format!(
                    r#"{{"public_key":"{KEY}","from_height":0,"x":1}}"#
                )),
                "unknown field x",
            ),
            (
                format!(
                    r#"{{"providers":[{{"id":"a","keys":[{{"public_key":"{KEY}","from_height":0}}]}},{{"id":"a","keys":[{{"public_key":"{KEY}","from_height":0}}]}}]}}"#
                ),
                "providers[1].id: duplicate provider id a",
            ),
        ];
        for (text, want) in cases {
            let err = Registry::from_json(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }
}

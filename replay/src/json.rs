//! A JSON value tree that keeps what the chain rules need and `serde_json::Value` drops.
//!
//! `serde_json` does the parsing; this module only decides what to keep. Compared with
//! `serde_json::Value` it records duplicate keys (an error wherever they occur, but *which* error
//! depends on where: a duplicate in a block is a block error, one inside a receipt is a `schema`
//! rejection), keeps integer literals apart from anything else that looks like a number (a sign,
//! fraction or exponent is never a valid input integer), keeps object entries in input order, and
//! caps nesting at [`MAX_DEPTH`] levels itself so the limit is exactly the design's.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deepest nesting a valid line may have (the top-level value is depth 1).
pub const MAX_DEPTH: usize = 128;

/// Largest integer any input or hashed output may carry: 2^53 − 1.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// One parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A plain non-negative decimal integer literal that fits in `u64`.
    Uint(u64),
    /// Any other number (negative, `-0`, fraction, exponent, beyond `u64`), kept only to be named
    /// in the error that rejects it.
    OtherNumber(OtherNumber),
    /// A string, already unescaped and checked to be valid Unicode.
    Str(Box<str>),
    /// An array.
    Arr(Vec<Json>),
    /// An object.
    Obj(Obj),
}

/// A number that is not a plain unsigned integer literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OtherNumber {
    /// A negative integer.
    Negative(i64),
    /// Anything serde_json read as a float (fraction, exponent, `-0`, or beyond `u64`).
    Float(f64),
}

impl fmt::Display for OtherNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtherNumber::Negative(v) => write!(f, "{v}"),
            OtherNumber::Float(v) if *v == 0.0 && v.is_sign_negative() => f.write_str("-0"),
            OtherNumber::Float(v) => write!(f, "{v}"),
        }
    }
}

/// A JSON object with its entries in input order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Obj {
    /// The entries as written, duplicates included, so decoders can name unknown fields in order.
    pub entries: Vec<(Box<str>, Json)>,
    /// Whether some key occurs twice in *this* object (nested objects carry their own flag).
    pub duplicate_key: bool,
}

impl Obj {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }
}

/// Why a line is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON: {0}")]
pub struct JsonError(pub String);

/// Parses one complete JSON text (no trailing content but whitespace).
pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = Seed { depth: 1 }
        .deserialize(&mut de)
        .map_err(|e| JsonError(e.to_string()))?;
    de.end().map_err(|e| JsonError(e.to_string()))?;
    Ok(value)
}

/// Carries the nesting depth of the value about to be parsed.
#[derive(Clone, Copy)]
struct Seed {
    /// 1 for the top-level value.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Json;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seed {
    /// The seed for the elements of a container at this depth; refuses the container itself
    /// when it lies deeper than [`MAX_DEPTH`], before any element is parsed (which bounds
    /// recursion). Scalars do not count as nesting.
    fn child<E: de::Error>(self) -> Result<Seed, E> {
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(Seed {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Uint(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::OtherNumber(OtherNumber::Negative(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::OtherNumber(OtherNumber::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let child = self.child()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let child = self.child()?;
        let mut entries: Vec<(Box<str>, Json)> = Vec::new();
        while let Some(key) = map.next_key::<Box<str>>()? {
            let value = map.next_value_seed(child)?;
            entries.push((key, value));
        }
        let duplicate_key = has_duplicate(&entries);
        Ok(Json::Obj(Obj {
            entries,
            duplicate_key,
        }))
    }
}

/// Whether two entries share a key; quadratic for the small objects of real input, sorting for
/// large ones so a hostile line cannot make it slow.
fn has_duplicate(entries: &[(Box<str>, Json)]) -> bool {
    if entries.len() <= 16 {
        return entries
            .iter()
            .enumerate()
            .any(|(i, (k, _))| entries[..i].iter().any(|(p, _)| p == k));
    }
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| &**k).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Uint(v) => s.serialize_u64(*v),
            Json::OtherNumber(OtherNumber::Negative(v)) => s.serialize_i64(*v),
            Json::OtherNumber(OtherNumber::Float(v)) => s.serialize_f64(*v),
            Json::Str(v) => s.serialize_str(v),
            Json::Arr(items) => s.collect_seq(items),
            Json::Obj(o) => s.collect_map(o.entries.iter().map(|(k, v)| (k, v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_told_apart_from_other_numbers() {
        assert_eq!(parse(b"7").unwrap(), Json::Uint(7));
        for text in ["-1", "-0", "12.5", "5E+2", "8462.0", "18446744073709551616"] {
            assert!(
                matches!(parse(text.as_bytes()).unwrap(), Json::OtherNumber(_)),
                "{text}"
            );
        }
        let shown = match parse(b"-0").unwrap() {
            Json::OtherNumber(n) => n.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(shown, "-0");
    }

    #[test]
    fn invalid_json_is_an_error() {
        for text in [
            &b"{\"a\":\"\\ud800\"}"[..],
            b"1e400",
            b"{\"a\":1}x",
            b"",
            b"{\"a\":\xff}",
            b"[1,]",
        ] {
            assert!(parse(text).is_err(), "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn nesting_limit_is_exactly_128() {
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(parse(deep.as_bytes()).is_err());
        let very_deep = "[".repeat(1_000_000);
        assert!(parse(very_deep.as_bytes()).is_err());
    }

    #[test]
    fn duplicate_keys_are_flagged_per_object() {
        let Json::Obj(o) = parse(br#"{"a":1,"b":{"c":1,"c":2}}"#).unwrap() else {
            panic!()
        };
        assert!(!o.duplicate_key);
        let Some(Json::Obj(inner)) = o.get("b") else {
            panic!()
        };
        assert!(inner.duplicate_key);
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\":0", i % 39)).collect();
        let Json::Obj(o) = parse(format!("{{{}}}", many.join(",")).as_bytes()).unwrap() else {
            panic!()
        };
        assert!(o.duplicate_key);
    }
}

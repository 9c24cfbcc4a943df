//! A JSON value tree that keeps what the chain rules need and `serde_json::Value` drops.
//!
//! `serde_json` does the parsing; this module only decides what to keep. Compared with
//! `serde_json::Value` it records duplicate keys (an error wherever they occur, but *which* error
//! depends on where: a duplicate in a block is a block error, one inside a receipt is a `schema`
//! rejection), keeps integer literals apart from anything else that looks like a number (a sign,
//! fraction or exponent is never a valid input integer), keeps object entries in input order, and
//! caps nesting at [`MAX_DEPTH`] levels itself so the limit is exactly the design's.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::Error as _;

/// Deepest nesting a valid line may have (the top-level value is depth 1).
pub const MAX_DEPTH: usize = 128;

/// Largest integer any input or hashed output may carry: 2^53 − 1, the bound under which
/// [`tb_canonical`] writes integers as their digits.
pub use tb_canonical::MAX_SAFE;

/// Longest number literal an error shows whole; a longer one is shortened (see [`OtherNumber`]).
pub const SHOWN_LITERAL: usize = 40;

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

/// A number that is not a plain unsigned integer literal (negative, `-0`, fraction, exponent,
/// beyond `u64`), kept as it was written so an error shows `1e6` rather than a value serde_json
/// computed from it. A literal longer than [`SHOWN_LITERAL`] characters keeps its first ones and
/// its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherNumber(Box<str>);

impl OtherNumber {
    /// From the literal's bytes (ASCII: serde_json accepted it as a number).
    fn from_literal(literal: &[u8]) -> Self {
        let text = String::from_utf8_lossy(literal);
        if text.len() <= SHOWN_LITERAL {
            return OtherNumber(text.into());
        }
        let head = text.get(..SHOWN_LITERAL - 8).unwrap_or_default();
        OtherNumber(format!("{head}… ({} characters)", text.len()).into())
    }

    /// The literal as written (shortened past [`SHOWN_LITERAL`] characters).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OtherNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key. The field names of the chain format are kept without an allocation (most of
/// a line's strings are keys); any other key is kept as written.
#[derive(Debug, Clone)]
pub enum Key {
    /// One of [`FIELD_NAMES`].
    Field(&'static str),
    /// Any other key.
    Other(Box<str>),
}

/// Every object key of a valid chain line (docs/formats.md, "Block" and "Receipts"): the names
/// the block and receipt decoders read, which a test checks this list against.
pub const FIELD_NAMES: [&str; 36] = [
    "ad_impressions",
    "amount_micro",
    "benchmark_commit",
    "blocktorch",
    "bytes",
    "campaign_id",
    "capacity",
    "coinbase_micro",
    "compute_units",
    "contract_id",
    "conversions",
    "cost_micro",
    "difficulty",
    "energy_milli_kwh",
    "escrow_micro",
    "height",
    "impressions",
    "job_id",
    "kernel_digest",
    "market",
    "miner",
    "nonce",
    "payment_micro",
    "privacy_remaining_ppm",
    "proof_hash",
    "proof_latency_ms",
    "provider",
    "reason",
    "receipts",
    "signature",
    "storage_bytes",
    "tier",
    "timestamp_ms",
    "tx_count",
    "tx_volume_micro",
    "verified",
];

impl Key {
    /// The key for `text`: a field name without allocating, anything else copied.
    pub fn new(text: &str) -> Key {
        match field_name(text) {
            Some(name) => Key::Field(name),
            None => Key::Other(text.into()),
        }
    }
}

/// The entry of [`FIELD_NAMES`] equal to `text`, if any: picked by length and first byte (and
/// the fourth byte where those are shared), then compared once. This runs for every key of
/// every line.
fn field_name(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let name = match (b.len(), *b.first()?) {
        (4, b't') => "tier",
        (5, b'b') => "bytes",
        (5, b'm') => "miner",
        (5, b'n') => "nonce",
        (6, b'h') => "height",
        (6, b'j') => "job_id",
        (6, b'm') => "market",
        (6, b'r') => "reason",
        (8, b'c') => "capacity",
        (8, b'p') => "provider",
        (8, b'r') => "receipts",
        (8, b't') => "tx_count",
        (8, b'v') => "verified",
        (9, b's') => "signature",
        (10, b'b') => "blocktorch",
        (10, b'c') => "cost_micro",
        (10, b'd') => "difficulty",
        (10, b'p') => "proof_hash",
        (11, b'c') => match b.get(3) {
            Some(b'p') => "campaign_id",
            Some(b't') => "contract_id",
            _ => "conversions",
        },
        (11, b'i') => "impressions",
        (12, b'a') => "amount_micro",
        (12, b'e') => "escrow_micro",
        (12, b't') => "timestamp_ms",
        (13, b'c') => "compute_units",
        (13, b'k') => "kernel_digest",
        (13, b'p') => "payment_micro",
        (13, b's') => "storage_bytes",
        (14, b'a') => "ad_impressions",
        (14, b'c') => "coinbase_micro",
        (15, b't') => "tx_volume_micro",
        (16, b'b') => "benchmark_commit",
        (16, b'e') => "energy_milli_kwh",
        (16, b'p') => "proof_latency_ms",
        (21, b'p') => "privacy_remaining_ppm",
        _ => return None,
    };
    (name.as_bytes() == b).then_some(name)
}

impl std::ops::Deref for Key {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Key::Field(name) => name,
            Key::Other(text) => text,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        Key::new(text)
    }
}

impl From<String> for Key {
    fn from(text: String) -> Key {
        match field_name(&text) {
            Some(name) => Key::Field(name),
            None => Key::Other(text.into_boxed_str()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// Deserialises an object key into a [`Key`].
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(Key::new(v))
    }
}

/// A JSON object with its entries in input order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Obj {
    /// The entries as written, duplicates included, so decoders can name unknown fields in order.
    pub entries: Vec<(Key, Json)>,
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
    let others_before = OTHER_NUMBERS.with(Cell::get);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let mut value = Seed { depth: 1 }
        .deserialize(&mut de)
        .map_err(|e| JsonError(e.to_string()))?;
    de.end().map_err(|e| JsonError(e.to_string()))?;
    if OTHER_NUMBERS.with(Cell::get) != others_before {
        // Rare (such a line is always rejected): give each other number its literal text.
        fill_literals(&mut value, &mut other_literals(bytes));
    }
    Ok(value)
}

/// The literals of the numbers in `bytes` (a valid JSON text) that are not plain `u64` integer
/// literals, in text order: the order in which [`Seed`] meets them.
fn other_literals(bytes: &[u8]) -> impl Iterator<Item = OtherNumber> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || loop {
        match *bytes.get(i)? {
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += 1;
                    match c {
                        b'\\' => i += 1,
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                let literal = bytes.get(start..i).unwrap_or_default();
                let plain_u64 = literal.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(literal).is_ok_and(|t| t.parse::<u64>().is_ok());
                if !plain_u64 {
                    return Some(OtherNumber::from_literal(literal));
                }
            }
            _ => i += 1,
        }
    })
}

/// Replaces the placeholder of each [`Json::OtherNumber`] in `value`, in document order, with
/// the next of `literals`.
fn fill_literals(value: &mut Json, literals: &mut impl Iterator<Item = OtherNumber>) {
    match value {
        Json::OtherNumber(n) => {
            if let Some(literal) = literals.next() {
                *n = literal;
            }
        }
        Json::Arr(items) => items.iter_mut().for_each(|v| fill_literals(v, literals)),
        Json::Obj(o) => o
            .entries
            .iter_mut()
            .for_each(|(_, v)| fill_literals(v, literals)),
        _ => {}
    }
}

thread_local! {
    /// Numbers met on this thread that are not plain unsigned integers, so [`parse`] knows
    /// whether to look up their literals. A counter rather than a field of [`Seed`], which would
    /// change how the hot path of valid lines compiles (measured: about 4 % more instructions).
    static OTHER_NUMBERS: Cell<usize> = const { Cell::new(0) };
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

/// A number that is not a plain unsigned integer: counted, its text filled in by [`parse`].
fn other_number() -> Json {
    OTHER_NUMBERS.with(|n| n.set(n.get().wrapping_add(1)));
    Json::OtherNumber(OtherNumber(Box::default()))
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

    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(other_number())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(other_number())
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
        // Room for the largest object of a valid line (an ad receipt: 11 fields) without growing.
        let mut entries: Vec<(Key, Json)> = Vec::with_capacity(12);
        while let Some(key) = map.next_key_seed(KeySeed)? {
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
fn has_duplicate(entries: &[(Key, Json)]) -> bool {
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
            // Only ever parsed to be named in an error; nothing writes one back out.
            Json::OtherNumber(n) => Err(S::Error::custom(format_args!(
                "the number {n} is not a plain unsigned integer and is never written"
            ))),
            Json::Str(v) => s.serialize_str(v),
            Json::Arr(items) => s.collect_seq(items),
            Json::Obj(o) => s.collect_map(o.entries.iter().map(|(k, v)| (&**k, v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_told_apart_from_other_numbers() {
        assert_eq!(parse(b"7").unwrap(), Json::Uint(7));
        assert_eq!(
            parse(b"18446744073709551615").unwrap(),
            Json::Uint(u64::MAX)
        );
        for text in [
            "-1",
            "-0",
            "12.5",
            "5E+2",
            "1e6",
            "8462.0",
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            match parse(text.as_bytes()).unwrap() {
                Json::OtherNumber(n) => assert_eq!(n.as_str(), text),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_numbers_keep_their_literal_wherever_they_are() {
        let text = br#"{"a":[1,-2,{"b":3.0,"s":"-4 1e5 \" 7e1"}],"d" : 1e6 ,"e":[18446744073709551616],"f":0}"#;
        let mut shown = Vec::new();
        fn collect(v: &Json, out: &mut Vec<String>) {
            match v {
                Json::OtherNumber(n) => out.push(n.to_string()),
                Json::Arr(items) => items.iter().for_each(|v| collect(v, out)),
                Json::Obj(o) => o.entries.iter().for_each(|(_, v)| collect(v, out)),
                _ => {}
            }
        }
        collect(&parse(text).unwrap(), &mut shown);
        assert_eq!(shown, ["-2", "3.0", "1e6", "18446744073709551616"]);
        // A hostile literal is shortened, not copied whole into messages.
        let long = format!("1.{}", "0".repeat(5000));
        let Json::OtherNumber(n) = parse(long.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            n.as_str(),
            format!("1.{}… (5002 characters)", "0".repeat(SHOWN_LITERAL - 10))
        );
    }

    #[test]
    fn other_numbers_are_never_serialised() {
        let value = parse(br#"{"a":-1}"#).unwrap();
        let err = serde_json::to_vec(&value).unwrap_err().to_string();
        assert!(err.contains("the number -1"), "{err}");
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
    fn field_names_are_the_decoders_names_sorted_and_stand_for_themselves() {
        use std::collections::BTreeSet;
        let read: BTreeSet<&str> = crate::block::FIELDS
            .into_iter()
            .chain(crate::block::CAPACITY)
            .chain(crate::receipt::field_names())
            .collect();
        assert_eq!(read.into_iter().collect::<Vec<_>>(), FIELD_NAMES);
        for name in FIELD_NAMES {
            assert!(matches!(Key::new(name), Key::Field(n) if n == name));
            // Same length and first bytes, one byte off: not a field name.
            let mut near = name.to_owned().into_bytes();
            *near.last_mut().unwrap() ^= 0x20;
            let near = String::from_utf8(near).unwrap();
            assert!(matches!(Key::new(&near), Key::Other(k) if *k == near));
        }
        let Json::Obj(o) = parse(br#"{"height":1,"Height":2,"he\u0069ght":3}"#).unwrap() else {
            panic!()
        };
        assert!(matches!(o.entries[0].0, Key::Field("height")));
        assert!(matches!(&o.entries[1].0, Key::Other(k) if &**k == "Height"));
        // An escaped key is the same key once unescaped.
        assert!(matches!(o.entries[2].0, Key::Field("height")));
        assert!(o.duplicate_key);
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

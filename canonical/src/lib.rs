//! Canonical JSON bytes and their blake3 hash: the one path by which the governor turns a value
//! into bytes it writes, signs or hashes (snapshots, decisions, params, attestations, receipt
//! signing messages, the simulator's chains and the config hash).
//!
//! Canonical means RFC 8785 (JCS): keys sorted by byte, no whitespace, numbers in their shortest
//! form. Hashes are blake3, shown as lowercase hex.
//!
//! # Failing loudly
//!
//! Serialising into memory can fail only for a value of the wrong *type*: a map whose keys are
//! not strings, or a float that is not finite. The governor's hashed types hold strings,
//! integers, booleans and string-keyed maps, so no input can reach that failure; only a change
//! to a type can. Should one, these functions panic with the type's name rather than hash empty
//! or partial bytes, so every hash test fails at once instead of a hash silently changing.

use serde::Serialize;

/// The JCS bytes of `value`.
///
/// The value goes through a `serde_json::Value` tree, whose objects keep their keys sorted by
/// byte. When every key is ASCII (byte order is then JCS's UTF-16 order) and every number an
/// integer within ±[`MAX_SAFE`] (JCS then writes its digits), the tree's compact JSON *is* the
/// JCS form, about three times faster than the general canonicaliser, which handles any other
/// tree; debug builds check the fast path against it on every call.
///
/// # Panics
///
/// If `T` cannot be canonicalised (see the crate documentation); no value of a hashable type
/// can cause it.
pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    let tree = loud::<T, _>(serde_json::to_value(value));
    if !plain(&tree) {
        return loud::<T, _>(serde_json_canonicalizer::to_vec(&tree));
    }
    let bytes = loud::<T, _>(serde_json::to_vec(&tree));
    debug_assert!(
        serde_json_canonicalizer::to_vec(&tree).is_ok_and(|jcs| jcs == bytes),
        "the sorted compact JSON of {} is not its JCS form",
        std::any::type_name::<T>()
    );
    bytes
}

/// 2^53 − 1, the largest integer JCS writes as its plain digits (and the fast path of
/// [`to_vec`] as is). Every integer the governor hashes lies within ±`MAX_SAFE`; inputs beyond
/// it are refused or clamped before they get here.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// Whether the compact JSON of `tree` is its JCS form: ASCII keys, integers within ±MAX_SAFE.
fn plain(tree: &serde_json::Value) -> bool {
    use serde_json::Value;
    match tree {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_i64().map(i64::unsigned_abs))
            .is_some_and(|v| v <= MAX_SAFE),
        Value::Array(items) => items.iter().all(plain),
        Value::Object(map) => map.iter().all(|(k, v)| k.is_ascii() && plain(v)),
    }
}

/// Appends the compact JSON of `value` to `out`, in the order its fields serialise.
///
/// For a type that serialises its keys already sorted by byte and holds only strings and
/// integers within ±2^53, this is its JCS form at a fraction of the cost of [`to_vec`]; debug
/// builds check that claim on every call. For any other type it is plain compact JSON.
///
/// # Panics
///
/// As [`to_vec`].
pub fn extend_compact<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    loud::<T, _>(try_extend_compact(out, value));
}

/// [`extend_compact`] for a value whose `Serialize` may refuse it (a parsed JSON tree that holds
/// a number it never writes back): the error instead of a panic, and `out` as it was.
pub fn try_extend_compact<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    serde_json::to_writer(&mut *out, value).inspect_err(|_| out.truncate(start))
}

/// Like [`extend_compact`], for a type whose compact JSON is its JCS form; debug builds check it.
///
/// # Panics
///
/// As [`to_vec`]; in debug builds also when the bytes differ from [`to_vec`]'s.
pub fn extend_sorted<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    extend_compact(out, value);
    debug_assert!(
        out.get(start..) == Some(&to_vec(value)[..]),
        "the compact JSON of {} is not its JCS form",
        std::any::type_name::<T>()
    );
}

/// Pretty-printed JSON of `value` with a final newline, for files people read (never hashed).
///
/// # Panics
///
/// As [`to_vec`].
pub fn to_pretty_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text = loud::<T, _>(serde_json::to_string_pretty(value));
    text.push('\n');
    text
}

/// blake3 of `bytes`, lowercase hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// blake3 of the JCS bytes of `value`, lowercase hex.
///
/// # Panics
///
/// As [`to_vec`].
pub fn hash<T: Serialize>(value: &T) -> String {
    hash_hex(&to_vec(value))
}

/// A value's JCS bytes together with their hash, for callers that both write and chain them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The JCS bytes: what is written to disk.
    pub bytes: Vec<u8>,
    /// blake3 of `bytes`, lowercase hex: what the next record links to.
    pub hash: String,
}

impl Canonical {
    /// Canonicalises and hashes `value`.
    ///
    /// # Panics
    ///
    /// As [`to_vec`].
    pub fn of<T: Serialize>(value: &T) -> Self {
        Self::from_bytes(to_vec(value))
    }

    /// Hashes bytes that are already canonical (built with [`extend_sorted`], for example).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let hash = hash_hex(&bytes);
        Self { bytes, hash }
    }
}

/// Unwraps a serialisation result whose only failure is a type that cannot be serialised.
fn loud<T: ?Sized, V>(result: Result<V, serde_json::Error>) -> V {
    match result {
        Ok(v) => v,
        Err(err) => panic!(
            "serialising a {} failed: {err}; hashed types hold only strings, integers, \
             booleans and string-keyed maps",
            std::any::type_name::<T>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Sorted {
        a: u64,
        b: &'static str,
    }

    #[test]
    fn jcs_sorts_keys_and_hashes_the_bytes() {
        let mut map = BTreeMap::new();
        map.insert("z", 1);
        map.insert("a", 2);
        let value = serde_json::json!({"z": [1, "x"], "a": {"c": true, "b": null}});
        assert_eq!(to_vec(&value), br#"{"a":{"b":null,"c":true},"z":[1,"x"]}"#);
        assert_eq!(to_vec(&map), br#"{"a":2,"z":1}"#);
        let c = Canonical::of(&value);
        assert_eq!(c.hash, blake3::hash(&c.bytes).to_hex().as_str());
        assert_eq!(hash(&value), c.hash);
        assert_eq!(c.hash.len(), 64);
    }

    #[test]
    fn extend_sorted_appends_the_jcs_form() {
        let mut out = b"prefix:".to_vec();
        extend_sorted(&mut out, &Sorted { a: 7, b: "é\u{1}" });
        assert_eq!(out, "prefix:{\"a\":7,\"b\":\"é\\u0001\"}".as_bytes());
    }

    #[test]
    #[should_panic(expected = "the compact JSON of")]
    #[cfg(debug_assertions)]
    fn extend_sorted_refuses_an_unsorted_type_in_debug_builds() {
        #[derive(Serialize)]
        struct Unsorted {
            b: u64,
            a: u64,
        }
        extend_sorted(&mut Vec::new(), &Unsorted { b: 1, a: 2 });
    }

    #[test]
    #[should_panic(expected = "serialising a")]
    fn a_type_that_cannot_be_canonicalised_panics_instead_of_hashing_nothing() {
        let mut map = BTreeMap::new();
        map.insert((1u8, 2u8), 3u8);
        let _ = to_vec(&map);
    }

    #[test]
    fn a_refused_value_leaves_the_buffer_as_it_was() {
        struct Refused;
        impl Serialize for Refused {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeSeq};
                let mut seq = s.serialize_seq(None)?;
                seq.serialize_element(&1)?;
                Err(S::Error::custom("refused"))
            }
        }
        let mut out = b"kept".to_vec();
        let err = try_extend_compact(&mut out, &Refused).unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(out, b"kept");
    }

    #[test]
    fn the_fast_path_and_the_general_canonicaliser_agree_at_their_border() {
        #[derive(Serialize)]
        struct Unsorted {
            z: u64,
            b: i64,
            a: &'static str,
        }
        let value = Unsorted {
            z: MAX_SAFE,
            b: -(MAX_SAFE as i64),
            a: "\u{7f}\u{1f}\"\\é\u{2028}",
        };
        assert_eq!(
            to_vec(&value),
            serde_json_canonicalizer::to_vec(&value).unwrap()
        );
        assert_eq!(
            to_vec(&value),
            "{\"a\":\"\u{7f}\\u001f\\\"\\\\é\u{2028}\",\"b\":-9007199254740991,\"z\":9007199254740991}"
                .as_bytes()
        );
        // Past either border the general canonicaliser decides: a number JCS writes as a
        // double, keys whose byte order is not their UTF-16 order.
        let mut map = BTreeMap::new();
        map.insert("\u{ff61}", MAX_SAFE + 2);
        map.insert("\u{1f600}", 1);
        assert!(!plain(&serde_json::to_value(&map).unwrap()));
        assert_eq!(
            to_vec(&map),
            serde_json_canonicalizer::to_vec(&map).unwrap()
        );
        assert_eq!(
            to_vec(&map),
            "{\"\u{1f600}\":1,\"\u{ff61}\":9007199254740992}".as_bytes()
        );
    }

    /// Any JSON tree: keys and strings from ASCII, Latin, BMP-private-use-area and
    /// supplementary-plane characters; integers anywhere in the u64 and i64 ranges.
    fn any_tree() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        const CHARS: [char; 10] = [
            'a',
            'b',
            'c',
            '\u{0}',
            '\u{1f}',
            '"',
            '\\',
            'é',
            '\u{e000}',
            '\u{1f600}',
        ];
        let text = || {
            proptest::collection::vec(proptest::sample::select(&CHARS[..]), 0..4)
                .prop_map(String::from_iter)
        };
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0..=MAX_SAFE).prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((text(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn to_vec_is_the_general_canonicalisers_output(tree in any_tree()) {
            prop_assert_eq!(to_vec(&tree), serde_json_canonicalizer::to_vec(&tree).unwrap());
        }
    }

    #[test]
    fn pretty_ends_with_a_newline() {
        assert_eq!(to_pretty_string(&[1, 2]), "[\n  1,\n  2\n]\n");
    }
}

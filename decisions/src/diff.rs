//! Where two JSON documents first differ.

use serde_json::Value;

/// The dotted path of the first differing field of `a` and `b` (keys in sorted order, array
/// elements as `[i]`), or `None` if they are equal as JSON. Unparsable input is reported as a
/// difference at the root (`$`).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<String> {
    match (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => walk(&a, &b, String::new()),
        _ if a == b => None,
        _ => Some("$".to_owned()),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(va), Some(vb)) => walk(va, vb, join(&path, k)),
                _ => Some(join(&path, k)),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            let common = x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| walk(va, vb, format!("{path}[{i}]")));
            common.or_else(|| {
                (x.len() != y.len()).then(|| format!("{path}[{}]", x.len().min(y.len())))
            })
        }
        _ if a == b => None,
        _ if path.is_empty() => Some("$".to_owned()),
        _ => Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_differing_path() {
        let a = br#"{"a":1,"b":{"c":[1,2,{"d":3}]},"z":0}"#;
        let b = br#"{"a":1,"b":{"c":[1,2,{"d":4}]},"z":1}"#;
        assert_eq!(first_difference(a, b).as_deref(), Some("b.c[2].d"));
        assert_eq!(first_difference(a, a), None);
        assert_eq!(
            first_difference(br#"{"a":[1]}"#, br#"{"a":[1,2]}"#).as_deref(),
            Some("a[1]")
        );
        assert_eq!(
            first_difference(br#"{"a":1}"#, br#"{"b":1}"#).as_deref(),
            Some("a")
        );
        assert_eq!(first_difference(b"x", b"y").as_deref(), Some("$"));
    }
}

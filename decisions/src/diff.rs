//! Where two JSON documents first differ.

use serde_json::Value;

/// The dotted path of the first differing field of `a` and `b` (keys in sorted order, array
/// elements as `[i]`), or `None` if they are equal as JSON. Unparsable input is reported as a
/// difference at the root (`$`).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<String> {
    differences(a, b, 1).pop()
}

/// The dotted paths of the differing fields of `a` and `b`, in [`first_difference`]'s order and
/// notation, at most `max` of them. A field present on one side only is one path; so is the
/// first extra element of the longer of two arrays.
pub fn differences(a: &[u8], b: &[u8], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    match (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => walk(&a, &b, String::new(), max, &mut out),
        _ if a == b => {}
        _ => out.push("$".to_owned()),
    }
    out.truncate(max);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(a: &Value, b: &Value, path: String, max: usize, out: &mut Vec<String>) {
    if out.len() >= max {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => walk(va, vb, join(&path, k), max, out),
                    _ if out.len() < max => out.push(join(&path, k)),
                    _ => return,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                walk(va, vb, format!("{path}[{i}]"), max, out);
            }
            if x.len() != y.len() && out.len() < max {
                out.push(format!("{path}[{}]", x.len().min(y.len())));
            }
        }
        _ if a == b => {}
        _ if path.is_empty() => out.push("$".to_owned()),
        _ => out.push(path),
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

    #[test]
    fn lists_every_differing_path_up_to_the_cap() {
        let a = br#"{"a":1,"b":{"c":[1,2,{"d":3}]},"y":[1],"z":0}"#;
        let b = br#"{"a":2,"b":{"c":[1,2,{"d":4}]},"x":5,"y":[1,2],"z":1}"#;
        assert_eq!(
            differences(a, b, 10),
            ["a", "b.c[2].d", "x", "y[1]", "z"].map(String::from)
        );
        assert_eq!(differences(a, b, 2), ["a", "b.c[2].d"].map(String::from));
        assert!(differences(a, a, 10).is_empty());
        assert_eq!(differences(b"x", b"y", 3), ["$"].map(String::from));
    }
}

//! Typed reads out of a [`Json`] tree, with errors that name the field.
//!
//! Blocks, receipts and the providers file share these rules: every integer is a plain decimal
//! literal no larger than [`MAX_SAFE`], ids and hex strings have fixed alphabets, unknown fields
//! and duplicate keys are errors, and `null` never stands for an absent optional field.

use std::fmt;

use crate::json::{Json, Obj, MAX_SAFE};

/// What is wrong with one field (or with the object itself when `field` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `capacity.storage_bytes`; empty for the object.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    /// Prefixes the path with `parent.`, for errors raised inside a nested object.
    pub(crate) fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.field, self.problem)
        }
    }
}

/// The value as an object without duplicate keys.
pub(crate) fn object<'a>(value: &'a Json, what: &str) -> Result<&'a Obj, FieldError> {
    match value {
        Json::Obj(o) if o.duplicate_key => Err(FieldError::new("", "duplicate key")),
        Json::Obj(o) => Ok(o),
        _ => Err(FieldError::new("", format!("{what} is not an object"))),
    }
}

/// Sorts an object's entries into the slots of `names` (slot `i` for `names[i]`; slots past
/// `names.len()` stay empty). Unknown fields are an error; `null` counts as present so typed
/// reads reject it.
pub(crate) fn slots<'a, const N: usize>(
    obj: &'a Obj,
    names: &[&str],
) -> Result<[Option<&'a Json>; N], FieldError> {
    debug_assert!(names.len() <= N);
    let mut out = [None; N];
    for (key, value) in &obj.entries {
        match names.iter().position(|n| *n == &**key) {
            Some(i) => out[i] = Some(value),
            None => return Err(FieldError::new("", format!("unknown field {key}"))),
        }
    }
    Ok(out)
}

/// A required field.
pub(crate) fn required<'a>(slot: Option<&'a Json>, name: &str) -> Result<&'a Json, FieldError> {
    slot.ok_or_else(|| FieldError::new("", format!("missing field {name}")))
}

/// A plain non-negative integer literal no larger than [`MAX_SAFE`].
pub(crate) fn uint(value: &Json, name: &str) -> Result<u64, FieldError> {
    match value {
        Json::Uint(v) if *v <= MAX_SAFE => Ok(*v),
        Json::Uint(_) => Err(FieldError::new(name, "integer > MAX_SAFE")),
        Json::OtherNumber(n) => Err(FieldError::new(
            name,
            format!("not a plain non-negative decimal integer literal ({n})"),
        )),
        _ => Err(FieldError::new(name, "not an unsigned integer")),
    }
}

/// A string.
pub(crate) fn string<'a>(value: &'a Json, name: &str) -> Result<&'a str, FieldError> {
    match value {
        Json::Str(s) => Ok(s),
        _ => Err(FieldError::new(name, "not a string")),
    }
}

/// An id: 1..=128 characters from `[A-Za-z0-9._:-]`.
pub(crate) fn id<'a>(value: &'a Json, name: &str) -> Result<&'a str, FieldError> {
    let s = string(value, name)?;
    if tb_config::is_id(s) {
        Ok(s)
    } else {
        Err(FieldError::new(name, "not an id"))
    }
}

/// Lowercase hex of exactly `N` bytes.
pub(crate) fn hex_bytes<const N: usize>(value: &Json, name: &str) -> Result<[u8; N], FieldError> {
    let s = string(value, name)?;
    parse_hex(s).ok_or_else(|| FieldError::new(name, format!("not {} lowercase hex", 2 * N)))
}

/// Decodes lowercase hex of exactly `N` bytes (uppercase is not canonical and is refused).
/// One pass with a lookup table: signatures and hashes make this a hot path of decoding.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    const INVALID: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut t = [INVALID; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = (TABLE[pair[0] as usize], TABLE[pair[1] as usize]);
        if hi == INVALID || lo == INVALID {
            return None;
        }
        *o = (hi << 4) | lo;
    }
    Some(out)
}

/// A JSON boolean.
pub(crate) fn boolean(value: &Json, name: &str) -> Result<bool, FieldError> {
    match value {
        Json::Bool(b) => Ok(*b),
        _ => Err(FieldError::new(name, "not a bool")),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_hex, uint};
    use crate::json::parse;

    #[test]
    fn a_rejected_number_is_shown_as_written() {
        for (text, shown) in [
            ("1e6", "1e6"),
            ("18446744073709551616", "18446744073709551616"),
            ("-60", "-60"),
            ("-0", "-0"),
            ("120.0", "120.0"),
        ] {
            let err = uint(&parse(text.as_bytes()).unwrap(), "tx_count").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("tx_count: not a plain non-negative decimal integer literal ({shown})")
            );
        }
    }

    #[test]
    fn hex_is_lowercase_and_exact_length() {
        assert_eq!(parse_hex::<2>("0aff"), Some([0x0a, 0xff]));
        assert_eq!(parse_hex::<2>("0aFF"), None);
        assert_eq!(parse_hex::<2>("0af"), None);
        assert_eq!(parse_hex::<2>("0aff0"), None);
        assert_eq!(parse_hex::<2>("0ag0"), None);
        assert_eq!(parse_hex::<1>("é"), None);
        let all: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
        let decoded = parse_hex::<256>(&all).unwrap();
        assert!(decoded
            .iter()
            .enumerate()
            .all(|(i, b)| usize::from(*b) == i));
    }
}

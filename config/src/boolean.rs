//! Strict boolean words shared by the environment and the TOML file.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use std::fmt;

/// The words [`parse_bool`] accepts (any ASCII case), as shown in error messages.
pub const BOOL_WORDS: &str = "1/0/true/false/yes/no/on/off";

/// Parses a strict boolean: `1/0/true/false/yes/no/on/off` in any ASCII case, surrounding
/// whitespace ignored. Anything else is `None` — callers turn that into an error, never into a
/// default, so a typo in `TB_GOVERNOR_SHADOW_ONLY` can never switch a node into apply mode.
pub fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["1", "true", "yes", "on"];
    const FALSE: [&str; 4] = ["0", "false", "no", "off"];
    let s = s.trim();
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// `deserialize_with` helper: a native TOML boolean, or a string holding one of the strict words.
pub(crate) fn flexible_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    deserializer.deserialize_any(FlexibleBool)
}

struct FlexibleBool;

impl Visitor<'_> for FlexibleBool {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a boolean or a string with one of {BOOL_WORDS}")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        parse_bool(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

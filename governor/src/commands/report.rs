//! The `--json` report of `verify` and `audit`, printed one epoch at a time.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

/// Prints `{"decisions": …, "epochs": […], "ok": …}` byte for byte as
/// `serde_json::to_string_pretty` prints that object (keys sorted, so `ok`, known only at the
/// end, comes last) and a newline, without holding the epochs.
pub struct EpochsJson<W: FnMut(&str)> {
    /// Where the text goes.
    write: W,
    /// No epoch printed yet (an empty array prints as `[]`).
    empty: bool,
}

impl<W: FnMut(&str)> EpochsJson<W> {
    /// Prints everything before the first epoch.
    pub fn begin(decisions: &Path, mut write: W) -> Result<Self> {
        let dir = serde_json::to_string(decisions)?;
        write(&format!("{{\n  \"decisions\": {dir},\n  \"epochs\": ["));
        Ok(EpochsJson { write, empty: true })
    }

    /// Prints one element of `epochs`.
    pub fn epoch(&mut self, value: &Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        let mut out = String::from(if self.empty { "\n" } else { ",\n" });
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("    ");
            out.push_str(line);
        }
        (self.write)(&out);
        self.empty = false;
        Ok(())
    }

    /// Prints the rest, with `ok`.
    pub fn end(mut self, ok: bool) {
        let close = if self.empty { "]" } else { "\n  ]" };
        (self.write)(&format!("{close},\n  \"ok\": {ok}\n}}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_what_serde_json_prints_for_the_whole_object() {
        let dir = Path::new("some/dir \"quoted\"");
        for epochs in [
            vec![],
            vec![json!({"epoch": 0, "ok": true, "problem": null})],
            vec![
                json!({"epoch": 0, "status": "reproduced", "field": null}),
                json!({"epoch": 1, "status": "divergence", "field": "a.b"}),
            ],
        ] {
            for ok in [true, false] {
                let mut got = String::new();
                let mut report = EpochsJson::begin(dir, |s| got.push_str(s)).unwrap();
                for e in &epochs {
                    report.epoch(e).unwrap();
                }
                report.end(ok);
                let whole = json!({"decisions": dir, "ok": ok, "epochs": epochs});
                let want = serde_json::to_string_pretty(&whole).unwrap() + "\n";
                assert_eq!(got, want);
            }
        }
    }
}

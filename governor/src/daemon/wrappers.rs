//! `GET /wrappers`: every series `/metrics` exports, as canonical JSON with the last snapshot
//! hash, and the blake3 of that summary in the body and a response header. A dashboard that
//! records the hash proves it read the same sample the governor decided on.
//!
//! Body (JCS, RFC 8785): `{"hash": H, "summary": S}` where `H` = blake3(JCS(`S`)) and `S` =
//! `{"last_closed_epoch", "last_economics_snapshot_hash", "metrics": [{"labels", "name",
//! "value"}, …], "schema"}`. Series are sorted by name, then labels; each value is the sample's
//! text exactly as `/metrics` prints it.

use std::collections::BTreeMap;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::metrics::prometheus_text;
use super::state::Shared;

/// `schema` of the summary.
pub const WRAPPERS_SCHEMA: &str = "tb.governor.wrappers.v1";

/// Response header carrying the summary's blake3 (hex).
pub const HASH_HEADER: &str = "x-wrappers-blake3";

/// One exported series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Series {
    /// Sample name, as in `/metrics` (counters with `_total`).
    pub name: String,
    /// Label names and values.
    pub labels: BTreeMap<String, String>,
    /// The value's text, as in `/metrics`.
    pub value: String,
}

/// What the hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// [`WRAPPERS_SCHEMA`].
    pub schema: &'static str,
    /// Epoch of the last close the metrics show; null before the first.
    pub last_closed_epoch: Option<u64>,
    /// Snapshot hash of that close; null before the first.
    pub last_economics_snapshot_hash: Option<String>,
    /// Every series, sorted.
    pub metrics: Vec<Series>,
}

#[derive(Serialize)]
struct Body<'a> {
    hash: &'a str,
    summary: &'a Summary,
}

/// Parses the sample lines of a Prometheus text exposition. An unparsable line is an error that
/// quotes it.
pub fn parse_samples(text: &str) -> Result<Vec<Series>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_sample(line).ok_or_else(|| format!("unparsable sample line {line:?}"))?);
    }
    out.sort();
    Ok(out)
}

fn parse_sample(line: &str) -> Option<Series> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' if key.is_empty() => continue,
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        };
        rest = &inner[end + 1..];
    }
    let value = rest.split_whitespace().next()?.to_owned();
    Some(Series {
        name,
        labels,
        value,
    })
}

/// The body and its hash, for `summary`.
pub fn render(summary: &Summary) -> (Vec<u8>, String) {
    let hash = tb_canonical::hash(summary);
    let body = tb_canonical::to_vec(&Body {
        hash: &hash,
        summary,
    });
    (body, hash)
}

/// Builds the summary of what `registry` exports now. The view stays read-locked meanwhile:
/// a close updates its metrics under the view's write lock, so gauges and hash belong together.
pub fn summary(registry: &Registry, shared: &Shared) -> Result<Summary, String> {
    let view = shared.view();
    let mut text = String::new();
    encode(&mut text, registry).map_err(|e| format!("encoding metrics failed: {e}"))?;
    let metrics = parse_samples(&prometheus_text(&text))?;
    let last = view.last.as_ref();
    Ok(Summary {
        schema: WRAPPERS_SCHEMA,
        last_closed_epoch: last.map(|l| l.decision.epoch),
        last_economics_snapshot_hash: last.map(|l| l.decision.snapshot_hash.clone()),
        metrics,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_escapes_and_values() {
        let text =
            "# HELP a x\n# TYPE a gauge\na 1.5\nb_total{method=\"governor.status\",code=\"0\"} 3\n\
                    c{x=\"q\\\"uo,te}\",y=\"\"} -1\n";
        let s = parse_samples(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].name.as_str(), s[0].value.as_str()), ("a", "1.5"));
        assert!(s[0].labels.is_empty());
        assert_eq!(s[1].labels["method"], "governor.status");
        assert_eq!(s[1].labels["code"], "0");
        assert_eq!(s[2].labels["x"], "q\"uo,te}");
        assert_eq!(s[2].labels["y"], "");
        assert_eq!(s[2].value, "-1");
        assert!(parse_samples("broken{x=\"1\"\n").is_err());
    }

    #[test]
    fn the_hash_covers_the_summary_bytes_inside_the_body() {
        let summary = Summary {
            schema: WRAPPERS_SCHEMA,
            last_closed_epoch: Some(3),
            last_economics_snapshot_hash: Some("ab".repeat(32)),
            metrics: parse_samples("z 1\na{m=\"s\"} 2\n").unwrap(),
        };
        let (body, hash) = render(&summary);
        let text = String::from_utf8(body).unwrap();
        let inner = tb_canonical::to_vec(&summary);
        let inner = String::from_utf8(inner).unwrap();
        assert_eq!(text, format!("{{\"hash\":\"{hash}\",\"summary\":{inner}}}"));
        assert_eq!(hash, blake3::hash(inner.as_bytes()).to_hex().to_string());
        assert!(inner.find("\"a\"").unwrap() < inner.find("\"z\"").unwrap());
    }
}

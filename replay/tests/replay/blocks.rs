//! Block errors (docs/formats.md, "Block"): every block rule stops ingestion with an error that names the field,
//! while a receipt that breaks the receipt schema only rejects that receipt.

use std::sync::Arc;

use serde_json::{json, Value};
use tb_replay::decode::FieldError;
use tb_replay::receipt::Decoded;
use tb_replay::{BlockError, Reason, Registry, Replayer, Verdict};

use crate::common::{replay_config, small_chain};

/// The unsigned integer fields of a block, as dotted paths.
const UINT_FIELDS: [&str; 10] = [
    "height",
    "timestamp_ms",
    "difficulty",
    "coinbase_micro",
    "tx_count",
    "tx_volume_micro",
    "capacity.storage_bytes",
    "capacity.compute_units",
    "capacity.energy_milli_kwh",
    "capacity.ad_impressions",
];

const FIELDS: [&str; 9] = [
    "height",
    "timestamp_ms",
    "miner",
    "difficulty",
    "coinbase_micro",
    "tx_count",
    "tx_volume_micro",
    "capacity",
    "receipts",
];

fn template() -> Value {
    json!({"height": 0, "timestamp_ms": 1_000, "miner": "miner-1", "difficulty": 7,
           "coinbase_micro": 1_800_000, "tx_count": 3, "tx_volume_micro": 99,
           "capacity": {"storage_bytes": 1, "compute_units": 2, "energy_milli_kwh": 3,
                        "ad_impressions": 4},
           "receipts": []})
}

fn replayer() -> Replayer {
    Replayer::new(
        replay_config("blocks-test", 10),
        Arc::new(Registry::default()),
    )
}

fn decode(line: &str) -> Result<tb_replay::Block, BlockError> {
    replayer().decode(line.as_bytes())
}

/// The field error `line` must give.
fn field_error(line: &str) -> FieldError {
    match decode(line) {
        Err(BlockError::Field(e)) => e,
        other => panic!("{line}: expected a field error, got {other:?}"),
    }
}

/// Mutable access to the value at a dotted path.
fn at<'a>(v: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('.').fold(v, |v, k| &mut v[k])
}

/// The template with the value at `path` written as the literal `text`.
fn with_literal(path: &str, text: &str) -> String {
    let mut v = template();
    *at(&mut v, path) = json!(4_242_424_242_u64);
    let line = v.to_string();
    assert_eq!(line.matches("4242424242").count(), 1);
    line.replace("4242424242", text)
}

#[test]
fn the_template_is_a_valid_block() {
    let block = decode(&template().to_string()).unwrap();
    assert_eq!(block.height, 0);
    assert_eq!(block.capacity, [1, 2, 3, 4]);
    assert_eq!(&*block.miner, "miner-1");
    let mut r = replayer();
    assert_eq!(r.push(&block).unwrap(), None);
    assert_eq!(r.next_height(), 1);
}

#[test]
fn a_missing_field_is_named() {
    for field in FIELDS {
        let mut v = template();
        v.as_object_mut().unwrap().remove(field);
        let e = field_error(&v.to_string());
        assert!(
            e.to_string().contains(&format!("missing field {field}")),
            "{field}: {e}"
        );
    }
    for field in [
        "storage_bytes",
        "compute_units",
        "energy_milli_kwh",
        "ad_impressions",
    ] {
        let mut v = template();
        v["capacity"].as_object_mut().unwrap().remove(field);
        let e = field_error(&v.to_string());
        assert_eq!(e.field, "capacity", "{field}");
        assert!(e.problem.contains(field), "{field}: {e}");
    }
}

#[test]
fn an_unknown_field_is_named() {
    let mut v = template();
    v["gas_used"] = json!(1);
    let e = field_error(&v.to_string());
    assert!(e.to_string().contains("unknown field gas_used"), "{e}");
    let mut v = template();
    v["capacity"]["gpu_hours"] = json!(1);
    let e = field_error(&v.to_string());
    assert_eq!(e.field, "capacity");
    assert!(e.problem.contains("unknown field gpu_hours"), "{e}");
}

#[test]
fn a_duplicate_key_in_the_block_is_a_block_error() {
    let line = template().to_string();
    for dup in [
        line.replacen('{', r#"{"height":0,"#, 1),
        line.replacen('{', r#"{"receipts":[],"#, 1),
        line.replacen(r#""capacity":{"#, r#""capacity":{"compute_units":2,"#, 1),
    ] {
        assert_ne!(dup, line);
        let e = field_error(&dup);
        assert!(e.to_string().contains("duplicate key"), "{dup}: {e}");
    }
    let e = field_error(&line.replacen(r#""capacity":{"#, r#""capacity":{"ad_impressions":4,"#, 1));
    assert_eq!(e.field, "capacity");
}

#[test]
fn integer_fields_take_only_plain_safe_literals() {
    let bad = [
        "-0",
        "-1",
        "1.5",
        "1.0",
        "1e3",
        "1E3",
        "0e0",
        "9007199254740992",
        "18446744073709551615",
        "18446744073709551616",
        "\"1\"",
        "null",
        "true",
        "[]",
        "{}",
    ];
    for path in UINT_FIELDS {
        for literal in bad {
            let e = field_error(&with_literal(path, literal));
            assert_eq!(e.field, path, "{path} = {literal}: {e}");
        }
        for good in ["0", "9007199254740991"] {
            let line = with_literal(path, good);
            assert!(decode(&line).is_ok(), "{path} = {good}");
        }
    }
    // The error message shows the offending literal.
    let e = field_error(&with_literal("height", "-0"));
    assert!(e.to_string().contains("-0"), "{e}");
}

#[test]
fn the_miner_must_be_an_id() {
    let long = "m".repeat(129);
    for bad in [
        json!(""),
        json!(long),
        json!("miner 1"),
        json!("miner/1"),
        json!("mïner"),
        json!("miner\n"),
        json!(1),
        json!(null),
        json!(["miner-1"]),
    ] {
        let mut v = template();
        v["miner"] = bad.clone();
        let e = field_error(&v.to_string());
        assert_eq!(e.field, "miner", "{bad}: {e}");
    }
    for good in [json!("m".repeat(128)), json!("A-z.0_9:x"), json!("m")] {
        let mut v = template();
        v["miner"] = good.clone();
        assert!(decode(&v.to_string()).is_ok(), "{good}");
    }
    // Checked on the decoded string: an escaped valid id is valid.
    let line = template()
        .to_string()
        .replace(r#""miner-1""#, r#""\u006diner-1""#);
    assert_eq!(&*decode(&line).unwrap().miner, "miner-1");
}

#[test]
fn receipts_and_capacity_have_fixed_types() {
    for (field, value) in [
        ("receipts", json!({})),
        ("receipts", json!(null)),
        ("receipts", json!("[]")),
        ("capacity", json!([])),
        ("capacity", json!(null)),
    ] {
        let mut v = template();
        v[field] = value.clone();
        let e = field_error(&v.to_string());
        assert!(e.to_string().starts_with(field), "{field} = {value}: {e}");
    }
    for top in ["[]", "1", "\"block\"", "null", "true"] {
        assert!(matches!(decode(top), Err(BlockError::Field(_))), "{top}");
    }
}

#[test]
fn an_empty_line_is_a_block_error() {
    assert_eq!(decode(""), Err(BlockError::EmptyLine));
    assert_eq!(BlockError::EmptyLine.to_string(), "empty line");
    // Whitespace only is not a block either.
    assert!(matches!(decode(" "), Err(BlockError::Json(_))));
    assert!(matches!(decode("\r"), Err(BlockError::Json(_))));
}

#[test]
fn invalid_json_is_a_block_error() {
    let line = template().to_string();
    let cases: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"not json".to_vec(),
        format!("{line}x").into_bytes(),
        format!("{line}{line}").into_bytes(),
        line.replace(r#""miner-1""#, r#""\ud800""#).into_bytes(),
        line.replace(r#""miner-1""#, r#""\udc00x""#).into_bytes(),
        line.replace(r#""difficulty":7"#, r#""difficulty":1e400"#)
            .into_bytes(),
        line.replace(r#""difficulty":7"#, r#""difficulty":-1e400"#)
            .into_bytes(),
        line.replace(r#""receipts":[]"#, r#""receipts":[,]"#)
            .into_bytes(),
        line.replace(r#""miner-1""#, "\"miner\u{1}\"").into_bytes(),
        {
            let mut b = line.clone().into_bytes();
            let at = line.find("miner-1").unwrap();
            b[at] = 0xff;
            b
        },
    ];
    for bytes in &cases {
        assert!(
            matches!(replayer().decode(bytes), Err(BlockError::Json(_))),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// A block whose `receipts` holds `k` nested arrays: the deepest value is at depth `k + 2`.
fn nested(k: usize) -> String {
    template().to_string().replace(
        r#""receipts":[]"#,
        &format!(r#""receipts":[{}{}]"#, "[".repeat(k), "]".repeat(k)),
    )
}

#[test]
fn nesting_deeper_than_128_is_invalid_json() {
    for k in [127, 128, 1_000, 100_000] {
        match decode(&nested(k)) {
            Err(BlockError::Json(e)) => assert!(e.to_string().contains("128"), "{k}: {e}"),
            other => panic!("{k}: {other:?}"),
        }
    }
    // Deep but within the limit: the block decodes and the odd receipt is a schema rejection.
    let block = decode(&nested(100)).unwrap();
    assert!(matches!(
        block.receipts[..],
        [Decoded::Rejected {
            reason: Reason::Schema,
            ..
        }]
    ));
}

#[test]
fn nesting_of_exactly_128_is_valid() {
    let block = decode(&nested(126)).unwrap();
    assert_eq!(block.receipts.len(), 1);
}

#[test]
fn heights_follow_genesis_then_plus_one() {
    let block = |h: u64, t: u64| {
        let mut v = template();
        v["height"] = json!(h);
        v["timestamp_ms"] = json!(t);
        decode(&v.to_string()).unwrap()
    };
    let mut r = replayer();
    assert_eq!(
        r.push(&block(1, 10)),
        Err(BlockError::Height {
            expected: 0,
            found: 1
        })
    );
    r.push(&block(0, 10)).unwrap();
    let before = r.checkpoint();
    for (h, t) in [(0, 10), (2, 10), (9_007_199_254_740_991, 10)] {
        let e = r.push(&block(h, t)).unwrap_err();
        assert_eq!(
            e,
            BlockError::Height {
                expected: 1,
                found: h
            }
        );
        assert!(e.to_string().starts_with("height"), "{e}");
    }
    let e = r.push(&block(1, 9)).unwrap_err();
    assert_eq!(
        e,
        BlockError::Timestamp {
            previous: 10,
            found: 9
        }
    );
    assert!(e.to_string().starts_with("timestamp_ms"), "{e}");
    // A refused block changes nothing; an equal timestamp is fine.
    assert_eq!(r.checkpoint(), before);
    r.push(&block(1, 10)).unwrap();
    assert_eq!(r.next_height(), 2);
    // A configured genesis height.
    let mut cfg = replay_config("blocks-test", 10);
    cfg.genesis_height = 500;
    let mut r = Replayer::new(cfg, Arc::new(Registry::default()));
    assert_eq!(
        r.push(&block(0, 10)),
        Err(BlockError::Height {
            expected: 500,
            found: 0
        })
    );
    r.push(&block(500, 10)).unwrap();
    assert_eq!(r.next_height(), 501);
}

#[test]
fn a_duplicate_key_inside_a_receipt_rejects_only_that_receipt() {
    let (chain, reference) = small_chain();
    let line = std::str::from_utf8(&chain.lines[0]).unwrap();
    // The first receipt of every simulated block is a signed settlement starting with "market".
    let dup = line.replacen(r#"[{"market":"#, r#"[{"nonce":0,"market":"#, 1);
    assert_ne!(dup, line);
    let mut r = chain.replayer();
    let block = r.decode(dup.as_bytes()).unwrap();
    r.push(&block).unwrap();
    let mut want = reference.verdicts[0].clone();
    assert_eq!(want[0], Verdict::Accept);
    want[0] = Verdict::Reject(Reason::Schema);
    assert_eq!(r.verdicts(), want);
    // A receipt that is not an object is a schema rejection too; the block stays valid.
    let odd = line.replacen(r#""receipts":["#, r#""receipts":[1,"x",null,[],"#, 1);
    let block = chain.replayer().decode(odd.as_bytes()).unwrap();
    assert_eq!(block.receipts.len(), want.len() + 4);
    for d in &block.receipts[..4] {
        assert!(matches!(
            d,
            Decoded::Rejected {
                reason: Reason::Schema,
                ..
            }
        ));
    }
    assert_eq!(block.receipts[4..], reference.blocks[0].receipts[..]);
}

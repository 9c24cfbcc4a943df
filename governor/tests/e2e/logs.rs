//! The daemon's log as JSON (`--log-format json`, `TB_GOVERNOR_LOG_FORMAT=json`): one object per
//! line, carrying the fields a log shipper filters on.

use serde_json::Value;

use crate::support::{append, run, Config, Daemon, Sim, DEADLINE};

/// Blocks per epoch.
const L: usize = 10;

/// The one chain file.
const F0: &str = "blocks-000000.jsonl";

/// Every line of `stderr` as a JSON object, after checking the members every line has.
fn json_lines(stderr: &str) -> Vec<Value> {
    assert!(!stderr.is_empty(), "nothing logged");
    stderr
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}\n{stderr}"));
            assert!(v["timestamp"].is_string(), "{line}");
            assert!(
                ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&v["level"].as_str().unwrap()),
                "{line}"
            );
            assert!(
                v["target"].as_str().unwrap().starts_with("tb_governor"),
                "{line}"
            );
            assert!(v["message"].is_string(), "{line}");
            v
        })
        .collect()
}

/// The lines whose message is `message`.
fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["message"] == message).collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_the_close_and_stall_fields() {
    let s = Sim::new("healthy", 3, L);
    std::fs::create_dir(s.path("chain")).unwrap();
    let cfg = Config::new(&s.dir, L).write(&s.path("gov.toml"));
    let log = s.path("gov.stderr.log");
    let chain_file = format!("chain/{F0}");

    // Epochs 0 and 1, then a line that is not JSON (line 2L + 1): two closes, then a stall.
    let mut d = Daemon::start_with(&cfg, &log, &["--log-format", "json"], &[]);
    s.feed(&chain_file, 0..2 * L);
    append(&s.path(&chain_file), b"{not json\n");
    d.wait_closed(1);
    d.wait_status("the stall", |st| !st["ingest"]["stall"].is_null());
    d.signal("TERM");
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0), "{}", d.stderr());
    let lines = json_lines(&d.stderr());

    let closes = with_message(&lines, "epoch closed");
    assert_eq!(closes.len(), 2, "{lines:#?}");
    for (epoch, close) in closes.iter().enumerate() {
        assert_eq!(close["level"], "INFO", "{close}");
        assert_eq!(close["epoch"], epoch, "{close}");
        assert_eq!(close["file"], F0, "{close}");
        // The reading position after the epoch's last block: the next line.
        assert_eq!(close["line"], (epoch + 1) * L + 1, "{close}");
        assert_eq!(close["mode"], "shadow", "{close}");
        let decision = s
            .path("data/decisions")
            .join(format!("epoch-{epoch:020}.json"));
        assert_eq!(
            close["decision_hash"].as_str(),
            Some(tb_decisions::hash_hex(&std::fs::read(decision).unwrap()).as_str()),
            "{close}"
        );
    }
    let stalls = with_message(&lines, "ingest stalled");
    assert_eq!(stalls.len(), 1, "{lines:#?}");
    let stall = stalls[0];
    assert_eq!(stall["level"], "WARN", "{stall}");
    assert_eq!(stall["file"], F0, "{stall}");
    assert_eq!(stall["line"], 2 * L + 1, "{stall}");
    let bad_line = format!("{F0}:{}: ", 2 * L + 1);
    assert!(
        stall["stall"].as_str().unwrap().starts_with(&bad_line),
        "{stall}"
    );
    assert_eq!(
        with_message(&lines, "stopped cleanly").len(),
        1,
        "{lines:#?}"
    );

    // The environment variable chooses the format when the flag is not given.
    let env = [("TB_GOVERNOR_LOG_FORMAT", "json")];
    let mut d = Daemon::start_with_env(&cfg, &log, &env);
    d.wait_status("the stall", |st| !st["ingest"]["stall"].is_null());
    d.signal("TERM");
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0), "{}", d.stderr());
    let lines = json_lines(&d.stderr());
    let resumed = with_message(&lines, "resuming from the checkpoint");
    assert_eq!(resumed.len(), 1, "{lines:#?}");
    assert_eq!(
        (
            &resumed[0]["epoch"],
            &resumed[0]["file"],
            &resumed[0]["line"]
        ),
        (&Value::from(1), &Value::from(F0), &Value::from(2 * L + 1)),
        "{lines:#?}"
    );
    assert_eq!(
        with_message(&lines, "ingest stalled").len(),
        1,
        "{lines:#?}"
    );

    // An unknown format is refused before anything starts, naming the variable.
    let cfg_arg = cfg.to_str().unwrap();
    let r = run(
        "tb-governor",
        &["run", "--config", cfg_arg],
        &s.dir,
        &[("TB_GOVERNOR_LOG_FORMAT", "xml")],
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(
        r.stderr
            .contains("environment variable TB_GOVERNOR_LOG_FORMAT: invalid log format \"xml\""),
        "{r:?}"
    );
}

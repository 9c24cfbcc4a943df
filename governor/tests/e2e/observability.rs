//! The operator's observability kit against the real tools: the alert rules under `promtool`, a
//! real Prometheus scraping a real daemon (every alert expression and every dashboard query
//! through its HTTP API, and the stall alert going pending), the status page in headless
//! Chromium, shell completions, manual pages and `tb-cli governor status --watch`.
//!
//! A test that needs an external tool (`promtool`, `prometheus`, `chromium`) prints a loud
//! `SKIPPED: <tool> not installed` and returns when the tool is absent, except under `CI=true`,
//! where a missing tool fails it (`.ci/run` installs them all). Waits poll a condition with a
//! deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    append, bin, clean_env, http_request, rpc_call, run, run_expect, wait_until, Config, Daemon,
    Sim, DEADLINE,
};
use serde_json::{json, Value};

/// Blocks per epoch of the simulated chains here.
const L: usize = 20;
/// The RPC token of the daemons here.
const TOKEN: &str = "observability-token";
/// A fixed attestation seed (hex) for the signed daemon.
const NODE_KEY: &str = "4f3c1b2a99887766554433221100ffeeddccbbaa00112233445566778899aabb";
/// Job name the rules file expects for the daemon's scrape.
const JOB: &str = "tb-governor";

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The tool's path, or `None` after a loud notice when it is not installed. Under `CI=true` a
/// missing tool is a failure.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{name} is not installed, and CI runs every test: .ci/run must install it"
        );
        let bar = "!".repeat(78);
        eprintln!(
            "\n{bar}\nSKIPPED: {name} not installed (scripts/test installs it when it runs as \
             root with apt-get: apt-get install prometheus chromium)\n{bar}\n"
        );
    }
    found
}

/// Runs `cmd` to completion, killing it after `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Drain both pipes on threads so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut v);
        v
    });
    let status = wait_until(
        &format!("{what} to finish"),
        limit,
        || child.try_wait().ok().flatten(),
        String::new,
    );
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// A simulated chain fed into a watched directory.

struct Setup(Sim);

impl std::ops::Deref for Setup {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.0
    }
}

impl Setup {
    /// The demo scenario (healthy → market shock → recovery, hostile receipts), 12 epochs.
    fn demo() -> Setup {
        let sim = Sim::new("demo", 12, L);
        std::fs::create_dir_all(sim.path("chain")).unwrap();
        Config::new(&sim.dir, L)
            .rpc_extra(&format!("token = \"{TOKEN}\""))
            .write(&sim.path("gov.toml"));
        Setup(sim)
    }

    /// Appends the chain lines of `epochs` to the watched chain file.
    fn feed(&self, epochs: std::ops::RangeInclusive<usize>) {
        let (a, b) = (*epochs.start() * L, (*epochs.end() + 1) * L);
        self.append(self.lines[a..b].concat().as_bytes());
    }

    fn append(&self, bytes: &[u8]) {
        append(&self.dir.join("chain/blocks-000000.jsonl"), bytes);
    }

    fn start(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_env(
            &self.dir.join("gov.toml"),
            &self.dir.join("daemon.stderr.log"),
            env,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The rules file and the dashboard, read as text.

fn rules_text() -> String {
    std::fs::read_to_string(root().join("deploy/prometheus/governor-rules.yml")).unwrap()
}

/// `(alert name, its block of the rules file)`, in file order.
fn alert_blocks(rules: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            out.push((name.trim().to_owned(), String::new()));
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// The `expr:` of an alert block (one line, or a `|` block of deeper-indented lines).
fn expr_of(block: &str) -> String {
    let mut lines = block.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        if rest.trim() != "|" {
            return rest.trim().to_owned();
        }
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .map(str::trim)
            .collect();
        return body.join(" ").trim().to_owned();
    }
    panic!("no expr in:\n{block}")
}

fn dashboard() -> Value {
    let path = root().join("deploy/grafana/launch-governor.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        for nested in p["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

/// `(panel title, expr, legendFormat)` of every query of the dashboard.
fn dashboard_queries(d: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or_default().to_owned(),
                t["expr"].as_str().unwrap_or_default().to_owned(),
                t["legendFormat"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

/// A dashboard expression with its variables set as a test scrape has them.
fn concrete(expr: &str) -> String {
    let e = expr
        .replace("$__rate_interval", "30s")
        .replace("$instance", ".*");
    assert!(!e.contains('$'), "unknown dashboard variable in {expr}");
    e
}

/// The metric names a PromQL expression selects: identifiers outside strings, label matchers
/// and ranges that are neither keywords, aggregations, function calls nor label lists of
/// `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 13] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "inf",
        "nan",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let b: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut label_list = false;
    let mut i = 0;
    // Skips from an opening character to its closing one, stepping over quoted strings.
    let skip_to = |mut i: usize, close: char| -> usize {
        while i < b.len() && b[i] != close {
            if matches!(b[i], '"' | '\'' | '`') {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i + 1
    };
    while i < b.len() {
        let c = b[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_to(i + 1, c);
        } else if c == '{' {
            i = skip_to(i + 1, '}');
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c == '(' && label_list {
            label_list = false;
            i = skip_to(i + 1, ')');
        } else if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == ':') {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = b[i..].iter().find(|c| !c.is_whitespace()).copied();
            let selector = !(KEYWORDS.contains(&lower.as_str())
                || AGGREGATIONS.contains(&lower.as_str())
                || next == Some('('));
            if LABEL_LISTS.contains(&lower.as_str()) {
                label_list = true;
            } else if selector {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The sample names of a Prometheus text exposition.
fn exposition_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Series Prometheus itself records for every scrape target.
const SCRAPE_SERIES: [&str; 2] = ["up", "scrape_duration_seconds"];

// ---------------------------------------------------------------------------------------------
// Static checks: rules and dashboard.

#[test]
fn every_alert_rule_passes_promtool_and_its_unit_tests() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let dir = root().join("deploy/prometheus");
    let check = output_within(
        {
            let mut c = Command::new(&promtool);
            c.args(["check", "rules", "governor-rules.yml"])
                .current_dir(&dir);
            c
        },
        DEADLINE,
    );
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "promtool check rules:\n{report}");
    let alerts = alert_blocks(&rules_text());
    assert!(
        report.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{report}"
    );

    let test = output_within(
        {
            let mut c = Command::new(&promtool);
            c.args(["test", "rules", "governor-rules.test.yml"])
                .current_dir(&dir);
            c
        },
        DEADLINE,
    );
    let report =
        String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "promtool test rules:\n{report}");
    assert!(report.contains("SUCCESS"), "{report}");

    // Every alert is tested both ways: some eval expects it firing, another expects silence.
    let tests = std::fs::read_to_string(dir.join("governor-rules.test.yml")).unwrap();
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("alertname: ") {
            match lines.get(i + 1) {
                Some(&"exp_alerts: []") => silent.insert(name.to_owned()),
                Some(&"exp_alerts:") => fires.insert(name.to_owned()),
                other => panic!("alertname {name} followed by {other:?}"),
            };
        }
    }
    let names: BTreeSet<String> = alerts.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(fires, names, "alerts with a firing case");
    assert_eq!(silent, names, "alerts with a silent case");

    // The issue's list, each with a severity, a summary and a description naming tb-cli.
    for wanted in [
        "GovernorDown",
        "GovernorIngestStalled",
        "GovernorNoEpochClosed",
        "GovernorIngestHalted",
        "GovernorDecisionWriteFailed",
        "GovernorApplyHookFailed",
        "GovernorGateExited",
        "GovernorGateEntered",
        "GovernorModeChanged",
        "GovernorSignatureRejectionSurge",
        "GovernorDecisionUnsigned",
        "GovernorDecisionUnverified",
        "GovernorProofLatencyOverBudget",
        "GovernorPeerDiverged",
        "GovernorPeerUnreachable",
    ] {
        assert!(names.contains(wanted), "{wanted} missing from the rules");
    }
    for (name, block) in &alerts {
        assert!(block.contains("severity: "), "{name} has no severity");
        assert!(block.contains("summary: "), "{name} has no summary");
        let description = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("description: "))
            .unwrap_or_else(|| panic!("{name} has no description"));
        assert!(
            description.contains("tb-cli governor "),
            "{name}'s description names no tb-cli command: {description}"
        );
    }
}

#[test]
fn promql_names_are_extracted_from_selectors_only() {
    let names = metric_names(
        r#"sum by (gate, action) (increase(governor_intents_total{outcome="created", x=~"a{b}"}[5m]))
           / ignoring (stat) foo:bar_total > 3 * up offset 1h and on() vector(1) - 0.5e3"#,
    );
    let want: BTreeSet<String> = ["governor_intents_total", "foo:bar_total", "up"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, want);
}

#[test]
fn dashboard_is_importable_and_names_only_series_the_daemon_exports() {
    let d = dashboard();
    // Importable as is: a current schema, a Prometheus datasource variable, no fixed uid, no
    // database id.
    assert!(
        d["schemaVersion"].as_u64() >= Some(39),
        "schemaVersion {}",
        d["schemaVersion"]
    );
    assert!(d.get("id").is_none_or(Value::is_null), "a dashboard id");
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["type"] == "datasource"
            && v["query"] == "prometheus"
            && v["name"] == "datasource"),
        "no Prometheus datasource variable: {vars:?}"
    );
    fn datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "datasource" {
                        out.push(v);
                    }
                    datasources(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| datasources(v, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    datasources(&d, &mut refs);
    for r in &refs {
        let builtin = r["type"] == "grafana" && r["uid"] == "-- Grafana --";
        assert!(
            builtin || (r["type"] == "prometheus" && r["uid"] == "${datasource}"),
            "hard-coded datasource {r}"
        );
    }

    // The rows the issue asks for, and well-formed panels.
    let all = panels(&d);
    let rows: Vec<String> = all
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for wanted in [
        "ingest and chain tip",
        "gates",
        "intents",
        "economics",
        "receipt health",
        "blocktorch",
        "rpc and process",
    ] {
        assert!(
            rows.iter().any(|r| r == wanted),
            "row {wanted} missing: {rows:?}"
        );
    }
    let mut ids = BTreeSet::new();
    for p in &all {
        let id = p["id"].as_u64().unwrap();
        assert!(ids.insert(id), "duplicate panel id {id}");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(x + w <= 24, "panel {} overflows the grid", p["title"]);
        if p["type"] != "row" {
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
            let refs: BTreeSet<&str> = targets
                .iter()
                .map(|t| t["refId"].as_str().unwrap())
                .collect();
            assert_eq!(refs.len(), targets.len(), "panel {}: refIds", p["title"]);
        }
    }
    for wanted in [
        "Gate state",
        "Enter streaks",
        "Exit streaks",
        "Block reward",
        "Utilization per market",
        "Provider margin per market",
        "Rejected receipts by reason",
        "Proof latency against budget",
        "RPC requests by method",
        "Resident memory",
    ] {
        assert!(
            all.iter().any(|p| p["title"] == wanted),
            "panel {wanted} missing"
        );
    }

    // Every series a panel or a rule names is one the daemon exports. With a peer configured
    // (nothing listens on port 9), so that the per-peer series exist too.
    let s = Setup::demo();
    s.feed(0..=2);
    let daemon = s.start(&[("TB_GOVERNOR_PEERS", "http://127.0.0.1:9")]);
    daemon.wait_caught_up(2, 3 * L as u64 - 1);
    let m = http_request(&daemon.addr, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(m.status, 200);
    let exported = exposition_names(&m.body);
    let mut used = BTreeMap::new();
    for (title, expr, _) in dashboard_queries(&d) {
        for name in metric_names(&expr) {
            used.insert(name, format!("panel {title:?}: {expr}"));
        }
    }
    for (alert, block) in alert_blocks(&rules_text()) {
        let expr = expr_of(&block);
        for name in metric_names(&expr) {
            used.insert(name, format!("alert {alert}: {expr}"));
        }
    }
    for (name, whence) in &used {
        assert!(
            exported.contains(name) || SCRAPE_SERIES.contains(&name.as_str()),
            "{name} is not exported by the daemon ({whence})\n--- /metrics\n{}",
            m.body
        );
    }
    for needed in [
        "governor_gate_state",
        "governor_gate_enter_streak",
        "governor_intents_total",
        "economics_block_reward_per_block",
        "economics_prev_market_metrics_provider_margin_ppm",
        "receipt_validation_errors_total",
        "proof_verification_budget_seconds",
        "governor_rpc_requests_total",
        "process_resident_memory_bytes",
        "governor_ingest_stalled",
        "up",
    ] {
        assert!(used.contains_key(needed), "{needed} is used nowhere");
    }
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus.

/// A `prometheus` server on loopback, killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` scraping `target` every second, evaluating the rules file every
    /// second, storing into `dir`.
    fn start(exe: &Path, dir: &Path, target: &str) -> Prometheus {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let rules = root().join("deploy/prometheus/governor-rules.yml");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules:?}\n\
                 scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n",
                rules = rules.display().to_string()
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(exe)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus: {e}"));
        Prometheus { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` of the HTTP API; `None` while it does not answer JSON.
    fn get(&self, path: &str) -> Option<Value> {
        http_request(&self.addr, "GET", path, &[], b"")
            .ok()?
            .json_opt()
    }

    /// An instant query: its `data`, after checking the API reports success.
    fn query(&self, expr: &str) -> Value {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let v = wait_until(
            "the Prometheus API to answer",
            DEADLINE,
            || self.get(&path),
            || self.log(),
        );
        assert_eq!(v["status"], "success", "query {expr}: {v}");
        v["data"].clone()
    }

    /// The single value of an instant query (as Prometheus writes it), if it returned exactly
    /// one sample.
    fn value(&self, expr: &str) -> Option<String> {
        let data = self.query(expr);
        match data["result"].as_array()?.as_slice() {
            [one] => Some(one["value"][1].as_str()?.to_owned()),
            _ => None,
        }
    }

    /// Polls until `expr` has the single value `want`.
    fn wait_value(&self, expr: &str, want: &str) {
        wait_until(
            &format!("Prometheus to see {expr} = {want}"),
            DEADLINE,
            || (self.value(expr).as_deref() == Some(want)).then_some(()),
            || {
                format!(
                    "last: {:?}\n--- prometheus log\n{}",
                    self.value(expr),
                    self.log()
                )
            },
        );
    }

    /// The alerts Prometheus holds: name → state (pending / firing).
    fn alerts(&self) -> BTreeMap<String, String> {
        let v = self.get("/api/v1/alerts").unwrap_or_default();
        v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["labels"]["alertname"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- prometheus log ({})\n{}",
                self.log.display(),
                self.log()
            );
        }
    }
}

/// Percent-encodes a query-string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_daemon_evaluates_every_rule_and_panel_and_sees_a_stall() {
    let Some(exe) = tool("prometheus") else {
        return;
    };
    let s = Setup::demo();
    s.feed(0..=3);
    let d = s.start(&[]);
    d.wait_caught_up(3, 4 * L as u64 - 1);
    // One refused call, so the RPC error series exists before the first scrape.
    let refused = rpc_call(
        &d.addr,
        "governor.submit_exit",
        json!({"gate": "storage", "reason": "r", "operator": "o"}),
    );
    assert_eq!(refused["error"]["code"], -33009, "{refused}");

    let prom = Prometheus::start(&exe, &s.dir, &d.addr);
    prom.wait_value(&format!("up{{job=\"{JOB}\"}}"), "1");
    prom.wait_value("governor_last_closed_epoch", "3");

    // Epochs close while Prometheus scrapes: two at a time, each batch seen in Prometheus. The
    // demo's storage and economics gates exit at epoch 5 and storage enters again at 9; the
    // mode turns to apply halfway.
    for (first, last) in [(4, 5), (6, 7), (8, 9), (10, 11)] {
        s.feed(first..=last);
        prom.wait_value("governor_last_closed_epoch", &last.to_string());
        if last == 7 {
            let r = d.cli(&[
                "mode",
                "apply",
                "--reason",
                "observability test",
                "--operator",
                "e2e",
                "--token",
                TOKEN,
            ]);
            assert_eq!(r.code, Some(0), "{r:?}");
            prom.wait_value("governor_mode{mode=\"apply\"}", "1");
        }
    }

    // Every rule evaluates cleanly, and exactly the alerts this launch calls for are active.
    let rules = wait_until(
        "every rule to be evaluated",
        DEADLINE,
        || {
            let v = prom.get("/api/v1/rules")?;
            let rules: Vec<Value> = v["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            rules.iter().all(|r| r["health"] == "ok").then_some(rules)
        },
        || prom.log(),
    );
    assert_eq!(rules.len(), alert_blocks(&rules_text()).len(), "{rules:?}");
    let expected: BTreeSet<String> = [
        "GovernorDecisionUnsigned",
        "GovernorGateEntered",
        "GovernorGateExited",
        "GovernorModeChanged",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut returned = BTreeSet::new();
    for rule in &rules {
        let name = rule["name"].as_str().unwrap();
        let data = prom.query(rule["query"].as_str().unwrap());
        assert_eq!(data["resultType"], "vector", "{name}: {data}");
        if !data["result"].as_array().unwrap().is_empty() {
            returned.insert(name.to_owned());
        }
        for sample in data["result"].as_array().unwrap() {
            assert_eq!(sample["metric"]["job"], JOB, "{name}: {sample}");
            assert_eq!(sample["metric"]["instance"].as_str(), Some(d.addr.as_str()));
        }
    }
    assert_eq!(
        returned, expected,
        "alert expressions that returned samples"
    );
    let active = wait_until(
        "Prometheus to hold exactly the expected alerts",
        DEADLINE,
        || {
            let a = prom.alerts();
            (a.keys().cloned().collect::<BTreeSet<_>>() == expected).then_some(a)
        },
        || format!("{:?}", prom.alerts()),
    );
    assert!(active.values().all(|s| s == "firing"), "{active:?}");
    let exits = prom.query("governor_intents_total{action=\"exit\",outcome=\"created\"} > 0");
    let gates: BTreeSet<&str> = exits["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["metric"]["gate"].as_str())
        .collect();
    assert_eq!(gates, BTreeSet::from(["economics", "storage"]), "{exits}");

    // Every dashboard query parses and returns finite samples carrying its legend's labels.
    for (title, expr, legend) in dashboard_queries(&dashboard()) {
        let data = prom.query(&concrete(&expr));
        assert_eq!(data["resultType"], "vector", "{title}: {expr}: {data}");
        let result = data["result"].as_array().unwrap();
        assert!(!result.is_empty(), "panel {title:?} has no data: {expr}");
        let labels: Vec<&str> = legend
            .split("{{")
            .skip(1)
            .filter_map(|p| p.split("}}").next())
            .map(str::trim)
            .collect();
        for sample in result {
            let v: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
            assert!(v.is_finite(), "panel {title:?}: {expr} = {v}");
            for l in &labels {
                assert!(
                    sample["metric"][l].is_string(),
                    "panel {title:?}: legend label {l} missing in {sample}"
                );
            }
        }
    }

    // The chain stalls: a line that is not a block. The stall alert turns pending.
    s.append(b"this is not a block\n");
    d.wait_status("ingestion to stall", |st| !st["ingest"]["stall"].is_null());
    prom.wait_value("governor_ingest_stalled", "1");
    let state = wait_until(
        "GovernorIngestStalled to be pending",
        DEADLINE,
        || prom.alerts().get("GovernorIngestStalled").cloned(),
        || format!("{:?}", prom.alerts()),
    );
    assert_eq!(state, "pending", "for: 2m keeps it pending at first");
}

// ---------------------------------------------------------------------------------------------
// The status page in headless Chromium.

/// `chromium --headless … <extra> <url>` with a fresh profile.
fn chromium(exe: &Path, profile: &Path, extra: &[String], url: &str) -> Output {
    let mut c = Command::new(exe);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    let out = output_within(c, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "chromium {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `1234567` → `1,234,567` (the page's grouping).
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The part of `dom` from `marker` to the next `end`.
fn section<'a>(dom: &'a str, marker: &str, end: &str) -> &'a str {
    let start = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page:\n{dom}"));
    let rest = &dom[start..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[test]
fn status_page_shows_the_status_in_headless_chromium() {
    let Some(exe) = tool("chromium") else {
        return;
    };
    let s = Setup::demo();
    // Through epoch 9: storage has just entered again, so an intent is pending.
    s.feed(0..=9);
    let d = s.start(&[("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", NODE_KEY)]);
    let st = d.wait_caught_up(9, 10 * L as u64 - 1);
    let url = format!("{}/", d.url);

    // Plain HTTP: HTML, no token needed (one is configured).
    let r = http_request(&d.addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(&exe, profile.path(), &["--dump-dom".to_owned()], &url);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    for needle in [
        "id=\"mode\">shadow<".to_owned(),
        "id=\"last-closed-epoch\">9<".to_owned(),
        format!("id=\"tip-height\">{}<", st["tip_height"]),
        format!(
            "id=\"decision-hash\">{}<",
            st["release_provenance"]["decision_hash"].as_str().unwrap()
        ),
        format!(
            "id=\"keyid\">keyid {}<",
            st["release_provenance"]["attestation"].as_str().unwrap()
        ),
        "id=\"verified\">yes<".to_owned(),
        ">verified<".to_owned(),
        format!(
            "id=\"tx-count\">{}<",
            group(st["economics"]["tx_count"].as_u64().unwrap())
        ),
        format!(
            "id=\"pending-count\">{}<",
            st["pending_intents"].as_array().unwrap().len()
        ),
    ] {
        assert!(dom.contains(&needle), "{needle} not in the page:\n{dom}");
    }
    assert_eq!(st["release_provenance"]["verified"], true, "{st}");
    let pending = st["pending_intents"].as_array().unwrap();
    assert!(!pending.is_empty(), "{st}");
    for i in pending {
        assert!(
            dom.contains(i["id"].as_str().unwrap()),
            "{i} not in:\n{dom}"
        );
    }
    let gates = st["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 8);
    for g in gates {
        let row = section(
            &dom,
            &format!("data-gate=\"{}\"", g["name"].as_str().unwrap()),
            "</tr>",
        );
        for needle in [
            format!(">{}<", g["state"].as_str().unwrap()),
            format!("enter {}/{}", g["enter_streak"], g["enter_streak_required"]),
            format!("exit {}/{}", g["exit_streak"], g["exit_streak_required"]),
        ] {
            assert!(row.contains(&needle), "{needle} not in the row: {row}");
        }
    }
    let accepted: u64 = st["receipt_health"]["accepted"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let table = section(&dom, "id=\"receipts-accepted\"", "</table>");
    assert!(
        table.contains(&format!("<th>{}</th>", group(accepted))),
        "{table}"
    );
    for (reason, n) in st["receipt_health"]["rejected"].as_object().unwrap() {
        let row = section(&dom, &format!("data-key=\"{reason}\""), "</tr>");
        assert!(
            row.contains(&format!(">{}<", group(n.as_u64().unwrap()))),
            "{row}"
        );
    }
    // The charts: one point per closed epoch, 0 to 9.
    for chart in [
        "chart-block-reward",
        "chart-tx-count",
        "chart-tx-volume",
        "chart-treasury-inflow",
    ] {
        let fig = section(&dom, &format!("id=\"{chart}\""), "</figure>");
        assert!(fig.contains("epochs 0–9"), "{fig}");
        let points = fig
            .split("points=\"")
            .nth(1)
            .and_then(|p| p.split('"').next())
            .unwrap();
        assert_eq!(points.split(' ').count(), 10, "{chart}: {points}");
    }
    let fig = section(&dom, "id=\"chart-utilization\"", "</figure>");
    assert_eq!(fig.matches("<polyline").count(), 4, "{fig}");

    // The screenshot the README shows.
    let shot = profile.path().join("status-page.png");
    chromium(
        &exe,
        profile.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600".to_owned(),
            "--run-all-compositor-stages-before-draw".to_owned(),
        ],
        &url,
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let dim = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    assert_eq!((dim(16), dim(20)), (1200, 1600), "PNG size");
    if std::env::var("TB_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = root().join("docs/img/status-page.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::copy(&shot, &docs).unwrap();
        eprintln!("wrote {}", docs.display());
    }

    // A stall whose message echoes chain text: shown, and escaped (no element is injected).
    s.append(b"{\"<img src=x onerror=alert(1)>\": 1}\n");
    d.wait_status("ingestion to stall", |st| !st["ingest"]["stall"].is_null());
    let dom = chromium(&exe, profile.path(), &["--dump-dom".to_owned()], &url);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let banner = section(&dom, "id=\"stall\"", "</div>");
    assert!(
        banner.contains("STALLED: blocks-000000.jsonl:201"),
        "{banner}"
    );
    assert!(
        banner.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{banner}"
    );
    assert!(
        !dom.contains("<img"),
        "markup from the chain reached the page:\n{dom}"
    );
}

// ---------------------------------------------------------------------------------------------
// Completions, manual pages, --watch.

#[test]
fn completions_and_manual_pages_come_from_the_real_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let bash = run_expect("tb-governor", &["completions", "bash"], cwd, &[], 0);
    for needle in [
        "_tb__governor()",
        "simulate",
        "replay",
        "keygen",
        "--epoch-blocks",
        "completions",
    ] {
        assert!(
            bash.stdout.contains(needle),
            "{needle} not in:\n{}",
            bash.stdout
        );
    }
    // The script is valid bash.
    let script = cwd.join("tb-governor.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    let cli = run_expect("tb-cli", &["completions", "bash"], cwd, &[], 0);
    for needle in [
        "_tb__cli()",
        "governor",
        "status",
        "--watch",
        "--interval",
        "intents",
    ] {
        assert!(
            cli.stdout.contains(needle),
            "{needle} not in:\n{}",
            cli.stdout
        );
    }
    let zsh = run_expect("tb-cli", &["completions", "zsh"], cwd, &[], 0);
    assert!(zsh.stdout.starts_with("#compdef tb-cli"), "{}", zsh.stdout);
    let fish = run_expect("tb-governor", &["completions", "fish"], cwd, &[], 0);
    assert!(
        fish.stdout.contains("complete -c tb-governor"),
        "{}",
        fish.stdout
    );
    let bad = run("tb-governor", &["completions", "tcsh"], cwd, &[]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(
        bad.stderr.contains("bash"),
        "the error lists the shells: {}",
        bad.stderr
    );

    let page = run_expect("tb-governor", &["man"], cwd, &[], 0);
    assert!(page.stdout.starts_with(".ie"), "{}", page.stdout);
    assert!(page.stdout.contains(".TH tb-governor 1"), "{}", page.stdout);
    for needle in [".SH NAME", ".SH SUBCOMMANDS", "tb\\-governor\\-run(1)"] {
        assert!(
            page.stdout.contains(needle),
            "{needle} not in:\n{}",
            page.stdout
        );
    }
    let dir = cwd.join("man");
    let listed = run_expect("tb-cli", &["man", "--out", "man"], cwd, &[], 0);
    for name in [
        "tb-cli.1",
        "tb-cli-governor.1",
        "tb-cli-governor-status.1",
        "tb-cli-completions.1",
    ] {
        assert!(
            dir.join(name).is_file(),
            "{name} not written: {}",
            listed.stdout
        );
        assert!(listed.stdout.contains(name), "{}", listed.stdout);
    }
    let status = std::fs::read_to_string(dir.join("tb-cli-governor-status.1")).unwrap();
    assert!(status.contains("\\-\\-watch"), "{status}");
    assert!(status.contains("\\-\\-interval"), "{status}");
}

/// Appends lines from `rx` to `text` until `done(text)`, at most [`DEADLINE`].
fn read_until(
    rx: &std::sync::mpsc::Receiver<String>,
    text: &mut String,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    let start = Instant::now();
    while !done(text) {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}:\n{text}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            text.push_str(&line);
            text.push('\n');
        }
    }
}

#[test]
fn status_watch_redraws_until_interrupted() {
    let s = Setup::demo();
    s.feed(0..=2);
    let mut d = s.start(&[]);
    d.wait_caught_up(2, 3 * L as u64 - 1);

    // Flag checks.
    let r = d.cli(&["status", "--interval", "1"]);
    assert_eq!(r.code, Some(2), "--interval needs --watch: {r:?}");
    let r = d.cli(&["status", "--watch", "--json"]);
    assert_eq!(r.code, Some(2), "--watch and --json conflict: {r:?}");

    let mut cmd = Command::new(bin("tb-cli"));
    cmd.args([
        "governor",
        "status",
        "--watch",
        "--interval",
        "1",
        "--rpc",
        &d.url,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    clean_env(&mut cmd, &[]);
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let frames = |t: &str| t.matches("Every 1 s: tb-cli governor status").count();
    read_until(&rx, &mut text, "the first frame", |t| {
        t.contains("last closed epoch  2")
    });
    // The chain grows; a later frame shows it.
    s.feed(3..=4);
    read_until(&rx, &mut text, "a frame showing epoch 4", |t| {
        t.contains("last closed epoch  4")
    });
    let seen = frames(&text);
    assert!(seen >= 2, "{text}");
    read_until(&rx, &mut text, "one more frame", |t| frames(t) > seen);
    assert!(
        !text.contains('\x1b'),
        "no terminal codes when stdout is a pipe:\n{text}"
    );
    // Every finished frame is a whole status.
    let chunks: Vec<&str> = text.split("Every 1 s: tb-cli governor status").collect();
    for chunk in &chunks[1..chunks.len() - 1] {
        assert!(
            chunk.contains("\n\nLaunch Governor\n") && chunk.contains("BlockTorch job timeline"),
            "a partial frame: {chunk}"
        );
    }

    // The daemon dies: the watch says so and keeps trying; back on the same address, it redraws.
    let addr = d.addr.clone();
    d.kill();
    let mark = text.len();
    read_until(&rx, &mut text, "a frame with the error", |t| {
        t[mark..].contains("(retrying every 1 s)")
    });
    assert!(
        text[mark..].contains("error: cannot reach the governor"),
        "{}",
        &text[mark..]
    );
    let cfg = s.dir.join("gov.toml");
    let conf = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, conf.replace("127.0.0.1:0", &addr)).unwrap();
    let d = s.start(&[]);
    assert_eq!(d.addr, addr);
    let mark = text.len();
    read_until(&rx, &mut text, "a frame from the restarted daemon", |t| {
        t[mark..].contains("last closed epoch  4")
    });

    // Ctrl-C ends it cleanly.
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok);
    let status = wait_until(
        "tb-cli to exit after SIGINT",
        DEADLINE,
        || child.try_wait().ok().flatten(),
        String::new,
    );
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(status.code(), Some(0), "stderr: {err}");
}

/// The page's charts come from memory, not from decision files read per request: after a
/// restart they are seeded once from the files, then follow each close.
#[test]
fn status_page_charts_survive_a_restart_and_follow_new_closes() {
    let s = Setup::demo();
    s.feed(0..=3);
    let mut d = s.start(&[]);
    d.wait_caught_up(3, 4 * L as u64 - 1);
    let page = |d: &Daemon| http_request(&d.addr, "GET", "/", &[], b"").unwrap().body;
    assert!(page(&d).contains("epochs 0–3"), "{}", page(&d));
    d.kill();
    drop(d);

    let d = s.start(&[]);
    let body = page(&d);
    assert!(
        body.contains("epochs 0–3"),
        "seeded from the files at start:\n{body}"
    );
    s.feed(4..=5);
    d.wait_caught_up(5, 6 * L as u64 - 1);
    let body = page(&d);
    assert!(body.contains("epochs 0–5"), "new closes follow:\n{body}");
}

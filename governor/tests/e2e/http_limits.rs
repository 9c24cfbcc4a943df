//! The HTTP front's limits and protocol edges, against the real daemon on `127.0.0.1:0`: every
//! row of the malformed-requests table of docs/rpc.md, the connection cap, and a file table
//! exhausted under the accept loop (EMFILE) that must neither spin nor stop RPC for good.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    http_request, rpc_post, simulate, wait_until, Config, Daemon, HttpResponse, DEADLINE,
};
use serde_json::Value;

/// A status request.
const STATUS: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"governor.status"}"#;

/// A data dir, a one-epoch simulated chain and a config whose `[rpc]` section ends with
/// `rpc_extra`; the temp dir lives as long as this.
struct Fixture {
    config: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn new(rpc_extra: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        simulate(dir, "healthy", 1, 20);
        let config = Config::new(dir, 20)
            .chain(&dir.join("sim/chain"))
            .rpc_extra(rpc_extra)
            .write(&dir.join("gov.toml"));
        Fixture { config, _tmp: tmp }
    }

    fn start(&self) -> Daemon {
        Daemon::start(&self.config, &self.config.with_extension("stderr.log"))
    }
}

/// A status request over a fresh connection succeeds.
fn status_ok(addr: &str) -> bool {
    rpc_post(addr, STATUS)
        .ok()
        .and_then(|r| r.json_opt())
        .is_some_and(|v| v.get("result").is_some())
}

// ---------------------------------------------------------------------------------------------
// The protocol table.

/// One row of the table in docs/rpc.md.
#[derive(Debug)]
struct Row {
    line: String,
    method: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
    status: u16,
    answer: String,
}

/// The text of every code span (between backticks) of `cell`, in order.
fn spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// A body as the table writes it: `(empty)`, or a code span where `\xNN` is one byte.
fn body_of(cell: &str) -> Vec<u8> {
    if cell == "(empty)" {
        return Vec::new();
    }
    let text = spans(cell)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("body cell {cell:?} is neither (empty) nor a code span"));
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("\\x") {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let hex = &rest[i + 2..i + 4];
        out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{hex}: {e}")));
        rest = &rest[i + 4..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The rows between the table markers of docs/rpc.md.
fn table() -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rpc.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find("<!-- protocol-table:start -->")
        .expect("docs/rpc.md has the protocol table");
    let end = text
        .find("<!-- protocol-table:end -->")
        .expect("the protocol table ends");
    let mut rows = Vec::new();
    for line in text[start..end].lines().skip(3) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(str::trim)
            .collect();
        assert_eq!(cells.len(), 5, "a row has 5 cells: {line}");
        let request = spans(cells[0]);
        let (method, path) = request[0].split_once(' ').unwrap();
        let content_type = request
            .get(1)
            .and_then(|h| h.strip_prefix("Content-Type: "))
            .unwrap_or("application/json");
        rows.push(Row {
            line: line.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            content_type: content_type.to_owned(),
            body: body_of(cells[1]),
            status: cells[2].parse().unwrap(),
            answer: cells[3].to_owned(),
        });
    }
    rows
}

/// Checks one answer against its row; `Err` says how it differs.
fn check_row(row: &Row, r: &HttpResponse) -> Result<(), String> {
    if r.status != row.status {
        return Err(format!("HTTP {} instead of {}", r.status, row.status));
    }
    let answer = row.answer.as_str();
    let spans = spans(answer);
    let json = |what: &str| -> Result<Value, String> {
        r.json_opt()
            .ok_or_else(|| format!("{what}: the body is not JSON: {:?}", r.body))
    };
    if answer == "—" {
        return Ok(());
    }
    if let Some(allow) = spans.first().and_then(|s| s.strip_prefix("Allow: ")) {
        return match r.header("allow") {
            Some(got) if got == allow => Ok(()),
            got => Err(format!("Allow: {got:?} instead of {allow:?}")),
        };
    }
    if answer.starts_with("body ") {
        return if r.body == spans[0] {
            Ok(())
        } else {
            Err(format!("body {:?} instead of {:?}", r.body, spans[0]))
        };
    }
    let v = json("answer")?;
    let want_id: Value = serde_json::from_str(spans.last().copied().unwrap_or("")).unwrap();
    if v["id"] != want_id {
        return Err(format!("id {} instead of {want_id}: {v}", v["id"]));
    }
    if v["jsonrpc"] != "2.0" {
        return Err(format!("no \"jsonrpc\":\"2.0\": {v}"));
    }
    if answer.starts_with("result") {
        return match v.get("result") {
            Some(_) if v.get("error").is_none() => Ok(()),
            _ => Err(format!("no result: {v}")),
        };
    }
    let code: i64 = spans[0].parse().unwrap();
    if v["error"]["code"].as_i64() != Some(code) {
        return Err(format!(
            "error code {} instead of {code}: {v}",
            v["error"]["code"]
        ));
    }
    if v.get("result").is_some() {
        return Err(format!("an error with a result: {v}"));
    }
    Ok(())
}

#[test]
fn every_row_of_the_protocol_table_in_rpc_md_holds() {
    let rows = table();
    assert!(rows.len() >= 30, "the table lost rows: {rows:#?}");
    for needle in [
        "`{}`",
        "id\":{\"n\":1}",
        "id\":1.5",
        "POST /metrics",
        "POST /healthz",
    ] {
        assert!(
            rows.iter().any(|r| r.line.contains(needle)),
            "no row for {needle}"
        );
    }
    let fx = Fixture::new("rps = 1000");
    let mut d = fx.start();
    d.wait_caught_up(0, 19);
    let mut failures = Vec::new();
    for row in &rows {
        let r = http_request(
            &d.addr,
            &row.method,
            &row.path,
            &[("Content-Type", &row.content_type)],
            &row.body,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", row.line));
        if let Err(e) = check_row(row, &r) {
            failures.push(format!("{}\n    {e}", row.line));
        }
    }
    assert!(
        failures.is_empty(),
        "rows of docs/rpc.md the daemon does not answer as written:\n{}",
        failures.join("\n")
    );
    assert!(d.alive(), "the daemon died:\n{}", d.stderr());
    assert!(status_ok(&d.addr));
}

// ---------------------------------------------------------------------------------------------
// The connection cap.

/// An open connection that sent nothing.
fn idle(addr: &str) -> TcpStream {
    TcpStream::connect(addr).unwrap()
}

#[test]
fn connections_over_the_cap_are_refused_fast_and_a_freed_slot_serves_again() {
    let fx = Fixture::new("max_connections = 4");
    let d = fx.start();
    assert!(status_ok(&d.addr));

    let mut held: Vec<TcpStream> = (0..4).map(|_| idle(&d.addr)).collect();
    // The daemon accepts in connection order, so the fifth finds all four places taken.
    let started = Instant::now();
    let r = rpc_post(&d.addr, STATUS).expect("the fifth connection is answered");
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{r:?}");
    assert!(took < Duration::from_secs(1), "refusing took {took:?}");
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    assert!(r.body.contains("rpc.max_connections"), "{r:?}");
    // Still refused while the four stay open: the cap holds, not a one-off.
    let r = rpc_post(&d.addr, STATUS).unwrap();
    assert_eq!(r.status, 503, "{r:?}");

    // Releasing one frees its place.
    drop(held.pop());
    wait_until(
        "a request to succeed after one connection closed",
        DEADLINE,
        || status_ok(&d.addr).then_some(()),
        || d.stderr(),
    );
    // The connection that just succeeded may hold its place a moment after its answer (the
    // server closes it after the client has read it), so the next request may be refused once.
    let m = wait_until(
        "GET /metrics to be served",
        DEADLINE,
        || {
            http_request(&d.addr, "GET", "/metrics", &[], b"")
                .ok()
                .filter(|m| m.status == 200)
        },
        || d.stderr(),
    );
    let refused: u64 = m
        .body
        .lines()
        .find_map(|l| l.strip_prefix("governor_http_connections_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no refusal counter:\n{}", m.body));
    assert!(refused >= 2, "{refused} refusals counted");
    drop(held);
}

// ---------------------------------------------------------------------------------------------
// EMFILE under the accept loop.

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn warnings(d: &Daemon) -> usize {
    d.stderr()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("accepting a connection failed"))
        .count()
}

#[test]
fn a_full_file_table_neither_spins_the_accept_loop_nor_stops_rpc() {
    let fx = Fixture::new("");
    let mut d = fx.start();
    // The chain is decided before the file table fills, so no write meets EMFILE.
    d.wait_caught_up(0, 19);
    // Only 64 descriptors for the daemon, far below the default rpc.max_connections (256).
    let out = Command::new("prlimit")
        .args(["--pid", &d.pid().to_string(), "--nofile=64:64"])
        .output()
        .unwrap_or_else(|e| panic!("prlimit (util-linux) is needed for this test: {e}"));
    assert!(out.status.success(), "prlimit failed: {out:?}");

    // More connections than descriptors: the daemon accepts until `accept` fails with EMFILE;
    // the rest wait in the listen queue.
    let held: Vec<TcpStream> = (0..100).map(|_| idle(&d.addr)).collect();
    wait_until(
        "the daemon to log the failing accept",
        DEADLINE,
        || (warnings(&d) > 0).then_some(()),
        || d.stderr(),
    );

    // (a) Over a bounded window of failing accepts the daemon stays nearly idle; the loop
    // without backoff burned a whole core here.
    let window = Duration::from_secs(2);
    let (before, t0) = (cpu_ticks(d.pid()), Instant::now());
    std::thread::sleep(window); // a measurement window, not a wait for a condition
    let (used, elapsed) = (cpu_ticks(d.pid()) - before, t0.elapsed());
    let budget = ticks_per_second() * elapsed.as_millis() as u64 / 1000 / 10;
    assert!(
        used <= budget,
        "the daemon used {used} clock ticks in {elapsed:?} while accept failed (at most {budget}, \
         10 %)\n{}",
        d.stderr()
    );
    assert!(d.alive(), "the daemon died:\n{}", d.stderr());
    // Logged once per burst, not once per failure (a second burst can start when the daemon
    // briefly frees a descriptor of its own).
    let logged = warnings(&d);
    assert!(logged <= 2, "{logged} warnings:\n{}", d.stderr());

    // (b) Once the connections close, accepting works again and RPC answers.
    drop(held);
    wait_until(
        "RPC to answer after the connections closed",
        DEADLINE,
        || status_ok(&d.addr).then_some(()),
        || d.stderr(),
    );
    assert!(
        d.stderr().contains("accepting connections again"),
        "{}",
        d.stderr()
    );
    let st = d.status();
    assert_eq!(st["last_closed_epoch"], 0, "{st}");
}

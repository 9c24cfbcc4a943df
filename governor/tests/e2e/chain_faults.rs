//! The chain changing under a running daemon, against the real binaries: a dangling link, too
//! many open files, files deleted and recreated, truncated and rewritten, a late file sorting
//! before the current one, the chain directory removed and restored, files changed while the
//! daemon was down, and a line over the 16 MiB limit.
//!
//! Each fault must show as a stall (status `ingest.stall`, the `governor_ingest_stalled` gauge,
//! one log line) naming the file and what changed; no block read before it may be lost; the
//! offline `tb-governor replay` of the same directory must report the same problem; and once the
//! chain is put back the daemon must carry on to the same decision files as the offline replay.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{
    append, files, http_request, run, wait_until, Config, Daemon, Run, Sim, DEADLINE,
};
use serde_json::Value;

/// Blocks per epoch.
const L: usize = 20;
/// The chain file the tests start with, and the next one.
const F0: &str = "blocks-000000.jsonl";
const F1: &str = "blocks-000001.jsonl";

/// A test's directory: a simulated chain (its lines in memory), a watched chain directory the
/// test fills, a data dir and a config.
struct Setup {
    sim: Sim,
    config: PathBuf,
}

impl std::ops::Deref for Setup {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.sim
    }
}

impl Setup {
    /// Simulates `epochs` epochs of the demo scenario and writes the config.
    fn new(epochs: usize) -> Setup {
        let sim = Sim::new("demo", epochs, L);
        std::fs::create_dir_all(sim.path("chain")).unwrap();
        let config = Config::new(&sim.dir, L).write(&sim.path("gov.toml"));
        Setup { sim, config }
    }

    /// `chain/<name>`.
    fn chain(&self, name: &str) -> PathBuf {
        self.dir.join("chain").join(name)
    }

    /// The simulated lines `range`, each with its `\n`.
    fn text(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        self.lines[range].concat().into_bytes()
    }

    /// Appends raw bytes to `chain/<name>` in one write.
    fn append(&self, name: &str, bytes: &[u8]) {
        append(&self.chain(name), bytes);
    }

    /// Replaces `chain/<name>` by a new file (a new inode) holding `bytes`, atomically.
    fn replace(&self, name: &str, bytes: &[u8]) {
        let tmp = self.chain(".replacement");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, self.chain(name)).unwrap();
    }

    /// Truncates `chain/<name>` in place (same inode) and writes `bytes` into it.
    fn rewrite_in_place(&self, name: &str, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.chain(name))
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn start(&self) -> Daemon {
        Daemon::start(&self.config, &self.path("daemon.stderr.log"))
    }

    /// `tb-governor replay` of the chain directory as it is now, with the daemon's journal, into
    /// `out`.
    fn offline(&self, out: &str) -> Run {
        run(
            "tb-governor",
            &[
                "replay",
                "--config",
                self.config.to_str().unwrap(),
                "--journal",
                self.path("data/journal.jsonl").to_str().unwrap(),
                "--out",
                out,
            ],
            &self.dir,
            &[],
        )
    }

    /// The offline replay fails, naming `problem`.
    fn offline_fails_with(&self, out: &str, problem: &str) {
        let r = self.offline(out);
        assert_ne!(r.code, Some(0), "{r:?}");
        assert!(
            r.stderr.contains(problem),
            "the offline replay should report `{problem}`:\n{}",
            r.stderr
        );
    }

    /// The offline replay of the chain directory succeeds and writes exactly the daemon's
    /// decision files.
    fn offline_agrees(&self, out: &str) {
        let r = self.offline(out);
        assert_eq!(r.code, Some(0), "{r:?}");
        let want = files(&self.path("data/decisions"));
        let got = files(&self.path(out).join("decisions"));
        assert!(!want.is_empty());
        assert!(
            got == want,
            "the offline replay's decisions differ from the daemon's"
        );
    }
}

/// How long a change to the chain may take to show in status (the daemon polls every 50 ms).
const PROMPTLY: Duration = Duration::from_secs(15);

/// Waits until status shows a stall containing `what`; returns the stall.
fn wait_stall(d: &Daemon, what: &str) -> String {
    let st = d.wait_status_within(&format!("a stall naming `{what}`"), PROMPTLY, |st| {
        st["ingest"]["stall"]
            .as_str()
            .is_some_and(|s| s.contains(what))
    });
    st["ingest"]["stall"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the stall is gone.
fn wait_unstalled(d: &Daemon) -> Value {
    d.wait_status_within("the stall to clear", PROMPTLY, |st| {
        st["ingest"]["stall"].is_null()
    })
}

/// The value of the unlabelled sample `name` on `/metrics`.
fn metric(d: &Daemon, name: &str) -> String {
    let m = http_request(&d.addr, "GET", "/metrics", &[], b"").unwrap();
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{}", m.body))
}

/// Polls status until `polls` ingest polls (50 ms each) have certainly passed: for assertions
/// that something did not happen again.
fn let_polls_pass(d: &Daemon, polls: u32) {
    let since = Instant::now();
    wait_until(
        "ingest polls to pass",
        DEADLINE,
        || {
            (d.status_raw().is_some() && since.elapsed() >= Duration::from_millis(50) * polls)
                .then_some(())
        },
        || d.stderr(),
    );
}

/// How often the daemon's log has `needle`.
fn log_count(d: &Daemon, needle: &str) -> usize {
    d.stderr().matches(needle).count()
}

/// How many `ingest stalled` warnings of the daemon's log carry the stall text `stall`.
fn stall_logs(d: &Daemon, stall: &str) -> usize {
    let field = format!(" stall={stall}");
    d.stderr()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("ingest stalled") && l.ends_with(&field))
        .count()
}

#[test]
fn a_dangling_link_is_a_named_stall_and_no_block_read_before_it_is_lost() {
    let s = Setup::new(6);
    s.append(F0, &s.text(0..30));
    let d = s.start();
    d.wait_status("tip 29", |st| st["tip_height"] == 29);
    assert_eq!(metric(&d, "governor_ingest_stalled"), "0");

    // A dangling link sorting after the current file: every listing of the directory fails.
    std::fs::create_dir(s.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(s.path("elsewhere/rest.jsonl"), s.chain(F1)).unwrap();
    let problem = format!("{F1}: symbolic link cannot be followed");
    let stall = wait_stall(&d, &problem);
    assert!(stall.contains("No such file or directory"), "{stall}");
    assert_eq!(metric(&d, "governor_ingest_stalled"), "1");

    // Lines appended to the current file meanwhile are read before the listing fails again: they
    // are applied (closing epochs 1 and 2), not lost, and the stall stays.
    s.append(F0, &s.text(30..60));
    let st = d.wait_caught_up(2, 59);
    assert_eq!(st["ingest"]["stall"], stall, "{st}");

    // Retried at every poll, logged once.
    let_polls_pass(&d, 10);
    assert_eq!(stall_logs(&d, &stall), 1, "{}", d.stderr());

    // The offline replay of the same directory reports the same link.
    s.offline_fails_with("offline-stalled", &problem);

    // The link's target appears: the chain goes on through it.
    std::fs::write(s.path("elsewhere/rest.jsonl"), s.text(60..120)).unwrap();
    let st = d.wait_caught_up(5, 119);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    assert_eq!(st["ingest"]["file"], F1, "{st}");
    assert_eq!(metric(&d, "governor_ingest_stalled"), "0");
    assert_eq!(log_count(&d, "ingest resumed"), 1, "{}", d.stderr());
    drop(d);
    s.offline_agrees("offline");
}

/// The file offset of `pid`'s open descriptor on `file`, if it has one (from `/proc`).
fn read_offset(pid: u32, file: &Path) -> Option<u64> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let entry = entry.ok()?;
        if std::fs::read_link(entry.path()).ok().as_deref() != Some(file) {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))
        .ok()?;
        return info
            .lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|v| v.trim().parse().ok());
    }
    None
}

/// Sets the soft limit on open files of process `pid` with `prlimit`.
fn limit_open_files(pid: u32, soft: &str) {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .output()
        .unwrap_or_else(|e| panic!("prlimit (util-linux) is needed for this test: {e}"));
    assert!(out.status.success(), "prlimit failed: {out:?}");
}

#[test]
fn too_many_open_files_while_listing_loses_no_block_and_is_retried() {
    let s = Setup::new(6);
    s.append(F0, &s.text(0..30));
    let d = s.start();
    d.wait_status("tip 29", |st| st["tip_height"] == 29);
    let pid = d.pid();
    let soft = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();

    // No new descriptor for the daemon: listing the chain directory fails with EMFILE (and the
    // RPC server cannot accept, so the log and /proc are what show the daemon's progress).
    limit_open_files(pid, "3");
    let emfile = |d: &Daemon| {
        d.stderr()
            .lines()
            .filter(|l| l.contains("ingest stalled") && l.contains("Too many open files"))
            .count()
    };
    wait_until(
        "the listing to fail",
        PROMPTLY,
        || (emfile(&d) > 0).then_some(()),
        || d.stderr(),
    );
    // Blocks appended meanwhile (not closing an epoch: that needs new files) are read through
    // the open file, and the listing after them fails again in the same step.
    s.append(F0, &s.text(30..35));
    let end = s.text(0..35).len() as u64;
    wait_until(
        "the appended blocks to be read",
        PROMPTLY,
        || (read_offset(pid, &s.chain(F0)) == Some(end)).then_some(()),
        || d.stderr(),
    );
    let since = Instant::now();
    wait_until(
        "ten more polls",
        DEADLINE,
        || (since.elapsed() >= Duration::from_millis(500)).then_some(()),
        String::new,
    );
    assert_eq!(emfile(&d), 1, "retried, logged once:\n{}", d.stderr());
    limit_open_files(pid, &soft);

    // Back to normal: nothing was skipped.
    s.append(F0, &s.text(35..120));
    let st = d.wait_caught_up(5, 119);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    assert_eq!(st["tip_height"], 119, "{st}");
    drop(d);
    s.offline_agrees("offline");
}

#[test]
fn files_changed_under_the_daemon_are_named_stalls_until_put_back() {
    let s = Setup::new(6);
    let read = s.text(0..50);
    s.append(F0, &read);
    let d = s.start();
    d.wait_caught_up(1, 49);

    // Deleted and recreated under the same name with other blocks.
    std::fs::remove_file(s.chain(F0)).unwrap();
    s.append(F0, &s.text(1..51));
    let stall = wait_stall(
        &d,
        &format!("{F0}: line 50, already read, now holds different bytes (rewritten or replaced)"),
    );
    assert_eq!(metric(&d, "governor_ingest_stalled"), "1");
    assert_eq!(stall_logs(&d, &stall), 1, "{}", d.stderr());
    s.offline_fails_with("offline-a", &format!("{F0}:1: height: expected 0, found 1"));
    // Put back (as a new file with the same bytes): reading goes on.
    s.replace(F0, &read);
    let st = wait_unstalled(&d);
    assert_eq!(st["tip_height"], 49, "{st}");
    assert_eq!(metric(&d, "governor_ingest_stalled"), "0");

    // Truncated and rewritten shorter, in place.
    s.rewrite_in_place(F0, &s.text(5..15));
    wait_stall(
        &d,
        &format!(
            "{F0}: now {} bytes, shorter than the {} bytes already read (truncated or replaced)",
            s.text(5..15).len(),
            read.len()
        ),
    );
    s.offline_fails_with("offline-b", &format!("{F0}:1: height: expected 0, found 5"));
    s.rewrite_in_place(F0, &s.text(0..80));
    let st = d.wait_caught_up(3, 79);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");

    // A late file that sorts before the current one.
    s.append(F1, &s.text(80..90));
    d.wait_status("the next file to be read", |st| {
        st["tip_height"] == 89 && st["ingest"]["file"] == F1
    });
    let late = "blocks-0000005.jsonl";
    s.append(late, &s.text(90..100));
    wait_stall(
        &d,
        &format!("{late}: a new chain file that sorts before {F1}, which is already being read"),
    );
    s.offline_fails_with(
        "offline-c",
        &format!("{late}:1: height: expected 80, found 90"),
    );
    std::fs::remove_file(s.chain(late)).unwrap();
    wait_unstalled(&d);

    // The chain directory removed, then restored as a copy (new files, same bytes) that grew.
    let chain = s.path("chain");
    std::fs::rename(&chain, s.path("chain-away")).unwrap();
    let missing = format!("chain directory {} is missing", chain.display());
    wait_stall(&d, &missing);
    s.offline_fails_with("offline-d", &missing);
    std::fs::create_dir(&chain).unwrap();
    for name in [F0, F1] {
        std::fs::copy(s.path("chain-away").join(name), s.chain(name)).unwrap();
    }
    s.append(F1, &s.text(90..120));
    let st = d.wait_caught_up(5, 119);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    assert_eq!(metric(&d, "governor_ingest_stalled"), "0");
    drop(d);
    s.offline_agrees("offline");
}

#[test]
fn files_changed_while_the_daemon_was_down_stall_it_on_restart() {
    let s = Setup::new(6);
    let read = s.text(0..50);
    s.append(F0, &read);
    let mut d = s.start();
    d.wait_caught_up(1, 49);
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(s.path("data/state/checkpoint.json")).unwrap())
            .unwrap();
    let pos = &checkpoint["position"];
    assert_eq!(
        (pos["file"].as_str(), pos["line"].as_u64()),
        (Some(F0), Some(51))
    );
    d.kill();

    // The last line read is rewritten (same length) while the daemon is down.
    let mut other = read.clone();
    let at = other.len() - 3;
    other[at] = if other[at] == b'0' { b'1' } else { b'0' };
    s.replace(F0, &other);
    let mut d = s.start();
    wait_stall(
        &d,
        &format!("{F0}: line 50, already read, now holds different bytes (rewritten or replaced)"),
    );
    assert_eq!(metric(&d, "governor_ingest_stalled"), "1");
    d.kill();

    // A chain file sorting before the one being read appears while the daemon is down.
    s.replace(F0, &read);
    s.append("blocks-00000.jsonl", &s.text(0..1));
    let mut d = s.start();
    wait_stall(
        &d,
        &format!(
            "{F0}: the chain files before it are not the ones read before it (0 files then, 1 now"
        ),
    );
    s.offline_fails_with(
        "offline-late",
        &format!("{F0}:1: height: expected 1, found 0"),
    );
    d.kill();

    // Put back: the daemon resumes from its checkpoint and carries on.
    std::fs::remove_file(s.chain("blocks-00000.jsonl")).unwrap();
    let d = s.start();
    assert!(
        d.stderr().contains(&format!(
            "resuming from the checkpoint epoch=1 file={F0} line=51"
        )),
        "{}",
        d.stderr()
    );
    s.append(F0, &s.text(50..120));
    let st = d.wait_caught_up(5, 119);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    drop(d);
    s.offline_agrees("offline");
}

/// The daemon's peak resident memory, in KiB.
fn peak_rss_kib(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", d.pid()))
}

#[test]
fn a_line_over_16_mib_is_a_named_stall_and_memory_stays_bounded() {
    let s = Setup::new(6);
    s.append(F0, &s.text(0..30));
    // A 117 MiB line without a newline after the 30 good ones.
    let block = vec![b'7'; 1 << 20];
    for _ in 0..117 {
        s.append(F0, &block);
    }
    let problem =
        format!("{F0}:31: line longer than 16777216 bytes (the longest a chain line may be)");
    for newline in [false, true] {
        if newline {
            s.append(F0, b"\n");
        }
        let mut d = s.start();
        let stall = wait_stall(&d, &problem);
        let st = d.status();
        assert_eq!(st["tip_height"], 29, "{st}");
        assert_eq!(metric(&d, "governor_ingest_stalled"), "1");
        // Retried without reading the line again while the file is unchanged: logged once.
        let_polls_pass(&d, 10);
        assert_eq!(stall_logs(&d, &stall), 1, "{}", d.stderr());
        // Measured after those polls, so every reader of the chain (ingest and the receipt
        // backlog) has met the line several times.
        let peak = peak_rss_kib(&d);
        assert!(
            peak < 100 * 1024,
            "peak RSS {peak} KiB with a 117 MiB line (newline {newline})"
        );
        s.offline_fails_with(&format!("offline-{newline}"), &problem);
        d.kill();
    }

    // Fixed: the chain goes on from line 31.
    let d = s.start();
    wait_stall(&d, &problem);
    s.rewrite_in_place(F0, &s.text(0..120));
    let st = d.wait_caught_up(5, 119);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    drop(d);
    s.offline_agrees("offline");
}

//! Closed pipes and clear messages, on the real binaries.
//!
//! A reader that goes away (`… | head -1`) must never make a command panic, and never cut short
//! one that writes files: `replay` and `demo` finish writing every file, and a command that only
//! prints exits with its usual code and says nothing about the pipe. The tests close the pipe in
//! two ways: before the first line (so the very first print fails, every time) and after reading
//! one line (what `head -1` does). Error messages name numbers as written, the record file
//! rather than its temp file, each cause once, and a key file's mode by the bits it grants.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{
    bin, clean_env, on_sim, rpc_post, run_expect, simulate, tree, wait_until, Daemon, Lock,
    DEADLINE,
};
use tb_decisions::Signer;

const SEED_HEX: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// When the test closes the command's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// Before the command prints anything.
    AtStart,
    /// After reading its first line, as `head -1` does.
    AfterFirstLine,
    /// Stdout and stderr both, before anything is printed (`2>&1 | head -0`).
    BothAtStart,
}

/// A command run whose stdout was closed.
#[derive(Debug)]
struct Closed {
    code: Option<i32>,
    first_line: String,
    stderr: String,
}

impl Closed {
    /// Panics unless the command exited with `code` and said nothing about the pipe.
    fn assert_quiet(&self, what: &str, code: i32) {
        assert_eq!(self.code, Some(code), "{what}: exit code\n{}", self.stderr);
        for bad in ["panicked", "Broken pipe", "failed printing"] {
            assert!(
                !self.stderr.contains(bad),
                "{what}: stderr mentions {bad:?}:\n{}",
                self.stderr
            );
        }
    }
}

/// Runs `name args` in `cwd` with a `TB_*`-free environment plus `env`, closing its stdout as
/// `close` says, and waits for it.
fn run_closed(name: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)], close: Close) -> Closed {
    let mut cmd = Command::new(bin(name));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clean_env(&mut cmd, env);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let mut first_line = String::new();
    match close {
        Close::AtStart => drop(stdout),
        Close::BothAtStart => {
            drop(stdout);
            drop(stderr_pipe);
            let status = child.wait().unwrap();
            return Closed {
                code: status.code(),
                first_line,
                stderr: String::new(),
            };
        }
        Close::AfterFirstLine => {
            BufReader::new(stdout).read_line(&mut first_line).unwrap();
        }
    }
    let mut stderr = String::new();
    stderr_pipe.read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    Closed {
        code: status.code(),
        first_line,
        stderr,
    }
}

/// Every directory and file under `dir`, by path relative to it, with its bytes; data-directory
/// `LOCK` files are left out (they hold the PID of the process that last wrote the directory).
type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// Panics unless `dir` holds exactly the files of `want`, byte for byte.
fn assert_same_files(what: &str, want: &Tree, dir: &Path) {
    let got = tree(dir, Lock::Skip);
    let names = |t: &Tree| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(want), "{what}: the same files");
    for (name, bytes) in want {
        assert!(got[name] == *bytes, "{what}: {} differs", name.display());
    }
}

/// `tb-governor replay` of `dir/sim` into `out` (signed).
fn replay_args(out: &str) -> Vec<&str> {
    on_sim(&["replay"], &["--epoch-blocks", "20", "--out", out])
}

const SIGNED: &[(&str, &str)] = &[("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", SEED_HEX)];

fn public_key() -> String {
    Signer::from_seed_hex(SEED_HEX, "test")
        .unwrap()
        .public_key_hex()
}

#[test]
fn replay_writes_every_file_when_its_stdout_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    let full = run_expect("tb-governor", &replay_args("full"), dir, SIGNED, 0);
    let want = tree(&dir.join("full"), Lock::Skip);
    assert_eq!(
        want.values().filter(|bytes| bytes.is_some()).count(),
        18,
        "6 snapshots, 6 decisions, 6 sidecars: {want:?}"
    );
    assert!(full.stdout.lines().count() > 6, "{}", full.stdout);

    let head = run_closed(
        "tb-governor",
        &replay_args("head"),
        dir,
        SIGNED,
        Close::AfterFirstLine,
    );
    head.assert_quiet("replay | head -1", 0);
    assert_eq!(
        head.first_line,
        full.stdout.lines().next().unwrap().to_owned() + "\n"
    );
    assert_same_files("replay | head -1", &want, &dir.join("head"));

    let closed = run_closed(
        "tb-governor",
        &replay_args("closed"),
        dir,
        SIGNED,
        Close::AtStart,
    );
    closed.assert_quiet("replay with stdout closed", 0);
    assert_same_files("replay with stdout closed", &want, &dir.join("closed"));

    let both = run_closed(
        "tb-governor",
        &replay_args("both"),
        dir,
        SIGNED,
        Close::BothAtStart,
    );
    assert_eq!(both.code, Some(0), "replay with stdout and stderr closed");
    assert_same_files(
        "replay with stdout and stderr closed",
        &want,
        &dir.join("both"),
    );
}

#[test]
fn demo_writes_every_file_when_its_stdout_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run_expect("tb-governor", &["demo", "--dir", "full"], dir, &[], 0);
    let full = tree(&dir.join("full"), Lock::Skip);
    for (close, sub) in [(Close::AtStart, "closed"), (Close::AfterFirstLine, "head")] {
        let r = run_closed("tb-governor", &["demo", "--dir", sub], dir, &[], close);
        r.assert_quiet(&format!("demo ({close:?})"), 0);
        let got = tree(&dir.join(sub), Lock::Skip);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            full.keys().collect::<Vec<_>>(),
            "demo ({close:?}): the same files"
        );
        let full_dir = dir.join("full").canonicalize().unwrap();
        let sub_dir = dir.join(sub).canonicalize().unwrap();
        for (name, bytes) in &full {
            let Some(bytes) = bytes else {
                continue; // a directory: its name is checked above
            };
            let text = name.to_string_lossy();
            if text == "node.key" || text.ends_with(".sig") {
                continue; // a fresh demo key each run: checked by verify below
            }
            // The config names the demo's own directory.
            let want = String::from_utf8_lossy(bytes).replace(
                &full_dir.display().to_string(),
                &sub_dir.display().to_string(),
            );
            assert!(
                got[name]
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    == Some(want),
                "demo ({close:?}): {text} differs"
            );
        }
        let seed = std::fs::read_to_string(dir.join(sub).join("node.key")).unwrap();
        let key = Signer::from_seed_hex(&seed, "node.key")
            .unwrap()
            .public_key_hex();
        let decisions = format!("{sub}/data/decisions");
        let v = run_expect(
            "tb-cli",
            &[
                "governor",
                "verify",
                "--decisions",
                &decisions,
                "--trusted-key",
                &key,
            ],
            dir,
            &[],
            0,
        );
        assert!(v.stdout.contains("12 match, 0 failed"), "{}", v.stdout);
    }
}

#[test]
fn commands_that_only_print_exit_quietly_when_their_stdout_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    run_expect("tb-governor", &replay_args("out"), dir, SIGNED, 0);
    let key = public_key();
    let verify = [
        "governor",
        "verify",
        "--decisions",
        "out/decisions",
        "--trusted-key",
        &key,
    ];
    let audit = on_sim(
        &["governor", "audit"],
        &["--epoch-blocks", "20", "--decisions", "out/decisions"],
    );
    let with_json = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--json".into());
        v
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("tb-cli", verify.iter().map(|s| s.to_string()).collect()),
        ("tb-cli", with_json(&verify)),
        ("tb-cli", audit.iter().map(|s| s.to_string()).collect()),
        ("tb-cli", with_json(&audit)),
    ];
    for (name, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for close in [Close::AtStart, Close::AfterFirstLine, Close::BothAtStart] {
            let r = run_closed(name, &args, dir, &[], close);
            r.assert_quiet(&format!("{name} {args:?} ({close:?})"), 0);
        }
    }
    // The usual failure code survives a closed stdout: an untrusted key fails verification.
    let untrusted = Signer::from_seed_hex(&"33".repeat(32), "test")
        .unwrap()
        .public_key_hex();
    let untrusted = [
        "governor",
        "verify",
        "--decisions",
        "out/decisions",
        "--trusted-key",
        &untrusted,
    ];
    let r = run_closed("tb-cli", &untrusted, dir, &[], Close::AtStart);
    r.assert_quiet("verify with an untrusted key", 1);
    // An error with stdout and stderr both closed still exits 2, not 101.
    let r = run_closed(
        "tb-cli",
        &[
            "governor",
            "verify",
            "--decisions",
            "missing",
            "--trusted-key",
            &key,
        ],
        dir,
        &[],
        Close::BothAtStart,
    );
    assert_eq!(r.code, Some(2), "an error with nowhere to print it");
    // Commands that write a file and then print: the file is complete.
    let r = run_closed(
        "tb-governor",
        &[
            "simulate",
            "--out",
            "sim2",
            "--scenario",
            "demo",
            "--epochs",
            "6",
            "--epoch-blocks",
            "20",
        ],
        dir,
        &[],
        Close::AtStart,
    );
    r.assert_quiet("simulate with stdout closed", 0);
    assert_same_files(
        "simulate with stdout closed",
        &tree(&dir.join("sim"), Lock::Skip),
        &dir.join("sim2"),
    );
    let r = run_closed(
        "tb-governor",
        &["keygen", "--out", "node.key"],
        dir,
        &[],
        Close::AtStart,
    );
    r.assert_quiet("keygen with stdout closed", 0);
    let seed = std::fs::read_to_string(dir.join("node.key")).unwrap();
    assert!(Signer::from_seed_hex(&seed, "node.key").is_ok(), "{seed:?}");
}

#[test]
fn client_commands_exit_quietly_when_their_stdout_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    let config = daemon_config(dir, "127.0.0.1:0");
    let d = Daemon::start(&config, &dir.join("gov.stderr.log"));
    d.wait_closed(4);
    let snapshot_out = dir.join("snap.json").display().to_string();
    let cases: [&[&str]; 9] = [
        &["status"],
        &["status", "--json"],
        &["intents"],
        &["intents", "--json"],
        &["decisions"],
        &["decisions", "--json"],
        &["snapshot", "--epoch", "1"],
        &["snapshot", "--epoch", "1", "--json"],
        &["snapshot", "--epoch", "1", "--out", &snapshot_out],
    ];
    for case in cases {
        let mut args = vec!["governor"];
        args.extend_from_slice(case);
        args.extend_from_slice(&["--rpc", &d.url]);
        for close in [Close::AtStart, Close::AfterFirstLine] {
            let r = run_closed("tb-cli", &args, dir, &[], close);
            r.assert_quiet(&format!("tb-cli {case:?} ({close:?})"), 0);
        }
    }
    assert!(dir.join("snap.json").exists());
}

/// Writes `gov.toml` for the simulated chain in `dir` with `listen`.
fn daemon_config(dir: &Path, listen: &str) -> PathBuf {
    let config = dir.join("gov.toml");
    std::fs::write(
        &config,
        format!(
            "[governor]\ndata_dir = {:?}\nchain_id = \"tb-sim\"\nepoch_blocks = 20\n\n\
             [chain]\ndir = {:?}\nproviders = {:?}\npoll_ms = 50\n\n\
             [rpc]\nlisten = {listen:?}\n",
            dir.join("data").display().to_string(),
            dir.join("sim/chain").display().to_string(),
            dir.join("sim/providers.json").display().to_string(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn the_daemon_serves_on_with_its_stdout_and_stderr_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    // Its `listening on` line cannot be read, so it gets a port known beforehand: a free one,
    // released just before the daemon binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = daemon_config(dir, &addr);
    let mut cmd = Command::new(bin("tb-governor"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clean_env(&mut cmd, &[]);
    let mut child = cmd.env("RUST_LOG", "debug").spawn().unwrap();
    // Both pipes closed before the daemon writes its first line or log.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = wait_until(
        "epoch 4 to close with stdout and stderr closed",
        DEADLINE,
        || {
            if let Ok(Some(exit)) = child.try_wait() {
                panic!("the daemon exited: {exit}");
            }
            let req = r#"{"jsonrpc":"2.0","id":1,"method":"governor.status"}"#;
            let mut v = rpc_post(&addr, req.as_bytes()).ok()?.json_opt()?;
            let s = v.get_mut("result")?.take();
            (s["last_closed_epoch"].as_u64() >= Some(4)).then_some(s)
        },
        String::new,
    );
    assert_eq!(status["mode"], "shadow", "{status}");
    // It still stops cleanly (its last log lines go nowhere).
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let exit = wait_until(
        "the daemon to exit",
        DEADLINE,
        || child.try_wait().ok().flatten(),
        String::new,
    );
    assert_eq!(exit.code(), Some(0), "{exit}");
}

#[test]
fn a_stdout_that_fails_otherwise_is_reported_and_never_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    run_expect("tb-governor", &replay_args("full"), dir, SIGNED, 0);
    let full = tree(&dir.join("full"), Lock::Skip);
    let full_stdout = |args: &[&str], env: &[(&str, &str)]| {
        let dev_full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut cmd = Command::new(bin(args[0]));
        cmd.args(&args[1..])
            .current_dir(dir)
            .stdout(Stdio::from(dev_full))
            .stderr(Stdio::piped());
        clean_env(&mut cmd, env);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let key = public_key();
    let (code, stderr) = full_stdout(
        &[
            "tb-cli",
            "governor",
            "verify",
            "--decisions",
            "full/decisions",
            "--trusted-key",
            &key,
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: writing to stdout: No space left on device (os error 28)"
    );
    // The replay still writes every file, then reports the lost output.
    let mut args = vec!["tb-governor"];
    args.extend(replay_args("devfull"));
    let (code, stderr) = full_stdout(&args, SIGNED);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: writing to stdout: No space left on device"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_same_files("replay > /dev/full", &full, &dir.join("devfull"));
}

// ---------------------------------------------------------------------------------------------
// Messages.

/// Replaces the first `"tx_count":N` of block `height` in the simulated chain with `literal`.
fn corrupt_tx_count(dir: &Path, height: usize, literal: &str) {
    let path = dir.join("sim/chain/blocks-000000.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[height];
    let start = line.find("\"tx_count\":").unwrap() + "\"tx_count\":".len();
    let end = start + line[start..].find(',').unwrap();
    line.replace_range(start..end, literal);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_rejected_number_is_shown_as_it_was_written() {
    for literal in ["1e6", "18446744073709551616", "-0", "60.0"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        simulate(dir, "demo", 6, 20);
        corrupt_tx_count(dir, 25, literal);
        let r = run_expect("tb-governor", &replay_args("out"), dir, &[], 2);
        let want = format!(
            "blocks-000000.jsonl:26: tx_count: not a plain non-negative decimal integer literal \
             ({literal})"
        );
        assert!(
            r.stderr.contains(&want),
            "{literal}: want {want:?} in:\n{}",
            r.stderr
        );
    }
}

#[test]
fn a_failed_decision_write_names_the_decision_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    // The premise: epoch 0's snapshot fits in 4096 bytes and its decision does not.
    run_expect("tb-governor", &replay_args("full"), dir, &[], 0);
    let size = |p: &str| std::fs::metadata(dir.join(p)).unwrap().len();
    assert!(size("full/snapshots/epoch-00000000000000000000.json") < 4096);
    assert!(size("full/decisions/epoch-00000000000000000000.json") > 4096);
    // A file size limit of 4096 bytes (ulimit -f counts 512-byte blocks; SIGXFSZ ignored so the
    // write fails with EFBIG instead of killing the process): the decision's write stops
    // part-way, as on a full disk.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
        .arg(bin("tb-governor"))
        .args(replay_args("out"))
        .current_dir(dir);
    clean_env(&mut cmd, &[]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = "error: writing out/decisions/epoch-00000000000000000000.json: File too large \
                (os error 27)";
    assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
    assert_eq!(stderr.matches("File too large").count(), 1, "{stderr}");
    assert!(!stderr.contains(".tmp-"), "{stderr}");
    // Nothing half-written is left: no decision, no temp file; the snapshot is complete.
    let left: Vec<PathBuf> = tree(&dir.join("out/decisions"), Lock::Keep)
        .into_keys()
        .filter(|p| p != Path::new(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        std::fs::read(dir.join("out/snapshots/epoch-00000000000000000000.json")).unwrap(),
        std::fs::read(dir.join("full/snapshots/epoch-00000000000000000000.json")).unwrap()
    );
}

#[test]
fn a_loose_key_file_is_described_by_the_access_it_grants() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    run_expect("tb-governor", &["keygen", "--out", "node.key"], dir, &[], 0);
    let key = dir.join("node.key");
    for (mode, grants) in [
        (0o620, "key file mode is 0620, which grants group write;"),
        (0o604, "key file mode is 0604, which grants others read;"),
    ] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = run_expect(
            "tb-governor",
            &replay_args("out"),
            dir,
            &[
                ("TB_GOVERNOR_SIGN", "1"),
                ("TB_GOVERNOR_KEY_FILE", key.to_str().unwrap()),
            ],
            2,
        );
        assert!(r.stderr.contains(grants), "{grants:?} in:\n{}", r.stderr);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
        assert!(!r.stderr.contains("readable"), "{}", r.stderr);
    }
}

#[test]
fn each_cause_is_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "demo", 6, 20);
    // A config error whose message already holds the I/O error it wraps.
    let r = run_expect(
        "tb-governor",
        &["replay", "--config", "missing.toml", "--out", "out"],
        dir,
        &[],
        2,
    );
    assert!(r.stderr.contains("missing.toml"), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        r.stderr
    );
    // A missing key file: named once, with its error once.
    let r = run_expect(
        "tb-governor",
        &replay_args("out"),
        dir,
        &[
            ("TB_GOVERNOR_SIGN", "1"),
            ("TB_GOVERNOR_KEY_FILE", "absent.key"),
        ],
        2,
    );
    assert_eq!(r.stderr.matches("absent.key").count(), 1, "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        r.stderr
    );
}

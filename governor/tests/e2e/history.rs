//! Start-up against the real binaries when it learns the state of `decisions/` from the
//! checkpoint instead of listing it: decisions newer than the checkpoint (found by probing), a
//! checkpoint naming a decision file that is missing or differs (not used: the start lists the
//! directory and replays from genesis), temp files in `decisions/.tmp/`, and a checkpoint written
//! by an older version (used; the start lists the directory once).

use std::path::{Path, PathBuf};

use crate::support::{assert_audit_reproduces, files, wait_until, Config, Daemon, Sim, DEADLINE};
use serde_json::Value;

/// Blocks per epoch of every chain here.
const L: usize = 10;
/// The signing key of the tests that sign.
const KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// A test's directory: a simulated chain, the watched chain directory the test fills, a data
/// dir and a config.
struct Setup {
    /// The simulated chain and the test's directory.
    sim: Sim,
    /// `gov.toml`.
    cfg: PathBuf,
}

impl Setup {
    fn new(epochs: usize) -> Setup {
        let sim = Sim::new("healthy", epochs, L);
        std::fs::create_dir_all(sim.path("chain")).unwrap();
        let cfg = Config::new(&sim.dir, L).write(&sim.path("gov.toml"));
        Setup { sim, cfg }
    }

    fn data(&self) -> PathBuf {
        self.sim.path("data")
    }

    /// Appends the chain lines of `epochs` to the watched chain.
    fn feed(&self, epochs: std::ops::Range<usize>) {
        self.sim.feed(
            "chain/blocks-000000.jsonl",
            epochs.start * L..epochs.end * L,
        );
    }

    fn start(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_env(&self.cfg, &self.sim.path("gov.stderr.log"), env)
    }

    /// Starts the daemon, waits until it has closed epoch `last` (the chain's last fed) and
    /// checkpointed it, and stops it.
    fn run_to(&self, last: u64, env: &[(&str, &str)]) -> String {
        let mut d = self.start(env);
        d.wait_caught_up(last, (last + 1) * L as u64 - 1);
        let cp = self.data().join("state/checkpoint.json");
        wait_until(
            "the checkpoint",
            DEADLINE,
            || (checkpoint(&cp)["epoch"].as_u64() == Some(last)).then_some(()),
            || d.stderr(),
        );
        stop(&mut d)
    }

    fn decision(&self, epoch: u64) -> PathBuf {
        self.data()
            .join(format!("decisions/epoch-{epoch:020}.json"))
    }

    fn sidecar(&self, epoch: u64) -> PathBuf {
        self.data()
            .join(format!("decisions/epoch-{epoch:020}.json.sig"))
    }
}

/// The checkpoint at `path` (`null` while there is none).
fn checkpoint(path: &Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// SIGTERM, a clean exit, and this run's stderr.
fn stop(d: &mut Daemon) -> String {
    d.signal("TERM");
    let exit = d.wait_exit(DEADLINE);
    assert_eq!(exit.code(), Some(0), "{}", d.stderr());
    d.stderr()
}

fn journal(data: &Path) -> Vec<Value> {
    std::fs::read_to_string(data.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn decisions_newer_than_the_checkpoint_are_found_by_probing() {
    let s = Setup::new(4);
    let signing = [("TB_GOVERNOR_SIGN", "1"), ("TB_NODE_KEY_HEX", KEY)];
    let cp_path = s.data().join("state/checkpoint.json");
    s.feed(0..2);
    s.run_to(1, &signing);
    let older = std::fs::read(&cp_path).unwrap();
    s.feed(2..4);
    s.run_to(3, &signing);
    // What a crash leaves after the decision files of epochs 2 and 3 were written, before their
    // sidecars and before the checkpoint that covers them.
    std::fs::write(&cp_path, &older).unwrap();
    for e in [2, 3] {
        std::fs::remove_file(s.sidecar(e)).unwrap();
    }

    // Paused through the environment: the start journals set_mode, which takes effect after
    // the newest decision on disk. Had the start taken the checkpoint's epoch for the newest,
    // epoch 2 would be decided again in paused mode and diverge from its file.
    let mut env = signing.to_vec();
    env.push(("TB_GOVERNOR_ENABLED", "0"));
    let mut d = s.start(&env);
    // Before it listens, the files after the checkpoint are signed.
    for e in 0..=3 {
        assert!(s.sidecar(e).exists(), "epoch {e} unsigned after start");
    }
    let last = journal(&s.data()).pop().unwrap();
    assert_eq!(last["mode"], "paused", "{last}");
    assert_eq!(last["effective_epoch"], 4, "{last}");
    let st = d.wait_caught_up(3, 4 * L as u64 - 1);
    assert_eq!(st["ingest"]["stall"], Value::Null, "{st}");
    let log = stop(&mut d);
    assert!(
        log.contains("resuming from the checkpoint epoch=1 "),
        "{log}"
    );
    assert!(
        log.contains("signed the decision files that had no attestation signed=2 first=2 last=3"),
        "{log}"
    );
    assert!(
        !log.contains("listed"),
        "the start listed decisions/:\n{log}"
    );
    assert_audit_reproduces(&s.sim.dir, &s.cfg, &s.data(), 4);
}

#[test]
fn a_checkpoint_whose_decision_file_is_missing_or_differs_is_not_used() {
    let s = Setup::new(3);
    s.feed(0..3);
    s.run_to(2, &[]);
    let decisions = s.data().join("decisions");
    let reference = files(&decisions);
    let good = std::fs::read(s.decision(2)).unwrap();

    // The file the checkpoint names changed underneath: the checkpoint is not used, and the
    // replay from genesis stops at that file with a divergence.
    let changed = String::from_utf8(good.clone()).unwrap().replacen(
        "\"mode\":\"shadow\"",
        "\"mode\":\"paused\"",
        1,
    );
    std::fs::write(s.decision(2), &changed).unwrap();
    let mut d = s.start(&[]);
    let st = d.wait_status("a halt", |st| !st["ingest"]["stall"].is_null());
    let stall = st["ingest"]["stall"].as_str().unwrap();
    assert!(
        stall
            .starts_with("halted: writing the decision of epoch 2: decision divergence at epoch 2"),
        "{stall}"
    );
    let log = stop(&mut d);
    for want in [
        "checkpoint not used; replaying from genesis error=its decision hash does not match decision file 2",
        "listed the decision files files=3 ",
        "why=no usable checkpoint",
    ] {
        assert!(log.contains(want), "{want:?} not in:\n{log}");
    }
    assert_eq!(std::fs::read_to_string(s.decision(2)).unwrap(), changed);

    // The file is gone: the replay from genesis writes it again, byte for byte.
    std::fs::remove_file(s.decision(2)).unwrap();
    let mut d = s.start(&[]);
    d.wait_caught_up(2, 3 * L as u64 - 1);
    let log = stop(&mut d);
    assert!(
        log.contains("checkpoint not used; replaying from genesis error=its decision file of epoch 2 is missing"),
        "{log}"
    );
    assert!(log.contains("listed the decision files files=2 "), "{log}");
    assert_eq!(files(&decisions), reference);
}

#[test]
fn temp_files_and_a_checkpoint_of_an_older_version() {
    let s = Setup::new(3);
    let data = s.data();
    let cp_path = data.join("state/checkpoint.json");
    s.feed(0..2);
    s.run_to(1, &[]);
    // As an older version wrote them: no count of unsigned decisions in the checkpoint, and its
    // temp files next to the decision files.
    let mut cp = checkpoint(&cp_path);
    assert_eq!(cp["unsigned"], 2, "{cp}");
    assert_eq!(cp["keyid"], Value::Null, "{cp}");
    let obj = cp.as_object_mut().unwrap();
    obj.remove("unsigned");
    obj.remove("keyid");
    std::fs::write(&cp_path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let legacy = data.join("decisions/.tmp-old");
    let temp = data.join("decisions/.tmp/.tmp-new");
    std::fs::write(&legacy, b"{\"epoch\":").unwrap();
    std::fs::write(&temp, b"{\"epoch\":").unwrap();

    // The checkpoint is used; the start lists decisions/ once, removing both temp files.
    let mut d = s.start(&[]);
    assert!(!legacy.exists() && !temp.exists());
    s.feed(2..3);
    d.wait_caught_up(2, 3 * L as u64 - 1);
    wait_until(
        "a checkpoint counting the unsigned decisions",
        DEADLINE,
        || (checkpoint(&cp_path)["unsigned"] == 3).then_some(()),
        || d.stderr(),
    );
    let log = stop(&mut d);
    for want in [
        "resuming from the checkpoint epoch=1 ",
        "listed the decision files files=2 ",
        "why=the checkpoint does not count unsigned decisions (an older version)",
        "removed temp files an interrupted write left removed=1 dir=decisions/.tmp/\n",
        "removed temp files an interrupted write left removed=1 dir=decisions/\n",
    ] {
        assert!(log.contains(want), "{want:?} not in:\n{log}");
    }

    // From the new checkpoint: no listing; the temp directory is still emptied, and the count of
    // unsigned decisions comes from the checkpoint.
    std::fs::write(&temp, b"{").unwrap();
    let mut d = s.start(&[]);
    assert!(!temp.exists(), "{}", temp.display());
    let st = d.status();
    let hint = st["release_provenance"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("; 2 other epochs are unsigned: signing is off"),
        "{hint}"
    );
    let log = stop(&mut d);
    assert!(!log.contains("listed"), "{log}");
    assert!(
        log.contains("removed temp files an interrupted write left removed=1 dir=decisions/.tmp/"),
        "{log}"
    );
}

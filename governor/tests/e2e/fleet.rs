//! The fleet cross-check: daemons on loopback compare their decisions with their peers'.
//!
//! Five daemons follow one simulated chain: two more like the reference (`b1`, `b2`), one with
//! another gate threshold (`c`), and one (`d`) fed a copy of the chain with one receipt changed
//! and re-signed by the simulator's key, so the chain is valid but says something else. Peers are
//! wired in start order (a daemon's URL is known once it listens): `b2` watches `b1`, `c`, `d`;
//! `a` watches all four.

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::Value;

use crate::support::{append, http_request, run, Config, Daemon, Sim};

/// Blocks per epoch, epochs simulated, and the epoch whose receipt `d`'s chain changes.
const BLOCKS: usize = 6;
const EPOCHS: usize = 8;
const TAMPERED_EPOCH: u64 = 5;
/// How often peers are polled.
const POLL_MS: u64 = 200;
/// A node's RPC token (for `peers ack`).
const TOKEN: &str = "fleet-token";

/// `line` with its first receipt's `payment_micro` raised by one and signed again with the
/// provider's simulated key.
fn tamper(sim: &Sim, line: &str) -> String {
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(sim.path("sim/keys.json")).unwrap()).unwrap();
    let mut block: Value = serde_json::from_str(line).unwrap();
    let height = block["height"].as_u64().unwrap();
    let receipt = &mut block["receipts"][0];
    let provider = receipt["provider"].as_str().unwrap().to_owned();
    let paid = receipt["payment_micro"].as_u64().unwrap();
    receipt["payment_micro"] = Value::from(paid + 1);
    let seed = keys["providers"][&provider]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["from_height"].as_u64().unwrap() <= height
                && k["until_height"].as_u64().is_none_or(|u| height < u)
        })
        .unwrap()["seed_hex"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = SigningKey::from_bytes(&hex::decode(seed).unwrap().try_into().unwrap());
    let tb_replay::json::Json::Obj(obj) =
        tb_replay::json::parse(receipt.to_string().as_bytes()).unwrap()
    else {
        panic!("a receipt is an object")
    };
    let message = tb_replay::receipt::signing_message(&obj, "tb-sim", height).unwrap();
    receipt["signature"] = Value::from(hex::encode(key.sign(&message).to_bytes()));
    format!("{block}\n")
}

/// One daemon of the fleet: its chain file and its config.
struct Node {
    /// `chain-<name>/blocks.jsonl`, the file fed to it.
    chain: PathBuf,
    /// Its config file.
    config: PathBuf,
    /// Its stderr log.
    log: PathBuf,
}

fn node(sim: &Sim, name: &str, peers: &[&Daemon], extra: &str) -> Node {
    let dir = &sim.dir;
    let chain = dir.join(format!("chain-{name}"));
    std::fs::create_dir_all(&chain).unwrap();
    let urls: Vec<String> = peers.iter().map(|d| format!("{:?}", d.url)).collect();
    let config = Config::new(dir, BLOCKS)
        .data(&dir.join(format!("data-{name}")))
        .chain(&chain)
        .rpc_extra(&format!("token = {TOKEN:?}"))
        .rpc_extra(&format!(
            "[peers]\nurls = [{}]\npoll_ms = {POLL_MS}\n{extra}",
            urls.join(", ")
        ))
        .write(&dir.join(format!("{name}.toml")));
    Node {
        chain: chain.join("blocks.jsonl"),
        config,
        log: dir.join(format!("{name}.log")),
    }
}

/// The peer of `status` whose URL is `url`.
fn peer<'a>(status: &'a Value, url: &str) -> &'a Value {
    status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["url"] == url)
        .unwrap_or_else(|| panic!("no peer {url} in {status:#}"))
}

fn state_of(status: &Value, url: &str) -> (String, Option<u64>) {
    let p = peer(status, url);
    (
        p["state"].as_str().unwrap().to_owned(),
        p["agreed_through"].as_u64(),
    )
}

/// The sample `name{peer="url"}` on `/metrics`.
fn peer_metric(d: &Daemon, name: &str, url: &str) -> String {
    let m = http_request(&d.addr, "GET", "/metrics", &[], b"").unwrap();
    let prefix = format!("{name}{{peer=\"{url}\"}} ");
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{prefix} missing from /metrics:\n{}", m.body))
}

#[test]
fn a_fleet_agrees_names_the_first_divergence_and_survives_a_peer_restart() {
    let sim = Sim::new("healthy", EPOCHS, BLOCKS);
    let tampered_line = TAMPERED_EPOCH as usize * BLOCKS + 2;
    let mut bad = sim.lines.clone();
    bad[tampered_line] = tamper(&sim, &sim.lines[tampered_line]);
    let first = TAMPERED_EPOCH as usize * BLOCKS;
    let market = serde_json::from_str::<Value>(&bad[tampered_line]).unwrap()["receipts"][0]
        ["market"]
        .as_str()
        .unwrap()
        .to_owned();

    // Start in dependency order, each fed the epochs before the tampered one.
    let n_d = node(&sim, "d", &[], "");
    append(&n_d.chain, bad[..first].concat().as_bytes());
    let d = Daemon::start(&n_d.config, &n_d.log);
    let n_c = node(
        &sim,
        "c",
        &[&d],
        "[gates.storage]\nenter_streak_required = 4",
    );
    let n_b1 = node(&sim, "b1", &[], "");
    for n in [&n_c, &n_b1] {
        sim_feed(&sim, n, 0..first);
    }
    let c = Daemon::start(&n_c.config, &n_c.log);
    let mut b1 = Daemon::start(&n_b1.config, &n_b1.log);
    let n_b2 = node(&sim, "b2", &[&b1, &c, &d], "");
    sim_feed(&sim, &n_b2, 0..first);
    let b2 = Daemon::start(&n_b2.config, &n_b2.log);
    let n_a = node(&sim, "a", &[&b1, &b2, &c, &d], "");
    sim_feed(&sim, &n_a, 0..first);
    let mut a = Daemon::start(&n_a.config, &n_a.log);

    let before = TAMPERED_EPOCH - 1;
    for x in [&a, &b1, &b2, &c, &d] {
        x.wait_closed(before);
    }
    // Before the changed receipt, everyone agrees; c's configuration differs but its snapshots
    // are compared and agree.
    let st = a.wait_status(
        "a to agree with every peer through the shared epochs",
        |s| {
            [&b1.url, &b2.url, &d.url]
                .iter()
                .all(|u| state_of(s, u) == ("agree".into(), Some(before)))
                && state_of(s, &c.url) == ("config_differs".into(), Some(before))
        },
    );
    assert_eq!(peer(&st, &c.url)["snapshots_compared"], true, "{st:#}");
    assert_ne!(peer(&st, &c.url)["config_hash"], st["config_hash"]);
    assert_eq!(peer(&st, &b1.url)["config_hash"], st["config_hash"]);

    // The rest of the chain: d's copy holds the changed receipt.
    append(&n_d.chain, bad[first..].concat().as_bytes());
    for n in [&n_a, &n_b1, &n_b2, &n_c] {
        sim_feed(&sim, n, first..sim.lines.len());
    }
    let last = EPOCHS as u64 - 1;
    for x in [&a, &b1, &b2, &c, &d] {
        x.wait_closed(last);
    }
    let within = Duration::from_millis(POLL_MS * 25);
    for watcher in [&a, &b2] {
        let st = watcher.wait_status_within("d to be reported diverged", within, |s| {
            state_of(s, &d.url).0 == "diverged"
                && state_of(s, &b1.url) == ("agree".into(), Some(last))
                && state_of(s, &c.url) == ("config_differs".into(), Some(last))
        });
        let div = &peer(&st, &d.url)["divergence"];
        assert_eq!(div["epoch"], TAMPERED_EPOCH, "{st:#}");
        assert_eq!(div["differs"], "snapshot");
        assert_ne!(div["mine"]["snapshot_hash"], div["theirs"]["snapshot_hash"]);
        // The peer agreed through the epoch before, and the fields name what the receipt moved.
        assert_eq!(peer(&st, &d.url)["agreed_through"], before);
        let fields: Vec<&str> = div["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let revenue = format!("markets.{market}.revenue_micro");
        assert!(
            fields.contains(&revenue.as_str()),
            "the changed payment shows as {revenue}: {fields:?}"
        );
        assert!(
            fields
                .iter()
                .all(|f| f.starts_with(&format!("markets.{market}."))),
            "only that market's figures differ: {fields:?}"
        );
        // Ours is this node's own snapshot hash of the epoch.
        let own = watcher.cli_json(&["snapshot", "--epoch", &TAMPERED_EPOCH.to_string()]);
        assert_eq!(div["mine"]["snapshot_hash"], own["snapshot_hash"]);
    }
    assert_eq!(
        state_of(&b2.status(), &b1.url),
        ("agree".into(), Some(last))
    );

    // Every surface says so: tb-cli status and peers, metrics, the log.
    let human = a.cli(&["status"]);
    assert!(
        human.stdout.lines().any(|l| l.contains(&d.url)
            && l.ends_with(&format!(
                "DIVERGED at epoch {TAMPERED_EPOCH} (snapshot differs)"
            ))),
        "{}",
        human.stdout
    );
    let detail = a.cli(&["peers"]);
    assert_eq!(detail.code, Some(1), "{}{}", detail.stdout, detail.stderr);
    for want in [
        format!("diverged at epoch     {TAMPERED_EPOCH}"),
        "snapshot_hash theirs".to_owned(),
        format!("tb-cli governor peers ack {}", d.url),
    ] {
        assert!(
            detail.stdout.contains(&want),
            "{want:?} in\n{}",
            detail.stdout
        );
    }
    assert_eq!(peer_metric(&a, "governor_peer_diverged", &d.url), "1");
    assert_eq!(peer_metric(&a, "governor_peer_diverged", &b1.url), "0");
    assert_eq!(peer_metric(&a, "governor_peer_up", &b1.url), "1");
    assert_eq!(
        peer_metric(&a, "governor_peer_agreed_epoch", &d.url),
        before.to_string()
    );
    let log = a.stderr();
    assert!(
        log.lines().any(|l| l.contains("peer diverged")
            && l.contains(&format!("peer={}", d.url))
            && l.contains(&format!("epoch={TAMPERED_EPOCH}"))),
        "{log}"
    );

    // Offline, from the endpoints and from the directories.
    let cmp = run(
        "tb-cli",
        &[
            "governor", "compare", "--rpc", &a.url, "--rpc", &b1.url, "--rpc", &d.url,
        ],
        &sim.dir,
        &[],
    );
    assert_eq!(cmp.code, Some(1), "{}{}", cmp.stdout, cmp.stderr);
    assert!(
        cmp.stdout.contains(&format!("agree through epoch {last}"))
            && cmp.stdout.contains(&format!(
                "DIVERGED at epoch {TAMPERED_EPOCH} (snapshot differs)"
            )),
        "{}",
        cmp.stdout
    );
    let dirs = |x: &str, y: &str| {
        run(
            "tb-cli",
            &[
                "governor",
                "compare",
                "--decisions",
                &format!("data-{x}/decisions"),
                "--decisions",
                &format!("data-{y}/decisions"),
            ],
            &sim.dir,
            &[],
        )
    };
    let same = dirs("a", "b2");
    assert_eq!(same.code, Some(0), "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.contains(&format!("agree through epoch {last}")));
    let other = dirs("a", "c");
    assert_eq!(other.code, Some(0), "{}{}", other.stdout, other.stderr);
    assert!(other.stdout.contains(&format!(
        "config differs; snapshots agree through epoch {last}"
    )));

    // A peer that goes away is unreachable, and agrees again once it is back (same address).
    let b1_addr = b1.addr.clone();
    b1.kill();
    let st = a.wait_status("b1 to be unreachable", |s| {
        state_of(s, &b1.url).0 == "unreachable"
    });
    assert!(peer(&st, &b1.url)["error"].as_str().is_some(), "{st:#}");
    assert_eq!(peer_metric(&a, "governor_peer_up", &b1.url), "0");
    let text = std::fs::read_to_string(&n_b1.config)
        .unwrap()
        .replace("127.0.0.1:0", &b1_addr);
    std::fs::write(&n_b1.config, text).unwrap();
    let b1 = Daemon::start(&n_b1.config, &n_b1.log);
    assert_eq!(b1.addr, b1_addr);
    a.wait_status("b1 to agree again", |s| {
        state_of(s, &b1.url) == ("agree".into(), Some(last))
    });

    // The divergence is sticky across a restart, until acknowledged; an acknowledgement that
    // does not resolve it is followed by the same report at once.
    a.kill();
    let a_text = std::fs::read_to_string(&n_a.config).unwrap();
    let a = Daemon::start(&n_a.config, &n_a.log);
    let st = a.status();
    assert_eq!(state_of(&st, &d.url).0, "diverged", "{st:#}");
    assert_eq!(peer(&st, &d.url)["divergence"]["epoch"], TAMPERED_EPOCH);
    let decisions_before = crate::support::files(&sim.dir.join("data-a/decisions"));
    let ack = a.cli(&[
        "peers",
        "ack",
        &d.url,
        "--reason",
        "checked: d read a changed export",
        "--operator",
        "alice",
        "--token",
        TOKEN,
    ]);
    assert_eq!(ack.code, Some(0), "{}{}", ack.stdout, ack.stderr);
    let journal = std::fs::read_to_string(sim.dir.join("data-a/journal.jsonl")).unwrap();
    let last_line: Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last_line["kind"], "ack_peer");
    assert_eq!(last_line["peer"], d.url.as_str());
    assert_eq!(last_line["operator"], "alice");
    let st = a.wait_status("d to be reported again after the acknowledgement", |s| {
        state_of(s, &d.url).0 == "diverged"
            && peer(s, &d.url)["divergence"]["epoch"] == TAMPERED_EPOCH
    });
    assert_eq!(peer(&st, &d.url)["agreed_through"], before);
    // The acknowledgement changed no decision.
    assert_eq!(
        crate::support::files(&sim.dir.join("data-a/decisions")),
        decisions_before
    );
    // Without the token it is refused.
    let refused = a.cli(&["peers", "ack", &d.url, "--reason", "x", "--operator", "y"]);
    assert_ne!(refused.code, Some(0));
    assert_eq!(std::fs::read_to_string(&n_a.config).unwrap(), a_text);
}

/// Feeds the reference chain's lines `range` to `node`.
fn sim_feed(sim: &Sim, node: &Node, range: std::ops::Range<usize>) {
    append(&node.chain, sim.lines[range].concat().as_bytes());
}

#[test]
fn a_peer_that_answers_garbage_or_never_is_unreachable_not_diverged() {
    let sim = Sim::new("healthy", 2, BLOCKS);
    // A "governor" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
        }
    });
    // A "governor" whose status carries a config hash that is no hash.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_url = format!("http://{}", fake.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in fake.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let body = r#"{"jsonrpc":"2.0","id":0,"result":{"config_hash":"not a hash"}}"#;
            let _ = std::io::Write::write_all(
                &mut conn,
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let dir = &sim.dir;
    let config = Config::new(dir, BLOCKS)
        .rpc_extra(&format!(
            "[peers]\nurls = [{fake_url:?}, {silent_url:?}]\npoll_ms = {POLL_MS}\ntimeout_ms = 300"
        ))
        .write(&dir.join("a.toml"));
    std::fs::create_dir_all(dir.join("chain")).unwrap();
    sim.feed("chain/blocks.jsonl", 0..BLOCKS);
    let a = Daemon::start(&config, &dir.join("a.log"));
    let st = a.wait_status("both bad peers to be unreachable", |s| {
        state_of(s, &fake_url).0 == "unreachable" && state_of(s, &silent_url).0 == "unreachable"
    });
    let silent_error = peer(&st, &silent_url)["error"].as_str().unwrap();
    assert!(silent_error.contains("governor.status"), "{st:#}");
    assert!(peer(&st, &silent_url)["divergence"].is_null());
    let p = peer(&st, &fake_url);
    assert!(p["divergence"].is_null(), "{st:#}");
    assert!(
        p["error"].as_str().unwrap().contains("governor.status"),
        "the reason names the call: {st:#}"
    );
    assert_eq!(peer_metric(&a, "governor_peer_diverged", &fake_url), "0");
    assert_eq!(peer_metric(&a, "governor_peer_up", &fake_url), "0");
    // The daemon itself is unaffected: it closes its epoch and serves.
    a.wait_closed(0);
}

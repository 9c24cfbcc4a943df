//! The determinism claims as properties, on the small simulated chain of `common`:
//! thread counts and batch sizes, checkpoint/restore at any block, any chunking of the stream
//! into files and steps, signatures binding every signed field, and no panic on any input.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use tb_replay::feed;
use tb_replay::json::MAX_SAFE;
use tb_replay::sim::{self, Scenario, SimConfig};
use tb_replay::{ChainReader, Position, Reason, ReplayState, Replayer, Verdict};

use crate::common::{small_chain, SimChain};

/// Rayon pools of 1 to 4 threads, built once.
fn pools() -> &'static [rayon::ThreadPool] {
    static POOLS: OnceLock<Vec<rayon::ThreadPool>> = OnceLock::new();
    POOLS.get_or_init(|| {
        (1..=4)
            .map(|n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
            })
            .collect()
    })
}

/// A checkpoint through its serialised form, as the daemon stores it.
fn round_trip(state: &ReplayState) -> ReplayState {
    serde_json::from_slice(&serde_json::to_vec(state).unwrap()).unwrap()
}

fn restore(chain: &SimChain, state: &ReplayState) -> Replayer {
    Replayer::restore(chain.cfg.clone(), chain.registry.clone(), round_trip(state)).unwrap()
}

/// Replays `lines` in batches of the sizes `chunks` (cycled); returns the closed hashes with the
/// index of the block that closed each, and the final checkpoint.
fn replay_in_batches(
    replayer: &mut Replayer,
    lines: &[Vec<u8>],
    first_index: usize,
    chunks: &[usize],
) -> (Vec<(usize, String)>, ReplayState) {
    let mut closed = Vec::new();
    let mut i = 0;
    for size in chunks.iter().cycle() {
        if i == lines.len() {
            break;
        }
        let end = (i + size).min(lines.len());
        let out = replayer.push_lines(&lines[i..end]);
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.applied, end - i);
        closed.extend(
            out.closed
                .into_iter()
                .map(|(j, c)| (first_index + i + j, c.hash)),
        );
        i = end;
    }
    (closed, replayer.checkpoint())
}

/// Writes the chain into `dir` as files `part-NNN.jsonl` split at `splits` (any order, repeats
/// making empty files), letting `edit` change each file's text (given its block range); returns
/// the split points with 0 and the chain's length added, sorted.
fn write_parts(
    dir: &std::path::Path,
    chain: &SimChain,
    splits: Vec<usize>,
    mut edit: impl FnMut(&std::ops::Range<usize>, &mut Vec<u8>),
) -> Vec<usize> {
    let mut bounds = splits;
    bounds.sort_unstable();
    bounds.insert(0, 0);
    bounds.push(chain.lines.len());
    for (i, w) in bounds.windows(2).enumerate() {
        let range = w[0]..w[1];
        let mut text = chain.text(range.clone());
        edit(&range, &mut text);
        std::fs::write(dir.join(format!("part-{i:03}.jsonl")), text).unwrap();
    }
    bounds
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// (1) The same hashes for every thread count and every batch size.
    #[test]
    fn same_hashes_for_every_thread_count_and_batch_size(
        chunks in prop::collection::vec(1usize..=40, 1..10),
    ) {
        let (chain, reference) = small_chain();
        let epoch = chain.cfg.epoch_blocks as usize;
        let want: Vec<(usize, String)> = reference
            .hashes()
            .into_iter()
            .enumerate()
            .map(|(e, h)| ((e + 1) * epoch - 1, h))
            .collect();
        for (n, pool) in pools().iter().enumerate() {
            let (closed, state) = pool.install(|| {
                replay_in_batches(&mut chain.replayer(), &chain.lines, 0, &chunks)
            });
            prop_assert_eq!(&closed, &want, "{} threads", n + 1);
            prop_assert_eq!(&state, reference.final_state(), "{} threads", n + 1);
        }
    }

    /// (2) Checkpoint after any blocks, restore, continue == the uninterrupted replay.
    #[test]
    fn checkpoint_and_restore_anywhere_changes_nothing(
        cuts in prop::collection::vec(0usize..=36, 1..4),
        chunk in 1usize..=36,
    ) {
        let (chain, reference) = small_chain();
        let n = chain.lines.len();
        prop_assert_eq!(n, 36);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut replayer = chain.replayer();
        let mut closed = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([n]) {
            let (c, _) = replay_in_batches(&mut replayer, &chain.lines[at..cut], at, &[chunk]);
            closed.extend(c.into_iter().map(|(_, h)| h));
            at = cut;
            let state = replayer.checkpoint();
            prop_assert_eq!(&state, &reference.states[cut]);
            // Restart: a new replayer from the serialised checkpoint.
            replayer = restore(chain, &state);
            prop_assert_eq!(replayer.next_height(), cut as u64);
            let last_closed = reference
                .closed
                .iter()
                .rev()
                .find(|c| c.snapshot.last_height < cut as u64);
            prop_assert_eq!(
                replayer.last_snapshot_hash(),
                last_closed.map(|c| c.hash.as_str())
            );
        }
        prop_assert_eq!(closed, reference.hashes());
        let state = replayer.checkpoint();
        prop_assert_eq!(&state, reference.final_state());
        prop_assert_eq!(
            serde_json::to_vec(&state).unwrap(),
            serde_json::to_vec(reference.final_state()).unwrap()
        );
    }

    /// (3) Any split of the stream into files, any step size, CRLF or not, and restarts between
    /// steps (reader position and checkpoint through their serialised forms) == one pass.
    #[test]
    fn any_chunking_of_the_stream_gives_the_same_snapshots(
        splits in prop::collection::vec(0usize..=36, 0..5),
        max_bytes in prop::collection::vec(1usize..=200_000, 1..6),
        restarts in prop::collection::vec(any::<bool>(), 1..8),
        crlf in any::<bool>(),
    ) {
        let (chain, reference) = small_chain();
        let n = chain.lines.len();
        let dir = tempfile::tempdir().unwrap();
        let bounds = write_parts(dir.path(), chain, splits, |_, text| {
            if crlf {
                *text = String::from_utf8(text.clone()).unwrap().replace('\n', "\r\n").into_bytes();
            }
        });
        let mut replayer = chain.replayer();
        let mut reader = ChainReader::open(dir.path(), Position::default());
        let mut closed = Vec::new();
        let mut steps = 0;
        loop {
            let max = max_bytes[steps % max_bytes.len()];
            let step = feed::step(&mut reader, &mut replayer, max).unwrap();
            prop_assert_eq!(&step.stall, &None);
            if step.blocks == 0 {
                break;
            }
            for (c, pos) in &step.closed {
                // The position handed out with a closed epoch resumes right after it.
                let mut resumed = ChainReader::open(dir.path(), pos.clone());
                let next = resumed.next_batch(1 << 20).unwrap();
                let last = c.snapshot.last_height as usize;
                if last + 1 < n {
                    prop_assert_eq!(next.line(0), &chain.lines[last + 1][..]);
                } else {
                    prop_assert!(next.lines.is_empty());
                }
            }
            closed.extend(step.closed.into_iter().map(|(c, _)| c.hash));
            if restarts[steps % restarts.len()] {
                let pos: Position =
                    serde_json::from_slice(&serde_json::to_vec(reader.position()).unwrap())
                        .unwrap();
                reader = ChainReader::open(dir.path(), pos);
                replayer = restore(chain, &replayer.checkpoint());
            }
            steps += 1;
            prop_assert!(steps <= n + bounds.len(), "no progress");
        }
        prop_assert_eq!(closed, reference.hashes());
        prop_assert_eq!(&replayer.checkpoint(), reference.final_state());
    }
}

/// What a step did, comparable: blocks applied, each closed epoch's hash with the position after
/// it, and the stall.
type StepSummary = (usize, Vec<(String, Position)>, Option<String>);

fn summary(step: feed::Step) -> StepSummary {
    let closed = step.closed.into_iter().map(|(c, p)| (c.hash, p)).collect();
    (step.blocks, closed, step.stall.map(|s| s.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// (4) The pipelined run gives exactly the steps of the one-batch-at-a-time loop, for any
    /// split into files, batch size and thread count, whether the chain ends cleanly or at a bad
    /// line (then both end at the same stall, with the same blocks applied before it).
    #[test]
    fn the_pipelined_run_gives_the_same_steps_as_stepping(
        splits in prop::collection::vec(0usize..=36, 0..5),
        max_bytes in 1usize..=60_000,
        bad_line in prop::option::of(0usize..36),
    ) {
        let (chain, reference) = small_chain();
        let n = chain.lines.len();
        let dir = tempfile::tempdir().unwrap();
        let bounds = write_parts(dir.path(), chain, splits, |range, text| {
            if let Some(bad) = bad_line.filter(|b| range.contains(b)) {
                // Block `bad` replaced by the next one: a height out of order.
                let mut lines = chain.lines[range.clone()].to_vec();
                lines[bad - range.start] = chain.lines[(bad + 1) % n].clone();
                *text = lines.into_iter().flat_map(|mut l| { l.push(b'\n'); l }).collect();
            }
        });
        let mut stepped = Vec::new();
        {
            let mut reader = ChainReader::open(dir.path(), Position::default());
            let mut replayer = chain.replayer();
            loop {
                let step = feed::step(&mut reader, &mut replayer, max_bytes).unwrap();
                let end = step.blocks == 0 || step.stall.is_some();
                stepped.push(summary(step));
                if end {
                    break;
                }
            }
            prop_assert_eq!(stepped.last().unwrap().2.is_some(), bad_line.is_some());
        }
        for (threads, pool) in pools().iter().enumerate() {
            let mut reader = ChainReader::open(dir.path(), Position::default());
            let mut replayer = chain.replayer();
            let mut run = Vec::new();
            pool.install(|| {
                feed::run(&mut reader, &mut replayer, max_bytes, |step| {
                    run.push(summary(step));
                    Ok::<(), ()>(())
                })
            })
            .unwrap();
            prop_assert_eq!(&run, &stepped, "{} threads", threads + 1);
            if bad_line.is_none() {
                prop_assert_eq!(&replayer.checkpoint(), reference.final_state());
                prop_assert_eq!(reader.position().line, (n - bounds[bounds.len() - 2] + 1) as u64);
            }
        }
    }
}

/// A consumer that stops early stops the run there: nothing after its step is applied, and the
/// reading and decoding threads end rather than wait.
#[test]
fn a_run_stops_at_the_first_error_of_its_consumer() {
    let (chain, reference) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..chain.lines.len() {
        std::fs::write(
            dir.path().join(format!("{i:03}.jsonl")),
            chain.text(i..i + 1),
        )
        .unwrap();
    }
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let mut replayer = chain.replayer();
    let mut steps = 0;
    // One block per file, so one per step: the consumer refuses the third.
    let out = feed::run(&mut reader, &mut replayer, 1, |_| {
        steps += 1;
        if steps == 3 {
            Err("stop")
        } else {
            Ok(())
        }
    });
    assert_eq!(out, Err("stop"));
    assert_eq!(steps, 3);
    assert_eq!(replayer.checkpoint(), reference.states[3]);
}

/// Every signed field of a receipt as a path (`blocktorch.kernel_digest` for nested ones), except
/// `signature` and `market` (another market is another schema, not another value).
fn signed_paths(receipt: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in receipt.as_object().unwrap() {
        match v {
            Value::Object(inner) => out.extend(inner.keys().map(|i| format!("{k}.{i}"))),
            _ if k == "signature" || k == "market" => {}
            _ => out.push(k.clone()),
        }
    }
    out
}

/// Another valid value for the field `name` holding `v`.
fn other_value(name: &str, v: &Value, seed: u64, providers: &[&str]) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(num) => {
            let u = num.as_u64().unwrap();
            let up = u < MAX_SAFE;
            let up = match name {
                "conversions" => u == 0,
                "privacy_remaining_ppm" => u < 1_000_000,
                _ => up,
            };
            if !up {
                Value::from(u - 1)
            } else if matches!(name, "conversions" | "privacy_remaining_ppm") {
                Value::from(u + 1)
            } else {
                Value::from(u + 1 + seed % 1_000)
            }
        }
        Value::String(s) if name == "provider" => {
            let others: Vec<&&str> = providers.iter().filter(|p| **p != s).collect();
            Value::from(*others[seed as usize % others.len()])
        }
        Value::String(s) if name == "tier" => Value::from(if s == "contextual" {
            "presence"
        } else {
            "contextual"
        }),
        Value::String(s) if name == "kernel_digest" || name == "proof_hash" => {
            let mut bytes = s.clone().into_bytes();
            let at = seed as usize % bytes.len();
            let digits = b"0123456789abcdef";
            let old = digits.iter().position(|d| *d == bytes[at]).unwrap();
            bytes[at] = digits[(old + 1 + (seed as usize / 64) % 15) % 16];
            Value::from(String::from_utf8(bytes).unwrap())
        }
        Value::String(s) => {
            let alphabet = b"abcXYZ019._:-";
            let c = alphabet[seed as usize % alphabet.len()] as char;
            let mut t = s.clone();
            if t.len() < 128 {
                t.push(c);
            } else {
                t.pop();
            }
            Value::from(t)
        }
        other => panic!("unexpected value {other} for {name}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// (4) Changing any signed field of an accepted receipt to another valid value makes it a
    /// `bad_signature`, and leaves every other verdict of the block as it was.
    #[test]
    fn every_signed_field_is_bound_by_the_signature(
        block in 0usize..36,
        receipt_pick in any::<usize>(),
        field_pick in any::<usize>(),
        seed in any::<u64>(),
    ) {
        let (chain, reference) = small_chain();
        let want = &reference.verdicts[block];
        let mut line: Value = serde_json::from_slice(&chain.lines[block]).unwrap();
        let accepted: Vec<usize> = (0..want.len())
            .filter(|&j| want[j] == Verdict::Accept && line["receipts"][j].get("signature").is_some())
            .collect();
        prop_assert!(!accepted.is_empty());
        let j = accepted[receipt_pick % accepted.len()];
        // Control: re-serialised (keys reordered) but unchanged, every verdict stands.
        let mut replayer = restore(chain, &reference.states[block]);
        let b = replayer.decode(line.to_string().as_bytes()).unwrap();
        replayer.push(&b).unwrap();
        prop_assert_eq!(replayer.verdicts(), &want[..]);

        let paths = signed_paths(&line["receipts"][j]);
        let path = &paths[field_pick % paths.len()];
        let providers: Vec<&str> = (0..chain.registry.len() as u32)
            .map(|i| &*chain.registry.get(i).unwrap().id)
            .collect();
        let slot = path
            .split('.')
            .fold(&mut line["receipts"][j], |v, k| &mut v[k]);
        let name = path.rsplit('.').next().unwrap();
        let new = other_value(name, slot, seed, &providers);
        prop_assert_ne!(&*slot, &new);
        *slot = new;

        let mut replayer = restore(chain, &reference.states[block]);
        let b = replayer.decode(line.to_string().as_bytes()).unwrap();
        replayer.push(&b).unwrap();
        let got = replayer.verdicts();
        prop_assert_eq!(got.len(), want.len());
        prop_assert_eq!(got[j], Verdict::Reject(Reason::BadSignature), "{} of receipt {}", path, j);
        // Other verdicts stand, except that a later receipt of the same provider that replayed
        // the (now rejected) nonce may be accepted instead.
        let original: Value = serde_json::from_slice(&chain.lines[block]).unwrap();
        let provider = &original["receipts"][j]["provider"];
        for k in (0..want.len()).filter(|&k| k != j) {
            let same = &original["receipts"][k]["provider"] == provider;
            let nonce_only = [Verdict::Accept, Verdict::Reject(Reason::ReplayedNonce)];
            if same && k > j && nonce_only.contains(&want[k]) {
                prop_assert!(nonce_only.contains(&got[k]), "receipt {}: {:?}", k, got[k]);
            } else {
                prop_assert_eq!(got[k], want[k], "receipt {}", k);
            }
        }
    }
}

/// Bytes that make random edits of JSON text interesting.
fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        select(b"{}[]\",:-.0123456789eE\\ \r\nutfl".to_vec()),
    ]
}

/// One random edit of a line.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), edit_byte()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), edit_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Decodes and applies `line` at `state`; must not panic. Checks the verdicts' shape.
fn try_line(chain: &SimChain, state: &ReplayState, line: &[u8]) -> Result<(), TestCaseError> {
    let mut replayer = restore(chain, state);
    if let Ok(block) = replayer.decode(line) {
        let before = replayer.checkpoint();
        match replayer.push(&block) {
            Ok(_) => prop_assert_eq!(replayer.verdicts().len(), block.receipts.len()),
            Err(_) => prop_assert_eq!(replayer.checkpoint(), before),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (5a) Arbitrary bytes as a line: `decode` returns, never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let (chain, reference) = small_chain();
        try_line(chain, &reference.states[0], &bytes)?;
    }

    /// (5b) JSON-looking garbage gets further into the decoder; still no panic.
    #[test]
    fn json_like_garbage_never_panics(
        text in "[\\[\\]{}\",:0-9a-z_\\-.eE \\\\]{0,300}",
        tail in "(\"receipts\":\\[\\{\"market\":\"(storage|ad|compute_slash)\"[^}]{0,80}\\}\\]\\})?",
    ) {
        let (chain, reference) = small_chain();
        try_line(chain, &reference.states[0], format!("{text}{tail}").as_bytes())?;
    }

    /// (5c) Random edits (byte flips, insertions, removals, truncations) of a valid line.
    #[test]
    fn edited_valid_lines_never_panic(
        block in 0usize..36,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let (chain, reference) = small_chain();
        let mut line = chain.lines[block].clone();
        for e in edits {
            let len = line.len().max(1);
            match e {
                Edit::Set(i, b) if !line.is_empty() => line[i % len] = b,
                Edit::Insert(i, b) => line.insert(i % (line.len() + 1), b),
                Edit::Remove(i) if !line.is_empty() => {
                    line.remove(i % len);
                }
                Edit::Truncate(i) => line.truncate(i % len),
                _ => {}
            }
        }
        try_line(chain, &reference.states[block], &line)?;
    }

    /// (5d) `push_lines` with valid lines followed by random ones applies exactly the lines
    /// before the first error, and reports that error's index.
    #[test]
    fn push_lines_applies_up_to_the_first_bad_line(
        valid in 0usize..=36,
        junk in prop::collection::vec(prop::collection::vec(edit_byte(), 0..120), 0..5),
    ) {
        let (chain, reference) = small_chain();
        let mut lines: Vec<Vec<u8>> = chain.lines[..valid].to_vec();
        lines.extend(junk.iter().cloned());
        let mut replayer = chain.replayer();
        let out = replayer.push_lines(&lines);
        match &out.error {
            None => prop_assert_eq!(out.applied, lines.len()),
            Some((i, _)) => prop_assert_eq!(out.applied, *i),
        }
        prop_assert!(out.applied >= valid);
        prop_assert_eq!(replayer.next_height(), out.applied as u64);
        if out.applied == valid {
            prop_assert_eq!(&replayer.checkpoint(), &reference.states[valid]);
        }
        let closed: Vec<String> = out.closed.into_iter().map(|(_, c)| c.hash).collect();
        prop_assert_eq!(&closed[..], &reference.hashes()[..valid / 12]);
    }
}

#[test]
fn the_simulator_is_independent_of_the_thread_count() {
    let cfg = SimConfig {
        scenario: Scenario::Demo,
        seed: 11,
        epochs: 2,
        epoch_blocks: 8,
        chain_id: "sim-threads".into(),
        genesis_height: 3,
    };
    let providers = sim::providers(&cfg);
    let run = |pool: &rayon::ThreadPool| {
        pool.install(|| {
            let mut out = Vec::new();
            sim::generate(&cfg, &providers, |h, line| {
                out.push((h, line.to_vec()));
                Ok(())
            })
            .unwrap();
            out
        })
    };
    let one = run(&pools()[0]);
    assert_eq!(one.len(), 16);
    assert_eq!(one[0].0, 3);
    for pool in &pools()[1..] {
        assert!(run(pool) == one);
    }
}

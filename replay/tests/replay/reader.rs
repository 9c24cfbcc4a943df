//! The chain reader (DESIGN §2): complete lines only, CRLF, file order and naming, unterminated
//! lines before a later file, block errors with their place, and exact resumption.

use std::fs;
use std::io::Write;
use std::path::Path;

use tb_replay::feed::{self, ChainError};
use tb_replay::reader::chain_files;
use tb_replay::{BlockError, ChainReader, Position};

use crate::common::{feed_all, hashes, small_chain};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).unwrap();
}

fn append(dir: &Path, name: &str, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(dir.join(name))
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// The stall of a step that must stop at a bad line (and apply nothing before it).
fn step_error(reader: &mut ChainReader, replayer: &mut tb_replay::Replayer) -> ChainError {
    let step = feed::step(reader, replayer, 1 << 20).unwrap();
    assert_eq!(
        step.blocks, 0,
        "nothing before the bad line is left to apply"
    );
    step.stall.expect("the step should stall")
}

/// The step's block count, checking it did not stall.
fn blocks(reader: &mut ChainReader, replayer: &mut tb_replay::Replayer) -> usize {
    let step = feed::step(reader, replayer, 1 << 20).unwrap();
    assert_eq!(step.stall, None);
    step.blocks
}

#[test]
fn crlf_line_endings_are_stripped() {
    let (chain, reference) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for line in &chain.lines {
        text.extend_from_slice(line);
        text.extend_from_slice(b"\r\n");
    }
    write(dir.path(), "blocks.jsonl", &text);
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let batch = reader.next_batch(usize::MAX).unwrap();
    assert_eq!(batch.lines.len(), chain.lines.len());
    for (i, line) in chain.lines.iter().enumerate() {
        assert_eq!(batch.line(i), &line[..]);
    }
    assert_eq!(
        reader.position(),
        &Position {
            file: "blocks.jsonl".into(),
            offset: text.len() as u64,
            line: chain.lines.len() as u64 + 1,
        }
    );
    let mut replayer = chain.replayer();
    let closed = feed_all(dir.path(), Position::default(), &mut replayer, 1 << 20);
    assert_eq!(hashes(&closed), reference.hashes());
    // Only one trailing \r is stripped: "\r\r\n" leaves a \r, which JSON takes as whitespace.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.jsonl", b"x\r\r\n\r\n");
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let batch = reader.next_batch(1 << 20).unwrap();
    assert_eq!(batch.lines.len(), 2);
    assert_eq!(batch.line(0), b"x\r");
    assert_eq!(batch.line(1), b"");
}

#[test]
fn a_partial_last_line_waits_for_its_newline() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let full = chain.text(0..n);
    let last = &chain.lines[n - 1];
    let cut = full.len() - last.len() / 2 - 1;
    write(dir.path(), "blocks.jsonl", &full[..cut]);
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let mut replayer = chain.replayer();
    let step = feed::step(&mut reader, &mut replayer, 1 << 20).unwrap();
    assert_eq!(step.blocks, n - 1);
    assert_eq!(replayer.next_height(), n as u64 - 1);
    assert_eq!(reader.pending_bytes(), cut - (full.len() - last.len() - 1));
    // Nothing more until the line completes, however often we ask.
    for _ in 0..3 {
        assert_eq!(blocks(&mut reader, &mut replayer), 0);
    }
    // Everything but the newline: still nothing.
    append(dir.path(), "blocks.jsonl", &full[cut..full.len() - 1]);
    assert_eq!(blocks(&mut reader, &mut replayer), 0);
    append(dir.path(), "blocks.jsonl", b"\n");
    let step = feed::step(&mut reader, &mut replayer, 1 << 20).unwrap();
    assert_eq!(step.blocks, 1);
    assert_eq!(step.closed.len(), 1);
    assert_eq!(step.closed[0].0.hash, *reference.hashes().last().unwrap());
    assert_eq!(&replayer.checkpoint(), reference.final_state());
    assert_eq!(reader.pending_bytes(), 0);
}

#[test]
fn an_unterminated_line_before_a_later_file_is_a_block_error() {
    let (chain, reference) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    let first = chain.text(0..10);
    let unterminated = &first[..first.len() - 1];
    write(dir.path(), "a.jsonl", unterminated);
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let mut replayer = chain.replayer();
    // Alone, the last file may still be mid-line.
    assert_eq!(blocks(&mut reader, &mut replayer), 9);
    // A later file, even an empty one, makes it an error at that file and line.
    write(dir.path(), "b.jsonl", b"");
    let e = step_error(&mut reader, &mut replayer);
    assert_eq!(
        e,
        ChainError {
            file: "a.jsonl".into(),
            line: 10,
            error: BlockError::Unterminated,
        }
    );
    assert!(e.to_string().starts_with("a.jsonl:10: "), "{e}");
    assert_eq!(replayer.next_height(), 9);
    // Nothing is skipped: asking again gives the same error, from a fresh reader too.
    assert_eq!(step_error(&mut reader, &mut replayer), e);
    let mut fresh = ChainReader::open(dir.path(), reader.position().clone());
    assert_eq!(step_error(&mut fresh, &mut replayer), e);
    // The same when the error comes after lines read in the same batch.
    let mut replayer2 = chain.replayer();
    let mut reader2 = ChainReader::open(dir.path(), Position::default());
    let step = feed::step(&mut reader2, &mut replayer2, 1 << 20).unwrap();
    assert_eq!(step.blocks, 9);
    assert_eq!(step.stall, Some(e.clone()));
    assert_eq!(
        replayer2.next_height(),
        9,
        "the lines before it are applied"
    );
    // Once the line is finished the chain continues into the later file.
    append(dir.path(), "a.jsonl", b"\n");
    write(dir.path(), "b.jsonl", &chain.text(10..chain.lines.len()));
    let closed = feed_all(
        dir.path(),
        reader.position().clone(),
        &mut replayer,
        1 << 20,
    );
    assert_eq!(hashes(&closed), reference.hashes());
    assert_eq!(&replayer.checkpoint(), reference.final_state());
}

#[test]
fn dotfiles_and_other_files_are_ignored() {
    let (chain, reference) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    let n = chain.lines.len();
    write(dir.path(), "blocks-0.jsonl", &chain.text(0..n / 2));
    write(dir.path(), "blocks-1.jsonl", &chain.text(n / 2..n));
    for name in [
        ".blocks-0.jsonl",
        ".hidden.jsonl",
        ".zzz.jsonl",
        "blocks-0.jsonl.tmp",
        "blocks-2.json",
        "blocks-3.JSONL",
        "notes.txt",
        "blocks-2jsonl",
    ] {
        write(dir.path(), name, b"garbage\n\npartial");
    }
    fs::create_dir(dir.path().join("blocks-2.jsonl")).unwrap();
    fs::create_dir(dir.path().join(".git")).unwrap();
    assert_eq!(
        chain_files(dir.path()).unwrap(),
        ["blocks-0.jsonl", "blocks-1.jsonl"]
    );
    let mut replayer = chain.replayer();
    let closed = feed_all(dir.path(), Position::default(), &mut replayer, 1 << 20);
    assert_eq!(hashes(&closed), reference.hashes());
}

#[test]
fn files_are_read_in_bytewise_name_order() {
    let (chain, reference) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    // Byte order: "10" < "9" < "C" < "_" < "a" < "b" < "é" (no two names differ only in case).
    let names = [
        "10.jsonl", "9.jsonl", "C.jsonl", "_.jsonl", "a.jsonl", "b.jsonl", "é.jsonl",
    ];
    let n = chain.lines.len();
    let per = n.div_ceil(names.len());
    for (i, name) in names.iter().enumerate().rev() {
        write(
            dir.path(),
            name,
            &chain.text(i * per..((i + 1) * per).min(n)),
        );
    }
    assert_eq!(chain_files(dir.path()).unwrap(), names);
    let mut replayer = chain.replayer();
    let closed = feed_all(dir.path(), Position::default(), &mut replayer, 1 << 20);
    assert_eq!(hashes(&closed), reference.hashes());
    assert_eq!(&replayer.checkpoint(), reference.final_state());
}

#[test]
fn resuming_at_a_saved_position_continues_exactly() {
    let (chain, reference) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    let n = chain.lines.len();
    // Three files, one of them empty, so positions at file ends and starts are covered.
    write(dir.path(), "c-0.jsonl", &chain.text(0..13));
    write(dir.path(), "c-1.jsonl", b"");
    write(dir.path(), "c-2.jsonl", &chain.text(13..n));
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let batch = reader.next_batch(usize::MAX).unwrap();
    assert_eq!(batch.lines.len(), n);
    let mut positions = vec![Position::default()];
    positions.extend(batch.lines.iter().map(|l| l.next.clone()));
    assert_eq!(
        positions[13],
        Position {
            file: "c-0.jsonl".into(),
            offset: chain.text(0..13).len() as u64,
            line: 14
        }
    );
    assert_eq!(
        positions[14],
        Position {
            file: "c-2.jsonl".into(),
            offset: chain.lines[13].len() as u64 + 1,
            line: 2
        }
    );
    for (k, pos) in positions.iter().enumerate() {
        // The position goes through its serialised form, as in a checkpoint.
        let pos: Position = serde_json::from_slice(&serde_json::to_vec(pos).unwrap()).unwrap();
        let state = serde_json::to_vec(&reference.states[k]).unwrap();
        let mut replayer = tb_replay::Replayer::restore(
            chain.cfg.clone(),
            chain.registry.clone(),
            serde_json::from_slice(&state).unwrap(),
        )
        .unwrap();
        let closed = feed_all(dir.path(), pos, &mut replayer, 1 << 20);
        let already = reference
            .closed
            .iter()
            .filter(|c| c.snapshot.last_height < k as u64)
            .count();
        assert_eq!(hashes(&closed), reference.hashes()[already..], "k = {k}");
        assert_eq!(&replayer.checkpoint(), reference.final_state(), "k = {k}");
    }
}

#[test]
fn a_bad_line_stops_ingestion_at_its_file_and_line() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.jsonl", &chain.text(0..10));
    let mut second = chain.text(10..12);
    second.extend_from_slice(b"{}\n");
    second.extend_from_slice(&chain.text(13..n));
    write(dir.path(), "b.jsonl", &second);
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let mut replayer = chain.replayer();
    let mut applied = 0;
    let mut closed = Vec::new();
    let e = loop {
        let step = feed::step(&mut reader, &mut replayer, 1 << 20).unwrap();
        applied += step.blocks;
        // Epochs closed by the lines before the bad one are handed out with the stall.
        closed.extend(step.closed.into_iter().map(|(c, _)| c));
        if let Some(e) = step.stall {
            break e;
        }
        assert!(step.blocks > 0, "the error must come before the end");
    };
    assert_eq!((e.file.as_str(), e.line), ("b.jsonl", 3));
    assert!(matches!(e.error, BlockError::Field(_)), "{e}");
    assert!(e.to_string().contains("missing field"), "{e}");
    assert_eq!(applied, 12);
    assert_eq!(replayer.next_height(), 12);
    assert_eq!(&replayer.checkpoint(), &reference.states[12]);
    assert_eq!(hashes(&closed), reference.hashes()[..1]);
    // Retrying fails the same way; nothing after the bad line is ever applied.
    assert_eq!(step_error(&mut reader, &mut replayer), e);
    assert_eq!(replayer.next_height(), 12);
    // An empty line and a height gap are located the same way.
    for (bad, want) in [
        (b"\n".to_vec(), BlockError::EmptyLine),
        (
            chain.text(13..14),
            BlockError::Height {
                expected: 12,
                found: 13,
            },
        ),
    ] {
        let mut text = chain.text(10..12);
        text.extend_from_slice(&bad);
        text.extend_from_slice(&chain.text(12..n));
        write(dir.path(), "b.jsonl", &text);
        let mut reader = ChainReader::open(dir.path(), reader.position().clone());
        let e = step_error(&mut reader, &mut replayer);
        assert_eq!((e.file.as_str(), e.line, e.error), ("b.jsonl", 3, want));
    }
    // Repaired, the chain continues from the bad line.
    write(dir.path(), "b.jsonl", &chain.text(10..n));
    let closed = feed_all(
        dir.path(),
        reader.position().clone(),
        &mut replayer,
        1 << 20,
    );
    assert_eq!(hashes(&closed), reference.hashes()[1..]);
    assert_eq!(&replayer.checkpoint(), reference.final_state());
}

#[test]
fn an_empty_or_missing_chain_has_nothing_yet() {
    let (chain, _) = small_chain();
    let dir = tempfile::tempdir().unwrap();
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let mut replayer = chain.replayer();
    assert_eq!(blocks(&mut reader, &mut replayer), 0);
    write(dir.path(), "a.jsonl", b"");
    write(dir.path(), "b.jsonl", b"");
    assert_eq!(blocks(&mut reader, &mut replayer), 0);
    assert_eq!(replayer.next_height(), 0);
    let missing =
        ChainReader::open(dir.path().join("nope"), Position::default()).next_batch(1 << 20);
    assert!(missing.is_err());
}

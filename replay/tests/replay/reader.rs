//! The chain reader (docs/formats.md, "Chain export"): complete lines only, CRLF, file order and naming, unterminated
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
    let pos = reader.position();
    assert_eq!(
        (pos.file.as_str(), pos.offset, pos.line),
        (
            "blocks.jsonl",
            text.len() as u64,
            chain.lines.len() as u64 + 1
        )
    );
    // The last line read is remembered with its \r\n, so a reopened file can be checked.
    let last = chain.lines.last().unwrap();
    let mut raw = last.clone();
    raw.extend_from_slice(b"\r\n");
    assert_eq!(
        pos.last,
        Some(tb_replay::reader::LineMark {
            len: raw.len() as u64,
            blake3: blake3::hash(&raw).to_hex().to_string(),
        })
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
            line: 14,
            ..Position::default()
        }
    );
    assert_eq!(
        positions[14],
        Position {
            file: "c-2.jsonl".into(),
            offset: chain.lines[13].len() as u64 + 1,
            line: 2,
            ..Position::default()
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

// ---------------------------------------------------------------------------------------------
// The chain changing under the reader: nothing is skipped, and every change is a named error
// that lasts until the chain is put back.

/// A reader and a replayer stepping through one directory.
struct Tail {
    reader: ChainReader,
    replayer: tb_replay::Replayer,
    /// Snapshot hashes of the epochs closed so far.
    closed: Vec<String>,
}

impl Tail {
    fn new(dir: &Path) -> Tail {
        Tail::at(dir, Position::default(), small_chain().0.replayer())
    }

    fn at(dir: &Path, pos: Position, replayer: tb_replay::Replayer) -> Tail {
        Tail {
            reader: ChainReader::open(dir, pos),
            replayer,
            closed: Vec::new(),
        }
    }

    /// Steps until nothing new is read or a read error: the blocks applied and the error.
    /// Panics on a block error.
    fn drain(&mut self) -> (usize, Option<String>) {
        let mut blocks = 0;
        loop {
            match feed::step(&mut self.reader, &mut self.replayer, 1 << 20) {
                Ok(step) => {
                    assert_eq!(step.stall, None);
                    blocks += step.blocks;
                    self.closed
                        .extend(step.closed.into_iter().map(|(c, _)| c.hash));
                    if let Some(e) = step.read_error {
                        return (blocks, Some(e.to_string()));
                    }
                    if step.blocks == 0 {
                        return (blocks, None);
                    }
                }
                Err(e) => return (blocks, Some(e.to_string())),
            }
        }
    }

    /// Steps until nothing new is read; panics on any error. The blocks applied.
    fn ok(&mut self) -> usize {
        match self.drain() {
            (blocks, None) => blocks,
            (_, Some(e)) => panic!("unexpected read error: {e}"),
        }
    }

    /// The error the next step must give; checks that the reader and the replayer stay put.
    fn error(&mut self) -> String {
        let before = (self.reader.position().clone(), self.replayer.next_height());
        let e = match feed::step(&mut self.reader, &mut self.replayer, 1 << 20) {
            Err(e) => e.to_string(),
            Ok(step) => panic!(
                "expected a read error, got {} blocks, stall {:?}",
                step.blocks, step.stall
            ),
        };
        assert_eq!(
            (self.reader.position().clone(), self.replayer.next_height()),
            before,
            "an error moves nothing"
        );
        e
    }

    /// The same error `times` times in a row.
    fn error_stays(&mut self, times: usize) -> String {
        let e = self.error();
        for _ in 1..times {
            assert_eq!(self.error(), e);
        }
        e
    }
}

fn rename(dir: &Path, from: &str, to: &str) {
    fs::rename(dir.join(from), dir.join(to)).unwrap();
}

/// Rewrites `name` in place (same inode): truncated, then `bytes` written.
fn rewrite_in_place(dir: &Path, name: &str, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join(name))
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Replaces `name` by a new file (a new inode) holding `bytes`.
fn replace(dir: &Path, name: &str, bytes: &[u8]) {
    write(dir, ".new", bytes);
    rename(dir, ".new", name);
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

#[test]
fn an_error_after_lines_were_read_loses_none_of_them() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(dir.path(), "a.jsonl", &chain.text(0..10));
    let mut t = Tail::new(dir.path());
    assert_eq!(t.ok(), 10);
    // A dangling link sorting after a.jsonl: every listing fails.
    std::os::unix::fs::symlink(
        outside.path().join("rest.jsonl"),
        dir.path().join("b.jsonl"),
    )
    .unwrap();
    let e = t.error_stays(2);
    assert!(
        e.contains("b.jsonl: symbolic link cannot be followed"),
        "{e}"
    );
    // Lines appended to a.jsonl meanwhile are read before the listing fails again, in the same
    // batch: they are applied, not lost, and the step reports the error with them.
    append(dir.path(), "a.jsonl", &chain.text(10..20));
    let step = feed::step(&mut t.reader, &mut t.replayer, 1 << 20).unwrap();
    assert_eq!(step.blocks, 10);
    assert_eq!(step.stall, None);
    assert_eq!(step.read_error.map(|e| e.to_string()), Some(e.clone()));
    t.closed
        .extend(step.closed.into_iter().map(|(c, _)| c.hash));
    assert_eq!(t.reader.position().line, 21);
    assert_eq!(t.error_stays(3), e);
    // Listing the directory (what the offline replay does first) fails the same way.
    assert_eq!(chain_files(dir.path()).unwrap_err().to_string(), e);
    // Once the link's target exists, the chain goes on through it with nothing skipped.
    write(outside.path(), "rest.jsonl", &chain.text(20..n));
    assert_eq!(t.ok(), n - 20);
    assert_eq!(t.closed, reference.hashes());
    assert_eq!(&t.replayer.checkpoint(), reference.final_state());
    assert_eq!(
        chain_files(dir.path()).unwrap(),
        ["a.jsonl", "b.jsonl"],
        "a link to a file is a chain file"
    );
}

#[test]
fn a_file_replaced_under_its_name_is_an_error_until_its_content_is_back() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.jsonl", &chain.text(0..20));
    let mut t = Tail::new(d);
    assert_eq!(t.ok(), 20);
    // Deleted and recreated with fewer lines: shorter than what was read.
    let before = inode(&d.join("a.jsonl"));
    fs::remove_file(d.join("a.jsonl")).unwrap();
    write(d, "a.jsonl", &chain.text(0..10));
    assert_ne!(
        inode(&d.join("a.jsonl")),
        before,
        "the reader holds the old one"
    );
    let e = t.error_stays(2);
    let read = chain.text(0..20).len();
    assert_eq!(
        e,
        format!(
            "a.jsonl: now {} bytes, shorter than the {read} bytes already read (truncated or replaced)",
            chain.text(0..10).len()
        )
    );
    // Replaced by a file as long, whose last line read differs (one digit of a block changed).
    let mut other = chain.text(0..20);
    let at = other.len() - 3;
    other[at] = if other[at] == b'0' { b'1' } else { b'0' };
    replace(d, "a.jsonl", &other);
    assert_eq!(
        t.error_stays(2),
        "a.jsonl: line 20, already read, now holds different bytes (rewritten or replaced)"
    );
    // Replaced by the same lines and more (a writer that rewrites its file whole): followed.
    replace(d, "a.jsonl", &chain.text(0..30));
    assert_eq!(t.ok(), 10);
    // Removed while being read.
    fs::remove_file(d.join("a.jsonl")).unwrap();
    assert_eq!(
        t.error_stays(2),
        "a.jsonl: removed while being read (reading stood at line 31)"
    );
    write(d, "a.jsonl", &chain.text(0..n));
    assert_eq!(t.ok(), n - 30);
    assert_eq!(t.closed, reference.hashes());
    assert_eq!(&t.replayer.checkpoint(), reference.final_state());
}

#[test]
fn a_file_truncated_or_rewritten_in_place_is_an_error_until_its_content_is_back() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = chain.text(0..20);
    write(d, "a.jsonl", &full);
    let ino = inode(&d.join("a.jsonl"));
    let mut t = Tail::new(d);
    assert_eq!(t.ok(), 20);
    // Truncated and rewritten shorter, in place.
    rewrite_in_place(d, "a.jsonl", &chain.text(0..5));
    assert_eq!(inode(&d.join("a.jsonl")), ino);
    let e = t.error_stays(2);
    assert!(
        e.starts_with("a.jsonl: now ") && e.contains("shorter than the"),
        "{e}"
    );
    // Rewritten in place, longer, with other lines where the read ones were: the last line read
    // is not there any more (before, reading went on mid-line in the new content).
    let mut other = chain.text(1..21);
    other.extend_from_slice(&chain.text(21..30));
    rewrite_in_place(d, "a.jsonl", &other);
    assert_eq!(
        t.error_stays(2),
        "a.jsonl: line 20, already read, now holds different bytes (rewritten or replaced)"
    );
    // Put back and grown: reading goes on where it stood.
    rewrite_in_place(d, "a.jsonl", &chain.text(0..n));
    assert_eq!(t.ok(), n - 20);
    assert_eq!(t.closed, reference.hashes());
    assert_eq!(&t.replayer.checkpoint(), reference.final_state());
}

#[test]
fn a_partial_line_that_is_rewritten_is_read_again() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The writer was mid-line with bytes that it then takes back and writes differently.
    let mut text = chain.text(0..10);
    text.extend_from_slice(b"{\"height\":99999999,\"junk");
    write(d, "a.jsonl", &text);
    let mut t = Tail::new(d);
    assert_eq!(t.ok(), 10);
    assert!(t.reader.pending_bytes() > 0);
    rewrite_in_place(d, "a.jsonl", &chain.text(0..n));
    assert_eq!(t.ok(), n - 10);
    assert_eq!(t.closed, reference.hashes());
}

#[test]
fn files_before_the_current_one_must_not_change() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.jsonl", &chain.text(0..10));
    write(d, "c.jsonl", &chain.text(10..20));
    let mut t = Tail::new(d);
    assert_eq!(t.ok(), 20);
    assert_eq!(t.reader.position().file, "c.jsonl");
    // A late file that sorts before the current one.
    write(d, "b.jsonl", &chain.text(10..12));
    assert_eq!(
        t.error_stays(2),
        "b.jsonl: a new chain file that sorts before c.jsonl, which is already being read"
    );
    fs::remove_file(d.join("b.jsonl")).unwrap();
    assert_eq!(t.ok(), 0);
    // A file read before is removed (or renamed away).
    rename(d, "a.jsonl", ".a.jsonl");
    assert_eq!(
        t.error_stays(2),
        "a.jsonl: removed, although it was read before c.jsonl"
    );
    rename(d, ".a.jsonl", "a.jsonl");
    assert_eq!(t.ok(), 0);
    // A file read before grows (a writer that went back to it).
    append(d, "a.jsonl", &chain.text(10..11));
    let e = t.error_stays(2);
    assert!(
        e.starts_with("a.jsonl: now ")
            && e.contains(&format!(
                "but it had been read to its end at {} bytes before c.jsonl",
                chain.text(0..10).len()
            )),
        "{e}"
    );
    write(d, "a.jsonl", &chain.text(0..10));
    // Lines appended to the current file meanwhile are read once the chain is back.
    append(d, "c.jsonl", &chain.text(20..n));
    assert_eq!(t.ok(), n - 20);
    assert_eq!(t.closed, reference.hashes());
}

#[test]
fn a_file_sorting_first_that_appears_before_anything_was_read_is_not_an_error() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The exporter created its second file first.
    write(d, "b.jsonl", b"");
    let mut t = Tail::new(d);
    assert_eq!(t.ok(), 0);
    write(d, "a.jsonl", &chain.text(0..n));
    assert_eq!(t.ok(), n);
    assert_eq!(t.closed, reference.hashes());
}

#[test]
fn a_missing_chain_directory_is_an_error_until_it_is_back() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("chain");
    fs::create_dir(&d).unwrap();
    write(&d, "a.jsonl", &chain.text(0..20));
    let mut t = Tail::new(&d);
    assert_eq!(t.ok(), 20);
    fs::rename(&d, root.path().join("moved")).unwrap();
    assert_eq!(
        t.error_stays(2),
        format!("chain directory {} is missing", d.display())
    );
    // Restored as a copy (new inodes, same bytes) with more lines: followed.
    fs::create_dir(&d).unwrap();
    write(&d, "a.jsonl", &chain.text(0..n));
    assert_eq!(t.ok(), n - 20);
    assert_eq!(t.closed, reference.hashes());
}

#[test]
fn a_saved_position_is_checked_against_the_files_on_resuming() {
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.jsonl", &chain.text(0..10));
    write(d, "b.jsonl", &chain.text(10..25));
    let mut t = Tail::new(d);
    assert_eq!(t.ok(), 25);
    // Saved as a checkpoint saves it.
    let saved = serde_json::to_string(t.reader.position()).unwrap();
    let text: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(text["file"], "b.jsonl");
    assert_eq!(text["earlier"]["count"], 1, "{saved}");
    assert!(text["last"]["blake3"].is_string(), "{saved}");
    let pos: Position = serde_json::from_str(&saved).unwrap();
    let state = reference.states[25].clone();
    let resume = |d: &Path, pos: &Position| {
        Tail::at(
            d,
            pos.clone(),
            tb_replay::Replayer::restore(chain.cfg.clone(), chain.registry.clone(), state.clone())
                .unwrap(),
        )
    };
    // The last line read was rewritten (same length) while no reader was running.
    let good = chain.text(10..25);
    let mut other = good.clone();
    let at = other.len() - 3;
    other[at] = if other[at] == b'0' { b'1' } else { b'0' };
    write(d, "b.jsonl", &other);
    assert_eq!(
        resume(d, &pos).error_stays(2),
        "b.jsonl: line 15, already read, now holds different bytes (rewritten or replaced)"
    );
    write(d, "b.jsonl", &good);
    // A file before it appeared, or one read before it changed length.
    write(d, "0.jsonl", b"");
    assert_eq!(
        resume(d, &pos).error_stays(2),
        "b.jsonl: the chain files before it are not the ones read before it (1 files then, 2 now, \
         or their lengths changed)"
    );
    fs::remove_file(d.join("0.jsonl")).unwrap();
    append(d, "a.jsonl", b"\n");
    assert!(resume(d, &pos)
        .error_stays(2)
        .contains("(1 files then, 1 now"));
    write(d, "a.jsonl", &chain.text(0..10));
    // The current file removed.
    rename(d, "b.jsonl", ".b.jsonl");
    assert_eq!(
        resume(d, &pos).error_stays(2),
        "b.jsonl: removed while being read (reading stood at line 16)"
    );
    rename(d, ".b.jsonl", "b.jsonl");
    // Unchanged (and grown): resumes exactly.
    append(d, "b.jsonl", &chain.text(25..n));
    let mut r = resume(d, &pos);
    assert_eq!(r.ok(), n - 25);
    assert_eq!(r.closed, reference.hashes()[2..]);
    assert_eq!(&r.replayer.checkpoint(), reference.final_state());
    // A position saved without marks (an older checkpoint) still resumes, and a line must end
    // just before it.
    let old: Position = serde_json::from_str(r#"{"file":"b.jsonl","offset":5,"line":2}"#).unwrap();
    assert_eq!((old.last.clone(), old.earlier.clone()), (None, None));
    assert_eq!(
        resume(d, &old).error_stays(1),
        "b.jsonl: line 1, already read, now holds different bytes (rewritten or replaced)"
    );
    let old = Position {
        file: "b.jsonl".into(),
        offset: pos.offset,
        line: pos.line,
        ..Position::default()
    };
    let mut r = resume(d, &old);
    assert_eq!(r.ok(), n - 25);
    assert_eq!(&r.replayer.checkpoint(), reference.final_state());
}

#[test]
fn a_line_over_the_maximum_is_a_block_error_at_its_place() {
    use tb_replay::reader::MAX_LINE_BYTES;
    let (chain, reference) = small_chain();
    let n = chain.lines.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = vec![b'7'; MAX_LINE_BYTES + 1];
    for newline in [false, true] {
        let mut text = chain.text(0..10);
        text.extend_from_slice(&long);
        if newline {
            text.extend_from_slice(b"\n");
        }
        write(d, "a.jsonl", &text);
        let mut reader = ChainReader::open(d, Position::default());
        let mut replayer = chain.replayer();
        let step = feed::step(&mut reader, &mut replayer, 1 << 20).unwrap();
        assert_eq!(step.blocks, 10);
        let want = ChainError {
            file: "a.jsonl".into(),
            line: 11,
            error: BlockError::TooLong {
                max: MAX_LINE_BYTES,
            },
        };
        assert_eq!(step.stall, Some(want.clone()), "newline {newline}");
        assert_eq!(
            want.to_string(),
            "a.jsonl:11: line longer than 16777216 bytes (the longest a chain line may be)"
        );
        assert_eq!(reader.position().line, 11);
        assert_eq!(reader.pending_bytes(), 0, "the long line is not kept");
        // Asked again (the file unchanged, or grown), the same.
        assert_eq!(step_error(&mut reader, &mut replayer), want);
        append(d, "a.jsonl", b"more");
        assert_eq!(step_error(&mut reader, &mut replayer), want);
        // Fixed: the chain goes on.
        rewrite_in_place(d, "a.jsonl", &chain.text(0..n));
        let step = feed::step(&mut reader, &mut replayer, 1 << 20).unwrap();
        assert_eq!((step.blocks, step.stall), (n - 10, None));
        assert_eq!(&replayer.checkpoint(), reference.final_state());
    }
    // A line of exactly the maximum is read (as a line; it is no valid block).
    let mut text = vec![b'x'; MAX_LINE_BYTES];
    text.extend_from_slice(b"\r\n");
    write(d, "a.jsonl", &text);
    let mut reader = ChainReader::open(d, Position::default());
    let batch = reader.next_batch(1 << 20).unwrap();
    assert_eq!(batch.lines.len(), 1);
    assert_eq!(batch.stop, None);
    assert_eq!(batch.line(0).len(), MAX_LINE_BYTES);
}

/// Every line of `dir` with its position, read in batches of about `max_bytes`; with `recycle`,
/// each batch goes back to the reader once its lines are copied out.
fn read_lines(dir: &Path, max_bytes: usize, recycle: bool) -> Vec<(Vec<u8>, u64, u64)> {
    let mut reader = ChainReader::open(dir, Position::default());
    let mut lines = Vec::new();
    loop {
        let batch = reader.next_batch(max_bytes).unwrap();
        if batch.lines.is_empty() {
            return lines;
        }
        for (i, l) in batch.lines.iter().enumerate() {
            lines.push((batch.line(i).to_vec(), l.line, l.offset));
        }
        if recycle {
            reader.recycle(batch);
        }
    }
}

#[test]
fn a_recycled_batch_is_reused_and_reads_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Lines of varied length across several 1 MiB reads, CRLF on some, two files.
    let mut text = Vec::new();
    for i in 0..6000u32 {
        let len = 50 + (i * 7919) % 900;
        text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len as usize));
        text.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
    }
    write(dir.path(), "blocks-0.jsonl", &text);
    write(dir.path(), "blocks-1.jsonl", &text[..text.len() / 3]);
    for max_bytes in [4 << 10, 300 << 10, 1 << 20] {
        let fresh = read_lines(dir.path(), max_bytes, false);
        assert!(fresh.len() > 6000);
        assert_eq!(read_lines(dir.path(), max_bytes, true), fresh);
    }

    // The next batch reads into the recycled one's memory (a smaller batch: no need to grow it).
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let first = reader.next_batch(2 << 20).unwrap();
    let memory = first.buf.as_ptr();
    assert!(first.buf.capacity() >= 3 << 20);
    reader.recycle(first);
    let second = reader.next_batch(64 << 10).unwrap();
    assert!(!second.lines.is_empty());
    assert_eq!(second.buf.as_ptr(), memory);
}

#[test]
fn a_batch_grown_for_a_very_long_line_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = vec![b'x'; 9 << 20];
    text.extend_from_slice(b"\nshort\n");
    write(dir.path(), "blocks-0.jsonl", &text);
    let mut reader = ChainReader::open(dir.path(), Position::default());
    let long = reader.next_batch(1 << 20).unwrap();
    assert_eq!(long.line(0).len(), 9 << 20);
    assert!(long.buf.capacity() > 8 << 20);
    reader.recycle(long);
    let next = reader.next_batch(1 << 20).unwrap();
    assert!(next.lines.is_empty() || next.line(0) == b"short");
    assert!(
        next.buf.capacity() < 8 << 20,
        "the long line's buffer was reused"
    );
}

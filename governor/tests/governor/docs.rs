//! The documentation cannot drift from the code: every configuration knob and environment variable
//! is documented, the deployment files are valid, and every example command line in `docs/*.md`
//! and `README.md` parses with the real command-line definitions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::Parser;
use tb_config::{Config, Mode, ENV_VARS};
use tb_governor::cli::{Cli, Command, TbCli};

/// The workspace root (the parent of the `governor` package).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("governor/ has a parent")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every dotted key of `config/governor.example.toml`: `key = value` lines under the current
/// `[table]`, and the commented-out optional knobs written as `# key = "…"`.
fn example_keys(text: &str) -> BTreeSet<String> {
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.trim().to_owned();
            continue;
        }
        let (assignment, commented) = match line.strip_prefix('#') {
            Some(rest) => (rest.trim_start(), true),
            None => (line, false),
        };
        let Some((key, value)) = assignment.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        let is_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        // Comment prose such as "# true = shadow mode" is not a knob: a commented-out knob
        // always has a quoted value.
        if !is_key || (commented && !value.starts_with('"')) || table.is_empty() {
            continue;
        }
        keys.insert(format!("{table}.{key}"));
    }
    keys
}

/// The dotted paths of every leaf of a JSON value (the serialized default configuration).
fn leaves(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value.as_object() {
        Some(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        None => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn configuration_doc_lists_every_knob_and_variable() {
    let example = example_keys(&read("config/governor.example.toml"));
    assert!(
        example.contains("gates.storage.enter_utilization_min_ppm")
            && example.contains("rpc.max_body_bytes")
            && example.contains("rpc.token")
            && example.contains("signing.key_file"),
        "the example parser lost knobs: {example:?}"
    );

    // The example must itself list every knob the configuration has.
    let mut known = BTreeSet::new();
    let default = serde_json::to_value(Config::default()).expect("the default config serializes");
    leaves(&default, "", &mut known);
    let unlisted: Vec<_> = known.difference(&example).collect();
    assert!(
        unlisted.is_empty(),
        "config/governor.example.toml does not list {unlisted:?}"
    );
    let unknown: Vec<_> = example.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "config/governor.example.toml lists keys the configuration does not have: {unknown:?}"
    );

    let doc = read("docs/configuration.md");
    let missing: Vec<&String> = example
        .iter()
        .filter(|key| !doc.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document {missing:?}"
    );
    let missing_vars: Vec<&&str> = ENV_VARS
        .iter()
        .filter(|var| !doc.contains(&format!("`{var}`")))
        .collect();
    assert!(
        missing_vars.is_empty(),
        "docs/configuration.md does not document {missing_vars:?}"
    );
}

#[test]
fn deploy_config_is_a_valid_production_config() {
    let text = read("deploy/governor.toml");
    let config = Config::from_toml_str(&text, "deploy/governor.toml")
        .unwrap_or_else(|e| panic!("deploy/governor.toml does not validate: {e}"));
    assert_eq!(
        config.mode(),
        Mode::Shadow,
        "a launch starts in shadow mode"
    );
    assert_eq!(config.governor.data_dir, Path::new("/var/lib/tb-governor"));
    assert!(config.chain.dir.is_absolute() && config.chain.providers.is_absolute());
    let listen: std::net::SocketAddr = config.rpc.listen.parse().expect("rpc.listen parses");
    assert!(
        listen.ip().is_loopback(),
        "rpc.listen must stay on loopback"
    );
    assert!(config.signing.enabled, "production decisions are signed");
    assert_eq!(
        config.signing.key_file.as_deref(),
        Some(Path::new("/etc/tb-governor/node.key"))
    );
    assert!(
        config.signing.key_hex.is_none() && config.rpc.token.is_none(),
        "secrets do not belong in the config file"
    );
}

#[test]
fn deploy_unit_is_hardened_and_runs_the_daemon() {
    let unit = read("deploy/tb-governor.service");
    let lines: BTreeSet<&str> = unit.lines().map(str::trim).collect();
    for required in [
        "User=tb-governor",
        "ExecStart=/usr/local/bin/tb-governor run --config /etc/tb-governor/governor.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "EnvironmentFile=-/etc/tb-governor/env",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tb-governor",
        "ProtectHome=true",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "UMask=0077",
        "Restart=on-failure",
    ] {
        assert!(
            lines.contains(required),
            "deploy/tb-governor.service lacks `{required}`"
        );
    }
    let exec = lines
        .iter()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut args: Vec<&str> = exec.split_whitespace().collect();
    args[0] = "tb-governor";
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("ExecStart: {e}"));
    match cli.command {
        Command::Run(run) => assert_eq!(
            run.config.as_deref(),
            Some(Path::new("/etc/tb-governor/governor.toml"))
        ),
        other => panic!("ExecStart runs {other:?}, not `run`"),
    }
}

/// One example command found in a fenced code block.
#[derive(Debug)]
struct Example {
    /// `file:line` of its first line.
    place: String,
    /// The command as written (continuations joined).
    text: String,
    /// `tb-governor` or `tb-cli`.
    program: String,
    /// Its arguments, placeholders substituted.
    args: Vec<String>,
}

/// The logical lines (with their first line number) of every fenced code block of `text`.
fn fenced_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        let marker = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => {
                fence = Some(m);
                continue;
            }
            (Some(open), Some(m)) if open == m => {
                fence = None;
                if let Some(line) = pending.take() {
                    out.push(line);
                }
                continue;
            }
            (None, None) => continue,
            _ => {}
        }
        let line = raw.trim();
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(line);
                out.push((start, joined));
            }
        }
    }
    out
}

/// Splits a shell line into words, cutting it at an unquoted `#` comment and into separate
/// commands at unquoted `&&`, `||`, `;` and `|`. Quotes are removed; `$(…)` stays one word.
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut chars = line.chars().peekable();
    let finish = |word: &mut String, in_word: &mut bool, commands: &mut Vec<Vec<String>>| {
        if *in_word {
            if let Some(last) = commands.last_mut() {
                last.push(std::mem::take(word));
            }
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else {
                word.push(c);
            }
            continue;
        }
        if depth > 0 {
            word.push(c);
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                in_word = true;
            }
            '$' if chars.peek() == Some(&'(') => {
                word.push(c);
                if let Some(open) = chars.next() {
                    word.push(open);
                }
                depth = 1;
                in_word = true;
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => finish(&mut word, &mut in_word, &mut commands),
            '&' | '|' | ';' => {
                finish(&mut word, &mut in_word, &mut commands);
                if matches!(chars.peek(), Some('&' | '|')) {
                    chars.next();
                }
                commands.push(Vec::new());
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    finish(&mut word, &mut in_word, &mut commands);
    commands.retain(|c| !c.is_empty());
    commands
}

/// Replaces `<placeholder>` (which may contain spaces) by one word before splitting.
fn mark_placeholders(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let closes = after.find('>');
        match closes {
            Some(end) if after.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                out.push_str(&rest[..start]);
                out.push_str("PLACEHOLDER");
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A plausible value for a placeholder that is the value of `flag` (or a positional after it).
fn plausible(flag: Option<&str>) -> String {
    match flag.unwrap_or("") {
        "--epoch" | "--epochs" | "--seed" | "--limit" | "--before-epoch" | "--from-epoch"
        | "--epoch-blocks" | "--timeout" => "3",
        "--gate" => "storage",
        "--mode" | "mode" => "shadow",
        "--state" => "pending",
        "--scenario" => "healthy",
        "--trusted-key" => "1111111111111111111111111111111111111111111111111111111111111111",
        "--rpc" => "http://127.0.0.1:7878",
        _ => "x",
    }
    .to_owned()
}

fn is_placeholder(word: &str) -> bool {
    word.contains('$') || word.contains("PLACEHOLDER") || word == "…" || word == "..."
}

/// Drops shell redirections (`> f`, `2>&1`, `< f`) from a command's words.
fn without_redirections(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        let redirect = w.trim_start_matches(|c: char| c.is_ascii_digit());
        if redirect.starts_with('>') || redirect.starts_with('<') {
            // `>file` carries its target; a bare `>` takes the next word.
            skip_next = matches!(redirect, ">" | ">>" | "<");
            continue;
        }
        out.push(w);
    }
    out
}

/// The `tb-governor` / `tb-cli` invocation in `words`, if it is one.
fn invocation(words: &[String]) -> Option<(String, Vec<String>)> {
    let mut i = 0;
    // Environment assignments and wrappers in front of the command.
    while let Some(w) = words.get(i) {
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        });
        if assignment || matches!(w.as_str(), "env" | "exec" | "time") {
            i += 1;
        } else if w == "sudo" {
            i += 1;
            if words.get(i).is_some_and(|w| w == "-u") {
                i += 2;
            }
        } else {
            break;
        }
    }
    let program = words.get(i)?.as_str();
    match program {
        "tb-governor" | "tb-cli" => Some((program.to_owned(), words[i + 1..].to_vec())),
        "cargo" if words.get(i + 1).is_some_and(|w| w == "run") => {
            let rest = &words[i + 2..];
            let bin = rest
                .iter()
                .position(|w| w == "--bin")
                .and_then(|p| rest.get(p + 1))?;
            if bin != "tb-governor" && bin != "tb-cli" {
                return None;
            }
            let args = match rest.iter().position(|w| w == "--") {
                Some(p) => rest[p + 1..].to_vec(),
                None => Vec::new(),
            };
            Some((bin.clone(), args))
        }
        _ => None,
    }
}

/// Every example invocation of the two binaries in the fenced code blocks of `text`.
fn examples(file: &str, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    for (line_no, line) in fenced_lines(text) {
        let line = line.trim();
        let line = line.strip_prefix("$ ").unwrap_or(line);
        for words in shell_commands(&mark_placeholders(line)) {
            let words = without_redirections(words);
            let Some((program, raw_args)) = invocation(&words) else {
                continue;
            };
            let mut args = Vec::with_capacity(raw_args.len());
            for (k, word) in raw_args.iter().enumerate() {
                if is_placeholder(word) {
                    let before = k.checked_sub(1).and_then(|p| raw_args.get(p));
                    args.push(plausible(before.map(String::as_str)));
                } else {
                    args.push(word.clone());
                }
            }
            out.push(Example {
                place: format!("{file}:{line_no}"),
                text: line.to_owned(),
                program,
                args,
            });
        }
    }
    out
}

/// Parses one example with the real command line; `Err` is clap's message.
fn parse(example: &Example) -> Result<(), String> {
    let argv = std::iter::once(example.program.clone()).chain(example.args.iter().cloned());
    let result = match example.program.as_str() {
        "tb-governor" => Cli::try_parse_from(argv).map(drop),
        _ => TbCli::try_parse_from(argv).map(drop),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// `docs/*.md` and `README.md`, as (workspace-relative name, text).
fn markdown_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let docs = root().join("docs");
    let mut names: Vec<String> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("reading {}: {e}", docs.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".md"))
        .collect();
    names.sort();
    for name in names {
        let rel = format!("docs/{name}");
        files.push((rel.clone(), read(&rel)));
    }
    if root().join("README.md").exists() {
        files.push(("README.md".to_owned(), read("README.md")));
    }
    files
}

#[test]
fn every_example_command_in_the_docs_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut documented_programs = BTreeSet::new();
    for (file, text) in markdown_files() {
        for example in examples(&file, &text) {
            checked += 1;
            documented_programs.insert(example.program.clone());
            if let Err(message) = parse(&example) {
                let first = message.lines().next().unwrap_or_default().to_owned();
                failures.push(format!("{}: `{}`: {first}", example.place, example.text));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} example commands do not parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked >= 15 && documented_programs.len() == 2,
        "only {checked} example commands found ({documented_programs:?}): is the extraction broken?"
    );
}

#[test]
fn example_extraction_handles_shell_syntax() {
    let doc = "text\n```sh\n$ TB_GOVERNOR_SIGN=1 tb-governor replay --chain x/chain \\\n  --out out   # a comment\ncargo run -q --bin tb-cli -- governor intents --gate <gate name> && tb-cli governor snapshot --epoch $EPOCH --out \"$OUT\" > /dev/null\nb3sum out/snapshots/epoch-00000000000000000000.json\nsudo -u tb-governor tb-cli governor mode <mode> --reason 'a b' --operator $(whoami) | tee log\n```\n`tb-cli governor nope` outside a block\n";
    let found = examples("t.md", doc);
    let rendered: Vec<(String, Vec<String>)> = found
        .iter()
        .map(|e| (e.program.clone(), e.args.clone()))
        .collect();
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        rendered,
        vec![
            (
                "tb-governor".to_owned(),
                words("replay --chain x/chain --out out")
            ),
            (
                "tb-cli".to_owned(),
                words("governor intents --gate storage")
            ),
            (
                "tb-cli".to_owned(),
                words("governor snapshot --epoch 3 --out x")
            ),
            (
                "tb-cli".to_owned(),
                vec![
                    "governor".to_owned(),
                    "mode".to_owned(),
                    "shadow".to_owned(),
                    "--reason".to_owned(),
                    "a b".to_owned(),
                    "--operator".to_owned(),
                    "x".to_owned(),
                ]
            ),
        ]
    );
    assert_eq!(found[0].place, "t.md:3");
    assert!(found.iter().all(|e| parse(e).is_ok()), "{found:?}");
    let bad = Example {
        place: "t.md:1".to_owned(),
        text: "tb-cli governor nope".to_owned(),
        program: "tb-cli".to_owned(),
        args: words("governor nope"),
    };
    assert!(parse(&bad).is_err());
}

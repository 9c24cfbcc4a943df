//! `completions SHELL` and `man` of both binaries: generated from the clap definitions in
//! [`crate::cli`], so they always match the real flags.

use std::io::Write as _;

use anyhow::{Context, Result};

use crate::cli::{CompletionsArgs, ManArgs};

/// Writes `bytes` to stdout; a closed pipe (`… | head`) ends the output quietly.
fn emit(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// Prints the completion script of `cmd` (installed as `name`) for the chosen shell.
pub fn completions(mut cmd: clap::Command, name: &str, args: &CompletionsArgs) -> Result<bool> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    emit(&script)?;
    Ok(true)
}

/// Prints the manual page of `cmd`, or with `--out DIR` writes one page per command there
/// (`tb-governor.1`, `tb-governor-run.1`, …) and lists them.
pub fn man(cmd: clap::Command, args: &ManArgs) -> Result<bool> {
    let Some(dir) = &args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .context("rendering the manual page")?;
        emit(&page)?;
        return Ok(true);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)
        .with_context(|| format!("writing manual pages into {}", dir.display()))?;
    let mut listing = String::new();
    for page in written {
        listing.push_str(&format!("wrote {}\n", page.display()));
    }
    emit(listing.as_bytes())?;
    Ok(true)
}

/// Writes the page of `cmd` and of each visible subcommand, depth first.
fn write_pages(
    cmd: clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    written.push(clap_mangen::Man::new(cmd.clone()).generate_to(dir)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

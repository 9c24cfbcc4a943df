//! `tb-cli`: the Launch Governor's client for operators and auditors.

use std::process::ExitCode;

use clap::Parser;
use tb_governor::cli::{GovernorCommand, TbCli, TbCliCommand};
use tb_governor::commands;

fn main() -> ExitCode {
    let cli = TbCli::parse();
    let result = match &cli.command {
        TbCliCommand::Governor(GovernorCommand::Verify(args)) => commands::verify::run(args),
        TbCliCommand::Governor(GovernorCommand::Audit(args)) => commands::audit::run(args),
    };
    tb_governor::exit(result)
}

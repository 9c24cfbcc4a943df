//! `tb-cli`: the Launch Governor's client for operators and auditors.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tb_governor::cli::{GovernorCommand, TbCli, TbCliCommand};
use tb_governor::commands;

fn main() -> ExitCode {
    let cli = TbCli::parse();
    let result = match &cli.command {
        TbCliCommand::Governor(GovernorCommand::Verify(args)) => commands::verify::run(args),
        TbCliCommand::Governor(GovernorCommand::Audit(args)) => commands::audit::run(args),
        TbCliCommand::Governor(GovernorCommand::Status(args)) => commands::client::status(args),
        TbCliCommand::Governor(GovernorCommand::Intents(args)) => commands::client::intents(args),
        TbCliCommand::Governor(GovernorCommand::Decisions(args)) => {
            commands::client::decisions(args)
        }
        TbCliCommand::Governor(GovernorCommand::Snapshot(args)) => commands::client::snapshot(args),
        TbCliCommand::Governor(GovernorCommand::Exit(args)) => commands::client::exit(args),
        TbCliCommand::Governor(GovernorCommand::Mode(args)) => commands::client::mode(args),
        TbCliCommand::Governor(GovernorCommand::Peers(args)) => commands::client::peers(args),
        TbCliCommand::Governor(GovernorCommand::Compare(args)) => commands::compare::run(args),
        TbCliCommand::Completions(args) => {
            commands::shell::completions(TbCli::command(), "tb-cli", args)
        }
        TbCliCommand::Man(args) => commands::shell::man(TbCli::command(), args),
    };
    tb_governor::exit(result)
}

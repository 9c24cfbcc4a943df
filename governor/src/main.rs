//! `tb-governor`: the daemon and the offline tools.

use std::process::ExitCode;

use clap::Parser;
use tb_governor::cli::{Cli, Command};
use tb_governor::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Demo(args) => commands::demo::run(args),
    };
    tb_governor::exit(result.map(|()| true))
}

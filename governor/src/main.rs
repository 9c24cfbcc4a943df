//! `tb-governor`: the daemon and the offline tools.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
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
        Command::Completions(args) => {
            return tb_governor::exit(commands::shell::completions(
                Cli::command(),
                "tb-governor",
                args,
            ))
        }
        Command::Man(args) => return tb_governor::exit(commands::shell::man(Cli::command(), args)),
    };
    tb_governor::exit(result.map(|()| true))
}

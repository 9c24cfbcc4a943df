//! `tb-governor`: the daemon and the offline tools.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tb_governor::cli::{Cli, Command};
use tb_governor::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = |r: anyhow::Result<()>| r.map(|()| true);
    let result = match &cli.command {
        Command::Simulate(args) => done(commands::simulate::run(args)),
        Command::Replay(args) => done(commands::replay::run(args)),
        Command::Keygen(args) => done(commands::keygen::run(args)),
        Command::Run(args) => done(commands::run::run(args)),
        Command::Demo(args) => done(commands::demo::run(args)),
        Command::Sign(args) => commands::sign::run(args),
        Command::Completions(args) => {
            return tb_governor::exit(commands::shell::completions(
                Cli::command(),
                "tb-governor",
                args,
            ))
        }
        Command::Man(args) => return tb_governor::exit(commands::shell::man(Cli::command(), args)),
    };
    tb_governor::exit(result)
}

//! The `custos` binary: parses the command line and hands each command to
//! its module. Exit codes: 0 success, 1 invalid input or a failed start (a
//! policy file with problems, an unreadable file, a bad configuration), 2 a
//! usage error (from clap), 3 a policy amendment whose effective date comes
//! before its notice period ends.

use std::process::ExitCode;

use clap::Parser;

mod audit_cmd;
mod cli;
mod instance_cmd;
mod lifecycle_cmd;
mod policy_cmd;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match args.command {
        cli::Command::Policy(cmd) => policy_cmd::run(cmd),
        cli::Command::Serve(args) => instance_cmd::serve(args),
        cli::Command::Admin(cmd) => instance_cmd::admin(cmd),
        cli::Command::Audit(cmd) => audit_cmd::run(cmd),
        cli::Command::Jobs(cli::JobsCommand::Run { instance, now }) => lifecycle_cmd::run(&instance, now.as_deref()),
        cli::Command::Migrate { instance } => instance_cmd::migrate(&instance),
        cli::Command::Simulate { instance, until, now, json } => {
            lifecycle_cmd::simulate(&instance, &until, now.as_deref(), json)
        }
    }
}

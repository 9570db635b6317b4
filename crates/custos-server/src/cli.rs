//! The command line, declared with clap. Commands arrive issue by issue;
//! each one's behaviour lives in its own module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "custos", version, about = "Custos: a privacy engine that keeps a privacy policy's promises in code")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check, render and compare policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file: a one-line summary, or every problem with its key path and line.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Render a policy file as the published privacy policy.
    Render(RenderArgs),
    /// Compare two versions of a policy: the changes, whether they are significant, the earliest effective date.
    Diff {
        /// The version in force.
        old: PathBuf,
        /// The amended version.
        new: PathBuf,
        /// The date the amendment is announced (YYYY-MM-DD); defaults to the new version's notice date.
        #[arg(long, value_name = "DATE")]
        announced: Option<jiff::civil::Date>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The policy file (TOML).
    pub(crate) file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RenderFormat::Markdown)]
    pub(crate) format: RenderFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RenderFormat {
    Markdown,
    Html,
}

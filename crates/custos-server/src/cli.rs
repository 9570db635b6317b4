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
    /// Run the HTTP API (defaults: ./custos-data, the bundled b.stage policy, 127.0.0.1:8080).
    Serve(ServeArgs),
    /// Check, render and compare policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Administrative tasks on a data folder.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The verifiable audit log: checkpoints, export, offline verification.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The lifecycle jobs (dormancy, destruction, statutory holds, notices).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Run the schema migrations and exit: the data folder's (SQLite), or a PostgreSQL database's with --database.
    Migrate {
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Show what the policy will do to the current data until a date (notices, dormancy, destruction, expiring records), changing nothing.
    Simulate {
        #[command(flatten)]
        instance: InstanceArgs,
        /// The last day to show (YYYY-MM-DD, or an RFC 3339 time).
        #[arg(long, value_name = "DATE")]
        until: String,
        /// Start from this moment instead of now.
        #[arg(long, value_name = "DATE")]
        now: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Run every lifecycle job once and print what it did (deterministic for a given --now).
    Run {
        #[command(flatten)]
        instance: InstanceArgs,
        /// Run as of this moment (YYYY-MM-DD, or an RFC 3339 time) instead of now.
        #[arg(long, value_name = "DATE")]
        now: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Issue a signed checkpoint of the log now and print it (save it: it is what you verify against later).
    Checkpoint {
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Export the whole log (entries and signed checkpoints, JSON lines) for offline verification.
    Export {
        #[command(flatten)]
        instance: InstanceArgs,
        /// Where to write the export.
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify an exported log offline: every entry, root and signature, and consistency with a saved checkpoint.
    Verify {
        /// The exported log.
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        /// A checkpoint you saved earlier (from `custos audit checkpoint` or GET /v1/audit/checkpoint).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The checkpoint key you trust (hex); default: the saved checkpoint's.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
    },
    /// Print the log's checkpoint public key (hex), to pin.
    PublicKey {
        #[command(flatten)]
        instance: InstanceArgs,
    },
}

/// Where the data lives and which policy applies; shared by `serve` and `admin`.
#[derive(Debug, Args)]
pub(crate) struct InstanceArgs {
    /// A TOML configuration file (also CUSTOS_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The data folder (default ./custos-data; also CUSTOS_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The policy file (default: the bundled b.stage policy; also CUSTOS_POLICY).
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// Serve from PostgreSQL instead of the data folder: postgres://user@host:port/db (also CUSTOS_DATABASE_URL or database_url in the config file, which keep a password out of the command line). The database needs LC_COLLATE 'C'.
    #[arg(long, value_name = "URL")]
    pub(crate) database: Option<String>,
    /// The PostgreSQL database of the key store, when apart from --database (also CUSTOS_KEY_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub(crate) key_database: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) instance: InstanceArgs,
    /// Address and port to listen on (default 127.0.0.1:8080; also CUSTOS_LISTEN).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Serve a demo: made-up members, records, consents and open requests (demo data only) in a folder of their own (default ./custos-demo-data), e-mail caught and shown at /demo/mail.
    #[arg(long)]
    pub(crate) demo: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Create a platform API key; the key is printed once and stored only as a hash.
    CreateKey {
        #[command(flatten)]
        instance: InstanceArgs,
        /// Limit the key to one service (default: a platform-wide key).
        #[arg(long, value_name = "ID")]
        service: Option<String>,
        /// Purposes the key may use, comma-separated (default: every purpose of the policy).
        #[arg(long, value_name = "IDS", value_delimiter = ',')]
        purposes: Vec<String>,
        /// A label to recognise the key by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// For benchmarks and demos only: fill the data folder with made-up members (name, e-mail, phone; no password) and records, stored as real sign-ups are.
    SeedSynthetic {
        #[command(flatten)]
        instance: InstanceArgs,
        /// Members to add.
        #[arg(long, value_name = "N")]
        members: u64,
        /// Records per member (0: none).
        #[arg(long, value_name = "K", default_value_t = 0)]
        records_per_member: u32,
        /// Every member's sign-up and last activity (YYYY-MM-DD, or an RFC 3339 time).
        #[arg(long, value_name = "DATE", value_parser = moment)]
        last_activity: jiff::Timestamp,
        /// The first record date (YYYY-MM-DD); needed with records.
        #[arg(long, value_name = "DATE")]
        record_date_from: Option<jiff::civil::Date>,
        /// Days the record dates are spread over, from --record-date-from.
        #[arg(long, value_name = "D", default_value_t = 1)]
        record_days: u32,
        /// The record class (default: the policy's first class counted from the record date).
        #[arg(long, value_name = "ID")]
        record_class: Option<String>,
        /// Seed as of this moment (YYYY-MM-DD, or an RFC 3339 time) instead of now.
        #[arg(long, value_name = "DATE", value_parser = moment)]
        now: Option<jiff::Timestamp>,
    },
}

/// A day (its start, UTC) or an RFC 3339 time.
fn moment(s: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let day =
        s.parse::<jiff::civil::Date>().map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    jiff::tz::Offset::UTC.to_timestamp(day.to_datetime(jiff::civil::Time::midnight())).map_err(|e| e.to_string())
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
    /// Records of processing activities (GDPR Art. 30), as JSON.
    Ropa,
}

//! `custos-bench`: the benchmark harness (DESIGN §9). It starts `custos
//! serve` itself on 127.0.0.1 (a free port, a scratch data folder), drives
//! it over real HTTP with concurrent clients, measures a raw SQLite baseline
//! in the same run, stops everything it started, and prints (or writes into
//! a Markdown file) a table of medians over several runs. The lifecycle
//! sweeps (`lifecycle.rs`) run `custos jobs run` on data folders filled by
//! `custos admin seed-synthetic`, once per invocation.
//!
//! With `--backend postgres` the same HTTP runs, audit verification, access
//! export and lifecycle sweeps run on a throwaway PostgreSQL cluster the
//! harness starts (`pg.rs`), each instance on a fresh database of it, next
//! to raw PostgreSQL baselines measured in the same run.
//!
//! It builds nothing: it runs the `custos` binary next to its own executable
//! (`target/release/custos`), so build that first:
//! `cargo build --release -p custos-server && cargo run --release -p custos-bench`.

mod audit;
mod baseline;
mod clock;
mod export;
mod lifecycle;
mod load;
mod pg;
mod report;
mod server;
mod stats;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hyper::StatusCode;

use crate::load::{Until, Work};
use crate::report::{Ledgers, Phase, Run};
use crate::server::{Scratch, Server};

/// The b.stage policy with the operator sign-up's password made optional,
/// so that sign-ups can be measured without Argon2id (DESIGN §9 excludes
/// hashing from the sign-up target).
const NO_PASSWORD_POLICY: &str = include_str!("../policies/bstage-no-password.toml");

const USAGE: &str = "usage: custos-bench [--clients N] [--seconds S] [--signups N] [--password-signups N] \
[--runs N] [--load-threads N] [--audit-entries N (0: skip)] [--lifecycle-members N (0: skip)] \
[--lifecycle-records N (0: skip)] [--export-records N (0: skip)] [--export-runs N] [--only lifecycle|export] \
[--backend sqlite|postgres] [--out FILE] [--date TEXT] [--custos PATH]";

/// Where the servers keep their data, and what the baselines measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The data folder (the default); raw SQLite baselines.
    Sqlite,
    /// A throwaway PostgreSQL cluster (`custos serve --database URL`); raw
    /// PostgreSQL baselines on the same cluster.
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The command line; every figure has a default that finishes in a few minutes.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    /// Concurrent HTTP clients, each on its own keep-alive connection.
    pub(crate) clients: usize,
    /// Length of the read phase, the consent phase, the HTTP floor and of
    /// each baseline measurement.
    pub(crate) seconds: u64,
    /// Sign-ups without a password; they are also the subjects read.
    pub(crate) signups: u64,
    /// Sign-ups through the published b.stage point (Argon2id password).
    pub(crate) password_signups: u64,
    /// Full repetitions; the report gives medians.
    pub(crate) runs: usize,
    /// Worker threads of the load generator's runtime.
    pub(crate) load_threads: usize,
    /// Audit entries to fill a server with, export and verify; 0 skips it.
    pub(crate) audit_entries: u64,
    /// Members the dormancy sweep moves; 0 skips it.
    pub(crate) lifecycle_members: u64,
    /// Records the retention sweep destroys (rounded up to whole members of
    /// ten records); 0 skips it.
    pub(crate) lifecycle_records: u64,
    /// Only the lifecycle sweeps: no HTTP runs, no audit verification.
    pub(crate) lifecycle_only: bool,
    /// Records of the member whose access export is timed; 0 skips it.
    pub(crate) export_records: u64,
    /// Exports timed.
    pub(crate) export_runs: usize,
    /// Only the export.
    pub(crate) export_only: bool,
    pub(crate) backend: Backend,
    pub(crate) out: Option<PathBuf>,
    pub(crate) date: Option<String>,
    pub(crate) custos: Option<PathBuf>,
    /// The arguments as given, for the report's "command" line.
    pub(crate) given: Vec<String>,
}

fn parse_args(given: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        clients: 32,
        seconds: 10,
        signups: 10_000,
        password_signups: 200,
        runs: 3,
        load_threads: 1,
        audit_entries: 1_000_000,
        lifecycle_members: 20_000,
        lifecycle_records: 200_000,
        lifecycle_only: false,
        export_records: 10_000,
        export_runs: 20,
        export_only: false,
        backend: Backend::Sqlite,
        out: None,
        date: None,
        custos: None,
        given: given.clone(),
    };
    let mut it = given.into_iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: {value:?} is not a positive whole number"))
        };
        match flag.as_str() {
            "--clients" => args.clients = number()? as usize,
            "--seconds" => args.seconds = number()?,
            "--signups" => args.signups = number()?,
            "--password-signups" => args.password_signups = number()?,
            "--runs" => args.runs = number()? as usize,
            "--load-threads" => args.load_threads = number()? as usize,
            "--audit-entries" => {
                args.audit_entries = value.parse().map_err(|_| format!("{flag}: {value:?} is not a whole number"))?
            }
            "--lifecycle-members" | "--lifecycle-records" => {
                let n = value.parse().map_err(|_| format!("{flag}: {value:?} is not a whole number"))?;
                if flag == "--lifecycle-members" { args.lifecycle_members = n } else { args.lifecycle_records = n }
            }
            "--export-records" => {
                args.export_records = value.parse().map_err(|_| format!("{flag}: {value:?} is not a whole number"))?
            }
            "--export-runs" => args.export_runs = number()? as usize,
            "--only" if value == "lifecycle" => args.lifecycle_only = true,
            "--only" if value == "export" => args.export_only = true,
            "--only" => return Err(format!("--only: {value:?} is not `lifecycle` or `export`\n{USAGE}")),
            "--backend" if value == "sqlite" => args.backend = Backend::Sqlite,
            "--backend" if value == "postgres" => args.backend = Backend::Postgres,
            "--backend" => return Err(format!("--backend: {value:?} is not `sqlite` or `postgres`\n{USAGE}")),
            "--out" => args.out = Some(PathBuf::from(value)),
            "--date" => args.date = Some(value),
            "--custos" => args.custos = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

fn main() -> ExitCode {
    let given: Vec<String> = std::env::args().skip(1).collect();
    if given.iter().any(|a| a == "-h" || a == "--help") {
        let _ = writeln!(std::io::stdout().lock(), "{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(given) {
        Ok(a) => a,
        Err(e) => {
            say(&e);
            return ExitCode::from(2);
        }
    };
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("error: {e}"));
            ExitCode::from(1)
        }
    }
}

fn custos_binary(args: &Args) -> Result<PathBuf, String> {
    if let Some(p) = &args.custos {
        return Ok(p.clone());
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find the harness's own executable: {e}"))?;
    let custos = me.with_file_name("custos");
    if custos.is_file() {
        Ok(custos)
    } else {
        Err(format!(
            "no custos binary at {}: run `cargo build --release -p custos-server` first (or pass --custos PATH)",
            custos.display()
        ))
    }
}

/// The date of the run, from `--date` or the `date` command (UTC).
fn run_date(args: &Args) -> Result<String, String> {
    if let Some(d) = &args.date {
        return Ok(d.clone());
    }
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map_err(|e| format!("cannot run date (pass --date): {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn bench(args: &Args) -> Result<(), String> {
    let custos = custos_binary(args)?;
    let date = run_date(args)?;
    let policy_dir = Scratch::new("policy")?;
    let policy = policy_dir.0.join("bstage-no-password.toml");
    std::fs::write(&policy, NO_PASSWORD_POLICY).map_err(|e| format!("cannot write {}: {e}", policy.display()))?;
    check_policy(&custos, &policy)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.load_threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load generator's runtime: {e}"))?;
    let machine = report::Machine::probe(&std::env::temp_dir());
    let cluster = match args.backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            say("starting a throwaway PostgreSQL cluster");
            Some(pg::Cluster::start()?)
        }
    };
    let cluster = cluster.as_ref();
    let database = cluster.map(|c| c.description.as_str());
    if !args.lifecycle_only && !args.export_only {
        let mut runs = Vec::with_capacity(args.runs);
        for n in 1..=args.runs {
            say(&format!("run {n} of {}", args.runs));
            runs.push(run_once(args, &custos, &policy, &runtime, cluster)?);
        }
        let audit = match args.audit_entries {
            0 => None,
            _ => Some(audit::run(args, &custos, &policy, &runtime, cluster)?),
        };
        let block = report::render(&machine, &date, args, &runs, audit.as_ref(), database);
        let _ = std::io::stdout().lock().write_all(block.as_bytes());
        if let Some(out) = &args.out {
            match args.backend {
                Backend::Sqlite => report::write_into(out, &block)?,
                Backend::Postgres => report::write_section_into(out, "postgres", "PostgreSQL", &block)?,
            }
            say(&format!("wrote {}", out.display()));
        }
    }
    if args.export_records > 0 && !args.lifecycle_only {
        let measured = export::run(&custos, args.export_records, args.export_runs, cluster)?;
        let block = report::render_export(&machine, &date, args, &measured, database);
        let _ = std::io::stdout().lock().write_all(block.as_bytes());
        if let Some(out) = &args.out {
            match args.backend {
                Backend::Sqlite => report::write_section_into(out, "export", "Access export", &block)?,
                Backend::Postgres => {
                    report::write_section_into(out, "postgres-export", "PostgreSQL: access export", &block)?
                }
            }
            say(&format!("wrote the access export into {}", out.display()));
        }
    }
    if args.lifecycle_members + args.lifecycle_records > 0 && !args.export_only {
        let sweeps = lifecycle::run(args, &custos, cluster)?;
        let block = report::render_lifecycle(&machine, &date, args, &sweeps, database);
        let _ = std::io::stdout().lock().write_all(block.as_bytes());
        if let Some(out) = &args.out {
            match args.backend {
                Backend::Sqlite => report::write_lifecycle_into(out, &block)?,
                Backend::Postgres => {
                    report::write_section_into(out, "postgres-lifecycle", "PostgreSQL: lifecycle sweeps", &block)?
                }
            }
            say(&format!("wrote the lifecycle sweeps into {}", out.display()));
        }
    }
    Ok(())
}

fn check_policy(custos: &Path, policy: &Path) -> Result<(), String> {
    let out = Command::new(custos)
        .args(["policy", "check"])
        .arg(policy)
        .output()
        .map_err(|e| format!("cannot run {} policy check: {e}", custos.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the benchmark policy is not valid:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// One full measurement: baseline, then the real b.stage sign-up (with a
/// password), then sign-ups without a password, reads of those subjects,
/// consent writes on them and the HTTP floor.
fn run_once(
    args: &Args,
    custos: &Path,
    policy: &Path,
    runtime: &tokio::runtime::Runtime,
    cluster: Option<&Arc<pg::Cluster>>,
) -> Result<Run, String> {
    let each = Duration::from_secs(args.seconds);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    say(&format!("  baseline: raw {}, {} s per measurement", args.backend.name(), args.seconds));
    let base = match cluster {
        Some(cluster) => pg::baseline(cluster, each, threads)?,
        None => {
            let dir = Scratch::new("baseline")?;
            baseline::run(&dir.0, each, threads)?
        }
    };

    say(&format!("  sign-ups with Argon2id password: {} with {} clients", args.password_signups, args.clients));
    let server = Server::start(custos, "bstage", None, cluster)?;
    let signup_pw =
        phase(&server, runtime, args.clients, Until::Count(args.password_signups), signup_work(&server, true))?.0;
    let memory_pw = server.memory_kib()?;
    server.stop()?;

    say(&format!("  sign-ups without password: {} with {} clients", args.signups, args.clients));
    let server = Server::start(custos, "no-password", Some(policy), cluster)?;
    let (signup, ids) = phase(&server, runtime, args.clients, Until::Count(args.signups), signup_work(&server, false))?;
    say(&format!("  audited reads of {} subjects: {} s with {} clients", ids.len(), args.seconds, args.clients));
    let read = phase(&server, runtime, args.clients, Until::For(each), read_work(&server, ids.clone())?)?.0;
    let memory = server.memory_kib()?;
    say(&format!("  consent writes on {} subjects: {} s with {} clients", ids.len(), args.seconds, args.clients));
    let (work, sent) = consent_work(server.addr, server.token.clone(), ids.clone())?;
    let audit_before = server.audit_entries()?;
    let consent = phase(&server, runtime, args.clients, Until::For(each), work)?.0;
    let audit_added = server.audit_entries()?.saturating_sub(audit_before);
    let consent_ledgers = ledgers(&server, &ids, &sent, consent.ok, audit_added)?;
    say(&format!("  HTTP floor, GET /health: {} s with {} clients", args.seconds, args.clients));
    let floor = phase(&server, runtime, args.clients, Until::For(each), health_work(&server))?.0;
    server.stop()?;
    Ok(Run { base, signup_pw, signup, read, consent, consent_ledgers, floor, memory_pw, memory })
}

/// Runs one phase; reads the group-commit counters and the CPU and storage
/// use around it.
fn phase(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    clients: usize,
    until: Until,
    work: Work,
) -> Result<(Phase, Vec<String>), String> {
    let (commits, usage) = (server.commits()?, server.usage()?);
    let mut outcome = runtime.block_on(load::run(server.addr, clients, until, Arc::new(work)))?;
    let (used, jobs_per_commit) = (usage.until(server.usage()?), commits.jobs_per_commit_until(server.commits()?));
    if let (Some(e), Some((first, last))) = (&mut outcome.first_error, outcome.errors_between) {
        e.push_str(&format!(
            " ({} errors from {:.2} s to {:.2} s into the phase)",
            outcome.errors,
            first.as_secs_f64(),
            last.as_secs_f64()
        ));
        say(&format!("    {} errors; the first: {e}", outcome.errors));
    }
    let ids = std::mem::take(&mut outcome.ids);
    Ok((Phase::from_outcome(outcome, jobs_per_commit, used), ids))
}

/// Business-operator sign-ups, each with its own e-mail and KR mobile number.
fn signup_work(server: &Server, with_password: bool) -> Work {
    let (addr, token) = (server.addr, server.token.clone());
    Work {
        make: Box::new(move |n| {
            let mut items = serde_json::json!({
                "name": format!("Bench Operator {n}"),
                "email": format!("op{n}@example.com"),
                "mobile_phone": format!("010-{:04}-{:04}", 2000 + n / 10_000, n % 10_000),
            });
            if with_password {
                items["password"] = format!("correct horse battery staple {n}").into();
            }
            let body = serde_json::json!({
                "kind": "business_operator",
                "collection_point": "business_operator_signup",
                "source": "direct_entry",
                "items": items,
            });
            load::request("POST", addr, "/v1/subjects", &token, Some(body.to_string().into_bytes()))
        }),
        expect: StatusCode::CREATED,
        keep_ids: true,
    }
}

/// Purpose-bound reads of subjects chosen at random (reproducibly).
fn read_work(server: &Server, ids: Vec<String>) -> Result<Work, String> {
    if ids.is_empty() {
        return Err("no subjects to read: every sign-up failed".to_owned());
    }
    let (addr, token) = (server.addr, server.token.clone());
    Ok(Work {
        make: Box::new(move |n| {
            let id = &ids[(stats::mix(n) % ids.len() as u64) as usize];
            load::request("GET", addr, &format!("/v1/subjects/{id}?purpose=member_management"), &token, None)
        }),
        expect: StatusCode::OK,
        keep_ids: false,
    })
}

/// The notice a member is shown with the consent box; the server keeps only
/// its SHA-256.
const CONSENT_NOTICE: &str = "We would like to send you news about events and offers by e-mail and text message. \
You can withdraw this consent at any time on the web page or by e-mail.";

/// Consent writes on subjects chosen at random (reproducibly, in another
/// order than the reads): `marketing` granted, withdrawn, granted… on each
/// member in turn (its first write is a grant), with the notice shown and
/// the member's IP address and user agent as evidence. Also returns how
/// many writes were sent to each member.
fn consent_work(
    addr: std::net::SocketAddr,
    token: String,
    ids: Vec<String>,
) -> Result<(Work, Arc<Vec<AtomicU32>>), String> {
    if ids.is_empty() {
        return Err("no subjects to record consents for: every sign-up failed".to_owned());
    }
    let body = |granted: bool| {
        serde_json::json!({
            "purpose": "marketing",
            "granted": granted,
            "channel": "web_page",
            "notice_text": CONSENT_NOTICE,
            "evidence": {"ip": "203.0.113.7", "user_agent": "custos-bench/1 (consent phase)"},
        })
        .to_string()
        .into_bytes()
    };
    let (grant, withdraw) = (body(true), body(false));
    let sent: Arc<Vec<AtomicU32>> = Arc::new(ids.iter().map(|_| AtomicU32::new(0)).collect());
    let counts = sent.clone();
    let work = Work {
        make: Box::new(move |n| {
            let i = (stats::mix(n ^ CONSENT_SEQUENCE) % ids.len() as u64) as usize;
            let before = counts[i].fetch_add(1, Ordering::Relaxed);
            let body = if before.is_multiple_of(2) { grant.clone() } else { withdraw.clone() };
            load::request("POST", addr, &format!("/v1/subjects/{}/consents", ids[i]), &token, Some(body))
        }),
        expect: StatusCode::CREATED,
        keep_ids: false,
    };
    Ok((work, sent))
}

/// Sets the consent phase's random sequence apart from the reads'.
const CONSENT_SEQUENCE: u64 = 0xC0_5E47;

/// The members' consent ledgers after the consent phase: mean and longest
/// length from what was sent, the longest read back from the server (one
/// audited `GET …/consents` after the phase, outside the measurement).
fn ledgers(server: &Server, ids: &[String], sent: &[AtomicU32], ok: u64, audit_added: u64) -> Result<Ledgers, String> {
    let counts: Vec<u32> = sent.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let (busiest, longest_sent) =
        counts.iter().copied().enumerate().max_by_key(|(_, c)| *c).ok_or("no members to read a ledger of")?;
    let path = format!("/v1/subjects/{}/consents", ids[busiest]);
    let longest_read = match server::http_get_as(server.addr, &path, Some(&server.token))? {
        (200, text) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["history"].as_array().map(|h| h.len() as u64))
            .ok_or_else(|| format!("GET {path}: no history in the answer"))?,
        (status, text) => return Err(format!("GET {path} answered {status}: {text}")),
    };
    Ok(Ledgers {
        members: ids.len() as u64,
        mean: ok as f64 / ids.len().max(1) as f64,
        longest_sent: u64::from(longest_sent),
        longest_read,
        audit_per_write: audit_added as f64 / ok.max(1) as f64,
    })
}

/// `GET /health`: no key, no store. What the HTTP stack and the load
/// generator cost on this machine, the ceiling of every HTTP figure.
fn health_work(server: &Server) -> Work {
    let addr = server.addr;
    Work {
        make: Box::new(move |_| load::request("GET", addr, "/health", "", None)),
        expect: StatusCode::OK,
        keep_ids: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark policy is the published one with only the marked change:
    /// it cannot drift from `policies/bstage.toml` unnoticed.
    #[test]
    fn benchmark_policy_differs_only_in_the_password() {
        let published = include_str!("../../../policies/bstage.toml");
        let body: String = NO_PASSWORD_POLICY.lines().skip(4).map(|l| format!("{l}\n")).collect();
        let changed = "# custos-bench: the password is optional here (the published policy requires\n\
                       # it), so that a sign-up can be measured without Argon2id hashing, as DESIGN\n\
                       # §9 states the sign-up target.\n\
                       required = [\"name\", \"email\", \"mobile_phone\"]\n\
                       optional = [\"password\"]\n";
        assert_eq!(body.matches(changed).count(), 1);
        let original = "required = [\"name\", \"email\", \"mobile_phone\", \"password\"]\n";
        let restored = body.replacen(changed, original, 1);
        // Only the business operator's point changes; the non-business one keeps its password.
        assert_eq!(restored, published);
    }

    /// Each member's consent writes alternate, starting with a grant, and
    /// every body is one the API takes (its fields are those of
    /// `RecordConsent`, which refuses unknown ones).
    #[test]
    fn consent_writes_alternate_per_member() {
        let ids: Vec<String> = (0..7).map(|i| format!("sub_{i}")).collect();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let (work, sent) = consent_work(addr, "ck_test".into(), ids.clone()).unwrap();
        assert_eq!(work.expect, StatusCode::CREATED);
        let mut last: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        for n in 0..200 {
            let request = (work.make)(n);
            assert_eq!(request.method(), "POST");
            assert_eq!(request.headers()["authorization"], "Bearer ck_test");
            let path = request.uri().path().to_owned();
            let id = path.strip_prefix("/v1/subjects/").and_then(|p| p.strip_suffix("/consents")).unwrap().to_owned();
            assert!(ids.contains(&id), "{path}");
            let body = body_bytes(request.into_body());
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["channel", "evidence", "granted", "notice_text", "purpose"]);
            assert_eq!((v["purpose"].as_str(), v["channel"].as_str()), (Some("marketing"), Some("web_page")));
            assert!(v["evidence"]["ip"].as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
            let granted = v["granted"].as_bool().unwrap();
            assert_eq!(granted, last.get(&id).is_none_or(|previous| !previous), "member {id}, write {n}");
            last.insert(id, granted);
        }
        let total: u32 = sent.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 200);
        assert!(sent.iter().all(|c| c.load(Ordering::Relaxed) > 0), "every member gets writes");
        assert!(consent_work(addr, String::new(), Vec::new()).is_err());
    }

    fn body_bytes(body: load::Body) -> Vec<u8> {
        use http_body_util::BodyExt;
        let collected = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(body.collect());
        collected.unwrap().to_bytes().to_vec()
    }

    #[test]
    fn arguments() {
        let a = parse_args(vec!["--clients".into(), "8".into(), "--out".into(), "x.md".into()]).unwrap();
        assert_eq!((a.clients, a.seconds, a.out), (8, 10, Some(PathBuf::from("x.md"))));
        assert!(parse_args(vec!["--clients".into(), "0".into()]).is_err());
        assert!(parse_args(vec!["--bogus".into(), "1".into()]).is_err());
        assert!(parse_args(vec!["--runs".into()]).is_err());
        assert_eq!(a.audit_entries, 1_000_000);
        let a = parse_args(vec!["--audit-entries".into(), "0".into()]).unwrap();
        assert_eq!(a.audit_entries, 0);
        assert!(parse_args(vec!["--audit-entries".into(), "-1".into()]).is_err());
        assert_eq!((a.lifecycle_members, a.lifecycle_records, a.lifecycle_only), (20_000, 200_000, false));
        let a = parse_args(
            ["--lifecycle-members", "1000000", "--lifecycle-records", "0", "--only", "lifecycle"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        assert_eq!((a.lifecycle_members, a.lifecycle_records, a.lifecycle_only), (1_000_000, 0, true));
        assert!(parse_args(vec!["--only".into(), "http".into()]).is_err());
    }

    #[test]
    fn backend_argument() {
        assert_eq!(parse_args(Vec::new()).unwrap().backend, Backend::Sqlite);
        let a = parse_args(["--backend", "postgres", "--runs", "1"].map(String::from).to_vec()).unwrap();
        assert_eq!((a.backend, a.runs), (Backend::Postgres, 1));
        assert_eq!(a.given, ["--backend", "postgres", "--runs", "1"]);
        let a = parse_args(["--backend", "postgres", "--backend", "sqlite"].map(String::from).to_vec()).unwrap();
        assert_eq!(a.backend, Backend::Sqlite);
        for wrong in ["postgresql", "PostgreSQL", "mysql", ""] {
            let e = parse_args(vec!["--backend".into(), wrong.into()]).unwrap_err();
            assert!(e.contains("not `sqlite` or `postgres`"), "{e}");
        }
        assert!(parse_args(vec!["--backend".into()]).is_err());
        assert_eq!((Backend::Sqlite.name(), Backend::Postgres.name()), ("SQLite", "PostgreSQL"));
    }
}

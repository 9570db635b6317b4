//! Lifecycle sweeps (DESIGN §9: a dormancy sweep moving 1,000,000 members
//! in ≤ 60 s; the issue also asks for the retention sweep over 10,000,000
//! records, and the memory of both). Once per invocation:
//!
//! - **dormancy**: a fresh instance is filled with `custos admin
//!   seed-synthetic` (b.stage operators, inactive since 2024-06-01, no
//!   records), then `custos jobs run --now 2025-06-02` (a year and a day
//!   later: every member is past the one-year threshold and gets the
//!   30-day notice, so nobody is moved yet) and `custos jobs run --now
//!   2025-07-03` (31 days later: every member moves to the dormant store,
//!   re-encrypted under a dormant key) are timed apart;
//! - **retention**: another instance gets members active on 2026-01-10 with
//!   ten `service_visitation_records` each (kept 3 months), dated over the
//!   80 days before; `custos jobs run --now 2026-06-01` destroys every
//!   record and every hold key;
//! - **baselines**, in the same run with the store's durability: the same
//!   number of member-sized rows copied to another file (SQLite) or schema
//!   (PostgreSQL) and deleted, 500 per transaction, as the dormancy sweep
//!   pages; the same number of record-sized rows deleted by class and
//!   date, 5,000 per transaction, as the retention sweep pages. On SQLite
//!   in the scratch folder (WAL, `synchronous=FULL`, `secure_delete=ON`);
//!   on PostgreSQL in a fresh database of the harness's cluster
//!   (`synchronous_commit` on), see `pg::move_baseline` and
//!   `pg::delete_baseline`.
//!
//! An instance is a scratch folder with the root key and, on SQLite, the
//! data folder; with `--backend postgres` its data are in a fresh database
//! of the harness's cluster (`--database URL` on every command), whose
//! schemas `custos`, `custos_keys` and `custos_dormant` the harness reads
//! between two commands, as it reads the SQLite files otherwise.
//!
//! Each `custos` command runs as its own process (start-up included in its
//! time); its peak resident memory (`VmHWM`) and bytes written are sampled
//! from `/proc` every 10 ms, its CPU time is the children's time of the
//! harness around it. On PostgreSQL the cluster's CPU time and the WAL it
//! logged are read around it too, and a `CHECKPOINT` precedes each timed
//! `jobs run` (and each timed baseline), so that none of them pays for the
//! writes of the step before.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::pg::{self, Cluster, Database};
use crate::server::{self, Scratch};
use crate::stats::mix;
use crate::{Args, clock, say};

/// Records per member in the retention scenario.
pub(crate) const RECORDS_PER_MEMBER: u64 = 10;
/// Dormancy: every member signed up and was last active at this moment.
pub(crate) const DORMANT_SINCE: &str = "2024-06-01T00:00:00Z";
/// A year and a day later: notices due, nobody dormant yet.
pub(crate) const NOTICE_RUN: &str = "2025-06-02T00:00:00Z";
/// 31 days after the notices: everyone moves.
pub(crate) const MOVE_RUN: &str = "2025-07-03T00:00:00Z";
/// Retention: members active at this moment, records dated before it.
pub(crate) const RECORDS_SEEDED: &str = "2026-01-10T00:00:00Z";
pub(crate) const RECORD_CLASS: &str = "service_visitation_records";
pub(crate) const RECORD_FROM: &str = "2025-10-20";
pub(crate) const RECORD_DAYS: u32 = 80;
/// Every record's three months are over (the last is dated 2026-01-07).
pub(crate) const RETENTION_RUN: &str = "2026-06-01T00:00:00Z";
/// The latest record date past its hold on the retention run's day
/// (three months before it): what the sweep deletes up to.
pub(crate) const RETENTION_CUTOFF: &str = "2026-03-01";
/// Rows per transaction of the baselines, as the sweeps page.
pub(crate) const MOVE_BATCH: u64 = 500;
pub(crate) const DELETE_BATCH: u64 = 5_000;

/// One `custos` command as measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    pub(crate) seconds: f64,
    /// User plus system CPU time of the process.
    pub(crate) cpu_seconds: f64,
    /// Peak resident memory (VmHWM), KiB, sampled.
    pub(crate) peak_kib: u64,
    /// Bytes the process caused to be written to storage (sampled).
    pub(crate) written: u64,
    /// On PostgreSQL: CPU time (user + system) of the cluster's processes
    /// meanwhile, and the WAL it logged, bytes (0 on SQLite).
    pub(crate) database_cpu_seconds: f64,
    pub(crate) wal: u64,
    /// CPUs kept busy by everything else on the machine meanwhile.
    pub(crate) other_cpus: f64,
    /// `what: n` lines of its standard output (for a `jobs run`, what the
    /// data files show it did: a failed run prints nothing).
    pub(crate) counts: Vec<(String, u64)>,
    /// Audit entries the data folder gained.
    pub(crate) audit_added: u64,
    /// Invocations it took: a `jobs run` that fails is run again (the jobs
    /// resume where they stopped), and the figures add up every attempt.
    pub(crate) attempts: u32,
    /// Why the attempts that failed failed, in order.
    pub(crate) failures: Vec<String>,
    /// Seconds spent waiting for a lease a failed run kept (not counted
    /// in `seconds`).
    pub(crate) lease_waited: f64,
}

impl Measured {
    #[cfg(test)]
    fn count(&self, what: &str) -> u64 {
        self.counts.iter().find(|(w, _)| w == what).map_or(0, |(_, n)| *n)
    }
}

/// A raw SQLite or PostgreSQL sweep.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Floor {
    pub(crate) rows: u64,
    pub(crate) seconds: f64,
    pub(crate) transactions: u64,
    /// Bytes the harness wrote to storage during the sweep (SQLite), or
    /// the WAL the cluster logged (PostgreSQL).
    pub(crate) written: u64,
    /// CPU time of the cluster's processes during the sweep (0 on SQLite).
    pub(crate) database_cpu_seconds: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Dormancy {
    pub(crate) members: u64,
    pub(crate) seed: Measured,
    /// Size of the data after seeding, bytes: the data folder's files, or
    /// the database (`pg_database_size`).
    pub(crate) stored_bytes: u64,
    pub(crate) notice: Measured,
    pub(crate) moved: Measured,
    /// Read from the data after each sweep (a failed run reports
    /// nothing, so its counts do not add up): members notified, dormant.
    pub(crate) notified_members: u64,
    pub(crate) dormant_members: u64,
    pub(crate) baseline: Floor,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Retention {
    pub(crate) members: u64,
    pub(crate) records: u64,
    pub(crate) seed: Measured,
    /// As [`Dormancy::stored_bytes`].
    pub(crate) stored_bytes: u64,
    pub(crate) sweep: Measured,
    /// Records and hold keys gone, read from the data before and after.
    pub(crate) records_destroyed: u64,
    pub(crate) keys_destroyed: u64,
    pub(crate) baseline: Floor,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Lifecycle {
    pub(crate) dormancy: Option<Dormancy>,
    pub(crate) retention: Option<Retention>,
}

/// Runs the scenarios asked for (a size of 0 skips one), on the data
/// folder or, with a cluster, on fresh databases of it.
pub(crate) fn run(args: &Args, custos: &Path, cluster: Option<&Arc<Cluster>>) -> Result<Lifecycle, String> {
    let mut out = Lifecycle::default();
    if args.lifecycle_members > 0 {
        out.dormancy = Some(dormancy(custos, args.lifecycle_members, cluster)?);
    }
    if args.lifecycle_records > 0 {
        out.retention = Some(retention(custos, args.lifecycle_records, cluster)?);
    }
    Ok(out)
}

/// What the harness counts in an instance's data, between two commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tally {
    /// Entries of the audit log (its last position).
    AuditEntries,
    /// Members sent the dormancy notice.
    Notified,
    /// Members in the dormant store.
    Dormant,
    /// Records left.
    Records,
    /// Keys of statutory holds left.
    HoldKeys,
}

impl Tally {
    #[cfg(test)]
    const ALL: [Tally; 5] = [Tally::AuditEntries, Tally::Notified, Tally::Dormant, Tally::Records, Tally::HoldKeys];

    /// The file of the data folder and the statement, on SQLite.
    fn sqlite(self) -> (&'static str, &'static str) {
        match self {
            Tally::AuditEntries => ("custos.db", "SELECT coalesce(max(seq), 0) FROM audit"),
            Tally::Notified => ("custos.db", "SELECT count(*) FROM subjects WHERE notified_at IS NOT NULL"),
            Tally::Dormant => ("custos.db", "SELECT count(*) FROM subjects WHERE status = 'dormant'"),
            Tally::Records => ("custos.db", "SELECT count(*) FROM records"),
            Tally::HoldKeys => ("keys.db", "SELECT count(*) FROM data_keys WHERE scope LIKE 'hold:%'"),
        }
    }

    /// The same statement on PostgreSQL, where each SQLite file of the
    /// instance is a schema of its database.
    fn postgres(self) -> String {
        let (file, sql) = self.sqlite();
        let schema = match file {
            "keys.db" => "custos_keys",
            "dormant.db" => "custos_dormant",
            _ => "custos",
        };
        sql.replacen(" FROM ", &format!(" FROM {schema}."), 1)
    }
}

/// A scenario's instance: the root key (and, on SQLite, the data folder)
/// in a scratch folder; on PostgreSQL the data in a fresh database of the
/// cluster. Both go when it is dropped.
struct Instance {
    scratch: Scratch,
    database: Option<Database>,
}

impl Instance {
    fn new(name: &str, cluster: Option<&Arc<Cluster>>) -> Result<Instance, String> {
        let scratch = Scratch::new(name)?;
        let database = cluster.map(|c| c.database(name)).transpose()?;
        Ok(Instance { scratch, database })
    }

    fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.database.as_ref().map(Database::cluster)
    }

    fn count(&self, tally: Tally) -> Result<u64, String> {
        match &self.database {
            Some(db) => {
                let text = db.psql(&tally.postgres())?;
                text.parse().map_err(|_| format!("{}: not a count: {text:?}", tally.postgres()))
            }
            None => {
                let (file, sql) = tally.sqlite();
                count(&self.scratch.0.join("data").join(file), sql)
            }
        }
    }

    /// Entries in the instance's audit log (0 before the instance exists).
    fn audit_len(&self) -> u64 {
        self.count(Tally::AuditEntries).unwrap_or(0)
    }

    /// What the data take: the data folder's files, or the database.
    fn stored_bytes(&self) -> Result<u64, String> {
        match &self.database {
            Some(db) => {
                let text = db.psql("SELECT pg_database_size(current_database())")?;
                text.parse().map_err(|_| format!("not a database size: {text:?}"))
            }
            None => Ok(folder_size(&self.scratch.0.join("data"))),
        }
    }

    /// On PostgreSQL, before a timed command: statistics on what was just
    /// seeded when `analyze`, and a checkpoint, so that the command does not
    /// pay for the writes of the step before. Nothing on SQLite (the
    /// seeder and every `custos` command checkpoint their own log).
    fn settle(&self, analyze: bool) -> Result<(), String> {
        if let Some(db) = &self.database {
            if analyze {
                db.psql("ANALYZE")?;
            }
            db.psql("CHECKPOINT")?;
        }
        Ok(())
    }
}

fn dormancy(custos: &Path, members: u64, cluster: Option<&Arc<Cluster>>) -> Result<Dormancy, String> {
    let instance = Instance::new("dormancy", cluster)?;
    say(&format!("dormancy sweep: seeding {members} synthetic members inactive since {DORMANT_SINCE}"));
    let n = members.to_string();
    let seed = measure_ok(
        custos,
        &instance,
        &["admin", "seed-synthetic", "--members", &n, "--last-activity", DORMANT_SINCE, "--now", DORMANT_SINCE],
    )?;
    let stored_bytes = instance.stored_bytes()?;
    instance.settle(true)?;
    say(&format!("  custos jobs run --now {NOTICE_RUN} (notices)"));
    let mut notice = jobs_run(custos, &instance, NOTICE_RUN)?;
    let notified_members = instance.count(Tally::Notified)?;
    notice.counts = vec![("dormancy notices queued".into(), notified_members)];
    instance.settle(false)?;
    say(&format!("  custos jobs run --now {MOVE_RUN} (moves to the dormant store)"));
    let mut moved = jobs_run(custos, &instance, MOVE_RUN)?;
    let dormant_members = instance.count(Tally::Dormant)?;
    moved.counts = vec![("members moved to the dormant store".into(), dormant_members)];
    if (notified_members, dormant_members) != (members, members) {
        return Err(format!(
            "of {members} members, {notified_members} were notified and {dormant_members} made dormant: {:?} then {:?}",
            notice.counts, moved.counts
        ));
    }
    drop(instance);
    let baseline = match cluster {
        Some(cluster) => {
            say(&format!(
                "  baseline: PostgreSQL copy-and-delete of {members} rows into another schema, {MOVE_BATCH} per \
                 transaction"
            ));
            pg::move_baseline(cluster, members)?
        }
        None => {
            let dir = Scratch::new("dormancy-baseline")?;
            say(&format!("  baseline: SQLite copy-and-delete of {members} rows, {MOVE_BATCH} per transaction"));
            move_baseline(&dir.0, members)?
        }
    };
    Ok(Dormancy { members, seed, stored_bytes, notice, moved, notified_members, dormant_members, baseline })
}

fn retention(custos: &Path, records: u64, cluster: Option<&Arc<Cluster>>) -> Result<Retention, String> {
    let members = records.div_ceil(RECORDS_PER_MEMBER);
    let records = members * RECORDS_PER_MEMBER;
    let instance = Instance::new("retention", cluster)?;
    say(&format!("retention sweep: seeding {members} members with {RECORDS_PER_MEMBER} {RECORD_CLASS} each"));
    let (n, k, days) = (members.to_string(), RECORDS_PER_MEMBER.to_string(), RECORD_DAYS.to_string());
    let seed = measure_ok(
        custos,
        &instance,
        &[
            "admin",
            "seed-synthetic",
            "--members",
            &n,
            "--records-per-member",
            &k,
            "--record-class",
            RECORD_CLASS,
            "--record-date-from",
            RECORD_FROM,
            "--record-days",
            &days,
            "--last-activity",
            RECORDS_SEEDED,
            "--now",
            RECORDS_SEEDED,
        ],
    )?;
    let stored_bytes = instance.stored_bytes()?;
    instance.settle(true)?;
    say(&format!("  custos jobs run --now {RETENTION_RUN} (every record past its hold)"));
    let keys_before = instance.count(Tally::HoldKeys)?;
    let mut sweep = jobs_run(custos, &instance, RETENTION_RUN)?;
    let (records_left, keys_left) = (instance.count(Tally::Records)?, instance.count(Tally::HoldKeys)?);
    sweep.counts = vec![
        ("records destroyed".into(), records - records_left),
        ("hold keys destroyed".into(), keys_before - keys_left),
    ];
    if records_left + keys_left > 0 {
        return Err(format!(
            "the retention sweep left {records_left} records and {keys_left} hold keys: {:?}",
            sweep.counts
        ));
    }
    drop(instance);
    let baseline = match cluster {
        Some(cluster) => {
            say(&format!(
                "  baseline: PostgreSQL delete of {records} records by class and date, {DELETE_BATCH} per transaction"
            ));
            pg::delete_baseline(cluster, records)?
        }
        None => {
            let dir = Scratch::new("retention-baseline")?;
            say(&format!(
                "  baseline: SQLite delete of {records} records by class and date, {DELETE_BATCH} per transaction"
            ));
            delete_baseline(&dir.0, records)?
        }
    };
    Ok(Retention {
        members,
        records,
        seed,
        stored_bytes,
        sweep,
        records_destroyed: records - records_left,
        keys_destroyed: keys_before - keys_left,
        baseline,
    })
}

/// Failed `custos jobs run`s before the harness gives up on a sweep.
const ATTEMPTS: u32 = 20;
/// How long the harness waits, at most, for a lifecycle lease that a
/// failed run could not give back: the lease runs ten minutes of real time.
const LEASE_WAIT: Duration = Duration::from_secs(11 * 60);

/// `custos jobs run --now <now>`, measured; a run that fails is run again
/// at the same `--now` (the jobs resume where they stopped, up to
/// [`ATTEMPTS`] failures) and the attempts are added up, so that the
/// report shows both the failure and what completing the sweep took. A run
/// refused because a failed one kept the lease is not counted: the harness
/// waits for the lease to run out.
fn jobs_run(custos: &Path, instance: &Instance, now: &str) -> Result<Measured, String> {
    let mut total = Measured::default();
    let mut waited = Duration::ZERO;
    loop {
        let attempt = measure(custos, instance, &["jobs", "run", "--now", now]);
        if let Err(Failed { measured: Some(_), message }) = &attempt
            && message.contains("holds the lifecycle lease")
        {
            if waited >= LEASE_WAIT {
                return Err(format!("the lifecycle lease was still held after {} s: {message}", waited.as_secs()));
            }
            say("    a failed run kept the lifecycle lease: waiting 30 s for it to run out");
            std::thread::sleep(Duration::from_secs(30));
            waited += Duration::from_secs(30);
            total.lease_waited = waited.as_secs_f64();
            continue;
        }
        let (m, failure) = match attempt {
            Ok(m) => (m, None),
            Err(Failed { measured: Some(m), message }) => (*m, Some(message)),
            Err(Failed { measured: None, message }) => return Err(message),
        };
        total.attempts += 1;
        total.seconds += m.seconds;
        total.cpu_seconds += m.cpu_seconds;
        total.peak_kib = total.peak_kib.max(m.peak_kib);
        total.written += m.written;
        total.database_cpu_seconds += m.database_cpu_seconds;
        total.wal += m.wal;
        total.other_cpus += m.other_cpus * m.seconds;
        total.audit_added += m.audit_added;
        for (what, n) in m.counts {
            match total.counts.iter_mut().find(|(w, _)| *w == what) {
                Some((_, sum)) => *sum += n,
                None => total.counts.push((what, n)),
            }
        }
        match failure {
            None => break,
            Some(message) => {
                say(&format!("    attempt {} failed: {message}", total.attempts));
                total.failures.push(message);
                if total.attempts > ATTEMPTS {
                    return Err(format!("custos jobs run --now {now} failed {ATTEMPTS} times"));
                }
            }
        }
    }
    total.other_cpus /= total.seconds.max(f64::MIN_POSITIVE);
    Ok(total)
}

/// A command that failed: with what was measured of it when it ran and
/// exited unsuccessfully, without when the harness could not run it.
struct Failed {
    measured: Option<Box<Measured>>,
    message: String,
}

/// [`measure`] for commands that must succeed.
fn measure_ok(custos: &Path, instance: &Instance, args: &[&str]) -> Result<Measured, String> {
    measure(custos, instance, args).map_err(|f| f.message)
}

/// `custos <args…> --data-dir … [--database URL]` on the instance, with
/// only `CUSTOS_ROOT_KEY_FILE` in its environment (as `server.rs` runs it).
/// On PostgreSQL the WAL position is read (through `psql`, a child of the
/// harness) before the harness's children's CPU time, and after it, so
/// that `psql`'s time is not counted as the command's.
fn measure(custos: &Path, instance: &Instance, args: &[&str]) -> Result<Measured, Failed> {
    let fatal = |message: String| Failed { measured: None, message };
    let cluster = instance.cluster();
    let audit_before = instance.audit_len();
    let wal_before = cluster.map(|c| c.wal_bytes()).transpose().map_err(fatal)?.unwrap_or(0);
    let database_before = cluster.map(|c| c.cpu_seconds()).transpose().map_err(fatal)?.unwrap_or(0.0);
    let cpu_before = server::children_cpu_seconds().map_err(fatal)?;
    let (machine_before, own_before) = (machine_busy_seconds().map_err(fatal)?, own_cpu_seconds().map_err(fatal)?);
    let start = clock::now();
    let child = server::instance_command(custos, &instance.scratch)
        .args(args)
        .args(server::instance_args(&instance.scratch, None, instance.database.as_ref()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fatal(format!("cannot run {} {}: {e}", custos.display(), args.join(" "))))?;
    let (done, peak, written) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (done, peak, written, pid) = (done.clone(), peak.clone(), written.clone(), child.id());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok((_, hwm)) = server::memory_kib(pid) {
                    peak.fetch_max(hwm, Ordering::Relaxed);
                }
                if let Ok(bytes) = server::written_bytes(&format!("/proc/{pid}/io")) {
                    written.fetch_max(bytes, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let output = child.wait_with_output();
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let output = output.map_err(|e| fatal(format!("cannot wait for custos {}: {e}", args.join(" "))))?;
    let cpu_seconds = server::children_cpu_seconds().map_err(fatal)? - cpu_before;
    let database_cpu_seconds =
        cluster.map(|c| c.cpu_seconds()).transpose().map_err(fatal)?.map_or(0.0, |after| after - database_before);
    let others = machine_busy_seconds().map_err(fatal)?
        - machine_before
        - cpu_seconds
        - database_cpu_seconds
        - (own_cpu_seconds().map_err(fatal)? - own_before);
    let wal =
        cluster.map(|c| c.wal_bytes()).transpose().map_err(fatal)?.map_or(0, |after| after.saturating_sub(wal_before));
    let text = String::from_utf8_lossy(&output.stdout);
    let measured = Measured {
        seconds,
        cpu_seconds,
        peak_kib: peak.load(Ordering::Relaxed),
        written: written.load(Ordering::Relaxed),
        database_cpu_seconds,
        wal,
        other_cpus: (others / seconds.max(f64::MIN_POSITIVE)).max(0.0),
        counts: parse_counts(&text),
        audit_added: instance.audit_len().saturating_sub(audit_before),
        attempts: 1,
        failures: Vec::new(),
        lease_waited: 0.0,
    };
    if !output.status.success() {
        let message = format!(
            "custos {} failed ({}) after {seconds:.1} s: {}{}",
            args.join(" "),
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Err(Failed { measured: Some(Box::new(measured)), message });
    }
    Ok(measured)
}

/// The `  what: n` lines of a command's report (`custos jobs run`,
/// `custos admin seed-synthetic`).
fn parse_counts(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (what, rest) = l.strip_prefix("  ")?.split_once(": ")?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((what.to_owned(), n))
        })
        .collect()
}

/// A count from one of the instance's SQLite files, read between two
/// commands, never during one.
fn count(file: &Path, sql: &str) -> Result<u64, String> {
    if !file.exists() {
        return Err(format!("no {}", file.display()));
    }
    Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| format!("{sql} on {}: {e}", file.display()))
}

/// Bytes of the files in a folder (not recursive).
fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// The harness's own CPU time (the sampler thread, mostly), seconds.
fn own_cpu_seconds() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    let after_name = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<u64> = after_name.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // utime and stime: fields 14 and 15, 11 and 12 after the name and state.
    match (fields.get(10), fields.get(11)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / ticks_per_second()),
        _ => Err("/proc/self/stat has no CPU times".to_owned()),
    }
}

/// CPU time the whole machine has been busy, seconds (as `server.rs`).
fn machine_busy_seconds() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| format!("cannot read /proc/stat: {e}"))?;
    let line = text.lines().find(|l| l.starts_with("cpu ")).ok_or("/proc/stat has no cpu line")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let busy: u64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Ok(busy as f64 / ticks_per_second())
}

fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The store's durability and deletion settings, for `schema`.
pub(crate) fn settings(conn: &Connection, schema: &str) -> Result<(), String> {
    conn.execute_batch(&format!(
        "PRAGMA {schema}.journal_mode = WAL; PRAGMA {schema}.synchronous = FULL; PRAGMA {schema}.secure_delete = ON;"
    ))
    .map_err(|e| format!("cannot set the pragmas of {schema}: {e}"))
}

pub(crate) fn exec(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.execute_batch(sql).map_err(|e| format!("{sql} failed: {e}"))
}

/// `len` well-mixed bytes standing in for ciphertext.
pub(crate) fn sealed(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| mix(seed.wrapping_mul(131).wrapping_add(i as u64)) as u8).collect()
}

/// Inserts `rows` rows made by `insert(n)` in transactions of 10,000, then
/// truncates the log (as the seeder's final checkpoint): not timed.
pub(crate) fn fill(conn: &Connection, rows: u64, insert: impl Fn(u64) -> Result<(), String>) -> Result<(), String> {
    let mut n = 0;
    while n < rows {
        exec(conn, "BEGIN")?;
        for _ in 0..10_000.min(rows - n) {
            insert(n)?;
            n += 1;
        }
        exec(conn, "COMMIT")?;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| format!("checkpoint failed: {e}"))
}

/// The `n`th member row of the move baselines, shaped like a sign-up's
/// storage: a random id and three sealed items (name, e-mail, phone) of the
/// sizes Custos writes. Its kind, status and last activity are constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberRow {
    pub(crate) id: String,
    pub(crate) name: Vec<u8>,
    pub(crate) email: Vec<u8>,
    pub(crate) phone: Vec<u8>,
}

pub(crate) fn member_row(n: u64) -> MemberRow {
    MemberRow {
        id: format!("sub_{:016x}{:016x}", mix(n), mix(!n)),
        name: sealed(n, 52),
        email: sealed(!n, 60),
        phone: sealed(n ^ 0x55, 42),
    }
}

/// The `n`th record row of the delete baselines, shaped like Custos's
/// `records`: a time-ordered id, its member (ten records each), a date
/// spread as the seeder spreads each member's records over `dates` (the
/// [`RECORD_DAYS`] days from [`RECORD_FROM`], see [`record_dates`]), a key
/// id and sealed content of the size the seeder writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordRow {
    pub(crate) id: String,
    pub(crate) subject_id: String,
    pub(crate) record_date: String,
    pub(crate) key_id: String,
    pub(crate) value: Vec<u8>,
}

pub(crate) fn record_row(n: u64, dates: &[String]) -> RecordRow {
    let member = n / RECORDS_PER_MEMBER;
    let days = dates.len().max(1) as u64;
    let day = ((n % RECORDS_PER_MEMBER) * days / RECORDS_PER_MEMBER + member) % days;
    RecordRow {
        id: format!("rec_019b8f4e0000{:020x}", u128::from(mix(n)) << 16 >> 16),
        subject_id: format!("sub_{:016x}{:016x}", mix(member), mix(!member)),
        record_date: dates.get(day as usize).cloned().unwrap_or_default(),
        key_id: format!("key_{:016x}{:016x}", mix(member ^ day), mix(day)),
        value: sealed(n, 84),
    }
}

/// The days records are dated on, oldest first.
pub(crate) fn record_dates() -> Vec<String> {
    (0..u64::from(RECORD_DAYS)).map(|d| add_days(RECORD_FROM, d)).collect()
}

/// Member rows ([`member_row`]) copied to a second file (attached) and
/// deleted from the first, `MOVE_BATCH` per transaction, oldest activity
/// first.
fn move_baseline(dir: &Path, rows: u64) -> Result<Floor, String> {
    let conn = Connection::open(dir.join("members.db")).map_err(|e| format!("cannot open the baseline file: {e}"))?;
    settings(&conn, "main")?;
    exec(&conn, &format!("ATTACH DATABASE '{}' AS dormant", dir.join("dormant.db").display()))?;
    settings(&conn, "dormant")?;
    let columns = "id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, last_activity TEXT NOT NULL,
                   name BLOB NOT NULL, email BLOB NOT NULL, phone BLOB NOT NULL";
    exec(
        &conn,
        &format!(
            "CREATE TABLE main.members ({columns}) STRICT;
             CREATE INDEX main.members_by_activity ON members (last_activity, id);
             CREATE TABLE dormant.members ({columns}) STRICT;"
        ),
    )?;
    fill(&conn, rows, |n| {
        conn.prepare_cached(
            "INSERT INTO main.members (id, kind, status, last_activity, name, email, phone)
             VALUES (?1, 'business_operator', 'active', ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| {
            let m = member_row(n);
            s.execute(params![m.id, DORMANT_SINCE, m.name, m.email, m.phone])
        })
        .map(|_| ())
        .map_err(|e| format!("baseline insert failed: {e}"))
    })?;
    let page = "SELECT id FROM main.members WHERE last_activity <= ?1 ORDER BY last_activity, id LIMIT ?2";
    let written_before = server::written_bytes("/proc/self/io")?;
    let start = clock::now();
    let (mut moved, mut transactions) = (0u64, 0u64);
    loop {
        exec(&conn, "BEGIN IMMEDIATE")?;
        let copied = conn
            .prepare_cached(&format!("INSERT INTO dormant.members SELECT * FROM main.members WHERE id IN ({page})"))
            .and_then(|mut s| s.execute(params![MOVE_RUN, MOVE_BATCH as i64]))
            .map_err(|e| format!("baseline copy failed: {e}"))?;
        let deleted = conn
            .prepare_cached(&format!("DELETE FROM main.members WHERE id IN ({page})"))
            .and_then(|mut s| s.execute(params![MOVE_RUN, MOVE_BATCH as i64]))
            .map_err(|e| format!("baseline delete failed: {e}"))?;
        exec(&conn, "COMMIT")?;
        transactions += 1;
        if copied != deleted {
            return Err(format!("baseline: copied {copied} rows but deleted {deleted}"));
        }
        moved += deleted as u64;
        if deleted == 0 {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let written = server::written_bytes("/proc/self/io")?.saturating_sub(written_before);
    if moved != rows {
        return Err(format!("baseline: moved {moved} of {rows} rows"));
    }
    Ok(Floor { rows, seconds, transactions, written, database_cpu_seconds: 0.0 })
}

/// Record rows ([`record_row`]) in a table shaped like Custos's `records`
/// (with both of its indexes), deleted by class and date `DELETE_BATCH`
/// per transaction with the statement the store uses.
fn delete_baseline(dir: &Path, rows: u64) -> Result<Floor, String> {
    let conn = Connection::open(dir.join("records.db")).map_err(|e| format!("cannot open the baseline file: {e}"))?;
    settings(&conn, "main")?;
    exec(
        &conn,
        "CREATE TABLE records (
             id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, class TEXT NOT NULL, record_date TEXT NOT NULL,
             key_id TEXT NOT NULL, value BLOB NOT NULL, created_at TEXT NOT NULL
         ) STRICT;
         CREATE INDEX records_by_subject ON records (subject_id, class, id);
         CREATE INDEX records_by_class_date ON records (class, record_date);",
    )?;
    let dates = record_dates();
    fill(&conn, rows, |n| {
        conn.prepare_cached(
            "INSERT INTO records (id, subject_id, class, record_date, key_id, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            let r = record_row(n, &dates);
            s.execute(params![r.id, r.subject_id, RECORD_CLASS, r.record_date, r.key_id, r.value, RECORDS_SEEDED])
        })
        .map(|_| ())
        .map_err(|e| format!("baseline insert failed: {e}"))
    })?;
    let written_before = server::written_bytes("/proc/self/io")?;
    let start = clock::now();
    let (mut deleted, mut transactions) = (0u64, 0u64);
    loop {
        exec(&conn, "BEGIN IMMEDIATE")?;
        let n = conn
            .prepare_cached(
                "DELETE FROM records WHERE rowid IN
                   (SELECT rowid FROM records WHERE class = ?1 AND record_date <= ?2 LIMIT ?3)",
            )
            .and_then(|mut s| s.execute(params![RECORD_CLASS, RETENTION_CUTOFF, DELETE_BATCH as i64]))
            .map_err(|e| format!("baseline delete failed: {e}"))?;
        exec(&conn, "COMMIT")?;
        transactions += 1;
        deleted += n as u64;
        if n == 0 {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let written = server::written_bytes("/proc/self/io")?.saturating_sub(written_before);
    if deleted != rows {
        return Err(format!("baseline: deleted {deleted} of {rows} records"));
    }
    Ok(Floor { rows, seconds, transactions, written, database_cpu_seconds: 0.0 })
}

/// `from` (YYYY-MM-DD) plus `days` days, Gregorian calendar.
fn add_days(from: &str, days: u64) -> String {
    let mut parts = from.split('-').map(|p| p.parse::<u32>().unwrap_or(1));
    let (mut y, mut m, mut d) = (parts.next().unwrap_or(2000), parts.next().unwrap_or(1), parts.next().unwrap_or(1));
    for _ in 0..days {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let length = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        d += 1;
        if d > length {
            (d, m) = (1, m + 1);
            if m > 12 {
                (m, y) = (1, y + 1);
            }
        }
    }
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_a_jobs_report() {
        let text = "lifecycle jobs as of 2025-07-03T00:00:00Z\n  dormancy notices queued: 0\n  \
                    members moved to the dormant store: 1500\n  records: 30 of class x\n  storage logs scrubbed\n";
        let counts = parse_counts(text);
        assert_eq!(counts.len(), 3);
        let m = Measured { counts, ..Measured::default() };
        assert_eq!((m.count("members moved to the dormant store"), m.count("records"), m.count("nope")), (1500, 30, 0));
    }

    #[test]
    fn baselines_sweep_every_row() {
        let dir = Scratch::new("lifecycle-test").unwrap();
        let moved = move_baseline(&dir.0, 1_234).unwrap();
        assert_eq!((moved.rows, moved.transactions), (1_234, 4));
        let deleted = delete_baseline(&dir.0, 12_000).unwrap();
        assert_eq!((deleted.rows, deleted.transactions), (12_000, 4));
    }

    /// The migrations of one store, in order (`data_`, `keys_`, `dormant_`).
    fn migrations(dialect: &str, store: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../custos-store/migrations").join(dialect);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(store)))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no {store} migrations in {}", dir.display());
        files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect()
    }

    /// Every count the harness reads names tables and columns the store's
    /// SQLite files have (an empty instance: all zero).
    #[test]
    fn tallies_read_the_sqlite_files() {
        let instance = Instance::new("lifecycle-tally-test", None).unwrap();
        let data = instance.scratch.0.join("data");
        std::fs::create_dir_all(&data).unwrap();
        for (file, store) in [("custos.db", "data_"), ("keys.db", "keys_"), ("dormant.db", "dormant_")] {
            let conn = Connection::open(data.join(file)).unwrap();
            for sql in migrations("sqlite", store) {
                conn.execute_batch(&sql).unwrap();
            }
        }
        for tally in Tally::ALL {
            assert_eq!(instance.count(tally), Ok(0), "{tally:?}");
        }
        assert!(instance.stored_bytes().unwrap() > 0);
        // Each SQLite file of the instance is a schema on PostgreSQL.
        assert_eq!(Tally::Records.postgres(), "SELECT count(*) FROM custos.records");
        assert_eq!(Tally::HoldKeys.postgres(), "SELECT count(*) FROM custos_keys.data_keys WHERE scope LIKE 'hold:%'");
        assert_eq!(Tally::AuditEntries.postgres(), "SELECT coalesce(max(seq), 0) FROM custos.audit");
        // Before the instance exists: no audit log, no counts.
        let empty = Instance::new("lifecycle-tally-empty", None).unwrap();
        assert_eq!(empty.audit_len(), 0);
        assert!(empty.count(Tally::Records).is_err());
    }

    /// The same on PostgreSQL, against the store's PostgreSQL migrations;
    /// and the PostgreSQL baselines sweep every row in the transactions
    /// the SQLite ones take. Needs the system's PostgreSQL server binaries
    /// (scripts/test installs them).
    #[test]
    fn tallies_and_baselines_on_postgres() {
        let cluster = Cluster::start().expect("PostgreSQL starts (scripts/test installs it)");
        let instance = Instance::new("lifecycle-pg-test", Some(&cluster)).unwrap();
        assert_eq!(instance.audit_len(), 0, "no schema yet");
        let db = instance.database.as_ref().unwrap();
        for store in ["data_", "keys_", "dormant_"] {
            for sql in migrations("postgres", store) {
                db.psql(&sql).unwrap();
            }
        }
        for tally in Tally::ALL {
            assert_eq!(instance.count(tally), Ok(0), "{tally:?}");
        }
        assert!(instance.stored_bytes().unwrap() > 1_000_000, "a database has its catalogue");
        instance.settle(true).unwrap();
        let args = server::instance_args(&instance.scratch, None, instance.database.as_ref());
        assert_eq!(args[2..], ["--database".to_owned(), db.url.clone()]);

        let moved = pg::move_baseline(&cluster, 1_234).unwrap();
        assert_eq!((moved.rows, moved.transactions), (1_234, 4));
        // Each member row is about 200 bytes, logged in both schemas.
        assert!(moved.written > 1_234 * 200, "{moved:?}");
        let deleted = pg::delete_baseline(&cluster, 12_000).unwrap();
        assert_eq!((deleted.rows, deleted.transactions), (12_000, 4));
        assert!(deleted.written > 0 && deleted.seconds > 0.0, "{deleted:?}");
    }

    /// The baselines' rows: distinct ids, the sizes Custos writes, ten
    /// records per member on ten different days, every one past its hold.
    #[test]
    fn baseline_rows() {
        let m = member_row(7);
        assert_eq!((m.name.len(), m.email.len(), m.phone.len()), (52, 60, 42));
        assert!(m.id.starts_with("sub_") && m.id.len() == 36, "{}", m.id);
        assert_ne!(member_row(8).id, m.id);
        let dates = record_dates();
        assert_eq!((dates.len(), dates[0].as_str()), (RECORD_DAYS as usize, RECORD_FROM));
        let rows: Vec<RecordRow> = (0..2_000).map(|n| record_row(n, &dates)).collect();
        let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), rows.len());
        for member in rows.chunks(RECORDS_PER_MEMBER as usize) {
            assert!(member.iter().all(|r| r.subject_id == member[0].subject_id && r.value.len() == 84));
            let days: std::collections::HashSet<&str> = member.iter().map(|r| r.record_date.as_str()).collect();
            assert_eq!(days.len(), RECORDS_PER_MEMBER as usize);
        }
        assert_ne!(rows[0].subject_id, rows[RECORDS_PER_MEMBER as usize].subject_id);
        // Spread over every day, all of them past their hold on the run.
        let used: std::collections::HashSet<&str> = rows.iter().map(|r| r.record_date.as_str()).collect();
        assert_eq!(used.len(), RECORD_DAYS as usize);
        assert!(rows.iter().all(|r| r.record_date.as_str() <= RETENTION_CUTOFF));
    }

    #[test]
    fn the_dates_do_what_the_scenarios_say() {
        assert_eq!(add_days("2024-02-28", 1), "2024-02-29");
        assert_eq!(add_days("2023-02-28", 1), "2023-03-01");
        assert_eq!(add_days("2025-12-31", 1), "2026-01-01");
        // A year and a day after the last activity, then 31 days.
        assert_eq!(add_days(&DORMANT_SINCE[..10], 366), NOTICE_RUN[..10]);
        assert_eq!(add_days(&NOTICE_RUN[..10], 31), MOVE_RUN[..10]);
        // The last record is dated before the seeding day, and its three
        // months are over by the cut-off of the retention run.
        let last = add_days(RECORD_FROM, u64::from(RECORD_DAYS) - 1);
        assert_eq!(last, "2026-01-07");
        assert!(last.as_str() < &RECORDS_SEEDED[..10] && "2026-04-07" <= &RETENTION_RUN[..10]);
        assert!(last.as_str() <= RETENTION_CUTOFF);
    }
}

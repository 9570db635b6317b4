//! `--backend postgres`: a throwaway PostgreSQL cluster the harness starts
//! itself (`custos-testpg`: the system's `initdb` and `pg_ctl`, a scratch
//! folder, a free port of 127.0.0.1, locale C, the server's defaults —
//! `fsync` and `synchronous_commit` on), a fresh database for every
//! `custos serve` (as every SQLite server gets a fresh data folder), and
//! the raw PostgreSQL baselines measured in the same run with the same
//! durability: the measurements of `baseline.rs` (inserts one per
//! transaction and 100 per transaction, point selects, a select with its
//! audit row one per transaction and 100 per transaction), the read of
//! one subject's records for the access export, and the two sweeps of
//! `lifecycle.rs` (member rows copied to another schema and deleted, record
//! rows deleted by class and date).
//!
//! The cluster's work is done by its own processes, not by `custos serve`
//! or the harness: [`Cluster::cpu_seconds`] adds up the CPU time of the
//! postmaster and its children, and [`Cluster::wal_bytes`] reads the WAL
//! position, so that each phase can say what PostgreSQL did for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use custos_testpg::TestPostgres;
use postgres::{Client, NoTls, Statement};

use crate::baseline::{self, BATCH, Baseline};
use crate::clock;
use crate::lifecycle::{
    self, DELETE_BATCH, DORMANT_SINCE, Floor, MOVE_BATCH, MOVE_RUN, RECORD_CLASS, RECORDS_SEEDED, RETENTION_CUTOFF,
};
use crate::stats::{Latency, mix};

/// The running cluster; stopped and removed when the last handle goes.
pub(crate) struct Cluster {
    pg: TestPostgres,
    postmaster: u32,
    next: AtomicU32,
    /// The version and the settings that bear on durability, for the report.
    pub(crate) description: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("pg", &self.pg).field("postmaster", &self.postmaster).finish()
    }
}

/// One database of the cluster; dropped (`WITH (FORCE)`) with its handle.
#[derive(Debug)]
pub(crate) struct Database {
    cluster: Arc<Cluster>,
    name: String,
    pub(crate) url: String,
}

impl Database {
    pub(crate) fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// One statement through `psql`; its output, unaligned.
    pub(crate) fn psql(&self, sql: &str) -> Result<String, String> {
        self.cluster.pg.psql(&self.name, sql)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.cluster.pg.psql("postgres", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// A database name from a label: lower-case letters, digits and `_`.
fn database_name(n: u32, label: &str) -> String {
    let label: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("bench_{n}_{label}")
}

impl Cluster {
    /// Starts the cluster and checks that it is as durable as Custos needs
    /// (`fsync` and `synchronous_commit` on) and has the C collation.
    pub(crate) fn start() -> Result<Arc<Cluster>, String> {
        let pg = TestPostgres::start("bench", None)?;
        let pid_file = pg.dir().join("data").join("postmaster.pid");
        let postmaster = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .ok_or_else(|| format!("no postmaster pid in {}", pid_file.display()))?;
        let show = |what: &str| pg.psql("postgres", &format!("SHOW {what}"));
        let (fsync, synchronous) = (show("fsync")?, show("synchronous_commit")?);
        if fsync != "on" || synchronous != "on" {
            return Err(format!("the cluster runs with fsync {fsync}, synchronous_commit {synchronous}: not durable"));
        }
        let collate = pg.psql("postgres", "SELECT datcollate FROM pg_database WHERE datname = 'postgres'")?;
        if collate != "C" {
            return Err(format!("the cluster's collation is {collate}, Custos needs C"));
        }
        let description = format!(
            "PostgreSQL {} in a throwaway cluster the harness starts (the system's `initdb`, a scratch folder in \
             the same file system, locale C), default settings: `fsync` {fsync}, `synchronous_commit` {synchronous}, \
             `wal_sync_method` {}, `shared_buffers` {}, `max_wal_size` {}; every connection over TCP on 127.0.0.1",
            show("server_version")?.split_whitespace().next().unwrap_or("?"),
            show("wal_sync_method")?,
            show("shared_buffers")?,
            show("max_wal_size")?
        );
        Ok(Arc::new(Cluster { pg, postmaster, next: AtomicU32::new(0), description }))
    }

    /// A new, empty database (the cluster's locale: C).
    pub(crate) fn database(self: &Arc<Self>, label: &str) -> Result<Database, String> {
        let name = database_name(self.next.fetch_add(1, Ordering::Relaxed), label);
        self.pg.create_database(&name)?;
        Ok(Database { cluster: self.clone(), url: self.pg.url(&name), name })
    }

    /// CPU seconds (user + system) the cluster has used so far: the
    /// postmaster, its children that have ended (its `cutime`, `cstime`)
    /// and those still running (backends, WAL writer, checkpointer…).
    pub(crate) fn cpu_seconds(&self) -> Result<f64, String> {
        let own = format!("/proc/{}/stat", self.postmaster);
        let mut total = crate::server::stat_cpu_seconds(&own, 11)? + crate::server::stat_cpu_seconds(&own, 13)?;
        let entries = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
        for entry in entries.filter_map(Result::ok) {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let stat = format!("/proc/{pid}/stat");
            // A child may end between the listing and the reading: skipped,
            // its time is in the postmaster's `cutime` by then.
            if parent(&stat) == Some(self.postmaster) {
                total += crate::server::stat_cpu_seconds(&stat, 11).unwrap_or(0.0);
            }
        }
        Ok(total)
    }

    /// The WAL position in bytes: what the cluster has logged so far.
    pub(crate) fn wal_bytes(&self) -> Result<u64, String> {
        let text = self.pg.psql("postgres", "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")?;
        text.parse().map_err(|_| format!("not a WAL position: {text:?}"))
    }
}

/// The parent process id of a `stat` file.
fn parent(stat_path: &str) -> Option<u32> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn connect(url: &str) -> Result<Client, String> {
    let mut client =
        Client::connect(url, NoTls).map_err(|e| format!("cannot connect to the baseline database: {e}"))?;
    // The server's default, set anyway: what Custos's connections set.
    client.batch_execute("SET synchronous_commit = on").map_err(|e| format!("cannot set synchronous_commit: {e}"))?;
    Ok(client)
}

fn failed(what: &str) -> impl Fn(postgres::Error) -> String + '_ {
    move |e| format!("{what} failed: {e}")
}

/// The statements of one baseline connection.
struct Statements {
    insert: Statement,
    select: Statement,
    audit: Option<Statement>,
}

impl Statements {
    fn prepare(client: &mut Client, audit: bool) -> Result<Statements, String> {
        Ok(Statements {
            insert: client
                .prepare("INSERT INTO members (id, name, email, phone) VALUES ($1, $2, $3, $4)")
                .map_err(failed("preparing the insert"))?,
            select: client
                .prepare("SELECT name, email, phone FROM members WHERE id = $1")
                .map_err(failed("preparing the select"))?,
            audit: match audit {
                false => None,
                true => Some(
                    client
                        .prepare(
                            "INSERT INTO audit (at, actor, role, operation, purpose, subject_id, items, outcome, \
                             policy_version, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        )
                        .map_err(failed("preparing the audit insert"))?,
                ),
            },
        })
    }
}

fn insert(client: &mut impl postgres::GenericClient, s: &Statements, n: u64) -> Result<(), String> {
    let (name, email, phone) = baseline::member(n);
    client.execute(&s.insert, &[&(n as i64), &name, &email, &phone]).map(|_| ()).map_err(failed("insert"))
}

fn select(client: &mut impl postgres::GenericClient, s: &Statements, id: u64) -> Result<(), String> {
    let row = client.query_one(&s.select, &[&(id as i64)]).map_err(|e| format!("select of id {id} failed: {e}"))?;
    let found: (String, String, String) = (row.get(0), row.get(1), row.get(2));
    std::hint::black_box(found);
    Ok(())
}

/// The select of (c) and the audit row of that read, in the caller's transaction.
fn read_and_audit(client: &mut impl postgres::GenericClient, s: &Statements, id: u64, n: u64) -> Result<(), String> {
    select(client, s, id)?;
    let audit = s.audit.as_ref().ok_or("no audit statement on this connection")?;
    let row = baseline::audit_row(id, n);
    client
        .execute(
            audit,
            &[
                &row.at,
                &row.actor,
                &row.role,
                &row.operation,
                &row.purpose,
                &row.subject_id,
                &row.items,
                &row.outcome,
                &row.policy_version,
                &row.leaf_hash,
            ],
        )
        .map(|_| ())
        .map_err(failed("audit insert"))
}

/// Runs `work(thread, client, statements, start)` on `threads` threads,
/// each on its own connection, and adds up the counts they return.
fn on_threads(
    url: &str,
    threads: usize,
    audit: bool,
    work: impl Fn(u64, &mut Client, &Statements, Instant) -> Result<u64, String> + Sync,
) -> Result<(u64, f64), String> {
    // Connections are opened before the clock starts.
    let mut clients = Vec::with_capacity(threads);
    for _ in 0..threads {
        let mut client = connect(url)?;
        let statements = Statements::prepare(&mut client, audit)?;
        clients.push((client, statements));
    }
    let start = clock::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(t, (mut client, statements))| {
                let work = &work;
                scope.spawn(move || work(t as u64, &mut client, &statements, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a baseline thread panicked".into()))).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut done = 0;
    for c in counts {
        done += c?;
    }
    Ok((done, elapsed))
}

/// The five measurements of `baseline::run`, on a fresh database of
/// `cluster`, `each` apiece. The "written" figures are WAL bytes.
pub(crate) fn baseline(cluster: &Arc<Cluster>, each: Duration, select_threads: usize) -> Result<Baseline, String> {
    let db = cluster.database("baseline")?;
    let mut client = connect(&db.url)?;
    client
        .batch_execute(
            "CREATE TABLE members (
                 id bigint PRIMARY KEY,
                 name text NOT NULL,
                 email text NOT NULL UNIQUE,
                 phone text NOT NULL UNIQUE
             );
             CREATE TABLE audit (
                 seq            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 at             text NOT NULL,
                 actor          text NOT NULL,
                 role           text NOT NULL,
                 operation      text NOT NULL,
                 purpose        text,
                 subject_id     text,
                 items          text NOT NULL,
                 outcome        text NOT NULL,
                 policy_version text NOT NULL,
                 leaf_hash      bytea
             );",
        )
        .map_err(failed("creating the baseline tables"))?;
    let statements = Statements::prepare(&mut client, false)?;
    let wal = |before: u64, rows: u64| -> Result<f64, String> {
        Ok(cluster.wal_bytes()?.saturating_sub(before) as f64 / 1024.0 / rows.max(1) as f64)
    };

    // (a) Autocommit: every INSERT its own transaction (a WAL flush).
    let mut n = 0u64;
    let wal_before = cluster.wal_bytes()?;
    let start = clock::now();
    while start.elapsed() < each {
        n += 1;
        insert(&mut client, &statements, n)?;
    }
    let insert_single = n as f64 / start.elapsed().as_secs_f64();
    let single_kib = wal(wal_before, n)?;

    // (b) 100 inserts per transaction.
    let first = n;
    let wal_before = cluster.wal_bytes()?;
    let start = clock::now();
    while start.elapsed() < each {
        let mut tx = client.transaction().map_err(failed("BEGIN"))?;
        for _ in 0..BATCH {
            n += 1;
            insert(&mut tx, &statements, n)?;
        }
        tx.commit().map_err(failed("COMMIT"))?;
    }
    let insert_batched = (n - first) as f64 / start.elapsed().as_secs_f64();
    let batched_kib = wal(wal_before, n - first)?;
    drop(client);

    // (c) Point selects by primary key, one connection per thread.
    let rows = n;
    let (selects, elapsed) = on_threads(&db.url, select_threads, false, |t, client, s, start| {
        let mut done = 0u64;
        while start.elapsed() < each {
            select(client, s, mix(t << 40 | done) % rows + 1)?;
            done += 1;
        }
        Ok(done)
    })?;
    let select_rate = selects as f64 / elapsed;

    // (d) Audited reads, one transaction each, one thread per CPU. Unlike
    // SQLite's, PostgreSQL's writers do not take turns at one lock: the
    // threads' commits may share a WAL flush.
    let wal_before = cluster.wal_bytes()?;
    let (reads, elapsed) = on_threads(&db.url, select_threads, true, |t, client, s, start| {
        let mut done = 0u64;
        while start.elapsed() < each {
            let n = t << 40 | done;
            let mut tx = client.transaction().map_err(failed("BEGIN"))?;
            read_and_audit(&mut tx, s, mix(n) % rows + 1, n)?;
            tx.commit().map_err(failed("COMMIT"))?;
            done += 1;
        }
        Ok(done)
    })?;
    let audited = reads as f64 / elapsed;
    let audited_kib = wal(wal_before, reads)?;

    // (e) Audited reads, 100 per transaction (group commit), one thread.
    let wal_before = cluster.wal_bytes()?;
    let (batched_reads, elapsed) = on_threads(&db.url, 1, true, |t, client, s, start| {
        let mut done = 0u64;
        while start.elapsed() < each {
            let mut tx = client.transaction().map_err(failed("BEGIN"))?;
            for _ in 0..BATCH {
                let n = (t + select_threads as u64) << 40 | done;
                read_and_audit(&mut tx, s, mix(n) % rows + 1, n)?;
                done += 1;
            }
            tx.commit().map_err(failed("COMMIT"))?;
        }
        Ok(done)
    })?;
    let audited_batched = batched_reads as f64 / elapsed;
    let audited_batched_kib = wal(wal_before, batched_reads)?;

    Ok(Baseline {
        insert_single,
        insert_batched,
        select: select_rate,
        select_threads,
        rows,
        single_kib,
        batched_kib,
        audited,
        audited_batched,
        audited_kib,
        audited_batched_kib,
    })
}

/// The access export's baseline on PostgreSQL: `rows` rows shaped like the
/// store's `records` of one subject (inserted 10,000 per transaction, then
/// `VACUUM ANALYZE`, not timed), read back through an index on the subject
/// `runs` times, as `export.rs` does on SQLite.
pub(crate) fn export_baseline(
    cluster: &Arc<Cluster>,
    rows: u64,
    runs: usize,
    records_from: &str,
    seeded_at: &str,
) -> Result<Latency, String> {
    let db = cluster.database("export_baseline")?;
    let mut client = connect(&db.url)?;
    client
        .batch_execute(
            "CREATE TABLE records (id text PRIMARY KEY, subject_id text NOT NULL, class text NOT NULL,
                                   record_date text NOT NULL, key_id text NOT NULL, value bytea NOT NULL,
                                   created_at text NOT NULL);
             CREATE INDEX records_by_subject ON records (subject_id, class, id);",
        )
        .map_err(failed("creating the records table"))?;
    let insert = client
        .prepare(
            "INSERT INTO records (id, subject_id, class, record_date, key_id, value, created_at)
             VALUES ($1, 'sub_baseline', 'payment_supply_records', $2, $3, $4, $5)",
        )
        .map_err(failed("preparing the insert"))?;
    fill(&mut client, rows, |tx, n| {
        let id = format!("rec_{:016x}{:016x}", mix(n), mix(!n));
        let key = format!("key_{:08x}", n % 3);
        let value = lifecycle::sealed(n, 120);
        tx.execute(&insert, &[&id, &records_from, &key, &value, &seeded_at]).map(|_| ())
    })?;
    client.batch_execute("VACUUM ANALYZE records").map_err(failed("VACUUM ANALYZE"))?;
    let read = client
        .prepare(
            "SELECT id, class, record_date, key_id, value, created_at FROM records
             WHERE subject_id = $1 ORDER BY class, id",
        )
        .map_err(failed("preparing the select"))?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = clock::now();
        let found = client.query(&read, &[&"sub_baseline"]).map_err(failed("baseline select"))?;
        let bytes: usize = found.iter().map(|r| r.get::<_, &[u8]>(4).len()).sum();
        if found.len() as u64 != rows || bytes == 0 {
            return Err(format!("the baseline read {} rows, not {rows}", found.len()));
        }
        times.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    Ok(Latency::from_micros(times))
}

/// Inserts `rows` rows made by `insert(tx, n)`, 10,000 per transaction
/// (not timed).
fn fill(
    client: &mut Client,
    rows: u64,
    mut insert: impl FnMut(&mut postgres::Transaction<'_>, u64) -> Result<(), postgres::Error>,
) -> Result<(), String> {
    let mut n = 0u64;
    while n < rows {
        let mut tx = client.transaction().map_err(failed("BEGIN"))?;
        for _ in 0..10_000.min(rows - n) {
            insert(&mut tx, n).map_err(failed("baseline insert"))?;
            n += 1;
        }
        tx.commit().map_err(failed("COMMIT"))?;
    }
    Ok(())
}

/// After a fill, before a timed sweep: statistics, and a checkpoint so
/// that the sweep does not pay for writing the fill back (as the harness
/// does before each timed `custos jobs run`).
fn settle(client: &mut Client) -> Result<(), String> {
    client.batch_execute("ANALYZE").map_err(failed("ANALYZE"))?;
    client.batch_execute("CHECKPOINT").map_err(failed("CHECKPOINT"))
}

/// A timed sweep: `step` runs one transaction and says how many rows it
/// took, until a transaction takes none. The figures of the [`Floor`]:
/// rows, seconds, transactions, WAL logged and the cluster's CPU time.
fn sweep(
    cluster: &Cluster,
    client: &mut Client,
    rows: u64,
    mut step: impl FnMut(&mut Client) -> Result<u64, String>,
) -> Result<Floor, String> {
    let (wal_before, cpu_before) = (cluster.wal_bytes()?, cluster.cpu_seconds()?);
    let start = clock::now();
    let (mut done, mut transactions) = (0u64, 0u64);
    loop {
        let n = step(client)?;
        transactions += 1;
        done += n;
        if n == 0 {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let database_cpu_seconds = cluster.cpu_seconds()? - cpu_before;
    let written = cluster.wal_bytes()?.saturating_sub(wal_before);
    if done != rows {
        return Err(format!("baseline: swept {done} of {rows} rows"));
    }
    Ok(Floor { rows, seconds, transactions, written, database_cpu_seconds })
}

/// The dormancy sweep's baseline on PostgreSQL, as `lifecycle.rs` measures
/// it on SQLite: `rows` member rows (`lifecycle::member_row`: a random
/// id, kind, status, last activity and three sealed items) in a table of
/// schema `active` with an index on the last activity, copied to a table
/// of the same shape in schema `dormant` and deleted, `MOVE_BATCH` per
/// transaction, oldest activity first, with the same two statements.
pub(crate) fn move_baseline(cluster: &Arc<Cluster>, rows: u64) -> Result<Floor, String> {
    let db = cluster.database("move_baseline")?;
    let mut client = connect(&db.url)?;
    let columns = "id text PRIMARY KEY, kind text NOT NULL, status text NOT NULL, last_activity text NOT NULL,
                   name bytea NOT NULL, email bytea NOT NULL, phone bytea NOT NULL";
    client
        .batch_execute(&format!(
            "CREATE SCHEMA active;
             CREATE SCHEMA dormant;
             CREATE TABLE active.members ({columns});
             CREATE INDEX members_by_activity ON active.members (last_activity, id);
             CREATE TABLE dormant.members ({columns});"
        ))
        .map_err(failed("creating the baseline tables"))?;
    let insert = client
        .prepare(
            "INSERT INTO active.members (id, kind, status, last_activity, name, email, phone)
             VALUES ($1, 'business_operator', 'active', $2, $3, $4, $5)",
        )
        .map_err(failed("preparing the insert"))?;
    fill(&mut client, rows, |tx, n| {
        let m = lifecycle::member_row(n);
        tx.execute(&insert, &[&m.id, &DORMANT_SINCE, &m.name, &m.email, &m.phone]).map(|_| ())
    })?;
    settle(&mut client)?;
    let page = "SELECT id FROM active.members WHERE last_activity <= $1 ORDER BY last_activity, id LIMIT $2";
    let copy = client
        .prepare(&format!("INSERT INTO dormant.members SELECT * FROM active.members WHERE id IN ({page})"))
        .map_err(failed("preparing the copy"))?;
    let delete = client
        .prepare(&format!("DELETE FROM active.members WHERE id IN ({page})"))
        .map_err(failed("preparing the delete"))?;
    let batch = MOVE_BATCH as i64;
    sweep(cluster, &mut client, rows, |client| {
        let mut tx = client.transaction().map_err(failed("BEGIN"))?;
        let copied = tx.execute(&copy, &[&MOVE_RUN, &batch]).map_err(failed("baseline copy"))?;
        let deleted = tx.execute(&delete, &[&MOVE_RUN, &batch]).map_err(failed("baseline delete"))?;
        tx.commit().map_err(failed("COMMIT"))?;
        if copied != deleted {
            return Err(format!("baseline: copied {copied} rows but deleted {deleted}"));
        }
        Ok(deleted)
    })
}

/// The retention sweep's baseline on PostgreSQL, as `lifecycle.rs`
/// measures it on SQLite: `rows` record rows (`lifecycle::record_row`) in a
/// table shaped like the store's `custos.records` (its `rowid` identity
/// and both of its indexes), deleted by class and date `DELETE_BATCH` per
/// transaction with the statement the store uses.
pub(crate) fn delete_baseline(cluster: &Arc<Cluster>, rows: u64) -> Result<Floor, String> {
    let db = cluster.database("delete_baseline")?;
    let mut client = connect(&db.url)?;
    client
        .batch_execute(
            "CREATE TABLE records (
                 id text PRIMARY KEY, subject_id text NOT NULL, class text NOT NULL, record_date text NOT NULL,
                 key_id text NOT NULL, value bytea NOT NULL, created_at text NOT NULL,
                 rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
             );
             CREATE INDEX records_by_subject ON records (subject_id, class, id);
             CREATE INDEX records_by_class_date ON records (class, record_date);",
        )
        .map_err(failed("creating the records table"))?;
    let insert = client
        .prepare(
            "INSERT INTO records (id, subject_id, class, record_date, key_id, value, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .map_err(failed("preparing the insert"))?;
    let dates = lifecycle::record_dates();
    fill(&mut client, rows, |tx, n| {
        let r = lifecycle::record_row(n, &dates);
        tx.execute(
            &insert,
            &[&r.id, &r.subject_id, &RECORD_CLASS, &r.record_date, &r.key_id, &r.value, &RECORDS_SEEDED],
        )
        .map(|_| ())
    })?;
    settle(&mut client)?;
    let delete = client
        .prepare(
            "DELETE FROM records WHERE rowid IN
               (SELECT rowid FROM records WHERE class = $1 AND record_date <= $2 LIMIT $3)",
        )
        .map_err(failed("preparing the delete"))?;
    let batch = DELETE_BATCH as i64;
    sweep(cluster, &mut client, rows, |client| {
        let mut tx = client.transaction().map_err(failed("BEGIN"))?;
        let deleted =
            tx.execute(&delete, &[&RECORD_CLASS, &RETENTION_CUTOFF, &batch]).map_err(failed("baseline delete"))?;
        tx.commit().map_err(failed("COMMIT"))?;
        Ok(deleted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_plain_identifiers() {
        assert_eq!(database_name(3, "no-password"), "bench_3_no_password");
        assert_eq!(database_name(0, "Export Baseline"), "bench_0_export_baseline");
    }

    #[test]
    fn parent_of_this_process() {
        let mine = parent("/proc/self/stat").unwrap();
        assert!(mine > 0);
        assert_eq!(parent("/proc/self/no-such-file"), None);
    }

    /// The cluster starts durable, gives fresh databases, counts its CPU
    /// time and WAL, and the baselines run on it (briefly). Needs the
    /// system's PostgreSQL server binaries (scripts/test installs them).
    #[test]
    fn a_cluster_and_its_baselines() {
        let cluster = Cluster::start().expect("PostgreSQL starts (scripts/test installs it)");
        assert!(cluster.pg.dir().join("data").join("PG_VERSION").is_file());
        assert!(cluster.description.contains("`synchronous_commit` on"), "{}", cluster.description);
        let wal = cluster.wal_bytes().unwrap();
        let cpu = cluster.cpu_seconds().unwrap();
        let b = baseline(&cluster, Duration::from_millis(200), 2).unwrap();
        assert!(b.insert_single > 0.0 && b.insert_batched > 0.0 && b.select > 0.0, "{b:?}");
        assert!(b.audited > 0.0 && b.audited_batched > 0.0 && b.rows > 0, "{b:?}");
        assert!(b.single_kib > 0.0 && b.audited_kib > 0.0, "{b:?}");
        assert!(cluster.wal_bytes().unwrap() > wal);
        assert!(cluster.cpu_seconds().unwrap() > cpu);
        let read = export_baseline(&cluster, 500, 3, "2026-06-01", "2026-09-01").unwrap();
        assert!(read.p50_ms > 0.0);
        let db = cluster.database("left").unwrap();
        assert_eq!(db.psql("SELECT 1").unwrap(), "1");
        let name = db.name.clone();
        drop(db);
        let left = cluster.pg.psql("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"));
        assert_eq!(left.unwrap(), "0", "a database goes with its handle");
    }
}

//! The raw-storage baseline, measured in the same run on the same file
//! system with the durability Custos uses (WAL, `synchronous=FULL`): plain
//! SQLite through rusqlite, one table of members with unique e-mail and
//! phone, no encryption, no HTTP. It is the ceiling the store sits under,
//! not a competitor. Besides plain inserts and point selects it measures
//! what durable auditing costs at the storage level: a point select plus
//! the insert of an audit row shaped like Custos's, committed together,
//! one transaction per read and 100 reads per transaction.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::clock;
use crate::stats::mix;

/// Rows (or point selects) per second.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Baseline {
    /// One insert per transaction, one thread: a commit (and fsync) each.
    pub(crate) insert_single: f64,
    /// Inserts batched 100 per transaction, one thread.
    pub(crate) insert_batched: f64,
    /// Point selects by primary key, `select_threads` threads.
    pub(crate) select: f64,
    pub(crate) select_threads: usize,
    /// Rows in the table the selects read.
    pub(crate) rows: u64,
    /// Bytes written to storage per row by (a) and (b), in KiB.
    pub(crate) single_kib: f64,
    pub(crate) batched_kib: f64,
    /// Point select plus an audit row, one transaction (a commit, an fsync)
    /// per read, `select_threads` threads contending for the write lock.
    pub(crate) audited: f64,
    /// Point select plus an audit row, 100 reads per transaction, one thread.
    pub(crate) audited_batched: f64,
    /// Bytes written to storage per audited read by (d) and (e), in KiB.
    pub(crate) audited_kib: f64,
    pub(crate) audited_batched_kib: f64,
}

/// Rows (b) and reads (e) per transaction.
pub(crate) const BATCH: u64 = 100;

fn written() -> Result<f64, String> {
    crate::server::written_bytes("/proc/self/io").map(|b| b as f64 / 1024.0)
}

fn open(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|e| format!("cannot set the pragmas: {e}"))?;
    // Writers from several threads wait for the write lock (SQLite's own
    // busy handler) instead of failing with SQLITE_BUSY.
    conn.busy_timeout(Duration::from_secs(30)).map_err(|e| format!("cannot set the busy timeout: {e}"))?;
    Ok(conn)
}

/// A table shaped like Custos's `audit` (migrations `data_0001`, `data_0002`).
const AUDIT_TABLE: &str = "CREATE TABLE audit (
    seq            INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT NOT NULL,
    operation      TEXT NOT NULL,
    purpose        TEXT,
    subject_id     TEXT,
    items          TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    leaf_hash      BLOB
) STRICT;";

/// 32 well-mixed bytes standing in for an entry's SHA-256 leaf hash.
fn leaf_hash(n: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(n.wrapping_mul(4).wrapping_add(i as u64)).to_le_bytes());
    }
    out
}

/// The values of one audit row: a read of member `id` as Custos audits
/// `GET /v1/subjects/{id}?purpose=…`, made distinct by `n`; shared with
/// the PostgreSQL baseline.
#[derive(Debug)]
pub(crate) struct AuditRow {
    pub(crate) at: String,
    pub(crate) actor: &'static str,
    pub(crate) role: &'static str,
    pub(crate) operation: &'static str,
    pub(crate) purpose: &'static str,
    pub(crate) subject_id: String,
    pub(crate) items: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) policy_version: &'static str,
    pub(crate) leaf_hash: Vec<u8>,
}

pub(crate) fn audit_row(id: u64, n: u64) -> AuditRow {
    AuditRow {
        at: format!("2026-11-26T14:{:02}:{:02}.{:06}Z", n / 60_000_000 % 60, n / 1_000_000 % 60, n % 1_000_000),
        actor: "key:3f9a1c2e7b5d4a60",
        role: "platform",
        operation: "read",
        purpose: "member_management",
        subject_id: format!("sub_{:016x}{:016x}", mix(id), mix(!id)),
        items: r#"["name","email","mobile_phone"]"#,
        outcome: "allowed",
        policy_version: "2025-06-01",
        leaf_hash: leaf_hash(n).to_vec(),
    }
}

/// One audited read of member `id` inside the caller's transaction: the
/// point select of (c), then the audit row of that read, as Custos writes
/// one per `GET /v1/subjects/{id}?purpose=…`. `n` makes the row distinct.
fn read_and_audit(conn: &Connection, id: u64, n: u64) -> Result<(), String> {
    let found: (String, String, String) = conn
        .prepare_cached("SELECT name, email, phone FROM members WHERE id = ?1")
        .and_then(|mut s| s.query_row([id as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(|e| format!("select of id {id} failed: {e}"))?;
    std::hint::black_box(found);
    let row = audit_row(id, n);
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, role, operation, purpose, subject_id, items, outcome, policy_version, leaf_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.at,
            row.actor,
            row.role,
            row.operation,
            row.purpose,
            row.subject_id,
            row.items,
            row.outcome,
            row.policy_version,
            row.leaf_hash
        ])
    })
    .map(|_| ())
    .map_err(|e| format!("audit insert failed: {e}"))
}

fn exec(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.execute_batch(sql).map_err(|e| format!("{sql} failed: {e}"))
}

/// Runs `work(thread, connection, start)` on `threads` threads, each with
/// its own connection, and adds up the counts they return.
fn on_threads(
    path: &Path,
    threads: usize,
    work: impl Fn(u64, &Connection, std::time::Instant) -> Result<u64, String> + Sync,
) -> Result<(u64, f64), String> {
    let start = clock::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                scope.spawn(move || -> Result<u64, String> { work(t as u64, &open(path)?, start) })
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

/// Name, e-mail and phone of member row `n`; shared with the PostgreSQL baseline.
pub(crate) fn member(n: u64) -> (String, String, String) {
    (format!("Bench Operator {n}"), format!("op{n}@example.com"), format!("+82102{n:07}"))
}

fn insert(conn: &Connection, n: u64) -> Result<(), String> {
    let (name, email, phone) = member(n);
    conn.prepare_cached("INSERT INTO members (id, name, email, phone) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| s.execute(params![n as i64, name, email, phone]))
        .map(|_| ())
        .map_err(|e| format!("insert failed: {e}"))
}

/// Runs the five measurements for `each` apiece in `dir`.
pub(crate) fn run(dir: &Path, each: Duration, select_threads: usize) -> Result<Baseline, String> {
    let path = dir.join("baseline.db");
    let conn = open(&path)?;
    conn.execute_batch(
        "CREATE TABLE members (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             email TEXT NOT NULL UNIQUE,
             phone TEXT NOT NULL UNIQUE
         );",
    )
    .map_err(|e| format!("cannot create the baseline table: {e}"))?;

    // (a) Autocommit: every INSERT is its own transaction.
    let mut n = 0u64;
    let written_before = written()?;
    let start = clock::now();
    while start.elapsed() < each {
        n += 1;
        insert(&conn, n)?;
    }
    let insert_single = n as f64 / start.elapsed().as_secs_f64();
    let single_kib = (written()? - written_before) / n as f64;

    // (b) 100 inserts per transaction.
    let first = n;
    let written_before = written()?;
    let start = clock::now();
    while start.elapsed() < each {
        conn.execute_batch("BEGIN").map_err(|e| format!("cannot begin: {e}"))?;
        for _ in 0..BATCH {
            n += 1;
            insert(&conn, n)?;
        }
        conn.execute_batch("COMMIT").map_err(|e| format!("cannot commit: {e}"))?;
    }
    let insert_batched = (n - first) as f64 / start.elapsed().as_secs_f64();
    let batched_kib = (written()? - written_before) / (n - first) as f64;
    drop(conn);

    // (c) Point selects by primary key, one connection per thread.
    let rows = n;
    let (selects, elapsed) = on_threads(&path, select_threads, |t, conn, start| {
        let mut stmt = conn
            .prepare("SELECT name, email, phone FROM members WHERE id = ?1")
            .map_err(|e| format!("cannot prepare the select: {e}"))?;
        let mut done = 0u64;
        while start.elapsed() < each {
            let id = mix(t << 40 | done) % rows + 1;
            let found: (String, String, String) = stmt
                .query_row([id as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| format!("select of id {id} failed: {e}"))?;
            std::hint::black_box(found);
            done += 1;
        }
        Ok(done)
    })?;
    let select = selects as f64 / elapsed;

    // (d) Audited reads, one transaction each, one thread per CPU: every
    // read takes the write lock and commits (an fsync) before the next.
    let conn = open(&path)?;
    exec(&conn, AUDIT_TABLE)?;
    drop(conn);
    let written_before = written()?;
    let (reads, elapsed) = on_threads(&path, select_threads, |t, conn, start| {
        let mut done = 0u64;
        while start.elapsed() < each {
            let n = t << 40 | done;
            exec(conn, "BEGIN IMMEDIATE")?;
            read_and_audit(conn, mix(n) % rows + 1, n)?;
            exec(conn, "COMMIT")?;
            done += 1;
        }
        Ok(done)
    })?;
    let audited = reads as f64 / elapsed;
    let audited_kib = (written()? - written_before) / reads.max(1) as f64;

    // (e) Audited reads, 100 per transaction (group commit), one thread.
    let written_before = written()?;
    let (batched_reads, elapsed) = on_threads(&path, 1, |t, conn, start| {
        let mut done = 0u64;
        while start.elapsed() < each {
            exec(conn, "BEGIN IMMEDIATE")?;
            for _ in 0..BATCH {
                let n = (t + select_threads as u64) << 40 | done;
                read_and_audit(conn, mix(n) % rows + 1, n)?;
                done += 1;
            }
            exec(conn, "COMMIT")?;
        }
        Ok(done)
    })?;
    let audited_batched = batched_reads as f64 / elapsed;
    let audited_batched_kib = (written()? - written_before) / batched_reads.max(1) as f64;

    Ok(Baseline {
        insert_single,
        insert_batched,
        select,
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

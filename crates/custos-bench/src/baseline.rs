//! The raw-storage baseline, measured in the same run on the same file
//! system with the durability Custos uses (WAL, `synchronous=FULL`): plain
//! SQLite through rusqlite, one table of members with unique e-mail and
//! phone, no encryption, no audit, no HTTP. It is the ceiling the store sits
//! under, not a competitor.

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
}

fn written() -> Result<f64, String> {
    crate::server::written_bytes("/proc/self/io").map(|b| b as f64 / 1024.0)
}

fn open(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|e| format!("cannot set the pragmas: {e}"))?;
    Ok(conn)
}

fn insert(conn: &Connection, n: u64) -> Result<(), String> {
    conn.prepare_cached("INSERT INTO members (id, name, email, phone) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| {
            s.execute(params![
                n as i64,
                format!("Bench Operator {n}"),
                format!("op{n}@example.com"),
                format!("+82102{n:07}")
            ])
        })
        .map(|_| ())
        .map_err(|e| format!("insert failed: {e}"))
}

/// Runs the three measurements for `each` apiece in `dir`.
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
        for _ in 0..100 {
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
    let start = clock::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..select_threads)
            .map(|t| {
                let path = &path;
                scope.spawn(move || -> Result<u64, String> {
                    let conn = open(path)?;
                    let mut stmt = conn
                        .prepare("SELECT name, email, phone FROM members WHERE id = ?1")
                        .map_err(|e| format!("cannot prepare the select: {e}"))?;
                    let mut done = 0u64;
                    while start.elapsed() < each {
                        let id = mix((t as u64) << 40 | done) % rows + 1;
                        let found: (String, String, String) = stmt
                            .query_row([id as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .map_err(|e| format!("select of id {id} failed: {e}"))?;
                        std::hint::black_box(found);
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a select thread panicked".into()))).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut selects = 0;
    for c in counts {
        selects += c?;
    }
    Ok(Baseline {
        insert_single,
        insert_batched,
        select: selects as f64 / elapsed,
        select_threads,
        rows,
        single_kib,
        batched_kib,
    })
}

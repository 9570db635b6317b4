//! The access export of one member with many records (DESIGN §9: 10,000
//! records in ≤ 100 ms): a fresh `custos serve` on a data folder that
//! `custos admin seed-synthetic` filled with one member and their records
//! (`payment_supply_records`, kept 5 years, dated over the last 90 days);
//! then, `--export-runs` times, the platform files an export request for
//! its signed-in member (`verification: platform_session`), fulfils it
//! (`POST /v1/requests/{id}/fulfil`: the caller checked and the request
//! closed, one job) and fetches the package (`GET /v1/requests/{id}/outcome`:
//! every item and record read with the audit entry in one job, decrypted,
//! built and sent; the package is never stored).
//! Each over a fresh connection, timed from the request's first byte to
//! the answer's last.
//!
//! Baseline, raw SQLite with the store's settings in the same scratch
//! folder: the same number of record-sized rows of one subject read back
//! through an index on the subject, the same number of times. With a
//! PostgreSQL cluster the server serves from a fresh database of it and
//! the baseline reads a table of that cluster (`pg::export_baseline`).

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, params};

use crate::lifecycle::{exec, fill, sealed, settings};
use crate::pg::Cluster;
use crate::server::{Scratch, Server, http_send};
use crate::stats::{Latency, mix};
use crate::{clock, say};

/// Record dates: the 90 days from this one, well inside a 5-year hold of
/// any date the harness runs on.
const RECORDS_FROM: &str = "2026-06-01";
const SEEDED_AT: &str = "2026-09-01";

/// What one invocation measured.
#[derive(Debug, Clone)]
pub(crate) struct Export {
    pub(crate) records: u64,
    pub(crate) runs: usize,
    /// Fulfilment (check, close).
    pub(crate) fulfil: Latency,
    /// Fetching the package (read, audit, decrypt, build, send).
    pub(crate) outcome: Latency,
    /// Both, per run.
    pub(crate) total: Latency,
    pub(crate) package_bytes: usize,
    pub(crate) baseline: Latency,
}

pub(crate) fn run(custos: &Path, records: u64, runs: usize, cluster: Option<&Arc<Cluster>>) -> Result<Export, String> {
    say(&format!("export: one member with {records} records, {runs} exports"));
    let n = records.to_string();
    let seed = [
        "admin",
        "seed-synthetic",
        "--members",
        "1",
        "--records-per-member",
        &n,
        "--record-class",
        "payment_supply_records",
        "--record-date-from",
        RECORDS_FROM,
        "--record-days",
        "90",
        "--last-activity",
        SEEDED_AT,
        "--now",
        SEEDED_AT,
    ];
    let server = Server::start_seeded(custos, "export", None, cluster, &seed)?;
    let member = match (server.database(), server.data_file()) {
        (Some(db), _) => db.psql("SELECT id FROM custos.subjects LIMIT 1")?,
        (None, Some(data)) => Connection::open_with_flags(&data, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT id FROM subjects LIMIT 1", [], |r| r.get(0)))
            .map_err(|e| format!("cannot find the seeded member: {e}"))?,
        (None, None) => return Err("the server has no data folder".to_owned()),
    };
    if !member.starts_with("sub_") {
        return Err(format!("cannot find the seeded member: {member:?}"));
    }
    let body =
        format!(r#"{{"kind":"export","channel":"web_page","subject":"{member}","verification":"platform_session"}}"#);
    let (mut fulfil, mut outcome, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut package_bytes = 0;
    for _ in 0..runs {
        let (status, filed) = http_send(server.addr, "POST", "/v1/requests", &server.token, Some(&body))?;
        if status != 201 {
            return Err(format!("filing an export answered {status}: {filed}"));
        }
        let id = filed
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| format!("no request id in {filed}"))?
            .to_owned();
        let start = clock::now();
        let (status, text) = http_send(server.addr, "POST", &format!("/v1/requests/{id}/fulfil"), &server.token, None)?;
        let fulfilled = start.elapsed();
        if status != 200 {
            return Err(format!("fulfilling the export answered {status}: {text}"));
        }
        let start = clock::now();
        let (status, text) = http_send(server.addr, "GET", &format!("/v1/requests/{id}/outcome"), &server.token, None)?;
        let read = start.elapsed();
        if status != 200 {
            return Err(format!("reading the export answered {status}: {text}"));
        }
        let held = text.matches("\"record_date\"").count() as u64;
        if held != records {
            return Err(format!("the package holds {held} records, not {records}"));
        }
        package_bytes = text.len();
        let micros = |d: std::time::Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        fulfil.push(micros(fulfilled));
        outcome.push(micros(read));
        total.push(micros(fulfilled + read));
    }
    server.stop()?;
    let baseline = match cluster {
        Some(cluster) => {
            say(&format!("  baseline: PostgreSQL read of {records} record rows of one subject, {runs} times"));
            crate::pg::export_baseline(cluster, records, runs, RECORDS_FROM, SEEDED_AT)?
        }
        None => {
            let dir = Scratch::new("export-baseline")?;
            say(&format!("  baseline: SQLite read of {records} record rows of one subject, {runs} times"));
            read_baseline(&dir.0, records, runs)?
        }
    };
    Ok(Export {
        records,
        runs,
        fulfil: Latency::from_micros(fulfil),
        outcome: Latency::from_micros(outcome),
        total: Latency::from_micros(total),
        package_bytes,
        baseline,
    })
}

/// Rows shaped like the store's `records` (a random id, the subject, class,
/// date, key id, 120 bytes standing in for ciphertext), one subject's
/// read back by an index on the subject.
fn read_baseline(dir: &Path, rows: u64, runs: usize) -> Result<Latency, String> {
    let conn = Connection::open(dir.join("records.db")).map_err(|e| format!("cannot open the baseline file: {e}"))?;
    settings(&conn, "main")?;
    exec(
        &conn,
        "CREATE TABLE records (id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, class TEXT NOT NULL,
                               record_date TEXT NOT NULL, key_id TEXT NOT NULL, value BLOB NOT NULL,
                               created_at TEXT NOT NULL) STRICT;
         CREATE INDEX records_by_subject ON records (subject_id, class, id);",
    )?;
    fill(&conn, rows, |n| {
        conn.prepare_cached(
            "INSERT INTO records (id, subject_id, class, record_date, key_id, value, created_at)
             VALUES (?1, 'sub_baseline', 'payment_supply_records', ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                format!("rec_{:016x}{:016x}", mix(n), mix(!n)),
                RECORDS_FROM,
                format!("key_{:08x}", n % 3),
                sealed(n, 120),
                SEEDED_AT
            ])
        })
        .map(|_| ())
        .map_err(|e| format!("baseline insert failed: {e}"))
    })?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = clock::now();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, class, record_date, key_id, value, created_at FROM records
                 WHERE subject_id = ?1 ORDER BY class, id",
            )
            .map_err(|e| format!("baseline select failed: {e}"))?;
        let mut read = 0u64;
        let mut bytes = 0usize;
        let mut rows_iter = stmt.query(params!["sub_baseline"]).map_err(|e| format!("baseline select failed: {e}"))?;
        while let Some(row) = rows_iter.next().map_err(|e| format!("baseline select failed: {e}"))? {
            let value: Vec<u8> = row.get(4).map_err(|e| format!("baseline read failed: {e}"))?;
            bytes += value.len();
            read += 1;
        }
        if read != rows || bytes == 0 {
            return Err(format!("the baseline read {read} rows, not {rows}"));
        }
        times.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    Ok(Latency::from_micros(times))
}

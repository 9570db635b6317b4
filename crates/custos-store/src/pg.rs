//! PostgreSQL's migrations: run by every node as it opens the store
//! (`pg_backend.rs`), and by `custos migrate --database postgres://…` for
//! operators who run migrations apart from the servers.
//!
//! Each database tracks the version of each of its schemas in
//! `public.custos_schema_versions` (store → version). Migrating takes a
//! transaction-scoped advisory lock, so several nodes migrating at once
//! apply each file once; a database newer than this binary is refused,
//! never rolled back. The key store may live in a database of its own.

use postgres::{Client, NoTls};

use crate::{Result, StoreError};

const DATA: &[&str] = &[
    include_str!("../migrations/postgres/data_0001_initial.sql"),
    include_str!("../migrations/postgres/data_0002_member_sign_in.sql"),
    include_str!("../migrations/postgres/data_0003_disclosures_by_time.sql"),
];
const KEYS: &[&str] = &[include_str!("../migrations/postgres/keys_0001_initial.sql")];
const DORMANT: &[&str] = &[include_str!("../migrations/postgres/dormant_0001_initial.sql")];

/// The advisory lock every migrating node takes (any fixed number).
const MIGRATION_LOCK: i64 = 0x6375_7374_6f73;

/// What a migration run did: for each schema, (version before, after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgMigrated {
    pub data: (i64, i64),
    pub dormant: (i64, i64),
    pub keys: (i64, i64),
}

fn db(e: postgres::Error) -> StoreError {
    // The server's own message (a missing database, a refused login, a
    // failed statement); never data, which migrations do not touch.
    match e.as_db_error() {
        Some(d) => StoreError::Database(format!("PostgreSQL: {} ({})", d.message(), d.code().code())),
        None => StoreError::Database(format!("PostgreSQL: {e}")),
    }
}

fn connect(url: &str) -> Result<Client> {
    let mut client = Client::connect(url, NoTls).map_err(db)?;
    // "already exists, skipping" and the like are not news.
    client.batch_execute("SET client_min_messages = warning").map_err(db)?;
    Ok(client)
}

/// Brings `store`'s schema in the connected database to the newest version.
fn apply(client: &mut Client, store: &str, files: &[&str]) -> Result<(i64, i64)> {
    let known = files.len() as i64;
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.custos_schema_versions (
             store   text PRIMARY KEY,
             version bigint NOT NULL
         )",
    )
    .map_err(db)?;
    let from: i64 = tx
        .query_opt("SELECT version FROM public.custos_schema_versions WHERE store = $1", &[&store])
        .map_err(db)?
        .map(|row| row.get(0))
        .unwrap_or(0);
    if from > known {
        return Err(StoreError::TooNew { path: format!("PostgreSQL {store} schema"), found: from, known });
    }
    for sql in files.iter().skip(usize::try_from(from).unwrap_or(usize::MAX)) {
        tx.batch_execute(sql).map_err(db)?;
    }
    tx.execute(
        "INSERT INTO public.custos_schema_versions (store, version) VALUES ($1, $2)
         ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version",
        &[&store, &known],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok((from, known))
}

/// Migrates the data and dormant schemas in the database at `url`, and the
/// key store in the one at `keys_url` (the same database when `None`).
pub fn migrate_postgres(url: &str, keys_url: Option<&str>) -> Result<PgMigrated> {
    let mut data = connect(url)?;
    let data_versions = apply(&mut data, "data", DATA)?;
    let dormant_versions = apply(&mut data, "dormant", DORMANT)?;
    let keys_versions = match keys_url {
        Some(keys_url) => apply(&mut connect(keys_url)?, "keys", KEYS)?,
        None => apply(&mut data, "keys", KEYS)?,
    };
    Ok(PgMigrated { data: data_versions, dormant: dormant_versions, keys: keys_versions })
}

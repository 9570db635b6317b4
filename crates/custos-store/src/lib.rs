//! Custos persistence: one `Store` API over SQLite (the embedded default)
//! or PostgreSQL (several nodes on one database), one set of statements
//! (`tx.rs`, through `db.rs`), migrations per backend.
//!
//! The store knows rows, not meaning: values arrive encrypted and leave
//! encrypted, and every decision is the engine's. Two invariants live here:
//! - **acknowledged means durable**: a write job's result is sent only after
//!   its transaction committed with `synchronous=FULL`; many concurrent jobs
//!   share one commit (group commit), each inside its own savepoint so one
//!   failing job never takes the others down;
//! - **keys apart from data**: wrapped data keys live in their own database
//!   file, committed before the data of the same batch, so that a destroyed
//!   key is gone from the one place that held it and the data file alone
//!   reveals nothing.
//!
//! Only `custos-engine` may depend on this crate.

mod db;
mod pg;
mod pg_backend;
mod queue;
mod rows;
mod sqlite;
mod tx;

use std::path::PathBuf;

pub use pg::{PgMigrated, migrate_postgres};
pub use rows::*;
pub use tx::{ReadTx, WriteTx};

/// Errors of the storage layer. Messages never contain personal data: the
/// store only ever sees ciphertext, digests and ids.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. a blind index already
    /// taken in this service).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("database error: {0}")]
    Database(String),
    #[error(
        "the data folder {path} was created by a newer version of custos (schema {found}, this version knows up to {known})"
    )]
    TooNew { path: String, found: i64, known: i64 },
    #[error("the data file and the key store do not belong together ({0})")]
    Mismatch(String),
    #[error("the store is shutting down")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match &e {
            // Only uniqueness is a conflict with stored data; any other
            // refusal (a trigger, a check) is a fault of the store.
            rusqlite::Error::SqliteFailure(code, _)
                if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the embedded store keeps its files.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The personal data (encrypted), audit trail and registers.
    pub data_file: PathBuf,
    /// The wrapped data keys.
    pub key_file: PathBuf,
    /// The dormant store: members moved aside after a year without
    /// activity, under keys of their own.
    pub dormant_file: PathBuf,
    /// Read connections in the pool.
    pub readers: usize,
    /// The most write jobs committed together.
    pub max_batch: usize,
}

/// Where the PostgreSQL store lives. URLs are never logged or shown.
#[derive(Clone)]
pub struct PgConfig {
    /// The database of the data and dormant schemas (`postgres://…`).
    pub url: String,
    /// The key store's database, when apart from `url`.
    pub key_url: Option<String>,
    /// Read connections in the pool (each opens two: data and keys).
    pub readers: usize,
    /// The most write jobs committed together.
    pub max_batch: usize,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig").field("readers", &self.readers).field("max_batch", &self.max_batch).finish()
    }
}

#[derive(Debug)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(pg_backend::Pg),
}

/// The handle every engine operation goes through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: std::sync::Arc<Backend>,
}

impl Store {
    /// Opens (creating if needed) and migrates the embedded store.
    pub fn open_sqlite(config: &SqliteConfig) -> Result<Store> {
        Ok(Store { inner: std::sync::Arc::new(Backend::Sqlite(sqlite::Sqlite::open(config)?)) })
    }

    /// Connects to PostgreSQL, migrating its schemas first (every node
    /// does; the migration lock lets one apply each file).
    pub fn open_postgres(config: &PgConfig) -> Result<Store> {
        Ok(Store { inner: std::sync::Arc::new(Backend::Postgres(pg_backend::Pg::open(config)?)) })
    }

    /// `"sqlite"` or `"postgres"`, for reports.
    pub fn backend(&self) -> &'static str {
        match *self.inner {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Runs `job` in the next group commit and returns its result once the
    /// batch is durable. The job runs on the writer thread: keep it to
    /// database work (no hashing, no waiting).
    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        match &*self.inner {
            Backend::Sqlite(s) => s.write(job).await,
            Backend::Postgres(p) => p.write(job).await,
        }
    }

    /// Runs `job` on a read connection, outside any write transaction. For
    /// reads that touch no personal data (look-ups of keys, lists of ids);
    /// audited reads of personal data go through `write`.
    pub async fn read<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTx<'_>) -> Result<T> + Send + 'static,
    {
        match &*self.inner {
            Backend::Sqlite(s) => s.read(job).await,
            Backend::Postgres(p) => p.read(job).await,
        }
    }

    /// SQLite: writes outstanding WAL frames into the database files and
    /// truncates the logs, so that nothing lingers in `-wal` files.
    /// PostgreSQL: vacuums the tables that hold personal data and keys (dead
    /// rows cut out of their pages) and runs `CHECKPOINT` (the role needs
    /// `pg_checkpoint` or superuser).
    pub fn checkpoint(&self) -> Result<()> {
        match &*self.inner {
            Backend::Sqlite(s) => s.checkpoint(),
            Backend::Postgres(p) => p.checkpoint(),
        }
    }

    /// Number of write batches and jobs committed since start.
    pub fn commit_stats(&self) -> CommitStats {
        match &*self.inner {
            Backend::Sqlite(s) => s.commit_stats(),
            Backend::Postgres(p) => p.commit_stats(),
        }
    }
}

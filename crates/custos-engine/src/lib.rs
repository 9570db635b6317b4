//! Custos engine: the only code that reads or changes personal data.
//!
//! Every operation runs as authorise → decide (a pure function in
//! `custos-core`) → encrypt or decrypt → write together with its audit record
//! in one transaction of `custos-store`. Invariants kept here:
//! - no personal value reaches the store unencrypted: items and records are
//!   sealed under data keys bound to owner, field and key version;
//! - every read and change of personal data appends its audit entry in the
//!   job that does it, so the entry commits exactly when the act does; if the
//!   audit cannot be written the operation fails;
//! - time is a parameter: every operation takes `now`;
//! - a caller scoped to one service can never reach another service's data,
//!   and "forbidden" and "does not exist" look the same.

mod amendments;
mod audit;
mod auth;
pub mod consent;
mod cookies;
pub mod crypto;
pub mod disclosures;
mod error;
pub mod export;
mod gate;
mod hashing;
mod ids;
pub mod lifecycle;
pub mod mail;
pub mod password;
pub mod privacy_center;
mod records;
pub mod requests;
mod rootkey;
mod services;
mod staff;
mod subjects;
pub mod synthetic;
mod throttle;
pub mod totp;

use std::path::PathBuf;
use std::sync::Arc;

use crypto::Keyring;
use custos_core::policy::Policy;
use custos_store::{PgConfig, SqliteConfig, Store};

pub use amendments::Notice;
pub use audit::{SignedCheckpoint, Verified, VerifyFailure, verify_export};
pub use auth::{NewApiKey, StaffAuth};
pub use consent::{ConsentEntry, ConsentLedger, ConsentRecorded, ConsentStatus, NewConsent};
pub use cookies::{CookieCategoryState, CookieConsent, CookieEntry, CookieLinked, is_visitor_id};
pub use custos_core::collect::{ErrorCode, FieldError};
pub use custos_core::consent::State as ConsentState;
pub use custos_core::policy;
pub use custos_store::PgMigrated;
pub use error::EngineError;

/// Prepares a PostgreSQL database for Custos (issue 9, first part): the
/// data and dormant schemas at `url`, the key store at `keys_url` (the
/// same database when `None`), each brought to the newest version under
/// an advisory lock. Blocking; run it outside an async runtime.
pub fn migrate_postgres(url: &str, keys_url: Option<&str>) -> Result<PgMigrated> {
    Ok(custos_store::migrate_postgres(url, keys_url)?)
}
pub use services::{NewService, ServiceCreated};
pub use staff::{
    ABSOLUTE_SECONDS, Enrolment, IDLE_SECONDS, INVITATION_SECONDS, Invitation, Login, NewInvitation, NewSession,
    PER_ADDRESS_PUBLIC, StaffView,
};
pub use subjects::{
    Caller, Idempotency, NewRecord, NewSubject, RecordRead, SubjectCreated, SubjectRead, SubjectSummary,
};
pub use zeroize::Zeroizing;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// How long a request waits for its write and audit entry to commit before
/// it is answered 503.
pub const WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1500);

/// How long a store job of the scheduled jobs (dormancy, retention, outbox)
/// waits to commit. A job that misses it may still commit later; every job
/// is safe to run again, and the next run resumes where this one stopped.
pub const JOB_WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// What the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Folder of the data file and the key store.
    pub data_dir: PathBuf,
    /// The root key file; created (mode 0600) when absent.
    pub root_key_file: PathBuf,
    /// Concurrent password hashes (Argon2id is memory-hard: bound it).
    pub hash_workers: usize,
    /// Read connections.
    pub readers: usize,
    /// How notices are delivered; `None`: they wait in the outbox.
    pub mail: Option<lifecycle::MailConfig>,
    /// PostgreSQL instead of the data folder's SQLite files; the root key
    /// file stays a file (every node of one database needs the same one).
    pub database: Option<DatabaseUrls>,
}

/// Where a PostgreSQL store lives. Never printed: a URL may hold a password.
#[derive(Clone)]
pub struct DatabaseUrls {
    /// `postgres://…` of the data and dormant schemas.
    pub url: String,
    /// The key store's own database, when apart.
    pub key_url: Option<String>,
}

impl std::fmt::Debug for DatabaseUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrls").field("separate_key_database", &self.key_url.is_some()).finish()
    }
}

/// What happened at start that the operator must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    /// `Some(path)` when a new root key was created there.
    pub created_root_key: Option<PathBuf>,
    /// Where the data is, for the operator (never a URL).
    pub data_location: String,
    /// Where the keys are.
    pub key_location: String,
}

/// The engine: cheap to clone, shared by every request.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// The policy in force and its history (the last of `history` is `current`).
struct Versions {
    current: Arc<Policy>,
    history: Arc<Vec<Arc<Policy>>>,
}

struct Inner {
    store: Store,
    /// Names this instance's audit log in its checkpoints.
    origin: String,
    keyring: Arc<Keyring>,
    /// The policy in force and the versions before it; swapped whole when
    /// an amendment takes effect (`amendments.rs`).
    versions: std::sync::RwLock<Versions>,
    hashing: hashing::HashPool,
    /// Verified API keys by id: (secret hash, caller). Only keys whose
    /// secret was presented correctly enter; see `auth.rs`.
    api_keys: std::sync::Mutex<std::collections::HashMap<String, (Vec<u8>, Caller)>>,
    /// Set when a write (and so its audit entry) failed; cleared by the next
    /// write that commits. `/health` reports it.
    audit_failing: std::sync::atomic::AtomicBool,
    /// Failed staff logins, per account and per address.
    throttle: throttle::Throttle,
    mail: Option<lifecycle::MailConfig>,
    /// Roots of complete blocks of audit leaves, for proofs (`audit.rs`).
    audit_blocks: tokio::sync::Mutex<Vec<custos_core::merkle::Hash>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the data folder (creating and migrating it as needed) and loads
    /// or creates the root key. Refuses a root key that does not belong to
    /// the data folder.
    pub async fn open(config: &EngineConfig, policy: Policy) -> Result<(Engine, Startup)> {
        // The data folder holds the SQLite files; on PostgreSQL there is none.
        if config.database.is_none() {
            let new_folder = !config.data_dir.exists();
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                EngineError::Config(format!("cannot create the data folder {}: {e}", config.data_dir.display()))
            })?;
            #[cfg(unix)]
            if new_folder {
                // Only the owner may list or read the data folder.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| EngineError::Config(format!("cannot restrict the data folder: {e}")))?;
            }
        }
        let data_file = config.data_dir.join("custos.db");
        let key_file = config.data_dir.join("keys.db");
        let (store, data_location, key_location, data_exists) = match &config.database {
            None => {
                let exists = data_file.exists() || key_file.exists();
                let store = Store::open_sqlite(&SqliteConfig {
                    data_file: data_file.clone(),
                    key_file: key_file.clone(),
                    dormant_file: config.data_dir.join("dormant.db"),
                    readers: config.readers.max(1),
                    max_batch: 1024,
                })?;
                (store, data_file.display().to_string(), key_file.display().to_string(), exists)
            }
            Some(db) => {
                let store = Store::open_postgres(&PgConfig {
                    url: db.url.clone(),
                    key_url: db.key_url.clone(),
                    readers: config.readers.max(1),
                    max_batch: 1024,
                })
                .map_err(|e| EngineError::Config(format!("cannot open the PostgreSQL store: {e}")))?;
                // Data is there once a root key's check value was recorded.
                let exists = store.read(|r| r.has_root_key_check()).await?;
                let keys = if db.key_url.is_some() {
                    "PostgreSQL, schema custos_keys in its own database"
                } else {
                    "PostgreSQL, schema custos_keys"
                };
                (store, "PostgreSQL, schemas custos and custos_dormant".to_owned(), keys.to_owned(), exists)
            }
        };
        let (root, created) = rootkey::load_or_create(&config.root_key_file, data_exists)?;
        let keyring = Arc::new(Keyring::new(&root));
        drop(root);
        rootkey::check_matches(&store, &keyring).await?;
        let instance = store.read(|r| r.instance_id()).await?.unwrap_or_default();
        let (policy, policy_history) = consent::load_history(&store, policy).await?;
        let policy_history = Arc::new(policy_history);
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                origin: format!("custos:{instance}"),
                keyring,
                versions: std::sync::RwLock::new(Versions { current: policy, history: policy_history }),
                hashing: hashing::HashPool::new(config.hash_workers)?,
                api_keys: std::sync::Mutex::new(std::collections::HashMap::new()),
                audit_failing: std::sync::atomic::AtomicBool::new(false),
                throttle: throttle::Throttle::default(),
                mail: config.mail.clone(),
                audit_blocks: tokio::sync::Mutex::new(Vec::new()),
            }),
        };
        engine.backfill_leaves().await?;
        Ok((
            engine,
            Startup { created_root_key: created.then(|| config.root_key_file.clone()), data_location, key_location },
        ))
    }

    /// Runs a store job with its audit entry, failing closed: a job that has
    /// not committed within [`WRITE_DEADLINE`] is answered as unavailable
    /// (no data is served without its committed audit entry), and the
    /// failure shows on `/health` until a later write commits.
    async fn write_job<T, F>(&self, job: F) -> Result<T, custos_store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut custos_store::WriteTx<'_>) -> Result<T, custos_store::StoreError> + Send + 'static,
    {
        self.write_within(WRITE_DEADLINE, job).await
    }

    /// [`Engine::write_job`] for the scheduled jobs, which answer no request
    /// and so may wait longer ([`JOB_WRITE_DEADLINE`]) behind a burst of
    /// writes; each of their store jobs is kept small all the same.
    async fn background_job<T, F>(&self, job: F) -> Result<T, custos_store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut custos_store::WriteTx<'_>) -> Result<T, custos_store::StoreError> + Send + 'static,
    {
        self.write_within(JOB_WRITE_DEADLINE, job).await
    }

    async fn write_within<T, F>(&self, deadline: std::time::Duration, job: F) -> Result<T, custos_store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut custos_store::WriteTx<'_>) -> Result<T, custos_store::StoreError> + Send + 'static,
    {
        use custos_store::StoreError;
        use std::sync::atomic::Ordering;
        let outcome = match tokio::time::timeout(deadline, self.inner.store.write(job)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Database(format!("the write did not commit within {deadline:?}"))),
        };
        match &outcome {
            Ok(_) => self.inner.audit_failing.store(false, Ordering::Relaxed),
            Err(StoreError::Database(_) | StoreError::Closed) => {
                self.inner.audit_failing.store(true, Ordering::Relaxed)
            }
            Err(_) => {}
        }
        outcome
    }

    /// False while writes (and so audit entries) fail.
    pub fn audit_healthy(&self) -> bool {
        !self.inner.audit_failing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.inner.versions.read().unwrap_or_else(|e| e.into_inner()).current.clone()
    }

    /// The policy versions run so far, in the order they came into force;
    /// the last is the policy in force. Consent is derived against it.
    pub(crate) fn policy_history(&self) -> Arc<Vec<Arc<Policy>>> {
        self.inner.versions.read().unwrap_or_else(|e| e.into_inner()).history.clone()
    }

    /// True when the store answers: for `/ready`.
    pub async fn ready(&self) -> bool {
        self.inner.store.read(|r| r.audit_len()).await.is_ok()
    }

    /// Counters for `/metrics`.
    pub async fn metrics(&self) -> Result<Metrics> {
        let audit_entries = self.inner.store.read(|r| r.audit_len()).await?;
        let stats = self.inner.store.commit_stats();
        Ok(Metrics { audit_entries, commit_batches: stats.batches, committed_jobs: stats.jobs })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// Writes the write-ahead logs back and truncates them (SQLite); vacuums
    /// and checkpoints (PostgreSQL).
    pub fn checkpoint(&self) -> Result<()> {
        Ok(self.inner.store.checkpoint()?)
    }
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub audit_entries: u64,
    pub commit_batches: u64,
    pub committed_jobs: u64,
}

/// Formats an instant as stored: RFC 3339 in UTC, second precision or finer.
fn stamp(now: jiff::Timestamp) -> String {
    now.to_string()
}

/// The calendar date of an instant in UTC: the date policies count in.
fn utc_date(now: jiff::Timestamp) -> jiff::civil::Date {
    jiff::tz::Offset::UTC.to_datetime(now).date()
}

/// The hash an idempotency key is stored with: the same key with another
/// body is a conflict, not a replay.
pub fn request_hash(body: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref().to_vec()
}

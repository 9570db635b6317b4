//! The embedded backend: SQLite in WAL mode with `synchronous=FULL`.
//!
//! One writer thread owns the write connections (data, keys and the dormant
//! store) and commits every job that is waiting in one transaction per file:
//! group commit. Each job runs inside a savepoint, so a job that fails is
//! rolled back alone and the others still commit.
//!
//! Commit order: dormant store, key store, data file. A crash between two
//! commits leaves at worst an unused key (for new data), unreadable
//! ciphertext whose key is already gone (for destruction), or a member in
//! both stores (moved aside but still active: the next sweep moves them
//! again), never readable data without its key recorded and never a member
//! in neither store. Releasing a member from the dormant store is therefore
//! two jobs: the active copy commits first, the dormant copy is removed
//! after.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::db::Db;
use crate::queue::{Completion, Job, Pool, erase, refuse};
use crate::tx::{ReadTx, WriteTx};

use crate::{CommitStats, Result, SqliteConfig, StoreError};

const DATA_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/data_0001_vault.sql"),
    include_str!("../../migrations/sqlite/data_0002_audit_tree.sql"),
    include_str!("../../migrations/sqlite/data_0003_staff.sql"),
    include_str!("../../migrations/sqlite/data_0004_consent_ledger.sql"),
    include_str!("../../migrations/sqlite/data_0005_amendments.sql"),
    include_str!("../../migrations/sqlite/data_0006_cookie_consents.sql"),
    DATA_MIGRATIONS_LIFECYCLE,
    include_str!("../../migrations/sqlite/data_0008_requests.sql"),
    include_str!("../../migrations/sqlite/data_0009_request_retention.sql"),
    include_str!("../../migrations/sqlite/data_0010_disclosures.sql"),
    include_str!("../../migrations/sqlite/data_0011_cookie_unlink.sql"),
    include_str!("../../migrations/sqlite/data_0012_member_sign_in.sql"),
    include_str!("../../migrations/sqlite/data_0013_disclosures_by_time.sql"),
];
const DATA_MIGRATIONS_LIFECYCLE: &str = include_str!("../../migrations/sqlite/data_0007_lifecycle.sql");
const KEY_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/keys_0001_keys.sql"),
    include_str!("../../migrations/sqlite/keys_0002_scopes.sql"),
];
const DORMANT_MIGRATIONS: &[&str] = &[include_str!("../../migrations/sqlite/dormant_0001_dormant.sql")];

enum Message {
    Job(Job),
    Checkpoint(mpsc::Sender<Result<()>>),
    /// From the checkpoint thread: every frame of the logs is copied back;
    /// restart them from their beginning (see [`start_checkpointer`]).
    Restart,
}

pub(crate) struct Sqlite {
    sender: Mutex<Option<mpsc::Sender<Message>>>,
    readers: Arc<Pool<(Connection, Connection)>>,
    batches: Arc<AtomicU64>,
    jobs: Arc<AtomicU64>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    /// Dropping the sender stops the checkpoint thread at once.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").finish_non_exhaustive()
    }
}

/// How long a connection waits for a lock held by another.
const WRITER_BUSY: std::time::Duration = std::time::Duration::from_millis(1000);

/// The writer's page cache for the data file, in KiB (a quarter of it for
/// the key and dormant files).
const WRITER_CACHE_KIB: u32 = 65_536;

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    // The query planner stability guarantee: a plan does not depend on
    // the values bound. Without it SQLite re-prepared a statement on every
    // new binding of a column that a partial index's condition names (and
    // under STAT4, which the bundled build enables), a tenth of the
    // dormancy sweep's time.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // Savepoint journals (every store job runs in one) in memory, not in
    // a temporary file written page by page.
    conn.execute_batch("PRAGMA temp_store = MEMORY")?;
    // Shorter than the engine's write deadline, so a locked file turns into
    // an error the request can report, not a hang.
    conn.busy_timeout(WRITER_BUSY)?;
    if read_only {
        return Ok(conn);
    }
    owner_only(path)?;
    // WAL for concurrent readers; FULL so that a commit survives power loss;
    // secure_delete so that freed pages are zeroed, not left behind.
    // journal_size_limit: a log that grew during a burst is cut back to
    // 64 MiB when it restarts, not kept at its largest.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    Ok(conn)
}

/// Makes a database file readable by its owner only, before its WAL and
/// shared-memory files exist: SQLite gives those the main file's mode.
#[cfg(unix)]
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::Database(format!("cannot restrict {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn owner_only(_path: &Path) -> Result<()> {
    Ok(())
}

/// Applies the migrations the file has not seen, in one transaction.
/// `PRAGMA user_version` counts them; a newer file is refused, never reset.
fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = migrations.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { path: path.display().to_string(), found: version, known });
    }
    let tx = conn.transaction()?;
    for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()?;
    Ok(())
}

/// The dormant store carries the data file's instance id too: written when
/// it is created (the data file exists by then), checked ever after.
fn pair_dormant(data: &Connection, dormant: &Connection) -> Result<()> {
    let get = |c: &Connection| -> Result<Option<String>> {
        Ok(c.query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| r.get(0)).optional()?)
    };
    match (get(data)?, get(dormant)?) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(a), None) => {
            let members: i64 =
                data.query_row("SELECT count(*) FROM subjects WHERE status = 'dormant'", [], |r| r.get(0))?;
            if members > 0 {
                return Err(StoreError::Mismatch(format!(
                    "the dormant store is empty but {members} members are dormant: dormant store lost?"
                )));
            }
            dormant.execute("INSERT INTO meta (key, value) VALUES ('instance', ?1)", [&a])?;
            Ok(())
        }
        _ => Err(StoreError::Mismatch("the dormant store belongs to another instance".into())),
    }
}

/// Data file and key store carry the same instance id, written when both
/// are created, so that a data file is never opened with another key store.
fn pair(data: &Connection, keys: &Connection) -> Result<()> {
    let get = |c: &Connection| -> Result<Option<String>> {
        let mut stmt = c.prepare("SELECT value FROM meta WHERE key = 'instance'")?;
        let mut rows = stmt.query([])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get(0)?),
            None => None,
        })
    };
    match (get(data)?, get(keys)?) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (None, None) => {
            let id = new_instance_id(data)?;
            data.execute("INSERT INTO meta (key, value) VALUES ('instance', ?1)", [&id])?;
            keys.execute("INSERT INTO meta (key, value) VALUES ('instance', ?1)", [&id])?;
            Ok(())
        }
        (Some(_), None) => {
            Err(StoreError::Mismatch("the key store is empty but the data file is not: keys lost?".into()))
        }
        (None, Some(_)) => Err(StoreError::Mismatch("the data file is empty but the key store is not".into())),
        (Some(_), Some(_)) => Err(StoreError::Mismatch("they were created for different instances".into())),
    }
}

fn new_instance_id(conn: &Connection) -> Result<String> {
    Ok(conn.query_row("SELECT lower(hex(randomblob(16)))", [], |r| r.get(0))?)
}

impl Sqlite {
    pub(crate) fn open(config: &SqliteConfig) -> Result<Sqlite> {
        let mut data = open_connection(&config.data_file, false)?;
        let mut keys = open_connection(&config.key_file, false)?;
        let mut dormant = open_connection(&config.dormant_file, false)?;
        migrate(&mut data, &config.data_file, DATA_MIGRATIONS)?;
        migrate(&mut keys, &config.key_file, KEY_MIGRATIONS)?;
        migrate(&mut dormant, &config.dormant_file, DORMANT_MIGRATIONS)?;
        pair(&data, &keys)?;
        pair_dormant(&data, &dormant)?;

        // Readers open after the writer created and migrated both files.
        let mut readers = Vec::with_capacity(config.readers.max(1));
        for _ in 0..config.readers.max(1) {
            readers.push((open_connection(&config.data_file, true)?, open_connection(&config.key_file, true)?));
        }

        // The writer never checkpoints inline (that stalled every commit
        // queued behind it); a thread of its own does, passively.
        data.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        keys.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        dormant.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        // The writer's page cache: SQLite's default (2 MiB) made every
        // insert with a random id read its B-tree pages from disk once the
        // data outgrew it (seeding 1,000,000 members slowed down steadily).
        // Filled only as pages are used; within the memory target.
        data.execute_batch(&format!("PRAGMA cache_size = -{}", WRITER_CACHE_KIB))?;
        keys.execute_batch(&format!("PRAGMA cache_size = -{}", WRITER_CACHE_KIB / 4))?;
        dormant.execute_batch(&format!("PRAGMA cache_size = -{}", WRITER_CACHE_KIB / 4))?;
        let (sender, receiver) = mpsc::channel::<Message>();
        let restart_pending = Arc::new(AtomicBool::new(false));
        let checkpointer = start_checkpointer(config, sender.clone(), restart_pending.clone())?;

        let batches = Arc::new(AtomicU64::new(0));
        let jobs = Arc::new(AtomicU64::new(0));
        let max_batch = config.max_batch.max(1);
        let (b, j) = (batches.clone(), jobs.clone());
        let writer = thread::Builder::new()
            .name("custos-writer".into())
            .spawn(move || writer_loop(Files { data, keys, dormant }, receiver, max_batch, &b, &j, &restart_pending))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;

        Ok(Sqlite {
            sender: Mutex::new(Some(sender)),
            readers: Arc::new(Pool::new(readers)),
            batches,
            jobs,
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    fn submit<T, F>(&self, job: F) -> Result<tokio::sync::oneshot::Receiver<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        let (erased, rx) = erase(job);
        let sender = self.sender.lock().map_err(|_| StoreError::Closed)?;
        sender.as_ref().ok_or(StoreError::Closed)?.send(Message::Job(erased)).map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(job)?.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn read<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTx<'_>) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let run = move || -> Result<T> {
            readers.with(|(data, keys)| {
                let r = ReadTx::new(Db::Lite(data), Db::Lite(keys))?;
                let out = job(&r);
                r.finish()?;
                out
            })?
        };
        tokio::task::spawn_blocking(run).await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) fn checkpoint(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        {
            let sender = self.sender.lock().map_err(|_| StoreError::Closed)?;
            sender.as_ref().ok_or(StoreError::Closed)?.send(Message::Checkpoint(tx)).map_err(|_| StoreError::Closed)?;
        }
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    pub(crate) fn commit_stats(&self) -> CommitStats {
        CommitStats { batches: self.batches.load(Ordering::Relaxed), jobs: self.jobs.load(Ordering::Relaxed) }
    }
}

impl Drop for Sqlite {
    /// Closing the channel lets the writer finish the jobs already queued
    /// and exit; joining makes sure they are committed before we return.
    fn drop(&mut self) {
        if let Ok(mut checkpointer) = self.checkpointer.lock()
            && let Some((stop, handle)) = checkpointer.take()
        {
            drop(stop);
            let _ = handle.join();
        }
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Ok(mut writer) = self.writer.lock()
            && let Some(handle) = writer.take()
        {
            let _ = handle.join();
        }
    }
}

/// The writer's connections.
struct Files {
    data: Connection,
    keys: Connection,
    dormant: Connection,
}

impl Files {
    fn all(&self) -> [&Connection; 3] {
        [&self.dormant, &self.keys, &self.data]
    }
}

fn writer_loop(
    mut files: Files,
    receiver: mpsc::Receiver<Message>,
    max_batch: usize,
    batches: &AtomicU64,
    jobs: &AtomicU64,
    restart_pending: &AtomicBool,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::with_capacity(max_batch);
        let mut checkpoints = Vec::new();
        let mut restart = false;
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Job(job) => batch.push(job),
                Message::Checkpoint(reply) => checkpoints.push(reply),
                Message::Restart => restart = true,
            }
            next = if batch.len() < max_batch { receiver.try_recv().ok() } else { None };
        }
        if !batch.is_empty() {
            run_batch(&mut files, batch, batches, jobs);
        }
        if restart {
            for conn in files.all() {
                restart_log(conn);
            }
            restart_pending.store(false, Ordering::Release);
        }
        for reply in checkpoints {
            let result = files.all().into_iter().try_for_each(checkpoint);
            let _ = reply.send(result);
        }
    }
    // Shutting down: leave no WAL frames behind.
    for conn in files.all() {
        let _ = checkpoint(conn);
    }
}

/// Every half second, copies committed WAL frames into the database files
/// without waiting for readers or the writer (`PASSIVE`). That alone never
/// lets a log start again from its beginning under a steady stream of
/// writes (the writer only restarts a log it finds wholly copied when its
/// transaction begins, and it begins the next one as soon as the last one
/// commits): the logs grew by gigabytes in the benchmarks. So when a log
/// has grown past [`RESTART_FRAMES`] and a passive pass copied all of it,
/// the thread asks the writer to restart the logs between two batches
/// ([`restart_log`]).
///
/// Never from this thread with the write lock: a `TRUNCATE` here had to
/// cut a log of a gigabyte back to nothing under the lock, which took a
/// second and more, and every write waiting behind it failed its busy
/// timeout ("database is locked"; the 1,000,000-member dormancy benchmark
/// and the retention sweeps).
fn start_checkpointer(
    config: &SqliteConfig,
    writer: mpsc::Sender<Message>,
    restart_pending: Arc<AtomicBool>,
) -> Result<(mpsc::Sender<()>, thread::JoinHandle<()>)> {
    let data = open_connection(&config.data_file, false)?;
    let keys = open_connection(&config.key_file, false)?;
    let dormant = open_connection(&config.dormant_file, false)?;
    for conn in [&data, &keys, &dormant] {
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = thread::Builder::new()
        .name("custos-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(std::time::Duration::from_millis(500))
            {
                let mut copied_large_log = false;
                for conn in [&data, &keys, &dormant] {
                    copied_large_log |= passive_checkpoint(conn);
                }
                if copied_large_log
                    && !restart_pending.swap(true, Ordering::AcqRel)
                    && writer.send(Message::Restart).is_err()
                {
                    return;
                }
            }
        })
        .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, handle))
}

/// A log this long (pages of 4 KiB: 16 MiB), once copied back, is restarted.
const RESTART_FRAMES: i64 = 4096;

/// One passive pass over one file; true when it copied every frame of a
/// log longer than [`RESTART_FRAMES`].
fn passive_checkpoint(conn: &Connection) -> bool {
    // (busy, frames in the log, frames copied back); -1 when not in WAL.
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((0, log, copied)) => log >= RESTART_FRAMES && copied == log,
        Ok(_) => false,
        // A busy writer or reader makes a checkpoint give up early; the
        // next tick tries again.
        Err(e) => {
            tracing::debug!(error = %e, "checkpoint deferred");
            false
        }
    }
}

/// On the writer thread, between batches: copies the few frames committed
/// since the last passive pass and restarts the log from its beginning, so
/// the next commit writes at its start and cuts the file back to
/// `journal_size_limit`. Waits a moment at most for readers of the old log
/// (a reader holding its snapshot makes it give up; the next request
/// tries again) so that writes queued meanwhile are not held up.
fn restart_log(conn: &Connection) {
    let _ = conn.busy_timeout(RESTART_BUSY);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "log restart deferred");
    }
    let _ = conn.busy_timeout(WRITER_BUSY);
}

/// How long a log restart waits for readers.
const RESTART_BUSY: std::time::Duration = std::time::Duration::from_millis(10);

/// Copies the whole WAL back and truncates it; an error when a reader kept
/// it from finishing (frames would stay behind in the `-wal` file).
fn checkpoint(conn: &Connection) -> Result<()> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(StoreError::Database("a reader kept the checkpoint from finishing; try again".into()));
    }
    Ok(())
}

fn run_batch(files: &mut Files, batch: Vec<Job>, batches: &AtomicU64, jobs: &AtomicU64) {
    let rollback = |files: &Files| {
        for conn in files.all() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    };
    let begun = files.all().into_iter().try_for_each(|c| c.execute_batch("BEGIN IMMEDIATE"));
    if let Err(e) = begun {
        tracing::warn!(error = %e, "a write transaction could not begin");
        rollback(files);
        // Each job still gets an answer: the failure of the batch.
        refuse(batch, &StoreError::from(e));
        return;
    }
    let completions: Vec<Completion> = {
        let mut w = WriteTx::new(Db::Lite(&files.data), Db::Lite(&files.keys), Db::Lite(&files.dormant));
        batch.into_iter().map(|job| job(Some(&mut w))).collect()
    };
    // Dormant store, keys, data: see the module comment for why this order
    // is safe.
    let committed = files.all().into_iter().try_for_each(|c| c.execute_batch("COMMIT"));
    match committed {
        Ok(()) => {
            // Count before answering, so a caller that reads the counters
            // after its answer sees its own commit.
            batches.fetch_add(1, Ordering::Relaxed);
            jobs.fetch_add(completions.len() as u64, Ordering::Relaxed);
            completions.into_iter().for_each(|c| c(None));
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            rollback(files);
            let error = StoreError::from(e);
            completions.into_iter().for_each(|c| c(Some(&error)));
        }
    }
}

#[cfg(test)]
mod tests;

//! The PostgreSQL backend: the same jobs as SQLite's, over three
//! connections per writer — the data schema (`custos`), the dormant store
//! (`custos_dormant`) and the key store (`custos_keys`, in the same
//! database or one of its own) — each with its `search_path`, so the
//! statements name tables exactly as on SQLite.
//!
//! Group commit as on SQLite: one writer thread per node commits every
//! waiting job in one transaction per connection, each job in a savepoint,
//! in the same order (dormant, keys, data; see the SQLite module for why a
//! crash between two commits is safe). `synchronous_commit` is on, so an
//! acknowledged job survives a crash of the server.
//!
//! Several nodes: each batch first locks the sequencer row
//! (`SELECT … FOR UPDATE` on `meta`), so batches of different nodes
//! commit one after another. That keeps the audit log's positions gapless
//! and in commit order (an entry takes `max(seq) + 1`), makes every
//! read-then-write of a job safe against the other nodes, and holds the
//! lifecycle lease's check-and-take together. A node killed mid-batch
//! loses its connection; PostgreSQL rolls its transaction back and frees
//! the lock, and nothing of that batch was acknowledged. Row locks only:
//! the SQL stays within what PostgreSQL-compatible distributed databases
//! accept (no advisory locks outside migrations, no LISTEN).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use crate::db::{Db, PgConn, pg_error};
use crate::queue::{Completion, Job, Pool, erase, refuse};
use crate::tx::{ReadTx, WriteTx};
use crate::{CommitStats, PgConfig, Result, StoreError};

enum Message {
    Job(Job),
}

/// How long a statement waits for a row lock before it fails: the
/// sequencer row when another node holds it for a whole batch, never
/// longer than a scheduled job waits for its write.
const LOCK_TIMEOUT: &str = "20s";

struct Conns {
    data: RefCell<PgConn>,
    keys: RefCell<PgConn>,
    dormant: RefCell<PgConn>,
}

type ReadConns = (RefCell<PgConn>, RefCell<PgConn>);

pub(crate) struct Pg {
    config: PgConfig,
    sender: Mutex<Option<mpsc::Sender<Message>>>,
    readers: Arc<Pool<ReadConns>>,
    batches: Arc<AtomicU64>,
    jobs: Arc<AtomicU64>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").finish_non_exhaustive()
    }
}

/// How long a connection may sit in an open transaction without a
/// statement: a node that stalls (frozen, cut off) holding the sequencer
/// releases it after this, not after the server's TCP keepalive.
const IDLE_IN_TRANSACTION: &str = "10s";
/// The longest statement (the scrub's rewrite of the key store included).
const STATEMENT_TIMEOUT: &str = "120s";

/// Opens a connection whose unqualified table names are those of `schema`,
/// with keepalives and timeouts so a dead peer is noticed in seconds.
fn connect(url: &str, schema: &str) -> Result<RefCell<PgConn>> {
    use std::time::Duration;
    let mut config: postgres::Config =
        url.parse().map_err(|_| StoreError::Database("the PostgreSQL URL does not parse".into()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.keepalives(true).keepalives_idle(Duration::from_secs(10)).tcp_user_timeout(Duration::from_secs(30));
    let mut client = config.connect(postgres::NoTls).map_err(pg_error)?;
    client
        .batch_execute(&format!(
            "SET search_path = {schema}; SET synchronous_commit = on; SET lock_timeout = '{LOCK_TIMEOUT}';
             SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}';
             SET statement_timeout = '{STATEMENT_TIMEOUT}';
             SET TIME ZONE 'UTC'; SET client_min_messages = warning"
        ))
        .map_err(pg_error)?;
    Ok(RefCell::new(PgConn::new(client)))
}

impl Conns {
    fn open(config: &PgConfig) -> Result<Conns> {
        let keys_url = config.key_url.as_deref().unwrap_or(&config.url);
        Ok(Conns {
            data: connect(&config.url, "custos")?,
            keys: connect(keys_url, "custos_keys")?,
            dormant: connect(&config.url, "custos_dormant")?,
        })
    }

    fn all(&self) -> [Db<'_>; 3] {
        [Db::Pg(&self.dormant), Db::Pg(&self.keys), Db::Pg(&self.data)]
    }

    fn closed(&self) -> bool {
        [&self.data, &self.keys, &self.dormant].iter().any(|c| c.borrow().client.is_closed())
    }
}

fn instance_of(db: Db<'_>) -> Result<Option<String>> {
    use crate::db::Optional;
    db.query_row("SELECT value FROM meta WHERE key = 'instance'", crate::db::params![], |r| r.get(0)).optional()
}

/// The three schemas carry one instance id, written when the database is
/// first opened (the first node to get there writes it; the others find
/// it), so a data schema is never served with another key store.
fn pair(conns: &Conns) -> Result<()> {
    let (data, keys, dormant) = (Db::Pg(&conns.data), Db::Pg(&conns.keys), Db::Pg(&conns.dormant));
    data.execute_batch("BEGIN")?;
    let outcome = (|| -> Result<()> {
        // The sequencer row exists before any batch locks it; taking its
        // lock here makes nodes starting together pair one at a time.
        data.execute(
            "INSERT INTO meta (key, value) VALUES ('sequencer', '') ON CONFLICT (key) DO NOTHING",
            crate::db::params![],
        )?;
        data.execute("SELECT value FROM meta WHERE key = 'sequencer' FOR UPDATE", crate::db::params![])?;
        let id = match (instance_of(data)?, instance_of(keys)?) {
            (Some(a), Some(b)) if a == b => a,
            (None, None) => {
                let id: String = data.query_row(
                    "SELECT replace(CAST(gen_random_uuid() AS text), '-', '')",
                    crate::db::params![],
                    |r| r.get(0),
                )?;
                keys.execute("INSERT INTO meta (key, value) VALUES ('instance', ?1)", crate::db::params![id])?;
                data.execute("INSERT INTO meta (key, value) VALUES ('instance', ?1)", crate::db::params![id])?;
                id
            }
            (Some(_), None) => {
                return Err(StoreError::Mismatch(
                    "the key store is empty but the data schema is not: keys lost?".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(StoreError::Mismatch("the data schema is empty but the key store is not".into()));
            }
            (Some(_), Some(_)) => {
                return Err(StoreError::Mismatch("they were created for different instances".into()));
            }
        };
        match instance_of(dormant)? {
            Some(d) if d == id => Ok(()),
            Some(_) => Err(StoreError::Mismatch("the dormant store belongs to another instance".into())),
            None => {
                dormant.execute("INSERT INTO meta (key, value) VALUES ('instance', ?1)", crate::db::params![id])?;
                Ok(())
            }
        }
    })();
    match outcome {
        Ok(()) => data.execute_batch("COMMIT"),
        Err(e) => {
            let _ = data.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

impl Pg {
    /// Connects on a thread of its own: the synchronous client runs its
    /// own runtime, which may not start inside the caller's.
    pub(crate) fn open(config: &PgConfig) -> Result<Pg> {
        thread::scope(|s| {
            s.spawn(|| Pg::open_here(config))
                .join()
                .unwrap_or_else(|_| Err(StoreError::Database("opening the PostgreSQL store panicked".into())))
        })
    }

    fn open_here(config: &PgConfig) -> Result<Pg> {
        // Every node brings the schemas up to date (once, under the
        // migration lock) before it serves.
        crate::pg::migrate_postgres(&config.url, config.key_url.as_deref())?;
        let conns = Conns::open(config)?;
        check_collation(Db::Pg(&conns.data))?;
        check_collation(Db::Pg(&conns.keys))?;
        warn_wal_recycle(Db::Pg(&conns.keys));
        pair(&conns)?;
        let mut readers = Vec::with_capacity(config.readers.max(1));
        for _ in 0..config.readers.max(1) {
            let keys_url = config.key_url.as_deref().unwrap_or(&config.url);
            readers.push((connect(&config.url, "custos")?, connect(keys_url, "custos_keys")?));
        }
        let (sender, receiver) = mpsc::channel::<Message>();
        let batches = Arc::new(AtomicU64::new(0));
        let jobs = Arc::new(AtomicU64::new(0));
        let (b, j) = (batches.clone(), jobs.clone());
        let max_batch = config.max_batch.max(1);
        let reopen = config.clone();
        let writer = thread::Builder::new()
            .name("custos-pg-writer".into())
            .spawn(move || writer_loop(conns, &reopen, receiver, max_batch, &b, &j))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Pg {
            config: config.clone(),
            sender: Mutex::new(Some(sender)),
            readers: Arc::new(Pool::new(readers)),
            batches,
            jobs,
            writer: Mutex::new(Some(writer)),
        })
    }

    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T> + Send + 'static,
    {
        let (erased, rx) = erase(job);
        {
            let sender = self.sender.lock().map_err(|_| StoreError::Closed)?;
            sender.as_ref().ok_or(StoreError::Closed)?.send(Message::Job(erased)).map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn read<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTx<'_>) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let config = self.config.clone();
        let run = move || -> Result<T> {
            readers.with(|(data, keys)| {
                // A connection the server closed is opened again.
                if data.borrow().client.is_closed() {
                    *data = connect(&config.url, "custos")?;
                }
                if keys.borrow().client.is_closed() {
                    *keys = connect(config.key_url.as_deref().unwrap_or(&config.url), "custos_keys")?;
                }
                let r = ReadTx::new(Db::Pg(data), Db::Pg(keys))?;
                let out = job(&r);
                let finished = r.finish();
                out.and_then(|v| finished.map(|()| v))
            })?
        };
        tokio::task::spawn_blocking(run).await.map_err(|_| StoreError::Closed)?
    }

    /// Vacuums the schemas, so that dead rows (deleted members, destroyed
    /// keys) are cut out of their pages, and asks for a checkpoint, so the
    /// pages are written to the data files. On connections of its own, not
    /// the writer's: a checkpoint of a busy cluster takes seconds, and
    /// requests must not wait for it (the key store's rewrite still holds
    /// its table while it runs).
    pub(crate) fn checkpoint(&self) -> Result<()> {
        // On a thread of its own: the synchronous client may not run
        // inside the caller's runtime.
        thread::scope(|s| {
            s.spawn(|| {
                let keys_url = self.config.key_url.as_deref().unwrap_or(&self.config.url);
                let data = connect(&self.config.url, "custos")?;
                let keys = connect(keys_url, "custos_keys")?;
                vacuum(&data, &keys)
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Database("the PostgreSQL scrub panicked".into())))
        })
    }

    pub(crate) fn commit_stats(&self) -> CommitStats {
        CommitStats { batches: self.batches.load(Ordering::Relaxed), jobs: self.jobs.load(Ordering::Relaxed) }
    }
}

impl Drop for Pg {
    /// Closes the read connections on a thread of their own (closing one
    /// blocks on the client's runtime, which may not run inside the
    /// caller's), then lets the writer finish the queued jobs and exit.
    fn drop(&mut self) {
        let idle = self.readers.drain();
        let _ = thread::spawn(move || drop(idle)).join();
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

/// Text sorts byte-wise in SQLite; cursors and ranges over ids, dates and
/// key scopes agree with it only under the `C` collation of the libc
/// provider (an ICU locale sorts by its own rules whatever LC_COLLATE
/// says). Checked on the data and the key database.
fn check_collation(db: Db<'_>) -> Result<()> {
    let (collation, provider): (String, String) = db.query_row(
        "SELECT datcollate, CAST(datlocprovider AS text) FROM pg_database WHERE datname = current_database()",
        crate::db::params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if !(collation == "C" || collation == "POSIX") || provider != "c" {
        return Err(StoreError::Database(format!(
            "the database's collation is {collation} (provider {provider}); custos needs a database created with \
             LC_COLLATE 'C' and the libc provider (CREATE DATABASE … TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'), \
             so text sorts byte-wise"
        )));
    }
    Ok(())
}

/// A recycled write-ahead log segment keeps its old bytes (a destroyed
/// key's among them) until it is written over; operators who rely on
/// destruction set `wal_recycle = off`.
fn warn_wal_recycle(keys: Db<'_>) {
    let setting: Result<String> = keys
        .query_row("SELECT current_setting('wal_recycle')", crate::db::params![], |r| r.get(0))
        .map_err(StoreError::from);
    if matches!(setting.as_deref(), Ok("on")) {
        tracing::warn!(
            "PostgreSQL recycles write-ahead log segments (wal_recycle = on): bytes of destroyed keys can stay in \
             pg_wal until overwritten; set wal_recycle = off"
        );
    }
}

fn writer_loop(
    mut conns: Conns,
    config: &PgConfig,
    receiver: mpsc::Receiver<Message>,
    max_batch: usize,
    batches: &AtomicU64,
    jobs: &AtomicU64,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::with_capacity(max_batch);
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Job(job) => batch.push(job),
            }
            next = if batch.len() < max_batch { receiver.try_recv().ok() } else { None };
        }
        // A connection the server closed (a restart, a failover) is opened
        // again before the next batch; until it opens, batches fail.
        if conns.closed() {
            match Conns::open(config) {
                Ok(fresh) => conns = fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "the database connection could not be reopened");
                    refuse(batch, &e);
                    continue;
                }
            }
        }
        if !batch.is_empty() {
            run_batch(&conns, batch, batches, jobs);
        }
    }
}

fn vacuum(data: &RefCell<PgConn>, keys: &RefCell<PgConn>) -> Result<()> {
    // The data tables: dead rows cut out of their pages. The key store:
    // rewritten whole (FULL), so a destroyed key's bytes are in no file of
    // the database any more; then a new write-ahead log segment and a
    // checkpoint, after which the segments that held the key are removed
    // (with `wal_recycle = off`) or recycled.
    Db::Pg(data).execute_batch(
        "VACUUM custos.items, custos.records, custos.blind_index, custos.consents, custos.subjects, \
         custos.requests, custos.request_steps, custos.disclosures, custos.cookie_consents, custos.outbox, \
         custos_dormant.dormant_items",
    )?;
    Db::Pg(keys).execute_batch("VACUUM FULL custos_keys.data_keys")?;
    for db in [Db::Pg(data), Db::Pg(keys)] {
        db.execute_batch("SELECT pg_switch_wal(); CHECKPOINT")?;
    }
    Ok(())
}

/// How long a batch may run its jobs before it commits and the rest wait
/// for the next: the sequencer is held for the whole batch, and every
/// node's requests wait behind it (their deadline is 1.5 s).
const BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs the jobs in batches of at most [`BATCH_TIME`] each.
fn run_batch(conns: &Conns, batch: Vec<Job>, batches: &AtomicU64, jobs: &AtomicU64) {
    let mut waiting = batch.into_iter().peekable();
    while waiting.peek().is_some() {
        run_timed_batch(conns, &mut waiting, batches, jobs);
    }
}

#[allow(clippy::disallowed_methods, reason = "bounds how long the sequencer is held; no decision depends on the time")]
fn started() -> std::time::Instant {
    std::time::Instant::now()
}

fn run_timed_batch(
    conns: &Conns,
    waiting: &mut std::iter::Peekable<std::vec::IntoIter<Job>>,
    batches: &AtomicU64,
    jobs: &AtomicU64,
) {
    let rollback = |conns: &Conns| {
        for db in conns.all() {
            let _ = db.execute_batch("ROLLBACK");
        }
    };
    // READ COMMITTED whatever the database's default: each statement sees
    // what the batch before (of any node) committed, once the sequencer is
    // ours; `max(seq) + 1` depends on it.
    let begun =
        conns.all().into_iter().try_for_each(|db| db.execute_batch("BEGIN ISOLATION LEVEL READ COMMITTED")).and_then(
            |()| {
                // The sequencer: one batch at a time across every node.
                match Db::Pg(&conns.data)
                    .execute("SELECT value FROM meta WHERE key = 'sequencer' FOR UPDATE", crate::db::params![])?
                {
                    1 => Ok(()),
                    _ => Err(StoreError::Database("the sequencer row is missing from custos.meta".into())),
                }
            },
        );
    if let Err(e) = begun {
        tracing::warn!(error = %e, "a write transaction could not begin");
        rollback(conns);
        refuse(waiting.collect(), &e);
        return;
    }
    let start = started();
    let mut completions: Vec<Completion> = Vec::new();
    {
        let mut w = WriteTx::new(Db::Pg(&conns.data), Db::Pg(&conns.keys), Db::Pg(&conns.dormant));
        while start.elapsed() < BATCH_TIME
            && let Some(job) = waiting.next()
        {
            completions.push(job(Some(&mut w)));
        }
    }
    // A statement that failed outside a savepoint aborts the transaction,
    // and COMMIT of an aborted transaction rolls back without an error:
    // ask each connection first, so such a batch is reported as failed.
    // Then dormant store, keys, data: the SQLite module's order and
    // argument; the data commit releases the sequencer.
    let committed = conns
        .all()
        .into_iter()
        .try_for_each(|db| db.execute_batch("SELECT 1"))
        .and_then(|()| conns.all().into_iter().try_for_each(|db| db.execute_batch("COMMIT")));
    match committed {
        Ok(()) => {
            batches.fetch_add(1, Ordering::Relaxed);
            jobs.fetch_add(completions.len() as u64, Ordering::Relaxed);
            completions.into_iter().for_each(|c| c(None));
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            rollback(conns);
            completions.into_iter().for_each(|c| c(Some(&e)));
        }
    }
}

//! The embedded backend's promises: group commit, job isolation inside a
//! batch, durability across reopen, refusal of foreign or newer files.

use std::path::PathBuf;

use crate::*;

/// A scratch data folder, removed at the end of the test.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("custos-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }

    fn config(&self) -> SqliteConfig {
        SqliteConfig {
            data_file: self.0.join("data.db"),
            key_file: self.0.join("keys.db"),
            dormant_file: self.0.join("dormant.db"),
            readers: 2,
            max_batch: 256,
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn subject(id: &str) -> SubjectRow {
    SubjectRow {
        id: id.into(),
        service_id: Some("svc".into()),
        kind: "member".into(),
        status: "active".into(),
        profile_key: format!("key-{id}"),
        policy_version: "v1".into(),
        created_at: "2024-01-01T00:00:00Z".into(),
        last_activity_at: "2024-01-01T00:00:00Z".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits_and_all_land() {
    let folder = Folder::new("group");
    let store = Store::open_sqlite(&folder.config()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let row = subject(&format!("s{i:04}"));
            store.write(move |tx| tx.insert_subject(&row)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = store.commit_stats();
    assert_eq!(stats.jobs, 400);
    assert!(stats.batches < 400, "group commit should batch concurrent jobs: {stats:?}");
    let page = store.read(|r| r.subjects_page(Some("svc"), "", 1000)).await.unwrap();
    assert_eq!(page.len(), 400);
}

#[tokio::test]
async fn a_failing_job_is_rolled_back_alone() {
    let folder = Folder::new("isolation");
    let store = Store::open_sqlite(&folder.config()).unwrap();
    store.write(|tx| tx.insert_subject(&subject("a"))).await.unwrap();
    // Both jobs are queued before the writer wakes, so they share a batch.
    let s1 = store.clone();
    let failing = tokio::spawn(async move {
        s1.write(|tx| {
            tx.insert_subject(&subject("b"))?;
            tx.insert_subject(&subject("a")) // duplicate: the whole job must roll back
        })
        .await
    });
    let s2 = store.clone();
    let fine = tokio::spawn(async move { s2.write(|tx| tx.insert_subject(&subject("c"))).await });
    assert!(matches!(failing.await.unwrap(), Err(StoreError::Conflict(_))));
    fine.await.unwrap().unwrap();
    let ids: Vec<String> =
        store.read(|r| r.subjects_page(Some("svc"), "", 10)).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["a", "c"]);
}

#[tokio::test]
async fn acknowledged_writes_survive_reopen() {
    let folder = Folder::new("reopen");
    {
        let store = Store::open_sqlite(&folder.config()).unwrap();
        store.write(|tx| tx.insert_subject(&subject("kept"))).await.unwrap();
        store
            .write(|tx| {
                tx.insert_key(&KeyRow {
                    id: "key-kept".into(),
                    subject_id: "kept".into(),
                    scope: "profile".into(),
                    version: 1,
                    wrapped: vec![1, 2, 3],
                    created_at: "2024-01-01T00:00:00Z".into(),
                })
            })
            .await
            .unwrap();
    }
    let store = Store::open_sqlite(&folder.config()).unwrap();
    assert!(store.read(|r| r.subject("kept")).await.unwrap().is_some());
    assert_eq!(store.read(|r| r.key_count()).await.unwrap(), 1);
}

#[test]
fn a_key_store_from_another_instance_is_refused() {
    let a = Folder::new("pair-a");
    let b = Folder::new("pair-b");
    drop(Store::open_sqlite(&a.config()).unwrap());
    drop(Store::open_sqlite(&b.config()).unwrap());
    let mixed = SqliteConfig { key_file: b.config().key_file, ..a.config() };
    let err = Store::open_sqlite(&mixed).unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    // A lost key store is noticed too, not silently recreated.
    std::fs::remove_file(a.config().key_file).unwrap();
    let err = Store::open_sqlite(&a.config()).unwrap_err();
    assert!(err.to_string().contains("keys lost"), "{err}");
}

#[test]
fn a_data_file_from_a_newer_version_is_refused_not_reset() {
    let folder = Folder::new("newer");
    drop(Store::open_sqlite(&folder.config()).unwrap());
    let conn = rusqlite::Connection::open(folder.config().data_file).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = Store::open_sqlite(&folder.config()).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    let conn = rusqlite::Connection::open(folder.config().data_file).unwrap();
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 99, "the file must be left as it was");
}

#[tokio::test]
async fn closing_checkpoints_the_write_ahead_log() {
    let folder = Folder::new("wal");
    {
        let store = Store::open_sqlite(&folder.config()).unwrap();
        store.write(|tx| tx.insert_subject(&subject("x"))).await.unwrap();
    }
    for file in ["data.db-wal", "keys.db-wal"] {
        let len = std::fs::metadata(folder.0.join(file)).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "{file} should be truncated on close");
    }
}

/// An older file is upgraded in place by the migrations it has not seen, and
/// keeps its rows.
#[test]
fn an_older_file_is_upgraded_in_place() {
    let folder = Folder::new("upgrade");
    let path = folder.0.join("old.db");
    let v1 = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);";
    let v2 = "ALTER TABLE t ADD COLUMN w TEXT NOT NULL DEFAULT 'new';";
    {
        let mut conn = super::open_connection(&path, false).unwrap();
        super::migrate(&mut conn, &path, &[v1]).unwrap();
        conn.execute("INSERT INTO t (v) VALUES ('kept')", []).unwrap();
    }
    let mut conn = super::open_connection(&path, false).unwrap();
    super::migrate(&mut conn, &path, &[v1, v2]).unwrap();
    let (v, w): (String, String) = conn.query_row("SELECT v, w FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((v.as_str(), w.as_str()), ("kept", "new"));
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
    // Running again applies nothing twice.
    super::migrate(&mut conn, &path, &[v1, v2]).unwrap();
}

/// The log restart: a passive pass from a second connection copies a large
/// log back and says so; a restart from the writer then lets the next
/// commit write at the log's start and cut the file back to
/// `journal_size_limit`, while a reader holding an old snapshot makes the
/// restart give up instead of waiting (writes queue behind it).
#[test]
fn a_copied_log_is_restarted_by_the_writer_and_cut_back() {
    let folder = Folder::new("restart");
    let path = folder.0.join("log.db");
    let writer = super::open_connection(&path, false).unwrap();
    writer.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 1048576;").unwrap();
    writer.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").unwrap();
    let checkpointer = super::open_connection(&path, false).unwrap();
    checkpointer.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
    let wal = folder.0.join("log.db-wal");
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

    // Small log: copied, but not worth a restart.
    writer.execute("INSERT INTO t (v) VALUES (zeroblob(100))", []).unwrap();
    assert!(!super::passive_checkpoint(&checkpointer));

    // More than RESTART_FRAMES pages of 4 KiB.
    let pages = super::RESTART_FRAMES as usize + 100;
    for _ in 0..pages / 100 + 1 {
        writer.execute_batch("BEGIN").unwrap();
        for _ in 0..100 {
            writer.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", []).unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
    }
    let grown = wal_len();
    assert!(grown > 16 << 20, "the log grew to {grown} bytes");

    // A reader on the old log keeps the restart from finishing, at once.
    let reader = super::open_connection(&path, true).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert!(super::passive_checkpoint(&checkpointer), "a copied large log asks for a restart");
    super::restart_log(&writer);
    writer.execute("INSERT INTO t (v) VALUES (zeroblob(100))", []).unwrap();
    assert!(wal_len() >= grown, "with the reader there, the log goes on");
    reader.execute_batch("COMMIT").unwrap();

    // Without it: restarted, and the next commit cuts the file back.
    assert!(super::passive_checkpoint(&checkpointer));
    super::restart_log(&writer);
    writer.execute("INSERT INTO t (v) VALUES (zeroblob(100))", []).unwrap();
    let after = wal_len();
    assert!(after <= 1 << 20, "the log should be cut back to the limit, not {after} bytes");
    let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(rows as usize, (pages / 100 + 1) * 100 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_caller_stopped_waiting_does_not_take_effect() {
    let folder = Folder::new("abandoned");
    let store = Store::open_sqlite(&folder.config()).unwrap();
    // The writer is held by a first job until the test lets it go.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let s1 = store.clone();
    let first = tokio::spawn(async move {
        s1.write(move |tx| {
            let _ = started.send(());
            held.recv().unwrap();
            tx.insert_subject(&subject("first"))
        })
        .await
    });
    running.await.unwrap();
    // A second job is queued, and its caller gives up at once (its
    // deadline, a closed connection): it is told the write failed…
    let gave_up =
        tokio::time::timeout(std::time::Duration::ZERO, store.write(|tx| tx.insert_subject(&subject("abandoned"))))
            .await;
    assert!(gave_up.is_err());
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    // …so it must not be applied later.
    store.write(|tx| tx.insert_subject(&subject("after"))).await.unwrap();
    assert!(store.read(|r| r.subject("abandoned")).await.unwrap().is_none());
    assert!(store.read(|r| r.subject("after")).await.unwrap().is_some());
}

//! The PostgreSQL backend's promises, on a throwaway server: the same as
//! the embedded backend's (group commit, a failing job rolled back alone,
//! durability across reopen, a foreign key store refused) and those of
//! several nodes on one database (writes of two stores interleave, the
//! audit log stays gapless and in order).

use custos_store::*;
use custos_testpg::TestPostgres;

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

fn audit(actor: &str) -> AuditRow {
    AuditRow {
        at: "2024-01-01T00:00:00Z".into(),
        actor: actor.into(),
        role: "platform".into(),
        operation: "test".into(),
        purpose: None,
        subject_id: None,
        items: String::new(),
        outcome: "ok".into(),
        policy_version: "v1".into(),
        leaf_hash: None,
    }
}

fn config(url: String, key_url: Option<String>) -> PgConfig {
    PgConfig { url, key_url, readers: 2, max_batch: 256 }
}

/// A server of the test's own (stopped when dropped).
fn server(name: &str) -> TestPostgres {
    TestPostgres::start(name, None).expect("PostgreSQL starts (scripts/test installs it)")
}

fn database(pg: &TestPostgres, name: &str) -> String {
    pg.create_database(name).unwrap();
    pg.url(name)
}

/// Opens the store off the runtime's threads, as the engine does.
fn open(config: PgConfig) -> Result<Store> {
    std::thread::spawn(move || Store::open_postgres(&config)).join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits_and_all_land() {
    let pg = server("group");
    let store = open(config(database(&pg, "group"), None)).unwrap();
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
    assert_eq!(store.backend(), "postgres");
}

#[tokio::test]
async fn a_failing_job_is_rolled_back_alone() {
    let pg = server("isolation");
    let store = open(config(database(&pg, "isolation"), None)).unwrap();
    store.write(|tx| tx.insert_subject(&subject("a"))).await.unwrap();
    // Queued together, so they share a batch: the unique violation of the
    // first aborts PostgreSQL's transaction until its savepoint is rolled
    // back; the second must still commit.
    let s1 = store.clone();
    let failing = tokio::spawn(async move {
        s1.write(|tx| {
            tx.insert_subject(&subject("b"))?;
            tx.insert_subject(&subject("a"))
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
async fn acknowledged_writes_survive_reopen_and_keys_live_apart() {
    let pg = server("reopen");
    let (url, key_url) = (database(&pg, "reopen"), database(&pg, "reopen_keys"));
    {
        let store = open(config(url.clone(), Some(key_url.clone()))).unwrap();
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
        store.checkpoint().unwrap();
    }
    let store = open(config(url.clone(), Some(key_url.clone()))).unwrap();
    assert!(store.read(|r| r.subject("kept")).await.unwrap().is_some());
    assert_eq!(store.read(|r| r.key_count()).await.unwrap(), 1);
    assert_eq!(pg.psql("reopen_keys", "SELECT count(*) FROM custos_keys.data_keys").unwrap(), "1");
    let schemas = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'custos_keys'";
    assert_eq!(pg.psql("reopen", schemas).unwrap(), "0", "no key store in the data database");
    drop(store);
    // The data with another instance's key store: refused.
    let other = database(&pg, "reopen_other_keys");
    drop(open(config(database(&pg, "reopen_other"), Some(other.clone()))).unwrap());
    let refused = open(config(url, Some(other)));
    assert!(matches!(refused, Err(StoreError::Mismatch(_))), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_interleave_and_the_audit_log_has_no_gap() {
    let pg = server("nodes");
    let url = database(&pg, "nodes");
    let (a, b) = (open(config(url.clone(), None)).unwrap(), open(config(url, None)).unwrap());
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let id = format!("n{i:04}");
            store
                .write(move |tx| {
                    tx.insert_subject(&subject(&id))?;
                    if i % 7 == 0 {
                        // A job that fails after its audit entry: the
                        // entry goes with it, and leaves no hole.
                        tx.append_audit(&audit("failing"))?;
                        return Err(StoreError::Conflict("on purpose".into()));
                    }
                    tx.append_audit(&audit(&id))
                })
                .await
        }));
    }
    let mut positions = Vec::new();
    for t in tasks {
        if let Ok(seq) = t.await.unwrap() {
            positions.push(seq);
        }
    }
    positions.sort_unstable();
    let expected: Vec<i64> = (1..=positions.len() as i64).collect();
    assert_eq!(positions, expected, "every committed entry has its own position, 1..n, no gap");
    assert_eq!(a.read(|r| r.audit_len()).await.unwrap(), positions.len() as u64);
    let page = b.read(|r| r.audit_page(0, 1000)).await.unwrap();
    assert!(page.iter().all(|(_, row)| row.actor != "failing"), "a failed job's entry is gone");
    assert_eq!(b.read(|r| r.subjects_page(Some("svc"), "", 1000)).await.unwrap().len(), positions.len());
}

#[tokio::test]
async fn connections_the_server_closed_are_opened_again() {
    let pg = server("reconnect");
    let store = open(config(database(&pg, "reconnect"), None)).unwrap();
    store.write(|tx| tx.insert_subject(&subject("before"))).await.unwrap();
    assert!(store.read(|r| r.subject("before")).await.unwrap().is_some());
    // Every connection of the store ends, as in a server restart.
    pg.psql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'reconnect'")
        .unwrap();
    // The first attempt may find its connection dead (and is not
    // acknowledged); a later one reconnects.
    let mut wrote = false;
    for _ in 0..3 {
        if store.write(|tx| tx.insert_subject(&subject("after"))).await.is_ok() {
            wrote = true;
            break;
        }
    }
    assert!(wrote, "the writer reconnected");
    let mut read = None;
    for _ in 0..3 {
        if let Ok(found) = store.read(|r| r.subject("after")).await {
            read = Some(found.is_some());
            break;
        }
    }
    assert_eq!(read, Some(true), "the readers reconnected and see the write");
}

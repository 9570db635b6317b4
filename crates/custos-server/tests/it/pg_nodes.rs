//! Several nodes on one PostgreSQL database (issue 9, DESIGN §7): three
//! `custos serve` processes and lifecycle runners share a throwaway
//! database of their own, under concurrent sign-ups, consents and requests
//! sent to every node, while runners move seeded members to the dormant
//! store. One node is killed with SIGKILL mid-load, and one runner
//! mid-move. Afterwards: every acknowledged write is there, read through a
//! surviving node; every member was moved exactly once (one audit entry,
//! their items once in the dormant store, none left active); one dormancy
//! notice per member; the audit log has no gap and verifies offline, also
//! against a checkpoint saved before the load.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_testpg::TestPostgres;
use serde_json::json;

use crate::crash::{Acknowledged, Running, new_service, send, serve_command};
use crate::support::Scratch;

const MEMBERS: i64 = 3_000;
/// The dormancy notices go out a month before the move.
const NOTICE_AT: &str = "2025-06-02T00:00:00Z";
const MOVE_AT: &str = "2025-07-03T00:00:00Z";

/// `custos <args…>` on the shared database, with the shared root key.
fn node_cmd(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
    cmd.env_clear().env("CUSTOS_ROOT_KEY_FILE", dir.join("root.key")).env("CUSTOS_DATABASE_URL", url);
    cmd.args(args).args(["--data-dir", &dir.join("unused-data").display().to_string()]);
    cmd
}

fn ok(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a node on a free port; returns it once `/ready` answers.
fn serve(dir: &Path, url: &str) -> (Running, SocketAddr) {
    serve_command(node_cmd(dir, url, &["serve", "--listen", "127.0.0.1:0"]))
}

/// A client of one node: signs members up, records a consent for each and
/// files an export request, until told to stop or the node goes away. A
/// 503 (a write that did not commit within its deadline, behind the other
/// nodes' batches) is counted and the client goes on.
fn client(
    addr: SocketAddr,
    token: String,
    service: String,
    ack: Arc<Mutex<Acknowledged>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut unavailable = 0;
    let mut post = |path: &str, body: serde_json::Value| -> Option<Option<serde_json::Value>> {
        match send(addr, "POST", path, &token, Some(&body)) {
            Ok((201, body)) => Some(Some(body)),
            Ok((503, _)) => {
                unavailable += 1;
                Some(None)
            }
            Ok((status, body)) => panic!("POST {path}: {status} {body}"),
            Err(_) => None,
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let member = json!({"service": service, "kind": "service_member", "collection_point": "automatic_generation",
                            "source": "generated", "items": {"ip_address": "203.0.113.7", "device_info": "Pixel 8"}});
        let Some(body) = post("/v1/subjects", member) else { break };
        let Some(body) = body else { continue };
        let id = body["id"].as_str().unwrap().to_owned();
        ack.lock().unwrap().members.push(id.clone());
        let consent = json!({"purpose": "marketing", "granted": true, "channel": "web_page", "notice_text": "Offers?"});
        match post(&format!("/v1/subjects/{id}/consents"), consent) {
            None => break,
            Some(Some(body)) => {
                ack.lock().unwrap().consents.push((id.clone(), body["entry"]["id"].as_str().unwrap().to_owned()))
            }
            Some(None) => {}
        }
        let request =
            json!({"kind": "export", "channel": "web_page", "subject": id, "verification": "platform_session"});
        match post("/v1/requests", request) {
            None => break,
            Some(Some(body)) => ack.lock().unwrap().requests.push(body["request"]["id"].as_str().unwrap().to_owned()),
            Some(None) => {}
        }
    }
    unavailable
}

fn query_i64(url: &str, sql: &str) -> i64 {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn three_nodes_on_one_postgres_lose_nothing_when_one_is_killed() {
    if crate::support::test_postgres().is_some() {
        return; // starts its own server; runs once, in the SQLite pass
    }
    let pg = TestPostgres::start("nodes", None).expect("PostgreSQL starts (scripts/test installs it)");
    pg.create_database("custos_nodes").unwrap();
    let url = pg.url("custos_nodes");
    let scratch = Scratch::new("pg-nodes");
    let dir = scratch.0.clone();

    // Members whose last activity is long past, and a key.
    let members = MEMBERS.to_string();
    let last = "2024-06-01T00:00:00Z";
    ok(
        node_cmd(
            &dir,
            &url,
            &["admin", "seed-synthetic", "--members", &members, "--last-activity", last, "--now", last],
        ),
        "seed",
    );
    ok(node_cmd(&dir, &url, &["jobs", "run", "--now", NOTICE_AT]), "notices");
    let token = ok(node_cmd(&dir, &url, &["admin", "create-key", "--label", "nodes"]), "create-key").trim().to_owned();
    let saved = dir.join("checkpoint.json");
    std::fs::write(&saved, ok(node_cmd(&dir, &url, &["audit", "checkpoint"]), "checkpoint")).unwrap();

    // Three nodes. Each runs the lifecycle jobs as it starts, on the wall
    // clock: one takes the lease and moves the members (their notices are
    // long past), the others find the lease held.
    let mut nodes: Vec<(Running, SocketAddr)> = (0..3).map(|_| serve(&dir, &url)).collect();
    let service = new_service(nodes[0].1, &token, "nodes@example.com", "+82 10 5555 0901");

    // Load on every node; two runners moving members meanwhile.
    let ack = Arc::new(Mutex::new(Acknowledged::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let addr = nodes[i % 3].1;
            let (token, service, ack, stop) = (token.clone(), service.clone(), ack.clone(), stop.clone());
            std::thread::spawn(move || client(addr, token, service, ack, stop))
        })
        .collect();
    let runner = || {
        Running(
            node_cmd(&dir, &url, &["jobs", "run", "--now", MOVE_AT])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut runners = vec![runner(), runner()];
    // Once the move is under way, kill the node or runner that holds the
    // lease (and the other runners).
    let dormant = || query_i64(&url, "SELECT count(*) FROM custos.subjects WHERE status = 'dormant'");
    let holder = || -> Option<String> {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        db.query_opt("SELECT holder FROM custos.leases", &[]).unwrap().map(|r| r.get(0))
    };
    let mut moved_at_kill = 0;
    let mut killed_holder = String::new();
    for _ in 0..20_000 {
        moved_at_kill = dormant();
        if moved_at_kill > 0 {
            killed_holder = holder().unwrap_or_default();
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(moved_at_kill > 0 && moved_at_kill < MEMBERS, "killed mid-move ({moved_at_kill} of {MEMBERS} moved)");
    let acked_before_kill = ack.lock().unwrap().members.len();
    let killed = nodes.iter().position(|(n, _)| killed_holder.starts_with(&format!("serve:{}:", n.id())));
    if let Some(i) = killed {
        nodes[i].0.kill();
    } else {
        // A runner held it: kill it, and a node as well.
        nodes[1].0.kill();
    }
    let killed = killed.unwrap_or(1);
    for r in &mut runners {
        r.kill();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let unavailable: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    // A killed runner's lease holds for ten minutes of wall time; expire
    // it, as time would, and let a runner that is not killed finish.
    for _ in 0..5 {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        db.execute("UPDATE custos.leases SET expires_at = '2000-01-01T00:00:00Z'", &[]).unwrap();
        ok(node_cmd(&dir, &url, &["jobs", "run", "--now", MOVE_AT]), "jobs run");
        if dormant() == MEMBERS {
            break;
        }
    }

    // Every acknowledged write, read through a surviving node.
    let ack = ack.lock().unwrap();
    assert!(ack.members.len() > acked_before_kill.max(1), "the nodes wrote before and after the kill");
    let reader = nodes[(killed + 1) % 3].1;
    let mut lost = Vec::new();
    for id in &ack.members {
        let read = send(reader, "GET", &format!("/v1/subjects/{id}?purpose=member_management"), &token, None);
        if !matches!(&read, Ok((200, body)) if body["items"]["device_info"] == "Pixel 8") {
            lost.push(format!("member {id}: {read:?}"));
        }
    }
    for (member, consent) in &ack.consents {
        let ledger = send(reader, "GET", &format!("/v1/subjects/{member}/consents"), &token, None);
        if !matches!(&ledger, Ok((200, body))
            if body["history"].as_array().is_some_and(|h| h.iter().any(|e| e["id"] == consent.as_str())))
        {
            lost.push(format!("consent {consent} of {member}"));
        }
    }
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for id in &ack.requests {
        let n: i64 = db.query_one("SELECT count(*) FROM custos.requests WHERE id = $1", &[id]).unwrap().get(0);
        if n != 1 {
            lost.push(format!("request {id}"));
        }
    }
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:#?}");

    // Every seeded member moved once, noticed once.
    assert_eq!(dormant(), MEMBERS, "every member moved (first kill at {moved_at_kill})");
    let moves = db
        .query(
            "SELECT subject_id, count(*) FROM custos.audit WHERE operation = 'dormant_move' GROUP BY subject_id",
            &[],
        )
        .unwrap();
    assert_eq!(moves.len() as i64, MEMBERS, "one dormant_move entry per member");
    assert!(moves.iter().all(|r| r.get::<_, i64>(1) == 1), "a member moved more than once");
    let items_left: i64 = db
        .query_one(
            "SELECT count(*) FROM custos.items i JOIN custos.subjects s ON s.id = i.subject_id WHERE s.status = 'dormant'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(items_left, 0, "no dormant member's item left in the active store");
    let per_member = db
        .query("SELECT count(*) FROM custos_dormant.dormant_items GROUP BY subject_id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect::<std::collections::BTreeSet<i64>>();
    assert_eq!(per_member.len(), 1, "each member's items once in the dormant store: {per_member:?}");
    let twice: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT subject FROM custos.outbox WHERE kind = 'dormancy_notice'
             GROUP BY subject HAVING count(*) > 1) t",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(twice, 0, "a member got two dormancy notices");
    let notices: i64 =
        db.query_one("SELECT count(*) FROM custos.outbox WHERE kind = 'dormancy_notice'", &[]).unwrap().get(0);
    assert_eq!(notices, MEMBERS, "one dormancy notice per member");

    // The audit log: gapless, and it verifies, also against the checkpoint
    // saved before the load.
    let (entries, last): (i64, i64) = {
        let row = db.query_one("SELECT count(*), coalesce(max(seq), 0) FROM custos.audit", &[]).unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(entries, last, "audit positions 1..={last} without a gap");
    let log = dir.join("audit.jsonl");
    ok(node_cmd(&dir, &url, &["audit", "export", "--out", &log.display().to_string()]), "audit export");
    let out = Command::new(env!("CARGO_BIN_EXE_custos"))
        .env_clear()
        .args(["audit", "verify", "--log", &log.display().to_string(), "--checkpoint", &saved.display().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "audit verify: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("consistent with the saved checkpoint"), "{stdout}");
    let _ = writeln!(
        std::io::stderr(),
        "three nodes: {} sign-ups, {} consents, {} requests acknowledged, lost 0 ({unavailable} answered 503); \
         lease holder {killed_holder:?} killed with {} of {MEMBERS} moved; {entries} audit entries verified",
        ack.members.len(),
        ack.consents.len(),
        ack.requests.len(),
        moved_at_kill
    );
    for (node, _) in &mut nodes {
        node.kill();
    }
}

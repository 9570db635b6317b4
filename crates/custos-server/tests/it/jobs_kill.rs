//! Lifecycle workers killed mid-run (DESIGN §10): several `custos jobs run`
//! processes on one data folder, the one holding the lease killed with
//! SIGKILL while it is moving members to the dormant store (the kill waits
//! until the data file shows some members moved and some not), the lease
//! it leaves behind expired, and the next runner finishes. In the end every
//! member was moved exactly once: all of them dormant, their items only in
//! the dormant store, one `dormant_move` entry each in the audit log, and
//! every data file passes its integrity check after every kill.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::crash::{Running, custos, integrity};
use crate::support::Scratch;

const MEMBERS: i64 = 3_000;
const MOVE_AT: &str = "2025-07-03T00:00:00Z";

fn data(dir: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(dir.join("data").join("custos.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db
}

fn dormant(dir: &Path) -> i64 {
    data(dir).query_row("SELECT count(*) FROM subjects WHERE status = 'dormant'", [], |r| r.get(0)).unwrap()
}

fn run(dir: &Path, now: &str) {
    let out = custos(dir, &["jobs", "run", "--now", now]).output().unwrap();
    assert!(out.status.success(), "custos jobs run --now {now}: {}", String::from_utf8_lossy(&out.stderr));
}

fn worker(dir: &Path) -> Running {
    Running(
        custos(dir, &["jobs", "run", "--now", MOVE_AT]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    )
}

#[test]
fn lifecycle_workers_killed_mid_run_lose_nothing_and_apply_nothing_twice() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: kills `custos jobs run` on a data folder; rusqlite, integrity_check
    }
    let scratch = Scratch::new("jobs-kill");
    let dir = scratch.0.clone();
    let members = MEMBERS.to_string();
    let seeded = custos(
        &dir,
        &[
            "admin",
            "seed-synthetic",
            "--members",
            &members,
            "--last-activity",
            "2024-06-01T00:00:00Z",
            "--now",
            "2024-06-01T00:00:00Z",
        ],
    )
    .output()
    .unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    // The notices a month ahead, then the moves.
    run(&dir, "2025-06-02T00:00:00Z");
    assert_eq!(dormant(&dir), 0);

    let mut kills = 0;
    let mut progress = Vec::new();
    while kills < 3 {
        // Three runners at once: one takes the lease, the others find it
        // held and do nothing.
        let mut workers: Vec<Running> = (0..3).map(|_| worker(&dir)).collect();
        // Kill once the move is under way and not finished.
        let mut killed = false;
        for _ in 0..3_000 {
            let moved = dormant(&dir);
            if moved > progress.last().copied().unwrap_or(0) && moved < MEMBERS {
                killed = true;
                progress.push(moved);
                break;
            }
            if workers.iter_mut().all(|w| w.0.try_wait().unwrap().is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Whoever still runs is killed (SIGKILL); a lease left by a killed
        // runner would hold for ten minutes of wall time, and its expiry is
        // what lets the next runner in: here, now.
        let running = workers.iter_mut().any(|w| w.0.try_wait().unwrap().is_none());
        for w in &mut workers {
            w.kill();
        }
        if running {
            data(&dir).execute("UPDATE leases SET expires_at = '2000-01-01T00:00:00Z'", []).unwrap();
        }
        if !killed {
            break;
        }
        kills += 1;
        integrity(&dir);
    }
    assert!(kills >= 1, "at least one runner was killed mid-move (progress {progress:?})");

    // A runner that is not killed finishes the work.
    run(&dir, MOVE_AT);
    integrity(&dir);
    let db = data(&dir);
    assert_eq!(dormant(&dir), MEMBERS, "every member moved (kills at {progress:?})");
    let active_items: i64 = db.query_row("SELECT count(*) FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!(active_items, 0, "no item left in the active store");
    let moves: Vec<(String, i64)> = db
        .prepare("SELECT subject_id, count(*) FROM audit WHERE operation = 'dormant_move' GROUP BY subject_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(moves.len() as i64, MEMBERS, "one dormant_move entry per member");
    let twice: Vec<&(String, i64)> = moves.iter().filter(|(_, n)| *n != 1).collect();
    assert!(twice.is_empty(), "moved more than once: {twice:?}");
    let dormant_db = rusqlite::Connection::open(dir.join("data").join("dormant.db")).unwrap();
    let (holders, fewest, most): (i64, i64, i64) = dormant_db
        .query_row(
            "SELECT count(*), min(n), max(n) FROM (SELECT count(*) AS n FROM dormant_items GROUP BY subject_id)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(holders, MEMBERS, "every member's items in the dormant store");
    assert_eq!(fewest, most, "each member's items once: between {fewest} and {most} rows per member");
    assert!(fewest > 0);
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!("jobs killed mid-move: {kills} kills at {progress:?} of {MEMBERS} members; all moved once\n"),
    );
}

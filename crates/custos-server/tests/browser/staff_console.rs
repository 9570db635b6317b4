//! The staff console (`/staff`): see `tests/browser/staff-console.mjs` for
//! what the browser asserts; this side checks the store and the mail.

use std::sync::Arc;

use custos_server::clock::Clock;
use serde_json::json;

use crate::harness::{instance, run_node, serve};
use crate::smtp_sink::SmtpSink;
use crate::support::STAFF_PASSWORD;

const MEMBER_EMAIL: &str = "member@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and playwright-core (scripts/ensure-browser); scripts/test runs it"]
async fn an_agent_files_and_staff_check_the_letter_verify_fulfil_and_work_the_registers() {
    let sink = Arc::new(SmtpSink::start());
    let app = instance("browser-staff", custos_server::config::BUNDLED_POLICY, Some(&sink)).await;
    let (status, body) = app
        .send(
            "POST",
            "/v1/subjects",
            Some(&app.key),
            Some(json!({
                "kind": "business_operator", "collection_point": "business_operator_signup",
                "source": "direct_entry",
                "items": {"name": "Kim Minji", "email": MEMBER_EMAIL, "mobile_phone": "010-1234-5678",
                          "password": "a long passphrase"}
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let member = body["id"].as_str().unwrap().to_owned();
    let officer = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    // The code of the current 30-second step of the manual clock.
    let code = app.next_code(&officer);
    // A checkpoint of the log so far, as the platform's schedule issues.
    app.engine.issue_checkpoint(app.clock.now()).await.unwrap();
    let served = serve(app.router.clone()).await;
    run_node(
        "staff-console.mjs",
        &[
            ("CUSTOS_URL", &served.url),
            ("STAFF_EMAIL", &officer.email),
            ("STAFF_PASSWORD", STAFF_PASSWORD),
            ("STAFF_CODE", &code),
            ("MEMBER_ID", &member),
            ("MEMBER_EMAIL", MEMBER_EMAIL),
            ("PLATFORM_KEY", &app.key),
        ],
    )
    .await;

    let db = rusqlite::Connection::open_with_flags(
        app.dir.0.join("data/custos.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (requester, status, verified_by, letter): (String, String, Option<String>, Option<String>) = db
        .query_row(
            "SELECT requester, status, verified_by, letter_sha256 FROM requests WHERE kind = 'access'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((requester.as_str(), status.as_str()), ("agent", "fulfilled"));
    assert_eq!(verified_by.as_deref(), Some("staff"));
    assert!(letter.is_some_and(|l| l.len() == 64), "the letter's SHA-256 is on record");
    // The agent's deletion request logged with a scan waits for its check;
    // the complaint is kept as filed.
    let kinds: Vec<(String, String, String)> = db
        .prepare("SELECT kind, requester, status FROM requests WHERE kind <> 'access' ORDER BY kind")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let kinds: Vec<(&str, &str, &str)> = kinds.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    assert_eq!(kinds, [("complaint", "member", "verified"), ("deletion", "agent", "received")]);
    // The member is told when an agent's request for them is verified
    // (queued for the jobs' delivery): the access request, not yet the
    // deletion request waiting for its check.
    let notices: i64 = db
        .query_row("SELECT count(*) FROM outbox WHERE kind = 'request_agent' AND subject = ?1", [&member], |r| r.get(0))
        .unwrap();
    assert_eq!(notices, 1);
}

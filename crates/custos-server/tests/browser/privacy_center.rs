//! The member privacy center (`/privacy`): see
//! `tests/browser/privacy-center.mjs` for what the browser asserts; this
//! side checks what the store holds afterwards.

use std::sync::Arc;

use serde_json::json;

use crate::harness::{instance, mailbox, run_node, serve};
use crate::smtp_sink::SmtpSink;

const EMAIL: &str = "member@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and playwright-core (scripts/ensure-browser); scripts/test runs it"]
async fn a_member_signs_in_downloads_their_data_withdraws_a_consent_and_asks_for_deletion() {
    let sink = Arc::new(SmtpSink::start());
    let app = instance("browser-privacy", custos_server::config::BUNDLED_POLICY, Some(&sink)).await;
    // A member who gave consent to marketing at sign-up.
    let (status, body) = app
        .send(
            "POST",
            "/v1/subjects",
            Some(&app.key),
            Some(json!({
                "kind": "business_operator", "collection_point": "business_operator_signup",
                "source": "direct_entry", "consents": ["marketing"],
                "items": {"name": "Kim Minji", "email": EMAIL, "mobile_phone": "010-1234-5678",
                          "password": "a long passphrase"}
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let member = body["id"].as_str().unwrap().to_owned();
    let (served, mail) = (serve(app.router.clone()).await, mailbox(sink.clone()).await);
    let token_file = app.dir.0.join("session-token.txt");
    run_node(
        "privacy-center.mjs",
        &[
            ("CUSTOS_URL", &served.url),
            ("MAIL_URL", &mail.url),
            ("MEMBER_EMAIL", EMAIL),
            ("TOKEN_FILE", token_file.to_str().unwrap()),
        ],
    )
    .await;

    // The consent ledger says withdrawn, through the web page.
    let (status, ledger) = app.send("GET", &format!("/v1/subjects/{member}/consents"), Some(&app.key), None).await;
    assert_eq!(status, 200, "{ledger}");
    let marketing = ledger["current"].as_array().unwrap().iter().find(|c| c["purpose"] == "marketing").unwrap();
    assert_eq!(marketing["state"], "withdrawn", "{ledger}");
    let db = rusqlite::Connection::open_with_flags(
        app.dir.0.join("data/custos.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    // The requests the pages filed: the access and export fulfilled at
    // once, the deletion waiting for staff, verified by the session.
    let mut statement =
        db.prepare("SELECT kind, status, verified_by, created_by FROM requests ORDER BY received_at, kind").unwrap();
    let requests: Vec<(String, String, Option<String>, String)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let actor = format!("member:{member}");
    for kind in ["access", "export"] {
        assert!(requests.iter().any(|r| r.0 == kind && r.1 == "fulfilled" && r.3 == actor), "{requests:?}");
    }
    assert!(
        requests.iter().any(|r| r.0 == "deletion" && r.1 == "verified" && r.2.as_deref() == Some("platform_session")),
        "{requests:?}"
    );
    // Sign-in and pages were audited as the member.
    let signed_in: i64 = db
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'member_sign_in' AND outcome = 'signed in' AND actor = ?1",
            [&actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(signed_in, 1);
    // Signed out: no session left; the token was never stored as itself.
    let sessions: i64 = db.query_row("SELECT count(*) FROM member_sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(sessions, 0, "signing out ended the session");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.starts_with("ms_"), "{token}");
    for file in ["custos.db", "custos.db-wal"] {
        let bytes = std::fs::read(app.dir.0.join("data").join(file)).unwrap_or_default();
        let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
        assert!(!found, "the session token is in {file}");
        let found = bytes.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes());
        assert!(!found, "the e-mail address is in {file} in plaintext");
    }
}

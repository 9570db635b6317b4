//! The lifecycle end to end with a manual clock: dormancy notices, the
//! dormant store, release by login, destruction three years later, account
//! deletion with records kept under statutory holds, calendar spans, the
//! jobs' idempotence and lease, the forecast, e-mail delivery through a
//! local SMTP receiver, and what is left on disk after destruction.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use custos_engine::lifecycle::{JobReport, MailConfig};
use custos_engine::{Engine, mail};
use custos_server::clock::ManualClock;
use custos_server::config::BUNDLED_POLICY;
use custos_server::http::{AppState, app};
use serde_json::{Value, json};

use crate::kit::{FINDABLE_MEMBERS, app_with_policy, call, counts, operator_signup, sign_up};
use crate::peek::{Db, Peek, Val, col};
use crate::smtp_sink::SmtpSink;
use crate::support::{Scratch, TestApp, engine_config, start_time};

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// Runs the jobs at `when` (the clock moves there too).
async fn jobs(app: &TestApp, when: &str) -> JobReport {
    app.clock.set(at(when));
    app.engine.run_jobs(at(when), "tests", &|| at(when)).await.unwrap()
}

async fn operator(app: &TestApp, email: &str, phone: &str) -> String {
    sign_up(app, &app.key, &operator_signup(email, phone)).await
}

async fn read(app: &TestApp, token: &str, id: &str) -> (u16, Value) {
    let answer = call(app, "GET", &format!("/v1/subjects/{id}?purpose=member_management"), Some(token), None).await;
    (answer.status.as_u16(), answer.body.clone())
}

async fn activity(app: &TestApp, id: &str, event: &str) {
    call(app, "POST", &format!("/v1/subjects/{id}/activity"), Some(&app.key), Some(&json!({"event": event})))
        .await
        .expect(204);
}

async fn add_record(app: &TestApp, id: &str, class: &str, date: &str, content: &str) -> String {
    let body = json!({"class": class, "record_date": date, "content": content});
    let answer = call(app, "POST", &format!("/v1/subjects/{id}/records"), Some(&app.key), Some(&body)).await;
    answer.expect(201)["id"].as_str().unwrap().to_owned()
}

async fn records(app: &TestApp, id: &str, purpose: &str) -> (u16, Value) {
    let answer = call(app, "GET", &format!("/v1/subjects/{id}/records?purpose={purpose}"), Some(&app.key), None).await;
    (answer.status.as_u16(), answer.body.clone())
}

fn record_contents(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|r| r["content"].as_str().unwrap().to_owned()).collect()
}

fn count(app: &TestApp, db: Db, sql: &str, id: &str) -> i64 {
    Peek::of(app).one(db, sql, &[Val::from(id)])
}

fn audit_outcomes(app: &TestApp, operation: &str, subject: &str) -> Vec<String> {
    let sql = "SELECT outcome FROM audit WHERE operation = ?1 AND subject_id = ?2 ORDER BY seq";
    Peek::of(app).column(Db::Data, sql, &[Val::from(operation), Val::from(subject)])
}

/// A service run by an operator who is its head admin (linked), and a fan
/// with an e-mail address.
struct World {
    app: TestApp,
    operator: String,
    service: String,
    fan: String,
}

async fn world(name: &str) -> World {
    let app = app_with_policy(name, &format!("{BUNDLED_POLICY}\n{FINDABLE_MEMBERS}")).await;
    let operator = operator(&app, "owner@example.com", "+82 10 5555 0101").await;
    let answer = call(&app, "POST", "/v1/services", Some(&app.key), Some(&json!({"operator": operator}))).await;
    let service = answer.expect(201)["id"].as_str().unwrap().to_owned();
    let fan = json!({
        "service": service, "kind": "service_member", "collection_point": "service_member_signup",
        "source": "direct_entry", "items": {"email": "fan@example.com"}
    });
    let fan = sign_up(&app, &app.key, &fan).await;
    World { app, operator, service, fan }
}

#[tokio::test]
async fn notice_then_dormancy_then_release_by_login() {
    let w = world("lifecycle-release").await;
    let app = &w.app;
    // The operator is the service's head admin: exempt from dormancy.
    let body = json!({"email": "head@example.com", "role": "head_admin", "service": w.service, "subject": w.operator});
    let invited = call(app, "POST", "/v1/staff/invitations", Some(&app.key), Some(&body)).await;
    let token = invited.expect(201)["token"].as_str().unwrap().to_owned();
    let head = app.accept("head@example.com", &token).await;

    // Signed up 2024-06-01: dormant on 2025-06-01, noticed 30 days before.
    assert_eq!(jobs(app, "2025-05-01T23:59:59Z").await.notified, 0);
    let report = jobs(app, "2025-05-02T00:00:00Z").await;
    assert_eq!((report.notified, report.made_dormant), (1, 0), "the fan only: the head admin is exempt");
    let queued: Vec<(String, String)> = Peek::of(app)
        .rows(Db::Data, "SELECT kind, body FROM outbox WHERE subject = ?1", &[Val::from(&w.fan)])
        .iter()
        .map(|r| (col(r, 0), col(r, 1)))
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, "dormancy_notice");
    assert!(queued[0].1.contains("2025-06-01T00:00:00Z"), "{}", queued[0].1);
    // A second run at the same moment changes nothing.
    let before = counts(app).await;
    assert_eq!(jobs(app, "2025-05-02T00:00:00Z").await, JobReport { ran: true, ..JobReport::default() });
    assert_eq!(counts(app).await, before);

    assert_eq!(jobs(app, "2025-05-31T23:59:59Z").await.made_dormant, 0, "never before the threshold");
    assert_eq!(jobs(app, "2025-06-01T00:00:00Z").await.made_dormant, 1);
    assert_eq!(count(app, Db::Data, "SELECT count(*) FROM items WHERE subject_id = ?1", &w.fan), 0, "moved out");
    assert_eq!(count(app, Db::Dormant, "SELECT count(*) FROM dormant_items WHERE subject_id = ?1", &w.fan), 1);
    // The platform's key sees the row masked; the head admin (who holds the
    // dormant-lookup privilege) reads it from the dormant store.
    let (status, masked) = read(app, &app.key, &w.fan).await;
    assert_eq!((status, masked["status"].as_str(), masked["masked"].as_bool()), (200, Some("dormant"), Some(true)));
    assert_eq!(masked["items"], json!({}));
    let session = app.login(&head).await;
    let (status, seen) = read(app, &session, &w.fan).await;
    assert_eq!((status, &seen["items"]), (200, &json!({"email": "fan@example.com"})), "{seen}");
    // The head admin's own member account never went dormant.
    assert_eq!(read(app, &app.key, &w.operator).await.1["status"], "active");

    // Logging in releases the fan, intact, and the dormant copy goes.
    app.clock.set(at("2025-07-01T00:00:00Z"));
    activity(app, &w.fan, "login").await;
    let (status, back) = read(app, &app.key, &w.fan).await;
    assert_eq!((status, back["status"].as_str()), (200, Some("active")));
    assert_eq!(back["items"], json!({"email": "fan@example.com"}));
    assert_eq!(count(app, Db::Dormant, "SELECT count(*) FROM dormant_items WHERE subject_id = ?1", &w.fan), 0);
    let sql = "SELECT count(*) FROM data_keys WHERE subject_id = ?1 AND scope = 'dormant'";
    assert_eq!(count(app, Db::Keys, sql, &w.fan), 0);
    // A payment does not release (b.stage: login or password change).
    assert_eq!(audit_outcomes(app, "dormant_release", &w.fan), vec!["released by login".to_owned()]);
    // A year after the login the cycle starts again, with a new notice.
    assert_eq!(jobs(app, "2026-06-01T00:00:00Z").await.notified, 1);
    // Five years on, the head admin's account is still active.
    jobs(app, "2030-01-01T00:00:00Z").await;
    assert_eq!(read(app, &app.key, &w.operator).await.1["status"], "active");
}

#[tokio::test]
async fn dormant_members_are_destroyed_three_years_later() {
    let app = TestApp::new("lifecycle-destroy").await;
    let gone = operator(&app, "gone@example.com", "+82 10 5555 0201").await;
    let kept = operator(&app, "kept@example.com", "+82 10 5555 0202").await;
    jobs(&app, "2025-05-02T00:00:00Z").await;
    activity(&app, &kept, "login").await;
    assert_eq!(jobs(&app, "2025-06-01T00:00:00Z").await.made_dormant, 1);
    assert_eq!(jobs(&app, "2028-05-31T23:59:59Z").await.destroyed_dormant, 0);
    activity(&app, &kept, "password_change").await;
    let report = jobs(&app, "2028-06-01T00:00:00Z").await;
    assert_eq!(report.destroyed_dormant, 1);
    assert!(report.scrubbed, "the logs are scrubbed after a destruction");
    assert_eq!(read(&app, &app.key, &gone).await.0, 404);
    let lookup = json!({"item": "email", "value": "gone@example.com", "purpose": "member_management"});
    assert_eq!(call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup)).await.status.as_u16(), 404);
    let certificate = audit_outcomes(&app, "destroy", &gone);
    assert_eq!(certificate.len(), 1);
    assert!(certificate[0].starts_with("destroyed: dormant member; keys key_"), "{}", certificate[0]);
    assert!(certificate[0].contains("rule retention.dormancy (1 year inactive, destroyed 3 years after)"));
    let (status, body) = read(&app, &app.key, &kept).await;
    assert_eq!((status, body["items"]["email"].as_str()), (200, Some("kept@example.com")));
    // Nothing is left in any store for the destroyed member.
    assert_eq!(count(&app, Db::Keys, "SELECT count(*) FROM data_keys WHERE subject_id = ?1", &gone), 0);
    assert_eq!(count(&app, Db::Dormant, "SELECT count(*) FROM dormant_items WHERE subject_id = ?1", &gone), 0);
}

#[tokio::test]
async fn deletion_keeps_the_payment_record_five_years_and_visit_logs_three_months() {
    let app = TestApp::new("lifecycle-deletion").await;
    let member = operator(&app, "leaving@example.com", "+82 10 5555 0301").await;
    add_record(&app, &member, "payment_supply_records", "2024-05-31", "invoice 2024-117").await;
    add_record(&app, &member, "service_visitation_records", "2024-05-31", "visit from 203.0.113.9").await;
    let answer = call(&app, "DELETE", &format!("/v1/subjects/{member}"), Some(&app.key), None).await;
    let erased = answer.expect(200).clone();
    assert_eq!(erased["keys_destroyed"], 1);
    assert_eq!(erased["items_destroyed"], 4);
    assert_eq!(
        erased["kept"],
        json!([
            {"class": "payment_supply_records", "law": "ecommerce_act", "read_purpose": "statutory_retention",
             "count": 1, "until": "2029-05-31"},
            {"class": "service_visitation_records", "law": "comm_secrets_act", "read_purpose": "statutory_retention",
             "count": 1, "until": "2024-08-31"},
        ])
    );
    // Gone at once: not readable, not findable, not deletable twice.
    assert_eq!(read(&app, &app.key, &member).await.0, 404);
    let lookup = json!({"item": "email", "value": "leaving@example.com", "purpose": "member_management"});
    assert_eq!(call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup)).await.status.as_u16(), 404);
    assert_eq!(call(&app, "DELETE", &format!("/v1/subjects/{member}"), Some(&app.key), None).await.status, 404);
    // The held records: only for the legal purpose that keeps them.
    assert_eq!(records(&app, &member, "service_fees").await.0, 403);
    let (status, page) = records(&app, &member, "statutory_retention").await;
    assert_eq!(status, 200);
    assert_eq!(record_contents(&page), vec!["invoice 2024-117", "visit from 203.0.113.9"]);
    let certificate = audit_outcomes(&app, "destroy", &member);
    assert!(certificate[0].contains("rule retention.rules account_deletion"), "{}", certificate[0]);
    assert!(certificate[0].contains("1 payment_supply_records until 2029-05-31"), "{}", certificate[0]);

    // Visit records: 3 months from their own date.
    let report = jobs(&app, "2024-08-30T23:59:59Z").await;
    assert_eq!((report.records_destroyed, report.keys_destroyed), (0, 0));
    let report = jobs(&app, "2024-08-31T00:00:00Z").await;
    assert_eq!((report.records_destroyed, report.keys_destroyed), (1, 1));
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), vec!["invoice 2024-117"]);
    // Payment records: 5 years.
    jobs(&app, "2029-05-30T00:00:00Z").await;
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), vec!["invoice 2024-117"]);
    let report = jobs(&app, "2029-05-31T00:00:00Z").await;
    assert_eq!((report.records_destroyed, report.keys_destroyed), (1, 1));
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), Vec::<String>::new());
    assert_eq!(count(&app, Db::Keys, "SELECT count(*) FROM data_keys WHERE subject_id = ?1", &member), 0);
    let held = audit_outcomes(&app, "destroy", &member);
    assert!(
        held.iter()
            .any(|o| o.starts_with("destroyed: key key_") && o.contains("(hold:payment_supply_records:2024-05)"))
    );
    // Running the jobs again finds nothing to do.
    let report = jobs(&app, "2029-05-31T00:00:00Z").await;
    assert_eq!((report.records_destroyed, report.keys_destroyed), (0, 0));
}

#[tokio::test]
async fn month_end_and_leap_day_spans_and_no_read_past_the_hold() {
    let app = TestApp::new("lifecycle-calendar").await;
    let member = operator(&app, "calendar@example.com", "+82 10 5555 0401").await;
    add_record(&app, &member, "payment_supply_records", "2024-02-29", "leap-day payment").await;
    // 2024-03-31 plus 3 months is 2024-06-30 (June has 30 days).
    add_record(&app, &member, "service_visitation_records", "2024-03-31", "month-end visit").await;
    let both = vec!["leap-day payment".to_owned(), "month-end visit".to_owned()];
    app.clock.set(at("2024-06-29T23:59:59Z"));
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), both);
    // From its expiry day a record is not read, even before the sweep.
    app.clock.set(at("2024-06-30T00:00:00Z"));
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), vec!["leap-day payment"]);
    assert_eq!(jobs(&app, "2024-06-30T00:00:00Z").await.records_destroyed, 1);
    // A record whose hold is already over is not accepted at all.
    let body = json!({"class": "service_visitation_records", "record_date": "2024-03-30", "content": "late"});
    let late = call(&app, "POST", &format!("/v1/subjects/{member}/records"), Some(&app.key), Some(&body)).await;
    late.field("record_date", "not_allowed");
    // 2024-02-29 plus 5 years is 2029-02-28.
    activity(&app, &member, "login").await;
    app.clock.set(at("2029-02-27T23:59:59Z"));
    activity(&app, &member, "login").await;
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), vec!["leap-day payment"]);
    assert_eq!(jobs(&app, "2029-02-28T00:00:00Z").await.records_destroyed, 1);
    assert_eq!(record_contents(&records(&app, &member, "statutory_retention").await.1), Vec::<String>::new());
}

#[tokio::test]
async fn the_lease_keeps_a_second_runner_out_until_it_expires() {
    let app = TestApp::new("lifecycle-lease").await;
    operator(&app, "leased@example.com", "+82 10 5555 0501").await;
    let now = at("2025-05-02T00:00:00Z");
    assert!(app.engine.take_lease("node-a", now).await.unwrap());
    let refused = app.engine.run_jobs(now, "node-b", &|| now).await.unwrap();
    assert_eq!(refused, JobReport::default(), "nothing done while node-a holds the lease");
    assert_eq!(counts(&app).await.plus(&[]), counts(&app).await);
    // Ten minutes later node-a's lease has run out (it died, say).
    let later = now.checked_add(jiff::SignedDuration::from_secs(601)).unwrap();
    let report = app.engine.run_jobs(later, "node-b", &|| later).await.unwrap();
    assert!(report.ran);
    assert_eq!(report.notified, 1);
    // node-b released it on finishing: node-a may take it again.
    assert!(app.engine.take_lease("node-a", later).await.unwrap());
}

#[tokio::test]
async fn simulate_shows_the_timeline_and_changes_nothing() {
    let app = TestApp::new("lifecycle-simulate").await;
    let member = operator(&app, "future@example.com", "+82 10 5555 0601").await;
    add_record(&app, &member, "service_visitation_records", "2024-05-15", "visit").await;
    add_record(&app, &member, "payment_supply_records", "2024-05-15", "payment").await;
    let before = counts(&app).await;
    let events = app.engine.simulate(start_time(), at("2027-12-31T00:00:00Z")).await.unwrap();
    assert_eq!(counts(&app).await, before, "a forecast changes nothing");
    let lines: Vec<(String, String, Option<String>)> =
        events.iter().map(|e| (e.at.clone(), e.action.clone(), e.class.clone())).collect();
    assert_eq!(
        lines,
        vec![
            ("2024-08-15T00:00:00Z".into(), "records_expire".into(), Some("service_visitation_records".into())),
            ("2025-05-02T00:00:00Z".into(), "notify".into(), None),
            ("2025-06-01T00:00:00Z".into(), "dormant".into(), None),
        ]
    );
    assert!(events[1..].iter().all(|e| e.subject.as_deref() == Some(member.as_str())));
    let far = app.engine.simulate(start_time(), at("2030-01-01T00:00:00Z")).await.unwrap();
    let actions: Vec<&str> = far.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["records_expire", "notify", "dormant", "destroy", "records_expire"]);
    assert_eq!(far[3].at, "2028-06-01T00:00:00Z");
    assert_eq!(far[4].at, "2029-05-15T00:00:00Z");
}

// --- e-mail ------------------------------------------------------------------

pub(crate) async fn app_with_mail(name: &str, sink: &SmtpSink) -> TestApp {
    app_with_mail_policy(name, sink, BUNDLED_POLICY).await
}

/// [`app_with_mail`] on the policy `text`.
pub(crate) async fn app_with_mail_policy(name: &str, sink: &SmtpSink, text: &str) -> TestApp {
    let dir = Scratch::new(name);
    let mut config = engine_config(&dir);
    config.mail = Some(MailConfig {
        smtp: mail::SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.port(),
            security: mail::Security::None,
            username: None,
            password: None,
            from: "privacy@custos.example".into(),
            helo_name: "custos-tests".into(),
            timeout: Duration::from_secs(5),
        },
        processor: Some("aws".into()),
    });
    let policy = custos_engine::policy::parse(text).unwrap();
    let (engine, _) = Engine::open(&config, policy).await.unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let router = app(AppState::new(engine.clone(), clock.clone()), 256 * 1024);
    let purposes = engine.policy().purposes.iter().map(|p| p.id.to_string()).collect();
    let key = engine.create_api_key(None, purposes, "tests".into(), start_time()).await.unwrap().token;
    TestApp { router, engine, clock, key, dir }
}

#[tokio::test]
async fn the_dormancy_notice_is_mailed_with_retries_and_logged_as_a_transfer() {
    let sink = SmtpSink::start();
    let app = app_with_mail("lifecycle-mail", &sink).await;
    let first = operator(&app, "first@example.com", "+82 10 5555 0701").await;
    let second = operator(&app, "second@example.com", "+82 10 5555 0702").await;
    let third = operator(&app, "third@example.com", "+82 10 5555 0703").await;
    app.clock.set(at("2024-06-02T00:00:00Z"));
    activity(&app, &second, "login").await;
    app.clock.set(at("2024-06-04T00:00:00Z"));
    activity(&app, &third, "login").await;

    let report = jobs(&app, "2025-05-02T00:00:00Z").await;
    assert_eq!((report.notified, report.notices_sent), (1, 1));
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].to, vec!["first@example.com".to_owned()]);
    assert_eq!(got[0].from, "privacy@custos.example");
    assert!(got[0].data.contains("will become dormant"), "{}", got[0].data);
    assert!(got[0].data.contains("2025-06-01T00:00:00Z"), "{}", got[0].data);
    let logged = audit_outcomes(&app, "notify", &first);
    assert_eq!(
        logged,
        vec!["read to deliver dormancy_notice by e-mail; transfer to processor aws (Amazon Web Services, Inc.)"]
    );

    // The relay refuses once (451): the notice waits and goes on the retry.
    sink.fail_next_rcpt(451);
    let report = jobs(&app, "2025-05-03T00:00:00Z").await;
    assert_eq!((report.notified, report.notices_sent, report.notices_failed), (1, 0, 0));
    assert_eq!(jobs(&app, "2025-05-03T00:04:59Z").await.notices_sent, 0, "not before the retry delay");
    assert_eq!(jobs(&app, "2025-05-03T00:05:00Z").await.notices_sent, 1);
    let got = sink.wait_for(2, Duration::from_secs(10));
    assert_eq!(got[1].to, vec!["second@example.com".to_owned()]);
    // Delivered notices are not sent again.
    assert_eq!(jobs(&app, "2025-05-04T00:00:00Z").await.notices_sent, 0);
    assert_eq!(sink.messages().len(), 2);
    // A notice whose member logs in before it could go out is dropped.
    sink.fail_next_rcpt(451);
    let report = jobs(&app, "2025-05-05T00:00:00Z").await;
    assert_eq!((report.notified, report.notices_sent), (1, 0));
    app.clock.set(at("2025-05-05T00:01:00Z"));
    activity(&app, &third, "login").await;
    let report = jobs(&app, "2025-05-05T00:05:00Z").await;
    assert_eq!((report.notices_sent, report.notices_failed), (0, 1));
    assert_eq!(sink.messages().len(), 2, "nothing sent to a member who came back");
}

// --- the disk after destruction -----------------------------------------------

fn files(folder: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Which of `needles` occur in some file of the data folder.
fn found_on_disk(folder: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let files = files(folder);
    needles
        .iter()
        .filter(|(_, n)| files.iter().any(|(_, bytes)| bytes.windows(n.len()).any(|w| w == n.as_slice())))
        .map(|(what, _)| what.clone())
        .collect()
}

/// Every wrapped key and every ciphertext of a subject, in all three stores.
fn secrets_of(app: &TestApp, subject: &str) -> Vec<(String, Vec<u8>)> {
    let peek = Peek::of(app);
    let mut out = Vec::new();
    for row in peek.rows(Db::Keys, "SELECT scope, wrapped FROM data_keys WHERE subject_id = ?1", &[Val::from(subject)])
    {
        out.push((format!("{subject} key {}", col::<String>(&row, 0)), col::<Vec<u8>>(&row, 1)));
    }
    for (db, sql) in [
        (Db::Data, "SELECT item, value FROM items WHERE subject_id = ?1"),
        (Db::Dormant, "SELECT item, value FROM dormant_items WHERE subject_id = ?1"),
        (Db::Data, "SELECT class, value FROM records WHERE subject_id = ?1"),
    ] {
        for row in peek.rows(db, sql, &[Val::from(subject)]) {
            let value: Vec<u8> = col(&row, 1);
            // The middle of the ciphertext: no header or tag shared by chance.
            let middle = value[13..value.len() - 16].to_vec();
            out.push((format!("{subject} {db:?} {}", col::<String>(&row, 0)), middle));
        }
    }
    out
}

/// The folders that hold the instance's data on disk: the data folder
/// (SQLite), or the database's own folder of the test cluster with the
/// cluster's write-ahead log and shared catalog (PostgreSQL).
fn disk_folders(app: &TestApp) -> Vec<PathBuf> {
    let peek = Peek::of(app);
    if !peek.is_postgres() {
        return vec![app.dir.0.join("data")];
    }
    #[allow(clippy::disallowed_methods, reason = "where the test harness put its cluster")]
    let cluster = PathBuf::from(std::env::var("TESTPG_DATA").expect("with-postgres sets TESTPG_DATA"));
    let oid: i64 =
        peek.one(Db::Data, "SELECT CAST(oid AS bigint) FROM pg_database WHERE datname = current_database()", &[]);
    vec![cluster.join("base").join(oid.to_string()), cluster.join("pg_wal"), cluster.join("global")]
}

fn found_anywhere(folders: &[PathBuf], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found: Vec<String> = folders.iter().flat_map(|f| found_on_disk(f, needles)).collect();
    found.sort();
    found.dedup();
    found
}

#[tokio::test]
async fn after_destruction_no_byte_of_the_member_or_their_keys_is_on_disk() {
    let app = TestApp::new("lifecycle-disk").await;
    let deleted = operator(&app, "erased@example.com", "+82 10 5555 0801").await;
    add_record(&app, &deleted, "service_visitation_records", "2024-05-20", "erased member's visit").await;
    let dormant = operator(&app, "asleep@example.com", "+82 10 5555 0802").await;
    let stays = operator(&app, "stays@example.com", "+82 10 5555 0803").await;
    add_record(&app, &stays, "payment_supply_records", "2024-05-20", "the stayer's payment").await;
    let keep_active = |when: &'static str| {
        let app = &app;
        let stays = stays.clone();
        async move {
            app.clock.set(at(when));
            activity(app, &stays, "login").await;
        }
    };
    keep_active("2025-05-01T00:00:00Z").await;
    jobs(&app, "2025-05-02T00:00:00Z").await;
    assert_eq!(jobs(&app, "2025-06-01T00:00:00Z").await.made_dormant, 2, "the two others");
    keep_active("2025-06-01T00:00:00Z").await;
    app.engine.scrub().await.unwrap();
    // Release the first one so it can be deleted as an active member.
    activity(&app, &deleted, "login").await;
    app.engine.scrub().await.unwrap();

    let data = disk_folders(&app);
    let deleted_secrets = secrets_of(&app, &deleted);
    let dormant_secrets = secrets_of(&app, &dormant);
    assert!(deleted_secrets.len() >= 5 && dormant_secrets.len() >= 4, "keys and ciphertexts to look for");
    // The scan finds them while they exist: it can fail.
    assert_eq!(found_anywhere(&data, &deleted_secrets).len(), deleted_secrets.len());
    assert_eq!(found_anywhere(&data, &dormant_secrets).len(), dormant_secrets.len());

    // The account deletion, then the dormant member's destruction.
    call(&app, "DELETE", &format!("/v1/subjects/{deleted}"), Some(&app.key), None).await.expect(200);
    keep_active("2027-06-01T00:00:00Z").await;
    keep_active("2028-05-31T00:00:00Z").await;
    assert_eq!(jobs(&app, "2028-06-01T00:00:00Z").await.destroyed_dormant, 1);
    app.engine.scrub().await.unwrap();
    let left: Vec<String> =
        found_anywhere(&data, &deleted_secrets).into_iter().chain(found_anywhere(&data, &dormant_secrets)).collect();
    let (keys_left, ciphertext_left): (Vec<String>, Vec<String>) = left.into_iter().partition(|w| w.contains(" key "));
    // Their keys are in no file on either backend: what was sealed under
    // them cannot be read from any copy of the disk.
    assert_eq!(keys_left, Vec::<String>::new(), "key bytes of destroyed members still on disk");
    if Peek::of(&app).is_postgres() {
        // PostgreSQL's VACUUM cuts dead rows out of a page without zeroing
        // them; their ciphertext stays until the space is reused. Reported,
        // not asserted (ARCHITECTURE.md, departures).
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL after destruction: keys left 0; ciphertexts left in heap pages {} of {}",
            ciphertext_left.len(),
            deleted_secrets.iter().chain(&dormant_secrets).filter(|(what, _)| !what.contains(" key ")).count()
        );
    } else {
        assert_eq!(ciphertext_left, Vec::<String>::new(), "ciphertext of destroyed members still on disk");
    }
    // Plaintext was never there; it is not now either.
    let plain: Vec<(String, Vec<u8>)> = ["erased@example.com", "asleep@example.com", "erased member's visit"]
        .iter()
        .map(|s| (s.to_string(), s.as_bytes().to_vec()))
        .collect();
    assert_eq!(found_anywhere(&data, &plain), Vec::<String>::new());
    // Everyone else is intact and readable.
    let (status, body) = read(&app, &app.key, &stays).await;
    assert_eq!((status, body["items"]["email"].as_str()), (200, Some("stays@example.com")));
    assert_eq!(record_contents(&records(&app, &stays, "service_fees").await.1), vec!["the stayer's payment"]);
    let stays_secrets = secrets_of(&app, &stays);
    assert_eq!(found_anywhere(&data, &stays_secrets).len(), stays_secrets.len());
}

// --- the command line ---------------------------------------------------------

/// Runs `custos ARGS` on the instance of `dir`: its data folder, or its
/// PostgreSQL database when the suite runs there (`--database` added).
fn custos(dir: &Scratch, args: &[&str]) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_custos"));
    command.args(args);
    if let Some(url) = crate::support::database_for(dir) {
        command.args(["--database", &url]);
    }
    let out = command
        .env_clear()
        .env("CUSTOS_ROOT_KEY_FILE", dir.0.join("root.key"))
        .current_dir(&dir.0)
        .output()
        .expect("the custos binary runs");
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn jobs_run_and_simulate_from_the_command_line() {
    let app = TestApp::new("lifecycle-cli").await;
    let member = operator(&app, "cli@example.com", "+82 10 5555 0901").await;
    add_record(&app, &member, "service_visitation_records", "2024-05-15", "visit").await;
    let TestApp { router, engine, clock, key: _, dir } = app;
    drop((router, engine, clock));

    let (ok, out, err) =
        custos(&dir, &["simulate", "--data-dir", "data", "--now", "2024-06-01", "--until", "2025-12-31"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[1].starts_with("2024-08-15T00:00:00Z   records_expire"), "{out}");
    assert!(lines[2].starts_with("2025-05-02T00:00:00Z   notify") && lines[2].contains(&member), "{out}");
    assert!(lines[3].starts_with("2025-06-01T00:00:00Z   dormant"), "{out}");
    assert_eq!(lines[4], "3 events until 2026-01-01T00:00:00Z; nothing was changed", "{out}");
    let (ok, json, _) =
        custos(&dir, &["simulate", "--data-dir", "data", "--now", "2024-06-01", "--until", "2025-12-31", "--json"]);
    assert!(ok);
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "records_expire");

    let (ok, out, err) = custos(&dir, &["jobs", "run", "--data-dir", "data", "--now", "2025-05-02"]);
    assert!(ok, "{err}");
    assert!(out.contains("dormancy notices queued: 1") && out.contains("records destroyed: 1"), "{out}");
    let (ok, again, _) = custos(&dir, &["jobs", "run", "--data-dir", "data", "--now", "2025-05-02"]);
    assert!(ok);
    assert!(again.contains("dormancy notices queued: 0") && again.contains("records destroyed: 0"), "{again}");
    let (ok, _, err) = custos(&dir, &["jobs", "run", "--data-dir", "data", "--now", "next tuesday"]);
    assert!(!ok);
    assert!(err.contains("--now: \"next tuesday\" is not a date (YYYY-MM-DD) or an RFC 3339 time"), "{err}");
}

#[tokio::test]
async fn a_dormant_member_is_not_read_past_their_destruction_date_even_before_the_sweep() {
    let w = world("lifecycle-due").await;
    let app = &w.app;
    let head = app.enrol_staff("head@example.com", "head_admin", Some(&w.service)).await;
    jobs(app, "2025-05-02T00:00:00Z").await;
    assert_eq!(jobs(app, "2025-06-01T00:00:00Z").await.made_dormant, 2, "the fan and the unlinked operator");
    // (A login moves the test clock on to a fresh TOTP step.)
    app.clock.set(at("2028-05-31T23:58:00Z"));
    let session = app.login(&head).await;
    app.clock.set(at("2028-05-31T23:59:59Z"));
    let (status, body) = read(app, &session, &w.fan).await;
    assert_eq!(status, 200, "{body} {:?}", audit_outcomes(app, "read", &w.fan));
    app.clock.set(at("2028-06-01T00:00:00Z"));
    assert_eq!(read(app, &session, &w.fan).await.0, 404, "due for destruction: not read");
    assert_eq!(audit_outcomes(app, "read", &w.fan).last().unwrap(), "denied: destruction due");
}

#[tokio::test]
async fn a_dormant_member_is_not_corrected_and_only_the_platform_links_a_member_account() {
    let w = world("lifecycle-guards").await;
    let app = &w.app;
    let head = app.enrol_staff("head@example.com", "head_admin", Some(&w.service)).await;
    jobs(app, "2025-05-02T00:00:00Z").await;
    jobs(app, "2025-06-01T00:00:00Z").await;
    // Even the head admin (who sees dormant members) cannot correct one.
    let session = app.login(&head).await;
    let body = json!({"items": {"email": "new@example.com"}, "source": "direct_entry"});
    let answer = call(app, "PATCH", &format!("/v1/subjects/{}", w.fan), Some(&session), Some(&body)).await;
    assert_eq!(answer.status, 409, "{}", answer.text);
    assert_eq!(audit_outcomes(app, "correct", &w.fan).last().unwrap(), "denied: dormant");
    // A service's key may not link a staff account to a member account.
    let service_key = app.key_for(Some(&w.service), &["member_management"]).await;
    let link = json!({"email": "x@example.com", "role": "operator", "service": w.service, "subject": w.fan});
    let answer = call(app, "POST", "/v1/staff/invitations", Some(&service_key), Some(&link)).await;
    assert!(matches!(answer.status.as_u16(), 403 | 404), "{}", answer.text);
    // The platform's key may, but not to a dormant account.
    let answer = call(app, "POST", "/v1/staff/invitations", Some(&app.key), Some(&link)).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
}

#[tokio::test]
async fn an_amendment_notice_is_mailed_to_every_active_member_with_an_address() {
    let sink = SmtpSink::start();
    let app = app_with_mail("lifecycle-amendment-mail", &sink).await;
    let a = operator(&app, "a@example.com", "+82 10 5555 0711").await;
    let b = operator(&app, "b@example.com", "+82 10 5555 0712").await;
    let service = call(&app, "POST", "/v1/services", Some(&app.key), Some(&json!({"operator": a}))).await;
    let service = service.expect(201)["id"].as_str().unwrap().to_owned();
    // A fan without an address gets no mail.
    sign_up(&app, &app.key, &crate::kit::member_signup(&service)).await;
    let text = BUNDLED_POLICY
        .replace("version = \"2023-02-21\"", "version = \"2024-07-01\"")
        .replace("notice_date = 2023-02-21", "notice_date = 2024-06-01")
        .replace("effective_date = 2023-02-28", "effective_date = 2024-07-01")
        .replace("title = \"b.stage Privacy Policy\"", "title = \"b.stage Privacy Policy (reworded)\"");
    let published = call(&app, "POST", "/v1/policy/amendments", Some(&app.key), Some(&json!({"text": text}))).await;
    published.expect(201);
    let report = jobs(&app, "2024-06-01T00:10:00Z").await;
    assert_eq!(report.notices_sent, 2);
    let mut got: Vec<String> = sink.wait_for(2, Duration::from_secs(10)).iter().map(|m| m.to[0].clone()).collect();
    got.sort();
    assert_eq!(got, vec!["a@example.com", "b@example.com"]);
    assert!(sink.messages()[0].data.contains("changes on 2024-07-01"), "{}", sink.messages()[0].data);
    // Fanned out once: a second run sends nothing more.
    assert_eq!(jobs(&app, "2024-06-01T00:20:00Z").await.notices_sent, 0);
    assert_eq!(audit_outcomes(&app, "notify", &b).len(), 1);
}

//! Every operation has its audit entry and every audit entry its operation
//! (DESIGN §10): thousands of random operations over HTTP — sign-ups,
//! purpose-bound reads allowed and refused, consents, records kept and
//! read, corrections, activity, erasures — each with the entry it must
//! leave (operation, member, allowed or denied) in a model written here;
//! then the audit log is read back and the two are matched both ways.

use std::collections::BTreeMap;

use serde_json::json;

use crate::kit::{call, member_signup, new_service, next_random};
use crate::peek::{Db, Peek, Val, col};
use crate::support::TestApp;

/// What one entry says: (operation, member, allowed).
type Key = (String, String, bool);

/// The entries of the log after `from` (a sequence number), as a multiset.
fn log_after(app: &TestApp, from: i64) -> BTreeMap<Key, usize> {
    let sql = "SELECT operation, subject_id, outcome FROM audit WHERE seq > ?1 ORDER BY seq";
    let mut out = BTreeMap::new();
    for row in Peek::of(app).rows(Db::Data, sql, &[Val::from(from)]) {
        let (op, subject, outcome): (String, Option<String>, String) = (col(&row, 0), col(&row, 1), col(&row, 2));
        *out.entry((op, subject.unwrap_or_default(), !outcome.starts_with("denied"))).or_insert(0) += 1;
    }
    out
}

fn last_seq(app: &TestApp) -> i64 {
    Peek::of(app).one(Db::Data, "SELECT coalesce(max(seq), 0) FROM audit", &[])
}

#[tokio::test]
async fn thousands_of_random_operations_match_the_audit_log_both_ways() {
    let app = TestApp::new("audit-match").await;
    let service = new_service(&app, 1).await;
    let narrow = app.key_for(None, &["service_fees"]).await;
    let from = last_seq(&app);

    let mut model: BTreeMap<Key, usize> = BTreeMap::new();
    let mut expect = |op: &str, subject: &str, allowed: bool| {
        *model.entry((op.to_owned(), subject.to_owned(), allowed)).or_insert(0) += 1;
    };
    let mut live: Vec<String> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let operations = 2_000;
    for _ in 0..operations {
        let pick = next_random(&mut seed);
        if live.len() < 5 || pick.is_multiple_of(10) {
            let answer = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&member_signup(&service))).await;
            let id = answer.expect(201)["id"].as_str().unwrap().to_owned();
            expect("collect", &id, true);
            live.push(id);
            continue;
        }
        let id = live[(next_random(&mut seed) % live.len() as u64) as usize].clone();
        match pick % 9 {
            0 | 1 => {
                let path = format!("/v1/subjects/{id}?purpose=member_management");
                call(&app, "GET", &path, Some(&app.key), None).await.expect(200);
                expect("read", &id, true);
            }
            2 => {
                let path = format!("/v1/subjects/{id}?purpose=member_management");
                call(&app, "GET", &path, Some(&narrow), None).await.problem(403, "purpose_not_allowed");
                // Refused on the caller's purposes alone, before the member
                // is looked up: the entry names no member.
                expect("read", "", false);
            }
            3 => {
                let consent = json!({"purpose": "marketing", "granted": pick.is_multiple_of(2), "channel": "web_page",
                                     "notice_text": "Offers?"});
                let path = format!("/v1/subjects/{id}/consents");
                call(&app, "POST", &path, Some(&app.key), Some(&consent)).await.expect(201);
                expect("consent", &id, true);
            }
            4 => {
                let record = json!({"class": "complaint_dispute_records", "record_date": "2024-05-01", "content": "a complaint"});
                let path = format!("/v1/subjects/{id}/records");
                call(&app, "POST", &path, Some(&app.key), Some(&record)).await.expect(201);
                expect("record_add", &id, true);
            }
            5 => {
                let path = format!("/v1/subjects/{id}/records?purpose=member_management");
                call(&app, "GET", &path, Some(&app.key), None).await.expect(200);
                expect("record_read", &id, true);
            }
            6 => {
                let body = json!({"items": {"device_info": format!("Phone {pick}")}, "source": "generated"});
                call(&app, "PATCH", &format!("/v1/subjects/{id}"), Some(&app.key), Some(&body)).await.expect(200);
                expect("correct", &id, true);
            }
            7 => {
                let path = format!("/v1/subjects/{id}/activity");
                let answer = call(&app, "POST", &path, Some(&app.key), Some(&json!({"event": "login"}))).await;
                assert_eq!(answer.status, 204, "{}", answer.text);
                expect("activity", &id, true);
            }
            _ => {
                call(&app, "DELETE", &format!("/v1/subjects/{id}"), Some(&app.key), None).await.expect(200);
                // An erasure's entry is its destruction certificate.
                expect("destroy", &id, true);
                live.retain(|l| l != &id);
            }
        }
    }

    let log = log_after(&app, from);
    let mut missing = Vec::new();
    let mut unexplained = Vec::new();
    for (key, n) in &model {
        let got = log.get(key).copied().unwrap_or(0);
        if got < *n {
            missing.push((key.clone(), n - got));
        }
    }
    for (key, n) in &log {
        let want = model.get(key).copied().unwrap_or(0);
        if *n > want {
            unexplained.push((key.clone(), n - want));
        }
    }
    let total: usize = model.values().sum();
    assert!(total >= operations, "every operation is in the model");
    assert!(missing.is_empty(), "operations without their audit entry: {missing:#?}");
    assert!(unexplained.is_empty(), "audit entries without their operation: {unexplained:#?}");
}

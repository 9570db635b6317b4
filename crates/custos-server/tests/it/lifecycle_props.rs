//! Properties of the lifecycle over random histories: sign-ups, activity,
//! records, deletions and job runs at random moments. After every run:
//! no record is readable past its hold, nobody became dormant before their
//! threshold and notice, the head admin's account is never dormant, and a
//! second run at the same moment changes nothing.

use std::collections::HashMap;

use custos_engine::lifecycle::JobReport;
use custos_server::clock::Clock;
use proptest::prelude::*;
use serde_json::json;

use crate::kit::{call, counts, operator_signup, sign_up};
use crate::peek::{Db, Peek, Val, col};
use crate::support::{TestApp, start_time};

#[derive(Debug, Clone)]
enum Op {
    /// Let time pass (days, hours).
    Wait(i64, i64),
    Login(usize),
    Payment(usize),
    Record(usize, bool, i64),
    Delete(usize),
    Run,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..400, 0i64..24).prop_map(|(d, h)| Op::Wait(d, h)),
        2 => (0usize..4).prop_map(Op::Login),
        1 => (0usize..4).prop_map(Op::Payment),
        2 => (0usize..4, any::<bool>(), 0i64..120).prop_map(|(m, p, back)| Op::Record(m, p, back)),
        1 => (1usize..4).prop_map(Op::Delete),
        4 => Just(Op::Run),
    ]
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn add(t: jiff::Timestamp, span: jiff::Span) -> jiff::Timestamp {
    jiff::tz::Offset::UTC.to_timestamp(jiff::tz::Offset::UTC.to_datetime(t).checked_add(span).unwrap()).unwrap()
}

async fn check(app: &TestApp, members: &[String], head: &str, activity: &HashMap<String, jiff::Timestamp>) {
    let now = app.clock.now();
    let today = jiff::tz::Offset::UTC.to_datetime(now).date();
    let peek = Peek::of(app);
    for id in members {
        let rows =
            peek.rows(Db::Data, "SELECT status, dormant_at, notified_at FROM subjects WHERE id = ?1", &[Val::from(id)]);
        assert!(!rows.is_empty(), "no subject {id}");
        let (status, dormant_at, notified_at): (String, Option<String>, Option<String>) =
            (col(&rows[0], 0), col(&rows[0], 1), col(&rows[0], 2));
        if status == "dormant" {
            assert_ne!(id, head, "the head admin's account became dormant");
            let dormant_at = ts(&dormant_at.unwrap());
            let last = activity[id];
            assert!(dormant_at >= add(last, jiff::Span::new().years(1)), "{id} dormant before its threshold");
            let notice = ts(&notified_at.expect("a notice came first"));
            assert!(dormant_at >= add(notice, jiff::Span::new().days(30)), "{id} dormant before the notice ran out");
            assert!(dormant_at <= now);
        }
        let answer =
            call(app, "GET", &format!("/v1/subjects/{id}/records?purpose=statutory_retention"), Some(&app.key), None)
                .await;
        if answer.status == 200 {
            for r in answer.body["items"].as_array().unwrap() {
                let date: jiff::civil::Date = r["record_date"].as_str().unwrap().parse().unwrap();
                let span = if r["class"] == "payment_supply_records" {
                    jiff::Span::new().years(5)
                } else {
                    jiff::Span::new().months(3)
                };
                assert!(date.checked_add(span).unwrap() > today, "{id}: a record read past its hold on {today}: {r}");
            }
        }
    }
}

async fn history(ops: Vec<Op>) {
    let app = TestApp::new("lifecycle-props").await;
    let mut members = Vec::new();
    let mut activity = HashMap::new();
    for n in 0..4u16 {
        let id =
            sign_up(&app, &app.key, &operator_signup(&format!("p{n}@example.com"), &format!("+82 10 5555 1{n:03}")))
                .await;
        activity.insert(id.clone(), start_time());
        members.push(id);
    }
    let service = call(&app, "POST", "/v1/services", Some(&app.key), Some(&json!({"operator": members[0]}))).await;
    let service = service.expect(201)["id"].as_str().unwrap().to_owned();
    let invite = json!({"email": "head@example.com", "role": "head_admin", "service": service, "subject": members[0]});
    let token = call(&app, "POST", "/v1/staff/invitations", Some(&app.key), Some(&invite)).await;
    let token = token.expect(201)["token"].as_str().unwrap().to_owned();
    app.accept("head@example.com", &token).await;
    let peek = Peek::of(&app);
    let status =
        |id: &str| -> String { peek.one(Db::Data, "SELECT status FROM subjects WHERE id = ?1", &[Val::from(id)]) };
    for op in ops {
        let now = app.clock.now();
        match op {
            Op::Wait(d, h) => app.clock.advance(jiff::SignedDuration::from_hours(24 * d + h)),
            Op::Login(m) | Op::Payment(m) => {
                let event = if matches!(op, Op::Login(_)) { "login" } else { "recurring_payment" };
                let before = status(&members[m]);
                let path = format!("/v1/subjects/{}/activity", members[m]);
                let answer = call(&app, "POST", &path, Some(&app.key), Some(&json!({"event": event}))).await;
                if answer.status == 204 && (before == "active" || event == "login") {
                    activity.insert(members[m].clone(), now);
                }
            }
            Op::Record(m, payment, back) => {
                let class = if payment { "payment_supply_records" } else { "service_visitation_records" };
                let date =
                    jiff::tz::Offset::UTC.to_datetime(now).date().checked_sub(jiff::Span::new().days(back)).unwrap();
                let body = json!({"class": class, "record_date": date.to_string(), "content": "r"});
                call(&app, "POST", &format!("/v1/subjects/{}/records", members[m]), Some(&app.key), Some(&body)).await;
            }
            Op::Delete(m) => {
                call(&app, "DELETE", &format!("/v1/subjects/{}", members[m]), Some(&app.key), None).await;
            }
            Op::Run => {
                app.engine.run_jobs(now, "props", &|| now).await.unwrap();
                let before = counts(&app).await;
                let again = app.engine.run_jobs(now, "props", &|| now).await.unwrap();
                assert_eq!(again, JobReport { ran: true, ..JobReport::default() }, "a second run did something");
                assert_eq!(counts(&app).await, before, "a second run changed the store");
                check(&app, &members, &members[0], &activity).await;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn lifecycle_invariants_hold_over_random_histories(ops in proptest::collection::vec(op(), 1..24)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(history(ops));
    }
}

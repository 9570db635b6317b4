//! Rights requests end to end over HTTP, with a manual clock and a local
//! SMTP receiver: filing by the platform and by staff, the one-time code,
//! an agent's letter checked by staff, the queue and its deadlines per
//! jurisdiction, and each kind answered — access and export (checked
//! against the package's JSON schema), correction, deletion with records
//! kept under a hold, restriction enforced until lifted, objection to
//! marketing — and the refusals.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::kit::{Answer, call, operator_signup, sign_up};
use crate::lifecycle::app_with_mail;
use crate::peek::{Db, Peek, Val};
use crate::smtp_sink::SmtpSink;
use crate::support::TestApp;

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// An app with mail, an operator (a member with e-mail and phone) and a
/// privacy officer signed in.
struct Desk {
    app: TestApp,
    sink: SmtpSink,
    member: String,
    officer: String,
    officer_id: String,
    staff: crate::support::StaffMember,
}

async fn desk(name: &str) -> Desk {
    let sink = SmtpSink::start();
    let app = app_with_mail(name, &sink).await;
    let member = sign_up(&app, &app.key, &operator_signup("member@example.com", "+82 10 5555 0801")).await;
    let staff = app.enrol_staff("officer@example.com", "privacy_officer", None).await;
    let officer = app.login(&staff).await;
    Desk { app, sink, member, officer, officer_id: staff.id.clone(), staff }
}

async fn file(d: &Desk, token: &str, body: Value) -> Answer {
    call(&d.app, "POST", "/v1/requests", Some(token), Some(&body)).await
}

async fn step(d: &Desk, id: &str, what: &str, body: Option<Value>) -> Answer {
    call(&d.app, "POST", &format!("/v1/requests/{id}/{what}"), Some(&d.officer), body.as_ref()).await
}

async fn outcome(d: &Desk, id: &str) -> Value {
    call(&d.app, "GET", &format!("/v1/requests/{id}/outcome"), Some(&d.officer), None).await.expect(200).clone()
}

/// The code in the newest message to `to`.
fn code_in(sink: &SmtpSink, n: usize, to: &str) -> String {
    let got = sink.wait_for(n, Duration::from_secs(10));
    let message = got.iter().rev().find(|m| m.to == vec![to.to_owned()]).expect("a message to the member");
    let text = &message.data;
    let at =
        text.find("enter this code where you filed it: ").expect(text) + "enter this code where you filed it: ".len();
    text[at..at + 8].to_owned()
}

fn audit_operations(app: &TestApp, subject: &str) -> Vec<String> {
    Peek::of(app).column(
        Db::Data,
        "SELECT operation FROM audit WHERE subject_id = ?1 ORDER BY seq",
        &[Val::from(subject)],
    )
}

/// Checks `value` against the export's JSON schema (`docs/schemas/
/// export.schema.json`): the subset of JSON Schema it uses (type, required,
/// properties, additionalProperties false, items, enum, const).
pub(crate) fn check_schema(schema: &Value, value: &Value, path: &str) {
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    check_node(schema, value, path, &defs);
}

fn check_node(node: &Value, value: &Value, path: &str, defs: &Value) {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return check_node(&defs[name], value, path, defs);
    }
    if let Some(types) = node.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        assert!(ok, "{path}: {value} is not of type {types:?}");
    }
    if let Some(c) = node.get("const") {
        assert_eq!(value, c, "{path}");
    }
    if let Some(e) = node.get("enum").and_then(Value::as_array) {
        assert!(e.contains(value), "{path}: {value} not in {e:?}");
    }
    if let (Some(obj), Some(props)) = (value.as_object(), node.get("properties").and_then(Value::as_object)) {
        for req in node.get("required").and_then(Value::as_array).into_iter().flatten() {
            let req = req.as_str().unwrap();
            assert!(obj.contains_key(req), "{path}: missing {req}");
        }
        for (k, v) in obj {
            match props.get(k) {
                Some(sub) => check_node(sub, v, &format!("{path}.{k}"), defs),
                None => assert!(
                    node.get("additionalProperties") != Some(&Value::Bool(false)),
                    "{path}: {k} is not in the schema"
                ),
            }
        }
    }
    if let (Some(items), Some(node_items)) = (value.as_array(), node.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check_node(node_items, v, &format!("{path}[{i}]"), defs);
        }
    }
}

#[tokio::test]
async fn access_by_code_then_package_in_json_and_html() {
    let mut d = desk("requests-access").await;
    let app = &d.app;
    // A payment record and a marketing consent, so the package has both.
    let record =
        json!({"class": "payment_supply_records", "record_date": "2024-05-20", "content": "invoice 42: 9,900 KRW"});
    call(app, "POST", &format!("/v1/subjects/{}/records", d.member), Some(&app.key), Some(&record)).await.expect(201);
    let consent =
        json!({"purpose": "marketing", "granted": true, "channel": "web_page", "notice_text": "We may send offers."});
    call(app, "POST", &format!("/v1/subjects/{}/consents", d.member), Some(&app.key), Some(&consent)).await.expect(201);
    // A visit record whose three months end on 2024-06-05: gone from the
    // package answered on that day, swept or not.
    let visit = json!({"class": "service_visitation_records", "record_date": "2024-03-05", "content": "visit from 198.51.100.4"});
    call(app, "POST", &format!("/v1/subjects/{}/records", d.member), Some(&app.key), Some(&visit)).await.expect(201);

    // The platform files it for the member, who gets a code by e-mail.
    let filed = file(
        &d,
        &app.key,
        json!({"kind": "access", "channel": "web_page", "subject": d.member, "verification": "code"}),
    )
    .await;
    let filed = filed.expect(201);
    assert_eq!(filed["code_sent"], json!(true));
    let id = filed["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(filed["request"]["status"], json!("received"));
    assert_eq!(filed["request"]["jurisdiction"], json!("kr"), "the policy's own");
    assert_eq!(filed["request"]["answer_by"], json!("2024-06-11"), "10 days in Korea");
    let code = code_in(&d.sink, 1, "member@example.com");
    // Nothing of the code is stored in plaintext.
    let outbox: String = Peek::of(app).one(Db::Data, "SELECT body FROM outbox WHERE kind = 'request_code'", &[]);
    assert!(!outbox.contains(&code), "the queued code is sealed");

    // Not fulfilled before it is verified.
    step(&d, &id, "fulfil", None).await.problem(409, "conflict");
    // A wrong code counts; the right one verifies (no credential needed).
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    call(app, "POST", &format!("/v1/requests/{id}/code"), None, Some(&json!({"code": wrong})))
        .await
        .problem(422, "invalid")
        .field("code", "not_allowed");
    let verified = call(app, "POST", &format!("/v1/requests/{id}/code"), None, Some(&json!({"code": code}))).await;
    assert_eq!(verified.expect(200)["verified_by"], json!("code"));
    call(app, "POST", &format!("/v1/requests/{id}/code"), None, Some(&json!({"code": code})))
        .await
        .problem(409, "conflict");

    // The queue shows it; the officer takes it and answers.
    let queue = call(app, "GET", "/v1/requests?status=verified", Some(&d.officer), None).await;
    let queue = queue.expect(200).as_array().unwrap().clone();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["days_left"], json!(10));
    let assigned = step(&d, &id, "assign", Some(json!({}))).await;
    assert_eq!(assigned.expect(200)["assigned_to"], json!(d.officer_id));
    app.clock.set(at("2024-06-05T00:00:00Z"));
    d.officer = app.login(&d.staff).await;
    let done = step(&d, &id, "fulfil", None).await;
    assert_eq!(done.expect(200)["status"], json!("fulfilled"));
    step(&d, &id, "fulfil", None).await.problem(409, "conflict");

    let answer = outcome(&d, &id).await;
    let package = &answer["package"];
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string("../../docs/schemas/export.schema.json").unwrap()).unwrap();
    check_schema(&schema, package, "package");
    let items: Vec<(&str, Option<&str>)> = package["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["item"].as_str().unwrap(), i["value"].as_str()))
        .collect();
    assert!(items.contains(&("email", Some("member@example.com"))), "{items:?}");
    assert!(items.contains(&("password", None)), "a password is listed, never disclosed: {items:?}");
    let email = package["items"].as_array().unwrap().iter().find(|i| i["item"] == "email").unwrap();
    assert!(email["purposes"].as_array().unwrap().contains(&json!("member_management")));
    assert_eq!(email["source"], json!("direct_entry"));
    assert!(email["retention"].as_str().unwrap().contains("account is deleted"), "{email}");
    // The retention as dates for this member: moved aside after a year
    // without activity (no notice sent yet), destroyed three years later.
    assert_eq!(package["subject"]["last_activity_at"], json!("2024-06-01T00:00:00Z"));
    assert_eq!(package["subject"]["dormant_on"], json!("2025-06-01"));
    assert_eq!(email["destroyed_on"], json!("2028-06-01"));
    assert_eq!(package["records"].as_array().unwrap().len(), 1, "the visit record's hold is over: {package}");
    assert_eq!(package["records"][0]["content"], json!("invoice 42: 9,900 KRW"));
    assert_eq!(package["records"][0]["kept_until"], json!("2029-05-19"), "5 years from its date");
    assert_eq!(package["consents"][0]["purpose"], json!("marketing"));
    // The code went out through the relay, a processor of the policy: the
    // member's address was handed over, and the package says so.
    let transfers = package["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 1, "{package}");
    assert_eq!(transfers[0]["processor"], json!("aws"));
    assert_eq!(transfers[0]["items"], json!(["email"]));
    assert_eq!(transfers[0]["purpose"], json!("delivering the request_code by e-mail"));

    let html = call(app, "GET", &format!("/v1/requests/{id}/outcome?format=html"), Some(&d.officer), None).await;
    assert_eq!(html.status.as_u16(), 200);
    assert!(html.content_type().starts_with("text/html"));
    assert!(html.text.contains("member@example.com") && html.text.contains("invoice 42"), "{}", html.text);

    // The member heard back; every step is on the audit log.
    let ops = audit_operations(app, &d.member);
    for op in ["request_file", "request_code_wrong", "request_verify", "request_assign", "request_fulfil", "export"] {
        assert!(ops.iter().any(|o| o == op), "{op} missing from {ops:?}");
    }
    app.engine.run_jobs(at("2024-06-05T00:00:00Z"), "tests", &|| at("2024-06-05T00:00:00Z")).await.unwrap();
    let got = d.sink.wait_for(2, Duration::from_secs(10));
    assert!(got.iter().any(|m| m.data.contains("was fulfilled")), "the closing notice");
}

#[tokio::test]
async fn an_agent_asks_for_deletion_and_records_under_a_hold_stay() {
    let d = desk("requests-agent-deletion").await;
    let app = &d.app;
    let record = json!({"class": "payment_supply_records", "record_date": "2024-05-20", "content": "invoice 7"});
    call(app, "POST", &format!("/v1/subjects/{}/records", d.member), Some(&app.key), Some(&record)).await.expect(201);
    let letter = base64::engine::general_purpose::STANDARD.encode(b"I authorise Kim Agent to act for me.");

    // Refused: an agent without a letter; an agent verified by code.
    let mut body = json!({
        "kind": "deletion", "channel": "writing", "subject": d.member, "verification": "staff",
        "agent": {"name": "Kim Agent", "contact": "agent@example.net", "letter": "", "letter_type": "text/plain"},
        "received_on": "2024-05-29"
    });
    file(&d, &d.officer, body.clone()).await.problem(422, "invalid").field("agent.letter", "missing_required");
    body["agent"]["letter"] = json!(letter);
    let mut by_code = body.clone();
    by_code["verification"] = json!("code");
    file(&d, &d.officer, by_code).await.problem(422, "invalid").field("verification", "not_allowed");

    // A letter that arrived three days ago, logged by the officer.
    let filed = file(&d, &d.officer, body).await;
    let filed = filed.expect(201);
    let id = filed["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(filed["request"]["requester"], json!("agent"));
    assert_eq!(filed["request"]["answer_by"], json!("2024-06-08"), "counted from the day it arrived");
    let sha = filed["request"]["letter_sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    step(&d, &id, "fulfil", None).await.problem(409, "conflict");

    // The officer checks the letter; the member is told.
    let verified = step(&d, &id, "verify", Some(json!({}))).await;
    assert_eq!(verified.expect(200)["verified_by"], json!("staff"));
    app.engine.run_jobs(at("2024-06-01T00:00:00Z"), "tests", &|| at("2024-06-01T00:00:00Z")).await.unwrap();
    let got = d.sink.wait_for(1, Duration::from_secs(10));
    assert!(got[0].data.contains("An agent holding your letter of attorney"), "{}", got[0].data);

    let detail = call(app, "GET", &format!("/v1/requests/{id}"), Some(&d.officer), None).await;
    let detail = detail.expect(200);
    assert_eq!(detail["asked"]["agent_name"], json!("Kim Agent"));
    let steps: Vec<&str> = detail["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, vec!["file", "verify"]);

    step(&d, &id, "fulfil", None).await.expect(200);
    let answer = outcome(&d, &id).await;
    assert_eq!(answer["kept"][0]["class"], json!("payment_supply_records"));
    assert_eq!(answer["kept"][0]["until"], json!("2029-05-20"));
    assert_eq!(answer["kept"][0]["law"], json!("ecommerce_act"));
    // The member is gone; the request stays on record with its answer.
    let read =
        call(app, "GET", &format!("/v1/subjects/{}?purpose=member_management", d.member), Some(&app.key), None).await;
    read.problem(404, "not_found");
    let letter_stored: Vec<u8> =
        Peek::of(app).one(Db::Data, "SELECT letter FROM requests WHERE id = ?1", &[Val::from(&id)]);
    assert!(!String::from_utf8_lossy(&letter_stored).contains("authorise"), "the letter is sealed");
}

#[tokio::test]
async fn restriction_is_enforced_until_lifted() {
    let d = desk("requests-restriction").await;
    let app = &d.app;
    let read = |purpose: &'static str| {
        let path = format!("/v1/subjects/{}?purpose={purpose}", d.member);
        async move { call(app, "GET", &path, Some(&app.key), None).await }
    };
    read("member_management").await.expect(200);
    let filed = file(
        &d,
        &app.key,
        json!({"kind": "restriction", "channel": "web_page", "subject": d.member, "verification": "platform_session",
               "purposes": ["member_management"]}),
    )
    .await;
    let filed = filed.expect(201);
    assert_eq!(filed["request"]["status"], json!("verified"), "the platform vouched for its session");
    let id = filed["request"]["id"].as_str().unwrap().to_owned();
    // Filed, not yet fulfilled: reads go on.
    read("member_management").await.expect(200);
    step(&d, &id, "fulfil", None).await.expect(200);
    let answer = outcome(&d, &id).await;
    assert_eq!(answer["restricted"], json!(["member_management"]));
    assert_eq!(answer["limited_services"][0]["purpose"], json!("member_management"));
    read("member_management").await.problem(403, "processing_restricted");
    read("service_fees").await.expect(200);
    // Lifted: reads go on again.
    let lifted = step(&d, &id, "lift", None).await;
    assert_eq!(lifted.expect(200)["lifted"], json!(1));
    read("member_management").await.expect(200);
    step(&d, &id, "lift", None).await.problem(409, "conflict");
}

#[tokio::test]
async fn correction_changes_the_item_and_keeps_no_old_or_new_value_on_the_request() {
    let d = desk("requests-correction").await;
    let app = &d.app;
    let filed = file(
        &d,
        &app.key,
        json!({"kind": "correction", "channel": "web_page", "subject": d.member, "verification": "platform_session",
               "corrections": {"name": "Hong Gil-dong"}}),
    )
    .await;
    let id = filed.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    step(&d, &id, "fulfil", None).await.expect(200);
    let read =
        call(app, "GET", &format!("/v1/subjects/{}?purpose=member_management", d.member), Some(&app.key), None).await;
    assert_eq!(read.expect(200)["items"]["name"], json!("Hong Gil-dong"));
    let detail = call(app, "GET", &format!("/v1/requests/{id}"), Some(&d.officer), None).await;
    assert_eq!(detail.expect(200)["asked"]["corrections"], json!({"name": ""}), "applied: the value is not kept here");

    // A correction denied, and one still open when the account is deleted:
    // neither keeps the new value (it is the member's data).
    let correction = |value: &str| {
        json!({"kind": "correction", "channel": "web_page", "subject": d.member, "verification": "platform_session",
               "corrections": {"name": value}})
    };
    let denied =
        file(&d, &app.key, correction("Denied Value")).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    step(&d, &denied, "deny", Some(json!({"reason": "could not verify the new name"}))).await.expect(200);
    let detail = call(app, "GET", &format!("/v1/requests/{denied}"), Some(&d.officer), None).await;
    assert_eq!(detail.expect(200)["asked"]["corrections"], json!({"name": ""}), "denied: the value is dropped");
    let open =
        file(&d, &app.key, correction("Pending Value")).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "DELETE", &format!("/v1/subjects/{}", d.member), Some(&app.key), None).await.expect(200);
    let detail = call(app, "GET", &format!("/v1/requests/{open}"), Some(&d.officer), None).await;
    let detail = detail.expect(200).clone();
    assert_eq!(detail["asked"]["corrections"], json!({"name": ""}), "erased: the value is dropped");
    let steps: Vec<&str> = detail["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(steps.contains(&"values_dropped"), "the timeline says why: {steps:?}");
}

#[tokio::test]
async fn objection_to_marketing_withdraws_the_consent() {
    let d = desk("requests-objection").await;
    let app = &d.app;
    let consent = json!({"purpose": "marketing", "granted": true, "channel": "web_page", "notice_text": "Offers."});
    call(app, "POST", &format!("/v1/subjects/{}/consents", d.member), Some(&app.key), Some(&consent)).await.expect(201);
    let filed = file(
        &d,
        &app.key,
        json!({"kind": "object_marketing", "channel": "email", "subject": d.member, "verification": "platform_session",
               "purposes": ["marketing"]}),
    )
    .await;
    let id = filed.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    step(&d, &id, "fulfil", None).await.expect(200);
    let ledger = call(app, "GET", &format!("/v1/subjects/{}/consents", d.member), Some(&app.key), None).await;
    let current = ledger.expect(200)["current"].as_array().unwrap().clone();
    let marketing = current.iter().find(|c| c["purpose"] == "marketing").unwrap();
    assert_eq!(marketing["state"], json!("withdrawn"));
}

#[tokio::test]
async fn deadlines_follow_the_jurisdiction_and_extensions_are_allowed_once_where_stated() {
    let d = desk("requests-deadlines").await;
    let app = &d.app;
    app.clock.set(at("2024-01-31T10:00:00Z"));
    let eu = file(
        &d,
        &app.key,
        json!({"kind": "export", "channel": "web_page", "jurisdiction": "eea_uk_ch", "subject": d.member,
               "verification": "platform_session"}),
    )
    .await;
    let eu = eu.expect(201)["request"].clone();
    assert_eq!(eu["answer_by"], json!("2024-02-29"), "one calendar month, leap year");
    let eu_id = eu["id"].as_str().unwrap().to_owned();
    let extended = step(&d, &eu_id, "extend", Some(json!({"reason": "many records across services"}))).await;
    assert_eq!(extended.expect(200)["extended_by"], json!("2024-04-29"), "two more months from the first deadline");
    step(&d, &eu_id, "extend", Some(json!({"reason": "again"}))).await.problem(409, "conflict");
    step(&d, &eu_id, "extend", Some(json!({"reason": ""}))).await.problem(422, "invalid");

    let ca = file(
        &d,
        &app.key,
        json!({"kind": "know", "channel": "web_page", "jurisdiction": "us_ca", "subject": d.member,
               "verification": "platform_session"}),
    )
    .await;
    let ca = ca.expect(201)["request"].clone();
    assert_eq!(ca["acknowledge_by"], json!("2024-02-14"), "10 business days");
    assert_eq!(ca["answer_by"], json!("2024-03-16"), "45 days");

    let kr = file(
        &d,
        &app.key,
        json!({"kind": "access", "channel": "web_page", "subject": d.member, "verification": "platform_session"}),
    )
    .await;
    let kr_id = kr.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    step(&d, &kr_id, "extend", Some(json!({"reason": "busy"}))).await.problem(409, "conflict");
    // Korea has no right to know.
    file(
        &d,
        &app.key,
        json!({"kind": "know", "channel": "web_page", "subject": d.member, "verification": "platform_session"}),
    )
    .await
    .problem(422, "invalid")
    .field("kind", "not_allowed");

    // Past Korea's ten days, only that request is overdue.
    app.clock.set(at("2024-02-11T00:00:00Z"));
    let overdue = call(app, "GET", "/v1/requests?overdue=true", Some(&d.officer), None).await;
    let overdue: Vec<String> =
        overdue.expect(200).as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(overdue, vec![kr_id.clone()]);
    let all = call(app, "GET", "/v1/requests", Some(&d.officer), None).await;
    let all = all.expect(200).as_array().unwrap().clone();
    assert_eq!(all[0]["id"], json!(kr_id), "the queue runs by deadline");
    assert_eq!(all[0]["days_left"], json!(-1));

    // The know answer lists categories, sources, purposes and recipients.
    let ca_id = ca["id"].as_str().unwrap();
    step(&d, ca_id, "fulfil", None).await.expect(200);
    let know = outcome(&d, ca_id).await;
    assert!(!know["know"]["categories"].as_array().unwrap().is_empty(), "{know}");
    assert_eq!(know["know"]["sources"], json!(["direct_entry"]), "{know}");
    assert!(know["know"]["purposes"].as_array().unwrap().contains(&json!("member_management")), "{know}");
    assert_eq!(know["know"]["sold"], json!(false));
    assert!(know["know"]["recipients"].as_array().unwrap().iter().any(|r| r["id"] == "aws"));
}

#[tokio::test]
async fn refusals_change_nothing_and_only_the_queue_s_staff_work_it() {
    let d = desk("requests-refusals").await;
    let app = &d.app;
    let before = crate::kit::counts(app).await;
    file(&d, &app.key, json!({"kind": "gossip", "channel": "web_page", "subject": d.member, "verification": "code"}))
        .await
        .problem(422, "invalid")
        .field("kind", "not_allowed");
    file(&d, &app.key, json!({"kind": "access", "channel": "pigeon", "subject": d.member, "verification": "code"}))
        .await
        .problem(422, "invalid")
        .field("channel", "not_allowed");
    file(
        &d,
        &app.key,
        json!({"kind": "access", "channel": "web_page", "subject": d.member, "verification": "telepathy"}),
    )
    .await
    .problem(400, "bad_request");
    file(
        &d,
        &app.key,
        json!({"kind": "access", "channel": "web_page", "subject": d.member, "verification": "code", "extra": 1}),
    )
    .await
    .problem(400, "bad_request");
    file(
        &d,
        &d.officer,
        json!({"kind": "access", "channel": "web_page", "subject": d.member, "verification": "platform_session"}),
    )
    .await
    .problem(422, "invalid")
    .field("verification", "not_allowed");
    file(
        &d,
        &app.key,
        json!({"kind": "access", "channel": "web_page", "subject": "sub_missing", "verification": "code"}),
    )
    .await
    .problem(404, "not_found");
    // Only the refusal about a missing member is audited (it is asked
    // inside the job); nothing else changed.
    assert_eq!(crate::kit::counts(app).await, before.plus(&[("audit", 1)]), "nothing filed");

    let filed = file(
        &d,
        &app.key,
        json!({"kind": "access", "channel": "web_page", "subject": d.member, "verification": "code"}),
    )
    .await;
    let id = filed.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    // The platform's key files but does not work the queue; nor does a
    // service's head admin.
    call(app, "GET", "/v1/requests", Some(&app.key), None).await.problem(403, "forbidden");
    let deletion = file(
        &d,
        &app.key,
        json!({"kind": "deletion", "channel": "web_page", "subject": d.member, "verification": "staff"}),
    )
    .await;
    let deletion = deletion.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "POST", &format!("/v1/requests/{deletion}/fulfil"), Some(&app.key), None).await.problem(403, "forbidden");
    let support = app.enrol_staff("support@example.com", "support_agent", None).await;
    let support = app.login(&support).await;
    call(app, "GET", &format!("/v1/requests/{id}"), Some(&support), None).await.problem(403, "forbidden");
    // Five wrong codes kill the code.
    for _ in 0..5 {
        call(app, "POST", &format!("/v1/requests/{id}/code"), None, Some(&json!({"code": "99999999"}))).await;
    }
    let code = code_in(&d.sink, 1, "member@example.com");
    call(app, "POST", &format!("/v1/requests/{id}/code"), None, Some(&json!({"code": code})))
        .await
        .problem(409, "conflict");
    // Denied with a reason the officer reads back.
    step(&d, &id, "deny", Some(json!({"reason": "identity could not be verified"}))).await.expect(200);
    assert_eq!(outcome(&d, &id).await, json!({"denied": true, "reason": "identity could not be verified"}));
    step(&d, &id, "verify", Some(json!({}))).await.problem(409, "conflict");
}

#[tokio::test]
async fn the_platform_fetches_the_export_it_filed_for_its_signed_in_member() {
    let d = desk("requests-self-service").await;
    let app = &d.app;
    let body =
        json!({"kind": "export", "channel": "web_page", "subject": d.member, "verification": "platform_session"});
    let id = file(&d, &app.key, body).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    // Another key (even the platform's other one) neither answers nor reads it.
    let purposes = ["member_management"];
    let other = app.key_for(None, &purposes).await;
    call(app, "POST", &format!("/v1/requests/{id}/fulfil"), Some(&other), None).await.problem(403, "forbidden");
    let done = call(app, "POST", &format!("/v1/requests/{id}/fulfil"), Some(&app.key), None).await;
    assert_eq!(done.expect(200)["status"], json!("fulfilled"));
    call(app, "GET", &format!("/v1/requests/{id}/outcome"), Some(&other), None).await.problem(403, "forbidden");
    let answer = call(app, "GET", &format!("/v1/requests/{id}/outcome"), Some(&app.key), None).await;
    let items = answer.expect(200)["package"]["items"].as_array().unwrap().clone();
    assert!(items.iter().any(|i| i["value"] == "member@example.com"));
    // Not a kind that needs judgment: a key files a deletion, staff answer it.
    let body =
        json!({"kind": "deletion", "channel": "web_page", "subject": d.member, "verification": "platform_session"});
    let deletion = file(&d, &app.key, body).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "POST", &format!("/v1/requests/{deletion}/fulfil"), Some(&app.key), None).await.problem(403, "forbidden");
    let ops = audit_operations(app, &d.member);
    assert!(ops.iter().any(|o| o == "export"), "{ops:?}");

    // A dormant member's details never go to a key, through a request
    // either: staff with the dormant-lookup privilege answer it.
    for when in ["2025-05-02T00:00:00Z", "2025-06-01T00:00:00Z"] {
        app.clock.set(at(when));
        app.engine.run_jobs(at(when), "tests", &|| at(when)).await.unwrap();
    }
    let path = format!("/v1/subjects/{}?purpose=member_management", d.member);
    assert_eq!(call(app, "GET", &path, Some(&app.key), None).await.expect(200)["status"], json!("dormant"));
    let body =
        json!({"kind": "export", "channel": "web_page", "subject": d.member, "verification": "platform_session"});
    let id = file(&d, &app.key, body).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "POST", &format!("/v1/requests/{id}/fulfil"), Some(&app.key), None).await.problem(403, "forbidden");
}

/// Every kind through every channel, by the member and by an agent: filed,
/// verified, fulfilled, answered — and the answer says what was done.
#[tokio::test]
async fn every_kind_through_every_channel_by_member_and_agent() {
    let d = desk("requests-every-kind").await;
    let app = &d.app;
    let service = crate::kit::new_service(app, 41).await;
    let channels = ["web_page", "email", "fax", "telephone", "writing", "other_means"];
    let kinds = [
        ("access", "package"),
        ("export", "package"),
        ("correction", "corrected"),
        ("deletion", "kept"),
        ("restriction", "restricted"),
        ("object_marketing", "withdrawn"),
        ("opt_out_sale", "opted_out"),
        ("know", "know"),
    ];
    let letter = base64::engine::general_purpose::STANDARD.encode(b"letter of attorney");
    let mut n = 0;
    for (kind, answer_key) in kinds {
        for agent in [false, true] {
            let channel = channels[n % channels.len()];
            n += 1;
            let member = sign_up(app, &app.key, &crate::kit::member_signup(&service)).await;
            let mut body = json!({"kind": kind, "channel": channel, "subject": member,
                                  "verification": if agent { "staff" } else { "platform_session" }});
            if kind == "know" || kind == "opt_out_sale" {
                body["jurisdiction"] = json!("us_ca");
            }
            if kind == "correction" {
                body["corrections"] = json!({"device_info": "Pixel 9, Android 15"});
            }
            if agent {
                body["agent"] = json!({"name": "Lee Agent", "contact": "+82 2 555 0100", "letter": letter, "letter_type": "text/plain"});
            }
            let case = format!("{kind} via {channel} by {}", if agent { "an agent" } else { "the member" });
            let filed = file(&d, &d.officer, body.clone()).await;
            // Staff may not vouch for the platform's session: the member's
            // own requests come from the platform's key.
            let filed = if agent { filed } else { file(&d, &app.key, body).await };
            let request = filed.expect(201)["request"].clone();
            assert_eq!(request["channel"], json!(channel), "{case}");
            assert_eq!(request["requester"], json!(if agent { "agent" } else { "member" }), "{case}");
            let id = request["id"].as_str().unwrap().to_owned();
            if agent {
                step(&d, &id, "verify", Some(json!({}))).await.expect(200);
            }
            let done = step(&d, &id, "fulfil", None).await;
            assert_eq!(done.expect(200)["status"], json!("fulfilled"), "{case}");
            let answer = outcome(&d, &id).await;
            assert!(answer.get(answer_key).is_some(), "{case}: {answer}");
            let steps = call(app, "GET", &format!("/v1/requests/{id}"), Some(&d.officer), None).await;
            let steps: Vec<String> = steps.expect(200)["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["step"].as_str().unwrap().to_owned())
                .collect();
            let expected: Vec<&str> = if agent { vec!["file", "verify", "fulfil"] } else { vec!["file", "fulfil"] };
            assert_eq!(steps, expected, "{case}");
        }
    }
}

/// Complaints and inquiries share the queue: their items are collected
/// through the policy's collection point, sealed, handled by staff, and
/// destroyed by the jobs when the record class they are kept as says.
#[tokio::test]
async fn complaints_and_inquiries_are_collected_worked_and_destroyed_after_three_years() {
    let d = desk("requests-complaints").await;
    let app = &d.app;
    let items = json!({"name": "Hong Gildong", "company_name": "Gildong Films", "email": "member@example.com",
                       "inquiry_body": "My invoice 42 was charged twice."});
    let complaint = json!({"kind": "complaint", "channel": "email", "subject": d.member,
                           "collection_point": "business_operator_service_inquiry", "items": items,
                           "keep_as": "complaint_dispute_records"});
    // Refused: an item the point does not take, no record class, a record
    // class the policy lacks, a rights request's fields.
    let mut wrong = complaint.clone();
    wrong["items"]["mobile_phone"] = json!("010-5555-0801");
    file(&d, &app.key, wrong).await.problem(422, "invalid").field("items.mobile_phone", "not_collected_here");
    let mut wrong = complaint.clone();
    wrong.as_object_mut().unwrap().remove("keep_as");
    file(&d, &app.key, wrong).await.problem(400, "bad_request");
    let mut wrong = complaint.clone();
    wrong["keep_as"] = json!("gossip_records");
    file(&d, &app.key, wrong).await.problem(422, "invalid").field("keep_as", "not_allowed");
    let mut wrong = complaint.clone();
    wrong["verification"] = json!("code");
    file(&d, &app.key, wrong).await.problem(400, "bad_request");

    let filed = file(&d, &app.key, complaint).await;
    let filed = filed.expect(201)["request"].clone();
    assert_eq!(filed["status"], json!("verified"), "nothing to verify");
    assert_eq!(filed["destroy_on"], json!("2027-06-01"), "3 years from the day received");
    let id = filed["id"].as_str().unwrap().to_owned();
    // An inquiry from someone who is not a member, logged by the officer.
    let inquiry = json!({"kind": "inquiry", "channel": "telephone",
                         "collection_point": "business_operator_service_inquiry",
                         "items": {"name": "Kim Visitor", "company_name": "Visitor Co", "email": "visitor@example.org"},
                         "keep_as": "complaint_dispute_records"});
    let inquiry = file(&d, &d.officer, inquiry).await;
    let inquiry_id = inquiry.expect(201)["request"]["id"].as_str().unwrap().to_owned();

    let detail = call(app, "GET", &format!("/v1/requests/{id}"), Some(&d.officer), None).await;
    let detail = detail.expect(200);
    assert_eq!(detail["asked"]["items"]["inquiry_body"], json!("My invoice 42 was charged twice."));
    assert_eq!(detail["asked"]["kept_as"], json!("complaint_dispute_records"));
    step(&d, &id, "assign", Some(json!({}))).await.expect(200);
    step(&d, &id, "fulfil", None).await.expect(200);
    assert_eq!(outcome(&d, &id).await["handled"], json!(true));
    let peek = Peek::of(app);
    let details: Vec<u8> = peek.one(Db::Data, "SELECT details FROM requests WHERE id = ?1", &[Val::from(&id)]);
    assert!(!String::from_utf8_lossy(&details).contains("charged twice"), "sealed");

    // The day before: still there; on the day: destroyed with a certificate.
    let before = app.engine.run_jobs(at("2027-05-31T23:59:59Z"), "tests", &|| at("2027-05-31T23:59:59Z")).await;
    assert_eq!(before.unwrap().requests_destroyed, 0);
    let on = app.engine.run_jobs(at("2027-06-01T00:00:00Z"), "tests", &|| at("2027-06-01T00:00:00Z")).await;
    assert_eq!(on.unwrap().requests_destroyed, 2);
    for gone in [&id, &inquiry_id] {
        let n: i64 = peek.one(Db::Data, "SELECT count(*) FROM requests WHERE id = ?1", &[Val::from(gone)]);
        assert_eq!(n, 0, "{gone}");
        let steps: i64 =
            peek.one(Db::Data, "SELECT count(*) FROM request_steps WHERE request_id = ?1", &[Val::from(gone)]);
        assert_eq!(steps, 0, "{gone}");
    }
    let left: i64 = peek.one(Db::Keys, "SELECT count(*) FROM data_keys WHERE scope = 'request'", &[]);
    assert_eq!(left, 0, "their keys are destroyed");
    let sql = "SELECT outcome FROM audit WHERE operation = 'destroy' AND outcome LIKE 'destroyed: request %'";
    let certificates: Vec<String> = peek.column(Db::Data, sql, &[]);
    assert_eq!(certificates.len(), 2, "{certificates:?}");
}

/// A deletion request whose account is already gone (deleted meanwhile, or
/// a fulfilment interrupted after the erasure) still closes.
#[tokio::test]
async fn a_deletion_request_closes_when_the_account_is_already_gone() {
    let d = desk("requests-already-deleted").await;
    let app = &d.app;
    let body =
        json!({"kind": "deletion", "channel": "web_page", "subject": d.member, "verification": "platform_session"});
    let id = file(&d, &app.key, body).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "DELETE", &format!("/v1/subjects/{}", d.member), Some(&app.key), None).await.expect(200);
    let done = step(&d, &id, "fulfil", None).await;
    assert_eq!(done.expect(200)["status"], json!("fulfilled"));
    assert_eq!(outcome(&d, &id).await, json!({"already_deleted": true}));
}

/// The package of an access or export request is built from the member's
/// data when it is fetched and never stored: the request keeps a receipt,
/// the package can be fetched for 30 days, and not once the member is gone.
#[tokio::test]
async fn an_export_is_built_when_fetched_never_stored_and_goes_with_the_member() {
    let mut d = desk("requests-export-fetched").await;
    let app = &d.app;
    app.clock.set(at("2024-06-01T00:00:00Z"));
    let body =
        json!({"kind": "export", "channel": "web_page", "subject": d.member, "verification": "platform_session"});
    let id = file(&d, &app.key, body.clone()).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "POST", &format!("/v1/requests/{id}/fulfil"), Some(&app.key), None).await.expect(200);
    let stored: Vec<u8> = Peek::of(app).one(Db::Data, "SELECT outcome FROM requests WHERE id = ?1", &[Val::from(&id)]);
    assert!(stored.len() < 256, "a receipt, not a package: {} bytes", stored.len());

    // Fetched twice: each time as of the fetch, each time audited.
    let fetch = |when: &'static str| {
        let id = id.clone();
        async move {
            app.clock.set(at(when));
            call(app, "GET", &format!("/v1/requests/{id}/outcome"), Some(&app.key), None).await
        }
    };
    let first = fetch("2024-06-02T00:00:00Z").await;
    assert_eq!(first.expect(200)["package"]["generated_at"], json!("2024-06-02T00:00:00Z"));
    let record = json!({"class": "payment_supply_records", "record_date": "2024-06-02", "content": "invoice 77"});
    call(app, "POST", &format!("/v1/subjects/{}/records", d.member), Some(&app.key), Some(&record)).await.expect(201);
    let second = fetch("2024-06-30T23:59:59Z").await;
    let second = second.expect(200)["package"].clone();
    assert_eq!(second["records"][0]["content"], json!("invoice 77"), "what is held now: {second}");
    let exports = audit_operations(app, &d.member).iter().filter(|o| *o == "export").count();
    assert_eq!(exports, 2, "one audited read per fetch");

    // Thirty days after it was fulfilled: no longer.
    let late = fetch("2024-07-01T00:00:01Z").await;
    assert!(late.problem(409, "conflict").text.contains("30 days"), "{}", late.text);

    // A fresh request, fulfilled; then the member is deleted: nothing to fetch.
    let id = file(&d, &app.key, body).await.expect(201)["request"]["id"].as_str().unwrap().to_owned();
    call(app, "POST", &format!("/v1/requests/{id}/fulfil"), Some(&app.key), None).await.expect(200);
    call(app, "GET", &format!("/v1/requests/{id}/outcome"), Some(&app.key), None).await.expect(200);
    call(app, "DELETE", &format!("/v1/subjects/{}", d.member), Some(&app.key), None).await.expect(200);
    d.officer = app.login(&d.staff).await;
    for token in [&app.key, &d.officer] {
        let gone = call(app, "GET", &format!("/v1/requests/{id}/outcome"), Some(token), None).await;
        assert!(gone.problem(409, "conflict").text.contains("no longer held"), "{}", gone.text);
    }
}

//! `/v1/subjects/{id}/records` in-process: records kept under b.stage's
//! record classes and read back only for a purpose a class allows (its own
//! purposes, or `statutory_retention`). Bad records are refused precisely,
//! never repeat their content, and change nothing; adds and reads are
//! audited, and so is every refusal of the access decision (one
//! `denied: <code>` entry, nothing else).

use custos_server::config::BUNDLED_POLICY;
use serde_json::{Value, json};

use crate::kit::*;
use crate::support::{TestApp, start_time};

const CONTENT: &str = r#"{"order": "A-1029", "amount_krw": 9900, "card": "**** 4242"}"#;

fn records_path(subject: &str) -> String {
    format!("/v1/subjects/{subject}/records")
}

fn read_path(subject: &str, purpose: &str) -> String {
    format!("/v1/subjects/{subject}/records?purpose={purpose}")
}

fn record(class: &str, record_date: &str, content: &str) -> Value {
    json!({"class": class, "record_date": record_date, "content": content})
}

/// Adds a record that must be accepted; returns its id.
async fn add(app: &TestApp, token: &str, subject: &str, body: &Value) -> String {
    let answer = call(app, "POST", &records_path(subject), Some(token), Some(body)).await;
    answer.expect(201)["id"].as_str().unwrap().to_owned()
}

async fn operator(app: &TestApp) -> String {
    app.business_operator("boss@example.com", "+82 10 5555 0001").await
}

#[tokio::test]
async fn a_record_is_kept_and_read_back_for_a_purpose_its_class_allows() {
    let app = TestApp::new("records-add").await;
    let subject = operator(&app).await;
    let before = counts(&app).await;
    let body = record("payment_supply_records", "2024-05-31", CONTENT);
    let answer = call(&app, "POST", &records_path(&subject), Some(&app.key), Some(&body)).await;
    let created = answer.expect(201);
    assert_eq!(created.as_object().unwrap().len(), 1, "only the id: {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rec_"), "{id}");
    answer.never_mentions(&["A-1029", "4242"]);
    // The first record of a class and month makes the subject's key for
    // them; a record of the next month gets its own (a key is destroyed
    // when the last record it could hold expires).
    assert_eq!(counts(&app).await, before.plus(&[("records", 1), ("data_keys", 1), ("audit", 1)]));
    let second = add(&app, &app.key, &subject, &record("payment_supply_records", "2024-06-01", "second")).await;
    assert_eq!(counts(&app).await, before.plus(&[("records", 2), ("data_keys", 2), ("audit", 2)]));

    let kept = |id: &str, record_date: &str, content: &str| {
        json!({
            "id": id, "class": "payment_supply_records", "record_date": record_date,
            "created_at": "2024-06-01T00:00:00Z", "content": content
        })
    };
    // Made at the same instant, listed in the order they were kept.
    let expected_items = vec![kept(&id, "2024-05-31", CONTENT), kept(&second, "2024-06-01", "second")];
    for purpose in ["service_fees", "statutory_retention"] {
        let before = counts(&app).await;
        let answer = call(&app, "GET", &read_path(&subject, purpose), Some(&app.key), None).await;
        let page = answer.expect(200);
        assert_eq!(page["items"].as_array().unwrap(), &expected_items, "{purpose}");
        assert_eq!(page["next_cursor"], Value::Null);
        assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]), "a record read is audited");
    }
    // Purposes no class of these records allows read nothing of them.
    for purpose in ["member_management", "inquiries"] {
        let answer = call(&app, "GET", &read_path(&subject, purpose), Some(&app.key), None).await;
        assert_eq!(answer.expect(200), &json!({"items": []}), "{purpose}");
    }
    // Marketing is opt-in: without the subject's consent nothing is read.
    call(&app, "GET", &read_path(&subject, "marketing"), Some(&app.key), None).await.problem(403, "consent_required");
}

#[tokio::test]
async fn each_purpose_reads_only_its_classes() {
    let app = TestApp::new("records-classes").await;
    let subject = operator(&app).await;
    let mut subject_with_consent = operator_signup("fan.of.ads@example.com", "+82 10 2222 3333");
    subject_with_consent["consents"] = json!(["marketing"]);
    let consenting = sign_up(&app, &app.key, &subject_with_consent).await;
    for s in [&subject, &consenting] {
        for class in
            ["payment_supply_records", "tax_ledgers", "complaint_dispute_records", "labelling_advertising_records"]
        {
            add(&app, &app.key, s, &record(class, "2024-05-01", &format!("a {class} record"))).await;
        }
    }
    let classes = |answer: &Answer| {
        let mut classes: Vec<String> = answer.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["class"].as_str().unwrap().to_owned())
            .collect();
        classes.sort();
        classes
    };
    let cases: [(&str, &[&str]); 4] = [
        ("service_fees", &["payment_supply_records", "tax_ledgers"]),
        ("inquiries", &["complaint_dispute_records"]),
        ("member_management", &["complaint_dispute_records"]),
        (
            "statutory_retention",
            &["complaint_dispute_records", "labelling_advertising_records", "payment_supply_records", "tax_ledgers"],
        ),
    ];
    for (purpose, expected) in cases {
        let answer = call(&app, "GET", &read_path(&subject, purpose), Some(&app.key), None).await;
        assert_eq!(classes(&answer), expected, "{purpose}");
    }
    // `marketing` reads the advertising records of a subject who opted in.
    let answer = call(&app, "GET", &read_path(&consenting, "marketing"), Some(&app.key), None).await;
    assert_eq!(classes(&answer), ["labelling_advertising_records"]);
}

/// b.stage lets every purpose read some record class, so the refusal of a
/// purpose that reads none is shown with advertising records that
/// `marketing` may no longer read.
#[tokio::test]
async fn a_purpose_that_reads_no_class_is_refused() {
    let text = BUNDLED_POLICY.replace(r#"purposes = ["marketing"]"#, r#"purposes = ["service_fees"]"#);
    assert_ne!(text, BUNDLED_POLICY);
    let app = app_with_policy("records-no-class", &text).await;
    let subject = operator(&app).await;
    add(&app, &app.key, &subject, &record("labelling_advertising_records", "2024-05-01", "banner campaign 7")).await;
    let before = counts(&app).await;
    let answer = call(&app, "GET", &read_path(&subject, "marketing"), Some(&app.key), None).await;
    answer.problem(422, "invalid").only_fields(&[("purpose", "not_allowed")]).never_mentions(&["banner campaign"]);
    assert_eq!(answer.message("purpose"), r#"no record class may be read for the purpose "marketing""#);
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn a_marketing_read_of_records_needs_consent() {
    let app = TestApp::new("records-consent").await;
    let subject = operator(&app).await;
    add(&app, &app.key, &subject, &record("labelling_advertising_records", "2024-05-01", "banner campaign 7")).await;
    let before = counts(&app).await;
    call(&app, "GET", &read_path(&subject, "marketing"), Some(&app.key), None)
        .await
        .problem(403, "consent_required")
        .never_mentions(&["banner campaign"]);
    assert_eq!(counts(&app).await, before.plus(&[("audit", 1)]), "a denied read is audited");
}

#[tokio::test]
async fn refused_records_are_precise_and_change_nothing() {
    let app = TestApp::new("records-refused").await;
    let subject = operator(&app).await;
    let too_long = "x".repeat(64 * 1024 + 1);
    // (case, body, errors)
    let cases: [(&str, Value, Errors); 10] = [
        ("unknown class", record("loyalty_points", "2024-05-31", CONTENT), &[("class", "unknown_item")]),
        ("tomorrow", record("tax_ledgers", "2024-06-02", CONTENT), &[("record_date", "future_date")]),
        ("month 13", record("tax_ledgers", "2024-13-01", CONTENT), &[("record_date", "invalid_format")]),
        ("30 February", record("tax_ledgers", "2024-02-30", CONTENT), &[("record_date", "invalid_format")]),
        ("day first", record("tax_ledgers", "31/05/2024", CONTENT), &[("record_date", "invalid_format")]),
        ("no date", record("tax_ledgers", "", CONTENT), &[("record_date", "invalid_format")]),
        ("empty content", record("tax_ledgers", "2024-05-31", ""), &[("content", "empty")]),
        ("blank content", record("tax_ledgers", "2024-05-31", " \n\t "), &[("content", "empty")]),
        ("content over 64 KiB", record("tax_ledgers", "2024-05-31", &too_long), &[("content", "too_long")]),
        (
            "everything wrong",
            record("loyalty_points", "2099-01-01", ""),
            &[("class", "unknown_item"), ("record_date", "future_date"), ("content", "empty")],
        ),
    ];
    let before = counts(&app).await;
    for (case, body, errors) in cases {
        let answer = call(&app, "POST", &records_path(&subject), Some(&app.key), Some(&body)).await;
        assert_eq!(answer.status, 422, "{case}: {}", answer.text);
        answer.problem(422, "invalid").only_fields(errors).never_mentions(&["A-1029", "4242", "xxxxxxxx"]);
        assert_eq!(counts(&app).await, before, "{case} changed something");
    }
    let answer =
        call(&app, "POST", &records_path(&subject), Some(&app.key), Some(&record("tax_ledgers", "2024-06-02", "x")))
            .await;
    assert_eq!(answer.message("record_date"), "the record date is in the future");

    // Malformed requests and a missing subject.
    let mut extra = record("tax_ledgers", "2024-05-31", CONTENT);
    extra["subject"] = json!(subject);
    let mut no_content = record("tax_ledgers", "2024-05-31", CONTENT);
    no_content.as_object_mut().unwrap().remove("content");
    let missing = "sub_00000000000000000000000000000000";
    // (case, subject, body, status, code, audited: the denial's code when
    // the access decision refuses, None for a malformed request)
    type Case<'a> = (&'a str, &'a str, Value, u16, &'a str, Option<&'a str>);
    let other: [Case<'_>; 4] = [
        ("unknown field", &subject, extra, 400, "bad_request", None),
        ("missing content", &subject, no_content, 400, "bad_request", None),
        (
            "content not a string",
            &subject,
            json!({"class": "tax_ledgers", "record_date": "2024-05-31", "content": {"a": 1}}),
            400,
            "bad_request",
            None,
        ),
        ("no such subject", missing, record("tax_ledgers", "2024-05-31", CONTENT), 404, "not_found", Some("not_found")),
    ];
    let mut before = before;
    for (case, subject, body, status, code, audited) in other {
        let answer = call(&app, "POST", &records_path(subject), Some(&app.key), Some(&body)).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code).never_mentions(&["A-1029", "4242"]);
        match audited {
            Some(denied) => before = assert_denial_audited(&app, &before, "record_add", denied, case).await,
            None => assert_eq!(counts(&app).await, before, "{case} changed something"),
        }
    }
    let answer = call(
        &app,
        "POST",
        &records_path(&subject),
        Some(&app.key),
        Some(&json!({"class": "tax_ledgers", "record_date": "2024-05-31", "content": "x", "amount": 1})),
    )
    .await;
    answer.only_fields(&[("amount", "unknown_field")]);
}

#[tokio::test]
async fn a_record_date_must_be_a_plain_date() {
    let app = TestApp::new("records-date-shape").await;
    let subject = operator(&app).await;
    let before = counts(&app).await;
    let mut accepted = Vec::new();
    for date in ["2024-05-31T00:00:00Z", "2024-05-31T09:30", "2024-05-31 09:30:00", "20240531", "+002024-05-31"] {
        let answer =
            call(&app, "POST", &records_path(&subject), Some(&app.key), Some(&record("tax_ledgers", date, CONTENT)))
                .await;
        if answer.status != 422 {
            accepted.push(date);
            continue;
        }
        answer.problem(422, "invalid").only_fields(&[("record_date", "invalid_format")]);
    }
    assert!(accepted.is_empty(), "accepted as a record date: {accepted:?}");
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn refused_record_reads_are_precise() {
    let app = TestApp::new("records-read-refused").await;
    let subject = operator(&app).await;
    add(&app, &app.key, &subject, &record("payment_supply_records", "2024-05-31", CONTENT)).await;
    let marketing_only = app.key_for(None, &["marketing"]).await;
    let path = records_path(&subject);
    // (case, token, path, status, code, audited: the denial's code when the
    // access decision refuses, None for a bad query that changes nothing)
    let cases = [
        (
            "unknown purpose",
            &app.key,
            read_path(&subject, "profiling"),
            422,
            "unknown_purpose",
            Some("unknown_purpose"),
        ),
        (
            "a purpose the key may not use",
            &marketing_only,
            read_path(&subject, "service_fees"),
            403,
            "purpose_not_allowed",
            Some("purpose_not_allowed"),
        ),
        ("no purpose", &app.key, path.clone(), 400, "bad_request", None),
        ("limit 0", &app.key, format!("{}&limit=0", read_path(&subject, "service_fees")), 400, "bad_request", None),
        (
            "limit 1001",
            &app.key,
            format!("{}&limit=1001", read_path(&subject, "service_fees")),
            400,
            "bad_request",
            None,
        ),
        (
            "unknown parameter",
            &app.key,
            format!("{}&class=tax_ledgers", read_path(&subject, "service_fees")),
            400,
            "bad_request",
            None,
        ),
        (
            "no such subject",
            &app.key,
            read_path("sub_00000000000000000000000000000000", "service_fees"),
            404,
            "not_found",
            Some("not_found"),
        ),
    ];
    let mut before = counts(&app).await;
    for (case, token, path, status, code, audited) in cases {
        let answer = call(&app, "GET", &path, Some(token), None).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code).never_mentions(&["A-1029", "4242"]);
        match audited {
            Some(denied) => before = assert_denial_audited(&app, &before, "record_read", denied, case).await,
            None => assert_eq!(counts(&app).await, before, "{case}"),
        }
    }
}

#[tokio::test]
async fn records_page_oldest_first_without_repeats() {
    let app = TestApp::new("records-pages").await;
    let subject = operator(&app).await;
    let mut made = Vec::new();
    for minute in 0..6_i64 {
        app.clock.set(start_time() + jiff::SignedDuration::from_mins(minute));
        // A complaint record in the middle: not a `service_fees` class.
        let class = if minute == 2 { "complaint_dispute_records" } else { "payment_supply_records" };
        let id = add(&app, &app.key, &subject, &record(class, "2024-05-31", &format!("record {minute}"))).await;
        if class == "payment_supply_records" {
            made.push(id);
        }
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{}&limit=2", read_path(&subject, "service_fees"));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let answer = call(&app, "GET", &path, Some(&app.key), None).await;
        let page = answer.expect(200).clone();
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, made, "every record once, oldest first");
}

#[tokio::test]
async fn an_unknown_record_cursor_is_refused() {
    let app = TestApp::new("records-cursor").await;
    let subject = operator(&app).await;
    add(&app, &app.key, &subject, &record("payment_supply_records", "2024-05-31", CONTENT)).await;
    // A cursor of a record that is gone (or never was) must not start over:
    // a client paging through would see the same records again, forever.
    let path = format!("{}&cursor=rec_018fd118940000000000000000000000", read_path(&subject, "service_fees"));
    call(&app, "GET", &path, Some(&app.key), None)
        .await
        .problem(422, "invalid")
        .only_fields(&[("cursor", "invalid_format")]);
}

#[tokio::test]
async fn a_service_key_keeps_records_of_its_own_members_only() {
    let app = TestApp::new("records-services").await;
    let (svc_a, svc_b) = (app.service("boss.a@example.com").await, new_service(&app, 2).await);
    let key_a = app.key_for(Some(&svc_a), &["service_fees"]).await;
    let member_a = sign_up(&app, &key_a, &member_signup(&svc_a)).await;
    let member_b = sign_up(&app, &app.key, &member_signup(&svc_b)).await;
    add(&app, &key_a, &member_a, &record("payment_supply_records", "2024-05-31", CONTENT)).await;
    let answer = call(&app, "GET", &read_path(&member_a, "service_fees"), Some(&key_a), None).await;
    assert_eq!(answer.expect(200)["items"][0]["content"], CONTENT);

    let before = counts(&app).await;
    let body = record("payment_supply_records", "2024-05-31", CONTENT);
    let missing =
        call(&app, "POST", &records_path("sub_00000000000000000000000000000000"), Some(&key_a), Some(&body)).await;
    missing.problem(404, "not_found");
    let before = assert_denial_audited(&app, &before, "record_add", "not_found", "no such member").await;
    let other = call(&app, "POST", &records_path(&member_b), Some(&key_a), Some(&body)).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.text, missing.text, "another service's member looks missing");
    assert_denial_audited(&app, &before, "record_add", "not_found", "another service's member").await;
}

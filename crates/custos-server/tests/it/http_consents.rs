//! The consent ledger over HTTP: grant, withdraw, re-grant; use refused
//! without consent and allowed with it; evidence kept encrypted; receipts;
//! bad input refused without a trace.

use serde_json::{Value, json};

use crate::kit::*;
use crate::support::TestApp;

const EMAIL: &str = "consenting@example.com";
const PHONE: &str = "+82 10 4444 5555";
const IP: &str = "198.51.100.23";
const AGENT: &str = "Mozilla/5.0 (consent-canary)";
const NOTICE: &str = "We would like to send you news about events and offers.";

fn consent(granted: bool) -> Value {
    json!({
        "purpose": "marketing", "granted": granted, "channel": "web_page", "notice_text": NOTICE,
        "evidence": {"ip": IP, "user_agent": AGENT}
    })
}

fn state_of(ledger: &Value, purpose: &str) -> String {
    ledger["current"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["purpose"] == purpose)
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no state for {purpose}: {ledger}"))
}

async fn marketing_read(app: &TestApp, id: &str) -> Answer {
    call(app, "GET", &format!("/v1/subjects/{id}?purpose=marketing"), Some(&app.key), None).await
}

#[tokio::test]
async fn grant_withdraw_and_grant_again_decide_the_use() {
    let app = TestApp::new("consents-cycle").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let path = format!("/v1/subjects/{id}/consents");

    // Nothing is pre-ticked: no consent, no marketing use.
    let ledger = call(&app, "GET", &path, Some(&app.key), None).await.expect(200).clone();
    assert_eq!(state_of(&ledger, "marketing"), "not_given");
    assert_eq!(ledger["history"], json!([]));
    marketing_read(&app, &id).await.problem(403, "consent_required");

    let granted = call(&app, "POST", &path, Some(&app.key), Some(&consent(true))).await.expect(201).clone();
    assert_eq!(granted["entry"]["granted"], true);
    assert_eq!(granted["entry"]["channel"], "web_page");
    assert_eq!(granted["entry"]["evidence_kept"], true);
    assert_eq!(granted["entry"]["policy_version"], app.engine.policy().meta.version.as_str());
    let hash = granted["entry"]["notice_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "the SHA-256 of the notice shown");
    assert_eq!(state_of(&granted["consents"], "marketing"), "granted");
    let read = marketing_read(&app, &id).await;
    read.expect(200);
    assert_eq!(read.body["items"]["email"], EMAIL);

    // Withdrawal: one call, effective at once.
    let withdrawn = call(&app, "POST", &path, Some(&app.key), Some(&consent(false))).await.expect(201).clone();
    assert_eq!(state_of(&withdrawn["consents"], "marketing"), "withdrawn");
    marketing_read(&app, &id).await.problem(403, "consent_required");

    let again = call(&app, "POST", &path, Some(&app.key), Some(&consent(true))).await.expect(201).clone();
    assert_eq!(state_of(&again["consents"], "marketing"), "granted");
    marketing_read(&app, &id).await.expect(200);

    // The ledger keeps every entry, oldest first, under distinct ids.
    let ledger = call(&app, "GET", &path, Some(&app.key), None).await.expect(200).clone();
    let history = ledger["history"].as_array().unwrap();
    let granted: Vec<bool> = history.iter().map(|e| e["granted"].as_bool().unwrap()).collect();
    assert_eq!(granted, [true, false, true]);
    let ids: std::collections::HashSet<&str> = history.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(newest_audit_entry(&app).0, "consent_read", "reading the ledger is audited");
}

#[tokio::test]
async fn every_consent_event_answers_with_its_receipt() {
    let app = TestApp::new("consents-receipt").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let path = format!("/v1/subjects/{id}/consents");
    for granted in [true, false] {
        let answer = call(&app, "POST", &path, Some(&app.key), Some(&consent(granted))).await.expect(201).clone();
        let receipt = &answer["receipt"];
        assert_eq!(receipt["version"], "KI-CR-v1.1.0");
        assert_eq!(receipt["consentReceiptID"], answer["entry"]["id"]);
        assert_eq!(receipt["piiPrincipalId"], id.as_str(), "the pseudonymous id, never an address");
        assert_eq!(receipt["consentTimestamp"], crate::support::start_time().as_second());
        let text = receipt.to_string();
        for secret in [EMAIL, IP, AGENT, NOTICE] {
            assert!(!text.contains(secret), "the receipt holds {secret:?}");
        }
        let purpose = &receipt["services"][0]["purposes"][0];
        assert_eq!(purpose["purposeCategory"], json!(["marketing"]));
        assert_eq!(purpose["purpose"].as_str().unwrap().starts_with("Consent withdrawn"), !granted, "{purpose}");
    }
}

#[tokio::test]
async fn evidence_is_kept_encrypted() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: scans the data folder's files (the PostgreSQL disk scan is lifecycle.rs's)
    }
    let app = TestApp::new("consents-at-rest").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    call(&app, "POST", &format!("/v1/subjects/{id}/consents"), Some(&app.key), Some(&consent(true))).await.expect(201);
    app.engine.checkpoint().unwrap();
    for entry in std::fs::read_dir(app.dir.0.join("data")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for canary in [IP, AGENT, NOTICE] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{} holds {canary:?}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn refused_consents_are_precise_and_change_nothing() {
    let app = TestApp::new("consents-refused").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let path = format!("/v1/subjects/{id}/consents");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = consent(true);
        edit(&mut body);
        body
    };
    type Case<'a> = (&'a str, Value, u16, &'a str, &'a [(&'a str, &'a str)]);
    let cases: Vec<Case<'_>> = vec![
        (
            "unknown purpose",
            with(&|b| b["purpose"] = json!("astrology")),
            422,
            "invalid",
            &[("purpose", "unknown_item")],
        ),
        (
            "purpose without consent",
            with(&|b| b["purpose"] = json!("member_management")),
            422,
            "invalid",
            &[("purpose", "not_allowed")],
        ),
        (
            "unknown channel",
            with(&|b| b["channel"] = json!("telepathy")),
            422,
            "invalid",
            &[("channel", "not_allowed")],
        ),
        (
            "not an IP address",
            with(&|b| b["evidence"]["ip"] = json!("my house")),
            422,
            "invalid",
            &[("evidence.ip", "invalid_format")],
        ),
        (
            "empty notice",
            with(&|b| b["notice_text"] = json!("  ")),
            422,
            "invalid",
            &[("notice_text", "invalid_format")],
        ),
        (
            "unknown field",
            with(&|b| b["pre_ticked"] = json!(true)),
            400,
            "bad_request",
            &[("pre_ticked", "unknown_field")],
        ),
        ("granted missing", with(&|b| drop(b.as_object_mut().unwrap().remove("granted"))), 400, "bad_request", &[]),
    ];
    let before = counts(&app).await;
    for (case, body, status, code, errors) in cases {
        let answer = call(&app, "POST", &path, Some(&app.key), Some(&body)).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        answer.problem(status, code);
        if !errors.is_empty() {
            answer.only_fields(errors);
        }
        answer.never_mentions(&[IP, AGENT]);
        assert_eq!(counts(&app).await, before, "{case} changed something");
    }
    // Another service's key: the subject is not there for it, and that
    // refusal is audited.
    let svc = new_service(&app, 1).await;
    let other = app.key_for(Some(&svc), &["marketing"]).await;
    let before = counts(&app).await;
    call(&app, "POST", &path, Some(&other), Some(&consent(true))).await.problem(404, "not_found");
    assert_denial_audited(&app, &before, "consent", "not_found", "another service's key").await;
}

/// An opt-out purpose (a legitimate interest with a right to object) is used
/// until the member objects, and no longer after.
#[tokio::test]
async fn an_objection_stops_an_opt_out_purpose() {
    let app = app_with_policy("consents-opt-out", include_str!("../../../../policies/example-eu.toml")).await;
    let runner = json!({
        "kind": "runner", "collection_point": "registration", "source": "app_entry",
        "items": {"email": "runner@example.org", "display_name": "Runner", "password": "a long enough password",
                  "date_of_birth": "1990-04-05", "country": "DE"}
    });
    let id = sign_up(&app, &app.key, &runner).await;
    let read = format!("/v1/subjects/{id}?purpose=product_analytics");
    call(&app, "GET", &read, Some(&app.key), None).await.expect(200);
    let object = json!({"purpose": "product_analytics", "granted": false, "channel": "app_settings"});
    let answer = call(&app, "POST", &format!("/v1/subjects/{id}/consents"), Some(&app.key), Some(&object)).await;
    assert_eq!(state_of(&answer.expect(201)["consents"], "product_analytics"), "withdrawn");
    call(&app, "GET", &read, Some(&app.key), None).await.problem(403, "consent_required");
    // Opt-in purposes of the same policy are still off until granted.
    let insights = format!("/v1/subjects/{id}?purpose=training_insights");
    call(&app, "GET", &insights, Some(&app.key), None).await.problem(403, "consent_required");
}

#[tokio::test]
async fn consents_are_recorded_only_with_their_notice_by_those_who_work_for_the_purpose() {
    let app = TestApp::new("consents-who").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let path = format!("/v1/subjects/{id}/consents");
    // A grant without the notice shown is refused; a withdrawal needs none.
    let mut bare = consent(true);
    bare.as_object_mut().unwrap().remove("notice_text");
    let answer = call(&app, "POST", &path, Some(&app.key), Some(&bare)).await;
    answer.problem(422, "invalid").only_fields(&[("notice_text", "missing_required")]);
    let mut withdrawal = consent(false);
    withdrawal.as_object_mut().unwrap().remove("notice_text");
    call(&app, "POST", &path, Some(&app.key), Some(&withdrawal)).await.expect(201);
    // A key for member management records no marketing consent.
    let management = app.key_for(None, &["member_management"]).await;
    let before = counts(&app).await;
    call(&app, "POST", &path, Some(&management), Some(&consent(true))).await.problem(403, "purpose_not_allowed");
    assert_denial_audited(&app, &before, "consent", "purpose_not_allowed", "key without marketing").await;
    // A notice of a version no longer in force is refused.
    let mut stale = consent(true);
    stale["policy_version"] = json!("2020-01-01");
    call(&app, "POST", &path, Some(&app.key), Some(&stale)).await.problem(409, "conflict");
    let mut current = consent(true);
    current["policy_version"] = json!(app.engine.policy().meta.version.clone());
    call(&app, "POST", &path, Some(&app.key), Some(&current)).await.expect(201);
}

#[tokio::test]
async fn a_look_up_for_a_consent_purpose_needs_the_consent() {
    let app = TestApp::new("consents-lookup").await;
    let id = sign_up(&app, &app.key, &operator_signup(EMAIL, PHONE)).await;
    let lookup = json!({"item": "email", "value": EMAIL, "purpose": "marketing"});
    call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup)).await.problem(403, "consent_required");
    assert_eq!(newest_audit_entry(&app), ("lookup".to_owned(), "denied: no consent".to_owned()));
    call(&app, "POST", &format!("/v1/subjects/{id}/consents"), Some(&app.key), Some(&consent(true))).await.expect(201);
    let found = call(&app, "POST", "/v1/lookup", Some(&app.key), Some(&lookup)).await;
    assert_eq!(found.expect(200)["id"], id.as_str());
}

#[tokio::test]
async fn consents_given_at_sign_up_answer_with_their_receipts() {
    let app = TestApp::new("consents-signup").await;
    let mut body = operator_signup(EMAIL, PHONE);
    body["consents"] = json!(["marketing"]);
    let created = call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&body)).await.expect(201).clone();
    let id = created["id"].as_str().unwrap();
    let receipts = created["consent_receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["piiPrincipalId"], id);
    assert_eq!(receipts[0]["services"][0]["purposes"][0]["purposeCategory"], json!(["marketing"]));
    let ledger =
        call(&app, "GET", &format!("/v1/subjects/{id}/consents"), Some(&app.key), None).await.expect(200).clone();
    assert_eq!(ledger["history"][0]["id"], receipts[0]["consentReceiptID"], "the receipt names the ledger entry");
    assert_eq!(state_of(&ledger, "marketing"), "granted");
    // Without consents, no receipts.
    let plain =
        call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&operator_signup("b@example.com", "+82 10 4444 6666")))
            .await;
    assert!(plain.expect(201).get("consent_receipts").is_none());
}

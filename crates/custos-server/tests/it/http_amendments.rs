//! Policy amendments at runtime: the notice period the policy in force
//! promises, the public notice board, the new version in force on its date,
//! and consents that need renewal where a purpose was widened.

use custos_server::clock::Clock;
use serde_json::{Value, json};

use crate::kit::*;
use crate::support::{TestApp, start_time};

const BSTAGE: &str = include_str!("../../../../policies/bstage.toml");

/// The b.stage policy as version `version`, announced on `notice` and in
/// effect from `effective`; `edit` changes the text further.
fn amended(version: &str, notice: &str, effective: &str, edit: impl Fn(String) -> String) -> String {
    let text = BSTAGE
        .replace("version = \"2023-02-21\"", &format!("version = \"{version}\""))
        .replace("notice_date = 2023-02-21", &format!("notice_date = {notice}"))
        .replace("effective_date = 2023-02-28", &format!("effective_date = {effective}"));
    assert_ne!(text, BSTAGE);
    edit(text)
}

/// Widens the marketing purpose: a new use, described differently.
fn widen_marketing(text: String) -> String {
    let from = "name = \"Use in marketing and advertisements\"";
    assert!(text.contains(from));
    text.replace(from, "name = \"Use in marketing, advertisements and partner offers\"")
}

fn reword(text: String) -> String {
    text.replace("title = \"b.stage Privacy Policy\"", "title = \"b.stage Privacy Policy (reworded)\"")
}

async fn publish(app: &TestApp, token: &str, text: &str) -> Answer {
    call(app, "POST", "/v1/policy/amendments", Some(token), Some(&json!({ "text": text }))).await
}

fn marketing_state(ledger: &Value) -> String {
    let current = ledger["current"].as_array().unwrap();
    current.iter().find(|s| s["purpose"] == "marketing").unwrap()["state"].as_str().unwrap().to_owned()
}

fn days(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * n)
}

#[tokio::test]
async fn an_amendment_takes_effect_on_its_date_and_widened_purposes_need_consent_again() {
    let app = TestApp::new("amend-cycle").await;
    let officer = app.enrol_staff("po@example.com", "privacy_officer", None).await;
    let token = app.login(&officer).await;
    let member = sign_up(&app, &app.key, &operator_signup("amended@example.com", "+82 10 2222 3333")).await;
    let consents = format!("/v1/subjects/{member}/consents");
    let grant = json!({"purpose": "marketing", "granted": true, "channel": "web_page", "notice_text": "Offers?"});
    call(&app, "POST", &consents, Some(&app.key), Some(&grant)).await.expect(201);

    // A wording change needs 7 days' notice: 6 is refused, naming the date.
    let before = counts(&app).await;
    let early = publish(&app, &token, &amended("2024-06", "2024-06-01", "2024-06-07", reword)).await;
    early.problem(422, "invalid");
    assert!(early.text.contains("2024-06-08"), "{}", early.text);
    assert_eq!(counts(&app).await, before, "a refused amendment leaves nothing");
    assert_eq!(call(&app, "GET", "/v1/notices", None, None).await.expect(200)["notices"], json!([]));

    let reworded = publish(&app, &token, &amended("2024-06", "2024-06-01", "2024-06-08", reword)).await;
    let body = reworded.expect(201).clone();
    assert_eq!((body["previous"].as_str(), body["significant"].as_bool()), (Some("2023-02-21"), Some(false)));
    // The same version again is refused; a newer announcement would
    // replace this one (see the next test).
    publish(&app, &token, &amended("2024-06", "2024-06-01", "2024-06-30", reword)).await.problem(409, "conflict");
    // The notice board is public.
    let board = call(&app, "GET", "/v1/notices", None, None).await.expect(200).clone();
    assert_eq!(board["notices"][0]["version"], "2024-06");
    assert!(board["notices"][0].get("in_force_at").is_none());

    // Nothing changes before the date.
    app.clock.set(start_time() + days(6));
    assert_eq!(app.engine.activate_due(app.clock.now()).await.unwrap(), Vec::<String>::new());
    assert_eq!(app.engine.policy().meta.version, "2023-02-21");
    app.clock.set(start_time() + days(7));
    assert_eq!(app.engine.activate_due(app.clock.now()).await.unwrap(), ["2024-06"]);
    assert_eq!(app.engine.policy().meta.version, "2024-06");
    assert_eq!(newest_audit_entry(&app), ("policy_in_force".to_owned(), "2024-06 replaces 2023-02-21".to_owned()));
    // Marketing was not widened: the grant carries over.
    let ledger = call(&app, "GET", &consents, Some(&app.key), None).await.expect(200).clone();
    assert_eq!(marketing_state(&ledger), "granted");

    // Widening marketing is significant: 30 days' notice.
    let login_again = app.login(&officer).await;
    let short = publish(&app, &login_again, &amended("2024-07", "2024-06-08", "2024-06-20", widen_marketing)).await;
    short.problem(422, "invalid");
    assert!(short.text.contains("2024-07-08"), "{}", short.text);
    let widened = publish(&app, &login_again, &amended("2024-07", "2024-06-08", "2024-07-08", widen_marketing)).await;
    assert_eq!(widened.expect(201)["significant"], true);
    app.clock.set(start_time() + days(37));
    assert_eq!(app.engine.activate_due(app.clock.now()).await.unwrap(), ["2024-07"]);

    // The grant was given under a version that did not have the new use.
    let ledger = call(&app, "GET", &consents, Some(&app.key), None).await.expect(200).clone();
    assert_eq!(marketing_state(&ledger), "needs_renewal");
    let read = format!("/v1/subjects/{member}?purpose=marketing");
    call(&app, "GET", &read, Some(&app.key), None).await.problem(403, "consent_required");
    let renewed = call(&app, "POST", &consents, Some(&app.key), Some(&grant)).await.expect(201).clone();
    assert_eq!(renewed["entry"]["policy_version"], "2024-07");
    assert_eq!(marketing_state(&renewed["consents"]), "granted");
    call(&app, "GET", &read, Some(&app.key), None).await.expect(200);
    // The ledger keeps the history under both versions.
    let versions: Vec<String> =
        renewed["consents"]["history"].as_array().unwrap().iter().map(|e| e["policy_version"].to_string()).collect();
    assert_eq!(versions, ["\"2023-02-21\"", "\"2024-07\""]);
}

#[tokio::test]
async fn a_newer_announcement_replaces_one_not_yet_in_force() {
    let app = TestApp::new("amend-supersede").await;
    publish(&app, &app.key, &amended("2024-06", "2024-06-01", "2024-06-08", reword)).await.expect(201);
    let newer = amended("2024-07", "2024-06-01", "2024-07-01", |t| widen_marketing(reword(t)));
    publish(&app, &app.key, &newer).await.expect(201);
    let board = call(&app, "GET", "/v1/notices", None, None).await.expect(200).clone();
    assert_eq!(board["notices"][0]["version"], "2024-07");
    assert!(board["notices"][1]["superseded_at"].is_string(), "{board}");
    app.clock.set(start_time() + days(10));
    let none: Vec<String> = Vec::new();
    assert_eq!(app.engine.activate_due(app.clock.now()).await.unwrap(), none, "the replaced one never takes effect");
    app.clock.set(start_time() + days(30));
    assert_eq!(app.engine.activate_due(app.clock.now()).await.unwrap(), ["2024-07"]);
}

#[tokio::test]
async fn the_version_in_force_survives_a_restart_with_the_older_file() {
    let app = TestApp::new("amend-restart").await;
    publish(&app, &app.key, &amended("2024-06", "2024-06-01", "2024-06-08", reword)).await.expect(201);
    app.clock.set(start_time() + days(7));
    app.engine.activate_due(app.clock.now()).await.unwrap();
    let dir = app.dir;
    drop(app.engine);
    drop(app.router);
    let reopened = TestApp::in_folder(dir).await;
    assert_eq!(reopened.engine.policy().meta.version, "2024-06");
}

#[tokio::test]
async fn a_changed_policy_under_an_old_version_is_refused_at_start() {
    let app = TestApp::new("amend-same-version").await;
    let dir = app.dir;
    drop(app.engine);
    drop(app.router);
    let changed = widen_marketing(BSTAGE.to_owned());
    let policy = custos_engine::policy::parse(&changed).unwrap();
    let opened = custos_engine::Engine::open(&crate::support::engine_config(&dir), policy).await;
    let error = opened.expect_err("refused").to_string();
    assert!(error.contains("give the changed policy a new version"), "{error}");
}

#[tokio::test]
async fn changing_the_notice_rules_takes_the_longest_notice() {
    let app = TestApp::new("amend-rules").await;
    let shorter = |t: String| t.replace("significant_notice = \"30 days\"", "significant_notice = \"7 days\"");
    let answer = publish(&app, &app.key, &amended("2024-06", "2024-06-01", "2024-06-08", shorter)).await;
    answer.problem(422, "invalid");
    assert!(answer.text.contains("2024-07-01"), "{}", answer.text);
    publish(&app, &app.key, &amended("2024-06", "2024-06-01", "2024-07-01", shorter)).await.expect(201);
}

#[tokio::test]
async fn an_amendment_states_the_day_it_is_announced() {
    let app = TestApp::new("amend-notice-date").await;
    let backdated = amended("2024-06", "2024-01-01", "2024-06-08", reword);
    let answer = publish(&app, &app.key, &backdated).await;
    answer.problem(422, "invalid");
    assert!(answer.text.contains("policy.notice_date 2024-01-01 must be the day it is announced"), "{}", answer.text);
}

#[tokio::test]
async fn only_those_who_may_amend_publish() {
    let app = TestApp::new("amend-who").await;
    let support = app.enrol_staff("cs@example.com", "support_agent", None).await;
    let token = app.login(&support).await;
    let text = amended("2024-06", "2024-06-01", "2024-06-08", reword);
    let before = counts(&app).await;
    publish(&app, &token, &text).await.problem(403, "forbidden");
    assert_denial_audited(&app, &before, "policy_amend", "forbidden", "support agent").await;
    // A broken file is refused with its line and key path.
    let broken = text.replace("jurisdiction = \"kr\"", "jurisdiction = \"atlantis\"");
    let answer = publish(&app, &app.key, &broken).await;
    answer.problem(422, "invalid");
    assert!(answer.text.contains("line 17: policy.jurisdiction: unknown jurisdiction"), "{}", answer.text);
}

/// Changing a processor's duty is an amendment like any other: announced
/// with its notice, the change named on the board; until its date the
/// register in force decides what the processor may receive, after it the
/// new one.
#[tokio::test]
async fn a_processor_s_new_duty_is_an_amendment_and_governs_hand_overs_from_its_date() {
    let app = TestApp::new("amend-processor").await;
    let officer = app.enrol_staff("po@example.com", "privacy_officer", None).await;
    let token = app.login(&officer).await;
    let member = sign_up(&app, &app.key, &operator_signup("proc@example.com", "+82 10 2222 4444")).await;
    let widen = |text: String| {
        let from = "duty = \"SMS text message services\"\nitems = [\"mobile_phone\"]";
        assert!(text.contains(from));
        text.replace(from, "duty = \"SMS and e-mail message services\"\nitems = [\"mobile_phone\", \"email\"]")
    };
    let published = publish(&app, &token, &amended("2024-07", "2024-06-01", "2024-07-01", widen)).await;
    let body = published.expect(201).clone();
    let changes: Vec<&str> = body["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(
        changes.iter().any(|c| c.contains("cj_olivenetworks") && c.contains("changed its duty")),
        "the diff names the processor: {changes:?}"
    );
    let path = format!("/v1/subjects/{member}/handovers");
    let email = json!({"recipient": "cj_olivenetworks", "items": ["email"], "purpose": "member_management"});
    call(&app, "POST", &path, Some(&app.key), Some(&email)).await.problem(422, "invalid");
    // On its date the new register is in force (the minute tick applies it).
    let effective: jiff::Timestamp = "2024-07-01T00:00:00Z".parse().unwrap();
    app.clock.set(effective);
    assert_eq!(app.engine.activate_due(effective).await.unwrap(), ["2024-07"]);
    let done = call(&app, "POST", &path, Some(&app.key), Some(&email)).await;
    assert_eq!(done.expect(201)["data"], json!({"email": "proc@example.com"}));
}

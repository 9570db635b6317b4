//! Operations and the API's edges in-process: `/health`, `/ready`,
//! `/metrics` (its series exist and move with traffic), `/openapi.json`
//! (served, and listing every route and every status the API answers),
//! unknown routes and methods as `application/problem+json`, and the
//! body checks (415, 413) on every JSON endpoint.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::kit::*;
use crate::peek::{Db, Peek};
use crate::support::TestApp;

/// Every route of the API: (method, path as documented, a concrete path).
const ROUTES: [(&str, &str, &str); 53] = [
    ("GET", "/health", "/health"),
    ("GET", "/ready", "/ready"),
    ("GET", "/metrics", "/metrics"),
    ("GET", "/openapi.json", "/openapi.json"),
    ("POST", "/v1/subjects", "/v1/subjects"),
    ("GET", "/v1/subjects", "/v1/subjects"),
    ("GET", "/v1/subjects/{id}", "/v1/subjects/SUBJECT?purpose=member_management"),
    ("PATCH", "/v1/subjects/{id}", "/v1/subjects/SUBJECT"),
    ("DELETE", "/v1/subjects/{id}", "/v1/subjects/SUBJECT"),
    ("POST", "/v1/subjects/{id}/activity", "/v1/subjects/SUBJECT/activity"),
    ("POST", "/v1/lookup", "/v1/lookup"),
    ("POST", "/v1/services", "/v1/services"),
    ("POST", "/v1/subjects/{id}/records", "/v1/subjects/SUBJECT/records"),
    ("GET", "/v1/subjects/{id}/records", "/v1/subjects/SUBJECT/records?purpose=service_fees"),
    ("POST", "/v1/subjects/{id}/consents", "/v1/subjects/SUBJECT/consents"),
    ("GET", "/v1/subjects/{id}/consents", "/v1/subjects/SUBJECT/consents"),
    ("POST", "/v1/cookie-consent", "/v1/cookie-consent"),
    ("GET", "/v1/cookie-consent", "/v1/cookie-consent"),
    ("POST", "/v1/subjects/{id}/cookie-consent", "/v1/subjects/SUBJECT/cookie-consent"),
    ("GET", "/v1/subjects/{id}/cookie-consent", "/v1/subjects/SUBJECT/cookie-consent"),
    ("GET", "/.well-known/gpc.json", "/.well-known/gpc.json"),
    ("GET", "/consent.js", "/consent.js"),
    ("POST", "/v1/policy/amendments", "/v1/policy/amendments"),
    ("GET", "/v1/notices", "/v1/notices"),
    ("GET", "/v1/audit/checkpoint", "/v1/audit/checkpoint"),
    ("POST", "/v1/audit/checkpoint", "/v1/audit/checkpoint"),
    ("GET", "/v1/audit/proof/inclusion", "/v1/audit/proof/inclusion?seq=1&size=1"),
    ("GET", "/v1/audit/proof/consistency", "/v1/audit/proof/consistency?from=1&to=1"),
    ("POST", "/v1/staff/invitations", "/v1/staff/invitations"),
    ("POST", "/v1/staff/enrol", "/v1/staff/enrol"),
    ("POST", "/v1/sessions", "/v1/sessions"),
    ("DELETE", "/v1/sessions/current", "/v1/sessions/current"),
    ("GET", "/v1/staff/me", "/v1/staff/me"),
    ("POST", "/v1/staff/me/password", "/v1/staff/me/password"),
    ("POST", "/v1/staff/{id}/disable", "/v1/staff/stf_x/disable"),
    ("PUT", "/v1/staff/{id}/privileges/{privilege}", "/v1/staff/stf_x/privileges/dormant_lookup"),
    ("DELETE", "/v1/staff/{id}/privileges/{privilege}", "/v1/staff/stf_x/privileges/dormant_lookup"),
    ("POST", "/v1/staff/{id}/transfer-role", "/v1/staff/stf_x/transfer-role"),
    ("PUT", "/v1/services/{id}/allowed-ips", "/v1/services/svc_x/allowed-ips"),
    ("POST", "/v1/subjects/{id}/provisions", "/v1/subjects/sub_x/provisions"),
    ("POST", "/v1/subjects/{id}/handovers", "/v1/subjects/sub_x/handovers"),
    ("GET", "/v1/policy/processing", "/v1/policy/processing"),
    ("POST", "/v1/requests", "/v1/requests"),
    ("GET", "/v1/requests", "/v1/requests"),
    ("GET", "/v1/requests/{id}", "/v1/requests/req_x"),
    ("POST", "/v1/requests/{id}/code", "/v1/requests/req_x/code"),
    ("POST", "/v1/requests/{id}/verify", "/v1/requests/req_x/verify"),
    ("POST", "/v1/requests/{id}/assign", "/v1/requests/req_x/assign"),
    ("POST", "/v1/requests/{id}/extend", "/v1/requests/req_x/extend"),
    ("POST", "/v1/requests/{id}/deny", "/v1/requests/req_x/deny"),
    ("POST", "/v1/requests/{id}/fulfil", "/v1/requests/req_x/fulfil"),
    ("POST", "/v1/requests/{id}/lift", "/v1/requests/req_x/lift"),
    ("GET", "/v1/requests/{id}/outcome", "/v1/requests/req_x/outcome"),
];

/// Routes that take no credential: staff enrol and log in with what they know.
const PUBLIC: [&str; 5] =
    ["/v1/staff/enrol", "/v1/sessions", "/v1/notices", "/v1/cookie-consent", "/v1/requests/{id}/code"];

/// Routes that take no body although their method could carry one.
const NO_BODY: [&str; 6] = [
    "/v1/audit/checkpoint",
    "/v1/requests/{id}/fulfil",
    "/v1/requests/{id}/lift",
    "/v1/staff/{id}/disable",
    "/v1/staff/{id}/transfer-role",
    "/v1/staff/{id}/privileges/{privilege}",
];

/// Every series of `/metrics`, by full name.
async fn all_metrics(app: &TestApp) -> BTreeMap<String, u64> {
    let answer = raw(app, "GET", "/metrics", &[], Vec::new()).await;
    answer
        .text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn health_and_ready_answer_without_a_key() {
    let app = TestApp::new("ops-health").await;
    for (path, status) in [("/health", "ok"), ("/ready", "ready")] {
        let answer = raw(&app, "GET", path, &[], Vec::new()).await;
        assert_eq!(answer.expect(200), &json!({"status": status}), "{path}");
    }
}

#[tokio::test]
async fn metrics_have_every_series_and_they_move() {
    let app = TestApp::new("ops-metrics").await;
    let answer = raw(&app, "GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), "text/plain; version=0.0.4");
    for (name, kind) in [
        ("custos_audit_entries", "gauge"),
        ("custos_commit_batches_total", "counter"),
        ("custos_committed_jobs_total", "counter"),
        ("custos_http_responses_total", "counter"),
    ] {
        assert!(answer.text.contains(&format!("# HELP {name} ")), "{name}");
        assert!(answer.text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
    let series = |m: &BTreeMap<String, u64>, name: &str| m[name];
    let before = all_metrics(&app).await;
    let names: Vec<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "custos_audit_entries",
            "custos_commit_batches_total",
            "custos_committed_jobs_total",
            r#"custos_http_responses_total{class="2xx_3xx"}"#,
            r#"custos_http_responses_total{class="4xx"}"#,
            r#"custos_http_responses_total{class="5xx"}"#,
        ]
    );

    // A sign-up (201, audited), a malformed request (400, no store job) and
    // a read of a missing subject (404, its denial audited).
    sign_up(&app, &app.key, &operator_signup("boss@example.com", "+82 10 5555 0001")).await;
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&json!([]))).await.problem(400, "bad_request");
    call(&app, "GET", "/v1/subjects/sub_missing?purpose=member_management", Some(&app.key), None)
        .await
        .problem(404, "not_found");
    let after = all_metrics(&app).await;
    let moved = |name: &str| series(&after, name) - series(&before, name);
    assert_eq!(moved("custos_audit_entries"), 2);
    assert_eq!(moved("custos_committed_jobs_total"), 2);
    assert!((1..=2).contains(&moved("custos_commit_batches_total")));
    // The first `/metrics` answer is counted after it was written.
    assert_eq!(moved(r#"custos_http_responses_total{class="2xx_3xx"}"#), 2);
    assert_eq!(moved(r#"custos_http_responses_total{class="4xx"}"#), 2);
    assert_eq!(moved(r#"custos_http_responses_total{class="5xx"}"#), 0);
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::new("ops-unknown-route").await;
    let auth = format!("Bearer {}", app.key);
    let before = counts(&app).await;
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/v2/subjects"),
        ("POST", "/v1/members"),
        ("GET", "/v1/subjects/sub_x/preferences"),
        ("GET", "/v1/subjects/"),
    ] {
        for headers in [vec![], vec![("authorization", auth.as_str())]] {
            let answer = raw(&app, method, path, &headers, Vec::new()).await;
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
            answer.problem(404, "no_such_route");
            assert_eq!(answer.body["detail"], "see /openapi.json for the API");
        }
    }
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = TestApp::new("ops-wrong-method").await;
    let auth = format!("Bearer {}", app.key);
    for (method, path) in [("PUT", "/v1/subjects/sub_x"), ("PUT", "/v1/services"), ("POST", "/health")] {
        let answer = raw(&app, method, path, &[("authorization", &auth)], Vec::new()).await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert!(answer.headers.contains_key("allow"), "{method} {path}");
        answer.problem(405, "method_not_allowed");
    }
}

#[tokio::test]
async fn every_json_endpoint_refuses_other_media_types_and_oversize_bodies() {
    let app = TestApp::new("ops-bodies").await;
    let subject = sign_up(&app, &app.key, &operator_signup("boss@example.com", "+82 10 5555 0001")).await;
    let auth = format!("Bearer {}", app.key);
    let huge = json!({"padding": "p".repeat(256 * 1024)}).to_string().into_bytes();
    let filing_huge = json!({"padding": "p".repeat(8 * 1024 * 1024)}).to_string().into_bytes();
    let before = counts(&app).await;
    // Every POST, PUT and PATCH takes a JSON body, but those in NO_BODY.
    let with_body =
        ROUTES.iter().filter(|(m, route, _)| matches!(*m, "POST" | "PATCH" | "PUT") && !NO_BODY.contains(route));
    for (method, _, path) in with_body {
        let path = path.replace("SUBJECT", &subject);
        let answer =
            raw(&app, method, &path, &[("authorization", &auth), ("content-type", "text/plain")], b"{}".to_vec()).await;
        assert_eq!(answer.status, 415, "{method} {path}: {}", answer.text);
        answer.problem(415, "unsupported_media_type");
        // Filing takes a letter of attorney: its limit is higher.
        let body = if path == "/v1/requests" { filing_huge.clone() } else { huge.clone() };
        let answer =
            raw(&app, method, &path, &[("authorization", &auth), ("content-type", "application/json")], body).await;
        assert_eq!(answer.status, 413, "{method} {path}: {}", answer.text);
        answer.problem(413, "too_large").never_mentions(&["pppppppp"]);
    }
    assert_eq!(counts(&app).await, before);
}

async fn served_document(app: &TestApp) -> Value {
    let answer = raw(app, "GET", "/openapi.json", &[], Vec::new()).await;
    answer.expect(200).clone()
}

#[tokio::test]
async fn the_openapi_document_is_served_and_lists_every_route() {
    let app = TestApp::new("ops-openapi").await;
    let doc = served_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Custos API");
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    for (method, documented, _) in ROUTES {
        let operation = &doc["paths"][documented][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {documented} is not documented");
        if documented.starts_with("/v1/") && !PUBLIC.contains(&documented) {
            assert_eq!(operation["security"], json!([{"api_key": []}]), "{method} {documented}");
            assert!(operation["responses"].get("401").is_some(), "{method} {documented}");
        }
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|ops| ops.as_object().unwrap().len()).sum();
    assert_eq!(documented, ROUTES.len(), "the document lists a route the server does not have");
}

#[tokio::test]
async fn the_openapi_document_lists_every_status_the_api_answers() {
    let app = TestApp::new("ops-openapi-statuses").await;
    let doc = served_document(&app).await;
    // Statuses the tests of this binary see each endpoint answer.
    let answered: [(&str, &str, &[u16]); 10] = [
        ("POST", "/v1/subjects", &[200, 201, 400, 401, 403, 404, 409, 413, 415, 422]),
        ("GET", "/v1/subjects", &[200, 400, 401, 404]),
        ("GET", "/v1/subjects/{id}", &[200, 400, 401, 403, 404, 422]),
        ("PATCH", "/v1/subjects/{id}", &[200, 400, 401, 404, 409, 413, 415, 422]),
        ("DELETE", "/v1/subjects/{id}", &[200, 401, 403, 404]),
        ("POST", "/v1/subjects/{id}/activity", &[204, 400, 401, 404, 413, 415, 422]),
        ("POST", "/v1/lookup", &[200, 400, 401, 403, 404, 413, 415, 422]),
        ("POST", "/v1/services", &[201, 400, 401, 403, 404, 413, 415, 422]),
        ("POST", "/v1/subjects/{id}/records", &[201, 400, 401, 404, 413, 415, 422]),
        ("GET", "/v1/subjects/{id}/records", &[200, 400, 401, 403, 404, 422]),
    ];
    let mut missing = Vec::new();
    for (method, path, statuses) in answered {
        let responses = &doc["paths"][path][method.to_lowercase()]["responses"];
        for status in statuses {
            if responses.get(status.to_string()).is_none() {
                missing.push(format!("{method} {path} {status}"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}

/// Fail closed: while audit entries cannot be written (a trigger refuses
/// every insert into the audit table, as a full disk or a broken file
/// would), reads and writes answer 503 within two seconds with no personal data and change
/// nothing, `/health` says the audit is failing, and both recover on their
/// own once the fault clears.
#[tokio::test]
async fn when_the_audit_cannot_be_written_nothing_is_served_and_it_recovers() {
    let app = TestApp::new("ops-audit-fault").await;
    let signup = operator_signup("fault@example.com", "+82 10 5555 0002");
    let subject = sign_up(&app, &app.key, &signup).await;
    let read = format!("/v1/subjects/{subject}?purpose=member_management");
    call(&app, "GET", &read, Some(&app.key), None).await.expect(200);

    let peek = Peek::of(&app);
    if peek.is_postgres() {
        let raise = "CREATE FUNCTION inject_audit_fault() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'injected audit fault'; END; $$";
        peek.execute(Db::Data, raise, &[]);
        let trigger = "CREATE TRIGGER inject_audit_fault BEFORE INSERT ON audit \
                       FOR EACH ROW EXECUTE FUNCTION inject_audit_fault()";
        peek.execute(Db::Data, trigger, &[]);
    } else {
        let trigger = "CREATE TRIGGER inject_audit_fault BEFORE INSERT ON audit \
                       BEGIN SELECT RAISE(ABORT, 'injected audit fault'); END";
        peek.execute(Db::Data, trigger, &[]);
    }
    let before = counts(&app).await;
    let started = stopwatch();
    let answer = call(&app, "GET", &read, Some(&app.key), None).await;
    let waited = started.elapsed();
    answer.problem(503, "unavailable").never_mentions(&["fault@example.com", "Test Operator", "+821055550002"]);
    assert!(waited < std::time::Duration::from_secs(2), "the 503 came after {waited:?}");
    let other = operator_signup("second@example.com", "+82 10 5555 0003");
    call(&app, "POST", "/v1/subjects", Some(&app.key), Some(&other)).await.problem(503, "unavailable");
    let health = call(&app, "GET", "/health", None, None).await;
    assert_eq!(health.status, 503);
    assert_eq!(health.body["status"], "audit failing");
    assert_eq!(counts(&app).await, before, "nothing was written while the audit failed");

    if peek.is_postgres() {
        peek.execute(Db::Data, "DROP TRIGGER inject_audit_fault ON audit", &[]);
    } else {
        peek.execute(Db::Data, "DROP TRIGGER inject_audit_fault", &[]);
    }
    let answer = call(&app, "GET", &read, Some(&app.key), None).await;
    assert_eq!(answer.expect(200)["items"]["email"], "fault@example.com");
    assert_eq!(call(&app, "GET", "/health", None, None).await.status, 200);
}

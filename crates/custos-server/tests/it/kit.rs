//! Request and assertion helpers shared by the `http_*` tests: calls that
//! return an `Answer`, problem checks, row counts that prove a refused
//! request changed nothing (or, refused by the access decision, wrote only
//! its audit entry).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::peek::{Db, Peek, col};
use crate::support::TestApp;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The `(field, code)` pairs a problem's `errors[]` should hold.
pub(crate) type Errors = &'static [(&'static str, &'static str)];

/// A response, whole: status, headers, the body as text and as JSON
/// (`Null` when it is not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts a success status and returns the JSON body.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {}", self.text);
        if !self.text.is_empty() {
            assert_eq!(self.content_type(), "application/json", "{}", self.text);
        }
        &self.body
    }

    /// Asserts an RFC 9457 problem of `status` and `urn:custos:problem:<code>`.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, code: &str) -> &Answer {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {}", self.text);
        assert_eq!(self.content_type(), PROBLEM_JSON, "{}", self.text);
        assert_eq!(self.body["type"], format!("urn:custos:problem:{code}"), "{}", self.text);
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()), "{}", self.text);
        assert!(self.body["detail"].is_string(), "{}", self.text);
        self
    }

    /// The `(field, code)` pairs of `errors[]`.
    pub(crate) fn fields(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts that `errors[]` has `field` with `code`.
    #[track_caller]
    pub(crate) fn field(&self, field: &str, code: &str) -> &Answer {
        assert!(
            self.fields().iter().any(|(f, c)| f == field && c == code),
            "expected {field}: {code} in {}",
            self.text
        );
        self
    }

    /// Asserts that `errors[]` is exactly these `(field, code)` pairs.
    #[track_caller]
    pub(crate) fn only_fields(&self, expected: &[(&str, &str)]) -> &Answer {
        let expected: Vec<(String, String)> =
            expected.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect();
        assert_eq!(self.fields(), expected, "{}", self.text);
        self
    }

    /// The message of the first error on `field`.
    pub(crate) fn message(&self, field: &str) -> String {
        self.body["errors"]
            .as_array()
            .and_then(|errors| errors.iter().find(|e| e["field"] == field))
            .and_then(|e| e["message"].as_str())
            .unwrap_or_else(|| panic!("no error on {field} in {}", self.text))
            .to_owned()
    }

    /// Asserts that none of `values` appears in the body, in any case.
    #[track_caller]
    pub(crate) fn never_mentions<S: AsRef<str>>(&self, values: &[S]) -> &Answer {
        let text = self.text.to_lowercase();
        for value in values {
            let value = value.as_ref().to_lowercase();
            assert!(!text.contains(&value), "the answer repeats the submitted value {value:?}: {}", self.text);
        }
        self
    }
}

/// Sends exactly these headers and bytes through the router.
pub(crate) async fn raw(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, headers, text, body }
}

/// A JSON request with a bearer token.
pub(crate) async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    raw(app, method, path, &headers, body.map(|b| b.to_string().into_bytes()).unwrap_or_default()).await
}

/// A figure of `/metrics`, by its full series name.
pub(crate) async fn metric(app: &TestApp, series: &str) -> u64 {
    let answer = raw(app, "GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer
        .text
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series} in {}", answer.text))
        .trim()
        .parse()
        .unwrap()
}

/// Row counts of every table that holds personal data or its traces,
/// and `audit`: the audit entries `/metrics` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counts(BTreeMap<&'static str, u64>);

const DATA_TABLES: [&str; 19] = [
    "services",
    "subjects",
    "items",
    "blind_index",
    "records",
    "consents",
    "idempotency",
    "api_keys",
    "staff",
    "sessions",
    "cookie_consents",
    "amendments",
    "outbox",
    "policy_versions",
    "requests",
    "request_codes",
    "request_steps",
    "restrictions",
    "disclosures",
];

pub(crate) async fn counts(app: &TestApp) -> Counts {
    let peek = Peek::of(app);
    let count = |db: Db, table: &str| peek.one::<u64>(db, &format!("SELECT count(*) FROM {table}"), &[]);
    let mut map = BTreeMap::new();
    for table in DATA_TABLES {
        map.insert(table, count(Db::Data, table));
    }
    map.insert("data_keys", count(Db::Keys, "data_keys"));
    map.insert("audit", metric(app, "custos_audit_entries").await);
    Counts(map)
}

impl std::ops::Index<&str> for Counts {
    type Output = u64;
    fn index(&self, table: &str) -> &u64 {
        &self.0[table]
    }
}

impl Counts {
    /// These counts with `changes` added.
    pub(crate) fn plus(&self, changes: &[(&'static str, u64)]) -> Counts {
        let mut out = self.clone();
        for (table, n) in changes {
            *out.0.get_mut(table).unwrap_or_else(|| panic!("no table {table}")) += n;
        }
        out
    }
}

/// The newest entry of the audit log: `(operation, outcome)`.
pub(crate) fn newest_audit_entry(app: &TestApp) -> (String, String) {
    let row = Peek::of(app).rows(Db::Data, "SELECT operation, outcome FROM audit ORDER BY seq DESC LIMIT 1", &[]);
    (col(&row[0], 0), col(&row[0], 1))
}

/// Asserts that a request refused by the access decision wrote exactly one
/// thing: its audit entry, of `operation` (the name the log uses: `read`,
/// `lookup`, `correct`, …) with the outcome `denied: <code>`. Every other
/// count is as in `before`. Returns the counts now, for the next refusal.
pub(crate) async fn assert_denial_audited(
    app: &TestApp,
    before: &Counts,
    operation: &str,
    code: &str,
    case: &str,
) -> Counts {
    let now = counts(app).await;
    assert_eq!(now, before.plus(&[("audit", 1)]), "{case}: only the refusal's audit entry is added");
    let newest = newest_audit_entry(app);
    assert_eq!(newest, (operation.to_owned(), format!("denied: {code}")), "{case}: the newest audit entry");
    now
}

/// b.stage has no sign-up point for the members of a service that takes an
/// e-mail address; tests of look-ups and per-service uniqueness add this one.
pub(crate) const FINDABLE_MEMBERS: &str = r#"
[[collection_points]]
id = "service_member_signup"
name = "Upon joining a service"
subject_kinds = ["service_member"]
required = ["email"]
purposes = ["member_management"]
sources = ["direct_entry"]
"#;

/// A `TestApp` like `TestApp::new` but on the policy `text`.
pub(crate) async fn app_with_policy(name: &str, text: &str) -> TestApp {
    use std::sync::Arc;

    use custos_server::clock::ManualClock;
    use custos_server::http::{AppState, app};

    use crate::support::{Scratch, engine_config, start_time};

    let policy = custos_engine::policy::parse(text).unwrap();
    let dir = Scratch::new(name);
    let (engine, _) = custos_engine::Engine::open(&engine_config(&dir), policy).await.unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let router = app(AppState::new(engine.clone(), clock.clone()), 256 * 1024);
    let purposes = engine.policy().purposes.iter().map(|p| p.id.to_string()).collect();
    let key = engine.create_api_key(None, purposes, "tests".into(), start_time()).await.unwrap().token;
    TestApp { router, engine, clock, key, dir }
}

/// A business operator's sign-up.
pub(crate) fn operator_signup(email: &str, phone: &str) -> Value {
    json!({
        "kind": "business_operator",
        "collection_point": "business_operator_signup",
        "source": "direct_entry",
        "items": {
            "name": "Hong Gildong", "email": email, "mobile_phone": phone, "password": "correct horse battery"
        }
    })
}

/// A non-business operator's sign-up.
pub(crate) fn individual_signup(email: &str, phone: &str) -> Value {
    let mut body = operator_signup(email, phone);
    body["kind"] = json!("non_business_operator");
    body["collection_point"] = json!("non_business_operator_signup");
    body
}

/// A member of `service`: b.stage collects from `service_member` only
/// at `automatic_generation`, so a member is what that point generates.
pub(crate) fn member_signup(service: &str) -> Value {
    json!({
        "service": service,
        "kind": "service_member",
        "collection_point": "automatic_generation",
        "source": "generated",
        "items": {"ip_address": "203.0.113.7", "device_info": "Pixel 8, Android 14"}
    })
}

/// Posts a sign-up that must succeed; returns the id.
pub(crate) async fn sign_up(app: &TestApp, token: &str, body: &Value) -> String {
    let answer = call(app, "POST", "/v1/subjects", Some(token), Some(body)).await;
    answer.expect(201)["id"].as_str().unwrap().to_owned()
}

/// A service of a new business operator number `n` (its own e-mail and
/// phone, so that several services can coexist).
pub(crate) async fn new_service(app: &TestApp, n: u16) -> String {
    let operator =
        sign_up(app, &app.key, &operator_signup(&format!("operator{n}@example.com"), &format!("+82 10 5555 {n:04}")))
            .await;
    let answer = call(app, "POST", "/v1/services", Some(&app.key), Some(&json!({"operator": operator}))).await;
    answer.expect(201)["id"].as_str().unwrap().to_owned()
}

/// The string values under `items` of a request body worth looking for
/// in an answer (long enough not to match by chance).
pub(crate) fn personal_values(body: &Value) -> Vec<String> {
    body["items"]
        .as_object()
        .map(|items| {
            items.values().filter_map(Value::as_str).filter(|v| v.trim().len() >= 6).map(str::to_owned).collect()
        })
        .unwrap_or_default()
}

/// A small deterministic generator (xorshift64) for the random tests'
/// choices and moments: the same seed gives the same run.
pub(crate) fn next_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A monotonic start, for how long a refusal takes in a fault test (the
/// server's behaviour never depends on it).
#[allow(clippy::disallowed_methods)] // reason: elapsed time of a fault test, not a clock of the system under test
pub(crate) fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

//! A Custos instance for in-process tests: a scratch data folder, the
//! bundled b.stage policy, a manual clock, and a platform API key for every
//! purpose. Requests go through the real router with `oneshot`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use custos_engine::{Engine, EngineConfig};
use custos_server::clock::Clock;
use custos_server::clock::ManualClock;
use custos_server::config::BUNDLED_POLICY;
use custos_server::http::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A scratch folder, removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("custos-it-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        drop_database(&self.0);
    }
}

/// The PostgreSQL server the conformance run gives (`with-postgres` sets
/// `TESTPG_URL`); `None`: the tests run on SQLite.
#[allow(clippy::disallowed_methods, reason = "the test harness's choice of backend, not configuration")]
pub(crate) fn test_postgres() -> Option<String> {
    std::env::var("TESTPG_URL").ok().filter(|u| !u.is_empty())
}

/// The databases created for scratch folders on the test server, so a
/// folder reopened finds its data and a dropped one takes its database.
fn databases() -> &'static std::sync::Mutex<std::collections::HashMap<PathBuf, String>> {
    static DATABASES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, String>>> =
        std::sync::OnceLock::new();
    DATABASES.get_or_init(Default::default)
}

/// The URL of the scratch folder's own database on the test server,
/// created on first use; `None` on SQLite.
pub(crate) fn database_for(dir: &Scratch) -> Option<String> {
    let base = test_postgres()?;
    let mut map = databases().lock().unwrap();
    let name = match map.get(&dir.0) {
        Some(name) => name.clone(),
        None => {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("it_{}_{n}", std::process::id());
            admin_sql(&base, &format!("CREATE DATABASE {name}")).unwrap();
            map.insert(dir.0.clone(), name.clone());
            name
        }
    };
    Some(format!("{base}{name}"))
}

fn drop_database(dir: &std::path::Path) {
    let Some(name) = databases().lock().ok().and_then(|mut m| m.remove(dir)) else { return };
    if let Some(base) = test_postgres() {
        let _ = admin_sql(&base, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// One statement on the test server's `postgres` database, from a thread
/// of its own (the synchronous client may not run inside a runtime).
fn admin_sql(base: &str, sql: &str) -> Result<(), String> {
    let (base, sql) = (base.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut admin =
            postgres::Client::connect(&format!("{base}postgres"), postgres::NoTls).map_err(|e| e.to_string())?;
        admin.batch_execute(&sql).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the admin connection panicked".to_string())?
}

/// 2024-06-01T00:00:00Z, the tests' "now".
pub(crate) fn start_time() -> jiff::Timestamp {
    "2024-06-01T00:00:00Z".parse().unwrap()
}

pub(crate) struct TestApp {
    pub(crate) router: Router,
    pub(crate) engine: Engine,
    pub(crate) clock: Arc<ManualClock>,
    /// A platform-wide key allowed every purpose.
    pub(crate) key: String,
    pub(crate) dir: Scratch,
}

pub(crate) fn engine_config(dir: &Scratch) -> EngineConfig {
    EngineConfig {
        data_dir: dir.0.join("data"),
        root_key_file: dir.0.join("root.key"),
        hash_workers: 2,
        readers: 2,
        mail: None,
        database: database_for(dir).map(|url| custos_engine::DatabaseUrls { url, key_url: None }),
    }
}

impl TestApp {
    pub(crate) async fn new(name: &str) -> TestApp {
        TestApp::in_folder(Scratch::new(name)).await
    }

    /// Opens (or reopens) the instance kept in `dir`.
    pub(crate) async fn in_folder(dir: Scratch) -> TestApp {
        let policy = custos_engine::policy::parse(BUNDLED_POLICY).unwrap();
        let (engine, _) = Engine::open(&engine_config(&dir), policy).await.unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        let router = app(AppState::new(engine.clone(), clock.clone()), 256 * 1024);
        let purposes = engine.policy().purposes.iter().map(|p| p.id.to_string()).collect();
        let key = engine.create_api_key(None, purposes, "tests".into(), start_time()).await.unwrap().token;
        TestApp { router, engine, clock, key, dir }
    }

    /// An API key for `service` (None: platform) limited to `purposes`.
    pub(crate) async fn key_for(&self, service: Option<&str>, purposes: &[&str]) -> String {
        let purposes = purposes.iter().map(|p| p.to_string()).collect();
        self.engine
            .create_api_key(service.map(str::to_owned), purposes, "tests".into(), start_time())
            .await
            .unwrap()
            .token
    }

    /// Sends a request; returns the status, the JSON body (Null when empty)
    /// and the content type.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, value, _) =
            self.send_full(method, path, token, body.map(|b| b.to_string().into_bytes()), &[]).await;
        (status, value)
    }

    pub(crate) async fn send_full(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, String) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value, content_type)
    }

    /// Signs up a business operator (a platform subject); returns its id.
    pub(crate) async fn business_operator(&self, email: &str, phone: &str) -> String {
        let (status, body) = self
            .send(
                "POST",
                "/v1/subjects",
                Some(&self.key),
                Some(json!({
                    "kind": "business_operator",
                    "collection_point": "business_operator_signup",
                    "source": "direct_entry",
                    "items": {"name": "Test Operator", "email": email, "mobile_phone": phone, "password": "a long enough password"}
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a service run by a new business operator; returns its id.
    pub(crate) async fn service(&self, operator_email: &str) -> String {
        let operator = self.business_operator(operator_email, "+82 10 5555 0000").await;
        let (status, body) =
            self.send("POST", "/v1/services", Some(&self.key), Some(json!({"operator": operator}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

/// The password every test staff member enrols with.
pub(crate) const STAFF_PASSWORD: &str = "correct horse battery staple";

/// A staff member enrolled in a test instance.
#[derive(Clone)]
pub(crate) struct StaffMember {
    pub(crate) id: String,
    pub(crate) email: String,
    /// The TOTP secret, raw bytes.
    pub(crate) secret: Vec<u8>,
}

impl TestApp {
    /// Invites `email` to `role` (in `service`) with the platform key;
    /// returns the staff id and the invitation token.
    pub(crate) async fn invite(&self, email: &str, role: &str, service: Option<&str>) -> (String, String) {
        let body = json!({"email": email, "role": role, "service": service});
        let (status, body) = self.send("POST", "/v1/staff/invitations", Some(&self.key), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["staff_id"].as_str().unwrap().to_owned(), body["token"].as_str().unwrap().to_owned())
    }

    /// Invites `email` to `role` (in `service`) with the platform key and
    /// accepts the invitation.
    pub(crate) async fn enrol_staff(&self, email: &str, role: &str, service: Option<&str>) -> StaffMember {
        let (_, token) = self.invite(email, role, service).await;
        self.accept(email, &token).await
    }

    /// Accepts an invitation token with [`STAFF_PASSWORD`].
    pub(crate) async fn accept(&self, email: &str, token: &str) -> StaffMember {
        let (status, body) =
            self.send("POST", "/v1/staff/enrol", None, Some(json!({"token": token, "password": STAFF_PASSWORD}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let secret = custos_engine::totp::unbase32(body["totp_secret"].as_str().unwrap()).unwrap();
        StaffMember { id: body["staff_id"].as_str().unwrap().to_owned(), email: email.to_owned(), secret }
    }

    /// The current TOTP code of a staff member, after moving the clock to
    /// the next 30-second step (a code counts once).
    pub(crate) fn next_code(&self, staff: &StaffMember) -> String {
        self.clock.advance(jiff::SignedDuration::from_secs(30));
        custos_engine::totp::code(&staff.secret, self.clock.now())
    }

    /// Logs in; returns the session token.
    pub(crate) async fn login(&self, staff: &StaffMember) -> String {
        let code = self.next_code(staff);
        let (status, body) = self
            .send(
                "POST",
                "/v1/sessions",
                None,
                Some(json!({"email": staff.email, "password": STAFF_PASSWORD, "code": code})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

//! The browser tests' kit: an instance on a real socket, the test mailbox
//! the scripts read one-time codes from, and running one Node script.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use custos_engine::Engine;
use custos_engine::lifecycle::MailConfig;
use custos_engine::mail;
use custos_server::clock::ManualClock;
use custos_server::http::{AppState, app};

use crate::smtp_sink::SmtpSink;
use crate::support::{Scratch, TestApp, engine_config, start_time};

/// An instance on `policy` (TOML text), with mail to `sink` when given.
pub(crate) async fn instance(name: &str, policy: &str, sink: Option<&SmtpSink>) -> TestApp {
    let dir = Scratch::new(name);
    let mut config = engine_config(&dir);
    config.mail = sink.map(|sink| MailConfig {
        smtp: mail::SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.port(),
            security: mail::Security::None,
            username: None,
            password: None,
            from: "privacy@custos.example".into(),
            helo_name: "custos-browser-tests".into(),
            timeout: Duration::from_secs(5),
        },
        processor: None,
    });
    let policy = custos_engine::policy::parse(policy).unwrap();
    let (engine, _) = Engine::open(&config, policy).await.unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let router = app(AppState::new(engine.clone(), clock.clone()), 256 * 1024);
    let purposes = engine.policy().purposes.iter().map(|p| p.id.to_string()).collect();
    let key = engine.create_api_key(None, purposes, "tests".into(), start_time()).await.unwrap().token;
    TestApp { router, engine, clock, key, dir }
}

/// A router served on a free port of 127.0.0.1 until dropped.
pub(crate) struct Served {
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn serve(router: Router) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service).await.unwrap();
    });
    Served { url, task }
}

#[derive(serde::Deserialize)]
struct MailQuery {
    to: String,
}

/// The test mailbox: `GET /mail?to=ADDRESS` answers the newest message the
/// SMTP sink received for that address (headers and body), or 404.
pub(crate) async fn mailbox(sink: Arc<SmtpSink>) -> Served {
    async fn newest(State(sink): State<Arc<SmtpSink>>, Query(q): Query<MailQuery>) -> (axum::http::StatusCode, String) {
        match sink.messages().into_iter().rev().find(|m| m.to.iter().any(|t| t == &q.to)) {
            Some(m) => (axum::http::StatusCode::OK, m.data),
            None => (axum::http::StatusCode::NOT_FOUND, String::new()),
        }
    }
    serve(Router::new().route("/mail", get(newest)).with_state(sink)).await
}

/// The Node scripts' folder, `tests/browser/` at the repository root.
fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// A child process killed when dropped, so a failed or abandoned test
/// leaves no browser or server behind.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `custos serve --demo` (the real binary) in `dir` on a free port, with
/// the wall clock: answers the process, its address and the demo officer's
/// TOTP secret, once it listens.
pub(crate) fn serve_demo(dir: &std::path::Path) -> (Killed, String, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .env_clear()
        .env("CUSTOS_ROOT_KEY_FILE", dir.join("root.key"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("demo"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("custos serve --demo starts");
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    // Read on a thread to the end, so the server never blocks on a full pipe.
    let (found, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut address, mut secret) = (None, None);
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((_, rest)) = line.split_once("TOTP secret ") {
                secret = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some((_, rest)) = line.split_once(" on http://") {
                address = Some(format!("http://{}", rest.split_whitespace().next().unwrap_or("")));
            }
            if line.starts_with("demo pages:") {
                let _ = found.send((address.take(), secret.take()));
            }
        }
    });
    let (address, secret) = told.recv_timeout(Duration::from_secs(120)).expect("the demo starts within 2 minutes");
    (child, address.expect("the demo says where it listens"), secret.expect("the demo prints the officer's secret"))
}

/// Runs `node <script>` with `env` and fails the test unless it exits 0.
/// The script has its own time limit; its output goes to the test's.
pub(crate) async fn run_node(script: &str, env: &[(&str, &str)]) {
    let dir = scripts();
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and playwright-core: run scripts/ensure-browser"
    );
    let mut command = Command::new("node");
    command.arg(script).current_dir(&dir).stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = Killed(command.spawn().expect("node runs"));
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.0.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "{script} failed: {status}");
}

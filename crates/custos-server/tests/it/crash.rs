//! Crash safety of the real binary (DESIGN §10): `custos serve` on a data
//! folder of its own on 127.0.0.1, concurrent clients writing sign-ups,
//! consents and rights requests and recording every id the server
//! acknowledged (201), the server killed with SIGKILL at a random moment,
//! then restarted. After every kill the data files pass SQLite's integrity
//! check, and every acknowledged write of every round is there: each
//! member readable through the API, each consent in their ledger, each
//! request on file.
//!
//! `CUSTOS_CRASH_ROUNDS` sets the number of kills (3 in the test suite);
//! the figures are printed (`cargo test -p custos-server --test it crash --
//! --nocapture`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

use crate::kit::{next_random, operator_signup};
use crate::support::Scratch;

/// One HTTP/1.1 exchange over a fresh connection: (status, JSON body).
pub(crate) fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\
         content-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let (_, rest) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    Ok((status, serde_json::from_str(rest).unwrap_or(Value::Null)))
}

/// `custos <args…> --data-dir …` on the instance in `dir`.
pub(crate) fn custos(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
    cmd.env_clear().env("CUSTOS_ROOT_KEY_FILE", dir.join("root.key"));
    cmd.args(args).args(["--data-dir", &dir.join("data").display().to_string()]);
    cmd
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing
/// test leaves no server behind.
pub(crate) struct Running(pub(crate) Child);

impl Running {
    /// Kills it now (SIGKILL) and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `custos serve` on a free port; returns it once `/ready` answers.
pub(crate) fn serve(dir: &Path) -> (Running, SocketAddr) {
    serve_command(custos(dir, &["serve", "--listen", "127.0.0.1:0"]))
}

/// Starts a `custos serve` command (listening on port 0) and returns it
/// once `/ready` answers; what it said on stderr when it does not start.
pub(crate) fn serve_command(mut command: Command) -> (Running, SocketAddr) {
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("custos serve starts");
    let (found, address) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let said = Arc::new(Mutex::new(String::new()));
    let heard = said.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split_once(" on http://").and_then(|(_, a)| a.trim().parse::<SocketAddr>().ok()) {
                let _ = found.send(addr);
            }
            let mut said = heard.lock().unwrap();
            if said.len() < 4096 {
                said.push_str(&line);
                said.push('\n');
            }
        }
    });
    let running = Running(child);
    if let Ok(addr) = address.recv_timeout(Duration::from_secs(60)) {
        for _ in 0..600 {
            if matches!(send(addr, "GET", "/ready", "", None), Ok((200, _))) {
                return (running, addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("custos serve did not become ready within 90 s: {}", said.lock().unwrap());
}

/// A service for the members (its operator signs up once: one password);
/// its id.
pub(crate) fn new_service(addr: SocketAddr, token: &str, email: &str, phone: &str) -> String {
    let (status, operator) = send(addr, "POST", "/v1/subjects", token, Some(&operator_signup(email, phone))).unwrap();
    assert_eq!(status, 201, "{operator}");
    let (status, service) =
        send(addr, "POST", "/v1/services", token, Some(&json!({"operator": operator["id"]}))).unwrap();
    assert_eq!(status, 201, "{service}");
    service["id"].as_str().unwrap().to_owned()
}

/// What the server acknowledged, across every round.
#[derive(Default)]
pub(crate) struct Acknowledged {
    pub(crate) members: Vec<String>,
    pub(crate) consents: Vec<(String, String)>,
    pub(crate) requests: Vec<String>,
}

/// A client: signs members up, records a consent for each and files an
/// export request for every other one, until the server goes away.
pub(crate) fn client(
    addr: SocketAddr,
    token: String,
    service: String,
    ack: Arc<Mutex<Acknowledged>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let member = json!({"service": service, "kind": "service_member", "collection_point": "automatic_generation",
                            "source": "generated", "items": {"ip_address": "203.0.113.7", "device_info": "Pixel 8"}});
        let Ok((201, body)) = send(addr, "POST", "/v1/subjects", &token, Some(&member)) else { return };
        let id = body["id"].as_str().unwrap().to_owned();
        ack.lock().unwrap().members.push(id.clone());
        let consent = json!({"purpose": "marketing", "granted": true, "channel": "web_page", "notice_text": "Offers?"});
        let Ok((201, body)) = send(addr, "POST", &format!("/v1/subjects/{id}/consents"), &token, Some(&consent)) else {
            return;
        };
        ack.lock().unwrap().consents.push((id.clone(), body["entry"]["id"].as_str().unwrap().to_owned()));
        let request =
            json!({"kind": "export", "channel": "web_page", "subject": id, "verification": "platform_session"});
        let Ok((201, body)) = send(addr, "POST", "/v1/requests", &token, Some(&request)) else { return };
        ack.lock().unwrap().requests.push(body["request"]["id"].as_str().unwrap().to_owned());
    }
}

/// Every acknowledged write is there, read through the API (members and
/// their consents) and from the data file (requests, which only staff
/// read over HTTP).
fn check_all(addr: SocketAddr, token: &str, dir: &Path, ack: &Acknowledged) -> Vec<String> {
    let mut lost = Vec::new();
    for id in &ack.members {
        let read = send(addr, "GET", &format!("/v1/subjects/{id}?purpose=member_management"), token, None);
        if !matches!(&read, Ok((200, body)) if body["items"]["device_info"] == "Pixel 8") {
            lost.push(format!("member {id}: {read:?}"));
        }
    }
    for (member, consent) in &ack.consents {
        let ledger = send(addr, "GET", &format!("/v1/subjects/{member}/consents"), token, None);
        let found = matches!(&ledger, Ok((200, body))
            if body["history"].as_array().is_some_and(|h| h.iter().any(|e| e["id"] == consent.as_str())));
        if !found {
            lost.push(format!("consent {consent} of {member}: {ledger:?}"));
        }
    }
    let db = rusqlite::Connection::open_with_flags(
        dir.join("data").join("custos.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    for id in &ack.requests {
        let n: i64 = db.query_row("SELECT count(*) FROM requests WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        if n != 1 {
            lost.push(format!("request {id}"));
        }
    }
    lost
}

/// `PRAGMA integrity_check` of each data file as the kill left it: on a
/// copy (with its write-ahead log), so the recovery the check itself runs
/// does not spare the server its own recovery of the original.
pub(crate) fn integrity(dir: &Path) {
    let copy = dir.join("integrity-copy");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["custos.db", "keys.db", "dormant.db"] {
        let path = dir.join("data").join(file);
        if !path.exists() {
            continue;
        }
        for suffix in ["", "-wal"] {
            let from = dir.join("data").join(format!("{file}{suffix}"));
            if from.exists() {
                std::fs::copy(&from, copy.join(format!("{file}{suffix}"))).unwrap();
            }
        }
        let db = rusqlite::Connection::open(copy.join(file)).unwrap();
        let ok: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "{file} after a kill");
    }
    std::fs::remove_dir_all(&copy).unwrap();
}

#[test]
fn killed_mid_write_with_sigkill_loses_no_acknowledged_write() {
    if crate::support::test_postgres().is_some() {
        return; // SQLite only: kills `custos serve` on a data folder; SQLite integrity_check
    }
    let rounds: u32 = custos_server::env::custos_vars()
        .into_iter()
        .find(|(k, _)| k == "CUSTOS_CRASH_ROUNDS")
        .and_then(|(_, v)| v.ok()?.parse().ok())
        .unwrap_or(3);
    let scratch = Scratch::new("crash");
    let dir = scratch.0.clone();
    let created = custos(&dir, &["admin", "create-key", "--label", "crash"]).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();

    let (mut server, addr) = serve(&dir);
    let service = new_service(addr, &token, "crash@example.com", "+82 10 5555 0900");

    let ack = Arc::new(Mutex::new(Acknowledged::default()));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut addr = addr;
    let mut members_before = 0;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (token, service, ack, stop) = (token.clone(), service.clone(), ack.clone(), stop.clone());
                std::thread::spawn(move || client(addr, token, service, ack, stop))
            })
            .collect();
        // Kill at a random moment between 0.2 and 1.2 s into the load, once
        // the clients have written something this round (a loaded machine
        // can take longer than that to serve the first request).
        std::thread::sleep(Duration::from_millis(200 + next_random(&mut seed) % 1000));
        for _ in 0..600 {
            if ack.lock().unwrap().members.len() > members_before {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        integrity(&dir);
        let (restarted, new_addr) = serve(&dir);
        server = restarted;
        addr = new_addr;
        let ack = ack.lock().unwrap();
        assert!(ack.members.len() > members_before, "round {}: the clients wrote before the kill", round + 1);
        members_before = ack.members.len();
        let lost = check_all(addr, &token, &dir, &ack);
        // The figures, for the long runs (`--nocapture`).
        let _ = writeln!(
            std::io::stderr(),
            "crash round {}: acknowledged so far {} sign-ups, {} consents, {} requests; lost {}",
            round + 1,
            ack.members.len(),
            ack.consents.len(),
            ack.requests.len(),
            lost.len()
        );
        assert!(lost.is_empty(), "acknowledged writes lost after kill {}: {lost:#?}", round + 1);
    }
    let ack = ack.lock().unwrap();
    assert!(ack.members.len() as u32 >= rounds, "the clients wrote between the kills");
    server.kill();
}

//! A `custos serve` the harness starts and stops itself: a scratch folder
//! (data folder and root key side by side, the key outside the data), an API
//! key made with `custos admin create-key` before the server starts, the
//! address the server reports for `--listen 127.0.0.1:0`, and `/ready`.
//! The child gets an empty environment plus `CUSTOS_ROOT_KEY_FILE`, so no
//! stray `CUSTOS_*` variable of the caller changes what is measured.
//! With a PostgreSQL cluster (`--backend postgres`) each server gets a fresh
//! database of it (`--database URL`, on every `custos` command the harness
//! runs on that instance), dropped when the server's data is let go.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::clock;
use crate::pg::{Cluster, Database};

/// A scratch folder, removed when dropped.
#[derive(Debug)]
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Result<Scratch, String> {
        let dir = std::env::temp_dir().join(format!("custos-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the scratch folder {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `custos serve`.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// A platform API key allowed every purpose.
    pub(crate) token: String,
    log: Arc<Mutex<VecDeque<String>>>,
    /// The data folder; taken by [`Server::stop_keeping_data`].
    scratch: Option<Scratch>,
    policy: Option<PathBuf>,
    /// The PostgreSQL database it serves from, if any.
    database: Option<Database>,
}

/// The data folder of a server that was stopped cleanly, for one-shot
/// commands on it (`custos audit export`); removed when dropped.
#[derive(Debug)]
pub(crate) struct Stopped {
    scratch: Scratch,
    policy: Option<PathBuf>,
    database: Option<Database>,
}

impl Stopped {
    /// The scratch folder (data folder and root key inside it).
    pub(crate) fn dir(&self) -> &Path {
        &self.scratch.0
    }

    /// `custos <args…>` on this instance, with the environment `serve` had;
    /// the instance arguments (`--data-dir`, `--policy`) follow `args`.
    pub(crate) fn command(&self, custos: &Path, args: &[&str]) -> Command {
        let mut cmd = instance_command(custos, &self.scratch);
        cmd.args(args).args(instance_args(&self.scratch, self.policy.as_deref(), self.database.as_ref()));
        cmd
    }
}

/// CPU seconds used so far by the server, by the harness, by the
/// PostgreSQL cluster (0 on SQLite) and by the whole machine, bytes the
/// server has written and bytes of WAL the cluster has logged (0 on
/// SQLite); or, from [`Usage::until`], the same over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Usage {
    pub(crate) server_cpu: f64,
    pub(crate) harness_cpu: f64,
    pub(crate) database_cpu: f64,
    pub(crate) machine_cpu: f64,
    pub(crate) server_written: f64,
    pub(crate) database_wal: f64,
}

impl Usage {
    pub(crate) fn until(self, later: Usage) -> Usage {
        Usage {
            server_cpu: later.server_cpu - self.server_cpu,
            harness_cpu: later.harness_cpu - self.harness_cpu,
            database_cpu: later.database_cpu - self.database_cpu,
            machine_cpu: later.machine_cpu - self.machine_cpu,
            server_written: later.server_written - self.server_written,
            database_wal: later.database_wal - self.database_wal,
        }
    }
}

/// Commits since start, from `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Commits {
    pub(crate) batches: u64,
    pub(crate) jobs: u64,
}

impl Commits {
    /// Jobs per group commit between `self` and a later reading.
    pub(crate) fn jobs_per_commit_until(self, later: Commits) -> f64 {
        let batches = later.batches.saturating_sub(self.batches);
        later.jobs.saturating_sub(self.jobs) as f64 / batches.max(1) as f64
    }
}

/// `custos` with an empty environment but for the scratch folder's root key.
pub(crate) fn instance_command(custos: &Path, scratch: &Scratch) -> Command {
    let mut cmd = Command::new(custos);
    cmd.env_clear().env("CUSTOS_ROOT_KEY_FILE", scratch.0.join("root.key"));
    cmd
}

/// The arguments naming an instance: its data folder, policy and database.
pub(crate) fn instance_args(scratch: &Scratch, policy: Option<&Path>, database: Option<&Database>) -> Vec<String> {
    let mut args = vec!["--data-dir".to_owned(), scratch.0.join("data").display().to_string()];
    if let Some(p) = policy {
        args.extend(["--policy".to_owned(), p.display().to_string()]);
    }
    if let Some(db) = database {
        args.extend(["--database".to_owned(), db.url.clone()]);
    }
    args
}

impl Server {
    /// Creates an instance in a new scratch folder (and, with a cluster, a
    /// new database of it) and starts serving it. `policy`: a policy file,
    /// or `None` for the bundled b.stage policy.
    pub(crate) fn start(
        custos: &Path,
        name: &str,
        policy: Option<&Path>,
        cluster: Option<&Arc<Cluster>>,
    ) -> Result<Server, String> {
        Server::start_seeded(custos, name, policy, cluster, &[])
    }

    /// [`Server::start`], after `custos <seed…>` ran on the new instance
    /// (nothing when `seed` is empty).
    pub(crate) fn start_seeded(
        custos: &Path,
        name: &str,
        policy: Option<&Path>,
        cluster: Option<&Arc<Cluster>>,
        seed: &[&str],
    ) -> Result<Server, String> {
        let scratch = Scratch::new(name)?;
        let database = cluster.map(|c| c.database(name)).transpose()?;
        let instance = instance_args(&scratch, policy, database.as_ref());
        if !seed.is_empty() {
            let seeded = instance_command(custos, &scratch)
                .args(seed)
                .args(&instance)
                .output()
                .map_err(|e| format!("cannot run {} {}: {e}", custos.display(), seed.join(" ")))?;
            if !seeded.status.success() {
                return Err(format!(
                    "custos {} failed ({}): {}",
                    seed.join(" "),
                    seeded.status,
                    String::from_utf8_lossy(&seeded.stderr).trim()
                ));
            }
        }
        let created = instance_command(custos, &scratch)
            .args(["admin", "create-key", "--label", "custos-bench"])
            .args(&instance)
            .output()
            .map_err(|e| format!("cannot run {} admin create-key: {e}", custos.display()))?;
        let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
        if !created.status.success() || !token.starts_with("ck_") {
            return Err(format!(
                "custos admin create-key failed ({}): {}",
                created.status,
                String::from_utf8_lossy(&created.stderr).trim()
            ));
        }

        let mut child = instance_command(custos, &scratch)
            .arg("serve")
            .args(&instance)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", custos.display()))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (found, address) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            // Drains the server's log for its whole life (a full pipe would
            // stall it), passing on the address it reports and keeping the
            // last lines for error messages.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.split_once(" on http://").and_then(|(_, a)| a.trim().parse().ok()) {
                        let _ = found.send(addr);
                    }
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_back(line);
                    if log.len() > 40 {
                        log.pop_front();
                    }
                }
            });
        }
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token,
            log,
            scratch: Some(scratch),
            policy: policy.map(Path::to_path_buf),
            database,
        };
        server.addr = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => return Err(format!("custos serve did not report its address:\n{}", server.log_tail())),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// The instance's data file (none on PostgreSQL).
    pub(crate) fn data_file(&self) -> Option<PathBuf> {
        match self.database {
            Some(_) => None,
            None => self.scratch.as_ref().map(|s| s.0.join("data").join("custos.db")),
        }
    }

    /// The PostgreSQL database it serves from, if any.
    pub(crate) fn database(&self) -> Option<&Database> {
        self.database.as_ref()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let start = clock::now();
        loop {
            if let Ok((200, _)) = http_get(self.addr, "/ready") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("custos serve exited ({status}) before it was ready:\n{}", self.log_tail()));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("custos serve was not ready after 30 s:\n{}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
    }

    /// Resident and peak resident memory in KiB (VmRSS, VmHWM).
    pub(crate) fn memory_kib(&self) -> Result<(u64, u64), String> {
        memory_kib(self.child.id())
    }

    /// What the server, the harness and the machine have used so far.
    pub(crate) fn usage(&self) -> Result<Usage, String> {
        let pid = self.child.id();
        let (database_cpu, database_wal) = match &self.database {
            Some(db) => (db.cluster().cpu_seconds()?, db.cluster().wal_bytes()? as f64),
            None => (0.0, 0.0),
        };
        Ok(Usage {
            server_cpu: cpu_seconds(&format!("/proc/{pid}/stat"))?,
            harness_cpu: cpu_seconds("/proc/self/stat")?,
            database_cpu,
            machine_cpu: machine_busy_seconds()?,
            server_written: written_bytes(&format!("/proc/{pid}/io"))? as f64,
            database_wal,
        })
    }

    pub(crate) fn commits(&self) -> Result<Commits, String> {
        parse_commits(&self.metrics()?)
    }

    /// Audit entries stored (`custos_audit_entries` of `/metrics`).
    pub(crate) fn audit_entries(&self) -> Result<u64, String> {
        metric(&self.metrics()?, "custos_audit_entries")
    }

    fn metrics(&self) -> Result<String, String> {
        match http_get(self.addr, "/metrics")? {
            (200, text) => Ok(text),
            (status, text) => Err(format!("/metrics answered {status}: {text}")),
        }
    }

    /// Stops the server with SIGTERM (a clean stop checkpoints the data) and
    /// waits for it; a server that does not stop in 30 s is killed. The
    /// scratch folder is removed.
    pub(crate) fn stop(mut self) -> Result<(), String> {
        self.halt()
    }

    /// Stops the server like [`Server::stop`] but keeps its data folder.
    pub(crate) fn stop_keeping_data(mut self) -> Result<Stopped, String> {
        self.halt()?;
        let scratch = self.scratch.take().ok_or("the server's data folder is gone")?;
        Ok(Stopped { scratch, policy: self.policy.take(), database: self.database.take() })
    }

    fn halt(&mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let start = clock::now();
        while start.elapsed() < Duration::from_secs(30) {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("custos serve stopped with {status}:\n{}", self.log_tail())),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("cannot wait for custos serve: {e}")),
            }
        }
        Err("custos serve did not stop within 30 s of SIGTERM; killed".to_owned())
    }
}

impl Drop for Server {
    /// A server the harness did not stop cleanly (an error on the way) is
    /// killed, never left running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident and peak resident memory of a process in KiB (VmRSS, VmHWM).
pub(crate) fn memory_kib(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("{path} has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A one-off `GET` with `Connection: close`, for `/ready` and `/metrics`.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    http_get_as(addr, path, None)
}

/// A one-off `GET` like [`http_get`], with the API key `token` if given.
/// The answer is read to the end; a chunked body is not decoded.
pub(crate) fn http_get_as(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| format!("cannot set a timeout: {e}"))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
        .map_err(|e| format!("cannot send GET {path}: {e}"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| format!("cannot read the answer to GET {path}: {e}"))?;
    let status =
        text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("GET {path}: no status line"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A one-off request with `Connection: close` and a JSON body if given;
/// the answer is read to the end (the server sends a length, never chunks,
/// for these answers).
pub(crate) fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| format!("cannot set a timeout: {e}"))?;
    let body = body.unwrap_or("");
    let content = if body.is_empty() { String::new() } else { "Content-Type: application/json\r\n".to_owned() };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{content}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("cannot send {method} {path}: {e}"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| format!("cannot read the answer to {method} {path}: {e}"))?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status line"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// User plus system CPU time of a process from its `stat` file
/// (`/proc/self/stat` for the harness itself), in seconds.
fn cpu_seconds(stat_path: &str) -> Result<f64, String> {
    // Fields 14 and 15 (utime, stime).
    stat_cpu_seconds(stat_path, 11)
}

/// User plus system CPU time of the harness's children that have ended and
/// been waited for (`cutime`, `cstime`), in seconds: around a one-shot
/// command, the CPU time it used.
pub(crate) fn children_cpu_seconds() -> Result<f64, String> {
    // Fields 16 and 17 (cutime, cstime).
    stat_cpu_seconds("/proc/self/stat", 13)
}

/// The sum of two adjacent tick counts of a `stat` file, `first` counted
/// from the field after the command name (which may hold spaces).
pub(crate) fn stat_cpu_seconds(stat_path: &str, first: usize) -> Result<f64, String> {
    let text = std::fs::read_to_string(stat_path).map_err(|e| format!("cannot read {stat_path}: {e}"))?;
    let after_name = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (ticks(first), ticks(first + 1)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / clock_ticks_per_second()),
        _ => Err(format!("{stat_path} has no CPU times")),
    }
}

/// `write_bytes` of a process's `io` file (`/proc/self/io` for the harness):
/// bytes it caused to be sent to storage, counted when pages are dirtied.
pub(crate) fn written_bytes(io_path: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(io_path).map_err(|e| format!("cannot read {io_path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{io_path} has no write_bytes"))
}

/// CPU time the whole machine has been busy (every CPU, every process), in
/// seconds: set against the server's and the harness's own time, it shows
/// whether anything else ran during a measurement.
fn machine_busy_seconds() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| format!("cannot read /proc/stat: {e}"))?;
    let line = text.lines().find(|l| l.starts_with("cpu ")).ok_or("/proc/stat has no cpu line")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: u64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Ok(busy as f64 / clock_ticks_per_second())
}

/// `getconf CLK_TCK`, read once; 100 (the Linux default) if it cannot be run.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// One unlabelled whole-number value of the `/metrics` text.
fn metric(metrics: &str, name: &str) -> Result<u64, String> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("/metrics has no {name}"))
}

fn parse_commits(metrics: &str) -> Result<Commits, String> {
    Ok(Commits {
        batches: metric(metrics, "custos_commit_batches_total")?,
        jobs: metric(metrics, "custos_committed_jobs_total")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_figures_from_metrics() {
        let text = "# HELP custos_commit_batches_total Group commits since start.\n\
                    custos_commit_batches_total 10\ncustos_committed_jobs_total 250\n";
        let before = parse_commits(text).unwrap();
        assert_eq!(before, Commits { batches: 10, jobs: 250 });
        assert_eq!(before.jobs_per_commit_until(Commits { batches: 20, jobs: 1250 }), 100.0);
        assert!(parse_commits("custos_audit_entries 3\n").is_err());
        assert_eq!(metric("custos_audit_entries 3\n", "custos_audit_entries"), Ok(3));
        assert!(metric("custos_audit_entries_total 3\n", "custos_audit_entries").is_err());
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_seconds("/proc/self/stat").unwrap() >= 0.0);
        assert!(cpu_seconds("/proc/self/no-such-file").is_err());
        assert!(children_cpu_seconds().unwrap() >= 0.0);
        assert!(machine_busy_seconds().unwrap() > 0.0);
        assert!(written_bytes("/proc/self/io").is_ok());
    }
}

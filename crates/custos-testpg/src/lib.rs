//! A throwaway PostgreSQL server for tests (issue 9): the system's own
//! server binaries (`initdb`, `pg_ctl`; Debian's `postgresql-15`, which
//! `scripts/test` installs when absent) run in a scratch folder on a free
//! port of 127.0.0.1, trusted local connections only, no durability
//! shortcuts. Dropping the handle stops the server and removes the folder.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI, this
//! machine), the server runs as the `postgres` system user the package
//! creates, through `runuser`, in a folder that user owns.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A running throwaway server.
pub struct TestPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPostgres").field("dir", &self.dir).field("port", &self.port).finish()
    }
}

/// The folder of the server binaries: the one given, else the newest
/// `/usr/lib/postgresql/<version>/bin` with an `initdb`.
pub fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = explicit {
        return if dir.join("initdb").is_file() {
            Ok(dir.to_path_buf())
        } else {
            Err(format!("no initdb in {}", dir.display()))
        };
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| format!("no PostgreSQL server under {}: {e} (scripts/test installs it)", root.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no initdb under {} (scripts/test installs postgresql)", root.display()))
}

fn is_root() -> bool {
    // The effective user id, from the kernel's view of this process.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn checked(what: &str, out: std::io::Result<Output>) -> Result<Output, String> {
    let out = out.map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestPostgres {
    /// Creates a cluster in a new scratch folder and starts it.
    pub fn start(name: &str, bin: Option<&Path>) -> Result<TestPostgres, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir(bin)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("custos-pg-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let as_postgres = is_root();
        if as_postgres {
            checked("chown", Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).output())?;
        }
        let pg = TestPostgres { bin, dir, port: free_port()?, as_postgres };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "custos",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        )?;
        // wal_recycle off: a write-ahead log segment past its checkpoint is
        // removed, not renamed for reuse with its old bytes (the tests scan
        // the disk after a destruction; README says why operators want it).
        let options =
            format!("-p {} -c listen_addresses=127.0.0.1 -c wal_recycle=off -k {}", pg.port, pg.dir.display());
        pg.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-o",
                &options,
                "-l",
                &pg.dir.join("server.log").display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        Ok(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, String> {
        checked(tool, self.command(tool).args(args).current_dir(&self.dir).output())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` (the cluster has `postgres`; create
    /// others with [`TestPostgres::create_database`]).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://custos@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        self.run("createdb", &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "custos", name]).map(|_| ())
    }

    /// Runs one SQL statement through `psql`; its output, unaligned.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self.run(
            "psql",
            &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "custos", "-d", database, "-Atqc", sql],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Runs a whole SQL file through `psql` in one transaction, stopping at
    /// the first error (which the `Err` carries). As root, the file is
    /// copied into the scratch folder first: the `postgres` user may not
    /// read the caller's folders (a home of mode 0700).
    pub fn psql_file(&self, database: &str, file: &Path) -> Result<(), String> {
        let file = if self.as_postgres {
            let name = file.file_name().ok_or_else(|| format!("not a file: {}", file.display()))?;
            let copy = self.dir.join(name);
            std::fs::copy(file, &copy).map_err(|e| format!("cannot copy {}: {e}", file.display()))?;
            copy
        } else {
            file.to_path_buf()
        };
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "custos",
                "-d",
                database,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-f",
                &file.display().to_string(),
            ],
        )
        .map(|_| ())
    }

    /// The scratch folder (the cluster is in `data/` under it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throwaway_server_starts_answers_and_goes_away() {
        let pg = TestPostgres::start("smoke", None).expect("PostgreSQL starts (scripts/test installs it)");
        pg.create_database("custos_smoke").unwrap();
        assert_eq!(pg.psql("custos_smoke", "SELECT 40 + 2").unwrap(), "42");
        let version = pg.psql("custos_smoke", "SHOW server_version_num").unwrap();
        assert!(version.parse::<u32>().unwrap() >= 150_000, "PostgreSQL 15 or newer: {version}");
        // Durability is the real server's, not a test shortcut.
        assert_eq!(pg.psql("custos_smoke", "SHOW fsync").unwrap(), "on");
        let dir = pg.dir().to_path_buf();
        let port = pg.port();
        drop(pg);
        assert!(!dir.exists(), "the scratch folder is removed");
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "the port is free again");
    }
}

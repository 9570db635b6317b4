//! Configuration: defaults → TOML file → `CUSTOS_*` variables → command-line
//! flags, validated once at start and passed explicitly (no globals).
//! Unknown keys and unknown `CUSTOS_*` variables are errors: a typo must not
//! silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The b.stage policy, built into the binary so `custos serve` runs anywhere.
pub const BUNDLED_POLICY: &str = include_str!("../../../policies/bstage.toml");

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub root_key_file: PathBuf,
    /// `None`: the bundled b.stage policy.
    pub policy_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub hash_workers: usize,
    pub readers: usize,
    pub max_body_bytes: usize,
    /// Seconds between runs of the lifecycle jobs in `serve`.
    pub jobs_interval_seconds: u64,
    /// The SMTP relay notices go through; `None`: they wait in the outbox.
    pub smtp: Option<Smtp>,
    /// `postgres://…`: serve from PostgreSQL instead of the data folder.
    /// Never printed (it may hold a password).
    pub database_url: Option<String>,
    /// The key store's own PostgreSQL database, when apart.
    pub key_database_url: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("root_key_file", &self.root_key_file)
            .field("policy_file", &self.policy_file)
            .field("listen", &self.listen)
            .field("hash_workers", &self.hash_workers)
            .field("readers", &self.readers)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("jobs_interval_seconds", &self.jobs_interval_seconds)
            .field("smtp", &self.smtp)
            .field("database", &self.database_url.as_ref().map(|_| "postgres"))
            .field("separate_key_database", &self.key_database_url.is_some())
            .finish()
    }
}

/// `[smtp]` in the configuration file.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `none`, `start_tls` (default) or `tls`.
    #[serde(default = "default_security")]
    pub security: String,
    pub username: Option<String>,
    /// Better given as CUSTOS_SMTP_PASSWORD than written in the file.
    pub password: Option<String>,
    /// The sender address of notices.
    pub from: String,
    /// The policy's processor that runs this relay, if it is one: each
    /// message is then logged as a transfer of the e-mail address to it.
    pub processor: Option<String>,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_security() -> String {
    "start_tls".into()
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("custos-data"),
            // Beside the data folder, not in it: the key is backed up apart.
            root_key_file: PathBuf::from("custos-root.key"),
            policy_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            hash_workers: 2,
            readers: 4,
            max_body_bytes: 256 * 1024,
            jobs_interval_seconds: 300,
            smtp: None,
            database_url: None,
            key_database_url: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    root_key_file: Option<PathBuf>,
    policy: Option<PathBuf>,
    listen: Option<String>,
    hash_workers: Option<usize>,
    readers: Option<usize>,
    max_body_bytes: Option<usize>,
    jobs_interval_seconds: Option<u64>,
    smtp: Option<Smtp>,
    database_url: Option<String>,
    key_database_url: Option<String>,
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub listen: Option<String>,
    pub database: Option<String>,
    pub key_database: Option<String>,
}

const ENV_KEYS: &[&str] = &[
    "CUSTOS_CONFIG",
    "CUSTOS_DATA_DIR",
    "CUSTOS_ROOT_KEY_FILE",
    "CUSTOS_POLICY",
    "CUSTOS_LISTEN",
    "CUSTOS_HASH_WORKERS",
    "CUSTOS_READERS",
    "CUSTOS_MAX_BODY_BYTES",
    "CUSTOS_LOG",
    "CUSTOS_SMTP_PASSWORD",
    // `custos migrate`: PostgreSQL URLs kept out of the command line (and so
    // out of `ps` and shell history), since they may hold a password.
    "CUSTOS_DATABASE_URL",
    "CUSTOS_KEY_DATABASE_URL",
];

/// Builds the configuration; every error names its source (file key,
/// variable or flag).
pub fn load(env: &[(String, Result<String, String>)], flags: &Overrides) -> Result<Config, String> {
    let mut vars = Vec::new();
    for (k, v) in env {
        if !ENV_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown environment variable {k} (known: {})", ENV_KEYS.join(", ")));
        }
        vars.push((k.as_str(), v.clone()?));
    }
    let var = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());

    let mut config = Config::default();
    let file = flags.config_file.clone().or_else(|| var("CUSTOS_CONFIG").map(PathBuf::from));
    if let Some(path) = &file {
        apply_file(&mut config, path)?;
    }
    if let Some(v) = var("CUSTOS_DATA_DIR") {
        config.data_dir = PathBuf::from(v);
    }
    if let Some(v) = var("CUSTOS_ROOT_KEY_FILE") {
        config.root_key_file = PathBuf::from(v);
    }
    if let Some(v) = var("CUSTOS_POLICY") {
        config.policy_file = Some(PathBuf::from(v));
    }
    if let Some(v) = var("CUSTOS_LISTEN") {
        config.listen = parse_listen(&v).map_err(|e| format!("CUSTOS_LISTEN: {e}"))?;
    }
    for (name, slot) in [
        ("CUSTOS_HASH_WORKERS", &mut config.hash_workers),
        ("CUSTOS_READERS", &mut config.readers),
        ("CUSTOS_MAX_BODY_BYTES", &mut config.max_body_bytes),
    ] {
        if let Some(v) = var(name) {
            *slot = v.parse().map_err(|_| format!("{name}: {v:?} is not a whole number"))?;
        }
    }
    if let Some(v) = var("CUSTOS_DATABASE_URL") {
        config.database_url = Some(v);
    }
    if let Some(v) = var("CUSTOS_KEY_DATABASE_URL") {
        config.key_database_url = Some(v);
    }
    if let Some(v) = var("CUSTOS_SMTP_PASSWORD") {
        match &mut config.smtp {
            Some(smtp) => smtp.password = Some(v),
            None => return Err("CUSTOS_SMTP_PASSWORD is set but the configuration has no [smtp] relay".into()),
        }
    }
    if let Some(v) = &flags.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &flags.policy {
        config.policy_file = Some(v.clone());
    }
    if let Some(v) = &flags.listen {
        config.listen = parse_listen(v).map_err(|e| format!("--listen: {e}"))?;
    }
    if let Some(v) = &flags.database {
        config.database_url = Some(v.clone());
    }
    if let Some(v) = &flags.key_database {
        config.key_database_url = Some(v.clone());
    }
    validate(&config)?;
    Ok(config)
}

fn apply_file(config: &mut Config, path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        match line {
            Some(line) => format!("{}:{line}: {}", path.display(), e.message().trim()),
            None => format!("{}: {}", path.display(), e.message().trim()),
        }
    })?;
    if let Some(v) = raw.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = raw.root_key_file {
        config.root_key_file = v;
    }
    if let Some(v) = raw.policy {
        config.policy_file = Some(v);
    }
    if let Some(v) = raw.listen {
        config.listen = parse_listen(&v).map_err(|e| format!("{}: listen: {e}", path.display()))?;
    }
    if let Some(v) = raw.hash_workers {
        config.hash_workers = v;
    }
    if let Some(v) = raw.readers {
        config.readers = v;
    }
    if let Some(v) = raw.max_body_bytes {
        config.max_body_bytes = v;
    }
    if let Some(v) = raw.jobs_interval_seconds {
        config.jobs_interval_seconds = v;
    }
    if raw.smtp.is_some() {
        config.smtp = raw.smtp;
    }
    if raw.database_url.is_some() {
        config.database_url = raw.database_url;
    }
    if raw.key_database_url.is_some() {
        config.key_database_url = raw.key_database_url;
    }
    Ok(())
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an address and port (for example 127.0.0.1:8080)"))
}

fn validate(c: &Config) -> Result<(), String> {
    if !(1..=64).contains(&c.hash_workers) {
        return Err(format!("hash_workers must be between 1 and 64, not {}", c.hash_workers));
    }
    if !(1..=256).contains(&c.readers) {
        return Err(format!("readers must be between 1 and 256, not {}", c.readers));
    }
    if !(1024..=64 * 1024 * 1024).contains(&c.max_body_bytes) {
        return Err(format!("max_body_bytes must be between 1024 and 67108864, not {}", c.max_body_bytes));
    }
    if !(10..=86_400).contains(&c.jobs_interval_seconds) {
        return Err(format!("jobs_interval_seconds must be between 10 and 86400, not {}", c.jobs_interval_seconds));
    }
    if let Some(smtp) = &c.smtp {
        if !["none", "start_tls", "tls"].contains(&smtp.security.as_str()) {
            return Err(format!("smtp.security must be none, start_tls or tls, not {:?}", smtp.security));
        }
        if smtp.host.trim().is_empty() || !smtp.from.contains('@') {
            return Err("smtp needs a host and a sender address (from)".into());
        }
        if smtp.username.is_some() != smtp.password.is_some() {
            return Err("smtp.username and smtp.password (or CUSTOS_SMTP_PASSWORD) go together".into());
        }
    }
    let is_pg = |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
    // The URL itself is never echoed: it may hold a password.
    if c.database_url.as_deref().is_some_and(|u| !is_pg(u)) {
        return Err("database_url (CUSTOS_DATABASE_URL, --database) takes a postgres:// URL; the SQLite store is the data folder".into());
    }
    if c.key_database_url.as_deref().is_some_and(|u| !is_pg(u)) {
        return Err("key_database_url (CUSTOS_KEY_DATABASE_URL, --key-database) takes a postgres:// URL".into());
    }
    if c.key_database_url.is_some() && c.database_url.is_none() {
        return Err("a key database (key_database_url) needs database_url too".into());
    }
    if c.root_key_file.starts_with(&c.data_dir) {
        return Err(format!(
            "the root key file {} is inside the data folder {}: keep it apart, so a copy of the data alone reveals nothing",
            c.root_key_file.display(),
            c.data_dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, Result<String, String>)> {
        list.iter().map(|(k, v)| (k.to_string(), Ok(v.to_string()))).collect()
    }

    #[test]
    fn defaults_then_file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("custos-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("custos.toml");
        std::fs::write(&file, "data_dir = \"from-file\"\nlisten = \"127.0.0.1:9000\"\nreaders = 8\n").unwrap();
        let c = load(&vars(&[]), &Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        let c = load(
            &vars(&[("CUSTOS_CONFIG", file.to_str().unwrap()), ("CUSTOS_LISTEN", "127.0.0.1:9100")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((c.data_dir.to_str().unwrap(), c.listen.port(), c.readers), ("from-file", 9100, 8));
        let flags = Overrides { listen: Some("127.0.0.1:9200".into()), ..Overrides::default() };
        let c = load(&vars(&[("CUSTOS_CONFIG", file.to_str().unwrap()), ("CUSTOS_LISTEN", "127.0.0.1:9100")]), &flags)
            .unwrap();
        assert_eq!(c.listen.port(), 9200);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn mistakes_are_named() {
        let err = load(&vars(&[("CUSTOS_DATADIR", "x")]), &Overrides::default()).unwrap_err();
        assert!(err.starts_with("unknown environment variable CUSTOS_DATADIR"), "{err}");
        let err = load(&vars(&[("CUSTOS_READERS", "many")]), &Overrides::default()).unwrap_err();
        assert_eq!(err, "CUSTOS_READERS: \"many\" is not a whole number");
        let err = load(&vars(&[("CUSTOS_LISTEN", "localhost")]), &Overrides::default()).unwrap_err();
        assert!(err.starts_with("CUSTOS_LISTEN: \"localhost\" is not an address"), "{err}");
        let err = load(&vars(&[("CUSTOS_ROOT_KEY_FILE", "custos-data/root.key")]), &Overrides::default()).unwrap_err();
        assert!(err.contains("inside the data folder"), "{err}");
        let dir = std::env::temp_dir().join(format!("custos-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "data_dir = \"x\"\nlisen = \"127.0.0.1:1\"\n").unwrap();
        let err = load(&vars(&[("CUSTOS_CONFIG", file.to_str().unwrap())]), &Overrides::default()).unwrap_err();
        assert!(err.contains("bad.toml:2: unknown field `lisen`"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! `custos serve` and `custos admin …`: commands that open a data folder.
//! They load the configuration, the policy and the engine, then serve or run
//! one task.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use custos_engine::lifecycle::MailConfig;
use custos_engine::mail;
use custos_engine::policy::{self, Policy};
use custos_engine::{Engine, EngineConfig, Startup};
use custos_server::clock::{Clock, SystemClock};
use custos_server::config::{self, BUNDLED_POLICY, Config, Overrides};
use custos_server::http::{AppState, app};

use crate::cli::{AdminCommand, InstanceArgs, ServeArgs};

pub(crate) fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    ExitCode::from(1)
}

pub(crate) fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

pub(crate) fn load_config(instance: &InstanceArgs, listen: Option<String>) -> Result<Config, String> {
    let flags = Overrides {
        config_file: instance.config.clone(),
        data_dir: instance.data_dir.clone(),
        policy: instance.policy.clone(),
        listen,
        database: instance.database.clone(),
        key_database: instance.key_database.clone(),
    };
    config::load(&custos_server::env::custos_vars(), &flags)
}

fn load_policy(config: &Config) -> Result<Policy, String> {
    let (name, parsed) = match &config.policy_file {
        None => ("the bundled b.stage policy".to_owned(), policy::parse(BUNDLED_POLICY)),
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read the policy {}: {e}", path.display()))?;
            (path.display().to_string(), policy::parse_bytes(&bytes))
        }
    };
    parsed.map_err(|e| {
        let problems: Vec<String> = e.problems.iter().map(|p| format!("{name}: {p}")).collect();
        format!("the policy is not valid:\n{}", problems.join("\n"))
    })
}

pub(crate) async fn open(config: &Config) -> Result<(Engine, Startup), String> {
    let policy = load_policy(config)?;
    let mail = match &config.smtp {
        None => None,
        Some(smtp) => {
            if let Some(p) = &smtp.processor
                && !policy.processors.iter().any(|x| x.id.as_str() == p)
            {
                return Err(format!("smtp.processor: the policy declares no processor {p:?}"));
            }
            let security = match smtp.security.as_str() {
                "none" => mail::Security::None,
                "tls" => mail::Security::Tls,
                _ => mail::Security::StartTls,
            };
            Some(MailConfig {
                smtp: mail::SmtpConfig {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    security,
                    username: smtp.username.clone(),
                    password: smtp.password.clone().map(custos_engine::Zeroizing::new),
                    from: smtp.from.clone(),
                    helo_name: "custos".into(),
                    timeout: std::time::Duration::from_secs(30),
                },
                processor: smtp.processor.clone(),
            })
        }
    };
    let engine_config = EngineConfig {
        data_dir: config.data_dir.clone(),
        root_key_file: config.root_key_file.clone(),
        hash_workers: config.hash_workers,
        readers: config.readers,
        mail,
        database: config
            .database_url
            .clone()
            .map(|url| custos_engine::DatabaseUrls { url, key_url: config.key_database_url.clone() }),
    };
    let (engine, startup) = Engine::open(&engine_config, policy).await.map_err(|e| e.to_string())?;
    if let Some(path) = &startup.created_root_key {
        say(&format!(
            "created a new root key at {} (mode 0600).\n  Back it up now, and keep the backup apart from the data folder {}:\n  without this key the data cannot be read, and with the data it reveals everything.",
            path.display(),
            config.data_dir.display()
        ));
    }
    Ok((engine, startup))
}

pub(crate) fn serve(args: ServeArgs) -> ExitCode {
    let mut config = match load_config(&args.instance, args.listen.clone()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let demo_is_new = match args.demo.then(|| demo_folder(&mut config)).transpose() {
        Ok(new) => new,
        Err(e) => return fail(&e),
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        // The demo's e-mail stays in the process: an SMTP catcher on
        // loopback, shown at /demo/mail.
        let mailbox = custos_server::demo::Mailbox::default();
        if demo_is_new.is_some() {
            match custos_server::demo::start_mail_catcher(mailbox.clone()).await {
                Ok(port) => {
                    config.smtp = Some(config::Smtp {
                        host: "127.0.0.1".into(),
                        port,
                        security: "none".into(),
                        username: None,
                        password: None,
                        from: "demo@custos.invalid".into(),
                        processor: None,
                    })
                }
                Err(e) => return fail(&format!("cannot start the demo's mail catcher: {e}")),
            }
        }
        let (engine, startup) = match open(&config).await {
            Ok(x) => x,
            Err(e) => return fail(&e),
        };
        if demo_is_new == Some(true) {
            match custos_server::demo::seed(&engine, SystemClock.now()).await {
                Ok(accounts) => say(&format!(
                    "DEMO DATA: made-up people only.\n  members (privacy center, sign in with a code from /demo/mail): {}\n  \
                     staff console: {} / password {:?} / TOTP secret {} ({})",
                    accounts.member_emails.join(", "),
                    custos_server::demo::OFFICER_EMAIL,
                    custos_server::demo::OFFICER_PASSWORD,
                    accounts.officer_totp_secret,
                    accounts.officer_otpauth
                )),
                Err(e) => return fail(&format!("cannot seed the demo: {e}")),
            }
        }
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot listen on {}: {e}", config.listen)),
        };
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        say(&format!(
            "custos serving policy {} version {} on http://{address}\n  data: {} (keys: {})",
            engine.policy().meta.id,
            engine.policy().meta.version,
            startup.data_location,
            startup.key_location
        ));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        tokio::spawn(checkpoint_periodically(engine.clone(), clock.clone()));
        tokio::spawn(run_jobs_periodically(engine.clone(), clock.clone(), config.jobs_interval_seconds));
        let mut router = app(AppState::new(engine.clone(), clock), config.max_body_bytes);
        if demo_is_new.is_some() {
            router = router.merge(custos_server::demo::mail_router(mailbox, engine.clone()));
            say(&format!(
                "demo pages: http://{address}/privacy (members), http://{address}/staff (staff), \
                 http://{address}/demo/cookies (cookie banner), http://{address}/demo/mail (caught e-mail)"
            ));
        }
        // The peer address feeds staff login throttling and allowed-IP lists.
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await;
        // Write the logs back so the data folder is tidy after a clean stop
        // (SQLite; PostgreSQL keeps its own, and its scrub is for
        // destructions, not for every node that stops).
        if engine.backend() == "sqlite" {
            let _ = engine.checkpoint();
        }
        match served {
            Ok(()) => {
                say("custos stopped");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("the server failed: {e}")),
        }
    })
}

/// The demo's own data folder and root key (unless given), refusing a
/// folder that holds anything but demo data; answers whether it is new.
fn demo_folder(config: &mut Config) -> Result<bool, String> {
    let defaults = Config::default();
    if config.data_dir == defaults.data_dir {
        config.data_dir = "custos-demo-data".into();
    }
    if config.root_key_file == defaults.root_key_file {
        config.root_key_file = "custos-demo-root.key".into();
    }
    let marker = config.data_dir.join("DEMO-DATA.txt");
    let holds_data = config.data_dir.join("custos.db").exists();
    if holds_data && !marker.exists() {
        return Err(format!(
            "--demo serves demo data only, and {} holds other data: give --data-dir a new folder",
            config.data_dir.display()
        ));
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    std::fs::write(&marker, "Demo data of `custos serve --demo`: made-up people only.\n")
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(!holds_data)
}

/// Every minute: brings announced amendments into force on their date, and
/// issues a checkpoint when the log has grown, so auditors always find a
/// recent one.
async fn checkpoint_periodically(engine: Engine, clock: Arc<dyn Clock>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        ticks.tick().await;
        // Amendments take effect on their date (the same minute tick).
        match engine.activate_due(clock.now()).await {
            Ok(versions) => versions.iter().for_each(|v| tracing::info!(version = %v, "policy amendment in force")),
            Err(e) => tracing::error!(error = %e, "could not bring an amendment into force"),
        }
        if let Err(e) = engine.issue_checkpoint(clock.now()).await {
            tracing::error!(error = %e, "could not issue an audit checkpoint");
        }
    }
}

/// The lifecycle jobs on their interval. The lease keeps two runners (two
/// nodes, or `custos jobs run` beside this) from doing the same work; a
/// run that finds it held does nothing.
async fn run_jobs_periodically(engine: Engine, clock: Arc<dyn Clock>, seconds: u64) {
    let holder = format!("serve:{}:{}", std::process::id(), clock.now().as_nanosecond());
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(seconds));
    loop {
        ticks.tick().await;
        let wall = || clock.now();
        match engine.run_jobs(clock.now(), &holder, &wall).await {
            Ok(r) if r.ran => tracing::info!(
                notified = r.notified,
                dormant = r.made_dormant,
                destroyed = r.destroyed_dormant,
                records = r.records_destroyed,
                keys = r.keys_destroyed,
                sent = r.notices_sent,
                "lifecycle jobs ran"
            ),
            Ok(_) => tracing::debug!("lifecycle lease held elsewhere"),
            Err(e) => tracing::error!(error = %e, "lifecycle jobs failed"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn init_logging() {
    let filter = custos_server::env::custos_vars()
        .into_iter()
        .find(|(k, _)| k == "CUSTOS_LOG")
        .and_then(|(_, v)| v.ok())
        .unwrap_or_else(|| "info".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Opens the instance and runs one task on it, for commands that do one
/// thing and exit.
pub(crate) fn with_engine<F, Fut>(instance: &InstanceArgs, task: F) -> ExitCode
where
    F: FnOnce(Engine) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    let config = match load_config(instance, None) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        match open(&config).await {
            Ok((engine, _)) => task(engine).await,
            Err(e) => fail(&e),
        }
    })
}

/// `custos migrate`: the data folder's migrations run when it is opened;
/// a PostgreSQL database's run here (the URL is never printed: it may
/// hold a password).
pub(crate) fn migrate(instance: &InstanceArgs) -> ExitCode {
    let config = match load_config(instance, None) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    match config.database_url.as_deref() {
        None => with_engine(instance, |_| async {
            say("the data folder is at the newest schema (its migrations ran as it opened)");
            ExitCode::SUCCESS
        }),
        Some(url) => match custos_engine::migrate_postgres(url, config.key_database_url.as_deref()) {
            Ok(done) => {
                for (schema, (from, to)) in [("data", done.data), ("dormant", done.dormant), ("keys", done.keys)] {
                    if from == to {
                        say(&format!("PostgreSQL {schema} schema: up to date (version {to})"));
                    } else {
                        say(&format!("PostgreSQL {schema} schema: version {from} -> {to}"));
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("cannot migrate the PostgreSQL database: {e}")),
        },
    }
}

pub(crate) fn admin(cmd: AdminCommand) -> ExitCode {
    match cmd {
        AdminCommand::CreateKey { instance, service, purposes, label } => with_engine(&instance, |engine| async move {
            let purposes = if purposes.is_empty() {
                engine.policy().purposes.iter().map(|p| p.id.to_string()).collect()
            } else {
                purposes
            };
            match engine.create_api_key(service, purposes.clone(), label, SystemClock.now()).await {
                Ok(key) => {
                    say(&format!("created API key {} for purposes {}; it is shown once:", key.id, purposes.join(", ")));
                    let _ = writeln!(std::io::stdout().lock(), "{}", key.token);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }),
        AdminCommand::SeedSynthetic {
            instance,
            members,
            records_per_member,
            last_activity,
            record_date_from,
            record_days,
            record_class,
            now,
        } => {
            let record_date_from = match (record_date_from, records_per_member) {
                (Some(day), _) => day,
                (None, 0) => jiff::tz::Offset::UTC.to_datetime(last_activity).date(),
                (None, _) => return fail("--record-date-from is needed with --records-per-member"),
            };
            let spec = custos_engine::synthetic::SyntheticSpec {
                members,
                records_per_member,
                last_activity,
                record_date_from,
                record_days,
                record_class,
                now: now.unwrap_or_else(|| SystemClock.now()),
            };
            seed_synthetic(&instance, spec)
        }
    }
}

/// `custos admin seed-synthetic`: made-up members and records, for
/// benchmarks and demos only. Prints what was added and how long it took.
fn seed_synthetic(instance: &InstanceArgs, spec: custos_engine::synthetic::SyntheticSpec) -> ExitCode {
    let data_dir = match load_config(instance, None) {
        Ok(c) => c.data_dir,
        Err(e) => return fail(&e),
    };
    with_engine(instance, |engine| async move {
        let total = spec.members;
        say(&format!(
            "adding synthetic data (for benchmarks and demos only; never where real members are) to the data folder {}: \
             {total} members, {} records each, as of {}",
            data_dir.display(),
            spec.records_per_member,
            spec.now
        ));
        let start = SystemClock.now();
        // A line at every tenth of the way.
        let next = std::cell::Cell::new(total.div_ceil(10).max(1));
        let progress = |done: u64| {
            if done >= next.get() {
                say(&format!("  {done} of {total} members"));
                next.set(done + total.div_ceil(10).max(1));
            }
        };
        let seeded = engine.seed_synthetic(spec, progress).await;
        let seconds = SystemClock.now().duration_since(start).as_secs_f64();
        let report = match seeded {
            Ok(r) => r,
            Err(e) => return fail(&e.to_string()),
        };
        if let Err(e) = engine.checkpoint() {
            say(&format!("note: the write-ahead logs were not checkpointed ({e}); the next start does it"));
        }
        let mut out = std::io::stdout().lock();
        let last = (report.first_number + report.members).saturating_sub(1);
        let _ = writeln!(
            out,
            "seeded {} synthetic members of kind {} through {} (items {}; numbers {} to {last}) into {}",
            report.members,
            report.kind,
            report.point,
            report.items.join(", "),
            report.first_number,
            data_dir.display()
        );
        if let Some(class) = &report.record_class {
            let _ = writeln!(out, "  records: {} of class {class}", report.records);
        }
        let _ = writeln!(out, "  data keys: {}", report.keys);
        let _ = writeln!(out, "  store jobs: {} (one audit entry each)", report.jobs);
        let _ = writeln!(
            out,
            "  elapsed: {seconds:.1} s ({:.0} members/s)",
            report.members as f64 / seconds.max(f64::MIN_POSITIVE)
        );
        ExitCode::SUCCESS
    })
}

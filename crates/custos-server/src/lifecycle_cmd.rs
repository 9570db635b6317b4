//! `custos jobs run` and `custos simulate`: the lifecycle jobs once, or
//! their forecast, on a data folder.

use std::io::Write;
use std::process::ExitCode;

use custos_server::clock::{Clock, SystemClock};
use jiff::Timestamp;

use crate::cli::InstanceArgs;
use crate::instance_cmd::{fail, with_engine};

/// A day (its start, UTC) or an RFC 3339 time.
fn parse_moment(s: &str, flag: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    match s.parse::<jiff::civil::Date>() {
        Ok(d) => {
            jiff::tz::Offset::UTC.to_timestamp(d.to_datetime(jiff::civil::Time::midnight())).map_err(|e| e.to_string())
        }
        Err(_) => Err(format!("{flag}: {s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time")),
    }
}

pub(crate) fn run(instance: &InstanceArgs, now: Option<&str>) -> ExitCode {
    let wall = SystemClock.now();
    let now = match now.map(|n| parse_moment(n, "--now")).transpose() {
        Ok(n) => n.unwrap_or(wall),
        Err(e) => return fail(&e),
    };
    // Destruction cannot be undone: never act as of a moment still to come.
    if now > wall {
        return fail(&format!(
            "--now {now} is in the future: the jobs destroy data; use `custos simulate` to look ahead"
        ));
    }
    with_engine(instance, |engine| async move {
        let holder = format!("cli:{}", std::process::id());
        let wall = || SystemClock.now();
        match engine.run_jobs(now, &holder, &wall).await {
            Ok(report) if !report.ran => {
                fail("another runner holds the lifecycle lease (a running `custos serve`?): nothing done")
            }
            Ok(report) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "lifecycle jobs as of {now}");
                for (what, n) in [
                    ("dormancy notices queued", report.notified),
                    ("members moved to the dormant store", report.made_dormant),
                    ("dormant members destroyed", report.destroyed_dormant),
                    ("leftover dormant copies removed", report.released_leftovers),
                    ("records destroyed", report.records_destroyed),
                    ("hold keys destroyed", report.keys_destroyed),
                    ("complaints and inquiries destroyed", report.requests_destroyed),
                    ("notices sent", report.notices_sent),
                    ("notices given up", report.notices_failed),
                ] {
                    let _ = writeln!(out, "  {what}: {n}");
                }
                if report.scrubbed {
                    let _ = writeln!(out, "  storage logs scrubbed");
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        }
    })
}

pub(crate) fn simulate(instance: &InstanceArgs, until: &str, now: Option<&str>, json: bool) -> ExitCode {
    let parsed = parse_moment(until, "--until").and_then(|u| {
        let now = now.map(|n| parse_moment(n, "--now")).transpose()?.unwrap_or_else(|| SystemClock.now());
        // A day given as --until means through its end.
        let u = if until.len() == 10 { u.checked_add(jiff::SignedDuration::from_hours(24)).unwrap_or(u) } else { u };
        if u <= now { Err(format!("--until {until} is not after {now}")) } else { Ok((now, u)) }
    });
    let (now, until) = match parsed {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    with_engine(instance, |engine| async move {
        match engine.simulate(now, until).await {
            Ok(events) => {
                let mut out = std::io::stdout().lock();
                if json {
                    for e in &events {
                        let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
                    }
                } else {
                    let _ =
                        writeln!(out, "{:<22} {:<15} {:<38} {:>8}", "when", "what", "member or record class", "count");
                    for e in &events {
                        let who = e.subject.as_deref().or(e.class.as_deref()).unwrap_or("");
                        let what = match (e.action.as_str(), &e.class, &e.subject) {
                            ("records_expire", Some(c), Some(_)) => format!("{} ({c})", e.action),
                            _ => e.action.clone(),
                        };
                        let _ = writeln!(out, "{:<22} {:<15} {:<38} {:>8}", e.at, what, who, e.count);
                    }
                    let _ = writeln!(out, "{} events until {until}; nothing was changed", events.len());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        }
    })
}

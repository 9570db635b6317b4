//! `custos policy check | render | diff` (`render --format ropa`: the
//! records of processing activities): the policy model of custos-core,
//! reached through the engine, with file reading and exit codes around it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use custos_engine::policy::{self, Policy, PolicyError, diff, render};

use crate::cli::{PolicyCommand, RenderFormat};

const INVALID: u8 = 1;
const TOO_EARLY: u8 = 3;

pub(crate) fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Render(args) => {
            let Some(policy) = load(&args.file) else { return ExitCode::from(INVALID) };
            let text = match args.format {
                RenderFormat::Markdown => render::render(&policy, render::Format::Markdown),
                RenderFormat::Html => render::render(&policy, render::Format::Html),
                RenderFormat::Ropa => {
                    let ropa = custos_core::provision::records_of_processing(&policy);
                    match serde_json::to_string_pretty(&ropa) {
                        Ok(json) => json + "\n",
                        Err(e) => {
                            eprint(&format!("error: {e}"));
                            return ExitCode::from(INVALID);
                        }
                    }
                }
            };
            match &args.output {
                Some(path) => match std::fs::write(path, text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprint(&format!("error: cannot write {}: {e}", path.display()));
                        ExitCode::from(INVALID)
                    }
                },
                None => out(&text),
            }
        }
        PolicyCommand::Diff { old, new, announced } => {
            let (Some(old_policy), Some(new_policy)) = (load(&old), load(&new)) else {
                return ExitCode::from(INVALID);
            };
            let announced = announced.unwrap_or(new_policy.meta.notice_date);
            match diff::diff(&old_policy, &new_policy, announced) {
                Ok(d) => {
                    let code = if d.effective_date_allowed() { ExitCode::SUCCESS } else { ExitCode::from(TOO_EARLY) };
                    out(&format!("{d}\n"));
                    code
                }
                Err(e) => {
                    eprint(&format!("error: {e}"));
                    ExitCode::from(INVALID)
                }
            }
        }
    }
}

fn check(path: &Path) -> ExitCode {
    let Some(p) = load(path) else { return ExitCode::from(INVALID) };
    out(&format!(
        "ok: {} is valid: {} version {} (notice {}, effective {}): {} items, {} purposes, {} collection points, {} roles, {} record classes, {} processors, {} transfers, {} jurisdictions\n",
        path.display(),
        p.meta.id,
        p.meta.version,
        p.meta.notice_date,
        p.meta.effective_date,
        p.items.len(),
        p.purposes.len(),
        p.collection_points.len(),
        p.roles.len(),
        p.record_classes.len(),
        p.processors.len(),
        p.transfers.len(),
        p.jurisdictions.len(),
    ))
}

/// Reads and validates a policy file, printing every problem on failure.
fn load(path: &Path) -> Option<Policy> {
    let bytes = match read_limited(path) {
        Ok(b) => b,
        Err(e) => {
            eprint(&format!("error: cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match policy::parse_bytes(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            report(path, &e);
            None
        }
    }
}

/// Reads at most one byte more than a policy may have, so a huge file is
/// refused without being read into memory.
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(policy::MAX_POLICY_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn report(path: &Path, e: &PolicyError) {
    let mut text = String::new();
    for p in &e.problems {
        match p.line {
            Some(line) => text.push_str(&format!("{}:{line}: {}: {}\n", path.display(), p.path, p.message)),
            None => text.push_str(&format!("{}: {}: {}\n", path.display(), p.path, p.message)),
        }
    }
    text.push_str(&format!("error: {} is not a valid policy: {e}", path.display()));
    eprint(&text);
}

fn out(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`custos policy render x | head`) is not an error worth a message.
        Err(_) => ExitCode::from(INVALID),
    }
}

fn eprint(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

//! `custos audit checkpoint | export | verify | public-key`. `verify` needs
//! no data folder: an auditor runs it on an export and a checkpoint they
//! saved, on their own machine.

use std::io::{BufReader, Write};
use std::process::ExitCode;

use custos_engine::{SignedCheckpoint, verify_export};
use custos_server::clock::{Clock, SystemClock};

use crate::cli::AuditCommand;
use crate::instance_cmd::{fail, say, with_engine};

pub(crate) fn run(cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::PublicKey { instance } => {
            with_engine(&instance, |engine| async move { print(&engine.checkpoint_public_key()) })
        }
        AuditCommand::Checkpoint { instance } => with_engine(&instance, |engine| async move {
            match engine.issue_checkpoint(SystemClock.now()).await {
                Ok(c) => print(&serde_json::to_string_pretty(&c).unwrap_or_default()),
                Err(e) => fail(&e.to_string()),
            }
        }),
        AuditCommand::Export { instance, out } => with_engine(&instance, |engine| async move {
            let file = match std::fs::File::create(&out) {
                Ok(f) => f,
                Err(e) => return fail(&format!("cannot create {}: {e}", out.display())),
            };
            let mut writer = std::io::BufWriter::new(file);
            match engine.export_audit(&mut writer, SystemClock.now()).await {
                Ok(last) => {
                    say(&format!("exported {} audit entries to {}; the final checkpoint:", last.size, out.display()));
                    print(&serde_json::to_string_pretty(&last).unwrap_or_default())
                }
                Err(e) => fail(&e.to_string()),
            }
        }),
        AuditCommand::Verify { log, checkpoint, public_key } => {
            verify(&log, checkpoint.as_deref(), public_key.as_deref())
        }
    }
}

fn print(text: &str) -> ExitCode {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    ExitCode::SUCCESS
}

fn verify(log: &std::path::Path, checkpoint: Option<&std::path::Path>, public_key: Option<&str>) -> ExitCode {
    let saved: Option<SignedCheckpoint> = match checkpoint {
        None => None,
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return fail(&format!("cannot read {}: {e}", path.display())),
            };
            match serde_json::from_str(&text) {
                Ok(c) => Some(c),
                Err(e) => return fail(&format!("{} is not a saved checkpoint: {e}", path.display())),
            }
        }
    };
    let file = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(e) => return fail(&format!("cannot read {}: {e}", log.display())),
    };
    if saved.is_none() && public_key.is_none() {
        say(
            "warning: no saved checkpoint and no pinned key: the log is checked only against the key it carries itself",
        );
    }
    if saved.is_none() {
        say(
            "warning: without a saved checkpoint, a log cut short or rolled back to an older copy cannot be told apart",
        );
    }
    match verify_export(&mut BufReader::new(file), saved.as_ref(), public_key) {
        Ok(v) => print(&format!(
            "ok: {} verified: {} entries, {} signed checkpoints, root {}{}",
            log.display(),
            v.entries,
            v.checkpoints,
            v.root,
            saved.map(|s| format!("; consistent with the saved checkpoint of size {}", s.size)).unwrap_or_default()
        )),
        // Line 0 is the saved checkpoint, not a line of the log.
        Err(failure) if failure.line == 0 => {
            fail(&format!("{}: {}", checkpoint.map(|p| p.display().to_string()).unwrap_or_default(), failure.message))
        }
        Err(failure) => fail(&format!("{}:{failure}", log.display())),
    }
}

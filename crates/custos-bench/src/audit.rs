//! Audit-log verification (DESIGN §9: 1,000,000 entries in ≤ 10 s). A fresh
//! `custos serve` is filled with at least N audit entries by real audited
//! HTTP operations (sign-ups, then purpose-bound reads, one entry each),
//! stopped cleanly, and its log exported once with `custos audit export`
//! (the JSON-lines export and, on standard output, the signed checkpoint it
//! ends with). `custos audit verify` of that export against that checkpoint
//! is then timed `runs` times, each time once with the export dropped from
//! the page cache first (read from storage) and once right after (read from
//! memory). Filling takes minutes; it is done once per invocation.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::load::Until;
use crate::pg::Cluster;
use crate::server::{self, Server, Stopped};
use crate::{Args, clock, say};

/// What the verification phase measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditVerify {
    /// Entries asked for (`--audit-entries`) and entries in the export.
    pub(crate) wanted: u64,
    pub(crate) entries: u64,
    /// Signed checkpoints in the export (the server issues one a minute).
    pub(crate) checkpoints: u64,
    /// Audited HTTP operations used to fill the log, their rate and errors.
    pub(crate) fill_ops: u64,
    pub(crate) fill_per_s: f64,
    pub(crate) fill_errors: u64,
    pub(crate) fill_seconds: f64,
    /// Wall time of `custos audit export` (opening the instance, signing
    /// the final checkpoint, writing the file).
    pub(crate) export_s: f64,
    pub(crate) export_bytes: u64,
    /// Wall and CPU time (user + system) of each verification, export read
    /// from storage (`cold`) or from the page cache (`warm`).
    pub(crate) cold_s: Vec<f64>,
    pub(crate) warm_s: Vec<f64>,
    pub(crate) cpu_s: Vec<f64>,
    /// Peak resident memory of the verifying process, KiB (sampled).
    pub(crate) peak_kib: u64,
    /// Whether the export could be dropped from the page cache.
    pub(crate) cold: bool,
}

/// Fills, exports and verifies; `policy` is the no-password policy.
pub(crate) fn run(
    args: &Args,
    custos: &Path,
    policy: &Path,
    runtime: &tokio::runtime::Runtime,
    cluster: Option<&Arc<Cluster>>,
) -> Result<AuditVerify, String> {
    let wanted = args.audit_entries;
    let mut out = AuditVerify { wanted, ..AuditVerify::default() };
    say(&format!("audit verification: filling a fresh server with {wanted} audit entries over HTTP"));
    let server = Server::start(custos, "audit", Some(policy), cluster)?;
    let start = clock::now();
    let signups = args.signups.min(wanted).max(1);
    let (phase, ids) =
        crate::phase(&server, runtime, args.clients, Until::Count(signups), crate::signup_work(&server, false))?;
    out.fill_ops += phase.ok;
    out.fill_errors += phase.errors;
    let mut stored = server.audit_entries()?;
    // Each audited read appends one entry; a few rounds make up for errors.
    for _ in 0..5 {
        if stored >= wanted {
            break;
        }
        let reads = wanted - stored;
        say(&format!("  {stored} entries; {reads} audited reads with {} clients", args.clients));
        let work = crate::read_work(&server, ids.clone())?;
        let phase = crate::phase(&server, runtime, args.clients, Until::Count(reads), work)?.0;
        out.fill_ops += phase.ok;
        out.fill_errors += phase.errors;
        let now = server.audit_entries()?;
        if now == stored {
            return Err("the audit log does not grow: every audited read failed".to_owned());
        }
        stored = now;
    }
    if stored < wanted {
        return Err(format!("only {stored} of {wanted} audit entries after five rounds of reads"));
    }
    out.fill_seconds = start.elapsed().as_secs_f64();
    out.fill_per_s = out.fill_ops as f64 / out.fill_seconds;
    let data = server.stop_keeping_data()?;

    let (log, checkpoint) = (data.dir().join("audit-export.jsonl"), data.dir().join("checkpoint.json"));
    say(&format!("  custos audit export of {stored} entries"));
    out.export_s = export(custos, &data, &log, &checkpoint)?;
    out.export_bytes = std::fs::metadata(&log).map_err(|e| format!("cannot read {}: {e}", log.display()))?.len();

    for n in 1..=args.runs {
        say(&format!("  custos audit verify, run {n} of {}", args.runs));
        out.cold = drop_from_cache(&log) && (n == 1 || out.cold);
        let cold = verify(custos, &log, &checkpoint)?;
        let warm = verify(custos, &log, &checkpoint)?;
        (out.entries, out.checkpoints) = (warm.entries, warm.checkpoints);
        out.cold_s.push(cold.seconds);
        out.warm_s.push(warm.seconds);
        out.cpu_s.extend([cold.cpu_seconds, warm.cpu_seconds]);
        out.peak_kib = out.peak_kib.max(cold.peak_kib).max(warm.peak_kib);
    }
    if out.entries < wanted {
        return Err(format!("the export verified only {} entries, {wanted} were asked for", out.entries));
    }
    drop(data);
    Ok(out)
}

/// `custos audit export`: the log into `log`, the final signed checkpoint
/// (its standard output) into `checkpoint`. Returns the wall time.
fn export(custos: &Path, data: &Stopped, log: &Path, checkpoint: &Path) -> Result<f64, String> {
    let start = clock::now();
    let done = data
        .command(custos, &["audit", "export", "--out", &log.display().to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} audit export: {e}", custos.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    if !done.status.success() {
        return Err(format!(
            "custos audit export failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    std::fs::write(checkpoint, &done.stdout).map_err(|e| format!("cannot write {}: {e}", checkpoint.display()))?;
    Ok(seconds)
}

/// Writes `file` back and asks the kernel to drop it from the page cache
/// (GNU `dd iflag=nocache count=0`), so that the next reader reads it from
/// storage. False when that could not be done.
fn drop_from_cache(file: &Path) -> bool {
    let quiet = |cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    quiet(Command::new("sync").arg(file))
        && quiet(Command::new("dd").arg(format!("if={}", file.display())).args(["iflag=nocache", "count=0"]))
}

/// One verification as measured.
#[derive(Debug, Clone, Copy)]
struct Verification {
    seconds: f64,
    cpu_seconds: f64,
    peak_kib: u64,
    entries: u64,
    checkpoints: u64,
}

/// `custos audit verify --log … --checkpoint …`, timed; its peak memory is
/// sampled from `/proc` every 10 ms by a thread of its own.
fn verify(custos: &Path, log: &Path, checkpoint: &Path) -> Result<Verification, String> {
    let cpu_before = server::children_cpu_seconds()?;
    let start = clock::now();
    let child = Command::new(custos)
        .env_clear()
        .args(["audit", "verify", "--log"])
        .arg(log)
        .arg("--checkpoint")
        .arg(checkpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {} audit verify: {e}", custos.display()))?;
    let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (done, peak, pid) = (done.clone(), peak.clone(), child.id());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok((_, hwm)) = server::memory_kib(pid) {
                    peak.fetch_max(hwm, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let output = child.wait_with_output();
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let output = output.map_err(|e| format!("cannot wait for custos audit verify: {e}"))?;
    let cpu_seconds = server::children_cpu_seconds()? - cpu_before;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "custos audit verify failed ({}): {}{}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let (entries, checkpoints) =
        parse_verified(&text).ok_or_else(|| format!("unexpected answer of custos audit verify: {}", text.trim()))?;
    Ok(Verification { seconds, cpu_seconds, peak_kib: peak.load(Ordering::Relaxed), entries, checkpoints })
}

/// Entries and checkpoints from `ok: FILE verified: N entries, K signed
/// checkpoints, root …`.
fn parse_verified(text: &str) -> Option<(u64, u64)> {
    let (_, rest) = text.split_once(" verified: ")?;
    let mut words = rest.split_whitespace();
    let entries = words.next()?.parse().ok()?;
    (words.next()? == "entries,").then_some(())?;
    let checkpoints = words.next()?.parse().ok()?;
    Some((entries, checkpoints))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_counts() {
        let text = "ok: /tmp/x/audit-export.jsonl verified: 1000012 entries, 3 signed checkpoints, root ab12; \
                    consistent with the saved checkpoint of size 1000012\n";
        assert_eq!(parse_verified(text), Some((1_000_012, 3)));
        assert_eq!(parse_verified("error: 5: entry 4: expected entry 4"), None);
    }
}

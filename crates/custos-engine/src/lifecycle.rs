//! The lifecycle executors: the plans of `custos_core::lifecycle` carried
//! out in store jobs, each with its audit entry in the same job.
//!
//! - dormancy: notices queued in the outbox, members moved to the dormant
//!   store (items sealed again under a dormant key wrapped by a key of its
//!   own), released on a counted event, destroyed when their time is up;
//! - account deletion: the profile and dormant keys, items and blind
//!   indexes destroyed at once; the row stays as a tombstone of ids while
//!   records under a statutory hold remain;
//! - statutory holds: records deleted on their expiry date, their hold keys
//!   destroyed when the last record they could hold expires;
//! - every destruction leaves a certificate in the audit log (operation
//!   `destroy`: what, when, under which rule), and is followed by a scrub:
//!   a WAL checkpoint that truncates the logs (`secure_delete` zeroes the
//!   freed pages), so nothing of it stays in a file of the data folder.
//!
//! Runs are idempotent (each step records its state, so a second run at
//! the same moment finds nothing to do) and hold a lease, so two runners
//! (two nodes, or `custos jobs run` beside `custos serve`) never do the
//! same work.

use std::collections::BTreeMap;

use custos_core::lifecycle::{self, Member, Status, Step};
use custos_core::policy::Policy;
use custos_core::policy::model::{Dormancy, RecordClass, RecordStart};
use custos_store::{ItemRow, KeyRow, LifecycleRow, OutboxRow, StoreError, WriteTx};
use jiff::Timestamp;
use serde::Serialize;

use crate::crypto::{Aad, DORMANT_SCOPE};
use crate::gate::DORMANT;
use crate::ids::new_id;
use crate::subjects::Caller;
use crate::{Engine, EngineError, Result, stamp};

/// Members handled per store job by a sweep.
const PAGE: u32 = 500;
/// On PostgreSQL every statement is a round trip, and a store job holds
/// the sequencer that every node's writes wait for: a tenth of the pages.
const PG_DIVISOR: u32 = 10;
/// Records (or hold keys) deleted per store job. Every store job must stay
/// well under the write deadline and let requests in between: 5,000 per job
/// took about a second with `secure_delete` in the benchmark and ran into
/// the deadline; 500 take about a tenth of that.
const RECORD_PAGE: u32 = 500;
/// How much earlier than the computed bound a sweep looks: calendar spans
/// taken back and forth (month ends, business days) differ by a few days.
/// The plan in core decides exactly; this only widens the candidates.
const SWEEP_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 7);
/// How long a runner holds the lifecycle lease without renewing it.
const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(600);
const LEASE_NAME: &str = "lifecycle";

/// The lease a run holds.
struct Lease<'a> {
    engine: &'a Engine,
    holder: &'a str,
    wall: &'a (dyn Fn() -> Timestamp + Send + Sync),
}

impl Lease<'_> {
    /// Extends the lease; an error when another runner took it meanwhile.
    async fn renew(&self) -> Result<()> {
        if self.engine.take_lease(self.holder, (self.wall)()).await? {
            Ok(())
        } else {
            Err(EngineError::Conflict("the lifecycle lease was taken by another runner; this run stopped".into()))
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobReport {
    /// `false` when another runner holds the lease: nothing was done.
    pub ran: bool,
    pub notified: u64,
    pub made_dormant: u64,
    pub released_leftovers: u64,
    pub destroyed_dormant: u64,
    pub records_destroyed: u64,
    pub keys_destroyed: u64,
    /// Complaints and inquiries destroyed at the end of their span.
    pub requests_destroyed: u64,
    pub notices_sent: u64,
    pub notices_failed: u64,
    /// Whether the storage engine's logs were scrubbed after destruction.
    pub scrubbed: bool,
}

/// How notices leave: an SMTP relay, and the processor it is (when the
/// relay is a processor of the policy, each message is logged as a
/// transfer of the items it carries).
#[derive(Clone, Debug)]
pub struct MailConfig {
    pub smtp: crate::mail::SmtpConfig,
    pub processor: Option<String>,
}

/// Delivery attempts before a notice is given up as failed.
const MAX_ATTEMPTS: i64 = 8;

/// The answer to an account deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub id: String,
    pub destroyed_at: String,
    /// Data keys destroyed (profile, dormant).
    pub keys_destroyed: usize,
    pub items_destroyed: usize,
    /// Records kept under a statutory hold: class, law, count, and the date
    /// the last of them expires.
    pub kept: Vec<KeptRecords>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRecords {
    pub class: String,
    pub law: String,
    pub read_purpose: String,
    pub count: usize,
    pub until: Option<String>,
}

/// The scheduler's audit identity.
fn system_entry(
    at: &str,
    operation: &str,
    subject: Option<&str>,
    items: String,
    outcome: String,
    version: &str,
) -> custos_core::audit::Entry {
    custos_core::audit::Entry {
        at: at.to_owned(),
        actor: "custos".into(),
        role: "scheduler".into(),
        operation: operation.to_owned(),
        purpose: None,
        subject: subject.map(str::to_owned),
        items,
        outcome,
        policy_version: version.to_owned(),
    }
}

fn parse_ts(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

pub(crate) fn roles_of(row: &LifecycleRow) -> Vec<String> {
    row.roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

/// The core's view of a stored member (`None` when a stored time is
/// unreadable: such a row is skipped and logged, never guessed).
pub(crate) fn member_of<'a>(row: &'a LifecycleRow, roles: &'a [String]) -> Option<Member<'a>> {
    let status = match row.status.as_str() {
        "active" => Status::Active,
        DORMANT => Status::Dormant,
        _ => return None,
    };
    Some(Member {
        id: &row.id,
        kind: &row.kind,
        status,
        last_activity: parse_ts(&row.last_activity_at)?,
        notified_at: row.notified_at.as_deref().and_then(parse_ts),
        dormant_at: row.dormant_at.as_deref().and_then(parse_ts),
        roles,
    })
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The rule's name in a certificate.
fn dormancy_rule(rule: &Dormancy) -> String {
    format!("retention.dormancy ({} inactive, destroyed {} after)", rule.inactive_for, rule.destroy_after)
}

fn hold_rule(class: &RecordClass) -> String {
    format!("record_classes.{} ({}, {} from {})", class.id, class.law, class.retain_for, class.from.as_str())
}

impl Engine {
    /// Runs every lifecycle job once at `now`: dormancy notices, moves and
    /// destruction, leftovers of interrupted releases, expired records and
    /// their keys, e-mail, then the scrub. `holder` names this runner for
    /// the lease; `wall` tells the real time, which the lease is measured
    /// in (`now` may be a chosen moment): it is renewed between phases and
    /// messages, and a run that finds it lost stops with an error.
    pub async fn run_jobs(
        &self,
        now: Timestamp,
        holder: &str,
        wall: &(dyn Fn() -> Timestamp + Send + Sync),
    ) -> Result<JobReport> {
        let mut report = JobReport::default();
        if !self.take_lease(holder, wall()).await? {
            return Ok(report);
        }
        report.ran = true;
        let lease = Lease { engine: self, holder, wall };
        let outcome = self.run_jobs_leased(now, &lease, &mut report).await;
        let release = {
            let holder = holder.to_owned();
            self.background_job(move |tx| tx.release_lease(LEASE_NAME, &holder)).await
        };
        outcome?;
        release?;
        Ok(report)
    }

    async fn run_jobs_leased(&self, now: Timestamp, lease: &Lease<'_>, report: &mut JobReport) -> Result<()> {
        let policy = self.policy();
        if let Some(rule) = policy.retention.dormancy.clone() {
            self.sweep_active(&rule, now, report).await?;
            lease.renew().await?;
            self.sweep_dormant(&rule, now, report).await?;
            lease.renew().await?;
        }
        self.purge_leftovers(now, report).await?;
        lease.renew().await?;
        self.sweep_records(now, report).await?;
        lease.renew().await?;
        self.sweep_requests(now, report).await?;
        lease.renew().await?;
        self.deliver_outbox(now, lease, report).await?;
        if report.destroyed_dormant
            + report.records_destroyed
            + report.keys_destroyed
            + report.requests_destroyed
            + report.made_dormant
            + report.released_leftovers
            > 0
        {
            report.scrubbed = self.scrub().await.is_ok();
        }
        Ok(())
    }

    /// Takes or renews the lifecycle lease for `holder` (ten minutes from
    /// `wall`, the real time); `false` while another holder's lease runs.
    /// `run_jobs` does this itself; exposed for operators' tooling and
    /// tests.
    pub async fn take_lease(&self, holder: &str, wall: Timestamp) -> Result<bool> {
        let (holder, at) = (holder.to_owned(), stamp(wall));
        let until = stamp(wall.checked_add(LEASE).unwrap_or(wall));
        let taken = self.background_job(move |tx| tx.acquire_lease(LEASE_NAME, &holder, &at, &until)).await?;
        Ok(taken)
    }

    /// Checkpoints every file and truncates its log, so that destroyed keys
    /// and ciphertext leave no copy behind in a `-wal` file. A reader can
    /// keep a checkpoint from finishing; it is tried a few times.
    pub async fn scrub(&self) -> Result<()> {
        let mut last = None;
        for attempt in 0..5u64 {
            let store = self.inner.store.clone();
            match tokio::task::spawn_blocking(move || store.checkpoint()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = Some(EngineError::from(e)),
                Err(e) => last = Some(EngineError::Unavailable(e.to_string())),
            }
            // A reader that held the log a moment ago is likely gone soon:
            // wait a little longer each time (20, 40, … 80 ms).
            tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
        }
        Err(last.unwrap_or_else(|| EngineError::Unavailable("scrub failed".into())))
    }

    /// Complaints and inquiries whose span is over: key, row and timeline
    /// destroyed, each with its certificate.
    async fn sweep_requests(&self, now: Timestamp, report: &mut JobReport) -> Result<()> {
        let (page, _) = self.pages();
        let today = lifecycle::utc_date(now).to_string();
        loop {
            let (today_c, at, version) = (today.clone(), stamp(now), self.policy().meta.version.clone());
            let done = self
                .background_job(move |tx| {
                    let due = tx.requests_to_destroy(&today_c, page)?;
                    for (id, subject, key_id) in &due {
                        let had_key = tx.destroy_request(id, key_id)?;
                        tx.append_audit(&crate::audit::row(system_entry(
                            &at,
                            "destroy",
                            subject.as_deref(),
                            String::new(),
                            format!(
                                "destroyed: request {id} at the end of the span it was kept for{}",
                                if had_key { format!("; key {key_id}") } else { String::new() }
                            ),
                            &version,
                        )))?;
                    }
                    Ok(due.len() as u64)
                })
                .await?;
            report.requests_destroyed += done;
            if done < u64::from(page) {
                return Ok(());
            }
        }
    }

    /// Members and records per store job (see [`PG_DIVISOR`]).
    fn pages(&self) -> (u32, u32) {
        match self.backend() {
            "postgres" => (PAGE / PG_DIVISOR, RECORD_PAGE / PG_DIVISOR),
            _ => (PAGE, RECORD_PAGE),
        }
    }

    /// Active members: notices due, and moves to the dormant store.
    async fn sweep_active(&self, rule: &Dormancy, now: Timestamp, report: &mut JobReport) -> Result<()> {
        let (page, _) = self.pages();
        // Every member whose notice or dormancy may be due has been
        // inactive at least this long; a day of slack for the time of day.
        let lead = rule.notice_before.map(|n| lifecycle::add_span(lifecycle::sub_span(now, rule.inactive_for), n));
        let until = lead.unwrap_or_else(|| lifecycle::sub_span(now, rule.inactive_for));
        let until = stamp(until.checked_add(SWEEP_SLACK).unwrap_or(until));
        let mut cursor = (String::new(), String::new());
        loop {
            let (rule_c, policy, keyring, at, until_c, after) =
                (rule.clone(), self.policy(), self.inner.keyring.clone(), stamp(now), until.clone(), cursor.clone());
            let (rows, notified, moved) = self
                .background_job(move |tx| {
                    let rows = tx.active_members_until(&until_c, (&after.0, &after.1), page)?;
                    let (mut notified, mut moved) = (0u64, 0u64);
                    for row in &rows {
                        let roles = roles_of(row);
                        let Some(member) = member_of(row, &roles) else {
                            tracing::error!(subject = %row.id, "a lifecycle time does not parse; skipped");
                            continue;
                        };
                        match lifecycle::step(&rule_c, &member, now) {
                            Some(Step::Notify { dormant_on }) => {
                                queue_notice(tx, &policy, &row.id, dormant_on, &at)?;
                                notified += 1;
                            }
                            Some(Step::MakeDormant) => match make_dormant(tx, &policy, &keyring, &rule_c, &row.id, &at) {
                                Ok(()) => moved += 1,
                                // One member's damaged data must not stop
                                // the jobs of everyone else.
                                Err(e) => tracing::error!(subject = %row.id, error = %e, "could not move to the dormant store; skipped"),
                            },
                            _ => {}
                        }
                    }
                    let last = rows.last().map(|r| (r.last_activity_at.clone(), r.id.clone()));
                    Ok((last, notified, moved))
                })
                .await?;
            report.notified += notified;
            report.made_dormant += moved;
            match rows {
                Some(last) => cursor = last,
                None => return Ok(()),
            }
        }
    }

    /// Dormant members whose destruction is due.
    async fn sweep_dormant(&self, rule: &Dormancy, now: Timestamp, report: &mut JobReport) -> Result<()> {
        let (page, _) = self.pages();
        let until = lifecycle::sub_span(now, rule.destroy_after);
        let until = stamp(until.checked_add(SWEEP_SLACK).unwrap_or(until));
        let mut cursor = (String::new(), String::new());
        loop {
            let (engine, rule_c, policy, at, until_c, after) =
                (self.clone(), rule.clone(), self.policy(), stamp(now), until.clone(), cursor.clone());
            let (last, destroyed) = self
                .background_job(move |tx| {
                    let rows = tx.dormant_members_until(&until_c, (&after.0, &after.1), page)?;
                    let mut destroyed = 0u64;
                    for row in &rows {
                        let roles = roles_of(row);
                        let Some(member) = member_of(row, &roles) else { continue };
                        if let Some(Step::Destroy { since }) = lifecycle::step(&rule_c, &member, now) {
                            let gone = tx.destroy_subject(&row.id, &at)?;
                            // Their privacy-center sign-ins and sessions end with them.
                            tx.remove_member_sessions(&row.id)?;
                            let who = ("custos".to_owned(), "scheduler".to_owned());
                            crate::requests::drop_pending_corrections(&engine, tx, &row.id, &who, &at, &policy)?;
                            tx.append_audit(&crate::audit::row(system_entry(
                                &at,
                                "destroy",
                                Some(&row.id),
                                String::new(),
                                format!(
                                    "destroyed: dormant member; keys {}; {} items; {} blind indexes; due {}; rule {}",
                                    gone.keys.join(" "),
                                    gone.items + gone.dormant_items,
                                    gone.indexes,
                                    stamp(since),
                                    dormancy_rule(&rule_c)
                                ),
                                &policy.meta.version,
                            )))?;
                            destroyed += 1;
                        }
                    }
                    Ok((rows.last().map(|r| (r.dormant_at.clone().unwrap_or_default(), r.id.clone())), destroyed))
                })
                .await?;
            report.destroyed_dormant += destroyed;
            match last {
                Some(last) => cursor = last,
                None => return Ok(()),
            }
        }
    }

    /// Dormant copies left by a release interrupted between its two jobs,
    /// found by walking the whole dormant store.
    async fn purge_leftovers(&self, now: Timestamp, report: &mut JobReport) -> Result<()> {
        let (page, _) = self.pages();
        let mut cursor = String::new();
        loop {
            let (at, version, after) = (stamp(now), self.policy().meta.version.clone(), cursor.clone());
            let (last, purged) = self
                .background_job(move |tx| {
                    let page = tx.dormant_store_page(&after, page)?;
                    let mut purged = 0u64;
                    for (id, dormant) in &page {
                        if *dormant {
                            continue;
                        }
                        let keys = tx.purge_dormant(id)?;
                        tx.append_audit(&crate::audit::row(system_entry(
                            &at,
                            "dormant_purge",
                            Some(id),
                            String::new(),
                            format!("removed the dormant copy of a released member; keys {}", keys.join(" ")),
                            &version,
                        )))?;
                        purged += 1;
                    }
                    Ok((page.last().map(|(id, _)| id.clone()), purged))
                })
                .await?;
            report.released_leftovers += purged;
            match last {
                Some(last) => cursor = last,
                None => return Ok(()),
            }
        }
    }

    /// Records past their hold, and the hold keys whose last record expired.
    async fn sweep_records(&self, now: Timestamp, report: &mut JobReport) -> Result<()> {
        let (_, record_page) = self.pages();
        let today = lifecycle::utc_date(now);
        let policy = self.policy();
        for class in &policy.record_classes {
            let (cutoff, from_deletion) = match class.from {
                RecordStart::AccountDeletion => (lifecycle::deletion_cutoff(class, today), true),
                _ => (lifecycle::record_cutoff(class, today), false),
            };
            let Some(cutoff) = cutoff else { continue };
            let cutoff = cutoff.to_string();
            loop {
                let (class_c, cutoff_c, at, version) =
                    (class.clone(), cutoff.clone(), stamp(now), policy.meta.version.clone());
                let (records, keys) = self
                    .background_job(move |tx| {
                        let gone = if from_deletion {
                            tx.expire_records_of_deleted(class_c.id.as_str(), &cutoff_c, record_page)?
                        } else {
                            tx.expire_records(class_c.id.as_str(), &cutoff_c, record_page)?
                        };
                        let mut by_subject: BTreeMap<&str, usize> = BTreeMap::new();
                        for (subject, _) in &gone {
                            *by_subject.entry(subject).or_default() += 1;
                        }
                        let mut keys = 0u64;
                        for (subject, count) in &by_subject {
                            let mut outcome = format!(
                                "destroyed: {count} records {} on or before {cutoff_c}; rule {}",
                                if from_deletion { "of an account deleted" } else { "dated" },
                                hold_rule(&class_c)
                            );
                            if from_deletion {
                                let removed = tx.remove_key_of(subject, &format!("hold:{}", class_c.id))?;
                                keys += removed.len() as u64;
                                if !removed.is_empty() {
                                    outcome.push_str(&format!("; keys {}", removed.join(" ")));
                                }
                            }
                            tx.append_audit(&crate::audit::row(system_entry(
                                &at,
                                "destroy",
                                Some(subject),
                                class_c.id.to_string(),
                                outcome,
                                &version,
                            )))?;
                        }
                        Ok((gone.len() as u64, keys))
                    })
                    .await?;
                report.records_destroyed += records;
                report.keys_destroyed += keys;
                if records < u64::from(record_page) {
                    break;
                }
            }
            if from_deletion {
                continue;
            }
            // Keys of whole months whose every record is expired.
            let Some(bucket) = cutoff.parse::<jiff::civil::Date>().ok().and_then(lifecycle::last_expired_bucket) else {
                continue;
            };
            let (low, high) = (format!("hold:{}:", class.id), format!("hold:{}:{bucket}", class.id));
            loop {
                let (class_c, at, version, low_c, high_c) =
                    (class.clone(), stamp(now), policy.meta.version.clone(), low.clone(), high.clone());
                let removed = self
                    .background_job(move |tx| {
                        let keys = tx.remove_keys_in_scopes(&low_c, &high_c, record_page)?;
                        for key in &keys {
                            tx.append_audit(&crate::audit::row(system_entry(
                                &at,
                                "destroy",
                                Some(&key.subject_id),
                                class_c.id.to_string(),
                                format!("destroyed: key {} ({}); rule {}", key.id, key.scope, hold_rule(&class_c)),
                                &version,
                            )))?;
                        }
                        Ok(keys.len() as u64)
                    })
                    .await?;
                report.keys_destroyed += removed;
                if removed < u64::from(record_page) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Deletes a member's account at once: profile and dormant keys, items
    /// and blind indexes destroyed in one job with the certificate; held
    /// records stay readable for their legal purpose until they expire.
    pub async fn delete_subject(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<Erasure> {
        use custos_core::authz::{Operation, Target};
        self.permit(caller, Operation::DeleteSubject, Target::None, None, None, now).await?;
        self.erase(caller, id, Operation::DeleteSubject, "account deletion", now).await
    }

    /// The erasure itself, asked as `op` (a deletion by the platform, or
    /// the fulfilment of a deletion request by staff who work the queue);
    /// `why` goes into the certificate.
    pub(crate) async fn erase(
        &self,
        caller: &Caller,
        id: &str,
        op: custos_core::authz::Operation,
        why: &str,
        now: Timestamp,
    ) -> Result<Erasure> {
        let policy = self.policy();
        let (engine, caller_c, id_c, at, why) =
            (self.clone(), caller.clone(), id.to_owned(), stamp(now), why.to_owned());
        let today = lifecycle::utc_date(now);
        let erasure = self
            .write_job(move |tx| {
                let subject = match crate::gate::member(tx, &policy, &caller_c, op, &id_c, None, None, &at)? {
                    Ok((subject, _)) => subject,
                    Err(refused) => return Ok(Err(refused)),
                };
                let gone = tx.destroy_subject(&subject.id, &at)?;
                // Their privacy-center sign-ins and sessions end with them.
                tx.remove_member_sessions(&subject.id)?;
                let who = crate::requests::who(&caller_c);
                crate::requests::drop_pending_corrections(&engine, tx, &subject.id, &who, &at, &policy)?;
                let mut kept = Vec::new();
                for class in &policy.record_classes {
                    let dates = tx.record_dates_of(&subject.id, class.id.as_str())?;
                    if dates.is_empty() {
                        continue;
                    }
                    let until = dates
                        .iter()
                        .filter_map(|d| d.parse::<jiff::civil::Date>().ok())
                        .filter_map(|d| lifecycle::record_expires(class, d, Some(today)))
                        .max();
                    kept.push(KeptRecords {
                        class: class.id.to_string(),
                        law: class.law.to_string(),
                        read_purpose: class.read_purpose.to_string(),
                        count: dates.len(),
                        until: until.map(|d| d.to_string()),
                    });
                }
                let kept_words: Vec<String> = kept
                    .iter()
                    .map(|k| format!("{} {} until {}", k.count, k.class, k.until.as_deref().unwrap_or("?")))
                    .collect();
                crate::subjects::Audit {
                    caller: &caller_c,
                    operation: "destroy",
                    purpose: None,
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: &format!(
                        "destroyed: {why}; keys {}; {} items; {} blind indexes; rule retention.rules \
                         account_deletion; kept under holds: {}",
                        gone.keys.join(" "),
                        gone.items + gone.dormant_items,
                        gone.indexes,
                        if kept_words.is_empty() { "none".to_owned() } else { kept_words.join(", ") }
                    ),
                    at: &at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok(Erasure {
                    id: subject.id,
                    destroyed_at: at.clone(),
                    keys_destroyed: gone.keys.len(),
                    items_destroyed: gone.items + gone.dormant_items,
                    kept,
                }))
            })
            .await??;
        // The scrub runs after the answer is durable; a busy reader can
        // delay it to the next scheduled run, never undo the destruction.
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.scrub().await {
                tracing::warn!(error = %e, "scrub after an erasure deferred to the next job run");
            }
        });
        Ok(erasure)
    }

    /// Releases a dormant member (a counted event such as a login): the
    /// items come back under the profile key in one job, the dormant copy
    /// goes in the next.
    pub(crate) async fn release_dormant(&self, id: &str, event: &str, now: Timestamp) -> Result<()> {
        let (id_c, at, keyring, version) =
            (id.to_owned(), stamp(now), self.inner.keyring.clone(), self.policy().meta.version.clone());
        let event = event.to_owned();
        let released = self
            .write_job(move |tx| {
                let Some(subject) = tx.subject(&id_c)? else { return Ok(false) };
                if subject.status != DORMANT {
                    return Ok(false);
                }
                let rows = tx.dormant_items(&id_c)?;
                let dormant_key = tx.key_for(&id_c, DORMANT_SCOPE)?;
                let profile = tx.key(&subject.profile_key)?;
                let (Some(dormant_key), Some(profile)) = (dormant_key, profile) else {
                    if rows.is_empty() {
                        // Nothing was kept (no items): only the status moves.
                        tx.release_from_dormant(&id_c, &[], &at)?;
                        return Ok(true);
                    }
                    return Err(StoreError::Database(format!("the keys of dormant subject {id_c} are missing")));
                };
                let items = reseal(&keyring, &id_c, &rows, &dormant_key, &profile)?;
                tx.release_from_dormant(&id_c, &items, &at)?;
                tx.append_audit(&crate::audit::row(system_entry(
                    &at,
                    "dormant_release",
                    Some(&id_c),
                    items.iter().map(|i| i.item.as_str()).collect::<Vec<_>>().join(","),
                    format!("released by {event}"),
                    &version,
                )))?;
                Ok(true)
            })
            .await?;
        if released {
            let (id_c, at, version) = (id.to_owned(), stamp(now), self.policy().meta.version.clone());
            self.write_job(move |tx| {
                let keys = tx.purge_dormant(&id_c)?;
                tx.append_audit(&crate::audit::row(system_entry(
                    &at,
                    "dormant_purge",
                    Some(&id_c),
                    String::new(),
                    format!("removed the dormant copy after the release; keys {}", keys.join(" ")),
                    &version,
                )))
                .map(|_| ())
            })
            .await?;
        }
        Ok(())
    }
}

/// Whether a dormant member's destruction is due at `now` (the sweep may
/// not have run yet).
pub(crate) fn destruction_due(tx: &WriteTx<'_>, policy: &Policy, id: &str, now: Timestamp) -> Result<bool, StoreError> {
    let (Some(rule), Some(row)) = (&policy.retention.dormancy, tx.lifecycle_of(id)?) else { return Ok(false) };
    let roles = roles_of(&row);
    Ok(member_of(&row, &roles)
        .and_then(|m| lifecycle::step(rule, &m, now))
        .is_some_and(|s| matches!(s, Step::Destroy { .. })))
}

/// Seals `rows` (under `from`) again under `to`, for the same owner.
fn reseal(
    keyring: &crate::crypto::Keyring,
    owner: &str,
    rows: &[ItemRow],
    from: &KeyRow,
    to: &KeyRow,
) -> Result<Vec<ItemRow>, StoreError> {
    let from_key = keyring.unwrap_scoped(&from.scope, &from.id, &from.wrapped).map_err(db)?;
    let to_key = keyring.unwrap_scoped(&to.scope, &to.id, &to.wrapped).map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let plain = from_key
            .open(&Aad { owner, field: &row.item, key_id: &from.id, key_version: row.key_version }, &row.value)
            .map_err(db)?;
        let value = to_key
            .seal(&Aad { owner, field: &row.item, key_id: &to.id, key_version: to.version }, &plain)
            .map_err(db)?;
        out.push(ItemRow { value, key_version: to.version, ..row.clone() });
    }
    Ok(out)
}

/// Queues the dormancy notice and records it, with its audit entry.
fn queue_notice(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    id: &str,
    dormant_on: Timestamp,
    at: &str,
) -> Result<(), StoreError> {
    let body = serde_json::json!({
        "dormant_on": stamp(dormant_on),
        "policy_version": policy.meta.version,
    });
    tx.insert_outbox(&OutboxRow {
        kind: "dormancy_notice".into(),
        subject: Some(id.to_owned()),
        body: body.to_string(),
        created_at: at.to_owned(),
    })?;
    tx.set_notified(id, at)?;
    tx.append_audit(&crate::audit::row(system_entry(
        at,
        "dormancy_notice",
        Some(id),
        String::new(),
        format!("queued: dormant on {}", stamp(dormant_on)),
        &policy.meta.version,
    )))?;
    Ok(())
}

/// Moves one member to the dormant store under a new dormant key.
fn make_dormant(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    keyring: &crate::crypto::Keyring,
    rule: &Dormancy,
    id: &str,
    at: &str,
) -> Result<(), StoreError> {
    let Some(subject) = tx.subject(id)? else { return Ok(()) };
    let rows = tx.items(id, &[])?;
    // Everything that can fail is checked before anything is written, so a
    // member whose data cannot be moved is skipped (and logged) without
    // leaving half a move in the batch.
    let (dormant_key, new_key) = match tx.key_for(id, DORMANT_SCOPE)? {
        // A key left by an interrupted move is reused.
        Some(k) => (k, false),
        None => {
            let key_id = new_id("key").map_err(db)?;
            let (_, wrapped) = keyring.new_dormant_key(&key_id).map_err(db)?;
            let row = KeyRow {
                id: key_id,
                subject_id: id.to_owned(),
                scope: DORMANT_SCOPE.into(),
                version: 1,
                wrapped,
                created_at: at.to_owned(),
            };
            (row, true)
        }
    };
    let items = if rows.is_empty() {
        Vec::new()
    } else {
        let profile = tx
            .key(&subject.profile_key)?
            .ok_or_else(|| StoreError::Database(format!("the profile key of subject {id} is missing")))?;
        reseal(keyring, id, &rows, &profile, &dormant_key)?
    };
    if new_key {
        tx.insert_key(&dormant_key)?;
    }
    tx.move_to_dormant(id, &items, at)?;
    tx.append_audit(&crate::audit::row(system_entry(
        at,
        "dormant_move",
        Some(id),
        items.iter().map(|i| i.item.as_str()).collect::<Vec<_>>().join(","),
        format!("moved to the dormant store under key {}; rule {}", dormant_key.id, dormancy_rule(rule)),
        &policy.meta.version,
    )))?;
    Ok(())
}

impl Engine {
    /// Delivers the notifications due to one member each (dormancy
    /// notices) through the configured SMTP relay: the address is read
    /// (audited, with the transfer to the relay's processor) in one job,
    /// the message sent outside any job, its outcome recorded in another.
    /// Failures are retried with a growing delay, up to eight attempts.
    async fn deliver_outbox(&self, now: Timestamp, lease: &Lease<'_>, report: &mut JobReport) -> Result<()> {
        let Some(mail) = self.inner.mail.clone() else { return Ok(()) };
        self.fan_out_broadcasts(now).await?;
        let sender = crate::mail::SmtpSender::new(mail.smtp.clone());
        let at = stamp(now);
        let due = {
            let at = at.clone();
            self.background_job(move |tx| tx.due_outbox(&at, 1_000)).await?
        };
        for entry in due {
            lease.renew().await?;
            match self.deliver_entry(&sender, &mail, entry, now).await? {
                Delivery::Sent => report.notices_sent += 1,
                Delivery::GaveUp => report.notices_failed += 1,
                Delivery::Later | Delivery::Skipped => {}
            }
        }
        Ok(())
    }

    /// Delivers the notices of `kind` queued for `subject` now, outside the
    /// scheduled runs (a one-time code cannot wait for them). What fails is
    /// left to the scheduled runs' retries. No lease: at worst a notice is
    /// sent twice, as the outbox's delivery is at least once anyway.
    pub(crate) async fn deliver_now(&self, subject: &str, kind: &str, now: Timestamp) -> Result<()> {
        let Some(mail) = self.inner.mail.clone() else { return Ok(()) };
        let sender = crate::mail::SmtpSender::new(mail.smtp.clone());
        let (subject_c, kind_c, at) = (subject.to_owned(), kind.to_owned(), stamp(now));
        let due = self.background_job(move |tx| tx.due_outbox_of(&subject_c, &kind_c, &at)).await?;
        for entry in due {
            self.deliver_entry(&sender, &mail, entry, now).await?;
        }
        Ok(())
    }

    /// Sends a message to a member's address on file at once, without
    /// queueing it: for what is useless late (a sign-in code). The read of
    /// the address is audited like any notice's; `body` is the notice's
    /// facts (JSON).
    pub(crate) async fn send_now(&self, subject: &str, kind: &str, body: &str, now: Timestamp) -> Result<()> {
        let Some(mail) = self.inner.mail.clone() else {
            return Err(EngineError::Unavailable("no e-mail relay is configured".into()));
        };
        let sender = crate::mail::SmtpSender::new(mail.smtp.clone());
        let queued = stamp(now);
        match self.notice_address(subject, kind, &queued, mail.processor.as_deref(), now).await? {
            Recipient::Address(to) => {
                let message = notice_message(&self.policy(), kind, body, to);
                sender.send(&message).await.map_err(|e| EngineError::Unavailable(e.to_string()))
            }
            Recipient::Stale | Recipient::Missing => Err(EngineError::Unavailable("no e-mail address on file".into())),
        }
    }

    /// Sends one outbox entry and records how it went.
    async fn deliver_entry(
        &self,
        sender: &crate::mail::SmtpSender,
        mail: &MailConfig,
        entry: custos_store::OutboxEntry,
        now: Timestamp,
    ) -> Result<Delivery> {
        let at = stamp(now);
        let Some(subject) = entry.subject.clone() else { return Ok(Delivery::Skipped) };
        let address =
            self.notice_address(&subject, &entry.kind, &entry.created_at, mail.processor.as_deref(), now).await?;
        let outcome = match address {
            Recipient::Stale => Err(crate::mail::MailError::Permanent(
                "no longer due: the member was active since, or is dormant already".into(),
            )),
            Recipient::Missing => Err(crate::mail::MailError::Permanent("no e-mail address on file".into())),
            Recipient::Address(to) => {
                let body = match entry.kind.as_str() {
                    "request_code" => self.request_code_body(&entry.body).await?,
                    _ => entry.body.clone(),
                };
                let message = notice_message(&self.policy(), &entry.kind, &body, to);
                sender.send(&message).await
            }
        };
        let (seq, attempts, at_c) = (entry.seq, entry.attempts + 1, at.clone());
        match outcome {
            Ok(()) => {
                self.background_job(move |tx| tx.outbox_delivered(seq, &at_c)).await?;
                Ok(Delivery::Sent)
            }
            Err(e) => {
                let (retry, reason) = match &e {
                    crate::mail::MailError::Transient(r) => (attempts < MAX_ATTEMPTS, r.clone()),
                    crate::mail::MailError::Permanent(r) => (false, r.clone()),
                };
                // 5 minutes, doubling: 5, 10, 20 … minutes.
                let next = retry.then(|| {
                    let wait = jiff::SignedDuration::from_mins(5 * (1i64 << (attempts - 1).clamp(0, 10)));
                    stamp(now.checked_add(wait).unwrap_or(now))
                });
                tracing::warn!(seq, attempts, retry, reason = %reason, "notice not delivered");
                let gave_up = next.is_none();
                self.background_job(move |tx| tx.outbox_attempt_failed(seq, &at_c, next.as_deref(), &reason)).await?;
                Ok(if gave_up { Delivery::GaveUp } else { Delivery::Later })
            }
        }
    }

    /// Notices to every member (amendments) become one entry per active
    /// member with an e-mail address; the notice itself is then marked
    /// delivered (to the outbox). Safe to interrupt and run again.
    async fn fan_out_broadcasts(&self, now: Timestamp) -> Result<()> {
        let policy = self.policy();
        let emails: Vec<String> = policy
            .items
            .iter()
            .filter(|i| i.kind == custos_core::policy::model::ItemType::Email)
            .map(|i| i.id.to_string())
            .collect();
        let broadcasts = self.background_job(|tx| tx.pending_broadcasts()).await?;
        for (seq, _, _) in broadcasts {
            let mut cursor = String::new();
            loop {
                let (emails, at, after) = (emails.clone(), stamp(now), cursor.clone());
                let last = self
                    .background_job(move |tx| {
                        let names: Vec<&str> = emails.iter().map(String::as_str).collect();
                        let (last, _) = tx.fan_out(seq, &names, &after, 1_000, &at)?;
                        if last.is_none() {
                            tx.outbox_delivered(seq, &at)?;
                        }
                        Ok(last)
                    })
                    .await?;
                match last {
                    Some(last) => cursor = last,
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// The member's e-mail address for a notice, read in a job with its
    /// audit entry (and the transfer to the relay, when it is a
    /// processor). `None` when the member has none (or is gone).
    async fn notice_address(
        &self,
        subject: &str,
        kind: &str,
        queued_at: &str,
        processor: Option<&str>,
        now: Timestamp,
    ) -> Result<Recipient> {
        let policy = self.policy();
        let emails: Vec<String> = policy
            .items
            .iter()
            .filter(|i| i.kind == custos_core::policy::model::ItemType::Email)
            .map(|i| i.id.to_string())
            .collect();
        let transfer = processor
            .and_then(|p| policy.processors.iter().find(|x| x.id.as_str() == p))
            .map(|p| format!("; transfer to processor {} ({})", p.id, p.name));
        let (subject_c, kind_c, at, version) =
            (subject.to_owned(), kind.to_owned(), stamp(now), policy.meta.version.clone());
        let queued = parse_ts(queued_at);
        let found = self
            .background_job(move |tx| {
                let Some(row) = tx.subject(&subject_c)? else { return Ok(None) };
                // A dormancy notice is for an active member who has not
                // been active since it was queued; otherwise it is moot.
                if kind_c == "dormancy_notice" {
                    let last = parse_ts(&row.last_activity_at);
                    if row.status != "active" || matches!((last, queued), (Some(l), Some(q)) if l > q) {
                        return Ok(Some(None));
                    }
                }
                let (rows, key) = if row.status == DORMANT {
                    (tx.dormant_items(&subject_c)?, tx.key_for(&subject_c, DORMANT_SCOPE)?)
                } else {
                    (tx.items(&subject_c, &[])?, tx.key(&row.profile_key)?)
                };
                let Some(item) = rows.into_iter().find(|r| emails.contains(&r.item)) else { return Ok(None) };
                let Some(key) = key else { return Ok(None) };
                tx.append_audit(&crate::audit::row(system_entry(
                    &at,
                    "notify",
                    Some(&subject_c),
                    item.item.clone(),
                    format!("read to deliver {kind_c} by e-mail{}", transfer.unwrap_or_default()),
                    &version,
                )))?;
                Ok(Some(Some((item, key))))
            })
            .await?;
        let (item, key) = match found {
            None => return Ok(Recipient::Missing),
            Some(None) => return Ok(Recipient::Stale),
            Some(Some(found)) => found,
        };
        let data_key = self.inner.keyring.unwrap_scoped(&key.scope, &key.id, &key.wrapped)?;
        let plain = data_key.open(
            &Aad { owner: subject, field: &item.item, key_id: &key.id, key_version: item.key_version },
            &item.value,
        )?;
        Ok(String::from_utf8(plain.to_vec()).map(Recipient::Address).unwrap_or(Recipient::Missing))
    }
}

/// How one delivery went.
enum Delivery {
    Sent,
    /// Failed; tried again later.
    Later,
    /// Failed for good.
    GaveUp,
    /// Not a notice to one member.
    Skipped,
}

/// Where a notice goes.
enum Recipient {
    Address(String),
    /// The member has no e-mail address (or is gone).
    Missing,
    /// The notice is moot (the member was active since it was queued).
    Stale,
}

/// The text of a notice, from the policy's own words.
fn notice_message(policy: &Policy, kind: &str, body: &str, to: String) -> crate::mail::Message {
    let facts: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let date = facts.get("dormant_on").and_then(|v| v.as_str()).unwrap_or("soon");
    let (subject, text) = match (kind, &policy.retention.dormancy) {
        ("dormancy_notice", Some(rule)) => (
            format!("{}: your account will become dormant", policy.meta.title),
            format!(
                "Your account has had no activity for almost {}. Unless you sign in before {date}, \
                 it will be stored separately as a dormant account.\n\n{}\n",
                rule.inactive_for, rule.description
            ),
        ),
        ("amendment_notice", _) => {
            let version = facts.get("version").and_then(|v| v.as_str()).unwrap_or("a new version");
            let effective = facts.get("effective_date").and_then(|v| v.as_str()).unwrap_or("soon");
            (
                format!("{}: the privacy policy changes on {effective}", policy.meta.title),
                format!(
                    "Version {version} of the privacy policy takes effect on {effective}. \
                     The changes are posted on the notice board.\n"
                ),
            )
        }
        ("request_code", _) => {
            let code = facts.get("code").and_then(|v| v.as_str()).unwrap_or("");
            (
                format!("{}: your verification code", policy.meta.title),
                format!(
                    "A request about your personal information was filed. To confirm that you made it, \
                     enter this code where you filed it: {code}\n\nThe code expires in {} minutes. \
                     If you did not file a request, ignore this message.\n",
                    crate::requests::CODE_MINUTES
                ),
            )
        }
        ("sign_in_code", _) => {
            let code = facts.get("code").and_then(|v| v.as_str()).unwrap_or("");
            (
                format!("{}: your sign-in code for the privacy center", policy.meta.title),
                format!(
                    "To sign in to the privacy center, enter this code: {code}\n\nThe code expires in {} minutes. \
                     If you did not ask to sign in, ignore this message.\n",
                    crate::privacy_center::SIGN_IN_CODE_MINUTES
                ),
            )
        }
        ("request_agent", _) => (
            format!("{}: an agent filed a request for you", policy.meta.title),
            format!(
                "An agent holding your letter of attorney filed a {} request about your personal information \
                 (request {}), and we verified the letter. Contact us if you did not authorise it.\n",
                facts.get("kind").and_then(|v| v.as_str()).unwrap_or("rights"),
                facts.get("request").and_then(|v| v.as_str()).unwrap_or("")
            ),
        ),
        ("request_extended", _) => (
            format!("{}: more time for your request", policy.meta.title),
            format!(
                "We need more time to answer your {} request (request {}); we will answer by {}. \
                 The reason is available from us on request.\n",
                facts.get("kind").and_then(|v| v.as_str()).unwrap_or("rights"),
                facts.get("request").and_then(|v| v.as_str()).unwrap_or(""),
                facts.get("until").and_then(|v| v.as_str()).unwrap_or("")
            ),
        ),
        ("request_closed", _) => (
            format!("{}: your request was answered", policy.meta.title),
            format!(
                "Your {} request (request {}) was {}. Ask us for the answer through the channel you used.\n",
                facts.get("kind").and_then(|v| v.as_str()).unwrap_or("rights"),
                facts.get("request").and_then(|v| v.as_str()).unwrap_or(""),
                facts.get("status").and_then(|v| v.as_str()).unwrap_or("closed")
            ),
        ),
        _ => (format!("{}: notice", policy.meta.title), format!("{kind}\n")),
    };
    crate::mail::Message { to, subject, body: text }
}

/// One event of a forecast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForecastEvent {
    /// When it happens (RFC 3339; records expire at the start of their day).
    pub at: String,
    /// `notify`, `dormant`, `destroy` (a member) or `records_expire`.
    pub action: String,
    pub subject: Option<String>,
    pub class: Option<String>,
    /// Records expiring (1 for a member's step).
    pub count: u64,
}

impl Engine {
    /// What the policy will do to the current data from `now` until
    /// `until`, if no member is active again: notices, moves to the dormant
    /// store, destructions and expiring records. Reads ids and dates only,
    /// changes nothing.
    pub async fn simulate(&self, now: Timestamp, until: Timestamp) -> Result<Vec<ForecastEvent>> {
        let policy = self.policy();
        let mut events = Vec::new();
        if let Some(rule) = policy.retention.dormancy.clone() {
            let slack = SWEEP_SLACK;
            let lead =
                rule.notice_before.map(|n| lifecycle::add_span(lifecycle::sub_span(until, rule.inactive_for), n));
            let active_until = lead.unwrap_or_else(|| lifecycle::sub_span(until, rule.inactive_for));
            let active_until = stamp(active_until.checked_add(slack).unwrap_or(active_until));
            let dormant_until = lifecycle::sub_span(until, rule.destroy_after);
            let dormant_until = stamp(dormant_until.checked_add(slack).unwrap_or(dormant_until));
            for dormant in [false, true] {
                let mut cursor = (String::new(), String::new());
                loop {
                    let (after, bound) =
                        (cursor.clone(), if dormant { dormant_until.clone() } else { active_until.clone() });
                    let rows = self
                        .inner
                        .store
                        .read(move |r| {
                            if dormant {
                                r.dormant_members_until(&bound, (&after.0, &after.1), 5_000)
                            } else {
                                r.active_members_until(&bound, (&after.0, &after.1), 5_000)
                            }
                        })
                        .await?;
                    let Some(last) = rows.last() else { break };
                    cursor = if dormant {
                        (last.dormant_at.clone().unwrap_or_default(), last.id.clone())
                    } else {
                        (last.last_activity_at.clone(), last.id.clone())
                    };
                    for row in &rows {
                        let roles = roles_of(row);
                        let Some(member) = member_of(row, &roles) else { continue };
                        for (at, step) in lifecycle::forecast(&rule, &member, now) {
                            if at > until {
                                break;
                            }
                            events.push(ForecastEvent {
                                at: stamp(at),
                                action: step.as_str().into(),
                                subject: Some(row.id.clone()),
                                class: None,
                                count: 1,
                            });
                        }
                    }
                }
            }
        }
        let today = lifecycle::utc_date(now);
        let last_day = lifecycle::utc_date(until);
        let mut cursor = (String::new(), String::new());
        loop {
            let after = cursor.clone();
            let groups = self.inner.store.read(move |r| r.record_dates((&after.0, &after.1), 10_000)).await?;
            let Some(last) = groups.last() else { break };
            cursor = (last.0.clone(), last.1.clone());
            for (class, date, count) in groups {
                let (Some(c), Ok(d)) = (policy.record_class_by_str(&class), date.parse::<jiff::civil::Date>()) else {
                    continue;
                };
                if c.from == RecordStart::AccountDeletion {
                    continue;
                }
                if let Some(expires) = lifecycle::record_expires(c, d, None)
                    && expires <= last_day
                {
                    events.push(records_event(expires.max(today), &class, None, count));
                }
            }
        }
        for class in policy.record_classes.iter().filter(|c| c.from == RecordStart::AccountDeletion) {
            let id = class.id.to_string();
            let rows = self.inner.store.read(move |r| r.deleted_subjects_with_records(&id)).await?;
            for (subject, deleted_at, count) in rows {
                let deleted_on = deleted_at.as_deref().and_then(parse_ts).map(lifecycle::utc_date);
                if let Some(expires) = deleted_on.and_then(|d| lifecycle::record_expires(class, d, Some(d)))
                    && expires <= last_day
                {
                    events.push(records_event(expires.max(today), class.id.as_str(), Some(subject), count));
                }
            }
        }
        events.sort_by(|a, b| (&a.at, &a.action, &a.subject, &a.class).cmp(&(&b.at, &b.action, &b.subject, &b.class)));
        Ok(events)
    }
}

fn records_event(on: jiff::civil::Date, class: &str, subject: Option<String>, count: i64) -> ForecastEvent {
    ForecastEvent {
        at: format!("{on}T00:00:00Z"),
        action: "records_expire".into(),
        subject,
        class: Some(class.to_owned()),
        count: u64::try_from(count).unwrap_or(0),
    }
}

//! Synthetic members and records in bulk, **for benchmarks and demos
//! only**: never run it on a data folder that holds real people's data.
//!
//! Signing a million members up over HTTP takes far longer than the
//! lifecycle jobs a benchmark wants to time, so this fills a data folder
//! directly, in store jobs of about a thousand members each. What it
//! writes is stored exactly as a real sign-up and a real record store it
//! (`subjects.rs` `create_subject`, `records.rs` `add_record`): a profile
//! key in the key store, the items normalised by the policy's own rules
//! and sealed by [`Engine::seal_items`] (bound to owner, field, key id and
//! version), blind indexes for unique items, records sealed under a hold
//! key per subject, class and month (`custos_core::lifecycle::hold_scope`).
//! Only the password is left out (no item of type password is filled), so
//! no Argon2id runs.
//!
//! The values are made up and marked as such (`synthetic{n}@example.invalid`,
//! a reserved domain); each job appends one audit entry (operation
//! `synthetic_seed`, actor custos/scheduler) that says how many members,
//! records and keys it wrote, with no id and no value of a member.

use std::collections::BTreeMap;
use std::sync::Arc;

use custos_core::collect::{self, Collected, ErrorCode, FieldError};
use custos_core::lifecycle;
use custos_core::policy::Policy;
use custos_core::policy::model::{ItemType, RecordClass, Scope};
use custos_store::{AuditRow, KeyRow, RecordRow, StoreError, SubjectRow, WriteTx};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::crypto::Aad;
use crate::ids::{new_id, new_record_id};
use crate::subjects::{PLATFORM_SCOPE, PROFILE_SCOPE};
use crate::{Engine, EngineError, Result, stamp};

/// Members written per store job.
const MEMBERS_PER_JOB: u64 = 1_000;
/// Rows of records per store job, at most (fewer members per job when each
/// has many records).
const RECORDS_PER_JOB: u64 = 20_000;
/// Jobs between two checkpoints of the seeding's own (see
/// [`Engine::fold_log`]).
const CHECKPOINT_EVERY: u64 = 5;
/// Attempts at storing one job before seeding gives up: enough to wait out
/// a checkpoint of a large write-ahead log (seconds, on a loaded disk).
const WRITE_ATTEMPTS: u64 = 30;
/// Synthetic phone numbers are `+82 10-NNNN-NNNN` with the first group
/// from 2000: room for this many members in one data folder.
const MAX_NUMBERS: u64 = 80_000_000;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    pub members: u64,
    pub records_per_member: u32,
    /// Every member's sign-up and last counted activity.
    pub last_activity: Timestamp,
    /// The first record date; records are spread evenly over
    /// `record_days` days from it.
    pub record_date_from: Date,
    pub record_days: u32,
    /// The record class; `None`: the policy's first class counted from the
    /// record's own date.
    pub record_class: Option<String>,
    /// The moment of seeding: records are kept as of it (none may be dated
    /// after it or already be past its hold), and the audit entries carry it.
    pub now: Timestamp,
}

/// What was seeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticReport {
    pub members: u64,
    pub records: u64,
    /// Data keys made: one profile key per member, one hold key per member
    /// and month of its records.
    pub keys: u64,
    /// Store jobs, each with one audit entry.
    pub jobs: u64,
    pub kind: String,
    pub point: String,
    pub items: Vec<String>,
    pub record_class: Option<String>,
    /// The number of the first synthetic member (`synthetic{n}@…`):
    /// numbers already taken in the data folder are skipped, so seeding
    /// twice adds members instead of colliding.
    pub first_number: u64,
}

/// How each member is made, resolved from the policy once.
struct Plan {
    policy: Arc<Policy>,
    kind: String,
    point: String,
    source: String,
    /// Items filled, with their type.
    items: Vec<(String, ItemType)>,
    class: Option<RecordClass>,
    records_per_member: u32,
    record_date_from: Date,
    record_days: u32,
    signed_up: String,
    now: Timestamp,
}

/// One store job's rows, sealed before the job runs.
#[derive(Default)]
struct Batch {
    keys: Vec<KeyRow>,
    subjects: Vec<SubjectRow>,
    items: Vec<custos_store::ItemRow>,
    indexes: Vec<(String, [u8; 32], String)>,
    records: Vec<RecordRow>,
    members: u64,
    audit: Option<AuditRow>,
}

fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

/// The item types a synthetic value can be made for.
fn synthesisable(kind: ItemType) -> bool {
    matches!(kind, ItemType::Text | ItemType::Email | ItemType::Phone)
}

/// The made-up value of one item for member `n`.
fn value_for(kind: ItemType, n: u64) -> String {
    match kind {
        ItemType::Email => format!("synthetic{n}@example.invalid"),
        ItemType::Phone => format!("+82 10-{:04}-{:04}", 2000 + n / 10_000, n % 10_000),
        _ => format!("Synthetic Member {n}"),
    }
}

/// The record date of record `i` of member `n`: each member's records are
/// spread evenly over the days, shifted by the member so that every day
/// gets records.
fn record_day(n: u64, i: u32, per_member: u32, days: u32) -> u64 {
    (u64::from(i) * u64::from(days) / u64::from(per_member.max(1)) + n) % u64::from(days.max(1))
}

/// Record ciphertexts are bound to the subject and the record together, as
/// `records.rs` binds them.
fn record_owner(subject: &str, record: &str) -> String {
    format!("{subject}/{record}")
}

/// A collection point and subject kind synthetic members sign up through.
struct Chosen {
    kind: String,
    point: String,
    source: String,
    /// Items filled, with their type.
    items: Vec<(String, ItemType)>,
}

/// The first collection point that signs up a platform subject (one the
/// dormancy rule covers, if any does) whose required items, the password
/// aside, can all be made up.
fn choose_point(policy: &Policy) -> Option<Chosen> {
    let covered =
        |kind: &str| policy.retention.dormancy.as_ref().is_none_or(|rule| lifecycle::covered(rule, kind, &[]));
    let mut fallback = None;
    for point in &policy.collection_points {
        let Some(source) = point.sources.first() else { continue };
        let items: Option<Vec<(String, ItemType)>> = point
            .required
            .iter()
            .filter_map(|id| policy.item(id))
            .filter(|item| item.kind != ItemType::Password)
            .map(|item| synthesisable(item.kind).then(|| (item.id.to_string(), item.kind)))
            .collect();
        let Some(items) = items.filter(|i| !i.is_empty()) else { continue };
        for kind in &point.subject_kinds {
            let platform = policy.subject_kinds.iter().any(|k| k.id == *kind && k.scope == Scope::Platform);
            if !platform {
                continue;
            }
            let found = Chosen {
                kind: kind.to_string(),
                point: point.id.to_string(),
                source: source.to_string(),
                items: items.clone(),
            };
            if covered(kind.as_str()) {
                return Some(found);
            }
            fallback = fallback.or(Some(found));
        }
    }
    fallback
}

impl Engine {
    /// Seeds `spec.members` synthetic members (and their records) into the
    /// data folder, calling `progress` with the members written so far
    /// after each job. For benchmarks and demos only (see the module).
    pub async fn seed_synthetic(&self, spec: SyntheticSpec, progress: impl Fn(u64)) -> Result<SyntheticReport> {
        let policy = self.policy();
        let plan = self.plan(&policy, &spec)?;
        let first = self.first_free_number(&plan).await?;
        if first.saturating_add(spec.members) > MAX_NUMBERS {
            return Err(invalid(
                "members",
                ErrorCode::TooLong,
                format!("at most {MAX_NUMBERS} synthetic members fit in one data folder"),
            ));
        }
        let per_job = (RECORDS_PER_JOB / (u64::from(spec.records_per_member) + 1)).clamp(1, MEMBERS_PER_JOB);
        let mut report = SyntheticReport {
            members: 0,
            records: 0,
            keys: 0,
            jobs: 0,
            kind: plan.kind.clone(),
            point: plan.point.clone(),
            items: plan.items.iter().map(|(id, _)| id.clone()).collect(),
            record_class: plan.class.as_ref().map(|c| c.id.to_string()),
            first_number: first,
        };
        let end = first + spec.members;
        let mut next = first;
        let mut pending = if next < end {
            let count = per_job.min(end - next);
            let batch = self.prepare(&plan, next, count).await?;
            next += count;
            Some(batch)
        } else {
            None
        };
        // The writer thread stores one job while the next is sealed here.
        while let Some(batch) = pending.take() {
            let (members, records, keys) = (batch.members, batch.records.len() as u64, batch.keys.len() as u64);
            let write = self.store_with_retries(Arc::new(batch));
            let prepare = async {
                if next < end {
                    let count = per_job.min(end - next);
                    let batch = self.prepare(&plan, next, count).await;
                    next += count;
                    Some(batch)
                } else {
                    None
                }
            };
            let (written, prepared) = tokio::join!(write, prepare);
            written?;
            report.members += members;
            report.records += records;
            report.keys += keys;
            report.jobs += 1;
            if report.jobs.is_multiple_of(CHECKPOINT_EVERY) {
                self.fold_log().await;
            }
            progress(report.members);
            pending = prepared.transpose()?;
        }
        Ok(report)
    }

    /// Copies the write-ahead logs back into the files and truncates them,
    /// between two jobs. Seeding writes without a pause, so the store's
    /// background checkpoints never find the moment to restart the log:
    /// without this, it grew past 12 GB while 1,000,000 members were
    /// seeded, and every later read and write slowed down with it. A
    /// checkpoint that cannot finish now is left to the next one.
    async fn fold_log(&self) {
        let store = self.inner.store.clone();
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "seeding checkpoint deferred"),
            Err(e) => tracing::debug!(error = %e, "seeding checkpoint deferred"),
        }
    }

    /// Stores one batch. Straight to the store, not `write_job`: the
    /// deadline there makes a request fail closed, and this is no request.
    /// A job the store could not run (the write lock held past its busy
    /// timeout, e.g. by a long checkpoint on a loaded machine) is tried
    /// again a few times, once it is clear that nothing of it was written.
    async fn store_with_retries(&self, batch: Arc<Batch>) -> Result<()> {
        let mut attempt = 1;
        loop {
            let job = batch.clone();
            let failed = match self.inner.store.write(move |tx| store_batch(tx, &job)).await {
                Ok(()) => return Ok(()),
                Err(e @ StoreError::Database(_)) if attempt < WRITE_ATTEMPTS => e,
                Err(e) => return Err(e.into()),
            };
            // Written after all (the commit was reported lost, not undone)?
            let first = batch.subjects.first().map(|s| s.id.clone()).unwrap_or_default();
            if self.inner.store.read(move |r| r.subject(&first)).await?.is_some() {
                return Ok(());
            }
            tracing::warn!(attempt, error = %failed, "a synthetic seeding job failed; trying it again");
            tokio::time::sleep(std::time::Duration::from_millis((250 * attempt).min(5_000))).await;
            attempt += 1;
        }
    }

    /// Checks the spec against the policy and resolves what to make.
    fn plan(&self, policy: &Arc<Policy>, spec: &SyntheticSpec) -> Result<Plan> {
        let Some(Chosen { kind, point, source, items }) = choose_point(policy) else {
            return Err(invalid(
                "kind",
                ErrorCode::UnknownSubjectKind,
                "the policy has no collection point for a platform subject whose required items (password aside) \
                 are text, e-mail or phone",
            ));
        };
        if spec.last_activity > spec.now {
            return Err(invalid("last_activity", ErrorCode::FutureDate, "the last activity is after --now"));
        }
        let today = lifecycle::utc_date(spec.now);
        let class = match (&spec.record_class, spec.records_per_member) {
            (_, 0) => None,
            (Some(id), _) => Some(policy.record_class_by_str(id).cloned().ok_or_else(|| {
                invalid("record_class", ErrorCode::UnknownItem, format!("the policy declares no record class {id:?}"))
            })?),
            (None, _) => Some(
                policy
                    .record_classes
                    .iter()
                    .find(|c| lifecycle::record_cutoff(c, today).is_some())
                    .cloned()
                    .ok_or_else(|| {
                        invalid("record_class", ErrorCode::UnknownItem, "the policy declares no record class")
                    })?,
            ),
        };
        if let Some(class) = &class {
            if spec.record_days == 0 {
                return Err(invalid("record_days", ErrorCode::TooShort, "records need at least one day to be dated"));
            }
            let last = spec
                .record_date_from
                .checked_add(jiff::Span::new().days(i64::from(spec.record_days) - 1))
                .map_err(|_| invalid("record_days", ErrorCode::TooLong, "the last record date is out of range"))?;
            if last > today {
                return Err(invalid(
                    "record_date_from",
                    ErrorCode::FutureDate,
                    format!("the last record date, {last}, is after the day of --now, {today}"),
                ));
            }
            // As `add_record` refuses them: kept only to be destroyed.
            if lifecycle::record_expired(class, spec.record_date_from, None, today) {
                return Err(invalid(
                    "record_date_from",
                    ErrorCode::NotAllowed,
                    format!(
                        "records of class {} dated {} are past their hold ({}) on {today}: they may not be kept",
                        class.id, spec.record_date_from, class.retain_for
                    ),
                ));
            }
        }
        Ok(Plan {
            policy: policy.clone(),
            kind,
            point,
            source,
            items,
            class,
            records_per_member: spec.records_per_member,
            record_date_from: spec.record_date_from,
            record_days: spec.record_days,
            signed_up: stamp(spec.last_activity),
            now: spec.now,
        })
    }

    /// The number of the first synthetic member not yet in the data folder,
    /// so that seeding again adds members instead of colliding: numbers are
    /// handed out from 0 up, so the taken ones are a prefix, found through
    /// the blind index of the first unique item (exponential, then binary
    /// search). 0 when no item is unique (nothing can collide).
    async fn first_free_number(&self, plan: &Plan) -> Result<u64> {
        let unique = plan.items.iter().find_map(|(id, kind)| {
            plan.policy.items.iter().find(|i| i.id.as_str() == id && i.unique).map(|item| (item.clone(), *kind))
        });
        let Some((item, kind)) = unique else { return Ok(0) };
        let (keyring, policy) = (self.inner.keyring.clone(), plan.policy.clone());
        let found = self
            .inner
            .store
            .write(move |tx| {
                let taken = |n: u64| -> Result<bool, StoreError> {
                    let value = collect::normalise(&policy, &item, &value_for(kind, n))
                        .map_err(|e| StoreError::Database(e.to_string()))?;
                    let digest = keyring.blind_index(PLATFORM_SCOPE, item.id.as_str(), &value);
                    Ok(tx.find_index(PLATFORM_SCOPE, item.id.as_str(), &digest)?.is_some())
                };
                if !taken(0)? {
                    return Ok(0);
                }
                // taken(low) and, once found, !taken(high).
                let (mut low, mut high) = (0u64, 1u64);
                while high < MAX_NUMBERS && taken(high)? {
                    (low, high) = (high, high.saturating_mul(2).min(MAX_NUMBERS));
                }
                while high - low > 1 {
                    let mid = low + (high - low) / 2;
                    if taken(mid)? { low = mid } else { high = mid }
                }
                Ok(high)
            })
            .await?;
        Ok(found)
    }

    /// Makes and seals members `first .. first + count`.
    async fn prepare(&self, plan: &Plan, first: u64, count: u64) -> Result<Batch> {
        let keyring = self.inner.keyring.clone();
        let at = stamp(plan.now);
        let mut batch = Batch::default();
        for n in first..first + count {
            let id = new_id("sub")?;
            let key_id = new_id("key")?;
            let (key, wrapped) = keyring.new_data_key(&key_id)?;
            let mut collected = Vec::with_capacity(plan.items.len());
            for (item_id, kind) in &plan.items {
                let item = plan
                    .policy
                    .items
                    .iter()
                    .find(|i| i.id.as_str() == item_id)
                    .ok_or_else(|| EngineError::Unavailable("item vanished".into()))?;
                // The policy's own normal form and format check, as at sign-up.
                let value = collect::normalise(&plan.policy, item, &value_for(*kind, n))
                    .map_err(|e| EngineError::Invalid(vec![e]))?;
                collected.push(Collected {
                    item: item.id.clone(),
                    index_value: item.unique.then(|| value.clone()),
                    value,
                });
            }
            let (items, indexes) = self
                .seal_items(
                    &id,
                    &key_id,
                    &key,
                    PLATFORM_SCOPE,
                    collected,
                    &plan.source,
                    Some(plan.point.as_str()),
                    &plan.signed_up,
                )
                .await?;
            drop(key);
            batch.keys.push(KeyRow {
                id: key_id.clone(),
                subject_id: id.clone(),
                scope: PROFILE_SCOPE.into(),
                version: 1,
                wrapped,
                created_at: plan.signed_up.clone(),
            });
            batch.subjects.push(SubjectRow {
                id: id.clone(),
                service_id: None,
                kind: plan.kind.clone(),
                status: "active".into(),
                profile_key: key_id,
                policy_version: plan.policy.meta.version.clone(),
                created_at: plan.signed_up.clone(),
                last_activity_at: plan.signed_up.clone(),
            });
            batch.items.extend(items);
            batch.indexes.extend(indexes.into_iter().map(|(item, digest)| (item, digest, id.clone())));
            if let Some(class) = &plan.class {
                // One hold key per month of the record date, made on first use.
                let mut hold: BTreeMap<String, (String, crate::crypto::DataKey)> = BTreeMap::new();
                for i in 0..plan.records_per_member {
                    let offset = record_day(n, i, plan.records_per_member, plan.record_days);
                    let date = plan
                        .record_date_from
                        .checked_add(jiff::Span::new().days(i64::try_from(offset).unwrap_or(0)))
                        .map_err(|e| EngineError::Unavailable(format!("record date: {e}")))?;
                    let scope = lifecycle::hold_scope(class, date);
                    if !hold.contains_key(&scope) {
                        let hold_id = new_id("key")?;
                        let (data_key, wrapped) = keyring.new_data_key(&hold_id)?;
                        batch.keys.push(KeyRow {
                            id: hold_id.clone(),
                            subject_id: id.clone(),
                            scope: scope.clone(),
                            version: 1,
                            wrapped,
                            created_at: at.clone(),
                        });
                        hold.insert(scope.clone(), (hold_id, data_key));
                    }
                    let (hold_id, data_key) = &hold[&scope];
                    let record_id = new_record_id(plan.now)?;
                    let owner = record_owner(&id, &record_id);
                    let class_id = class.id.as_str();
                    let aad = Aad { owner: &owner, field: class_id, key_id: hold_id, key_version: 1 };
                    let content = format!("synthetic visit {i} of member {n}: page /stage/{} viewed", n % 997);
                    batch.records.push(RecordRow {
                        id: record_id,
                        subject_id: id.clone(),
                        class: class_id.to_owned(),
                        record_date: date.to_string(),
                        key_id: hold_id.clone(),
                        value: data_key.seal(&aad, content.as_bytes())?,
                        created_at: at.clone(),
                    });
                }
            }
            batch.members += 1;
        }
        let records = match &plan.class {
            Some(class) => format!(", {} records of class {}", batch.records.len(), class.id),
            None => String::new(),
        };
        batch.audit = Some(crate::audit::row(custos_core::audit::Entry {
            at,
            actor: "custos".into(),
            role: "scheduler".into(),
            operation: "synthetic_seed".into(),
            purpose: None,
            subject: None,
            items: plan.items.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(","),
            outcome: format!(
                "seeded synthetic data for benchmarks and demos: {} members of kind {} through {}{records}, {} data keys",
                batch.members,
                plan.kind,
                plan.point,
                batch.keys.len()
            ),
            policy_version: plan.policy.meta.version.clone(),
        }));
        Ok(batch)
    }
}

/// One job: keys, subjects, items, indexes, records and the audit entry.
fn store_batch(tx: &mut WriteTx<'_>, batch: &Batch) -> Result<(), StoreError> {
    for key in &batch.keys {
        tx.insert_key(key)?;
    }
    for subject in &batch.subjects {
        tx.insert_subject(subject)?;
    }
    for item in &batch.items {
        tx.put_item(item)?;
    }
    for (item, digest, subject) in &batch.indexes {
        tx.insert_index(PLATFORM_SCOPE, item, digest, subject)?;
    }
    for record in &batch.records {
        tx.insert_record(record)?;
    }
    if let Some(audit) = &batch.audit {
        tx.append_audit(audit)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_cover_every_day_and_stay_in_range() {
        let (per_member, days) = (10u32, 80u32);
        let mut seen = vec![false; days as usize];
        for n in 0..100u64 {
            for i in 0..per_member {
                let d = record_day(n, i, per_member, days);
                assert!(d < u64::from(days));
                seen[d as usize] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(record_day(5, 0, 0, 0), 0);
    }

    #[test]
    fn made_up_values_are_valid_and_marked() {
        let policy = custos_core::policy::parse(include_str!("../../../policies/bstage.toml")).unwrap();
        let Chosen { kind, point, items, .. } = choose_point(&policy).unwrap();
        assert_eq!((kind.as_str(), point.as_str()), ("business_operator", "business_operator_signup"));
        assert_eq!(items.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["name", "email", "mobile_phone"]);
        for n in [0, 9_999, 10_000, MAX_NUMBERS - 1] {
            for (id, kind) in &items {
                let item = policy.items.iter().find(|i| i.id.as_str() == id).unwrap();
                let value = collect::normalise(&policy, item, &value_for(*kind, n)).unwrap();
                if *kind == ItemType::Email {
                    assert!(value.ends_with("@example.invalid"), "{value}");
                }
            }
        }
    }
}

//! The access package: everything held about one member, each datum with
//! its purposes, source and retention — the answer to an access (perusal),
//! export (portability) or right-to-know request. Its JSON shape is
//! documented by `docs/schemas/export.schema.json`, which the tests check
//! every package against.
//!
//! Invariants: the package is read in one store job with its audit entry
//! (operation `export`, every item named); password hashes are never part
//! of it (the item is listed, its value is not); a value that fails its
//! integrity check fails the package, it is never skipped silently.

use std::collections::BTreeMap;

use custos_core::lifecycle;
use custos_core::policy::Policy;
use custos_core::policy::model::{ItemType, Timing};
use custos_store::{ConsentRow, KeyRow, RecordRow, StoreError, SubjectRow, WriteTx};
use serde::Serialize;

use crate::crypto::Aad;
use crate::subjects::Audit;
use crate::{Engine, EngineError, Result, gate};

/// The schema version of [`Package`]; bumped on any change of shape.
pub const PACKAGE_SCHEMA: &str = "custos-export/2";

/// Most records put into one package (the rest is refused, not cut).
const MAX_RECORDS: u32 = 100_000;

/// Everything held about one member.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Package {
    pub schema: &'static str,
    pub generated_at: String,
    pub policy_version: String,
    pub controller: String,
    pub subject: PackageSubject,
    pub items: Vec<PackageItem>,
    pub records: Vec<PackageRecord>,
    pub consents: Vec<PackageConsent>,
    /// Third-party provisions of the member's data (the register of
    /// clause 4), oldest first.
    pub provisions: Vec<crate::disclosures::DisclosureView>,
    pub transfers: Vec<serde_json::Value>,
    /// Processing of the member's data restricted at their request.
    pub restrictions: Vec<PackageRestriction>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageSubject {
    pub id: String,
    pub kind: String,
    pub service: Option<String>,
    pub status: String,
    pub created_at: String,
    pub last_activity_at: String,
    /// The day the member is moved to separate storage if they are not
    /// active before (the dormancy rule, from the last activity and the
    /// notice sent); `None` when dormant already or not covered by it.
    pub dormant_on: Option<String>,
}

#[derive(Clone, PartialEq, Serialize)]
pub struct PackageItem {
    pub item: String,
    pub name: String,
    pub category: String,
    /// `None` for a password: only its existence is disclosed.
    pub value: Option<String>,
    pub purposes: Vec<String>,
    pub source: String,
    pub collection_point: Option<String>,
    pub collected_at: String,
    /// How long it is kept, in the policy's words.
    pub retention: String,
    /// The day it is destroyed if the member is not active before (the
    /// dormancy rule, computed for this member); `None` when the policy
    /// sets no date for them (kept until the account is deleted).
    pub destroyed_on: Option<String>,
}

#[derive(Clone, PartialEq, Serialize)]
pub struct PackageRecord {
    pub id: String,
    pub class: String,
    pub name: String,
    pub record_date: String,
    pub content: String,
    pub law: String,
    /// The last day it is kept.
    pub kept_until: Option<String>,
}

impl std::fmt::Debug for PackageItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageItem").field("item", &self.item).field("source", &self.source).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PackageRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageRecord").field("id", &self.id).field("class", &self.class).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageConsent {
    pub purpose: String,
    pub granted: bool,
    pub channel: String,
    pub policy_version: String,
    pub at: String,
    pub notice_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageRestriction {
    pub purpose: String,
    pub request: String,
}

/// What the job hands back for decryption outside it.
pub(crate) struct Gathered {
    subject: SubjectRow,
    items: Vec<custos_store::ItemRow>,
    item_key: Option<KeyRow>,
    records: Vec<RecordRow>,
    record_keys: Vec<KeyRow>,
    consents: Vec<ConsentRow>,
    restrictions: Vec<(String, String)>,
    deliveries: Vec<(String, String, String)>,
    disclosures: Vec<custos_store::DisclosureRow>,
    /// The profile key that seals a provision's free text (not a dormant
    /// member's key).
    profile_key: Option<KeyRow>,
    /// The member's dormancy facts (last activity, notice, roles held).
    lifecycle: Option<custos_store::LifecycleRow>,
}

/// Reads everything about `subject` inside a job and audits it as one
/// `export` of every item (`why` says for which request).
pub(crate) fn gather(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    caller: &crate::auth::Caller,
    subject: SubjectRow,
    why: &str,
    at: &str,
) -> Result<Gathered, StoreError> {
    let (items, item_key) = if subject.status == gate::DORMANT {
        (tx.dormant_items(&subject.id)?, tx.key_for(&subject.id, crate::crypto::DORMANT_SCOPE)?)
    } else {
        (tx.items(&subject.id, &[])?, tx.key(&subject.profile_key)?)
    };
    let mut records = tx.all_records(&subject.id, MAX_RECORDS + 1)?;
    if records.len() > MAX_RECORDS as usize {
        return Err(StoreError::Conflict(format!(
            "the member has more than {MAX_RECORDS} records: export them by class through the records API"
        )));
    }
    // Records of a class the policy no longer declares are not handed out.
    records.retain(|r| policy.record_class_by_str(&r.class).is_some());
    let mut record_keys: Vec<KeyRow> = Vec::new();
    for r in &records {
        if !record_keys.iter().any(|k| k.id == r.key_id)
            && let Some(k) = tx.key(&r.key_id)?
        {
            record_keys.push(k);
        }
    }
    let consents = tx.consents(&subject.id)?;
    let restrictions = tx.restrictions(&subject.id)?;
    let deliveries = tx.deliveries(&subject.id)?;
    let disclosures = tx.disclosures(&subject.id)?;
    let lifecycle = tx.lifecycle_of(&subject.id)?;
    // A provision's free text is sealed under the profile key, which stays
    // while the member is dormant.
    let profile_key = if subject.status == gate::DORMANT { tx.key(&subject.profile_key)? } else { item_key.clone() };
    let names: Vec<String> = items.iter().map(|i| i.item.clone()).collect();
    Audit {
        caller,
        operation: "export",
        purpose: None,
        subject: Some(&subject.id),
        items: &names,
        outcome: &format!(
            "allowed: {} items, {} records, {} consents; {why}",
            items.len(),
            records.len(),
            consents.len()
        ),
        at,
        policy_version: &policy.meta.version,
    }
    .append(tx)?;
    Ok(Gathered {
        subject,
        items,
        item_key,
        records,
        record_keys,
        consents,
        restrictions,
        deliveries,
        disclosures,
        profile_key,
        lifecycle,
    })
}

/// The days the dormancy rule moves the member aside and destroys them if
/// nothing happens from `at` on (the forecast `custos simulate` shows).
fn dormancy_dates(
    policy: &Policy,
    row: Option<&custos_store::LifecycleRow>,
    at: &str,
) -> (Option<String>, Option<String>) {
    let (Some(rule), Some(row), Ok(now)) = (&policy.retention.dormancy, row, at.parse::<jiff::Timestamp>()) else {
        return (None, None);
    };
    let roles = crate::lifecycle::roles_of(row);
    let Some(member) = crate::lifecycle::member_of(row, &roles) else { return (None, None) };
    let day = |t: jiff::Timestamp| lifecycle::utc_date(t).to_string();
    let mut out = (None, None);
    for (when, step) in lifecycle::forecast(rule, &member, now) {
        match step {
            lifecycle::Step::MakeDormant => out.0 = Some(day(when)),
            lifecycle::Step::Destroy { .. } => out.1 = Some(day(when)),
            lifecycle::Step::Notify { .. } => {}
        }
    }
    out
}

/// How long an item of the member's profile is kept, in the policy's words.
fn item_retention(policy: &Policy) -> String {
    let mut parts = Vec::new();
    for rule in &policy.retention.rules {
        if rule.trigger == custos_core::policy::model::Trigger::AccountDeletion {
            let when = match &rule.timing {
                Timing::WithoutDelay => "destroyed without delay when the account is deleted".to_owned(),
                Timing::After(span) => format!("destroyed {span} after the account is deleted"),
                other => format!("{other:?}").to_lowercase(),
            };
            parts.push(when);
            break;
        }
    }
    if let Some(d) = &policy.retention.dormancy {
        parts.push(format!(
            "moved to separate storage after {} without activity and destroyed {} later",
            d.inactive_for, d.destroy_after
        ));
    }
    if parts.is_empty() { "not stated by the policy".to_owned() } else { parts.join("; ") }
}

impl Engine {
    /// Decrypts what [`gather`] read into the package.
    pub(crate) fn package(&self, g: Gathered, at: &str) -> Result<Package> {
        let policy = self.policy();
        let mut items = Vec::with_capacity(g.items.len());
        let retention = item_retention(&policy);
        let (dormant_on, destroyed_on) = dormancy_dates(&policy, g.lifecycle.as_ref(), at);
        let data_key = match &g.item_key {
            Some(k) => Some(self.inner.keyring.unwrap_scoped(&k.scope, &k.id, &k.wrapped)?),
            None if g.items.is_empty() => None,
            None => return Err(EngineError::Integrity("the member's key is gone".into())),
        };
        for row in &g.items {
            let def = policy.item_by_str(&row.item);
            let is_password = def.is_some_and(|d| d.kind == ItemType::Password);
            let value = match (&data_key, &g.item_key, is_password) {
                (_, _, true) => None,
                (Some(dk), Some(k), false) => {
                    let aad =
                        Aad { owner: &g.subject.id, field: &row.item, key_id: &k.id, key_version: row.key_version };
                    let plain = dk.open(&aad, &row.value)?;
                    Some(
                        String::from_utf8(plain.to_vec())
                            .map_err(|_| EngineError::Integrity(format!("item {} is not text", row.item)))?,
                    )
                }
                _ => return Err(EngineError::Integrity("the member's key is gone".into())),
            };
            items.push(PackageItem {
                item: row.item.clone(),
                name: def.map(|d| d.name.clone()).unwrap_or_else(|| row.item.clone()),
                category: def.map(|d| d.category.to_string()).unwrap_or_default(),
                value,
                purposes: policy
                    .purposes
                    .iter()
                    .filter(|p| p.items.iter().any(|i| i.as_str() == row.item))
                    .map(|p| p.id.to_string())
                    .collect(),
                source: row.source.clone(),
                collection_point: row.point.clone(),
                collected_at: row.collected_at.clone(),
                retention: retention.clone(),
                destroyed_on: destroyed_on.clone(),
            });
        }
        let mut records = Vec::with_capacity(g.records.len());
        // A key per class and month: unwrapped once, not once per record.
        let keys = self.unwrap_record_keys(&g.record_keys).map_err(EngineError::Integrity)?;
        let today: jiff::civil::Date = at.get(..10).and_then(|d| d.parse().ok()).unwrap_or(jiff::civil::Date::MIN);
        for row in &g.records {
            let class = policy.record_class_by_str(&row.class);
            // A record past its hold is not handed out, swept or not (the
            // account exists here, so no hold counts from a deletion).
            let date: Option<jiff::civil::Date> = row.record_date.parse().ok();
            if let (Some(c), Some(d)) = (class, date)
                && lifecycle::record_expired(c, d, None, today)
            {
                continue;
            }
            let (key, data_key) = keys
                .iter()
                .find(|(k, _)| k.id == row.key_id)
                .ok_or_else(|| EngineError::Integrity(format!("the key of record {} is gone", row.id)))?;
            let content = crate::records::open_with(key, data_key, row).map_err(EngineError::Integrity)?;
            let kept_until = class.and_then(|c| {
                let date = row.record_date.parse().ok()?;
                lifecycle::record_expires(c, date, None).and_then(|d| d.yesterday().ok()).map(|d| d.to_string())
            });
            records.push(PackageRecord {
                id: row.id.clone(),
                class: row.class.clone(),
                name: class.map(|c| c.name.clone()).unwrap_or_default(),
                record_date: row.record_date.clone(),
                content,
                law: class.map(|c| c.law.to_string()).unwrap_or_default(),
                kept_until,
            });
        }
        let consents = g
            .consents
            .iter()
            .map(|c| PackageConsent {
                purpose: c.purpose.clone(),
                granted: c.granted,
                channel: c.channel.clone(),
                policy_version: c.policy_version.clone(),
                at: c.at.clone(),
                notice_hash: c.notice_hash.clone(),
            })
            .collect();
        Ok(Package {
            schema: PACKAGE_SCHEMA,
            generated_at: at.to_owned(),
            policy_version: policy.meta.version.clone(),
            controller: policy.controller.name.clone(),
            subject: PackageSubject {
                id: g.subject.id.clone(),
                kind: g.subject.kind.clone(),
                service: g.subject.service_id.clone(),
                status: g.subject.status.clone(),
                created_at: g.subject.created_at.clone(),
                last_activity_at: g.subject.last_activity_at.clone(),
                dormant_on,
            },
            items,
            records,
            consents,
            provisions: self.disclosure_views(
                &g.disclosures.iter().filter(|d| d.kind == "provision").cloned().collect::<Vec<_>>(),
                g.profile_key.as_ref(),
            ),
            transfers: transfers(&policy, &g.deliveries, &g.disclosures),
            restrictions: g
                .restrictions
                .into_iter()
                .map(|(purpose, request)| PackageRestriction { purpose, request })
                .collect(),
        })
    }
}

/// Hand-overs to processors so far: each e-mail sent to the member through
/// a relay that is a processor of the policy carried their address there
/// (the delivery's audit entry says so). A processor abroad makes it a
/// cross-border transfer; its country is the policy's.
fn transfers(
    policy: &Policy,
    deliveries: &[(String, String, String)],
    disclosures: &[custos_store::DisclosureRow],
) -> Vec<serde_json::Value> {
    let mut out: Vec<(String, serde_json::Value)> = deliveries
        .iter()
        .filter_map(|(at, items, outcome)| {
            let named = outcome.split("; transfer to processor ").nth(1)?;
            let id = named.split(' ').next()?;
            let processor = policy.processors.iter().find(|p| p.id.as_str() == id)?;
            let purpose = outcome.strip_prefix("read to deliver ").and_then(|r| r.split(" by e-mail").next());
            Some((
                at.clone(),
                serde_json::json!({
                    "at": at,
                    "processor": processor.id.as_str(),
                    "name": processor.name,
                    "country": processor.country.as_ref().map(|c| c.as_str()),
                    "duty": processor.duty,
                    "items": items.split(',').filter(|i| !i.is_empty()).collect::<Vec<_>>(),
                    "purpose": purpose.map(|p| format!("delivering the {p} by e-mail")),
                    "transfer": null,
                }),
            ))
        })
        .collect();
    // Hand-overs the platform asked for (POST /v1/subjects/{id}/handovers).
    for d in disclosures.iter().filter(|d| d.kind == "handover") {
        let processor = policy.processors.iter().find(|p| p.id.as_str() == d.recipient);
        let listed = policy.transfers.iter().find(|t| t.id.as_str() == d.recipient);
        let name = processor.map(|p| p.name.clone()).or_else(|| listed.map(|t| t.recipient.clone()));
        let country = d.country.clone().or_else(|| {
            processor.and_then(|p| p.country.as_ref()).or_else(|| listed.map(|t| &t.country)).map(ToString::to_string)
        });
        let transfer = match (&d.country, &d.transfer_basis) {
            (Some(c), Some(b)) => serde_json::json!({
                "country": c, "basis": b, "description": d.transfer_description.clone().unwrap_or_default(),
            }),
            _ => serde_json::Value::Null,
        };
        out.push((
            d.at.clone(),
            serde_json::json!({
                "at": d.at,
                "processor": d.recipient,
                "name": name.unwrap_or_else(|| d.recipient.clone()),
                "country": country,
                "duty": d.duty.clone().unwrap_or_default(),
                "items": d.items.split_whitespace().collect::<Vec<_>>(),
                "purpose": serde_json::Value::Null,
                "transfer": transfer,
            }),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

/// The third parties that received the member's data for their own
/// marketing in calendar year `year` (Cal. Civ. Code § 1798.83): each
/// recipient with the items it received, from the provisions register.
pub(crate) fn marketing_recipients(package: &Package, year: i16) -> Vec<serde_json::Value> {
    let prefix = format!("{year:04}-");
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in package.provisions.iter().filter(|p| p.marketing && p.at.starts_with(&prefix)) {
        let items = by.entry(p.recipient.clone()).or_default();
        for i in &p.items {
            if !items.contains(i) {
                items.push(i.clone());
            }
        }
    }
    by.into_iter().map(|(recipient, items)| serde_json::json!({ "recipient": recipient, "items": items })).collect()
}

/// The categories, sources, purposes and recipients of what is held (the
/// California right to know), from a package and the policy.
pub(crate) fn know(
    policy: &Policy,
    package: &Package,
    marketing_recipients: Vec<serde_json::Value>,
) -> serde_json::Value {
    let mut categories: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: Vec<String> = Vec::new();
    let mut purposes: Vec<String> = Vec::new();
    for item in &package.items {
        if let Some(c) = policy.categories.iter().find(|c| c.id.as_str() == item.category) {
            categories.insert(c.id.to_string(), c.name.clone());
        }
        if !sources.contains(&item.source) {
            sources.push(item.source.clone());
        }
        for p in &item.purposes {
            if !purposes.contains(p) {
                purposes.push(p.clone());
            }
        }
    }
    let mut recipients: Vec<serde_json::Value> = policy
        .processors
        .iter()
        .map(|p| serde_json::json!({ "id": p.id.as_str(), "name": p.name, "kind": "processor" }))
        .collect();
    // Third parties that received the member's data (the provisions
    // register), each once.
    let mut third: Vec<&str> = Vec::new();
    for p in &package.provisions {
        if !third.contains(&p.recipient.as_str()) {
            third.push(&p.recipient);
            recipients.push(serde_json::json!({ "id": p.recipient_id, "name": p.recipient, "kind": "third_party" }));
        }
    }
    serde_json::json!({
        "categories": categories.into_iter().map(|(id, name)| serde_json::json!({"id": id, "name": name})).collect::<Vec<_>>(),
        "sources": sources,
        "purposes": purposes,
        "recipients": recipients,
        "sold": policy.jurisdictions.iter().any(|j| j.sells_personal_information == Some(true)),
        "marketing_recipients_last_year": marketing_recipients,
    })
}

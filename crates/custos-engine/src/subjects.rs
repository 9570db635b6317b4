//! Subjects and their items: collection through a named collection point,
//! purpose-bound reads, look-ups through blind indexes, correction and
//! activity. Every function here writes its audit entry in the same store
//! job as the act, denials included.

use std::collections::BTreeMap;

use custos_core::authz::{Operation, Target};
use custos_core::collect::{self, ErrorCode, FieldError};
use custos_core::policy::model::{ItemType, Scope};
use custos_store::{ConsentRow, IdempotencyRow, ItemRow, KeyRow, StoreError, SubjectRow, WriteTx};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::auth::Caller;
use crate::crypto::Aad;
use crate::gate;
use crate::ids::new_id;
use crate::{Engine, EngineError, Result, stamp};

/// The scope of blind indexes for platform subjects (operators).
pub(crate) const PLATFORM_SCOPE: &str = "platform";
pub(crate) const PROFILE_SCOPE: &str = "profile";

/// A sign-up: items collected through one collection point.
#[derive(Debug, Clone)]
pub struct NewSubject {
    /// The service the subject belongs to; `None` for platform subjects.
    pub service: Option<String>,
    pub kind: String,
    pub point: String,
    pub source: String,
    /// (item id, value as received). Values are personal data: never log them.
    pub items: Vec<(String, String)>,
    /// Opt-in purposes the subject chose at sign-up.
    pub consents: Vec<String>,
}

/// An idempotency key with the hash of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: Vec<u8>,
}

/// The answer to a sign-up; replayed as is for a repeated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectCreated {
    pub id: String,
    pub service: Option<String>,
    pub kind: String,
    pub status: String,
    pub created_at: String,
    /// The receipts of the consents given at sign-up (Kantara Consent
    /// Receipt v1.1), one per purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent_receipts: Vec<serde_json::Value>,
    /// True when this is the stored answer to an earlier identical request.
    #[serde(skip)]
    pub replayed: bool,
}

/// A purpose-bound read of a subject.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectRead {
    pub id: String,
    pub service: Option<String>,
    pub kind: String,
    pub status: String,
    pub purpose: String,
    /// Item id → value, only items the purpose may use and the subject has.
    pub items: BTreeMap<String, String>,
    /// A dormant member seen without the dormant-lookup privilege: the row
    /// only, no values.
    pub masked: bool,
}

impl std::fmt::Debug for SubjectRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectRead")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("items", &self.items.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A subject in a list: no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSummary {
    pub id: String,
    pub service: Option<String>,
    pub kind: String,
    pub status: String,
    pub created_at: String,
}

/// A record to keep under a statutory hold.
#[derive(Clone)]
pub struct NewRecord {
    pub class: String,
    pub record_date: String,
    pub content: String,
}

impl std::fmt::Debug for NewRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRecord")
            .field("class", &self.class)
            .field("record_date", &self.record_date)
            .finish_non_exhaustive()
    }
}

/// A record as read back.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordRead {
    pub id: String,
    pub class: String,
    pub record_date: String,
    pub created_at: String,
    pub content: String,
}

impl std::fmt::Debug for RecordRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRead").field("id", &self.id).field("class", &self.class).finish_non_exhaustive()
    }
}

fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

/// The audit entry of one act; `outcome` says what happened.
pub(crate) struct Audit<'a> {
    pub caller: &'a Caller,
    pub operation: &'a str,
    pub purpose: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub items: &'a [String],
    pub outcome: &'a str,
    pub at: &'a str,
    pub policy_version: &'a str,
}

impl Audit<'_> {
    pub(crate) fn append(&self, tx: &mut WriteTx<'_>) -> Result<i64, StoreError> {
        tx.append_audit(&crate::audit::row(custos_core::audit::Entry {
            at: self.at.to_owned(),
            actor: self.caller.actor(),
            role: self.caller.role().to_owned(),
            operation: self.operation.to_owned(),
            purpose: self.purpose.map(str::to_owned),
            subject: self.subject.map(str::to_owned),
            items: self.items.join(","),
            outcome: self.outcome.to_owned(),
            policy_version: self.policy_version.to_owned(),
        }))
    }
}

impl Engine {
    fn today(now: jiff::Timestamp) -> jiff::civil::Date {
        crate::utc_date(now)
    }

    /// Hashes a password on the bounded pool, off the async workers.
    async fn hash_password(&self, password: Zeroizing<String>) -> Result<Zeroizing<String>> {
        self.inner.hashing.hash(password).await
    }

    /// Prepares collected values for storage: passwords hashed, everything
    /// sealed under `key`, unique items indexed in `scope`.
    #[allow(clippy::too_many_arguments)] // reason: one call site per operation, each with all of these at hand
    pub(crate) async fn seal_items(
        &self,
        subject_id: &str,
        key_id: &str,
        key: &crate::crypto::DataKey,
        scope: &str,
        collected: Vec<collect::Collected>,
        source: &str,
        point: Option<&str>,
        at: &str,
    ) -> Result<(Vec<ItemRow>, Vec<(String, [u8; 32])>)> {
        let mut rows = Vec::with_capacity(collected.len());
        let mut indexes = Vec::new();
        for c in collected {
            let policy = self.policy();
            let item = policy.item(&c.item).ok_or_else(|| EngineError::Unavailable("item vanished".into()))?;
            let value = if item.kind == ItemType::Password {
                self.hash_password(Zeroizing::new(c.value.clone())).await?
            } else {
                Zeroizing::new(c.value.clone())
            };
            if let Some(index_value) = &c.index_value {
                indexes.push((c.item.to_string(), self.inner.keyring.blind_index(scope, c.item.as_str(), index_value)));
            }
            let aad = Aad { owner: subject_id, field: c.item.as_str(), key_id, key_version: 1 };
            rows.push(ItemRow {
                subject_id: subject_id.to_owned(),
                item: c.item.to_string(),
                value: key.seal(&aad, value.as_bytes())?,
                key_version: 1,
                source: source.to_owned(),
                point: point.map(str::to_owned),
                collected_at: at.to_owned(),
            });
        }
        Ok((rows, indexes))
    }

    /// Signs a subject up through a collection point.
    pub async fn create_subject(
        &self,
        caller: &Caller,
        req: NewSubject,
        idempotency: Option<Idempotency>,
        now: jiff::Timestamp,
    ) -> Result<SubjectCreated> {
        let policy = self.policy();
        let policy = &*policy;
        // Scope: platform subjects only through platform keys, service
        // subjects only in the caller's own service.
        let kind = policy.subject_kinds.iter().find(|k| k.id.as_str() == req.kind).ok_or_else(|| {
            invalid(
                "kind",
                ErrorCode::UnknownSubjectKind,
                format!("the policy declares no subject kind {:?}", req.kind),
            )
        })?;
        match (kind.scope, &req.service) {
            (Scope::Platform, Some(_)) => {
                return Err(invalid(
                    "service",
                    ErrorCode::NotAllowed,
                    format!("subjects of kind {:?} belong to the platform, not to a service", req.kind),
                ));
            }
            (Scope::Service, None) => {
                return Err(invalid(
                    "service",
                    ErrorCode::MissingRequired,
                    format!("subjects of kind {:?} belong to a service: name it", req.kind),
                ));
            }
            (Scope::Platform, None) if caller.service.is_some() => {
                // A refusal of the caller, not of the request: audited.
                let denied = custos_core::authz::Denied::Forbidden;
                return Err(self.audit_denial(caller, Operation::CreateSubject, None, None, denied, now).await);
            }
            _ => {}
        }
        self.permit(caller, Operation::CreateSubject, Target::Scope(req.service.as_deref()), None, None, now).await?;
        let today = Self::today(now);
        let checked = collect::check_collection(policy, &req.point, &req.kind, &req.items, today);
        let mut errors: Vec<FieldError> = checked.as_ref().err().cloned().unwrap_or_default();
        let point = policy.collection_points.iter().find(|p| p.id.as_str() == req.point);
        if let Some(point) = point {
            if !point.sources.iter().any(|s| s.as_str() == req.source) {
                let allowed: Vec<&str> = point.sources.iter().map(|s| s.as_str()).collect();
                errors.push(FieldError::new(
                    "source",
                    ErrorCode::NotAllowed,
                    format!("this collection point takes data from {} only", allowed.join(", ")),
                ));
            }
            for (i, purpose) in req.consents.iter().enumerate() {
                let opt_in = policy.purpose_by_str(purpose).is_some_and(|p| p.needs_opt_in());
                if !opt_in || !point.purposes.iter().any(|p| p.as_str() == purpose) {
                    errors.push(FieldError::new(
                        format!("consents[{i}]"),
                        ErrorCode::NotAllowed,
                        "consent can only be given here for an opt-in purpose of this collection point",
                    ));
                }
            }
        }
        let collected = match checked {
            Ok(collected) if errors.is_empty() => collected,
            _ => return Err(EngineError::Invalid(errors)),
        };

        let at = stamp(now);
        let id = new_id("sub")?;
        let key_id = new_id("key")?;
        let (key, wrapped) = self.inner.keyring.new_data_key(&key_id)?;
        let scope = req.service.clone().unwrap_or_else(|| PLATFORM_SCOPE.to_owned());
        let (items, indexes) =
            self.seal_items(&id, &key_id, &key, &scope, collected, &req.source, Some(&req.point), &at).await?;
        drop(key);

        let policy_version = policy.meta.version.clone();
        // Consents given at sign-up: the notice shown is the collection
        // point's; each gets its ledger id and receipt now.
        let notice_hash = policy
            .collection_points
            .iter()
            .find(|p| p.id.as_str() == req.point)
            .and_then(|p| p.notice.as_ref())
            .map(|n| custos_core::audit::hex(&crate::request_hash(n.as_bytes())));
        let mut consent_rows = Vec::with_capacity(req.consents.len());
        let mut consent_receipts = Vec::with_capacity(req.consents.len());
        for purpose in &req.consents {
            let entry = crate::consent::ConsentEntry {
                id: Some(new_id("cns")?),
                purpose: purpose.clone(),
                granted: true,
                channel: req.source.clone(),
                policy_version: policy_version.clone(),
                at: at.clone(),
                notice_hash: notice_hash.clone(),
                evidence_kept: false,
            };
            consent_receipts.push(self.receipt(&entry, &id, now)?);
            consent_rows.push(ConsentRow {
                id: entry.id,
                subject_id: id.clone(),
                purpose: entry.purpose,
                policy_version: entry.policy_version,
                granted: true,
                channel: entry.channel,
                at: entry.at,
                notice_hash: entry.notice_hash,
                evidence: None,
                key_id: None,
            });
        }
        let caller = caller.clone();
        let created = SubjectCreated {
            id: id.clone(),
            service: req.service.clone(),
            kind: req.kind.clone(),
            status: "active".into(),
            created_at: at.clone(),
            consent_receipts,
            replayed: false,
        };
        let item_names: Vec<String> = items.iter().map(|i| i.item.clone()).collect();
        self.write_job(move |tx| {
            if let Some(idem) = &idempotency
                && let Some(previous) = tx.idempotency(&caller.key_id, &idem.key)?
            {
                if previous.request_hash != idem.request_hash {
                    return Ok(Err(EngineError::Conflict(
                        "this idempotency key was used with a different request".into(),
                    )));
                }
                let mut replay: SubjectCreated = serde_json::from_str(&previous.body)
                    .map_err(|e| StoreError::Database(format!("stored idempotent answer unreadable: {e}")))?;
                replay.replayed = true;
                return Ok(Ok(replay));
            }
            if let Some(service) = &created.service
                && tx.service(service)?.is_none()
            {
                return Ok(Err(EngineError::NotFound));
            }
            tx.insert_key(&KeyRow {
                id: key_id.clone(),
                subject_id: id.clone(),
                scope: PROFILE_SCOPE.into(),
                version: 1,
                wrapped,
                created_at: at.clone(),
            })?;
            tx.insert_subject(&SubjectRow {
                id: id.clone(),
                service_id: created.service.clone(),
                kind: created.kind.clone(),
                status: "active".into(),
                profile_key: key_id.clone(),
                policy_version: policy_version.clone(),
                created_at: at.clone(),
                last_activity_at: at.clone(),
            })?;
            for row in &items {
                tx.put_item(row)?;
            }
            for (item, digest) in &indexes {
                match tx.insert_index(&scope, item, digest, &id) {
                    Err(StoreError::Conflict(_)) => {
                        // Roll the whole sign-up back; answer 409.
                        return Err(StoreError::Conflict(format!(
                            "a subject with this {item} is already registered here"
                        )));
                    }
                    other => other?,
                }
            }
            for row in &consent_rows {
                tx.insert_consent(row)?;
            }
            Audit {
                caller: &caller,
                operation: "collect",
                purpose: None,
                subject: Some(&id),
                items: &item_names,
                outcome: "created",
                at: &at,
                policy_version: &policy_version,
            }
            .append(tx)?;
            if let Some(idem) = &idempotency {
                tx.insert_idempotency(&IdempotencyRow {
                    api_key: caller.key_id.clone(),
                    key: idem.key.clone(),
                    request_hash: idem.request_hash.clone(),
                    status: 201,
                    body: serde_json::to_string(&created)
                        .map_err(|e| StoreError::Database(format!("cannot store the idempotent answer: {e}")))?,
                    created_at: at.clone(),
                })?;
            }
            Ok(Ok(created))
        })
        .await?
    }

    /// Reads a subject's items for a purpose: only what the purpose may use,
    /// only with consent where the purpose needs it, audited either way.
    pub async fn read_subject(
        &self,
        caller: &Caller,
        id: &str,
        purpose: &str,
        requested: Option<Vec<String>>,
        now: jiff::Timestamp,
    ) -> Result<SubjectRead> {
        let policy = self.policy();
        let policy = &*policy;
        let allowed =
            self.permit(caller, Operation::ReadSubject, Target::None, Some(purpose), requested.as_deref(), now).await?;
        let mut items: Vec<String> = allowed.items.into_iter().map(|i| i.to_string()).collect();
        // Password hashes are never handed out, whatever the purpose.
        let is_password = |i: &String| policy.item_by_str(i).is_some_and(|x| x.kind == ItemType::Password);
        if requested.as_ref().is_some_and(|r| r.iter().any(is_password)) {
            return Err(invalid("items", ErrorCode::NotAllowed, "password hashes are never returned"));
        }
        items.retain(|i| !is_password(i));
        // The consent rules and restrictions of the purpose, checked in
        // the job (`gate::purpose_usable`), need the policy's history.
        let history = self.policy_history();

        let at = stamp(now);
        let policy_c = self.policy();
        let (caller_c, id_c, purpose_c) = (caller.clone(), id.to_owned(), purpose.to_owned());
        let found = self
            .write_job(move |tx| {
                let policy = &*policy_c;
                let audit = |tx: &mut WriteTx<'_>, subject: Option<&str>, items: &[String], outcome: &str| {
                    Audit {
                        caller: &caller_c,
                        operation: Operation::ReadSubject.as_str(),
                        purpose: Some(&purpose_c),
                        subject,
                        items,
                        outcome,
                        at: &at,
                        policy_version: &policy.meta.version,
                    }
                    .append(tx)
                };
                let (subject, allowed) = match gate::member(
                    tx,
                    policy,
                    &caller_c,
                    Operation::ReadSubject,
                    &id_c,
                    Some(&purpose_c),
                    requested.as_deref(),
                    &at,
                )? {
                    Ok(found) => found,
                    Err(refused) => return Ok(Err(refused)),
                };
                // Masking comes first: a masked reader learns nothing of the
                // member, their consents included.
                if allowed.masked {
                    audit(tx, Some(&subject.id), &[], "allowed: masked (dormant)")?;
                    return Ok(Ok((subject, None, Vec::new(), true)));
                }
                if let Err((outcome, refused)) = gate::purpose_usable(tx, policy, &history, &subject.id, &purpose_c)? {
                    audit(tx, Some(&subject.id), &[], outcome)?;
                    return Ok(Err(refused));
                }
                let names: Vec<&str> = items.iter().map(String::as_str).collect();
                // A dormant member (read with the dormant-lookup privilege)
                // is read from the dormant store, under the dormant key.
                let (rows, key) = if subject.status == gate::DORMANT {
                    // Past its destruction date a dormant member is not
                    // read, even if the sweep has not run yet.
                    if crate::lifecycle::destruction_due(tx, policy, &subject.id, now)? {
                        audit(tx, Some(&subject.id), &[], "denied: destruction due")?;
                        return Ok(Err(EngineError::NotFound));
                    }
                    let rows = tx.dormant_items(&subject.id)?;
                    let rows = rows.into_iter().filter(|r| names.contains(&r.item.as_str())).collect();
                    (rows, tx.key_for(&subject.id, crate::crypto::DORMANT_SCOPE)?)
                } else {
                    let rows = if names.is_empty() { Vec::new() } else { tx.items(&subject.id, &names)? };
                    (rows, tx.key(&subject.profile_key)?)
                };
                let returned: Vec<String> = rows.iter().map(|r| r.item.clone()).collect();
                audit(tx, Some(&subject.id), &returned, "allowed")?;
                Ok(Ok((subject, key, rows, false)))
            })
            .await??;
        let (subject, key, rows, masked) = found;
        let values = self.open_items(&subject, key, rows, caller, now).await?;
        Ok(SubjectRead {
            masked,
            id: subject.id,
            service: subject.service_id,
            kind: subject.kind,
            status: subject.status,
            purpose: purpose.to_owned(),
            items: values,
        })
    }

    /// Decrypts item rows; a value that fails authentication is reported
    /// (and audited), never returned.
    pub(crate) async fn open_items(
        &self,
        subject: &SubjectRow,
        key: Option<KeyRow>,
        rows: Vec<ItemRow>,
        caller: &Caller,
        now: jiff::Timestamp,
    ) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if rows.is_empty() {
            return Ok(out);
        }
        let failure = match key {
            None => Some("the subject's key is gone".to_owned()),
            Some(key) => match self.inner.keyring.unwrap_scoped(&key.scope, &key.id, &key.wrapped) {
                Err(e) => Some(e.to_string()),
                Ok(data_key) => {
                    let mut failure = None;
                    for row in rows {
                        let aad =
                            Aad { owner: &subject.id, field: &row.item, key_id: &key.id, key_version: row.key_version };
                        match data_key.open(&aad, &row.value) {
                            Ok(plain) => match String::from_utf8(plain.to_vec()) {
                                Ok(s) => {
                                    out.insert(row.item, s);
                                }
                                Err(_) => failure = Some(format!("item {} is not text", row.item)),
                            },
                            Err(e) => failure = Some(format!("item {}: {e}", row.item)),
                        }
                        if failure.is_some() {
                            break;
                        }
                    }
                    failure
                }
            },
        };
        match failure {
            None => Ok(out),
            Some(reason) => {
                tracing::error!(subject = %subject.id, %reason, "integrity failure");
                self.audit_integrity(caller, &subject.id, &reason, now).await;
                Err(EngineError::Integrity(reason))
            }
        }
    }

    pub(crate) async fn audit_integrity(&self, caller: &Caller, subject: &str, reason: &str, now: jiff::Timestamp) {
        let (caller, subject, reason) = (caller.clone(), subject.to_owned(), reason.to_owned());
        let at = stamp(now);
        let version = self.policy().meta.version.clone();
        let written = self
            .write_job(move |tx| {
                Audit {
                    caller: &caller,
                    operation: "integrity_failure",
                    purpose: None,
                    subject: Some(&subject),
                    items: &[],
                    outcome: &reason,
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)
            })
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "could not audit an integrity failure");
        }
    }

    /// Finds a subject by a unique item (e-mail, phone) through its blind
    /// index: the value is normalised and hashed, never stored or compared
    /// in plaintext.
    pub async fn lookup(
        &self,
        caller: &Caller,
        service: Option<String>,
        item: &str,
        value: &str,
        purpose: &str,
        now: jiff::Timestamp,
    ) -> Result<SubjectSummary> {
        let policy = self.policy();
        let policy = &*policy;
        let def = policy.item_by_str(item).filter(|i| i.unique).ok_or_else(|| {
            invalid("item", ErrorCode::UnknownItem, format!("{item:?} is not a unique identifier of the policy"))
        })?;
        let asked = [item.to_owned()];
        self.permit(
            caller,
            Operation::LookupSubject,
            Target::Scope(service.as_deref()),
            Some(purpose),
            Some(&asked),
            now,
        )
        .await?;
        let normal = collect::normalise(policy, def, value).map_err(|mut e| {
            e.field = "value".into();
            EngineError::Invalid(vec![e])
        })?;
        let scope = service.clone().unwrap_or_else(|| PLATFORM_SCOPE.to_owned());
        let digest = self.inner.keyring.blind_index(&scope, item, &normal);
        let at = stamp(now);
        let version = policy.meta.version.clone();
        let (caller, item, purpose) = (caller.clone(), item.to_owned(), purpose.to_owned());
        let (policy, history) = (self.policy(), self.policy_history());
        self.write_job(move |tx| {
            let found = match tx.find_index(&scope, &item, &digest)? {
                Some(id) => {
                    let asked = [item.clone()];
                    let op = Operation::LookupSubject;
                    match gate::member(tx, &policy, &caller, op, &id, Some(&purpose), Some(&asked), &at)? {
                        Ok((subject, _)) => Some(subject),
                        Err(refused) => return Ok(Err(refused)),
                    }
                }
                None => None,
            };
            // A look-up uses the member's data for the purpose: its consent
            // and any restriction count here as for a read.
            if let Some(subject) = &found
                && let Err((outcome, refused)) = gate::purpose_usable(tx, &policy, &history, &subject.id, &purpose)?
            {
                let items = [item.clone()];
                Audit {
                    caller: &caller,
                    operation: "lookup",
                    purpose: Some(&purpose),
                    subject: Some(&subject.id),
                    items: &items,
                    outcome,
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)?;
                return Ok(Err(refused));
            }
            let items = [item.clone()];
            Audit {
                caller: &caller,
                operation: "lookup",
                purpose: Some(&purpose),
                subject: found.as_ref().map(|s| s.id.as_str()),
                items: &items,
                outcome: if found.is_some() { "found" } else { "not found" },
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(found.map(summary).ok_or(EngineError::NotFound))
        })
        .await?
    }

    /// Corrects items of a subject. Each item must be one a collection point
    /// takes from the subject's kind; unique items are re-indexed.
    pub async fn correct_subject(
        &self,
        caller: &Caller,
        id: &str,
        items: Vec<(String, String)>,
        source: &str,
        now: jiff::Timestamp,
    ) -> Result<SubjectSummary> {
        let policy = self.policy();
        let policy = &*policy;
        if items.is_empty() {
            return Err(invalid("items", ErrorCode::MissingRequired, "name at least one item to correct"));
        }
        self.permit(caller, Operation::CorrectSubject, Target::None, None, None, now).await?;
        let id_c = id.to_owned();
        let row = self.inner.store.read(move |r| r.subject(&id_c)).await?;
        if let Err(denied) =
            gate::ask(policy, caller, Operation::CorrectSubject, gate::subject_target(row.as_ref()), None, None)
        {
            return Err(self.audit_denial(caller, Operation::CorrectSubject, Some(id), None, denied, now).await);
        }
        let Some(subject) = row else { return Err(EngineError::NotFound) };
        if !policy.sources.iter().any(|s| s.id.as_str() == source) {
            return Err(invalid("source", ErrorCode::NotAllowed, format!("the policy declares no source {source:?}")));
        }
        let mut errors = Vec::new();
        let mut collected = Vec::new();
        for (i, (item, value)) in items.iter().enumerate() {
            let field = format!("items.{item}");
            let Some(def) = policy.item_by_str(item) else {
                errors.push(FieldError::new(
                    field,
                    ErrorCode::UnknownItem,
                    format!("the policy declares no item {item:?}"),
                ));
                continue;
            };
            if items[..i].iter().any(|(other, _)| other == item) {
                errors.push(FieldError::new(field, ErrorCode::DuplicateItem, "the item is given twice"));
                continue;
            }
            let collected_for_kind = policy.collection_points.iter().any(|p| {
                p.subject_kinds.iter().any(|k| k.as_str() == subject.kind)
                    && p.required.iter().chain(&p.optional).any(|x| x.as_str() == item)
            });
            if !collected_for_kind {
                errors.push(FieldError::new(
                    field,
                    ErrorCode::NotCollectedHere,
                    format!("no collection point takes {item:?} from a subject of kind {:?}", subject.kind),
                ));
                continue;
            }
            let normalised = collect::normalise(policy, def, value).and_then(|v| {
                check_corrected_date(policy, &subject.kind, def, &v, crate::utc_date(now))?;
                Ok(v)
            });
            match normalised {
                Ok(v) => collected.push(collect::Collected {
                    index_value: def.unique.then(|| v.clone()),
                    item: def.id.clone(),
                    value: v,
                }),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Invalid(errors));
        }
        let at = stamp(now);
        let key_row = {
            let key_id = subject.profile_key.clone();
            self.write_job(move |tx| tx.key(&key_id))
                .await?
                .ok_or_else(|| EngineError::Integrity("the subject's key is gone".into()))?
        };
        let key = self.inner.keyring.unwrap_data_key(&key_row.id, &key_row.wrapped)?;
        let scope = subject.service_id.clone().unwrap_or_else(|| PLATFORM_SCOPE.to_owned());
        let (rows, indexes) =
            self.seal_items(&subject.id, &key_row.id, &key, &scope, collected, source, None, &at).await?;
        drop(key);
        let version = policy.meta.version.clone();
        let caller = caller.clone();
        let names: Vec<String> = rows.iter().map(|r| r.item.clone()).collect();
        let policy = self.policy();
        self.write_job(move |tx| {
            let op = Operation::CorrectSubject;
            let subject = match gate::member(tx, &policy, &caller, op, &subject.id, None, None, &at)? {
                Ok((subject, _)) => subject,
                Err(refused) => return Ok(Err(refused)),
            };
            // A dormant member's items are in the dormant store: a correction
            // waits until a login brings them back.
            if subject.status == gate::DORMANT {
                Audit {
                    caller: &caller,
                    operation: "correct",
                    purpose: None,
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: "denied: dormant",
                    at: &at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                return Ok(Err(EngineError::Conflict(
                    "the member is dormant: their details come back when they log in, and can be corrected then".into(),
                )));
            }
            // A value another subject holds is refused before anything is
            // written, and the refusal is audited like any other.
            for (item, digest) in &indexes {
                if tx.find_index(&scope, item, digest)?.is_some_and(|holder| holder != subject.id) {
                    Audit {
                        caller: &caller,
                        operation: "correct",
                        purpose: None,
                        subject: Some(&subject.id),
                        items: std::slice::from_ref(item),
                        outcome: "denied: conflict",
                        at: &at,
                        policy_version: &version,
                    }
                    .append(tx)?;
                    return Ok(Err(EngineError::Conflict(format!(
                        "a subject with this {item} is already registered here"
                    ))));
                }
            }
            for row in &rows {
                tx.put_item(row)?;
            }
            for (item, digest) in &indexes {
                tx.remove_index(&subject.id, item)?;
                tx.insert_index(&scope, item, digest, &subject.id)?;
            }
            Audit {
                caller: &caller,
                operation: "correct",
                purpose: None,
                subject: Some(&subject.id),
                items: &names,
                outcome: "corrected",
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(summary(subject)))
        })
        .await?
    }

    /// Records an activity event (login, password change, payment): it
    /// moves the subject's last activity when the policy counts it.
    pub async fn record_activity(&self, caller: &Caller, id: &str, event: &str, now: jiff::Timestamp) -> Result<()> {
        let policy = self.policy();
        let policy = &*policy;
        if !policy.events.iter().any(|e| e.id.as_str() == event) {
            let declared: Vec<&str> = policy.events.iter().map(|e| e.id.as_str()).collect();
            return Err(invalid(
                "event",
                ErrorCode::UnknownItem,
                format!("the policy declares no event {event:?} (declared: {})", declared.join(", ")),
            ));
        }
        let counts = match &policy.retention.dormancy {
            Some(d) => d.activity.iter().any(|e| e.as_str() == event),
            None => true,
        };
        let at = stamp(now);
        let version = policy.meta.version.clone();
        self.permit(caller, Operation::RecordActivity, Target::None, None, None, now).await?;
        let (caller, id, event) = (caller.clone(), id.to_owned(), event.to_owned());
        let (id_out, event_out) = (id.clone(), event.clone());
        let policy = self.policy();
        let releases =
            policy.retention.dormancy.as_ref().is_some_and(|d| d.released_by.iter().any(|e| e.as_str() == event));
        let was_dormant = self
            .write_job(move |tx| {
                let subject = match gate::member(tx, &policy, &caller, Operation::RecordActivity, &id, None, None, &at)?
                {
                    Ok((subject, _)) => subject,
                    Err(refused) => return Ok(Err(refused)),
                };
                let dormant = subject.status == gate::DORMANT;
                if counts {
                    tx.touch_activity(&subject.id, &at)?;
                }
                Audit {
                    caller: &caller,
                    operation: "activity",
                    purpose: None,
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: &format!("{event}{}", if counts { "" } else { " (does not count as activity)" }),
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)?;
                Ok(Ok(dormant))
            })
            .await??;
        // A login or password change brings a dormant member back, intact.
        if was_dormant && releases {
            self.release_dormant(id_out.as_str(), event_out.as_str(), now).await?;
        }
        Ok(())
    }

    /// Subjects of a service (or of the platform), without personal data.
    pub async fn list_subjects(
        &self,
        caller: &Caller,
        service: Option<String>,
        after: Option<String>,
        limit: u32,
        now: jiff::Timestamp,
    ) -> Result<Vec<SubjectSummary>> {
        self.permit(caller, Operation::ListSubjects, Target::Scope(service.as_deref()), None, None, now).await?;
        let limit = limit.clamp(1, 1001);
        let after = after.unwrap_or_default();
        let (caller, at, version) = (caller.clone(), stamp(now), self.policy().meta.version.clone());
        // A listing shows who is a member (ids, statuses): audited, in the
        // job that reads it.
        let rows = self
            .write_job(move |tx| {
                if let Some(s) = &service
                    && tx.service(s)?.is_none()
                {
                    return Ok(None);
                }
                let rows = tx.subjects_page(service.as_deref(), &after, limit)?;
                let scope = service.as_deref().unwrap_or("platform");
                Audit {
                    caller: &caller,
                    operation: Operation::ListSubjects.as_str(),
                    purpose: None,
                    subject: None,
                    items: &[],
                    outcome: &format!("listed {} subject(s) of {scope}", rows.len()),
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)?;
                Ok(Some(rows))
            })
            .await?
            .ok_or(EngineError::NotFound)?;
        Ok(rows.into_iter().map(summary).collect())
    }
}

/// A corrected date keeps the rules it was collected under: never in the
/// future, and a date of birth checked by an age-check point of the
/// subject's kind must still meet the minimum age.
fn check_corrected_date(
    policy: &custos_core::policy::Policy,
    kind: &str,
    item: &custos_core::policy::model::Item,
    value: &str,
    today: jiff::civil::Date,
) -> Result<(), FieldError> {
    if item.kind != ItemType::Date {
        return Ok(());
    }
    let field = format!("items.{}", item.id);
    let Ok(date) = value.parse::<jiff::civil::Date>() else { return Ok(()) };
    if date > today {
        return Err(FieldError::new(
            field,
            ErrorCode::FutureDate,
            format!("item {:?} cannot be in the future", item.id.as_str()),
        ));
    }
    let age_checked = policy
        .collection_points
        .iter()
        .any(|p| p.age_check && p.subject_kinds.iter().any(|k| k.as_str() == kind) && p.required.contains(&item.id));
    if let (true, Some(children)) = (age_checked, &policy.children)
        && collect::age_in_years(date, today) < i32::from(children.minimum_age)
    {
        return Err(FieldError::new(
            field,
            ErrorCode::UnderAge,
            format!("the subject must be at least {} years old", children.minimum_age),
        ));
    }
    Ok(())
}

fn summary(s: SubjectRow) -> SubjectSummary {
    SubjectSummary { id: s.id, service: s.service_id, kind: s.kind, status: s.status, created_at: s.created_at }
}

/// Whether the subject's current consent permits `purpose`, taking consent
/// in `mode`: derived from the ledger and the policy history
/// (`custos_core::consent`).
pub(crate) fn has_consent(
    tx: &WriteTx<'_>,
    history: &[std::sync::Arc<custos_core::policy::Policy>],
    subject: &str,
    purpose: &str,
    mode: custos_core::policy::model::ConsentMode,
) -> Result<bool, StoreError> {
    Ok(crate::consent::current(&tx.consents(subject)?, history, purpose).permits(mode))
}

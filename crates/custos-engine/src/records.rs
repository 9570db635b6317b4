//! Records of the policy's record classes (contracts, payments, complaints,
//! advertising, tax ledgers, visits) attached to a subject. Each class of
//! each subject has its own data keys per class and month of the record date
//! (`hold:<class>:<YYYY-MM>`, see `custos_core::lifecycle::hold_scope`), so
//! that destroying a key destroys exactly the records whose time is up.

use custos_core::collect::{ErrorCode, FieldError, MAX_TEXT_BYTES};
use custos_store::{KeyRow, RecordRow, StoreError};

use crate::crypto::{Aad, DataKey};
use crate::gate;
use crate::ids::{new_id, new_record_id};
use crate::subjects::{Audit, Caller};
use crate::{Engine, EngineError, NewRecord, RecordRead, Result, stamp};
use custos_core::authz::{Operation, Target};
use custos_core::lifecycle;

fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

/// Record ciphertexts are bound to the subject and the record together.
fn owner(subject: &str, record: &str) -> String {
    format!("{subject}/{record}")
}

impl Engine {
    /// Decrypts one record; the error says why it cannot be read.
    pub(crate) fn open_record(&self, keys: &[KeyRow], row: &RecordRow) -> Result<String, String> {
        let key =
            keys.iter().find(|k| k.id == row.key_id).ok_or_else(|| format!("the key of record {} is gone", row.id))?;
        let data_key =
            self.inner.keyring.unwrap_data_key(&key.id, &key.wrapped).map_err(|e| format!("record {}: {e}", row.id))?;
        open_with(key, &data_key, row)
    }

    /// The data keys of `keys`, unwrapped once each, for opening many
    /// records with [`open_with`].
    pub(crate) fn unwrap_record_keys<'k>(&self, keys: &'k [KeyRow]) -> Result<Vec<(&'k KeyRow, DataKey)>, String> {
        keys.iter()
            .map(|k| {
                let dk =
                    self.inner.keyring.unwrap_data_key(&k.id, &k.wrapped).map_err(|e| format!("key {}: {e}", k.id))?;
                Ok((k, dk))
            })
            .collect()
    }
}

/// Decrypts one record with its data key, already unwrapped.
pub(crate) fn open_with(key: &KeyRow, data_key: &DataKey, row: &RecordRow) -> Result<String, String> {
    let owner = owner(&row.subject_id, &row.id);
    let aad = Aad { owner: &owner, field: &row.class, key_id: &key.id, key_version: key.version };
    let plain = data_key.open(&aad, &row.value).map_err(|e| format!("record {}: {e}", row.id))?;
    String::from_utf8(plain.to_vec()).map_err(|_| format!("record {} is not text", row.id))
}

impl Engine {
    /// Keeps a record for a subject, encrypted under the subject's key for
    /// the record's class.
    pub async fn add_record(
        &self,
        caller: &Caller,
        subject_id: &str,
        record: NewRecord,
        now: jiff::Timestamp,
    ) -> Result<String> {
        let policy = self.policy();
        let policy = &*policy;
        let mut errors = Vec::new();
        if policy.record_class_by_str(&record.class).is_none() {
            errors.push(FieldError::new(
                "class",
                ErrorCode::UnknownItem,
                format!("the policy declares no record class {:?}", record.class),
            ));
        }
        let today = crate::utc_date(now);
        // Exactly YYYY-MM-DD: the date the statutory span is counted from.
        let plain = record.record_date.len() == 10
            && record
                .record_date
                .bytes()
                .enumerate()
                .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        let class = policy.record_class_by_str(&record.class);
        let mut record_date = None;
        match record.record_date.parse::<jiff::civil::Date>() {
            Ok(d) if plain && d > today => {
                errors.push(FieldError::new("record_date", ErrorCode::FutureDate, "the record date is in the future"))
            }
            // Kept only to be destroyed: its hold is already over.
            Ok(d) if plain && class.is_some_and(|c| lifecycle::record_expired(c, d, None, today)) => {
                errors.push(FieldError::new(
                    "record_date",
                    ErrorCode::NotAllowed,
                    "the record's statutory hold is already over: it may not be kept",
                ))
            }
            Ok(d) if plain => record_date = Some(d),
            _ => errors.push(FieldError::new("record_date", ErrorCode::InvalidFormat, "expected a date as YYYY-MM-DD")),
        }
        if record.content.trim().is_empty() {
            errors.push(FieldError::new("content", ErrorCode::Empty, "the record is empty"));
        } else if record.content.len() > MAX_TEXT_BYTES {
            errors.push(FieldError::new(
                "content",
                ErrorCode::TooLong,
                format!("a record holds at most {MAX_TEXT_BYTES} bytes"),
            ));
        }
        let (Some(class), Some(record_date), true) = (class, record_date, errors.is_empty()) else {
            return Err(EngineError::Invalid(errors));
        };
        let scope = lifecycle::hold_scope(class, record_date);
        let at = stamp(now);
        let record_id = new_record_id(now)?;
        let keyring = self.inner.keyring.clone();
        let version = policy.meta.version.clone();
        self.permit(caller, Operation::AddRecord, Target::None, None, None, now).await?;
        let (caller, subject_id) = (caller.clone(), subject_id.to_owned());
        let policy = self.policy();
        self.write_job(move |tx| {
            let subject = match gate::member(tx, &policy, &caller, Operation::AddRecord, &subject_id, None, None, &at)?
            {
                Ok((subject, _)) => subject,
                Err(refused) => return Ok(Err(refused)),
            };
            // The hold key is made on first use, inside the job, so two
            // concurrent first records cannot make two keys.
            let key = match tx.key_for(&subject.id, &scope)? {
                Some(k) => match keyring.unwrap_data_key(&k.id, &k.wrapped) {
                    Ok(data_key) => (k.id, data_key),
                    Err(e) => return Ok(Err(EngineError::from(e))),
                },
                None => {
                    let key_id = new_id("key").map_err(|e| StoreError::Database(e.to_string()))?;
                    let (data_key, wrapped) =
                        keyring.new_data_key(&key_id).map_err(|e| StoreError::Database(e.to_string()))?;
                    tx.insert_key(&KeyRow {
                        id: key_id.clone(),
                        subject_id: subject.id.clone(),
                        scope,
                        version: 1,
                        wrapped,
                        created_at: at.clone(),
                    })?;
                    (key_id, data_key)
                }
            };
            let owner = owner(&subject.id, &record_id);
            let aad = Aad { owner: &owner, field: &record.class, key_id: &key.0, key_version: 1 };
            let value = key.1.seal(&aad, record.content.as_bytes()).map_err(|e| StoreError::Database(e.to_string()))?;
            tx.insert_record(&RecordRow {
                id: record_id.clone(),
                subject_id: subject.id.clone(),
                class: record.class.clone(),
                record_date: record.record_date.clone(),
                key_id: key.0.clone(),
                value,
                created_at: at.clone(),
            })?;
            Audit {
                caller: &caller,
                operation: Operation::AddRecord.as_str(),
                purpose: None,
                subject: Some(&subject.id),
                items: std::slice::from_ref(&record.class),
                outcome: &record_id,
                at: &at,
                policy_version: &version,
            }
            .append(tx)?;
            Ok(Ok(record_id))
        })
        .await?
    }

    /// A subject's records that `purpose` may read, oldest first.
    pub async fn list_records(
        &self,
        caller: &Caller,
        subject_id: &str,
        purpose: &str,
        after: Option<String>,
        limit: u32,
        now: jiff::Timestamp,
    ) -> Result<Vec<RecordRead>> {
        let policy = self.policy();
        let policy = &*policy;
        self.permit(caller, Operation::ListRecords, Target::None, Some(purpose), None, now).await?;
        let classes: Vec<String> = policy
            .record_classes
            .iter()
            .filter(|c| c.read_purpose.as_str() == purpose || c.purposes.iter().any(|p| p.as_str() == purpose))
            .map(|c| c.id.to_string())
            .collect();
        if classes.is_empty() {
            return Err(invalid(
                "purpose",
                ErrorCode::NotAllowed,
                format!("no record class may be read for the purpose {purpose:?}"),
            ));
        }
        let at = stamp(now);
        let today = crate::utc_date(now);
        let version = policy.meta.version.clone();
        let limit = limit.clamp(1, 1001);
        // Opt-in purposes need a current grant; opt-out ones stop at an
        // objection (a withdrawal); others do not rest on consent.
        let history = self.policy_history();
        let (caller_c, subject_c, purpose_c) = (caller.clone(), subject_id.to_owned(), purpose.to_owned());
        let policy_c = self.policy();
        let (rows, keys) = self.write_job(move |tx| {
                let op = Operation::ListRecords;
                let (subject, allowed) =
                    match gate::member(tx, &policy_c, &caller_c, op, &subject_c, Some(&purpose_c), None, &at)? {
                        Ok(found) => found,
                        Err(refused) => return Ok(Err(refused)),
                    };
                // A refusal once the member is known: audited in this job.
                let refuse = |tx: &mut custos_store::WriteTx<'_>, subject: &str, outcome: &str| {
                    Audit {
                        caller: &caller_c,
                        operation: op.as_str(),
                        purpose: Some(&purpose_c),
                        subject: Some(subject),
                        items: &[],
                        outcome,
                        at: &at,
                        policy_version: &version,
                    }
                    .append(tx)
                };
                if allowed.masked {
                    refuse(tx, &subject.id, "denied: dormant")?;
                    return Ok(Err(EngineError::Forbidden(
                        "the member is dormant: only holders of the dormant-lookup privilege see their records".into(),
                    )));
                }
                if let Err((outcome, refused)) =
                    gate::purpose_usable(tx, &policy_c, &history, &subject.id, &purpose_c)?
                {
                    refuse(tx, &subject.id, outcome)?;
                    return Ok(Err(refused));
                }
                // Of a deleted account, only the hold's legal purpose reads.
                let deleted = subject.status == gate::DELETED;
                let names: Vec<&str> = classes
                    .iter()
                    .map(String::as_str)
                    .filter(|c| {
                        !deleted || policy_c.record_class_by_str(c).is_some_and(|c| c.read_purpose.as_str() == purpose_c)
                    })
                    .collect();
                if names.is_empty() {
                    refuse(tx, &subject.id, "denied: account deleted")?;
                    return Ok(Err(EngineError::Forbidden(
                        "the account was deleted: its records are read only for the legal purpose that keeps them"
                            .into(),
                    )));
                }
                let after = after.as_deref().unwrap_or("");
                if !after.is_empty() && !tx.record_exists(&subject.id, after)? {
                    return Ok(Err(EngineError::Invalid(vec![FieldError::new(
                        "cursor",
                        ErrorCode::InvalidFormat,
                        "the cursor names no record of this subject (it may have been destroyed): start again without it",
                    )])));
                }
                // A record is never read on or after the day its hold ends,
                // whether or not the sweep has run yet.
                let deleted_on = match deleted {
                    true => tx.deleted_at(&subject.id)?.and_then(|d| d.parse::<jiff::Timestamp>().ok()).map(crate::utc_date),
                    false => None,
                };
                let rows: Vec<RecordRow> = tx
                    .records(&subject.id, &names, after, limit)?
                    .into_iter()
                    .filter(|r| {
                        let class = policy_c.record_class_by_str(&r.class);
                        let date = r.record_date.parse::<jiff::civil::Date>().ok();
                        match (class, date) {
                            (Some(c), Some(d)) => !lifecycle::record_expired(c, d, deleted_on, today),
                            _ => true,
                        }
                    })
                    .collect();
                let mut keys: Vec<KeyRow> = Vec::new();
                for row in &rows {
                    if !keys.iter().any(|k| k.id == row.key_id)
                        && let Some(k) = tx.key(&row.key_id)?
                    {
                        keys.push(k);
                    }
                }
                let read: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                Audit {
                    caller: &caller_c,
                    operation: Operation::ListRecords.as_str(),
                    purpose: Some(&purpose_c),
                    subject: Some(&subject.id),
                    items: &read,
                    outcome: "allowed",
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)?;
                Ok(Ok((rows, keys)))
            })
            .await??;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            match self.open_record(&keys, &row) {
                Ok(content) => out.push(RecordRead {
                    id: row.id,
                    class: row.class,
                    record_date: row.record_date,
                    created_at: row.created_at,
                    content,
                }),
                Err(reason) => {
                    tracing::error!(record = %row.id, %reason, "integrity failure");
                    self.audit_integrity(caller, &row.subject_id, &reason, now).await;
                    return Err(EngineError::Integrity(reason));
                }
            }
        }
        Ok(out)
    }
}

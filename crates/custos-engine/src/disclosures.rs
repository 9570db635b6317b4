//! Hand-overs of a member's data, each on the record (seed clauses 4 and 5,
//! annexes A and B): a provision to a third party on a lawful basis, and a
//! hand-over to a processor for its declared duty. The rules are pure
//! (`custos_core::provision`); here they run inside one store job with the
//! member's row, the consent the basis names, the register entry and the
//! audit entry, and the values go out decrypted only after that job
//! committed.
//!
//! Invariants:
//! - a refused hand-over writes only its audit entry;
//! - the register keeps what went to whom, when, why and by whom; the free
//!   text of a provision (purpose, citation, document, justification) is
//!   sealed under the member's profile key and goes with them;
//! - a password hash never leaves; a dormant member's data is not handed
//!   over (their login releases them first).

use std::collections::BTreeMap;

use custos_core::authz::Operation;
use custos_core::collect::{ErrorCode, FieldError};
use custos_core::policy::Policy;
use custos_core::provision::{self, ConsentFacts, ProvisionAsk, ProvisionBasis, Refusal};
use custos_store::{DisclosureRow, ItemRow, KeyRow, StoreError, SubjectRow, WriteTx};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::crypto::Aad;
use crate::ids::new_id;
use crate::subjects::Audit;
use crate::{Engine, EngineError, Result, gate, stamp};

/// The field a provision's sealed free text is bound to.
const DETAILS_FIELD: &str = "disclosure.details";
/// Longest recipient name or purpose, in bytes.
const MAX_NAME: usize = 300;
/// Most items in one hand-over.
const MAX_ITEMS: usize = 100;

/// A provision asked for: who receives what, why, and on which basis.
#[derive(Debug, Clone)]
pub struct NewProvision {
    /// The recipient's name (a company, an authority).
    pub recipient: String,
    /// The recipient's id when the policy names its recipients.
    pub recipient_id: Option<String>,
    pub items: Vec<String>,
    /// What the recipient will use the data for.
    pub purpose: String,
    /// The recipient uses it for its own direct marketing (California's
    /// list of such recipients, Cal. Civ. Code § 1798.83).
    pub marketing: bool,
    pub basis: ProvisionBasis,
}

/// A hand-over asked for: which items go to which processor (or transfer
/// recipient of the policy), for a member of which jurisdiction.
#[derive(Debug, Clone)]
pub struct NewHandover {
    pub recipient: String,
    pub items: Vec<String>,
    /// The purpose the hand-over serves (the caller must work for it, it
    /// must cover the items, and its consent and restriction rules apply,
    /// as for a read).
    pub purpose: String,
    /// The member's jurisdiction (a policy id); `None`: the policy's own.
    pub jurisdiction: Option<String>,
}

/// The sealed free text of a provision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Details {
    purpose: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    citation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    justification: Option<String>,
}

/// A cross-border transfer's country and basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferView {
    pub country: String,
    pub basis: String,
    pub description: String,
}

/// One entry of the register, as answers and the access package show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisclosureView {
    pub id: String,
    /// `provision` or `handover`.
    pub kind: String,
    pub at: String,
    pub recipient: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    pub items: Vec<String>,
    /// A hand-over: the processor's duty; a provision: the purpose given
    /// (absent once the member's key is gone).
    pub purpose: Option<String>,
    /// The basis kind (`consent`, `legal_obligation`, `vital_interest`), or
    /// `duty` for a hand-over.
    pub basis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub marketing: bool,
    pub transfer: Option<TransferView>,
}

/// What a hand-over answers: the entry made and the values that went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disclosed {
    pub disclosure: DisclosureView,
    pub data: BTreeMap<String, String>,
}

/// One entry of the register as the staff console lists it: who received
/// which items of which member, when, on which basis and by whom. The free
/// text of a provision stays sealed (it is read with the member's package).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisterEntry {
    pub id: String,
    /// `provision` or `handover`.
    pub kind: String,
    pub at: String,
    pub subject: String,
    pub recipient: String,
    pub items: Vec<String>,
    /// The basis kind of a provision; `duty` for a hand-over.
    pub basis: String,
    /// A hand-over's declared duty.
    pub duty: Option<String>,
    /// The recipient's country when the data crossed a border.
    pub country: Option<String>,
    pub actor: String,
}

/// Audits a refusal of the rules (their codes, never submitted text) in
/// the job that decided it; returns the caller's error, every reason a
/// field problem.
#[allow(clippy::too_many_arguments)] // reason: an audit entry names all of these
fn deny(
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    op: Operation,
    subject: &str,
    items: &[String],
    refusals: Vec<Refusal>,
    at: &str,
    policy: &Policy,
) -> Result<EngineError, StoreError> {
    let codes: Vec<&str> = refusals.iter().map(Refusal::code).collect();
    audit(tx, caller, op, subject, items, &format!("denied: {}", codes.join(", ")), at, policy)?;
    Ok(EngineError::Invalid(
        refusals.iter().map(|r| FieldError::new(r.field(), ErrorCode::NotAllowed, r.to_string())).collect(),
    ))
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, ErrorCode::InvalidFormat, message)])
}

fn name_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(invalid(field, "required"));
    }
    if value.len() > MAX_NAME {
        return Err(invalid(field, format!("at most {MAX_NAME} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "control characters are not allowed"));
    }
    Ok(())
}

/// An id of the policy (an item, a recipient, a processor, a purpose):
/// checked before anything else, so no submitted text of any other shape
/// reaches an answer or the audit log.
fn check_id(field: &str, id: Option<&str>) -> Result<()> {
    match id {
        Some(id) if custos_core::policy::model::Id::parse(id).is_err() => {
            Err(invalid(field, "a policy id: lower-case letters, digits and underscores, at most 64 characters"))
        }
        _ => Ok(()),
    }
}

fn check_items_shape(items: &[String]) -> Result<()> {
    if items.len() > MAX_ITEMS {
        return Err(invalid("items", format!("at most {MAX_ITEMS} items")));
    }
    for item in items {
        check_id("items", Some(item))?;
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = items.iter().find(|i| !seen.insert(i.as_str())) {
        return Err(invalid("items", format!("{dup:?} is named twice")));
    }
    Ok(())
}

/// The view of a register row; `details` is its opened free text.
fn view(row: &DisclosureRow, details: Option<Details>) -> DisclosureView {
    let details = details.unwrap_or_default();
    let provision = row.kind == "provision";
    DisclosureView {
        id: row.id.clone(),
        kind: row.kind.clone(),
        at: row.at.clone(),
        recipient: row.recipient.clone(),
        recipient_id: row.recipient_id.clone(),
        items: row.items.split_whitespace().map(str::to_owned).collect(),
        purpose: if provision { Some(details.purpose).filter(|p| !p.is_empty()) } else { row.duty.clone() },
        basis: row.basis.clone(),
        consent_id: row.consent_id.clone(),
        citation: details.citation,
        document: details.document,
        justification: details.justification,
        marketing: row.marketing,
        transfer: match (&row.country, &row.transfer_basis) {
            (Some(country), Some(basis)) => Some(TransferView {
                country: country.clone(),
                basis: basis.clone(),
                description: row.transfer_description.clone().unwrap_or_default(),
            }),
            _ => None,
        },
    }
}

/// Inside a job: the member, if `caller` may hand their data over and they
/// are active; a refusal is audited.
#[allow(clippy::too_many_arguments)] // reason: the access question names all of these
fn active_member(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    caller: &Caller,
    op: Operation,
    subject: &str,
    purpose: Option<&str>,
    items: Option<&[String]>,
    at: &str,
) -> Result<Result<SubjectRow, EngineError>, StoreError> {
    let row = match gate::member(tx, policy, caller, op, subject, purpose, items, at)? {
        Ok((row, _)) => row,
        Err(e) => return Ok(Err(e)),
    };
    if row.status == gate::DORMANT {
        audit(tx, caller, op, subject, &[], "denied: dormant", at, policy)?;
        return Ok(Err(EngineError::Conflict(
            "the member is dormant: their data is handed over once their login releases them".into(),
        )));
    }
    Ok(Ok(row))
}

#[allow(clippy::too_many_arguments)] // reason: an audit entry names all of these
fn audit(
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    op: Operation,
    subject: &str,
    items: &[String],
    outcome: &str,
    at: &str,
    policy: &Policy,
) -> Result<i64, StoreError> {
    Audit {
        caller,
        operation: op.as_str(),
        purpose: None,
        subject: Some(subject),
        items,
        outcome,
        at,
        policy_version: &policy.meta.version,
    }
    .append(tx)
}

/// The facts of the consent `id` as the ledger holds them for `subject`:
/// current only if the state the ledger derives for its purpose is granted
/// now (not withdrawn since, not in need of renewal after a widened
/// purpose) and no restriction stops that purpose.
fn consent_facts(
    tx: &WriteTx<'_>,
    policy: &Policy,
    history: &[std::sync::Arc<Policy>],
    subject: &str,
    id: &str,
) -> Result<Option<ConsentFacts>, StoreError> {
    let Some(owner) = tx.consent_owner(id)? else { return Ok(None) };
    if owner != subject {
        return Ok(Some(ConsentFacts { same_member: false, purpose: String::new(), granted: false, current: false }));
    }
    let ledger = tx.consents(subject)?;
    let Some(pos) = ledger.iter().position(|c| c.id.as_deref() == Some(id)) else { return Ok(None) };
    let entry = &ledger[pos];
    let latest = !ledger[pos + 1..].iter().any(|c| c.purpose == entry.purpose);
    let granted_now = crate::consent::current(&ledger, history, &entry.purpose).permits_use();
    let restricted = crate::requests::is_restricted(tx, policy, subject, &entry.purpose)?;
    Ok(Some(ConsentFacts {
        same_member: true,
        purpose: entry.purpose.clone(),
        granted: entry.granted,
        current: latest && granted_now && !restricted,
    }))
}

/// What one job hands back for decryption outside it.
struct Taken {
    subject: SubjectRow,
    key: Option<KeyRow>,
    rows: Vec<ItemRow>,
    row: DisclosureRow,
    details: Option<Details>,
}

impl Engine {
    /// Provides a member's items to a third party, if the basis holds
    /// (`custos_core::provision::check_provision`): the register entry and
    /// the audit entry in one job, then the values.
    pub async fn provide(
        &self,
        caller: &Caller,
        subject: &str,
        req: NewProvision,
        now: Timestamp,
    ) -> Result<Disclosed> {
        name_text("recipient", &req.recipient)?;
        name_text("purpose", &req.purpose)?;
        check_items_shape(&req.items)?;
        let details = Details {
            purpose: req.purpose.clone(),
            citation: match &req.basis {
                ProvisionBasis::LegalObligation { citation, .. } => Some(citation.clone()),
                _ => None,
            },
            document: match &req.basis {
                ProvisionBasis::LegalObligation { document, .. } => Some(document.clone()),
                _ => None,
            },
            justification: match &req.basis {
                ProvisionBasis::VitalInterest { justification } => Some(justification.clone()),
                _ => None,
            },
        };
        let sealed_plain = serde_json::to_vec(&details).map_err(|e| EngineError::Unavailable(e.to_string()))?;
        check_id("recipient_id", req.recipient_id.as_deref())?;
        let id = new_id("dis")?;
        let history = self.policy_history();
        let (engine, caller_c, subject_c, at, policy) =
            (self.clone(), caller.clone(), subject.to_owned(), stamp(now), self.policy());
        let taken = self
            .write_job(move |tx| {
                let op = Operation::Provide;
                let member = match active_member(tx, &policy, &caller_c, op, &subject_c, None, None, &at)? {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(e)),
                };
                let consent = match &req.basis {
                    ProvisionBasis::Consent { consent_id } => {
                        consent_facts(tx, &policy, &history, &member.id, consent_id)?
                    }
                    _ => None,
                };
                let ask = ProvisionAsk {
                    recipient_id: req.recipient_id.as_deref(),
                    items: &req.items,
                    basis: &req.basis,
                    consent: consent.as_ref(),
                };
                if let Err(refusals) = provision::check_provision(&policy, &ask) {
                    return Ok(Err(deny(tx, &caller_c, op, &member.id, &req.items, refusals, &at, &policy)?));
                }
                let names: Vec<&str> = req.items.iter().map(String::as_str).collect();
                let rows = tx.items(&member.id, &names)?;
                let key = tx.key(&member.profile_key)?;
                let Some(k) = &key else {
                    return Ok(Err(EngineError::Integrity("the member's key is gone".into())));
                };
                let data_key = engine
                    .inner
                    .keyring
                    .unwrap_scoped(&k.scope, &k.id, &k.wrapped)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                let sealed = data_key
                    .seal(
                        &Aad { owner: &id, field: DETAILS_FIELD, key_id: &k.id, key_version: k.version },
                        &sealed_plain,
                    )
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                let went: Vec<String> = rows.iter().map(|r| r.item.clone()).collect();
                let row = DisclosureRow {
                    id: id.clone(),
                    kind: "provision".into(),
                    service_id: member.service_id.clone(),
                    subject_id: member.id.clone(),
                    recipient: req.recipient.clone(),
                    recipient_id: req.recipient_id.clone(),
                    items: went.join(" "),
                    duty: None,
                    marketing: req.marketing,
                    basis: req.basis.kind().to_string(),
                    consent_id: match &req.basis {
                        ProvisionBasis::Consent { consent_id } => Some(consent_id.clone()),
                        _ => None,
                    },
                    sealed: Some(sealed),
                    key_id: Some(k.id.clone()),
                    country: None,
                    transfer_basis: None,
                    transfer_description: None,
                    at: at.clone(),
                    actor: caller_c.actor(),
                    policy_version: policy.meta.version.clone(),
                };
                tx.insert_disclosure(&row)?;
                let outcome = format!("allowed: provision {} under {}", row.id, row.basis);
                audit(tx, &caller_c, op, &member.id, &went, &outcome, &at, &policy)?;
                Ok(Ok(Taken { subject: member, key, rows, row, details: Some(details) }))
            })
            .await??;
        self.disclosed(taken, caller, now).await
    }

    /// Hands a member's items to a processor of the register (or a transfer
    /// recipient of the policy) for its declared duty
    /// (`custos_core::provision::check_handover`); abroad, the entry also
    /// records the transfer's country and basis.
    pub async fn hand_over(
        &self,
        caller: &Caller,
        subject: &str,
        req: NewHandover,
        now: Timestamp,
    ) -> Result<Disclosed> {
        check_items_shape(&req.items)?;
        check_id("recipient", Some(&req.recipient))?;
        check_id("purpose", Some(&req.purpose))?;
        if let Some(j) = &req.jurisdiction
            && custos_core::rights::jurisdiction(&self.policy(), Some(j)).is_err()
        {
            return Err(EngineError::Invalid(vec![FieldError::new(
                "jurisdiction",
                ErrorCode::NotAllowed,
                format!("the policy declares no jurisdiction {j:?}"),
            )]));
        }
        let id = new_id("dis")?;
        let history = self.policy_history();
        let (caller_c, subject_c, at, policy) = (caller.clone(), subject.to_owned(), stamp(now), self.policy());
        let taken = self
            .write_job(move |tx| {
                let op = Operation::HandOver;
                // A hand-over reads the items: the caller names the purpose
                // it serves, and the decision is a read's.
                let member = match active_member(
                    tx,
                    &policy,
                    &caller_c,
                    op,
                    &subject_c,
                    Some(&req.purpose),
                    Some(&req.items),
                    &at,
                )? {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(e)),
                };
                if let Err((outcome, refused)) = gate::purpose_usable(tx, &policy, &history, &member.id, &req.purpose)?
                {
                    audit(tx, &caller_c, op, &member.id, &[], outcome, &at, &policy)?;
                    return Ok(Err(refused));
                }
                let plan =
                    match provision::check_handover(&policy, &req.recipient, &req.items, req.jurisdiction.as_deref()) {
                        Ok(plan) => plan,
                        Err(refusals) => {
                            return Ok(Err(deny(tx, &caller_c, op, &member.id, &req.items, refusals, &at, &policy)?));
                        }
                    };
                let names: Vec<&str> = req.items.iter().map(String::as_str).collect();
                let rows = tx.items(&member.id, &names)?;
                let key = tx.key(&member.profile_key)?;
                if key.is_none() && !rows.is_empty() {
                    return Ok(Err(EngineError::Integrity("the member's key is gone".into())));
                }
                let went: Vec<String> = rows.iter().map(|r| r.item.clone()).collect();
                let row = DisclosureRow {
                    id: id.clone(),
                    kind: "handover".into(),
                    service_id: member.service_id.clone(),
                    subject_id: member.id.clone(),
                    recipient: plan.recipient.clone(),
                    recipient_id: None,
                    items: went.join(" "),
                    duty: Some(plan.duty.clone()),
                    marketing: false,
                    basis: "duty".into(),
                    consent_id: None,
                    sealed: None,
                    key_id: None,
                    country: plan.transfer.as_ref().and(plan.country.as_ref()).map(ToString::to_string),
                    transfer_basis: plan.transfer.as_ref().map(|t| t.kind.clone()),
                    transfer_description: plan.transfer.as_ref().map(|t| t.description.clone()),
                    at: at.clone(),
                    actor: caller_c.actor(),
                    policy_version: policy.meta.version.clone(),
                };
                tx.insert_disclosure(&row)?;
                let abroad = match (&row.country, &row.transfer_basis) {
                    (Some(c), Some(b)) => format!("; transfer to {c} ({b})"),
                    _ => String::new(),
                };
                let outcome = format!("allowed: hand-over {} to {} for its duty{abroad}", row.id, row.recipient);
                audit(tx, &caller_c, op, &member.id, &went, &outcome, &at, &policy)?;
                Ok(Ok(Taken { subject: member, key, rows, row, details: None }))
            })
            .await??;
        self.disclosed(taken, caller, now).await
    }

    async fn disclosed(&self, taken: Taken, caller: &Caller, now: Timestamp) -> Result<Disclosed> {
        let Taken { subject, key, rows, row, details } = taken;
        let data = self.open_items(&subject, key, rows, caller, now).await?;
        Ok(Disclosed { disclosure: view(&row, details), data })
    }

    /// The register's newest entries (at most `limit`, up to 500) for staff
    /// who work requests and make provisions, in their scope; the listing
    /// is audited in the job that reads it.
    pub async fn disclosure_register(&self, caller: &Caller, limit: u32, now: Timestamp) -> Result<Vec<RegisterEntry>> {
        let service = caller.service.clone();
        self.permit(
            caller,
            Operation::HandleRequest,
            custos_core::authz::Target::Scope(service.as_deref()),
            None,
            None,
            now,
        )
        .await?;
        let (caller, at, version) = (caller.clone(), stamp(now), self.policy().meta.version.clone());
        let limit = limit.clamp(1, 500);
        let rows = self
            .write_job(move |tx| {
                let rows = tx.recent_disclosures(service.as_deref(), limit)?;
                Audit {
                    caller: &caller,
                    operation: "disclosures_list",
                    purpose: None,
                    subject: None,
                    items: &[],
                    outcome: &format!("listed {} register entries", rows.len()),
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)?;
                Ok(rows)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| RegisterEntry {
                items: r.items.split_whitespace().map(str::to_owned).collect(),
                id: r.id,
                kind: r.kind,
                at: r.at,
                subject: r.subject_id,
                recipient: r.recipient,
                basis: r.basis,
                duty: r.duty,
                country: r.country,
                actor: r.actor,
            })
            .collect())
    }

    /// The register entries of a member, their free text opened with the
    /// member's key when it is still there (`key`: the profile key row).
    pub(crate) fn disclosure_views(&self, rows: &[DisclosureRow], key: Option<&KeyRow>) -> Vec<DisclosureView> {
        let data_key = key.and_then(|k| self.inner.keyring.unwrap_scoped(&k.scope, &k.id, &k.wrapped).ok());
        rows.iter()
            .map(|row| {
                let details = match (&row.sealed, &data_key, key) {
                    (Some(sealed), Some(dk), Some(k)) if row.key_id.as_deref() == Some(k.id.as_str()) => dk
                        .open(
                            &Aad { owner: &row.id, field: DETAILS_FIELD, key_id: &k.id, key_version: k.version },
                            sealed,
                        )
                        .ok()
                        .and_then(|plain| serde_json::from_slice::<Details>(&plain).ok()),
                    _ => None,
                };
                view(row, details)
            })
            .collect()
    }
}

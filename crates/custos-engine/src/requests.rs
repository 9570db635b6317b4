//! Rights requests (seed clause 6, annex B): filed for a member by the
//! platform's backend or by staff, verified (a one-time code sent to a
//! contact on file, the platform's own signed-in session, or a staff
//! member's check of an agent's letter of attorney), worked in a queue
//! against the deadline of the member's jurisdiction, and answered by doing
//! what was asked: an access package, an export, a correction, a deletion
//! through the lifecycle engine, a restriction the reads enforce, consents
//! withdrawn.
//!
//! Invariants:
//! - every step is one store job with its audit entry and its line in the
//!   request's timeline; a step the state machine
//!   (`custos_core::rights::next`) does not allow changes nothing;
//! - nothing a requester wrote, no letter and no answer is stored in
//!   plaintext: they are sealed under the request's own key, which outlives
//!   the member's profile key (the request stays on record after the
//!   deletion it carried out); an access or export package is therefore
//!   never stored, only built at each fetch from what is held then;
//! - a one-time code is kept only as an HMAC, expires after
//!   [`CODE_MINUTES`] minutes and dies after [`CODE_ATTEMPTS`] wrong tries.

use std::collections::BTreeMap;

use custos_core::authz::{Operation, Target};
use custos_core::collect::{ErrorCode, FieldError};
use custos_core::policy::Policy;
use custos_core::rights::{self, Kind, Status, Step};
use custos_store::{KeyRow, OutboxRow, RequestFilter, RequestRow, RequestStepRow, StoreError, WriteTx};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::crypto::Aad;
use crate::ids::new_id;
use crate::subjects::Audit;
use crate::{Engine, EngineError, Result, gate, stamp};

/// Minutes a one-time code stays valid.
pub const CODE_MINUTES: i64 = 30;
/// Wrong codes before the code is void (a new one must be sent).
pub const CODE_ATTEMPTS: i64 = 5;
/// Days after an access or export request is fulfilled during which its
/// package can be fetched (built afresh at each fetch; never stored).
pub const ANSWER_DAYS: i64 = 30;
/// Largest letter of attorney accepted, in bytes.
pub const MAX_LETTER_BYTES: usize = 5 * 1024 * 1024;
/// Longest free text (a note, a reason), in bytes.
const MAX_TEXT: usize = 4096;
/// The media types a letter of attorney may have.
const LETTER_TYPES: &[&str] = &["application/pdf", "image/png", "image/jpeg", "text/plain"];
/// The key scope of a request's own key.
pub(crate) const REQUEST_SCOPE: &str = "request";

fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

/// Which requests a queue listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    /// Only this member's.
    pub subject_id: Option<String>,
    /// Open requests whose deadline in force is before this day
    /// (`YYYY-MM-DD`): the overdue ones, given today.
    pub due_before: Option<String>,
    /// Only these kinds (`complaint`, `access`…; empty: all).
    pub kinds: Vec<String>,
}

/// A complaint or an inquiry to file (seed clauses 1, 2 and 9): what the
/// person wrote, collected through a collection point of the policy, and
/// kept as a record class of the policy says.
#[derive(Clone)]
pub struct NewComplaint {
    /// `complaint` or `inquiry`.
    pub kind: String,
    pub channel: String,
    /// The member it comes from, when it comes from one.
    pub subject: Option<String>,
    pub collection_point: String,
    pub items: Vec<(String, String)>,
    /// The record class whose span it is kept for (b.stage: complaint and
    /// dispute records, 3 years from the day it was received).
    pub keep_as: String,
    /// When it arrived, if before now; staff only.
    pub received_on: Option<Date>,
}

impl std::fmt::Debug for NewComplaint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewComplaint")
            .field("kind", &self.kind)
            .field("collection_point", &self.collection_point)
            .field("items", &self.items.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// An agent's letter of attorney, opened for the staff member checking it.
#[derive(Clone)]
pub struct Letter {
    pub bytes: Vec<u8>,
    /// One of the accepted media types (PDF, PNG, JPEG, plain text).
    pub media_type: String,
    /// SHA-256 of the bytes, as recorded when the request was filed.
    pub sha256: String,
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("media_type", &self.media_type)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// How the requester is to be verified when the request is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Send a one-time code to the member's e-mail address on file.
    Code,
    /// The platform's backend vouches that the member is signed in on its
    /// site (API keys only).
    PlatformSession,
    /// A staff member who works the queue will check (an agent's letter
    /// of attorney, a signed letter); the request waits until then.
    Staff,
}

/// An agent acting for the member.
#[derive(Clone)]
pub struct NewAgent {
    pub name: String,
    pub contact: String,
    /// The letter of attorney as received.
    pub letter: Vec<u8>,
    pub letter_type: String,
}

/// A request to file.
#[derive(Clone)]
pub struct NewRequest {
    pub kind: String,
    pub channel: String,
    /// The member's jurisdiction (a policy id); `None`: the policy's own.
    pub jurisdiction: Option<String>,
    pub subject: String,
    pub verification: Verification,
    pub agent: Option<NewAgent>,
    /// Restriction and objection: the purposes concerned (empty: all).
    pub purposes: Vec<String>,
    /// Correction: item → the corrected value.
    pub corrections: Vec<(String, String)>,
    /// What the requester wrote, if anything.
    pub note: Option<String>,
    /// When it arrived, if before now (a letter logged a few days later);
    /// staff only, never in the future.
    pub received_on: Option<Date>,
}

impl std::fmt::Debug for NewRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRequest")
            .field("kind", &self.kind)
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What was asked, sealed under the request's key.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent_contact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub letter_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub purposes: Vec<String>,
    /// Item → value; emptied of values once applied (the old values are
    /// not kept anywhere, the new ones live in the profile).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub corrections: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    /// A complaint's or inquiry's items, collected through `point`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub items: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub point: Option<String>,
    /// The record class it is kept as.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kept_as: Option<String>,
}

impl std::fmt::Debug for Details {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Details")
            .field("purposes", &self.purposes)
            .field("corrections", &self.corrections.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAgent").field("letter_type", &self.letter_type).finish_non_exhaustive()
    }
}

/// A request as the queue shows it (no sealed content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub id: String,
    pub kind: String,
    pub channel: String,
    pub jurisdiction: String,
    pub requester: String,
    pub status: String,
    pub subject: Option<String>,
    pub service: Option<String>,
    pub received_at: String,
    pub acknowledge_by: Option<String>,
    pub answer_by: Option<String>,
    pub extended_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub verified_by: Option<String>,
    pub verified_at: Option<String>,
    pub assigned_to: Option<String>,
    pub closed_at: Option<String>,
    pub letter_sha256: Option<String>,
    /// Complaints and inquiries: the day they are destroyed.
    pub destroy_on: Option<String>,
    pub overdue: bool,
    pub acknowledgement_overdue: bool,
    pub days_left: Option<i64>,
}

/// One line of a request's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStep {
    pub at: String,
    pub actor: String,
    pub step: String,
    pub status: String,
    pub note: String,
}

/// A request with what was asked and its timeline (staff only).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestDetail {
    pub request: RequestView,
    pub details: Details,
    pub steps: Vec<RequestStep>,
    /// Why it was extended, when it was.
    pub extension_reason: Option<String>,
}

/// What filing answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub request: RequestView,
    /// A one-time code went to the member's e-mail address (queued).
    pub code_sent: bool,
}

fn date_of(s: &Option<String>) -> Option<Date> {
    s.as_deref().and_then(|d| d.parse().ok())
}

pub(crate) fn view(row: &RequestRow, today: Date) -> RequestView {
    let status = Status::parse(&row.status).unwrap_or(Status::Received);
    let in_force = date_of(&row.extended_by).or_else(|| date_of(&row.answer_by));
    let standing =
        rights::standing(status, in_force, date_of(&row.acknowledge_by), row.acknowledged_at.is_some(), today);
    RequestView {
        id: row.id.clone(),
        kind: row.kind.clone(),
        channel: row.channel.clone(),
        jurisdiction: row.jurisdiction.clone(),
        requester: row.requester.clone(),
        status: row.status.clone(),
        subject: row.subject_id.clone(),
        service: row.service_id.clone(),
        received_at: row.received_at.clone(),
        acknowledge_by: row.acknowledge_by.clone(),
        answer_by: row.answer_by.clone(),
        extended_by: row.extended_by.clone(),
        acknowledged_at: row.acknowledged_at.clone(),
        verified_by: row.verified_by.clone(),
        verified_at: row.verified_at.clone(),
        assigned_to: row.assigned_to.clone(),
        closed_at: row.closed_at.clone(),
        letter_sha256: row.letter_sha256.clone(),
        destroy_on: row.destroy_on.clone(),
        overdue: standing.overdue,
        acknowledgement_overdue: standing.acknowledgement_overdue,
        days_left: standing.days_left,
    }
}

/// Field names the sealed parts are bound to.
const DETAILS_FIELD: &str = "request.details";
const LETTER_FIELD: &str = "request.letter";
const OUTCOME_FIELD: &str = "request.outcome";
const EXTENSION_FIELD: &str = "request.extension_reason";
const CODE_FIELD: &str = "request.code";

fn text(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_TEXT {
        return Err(invalid(field, ErrorCode::TooLong, format!("at most {MAX_TEXT} bytes")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, ErrorCode::InvalidFormat, "control characters are not accepted"));
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Who takes a step: `(actor, role)` as the audit log names them.
pub(crate) fn who(caller: &Caller) -> (String, String) {
    (caller.actor(), caller.role().to_owned())
}

/// The requester acting with their one-time code.
fn requester() -> (String, String) {
    ("requester".to_owned(), "requester".to_owned())
}

/// Queues the notice telling the member their request was closed (none
/// for a request from someone who is not a member).
fn notify_closed(tx: &mut WriteTx<'_>, row: &RequestRow, status: &str, at: &str) -> Result<(), StoreError> {
    let Some(subject) = &row.subject_id else { return Ok(()) };
    tx.insert_outbox(&OutboxRow {
        kind: "request_closed".into(),
        subject: Some(subject.clone()),
        body: serde_json::json!({ "request": row.id, "kind": row.kind, "status": status }).to_string(),
        created_at: at.to_owned(),
    })
}

/// Audits a refusal in the job that decided it; returns the error the
/// caller gets.
fn audit_refusal(
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    op: Operation,
    subject: Option<&str>,
    denied: custos_core::authz::Denied,
    at: &str,
    policy: &Policy,
) -> Result<EngineError, StoreError> {
    Audit {
        caller,
        operation: op.as_str(),
        purpose: None,
        subject,
        items: &[],
        outcome: &format!("denied: {}", denied.code()),
        at,
        policy_version: &policy.meta.version,
    }
    .append(tx)?;
    Ok(gate::refusal(denied))
}

/// Appends a timeline line and the audit entry of a step.
fn record_step(
    tx: &mut WriteTx<'_>,
    who: &(String, String),
    row: &RequestRow,
    step: &str,
    note: &str,
    at: &str,
    policy: &Policy,
) -> Result<(), StoreError> {
    tx.insert_request_step(&RequestStepRow {
        request_id: row.id.clone(),
        at: at.to_owned(),
        actor: who.0.clone(),
        step: step.to_owned(),
        status: row.status.clone(),
        note: note.to_owned(),
    })?;
    let outcome = if note.is_empty() {
        format!("{}: request {} ({})", row.status, row.id, row.kind)
    } else {
        format!("{}: request {} ({}); {note}", row.status, row.id, row.kind)
    };
    tx.append_audit(&crate::audit::row(custos_core::audit::Entry {
        at: at.to_owned(),
        actor: who.0.clone(),
        role: who.1.clone(),
        operation: format!("request_{step}"),
        purpose: None,
        subject: row.subject_id.clone(),
        items: String::new(),
        outcome,
        policy_version: policy.meta.version.clone(),
    }))?;
    Ok(())
}

/// The open correction requests of a member whose account is being erased
/// lose their new values in the erasure's job (they are the member's data;
/// the item names stay, and the timeline says why). Returns how many.
pub(crate) fn drop_pending_corrections(
    engine: &Engine,
    tx: &mut WriteTx<'_>,
    subject: &str,
    who: &(String, String),
    at: &str,
    policy: &Policy,
) -> Result<usize, StoreError> {
    let mut dropped = 0;
    for mut row in tx.open_requests_of(subject)? {
        if engine.drop_correction_values(tx, &mut row)? {
            record_step(tx, who, &row, "values_dropped", "the account was deleted", at, policy)?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

impl Engine {
    /// A correction's new values are the member's data: once the request
    /// can no longer apply them (denied, or the account erased) they are
    /// dropped from it, as after they were applied; the item names stay.
    fn drop_correction_values(&self, tx: &mut WriteTx<'_>, row: &mut RequestRow) -> Result<bool, StoreError> {
        if Kind::parse(&row.kind) != Some(Kind::Correction) {
            return Ok(false);
        }
        let mut details = self.open_details(tx, row)?;
        if details.corrections.values().all(String::is_empty) {
            return Ok(false);
        }
        details.corrections = details.corrections.into_keys().map(|k| (k, String::new())).collect();
        let plain = serde_json::to_vec(&details).map_err(|e| StoreError::Database(e.to_string()))?;
        row.details = self.seal_part(tx, row, DETAILS_FIELD, &plain)?;
        tx.update_request_details(&row.id, &row.details)?;
        Ok(true)
    }

    fn request_key(&self, tx: &WriteTx<'_>, row: &RequestRow) -> Result<crate::crypto::DataKey, StoreError> {
        let key = tx
            .key(&row.key_id)?
            .ok_or_else(|| StoreError::Database(format!("the key of request {} is gone", row.id)))?;
        self.inner.keyring.unwrap_data_key(&key.id, &key.wrapped).map_err(|e| StoreError::Database(e.to_string()))
    }

    fn code_mac(&self, request_id: &str, code: &str) -> String {
        let mac = self.inner.keyring.blind_index("request-code", request_id, code);
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Files a rights request for a member.
    pub async fn file_request(&self, caller: &Caller, req: NewRequest, now: Timestamp) -> Result<Filed> {
        let policy = self.policy();
        let today = crate::utc_date(now);
        let kind = Kind::parse(&req.kind).ok_or_else(|| {
            invalid("kind", ErrorCode::NotAllowed, format!("no request kind {:?}; one of {}", req.kind, kinds_list()))
        })?;
        if !kind.needs_verification() {
            return Err(invalid(
                "kind",
                ErrorCode::NotAllowed,
                "a complaint or an inquiry is filed with its collection point, items and record class",
            ));
        }
        let jurisdiction = rights::jurisdiction(&policy, req.jurisdiction.as_deref())
            .map_err(|e| invalid("jurisdiction", ErrorCode::NotAllowed, e.to_string()))?;
        rights::check(&policy, jurisdiction, kind, &req.channel, req.agent.is_some()).map_err(|e| {
            let field = match e {
                rights::Refused::UnknownChannel(_) => "channel",
                rights::Refused::NoAgents => "agent",
                _ => "kind",
            };
            invalid(field, ErrorCode::NotAllowed, e.to_string())
        })?;
        let is_staff = caller.staff.is_some();
        let verification = req.verification;
        match (verification, &req.agent, is_staff) {
            (Verification::PlatformSession, _, true) => {
                return Err(invalid(
                    "verification",
                    ErrorCode::NotAllowed,
                    "only the platform's backend vouches for its own session",
                ));
            }
            (Verification::PlatformSession | Verification::Code, Some(_), _) => {
                return Err(invalid(
                    "verification",
                    ErrorCode::NotAllowed,
                    "an agent's request is verified by a staff member's check of the letter of attorney",
                ));
            }
            _ => {}
        }
        if verification == Verification::Code && self.inner.mail.is_none() {
            return Err(EngineError::Unavailable(
                "no e-mail relay is configured ([smtp]): a code cannot be sent".into(),
            ));
        }
        let received = match req.received_on {
            Some(_) if !is_staff => {
                return Err(invalid("received_on", ErrorCode::NotAllowed, "only staff log a request received earlier"));
            }
            Some(d) if d > today => {
                return Err(invalid(
                    "received_on",
                    ErrorCode::InvalidFormat,
                    "a request cannot be received in the future",
                ));
            }
            Some(d) => d,
            None => today,
        };
        let mut details = Details { note: req.note.clone(), ..Details::default() };
        if let Some(note) = &req.note {
            text("note", note)?;
        }
        match kind {
            Kind::Correction => {
                if req.corrections.is_empty() {
                    return Err(invalid(
                        "corrections",
                        ErrorCode::MissingRequired,
                        "name the items to correct and their values",
                    ));
                }
                for (item, value) in &req.corrections {
                    if policy.item_by_str(item).is_none() {
                        return Err(invalid(
                            &format!("corrections.{item}"),
                            ErrorCode::UnknownItem,
                            format!("the policy declares no item {item:?}"),
                        ));
                    }
                    text(&format!("corrections.{item}"), value)?;
                    details.corrections.insert(item.clone(), value.clone());
                }
            }
            Kind::Restriction | Kind::ObjectMarketing => {
                for p in &req.purposes {
                    let declared = policy.purpose_by_str(p);
                    let fits = match kind {
                        Kind::Restriction => declared.is_some() || p == rights::ALL_PURPOSES,
                        _ => declared.is_some_and(|d| d.consent.is_some()),
                    };
                    if !fits {
                        return Err(invalid(
                            "purposes",
                            ErrorCode::NotAllowed,
                            format!(
                                "{p:?} is not a purpose of the policy{}",
                                if kind == Kind::ObjectMarketing { " that rests on consent" } else { "" }
                            ),
                        ));
                    }
                }
                details.purposes = if req.purposes.is_empty() && kind == Kind::Restriction {
                    vec![rights::ALL_PURPOSES.to_owned()]
                } else {
                    req.purposes.clone()
                };
            }
            _ if !req.corrections.is_empty() || !req.purposes.is_empty() => {
                return Err(invalid(
                    "kind",
                    ErrorCode::NotAllowed,
                    format!("a {kind} request takes no corrections or purposes"),
                ));
            }
            _ => {}
        }
        let mut letter = None;
        if let Some(agent) = &req.agent {
            text("agent.name", &agent.name)?;
            text("agent.contact", &agent.contact)?;
            if agent.name.trim().is_empty() || agent.contact.trim().is_empty() {
                return Err(invalid("agent", ErrorCode::MissingRequired, "an agent gives a name and a contact"));
            }
            if agent.letter.is_empty() {
                return Err(invalid(
                    "agent.letter",
                    ErrorCode::MissingRequired,
                    "an agent's request needs the letter of attorney",
                ));
            }
            if agent.letter.len() > MAX_LETTER_BYTES {
                return Err(invalid("agent.letter", ErrorCode::TooLong, format!("at most {MAX_LETTER_BYTES} bytes")));
            }
            if !LETTER_TYPES.contains(&agent.letter_type.as_str()) {
                return Err(invalid(
                    "agent.letter_type",
                    ErrorCode::NotAllowed,
                    format!("one of {}", LETTER_TYPES.join(", ")),
                ));
            }
            details.agent_name = Some(agent.name.clone());
            details.agent_contact = Some(agent.contact.clone());
            details.letter_type = Some(agent.letter_type.clone());
            letter = Some(agent.letter.clone());
        }
        let due = rights::due(jurisdiction.deadlines.as_ref(), received)
            .map_err(|e| invalid("received_on", ErrorCode::InvalidFormat, e))?;

        // Everything checked: the key, the code, the sealed parts.
        let id = new_id("req")?;
        let key_id = new_id("key")?;
        let (key, wrapped) = self.inner.keyring.new_data_key(&key_id)?;
        let seal =
            |field: &str, bytes: &[u8]| key.seal(&Aad { owner: &id, field, key_id: &key_id, key_version: 1 }, bytes);
        let details_sealed =
            seal(DETAILS_FIELD, &serde_json::to_vec(&details).map_err(|e| EngineError::Unavailable(e.to_string()))?)?;
        let letter_sha256 = letter.as_deref().map(sha256_hex);
        let letter_sealed = letter.as_deref().map(|l| seal(LETTER_FIELD, l)).transpose()?;
        let code = match verification {
            Verification::Code => Some(one_time_code()?),
            _ => None,
        };
        let code_sealed = code.as_deref().map(|c| seal(CODE_FIELD, c.as_bytes())).transpose()?;
        let code_mac = code.as_deref().map(|c| self.code_mac(&id, c));
        let at = stamp(now);
        let received_at = if received == today { at.clone() } else { format!("{received}T00:00:00Z") };
        let status = if verification == Verification::PlatformSession { Status::Verified } else { Status::Received };
        let row = RequestRow {
            id: id.clone(),
            service_id: None,
            subject_id: Some(req.subject.clone()),
            kind: kind.as_str().to_owned(),
            channel: req.channel.clone(),
            jurisdiction: jurisdiction.id.to_string(),
            requester: if req.agent.is_some() { "agent" } else { "member" }.to_owned(),
            status: status.as_str().to_owned(),
            received_at,
            acknowledge_by: due.acknowledge.map(|d| d.to_string()),
            answer_by: due.answer.map(|d| d.to_string()),
            extended_by: None,
            // Filing answers the requester through the channel used: that
            // answer is the acknowledgement of receipt.
            acknowledged_at: Some(at.clone()),
            verified_by: (status == Status::Verified).then(|| "platform_session".to_owned()),
            verified_at: (status == Status::Verified).then(|| at.clone()),
            assigned_to: None,
            closed_at: None,
            key_id: key_id.clone(),
            details: details_sealed,
            letter_sha256,
            letter: letter_sealed,
            outcome: None,
            extension_reason: None,
            created_by: caller.actor(),
            destroy_on: None,
        };
        let key_row = KeyRow {
            id: key_id,
            subject_id: req.subject.clone(),
            scope: REQUEST_SCOPE.into(),
            version: 1,
            wrapped,
            created_at: at.clone(),
        };
        let (caller_c, policy_c, subject_c) = (caller.clone(), self.policy(), req.subject.clone());
        let expires = stamp(now.checked_add(jiff::SignedDuration::from_mins(CODE_MINUTES)).unwrap_or(now));
        let filed = self
            .write_job(move |tx| {
                let op = Operation::FileRequest;
                let subject = match gate::member(tx, &policy_c, &caller_c, op, &subject_c, None, None, &at)? {
                    Ok((subject, _)) => subject,
                    Err(refused) => return Ok(Err(refused)),
                };
                let mut row = row;
                row.service_id = subject.service_id.clone();
                tx.insert_key(&key_row)?;
                tx.insert_request(&row)?;
                let note = match (&row.verified_by, &code_mac) {
                    (Some(v), _) => format!("verified by {v}"),
                    (None, Some(_)) => "one-time code sent".to_owned(),
                    (None, None) => "awaiting verification by staff".to_owned(),
                };
                record_step(tx, &who(&caller_c), &row, "file", &note, &at, &policy_c)?;
                if let (Some(mac), Some(sealed)) = (&code_mac, &code_sealed) {
                    tx.set_request_code(&row.id, mac, &expires)?;
                    tx.insert_outbox(&OutboxRow {
                        kind: "request_code".into(),
                        subject: Some(subject.id.clone()),
                        body: serde_json::json!({ "request": row.id, "code": hex(sealed) }).to_string(),
                        created_at: at.clone(),
                    })?;
                }
                Ok(Ok(row))
            })
            .await??;
        if code.is_some()
            && let Some(subject) = &filed.subject_id
            && let Err(e) = self.deliver_now(subject, "request_code", now).await
        {
            // Queued all the same: the scheduled runs retry it.
            tracing::warn!(error = %e, "a one-time code could not be sent at once");
        }
        Ok(Filed { request: view(&filed, today), code_sent: code.is_some() })
    }

    /// Files a complaint or an inquiry: its items checked against the
    /// collection point like any collection, sealed under the request's own
    /// key, kept until the named record class's span from the day received
    /// has passed (the lifecycle jobs then destroy it, with a certificate).
    /// Nothing to verify: it is worked in the queue like a request.
    pub async fn file_complaint(&self, caller: &Caller, req: NewComplaint, now: Timestamp) -> Result<Filed> {
        let policy = self.policy();
        let today = crate::utc_date(now);
        let kind = Kind::parse(&req.kind)
            .filter(|k| !k.needs_verification())
            .ok_or_else(|| invalid("kind", ErrorCode::NotAllowed, "complaint or inquiry"))?;
        if !policy.channels.iter().any(|c| c.id.as_str() == req.channel) {
            return Err(invalid(
                "channel",
                ErrorCode::NotAllowed,
                format!("the policy declares no channel {:?}", req.channel),
            ));
        }
        let class = policy.record_class_by_str(&req.keep_as).ok_or_else(|| {
            invalid("keep_as", ErrorCode::NotAllowed, format!("the policy declares no record class {:?}", req.keep_as))
        })?;
        let received = match req.received_on {
            Some(_) if caller.staff.is_none() => {
                return Err(invalid("received_on", ErrorCode::NotAllowed, "only staff log what was received earlier"));
            }
            Some(d) if d > today => {
                return Err(invalid("received_on", ErrorCode::InvalidFormat, "cannot be received in the future"));
            }
            Some(d) => d,
            None => today,
        };
        // Kept from the day it was received (a record's own date).
        let destroy_on = custos_core::lifecycle::record_expires(class, received, None)
            .ok_or_else(|| invalid("keep_as", ErrorCode::NotAllowed, "that record class is kept from a deletion"))?;
        if destroy_on <= today {
            return Err(invalid("received_on", ErrorCode::NotAllowed, "its time to be kept is over already"));
        }
        // The member's own kind, or the first kind the point collects from.
        let subject_row = match &req.subject {
            Some(id) => {
                let id = id.clone();
                Some(self.inner.store.read(move |r| r.subject(&id)).await?.ok_or(EngineError::NotFound)?)
            }
            None => None,
        };
        let point = policy.collection_points.iter().find(|p| p.id.as_str() == req.collection_point);
        let subject_kind = match (&subject_row, point) {
            (Some(s), _) => s.kind.clone(),
            (None, Some(p)) => p.subject_kinds.first().map(|k| k.to_string()).unwrap_or_default(),
            (None, None) => String::new(),
        };
        let collected =
            custos_core::collect::check_collection(&policy, &req.collection_point, &subject_kind, &req.items, today)
                .map_err(EngineError::Invalid)?;
        let details = Details {
            items: collected.into_iter().map(|c| (c.item.to_string(), c.value)).collect(),
            point: Some(req.collection_point.clone()),
            kept_as: Some(class.id.to_string()),
            ..Details::default()
        };
        let id = new_id("req")?;
        let key_id = new_id("key")?;
        let (key, wrapped) = self.inner.keyring.new_data_key(&key_id)?;
        let plain = serde_json::to_vec(&details).map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let details_sealed =
            key.seal(&Aad { owner: &id, field: DETAILS_FIELD, key_id: &key_id, key_version: 1 }, &plain)?;
        let at = stamp(now);
        let jurisdiction = policy.meta.jurisdiction.to_string();
        let row = RequestRow {
            id: id.clone(),
            service_id: caller.service.clone(),
            subject_id: req.subject.clone(),
            kind: kind.as_str().to_owned(),
            channel: req.channel.clone(),
            jurisdiction,
            requester: "member".into(),
            status: Status::Verified.as_str().to_owned(),
            received_at: if received == today { at.clone() } else { format!("{received}T00:00:00Z") },
            acknowledge_by: None,
            answer_by: None,
            extended_by: None,
            acknowledged_at: Some(at.clone()),
            verified_by: Some("not_required".into()),
            verified_at: Some(at.clone()),
            assigned_to: None,
            closed_at: None,
            key_id: key_id.clone(),
            details: details_sealed,
            letter_sha256: None,
            letter: None,
            outcome: None,
            extension_reason: None,
            created_by: caller.actor(),
            destroy_on: Some(destroy_on.to_string()),
        };
        let key_row = KeyRow {
            id: key_id,
            subject_id: req.subject.clone().unwrap_or_else(|| id.clone()),
            scope: REQUEST_SCOPE.into(),
            version: 1,
            wrapped,
            created_at: at.clone(),
        };
        let (caller_c, policy_c, subject_c) = (caller.clone(), self.policy(), req.subject.clone());
        let filed = self
            .write_job(move |tx| {
                let op = Operation::FileRequest;
                let mut row = row;
                match &subject_c {
                    Some(subject) => match gate::member(tx, &policy_c, &caller_c, op, subject, None, None, &at)? {
                        Ok((found, _)) => row.service_id = found.service_id.clone(),
                        Err(refused) => return Ok(Err(refused)),
                    },
                    None => {
                        let target = Target::Scope(caller_c.service.as_deref());
                        if let Err(denied) = gate::ask(&policy_c, &caller_c, op, target, None, None) {
                            return Ok(Err(audit_refusal(tx, &caller_c, op, None, denied, &at, &policy_c)?));
                        }
                    }
                }
                tx.insert_key(&key_row)?;
                tx.insert_request(&row)?;
                let note = format!("to be destroyed on {}", row.destroy_on.as_deref().unwrap_or("?"));
                record_step(tx, &who(&caller_c), &row, "file", &note, &at, &policy_c)?;
                Ok(Ok(row))
            })
            .await??;
        Ok(Filed { request: view(&filed, today), code_sent: false })
    }

    /// Checks a one-time code; the request is verified when it matches.
    /// Open to anyone holding the code (the member types it where they
    /// asked); wrong codes count, and the code dies after
    /// [`CODE_ATTEMPTS`] of them or [`CODE_MINUTES`] minutes.
    pub async fn verify_request_code(&self, id: &str, code: &str, now: Timestamp) -> Result<RequestView> {
        let today = crate::utc_date(now);
        if code.len() > 32 {
            return Err(invalid("code", ErrorCode::InvalidFormat, "not a code"));
        }
        let mac = self.code_mac(id, code.trim());
        let (id_c, at, policy) = (id.to_owned(), stamp(now), self.policy());
        let system = requester();
        let outcome = self
            .write_job(move |tx| {
                let Some(mut row) = tx.request(&id_c)? else { return Ok(Err(EngineError::NotFound)) };
                let Some((stored, expires, attempts)) = tx.request_code(&id_c)? else {
                    return Ok(Err(EngineError::Conflict("this request has no code to check".into())));
                };
                let expired = expires.parse::<Timestamp>().map(|e| e <= now).unwrap_or(true);
                if expired || attempts >= CODE_ATTEMPTS {
                    tx.remove_request_code(&id_c)?;
                    record_step(
                        tx,
                        &system,
                        &row,
                        "code_void",
                        if expired { "code expired" } else { "too many wrong codes" },
                        &at,
                        &policy,
                    )?;
                    return Ok(Err(EngineError::Conflict("the code is no longer valid: ask for a new one".into())));
                }
                if aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), mac.as_bytes()).is_err() {
                    tx.count_request_code_attempt(&id_c)?;
                    record_step(
                        tx,
                        &system,
                        &row,
                        "code_wrong",
                        &format!("wrong code ({} of {CODE_ATTEMPTS})", attempts + 1),
                        &at,
                        &policy,
                    )?;
                    return Ok(Err(invalid("code", ErrorCode::NotAllowed, "the code does not match")));
                }
                let status = match rights::next(Status::parse(&row.status).unwrap_or(Status::Received), Step::Verify) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(EngineError::Conflict(e.to_string()))),
                };
                row.status = status.as_str().to_owned();
                row.verified_by = Some("code".into());
                row.verified_at = Some(at.clone());
                tx.update_request(&row)?;
                tx.remove_request_code(&id_c)?;
                record_step(tx, &system, &row, "verify", "one-time code matched", &at, &policy)?;
                Ok(Ok(row))
            })
            .await??;
        Ok(view(&outcome, today))
    }

    /// The queue: requests in deadline order, for staff who work it.
    pub async fn list_requests(
        &self,
        caller: &Caller,
        filter: QueueFilter,
        after: Option<String>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<RequestView>> {
        self.permit(caller, Operation::HandleRequest, Target::Scope(caller.service.as_deref()), None, None, now)
            .await?;
        // Staff of a service see its requests only; platform staff, all.
        let filter = RequestFilter {
            statuses: filter.statuses,
            service: caller.service.clone().map(Some),
            subject_id: filter.subject_id,
            due_before: filter.due_before,
            kinds: filter.kinds,
        };
        let limit = limit.clamp(1, 500);
        let rows = self.inner.store.read(move |r| r.requests(&filter, after.as_deref(), limit)).await?;
        let today = crate::utc_date(now);
        Ok(rows.iter().map(|r| view(r, today)).collect())
    }

    /// Reads one request for staff who work the queue: what was asked
    /// (decrypted; audited) and its timeline.
    pub async fn request_detail(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<RequestDetail> {
        let today = crate::utc_date(now);
        let (row, (steps, details, extension)) = self
            .handle_job(caller, id, now, |engine, tx, row, caller, at, policy| {
                let details = engine.open_details(tx, row)?;
                let extension = match &row.extension_reason {
                    Some(r) => Some(engine.open_part(tx, row, EXTENSION_FIELD, r)?),
                    None => None,
                };
                let steps = tx.request_steps(&row.id)?;
                Audit {
                    caller,
                    operation: "request_read",
                    purpose: None,
                    subject: row.subject_id.as_deref(),
                    items: &[],
                    outcome: &format!("allowed: request {}", row.id),
                    at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok((steps, details, extension.map(|e| String::from_utf8_lossy(&e).into_owned()))))
            })
            .await?;
        Ok(RequestDetail {
            request: view(&row, today),
            details,
            steps: steps
                .into_iter()
                .map(|s| RequestStep { at: s.at, actor: s.actor, step: s.step, status: s.status, note: s.note })
                .collect(),
            extension_reason: extension,
        })
    }

    /// The letter of attorney of an agent's request, as received, with its
    /// media type: for the staff member who checks it before verifying.
    /// Audited (`request_letter_read`) in the job that opens it; a request
    /// without a letter answers not found.
    pub async fn request_letter(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<Letter> {
        let (_, letter) = self
            .handle_job(caller, id, now, |engine, tx, row, caller, at, policy| {
                let Some(sealed) = row.letter.clone() else { return Ok(Err(EngineError::NotFound)) };
                let media_type = engine.open_details(tx, row)?.letter_type.unwrap_or_else(|| "text/plain".into());
                let bytes = engine.open_part(tx, row, LETTER_FIELD, &sealed)?;
                Audit {
                    caller,
                    operation: "request_letter_read",
                    purpose: None,
                    subject: row.subject_id.as_deref(),
                    items: &[],
                    outcome: &format!("allowed: the letter of request {}", row.id),
                    at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok(Letter { bytes, media_type, sha256: row.letter_sha256.clone().unwrap_or_default() }))
            })
            .await?;
        Ok(letter)
    }

    fn open_part(&self, tx: &WriteTx<'_>, row: &RequestRow, field: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = self.request_key(tx, row)?;
        key.open(&Aad { owner: &row.id, field, key_id: &row.key_id, key_version: 1 }, sealed)
            .map(|p| p.to_vec())
            .map_err(|e| StoreError::Database(format!("request {}: {e}", row.id)))
    }

    fn seal_part(&self, tx: &WriteTx<'_>, row: &RequestRow, field: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = self.request_key(tx, row)?;
        key.seal(&Aad { owner: &row.id, field, key_id: &row.key_id, key_version: 1 }, plain)
            .map_err(|e| StoreError::Database(format!("request {}: {e}", row.id)))
    }

    fn open_details(&self, tx: &WriteTx<'_>, row: &RequestRow) -> Result<Details, StoreError> {
        let plain = self.open_part(tx, row, DETAILS_FIELD, &row.details)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Database(format!("request {}: {e}", row.id)))
    }

    /// Runs `f` on a request inside one job, after checking that `caller`
    /// works the queue and reaches the request's service (a refusal is
    /// audited, and another service's request looks missing). Returns the
    /// row as `f` left it (written back by `f` when it changes it).
    async fn handle_job<T, F>(&self, caller: &Caller, id: &str, now: Timestamp, f: F) -> Result<(RequestRow, T)>
    where
        T: Send + 'static,
        F: FnOnce(
                &Engine,
                &mut WriteTx<'_>,
                &mut RequestRow,
                &Caller,
                &str,
                &Policy,
            ) -> Result<Result<T, EngineError>, StoreError>
            + Send
            + 'static,
    {
        self.handle_job_for(caller, id, now, false, f).await
    }

    /// [`Engine::handle_job`]; with `self_service`, an API key may also act
    /// on a request it filed itself when the kind needs no judgment
    /// ([`Kind::self_service`]), within its scope (`request_file`).
    async fn handle_job_for<T, F>(
        &self,
        caller: &Caller,
        id: &str,
        now: Timestamp,
        self_service: bool,
        f: F,
    ) -> Result<(RequestRow, T)>
    where
        T: Send + 'static,
        F: FnOnce(
                &Engine,
                &mut WriteTx<'_>,
                &mut RequestRow,
                &Caller,
                &str,
                &Policy,
            ) -> Result<Result<T, EngineError>, StoreError>
            + Send
            + 'static,
    {
        let filer = self_service && caller.staff.is_none();
        let op = if filer { Operation::FileRequest } else { Operation::HandleRequest };
        if !filer {
            self.permit(caller, op, Target::Scope(caller.service.as_deref()), None, None, now).await?;
        }
        let (engine, caller_c, id_c, at, policy) =
            (self.clone(), caller.clone(), id.to_owned(), stamp(now), self.policy());
        self.write_job(move |tx| {
            let found = tx.request(&id_c)?;
            let target = match &found {
                Some(row) => Target::Scope(row.service_id.as_deref()),
                None => Target::Missing,
            };
            let mut decision = gate::ask(&policy, &caller_c, op, target, None, None).map(|_| ());
            // A key acts only on the self-service requests it filed.
            if filer
                && decision.is_ok()
                && let Some(row) = &found
                && (row.created_by != caller_c.actor() || !Kind::parse(&row.kind).is_some_and(Kind::self_service))
            {
                decision = Err(custos_core::authz::Denied::Forbidden);
            }
            if let Err(denied) = decision {
                let subject = found.as_ref().and_then(|r| r.subject_id.as_deref());
                return Ok(Err(audit_refusal(tx, &caller_c, op, subject, denied, &at, &policy)?));
            }
            let Some(mut row) = found else { return Ok(Err(EngineError::NotFound)) };
            Ok(f(&engine, tx, &mut row, &caller_c, &at, &policy)?.map(|t| (row, t)))
        })
        .await?
    }

    /// Takes one step of the state machine on a request; `also` runs in the
    /// same job once the step is allowed (it may change the row further).
    #[allow(clippy::too_many_arguments)] // reason: every step names all of these
    async fn step<A>(
        &self,
        caller: &Caller,
        id: &str,
        step: Step,
        note: String,
        now: Timestamp,
        self_service: bool,
        also: A,
    ) -> Result<RequestView>
    where
        A: FnOnce(&Engine, &mut WriteTx<'_>, &mut RequestRow, &str) -> Result<Result<(), EngineError>, StoreError>
            + Send
            + 'static,
    {
        let today = crate::utc_date(now);
        let (row, ()) = self
            .handle_job_for(caller, id, now, self_service, move |engine, tx, row, caller, at, policy| {
                let from = Status::parse(&row.status).unwrap_or(Status::Received);
                let to = match rights::next(from, step) {
                    Ok(to) => to,
                    Err(e) => return Ok(Err(EngineError::Conflict(e.to_string()))),
                };
                row.status = to.as_str().to_owned();
                if let Err(e) = also(engine, tx, row, at)? {
                    return Ok(Err(e));
                }
                if to.is_closed() {
                    row.closed_at = Some(at.to_owned());
                }
                tx.update_request(row)?;
                record_step(tx, &who(caller), row, step.as_str(), &note, at, policy)?;
                Ok(Ok(()))
            })
            .await?;
        Ok(view(&row, today))
    }

    /// A staff member establishes the requester: an agent's letter of
    /// attorney checked, or a member's identity checked by other means (a
    /// signed letter, a call back). The member is told when an agent acts
    /// for them.
    pub async fn verify_request(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<RequestView> {
        self.step(caller, id, Step::Verify, "requester verified by staff".into(), now, false, move |_, tx, row, at| {
            row.verified_by = Some("staff".into());
            row.verified_at = Some(at.to_owned());
            if row.requester == "agent"
                && let Some(subject) = &row.subject_id
            {
                tx.insert_outbox(&OutboxRow {
                    kind: "request_agent".into(),
                    subject: Some(subject.clone()),
                    body: serde_json::json!({ "request": row.id, "kind": row.kind }).to_string(),
                    created_at: at.to_owned(),
                })?;
            }
            Ok(Ok(()))
        })
        .await
    }

    /// Hands a request to a staff member (`to`: a staff id; `None`: the
    /// caller).
    pub async fn assign_request(
        &self,
        caller: &Caller,
        id: &str,
        to: Option<String>,
        now: Timestamp,
    ) -> Result<RequestView> {
        let to = to.unwrap_or_else(|| caller.key_id.clone());
        let note = format!("assigned to {to}");
        self.step(caller, id, Step::Assign, note, now, false, move |_, tx, row, _| {
            let Some(staff) = tx.staff(&to)? else {
                return Ok(Err(invalid("to", ErrorCode::NotAllowed, "no such staff member")));
            };
            if staff.status != "active" {
                return Ok(Err(invalid("to", ErrorCode::NotAllowed, "that staff member is not active")));
            }
            row.assigned_to = Some(to);
            Ok(Ok(()))
        })
        .await
    }

    /// Extends the answer deadline once, where the jurisdiction allows it,
    /// with the reason the member is given.
    pub async fn extend_request(
        &self,
        caller: &Caller,
        id: &str,
        reason: String,
        now: Timestamp,
    ) -> Result<RequestView> {
        text("reason", &reason)?;
        if reason.trim().is_empty() {
            return Err(invalid("reason", ErrorCode::MissingRequired, "an extension needs its reason"));
        }
        let today = crate::utc_date(now);
        let (row, ()) = self
            .handle_job(caller, id, now, move |engine, tx, row, caller, at, policy| {
                let status = Status::parse(&row.status).unwrap_or(Status::Received);
                let deadlines = policy
                    .jurisdictions
                    .iter()
                    .find(|j| j.id.as_str() == row.jurisdiction)
                    .and_then(|j| j.deadlines.as_ref());
                let due = rights::Due { acknowledge: date_of(&row.acknowledge_by), answer: date_of(&row.answer_by) };
                let until = match rights::extend(deadlines, status, due, row.extended_by.is_some(), today) {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(EngineError::Conflict(e.to_string()))),
                };
                row.extended_by = Some(until.to_string());
                row.extension_reason = Some(engine.seal_part(tx, row, EXTENSION_FIELD, reason.as_bytes())?);
                tx.update_request(row)?;
                record_step(
                    tx,
                    &who(caller),
                    row,
                    "extend",
                    &format!("answer deadline extended to {until}"),
                    at,
                    policy,
                )?;
                if let Some(subject) = &row.subject_id {
                    tx.insert_outbox(&OutboxRow {
                        kind: "request_extended".into(),
                        subject: Some(subject.clone()),
                        body: serde_json::json!({ "request": row.id, "kind": row.kind, "until": until.to_string() })
                            .to_string(),
                        created_at: at.to_owned(),
                    })?;
                }
                Ok(Ok(()))
            })
            .await?;
        Ok(view(&row, today))
    }

    /// Refuses a request, with the reason the member is given.
    pub async fn deny_request(&self, caller: &Caller, id: &str, reason: String, now: Timestamp) -> Result<RequestView> {
        text("reason", &reason)?;
        if reason.trim().is_empty() {
            return Err(invalid("reason", ErrorCode::MissingRequired, "a denial needs its reason"));
        }
        self.step(caller, id, Step::Deny, "denied".into(), now, false, move |engine, tx, row, at| {
            let outcome = serde_json::json!({ "denied": true, "reason": reason });
            row.outcome = Some(engine.seal_part(tx, row, OUTCOME_FIELD, outcome.to_string().as_bytes())?);
            engine.drop_correction_values(tx, row)?;
            tx.remove_request_code(&row.id)?;
            notify_closed(tx, row, "denied", at)?;
            Ok(Ok(()))
        })
        .await
    }

    /// Fulfils a verified request: does what it asks (each act through
    /// the engine's own operation, audited as such, with the caller as the
    /// actor), seals the answer into the request and closes it. The acts
    /// are safe to repeat, so a fulfilment interrupted between the act and
    /// the closing step is simply fulfilled again. Staff who work the queue
    /// fulfil any kind; the API key that filed an access, export or
    /// right-to-know request may fulfil that one itself.
    pub async fn fulfil_request(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<RequestView> {
        // The kind picks the way (requests never change kind); who may act
        // on the request is decided inside the job that acts.
        let id_c = id.to_owned();
        let kind = self.inner.store.read(move |r| r.request(&id_c)).await?.and_then(|r| Kind::parse(&r.kind));
        if matches!(kind, Some(Kind::Access | Kind::Export)) {
            return self.fulfil_package(caller, id, now).await;
        }
        let (row, details) = self
            .handle_job_for(caller, id, now, true, |engine, tx, row, _, _, _| {
                let from = Status::parse(&row.status).unwrap_or(Status::Received);
                if let Err(e) = rights::next(from, Step::Fulfil) {
                    return Ok(Err(EngineError::Conflict(e.to_string())));
                }
                Ok(Ok(engine.open_details(tx, row)?))
            })
            .await?;
        let policy = self.policy();
        let subject = row.subject_id.clone().unwrap_or_default();
        let kind = Kind::parse(&row.kind).ok_or_else(|| EngineError::Conflict(format!("unknown kind {}", row.kind)))?;
        let why = format!("request {}", row.id);
        let mut restrict: Vec<String> = Vec::new();
        let outcome = match kind {
            // Categories, sources, purposes and recipients: no values, so
            // the answer is kept with the request.
            Kind::Know => {
                let package = self.export_for(caller, &subject, &why, now).await?;
                let year = crate::utc_date(now).year() - 1;
                let marketing = crate::export::marketing_recipients(&package, year);
                serde_json::json!({ "know": crate::export::know(&policy, &package, marketing) }).to_string()
            }
            Kind::Access | Kind::Export => return self.fulfil_package(caller, id, now).await,
            Kind::Correction => {
                let items: Vec<(String, String)> = details.corrections.clone().into_iter().collect();
                let names: Vec<String> = items.iter().map(|(i, _)| i.clone()).collect();
                let source = correction_source(&policy);
                self.correct_subject(caller, &subject, items, &source, now).await?;
                serde_json::json!({ "corrected": names }).to_string()
            }
            Kind::Deletion => {
                let erased = self
                    .erase(caller, &subject, Operation::HandleRequest, &format!("deletion request {}", row.id), now)
                    .await;
                // Fulfilled again after the account went but before the
                // request closed (a failure in between): the deletion is
                // done, and the request closes.
                let member_id = subject.clone();
                let already = matches!(erased, Err(EngineError::NotFound))
                    && self
                        .inner
                        .store
                        .read(move |r| r.subject(&member_id))
                        .await?
                        .is_some_and(|s| s.status == gate::DELETED);
                if already {
                    return self
                        .step(caller, id, Step::Fulfil, "deletion done".into(), now, true, |engine, tx, row, _| {
                            let answer = serde_json::json!({ "already_deleted": true }).to_string();
                            row.outcome = Some(engine.seal_part(tx, row, OUTCOME_FIELD, answer.as_bytes())?);
                            Ok(Ok(()))
                        })
                        .await;
                }
                let erasure = erased?;
                serde_json::json!({
                    "destroyed_at": erasure.destroyed_at,
                    "keys_destroyed": erasure.keys_destroyed,
                    "items_destroyed": erasure.items_destroyed,
                    "kept": erasure.kept.iter().map(|k| serde_json::json!({
                        "class": k.class, "law": k.law, "read_purpose": k.read_purpose,
                        "count": k.count, "until": k.until,
                    })).collect::<Vec<_>>(),
                })
                .to_string()
            }
            Kind::Restriction => {
                restrict = details.purposes.clone();
                let limited: Vec<serde_json::Value> = policy
                    .purposes
                    .iter()
                    .filter(|p| rights::restricted(&policy, &restrict, p.id.as_str()))
                    .map(|p| serde_json::json!({ "purpose": p.id.as_str(), "name": p.name, "description": p.description }))
                    .collect();
                let limits = policy.rights.as_ref().map(|r| r.limits.clone()).unwrap_or_default();
                serde_json::json!({ "restricted": restrict, "limited_services": limited, "limits": limits }).to_string()
            }
            Kind::ObjectMarketing => {
                let purposes: Vec<String> = if details.purposes.is_empty() {
                    policy.purposes.iter().filter(|p| p.consent.is_some()).map(|p| p.id.to_string()).collect()
                } else {
                    details.purposes.clone()
                };
                for purpose in &purposes {
                    let withdrawal = crate::consent::NewConsent {
                        purpose: purpose.clone(),
                        granted: false,
                        channel: row.channel.clone(),
                        notice_text: None,
                        ip: None,
                        user_agent: None,
                        policy_version: None,
                    };
                    self.withdraw_for_request(caller, &subject, withdrawal, &row.id, now).await?;
                }
                serde_json::json!({ "withdrawn": purposes }).to_string()
            }
            Kind::OptOutSale => {
                let sells = policy.jurisdictions.iter().any(|j| j.sells_personal_information == Some(true));
                restrict = Vec::new();
                serde_json::json!({ "opted_out": true, "sold_before": sells }).to_string()
            }
            Kind::Complaint | Kind::Inquiry => {
                serde_json::json!({ "handled": true, "destroyed_on": row.destroy_on }).to_string()
            }
        };
        let applied_corrections = kind == Kind::Correction;
        let deleted = kind == Kind::Deletion;
        self.step(caller, id, Step::Fulfil, format!("{kind} done"), now, true, move |engine, tx, row, at| {
            for purpose in &restrict {
                tx.insert_restriction(&subject, purpose, &row.id, at)?;
            }
            if applied_corrections {
                // The corrected values live in the profile now; the request
                // keeps the item names only.
                let mut details = details;
                details.corrections = details.corrections.into_keys().map(|k| (k, String::new())).collect();
                let plain = serde_json::to_vec(&details).map_err(|e| StoreError::Database(e.to_string()))?;
                row.details = engine.seal_part(tx, row, DETAILS_FIELD, &plain)?;
                tx.update_request_details(&row.id, &row.details)?;
            }
            row.outcome = Some(engine.seal_part(tx, row, OUTCOME_FIELD, outcome.as_bytes())?);
            // After a deletion there is no address left to write to.
            if !deleted {
                notify_closed(tx, row, "fulfilled", at)?;
            }
            Ok(Ok(()))
        })
        .await
    }

    /// Lifts the restriction a fulfilled restriction request put in place
    /// (the member asked, or the reason for it ended).
    pub async fn lift_restriction(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<usize> {
        let (_, lifted) = self
            .handle_job(caller, id, now, |_, tx, row, caller, at, policy| {
                if row.kind != Kind::Restriction.as_str() || row.status != Status::Fulfilled.as_str() {
                    return Ok(Err(EngineError::Conflict("only a fulfilled restriction request is lifted".into())));
                }
                let n = tx.lift_restrictions(&row.id, at)?;
                if n == 0 {
                    return Ok(Err(EngineError::Conflict("the restriction was lifted already".into())));
                }
                record_step(tx, &who(caller), row, "lift", &format!("{n} restriction(s) lifted"), at, policy)?;
                Ok(Ok(n))
            })
            .await?;
        Ok(lifted)
    }

    /// An access or export request is answered with the package, built from
    /// the member's data each time it is fetched ([`Engine::request_outcome`],
    /// for [`ANSWER_DAYS`] days) and never stored: a copy of everything about
    /// the member kept under the request's key would outlive their deletion.
    /// Fulfilling checks that the caller may have it and closes the request
    /// in one job.
    async fn fulfil_package(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<RequestView> {
        let caller_c = caller.clone();
        let policy = self.policy();
        self.step(caller, id, Step::Fulfil, "package ready".into(), now, true, move |engine, tx, row, at| {
            let subject = row.subject_id.clone().unwrap_or_default();
            if let Err(refused) = export_subject(tx, &policy, &caller_c, &subject, at)? {
                return Ok(Err(refused));
            }
            let until = answer_until(at).map(|t| t.to_string()).unwrap_or_default();
            let receipt = serde_json::json!({ "package": "built when fetched", "available_until": until });
            row.outcome = Some(engine.seal_part(tx, row, OUTCOME_FIELD, receipt.to_string().as_bytes())?);
            notify_closed(tx, row, "fulfilled", at)?;
            Ok(Ok(()))
        })
        .await
    }

    /// Everything about a member, read for a request (one audited job),
    /// decrypted.
    async fn export_for(
        &self,
        caller: &Caller,
        subject: &str,
        why: &str,
        now: Timestamp,
    ) -> Result<crate::export::Package> {
        let (caller_c, subject_c, why_c, at, policy) =
            (caller.clone(), subject.to_owned(), why.to_owned(), stamp(now), self.policy());
        let gathered = self
            .write_job(move |tx| {
                let row = match export_subject(tx, &policy, &caller_c, &subject_c, &at)? {
                    Ok(row) => row,
                    Err(refused) => return Ok(Err(refused)),
                };
                Ok(Ok(crate::export::gather(tx, &policy, &caller_c, row, &why_c, &at)?))
            })
            .await??;
        self.package(gathered, &stamp(now))
    }

    /// The answer of a closed request, an audited read: for a fulfilled
    /// access or export request the package, built now from what is held
    /// (for [`ANSWER_DAYS`] days after fulfilment, while the member is);
    /// otherwise what was done or the reason for a denial, decrypted. For
    /// staff who work the queue, and for the key that filed a self-service
    /// request.
    pub async fn request_outcome(&self, caller: &Caller, id: &str, now: Timestamp) -> Result<String> {
        enum Answer {
            Stored(String),
            Package(crate::export::Gathered),
        }
        let (_, answer) = self
            .handle_job_for(caller, id, now, true, move |engine, tx, row, caller, at, policy| {
                let package = matches!(Kind::parse(&row.kind), Some(Kind::Access | Kind::Export))
                    && row.status == Status::Fulfilled.as_str();
                if package {
                    // Built afresh from what is held now, in this job with
                    // its audit entry (operation `export`).
                    let until = row.closed_at.as_deref().and_then(answer_until);
                    if until.is_none_or(|u| now > u) {
                        return Ok(Err(EngineError::Conflict(format!(
                            "the package of this request could be fetched for {ANSWER_DAYS} days after it was \
                             fulfilled ({}): file a new request",
                            row.closed_at.as_deref().unwrap_or("never")
                        ))));
                    }
                    let subject = row.subject_id.clone().unwrap_or_default();
                    // The member is gone (deleted): so is the package.
                    if tx.subject(&subject)?.is_none_or(|s| s.status == gate::DELETED) {
                        return Ok(Err(EngineError::Conflict(
                            "the member's data is no longer held: there is no package to fetch".into(),
                        )));
                    }
                    let member = match export_subject(tx, policy, caller, &subject, at)? {
                        Ok(member) => member,
                        Err(refused) => return Ok(Err(refused)),
                    };
                    let why = format!("answer of request {}", row.id);
                    return Ok(Ok(Answer::Package(crate::export::gather(tx, policy, caller, member, &why, at)?)));
                }
                let Some(sealed) = row.outcome.clone() else {
                    return Ok(Err(EngineError::Conflict("the request has no answer yet".into())));
                };
                let plain = engine.open_part(tx, row, OUTCOME_FIELD, &sealed)?;
                Audit {
                    caller,
                    operation: "request_outcome_read",
                    purpose: None,
                    subject: row.subject_id.as_deref(),
                    items: &[],
                    outcome: &format!("allowed: answer of request {}", row.id),
                    at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok(Answer::Stored(String::from_utf8(plain).map_err(|e| StoreError::Database(e.to_string()))?)))
            })
            .await?;
        match answer {
            Answer::Stored(text) => Ok(text),
            Answer::Package(gathered) => {
                let package = self.package(gathered, &stamp(now))?;
                // Straight to text: a package of 10,000 records is megabytes,
                // not worth a detour through a JSON tree.
                #[derive(Serialize)]
                struct Wrapped<'a> {
                    package: &'a crate::export::Package,
                }
                serde_json::to_string(&Wrapped { package: &package })
                    .map_err(|e| EngineError::Unavailable(e.to_string()))
            }
        }
    }
}

impl Engine {
    /// The body of a `request_code` notice with its code opened, for the
    /// message only (the queued body holds it sealed).
    pub(crate) async fn request_code_body(&self, body: &str) -> Result<String> {
        let facts: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let (Some(id), Some(sealed)) = (
            facts.get("request").and_then(|v| v.as_str()).map(str::to_owned),
            facts.get("code").and_then(|v| v.as_str()).and_then(unhex),
        ) else {
            return Err(EngineError::Integrity("a code notice without its code".into()));
        };
        let engine = self.clone();
        let code = self
            .inner
            .store
            .read(move |r| {
                let row = r.request(&id)?.ok_or_else(|| StoreError::NotFound(format!("request {id}")))?;
                let key =
                    r.key(&row.key_id)?.ok_or_else(|| StoreError::Database("the request's key is gone".into()))?;
                let data_key = engine
                    .inner
                    .keyring
                    .unwrap_data_key(&key.id, &key.wrapped)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                let plain = data_key
                    .open(&Aad { owner: &row.id, field: CODE_FIELD, key_id: &row.key_id, key_version: 1 }, &sealed)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                Ok(String::from_utf8_lossy(&plain).into_owned())
            })
            .await?;
        Ok(serde_json::json!({ "code": code }).to_string())
    }
}

/// Inside a job: the member whose package `caller` may have for a request
/// (staff who work the queue, or the key that filed it). A dormant member's
/// details go only to holders of the dormant-lookup privilege, never to a
/// key; a refusal is audited in the job.
fn export_subject(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    caller: &Caller,
    subject: &str,
    at: &str,
) -> Result<Result<custos_store::SubjectRow, EngineError>, StoreError> {
    let op = if caller.staff.is_some() { Operation::HandleRequest } else { Operation::FileRequest };
    match gate::member(tx, policy, caller, op, subject, None, None, at)? {
        Ok((_, allowed)) if allowed.masked => {
            Audit {
                caller,
                operation: "export",
                purpose: None,
                subject: Some(subject),
                items: &[],
                outcome: "denied: dormant",
                at,
                policy_version: &policy.meta.version,
            }
            .append(tx)?;
            Ok(Err(EngineError::Forbidden(
                "the member is dormant: staff with the dormant-lookup privilege answer this request".into(),
            )))
        }
        Ok((row, _)) => Ok(Ok(row)),
        Err(refused) => Ok(Err(refused)),
    }
}

/// The last moment the package of an access or export request fulfilled at
/// `closed_at` can be fetched.
fn answer_until(closed_at: &str) -> Option<Timestamp> {
    let closed: Timestamp = closed_at.parse().ok()?;
    closed.checked_add(jiff::SignedDuration::from_hours(24 * ANSWER_DAYS)).ok()
}

/// Whether the member restricted processing for `purpose` (read in the
/// job that would use the data).
pub(crate) fn is_restricted(
    tx: &WriteTx<'_>,
    policy: &Policy,
    subject: &str,
    purpose: &str,
) -> Result<bool, StoreError> {
    let live: Vec<String> = tx.restrictions(subject)?.into_iter().map(|(p, _)| p).collect();
    Ok(!live.is_empty() && rights::restricted(policy, &live, purpose))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The source recorded for a corrected item: the policy's customer-centre
/// source, else its direct entry, else its first.
fn correction_source(policy: &Policy) -> String {
    use custos_core::policy::model::SourceKind;
    policy
        .sources
        .iter()
        .find(|s| s.kind == SourceKind::CustomerCentre)
        .or_else(|| policy.sources.iter().find(|s| s.kind == SourceKind::DirectEntry))
        .or_else(|| policy.sources.first())
        .map(|s| s.id.to_string())
        .unwrap_or_default()
}

fn kinds_list() -> String {
    Kind::ALL.iter().filter(|k| k.needs_verification()).map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Eight random digits.
pub(crate) fn one_time_code() -> Result<String> {
    let bytes = crate::ids::random_bytes(8)?;
    let n = u64::from_le_bytes(bytes.try_into().map_err(|_| EngineError::Unavailable("random".into()))?);
    Ok(format!("{:08}", n % 100_000_000))
}

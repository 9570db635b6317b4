//! The consent ledger: grants and withdrawals appended per subject ×
//! purpose × policy version, with their evidence (the hash of the notice
//! shown; the member's IP address and user agent sealed under the member's
//! key), and the current state derived from it (`custos_core::consent`),
//! never stored on its own.
//!
//! Invariants: the ledger is append-only; a withdrawal is one call like a
//! grant and holds from the moment it commits; an opt-in purpose without a
//! current grant is not consented, and its use is refused by the reads.

use std::sync::Arc;

use custos_core::authz::{Operation, Target};
use custos_core::consent::{self as rules, State};
use custos_core::policy::Policy;
use custos_store::{ConsentRow, PolicyVersionRow, Store, StoreError};

use crate::auth::Caller;
use crate::crypto::Aad;
use crate::ids::new_id;
use crate::subjects::Audit;
use crate::{Engine, EngineError, ErrorCode, FieldError, Result, gate, stamp};

/// Longest evidence value kept (an IP address, a user agent), in bytes.
const MAX_EVIDENCE_BYTES: usize = 1024;
/// Longest notice text hashed, in bytes.
const MAX_NOTICE_BYTES: usize = 256 * 1024;

/// Reads the history of policy versions and records the configured one when
/// it is new (in force from its effective date). Returns the policy in
/// force and the history. When the configured version was seen before, the
/// last version of the history is in force: an amendment that took effect
/// at runtime outlives a restart with the older file. Versions whose stored
/// text no longer parses are left out: grants under them need renewal.
pub(crate) async fn load_history(store: &Store, configured: Policy) -> Result<(Arc<Policy>, Vec<Arc<Policy>>)> {
    let configured = Arc::new(configured);
    let row = PolicyVersionRow {
        version: configured.meta.version.clone(),
        text: custos_core::policy::to_toml(&configured),
        in_force_at: configured.meta.effective_date.to_string(),
    };
    let rows = store
        .write(move |tx| {
            tx.insert_policy_version(&row)?;
            tx.policy_versions()
        })
        .await?;
    let mut history: Vec<Arc<Policy>> = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.version == configured.meta.version {
            // A version names one policy for good: consents given under it
            // are judged by what it said. (Compared as parsed policies, so
            // a new release writing the same policy differently is fine.)
            if custos_core::policy::parse(&row.text).is_ok_and(|stored| stored != *configured) {
                return Err(EngineError::Config(format!(
                    "the policy file says version {:?}, but this data folder ran a different text under that \
                     version: give the changed policy a new version (and publish it as an amendment)",
                    row.version
                )));
            }
            history.push(configured.clone());
        } else if let Ok(p) = custos_core::policy::parse(&row.text) {
            history.push(Arc::new(p));
        }
    }
    let current = history.last().cloned().unwrap_or_else(|| configured.clone());
    if current.meta.version != configured.meta.version {
        tracing::warn!(
            configured = %configured.meta.version,
            in_force = %current.meta.version,
            "an amendment published at runtime is in force; the configured policy file is older"
        );
    }
    Ok((current, history))
}

/// The current state of `purpose` from a subject's ledger rows.
pub(crate) fn current(rows: &[ConsentRow], history: &[Arc<Policy>], purpose: &str) -> State {
    let entries: Vec<rules::Entry<'_>> = rows
        .iter()
        .map(|r| rules::Entry { purpose: &r.purpose, granted: r.granted, policy_version: &r.policy_version })
        .collect();
    let refs: Vec<&Policy> = history.iter().map(|p| p.as_ref()).collect();
    rules::state(&entries, purpose, &refs)
}

/// A grant or withdrawal to record.
#[derive(Clone)]
pub struct NewConsent {
    pub purpose: String,
    pub granted: bool,
    /// How it was given: a channel the policy declares (`[[channels]]`).
    pub channel: String,
    /// The exact notice text the member was shown; only its SHA-256 is kept.
    pub notice_text: Option<String>,
    /// The member's IP address and user agent, kept encrypted.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The policy version the member was shown; refused when another
    /// version is in force by the time it is recorded.
    pub policy_version: Option<String>,
}

impl std::fmt::Debug for NewConsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConsent")
            .field("purpose", &self.purpose)
            .field("granted", &self.granted)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// A recorded ledger entry (no evidence values: they stay sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntry {
    pub id: Option<String>,
    pub purpose: String,
    pub granted: bool,
    pub channel: String,
    pub policy_version: String,
    pub at: String,
    pub notice_hash: Option<String>,
    pub evidence_kept: bool,
}

/// A purpose's current consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentStatus {
    pub purpose: String,
    pub state: State,
}

/// What recording a consent answers: the entry, the subject's consents
/// after it, and its consent receipt (Kantara Consent Receipt v1.1, JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRecorded {
    pub entry: ConsentEntry,
    pub ledger: ConsentLedger,
    pub receipt: serde_json::Value,
}

/// A subject's consents: the state of every consent-based purpose of the
/// current policy, and the whole ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentLedger {
    pub subject: String,
    pub policy_version: String,
    pub current: Vec<ConsentStatus>,
    pub history: Vec<ConsentEntry>,
}

fn entry(row: ConsentRow) -> ConsentEntry {
    ConsentEntry {
        id: row.id,
        purpose: row.purpose,
        granted: row.granted,
        channel: row.channel,
        policy_version: row.policy_version,
        at: row.at,
        notice_hash: row.notice_hash,
        evidence_kept: row.evidence.is_some(),
    }
}

impl Engine {
    fn ledger(&self, subject: &str, rows: Vec<ConsentRow>) -> ConsentLedger {
        let policy = self.policy();
        let policy = &*policy;
        let history = &self.policy_history();
        ConsentLedger {
            subject: subject.to_owned(),
            policy_version: policy.meta.version.clone(),
            current: policy
                .purposes
                .iter()
                .filter(|p| p.consent.is_some())
                .map(|p| ConsentStatus { purpose: p.id.to_string(), state: current(&rows, history, p.id.as_str()) })
                .collect(),
            history: rows.into_iter().map(entry).collect(),
        }
    }

    /// Appends a grant or a withdrawal to a subject's ledger, with its
    /// evidence, under the policy version in force; returns the entry and
    /// the subject's consents after it.
    pub async fn record_consent(
        &self,
        caller: &Caller,
        subject: &str,
        req: NewConsent,
        now: jiff::Timestamp,
    ) -> Result<ConsentRecorded> {
        self.consent_entry(caller, subject, req, None, now).await
    }

    /// A withdrawal recorded for the member by staff who fulfil their
    /// objection `request`: allowed by the request (`handle_requests`), not
    /// by the staff member's own purposes.
    pub(crate) async fn withdraw_for_request(
        &self,
        caller: &Caller,
        subject: &str,
        req: NewConsent,
        request: &str,
        now: jiff::Timestamp,
    ) -> Result<ConsentRecorded> {
        self.consent_entry(caller, subject, NewConsent { granted: false, ..req }, Some(request), now).await
    }

    async fn consent_entry(
        &self,
        caller: &Caller,
        subject: &str,
        req: NewConsent,
        request: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<ConsentRecorded> {
        let policy = self.policy();
        let policy = &*policy;
        let mut errors = Vec::new();
        match policy.purpose_by_str(&req.purpose) {
            None => errors.push(FieldError::new(
                "purpose",
                ErrorCode::UnknownItem,
                format!("the policy declares no purpose {:?}", req.purpose),
            )),
            Some(p) if p.consent.is_none() => errors.push(FieldError::new(
                "purpose",
                ErrorCode::NotAllowed,
                format!("the purpose {:?} does not rest on consent", req.purpose),
            )),
            Some(_) => {}
        }
        if !policy.channels.iter().any(|c| c.id.as_str() == req.channel) {
            let known: Vec<&str> = policy.channels.iter().map(|c| c.id.as_str()).collect();
            errors.push(FieldError::new(
                "channel",
                ErrorCode::NotAllowed,
                format!("the channel must be one of {}", known.join(", ")),
            ));
        }
        for (field, value) in [("ip", &req.ip), ("user_agent", &req.user_agent)] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_EVIDENCE_BYTES || v.chars().any(char::is_control)) {
                errors.push(FieldError::new(
                    format!("evidence.{field}"),
                    ErrorCode::InvalidFormat,
                    format!("at most {MAX_EVIDENCE_BYTES} bytes of text without control characters"),
                ));
            }
        }
        if let Some(ip) = &req.ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            errors.push(FieldError::new("evidence.ip", ErrorCode::InvalidFormat, "expected an IP address"));
        }
        if req.notice_text.as_ref().is_some_and(|t| t.len() > MAX_NOTICE_BYTES || t.trim().is_empty()) {
            errors.push(FieldError::new(
                "notice_text",
                ErrorCode::InvalidFormat,
                format!("the notice shown, 1 to {MAX_NOTICE_BYTES} bytes"),
            ));
        }
        if req.granted && req.notice_text.is_none() {
            errors.push(FieldError::new(
                "notice_text",
                ErrorCode::MissingRequired,
                "a grant records the exact notice the member was shown",
            ));
        }
        if !errors.is_empty() {
            return Err(EngineError::Invalid(errors));
        }
        // Only for a purpose the caller works for (the decision checks it):
        // a key for member management records no marketing consent.
        if request.is_none() {
            self.permit(caller, Operation::RecordConsent, Target::None, Some(&req.purpose), None, now).await?;
        }
        if let Some(shown) = &req.policy_version
            && *shown != policy.meta.version
        {
            return Err(EngineError::Conflict(format!(
                "version {shown:?} is no longer in force ({} is): show the member the current notice",
                policy.meta.version
            )));
        }
        let notice_hash = req.notice_text.as_ref().map(|t| custos_core::audit::hex(&crate::request_hash(t.as_bytes())));
        let evidence = (req.ip.is_some() || req.user_agent.is_some())
            .then(|| serde_json::json!({"ip": req.ip, "user_agent": req.user_agent}).to_string().into_bytes());
        let id = new_id("cns")?;
        let (at, caller, subject_id) = (stamp(now), caller.clone(), subject.to_owned());
        let request = request.map(str::to_owned);
        let (policy_arc, keyring, history) = (self.policy(), self.inner.keyring.clone(), self.policy_history());
        let rows = self
            .write_job(move |tx| {
                let policy = &*policy_arc;
                let op = Operation::RecordConsent;
                let (ask, purpose) = match &request {
                    Some(_) => (Operation::HandleRequest, None),
                    None => (op, Some(req.purpose.as_str())),
                };
                let (subject, _) = match gate::member(tx, policy, &caller, ask, &subject_id, purpose, None, &at)? {
                    Ok(found) => found,
                    Err(refused) => return Ok(Err(refused)),
                };
                // The evidence is sealed under the subject's own key, bound
                // to this entry: destroying the key destroys it.
                let (sealed, key_id) = match &evidence {
                    None => (None, None),
                    Some(plain) => {
                        let Some(key) = tx.key(&subject.profile_key)? else {
                            return Ok(Err(EngineError::Integrity("the subject's key is gone".into())));
                        };
                        let data_key = match keyring.unwrap_data_key(&key.id, &key.wrapped) {
                            Ok(k) => k,
                            Err(e) => return Ok(Err(e.into())),
                        };
                        let field = format!("consent:{id}");
                        let aad = Aad { owner: &subject.id, field: &field, key_id: &key.id, key_version: 1 };
                        let sealed = data_key.seal(&aad, plain).map_err(|e| StoreError::Database(e.to_string()))?;
                        (Some(sealed), Some(key.id))
                    }
                };
                let row = ConsentRow {
                    id: Some(id.clone()),
                    subject_id: subject.id.clone(),
                    purpose: req.purpose.clone(),
                    policy_version: policy.meta.version.clone(),
                    granted: req.granted,
                    channel: req.channel.clone(),
                    at: at.clone(),
                    notice_hash: notice_hash.clone(),
                    evidence: sealed,
                    key_id,
                };
                tx.insert_consent(&row)?;
                let rows = tx.consents(&subject.id)?;
                let state = current(&rows, &history, &req.purpose);
                Audit {
                    caller: &caller,
                    operation: op.as_str(),
                    purpose: Some(&req.purpose),
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: &format!(
                        "{} ({id}); now {}{}",
                        if req.granted { "granted" } else { "withdrawn" },
                        state.as_str(),
                        request.as_deref().map(|r| format!("; objection request {r}")).unwrap_or_default()
                    ),
                    at: &at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok(rows))
            })
            .await??;
        let ledger = self.ledger(subject, rows);
        let entry = ledger.history.last().cloned().ok_or(EngineError::NotFound)?;
        let receipt = self.receipt(&entry, subject, now)?;
        Ok(ConsentRecorded { entry, ledger, receipt })
    }

    /// The consent receipt of a ledger entry made under the current policy.
    /// The policy is named by a URN of its id and version until Custos
    /// publishes the rendered policy at an address of its own.
    pub(crate) fn receipt(
        &self,
        entry: &ConsentEntry,
        subject: &str,
        at: jiff::Timestamp,
    ) -> Result<serde_json::Value> {
        let policy = self.policy();
        let policy = &*policy;
        let policy_url = format!("urn:custos:policy:{}:{}", policy.meta.id, policy.meta.version);
        let id = entry.id.clone().unwrap_or_default();
        let facts = custos_core::receipt::ReceiptFacts {
            receipt_id: &id,
            at,
            subject,
            purpose: &entry.purpose,
            granted: entry.granted,
            channel: &entry.channel,
            policy_url: &policy_url,
            notice_hash: entry.notice_hash.as_deref(),
        };
        let receipt = custos_core::receipt::consent_receipt(policy, &facts).map_err(|e| {
            EngineError::Invalid(vec![FieldError::new("purpose", ErrorCode::NotAllowed, e.to_string())])
        })?;
        serde_json::to_value(&receipt).map_err(|e| EngineError::Integrity(format!("a consent receipt: {e}")))
    }

    /// A subject's consents now and the whole ledger; audited.
    pub async fn consents(&self, caller: &Caller, subject: &str, now: jiff::Timestamp) -> Result<ConsentLedger> {
        self.permit(caller, Operation::ReadConsents, Target::None, None, None, now).await?;
        let (at, caller, subject_id, policy) = (stamp(now), caller.clone(), subject.to_owned(), self.policy());
        let rows = self
            .write_job(move |tx| {
                let op = Operation::ReadConsents;
                let (subject, _) = match gate::member(tx, &policy, &caller, op, &subject_id, None, None, &at)? {
                    Ok(found) => found,
                    Err(refused) => return Ok(Err(refused)),
                };
                let rows = tx.consents(&subject.id)?;
                Audit {
                    caller: &caller,
                    operation: op.as_str(),
                    purpose: None,
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: &format!("{} ledger entries", rows.len()),
                    at: &at,
                    policy_version: &policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok(rows))
            })
            .await??;
        Ok(self.ledger(subject, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_evidence() {
        let c = NewConsent {
            purpose: "marketing".into(),
            granted: true,
            channel: "web_page".into(),
            notice_text: Some("We will send you offers.".into()),
            ip: Some("203.0.113.9".into()),
            user_agent: Some("Mozilla/5.0 canary".into()),
            policy_version: None,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("203.0.113.9") && !shown.contains("canary") && !shown.contains("offers"), "{shown}");
    }
}

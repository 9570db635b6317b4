//! Where every operation meets the access decision of `custos-core`
//! ([`custos_core::authz::decide`]): the engine asks before a job touches
//! personal data, again inside the job once the member's row is known, and
//! audits every refusal in a job of its own.

use custos_core::authz::{self, Allowed, Denied, Operation, Request, SubjectFacts, Target};
use custos_core::policy::Policy;
use custos_store::{StoreError, SubjectRow, WriteTx};

use crate::auth::Caller;
use crate::subjects::Audit;
use crate::{Engine, EngineError, ErrorCode, FieldError, Result, stamp};

/// The status a dormant member's row carries.
pub(crate) const DORMANT: &str = "dormant";
/// The status of a deleted account's tombstone (its held records remain).
pub(crate) const DELETED: &str = "deleted";

/// What a refusal becomes at the API.
pub(crate) fn refusal(denied: Denied) -> EngineError {
    match denied {
        Denied::Unauthenticated => EngineError::Unauthenticated,
        Denied::NotFound => EngineError::NotFound,
        Denied::Forbidden => EngineError::Forbidden("this caller's role or key does not allow this".into()),
        Denied::PurposeNotAllowed(p) => EngineError::PurposeNotAllowed(p),
        Denied::PurposeRequired => EngineError::Invalid(vec![FieldError::new(
            "purpose",
            ErrorCode::MissingRequired,
            "name the purpose of the read",
        )]),
        Denied::Read(r) => EngineError::ReadDenied(r),
    }
}

/// The decision's view of a member row (`None`: no such member).
pub(crate) fn subject_target(row: Option<&SubjectRow>) -> Target<'_> {
    match row {
        Some(s) => Target::Subject(SubjectFacts {
            service: s.service_id.as_deref(),
            dormant: s.status == DORMANT,
            deleted: s.status == DELETED,
        }),
        None => Target::Missing,
    }
}

/// One question about one caller.
pub(crate) fn ask(
    policy: &Policy,
    caller: &Caller,
    operation: Operation,
    target: Target<'_>,
    purpose: Option<&str>,
    items: Option<&[String]>,
) -> Result<Allowed, Denied> {
    authz::decide(policy, &Request { actor: caller.as_actor(), operation, target, purpose, items })
}

/// Inside a job: the member `id` if the caller may act on it, after the
/// full decision; a refusal is audited in the same job and returned.
#[allow(clippy::too_many_arguments)]
pub(crate) fn member(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    caller: &Caller,
    operation: Operation,
    id: &str,
    purpose: Option<&str>,
    items: Option<&[String]>,
    at: &str,
) -> Result<Result<(SubjectRow, Allowed), EngineError>, StoreError> {
    let row = tx.subject(id)?;
    match (ask(policy, caller, operation, subject_target(row.as_ref()), purpose, items), row) {
        (Ok(allowed), Some(row)) => Ok(Ok((row, allowed))),
        // A missing member is always refused; this arm is the same refusal.
        (Ok(_), None) => Ok(Err(EngineError::NotFound)),
        (Err(denied), _) => {
            Audit {
                caller,
                operation: operation.as_str(),
                purpose,
                subject: Some(id),
                items: &[],
                outcome: &format!("denied: {}", denied.code()),
                at,
                policy_version: &policy.meta.version,
            }
            .append(tx)?;
            Ok(Err(refusal(denied)))
        }
    }
}

impl Engine {
    /// Whether `caller` may read the audit log's checkpoints and proofs
    /// (`issue`: and have a checkpoint signed now).
    pub async fn permit_audit(&self, caller: &Caller, issue: bool, now: jiff::Timestamp) -> Result<()> {
        let op = if issue { Operation::IssueCheckpoint } else { Operation::ReadAudit };
        self.permit(caller, op, Target::None, None, None, now).await.map(|_| ())
    }

    /// Asks before any job: on a refusal, audits it (failing closed like any
    /// other write) and returns the error the caller gets.
    pub(crate) async fn permit(
        &self,
        caller: &Caller,
        operation: Operation,
        target: Target<'_>,
        purpose: Option<&str>,
        items: Option<&[String]>,
        now: jiff::Timestamp,
    ) -> Result<Allowed> {
        match ask(&self.policy(), caller, operation, target, purpose, items) {
            Ok(allowed) => Ok(allowed),
            Err(denied) => Err(self.audit_denial(caller, operation, None, purpose, denied, now).await),
        }
    }

    /// Writes the audit entry of a refusal and returns the refusal (or the
    /// storage error when even that cannot be written).
    pub(crate) async fn audit_denial(
        &self,
        caller: &Caller,
        operation: Operation,
        subject: Option<&str>,
        purpose: Option<&str>,
        denied: Denied,
        now: jiff::Timestamp,
    ) -> EngineError {
        let (caller, subject, purpose) = (caller.clone(), subject.map(str::to_owned), purpose.map(str::to_owned));
        let at = stamp(now);
        let version = self.policy().meta.version.clone();
        let outcome = format!("denied: {}", denied.code());
        let written = self
            .write_job(move |tx| {
                Audit {
                    caller: &caller,
                    operation: operation.as_str(),
                    purpose: purpose.as_deref(),
                    subject: subject.as_deref(),
                    items: &[],
                    outcome: &outcome,
                    at: &at,
                    policy_version: &version,
                }
                .append(tx)
                .map(|_| ())
            })
            .await;
        match written {
            Ok(()) => refusal(denied),
            Err(e) => e.into(),
        }
    }
}

/// Inside a job: whether `purpose` may use `subject`'s data now — the
/// consent its rule asks for (an opt-in purpose needs a current grant, an
/// opt-out one stops at an objection), and no restriction the member asked
/// for. A refusal is the audit outcome to write and the caller's error.
pub(crate) fn purpose_usable(
    tx: &WriteTx<'_>,
    policy: &Policy,
    history: &[std::sync::Arc<Policy>],
    subject: &str,
    purpose: &str,
) -> std::result::Result<std::result::Result<(), (&'static str, EngineError)>, StoreError> {
    let mode = policy.purpose_by_str(purpose).and_then(|p| p.consent.as_ref()).map(|c| c.mode);
    if let Some(mode) = mode
        && !crate::subjects::has_consent(tx, history, subject, purpose, mode)?
    {
        return Ok(Err(("denied: no consent", EngineError::ConsentRequired(purpose.to_owned()))));
    }
    if crate::requests::is_restricted(tx, policy, subject, purpose)? {
        return Ok(Err(("denied: restricted at the member's request", EngineError::Restricted(purpose.to_owned()))));
    }
    Ok(Ok(()))
}

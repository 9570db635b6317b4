//! Policy amendments at runtime: a new version is published with its
//! changes computed against the version in force, refused when its
//! effective date comes before the notice the version in force promises,
//! posted on the public notice board, a notification queued for members,
//! and made current on its effective date by [`Engine::activate_due`]. Grants
//! given under the old version for purposes the amendment widened then need
//! renewal (derived, `custos_core::consent`); unchanged purposes carry over.

use std::sync::Arc;

use custos_core::authz::{Operation, Target};
use custos_core::policy::{self, Policy};
use custos_store::{AmendmentRow, OutboxRow, PolicyVersionRow};

use crate::auth::Caller;
use crate::subjects::Audit;
use crate::{Engine, EngineError, ErrorCode, FieldError, Result, Versions, stamp, utc_date};

/// Largest policy text accepted (the parser's own limit).
const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// An amendment as the notice board shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub version: String,
    pub previous: String,
    pub announced_at: String,
    pub effective_date: String,
    /// Significant under the version in force when it was announced (the
    /// longer notice applies).
    pub significant: bool,
    pub changes: Vec<String>,
    /// When it took effect; `None` while announced.
    pub in_force_at: Option<String>,
    /// When a later announcement replaced it before its date.
    pub superseded_at: Option<String>,
}

fn notice(row: AmendmentRow) -> Notice {
    Notice {
        changes: serde_json::from_str(&row.changes).unwrap_or_default(),
        version: row.version,
        previous: row.previous,
        announced_at: row.announced_at,
        effective_date: row.effective_date,
        significant: row.significant,
        in_force_at: row.in_force_at,
        superseded_at: row.superseded_at,
    }
}

fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError::Invalid(vec![FieldError::new(field, code, message)])
}

impl Engine {
    /// Publishes a new policy version (the whole TOML text), announced now
    /// and taking effect on the effective date the text states.
    pub async fn publish_amendment(&self, caller: &Caller, text: &str, now: jiff::Timestamp) -> Result<Notice> {
        self.permit(caller, Operation::PublishAmendment, Target::None, None, None, now).await?;
        if text.len() > MAX_POLICY_BYTES {
            return Err(invalid("text", ErrorCode::TooLong, "a policy is at most 1 MiB"));
        }
        // Every problem of the new text, with its line and key path.
        let new = policy::parse(text).map_err(|e| {
            EngineError::Invalid(
                e.problems.iter().map(|p| FieldError::new("text", ErrorCode::InvalidFormat, p.to_string())).collect(),
            )
        })?;
        let current = self.policy();
        let announced = utc_date(now);
        let diff =
            policy::diff::diff(&current, &new, announced).map_err(|e| invalid("text", ErrorCode::NotAllowed, e))?;
        if !diff.effective_date_allowed() {
            let why = if diff.is_significant() { "a significant amendment" } else { "an amendment" };
            return Err(invalid(
                "text",
                ErrorCode::NotAllowed,
                format!(
                    "policy.effective_date {} is too early: {why} announced on {announced} takes effect on {} at the earliest",
                    diff.new_effective, diff.earliest_effective
                ),
            ));
        }
        if new.meta.notice_date != announced {
            return Err(invalid(
                "text",
                ErrorCode::NotAllowed,
                format!("policy.notice_date {} must be the day it is announced ({announced})", new.meta.notice_date),
            ));
        }
        if new.meta.effective_date <= announced {
            return Err(invalid(
                "text",
                ErrorCode::NotAllowed,
                format!(
                    "policy.effective_date {} must come after the announcement ({announced})",
                    new.meta.effective_date
                ),
            ));
        }
        let changes: Vec<String> = diff.changes.iter().map(|c| c.text.clone()).collect();
        let row = AmendmentRow {
            version: new.meta.version.clone(),
            text: text.to_owned(),
            previous: current.meta.version.clone(),
            announced_at: stamp(now),
            effective_date: new.meta.effective_date.to_string(),
            significant: diff.is_significant(),
            changes: serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into()),
            in_force_at: None,
            superseded_at: None,
        };
        let outbox = OutboxRow {
            kind: "amendment_notice".into(),
            subject: None,
            body: serde_json::json!({
                "version": row.version, "effective_date": row.effective_date, "significant": row.significant,
            })
            .to_string(),
            created_at: row.announced_at.clone(),
        };
        let (caller, stored, history) = (caller.clone(), row.clone(), self.policy_history());
        self.write_job(move |tx| {
            let known = history.iter().any(|p| p.meta.version == stored.version)
                || tx.amendments()?.iter().any(|a| a.version == stored.version);
            // The diff was made against the version in force; it must still be.
            let moved = tx.policy_versions()?.last().is_some_and(|v| v.version != stored.previous);
            let outcome = if known || moved {
                "denied: conflict".to_owned()
            } else {
                format!("announced {} for {}", stored.version, stored.effective_date)
            };
            Audit {
                caller: &caller,
                operation: Operation::PublishAmendment.as_str(),
                purpose: None,
                subject: None,
                items: &[],
                outcome: &outcome,
                at: &stored.announced_at,
                policy_version: &stored.previous,
            }
            .append(tx)?;
            if known {
                let message =
                    format!("version {} was published before: give the amendment a new version", stored.version);
                return Ok(Err(EngineError::Conflict(message)));
            }
            // A newer announcement replaces one not yet in force: its own
            // notice period runs from now, against the version in force.
            tx.supersede_pending_amendments(&stored.announced_at)?;
            tx.insert_amendment(&stored)?;
            tx.insert_outbox(&outbox)?;
            Ok(Ok(()))
        })
        .await??;
        Ok(notice(row))
    }

    /// The notice board: every amendment, newest first. Public.
    pub async fn notices(&self) -> Result<Vec<Notice>> {
        let rows = self.inner.store.read(|r| r.amendments()).await?;
        Ok(rows.into_iter().rev().map(notice).collect())
    }

    /// Makes current every announced amendment whose effective date has
    /// come by `now` (UTC), in order; returns the versions now in force.
    pub async fn activate_due(&self, now: jiff::Timestamp) -> Result<Vec<String>> {
        let today = utc_date(now);
        let known = self.policy_history();
        let due: Vec<AmendmentRow> = self
            .inner
            .store
            .read(|r| r.amendments())
            .await?
            .into_iter()
            // Not yet in force here: this process may be behind a node that
            // brought it into force already.
            .filter(|a| !known.iter().any(|p| p.meta.version == a.version))
            .filter(|a| a.superseded_at.is_none())
            .filter(|a| a.effective_date.parse::<jiff::civil::Date>().is_ok_and(|d| d <= today))
            .collect();
        let mut activated = Vec::new();
        for row in due {
            // A stored text this release can no longer read stays announced
            // (and logged) without holding back the others.
            let new = match policy::parse(&row.text) {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    tracing::error!(version = %row.version, error = %e, "an announced amendment no longer parses");
                    continue;
                }
            };
            let (at, version, previous) = (stamp(now), row.version.clone(), self.policy().meta.version.clone());
            let text = row.text.clone();
            if row.previous != previous {
                // Announced against a version no longer in force (a new
                // file was deployed meanwhile): its notice is void.
                tracing::warn!(version = %row.version, amends = %row.previous, in_force = %previous,
                    "an announced amendment amends a version no longer in force; not brought into force");
                continue;
            }
            let in_force = self
                .write_job(move |tx| {
                    if !tx.set_amendment_in_force(&version, &at)? {
                        // Already in force (another node), or superseded.
                        return Ok(tx.amendments()?.iter().any(|a| a.version == version && a.in_force_at.is_some()));
                    }
                    tx.insert_policy_version(&PolicyVersionRow {
                        version: version.clone(),
                        text,
                        in_force_at: at.clone(),
                    })?;
                    tx.append_audit(&crate::audit::row(custos_core::audit::Entry {
                        at: at.clone(),
                        actor: "custos".into(),
                        role: "scheduler".into(),
                        operation: "policy_in_force".into(),
                        purpose: None,
                        subject: None,
                        items: String::new(),
                        outcome: format!("{version} replaces {previous}"),
                        policy_version: version.clone(),
                    }))?;
                    Ok(true)
                })
                .await?;
            if !in_force {
                continue;
            }
            // Swapped here whether this call or another node's brought it
            // into force: every process serves the version in force.
            let mut versions = self.inner.versions.write().unwrap_or_else(|e| e.into_inner());
            if versions.current.meta.version != row.version {
                let mut history: Vec<Arc<Policy>> = versions.history.as_ref().clone();
                history.push(new.clone());
                *versions = Versions { current: new, history: Arc::new(history) };
                activated.push(row.version);
            }
        }
        Ok(activated)
    }
}

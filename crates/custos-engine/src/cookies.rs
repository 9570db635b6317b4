//! Cookie consent per category of the policy's `[cookies]`: choices of
//! anonymous visitors (a random visitor id), Global Privacy Control honoured
//! and recorded, and a visitor's choices linked to a member at sign-in. The
//! state is derived from the append-only rows by `custos_core::cookies`.
//!
//! Decisions:
//! - recording and reading a visitor's choices takes no credential: a
//!   cookie banner on a public page calls it. It is bounded (the body
//!   limit, [`rules::MAX_CHOICES`] choices per call, visitor ids checked
//!   strictly) and stores nothing but the random id, the choices, the GPC
//!   flag, the policy version and the time: no IP address or user agent;
//! - anonymous choices are not audited: they are not personal data of a
//!   known subject, the audit log records accesses to members' data, and an
//!   entry per banner click from every visitor of a public page would bury
//!   those. The append-only table is their record;
//! - linking a visitor to a member and reading a member's cookie consents
//!   go through the access decision like every operation on a member
//!   (`RecordConsent`, `ReadConsents`) and are audited with it
//!   (`cookie_consent_link`, `cookie_consent_read`; refusals under the
//!   operation's own name, like every refusal);
//! - a GPC signal is recorded once per change: when a request carries it and
//!   a `gpc_opts_out` category's latest entry is not already its opt-out
//!   (also on a read of a known visitor, which then writes).
//! - recording choices answers a consent receipt (Kantara Consent Receipt
//!   v1.1, `custos_core::receipt::cookie_receipt`) of the entries the call
//!   appended: the visitor's choices and the GPC opt-outs recorded with
//!   them, one purpose each, under a fresh `rcp_` id, the visitor id as the
//!   principal and the policy as `urn:custos:policy:<id>:<version>`. A call
//!   that appended nothing (no choice, or only grants of strictly necessary
//!   categories, and no new GPC signal) answers none: there was no consent
//!   event. The receipt is not stored (the rows are the record); a GPC
//!   signal recorded by a read answers no receipt either.

use custos_core::authz::{Operation, Target};
use custos_core::cookies::{self as rules, Entry, Source};
use custos_core::policy::Policy;
use custos_core::receipt::{CookieReceiptChoice, CookieReceiptFacts, cookie_receipt};
use custos_store::CookieConsentRow;

use crate::auth::Caller;
use crate::ids::new_id;
use crate::subjects::Audit;
use crate::{Engine, EngineError, ErrorCode, FieldError, Result, gate, stamp};

/// The prefix of visitor ids.
const VISITOR_PREFIX: &str = "vis_";

/// Whether `id` is a visitor id as issued: `vis_` and 32 lower-case hex
/// digits.
pub fn is_visitor_id(id: &str) -> bool {
    id.strip_prefix(VISITOR_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn check_visitor(id: &str) -> Result<()> {
    if is_visitor_id(id) {
        Ok(())
    } else {
        Err(EngineError::Invalid(vec![FieldError::new(
            "visitor",
            ErrorCode::InvalidFormat,
            "a visitor id as issued: \"vis_\" and 32 lower-case hexadecimal digits",
        )]))
    }
}

/// One category's state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieCategoryState {
    pub id: String,
    pub name: String,
    pub description: String,
    pub necessary: bool,
    /// Whether the policy lists it in `gpc_opts_out`.
    pub gpc_opt_out: bool,
    pub granted: bool,
    /// Why: `necessary`, `choice`, `gpc` or `not_chosen`.
    pub basis: &'static str,
}

/// One row of a ledger, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieEntry {
    pub category: String,
    pub granted: bool,
    /// `choice` or `gpc`.
    pub source: String,
    pub gpc: bool,
    pub policy_version: String,
    pub at: String,
}

/// A visitor's or a member's cookie consent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConsent {
    /// The visitor asked about (`None`: a visitor without an id yet, or a
    /// member).
    pub visitor: Option<String>,
    /// The member asked about.
    pub subject: Option<String>,
    /// Whether this request carried `Sec-GPC: 1`.
    pub gpc: bool,
    /// Whether a GPC signal was ever recorded: an opt-out of sale and
    /// sharing.
    pub gpc_recorded: bool,
    pub policy_version: String,
    /// Every category of the policy, in its order.
    pub categories: Vec<CookieCategoryState>,
    /// The rows it was derived from, oldest first.
    pub history: Vec<CookieEntry>,
}

/// What linking answers: how many rows were linked, and the member's
/// cookie consent after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieLinked {
    pub linked: usize,
    pub consent: CookieConsent,
}

fn entries(rows: &[CookieConsentRow]) -> Vec<Entry<'_>> {
    rows.iter()
        .map(|r| Entry {
            category: &r.category,
            granted: r.granted,
            // An unknown source never grants: read it as a GPC opt-out.
            source: Source::parse(&r.source).unwrap_or(Source::Gpc),
            gpc: r.gpc,
        })
        .collect()
}

/// The rows a GPC signal adds to `rows` now (none without the signal).
fn gpc_rows(policy: &Policy, visitor: &str, rows: &[CookieConsentRow], gpc: bool, at: &str) -> Vec<CookieConsentRow> {
    rules::gpc_signals_to_record(policy.cookies.as_ref(), &entries(rows), gpc)
        .into_iter()
        .map(|id| CookieConsentRow {
            visitor_id: visitor.to_owned(),
            subject_id: None,
            category: id.to_string(),
            granted: false,
            source: Source::Gpc.as_str().to_owned(),
            gpc: true,
            policy_version: policy.meta.version.clone(),
            at: at.to_owned(),
        })
        .collect()
}

fn consent(
    policy: &Policy,
    visitor: Option<String>,
    subject: Option<String>,
    rows: Vec<CookieConsentRow>,
    gpc: bool,
) -> CookieConsent {
    let ledger = entries(&rows);
    let categories = rules::states(policy.cookies.as_ref(), &ledger, gpc)
        .into_iter()
        .map(|s| CookieCategoryState {
            id: s.category.id.to_string(),
            name: s.category.name.clone(),
            description: s.category.description.clone(),
            necessary: s.category.necessary,
            gpc_opt_out: s.gpc_opt_out,
            granted: s.granted,
            basis: s.basis.as_str(),
        })
        .collect();
    let gpc_recorded = gpc || rules::gpc_recorded(&ledger);
    CookieConsent {
        visitor,
        subject,
        gpc,
        gpc_recorded,
        policy_version: policy.meta.version.clone(),
        categories,
        history: rows
            .into_iter()
            .map(|r| CookieEntry {
                category: r.category,
                granted: r.granted,
                source: r.source,
                gpc: r.gpc,
                policy_version: r.policy_version,
                at: r.at,
            })
            .collect(),
    }
}

/// The refusal of a call's choices, every problem listed.
fn refused(problems: Vec<rules::Problem>) -> EngineError {
    EngineError::Invalid(
        problems
            .into_iter()
            .map(|p| {
                let field = p.category().map_or_else(|| "choices".to_owned(), |id| format!("choices.{id}"));
                let code = match p {
                    rules::Problem::TooMany => ErrorCode::TooLong,
                    rules::Problem::NotAnId => ErrorCode::InvalidFormat,
                    rules::Problem::Unknown(_) => ErrorCode::UnknownItem,
                    rules::Problem::Necessary(_) => ErrorCode::NotAllowed,
                    rules::Problem::Twice(_) => ErrorCode::DuplicateItem,
                };
                FieldError::new(field, code, p.message())
            })
            .collect(),
    )
}

/// The consent receipt (JSON) of the last `recorded` of a visitor's rows,
/// the entries one call appended; `None` when it appended none.
fn receipt(
    policy: &Policy,
    visitor: &str,
    rows: &[CookieConsentRow],
    recorded: usize,
    gpc: bool,
    now: jiff::Timestamp,
) -> Result<Option<serde_json::Value>> {
    let Some(first) = rows.len().checked_sub(recorded).filter(|_| recorded > 0) else { return Ok(None) };
    let choices: Vec<CookieReceiptChoice<'_>> = rows[first..]
        .iter()
        .enumerate()
        .map(|(i, row)| CookieReceiptChoice {
            category: &row.category,
            granted: row.granted,
            // The latest earlier entry for the category, this call's included.
            was_granted: rows[..first + i].iter().rev().find(|r| r.category == row.category).is_some_and(|r| r.granted),
            source: Source::parse(&row.source).unwrap_or(Source::Gpc),
        })
        .collect();
    let (id, policy_url) = (new_id("rcp")?, format!("urn:custos:policy:{}:{}", policy.meta.id, policy.meta.version));
    let facts = CookieReceiptFacts {
        receipt_id: &id,
        at: now,
        principal: visitor,
        choices: &choices,
        gpc,
        policy_url: &policy_url,
    };
    let receipt =
        cookie_receipt(policy, &facts).map_err(|e| EngineError::Integrity(format!("a cookie consent receipt: {e}")))?;
    serde_json::to_value(&receipt)
        .map(Some)
        .map_err(|e| EngineError::Integrity(format!("a cookie consent receipt: {e}")))
}

impl Engine {
    /// Records an anonymous visitor's choices (category → granted) and,
    /// when the request carries GPC, the signal; returns the visitor's
    /// state after it and the consent receipt (Kantara Consent Receipt v1.1,
    /// JSON) of the entries recorded, `None` when the call recorded none
    /// (no choice, or only strictly necessary categories turned on, and no
    /// new GPC signal). Without `visitor`, a new visitor id is issued. Any
    /// invalid choice refuses the whole call, and nothing is written.
    pub async fn record_cookie_choice(
        &self,
        visitor: Option<&str>,
        choices: &[(String, bool)],
        gpc: bool,
        now: jiff::Timestamp,
    ) -> Result<(CookieConsent, Option<serde_json::Value>)> {
        if let Some(v) = visitor {
            check_visitor(v)?;
        }
        let policy = self.policy();
        let chosen: Vec<(String, bool)> = rules::check_choices(policy.cookies.as_ref(), choices)
            .map_err(refused)?
            .into_iter()
            .map(|(c, g)| (c.to_owned(), g))
            .collect();
        let visitor = match visitor {
            Some(v) => v.to_owned(),
            None => new_id("vis")?,
        };
        let (at, id, job_policy) = (stamp(now), visitor.clone(), policy.clone());
        let (rows, recorded) = self
            .write_job(move |tx| {
                let mut recorded = chosen.len();
                for (category, granted) in chosen {
                    tx.insert_cookie_consent(&CookieConsentRow {
                        visitor_id: id.clone(),
                        subject_id: None,
                        category,
                        granted,
                        source: Source::Choice.as_str().to_owned(),
                        gpc,
                        policy_version: job_policy.meta.version.clone(),
                        at: at.clone(),
                    })?;
                }
                let rows = tx.cookie_consents_of_visitor(&id)?;
                for row in gpc_rows(&job_policy, &id, &rows, gpc, &at) {
                    tx.insert_cookie_consent(&row)?;
                    recorded += 1;
                }
                // The visitor's rows in order: this job's are the last ones.
                Ok((tx.cookie_consents_of_visitor(&id)?, recorded))
            })
            .await?;
        let receipt = receipt(&policy, &visitor, &rows, recorded, gpc, now)?;
        Ok((consent(&policy, Some(visitor), None, rows, gpc), receipt))
    }

    /// A visitor's state now (every category off but the necessary ones
    /// for a visitor without an id or without choices). A GPC signal on
    /// the request is honoured and, for a known visitor, recorded.
    pub async fn cookie_state(&self, visitor: Option<&str>, gpc: bool, now: jiff::Timestamp) -> Result<CookieConsent> {
        let policy = self.policy();
        let Some(visitor) = visitor else {
            return Ok(consent(&policy, None, None, Vec::new(), gpc));
        };
        check_visitor(visitor)?;
        let id = visitor.to_owned();
        let rows = self.inner.store.read(move |r| r.cookie_consents_of_visitor(&id)).await?;
        let at = stamp(now);
        // A visitor nobody has seen is not written into being by a read.
        if rows.is_empty() || gpc_rows(&policy, visitor, &rows, gpc, &at).is_empty() {
            return Ok(consent(&policy, Some(visitor.to_owned()), None, rows, gpc));
        }
        let (id, job_policy) = (visitor.to_owned(), policy.clone());
        let rows = self
            .write_job(move |tx| {
                let rows = tx.cookie_consents_of_visitor(&id)?;
                for row in gpc_rows(&job_policy, &id, &rows, gpc, &at) {
                    tx.insert_cookie_consent(&row)?;
                }
                tx.cookie_consents_of_visitor(&id)
            })
            .await?;
        Ok(consent(&policy, Some(visitor.to_owned()), None, rows, gpc))
    }

    /// Links a visitor's choices to the member `subject` (at sign-in): the
    /// visitor's rows no member holds yet become the member's. A visitor
    /// without such rows links nothing and is no error. Audited.
    pub async fn link_visitor(
        &self,
        caller: &Caller,
        subject: &str,
        visitor: &str,
        now: jiff::Timestamp,
    ) -> Result<CookieLinked> {
        check_visitor(visitor)?;
        let op = Operation::RecordConsent;
        self.permit(caller, op, Target::None, None, None, now).await?;
        let (at, caller, subject_id, visitor_id, policy) =
            (stamp(now), caller.clone(), subject.to_owned(), visitor.to_owned(), self.policy());
        let job_policy = policy.clone();
        let (linked, rows) = self
            .write_job(move |tx| {
                let (subject, _) = match gate::member(tx, &job_policy, &caller, op, &subject_id, None, None, &at)? {
                    Ok(found) => found,
                    Err(refused) => return Ok(Err(refused)),
                };
                let linked = tx.link_cookie_consents(&visitor_id, &subject.id, &at)?;
                Audit {
                    caller: &caller,
                    operation: "cookie_consent_link",
                    purpose: None,
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: &format!("{linked} cookie consent entries of a visitor linked"),
                    at: &at,
                    policy_version: &job_policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok((linked, tx.cookie_consents_of_subject(&subject.id)?)))
            })
            .await??;
        Ok(CookieLinked { linked, consent: consent(&policy, None, Some(subject.to_owned()), rows, false) })
    }

    /// A member's cookie consent: the state derived from every visitor
    /// linked to them, and the rows. Audited.
    pub async fn member_cookie_consent(
        &self,
        caller: &Caller,
        subject: &str,
        now: jiff::Timestamp,
    ) -> Result<CookieConsent> {
        let op = Operation::ReadConsents;
        self.permit(caller, op, Target::None, None, None, now).await?;
        let (at, caller, subject_id, policy) = (stamp(now), caller.clone(), subject.to_owned(), self.policy());
        let job_policy = policy.clone();
        let rows = self
            .write_job(move |tx| {
                let (subject, _) = match gate::member(tx, &job_policy, &caller, op, &subject_id, None, None, &at)? {
                    Ok(found) => found,
                    Err(refused) => return Ok(Err(refused)),
                };
                let rows = tx.cookie_consents_of_subject(&subject.id)?;
                Audit {
                    caller: &caller,
                    operation: "cookie_consent_read",
                    purpose: None,
                    subject: Some(&subject.id),
                    items: &[],
                    outcome: &format!("{} cookie consent entries", rows.len()),
                    at: &at,
                    policy_version: &job_policy.meta.version,
                }
                .append(tx)?;
                Ok(Ok(rows))
            })
            .await??;
        Ok(consent(&policy, None, Some(subject.to_owned()), rows, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_ids_are_checked_strictly() {
        assert!(is_visitor_id("vis_0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "vis_",
            "vis_0123456789ABCDEF0123456789abcdef",
            "vis_0123456789abcdef0123456789abcde",
            "vis_0123456789abcdef0123456789abcdef0",
            "sub_0123456789abcdef0123456789abcdef",
            "vis_0123456789abcdef0123456789abcdeg",
            " vis_0123456789abcdef0123456789abcdef",
        ] {
            assert!(!is_visitor_id(bad), "{bad:?}");
        }
    }
}

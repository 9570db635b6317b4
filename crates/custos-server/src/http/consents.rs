//! `/v1/subjects/{id}/consents`: the consent ledger. A grant and a
//! withdrawal are the same call; the answer carries the entry, the
//! subject's consents after it, and the consent receipt.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use custos_engine::{ConsentEntry, ConsentLedger, NewConsent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/subjects/{id}/consents", post(record).get(ledger))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordConsent {
    /// A purpose of the policy that rests on consent.
    pub(crate) purpose: String,
    /// `true` grants, `false` withdraws; both take effect at once.
    pub(crate) granted: bool,
    /// How it was given: a channel the policy declares (b.stage: `web_page`,
    /// `email`, `fax`, `telephone`, `writing`, `other_means`).
    pub(crate) channel: String,
    /// The exact text the member was shown (required for a grant); only
    /// its SHA-256 is kept.
    pub(crate) notice_text: Option<String>,
    /// The member's side of the exchange, kept encrypted.
    pub(crate) evidence: Option<Evidence>,
    /// The policy version whose notice the member was shown; when given and
    /// another version is in force, the consent is refused (409).
    pub(crate) policy_version: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Evidence {
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
}

/// One entry of a member's consent ledger (documented as `LedgerEntry`:
/// the cookie choices have an `Entry` of their own).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LedgerEntry)]
pub(crate) struct Entry {
    pub(crate) id: Option<String>,
    pub(crate) purpose: String,
    pub(crate) granted: bool,
    pub(crate) channel: String,
    /// The policy version in force when it was given.
    pub(crate) policy_version: String,
    pub(crate) at: String,
    pub(crate) notice_hash: Option<String>,
    /// Whether an IP address or user agent is kept (encrypted) with it.
    pub(crate) evidence_kept: bool,
}

impl From<ConsentEntry> for Entry {
    fn from(e: ConsentEntry) -> Entry {
        Entry {
            id: e.id,
            purpose: e.purpose,
            granted: e.granted,
            channel: e.channel,
            policy_version: e.policy_version,
            at: e.at,
            notice_hash: e.notice_hash,
            evidence_kept: e.evidence_kept,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    pub(crate) purpose: String,
    /// `granted`, `withdrawn`, `not_given` or `needs_renewal`.
    pub(crate) state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ledger {
    pub(crate) subject: String,
    /// The policy version in force now.
    pub(crate) policy_version: String,
    /// Every purpose of the policy that rests on consent, and its state now.
    pub(crate) current: Vec<Status>,
    /// Every entry, oldest first.
    pub(crate) history: Vec<Entry>,
}

impl From<ConsentLedger> for Ledger {
    fn from(l: ConsentLedger) -> Ledger {
        Ledger {
            subject: l.subject,
            policy_version: l.policy_version,
            current: l
                .current
                .into_iter()
                .map(|s| Status { purpose: s.purpose, state: s.state.as_str().to_owned() })
                .collect(),
            history: l.history.into_iter().map(Entry::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Recorded {
    pub(crate) entry: Entry,
    pub(crate) consents: Ledger,
    /// The consent receipt (Kantara Consent Receipt v1.1).
    #[schema(value_type = Object)]
    pub(crate) receipt: serde_json::Value,
}

#[utoipa::path(post, path = "/v1/subjects/{id}/consents", tag = "consents", request_body = RecordConsent,
    params(("id" = String, Path, description = "subject id")),
    responses((status = 201, body = Recorded), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn record(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<RecordConsent>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let r = body.value;
    let evidence = r.evidence.unwrap_or(Evidence { ip: None, user_agent: None });
    let req = NewConsent {
        purpose: r.purpose,
        granted: r.granted,
        channel: r.channel,
        notice_text: r.notice_text,
        ip: evidence.ip,
        user_agent: evidence.user_agent,
        policy_version: r.policy_version,
    };
    let done = state.engine.record_consent(&caller, &id, req, state.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Recorded { entry: done.entry.into(), consents: done.ledger.into(), receipt: done.receipt }),
    ))
}

#[utoipa::path(get, path = "/v1/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, description = "subject id")),
    responses((status = 200, body = Ledger), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn ledger(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Ledger>, ApiError> {
    Ok(Json(state.engine.consents(&caller, &id, state.clock.now()).await?.into()))
}

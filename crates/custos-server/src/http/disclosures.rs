//! Hand-overs of a member's data, each on the record:
//! `/v1/subjects/{id}/provisions` (a third party, on a lawful basis; staff
//! who work the queue), `/v1/subjects/{id}/handovers` (a processor, for its
//! declared duty; the platform's backend), and `/v1/policy/processing`
//! (records of processing activities, GDPR Art. 30, from the policy).

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use custos_core::provision::ProvisionBasis;
use custos_engine::disclosures::{Disclosed, NewHandover, NewProvision};
use custos_engine::{EngineError, ErrorCode, FieldError};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subjects/{id}/provisions", post(provide))
        .route("/v1/subjects/{id}/handovers", post(hand_over))
        .route("/v1/policy/processing", get(processing))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Basis {
    /// `consent` (with `consent_id`), `legal_obligation` (with `citation`
    /// and `document`) or `vital_interest` (with `justification`): one the
    /// policy's `[third_parties]` allows.
    pub(crate) kind: String,
    /// The member's consent in the ledger (its id): current, granted, an
    /// opt-in consent whose purpose covers every item.
    pub(crate) consent_id: Option<String>,
    /// The provision of law that compels the provision.
    pub(crate) citation: Option<String>,
    /// The document that compels it (a warrant, an order, a letter).
    pub(crate) document: Option<String>,
    /// Why the member's life or safety is in imminent danger.
    pub(crate) justification: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Provide {
    /// Who receives the data (a company, an authority).
    pub(crate) recipient: String,
    /// The recipient's id, when the policy names its recipients.
    pub(crate) recipient_id: Option<String>,
    /// The items to provide (item ids of the policy).
    pub(crate) items: Vec<String>,
    /// What the recipient will use them for.
    pub(crate) purpose: String,
    /// The recipient uses them for its own direct marketing (California's
    /// list of such recipients).
    #[serde(default)]
    pub(crate) marketing: bool,
    pub(crate) basis: Basis,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandOver {
    /// A processor of the policy's register (b.stage: `cj_olivenetworks`
    /// for SMS), or a recipient of its transfers (`bemyfriends_inc_us`).
    pub(crate) recipient: String,
    /// The items to hand over: only those the recipient's declared duty
    /// covers, and the purpose too.
    pub(crate) items: Vec<String>,
    /// The purpose the hand-over serves (b.stage: `member_management` for a
    /// sign-in SMS): one the caller works for, covering the items; its
    /// consent and any restriction apply as for a read.
    pub(crate) purpose: String,
    /// The member's jurisdiction (a policy id); absent: the policy's own.
    /// It decides whether the hand-over is a transfer, and on which basis.
    pub(crate) jurisdiction: Option<String>,
}

fn invalid(field: &str, code: ErrorCode, message: String) -> ApiError {
    ApiError::from(EngineError::Invalid(vec![FieldError::new(field, code, message)]))
}

fn basis(b: Basis) -> Result<ProvisionBasis, ApiError> {
    let missing = |field: &'static str| {
        invalid(&format!("basis.{field}"), ErrorCode::MissingRequired, format!("required for a {} basis", b.kind))
    };
    let extra = |field: &'static str| {
        invalid(&format!("basis.{field}"), ErrorCode::NotAllowed, format!("not part of a {} basis", b.kind))
    };
    let parsed = match b.kind.as_str() {
        "consent" => ProvisionBasis::Consent { consent_id: b.consent_id.clone().ok_or_else(|| missing("consent_id"))? },
        "legal_obligation" => ProvisionBasis::LegalObligation {
            citation: b.citation.clone().ok_or_else(|| missing("citation"))?,
            document: b.document.clone().ok_or_else(|| missing("document"))?,
        },
        "vital_interest" => ProvisionBasis::VitalInterest {
            justification: b.justification.clone().ok_or_else(|| missing("justification"))?,
        },
        other => {
            return Err(invalid(
                "basis.kind",
                ErrorCode::NotAllowed,
                format!("no provision basis {other:?}: consent, legal_obligation or vital_interest"),
            ));
        }
    };
    // A field of another basis is a mistake worth saying, not ignoring.
    let stray: Vec<(&'static str, &Option<String>)> = match &parsed {
        ProvisionBasis::Consent { .. } => {
            vec![("citation", &b.citation), ("document", &b.document), ("justification", &b.justification)]
        }
        ProvisionBasis::LegalObligation { .. } => {
            vec![("consent_id", &b.consent_id), ("justification", &b.justification)]
        }
        ProvisionBasis::VitalInterest { .. } => {
            vec![("consent_id", &b.consent_id), ("citation", &b.citation), ("document", &b.document)]
        }
    };
    if let Some((field, _)) = stray.iter().find(|(_, v)| v.is_some()) {
        return Err(extra(field));
    }
    Ok(parsed)
}

#[utoipa::path(post, path = "/v1/subjects/{id}/provisions", tag = "disclosures", params(("id" = String, Path)),
    request_body = Provide,
    responses((status = 201, description = "the register entry and the values provided", body = Object),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn provide(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Provide>,
) -> Result<(StatusCode, Json<Disclosed>), ApiError> {
    let p = body.value;
    let req = NewProvision {
        recipient: p.recipient,
        recipient_id: p.recipient_id,
        items: p.items,
        purpose: p.purpose,
        marketing: p.marketing,
        basis: basis(p.basis)?,
    };
    let done = state.engine.provide(&caller, &id, req, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

#[utoipa::path(post, path = "/v1/subjects/{id}/handovers", tag = "disclosures", params(("id" = String, Path)),
    request_body = HandOver,
    responses((status = 201, description = "the register entry (with the transfer, abroad) and the values handed over", body = Object),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn hand_over(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<HandOver>,
) -> Result<(StatusCode, Json<Disclosed>), ApiError> {
    let h = body.value;
    let req = NewHandover { recipient: h.recipient, items: h.items, purpose: h.purpose, jurisdiction: h.jurisdiction };
    let done = state.engine.hand_over(&caller, &id, req, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

#[utoipa::path(get, path = "/v1/policy/processing", tag = "disclosures",
    responses((status = 200, description = "records of processing activities (GDPR Art. 30) drawn from the policy in force", body = Object),
        (status = 401, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn processing(
    State(state): State<AppState>,
    Authed(_caller): Authed,
) -> Json<custos_core::provision::Ropa> {
    Json(custos_core::provision::records_of_processing(&state.engine.policy()))
}

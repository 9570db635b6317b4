//! `/v1/requests`: members' rights requests — filed by the platform's
//! backend or by staff, verified by a one-time code (which the member
//! types where they asked: that call needs no credential), worked by staff
//! in a queue against their deadlines, answered by doing what was asked.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use custos_engine::requests::{Filed, NewAgent, NewRequest, RequestDetail, RequestView, Verification};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

/// The filing route takes a letter of attorney, so its body may be larger
/// than the server's default limit: the letter's limit, in base64, and room
/// for the rest.
const FILING_BODY_BYTES: usize = custos_engine::requests::MAX_LETTER_BYTES / 3 * 4 + 64 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/requests", post(file).get(list).layer(DefaultBodyLimit::max(FILING_BODY_BYTES)))
        .route("/v1/requests/{id}", get(detail))
        .route("/v1/requests/{id}/code", post(code))
        .route("/v1/requests/{id}/verify", post(verify))
        .route("/v1/requests/{id}/assign", post(assign))
        .route("/v1/requests/{id}/extend", post(extend))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/fulfil", post(fulfil))
        .route("/v1/requests/{id}/lift", post(lift))
        .route("/v1/requests/{id}/outcome", get(outcome))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRequest {
    /// `access`, `export`, `correction`, `deletion`, `restriction`,
    /// `object_marketing`, `opt_out_sale` or `know`; or `complaint` or
    /// `inquiry` (with `collection_point`, `items` and `keep_as`).
    pub(crate) kind: String,
    /// The channel it came through: a channel the policy declares (b.stage:
    /// `web_page`, `email`, `fax`, `telephone`, `writing`, `other_means`).
    pub(crate) channel: String,
    /// The member's jurisdiction (a policy id, e.g. `kr`, `eea_uk_ch`,
    /// `us_ca`); absent: the policy's own. It sets the deadlines.
    pub(crate) jurisdiction: Option<String>,
    /// The member's id (a complaint or inquiry may come from someone who
    /// is not a member).
    pub(crate) subject: Option<String>,
    /// Rights requests: `code`: a one-time code goes to the member's e-mail
    /// address on file; `platform_session`: the platform's backend vouches
    /// that the member is signed in on its site (API keys only); `staff`: a
    /// staff member checks (an agent's letter of attorney, a signed letter).
    pub(crate) verification: Option<String>,
    /// Complaints and inquiries: the collection point of the policy that
    /// takes what the person wrote (b.stage: `business_operator_service_inquiry`).
    pub(crate) collection_point: Option<String>,
    /// Complaints and inquiries: item id → value, as the point collects them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) items: BTreeMap<String, String>,
    /// Complaints and inquiries: the record class of the policy they are
    /// kept as (b.stage: `complaint_dispute_records`, 3 years); destroyed at
    /// the end of its span from the day received.
    pub(crate) keep_as: Option<String>,
    /// When an agent acts for the member.
    pub(crate) agent: Option<Agent>,
    /// Restriction: the purposes to stop (absent: all); objection to
    /// marketing: the consents to withdraw (absent: every consent).
    #[serde(default)]
    pub(crate) purposes: Vec<String>,
    /// Correction: item id → the corrected value.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) corrections: BTreeMap<String, String>,
    /// What the requester wrote.
    pub(crate) note: Option<String>,
    /// Staff logging a request that arrived earlier (a letter): the day it
    /// arrived, `YYYY-MM-DD`. Deadlines count from it.
    pub(crate) received_on: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Agent {
    pub(crate) name: String,
    pub(crate) contact: String,
    /// The letter of attorney, base64 (standard alphabet, padded).
    pub(crate) letter: String,
    /// `application/pdf`, `image/png`, `image/jpeg` or `text/plain`.
    pub(crate) letter_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Request {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) channel: String,
    pub(crate) jurisdiction: String,
    /// `member` or `agent`.
    pub(crate) requester: String,
    /// `received`, `verified`, `in_progress`, `fulfilled` or `denied`.
    pub(crate) status: String,
    pub(crate) subject: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) received_at: String,
    /// The last day to acknowledge receipt (California), UTC.
    pub(crate) acknowledge_by: Option<String>,
    /// The last day to answer, UTC; absent when the policy states none.
    pub(crate) answer_by: Option<String>,
    /// The extended last day, once extended.
    pub(crate) extended_by: Option<String>,
    pub(crate) acknowledged_at: Option<String>,
    /// `code`, `platform_session` or `staff`.
    pub(crate) verified_by: Option<String>,
    pub(crate) verified_at: Option<String>,
    pub(crate) assigned_to: Option<String>,
    pub(crate) closed_at: Option<String>,
    /// SHA-256 of the letter of attorney as received.
    pub(crate) letter_sha256: Option<String>,
    /// Complaints and inquiries: the day they are destroyed.
    pub(crate) destroy_on: Option<String>,
    /// Open past its deadline (the extended one, if extended).
    pub(crate) overdue: bool,
    pub(crate) acknowledgement_overdue: bool,
    /// Days to the deadline in force (negative: late); absent once closed.
    pub(crate) days_left: Option<i64>,
}

impl From<RequestView> for Request {
    fn from(v: RequestView) -> Request {
        Request {
            id: v.id,
            kind: v.kind,
            channel: v.channel,
            jurisdiction: v.jurisdiction,
            requester: v.requester,
            status: v.status,
            subject: v.subject,
            service: v.service,
            received_at: v.received_at,
            acknowledge_by: v.acknowledge_by,
            answer_by: v.answer_by,
            extended_by: v.extended_by,
            acknowledged_at: v.acknowledged_at,
            verified_by: v.verified_by,
            verified_at: v.verified_at,
            assigned_to: v.assigned_to,
            closed_at: v.closed_at,
            letter_sha256: v.letter_sha256,
            destroy_on: v.destroy_on,
            overdue: v.overdue,
            acknowledgement_overdue: v.acknowledgement_overdue,
            days_left: v.days_left,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FiledRequest {
    pub(crate) request: Request,
    /// A one-time code went to the member's e-mail address.
    pub(crate) code_sent: bool,
}

impl From<Filed> for FiledRequest {
    fn from(f: Filed) -> FiledRequest {
        FiledRequest { request: f.request.into(), code_sent: f.code_sent }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Step {
    pub(crate) at: String,
    pub(crate) actor: String,
    pub(crate) step: String,
    pub(crate) status: String,
    pub(crate) note: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Asked {
    pub(crate) agent_name: Option<String>,
    pub(crate) agent_contact: Option<String>,
    pub(crate) letter_type: Option<String>,
    pub(crate) purposes: Vec<String>,
    /// Item → value asked for; the values are emptied once applied.
    #[schema(value_type = Object)]
    pub(crate) corrections: BTreeMap<String, String>,
    pub(crate) note: Option<String>,
    /// A complaint's or inquiry's items, the point that took them and the
    /// record class they are kept as.
    #[schema(value_type = Object)]
    pub(crate) items: BTreeMap<String, String>,
    pub(crate) collection_point: Option<String>,
    pub(crate) kept_as: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Detail {
    pub(crate) request: Request,
    pub(crate) asked: Asked,
    pub(crate) extension_reason: Option<String>,
    /// Every step, oldest first.
    pub(crate) steps: Vec<Step>,
}

impl From<RequestDetail> for Detail {
    fn from(d: RequestDetail) -> Detail {
        Detail {
            request: d.request.into(),
            asked: Asked {
                agent_name: d.details.agent_name,
                agent_contact: d.details.agent_contact,
                letter_type: d.details.letter_type,
                purposes: d.details.purposes,
                corrections: d.details.corrections,
                note: d.details.note,
                items: d.details.items,
                collection_point: d.details.point,
                kept_as: d.details.kept_as,
            },
            extension_reason: d.extension_reason,
            steps: d
                .steps
                .into_iter()
                .map(|s| Step { at: s.at, actor: s.actor, step: s.step, status: s.status, note: s.note })
                .collect(),
        }
    }
}

fn verification(s: &str) -> Result<Verification, ApiError> {
    match s {
        "code" => Ok(Verification::Code),
        "platform_session" => Ok(Verification::PlatformSession),
        "staff" => Ok(Verification::Staff),
        _ => Err(ApiError::bad_request("verification must be code, platform_session or staff").field(
            "verification",
            "not_allowed",
            "one of code, platform_session, staff",
        )),
    }
}

#[utoipa::path(post, path = "/v1/requests", tag = "requests", request_body = FileRequest,
    responses((status = 201, body = FiledRequest), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn file(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: JsonBody<FileRequest>,
) -> Result<(StatusCode, Json<FiledRequest>), ApiError> {
    let r = body.value;
    let received_on = match r.received_on {
        Some(d) => Some(d.parse().map_err(|_| {
            ApiError::bad_request("received_on is not a date").field("received_on", "invalid_format", "YYYY-MM-DD")
        })?),
        None => None,
    };
    if matches!(r.kind.as_str(), "complaint" | "inquiry") {
        if r.agent.is_some()
            || r.verification.is_some()
            || r.jurisdiction.is_some()
            || r.note.is_some()
            || !r.purposes.is_empty()
            || !r.corrections.is_empty()
        {
            return Err(ApiError::bad_request(
                "a complaint or inquiry takes collection_point, items and keep_as (what the person wrote goes in items)",
            )
            .field("kind", "not_allowed", "agent, verification, jurisdiction, note, purposes and corrections are for rights requests"));
        }
        let required = |v: Option<String>, field: &str| {
            v.ok_or_else(|| {
                ApiError::bad_request(format!("a {} needs {field}", r.kind)).field(field, "missing_field", "required")
            })
        };
        let complaint = custos_engine::requests::NewComplaint {
            kind: r.kind.clone(),
            channel: r.channel,
            subject: r.subject,
            collection_point: required(r.collection_point, "collection_point")?,
            items: r.items.into_iter().collect(),
            keep_as: required(r.keep_as, "keep_as")?,
            received_on,
        };
        let filed = state.engine.file_complaint(&caller, complaint, state.clock.now()).await?;
        return Ok((StatusCode::CREATED, Json(filed.into())));
    }
    if r.collection_point.is_some() || !r.items.is_empty() || r.keep_as.is_some() {
        return Err(ApiError::bad_request("collection_point, items and keep_as are for complaints and inquiries")
            .field("kind", "not_allowed", "complaint or inquiry"));
    }
    let subject = r.subject.ok_or_else(|| {
        ApiError::bad_request("a rights request names the member").field("subject", "missing_field", "required")
    })?;
    let verification_given = r.verification.ok_or_else(|| {
        ApiError::bad_request("a rights request says how the requester is verified").field(
            "verification",
            "missing_field",
            "code, platform_session or staff",
        )
    })?;
    let agent = match r.agent {
        Some(a) => {
            let letter = base64::engine::general_purpose::STANDARD.decode(a.letter.as_bytes()).map_err(|_| {
                ApiError::bad_request("the letter is not base64").field(
                    "agent.letter",
                    "invalid_format",
                    "standard base64",
                )
            })?;
            Some(NewAgent { name: a.name, contact: a.contact, letter, letter_type: a.letter_type })
        }
        None => None,
    };
    let req = NewRequest {
        kind: r.kind,
        channel: r.channel,
        jurisdiction: r.jurisdiction,
        subject,
        verification: verification(&verification_given)?,
        agent,
        purposes: r.purposes,
        corrections: r.corrections.into_iter().collect(),
        note: r.note,
        received_on,
    };
    let filed = state.engine.file_request(&caller, req, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(filed.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Comma-separated statuses (absent: all).
    pub(crate) status: Option<String>,
    /// Only this member's requests.
    pub(crate) subject: Option<String>,
    /// `true`: only open requests past their deadline.
    pub(crate) overdue: Option<bool>,
    /// The last id of the previous page.
    pub(crate) after: Option<String>,
    /// At most this many (1–500, default 100).
    pub(crate) limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = Vec<Request>), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Request>>, ApiError> {
    let now = state.clock.now();
    let statuses: Vec<String> = q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for s in &statuses {
        if custos_core::rights::Status::parse(s).is_none() {
            return Err(ApiError::bad_request(format!("no status {s:?}")).field(
                "status",
                "not_allowed",
                "received, verified, in_progress, fulfilled or denied",
            ));
        }
    }
    let filter = custos_engine::requests::QueueFilter {
        statuses,
        subject_id: q.subject,
        due_before: q.overdue.unwrap_or(false).then(|| jiff::tz::Offset::UTC.to_datetime(now).date().to_string()),
        kinds: Vec::new(),
    };
    let rows = state.engine.list_requests(&caller, filter, q.after, q.limit.unwrap_or(100), now).await?;
    Ok(Json(rows.into_iter().map(Request::from).collect()))
}

#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Detail), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn detail(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Detail>, ApiError> {
    Ok(Json(state.engine.request_detail(&caller, &id, state.clock.now()).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Code {
    /// The code from the e-mail.
    pub(crate) code: String,
}

#[utoipa::path(post, path = "/v1/requests/{id}/code", tag = "requests", request_body = Code,
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub(super) async fn code(
    State(state): State<AppState>,
    super::staff::ClientAddress(address): super::staff::ClientAddress,
    Path(id): Path<String>,
    body: JsonBody<Code>,
) -> Result<Json<Request>, ApiError> {
    // No credential: the code is the proof, so each address tries only so
    // often (and each code dies after a few wrong tries).
    state.engine.admit_anonymous_write(address, state.clock.now())?;
    Ok(Json(state.engine.verify_request_code(&id, &body.value.code, state.clock.now()).await?.into()))
}

/// No fields: the step says that the staff member checked the requester
/// (an agent's letter of attorney, a signed letter).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Verify {}

#[utoipa::path(post, path = "/v1/requests/{id}/verify", tag = "requests", request_body = Verify,
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn verify(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Verify>,
) -> Result<Json<Request>, ApiError> {
    let Verify {} = body.value;
    Ok(Json(state.engine.verify_request(&caller, &id, state.clock.now()).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assign {
    /// A staff id; absent: the caller.
    pub(crate) to: Option<String>,
}

#[utoipa::path(post, path = "/v1/requests/{id}/assign", tag = "requests", request_body = Assign,
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn assign(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Assign>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(state.engine.assign_request(&caller, &id, body.value.to, state.clock.now()).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    /// Given to the member; kept encrypted.
    pub(crate) reason: String,
}

#[utoipa::path(post, path = "/v1/requests/{id}/extend", tag = "requests", request_body = Reason,
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn extend(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Reason>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(state.engine.extend_request(&caller, &id, body.value.reason, state.clock.now()).await?.into()))
}

#[utoipa::path(post, path = "/v1/requests/{id}/deny", tag = "requests", request_body = Reason,
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn deny(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Reason>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(state.engine.deny_request(&caller, &id, body.value.reason, state.clock.now()).await?.into()))
}

#[utoipa::path(post, path = "/v1/requests/{id}/fulfil", tag = "requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn fulfil(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Request>, ApiError> {
    Ok(Json(state.engine.fulfil_request(&caller, &id, state.clock.now()).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Lifted {
    pub(crate) lifted: usize,
}

#[utoipa::path(post, path = "/v1/requests/{id}/lift", tag = "requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Lifted), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn lift(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Lifted>, ApiError> {
    Ok(Json(Lifted { lifted: state.engine.lift_restriction(&caller, &id, state.clock.now()).await? }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OutcomeQuery {
    /// `json` (default) or `html`: a readable page of the same answer.
    pub(crate) format: Option<String>,
}

#[utoipa::path(get, path = "/v1/requests/{id}/outcome", tag = "requests",
    params(("id" = String, Path, description = "request id"), OutcomeQuery),
    responses((status = 200, description = "the answer: an access or export package (`docs/schemas/export.schema.json`), built at each fetch for 30 days after fulfilment and never stored; what was done; or the reason for a denial", content(
            (Object = "application/json"), (String = "text/html"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn outcome(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<OutcomeQuery>,
) -> Result<Response, ApiError> {
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => {
            return Err(ApiError::bad_request("format must be json or html").field(
                "format",
                "not_allowed",
                "json or html",
            ));
        }
    };
    let text = state.engine.request_outcome(&caller, &id, state.clock.now()).await?;
    if html {
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let page = super::export_page::render(&state.engine.policy(), &id, &value);
        // The page needs nothing from anywhere: no script, no frame, no
        // fetch; its one style sheet is inline.
        let headers = [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ];
        return Ok((headers, page).into_response());
    }
    // Sent as stored: the answer is JSON text already.
    Ok(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], text).into_response())
}

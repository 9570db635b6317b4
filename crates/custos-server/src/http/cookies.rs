//! Cookie consent (DESIGN clause 8) and Global Privacy Control:
//!
//! - `POST /v1/cookie-consent` and `GET /v1/cookie-consent`: a visitor's
//!   choices per category of the policy's `[cookies]`, without a credential
//!   (a cookie banner on a public page calls them; CORS is open to any
//!   origin, and no cookie or credential is read); the `POST` answers the
//!   consent receipt of what it recorded;
//! - `POST` and `GET /v1/subjects/{id}/cookie-consent`: a visitor's choices
//!   linked to a member at sign-in, and the member's cookie consent, with an
//!   API key or a staff session;
//! - `GET /.well-known/gpc.json`: the GPC support resource;
//! - `GET /consent.js`: the embeddable script (`static/consent.js`).
//!
//! `Sec-GPC: 1` on a request (any of several such fields, exactly "1", as
//! the GPC specification says) turns the policy's `gpc_opts_out`
//! categories off and is recorded.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use custos_engine::{CookieConsent, CookieEntry};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

/// The script, served as it is written.
const SCRIPT: &str = include_str!("../../static/consent.js");

/// The most choices one call may carry (the engine refuses more).
const MAX_CHOICES: usize = 64;

pub(super) fn router() -> Router<AppState> {
    let public = Router::new()
        .route("/v1/cookie-consent", post(record).get(state).options(preflight))
        .layer(middleware::from_fn(open_cors));
    Router::new()
        .merge(public)
        .route("/v1/subjects/{id}/cookie-consent", post(link).get(member))
        .route("/.well-known/gpc.json", get(gpc_json))
        .route("/consent.js", get(script))
}

/// The public cookie routes answer any origin: they take no credential
/// and read no cookie, and a visitor's choices are answered only to whoever
/// holds the visitor id.
async fn open_cors(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// A CORS preflight: the headers come from [`open_cors`].
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Whether the request carries Global Privacy Control: a `Sec-GPC` field
/// whose value is exactly "1" (several fields: any one of them).
fn gpc(headers: &HeaderMap) -> bool {
    headers.get_all("sec-gpc").iter().any(|v| v.as_bytes() == b"1")
}

/// Choices as a JSON object of category id → granted. Duplicate keys are
/// kept (and refused by the engine), never silently collapsed; past
/// [`MAX_CHOICES`] the rest is skipped and the engine refuses the call.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChoiceMap(pub(crate) Vec<(String, bool)>);

impl<'de> Deserialize<'de> for ChoiceMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ChoiceMap, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChoiceMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of cookie category ids to true or false")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChoiceMap, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.len() > MAX_CHOICES {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        out.push((key, map.next_value::<bool>()?));
                    }
                }
                Ok(ChoiceMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordChoices {
    /// The visitor id answered before; none for a first visit (a new one
    /// is issued).
    pub(crate) visitor: Option<String>,
    /// Category id → granted. Strictly necessary categories are always on:
    /// `true` for them is accepted, `false` refused.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, bool>)]
    pub(crate) choices: ChoiceMap,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StateQuery {
    /// The visitor id; without it, the state of a first visit.
    pub(crate) visitor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkVisitor {
    /// The visitor id the member's browser holds (`vis_…`).
    pub(crate) visitor: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Category {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Strictly necessary: always on, takes no choice.
    pub(crate) necessary: bool,
    /// Whether Global Privacy Control turns it off.
    pub(crate) gpc_opt_out: bool,
    pub(crate) granted: bool,
    /// Why: `necessary`, `choice`, `gpc` or `not_chosen`.
    pub(crate) basis: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VisitorConsent {
    /// The visitor id to keep and send again (`null` until one is issued).
    pub(crate) visitor: Option<String>,
    /// Whether this request carried `Sec-GPC: 1`.
    pub(crate) gpc: bool,
    /// Whether a GPC signal was ever recorded for this visitor: an opt-out
    /// of sale and sharing.
    pub(crate) gpc_recorded: bool,
    pub(crate) policy_version: String,
    /// Every cookie category of the policy, in its order.
    pub(crate) categories: Vec<Category>,
}

/// What recording choices answers: the visitor's state after it and the
/// consent receipt of the entries recorded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChoicesRecorded {
    #[serde(flatten)]
    pub(crate) consent: VisitorConsent,
    /// The consent receipt (Kantara Consent Receipt v1.1) of the entries this
    /// call recorded, one purpose each: the choices and the GPC opt-outs
    /// recorded with them; the visitor id is its `piiPrincipalId`. Absent
    /// when the call recorded nothing (no choice, or only strictly necessary
    /// categories turned on, and no new GPC signal).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub(crate) receipt: Option<serde_json::Value>,
}

/// One cookie choice (documented as `CookieEntry`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CookieEntry)]
pub(crate) struct Entry {
    pub(crate) category: String,
    pub(crate) granted: bool,
    /// `choice` or `gpc` (a GPC signal recorded as an opt-out).
    pub(crate) source: String,
    /// Whether the request carried `Sec-GPC: 1`.
    pub(crate) gpc: bool,
    pub(crate) policy_version: String,
    pub(crate) at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberConsent {
    pub(crate) subject: String,
    /// Whether a GPC signal was ever recorded: an opt-out of sale and
    /// sharing.
    pub(crate) gpc_recorded: bool,
    pub(crate) policy_version: String,
    pub(crate) categories: Vec<Category>,
    /// Every entry of every visitor linked to the member, oldest first.
    pub(crate) history: Vec<Entry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Linked {
    /// Entries linked by this call.
    pub(crate) linked: usize,
    pub(crate) consent: MemberConsent,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GpcSupport {
    /// Whether the site abides by GPC: true when the policy lists cookie
    /// categories GPC turns off (`gpc_opts_out`).
    pub(crate) gpc: bool,
    /// The effective date of the policy version in force (RFC 3339
    /// full-date).
    #[serde(rename = "lastUpdate")]
    pub(crate) last_update: String,
}

fn categories(c: &CookieConsent) -> Vec<Category> {
    c.categories
        .iter()
        .map(|s| Category {
            id: s.id.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            necessary: s.necessary,
            gpc_opt_out: s.gpc_opt_out,
            granted: s.granted,
            basis: s.basis.to_owned(),
        })
        .collect()
}

impl From<CookieConsent> for VisitorConsent {
    fn from(c: CookieConsent) -> VisitorConsent {
        VisitorConsent {
            categories: categories(&c),
            visitor: c.visitor,
            gpc: c.gpc,
            gpc_recorded: c.gpc_recorded,
            policy_version: c.policy_version,
        }
    }
}

impl From<CookieEntry> for Entry {
    fn from(e: CookieEntry) -> Entry {
        Entry {
            category: e.category,
            granted: e.granted,
            source: e.source,
            gpc: e.gpc,
            policy_version: e.policy_version,
            at: e.at,
        }
    }
}

impl From<CookieConsent> for MemberConsent {
    fn from(c: CookieConsent) -> MemberConsent {
        MemberConsent {
            categories: categories(&c),
            subject: c.subject.unwrap_or_default(),
            gpc_recorded: c.gpc_recorded,
            policy_version: c.policy_version,
            history: c.history.into_iter().map(Entry::from).collect(),
        }
    }
}

#[utoipa::path(post, path = "/v1/cookie-consent", tag = "cookies", request_body = RecordChoices,
    params(("Sec-GPC" = Option<String>, Header, description = "\"1\": Global Privacy Control")),
    responses((status = 200, body = ChoicesRecorded), (status = 400, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub(super) async fn record(
    State(state): State<AppState>,
    headers: HeaderMap,
    super::staff::ClientAddress(address): super::staff::ClientAddress,
    body: JsonBody<RecordChoices>,
) -> Result<Json<ChoicesRecorded>, ApiError> {
    // Anyone may record a choice, so each address may only so often: the
    // writes share the writer with every audited request.
    state.engine.admit_anonymous_write(address, state.clock.now())?;
    let r = body.value;
    let (consent, receipt) =
        state.engine.record_cookie_choice(r.visitor.as_deref(), &r.choices.0, gpc(&headers), state.clock.now()).await?;
    Ok(Json(ChoicesRecorded { consent: consent.into(), receipt }))
}

#[utoipa::path(get, path = "/v1/cookie-consent", tag = "cookies", params(StateQuery,
        ("Sec-GPC" = Option<String>, Header, description = "\"1\": Global Privacy Control")),
    responses((status = 200, body = VisitorConsent), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn state(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<VisitorConsent>, ApiError> {
    let found = state.engine.cookie_state(q.visitor.as_deref(), gpc(&headers), state.clock.now()).await?;
    Ok(Json(found.into()))
}

#[utoipa::path(post, path = "/v1/subjects/{id}/cookie-consent", tag = "cookies", request_body = LinkVisitor,
    params(("id" = String, Path, description = "subject id")),
    responses((status = 200, body = Linked), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn link(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<LinkVisitor>,
) -> Result<Json<Linked>, ApiError> {
    let done = state.engine.link_visitor(&caller, &id, &body.value.visitor, state.clock.now()).await?;
    Ok(Json(Linked { linked: done.linked, consent: done.consent.into() }))
}

#[utoipa::path(get, path = "/v1/subjects/{id}/cookie-consent", tag = "cookies",
    params(("id" = String, Path, description = "subject id")),
    responses((status = 200, body = MemberConsent), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn member(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<MemberConsent>, ApiError> {
    Ok(Json(state.engine.member_cookie_consent(&caller, &id, state.clock.now()).await?.into()))
}

#[utoipa::path(get, path = "/.well-known/gpc.json", tag = "cookies",
    responses((status = 200, description = "the GPC support resource", body = GpcSupport, content_type = "application/json")))]
pub(super) async fn gpc_json(State(state): State<AppState>) -> Json<GpcSupport> {
    let policy = state.engine.policy();
    Json(GpcSupport {
        gpc: policy.cookies.as_ref().is_some_and(|c| !c.gpc_opts_out.is_empty()),
        last_update: policy.meta.effective_date.to_string(),
    })
}

#[utoipa::path(get, path = "/consent.js", tag = "cookies",
    responses((status = 200, description = "the embeddable cookie consent script", content_type = "application/javascript")))]
pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}

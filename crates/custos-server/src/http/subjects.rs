//! `/v1/subjects` and `/v1/lookup`: sign-up, purpose-bound reads, look-ups,
//! correction, activity and lists. Wire types here; engine types there.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use custos_engine::{Idempotency, NewSubject, SubjectCreated, SubjectRead, SubjectSummary};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subjects", post(create).get(list))
        .route("/v1/subjects/{id}", get(read).patch(correct).delete(erase))
        .route("/v1/subjects/{id}/activity", post(activity))
        .route("/v1/lookup", post(lookup))
}

/// Items as a JSON object of item id → string value. Duplicate keys are kept
/// (and refused by the engine), never silently collapsed.
#[derive(Debug, Default, Clone)]
pub(crate) struct ItemMap(pub(crate) Vec<(String, String)>);

impl<'de> Deserialize<'de> for ItemMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ItemMap, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ItemMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of item ids to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ItemMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.len() >= 256 {
                        return Err(serde::de::Error::custom("more than 256 items"));
                    }
                    out.push((k, v));
                }
                Ok(ItemMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A sign-up through a collection point.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "business_operator",
    "collection_point": "business_operator_signup",
    "source": "direct_entry",
    "items": {"name": "Kim Minji", "email": "minji@example.com", "mobile_phone": "+82 10 5555 0100",
              "password": "correct horse battery staple"},
    "consents": ["marketing"]
}))]
pub(crate) struct CreateSubject {
    /// The service the subject belongs to; omit for platform subjects (operators).
    pub(crate) service: Option<String>,
    /// A subject kind of the policy, e.g. `business_operator`.
    pub(crate) kind: String,
    /// The collection point, e.g. `business_operator_signup`.
    pub(crate) collection_point: String,
    /// Where the data comes from: a source of the collection point, e.g. `direct_entry`.
    pub(crate) source: String,
    /// Item id → value. Only items the collection point declares.
    #[schema(value_type = BTreeMap<String, String>)]
    pub(crate) items: ItemMap,
    /// Opt-in purposes the subject chose.
    #[serde(default)]
    pub(crate) consents: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created {
    pub(crate) id: String,
    pub(crate) service: Option<String>,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) created_at: String,
    /// The receipts of the consents given at sign-up (Kantara Consent
    /// Receipt v1.1); absent when none was given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub(crate) consent_receipts: Vec<serde_json::Value>,
}

impl From<SubjectCreated> for Created {
    fn from(c: SubjectCreated) -> Created {
        Created {
            id: c.id,
            service: c.service,
            kind: c.kind,
            status: c.status,
            created_at: c.created_at,
            consent_receipts: c.consent_receipts,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Summary {
    pub(crate) id: String,
    pub(crate) service: Option<String>,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) created_at: String,
}

impl From<SubjectSummary> for Summary {
    fn from(s: SubjectSummary) -> Summary {
        Summary { id: s.id, service: s.service, kind: s.kind, status: s.status, created_at: s.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Subject {
    pub(crate) id: String,
    pub(crate) service: Option<String>,
    pub(crate) kind: String,
    pub(crate) status: String,
    /// The purpose the read was made for.
    pub(crate) purpose: String,
    /// Only the items the purpose may use.
    pub(crate) items: BTreeMap<String, String>,
    /// True for a dormant member read without the dormant-lookup privilege:
    /// the row is shown, no item values.
    pub(crate) masked: bool,
}

impl From<SubjectRead> for Subject {
    fn from(s: SubjectRead) -> Subject {
        Subject {
            id: s.id,
            service: s.service,
            kind: s.kind,
            status: s.status,
            purpose: s.purpose,
            items: s.items,
            masked: s.masked,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// The purpose of the read; it decides which items come back.
    pub(crate) purpose: String,
    /// Comma-separated item ids to narrow the read.
    pub(crate) items: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Correction {
    #[schema(value_type = BTreeMap<String, String>)]
    pub(crate) items: ItemMap,
    /// Where the corrected values come from (a source of the policy).
    pub(crate) source: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Activity {
    /// An event of the policy: `login`, `password_change`, `recurring_payment`.
    pub(crate) event: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lookup {
    /// The service to look in; omit for platform subjects.
    pub(crate) service: Option<String>,
    /// A unique item: `email` or `mobile_phone`.
    pub(crate) item: String,
    pub(crate) value: String,
    /// The purpose of the look-up; it must use the item.
    pub(crate) purpose: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// The service whose subjects to list; omit for platform subjects.
    pub(crate) service: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub(crate) limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubjectPage {
    pub(crate) items: Vec<Summary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

/// Idempotency keys are printable ASCII, at most 200 characters.
fn idempotency(headers: &HeaderMap, raw: &[u8]) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key must be 1 to 200 printable ASCII characters"))?;
    Ok(Some(Idempotency { key: key.to_owned(), request_hash: custos_engine::request_hash(raw) }))
}

#[utoipa::path(post, path = "/v1/subjects", tag = "subjects", request_body = CreateSubject,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat a create safely: the same key and body return the first answer")),
    responses((status = 201, body = Created), (status = 200, description = "replay of an earlier identical request", body = Created),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: JsonBody<CreateSubject>,
) -> Result<Response, ApiError> {
    let idem = idempotency(&headers, &body.raw)?;
    let req = body.value;
    let created = state
        .engine
        .create_subject(
            &caller,
            NewSubject {
                service: req.service,
                kind: req.kind,
                point: req.collection_point,
                source: req.source,
                items: req.items.0,
                consents: req.consents,
            },
            idem,
            state.clock.now(),
        )
        .await?;
    let status = if created.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(Created::from(created))).into_response())
}

#[utoipa::path(get, path = "/v1/subjects/{id}", tag = "subjects", params(("id" = String, Path), ReadQuery),
    responses((status = 200, body = Subject), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem), (status = 500, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn read(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Json<Subject>, ApiError> {
    let items = q.items.map(|s| s.split(',').map(|i| i.trim().to_owned()).filter(|i| !i.is_empty()).collect());
    let read = state.engine.read_subject(&caller, &id, &q.purpose, items, state.clock.now()).await?;
    Ok(Json(read.into()))
}

#[utoipa::path(patch, path = "/v1/subjects/{id}", tag = "subjects", params(("id" = String, Path)), request_body = Correction,
    responses((status = 200, body = Summary), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn correct(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Correction>,
) -> Result<Json<Summary>, ApiError> {
    let c = body.value;
    let s = state.engine.correct_subject(&caller, &id, c.items.0, &c.source, state.clock.now()).await?;
    Ok(Json(s.into()))
}

/// Records kept under a statutory hold after the account is gone.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeptRecords {
    /// The record class.
    pub(crate) class: String,
    /// The law that requires keeping them.
    pub(crate) law: String,
    /// The only purpose that may read them from now on.
    pub(crate) read_purpose: String,
    pub(crate) count: usize,
    /// The day the last of them is destroyed (YYYY-MM-DD).
    pub(crate) until: Option<String>,
}

/// What an account deletion destroyed, and what the law keeps.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Erasure {
    pub(crate) id: String,
    pub(crate) destroyed_at: String,
    pub(crate) keys_destroyed: usize,
    pub(crate) items_destroyed: usize,
    pub(crate) kept: Vec<KeptRecords>,
}

/// Deletes a member's account without delay: the profile key, the items
/// and the blind indexes are destroyed at once (a certificate is written
/// to the audit log); records under a statutory hold stay, readable only
/// for the hold's legal purpose, until their own span ends.
#[utoipa::path(delete, path = "/v1/subjects/{id}", tag = "subjects", params(("id" = String, Path)),
    responses((status = 200, body = Erasure), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn erase(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Erasure>, ApiError> {
    let e = state.engine.delete_subject(&caller, &id, state.clock.now()).await?;
    Ok(Json(Erasure {
        id: e.id,
        destroyed_at: e.destroyed_at,
        keys_destroyed: e.keys_destroyed,
        items_destroyed: e.items_destroyed,
        kept: e
            .kept
            .into_iter()
            .map(|k| KeptRecords {
                class: k.class,
                law: k.law,
                read_purpose: k.read_purpose,
                count: k.count,
                until: k.until,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/subjects/{id}/activity", tag = "subjects", params(("id" = String, Path)), request_body = Activity,
    responses((status = 204, description = "recorded"), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn activity(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<Activity>,
) -> Result<StatusCode, ApiError> {
    state.engine.record_activity(&caller, &id, &body.value.event, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/lookup", tag = "subjects", request_body = Lookup,
    responses((status = 200, body = Summary), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn lookup(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: JsonBody<Lookup>,
) -> Result<Json<Summary>, ApiError> {
    let l = body.value;
    let s = state.engine.lookup(&caller, l.service, &l.item, &l.value, &l.purpose, state.clock.now()).await?;
    Ok(Json(s.into()))
}

#[utoipa::path(get, path = "/v1/subjects", tag = "subjects", params(ListQuery),
    responses((status = 200, body = SubjectPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<SubjectPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    // One more than asked tells whether another page exists.
    let mut page = state.engine.list_subjects(&caller, q.service, q.cursor, limit + 1, state.clock.now()).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = more.then(|| page.last().map(|s| s.id.clone())).flatten();
    Ok(Json(SubjectPage { items: page.into_iter().map(Summary::from).collect(), next_cursor }))
}

//! `/v1/subjects/{id}/records`: records kept under the policy's record
//! classes, each encrypted under the subject's key for its class.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use custos_engine::NewRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/subjects/{id}/records", post(add).get(list))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddRecord {
    /// A record class of the policy, e.g. `payment_supply_records`.
    pub(crate) class: String,
    /// The record's own date (YYYY-MM-DD): its statutory span runs from it.
    pub(crate) record_date: String,
    /// The record, as text (JSON is fine); at most 64 KiB.
    pub(crate) content: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordId {
    pub(crate) id: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) class: String,
    pub(crate) record_date: String,
    pub(crate) created_at: String,
    pub(crate) content: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RecordPage {
    pub(crate) items: Vec<Record>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordQuery {
    /// The purpose of the read: a purpose the record classes allow.
    pub(crate) purpose: String,
    pub(crate) cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub(crate) limit: Option<u32>,
}

#[utoipa::path(post, path = "/v1/subjects/{id}/records", tag = "records", params(("id" = String, Path)), request_body = AddRecord,
    responses((status = 201, body = RecordId), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn add(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<AddRecord>,
) -> Result<(StatusCode, Json<RecordId>), ApiError> {
    let r = body.value;
    let record = NewRecord { class: r.class, record_date: r.record_date, content: r.content };
    let id = state.engine.add_record(&caller, &id, record, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(RecordId { id })))
}

#[utoipa::path(get, path = "/v1/subjects/{id}/records", tag = "records", params(("id" = String, Path), RecordQuery),
    responses((status = 200, body = RecordPage), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Json<RecordPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    // One more than asked tells whether another page exists.
    let mut records =
        state.engine.list_records(&caller, &id, &q.purpose, q.cursor, limit + 1, state.clock.now()).await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more.then(|| records.last().map(|r| r.id.clone())).flatten();
    let items = records
        .into_iter()
        .map(|r| Record {
            id: r.id,
            class: r.class,
            record_date: r.record_date,
            created_at: r.created_at,
            content: r.content,
        })
        .collect();
    Ok(Json(RecordPage { items, next_cursor }))
}

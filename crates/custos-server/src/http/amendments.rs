//! Policy amendments: `POST /v1/policy/amendments` publishes a new version
//! (staff whose role may `amend_policy`, or a platform key), and
//! `GET /v1/notices` is the public notice board.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use custos_engine::Notice;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/policy/amendments", post(publish)).route("/v1/notices", get(notices))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishAmendment {
    /// The whole new policy file (TOML), with a new `policy.version` and the
    /// `policy.effective_date` it takes effect on.
    pub(crate) text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NoticeBody {
    pub(crate) version: String,
    /// The version it amends.
    pub(crate) previous: String,
    pub(crate) announced_at: String,
    pub(crate) effective_date: String,
    /// Significant under the version in force (the longer notice applies).
    pub(crate) significant: bool,
    /// What changes, in words.
    pub(crate) changes: Vec<String>,
    /// When it took effect; absent while announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) in_force_at: Option<String>,
    /// When a later announcement replaced it before its date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) superseded_at: Option<String>,
}

impl From<Notice> for NoticeBody {
    fn from(n: Notice) -> NoticeBody {
        NoticeBody {
            version: n.version,
            previous: n.previous,
            announced_at: n.announced_at,
            effective_date: n.effective_date,
            significant: n.significant,
            changes: n.changes,
            in_force_at: n.in_force_at,
            superseded_at: n.superseded_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NoticeBoard {
    /// Newest first.
    pub(crate) notices: Vec<NoticeBody>,
}

#[utoipa::path(post, path = "/v1/policy/amendments", tag = "policy", request_body = PublishAmendment,
    responses((status = 201, body = NoticeBody), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn publish(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: JsonBody<PublishAmendment>,
) -> Result<(StatusCode, Json<NoticeBody>), ApiError> {
    let notice = state.engine.publish_amendment(&caller, &body.value.text, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(notice.into())))
}

#[utoipa::path(get, path = "/v1/notices", tag = "policy",
    responses((status = 200, body = NoticeBoard)))]
pub(super) async fn notices(State(state): State<AppState>) -> Result<Json<NoticeBoard>, ApiError> {
    let notices = state.engine.notices().await?.into_iter().map(NoticeBody::from).collect();
    Ok(Json(NoticeBoard { notices }))
}

//! `/v1/services`: an operator creates a service (tenant).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use custos_engine::NewService;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Authed, JsonBody};
use super::subjects::ItemMap;
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/services", post(create))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateService {
    /// The operator (a platform subject) who creates the service.
    pub(crate) operator: String,
    /// The collection point of service creation, when the policy has one
    /// for the operator's kind (b.stage: `non_business_operator_service_creation`).
    pub(crate) collection_point: Option<String>,
    #[serde(default = "direct_entry")]
    pub(crate) source: String,
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub(crate) items: ItemMap,
}

fn direct_entry() -> String {
    "direct_entry".into()
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Service {
    pub(crate) id: String,
    pub(crate) operator: String,
    pub(crate) created_at: String,
}

#[utoipa::path(post, path = "/v1/services", tag = "services", request_body = CreateService,
    responses((status = 201, body = Service), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: JsonBody<CreateService>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let r = body.value;
    let created = state
        .engine
        .create_service(
            &caller,
            NewService { operator: r.operator, point: r.collection_point, source: r.source, items: r.items.0 },
            state.clock.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Service { id: created.id, operator: created.operator, created_at: created.created_at }),
    ))
}

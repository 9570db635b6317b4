//! Operations: `/health` (the process answers), `/ready` (the store
//! answers), `/metrics` (Prometheus text) and `/openapi.json`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServerStatus {
    pub(crate) status: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = ServerStatus), (status = 503, description = "audit entries cannot be written", body = ServerStatus)))]
pub(super) async fn health(State(state): State<AppState>) -> Response {
    if state.engine.audit_healthy() {
        (StatusCode::OK, Json(ServerStatus { status: "ok" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(ServerStatus { status: "audit failing" })).into_response()
    }
}

#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = ServerStatus), (status = 503, body = ServerStatus)))]
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    if state.engine.ready().await {
        (StatusCode::OK, Json(ServerStatus { status: "ready" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(ServerStatus { status: "unavailable" })).into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = state.engine.metrics().await?;
    let c = &state.counters;
    let text = format!(
        "# HELP custos_audit_entries Audit entries stored.\n# TYPE custos_audit_entries gauge\ncustos_audit_entries {}\n\
         # HELP custos_commit_batches_total Group commits since start.\n# TYPE custos_commit_batches_total counter\ncustos_commit_batches_total {}\n\
         # HELP custos_committed_jobs_total Write jobs committed since start.\n# TYPE custos_committed_jobs_total counter\ncustos_committed_jobs_total {}\n\
         # HELP custos_http_responses_total HTTP responses by status class.\n# TYPE custos_http_responses_total counter\n\
         custos_http_responses_total{{class=\"2xx_3xx\"}} {}\ncustos_http_responses_total{{class=\"4xx\"}} {}\ncustos_http_responses_total{{class=\"5xx\"}} {}\n",
        m.audit_entries,
        m.commit_batches,
        m.committed_jobs,
        c.ok.load(Ordering::Relaxed),
        c.client_error.load(Ordering::Relaxed),
        c.server_error.load(Ordering::Relaxed),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::document()).into_response()
}

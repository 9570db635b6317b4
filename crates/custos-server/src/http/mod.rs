//! The HTTP API: JSON under `/v1`, errors as `application/problem+json`
//! (RFC 9457), the OpenAPI document at `/openapi.json`, and `/health`,
//! `/ready`, `/metrics` for operations.
//!
//! Handlers are thin: extract, call one engine function, map the result.
//! Wire types live here and are converted at the boundary; request bodies
//! refuse unknown fields; no handler logs a body or a personal value.

mod amendments;
mod audit;
mod consents;
mod cookies;
mod disclosures;
mod error;
mod export_page;
mod extract;
pub mod openapi;
mod ops;
pub(crate) mod pages;
mod privacy_center;
mod records;
mod requests;
mod services;
mod staff;
mod staff_console;
mod staff_registers;
mod subjects;
mod upload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use custos_engine::Engine;

use crate::clock::Clock;
pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub clock: Arc<dyn Clock>,
    pub counters: Arc<Counters>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(engine: Engine, clock: Arc<dyn Clock>) -> AppState {
        AppState { engine, clock, counters: Arc::new(Counters::default()) }
    }
}

/// Response counts by status class, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub ok: AtomicU64,
    pub client_error: AtomicU64,
    pub server_error: AtomicU64,
}

async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let counter = match response.status().as_u16() {
        500.. => &state.counters.server_error,
        400..=499 => &state.counters.client_error,
        _ => &state.counters.ok,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    response
}

/// The whole application, separate from `main` so tests drive it in-process.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(subjects::router())
        .merge(services::router())
        .merge(records::router())
        .merge(audit::router())
        .merge(staff::router())
        .merge(consents::router())
        .merge(cookies::router())
        .merge(amendments::router())
        .merge(requests::router())
        .merge(disclosures::router())
        .merge(pages::router())
        .merge(privacy_center::router())
        .merge(staff_console::router())
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
                "see /openapi.json for the methods of this route",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

//! `/v1/audit`: the verifiable audit log's checkpoints and proofs. Proofs
//! carry hashes only; entries themselves leave through `custos audit export`.
//! Platform API keys and staff whose role allows `audit`.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use custos_engine::{EngineError, SignedCheckpoint};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Authed};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/checkpoint", get(latest).post(issue))
        .route("/v1/audit/proof/inclusion", get(inclusion))
        .route("/v1/audit/proof/consistency", get(consistency))
}

/// The audit log is the platform's: platform API keys and staff whose role
/// allows `audit` (the decision in `custos-core`).
async fn may_read(state: &AppState, caller: &custos_engine::Caller, issue: bool) -> Result<(), ApiError> {
    Ok(state.engine.permit_audit(caller, issue, state.clock.now()).await?)
}

/// A signed checkpoint: the log's size and root at a time, signed with Ed25519.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Checkpoint {
    pub(crate) origin: String,
    pub(crate) size: u64,
    pub(crate) root: String,
    pub(crate) time: String,
    pub(crate) signature: String,
    pub(crate) public_key: String,
}

impl From<SignedCheckpoint> for Checkpoint {
    fn from(c: SignedCheckpoint) -> Checkpoint {
        Checkpoint {
            origin: c.origin,
            size: c.size,
            root: c.root,
            time: c.time,
            signature: c.signature,
            public_key: c.public_key,
        }
    }
}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = Checkpoint), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn latest(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Checkpoint>, ApiError> {
    may_read(&state, &caller, false).await?;
    let c = state.engine.latest_checkpoint().await?.ok_or(EngineError::NotFound)?;
    Ok(Json(c.into()))
}

#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = Checkpoint), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn issue(State(state): State<AppState>, Authed(caller): Authed) -> Result<Json<Checkpoint>, ApiError> {
    may_read(&state, &caller, true).await?;
    Ok(Json(state.engine.issue_checkpoint(state.clock.now()).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// The entry's sequence number (1-based).
    pub(crate) seq: u64,
    /// The tree size of a checkpoint you hold.
    pub(crate) size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InclusionProof {
    pub(crate) seq: u64,
    pub(crate) size: u64,
    /// Sibling hashes, hex, leaf to root (RFC 9162 §2.1.3).
    pub(crate) proof: Vec<String>,
}

#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn inclusion(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    may_read(&state, &caller, false).await?;
    let proof = state.engine.inclusion_proof(q.seq, q.size).await?;
    Ok(Json(InclusionProof { seq: q.seq, size: q.size, proof }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    /// The older tree size.
    pub(crate) from: u64,
    /// The newer tree size.
    pub(crate) to: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsistencyProof {
    pub(crate) from: u64,
    pub(crate) to: u64,
    /// Hashes, hex (RFC 9162 §2.1.4).
    pub(crate) proof: Vec<String>,
}

#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn consistency(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    may_read(&state, &caller, false).await?;
    let proof = state.engine.consistency_proof(q.from, q.to).await?;
    Ok(Json(ConsistencyProof { from: q.from, to: q.to, proof }))
}

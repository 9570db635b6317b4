//! Staff accounts and sessions: invitations, enrolment (password and TOTP),
//! login, logout, password change, disabling, privileges, handing over the
//! head admin's role, and a service's staff login IP list.
//!
//! Login and enrolment take no credential; every other route takes a
//! session token (`cs_…`) or an API key (`ck_…`) as a bearer token.

// reason: utoipa's `path` macro expands `params(...)` to qualified paths.
#![allow(unused_qualifications)]

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use custos_engine::Zeroizing;
use custos_engine::{Login, NewInvitation, StaffView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Authed, JsonBody};
use super::{ApiError, AppState};
use crate::http::error::Problem;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/staff/invitations", post(invite))
        .route("/v1/staff/enrol", post(enrol))
        .route("/v1/sessions", post(login))
        .route("/v1/sessions/current", delete(logout))
        .route("/v1/staff/me", get(me))
        .route("/v1/staff/me/password", post(change_password))
        .route("/v1/staff/{id}/disable", post(disable))
        .route("/v1/staff/{id}/privileges/{privilege}", put(grant).delete(withdraw))
        .route("/v1/staff/{id}/transfer-role", post(transfer))
        .route("/v1/services/{id}/allowed-ips", put(allowed_ips))
}

/// The client's address from the connection (no proxy header is trusted).
#[derive(Debug)]
pub(crate) struct ClientAddress(pub(crate) Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateInvitation {
    /// Where the invitation goes; stored encrypted, never returned.
    pub(crate) email: String,
    /// A role of the policy (`head_admin`, `admin`, `privacy_officer`…).
    pub(crate) role: String,
    /// The service, for a service role.
    pub(crate) service: Option<String>,
    /// The member account of the same person, if they have one (a platform
    /// subject, or a member of the same service): a role the policy exempts
    /// from dormancy (the head admin) then keeps that account from becoming
    /// dormant.
    pub(crate) subject: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Invitation {
    pub(crate) staff_id: String,
    /// Send it to the invitee; it is shown once and stored only as a digest.
    pub(crate) token: String,
    pub(crate) expires_at: String,
}

#[utoipa::path(post, path = "/v1/staff/invitations", tag = "staff", request_body = CreateInvitation,
    responses((status = 201, body = Invitation), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn invite(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: JsonBody<CreateInvitation>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let r = body.value;
    let created = state
        .engine
        .invite_staff(
            &caller,
            NewInvitation { email: r.email, role: r.role, service: r.service, subject: r.subject },
            state.clock.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invitation { staff_id: created.staff_id, token: created.token, expires_at: created.expires_at }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrol {
    /// The invitation token.
    pub(crate) token: String,
    /// At least 12 characters.
    pub(crate) password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Enrolment {
    pub(crate) staff_id: String,
    /// The TOTP secret (base32), shown once: put it in an authenticator app.
    pub(crate) totp_secret: String,
    pub(crate) otpauth_uri: String,
}

#[utoipa::path(post, path = "/v1/staff/enrol", tag = "staff", request_body = Enrol,
    responses((status = 200, body = Enrolment), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn enrol(State(state): State<AppState>, body: JsonBody<Enrol>) -> Result<Json<Enrolment>, ApiError> {
    let r = body.value;
    let done = state.engine.accept_invitation(&r.token, Zeroizing::new(r.password), state.clock.now()).await?;
    Ok(Json(Enrolment { staff_id: done.staff_id, totp_secret: done.totp_secret, otpauth_uri: done.otpauth_uri }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    pub(crate) email: String,
    pub(crate) password: String,
    /// The current code of the authenticator app (6 digits).
    pub(crate) code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Session {
    /// The session token (`cs_…`): send it as `Authorization: Bearer`.
    pub(crate) token: String,
    pub(crate) staff_id: String,
    /// The session ends then, however it is used.
    pub(crate) expires_at: String,
    /// The session ends after this many seconds without a request.
    pub(crate) idle_timeout_seconds: i64,
}

#[utoipa::path(post, path = "/v1/sessions", tag = "staff", request_body = LoginRequest,
    responses((status = 201, body = Session), (status = 400, body = Problem), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    body: JsonBody<LoginRequest>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let r = body.value;
    let attempt = Login { email: r.email, password: Zeroizing::new(r.password), code: r.code, address };
    let s = state.engine.login(attempt, state.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            token: s.token,
            staff_id: s.staff_id,
            expires_at: s.expires_at,
            idle_timeout_seconds: s.idle_timeout_seconds,
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/sessions/current", tag = "staff",
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn logout(State(state): State<AppState>, Authed(caller): Authed) -> Result<StatusCode, ApiError> {
    state.engine.logout(&caller, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Staff {
    pub(crate) id: String,
    pub(crate) role: String,
    pub(crate) service: Option<String>,
    pub(crate) privileges: Vec<String>,
    /// `invited`, `active` or `disabled`.
    pub(crate) status: String,
}

impl From<StaffView> for Staff {
    fn from(v: StaffView) -> Staff {
        Staff { id: v.id, role: v.role, service: v.service, privileges: v.privileges, status: v.status }
    }
}

#[utoipa::path(get, path = "/v1/staff/me", tag = "staff",
    responses((status = 200, body = Staff), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn me(State(state): State<AppState>, Authed(caller): Authed) -> Result<Json<Staff>, ApiError> {
    Ok(Json(state.engine.whoami(&caller)?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    pub(crate) current_password: String,
    pub(crate) new_password: String,
}

#[utoipa::path(post, path = "/v1/staff/me/password", tag = "staff", request_body = ChangePassword,
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn change_password(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: JsonBody<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let r = body.value;
    state
        .engine
        .change_password(&caller, Zeroizing::new(r.current_password), Zeroizing::new(r.new_password), state.clock.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/staff/{id}/disable", tag = "staff",
    params(("id" = String, Path, description = "staff id")),
    responses((status = 200, body = Staff), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn disable(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Staff>, ApiError> {
    Ok(Json(state.engine.disable_staff(&caller, &id, state.clock.now()).await?.into()))
}

#[utoipa::path(put, path = "/v1/staff/{id}/privileges/{privilege}", tag = "staff",
    params(("id" = String, Path, description = "staff id"), ("privilege" = String, Path, description = "a privilege of the policy")),
    responses((status = 200, body = Staff), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn grant(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((id, privilege)): Path<(String, String)>,
) -> Result<Json<Staff>, ApiError> {
    Ok(Json(state.engine.set_privilege(&caller, &id, &privilege, true, state.clock.now()).await?.into()))
}

#[utoipa::path(delete, path = "/v1/staff/{id}/privileges/{privilege}", tag = "staff",
    params(("id" = String, Path, description = "staff id"), ("privilege" = String, Path, description = "a privilege of the policy")),
    responses((status = 200, body = Staff), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn withdraw(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((id, privilege)): Path<(String, String)>,
) -> Result<Json<Staff>, ApiError> {
    Ok(Json(state.engine.set_privilege(&caller, &id, &privilege, false, state.clock.now()).await?.into()))
}

#[utoipa::path(post, path = "/v1/staff/{id}/transfer-role", tag = "staff",
    params(("id" = String, Path, description = "the staff member who receives the caller's role")),
    responses((status = 200, body = Staff), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn transfer(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Staff>, ApiError> {
    Ok(Json(state.engine.transfer_role(&caller, &id, state.clock.now()).await?.into()))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowedIps {
    /// CIDR blocks or addresses; empty: staff may log in from anywhere.
    pub(crate) networks: Vec<String>,
}

#[utoipa::path(put, path = "/v1/services/{id}/allowed-ips", tag = "staff", request_body = AllowedIps,
    params(("id" = String, Path, description = "service id")),
    responses((status = 200, body = AllowedIps), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub(super) async fn allowed_ips(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: JsonBody<AllowedIps>,
) -> Result<Json<AllowedIps>, ApiError> {
    let networks = state.engine.set_allowed_ips(&caller, &id, &body.value.networks, state.clock.now()).await?;
    Ok(Json(AllowedIps { networks }))
}

//! `ApiError`: every failure as `application/problem+json`, with the status
//! mapping in one `match`. Internal causes are logged, never rendered; no
//! message carries a personal value (the engine guarantees that for its
//! errors, and parser errors name fields, not values).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// `urn:custos:problem:<code>`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) title: String,
    pub(crate) status: u16,
    pub(crate) detail: String,
    /// One entry per field problem, when the request was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<FieldProblem>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FieldProblem {
    pub(crate) field: String,
    pub(crate) code: String,
    pub(crate) message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldProblem>,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, title, detail: detail.into(), errors: Vec::new(), retry_after: None }
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "the request is malformed", detail)
    }

    pub fn not_found_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route", "see /openapi.json for the API")
    }

    pub fn field(mut self, field: &str, code: &str, message: impl Into<String>) -> ApiError {
        self.errors.push(FieldProblem { field: field.into(), code: code.into(), message: message.into() });
        self
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use StatusCode as S;
        let detail = e.to_string();
        match e {
            EngineError::Invalid(errors) => ApiError {
                status: S::UNPROCESSABLE_ENTITY,
                code: "invalid",
                title: "the request breaks the policy or a format rule",
                detail: format!("{} problem{}", errors.len(), if errors.len() == 1 { "" } else { "s" }),
                errors: errors
                    .into_iter()
                    .map(|f| FieldProblem { field: f.field, code: f.code.as_str().to_owned(), message: f.message })
                    .collect(),
                retry_after: None,
            },
            EngineError::ReadDenied(r) => {
                let status = if r.code() == "items_not_allowed" { S::FORBIDDEN } else { S::UNPROCESSABLE_ENTITY };
                ApiError::new(status, r.code(), "the read is not allowed for this purpose", detail)
            }
            EngineError::PurposeNotAllowed(_) => {
                ApiError::new(S::FORBIDDEN, "purpose_not_allowed", "this API key may not use the purpose", detail)
            }
            EngineError::ConsentRequired(_) => {
                ApiError::new(S::FORBIDDEN, "consent_required", "the purpose needs the subject's consent", detail)
            }
            EngineError::Restricted(_) => ApiError::new(
                S::FORBIDDEN,
                "processing_restricted",
                "the member restricted processing for this purpose",
                detail,
            ),
            EngineError::Forbidden(_) => {
                ApiError::new(S::FORBIDDEN, "forbidden", "not allowed for this caller", detail)
            }
            EngineError::NotFound => ApiError::new(S::NOT_FOUND, "not_found", "not found", "no such object"),
            EngineError::Conflict(_) => {
                ApiError::new(S::CONFLICT, "conflict", "the request conflicts with stored data", detail)
            }
            EngineError::Unauthenticated => ApiError::new(
                S::UNAUTHORIZED,
                "unauthenticated",
                "missing or invalid credentials",
                "send Authorization: Bearer <API key or session token>; a session ends on logout, after 30 idle minutes or 12 hours",
            ),
            EngineError::Throttled(seconds) => {
                let mut e = ApiError::new(S::TOO_MANY_REQUESTS, "throttled", "too many attempts", detail);
                e.retry_after = Some(seconds);
                e
            }
            EngineError::Integrity(reason) => {
                tracing::error!(%reason, "integrity failure answered with 500");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "integrity",
                    "stored data failed its integrity check",
                    "the value was altered or its key is gone; nothing was returned, and the failure is audited",
                )
            }
            EngineError::Unavailable(reason) => {
                tracing::error!(%reason, "storage unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage or audit unavailable",
                    "nothing was done; retry later",
                )
            }
            EngineError::Config(reason) => {
                tracing::error!(%reason, "configuration error");
                ApiError::new(S::INTERNAL_SERVER_ERROR, "internal", "internal error", "see the server log")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("urn:custos:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

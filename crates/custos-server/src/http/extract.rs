//! Extractors that turn every malformed request into a precise problem:
//! the JSON body (content type, size, syntax, unknown fields, types), the
//! query string, and the caller's API key.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use custos_engine::Caller;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};

/// A JSON body, parsed, with its raw bytes kept for idempotency hashing.
#[derive(Debug)]
pub(crate) struct JsonBody<T> {
    pub(crate) value: T,
    pub(crate) raw: Bytes,
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON",
                "send Content-Type: application/json",
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(e.status(), "too_large", "the body is too large", e.body_text())
            } else {
                ApiError::bad_request(format!("the body could not be read: {}", e.body_text()))
            }
        })?;
        let value = serde_json::from_slice(&raw).map_err(json_error)?;
        Ok(JsonBody { value, raw })
    }
}

/// serde_json's messages name fields and positions, but a value of the wrong
/// type is quoted in them (`invalid type: string "ann@example.com"`): those
/// values are cut out, since they may be personal data.
fn json_error(e: serde_json::Error) -> ApiError {
    let message = redact(&e.to_string());
    let problem = ApiError::bad_request(format!("invalid JSON body: {message}"));
    let named =
        |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split_once('`')).map(|(f, _)| f.to_owned());
    if let Some(field) = named("unknown field `") {
        problem.field(&field, "unknown_field", "this field is not part of the request")
    } else if let Some(field) = named("missing field `") {
        problem.field(&field, "missing_field", "this field is required")
    } else {
        problem
    }
}

/// Keeps the kind of an unexpected value (`string`, `integer`…) and drops
/// the value itself.
pub(crate) fn redact(message: &str) -> String {
    let mut out = message.to_owned();
    for marker in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(start) = out.find(marker).map(|i| i + marker.len())
            && let Some(end) = out[start..].find(", expected").map(|i| start + i)
        {
            let kind: String = out[start..end].split(['"', '`', '\'']).next().unwrap_or("").trim().to_owned();
            out.replace_range(start..end, if kind.is_empty() { "a value" } else { &kind });
        }
    }
    out
}

/// A query string with unknown parameters refused.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{query}").parse().map_err(|_| "malformed query".to_owned())?)
        .map(|q| q.0)
        .map_err(|e| e.body_text())
}

/// The authenticated caller.
#[derive(Debug)]
pub(crate) struct Authed(pub(crate) Caller);

impl<S> FromRequestParts<S> for Authed
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme name is case-insensitive (RFC 9110 §11.1).
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, token)| token)
            .ok_or(ApiError::from(custos_engine::EngineError::Unauthenticated))?;
        Ok(Authed(state.engine.authenticate(token.trim(), state.clock.now()).await?))
    }
}

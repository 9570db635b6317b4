//! The engine's one error type. Messages are lower-case, name the field or
//! the rule, and never contain a personal value; the HTTP layer maps each
//! variant to a status in one place.

use custos_core::access::ReadDenied;
use custos_core::collect::FieldError;
use custos_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request breaks the policy or a format rule; every problem listed.
    #[error("the request is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// A read asked for what its purpose does not allow.
    #[error("{0}")]
    ReadDenied(ReadDenied),
    /// The API key may not use this purpose.
    #[error("this API key may not use the purpose {0:?}")]
    PurposeNotAllowed(String),
    /// An opt-in purpose without the subject's current consent.
    #[error("the purpose {0:?} needs the subject's consent, and there is none")]
    ConsentRequired(String),
    /// The member asked for processing for this purpose to stop (a
    /// restriction request), and it has not been lifted.
    #[error("processing for the purpose {0:?} is restricted at the member's request")]
    Restricted(String),
    /// The operation is not open to this caller (e.g. a service key
    /// creating platform subjects).
    #[error("{0}")]
    Forbidden(String),
    /// No such object, or not one this caller may see: the two look the same.
    #[error("not found")]
    NotFound,
    /// A unique rule refused the write (a taken e-mail address, a reused
    /// idempotency key with another request).
    #[error("{0}")]
    Conflict(String),
    /// Missing or wrong credentials (an API key, a session, a login).
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// Too many attempts (failed logins, anonymous writes): try again after
    /// this many seconds.
    #[error("too many attempts: try again in {0} seconds")]
    Throttled(i64),
    /// A stored ciphertext failed to authenticate: altered, moved, or its
    /// key is gone. Never answered with someone else's data.
    #[error("stored data failed its integrity check ({0})")]
    Integrity(String),
    /// The store or the audit trail cannot be written: nothing was done.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Start-up configuration (root key file, data folder).
    #[error("{0}")]
    Config(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> EngineError {
        match e {
            StoreError::Conflict(m) => EngineError::Conflict(m),
            StoreError::NotFound(_) => EngineError::NotFound,
            StoreError::TooNew { .. } | StoreError::Mismatch(_) => EngineError::Config(e.to_string()),
            StoreError::Database(_) | StoreError::Closed => EngineError::Unavailable(e.to_string()),
        }
    }
}

impl From<crate::crypto::CryptoError> for EngineError {
    fn from(e: crate::crypto::CryptoError) -> EngineError {
        match e {
            crate::crypto::CryptoError::Random => EngineError::Unavailable(e.to_string()),
            other => EngineError::Integrity(other.to_string()),
        }
    }
}

//! The error body every failed request gets.

use serde::{Deserialize, Serialize};

/// Machine-readable error kinds. The names are MLflow's, so an MLflow client understands
/// Kiln's errors without a translation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Malformed body, wrong type, a value over a limit, a param re-logged with another value.
    InvalidParameterValue,
    /// A name that must be unique is taken.
    ResourceAlreadyExists,
    /// An id or name that names nothing.
    ResourceDoesNotExist,
    /// No token, or a token that may not do this.
    Unauthenticated,
    PermissionDenied,
    /// The resource changed since the client read it (a deployment changed by someone else).
    ResourceConflict,
    /// The server is overloaded.
    RequestLimitExceeded,
    InternalError,
    /// A path no route serves (under MLflow's API: a call Kiln does not implement).
    EndpointNotFound,
}

impl ErrorCode {
    /// The HTTP status that carries this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidParameterValue | ErrorCode::ResourceAlreadyExists => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => 404,
            ErrorCode::ResourceConflict => 409,
            ErrorCode::RequestLimitExceeded => 429,
            ErrorCode::InternalError => 500,
        }
    }
}

/// `{"error_code": …, "message": …, "field": …}`: `field` names the offending input
/// (`metrics[3].value`, `params.lr`) when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub error_code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(error_code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { error_code, message: message.into(), field: None }
    }

    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError { error_code: ErrorCode::InvalidParameterValue, message: format!("{field}: {}", message.into()), field: Some(field) }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorCode::ResourceDoesNotExist, format!("{what} '{id}' not found"))
    }

    pub fn already_exists(what: &str, id: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorCode::ResourceAlreadyExists, format!("{what} '{id}' already exists"))
    }
}

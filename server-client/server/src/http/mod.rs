//! The HTTP face of the store: `app()` builds the router, apart from any listener, so tests
//! serve it on port 0 and the CLI on the configured address.

mod auth;
mod body;
mod gateway;
mod mlflow;
mod mlflow_artifacts;
mod v1;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kiln_api::{ApiError, ErrorCode};

use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::store::{Store, StoreError};

pub use body::JsonBody;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub artifacts: ArtifactStore,
    /// Reads without a token (writes always need one).
    pub open_reads: bool,
    pub max_artifact_bytes: u64,
    pub gateway: Arc<crate::serving::Gateway>,
}

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .nest("/api/v1", v1::routes())
        .nest("/api/2.0/mlflow", mlflow::routes())
        .nest("/ajax-api/2.0/mlflow", mlflow::routes())
        .nest("/api/2.0/mlflow-artifacts", mlflow_artifacts::routes())
        .nest("/ajax-api/2.0/mlflow-artifacts", mlflow_artifacts::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .merge(gateway::routes())
        .fallback(|| async { Failure::from(ApiError::new(ErrorCode::ResourceDoesNotExist, "no such endpoint")) })
        .with_state(state)
}

/// [`app`] behind the gateway's short way for inference requests: what `kiln server` serves.
pub fn front(state: Arc<AppState>) -> gateway::Front {
    gateway::Front::new(app(state.clone()), state)
}

/// Any failure a handler returns; it becomes `{"error_code", "message", "field"}`.
#[derive(Debug)]
pub struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Api(error) => Failure(error),
            other => {
                tracing::error!(error = %other, "store failure");
                Failure(ApiError::new(ErrorCode::InternalError, other.to_string()))
            }
        }
    }
}

impl From<ArtifactError> for Failure {
    fn from(error: ArtifactError) -> Self {
        match error {
            ArtifactError::TooLarge { .. } | ArtifactError::Body(_) => Failure(ApiError::invalid("body", error.to_string())),
            ArtifactError::Io { .. } | ArtifactError::Remote { .. } | ArtifactError::BadUrl(_) => {
                tracing::error!(%error, "artifact storage failure");
                Failure(ApiError::new(ErrorCode::InternalError, error.to_string()))
            }
        }
    }
}

impl From<crate::serving::ServingError> for Failure {
    fn from(error: crate::serving::ServingError) -> Self {
        match error {
            crate::serving::ServingError::Api(error) => Failure(error),
            crate::serving::ServingError::Store(error) => error.into(),
            crate::serving::ServingError::Instance(error) => {
                tracing::error!(%error, "starting an instance");
                Failure(ApiError::new(ErrorCode::InternalError, error.to_string()))
            }
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.error_code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

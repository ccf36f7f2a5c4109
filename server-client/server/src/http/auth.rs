//! Bearer tokens: every write needs one; reads too unless the server was started with open
//! reads. The caller's identity rides along as a request extension for admin-only handlers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use kiln_api::{ApiError, ErrorCode};

use super::{AppState, Failure};
use crate::store::TokenInfo;

/// The authenticated caller, when a valid token came with the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<TokenInfo>);

impl Caller {
    pub fn require_admin(&self) -> Result<(), Failure> {
        match &self.0 {
            Some(info) if info.admin => Ok(()),
            Some(info) => Err(ApiError::new(ErrorCode::PermissionDenied, format!("token '{}' is not an admin token", info.name)).into()),
            None => Err(ApiError::new(ErrorCode::Unauthenticated, "an admin token is required").into()),
        }
    }
}

fn is_read(request: &Request) -> bool {
    let path = request.uri().path();
    matches!(*request.method(), Method::GET | Method::HEAD)
        || path.ends_with("/runs/search")
        || path.ends_with("/experiments/search")
        || path.ends_with("/api/v1/metrics/history")
}

pub async fn require_token(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Result<Response, Failure> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned);
    let caller = match presented {
        Some(secret) => match state.store.token(&secret).await? {
            Some(info) => Some(info),
            None => return Err(ApiError::new(ErrorCode::Unauthenticated, "the bearer token is not known to this server").into()),
        },
        None => None,
    };
    let open = request.uri().path().ends_with("/health") || (state.open_reads && is_read(&request));
    if caller.is_none() && !open {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "this request needs 'Authorization: Bearer TOKEN' (set KILN_TOKEN; the admin token is in the server's data dir)",
        )
        .into());
    }
    request.extensions_mut().insert(Caller(caller));
    Ok(next.run(request).await)
}

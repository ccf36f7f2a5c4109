//! `/v2`: the Open Inference Protocol v2 for deployed handles, in front of their instances.
//! Inference is open (no token), as on KServe; deploying is `/api/v1/deployments` and needs
//! one. Every answer names the version that gave it (`model_version` in the body and the
//! `kiln-model-version` header).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kiln_api::oip::{Live, ModelReady, OipError, Ready, ServerMetadata};

use super::AppState;
use crate::serving::Answer;

type Shared = State<Arc<AppState>>;

/// The largest request body the gateway takes.
pub const MAX_BODY: usize = 64 << 20;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2", get(|| async { axum::Json(ServerMetadata { name: "kiln".into(), version: env!("CARGO_PKG_VERSION").into(), extensions: vec![] }) }))
        .route("/v2/health/live", get(|| async { axum::Json(Live { live: true }) }))
        .route("/v2/health/ready", get(|| async { axum::Json(Ready { ready: true }) }))
        .route("/v2/models/{handle}", get(|State(s): Shared, Path(handle): Path<String>| async move { reply(s.gateway.metadata(&handle).await) }))
        .route("/v2/models/{handle}/versions/{version}", get(|State(s): Shared, Path((handle, _version)): Path<(String, String)>| async move { reply(s.gateway.metadata(&handle).await) }))
        .route("/v2/models/{handle}/ready", get(|State(s): Shared, Path(handle): Path<String>| async move { ready(&s, &handle, None) }))
        .route("/v2/models/{handle}/versions/{version}/ready", get(|State(s): Shared, Path((handle, version)): Path<(String, String)>| async move { ready(&s, &handle, Some(&version)) }))
        .route("/v2/models/{handle}/infer", post(|State(s): Shared, Path(handle): Path<String>, body: Bytes| async move { reply(s.gateway.infer(&handle, None, body).await) }))
        .route(
            "/v2/models/{handle}/versions/{version}/infer",
            post(|State(s): Shared, Path((handle, version)): Path<(String, String)>, body: Bytes| async move {
                match version.parse::<i64>() {
                    Ok(v) => reply(s.gateway.infer(&handle, Some(v), body).await),
                    Err(_) => error(StatusCode::BAD_REQUEST, OipError::at("version", format!("'{version}' is not a version number"))),
                }
            }),
        )
        .route("/v2/models/{handle}/feedback", post(feedback))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(json_errors))
}

/// axum's own refusals (a body over the limit, a wrong method) as `{"error": …}` too; a body
/// over the limit is a bad request like any other malformed body.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.is_success() || is_json {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return error(StatusCode::BAD_REQUEST, OipError::at("body", format!("larger than {} MiB", MAX_BODY >> 20)));
    }
    let body = axum::body::to_bytes(response.into_body(), 64 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    error(status, OipError::new(if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text }))
}

fn error(status: StatusCode, error: OipError) -> Response {
    (status, axum::Json(error)).into_response()
}

fn reply(answer: Answer) -> Response {
    let mut response = (answer.status, [(axum::http::header::CONTENT_TYPE, "application/json")], answer.body).into_response();
    if let Some(version) = answer.version
        && let Ok(value) = version.to_string().parse()
    {
        response.headers_mut().insert("kiln-model-version", value);
    }
    response
}

fn ready(state: &AppState, handle: &str, version: Option<&str>) -> Response {
    let version = match version.map(str::parse::<i64>) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, OipError::new("the version is not a number")),
        None => None,
    };
    match state.gateway.ready(handle, version) {
        Some(ready) => axum::Json(ModelReady { name: handle.to_owned(), ready }).into_response(),
        None => error(StatusCode::NOT_FOUND, OipError::new(format!("no model `{handle}` is deployed here"))),
    }
}

/// `{"id": …, "reward": …}`, or Seldon's `{"response": {…}, "reward": …}` (the response the
/// gateway gave, whose `id` or `model_version` names what is rewarded).
async fn feedback(State(state): Shared, Path(handle): Path<String>, body: Bytes) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, OipError::at("body", e)),
    };
    let Some(reward) = value["reward"].as_f64() else {
        return error(StatusCode::BAD_REQUEST, OipError::at("reward", "a number in [0, 1] is required"));
    };
    let id = value["id"].as_str().or_else(|| value["response"]["id"].as_str());
    let version = value["response"]["model_version"].as_str().and_then(|v| v.parse().ok()).or_else(|| value["response"]["model_version"].as_i64());
    match state.gateway.feedback(&handle, id, version, reward) {
        Ok(version) => axum::Json(serde_json::json!({ "model_version": version.to_string() })).into_response(),
        Err((status, e)) => error(status, e),
    }
}

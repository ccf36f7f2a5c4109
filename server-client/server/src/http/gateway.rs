//! `/v2`: the Open Inference Protocol v2 for deployed handles, in front of their instances.
//! Inference is open (no token), as on KServe; deploying is `/api/v1/deployments` and needs
//! one. Every answer names the version that gave it (`model_version` in the body and the
//! `kiln-model-version` header).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kiln_api::oip::{Live, ModelReady, OipError, Ready, ServerMetadata, binary};

use super::AppState;
use crate::serving::Answer;
use crate::serving::refusal::Refusal;

type Shared = State<Arc<AppState>>;

/// The largest request body the gateway takes.
pub const MAX_BODY: usize = 64 << 20;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v2",
            get(|| async {
                axum::Json(ServerMetadata { name: "kiln".into(), version: env!("CARGO_PKG_VERSION").into(), extensions: vec![binary::EXTENSION.into()] })
            }),
        )
        .route("/v2/health/live", get(|| async { axum::Json(Live { live: true }) }))
        .route("/v2/health/ready", get(|| async { axum::Json(Ready { ready: true }) }))
        .route("/v2/models/{handle}", get(|State(s): Shared, Path(handle): Path<String>| async move { reply(s.gateway.metadata(&handle).await) }))
        .route(
            "/v2/models/{handle}/versions/{version}",
            get(|State(s): Shared, Path((handle, _version)): Path<(String, String)>| async move { reply(s.gateway.metadata(&handle).await) }),
        )
        .route("/v2/models/{handle}/ready", get(|State(s): Shared, Path(handle): Path<String>| async move { ready(&s, &handle, None) }))
        .route(
            "/v2/models/{handle}/versions/{version}/ready",
            get(|State(s): Shared, Path((handle, version)): Path<(String, String)>| async move { ready(&s, &handle, Some(&version)) }),
        )
        .route(
            "/v2/models/{handle}/infer",
            post(|State(s): Shared, Path(handle): Path<String>, headers: HeaderMap, body: Bytes| async move {
                reply(s.gateway.infer(&handle, None, body, header_length(&headers)).await)
            }),
        )
        .route(
            "/v2/models/{handle}/versions/{version}/infer",
            post(|State(s): Shared, Path((handle, version)): Path<(String, String)>, headers: HeaderMap, body: Bytes| async move {
                match version.parse::<i64>() {
                    Ok(v) => reply(s.gateway.infer(&handle, Some(v), body, header_length(&headers)).await),
                    Err(_) => refuse(Refusal::invalid("version", format!("'{version}' is not a version number"))),
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
        return refuse(too_large());
    }
    let body = axum::body::to_bytes(response.into_body(), 64 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    error(status, OipError::new(if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text }))
}

/// The gateway's own refusals, each with the status [`Refusal::status`] gives it.
fn refuse(refusal: Refusal) -> Response {
    (refusal.status(), axum::Json(refusal.body())).into_response()
}

/// What axum's own refusals say (a wrong method, a route with no handler), kept as they are.
fn error(status: StatusCode, error: OipError) -> Response {
    (status, axum::Json(error)).into_response()
}

fn too_large() -> Refusal {
    Refusal::invalid("body", format!("larger than {} MiB", MAX_BODY >> 20))
}

/// `Inference-Header-Content-Length`: where the JSON of a body with binary tensors ends.
fn header_length(headers: &HeaderMap) -> Option<HeaderValue> {
    headers.get(binary::HEADER_LENGTH).cloned()
}

fn reply(answer: Answer) -> Response {
    let content_type = if answer.header_length.is_some() { binary::CONTENT_TYPE } else { "application/json" };
    let mut response = (answer.status, [(axum::http::header::CONTENT_TYPE, content_type)], answer.body).into_response();
    if let Some(length) = answer.header_length {
        response.headers_mut().insert(binary::HEADER_LENGTH, length);
    }
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
        Some(Err(_)) => return refuse(Refusal::invalid("version", "is not a number")),
        None => None,
    };
    match state.gateway.ready(handle, version) {
        Some(ready) => axum::Json(ModelReady { name: handle.to_owned(), ready }).into_response(),
        None => refuse(Refusal::NotDeployed { handle: handle.to_owned() }),
    }
}

/// `{"id": …, "reward": …}`, or Seldon's `{"response": {…}, "reward": …}` (the response the
/// gateway gave, whose `id` or `model_version` names what is rewarded).
async fn feedback(State(state): Shared, Path(handle): Path<String>, body: Bytes) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(Refusal::invalid("body", e)),
    };
    let Some(reward) = value["reward"].as_f64() else {
        return refuse(Refusal::invalid("reward", "a number in [0, 1] is required"));
    };
    let id = value["id"].as_str().or_else(|| value["response"]["id"].as_str());
    let version = value["response"]["model_version"].as_str().and_then(|v| v.parse().ok()).or_else(|| value["response"]["model_version"].as_i64());
    match state.gateway.feedback(&handle, id, version, reward) {
        Ok(version) => axum::Json(serde_json::json!({ "model_version": version.to_string() })).into_response(),
        Err(refusal) => refuse(refusal),
    }
}

/// What stands in front of the router: `POST /v2/models/{handle}/infer`, the one request a
/// deployed model gets at volume, goes straight to [`crate::serving::Gateway::infer`],
/// without the router's matching, extractors and layers (about 1 µs of the gateway's 16 µs
/// of CPU per request, by perf); every other request goes to the router. The answers, and
/// the refusals of bad bodies, are the same either way: the OIP tests run through this path.
#[derive(Clone)]
pub struct Front {
    router: Router,
    state: Arc<AppState>,
}

impl Front {
    pub fn new(router: Router, state: Arc<AppState>) -> Front {
        Front { router, state }
    }
}

type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl tower_service::Service<axum::extract::Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<Boxed, <Router as tower_service::Service<axum::extract::Request>>::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        use futures_util::future::Either;
        match infer_handle(&request) {
            Some(handle) => {
                let state = self.state.clone();
                let (parts, body) = request.into_parts();
                Either::Left(Box::pin(async move { Ok(infer(&state, &handle, header_length(&parts.headers), body).await) }))
            }
            None => Either::Right(tower_service::Service::call(&mut self.router, request)),
        }
    }
}

/// `{handle}` of a `POST /v2/models/{handle}/infer`; `None` for anything else, and for a
/// handle with escapes, which the router decodes.
fn infer_handle(request: &axum::extract::Request) -> Option<String> {
    if request.method() != axum::http::Method::POST {
        return None;
    }
    let handle = request.uri().path().strip_prefix("/v2/models/")?.strip_suffix("/infer")?;
    (!handle.is_empty() && !handle.contains(['/', '%'])).then(|| handle.to_owned())
}

/// The body, at most [`MAX_BODY`], then the gateway's answer: what the `infer` route does.
async fn infer(state: &AppState, handle: &str, header_length: Option<HeaderValue>, body: axum::body::Body) -> Response {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => reply(state.gateway.infer(handle, None, body.to_bytes(), header_length).await),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => refuse(too_large()),
        Err(e) => refuse(Refusal::invalid("body", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_infer_posts_take_the_short_way() {
        let request = |method: &str, path: &str| axum::extract::Request::builder().method(method).uri(path).body(axum::body::Body::empty()).unwrap();
        let cases = [
            ("POST", "/v2/models/iris/infer", Some("iris")),
            ("POST", "/v2/models/iris_2-b/infer?x=1", Some("iris_2-b")),
            ("GET", "/v2/models/iris/infer", None),
            ("POST", "/v2/models/iris/versions/2/infer", None),
            ("POST", "/v2/models//infer", None),
            ("POST", "/v2/models/ir%69s/infer", None),
            ("POST", "/v2/models/iris/feedback", None),
            ("POST", "/api/v1/models/iris/infer", None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(infer_handle(&request(method, path)).as_deref(), expected, "{method} {path}");
        }
    }
}

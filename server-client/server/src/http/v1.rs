//! `/api/v1`: Kiln's own API, the one the SDK and the CLI speak.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use kiln_api::{
    ApiError, Artifact, AttachArtifact, Change, CodePackage, CodePackages, CreateExperiment, CreateModel, CreateModelVersion, CreateRun, CreateSchedule,
    CreateToken, Dataset, DatasetVersion, Deploy, Deployment, DeploymentStatus, Experiment, Health, Histories, HistoryRequest, Lineage, LogBatch,
    MetricHistory, ModelVersion, NewToken, RegisterCodePackage, RegisterDatasetVersion, RegisteredModel, Run, RunArtifact, RunInputs, RunPage, RunView,
    Schedule, SearchRuns, SetAlias, Traffic, UpdateRun, limits,
};
use serde::Deserialize;

use super::auth::Caller;
use super::{AppState, Failure, JsonBody};
use crate::serving::Asker;

type Shared = State<Arc<AppState>>;
type Reply<T> = Result<Json<T>, Failure>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(health))
        .route("/experiments", get(experiments).post(create_experiment))
        .route("/experiments/{key}", get(experiment))
        .route("/runs", post(create_run))
        .route("/runs/search", post(search_runs))
        .route("/runs/{id}", get(run).patch(update_run).delete(delete_run))
        .route("/runs/{id}/restore", post(restore_run))
        .route("/runs/{id}/log", post(log_batch))
        .route("/runs/{id}/metric-history", get(metric_history))
        .route("/metrics/history", post(histories))
        .route("/runs/{id}/artifacts", post(attach_artifact))
        .route("/artifacts", post(upload_artifact))
        .route("/artifacts/{sha256}", get(download_artifact))
        .route("/tokens", post(create_token))
        .route("/models", get(models).post(create_model))
        .route("/models/{name}", get(model))
        .route("/models/{name}/versions", get(model_versions).post(create_model_version))
        .route("/models/{name}/versions/{version}", get(model_version))
        .route("/models/{name}/aliases/{alias}", get(version_by_alias).put(set_alias).delete(delete_alias))
        .route("/datasets", get(datasets))
        .route("/datasets/{name}/versions", get(dataset_versions).post(register_dataset_version))
        .route("/code-packages", get(code_packages).post(register_code_package))
        .route("/code-packages/batch", post(register_code_packages))
        .route("/runs/{id}/inputs", post(add_run_inputs))
        .route("/lineage/{name}/{version}", get(lineage))
        .route("/schedules", get(schedules).post(create_schedule))
        .route("/deployments", get(deployments))
        .route("/deployments/{handle}", get(deployment).put(deploy))
        .route("/deployments/{handle}/promote", post(promote))
        .route("/deployments/{handle}/rollback", post(rollback))
        .route("/deployments/{handle}/traffic", get(traffic))
        .route("/deployments/{handle}/status", get(deployment_status))
        .route("/schedules/{id}", get(schedule).delete(delete_schedule))
}

async fn deployments(State(state): Shared) -> Reply<Vec<Deployment>> {
    Ok(Json(state.store.deployments().await?))
}

async fn deployment(State(state): Shared, Path(handle): Path<String>) -> Reply<Deployment> {
    Ok(Json(state.store.deployment(&handle).await?))
}

/// Who asks, for a deployment's history: the user a client names in `Kiln-Actor` (the
/// Jupyter server extension names the signed-in user, the CLI the local one) and the token
/// that vouches for it.
fn actor(caller: &Caller, headers: &HeaderMap) -> Option<String> {
    let named =
        headers.get("kiln-actor").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(|v| v.chars().take(200).collect::<String>());
    let token = caller.0.as_ref().map(|t| t.name.as_str());
    match (named, token) {
        (Some(user), Some(token)) => Some(format!("{user} (token {token})")),
        (Some(user), None) => Some(user),
        (None, Some(token)) => Some(format!("token {token}")),
        (None, None) => None,
    }
}

/// A promote or rollback body: optional (older clients send none, or `{}`).
fn change_body(bytes: &[u8]) -> Result<Change, Failure> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Change::default());
    }
    Ok(super::body::parse(bytes)?)
}

async fn deploy(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    JsonBody(body): JsonBody<Deploy>,
) -> Reply<Deployment> {
    Ok(Json(state.gateway.deploy(&handle, &body, actor(&caller, &headers).as_deref()).await?))
}

async fn promote(State(state): Shared, Extension(caller): Extension<Caller>, headers: HeaderMap, Path(handle): Path<String>, body: Bytes) -> Reply<Deployment> {
    let change = change_body(&body)?;
    let actor = actor(&caller, &headers);
    Ok(Json(state.gateway.promote(&handle, Asker { expected_revision: change.expected_revision, actor: actor.as_deref() }).await?))
}

async fn rollback(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    body: Bytes,
) -> Reply<Deployment> {
    let change = change_body(&body)?;
    let actor = actor(&caller, &headers);
    Ok(Json(state.gateway.rollback(&handle, Asker { expected_revision: change.expected_revision, actor: actor.as_deref() }).await?))
}

/// What this server runs for a handle (it need not be deployed yet: a first deploy's
/// progress is there while it starts).
async fn deployment_status(State(state): Shared, Path(handle): Path<String>) -> Reply<DeploymentStatus> {
    Ok(Json(state.gateway.status(&handle)))
}

#[derive(Deserialize)]
struct TrafficQuery {
    #[serde(default)]
    since: i64,
    /// 60 000 (minutes, the default) or 10 000 (10 s, kept for the last hour).
    #[serde(default = "minute")]
    bucket_ms: i64,
}

fn minute() -> i64 {
    crate::store::MINUTE_MS
}

async fn traffic(State(state): Shared, Path(handle): Path<String>, Query(query): Query<TrafficQuery>) -> Reply<Traffic> {
    state.store.deployment(&handle).await?;
    Ok(Json(state.gateway.traffic(&handle, query.since, query.bucket_ms).await?))
}

async fn schedules(State(state): Shared, Query(query): Query<OptionalHandle>) -> Reply<Vec<Schedule>> {
    Ok(Json(state.store.schedules(query.handle.as_deref().unwrap_or("")).await?))
}

#[derive(Deserialize)]
struct OptionalHandle {
    handle: Option<String>,
}

async fn create_schedule(State(state): Shared, JsonBody(body): JsonBody<CreateSchedule>) -> Reply<Schedule> {
    Ok(Json(state.store.create_schedule(&body).await?))
}

async fn schedule(State(state): Shared, Path(id): Path<String>) -> Reply<Schedule> {
    Ok(Json(state.store.schedule(&id).await?))
}

async fn delete_schedule(State(state): Shared, Path(id): Path<String>) -> Reply<serde_json::Value> {
    state.store.delete_schedule(&id).await?;
    Ok(Json(serde_json::json!({})))
}

async fn health(State(state): Shared) -> Json<Health> {
    Json(Health {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        db: format!("{:?}", state.store.backend()).to_lowercase(),
        artifacts: state.artifacts.describe(),
    })
}

async fn experiments(State(state): Shared) -> Reply<Vec<Experiment>> {
    Ok(Json(state.store.experiments(kiln_api::Lifecycle::ActiveOnly).await?))
}

async fn create_experiment(State(state): Shared, JsonBody(body): JsonBody<CreateExperiment>) -> Reply<Experiment> {
    Ok(Json(state.store.create_experiment(&body.name).await?))
}

async fn experiment(State(state): Shared, Path(key): Path<String>) -> Reply<Experiment> {
    Ok(Json(state.store.experiment(&key).await?))
}

async fn create_run(State(state): Shared, JsonBody(body): JsonBody<CreateRun>) -> Reply<Run> {
    Ok(Json(state.store.create_run(&body).await?))
}

async fn run(State(state): Shared, Path(id): Path<String>) -> Reply<RunView> {
    Ok(Json(state.store.run(&id).await?))
}

async fn update_run(State(state): Shared, Path(id): Path<String>, JsonBody(body): JsonBody<UpdateRun>) -> Reply<Run> {
    Ok(Json(state.store.update_run(&id, &body).await?))
}

/// Moves a run to the trash: hidden from searches, refusing writes, restorable.
async fn delete_run(State(state): Shared, Path(id): Path<String>) -> Reply<serde_json::Value> {
    state.store.set_run_deleted(&id, true).await?;
    Ok(Json(serde_json::json!({})))
}

async fn restore_run(State(state): Shared, Path(id): Path<String>) -> Reply<serde_json::Value> {
    state.store.set_run_deleted(&id, false).await?;
    Ok(Json(serde_json::json!({})))
}

async fn log_batch(State(state): Shared, Path(id): Path<String>, JsonBody(body): JsonBody<LogBatch>) -> Reply<serde_json::Value> {
    state.store.log_batch(&id, &body).await?;
    Ok(Json(serde_json::json!({})))
}

#[derive(Deserialize)]
struct HistoryQuery {
    key: String,
}

async fn metric_history(State(state): Shared, Path(id): Path<String>, Query(query): Query<HistoryQuery>) -> Reply<MetricHistory> {
    Ok(Json(state.store.metric_history(&id, &query.key).await?))
}

async fn histories(State(state): Shared, JsonBody(body): JsonBody<HistoryRequest>) -> Reply<Histories> {
    Ok(Json(state.store.histories(&body).await?))
}

async fn search_runs(State(state): Shared, JsonBody(body): JsonBody<SearchRuns>) -> Reply<RunPage> {
    Ok(Json(state.store.search_runs(&body).await?))
}

async fn attach_artifact(State(state): Shared, Path(id): Path<String>, JsonBody(body): JsonBody<AttachArtifact>) -> Reply<RunArtifact> {
    Ok(Json(state.store.attach_artifact(&id, &body).await?))
}

/// The body is the raw bytes, streamed; the reply names them by sha256.
async fn upload_artifact(State(state): Shared, body: Body) -> Reply<Artifact> {
    let artifact = state.artifacts.put(body.into_data_stream(), state.max_artifact_bytes).await?;
    state.store.record_artifact(&artifact.sha256, artifact.size).await?;
    Ok(Json(artifact))
}

async fn download_artifact(State(state): Shared, Path(sha256): Path<String>) -> Result<Response, Failure> {
    limits::sha256("sha256", &sha256)?;
    let Some(size) = state.store.artifact_size(&sha256).await? else {
        return Err(ApiError::not_found("artifact", &sha256).into());
    };
    let Some(stream) = state.artifacts.open(&sha256).await? else {
        return Err(ApiError::not_found("artifact bytes", &sha256).into());
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CONTENT_LENGTH, size.to_string())], Body::from_stream(stream)).into_response())
}

async fn create_token(State(state): Shared, Extension(caller): Extension<Caller>, JsonBody(body): JsonBody<CreateToken>) -> Reply<NewToken> {
    caller.require_admin()?;
    let token = state.store.create_token(&body.name, body.admin).await?;
    Ok(Json(NewToken { name: body.name, token }))
}

async fn models(State(state): Shared) -> Reply<Vec<RegisteredModel>> {
    Ok(Json(state.store.models().await?))
}

async fn create_model(State(state): Shared, JsonBody(body): JsonBody<CreateModel>) -> Reply<RegisteredModel> {
    Ok(Json(state.store.create_model(&body).await?))
}

async fn model(State(state): Shared, Path(name): Path<String>) -> Reply<RegisteredModel> {
    Ok(Json(state.store.model(&name).await?))
}

async fn model_versions(State(state): Shared, Path(name): Path<String>) -> Reply<Vec<ModelVersion>> {
    state.store.model(&name).await?;
    Ok(Json(state.store.model_versions(Some(&name), None).await?))
}

async fn create_model_version(State(state): Shared, Path(name): Path<String>, JsonBody(body): JsonBody<CreateModelVersion>) -> Reply<ModelVersion> {
    Ok(Json(state.store.create_model_version(&name, &body).await?))
}

async fn model_version(State(state): Shared, Path((name, version)): Path<(String, String)>) -> Reply<ModelVersion> {
    let version: i64 = version.parse().map_err(|_| ApiError::invalid("version", format!("'{version}' is not a version number")))?;
    Ok(Json(state.store.model_version(&name, version).await?))
}

async fn version_by_alias(State(state): Shared, Path((name, alias)): Path<(String, String)>) -> Reply<ModelVersion> {
    Ok(Json(state.store.version_by_alias(&name, &alias).await?))
}

async fn set_alias(State(state): Shared, Path((name, alias)): Path<(String, String)>, JsonBody(body): JsonBody<SetAlias>) -> Reply<ModelVersion> {
    state.store.set_alias(&name, &alias, body.version).await?;
    Ok(Json(state.store.model_version(&name, body.version).await?))
}

async fn delete_alias(State(state): Shared, Path((name, alias)): Path<(String, String)>) -> Reply<serde_json::Value> {
    state.store.delete_alias(&name, &alias).await?;
    Ok(Json(serde_json::json!({})))
}

async fn datasets(State(state): Shared) -> Reply<Vec<Dataset>> {
    Ok(Json(state.store.datasets().await?))
}

async fn dataset_versions(State(state): Shared, Path(name): Path<String>) -> Reply<Vec<DatasetVersion>> {
    Ok(Json(state.store.dataset_versions(&name).await?))
}

async fn register_dataset_version(State(state): Shared, Path(name): Path<String>, JsonBody(body): JsonBody<RegisterDatasetVersion>) -> Reply<DatasetVersion> {
    Ok(Json(state.store.register_dataset_version(&name, &body).await?))
}

#[derive(Deserialize)]
struct HandleQuery {
    #[serde(default)]
    handle: String,
}

async fn code_packages(State(state): Shared, Query(query): Query<HandleQuery>) -> Reply<Vec<CodePackage>> {
    Ok(Json(state.store.code_packages(&query.handle).await?))
}

async fn register_code_package(State(state): Shared, JsonBody(body): JsonBody<RegisterCodePackage>) -> Reply<CodePackage> {
    Ok(Json(state.store.register_code_package(&body).await?))
}

async fn register_code_packages(State(state): Shared, JsonBody(body): JsonBody<CodePackages<RegisterCodePackage>>) -> Reply<CodePackages<CodePackage>> {
    Ok(Json(CodePackages { packages: state.store.register_code_packages(&body.packages).await? }))
}

async fn add_run_inputs(State(state): Shared, Path(id): Path<String>, JsonBody(body): JsonBody<RunInputs>) -> Reply<serde_json::Value> {
    state.store.add_run_inputs(&id, &body).await?;
    Ok(Json(serde_json::json!({})))
}

async fn lineage(State(state): Shared, Path((name, version)): Path<(String, String)>) -> Reply<Lineage> {
    let version: i64 = version.parse().map_err(|_| ApiError::invalid("version", format!("'{version}' is not a version number")))?;
    Ok(Json(state.store.lineage(&name, version).await?))
}

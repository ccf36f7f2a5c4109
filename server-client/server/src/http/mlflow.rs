//! MLflow's tracking and registry REST subset (`/api/2.0/mlflow/…`) over the Kiln store, so
//! the unmodified `mlflow` client logs to Kiln with `MLFLOW_TRACKING_URI` pointing here.
//!
//! Only shapes are translated: the semantics (write-once params, append-only metrics, error
//! codes) are the store's own, which are MLflow's. Unknown request fields are ignored, as
//! MLflow's server does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_api::search::{Attribute, Op, Target, Value as FilterValue, like, parse_filter};
use kiln_api::{
    ApiError, CreateModel, CreateModelVersion, CreateRun, ErrorCode, Experiment, Lifecycle, LogBatch, LoggedModel, Metric, ModelVersion, Param,
    RegisteredModel, RunSource, RunStatus, RunView, SearchRuns, Tag, UpdateRun,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{AppState, Failure, JsonBody, body};
use crate::store::{Direction, MlflowDatasetInput, NewLoggedModel, RunDatasetInput};

type Shared = State<Arc<AppState>>;
type Reply = Result<Json<Value>, Failure>;
type Params = Query<HashMap<String, String>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route("/experiments/search", get(search_experiments).post(search_experiments))
        .route("/runs/create", post(create_run))
        .route("/runs/update", post(update_run))
        .route("/runs/get", get(get_run))
        .route("/runs/search", post(search_runs))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_parameter))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/outputs", post(log_outputs))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route("/experiments/delete-experiment-tag", post(delete_experiment_tag))
        .route("/metrics/get-history", get(metric_history))
        .route("/metrics/get-history-bulk-interval", get(history_bulk_interval))
        .route("/registered-models/create", post(create_registered_model))
        .route("/registered-models/get", get(get_registered_model))
        .route("/registered-models/search", get(search_registered_models).post(search_registered_models))
        .route("/registered-models/alias", get(get_alias).post(set_alias).delete(delete_alias))
        .route("/model-versions/create", post(create_model_version))
        .route("/model-versions/get", get(get_model_version))
        .route("/model-versions/search", get(search_model_versions).post(search_model_versions))
        .route("/model-versions/update", axum::routing::patch(update_model_version))
        .route("/model-versions/delete", axum::routing::delete(delete_model_version))
        .route("/model-versions/set-tag", post(set_model_version_tag))
        .route("/model-versions/delete-tag", axum::routing::delete(delete_model_version_tag))
        .route("/model-versions/transition-stage", post(transition_stage))
        .route("/model-versions/get-download-uri", get(download_uri))
        .route("/registered-models/update", axum::routing::patch(update_registered_model))
        .route("/registered-models/set-tag", post(set_registered_model_tag))
        .route("/registered-models/delete-tag", axum::routing::delete(delete_registered_model_tag))
        .route("/registered-models/get-latest-versions", get(latest_versions).post(latest_versions))
        .route("/logged-models", post(create_logged_model))
        .route("/logged-models/search", post(search_logged_models))
        .route("/logged-models/{model_id}", get(get_logged_model).patch(finalize_logged_model).delete(delete_logged_model))
        .route("/logged-models/{model_id}/tags", axum::routing::patch(set_logged_model_tags))
        .route("/logged-models/{model_id}/tags/{tag_key}", axum::routing::delete(delete_logged_model_tag))
        .route("/logged-models/{model_id}/params", post(log_logged_model_params))
        .fallback(not_served)
}

/// A call of MLflow's API that Kiln does not serve: MLflow's error shape, naming the call.
async fn not_served(method: Method, uri: axum::http::Uri) -> Failure {
    ApiError::new(
        ErrorCode::EndpointNotFound,
        format!("{method} /api/2.0/mlflow{} is not supported by this Kiln server's MLflow API (docs/store.md lists what is)", uri.path()),
    )
    .into()
}

fn stage(deleted_at: Option<i64>) -> &'static str {
    if deleted_at.is_some() { "deleted" } else { "active" }
}

/// `run_view_type` / `view_type`: MLflow's enum by name or number; active only by default.
fn lifecycle(value: &Option<Value>, field: &str) -> Result<Lifecycle, Failure> {
    let text = match value {
        None | Some(Value::Null) => return Ok(Lifecycle::ActiveOnly),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    Lifecycle::parse_mlflow(&text).ok_or_else(|| ApiError::invalid(field, format!("'{text}' is not ACTIVE_ONLY, DELETED_ONLY or ALL")).into())
}

fn required<'a>(params: &'a HashMap<String, String>, key: &str) -> Result<&'a str, Failure> {
    params.get(key).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| ApiError::invalid(key, "missing value").into())
}

fn run_id(run_id: &Option<String>, run_uuid: &Option<String>) -> Result<String, Failure> {
    run_id.clone().or_else(|| run_uuid.clone()).filter(|id| !id.is_empty()).ok_or_else(|| ApiError::invalid("run_id", "missing value").into())
}

fn version_number(text: &str) -> Result<i64, Failure> {
    text.parse().map_err(|_| ApiError::invalid("version", format!("'{text}' is not a version number")).into())
}

fn experiment_json(experiment: &Experiment) -> Value {
    json!({
        "experiment_id": experiment.id,
        "name": experiment.name,
        "artifact_location": format!("mlflow-artifacts:/{}", experiment.id),
        "lifecycle_stage": stage(experiment.deleted_at),
        "creation_time": experiment.created_at,
        "last_update_time": experiment.deleted_at.unwrap_or(experiment.created_at),
        "tags": experiment.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
    })
}

fn run_info_json(run: &kiln_api::Run) -> Value {
    let mut info = json!({
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": "",
        "status": run.status.as_str(),
        "start_time": run.start_time,
        "artifact_uri": format!("mlflow-artifacts:/{}/{}/artifacts", run.experiment_id, run.id),
        "lifecycle_stage": stage(run.deleted_at),
    });
    if let Some(end) = run.end_time {
        info["end_time"] = json!(end);
    }
    info
}

fn run_json(view: &RunView) -> Value {
    let mut tags: Vec<Value> = view.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect();
    if !view.tags.iter().any(|t| t.key == "mlflow.runName") {
        tags.push(json!({"key": "mlflow.runName", "value": view.run.name}));
    }
    json!({
        "info": run_info_json(&view.run),
        "data": {
            "metrics": view.metrics.iter().map(metric_json).collect::<Vec<_>>(),
            "params": view.params.iter().map(|p| json!({"key": p.key, "value": p.value})).collect::<Vec<_>>(),
            "tags": tags,
        },
        "inputs": {},
    })
}

fn metric_json(metric: &Metric) -> Value {
    json!({"key": metric.key, "value": metric.value, "timestamp": metric.timestamp, "step": metric.step})
}

fn version_json(version: &ModelVersion) -> Value {
    json!({
        "name": version.name,
        "version": version.version.to_string(),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "current_stage": version.stage.as_deref().unwrap_or("None"),
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id.clone().unwrap_or_default(),
        "status": "READY",
        "tags": version.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
        "aliases": version.aliases,
        "run_link": "",
    })
}

async fn model_json(state: &AppState, model: &RegisteredModel) -> Result<Value, Failure> {
    let latest = match model.latest_version {
        Some(version) => vec![version_json(&state.store.model_version(&model.name, version).await?)],
        None => Vec::new(),
    };
    Ok(json!({
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description,
        "tags": model.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
        "aliases": model.aliases.iter().map(|a| json!({"alias": a.alias, "version": a.version.to_string()})).collect::<Vec<_>>(),
        "latest_versions": latest,
    }))
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: String,
}

impl From<KeyValue> for Tag {
    fn from(kv: KeyValue) -> Tag {
        Tag { key: kv.key, value: kv.value }
    }
}

#[derive(Deserialize)]
struct CreateExperimentBody {
    name: String,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_experiment(State(state): Shared, JsonBody(body): JsonBody<CreateExperimentBody>) -> Reply {
    let tags: Vec<Tag> = body.tags.into_iter().map(Tag::from).collect();
    let experiment = state.store.create_experiment_tagged(&body.name, &tags).await?;
    Ok(Json(json!({"experiment_id": experiment.id})))
}

async fn get_experiment(State(state): Shared, Query(params): Params) -> Reply {
    let id = required(&params, "experiment_id")?;
    if id.parse::<i64>().is_err() {
        return Err(ApiError::not_found("experiment", id).into());
    }
    let experiment = state.store.experiment(id).await?;
    if experiment.id != id {
        return Err(ApiError::not_found("experiment", id).into());
    }
    Ok(Json(json!({"experiment": experiment_json(&experiment)})))
}

async fn get_experiment_by_name(State(state): Shared, Query(params): Params) -> Reply {
    let name = required(&params, "experiment_name")?;
    let experiment = state.store.experiment(name).await?;
    if experiment.name != name {
        return Err(ApiError::not_found("experiment", name).into());
    }
    Ok(Json(json!({"experiment": experiment_json(&experiment)})))
}

#[derive(Deserialize, Default)]
struct SearchBody {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    #[serde(default)]
    page_token: Option<String>,
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    run_view_type: Option<Value>,
    #[serde(default)]
    view_type: Option<Value>,
}

/// A search request from a GET query or a POST body.
fn search_request(method: &Method, params: &HashMap<String, String>, bytes: &Bytes) -> Result<SearchBody, Failure> {
    if *method == Method::GET || bytes.is_empty() {
        Ok(SearchBody {
            filter: params.get("filter").cloned(),
            max_results: params.get("max_results").and_then(|m| m.parse().ok()),
            order_by: params.get("order_by").cloned().into_iter().collect(),
            page_token: params.get("page_token").cloned(),
            experiment_ids: Vec::new(),
            run_view_type: None,
            view_type: params.get("view_type").map(|v| Value::String(v.clone())),
        })
    } else {
        Ok(body::parse(bytes)?)
    }
}

/// `name = 'x'`, `name LIKE 'x%'`, `name ILIKE …`, `name != 'x'`, `tags.k = 'v'`, `tags.k != 'v'`
/// (what MLflow clients send; MLflow 3 adds `tags.\`mlflow.prompt.is_prompt\` != 'true'` itself).
/// A missing tag satisfies `!=`.
fn name_matches(filter: &str, name: &str, tags: &[Tag], extra: impl Fn(Attribute, &str) -> Option<bool>) -> Result<bool, Failure> {
    let filter = parse_filter(filter)?;
    for clause in filter.clauses {
        let FilterValue::Text(value) = &clause.value else {
            return Err(ApiError::invalid("filter", "only string comparisons are supported here").into());
        };
        let holds = match (&clause.target, clause.op) {
            (Target::Attribute(Attribute::RunName), Op::Eq) => name == value,
            (Target::Attribute(Attribute::RunName), Op::Ne) => name != value,
            (Target::Attribute(Attribute::RunName), Op::Like) => like(name, value, false),
            (Target::Attribute(Attribute::RunName), Op::ILike) => like(name, value, true),
            (Target::Tag(key), Op::Eq) => tags.iter().any(|t| t.key == *key && t.value == *value),
            (Target::Tag(key), Op::Ne) => !tags.iter().any(|t| t.key == *key && t.value == *value),
            (Target::Attribute(attribute), Op::Eq) => match extra(*attribute, value) {
                Some(holds) => holds,
                None => return Err(ApiError::invalid("filter", format!("unsupported attribute {attribute:?} here")).into()),
            },
            _ => return Err(ApiError::invalid("filter", "supported: name =, !=, LIKE, ILIKE; tags.KEY =, !=; run_id = for versions").into()),
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn search_experiments(State(state): Shared, method: Method, Query(params): Params, bytes: Bytes) -> Reply {
    let request = search_request(&method, &params, &bytes)?;
    let view = lifecycle(&request.view_type, "view_type")?;
    let filter = request.filter.unwrap_or_default();
    let mut found = Vec::new();
    for experiment in state.store.experiments(view).await? {
        if name_matches(&filter, &experiment.name, &experiment.tags, |_, _| None)? {
            found.push(experiment_json(&experiment));
        }
    }
    if let Some(max) = request.max_results {
        found.truncate(max.max(0) as usize);
    }
    Ok(Json(json!({"experiments": found})))
}

#[derive(Deserialize)]
struct CreateRunBody {
    #[serde(default)]
    experiment_id: Option<String>,
    #[serde(default)]
    run_name: Option<String>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_run(State(state): Shared, JsonBody(body): JsonBody<CreateRunBody>) -> Reply {
    let experiment_id = body.experiment_id.unwrap_or_else(|| "0".to_owned());
    let experiment = state.store.experiment(&experiment_id).await?;
    if experiment.id != experiment_id {
        return Err(ApiError::not_found("experiment", experiment_id).into());
    }
    let tags: Vec<Tag> = body.tags.into_iter().map(Tag::from).collect();
    let name = body.run_name.filter(|n| !n.is_empty()).or_else(|| tags.iter().find(|t| t.key == "mlflow.runName").map(|t| t.value.clone()));
    let run = state.store.create_run(&CreateRun { experiment: experiment.name, name, source: RunSource::External, start_time: body.start_time, tags }).await?;
    Ok(Json(json!({"run": run_json(&state.store.run(&run.id).await?)})))
}

#[derive(Deserialize)]
struct UpdateRunBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    end_time: Option<i64>,
    #[serde(default)]
    run_name: Option<String>,
}

async fn update_run(State(state): Shared, JsonBody(body): JsonBody<UpdateRunBody>) -> Reply {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let status = match &body.status {
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| ApiError::invalid("status", format!("'{text}' is not a run status")))?),
        None => None,
    };
    let run = state.store.update_run(&id, &UpdateRun { status, end_time: body.end_time, name: body.run_name.filter(|n| !n.is_empty()) }).await?;
    Ok(Json(json!({"run_info": run_info_json(&run)})))
}

async fn get_run(State(state): Shared, Query(params): Params) -> Reply {
    let id = run_id(&params.get("run_id").cloned(), &params.get("run_uuid").cloned())?;
    let mut run = run_json(&state.store.run(&id).await?);
    let datasets: Vec<Value> = state.store.run_dataset_inputs(&id).await?.iter().map(dataset_input_json).collect();
    let used: Vec<Value> = state.store.run_logged_models(&id, Direction::Input).await?.into_iter().map(|(m, _)| json!({"model_id": m})).collect();
    let made: Vec<Value> =
        state.store.run_logged_models(&id, Direction::Output).await?.into_iter().map(|(m, step)| json!({"model_id": m, "step": step})).collect();
    run["inputs"] = json!({"dataset_inputs": datasets, "model_inputs": used});
    run["outputs"] = json!({"model_outputs": made});
    Ok(Json(json!({"run": run})))
}

/// A run's input as MLflow's `DatasetInput`: what its client sent, or, for a version Kiln
/// registered itself, the fingerprint's head as the digest and Kiln as the source.
fn dataset_input_json(input: &RunDatasetInput) -> Value {
    let v = &input.version;
    let dataset = match &input.mlflow {
        Some(m) => json!({"name": v.name, "digest": m.digest, "source_type": m.source_type, "source": m.source, "schema": m.schema, "profile": m.profile}),
        None => json!({
            "name": v.name,
            "digest": &v.fingerprint[..8.min(v.fingerprint.len())],
            "source_type": "kiln",
            "source": json!({"dataset_version": v.id, "fingerprint": v.fingerprint}).to_string(),
            "schema": json!({"kiln_columns": v.schema}).to_string(),
            "profile": json!({"num_rows": v.rows}).to_string(),
        }),
    };
    json!({"tags": input.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(), "dataset": dataset})
}

#[derive(Deserialize)]
struct LogInputsBody {
    run_id: String,
    #[serde(default)]
    datasets: Vec<DatasetInputBody>,
    #[serde(default)]
    models: Vec<Value>,
}

#[derive(Deserialize)]
struct DatasetInputBody {
    #[serde(default)]
    tags: Vec<KeyValue>,
    dataset: DatasetBody,
}

#[derive(Deserialize)]
struct DatasetBody {
    name: String,
    digest: String,
    source_type: String,
    source: String,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

/// `log_input`: each dataset becomes (or is found as) a Kiln dataset version the run read.
async fn log_inputs(State(state): Shared, JsonBody(body): JsonBody<LogInputsBody>) -> Reply {
    let models = model_links(&body.models)?;
    let inputs: Vec<MlflowDatasetInput> = body
        .datasets
        .into_iter()
        .map(|d| MlflowDatasetInput {
            name: d.dataset.name,
            digest: d.dataset.digest,
            source_type: d.dataset.source_type,
            source: d.dataset.source,
            schema: d.dataset.schema.unwrap_or_default(),
            profile: d.dataset.profile.unwrap_or_default(),
            tags: d.tags.into_iter().map(Tag::from).collect(),
        })
        .collect();
    if !inputs.is_empty() {
        state.store.log_mlflow_inputs(&body.run_id, &inputs).await?;
    }
    if !models.is_empty() {
        state.store.link_logged_models(&body.run_id, Direction::Input, &models).await?;
    }
    Ok(Json(json!({})))
}

/// `[{"model_id": …, "step": …}]` as (id, step) pairs.
fn model_links(models: &[Value]) -> Result<Vec<(String, i64)>, Failure> {
    models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let id = m["model_id"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| ApiError::invalid(format!("models[{i}].model_id"), "missing value"))?;
            let step = match &m["step"] {
                Value::Null => 0,
                Value::Number(n) => n.as_i64().unwrap_or(0),
                Value::String(s) => s.parse().map_err(|_| ApiError::invalid(format!("models[{i}].step"), format!("'{s}' is not an integer")))?,
                other => return Err(ApiError::invalid(format!("models[{i}].step"), format!("{other} is not an integer")).into()),
            };
            Ok((id.to_owned(), step))
        })
        .collect()
}

#[derive(Deserialize)]
struct LogOutputsBody {
    run_id: String,
    #[serde(default)]
    models: Vec<Value>,
}

/// `log_outputs`: the logged models a run produced (what `log_model` in a run sends).
async fn log_outputs(State(state): Shared, JsonBody(body): JsonBody<LogOutputsBody>) -> Reply {
    state.store.link_logged_models(&body.run_id, Direction::Output, &model_links(&body.models)?).await?;
    Ok(Json(json!({})))
}

async fn search_runs(State(state): Shared, JsonBody(body): JsonBody<SearchBody>) -> Reply {
    let view = lifecycle(&body.run_view_type, "run_view_type")?;
    let mut experiments = Vec::new();
    for id in &body.experiment_ids {
        match state.store.experiment(id).await {
            Ok(experiment) if experiment.id == *id => experiments.push(experiment.name),
            _ => return Err(ApiError::not_found("experiment", id).into()),
        }
    }
    if body.experiment_ids.is_empty() {
        return Err(ApiError::invalid("experiment_ids", "at least one experiment id is required").into());
    }
    let page = state
        .store
        .search_runs(&SearchRuns {
            experiments,
            filter: body.filter.unwrap_or_default(),
            order_by: body.order_by,
            max_results: body.max_results.map(|m| m.clamp(0, i64::from(u32::MAX)) as u32),
            page_token: body.page_token.filter(|t| !t.is_empty()),
            changed_since: None,
            lifecycle: view,
        })
        .await?;
    let mut reply = json!({"runs": page.runs.iter().map(run_json).collect::<Vec<_>>()});
    if let Some(token) = page.next_page_token {
        reply["next_page_token"] = json!(token);
    }
    Ok(Json(reply))
}

#[derive(Deserialize)]
struct LogBatchBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn log_batch(State(state): Shared, JsonBody(body): JsonBody<LogBatchBody>) -> Reply {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let batch = LogBatch { params: body.params, metrics: body.metrics, tags: body.tags.into_iter().map(Tag::from).collect() };
    state.store.log_batch(&id, &batch).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct LogMetricBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    key: String,
    value: f64,
    timestamp: i64,
    #[serde(default)]
    step: i64,
}

async fn log_metric(State(state): Shared, JsonBody(body): JsonBody<LogMetricBody>) -> Reply {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let metric = Metric { key: body.key, value: body.value, timestamp: body.timestamp, step: body.step };
    state.store.log_batch(&id, &LogBatch { metrics: vec![metric], ..Default::default() }).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct KeyValueBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    key: String,
    value: String,
}

async fn log_parameter(State(state): Shared, JsonBody(body): JsonBody<KeyValueBody>) -> Reply {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    state.store.log_batch(&id, &LogBatch { params: vec![Param { key: body.key, value: body.value }], ..Default::default() }).await?;
    Ok(Json(json!({})))
}

async fn set_tag(State(state): Shared, JsonBody(body): JsonBody<KeyValueBody>) -> Reply {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    state.store.log_batch(&id, &LogBatch { tags: vec![Tag { key: body.key, value: body.value }], ..Default::default() }).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct RunKeyBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

async fn delete_tag(State(state): Shared, JsonBody(body): JsonBody<RunKeyBody>) -> Reply {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let key = body.key.filter(|k| !k.is_empty()).ok_or_else(|| ApiError::invalid("key", "missing value"))?;
    state.store.delete_run_tag(&id, &key).await?;
    Ok(Json(json!({})))
}

async fn delete_run(State(state): Shared, JsonBody(body): JsonBody<RunKeyBody>) -> Reply {
    state.store.set_run_deleted(&run_id(&body.run_id, &body.run_uuid)?, true).await?;
    Ok(Json(json!({})))
}

async fn restore_run(State(state): Shared, JsonBody(body): JsonBody<RunKeyBody>) -> Reply {
    state.store.set_run_deleted(&run_id(&body.run_id, &body.run_uuid)?, false).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ExperimentBody {
    #[serde(default)]
    experiment_id: String,
    #[serde(default)]
    new_name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

impl ExperimentBody {
    fn id(&self) -> Result<&str, Failure> {
        if self.experiment_id.is_empty() { Err(ApiError::invalid("experiment_id", "missing value").into()) } else { Ok(&self.experiment_id) }
    }

    fn key(&self) -> Result<&str, Failure> {
        self.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| ApiError::invalid("key", "missing value").into())
    }
}

async fn update_experiment(State(state): Shared, JsonBody(body): JsonBody<ExperimentBody>) -> Reply {
    let name = body.new_name.as_deref().ok_or_else(|| ApiError::invalid("new_name", "missing value"))?;
    state.store.rename_experiment(body.id()?, name).await?;
    Ok(Json(json!({})))
}

async fn delete_experiment(State(state): Shared, JsonBody(body): JsonBody<ExperimentBody>) -> Reply {
    state.store.delete_experiment(body.id()?).await?;
    Ok(Json(json!({})))
}

async fn restore_experiment(State(state): Shared, JsonBody(body): JsonBody<ExperimentBody>) -> Reply {
    state.store.restore_experiment(body.id()?).await?;
    Ok(Json(json!({})))
}

async fn set_experiment_tag(State(state): Shared, JsonBody(body): JsonBody<ExperimentBody>) -> Reply {
    let value = body.value.as_deref().ok_or_else(|| ApiError::invalid("value", "missing value"))?;
    state.store.set_experiment_tag(body.id()?, body.key()?, Some(value)).await?;
    Ok(Json(json!({})))
}

async fn delete_experiment_tag(State(state): Shared, JsonBody(body): JsonBody<ExperimentBody>) -> Reply {
    state.store.set_experiment_tag(body.id()?, body.key()?, None).await?;
    Ok(Json(json!({})))
}

fn logged_model_json(model: &LoggedModel) -> Value {
    let pairs = |entries: Vec<(&String, &String)>| entries.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>();
    json!({
        "info": {
            "model_id": model.id,
            "experiment_id": model.experiment_id,
            "name": model.name,
            "creation_timestamp_ms": model.created_at,
            "last_updated_timestamp_ms": model.updated_at,
            "artifact_uri": format!("mlflow-artifacts:/{}/models/{}/artifacts", model.experiment_id, model.id),
            "status": model.status,
            "model_type": model.model_type,
            "source_run_id": model.source_run_id.clone().unwrap_or_default(),
            "status_message": model.status_message,
            "tags": pairs(model.tags.iter().map(|t| (&t.key, &t.value)).collect()),
            "registrations": [],
        },
        "data": {"params": pairs(model.params.iter().map(|p| (&p.key, &p.value)).collect()), "metrics": []},
    })
}

#[derive(Deserialize)]
struct CreateLoggedModelBody {
    experiment_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_logged_model(State(state): Shared, JsonBody(body): JsonBody<CreateLoggedModelBody>) -> Reply {
    let model = state
        .store
        .create_logged_model(&NewLoggedModel {
            experiment_id: body.experiment_id,
            name: body.name,
            model_type: body.model_type.unwrap_or_default(),
            source_run_id: body.source_run_id.filter(|r| !r.is_empty()),
            params: body.params.into_iter().map(|kv| Param { key: kv.key, value: kv.value }).collect(),
            tags: body.tags.into_iter().map(Tag::from).collect(),
        })
        .await?;
    Ok(Json(json!({"model": logged_model_json(&model)})))
}

async fn get_logged_model(State(state): Shared, Path(model_id): Path<String>) -> Reply {
    Ok(Json(json!({"model": logged_model_json(&state.store.logged_model(&model_id).await?)})))
}

#[derive(Deserialize)]
struct FinalizeBody {
    status: Value,
}

async fn finalize_logged_model(State(state): Shared, Path(model_id): Path<String>, JsonBody(body): JsonBody<FinalizeBody>) -> Reply {
    // The enum by name, or by number as protobuf's JSON may send it.
    let status = match &body.status {
        Value::String(name) => name.clone(),
        Value::Number(n) => match n.as_u64() {
            Some(1) => "LOGGED_MODEL_PENDING".into(),
            Some(2) => "LOGGED_MODEL_READY".into(),
            Some(3) => "LOGGED_MODEL_UPLOAD_FAILED".into(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    Ok(Json(json!({"model": logged_model_json(&state.store.finalize_logged_model(&model_id, &status).await?)})))
}

async fn delete_logged_model(State(state): Shared, Path(model_id): Path<String>) -> Reply {
    state.store.delete_logged_model(&model_id).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct EntriesBody {
    #[serde(default)]
    tags: Vec<KeyValue>,
    #[serde(default)]
    params: Vec<KeyValue>,
}

async fn set_logged_model_tags(State(state): Shared, Path(model_id): Path<String>, JsonBody(body): JsonBody<EntriesBody>) -> Reply {
    let tags: Vec<Tag> = body.tags.into_iter().map(Tag::from).collect();
    state.store.update_logged_model(&model_id, &tags, &[], None).await?;
    Ok(Json(json!({"model": logged_model_json(&state.store.logged_model(&model_id).await?)})))
}

async fn delete_logged_model_tag(State(state): Shared, Path((model_id, key)): Path<(String, String)>) -> Reply {
    state.store.update_logged_model(&model_id, &[], &[], Some(&key)).await?;
    Ok(Json(json!({})))
}

async fn log_logged_model_params(State(state): Shared, Path(model_id): Path<String>, JsonBody(body): JsonBody<EntriesBody>) -> Reply {
    let params: Vec<Param> = body.params.into_iter().map(|kv| Param { key: kv.key, value: kv.value }).collect();
    state.store.update_logged_model(&model_id, &[], &params, None).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct SearchLoggedModelsBody {
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<LoggedModelOrder>,
    #[serde(default)]
    page_token: Option<String>,
}

#[derive(Deserialize)]
struct LoggedModelOrder {
    field_name: String,
    #[serde(default = "ascending")]
    ascending: bool,
}

fn ascending() -> bool {
    true
}

/// `name`, `tags.K`, `source_run_id` and `status` filters; order by name or either time;
/// pages by offset.
async fn search_logged_models(State(state): Shared, JsonBody(body): JsonBody<SearchLoggedModelsBody>) -> Reply {
    let filter = body.filter.unwrap_or_default();
    let mut found = Vec::new();
    for model in state.store.logged_models(&body.experiment_ids).await? {
        let run = model.source_run_id.clone().unwrap_or_default();
        let matches = name_matches(&filter, &model.name, &model.tags, |attribute, value| match attribute {
            Attribute::RunId => Some(run == value),
            Attribute::Status => Some(model.status == value),
            _ => None,
        })?;
        if matches {
            found.push(model);
        }
    }
    for order in body.order_by.iter().rev() {
        let key = |m: &LoggedModel| -> (String, i64) {
            match order.field_name.as_str() {
                "name" => (m.name.clone(), 0),
                "last_updated_timestamp" | "last_updated_timestamp_ms" => (String::new(), m.updated_at),
                _ => (String::new(), m.created_at),
            }
        };
        found.sort_by(|a, b| if order.ascending { key(a).cmp(&key(b)) } else { key(b).cmp(&key(a)) });
    }
    let offset: usize = match body.page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => token.parse().map_err(|_| ApiError::invalid("page_token", format!("'{token}' is not a page token from this server")))?,
        None => 0,
    };
    let max = body.max_results.unwrap_or(100).clamp(1, 1000) as usize;
    let page: Vec<Value> = found.iter().skip(offset).take(max).map(logged_model_json).collect();
    let mut reply = json!({"models": page});
    if offset + max < found.len() {
        reply["next_page_token"] = json!((offset + max).to_string());
    }
    Ok(Json(reply))
}

/// A registry request's fields: the JSON body when there is one, else the query (MLflow's
/// client sends DELETEs and GETs either way, depending on its version).
#[derive(Deserialize, Default)]
struct RegistryBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    archive_existing_versions: Option<Value>,
    #[serde(default)]
    stages: Vec<String>,
}

impl RegistryBody {
    fn parse(params: &HashMap<String, String>, bytes: &Bytes) -> Result<RegistryBody, Failure> {
        if !bytes.is_empty() {
            return parse_body(bytes);
        }
        Ok(RegistryBody {
            name: params.get("name").cloned().unwrap_or_default(),
            version: params.get("version").map(|v| Value::String(v.clone())),
            description: params.get("description").cloned(),
            key: params.get("key").cloned(),
            value: params.get("value").cloned(),
            stage: params.get("stage").cloned(),
            archive_existing_versions: params.get("archive_existing_versions").map(|v| Value::String(v.clone())),
            stages: params.get("stages").map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default(),
        })
    }

    fn name(&self) -> Result<&str, Failure> {
        if self.name.is_empty() { Err(ApiError::invalid("name", "missing value").into()) } else { Ok(&self.name) }
    }

    fn version(&self) -> Result<i64, Failure> {
        match &self.version {
            Some(Value::String(text)) => version_number(text),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| ApiError::invalid("version", format!("{n} is not a version number")).into()),
            _ => Err(ApiError::invalid("version", "missing value").into()),
        }
    }

    fn key(&self) -> Result<&str, Failure> {
        self.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| ApiError::invalid("key", "missing value").into())
    }
}

async fn update_model_version(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let version = state.store.update_model_version(body.name()?, body.version()?, body.description.as_deref().unwrap_or("")).await?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

async fn delete_model_version(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    state.store.delete_model_version(body.name()?, body.version()?).await?;
    Ok(Json(json!({})))
}

async fn set_model_version_tag(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let value = body.value.as_deref().ok_or_else(|| ApiError::invalid("value", "missing value"))?;
    state.store.set_model_tag(body.name()?, body.version()?, body.key()?, Some(value)).await?;
    Ok(Json(json!({})))
}

async fn delete_model_version_tag(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    state.store.set_model_tag(body.name()?, body.version()?, body.key()?, None).await?;
    Ok(Json(json!({})))
}

async fn transition_stage(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let stage = body.stage.as_deref().ok_or_else(|| ApiError::invalid("stage", "missing value"))?;
    let archive =
        matches!(&body.archive_existing_versions, Some(Value::Bool(true))) || matches!(&body.archive_existing_versions, Some(Value::String(s)) if s == "true");
    let (name, version) = (body.name()?, body.version()?);
    state.store.set_model_stage(name, version, stage, archive).await?;
    Ok(Json(json!({"model_version": version_json(&state.store.model_version(name, version).await?)})))
}

async fn download_uri(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let version = state.store.model_version(body.name()?, body.version()?).await?;
    Ok(Json(json!({"artifact_uri": version.source})))
}

async fn update_registered_model(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let model = state.store.update_model(body.name()?, body.description.as_deref().unwrap_or("")).await?;
    Ok(Json(json!({"registered_model": model_json(&state, &model).await?})))
}

async fn set_registered_model_tag(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let value = body.value.as_deref().ok_or_else(|| ApiError::invalid("value", "missing value"))?;
    state.store.set_model_tag(body.name()?, 0, body.key()?, Some(value)).await?;
    Ok(Json(json!({})))
}

async fn delete_registered_model_tag(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    state.store.set_model_tag(body.name()?, 0, body.key()?, None).await?;
    Ok(Json(json!({})))
}

/// The newest version in each asked stage (every stage when none is asked), as MLflow's
/// `get_latest_versions` answers; `models:/NAME/latest` goes through it.
async fn latest_versions(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let body = RegistryBody::parse(&params, &bytes)?;
    let name = body.name()?;
    state.store.model(name).await?;
    let wanted: Vec<String> = body.stages.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut latest: Vec<ModelVersion> = Vec::new();
    for version in state.store.model_versions(Some(name), None).await? {
        let stage = version.stage.clone().unwrap_or_else(|| "None".into());
        if !wanted.is_empty() && !wanted.contains(&stage.to_ascii_lowercase()) {
            continue;
        }
        // Newest first: the first of each stage is its latest.
        if !latest.iter().any(|v| v.stage.clone().unwrap_or_else(|| "None".into()) == stage) {
            latest.push(version);
        }
    }
    Ok(Json(json!({"model_versions": latest.iter().map(version_json).collect::<Vec<_>>()})))
}

/// `{"metrics": [...]}`, serialized straight from the points (a history can hold millions).
#[derive(serde::Serialize)]
struct History {
    metrics: Vec<Metric>,
}

async fn metric_history(State(state): Shared, Query(params): Params) -> Result<Json<History>, Failure> {
    let id = run_id(&params.get("run_id").cloned(), &params.get("run_uuid").cloned())?;
    let key = required(&params, "metric_key")?;
    let history = state.store.metric_history(&id, key).await?;
    Ok(Json(History { metrics: history.points }))
}

/// `get-history-bulk-interval`: each run's points of one key between `start_step` and
/// `end_step`, at most `max_results` per run (default 320, MLflow's), sampled evenly by step
/// with the first and last step kept, as MLflow's charts ask for them.
async fn history_bulk_interval(State(state): Shared, axum::extract::RawQuery(query): axum::extract::RawQuery) -> Reply {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let one = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let number = |key: &str| -> Result<Option<i64>, Failure> {
        match one(key) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| ApiError::invalid(key, format!("'{text}' is not an integer")).into()),
        }
    };
    let runs: Vec<&str> = pairs.iter().filter(|(k, _)| k == "run_ids").map(|(_, v)| v.as_str()).collect();
    if runs.is_empty() || runs.len() > 100 {
        return Err(ApiError::invalid("run_ids", format!("{} run ids; give 1 to 100", runs.len())).into());
    }
    let key = one("metric_key").filter(|k| !k.is_empty()).ok_or_else(|| ApiError::invalid("metric_key", "missing value"))?;
    let (start, end) = (number("start_step")?, number("end_step")?);
    let max = number("max_results")?.unwrap_or(320);
    if !(1..=5000).contains(&max) {
        return Err(ApiError::invalid("max_results", format!("{max} is outside 1..=5000")).into());
    }
    let mut metrics = Vec::new();
    for run in runs {
        let points: Vec<Metric> = state
            .store
            .metric_history(run, key)
            .await?
            .points
            .into_iter()
            .filter(|p| start.is_none_or(|s| p.step >= s) && end.is_none_or(|e| p.step <= e))
            .collect();
        let mut steps: Vec<i64> = points.iter().map(|p| p.step).collect();
        steps.dedup();
        let kept = sampled_steps(&steps, max as usize);
        metrics.extend(
            points
                .into_iter()
                .filter(|p| kept.binary_search(&p.step).is_ok())
                .map(|p| json!({"key": p.key, "value": p.value, "timestamp": p.timestamp, "step": p.step, "run_id": run})),
        );
    }
    Ok(Json(json!({"metrics": metrics})))
}

/// At most `max` of the sorted, distinct `steps`: evenly spaced, the first and last kept.
fn sampled_steps(steps: &[i64], max: usize) -> Vec<i64> {
    if steps.len() <= max {
        return steps.to_vec();
    }
    let mut kept: Vec<i64> = (0..max).map(|i| steps[i * (steps.len() - 1) / (max - 1).max(1)]).collect();
    kept.push(steps[steps.len() - 1]);
    kept.sort_unstable();
    kept.dedup();
    kept
}

#[derive(Deserialize)]
struct CreateModelBody {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_registered_model(State(state): Shared, JsonBody(body): JsonBody<CreateModelBody>) -> Reply {
    let model = state
        .store
        .create_model(&CreateModel { name: body.name, description: body.description.unwrap_or_default(), tags: body.tags.into_iter().map(Tag::from).collect() })
        .await?;
    Ok(Json(json!({"registered_model": model_json(&state, &model).await?})))
}

async fn get_registered_model(State(state): Shared, Query(params): Params) -> Reply {
    let model = state.store.model(required(&params, "name")?).await?;
    Ok(Json(json!({"registered_model": model_json(&state, &model).await?})))
}

async fn search_registered_models(State(state): Shared, method: Method, Query(params): Params, bytes: Bytes) -> Reply {
    let request = search_request(&method, &params, &bytes)?;
    let filter = request.filter.unwrap_or_default();
    let mut found = Vec::new();
    for model in state.store.models().await? {
        if name_matches(&filter, &model.name, &model.tags, |_, _| None)? {
            found.push(model_json(&state, &model).await?);
        }
    }
    if let Some(max) = request.max_results {
        found.truncate(max.max(0) as usize);
    }
    Ok(Json(json!({"registered_models": found})))
}

#[derive(Deserialize)]
struct CreateVersionBody {
    name: String,
    source: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_model_version(State(state): Shared, JsonBody(body): JsonBody<CreateVersionBody>) -> Reply {
    let version = state
        .store
        .create_model_version(
            &body.name,
            &CreateModelVersion {
                source: body.source,
                run_id: body.run_id.filter(|r| !r.is_empty()),
                description: body.description.unwrap_or_default(),
                tags: body.tags.into_iter().map(Tag::from).collect(),
            },
        )
        .await?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

async fn get_model_version(State(state): Shared, Query(params): Params) -> Reply {
    let version = version_number(required(&params, "version")?)?;
    Ok(Json(json!({"model_version": version_json(&state.store.model_version(required(&params, "name")?, version).await?)})))
}

async fn search_model_versions(State(state): Shared, method: Method, Query(params): Params, bytes: Bytes) -> Reply {
    let request = search_request(&method, &params, &bytes)?;
    let filter = request.filter.unwrap_or_default();
    let mut found = Vec::new();
    for version in state.store.model_versions(None, None).await? {
        let run = version.run_id.clone().unwrap_or_default();
        let matches = name_matches(&filter, &version.name, &version.tags, |attribute, value| match attribute {
            Attribute::RunId => Some(run == value),
            _ => None,
        })?;
        if matches {
            found.push(version);
        }
    }
    // `order_by`: `version_number`, `name`, `creation_timestamp`, `last_updated_timestamp`,
    // each ASC (the default) or DESC; the first entry decides first.
    for order in request.order_by.iter().rev() {
        let mut words = order.split_whitespace();
        let field = words.next().unwrap_or("").trim_start_matches("attributes.");
        let descending = words.next().is_some_and(|w| w.eq_ignore_ascii_case("DESC"));
        let key = |v: &ModelVersion| -> Result<(String, i64), Failure> {
            Ok(match field {
                "name" => (v.name.clone(), 0),
                "version_number" | "version" => (String::new(), v.version),
                "creation_timestamp" => (String::new(), v.created_at),
                "last_updated_timestamp" => (String::new(), v.updated_at),
                other => {
                    return Err(
                        ApiError::invalid("order_by", format!("'{other}' is not name, version_number, creation_timestamp or last_updated_timestamp")).into()
                    );
                }
            })
        };
        for v in &found {
            key(v)?;
        }
        found.sort_by(|a, b| {
            let (a, b) = (key(a).unwrap_or_default(), key(b).unwrap_or_default());
            if descending { b.cmp(&a) } else { a.cmp(&b) }
        });
    }
    let offset: usize = match request.page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => token.parse().map_err(|_| ApiError::invalid("page_token", format!("'{token}' is not a page token from this server")))?,
        None => 0,
    };
    let max = request.max_results.unwrap_or(10_000).clamp(1, 200_000) as usize;
    let page: Vec<Value> = found.iter().skip(offset).take(max).map(version_json).collect();
    let mut reply = json!({"model_versions": page});
    if offset + max < found.len() {
        reply["next_page_token"] = json!((offset + max).to_string());
    }
    Ok(Json(reply))
}

#[derive(Deserialize)]
struct AliasBody {
    name: String,
    alias: String,
    #[serde(default)]
    version: Option<String>,
}

/// DELETE and GET carry their fields in the query; MLflow's client sends DELETE's in a body.
fn alias_request(params: &HashMap<String, String>, bytes: &Bytes) -> Result<AliasBody, Failure> {
    if !bytes.is_empty() {
        return parse_body(bytes);
    }
    Ok(AliasBody { name: required(params, "name")?.to_owned(), alias: required(params, "alias")?.to_owned(), version: params.get("version").cloned() })
}

fn parse_body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Failure> {
    Ok(body::parse(bytes)?)
}

async fn set_alias(State(state): Shared, JsonBody(body): JsonBody<AliasBody>) -> Reply {
    let version = version_number(body.version.as_deref().unwrap_or(""))?;
    state.store.set_alias(&body.name, &body.alias, version).await?;
    Ok(Json(json!({})))
}

async fn delete_alias(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let request = alias_request(&params, &bytes)?;
    state.store.delete_alias(&request.name, &request.alias).await?;
    Ok(Json(json!({})))
}

async fn get_alias(State(state): Shared, Query(params): Params, bytes: Bytes) -> Reply {
    let request = alias_request(&params, &bytes)?;
    Ok(Json(json!({"model_version": version_json(&state.store.version_by_alias(&request.name, &request.alias).await?)})))
}

#[cfg(test)]
mod tests {
    use super::sampled_steps;

    #[test]
    fn sampled_steps_keep_the_ends_and_spread_evenly() {
        let steps: Vec<i64> = (0..100).collect();
        assert_eq!(sampled_steps(&steps, 5), [0, 24, 49, 74, 99]);
        assert_eq!(sampled_steps(&steps, 2), [0, 99]);
        assert_eq!(sampled_steps(&[3, 9], 5), [3, 9]);
        assert_eq!(sampled_steps(&steps, 1), [0, 99], "one asked for still keeps both ends");
        assert!(sampled_steps(&[], 3).is_empty());
    }
}

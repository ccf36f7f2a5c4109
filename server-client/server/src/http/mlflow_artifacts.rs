//! MLflow's artifacts proxy (`/api/2.0/mlflow-artifacts/artifacts/…`) over Kiln's
//! content-addressed artifact store, so `mlflow.log_artifact`, `log_text`, `log_dict`,
//! `mlflow.artifacts.download_artifacts` and `MlflowClient.list_artifacts` work unchanged.
//!
//! A run's `artifact_uri` is `mlflow-artifacts:/{experiment}/{run}/artifacts`; a path under it
//! is the run's own artifact (`run_artifacts`), the same one `kiln runs` and the Experiments
//! panel show, whichever client wrote it. Any other path (an MLflow 3 logged model's files)
//! is kept by path (`path_artifacts`). The bytes are stored once by sha256 either way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_api::{ApiError, AttachArtifact, RunArtifact, limits};
use serde_json::{Value, json};

use super::{AppState, Failure};

type Shared = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/artifacts", get(list)).route("/artifacts/{*path}", get(download).put(upload).delete(delete))
}

/// Where a proxy path lives: inside a run's artifacts, or outside any run.
#[derive(Debug, PartialEq)]
enum Place {
    Run { run_id: String, path: String },
    Loose(String),
}

/// `{experiment}/{run}/artifacts[/path]` of an existing run of that experiment is the run's;
/// anything else is loose.
async fn place(state: &AppState, path: &str) -> Result<Place, Failure> {
    let path = path.trim_matches('/');
    if !path.is_empty() {
        limits::artifact_path("path", path)?;
    }
    let parts: Vec<&str> = path.splitn(4, '/').collect();
    if parts.len() >= 3
        && parts[2] == "artifacts"
        && let Ok(view) = state.store.run(parts[1]).await
        && view.run.experiment_id == parts[0]
    {
        return Ok(Place::Run { run_id: parts[1].to_owned(), path: parts.get(3).copied().unwrap_or("").to_owned() });
    }
    Ok(Place::Loose(path.to_owned()))
}

/// The files at `place` and under it, their paths relative to the place's own root.
async fn files_under(state: &AppState, place: &Place) -> Result<Vec<RunArtifact>, Failure> {
    Ok(match place {
        Place::Run { run_id, path } => state.store.run_artifacts_under(run_id, path).await?,
        Place::Loose(path) => state.store.path_artifacts_under(path).await?,
    })
}

fn place_path(place: &Place) -> &str {
    match place {
        Place::Run { path, .. } | Place::Loose(path) => path,
    }
}

/// `PUT …/artifacts/{path}`: the body is the file, streamed into the store.
async fn upload(State(state): Shared, Path(path): Path<String>, headers: HeaderMap, body: Body) -> Result<Json<Value>, Failure> {
    let place = place(&state, &path).await?;
    if place_path(&place).is_empty() {
        return Err(ApiError::invalid("path", format!("'{path}' names a directory; PUT a file under it")).into());
    }
    let media_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream").to_owned();
    let artifact = state.artifacts.put(body.into_data_stream(), state.max_artifact_bytes).await?;
    state.store.record_artifact(&artifact.sha256, artifact.size).await?;
    match place {
        Place::Run { run_id, path } => {
            state.store.attach_artifact(&run_id, &AttachArtifact { path, sha256: artifact.sha256, media_type }).await?;
        }
        Place::Loose(path) => state.store.put_path_artifact(&path, &artifact.sha256, &media_type).await?,
    }
    Ok(Json(json!({})))
}

/// `GET …/artifacts/{path}`: the file's bytes, streamed.
async fn download(State(state): Shared, Path(path): Path<String>) -> Result<Response, Failure> {
    let place = place(&state, &path).await?;
    let file = files_under(&state, &place).await?.into_iter().find(|f| f.path == place_path(&place));
    let Some(file) = file else {
        return Err(ApiError::not_found("artifact", path.trim_matches('/')).into());
    };
    let Some(stream) = state.artifacts.open(&file.sha256).await? else {
        return Err(ApiError::not_found("artifact bytes", &file.sha256).into());
    };
    Ok(([(header::CONTENT_TYPE, file.media_type), (header::CONTENT_LENGTH, file.size.to_string())], Body::from_stream(stream)).into_response())
}

/// `GET …/artifacts?path=P`: the files and directories directly under P, as MLflow lists
/// them (`{"files": [{"path", "is_dir", "file_size"}]}`, paths relative to P).
async fn list(State(state): Shared, Query(params): Query<HashMap<String, String>>) -> Result<Json<Value>, Failure> {
    let path = params.get("path").map(String::as_str).unwrap_or("");
    let place = place(&state, path).await?;
    let base = place_path(&place);
    let mut entries: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for file in files_under(&state, &place).await? {
        if file.path == base {
            // P is a file: MLflow lists it alone, by its name.
            let name = file.path.rsplit('/').next().unwrap_or(&file.path).to_owned();
            entries.insert(name, Some(file.size));
            continue;
        }
        let rest = if base.is_empty() { file.path.as_str() } else { &file.path[base.len() + 1..] };
        match rest.split_once('/') {
            Some((dir, _)) => entries.insert(dir.to_owned(), None),
            None => entries.insert(rest.to_owned(), Some(file.size)),
        };
    }
    let files: Vec<Value> = entries
        .into_iter()
        .map(|(name, size)| match size {
            Some(size) => json!({"path": name, "is_dir": false, "file_size": size}),
            None => json!({"path": name, "is_dir": true}),
        })
        .collect();
    Ok(Json(json!({"files": files})))
}

/// `DELETE …/artifacts/{path}`: the file, or everything under the directory. The bytes stay
/// while anything else names them.
async fn delete(State(state): Shared, Path(path): Path<String>) -> Result<Json<Value>, Failure> {
    let place = place(&state, &path).await?;
    let gone = match &place {
        Place::Run { run_id, path } => state.store.delete_run_artifacts(run_id, path).await?,
        Place::Loose(path) => state.store.delete_path_artifacts(path).await?,
    };
    if gone == 0 {
        return Err(ApiError::not_found("artifact", path.trim_matches('/')).into());
    }
    Ok(Json(json!({})))
}

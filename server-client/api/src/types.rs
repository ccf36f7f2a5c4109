//! Resources and the request bodies that create or change them.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// A named group of runs; by default one per notebook handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    /// When it was deleted (MLflow's lifecycle stage "deleted"); `None` while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// An MLflow 3 logged model: a model's files (kept under the artifacts proxy at
/// `{experiment}/models/{id}/artifacts/`), its params and tags, and the run that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedModel {
    pub id: String,
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub model_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    /// MLflow's `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`.
    pub status: String,
    #[serde(default)]
    pub status_message: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub params: Vec<Param>,
}

/// Which runs or experiments a search sees: MLflow's `ViewType`. Deleted ones are hidden
/// unless asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl Lifecycle {
    /// MLflow's spelling (`ACTIVE_ONLY`, `DELETED_ONLY`, `ALL`).
    pub fn parse_mlflow(text: &str) -> Option<Lifecycle> {
        match text {
            "ACTIVE_ONLY" | "1" => Some(Lifecycle::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(Lifecycle::DeletedOnly),
            "ALL" | "3" => Some(Lifecycle::All),
            _ => None,
        }
    }

    pub fn is_active_only(&self) -> bool {
        *self == Lifecycle::ActiveOnly
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateExperiment {
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "RUNNING" => RunStatus::Running,
            "SCHEDULED" => RunStatus::Scheduled,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            "KILLED" => RunStatus::Killed,
            _ => return None,
        })
    }

    /// A run in a terminal state takes no more metrics.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Failed | RunStatus::Killed)
    }
}

/// What started a run: a kernel session, a `kiln run` workflow step, or an outside client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunSource {
    Notebook,
    Workflow,
    External,
}

impl RunSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RunSource::Notebook => "notebook",
            RunSource::Workflow => "workflow",
            RunSource::External => "external",
        }
    }

    pub fn parse(text: &str) -> Option<RunSource> {
        Some(match text {
            "notebook" => RunSource::Notebook,
            "workflow" => RunSource::Workflow,
            "external" => RunSource::External,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub experiment_id: String,
    pub name: String,
    pub status: RunStatus,
    pub source: RunSource,
    pub start_time: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Millis>,
    /// When it was deleted (MLflow's lifecycle stage "deleted"): hidden from searches, takes
    /// no writes, can be restored. `None` while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
}

/// `POST /api/v1/runs`: the experiment is named; it is created when it does not exist yet, so
/// `kiln::run("mnist")` in a cell needs no set-up step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRun {
    pub experiment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_source")]
    pub source: RunSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Millis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

fn default_source() -> RunSource {
    RunSource::External
}

/// `PATCH /api/v1/runs/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A hyper-parameter: written once per run; the same value again is accepted, another is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

/// One point of a metric series. Series are append-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: Millis,
    #[serde(default)]
    pub step: i64,
}

/// Mutable annotation; the last write wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// `POST /api/v1/runs/{id}/log`: the one write path for params, metrics and tags. It is applied
/// whole or not at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl LogBatch {
    pub fn is_empty(&self) -> bool {
        self.params.is_empty() && self.metrics.is_empty() && self.tags.is_empty()
    }
}

/// A run with its data: params, the latest value of each metric, tags and artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: Run,
    pub params: Vec<Param>,
    /// The latest point of each series (highest step, then latest timestamp).
    pub metrics: Vec<Metric>,
    pub tags: Vec<Tag>,
    pub artifacts: Vec<RunArtifact>,
    /// The model versions this run registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelRef>,
}

/// A model version by name and number (`iris@3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: i64,
}

/// `GET /api/v1/runs/{id}/metrics/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricHistory {
    pub key: String,
    pub points: Vec<Metric>,
}

/// `POST /api/v1/runs/search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchRuns {
    /// Experiment names; empty means every experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<String>,
    /// MLflow's filter language, e.g. `metrics.acc > 0.9 and params.lr = '0.01'`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter: String,
    /// e.g. `["metrics.acc DESC", "start_time"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    /// A cursor from an earlier page (`next_page_token`): the next page of the same answer.
    /// Runs created after the first page was read are left out of later pages, so paging never
    /// repeats or skips a run while new ones start; they come through `changed_since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    /// Only runs whose status, name, params, metrics or tags changed at or after this
    /// [`RunPage::cursor`]: what a live view polls for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_since: Option<Millis>,
    /// Active runs (the default), deleted ones, or both.
    #[serde(default, skip_serializing_if = "Lifecycle::is_active_only")]
    pub lifecycle: Lifecycle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    pub runs: Vec<RunView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    /// Pass as `changed_since` to get what changed after this answer was read. It lies a
    /// little before the server's clock at the read, so a write committing during the read
    /// is never missed; a run may come twice.
    #[serde(default)]
    pub cursor: Millis,
}

/// The axis a metric history is bucketed and zoomed along.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryAxis {
    #[default]
    Step,
    /// Wall time: the points' timestamps.
    Time,
}

/// `POST /api/v1/metrics/history`: the series of several runs and keys in one answer,
/// down-sampled on the server to at most `max_points` points each, so a 100 000-point curve
/// costs what its picture needs. Down-sampling keeps, in each of `max_points / 4` buckets of
/// the axis, the first, last, lowest and highest point, so no spike is ever hidden; a zoom
/// asks again with `from`/`to` and gets the detail of that range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    pub runs: Vec<String>,
    pub keys: Vec<String>,
    #[serde(default = "default_max_points")]
    pub max_points: u32,
    #[serde(default)]
    pub axis: HistoryAxis,
    /// The range on `axis`, both ends included (a step, or a timestamp in milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
}

pub fn default_max_points() -> u32 {
    1000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histories {
    /// One per run and key, in the order asked (runs, then keys); a run that never logged a
    /// key has an empty series.
    pub series: Vec<Series>,
}

/// One run's series of one metric, as columns (what chart libraries draw from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub run_id: String,
    pub key: String,
    /// How many points the range holds before down-sampling.
    pub total: u64,
    /// Whether the points are a down-sample of those.
    pub sampled: bool,
    pub steps: Vec<i64>,
    pub timestamps: Vec<Millis>,
    pub values: Vec<f64>,
}

/// Stored bytes, named by their sha256 (hex). Uploading the same bytes twice stores them once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub sha256: String,
    pub size: u64,
}

/// An artifact as a run wrote it: a path inside the run, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunArtifact {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
}

/// `POST /api/v1/runs/{id}/artifacts`: attach uploaded bytes to a run under `path`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachArtifact {
    pub path: String,
    pub sha256: String,
    #[serde(default = "default_media_type")]
    pub media_type: String,
}

fn default_media_type() -> String {
    "application/octet-stream".to_owned()
}

/// `POST /api/v1/tokens` (admin only). The secret is shown once; the server keeps its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateToken {
    pub name: String,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub token: String,
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub version: String,
    pub db: String,
    pub artifacts: String,
}

/// A model name (the handle, by default) whose versions are numbered 1, 2, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<i64>,
    #[serde(default)]
    pub aliases: Vec<ModelAlias>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A movable name (`champion`, `staging`) for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAlias {
    pub alias: String,
    pub version: i64,
}

/// One immutable version of a model: where its values are and which run made them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Where the model values are: `runs:/RUN/PATH`, `artifact:SHA256`, or any URI.
    pub source: String,
    #[serde(default)]
    pub description: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The MLflow stage a client moved it to (`Staging`, `Production`, `Archived`); `None`
    /// when none was set. Kiln routes by aliases and deployments, not stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// `POST /api/v1/models`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateModel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// `POST /api/v1/models/{name}/versions`: the next version number is the server's to give.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateModelVersion {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// `PUT /api/v1/models/{name}/aliases/{alias}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetAlias {
    pub version: i64,
}

/// A named dataset; its versions are told apart by fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub created_at: Millis,
    pub versions: u64,
}

/// One version of a dataset: what its bytes hash to, how big it is, what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVersion {
    pub id: String,
    pub name: String,
    /// sha256 (hex) of the file manifest (`path\tsize\tsha256` lines, sorted) or of the
    /// Parquet bytes of a DataFrame.
    pub fingerprint: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Column names and types, as the producer describes them (e.g. polars dtypes).
    #[serde(default)]
    pub schema: Vec<Column>,
    /// The artifact holding the data, when it was uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    /// The run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub dtype: String,
}

/// `POST /api/v1/datasets/{name}/versions`. Registering a fingerprint the dataset already has
/// returns that version (datasets are immutable; the same bytes are the same version).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegisterDatasetVersion {
    pub fingerprint: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// What a component was built from and where its image is: one per (handle, role, digest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodePackage {
    pub id: String,
    pub handle: String,
    pub role: Role,
    /// `registry/repo:tag` or an OCI layout reference.
    pub image: String,
    /// The image manifest digest, `sha256:…`.
    pub digest: String,
    pub notebook_sha256: String,
    /// sha256 of each cell that went into the component, in notebook order.
    #[serde(default)]
    pub cell_sha256: Vec<String>,
    pub cargo_lock_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub created_at: Millis,
}

/// The part of the pipeline a component plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Data,
    Train,
    Infer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Data => "data",
            Role::Train => "train",
            Role::Infer => "infer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "data" => Role::Data,
            "train" => Role::Train,
            "infer" => Role::Infer,
            _ => return None,
        })
    }
}

/// `POST /api/v1/code-packages`; the same (handle, role, digest) again returns the first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterCodePackage {
    pub handle: String,
    pub role: Role,
    pub image: String,
    pub digest: String,
    pub notebook_sha256: String,
    #[serde(default)]
    pub cell_sha256: Vec<String>,
    pub cargo_lock_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
}

/// `POST /api/v1/code-packages/batch`: all of them, or none (a notebook's components are
/// registered together). The answer is the same list, registered, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodePackages<T> {
    pub packages: Vec<T>,
}

/// `POST /api/v1/runs/{id}/inputs`: what a run read and ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunInputs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset_versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_packages: Vec<String>,
}

/// `GET /api/v1/lineage/{model}/{version}`: where a model version came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub model_version: ModelVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunView>,
    /// Dataset versions the run read, and those it produced.
    pub datasets_read: Vec<DatasetVersion>,
    pub datasets_produced: Vec<DatasetVersion>,
    pub code_packages: Vec<CodePackage>,
    /// Deployments serving this version now (as stable, candidate, standby or an arm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<Deployment>,
}

/// What a component step handed on: each boundary value's artifact, stored as JSON at
/// `data/manifest.json` (the data step; also the dataset version's artifact) or
/// `model/manifest.json` (the train step; what a model version's `source` points at).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValuesManifest {
    pub handle: String,
    pub role: Role,
    /// By value name; sorted, so the same values give the same bytes (and fingerprint).
    pub values: std::collections::BTreeMap<String, StoredValue>,
}

/// One boundary value: its bytes in the artifact store and how to read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValue {
    pub sha256: String,
    pub size: u64,
    /// `json`, `parquet`, `safetensors` (see the SDK's `codec` module).
    pub codec: String,
    /// The value's Rust type as the componentizer found it (`Vec<f32>`).
    #[serde(rename = "type")]
    pub ty: String,
}

/// A training workflow `kiln server` runs on a cron schedule (`kiln run HANDLE` with these
/// parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub handle: String,
    /// Five fields (minute hour day month weekday), or six with seconds first; UTC.
    pub cron: String,
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// `podman` or `process`; `None`: what `kiln run` picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    pub created_at: Millis,
    /// When it fires next.
    pub next_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Millis>,
    /// How the last firing ended: the workflow's exit code (0: it finished); none while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<i64>,
    /// The run the last firing made, if it made one (none when every step was cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
}

/// `POST /api/v1/schedules`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateSchedule {
    pub handle: String,
    pub cron: String,
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// How a deployment splits traffic between model versions.
///
/// Text form (CLI and API): `blue-green`, `canary:PERCENT`, `bandit:epsilon-greedy:EPSILON`,
/// `bandit:thompson`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// All traffic to the active version; the previous one is kept as standby.
    BlueGreen,
    /// `percent` of traffic to the candidate, the rest to the stable version.
    Canary { percent: u8 },
    /// Explore a random other arm with probability `epsilon`, else the best by mean reward.
    EpsilonGreedy { epsilon: f64 },
    /// Thompson sampling over Beta(1 + successes, 1 + failures) per arm.
    Thompson,
}

impl Strategy {
    pub fn parse(text: &str) -> Result<Strategy, crate::ApiError> {
        let bad = |why: &str| {
            crate::ApiError::invalid("strategy", format!("'{text}': {why}; use blue-green, canary:PERCENT, bandit:epsilon-greedy:EPSILON or bandit:thompson"))
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        match parts.as_slice() {
            ["blue-green"] => Ok(Strategy::BlueGreen),
            ["canary", percent] => match percent.parse::<u8>() {
                Ok(p) if (1..=99).contains(&p) => Ok(Strategy::Canary { percent: p }),
                _ => Err(bad("the canary percent is a whole number from 1 to 99 (0 is a rollback, 100 a promote)")),
            },
            ["bandit", "epsilon-greedy", epsilon] => match epsilon.parse::<f64>() {
                Ok(e) if (0.0..=1.0).contains(&e) => Ok(Strategy::EpsilonGreedy { epsilon: e }),
                _ => Err(bad("epsilon is a number in 0..=1")),
            },
            ["bandit", "thompson"] => Ok(Strategy::Thompson),
            _ => Err(bad("unknown strategy")),
        }
    }

    pub fn is_bandit(self) -> bool {
        matches!(self, Strategy::EpsilonGreedy { .. } | Strategy::Thompson)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::BlueGreen => write!(f, "blue-green"),
            Strategy::Canary { percent } => write!(f, "canary:{percent}"),
            Strategy::EpsilonGreedy { epsilon } => write!(f, "bandit:epsilon-greedy:{epsilon}"),
            Strategy::Thompson => write!(f, "bandit:thompson"),
        }
    }
}

impl Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Strategy::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A handle served by the gateway: which model versions get traffic, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub handle: String,
    pub strategy: Strategy,
    /// The version most traffic goes to (blue-green: the active one).
    pub stable: i64,
    /// Canary: the version under trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<i64>,
    /// Blue-green: the previous active version, kept running for an instant rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<i64>,
    /// Bandit: the versions competing (the stable one included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arms: Vec<i64>,
    /// `podman` or `process`; `None`: the server's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    pub updated_at: Millis,
    /// How many changes it has had: a change that names the revision it was made from
    /// (`expected_revision`) is refused when another change came first.
    #[serde(default)]
    pub revision: i64,
    /// What happened to it, oldest first.
    #[serde(default)]
    pub history: Vec<DeploymentEvent>,
}

impl Deployment {
    /// Every version that must have a running instance.
    pub fn versions(&self) -> Vec<i64> {
        let mut versions = vec![self.stable];
        versions.extend(self.candidate);
        versions.extend(self.standby);
        versions.extend(self.arms.iter().copied());
        versions.sort_unstable();
        versions.dedup();
        versions
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    pub at: Millis,
    /// `deploy`, `promote`, `rollback`.
    pub action: String,
    pub detail: String,
    /// Who made the change: the user a client named (`Kiln-Actor`) and the token it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `PUT /api/v1/deployments/{handle}`: deploy `model_version` with `strategy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deploy {
    pub model_version: i64,
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// The revision the change was decided on (0: no deployment yet); `None`: whatever is
    /// deployed now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<i64>,
}

/// `POST /api/v1/deployments/{handle}/promote` and `…/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Change {
    /// As [`Deploy::expected_revision`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_revision: Option<i64>,
}

/// `GET /api/v1/deployments/{handle}/status`: what this server runs for a handle now, and
/// how its latest change went, step by step (a client follows a change by polling this
/// while its request is in flight).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    pub handle: String,
    pub instances: Vec<InstanceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeProgress>,
}

/// One inference instance of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub version: i64,
    /// `ready` (health check passed, gets traffic), `failing` (a request to it failed; being
    /// replaced), `draining` (finishing its requests before it stops).
    pub state: String,
    pub started_at: Millis,
    pub in_flight: u64,
}

/// A deployment change as it happens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeProgress {
    /// `deploy`, `promote`, `rollback`.
    pub action: String,
    /// What it does, in words (as its history line).
    pub detail: String,
    pub started_at: Millis,
    /// Set when it finished, switched or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    pub steps: Vec<ChangeStep>,
    /// Why it failed (nothing was switched then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeStep {
    pub at: Millis,
    /// `starting`, `ready`, `failed`, `saved`, `switched`, `draining`, `done`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub text: String,
}

/// One version's traffic in one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficBucket {
    pub version: i64,
    /// Start of the bucket (ms since the epoch; buckets are `Traffic::bucket_ms` long).
    pub start: Millis,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_reward: Option<f64>,
    pub rewards: u64,
}

/// `GET /api/v1/deployments/{handle}/traffic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub handle: String,
    pub bucket_ms: Millis,
    pub buckets: Vec<TrafficBucket>,
}

/// `POST /v2/models/{handle}/feedback`: how good the answer to request `id` was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: String,
    /// In [0, 1]: 1 a success, 0 a failure, between a fraction of a batch.
    pub reward: f64,
}

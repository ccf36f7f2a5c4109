//! The store client: a blocking HTTP client for `kiln server`'s `/api/v1`.
//!
//! Blocking on purpose: cells and components are plain synchronous Rust, and a cell that
//! `:dep`s `kiln` should not have to build or start an async runtime.

use std::io::{Read, Write};
use std::time::Duration;

use kiln_api::{
    ApiError, Artifact, AttachArtifact, CodePackage, CodePackages, CreateExperiment, CreateModel, CreateModelVersion, CreateRun, CreateSchedule, CreateToken,
    Dataset, DatasetVersion, Deploy, Deployment, Experiment, Health, Histories, HistoryRequest, Lineage, LogBatch, MetricHistory, ModelVersion, NewToken,
    RegisterCodePackage, RegisterDatasetVersion, RegisteredModel, Run, RunArtifact, RunInputs, RunPage, RunView, Schedule, SearchRuns, SetAlias, Traffic,
    UpdateRun, limits,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Environment variables the SDK and the CLI read.
pub const SERVER_ENV: &str = "KILN_SERVER";
pub const TOKEN_ENV: &str = "KILN_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{SERVER_ENV} is not set: start `kiln server` and export {SERVER_ENV}=http://127.0.0.1:7878 and {TOKEN_ENV}")]
    NoServer,
    /// The server answered with an error.
    #[error("{method} {path}: HTTP {status}: {error}")]
    Api { method: &'static str, path: String, status: u16, error: ApiError },
    /// The input was refused before it was sent (same rules as the server).
    #[error("{0}")]
    Invalid(ApiError),
    #[error("{method} {url}: {message}")]
    Transport { method: &'static str, url: String, message: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A value could not be encoded or decoded (Parquet, safetensors).
    #[error("{what}: {message}")]
    Codec { what: String, message: String },
}

impl Error {
    /// The server's error, when there is one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api { error, .. } | Error::Invalid(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Error::Invalid(error)
    }
}

/// A connection to one Kiln server. Cheap to clone (connections are pooled and shared).
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> Client {
        let agent = ureq::config::Config::builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Client { base: url.trim_end_matches('/').to_owned(), token: token.filter(|t| !t.trim().is_empty()), agent }
    }

    /// From `KILN_SERVER` and `KILN_TOKEN`.
    pub fn from_env() -> Result<Client, Error> {
        let url = std::env::var(SERVER_ENV).ok().filter(|u| !u.trim().is_empty()).ok_or(Error::NoServer)?;
        Ok(Client::new(&url, std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned())))
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// The bearer token this client sends, to hand on to a process it starts.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        // Who asks, for the history of what they change (deployments): the local user.
        let request = match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
            Ok(user) if !user.is_empty() && user.is_ascii() => request.header("Kiln-Actor", user),
            _ => request,
        };
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    fn reply<T: DeserializeOwned>(
        method: &'static str,
        path: &str,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, Error> {
        let mut response = result.map_err(|e| Error::Transport { method, url: url.to_owned(), message: e.to_string() })?;
        let status = response.status().as_u16();
        let text =
            response.body_mut().read_to_string().map_err(|e| Error::Transport { method, url: url.to_owned(), message: format!("reading the reply: {e}") })?;
        if (200..300).contains(&status) {
            serde_json::from_str(&text).map_err(|e| Error::Transport { method, url: url.to_owned(), message: format!("unexpected reply {text:?}: {e}") })
        } else {
            let error =
                serde_json::from_str::<ApiError>(&text).unwrap_or_else(|_| ApiError::new(kiln_api::ErrorCode::InternalError, format!("HTTP {status}: {text}")));
            Err(Error::Api { method, path: path.to_owned(), status, error })
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let url = self.url_of(path);
        Self::reply("GET", path, &url, self.authorize(self.agent.get(&url)).call())
    }

    fn send<T: DeserializeOwned>(&self, method: &'static str, path: &str, body: &impl Serialize) -> Result<T, Error> {
        let url = self.url_of(path);
        let request = match method {
            "PATCH" => self.agent.patch(&url),
            "PUT" => self.agent.put(&url),
            _ => self.agent.post(&url),
        };
        Self::reply(method, path, &url, self.authorize(request).send_json(body))
    }

    pub fn health(&self) -> Result<Health, Error> {
        self.get("/health")
    }

    pub fn create_experiment(&self, name: &str) -> Result<Experiment, Error> {
        limits::name("name", name)?;
        self.send("POST", "/experiments", &CreateExperiment { name: name.to_owned() })
    }

    pub fn experiments(&self) -> Result<Vec<Experiment>, Error> {
        self.get("/experiments")
    }

    pub fn experiment(&self, name_or_id: &str) -> Result<Experiment, Error> {
        self.get(&format!("/experiments/{}", escape(name_or_id)))
    }

    pub fn create_run(&self, request: &CreateRun) -> Result<Run, Error> {
        self.send("POST", "/runs", request)
    }

    pub fn run(&self, id: &str) -> Result<RunView, Error> {
        self.get(&format!("/runs/{}", escape(id)))
    }

    pub fn update_run(&self, id: &str, update: &UpdateRun) -> Result<Run, Error> {
        self.send("PATCH", &format!("/runs/{}", escape(id)), update)
    }

    /// Moves run `id` to the trash: searches leave it out (unless asked for deleted runs)
    /// and it takes no more writes until [`Client::restore_run`].
    pub fn delete_run(&self, id: &str) -> Result<(), Error> {
        let path = format!("/runs/{}", escape(id));
        let url = self.url_of(&path);
        let _: serde_json::Value = Self::reply("DELETE", &path, &url, self.authorize(self.agent.delete(&url)).call())?;
        Ok(())
    }

    pub fn restore_run(&self, id: &str) -> Result<(), Error> {
        let _: serde_json::Value = self.send("POST", &format!("/runs/{}/restore", escape(id)), &serde_json::json!({}))?;
        Ok(())
    }

    pub fn log_batch(&self, run_id: &str, batch: &LogBatch) -> Result<(), Error> {
        limits::batch(batch)?;
        let _: serde_json::Value = self.send("POST", &format!("/runs/{}/log", escape(run_id)), batch)?;
        Ok(())
    }

    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<MetricHistory, Error> {
        self.get(&format!("/runs/{}/metric-history?key={}", escape(run_id), escape(key)))
    }

    /// Several runs' metric series at once, down-sampled by the server (see [`HistoryRequest`]).
    pub fn histories(&self, request: &HistoryRequest) -> Result<Histories, Error> {
        limits::history(request)?;
        self.send("POST", "/metrics/history", request)
    }

    pub fn search_runs(&self, request: &SearchRuns) -> Result<RunPage, Error> {
        self.send("POST", "/runs/search", request)
    }

    /// Streams `reader` to the server; the reply names the bytes by sha256.
    pub fn upload(&self, mut reader: impl Read) -> Result<Artifact, Error> {
        let url = self.url_of("/artifacts");
        let request = self.authorize(self.agent.post(&url)).header("Content-Type", "application/octet-stream");
        Self::reply("POST", "/artifacts", &url, request.send(ureq::SendBody::from_reader(&mut reader)))
    }

    pub fn upload_bytes(&self, bytes: &[u8]) -> Result<Artifact, Error> {
        self.upload(bytes)
    }

    /// Streams the artifact `sha256` into `out`; returns the number of bytes.
    pub fn download_to(&self, sha256: &str, out: &mut impl Write) -> Result<u64, Error> {
        limits::sha256("sha256", sha256)?;
        let path = format!("/artifacts/{sha256}");
        let url = self.url_of(&path);
        let response = self.authorize(self.agent.get(&url)).call().map_err(|e| Error::Transport { method: "GET", url: url.clone(), message: e.to_string() })?;
        if !response.status().is_success() {
            return Self::reply::<()>("GET", &path, &url, Ok(response)).map(|_| 0);
        }
        let mut reader = response.into_body().into_with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, out).map_err(|source| Error::Io { what: format!("downloading artifact {sha256}"), source })
    }

    pub fn download(&self, sha256: &str) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.download_to(sha256, &mut bytes)?;
        Ok(bytes)
    }

    /// The JSON artifact `sha256`, read back into a `T`.
    pub fn load_json<T: DeserializeOwned>(&self, sha256: &str) -> Result<T, Error> {
        let bytes = self.download(sha256)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(ApiError::invalid("sha256", format!("artifact {sha256} is not the JSON expected: {e}"))))
    }

    pub fn attach_artifact(&self, run_id: &str, attach: &AttachArtifact) -> Result<RunArtifact, Error> {
        self.send("POST", &format!("/runs/{}/artifacts", escape(run_id)), attach)
    }

    /// Admin only: a new token; its secret is in the reply and nowhere else.
    pub fn create_token(&self, name: &str, admin: bool) -> Result<NewToken, Error> {
        self.send("POST", "/tokens", &CreateToken { name: name.to_owned(), admin })
    }
}

impl Client {
    pub fn create_model(&self, request: &CreateModel) -> Result<RegisteredModel, Error> {
        limits::name("name", &request.name)?;
        self.send("POST", "/models", request)
    }

    pub fn models(&self) -> Result<Vec<RegisteredModel>, Error> {
        self.get("/models")
    }

    pub fn model(&self, name: &str) -> Result<RegisteredModel, Error> {
        self.get(&format!("/models/{}", escape(name)))
    }

    /// Registers the next version of `name`.
    pub fn create_model_version(&self, name: &str, request: &CreateModelVersion) -> Result<ModelVersion, Error> {
        self.send("POST", &format!("/models/{}/versions", escape(name)), request)
    }

    pub fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>, Error> {
        self.get(&format!("/models/{}/versions", escape(name)))
    }

    pub fn model_version(&self, name: &str, version: i64) -> Result<ModelVersion, Error> {
        self.get(&format!("/models/{}/versions/{version}", escape(name)))
    }

    /// Points `alias` (e.g. `champion`) at `version`.
    pub fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<ModelVersion, Error> {
        limits::alias("alias", alias)?;
        self.send("PUT", &format!("/models/{}/aliases/{}", escape(name), escape(alias)), &SetAlias { version })
    }

    pub fn version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, Error> {
        self.get(&format!("/models/{}/aliases/{}", escape(name), escape(alias)))
    }

    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<(), Error> {
        let path = format!("/models/{}/aliases/{}", escape(name), escape(alias));
        let url = self.url_of(&path);
        let _: serde_json::Value = Self::reply("DELETE", &path, &url, self.authorize(self.agent.delete(&url)).call())?;
        Ok(())
    }
}

impl Client {
    /// Registers a dataset version (the same fingerprint again returns the existing version).
    pub fn register_dataset_version(&self, name: &str, request: &RegisterDatasetVersion) -> Result<DatasetVersion, Error> {
        limits::name("name", name)?;
        limits::sha256("fingerprint", &request.fingerprint)?;
        self.send("POST", &format!("/datasets/{}/versions", escape(name)), request)
    }

    pub fn datasets(&self) -> Result<Vec<Dataset>, Error> {
        self.get("/datasets")
    }

    pub fn dataset_versions(&self, name: &str) -> Result<Vec<DatasetVersion>, Error> {
        self.get(&format!("/datasets/{}/versions", escape(name)))
    }

    pub fn register_code_package(&self, request: &RegisterCodePackage) -> Result<CodePackage, Error> {
        self.send("POST", "/code-packages", request)
    }

    /// All of `requests` or none (one transaction in the store); in order.
    pub fn register_code_packages(&self, requests: &[RegisterCodePackage]) -> Result<Vec<CodePackage>, Error> {
        let body = CodePackages { packages: requests.to_vec() };
        let answer: CodePackages<CodePackage> = self.send("POST", "/code-packages/batch", &body)?;
        Ok(answer.packages)
    }

    /// Code packages of `handle` (all when empty), newest first.
    pub fn code_packages(&self, handle: &str) -> Result<Vec<CodePackage>, Error> {
        self.get(&format!("/code-packages?handle={}", escape(handle)))
    }

    /// Records what a run read (dataset versions) and ran (code packages).
    pub fn add_run_inputs(&self, run_id: &str, inputs: &RunInputs) -> Result<(), Error> {
        let _: serde_json::Value = self.send("POST", &format!("/runs/{}/inputs", escape(run_id)), inputs)?;
        Ok(())
    }

    /// Deploys a model version of `handle` with a strategy; returns when it serves.
    pub fn deploy(&self, handle: &str, request: &Deploy) -> Result<Deployment, Error> {
        self.send("PUT", &format!("/deployments/{}", escape(handle)), request)
    }

    pub fn promote(&self, handle: &str) -> Result<Deployment, Error> {
        self.send("POST", &format!("/deployments/{}/promote", escape(handle)), &serde_json::json!({}))
    }

    pub fn rollback(&self, handle: &str) -> Result<Deployment, Error> {
        self.send("POST", &format!("/deployments/{}/rollback", escape(handle)), &serde_json::json!({}))
    }

    pub fn deployments(&self) -> Result<Vec<Deployment>, Error> {
        self.get("/deployments")
    }

    pub fn deployment(&self, handle: &str) -> Result<Deployment, Error> {
        self.get(&format!("/deployments/{}", escape(handle)))
    }

    /// Requests, errors, latency and rewards per version and minute since `since` (ms).
    pub fn traffic(&self, handle: &str, since: i64) -> Result<Traffic, Error> {
        self.traffic_by(handle, since, 60_000)
    }

    /// [`Client::traffic`] in buckets `bucket_ms` wide: 60 000 (minutes) or 10 000 (10 s,
    /// which the store keeps for the last hour).
    pub fn traffic_by(&self, handle: &str, since: i64, bucket_ms: i64) -> Result<Traffic, Error> {
        self.get(&format!("/deployments/{}/traffic?since={since}&bucket_ms={bucket_ms}", escape(handle)))
    }

    /// Asks the server to run `kiln run HANDLE` on a cron pattern.
    pub fn create_schedule(&self, request: &CreateSchedule) -> Result<Schedule, Error> {
        limits::name("handle", &request.handle)?;
        self.send("POST", "/schedules", request)
    }

    /// Schedules of `handle` (all when empty).
    pub fn schedules(&self, handle: &str) -> Result<Vec<Schedule>, Error> {
        if handle.is_empty() { self.get("/schedules") } else { self.get(&format!("/schedules?handle={}", escape(handle))) }
    }

    pub fn schedule(&self, id: &str) -> Result<Schedule, Error> {
        self.get(&format!("/schedules/{}", escape(id)))
    }

    pub fn delete_schedule(&self, id: &str) -> Result<(), Error> {
        let path = format!("/schedules/{}", escape(id));
        let url = self.url_of(&path);
        let _: serde_json::Value = Self::reply("DELETE", &path, &url, self.authorize(self.agent.delete(&url)).call())?;
        Ok(())
    }

    pub fn lineage(&self, model: &str, version: i64) -> Result<Lineage, Error> {
        self.get(&format!("/lineage/{}/{version}", escape(model)))
    }
}

/// Percent-encodes a path segment or query value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

//! Experiment tracking from a cell or a component: `kiln::run("mnist")` and log through it.
//!
//! Params and tags are sent at once (a param logged twice with another value is an error the
//! caller must see). Metric points are queued and sent by a background thread in batches of up
//! to 1 000, at least every 200 ms, so a training loop pays a channel send per point, not an
//! HTTP round trip. [`ActiveRun::flush`] and [`ActiveRun::end`] wait for the queue to drain and
//! report the first error the thread met; dropping the run flushes and ends it.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kiln_api::{
    ApiError, AttachArtifact, CreateRun, DatasetVersion, LogBatch, Metric, Param, RegisterDatasetVersion, Run, RunArtifact, RunInputs, RunSource, RunStatus,
    Tag, UpdateRun, limits,
};

use crate::display::{self, DisplayHandle, MimeBundle};
use crate::store::{Client, Error};

const BATCH: usize = limits::MAX_BATCH_METRICS;
const INTERVAL: Duration = Duration::from_millis(200);
const DISPLAY_EVERY: Duration = Duration::from_millis(250);

/// The run a component belongs to: set by whoever runs the pipeline (`kiln run`, a test).
pub const RUN_ENV: &str = "KILN_RUN_ID";

/// Tags of a run started in a notebook: the notebook's path (relative to the Jupyter server's
/// root, as jupyter_server gives it to the kernel in `JPY_SESSION_NAME`) and the id of the
/// cell that started it, so the Experiments panel can go back to that cell and pick the
/// experiment a notebook last logged to.
pub const NOTEBOOK_TAG: &str = "kiln.notebook";
pub const CELL_TAG: &str = "kiln.cell";

/// Where a run started in the Kiln kernel comes from: its notebook and cell, when known.
fn origin_tags() -> Vec<Tag> {
    if !display::in_kernel() {
        return Vec::new();
    }
    let notebook = std::env::var("JPY_SESSION_NAME").ok().filter(|path| !path.trim().is_empty());
    let cell = std::env::var_os(kiln_protocol::markers::CELL_FILE_ENV)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty());
    [(NOTEBOOK_TAG, notebook), (CELL_TAG, cell)].into_iter().filter_map(|(key, value)| Some(Tag { key: key.to_owned(), value: value? })).collect()
}

/// Starts a run in `experiment` (created if new) on the server named by `KILN_SERVER`.
///
/// Inside a component (`KILN_RUN_ID` set) it joins that run instead, so a cell that calls
/// `kiln::run("mnist")` logs to the pipeline's run once componentized, without an edit;
/// ending it there only flushes (the component ends the run it was given).
pub fn run(experiment: &str) -> Result<ActiveRun, Error> {
    let client = Client::from_env()?;
    match std::env::var(RUN_ENV).ok().filter(|id| !id.trim().is_empty()) {
        Some(id) => ActiveRun::attach(client, id.trim()),
        None => ActiveRun::start(client, experiment, None),
    }
}

enum Command {
    Point(Metric),
    Flush(Sender<()>),
}

/// A run being logged to. See the module docs for what is sent when.
pub struct ActiveRun {
    client: Client,
    run: Run,
    queue: Option<Sender<Command>>,
    worker: Option<JoinHandle<()>>,
    /// The first error the background sender met, reported at the next flush.
    failed: Arc<Mutex<Option<Error>>>,
    ended: bool,
    /// Whether ending this handle ends the run (false for a run joined with [`ActiveRun::attach`]).
    owned: bool,
    display: Option<LiveDisplay>,
}

impl std::fmt::Debug for ActiveRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {} ({}) on {}", self.run.name, self.run.id, self.client.url())
    }
}

impl ActiveRun {
    /// Starts a run through `client`. The source is `notebook` inside the Kiln kernel,
    /// `workflow` inside a component (`KILN_RUN_SOURCE=workflow`), `external` otherwise.
    pub fn start(client: Client, experiment: &str, name: Option<&str>) -> Result<ActiveRun, Error> {
        let source = match std::env::var("KILN_RUN_SOURCE").ok().as_deref().and_then(RunSource::parse) {
            Some(source) => source,
            None if display::in_kernel() => RunSource::Notebook,
            None => RunSource::External,
        };
        let run = client.create_run(&CreateRun {
            experiment: experiment.to_owned(),
            name: name.map(str::to_owned),
            source,
            start_time: None,
            tags: origin_tags(),
        })?;
        ActiveRun::with_run(client, run, true)
    }

    /// Joins the existing run `id` (a component's pipeline run). Ending this handle flushes
    /// it and leaves the run's status to its owner.
    pub fn attach(client: Client, id: &str) -> Result<ActiveRun, Error> {
        let run = client.run(id)?.run;
        ActiveRun::with_run(client, run, false)
    }

    pub(crate) fn with_run(client: Client, run: Run, owned: bool) -> Result<ActiveRun, Error> {
        let failed = Arc::new(Mutex::new(None));
        let (queue, inbox) = mpsc::channel();
        let worker = {
            let (client, run_id, failed) = (client.clone(), run.id.clone(), failed.clone());
            std::thread::Builder::new()
                .name("kiln-metrics".into())
                .spawn(move || send_loop(&client, &run_id, &inbox, &failed))
                .map_err(|source| Error::Io { what: "starting the metric sender thread".into(), source })?
        };
        let display = display::in_kernel().then(|| LiveDisplay::show(&client, &run));
        Ok(ActiveRun { client, run, queue: Some(queue), worker: Some(worker), failed, ended: false, owned, display })
    }

    pub fn id(&self) -> &str {
        &self.run.id
    }

    pub fn info(&self) -> &Run {
        &self.run
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Logs a hyper-parameter now. Logging it again with the same value is fine.
    pub fn log_param(&mut self, key: &str, value: impl ToString) -> Result<(), Error> {
        let param = Param { key: key.to_owned(), value: value.to_string() };
        self.client.log_batch(&self.run.id, &LogBatch { params: vec![param], ..Default::default() })
    }

    /// Sets a tag now (the last value wins).
    pub fn set_tag(&mut self, key: &str, value: impl ToString) -> Result<(), Error> {
        let tag = Tag { key: key.to_owned(), value: value.to_string() };
        self.client.log_batch(&self.run.id, &LogBatch { tags: vec![tag], ..Default::default() })
    }

    /// Queues one point of the series `key`. Checked here (key, finite value); sent in the
    /// background.
    pub fn log_metric(&mut self, key: &str, value: f64, step: i64) -> Result<(), Error> {
        let metric = Metric { key: key.to_owned(), value, timestamp: now_millis(), step };
        limits::batch(&LogBatch { metrics: vec![metric.clone()], ..Default::default() })?;
        if let Some(display) = &mut self.display {
            display.note(&metric);
        }
        self.queue
            .as_ref()
            .and_then(|queue| queue.send(Command::Point(metric)).ok())
            .ok_or_else(|| Error::Invalid(ApiError::invalid("run", "the run has ended")))
    }

    /// Registers a dataset version this run produced (see [`crate::dataset::Manifest`]).
    pub fn log_dataset(&mut self, name: &str, mut version: RegisterDatasetVersion) -> Result<DatasetVersion, Error> {
        version.run_id = Some(self.run.id.clone());
        self.client.register_dataset_version(name, &version)
    }

    /// Records that this run read `version` (for lineage).
    pub fn use_dataset(&mut self, version: &DatasetVersion) -> Result<(), Error> {
        self.client.add_run_inputs(&self.run.id, &RunInputs { dataset_versions: vec![version.id.clone()], ..Default::default() })
    }

    /// Stores `bytes` as an artifact of this run under `path`.
    pub fn log_artifact_bytes(&mut self, path: &str, bytes: &[u8], media_type: &str) -> Result<RunArtifact, Error> {
        limits::artifact_path("path", path)?;
        let artifact = self.client.upload_bytes(bytes)?;
        self.client.attach_artifact(&self.run.id, &AttachArtifact { path: path.to_owned(), sha256: artifact.sha256, media_type: media_type.to_owned() })
    }

    /// Stores any serde value as a JSON artifact of this run under `path`.
    pub fn log_json<T: serde::Serialize>(&mut self, path: &str, value: &T) -> Result<RunArtifact, Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Invalid(ApiError::invalid("value", format!("cannot be written as JSON: {e}"))))?;
        self.log_artifact_bytes(path, &bytes, "application/json")
    }

    /// Waits until every queued point is on the server; the first sending error, if any.
    pub fn flush(&mut self) -> Result<(), Error> {
        if let Some(queue) = &self.queue {
            let (done, wait) = mpsc::channel();
            if queue.send(Command::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
        if let Some(display) = &mut self.display {
            display.refresh(None);
        }
        match self.failed.lock().map(|mut slot| slot.take()) {
            Ok(Some(error)) => Err(error),
            _ => Ok(()),
        }
    }

    /// Flushes, then marks the run FINISHED (a joined run: flushes only).
    pub fn end(mut self) -> Result<Run, Error> {
        self.finish(RunStatus::Finished)
    }

    /// Flushes, then marks the run with `status` (e.g. FAILED).
    pub fn end_with(mut self, status: RunStatus) -> Result<Run, Error> {
        self.finish(status)
    }

    fn finish(&mut self, status: RunStatus) -> Result<Run, Error> {
        let flushed = self.flush();
        self.ended = true;
        self.queue = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        if !self.owned {
            return flushed.map(|()| self.run.clone());
        }
        let run = self.client.update_run(&self.run.id, &UpdateRun { status: Some(status), ..Default::default() })?;
        if let Some(display) = &mut self.display {
            display.refresh(Some(status));
        }
        self.run = run.clone();
        flushed.map(|()| run)
    }
}

impl Drop for ActiveRun {
    /// A run dropped without `end` is ended here: FAILED while a panic unwinds, else FINISHED.
    fn drop(&mut self) {
        if !self.ended {
            let status = if std::thread::panicking() { RunStatus::Failed } else { RunStatus::Finished };
            let _ = self.finish(status);
        }
    }
}

fn send_loop(client: &Client, run_id: &str, inbox: &Receiver<Command>, failed: &Mutex<Option<Error>>) {
    let mut pending: Vec<Metric> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let send = |pending: &mut Vec<Metric>| {
        if pending.is_empty() {
            return;
        }
        let batch = LogBatch { metrics: std::mem::take(pending), ..Default::default() };
        if let Err(error) = client.log_batch(run_id, &batch)
            && let Ok(mut slot) = failed.lock()
            && slot.is_none()
        {
            *slot = Some(error);
        }
    };
    loop {
        let wait = oldest.map_or(Duration::from_secs(3600), |t| INTERVAL.saturating_sub(t.elapsed()));
        match inbox.recv_timeout(wait) {
            Ok(Command::Point(metric)) => {
                oldest.get_or_insert_with(Instant::now);
                pending.push(metric);
                if pending.len() >= BATCH {
                    send(&mut pending);
                    oldest = None;
                }
            }
            Ok(Command::Flush(done)) => {
                send(&mut pending);
                oldest = None;
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                send(&mut pending);
                oldest = None;
            }
            Err(RecvTimeoutError::Disconnected) => {
                send(&mut pending);
                return;
            }
        }
    }
}

/// The run's card under the cell: name, id, server, status and the last value of each metric.
struct LiveDisplay {
    handle: DisplayHandle,
    title: String,
    last: Vec<(String, f64, i64)>,
    shown: Instant,
}

impl LiveDisplay {
    fn show(client: &Client, run: &Run) -> LiveDisplay {
        let title = format!("run {} · {} · {}", run.name, &run.id, client.url());
        let handle = display::show(MimeBundle::text(format!("{title} · RUNNING")));
        LiveDisplay { handle, title, last: Vec::new(), shown: Instant::now() }
    }

    fn note(&mut self, metric: &Metric) {
        match self.last.iter_mut().find(|(key, ..)| *key == metric.key) {
            Some(slot) => *slot = (metric.key.clone(), metric.value, metric.step),
            None => self.last.push((metric.key.clone(), metric.value, metric.step)),
        }
        if self.shown.elapsed() >= DISPLAY_EVERY {
            self.refresh(None);
        }
    }

    fn refresh(&mut self, status: Option<RunStatus>) {
        self.shown = Instant::now();
        let status = status.map_or("RUNNING", RunStatus::as_str);
        let metrics: Vec<String> = self.last.iter().map(|(key, value, step)| format!("{key}={value:.6} (step {step})")).collect();
        let text = format!("{} · {status}\n{}", self.title, metrics.join("  "));
        let rows: String =
            self.last.iter().map(|(key, value, step)| format!("<tr><td>{}</td><td>{value:.6}</td><td>{step}</td></tr>", html_escape(key))).collect();
        let html = format!(
            "<div class=\"kiln-run\"><b>{}</b> · <code>{status}</code><table><tr><th>metric</th><th>last</th><th>step</th></tr>{rows}</table></div>",
            html_escape(&self.title)
        );
        self.handle.update(MimeBundle::html(html, text));
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

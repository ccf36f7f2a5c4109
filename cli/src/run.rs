//! `kiln run HANDLE`: the training workflow. Runs the handle's registered data and train
//! components — under podman from their images, or as processes from the same images'
//! binaries — against the store, in one run that records the parameters, the image digests,
//! the logs of every attempt, the dataset version and the model version.
//!
//! Steps are cached: the data step by its image digest and parameters, the train step by its
//! image digest, parameters and the fingerprint of the dataset it reads. A re-run with
//! nothing changed does no work and says so. A failed step is retried (`--retries`), and
//! `--resume RUN` starts again from the step that failed in RUN.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use kiln::api::{CodePackage, CreateRun, LogBatch, Role, RunSource, RunStatus, SearchRuns, Tag, UpdateRun};
use sha2::{Digest, Sha256};

use crate::launch::{self, Runner, binary_of, podman_image, podman_run};
use crate::progress::Step;

#[derive(clap::Args)]
pub struct RunArgs {
    handle: String,
    /// A parameter for this run (`--param epochs=500`); repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Where the components run: podman (their images; the default when podman works) or
    /// process (their binaries, taken out of the same images).
    #[arg(long, value_enum)]
    runner: Option<Runner>,
    /// Attempts after the first for a step that fails (not for a usage error).
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Start again from the step that failed in this run (its finished steps are reused).
    #[arg(long, value_name = "RUN")]
    resume: Option<String>,
    /// Run every step even when a cached result exists.
    #[arg(long)]
    no_cache: bool,
    #[arg(long)]
    json: bool,
}

/// Tags the workflow writes on its run (and reads back for caching and resuming).
mod tags {
    pub const HANDLE: &str = "kiln.handle";
    pub const RUNNER: &str = "kiln.runner";
    pub const RESUMED_FROM: &str = "kiln.resumed_from";
    pub const SCHEDULE: &str = "kiln.schedule";
    pub fn image(role: &str) -> String {
        format!("kiln.{role}.image")
    }
    pub fn cache(role: &str) -> String {
        format!("kiln.{role}.cache")
    }
    pub const DATASET_VERSION: &str = "kiln.data.dataset_version";
    pub const MODEL_VERSION: &str = "kiln.train.model_version";
    /// The declared condition a training missed (no model version was registered).
    pub const NOT_REGISTERED: &str = "kiln.train.not_registered";
}

/// The newest code package of each role.
fn packages(client: &kiln::Client, handle: &str) -> anyhow::Result<(CodePackage, CodePackage)> {
    let all = client.code_packages(handle).with_context(|| format!("reading the code packages of `{handle}`"))?;
    let newest = |role: Role| all.iter().filter(|p| p.role == role).max_by_key(|p| p.created_at).cloned();
    match (newest(Role::Data), newest(Role::Train)) {
        (Some(data), Some(train)) => Ok((data, train)),
        _ => bail!("`{handle}` has no registered data and train components: run `kiln componentize NOTEBOOK --handle {handle}` with a server set"),
    }
}

fn parse_params(params: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in params {
        let (name, value) = pair.split_once('=').with_context(|| format!("--param {pair}: write it as NAME=VALUE"))?;
        anyhow::ensure!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "--param {pair}: `{name}` is not a parameter name");
        out.insert(name.to_owned(), value.to_owned());
    }
    Ok(out)
}

/// sha256 over the parts, each length-prefixed.
fn cache_key(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn params_text(params: &BTreeMap<String, String>) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// The newest run of `handle` tagged `key = value` that also carries one of the `wanted`
/// tags: (run, that tag, its value).
fn cached(client: &kiln::Client, handle: &str, key: &str, value: &str, wanted: &[&str]) -> anyhow::Result<Option<(String, String, String)>> {
    let request = SearchRuns {
        experiments: vec![handle.to_owned()],
        filter: format!("tags.`{key}` = '{value}'"),
        order_by: vec!["start_time DESC".into()],
        max_results: Some(20),
        ..Default::default()
    };
    let page = match client.search_runs(&request) {
        Ok(page) => page,
        // No experiment yet: nothing ran.
        Err(e) if e.api_error().is_some_and(|a| a.error_code == kiln::api::ErrorCode::ResourceDoesNotExist) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(page.runs.into_iter().find_map(|r| r.tags.iter().find(|t| wanted.contains(&t.key.as_str())).map(|t| (r.run.id.clone(), t.key.clone(), t.value.clone()))))
}

/// One step's outcome line (what the component prints on stdout).
fn outcome(stdout: &str) -> Option<serde_json::Value> {
    stdout.lines().rev().find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok().filter(|v| v.get("role").is_some()))
}

struct Workflow<'a> {
    client: &'a kiln::Client,
    handle: &'a str,
    runner: Runner,
    retries: u32,
    params: BTreeMap<String, String>,
    cache_dir: PathBuf,
    run_id: Option<String>,
}

impl Workflow<'_> {
    /// The workflow's run, made when the first step has to run.
    fn run_id(&mut self, data: &CodePackage, train: &CodePackage, resumed_from: Option<&str>) -> anyhow::Result<String> {
        if let Some(id) = &self.run_id {
            return Ok(id.clone());
        }
        let mut tags = vec![
            Tag { key: tags::HANDLE.into(), value: self.handle.into() },
            Tag { key: tags::RUNNER.into(), value: self.runner.name().into() },
            Tag { key: tags::image("data"), value: data.digest.clone() },
            Tag { key: tags::image("train"), value: train.digest.clone() },
        ];
        if let Some(from) = resumed_from {
            tags.push(Tag { key: tags::RESUMED_FROM.into(), value: from.into() });
        }
        // Started by `kiln server` for a schedule.
        if let Ok(schedule) = std::env::var("KILN_SCHEDULE") {
            tags.push(Tag { key: tags::SCHEDULE.into(), value: schedule });
        }
        let run = self.client.create_run(&CreateRun {
            experiment: self.handle.into(),
            name: Some(format!("{}-workflow", self.handle)),
            source: RunSource::Workflow,
            start_time: None,
            tags,
        })?;
        self.run_id = Some(run.id.clone());
        Ok(run.id)
    }

    fn tag(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let run = self.run_id.as_deref().expect("a step ran");
        self.client.log_batch(run, &LogBatch { tags: vec![Tag { key: key.into(), value: value.into() }], ..Default::default() })?;
        Ok(())
    }

    /// Runs one component until it succeeds, a usage error, or the retries run out; stores
    /// each attempt's log. Returns its outcome line.
    fn step(&mut self, package: &CodePackage, extra_env: &[(&str, String)]) -> anyhow::Result<serde_json::Value> {
        let role = package.role.as_str();
        let run_id = self.run_id.clone().expect("the run exists before a step");
        let mut env: Vec<(String, String)> = vec![
            ("KILN_SERVER".into(), self.client.url().to_owned()),
            ("KILN_RUN_ID".into(), run_id.clone()),
            ("KILN_CODE_PACKAGES".into(), package.id.clone()),
        ];
        if let Some(token) = self.client.token() {
            env.push(("KILN_TOKEN".into(), token.to_owned()));
        }
        env.extend(self.params.iter().map(|(k, v)| (format!("{}{}", kiln::component::PARAM_ENV_PREFIX, k.to_ascii_uppercase()), v.clone())));
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        for attempt in 1..=self.retries + 1 {
            let mut cmd = match self.runner {
                Runner::Podman => {
                    let image = podman_image(package)?;
                    let mut cmd = podman_run(&image)?;
                    for (k, v) in &env {
                        cmd.arg("-e").arg(format!("{k}={v}"));
                    }
                    cmd.arg(image);
                    cmd
                }
                Runner::Process => {
                    let mut cmd = Command::new(binary_of(package, &self.cache_dir)?);
                    cmd.envs(env.iter().map(|(k, v)| (k, v))).env_remove("KILN_DATASET_VERSION");
                    for (k, v) in extra_env {
                        cmd.env(k, v);
                    }
                    cmd
                }
            };
            let output = cmd.output().with_context(|| format!("starting the {role} step ({})", self.runner.name()))?;
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let log = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
            let artifact = self.client.upload_bytes(log.as_bytes())?;
            let path = format!("logs/{role}.attempt-{attempt}.log");
            self.client.attach_artifact(&run_id, &kiln::api::AttachArtifact { path, sha256: artifact.sha256, media_type: "text/plain".into() })?;
            if output.status.success()
                && let Some(outcome) = outcome(&stdout)
            {
                return Ok(outcome);
            }
            let code = output.status.code();
            // The component's own last word, else the log's tail.
            let said = log.lines().rev().find(|l| l.starts_with("kiln: ")).map(str::to_owned);
            let tail = said.unwrap_or_else(|| log.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n  "));
            eprintln!("kiln: the {role} step failed (attempt {attempt}, exit {}):\n  {tail}", code.map_or("signal".into(), |c| c.to_string()));
            // A usage error (an unknown or mistyped parameter) fails the same way every time.
            if code == Some(2) {
                break;
            }
            if attempt <= self.retries {
                std::thread::sleep(std::time::Duration::from_millis(500 << attempt.min(5)));
            }
        }
        bail!("the {role} step of `{}` failed; its logs are in run {run_id}", self.handle)
    }
}

#[derive(serde::Serialize)]
struct Summary {
    handle: String,
    run_id: Option<String>,
    runner: &'static str,
    data: StepSummary,
    train: StepSummary,
    dataset_version: String,
    /// `None` when a condition declared in the notebook kept the model from being registered.
    model_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_registered: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
}

#[derive(serde::Serialize)]
struct StepSummary {
    /// `ran`, `cached` (from run …), or `resumed` (from run …).
    status: String,
    from_run: Option<String>,
}

pub fn run(args: &RunArgs, client: kiln::Client) -> anyhow::Result<()> {
    let params = parse_params(&args.params)?;
    let (data, train) = packages(&client, &args.handle)?;
    let runner = match args.runner {
        Some(runner) => runner,
        None => launch::default_runner(),
    };
    let mut workflow = Workflow {
        client: &client,
        handle: &args.handle,
        runner,
        retries: args.retries,
        params: params.clone(),
        cache_dir: crate::componentize::cache_root(),
        run_id: None,
    };
    let resumed = match &args.resume {
        Some(id) => Some(client.run(id).with_context(|| format!("--resume {id}"))?),
        None => None,
    };
    let resumed_tag = |key: &str| resumed.as_ref().and_then(|r| r.tags.iter().find(|t| t.key == key).map(|t| t.value.clone()));

    // The data step.
    let data_key = cache_key(&[&data.digest, &params_text(&params)]);
    let step = Step::start("data");
    let (dataset_version, data_summary) = if let Some(version) = resumed_tag(tags::DATASET_VERSION) {
        step.done(&format!("resumed: dataset version {version} from run {}", args.resume.as_deref().unwrap_or("")));
        (version, StepSummary { status: "resumed".into(), from_run: args.resume.clone() })
    } else if let Some((run, _, version)) =
        (!args.no_cache).then(|| cached(&client, &args.handle, &tags::cache("data"), &data_key, &[tags::DATASET_VERSION])).transpose()?.flatten()
    {
        step.done(&format!("cached: same image and parameters as run {run} (dataset version {version})"));
        (version, StepSummary { status: "cached".into(), from_run: Some(run) })
    } else {
        step.message(format!("{} ({})", data.image, runner.name()));
        workflow.run_id(&data, &train, args.resume.as_deref())?;
        let result = workflow.step(&data, &[]);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                step.fail();
                finish(&client, workflow.run_id.as_deref(), RunStatus::Failed);
                return Err(error);
            }
        };
        let version = outcome["dataset_version"].as_str().context("the data step named no dataset version")?.to_owned();
        workflow.tag(&tags::cache("data"), &data_key)?;
        workflow.tag(tags::DATASET_VERSION, &version)?;
        step.done(&format!("dataset version {version}"));
        (version, StepSummary { status: "ran".into(), from_run: None })
    };

    // The train step: keyed by what it reads too.
    let fingerprint = client
        .dataset_versions(&args.handle)?
        .into_iter()
        .find(|v| v.id == dataset_version)
        .map(|v| v.fingerprint)
        .with_context(|| format!("dataset version {dataset_version} of `{}` is gone", args.handle))?;
    let train_key = cache_key(&[&train.digest, &params_text(&params), &fingerprint]);
    let step = Step::start("train");
    let mut not_registered = None;
    let mut aliases = Vec::new();
    let (model_version, train_summary) = if let Some((run, tag, value)) = (!args.no_cache)
        .then(|| cached(&client, &args.handle, &tags::cache("train"), &train_key, &[tags::MODEL_VERSION, tags::NOT_REGISTERED]))
        .transpose()?
        .flatten()
    {
        if tag == tags::NOT_REGISTERED {
            // The same training gives the same metrics: the condition fails again.
            step.done(&format!("cached: same image, parameters and data as run {run}, which registered no model (`{value}` did not hold)"));
            not_registered = Some(value);
            (None, StepSummary { status: "cached".into(), from_run: Some(run) })
        } else {
            step.done(&format!("cached: same image, parameters and data as run {run} (model {}@{value})", args.handle));
            (value.parse::<i64>().ok(), StepSummary { status: "cached".into(), from_run: Some(run) })
        }
    } else {
        step.message(format!("{} ({})", train.image, runner.name()));
        workflow.run_id(&data, &train, args.resume.as_deref())?;
        if data_summary.status != "ran" {
            workflow.tag(tags::DATASET_VERSION, &dataset_version)?;
        }
        let outcome = match workflow.step(&train, &[("KILN_DATASET_VERSION", dataset_version.clone())]) {
            Ok(outcome) => outcome,
            Err(error) => {
                step.fail();
                finish(&client, workflow.run_id.as_deref(), RunStatus::Failed);
                return Err(error);
            }
        };
        aliases = outcome["aliases"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        match outcome["model_version"].as_i64() {
            Some(version) => {
                workflow.tag(&tags::cache("train"), &train_key)?;
                workflow.tag(tags::MODEL_VERSION, &version.to_string())?;
                let promoted = if aliases.is_empty() { String::new() } else { format!(", now {}", aliases.join(", ")) };
                step.done(&format!("model {}@{version}{promoted}", args.handle));
            }
            None => {
                let condition = outcome["not_registered"].as_str().unwrap_or("a condition").to_owned();
                workflow.tag(&tags::cache("train"), &train_key)?;
                workflow.tag(tags::NOT_REGISTERED, &condition)?;
                step.done(&format!("trained; not registered: `{condition}` does not hold"));
                not_registered = Some(condition);
            }
        }
        (outcome["model_version"].as_i64(), StepSummary { status: "ran".into(), from_run: None })
    };
    finish(&client, workflow.run_id.as_deref(), RunStatus::Finished);
    if workflow.run_id.is_none() {
        eprintln!("kiln: nothing changed since the cached runs: no step ran");
    }
    let summary = Summary {
        handle: args.handle.clone(),
        run_id: workflow.run_id.clone(),
        runner: runner.name(),
        data: data_summary,
        train: train_summary,
        dataset_version,
        model_version,
        not_registered,
        aliases,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let model = match summary.model_version {
            Some(version) => format!("model {}@{version}", summary.handle),
            None => format!("no model version (`{}` did not hold)", summary.not_registered.as_deref().unwrap_or("")),
        };
        println!("run {} · dataset version {} · {model}", summary.run_id.as_deref().unwrap_or("(none: all cached)"), summary.dataset_version);
    }
    Ok(())
}

fn finish(client: &kiln::Client, run: Option<&str>, status: RunStatus) {
    if let Some(run) = run
        && let Err(error) = client.update_run(run, &UpdateRun { status: Some(status), ..Default::default() })
    {
        eprintln!("kiln: could not mark run {run} {}: {error}", status.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_change_with_each_part() {
        let a = cache_key(&["sha256:1", "lr=0.1"]);
        assert_eq!(a, cache_key(&["sha256:1", "lr=0.1"]));
        assert_ne!(a, cache_key(&["sha256:2", "lr=0.1"]));
        assert_ne!(a, cache_key(&["sha256:1", "lr=0.2"]));
        assert_ne!(cache_key(&["ab", "c"]), cache_key(&["a", "bc"]));
    }

    #[test]
    fn params_and_outcome_lines() {
        assert_eq!(parse_params(&["epochs=3".into(), "lr=1e-3".into()]).unwrap().len(), 2);
        assert!(parse_params(&["epochs".into()]).is_err());
        assert!(parse_params(&["bad name=1".into()]).is_err());
        let line = outcome("noise\n{\"role\":\"data\",\"dataset_version\":\"d1\"}\n").unwrap();
        assert_eq!(line["dataset_version"], "d1");
        assert!(outcome("{\"other\": 1}").is_none());
    }
}

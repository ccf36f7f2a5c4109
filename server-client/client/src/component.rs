//! The runtime of a generated component: what `kiln componentize` writes around the notebook's
//! cells, kept here so the generated `main.rs` stays short and readable.
//!
//! A component takes everything from its environment, so the same binary runs under podman,
//! as a process or in a Kubernetes pod:
//!
//! | variable | read by | meaning |
//! |---|---|---|
//! | `KILN_SERVER`, `KILN_TOKEN` | all | the store |
//! | `KILN_RUN_ID` | data, train | the pipeline's run to log to (else a new run in the experiment named after the handle) |
//! | `KILN_PARAM_<NAME>` | data, train | a parameter (`--param name=value` wins) |
//! | `KILN_DATASET_VERSION` | train | the data step's output to read (else the newest version of the dataset named after the handle) |
//! | `KILN_CODE_PACKAGES` | data, train | the code packages running, comma-separated ids, for lineage |
//! | `KILN_REGISTER` | train | `0`: do not register a model version |
//! | `KILN_MODEL` | infer | `HANDLE@VERSION` or `HANDLE@ALIAS` (default `HANDLE@latest`) |
//! | `KILN_LISTEN` | infer | the address to serve on (default `0.0.0.0:8080`; `unix:PATH` for a Unix socket) |
//! | `KILN_OUTPUT_DIR` | data, train | also write each result to a file there (for Argo) |
//!
//! The data step stores each value it hands on as an artifact of its run, lists them in
//! `data/manifest.json` and registers that manifest as a version of the dataset named after
//! the handle. The train step reads them back, runs, stores its model values the same way
//! under `model/` and registers a model version. The infer step loads that version's values.
//! Each prints one JSON line on stdout saying what it made; everything else goes to stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use kiln_api::{
    CreateModel, CreateModelVersion, CreateRun, ErrorCode, RegisterDatasetVersion, Role, RunInputs, RunSource, RunStatus, StoredValue, ValuesManifest,
};

use crate::codec::Codec;
use crate::store::{Client, Error};
use crate::tracking::{ActiveRun, RUN_ENV};

/// What the generated code says about itself.
#[derive(Debug)]
pub struct Spec {
    pub handle: &'static str,
    pub role: Role,
    /// The notebook it was generated from (for messages).
    pub notebook: &'static str,
    /// Train: register a model version only when the run passes this filter
    /// (`metrics.accuracy >= 0.9`), declared in the notebook; `None`: always.
    pub register_when: Option<&'static str>,
    /// Train: (alias, filter) — point the alias at the new version when the filter holds.
    pub promote: &'static [(&'static str, &'static str)],
    pub parameters: &'static [Parameter],
}

/// A parameter from the notebook's `parameters` cells, with its default as written there.
#[derive(Debug)]
pub struct Parameter {
    pub name: &'static str,
    /// The type the compiler gave it (`f64`, `usize`, `&str`).
    pub ty: &'static str,
    pub default: &'static str,
}

/// A value a parameter can take from the command line or the environment.
pub trait ParamValue: Sized {
    fn parse_param(text: &str) -> Result<Self, String>;
    /// As logged to the run.
    fn render(&self) -> String;
}

macro_rules! from_str_params {
    ($($t:ty),*) => {$(
        impl ParamValue for $t {
            fn parse_param(text: &str) -> Result<Self, String> {
                text.trim().parse::<$t>().map_err(|e| e.to_string())
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
from_str_params!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char);

impl ParamValue for String {
    fn parse_param(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn render(&self) -> String {
        self.clone()
    }
}

impl ParamValue for &'static str {
    /// A component runs once and exits, so a string parameter may live for the whole run.
    fn parse_param(text: &str) -> Result<Self, String> {
        Ok(Box::leak(text.to_owned().into_boxed_str()))
    }
    fn render(&self) -> String {
        (*self).to_owned()
    }
}

/// Compiles only when `T` can be a parameter: the componentizer's probe calls it for each.
pub fn check_param<T: ParamValue>(_value: &T) {}

/// Why a component stopped.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] Error),
    #[error("{0}")]
    Input(String),
}

/// Whether `text` is a value of the primitive type named `ty` (other types are checked when
/// the cells read them).
fn check_text(ty: &str, text: &str) -> Result<(), String> {
    macro_rules! check {
        ($($t:ty),*) => {
            match ty {
                $(stringify!($t) => <$t as ParamValue>::parse_param(text).map(drop),)*
                _ => Ok(()),
            }
        };
    }
    check!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char)
}

fn type_error(name: &str, ty: &str, text: &str, error: &str) -> ComponentError {
    ComponentError::Usage(format!("parameter `{name}`: `{text}` is not a valid {ty} ({error})"))
}

/// Prefix of the environment variables that set parameters (`KILN_PARAM_LR=0.1`).
pub const PARAM_ENV_PREFIX: &str = "KILN_PARAM_";

/// `--param name=value` (or `-p`) from the arguments, then `KILN_PARAM_<NAME>` from `env`;
/// a name the notebook does not declare is an error that lists the ones it does.
pub fn parameter_overrides(
    spec: &Spec,
    args: impl IntoIterator<Item = String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ComponentError> {
    let mut overrides = BTreeMap::new();
    let known = |name: &str| spec.parameters.iter().any(|p| p.name == name);
    let unknown = |name: &str, from: &str| {
        let list: Vec<String> = spec.parameters.iter().map(|p| format!("{} ({}, default {})", p.name, p.ty, p.default)).collect();
        let list = if list.is_empty() { "none".to_owned() } else { list.join(", ") };
        ComponentError::Usage(format!("unknown parameter `{name}` ({from}); the {} step of `{}` takes: {list}", spec.role.as_str(), spec.handle))
    };
    for (key, value) in env {
        if let Some(name) = key.strip_prefix(PARAM_ENV_PREFIX) {
            let name = name.to_ascii_lowercase();
            if !known(&name) {
                return Err(unknown(&name, &key));
            }
            overrides.insert(name, value);
        }
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let pair = match arg.as_str() {
            "--param" | "-p" => args.next().ok_or_else(|| ComponentError::Usage(format!("{arg} needs name=value")))?,
            other => match other.strip_prefix("--param=") {
                Some(pair) => pair.to_owned(),
                None => return Err(ComponentError::Usage(format!("unexpected argument `{other}`; use --param name=value, or --help"))),
            },
        };
        let (name, value) = pair.split_once('=').ok_or_else(|| ComponentError::Usage(format!("`{pair}`: write a parameter as name=value")))?;
        if !known(name) {
            return Err(unknown(name, "--param"));
        }
        overrides.insert(name.to_owned(), value.to_owned());
    }
    // Types checked now, before any run is made for a value that cannot be used.
    for p in spec.parameters {
        if let Some(text) = overrides.get(p.name) {
            check_text(p.ty, text).map_err(|e| type_error(p.name, p.ty, text, &e))?;
        }
    }
    Ok(overrides)
}

/// What the generated code works through: parameters, values in and out, the run.
pub struct Context {
    spec: &'static Spec,
    client: Client,
    run: Option<ActiveRun>,
    overrides: BTreeMap<String, String>,
    /// The manifest values are read from (train: the data step's; infer: the model's).
    inputs: Option<ValuesManifest>,
    /// Where `inputs` came from, for messages.
    inputs_from: String,
    /// The model version `inputs` belong to (infer).
    model: Option<(String, i64)>,
    outputs: ValuesManifest,
}

impl Context {
    /// The parameter `name`: its override if one was given (checked against the type),
    /// else `default`. Logged to the run either way.
    pub fn param<T: ParamValue>(&mut self, name: &str, default: T) -> Result<T, ComponentError> {
        let value = match self.overrides.get(name) {
            Some(text) => {
                let ty = self.spec.parameters.iter().find(|p| p.name == name).map_or("its type", |p| p.ty);
                T::parse_param(text).map_err(|e| type_error(name, ty, text, &e))?
            }
            None => default,
        };
        if let Some(run) = &mut self.run {
            run.log_param(name, value.render())?;
        }
        Ok(value)
    }

    /// The value `name` handed on by the step before, read with `codec`.
    pub fn get<T, C: Codec<T>>(&mut self, name: &str, codec: C) -> Result<T, ComponentError> {
        if self.inputs.is_none() {
            let (manifest, from) = self.resolve_inputs()?;
            self.inputs = Some(manifest);
            self.inputs_from = from;
        }
        let inputs = self.inputs.as_ref().expect("resolved above");
        let stored = inputs.values.get(name).ok_or_else(|| {
            ComponentError::Input(format!("{} has no value `{name}`: was it componentized from another version of the notebook?", self.inputs_from))
        })?;
        if stored.codec != C::NAME {
            return Err(ComponentError::Input(format!(
                "`{name}` in {} is stored as {}, but this component reads it as {}",
                self.inputs_from,
                stored.codec,
                C::NAME
            )));
        }
        let bytes = self.client.download(&stored.sha256)?;
        codec.decode(bytes).map_err(|e| ComponentError::Input(format!("`{name}` from {}: {e}", self.inputs_from)))
    }

    /// Hands `value` on to the next step: stored now, listed in the manifest at the end.
    pub fn put<T, C: Codec<T>>(&mut self, name: &str, codec: C, value: &T) -> Result<(), ComponentError> {
        let bytes = codec.encode(value).map_err(|e| ComponentError::Input(format!("`{name}`: {e}")))?;
        let artifact = self.client.upload_bytes(&bytes)?;
        if let Some(run) = &self.run {
            let path = format!("{}/{name}.{}", output_dir(self.spec.role), C::EXTENSION);
            self.client.attach_artifact(run.id(), &kiln_api::AttachArtifact { path, sha256: artifact.sha256.clone(), media_type: C::MEDIA_TYPE.to_owned() })?;
        }
        let stored = StoredValue { sha256: artifact.sha256, size: artifact.size, codec: C::NAME.to_owned(), ty: std::any::type_name::<T>().to_owned() };
        self.outputs.values.insert(name.to_owned(), stored);
        Ok(())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The model version the values were read from (infer, once a value was read).
    pub fn loaded_model(&self) -> Option<(&str, i64)> {
        self.model.as_ref().map(|(name, version)| (name.as_str(), *version))
    }

    /// The run this step logs to (none for infer).
    pub fn run_id(&self) -> Option<&str> {
        self.run.as_ref().map(|r| r.id())
    }

    fn resolve_inputs(&mut self) -> Result<(ValuesManifest, String), ComponentError> {
        match self.spec.role {
            Role::Data => Err(ComponentError::Input("the data step reads no values from another step".into())),
            Role::Train => {
                let handle = self.spec.handle;
                let version = match std::env::var("KILN_DATASET_VERSION").ok().filter(|v| !v.trim().is_empty()) {
                    Some(id) => self
                        .client
                        .dataset_versions(handle)?
                        .into_iter()
                        .find(|v| v.id == id.trim())
                        .ok_or_else(|| ComponentError::Input(format!("KILN_DATASET_VERSION={id}: no such version of dataset `{handle}`")))?,
                    None => self
                        .client
                        .dataset_versions(handle)?
                        .into_iter()
                        .max_by_key(|v| v.created_at)
                        .ok_or_else(|| ComponentError::Input(format!("dataset `{handle}` has no version yet: run the data step first")))?,
                };
                let sha256 = version
                    .artifact_sha256
                    .clone()
                    .ok_or_else(|| ComponentError::Input(format!("dataset version {} of `{handle}` has no manifest", version.id)))?;
                if let Some(run) = &mut self.run {
                    run.use_dataset(&version)?;
                }
                let manifest: ValuesManifest = self.client.load_json(&sha256)?;
                Ok((manifest, format!("dataset `{handle}` version {}", version.id)))
            }
            Role::Infer => {
                let reference = std::env::var("KILN_MODEL").ok().filter(|m| !m.trim().is_empty()).unwrap_or_else(|| format!("{}@latest", self.spec.handle));
                let version = resolve_model(&self.client, &reference)?;
                let manifest = model_manifest(&self.client, &version)?;
                self.model = Some((version.name.clone(), version.version));
                Ok((manifest, format!("model {}@{}", version.name, version.version)))
            }
        }
    }
}

fn output_dir(role: Role) -> &'static str {
    match role {
        Role::Data => "data",
        Role::Train | Role::Infer => "model",
    }
}

/// `NAME@VERSION`, `NAME@ALIAS`, or `NAME` (its latest version).
pub fn resolve_model(client: &Client, reference: &str) -> Result<kiln_api::ModelVersion, ComponentError> {
    let (name, which) = reference.split_once('@').unwrap_or((reference, "latest"));
    let found = match which.parse::<i64>() {
        Ok(version) => client.model_version(name, version),
        Err(_) if which == "latest" => match client.model(name)?.latest_version {
            Some(version) => client.model_version(name, version),
            None => return Err(ComponentError::Input(format!("model `{name}` has no version yet: run the train step first"))),
        },
        Err(_) => client.version_by_alias(name, which),
    };
    found.map_err(|e| match e.api_error().map(|a| a.error_code) {
        Some(ErrorCode::ResourceDoesNotExist) => ComponentError::Input(format!("KILN_MODEL={reference}: {e}")),
        _ => ComponentError::Store(e),
    })
}

/// The values manifest a model version points at (`runs:/RUN/model`).
pub fn model_manifest(client: &Client, version: &kiln_api::ModelVersion) -> Result<ValuesManifest, ComponentError> {
    let what = format!("model {}@{}", version.name, version.version);
    let (run_id, dir) = version
        .source
        .strip_prefix("runs:/")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| ComponentError::Input(format!("{what} was not made by a Kiln train step (source {})", version.source)))?;
    let run = client.run(run_id)?;
    let path = format!("{dir}/manifest.json");
    let artifact = run.artifacts.iter().find(|a| a.path == path).ok_or_else(|| ComponentError::Input(format!("{what}: run {run_id} has no {path}")))?;
    Ok(client.load_json(&artifact.sha256)?)
}

fn usage(spec: &Spec) -> String {
    let mut text = format!(
        "The {} step of `{}`, generated by `kiln componentize` from {}.\n\nUsage: [--param NAME=VALUE]…\n\nParameters (also KILN_PARAM_<NAME>):\n",
        spec.role.as_str(),
        spec.handle,
        spec.notebook
    );
    let width = spec.parameters.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in spec.parameters {
        text.push_str(&format!("  {:<width$}  {:<8} default {}\n", p.name, p.ty, p.default));
    }
    if spec.parameters.is_empty() {
        text.push_str("  (none)\n");
    }
    text.push_str("\nEnvironment: KILN_SERVER, KILN_TOKEN, KILN_RUN_ID, KILN_DATASET_VERSION (train), KILN_REGISTER=0 (train), KILN_CODE_PACKAGES.\n");
    text
}

/// Sets up the context for `spec`: the store, the run (joined or new), the parameter
/// overrides. Must run before any thread starts (it sets `KILN_RUN_ID` for the cells).
pub fn start(spec: &'static Spec, args: Vec<String>) -> Result<Context, ComponentError> {
    // SAFETY: `start` is the first thing a component's `main` calls, before any thread.
    #[cfg(feature = "candle")]
    unsafe {
        crate::candle_threads::settle()
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let overrides = parameter_overrides(spec, args, env)?;
    let client = Client::from_env()?;
    let run = match spec.role {
        Role::Infer => None,
        role => {
            let (run, owned) = match std::env::var(RUN_ENV).ok().filter(|id| !id.trim().is_empty()) {
                Some(id) => (client.run(id.trim())?.run, false),
                None => {
                    let name = format!("{}-{}", spec.handle, role.as_str());
                    let request =
                        CreateRun { experiment: spec.handle.to_owned(), name: Some(name), source: RunSource::Workflow, start_time: None, tags: Vec::new() };
                    (client.create_run(&request)?, true)
                }
            };
            // SAFETY: called from `main` before the component starts any thread; the cells'
            // `kiln::run(…)` reads it to join this run.
            unsafe { std::env::set_var(RUN_ENV, &run.id) };
            let mut active = ActiveRun::with_run(client.clone(), run, owned)?;
            active.set_tag("kiln.handle", spec.handle)?;
            if let Ok(ids) = std::env::var("KILN_CODE_PACKAGES") {
                let code_packages: Vec<String> = ids.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                if !code_packages.is_empty() {
                    client.add_run_inputs(active.id(), &RunInputs { code_packages, ..Default::default() })?;
                }
            }
            Some(active)
        }
    };
    let outputs = ValuesManifest { handle: spec.handle.to_owned(), role: spec.role, values: BTreeMap::new() };
    Ok(Context { spec, client, run, overrides, inputs: None, inputs_from: String::new(), model: None, outputs })
}

/// What a finished data or train step made, printed as one JSON line.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    role: Role,
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<i64>,
    /// Train: the declared condition that kept the model from being registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_registered: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    values: Vec<String>,
}

impl Context {
    /// Stores the manifest, registers the dataset or model version, ends an owned run.
    fn finish(mut self) -> Result<Outcome, ComponentError> {
        let role = self.spec.role;
        let handle = self.spec.handle;
        let mut outcome = Outcome {
            role,
            run_id: self.run_id().map(str::to_owned),
            dataset_version: None,
            model: None,
            model_version: None,
            not_registered: None,
            aliases: Vec::new(),
            values: self.outputs.values.keys().cloned().collect(),
        };
        let Some(mut run) = self.run.take() else { return Ok(outcome) };
        let manifest = serde_json::to_vec_pretty(&self.outputs).map_err(|e| ComponentError::Input(format!("writing the manifest: {e}")))?;
        let stored = run.log_artifact_bytes(&format!("{}/manifest.json", output_dir(role)), &manifest, "application/json")?;
        match role {
            Role::Data => {
                let schema = self.outputs.values.iter().map(|(name, v)| kiln_api::Column { name: name.clone(), dtype: v.ty.clone() }).collect();
                let size = self.outputs.values.values().map(|v| v.size).sum();
                let registration =
                    RegisterDatasetVersion { fingerprint: stored.sha256.clone(), size, rows: None, schema, artifact_sha256: Some(stored.sha256), run_id: None };
                outcome.dataset_version = Some(run.log_dataset(handle, registration)?.id);
            }
            Role::Train if std::env::var("KILN_REGISTER").as_deref() != Ok("0") => {
                // Conditions read the run as the store has it: every metric point sent.
                run.flush()?;
                let view = self.client.run(run.id())?;
                let holds = |filter: &str| -> Result<bool, ComponentError> {
                    let parsed = kiln_api::search::parse_filter(filter).map_err(|e| ComponentError::Input(format!("condition `{filter}`: {}", e.message)))?;
                    Ok(parsed.matches(&view))
                };
                if let Some(filter) = self.spec.register_when
                    && !holds(filter)?
                {
                    eprintln!("kiln: not registering a model version: `{filter}` does not hold for run {}", run.id());
                    run.set_tag("kiln.train.registered", "false")?;
                    outcome.not_registered = Some(filter.to_owned());
                    run.end()?;
                    return Ok(outcome);
                }
                match self.client.create_model(&CreateModel { name: handle.to_owned(), ..Default::default() }) {
                    Ok(_) => {}
                    Err(e) if e.api_error().is_some_and(|a| a.error_code == ErrorCode::ResourceAlreadyExists) => {}
                    Err(e) => return Err(e.into()),
                }
                let request = CreateModelVersion { source: format!("runs:/{}/model", run.id()), run_id: Some(run.id().to_owned()), ..Default::default() };
                let version = self.client.create_model_version(handle, &request)?;
                outcome.model = Some(handle.to_owned());
                outcome.model_version = Some(version.version);
                for (alias, filter) in self.spec.promote {
                    if holds(filter)? {
                        self.client.set_alias(handle, alias, version.version)?;
                        outcome.aliases.push((*alias).to_owned());
                    } else {
                        eprintln!("kiln: `{alias}` stays where it was: `{filter}` does not hold");
                    }
                }
            }
            Role::Train | Role::Infer => {}
        }
        run.end()?;
        Ok(outcome)
    }

    fn fail(mut self) {
        if let Some(run) = self.run.take() {
            let _ = run.end_with(RunStatus::Failed);
        }
    }
}

/// The whole of a data or train component's `main`: start, run the cells, hand the values on.
pub fn main(spec: &'static Spec, body: impl FnOnce(&mut Context) -> Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", usage(spec));
        return ExitCode::SUCCESS;
    }
    let mut ctx = match start(spec, args) {
        Ok(ctx) => ctx,
        Err(error) => return report(spec, &error.to_string(), matches!(error, ComponentError::Usage(_))),
    };
    eprintln!("kiln: {} step of `{}`: run {}", spec.role.as_str(), spec.handle, ctx.run_id().unwrap_or("-"));
    if let Err(error) = body(&mut ctx) {
        ctx.fail();
        return report(spec, &error.to_string(), false);
    }
    match ctx.finish() {
        Ok(outcome) => {
            let line = serde_json::to_string(&outcome).unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{line}");
            if let Err(error) = write_outputs(&outcome) {
                return report(spec, &error, false);
            }
            ExitCode::SUCCESS
        }
        Err(error) => report(spec, &error.to_string(), false),
    }
}

/// With `KILN_OUTPUT_DIR`, one file per field of the outcome (`run_id`, `dataset_version`,
/// `model_version`…): how a workflow engine such as Argo reads a step's results
/// (`outputs.parameters[].valueFrom.path`). An absent value is an empty file.
fn write_outputs(outcome: &Outcome) -> Result<(), String> {
    let Some(dir) = std::env::var_os("KILN_OUTPUT_DIR").filter(|d| !d.is_empty()) else { return Ok(()) };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let fields = [
        ("run_id", outcome.run_id.clone()),
        ("dataset_version", outcome.dataset_version.clone()),
        ("model_version", outcome.model_version.map(|v| v.to_string())),
        ("not_registered", outcome.not_registered.clone()),
    ];
    for (name, value) in fields {
        let path = dir.join(name);
        std::fs::write(&path, value.unwrap_or_default()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Exit codes: 1 the step failed, 2 bad usage (an unknown or mistyped parameter).
fn report(spec: &Spec, message: &str, usage: bool) -> ExitCode {
    eprintln!("kiln: {} step of `{}` failed: {message}", spec.role.as_str(), spec.handle);
    ExitCode::from(if usage { 2 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: Spec = Spec {
        handle: "iris",
        role: Role::Train,
        notebook: "iris.ipynb",
        register_when: None,
        promote: &[],
        parameters: &[Parameter { name: "lr", ty: "f64", default: "0.01" }, Parameter { name: "epochs", ty: "usize", default: "100" }],
    };

    fn overrides(args: &[&str], env: &[(&str, &str)]) -> String {
        let args = args.iter().map(|a| a.to_string());
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        match parameter_overrides(&SPEC, args, env) {
            Ok(map) => format!("{map:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parameters_from_args_and_env() {
        let cases = [
            overrides(&["--param", "lr=0.1"], &[]),
            overrides(&["-p", "epochs=3", "--param=lr=1e-3"], &[("KILN_PARAM_LR", "0.5"), ("PATH", "/bin")]),
            overrides(&[], &[("KILN_PARAM_EPOCHS", "7")]),
            overrides(&["--param", "lrr=0.1"], &[]),
            overrides(&[], &[("KILN_PARAM_BATCH", "7")]),
            overrides(&["--param", "lr"], &[]),
            overrides(&["--param"], &[]),
            overrides(&["train"], &[]),
            overrides(&["--param", "epochs=ten"], &[]),
            overrides(&[], &[("KILN_PARAM_LR", "fast")]),
        ];
        expect_test::expect![[r#"
            {"lr": "0.1"}
            {"epochs": "3", "lr": "1e-3"}
            {"epochs": "7"}
            unknown parameter `lrr` (--param); the train step of `iris` takes: lr (f64, default 0.01), epochs (usize, default 100)
            unknown parameter `batch` (KILN_PARAM_BATCH); the train step of `iris` takes: lr (f64, default 0.01), epochs (usize, default 100)
            `lr`: write a parameter as name=value
            --param needs name=value
            unexpected argument `train`; use --param name=value, or --help
            parameter `epochs`: `ten` is not a valid usize (invalid digit found in string)
            parameter `lr`: `fast` is not a valid f64 (invalid float literal)"#]]
        .assert_eq(&cases.join("\n"));
    }

    #[test]
    fn parameter_values_are_type_checked() {
        assert_eq!(usize::parse_param("12").unwrap(), 12);
        assert_eq!(usize::parse_param("-1").unwrap_err(), "invalid digit found in string");
        assert_eq!(f32::parse_param(" 0.5 ").unwrap(), 0.5);
        assert!(bool::parse_param("yes").is_err());
        assert_eq!(<&str>::parse_param("adam").unwrap(), "adam");
    }
}

//! `kiln export argo|k8s HANDLE`: the registered components as manifests for a real
//! distributed engine. `argo` prints an Argo Workflows `WorkflowTemplate` (a container
//! template per step, the notebook's parameters as workflow parameters, results passed by
//! output parameters, retries); `k8s` prints a Deployment and a Service for the infer
//! component and a KServe `InferenceService` (with `canaryTrafficPercent` for a canary).
//!
//! Images are pinned by digest. Components reach the store at `--store-url` (as the cluster
//! sees it) with the token from a Secret, as they do under `kiln run`.

use anyhow::{Context, bail};
use clap::Subcommand;
use kiln::api::{CodePackage, Role};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum ExportCommand {
    /// An Argo Workflows WorkflowTemplate that runs the data and train steps.
    Argo {
        handle: String,
        #[command(flatten)]
        common: Common,
        /// Retries of a failed step.
        #[arg(long, default_value_t = 2)]
        retries: u32,
    },
    /// A Deployment and a Service for the infer step, and a KServe InferenceService.
    K8s {
        handle: String,
        #[command(flatten)]
        common: Common,
        /// The model version to serve: HANDLE@VERSION or HANDLE@ALIAS.
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 1)]
        replicas: u32,
        /// Send this percent of traffic to the new revision (KServe's canaryTrafficPercent).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        canary: Option<u8>,
    },
}

#[derive(clap::Args)]
pub struct Common {
    /// The Kiln store as the cluster reaches it (default: this command's server).
    #[arg(long)]
    store_url: Option<String>,
    /// The Secret holding the store token (key `token`).
    #[arg(long, default_value = "kiln-token")]
    token_secret: String,
    #[arg(long)]
    namespace: Option<String>,
    /// JSON instead of YAML.
    #[arg(long)]
    json: bool,
}

/// A Kubernetes name (DNS-1123 label) from a handle: `visual_recognition` → `visual-recognition`.
fn dns_name(text: &str) -> String {
    let name: String = text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    name.trim_matches('-').chars().take(63).collect()
}

fn newest(client: &kiln::Client, handle: &str, role: Role) -> anyhow::Result<CodePackage> {
    let package = client
        .code_packages(handle)
        .with_context(|| format!("reading the code packages of `{handle}`"))?
        .into_iter()
        .filter(|p| p.role == role)
        .max_by_key(|p| p.created_at)
        .with_context(|| {
            format!(
                "`{handle}` has no registered {} component: run `kiln componentize NOTEBOOK --handle {handle} --registry HOST` with a server set",
                role.as_str()
            )
        })?;
    if package.image.starts_with("oci:") {
        bail!(
            "the {} image of `{handle}` is only in a local layout ({}): push it with `kiln componentize --registry HOST` so a cluster can pull it",
            role.as_str(),
            package.image
        );
    }
    Ok(package)
}

/// The parameters a step takes, from its image's `dev.kiln.parameters` label.
fn parameters(package: &CodePackage) -> anyhow::Result<Vec<(String, String)>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let config = runtime.block_on(crate::registry::config(&package.image, &package.digest))?;
    let label = config["config"]["Labels"]["dev.kiln.parameters"].as_str().unwrap_or("[]");
    let list: Vec<Value> = serde_json::from_str(label).with_context(|| format!("{}: the dev.kiln.parameters label is not JSON", package.image))?;
    Ok(list.iter().filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["default"].as_str()?.to_owned()))).collect())
}

/// A parameter's default as Argo takes it: string literals without their quotes.
fn argo_default(literal: &str) -> String {
    serde_json::from_str::<String>(literal).unwrap_or_else(|_| literal.to_owned())
}

fn store_env(store_url: &str, secret: &str) -> Vec<Value> {
    vec![json!({"name": "KILN_SERVER", "value": store_url}), json!({"name": "KILN_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}})]
}

fn metadata(name: &str, handle: &str, namespace: Option<&str>) -> Value {
    let mut meta =
        json!({"name": name, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kiln", "dev.kiln/handle": dns_name(handle)}});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn security() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
}

/// The WorkflowTemplate for `handle`'s data → train.
pub fn argo(handle: &str, data: &CodePackage, train: &CodePackage, params: &[(String, String)], common: &Common, store_url: &str, retries: u32) -> Value {
    let name = format!("kiln-{}", dns_name(handle));
    let retry = json!({"limit": retries.to_string(), "retryPolicy": "OnFailure"});
    let mut env = store_env(store_url, &common.token_secret);
    env.push(json!({"name": "KILN_OUTPUT_DIR", "value": "/tmp/kiln"}));
    env.extend(
        params.iter().map(|(p, _)| json!({"name": format!("KILN_PARAM_{}", p.to_ascii_uppercase()), "value": format!("{{{{workflow.parameters.{p}}}}}")})),
    );
    let output = |name: &str, file: &str| json!({"name": name, "valueFrom": {"path": format!("/tmp/kiln/{file}")}});
    let mut train_env = env.clone();
    train_env.push(json!({"name": "KILN_DATASET_VERSION", "value": "{{inputs.parameters.dataset-version}}"}));
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": metadata(&name, handle, common.namespace.as_deref()),
        "spec": {
            "entrypoint": "pipeline",
            "arguments": {"parameters": params.iter().map(|(p, default)| json!({"name": p, "value": argo_default(default)})).collect::<Vec<_>>()},
            "templates": [
                {
                    "name": "pipeline",
                    "dag": {"tasks": [
                        {"name": "data", "template": "data"},
                        {"name": "train", "template": "train", "depends": "data",
                         "arguments": {"parameters": [{"name": "dataset-version", "value": "{{tasks.data.outputs.parameters.dataset-version}}"}]}},
                    ]},
                    "outputs": {"parameters": [
                        {"name": "model-version", "valueFrom": {"parameter": "{{tasks.train.outputs.parameters.model-version}}"}},
                    ]},
                },
                {
                    "name": "data",
                    "retryStrategy": retry,
                    "container": {"name": "data", "image": data.image, "env": env, "securityContext": security()},
                    "outputs": {"parameters": [output("dataset-version", "dataset_version"), output("run-id", "run_id")]},
                },
                {
                    "name": "train",
                    "inputs": {"parameters": [{"name": "dataset-version"}]},
                    "retryStrategy": retry,
                    "container": {"name": "train", "image": train.image, "env": train_env, "securityContext": security()},
                    "outputs": {"parameters": [output("model-version", "model_version"), output("run-id", "run_id")]},
                },
            ],
        },
    })
}

/// Deployment, Service and InferenceService for `handle`'s infer component.
pub fn k8s(handle: &str, infer: &CodePackage, model: &str, replicas: u32, canary: Option<u8>, common: &Common, store_url: &str) -> Vec<Value> {
    let name = format!("kiln-{}", dns_name(handle));
    let mut env = store_env(store_url, &common.token_secret);
    env.push(json!({"name": "KILN_MODEL", "value": model}));
    env.push(json!({"name": "KILN_LISTEN", "value": "0.0.0.0:8080"}));
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": 8080}, "periodSeconds": 5, "failureThreshold": 3});
    let container = |container_name: &str| {
        json!({
            "name": container_name,
            "image": infer.image,
            "env": env,
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "readinessProbe": probe("/v2/health/ready"),
            "livenessProbe": probe("/v2/health/live"),
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": security(),
        })
    };
    let namespace = common.namespace.as_deref();
    let selector = json!({"app.kubernetes.io/name": name});
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&name, handle, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector}, "spec": {"containers": [container("infer")]}},
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(&name, handle, namespace),
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    });
    let mut predictor = json!({"minReplicas": replicas, "containers": [container("kserve-container")]});
    if let Some(percent) = canary {
        predictor["canaryTrafficPercent"] = json!(percent);
    }
    let inference_service = json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(&name, handle, namespace),
        "spec": {"predictor": predictor},
    });
    vec![deployment, service, inference_service]
}

pub fn run(command: &ExportCommand, client: &kiln::Client) -> anyhow::Result<()> {
    let print = |docs: Vec<Value>, json: bool| -> anyhow::Result<()> {
        if json {
            let out = if docs.len() == 1 { docs.into_iter().next().expect("one") } else { json!({"apiVersion": "v1", "kind": "List", "items": docs}) };
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            let texts: Vec<String> = docs.iter().map(crate::yaml::to_yaml).collect();
            print!("{}", texts.join("---\n"));
        }
        Ok(())
    };
    match command {
        ExportCommand::Argo { handle, common, retries } => {
            let data = newest(client, handle, Role::Data)?;
            let train = newest(client, handle, Role::Train)?;
            let params = parameters(&data)?;
            let store = common.store_url.clone().unwrap_or_else(|| client.url().to_owned());
            print(vec![argo(handle, &data, &train, &params, common, &store, *retries)], common.json)
        }
        ExportCommand::K8s { handle, common, model, replicas, canary } => {
            let infer = newest(client, handle, Role::Infer)?;
            let store = common.store_url.clone().unwrap_or_else(|| client.url().to_owned());
            let model = model.clone().unwrap_or_else(|| format!("{handle}@latest"));
            print(k8s(handle, &infer, &model, *replicas, *canary, common, &store), common.json)
        }
    }
}

//! `cargo xtask demo [--clean] [--runner podman|process]`: the whole product in one command,
//! on the classifier notebook: componentize → train v1 → deploy blue-green → train v2 with
//! other parameters → canary at 20 % → bounded traffic through the gateway → the serving
//! version's lineage, the traffic split over time and one answer naming its version.
//!
//! Every figure it prints is read back from the store and the gateway, and every link it
//! prints is checked: the images the store registered are the ones componentize built, the
//! run that made the model read the dataset version the data step wrote, the deployment
//! serves that model version, and the traffic the store reports is what this demo sent. A
//! broken link ends the demo with an error naming it, which is what `cargo xtask test`
//! relies on when it runs the same code on a store of its own.
//!
//! The state stays (the same store and registry `cargo xtask lab` opens), so the panels
//! show these runs and this deployment. A second run reuses every build and the cached
//! training steps: only the serving part happens again.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::{env, services};

const HANDLE: &str = "iris";
const NOTEBOOK: &str = "notebooks/classifier.ipynb";
/// The second version's parameters: a higher learning rate, twice the epochs.
const V2_PARAMS: [&str; 2] = ["epochs=600", "lr=0.08"];
const CANARY_PERCENT: u32 = 20;
/// The traffic report's buckets (the store keeps 10 s buckets for the last hour).
const BUCKET_MS: i64 = 10_000;
/// Requests sent through the gateway once the canary is up (bounded: the load is a demo's).
const REQUESTS: usize = 400;
/// Iris-like rows the requests cycle through.
const ROWS: [[f32; 4]; 4] = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3], [4.8, 3.1, 1.6, 0.2]];

#[derive(clap::Args)]
pub struct Args {
    /// Start from nothing: remove the demo's store and registry data first (builds stay).
    #[arg(long)]
    clean: bool,
    /// Where the components and instances run (default: podman when it works, else processes).
    #[arg(long, value_parser = ["podman", "process"])]
    runner: Option<String>,
}

/// Where the demo keeps its state and how it runs: the command's (the lab's store) or a test's.
pub struct Setup {
    pub store_dir: PathBuf,
    pub registry_dir: PathBuf,
    pub clean: bool,
    pub runner: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold", "docker-registry", "skopeo", "podman", "runc", "uidmap"])?;
    env::build_release()?;
    let setup = Setup {
        store_dir: env::cache_dir().join("lab-store"),
        registry_dir: env::cache_dir().join("lab-registry"),
        clean: args.clean,
        runner: args.runner.clone(),
    };
    run_with(&setup)?;
    println!("\nThe same store and its deployment in JupyterLab (Experiments, Deployments panels):\n\n    cargo xtask lab\n");
    Ok(())
}

/// The demo on `setup`'s store; what `cargo xtask test` and `cargo xtask bench demo` run
/// too. The answer: each step from the notebook to the canary's first answer, with how long
/// it took.
pub fn run_with(setup: &Setup) -> anyhow::Result<Vec<(String, Duration)>> {
    if setup.clean {
        for dir in [&setup.store_dir, &setup.registry_dir] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
            }
        }
    }
    let server = services::KilnServer::start(&setup.store_dir, "127.0.0.1:0")?;
    let registry = services::Registry::start_kept(&setup.registry_dir)?;
    let demo = Demo {
        store: Store { url: server.url.clone(), token: server.token.clone() },
        registry: registry.host.clone(),
        runner: setup.runner.clone(),
        steps: Vec::new(),
        began: Instant::now(),
    };
    say(&format!("Kiln demo: store {} (data in {}), registry {}", server.url, setup.store_dir.display(), registry.host));
    let result = demo.go();
    drop(registry);
    drop(server);
    result
}

struct Store {
    url: String,
    token: String,
}

impl Store {
    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into()
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut answer = Store::agent()
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("GET {path}"))?;
        let status = answer.status();
        let body: Value = answer.body_mut().read_json().with_context(|| format!("GET {path}: the answer"))?;
        ensure!(status.is_success(), "GET {path}: {status}: {body}");
        Ok(body)
    }

    fn post(&self, agent: &ureq::Agent, path: &str, body: &Value) -> anyhow::Result<Value> {
        let mut answer = agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body)
            .with_context(|| format!("POST {path}"))?;
        let status = answer.status();
        let reply: Value = answer.body_mut().read_json().with_context(|| format!("POST {path}: the answer"))?;
        ensure!(status.is_success(), "POST {path}: {status}: {reply}");
        Ok(reply)
    }
}

struct Demo {
    store: Store,
    registry: String,
    runner: Option<String>,
    /// (what, how long) for the timing table.
    steps: Vec<(String, Duration)>,
    began: Instant,
}

/// The figures one training run gives.
struct Trained {
    run_id: String,
    dataset_version: String,
    model_version: i64,
}

impl Demo {
    fn go(mut self) -> anyhow::Result<Vec<(String, Duration)>> {
        let notebook = env::root().join(NOTEBOOK);
        let total = 7;

        self.header(1, total, &format!("Componentize {NOTEBOOK} as `{HANDLE}`: three components, three images, pushed and registered"));
        let started = Instant::now();
        let summary = self.kiln_json(&[
            "componentize".as_ref(),
            notebook.as_os_str(),
            "--handle".as_ref(),
            HANDLE.as_ref(),
            "--registry".as_ref(),
            self.registry.as_ref(),
            "--json".as_ref(),
        ])?;
        let images = images(&summary)?;
        for (role, image) in &images {
            let size = image["size"].as_u64().unwrap_or(0);
            say(&format!("      {role:<5} {}  {:.1} MB", text(image, "reference")?, size as f64 / 1e6));
        }
        self.took("componentize (analyse, generate, compile, package, push, register)", started);

        self.header(2, total, "Train version 1 (`kiln run`: the data component, then train)");
        let started = Instant::now();
        let v1 = self.train(&[])?;
        self.took("train v1 (data → train, register)", started);

        self.header(3, total, &format!("Deploy {HANDLE}@{} blue-green", v1.model_version));
        let started = Instant::now();
        self.deploy(v1.model_version, "blue-green")?;
        self.took("deploy v1 (start, health check, switch)", started);

        self.header(4, total, &format!("Train version 2 with {}", V2_PARAMS.join(", ")));
        let started = Instant::now();
        let v2 = self.train(&V2_PARAMS)?;
        ensure!(v2.model_version != v1.model_version, "version 2's run registered the same model version as version 1 ({})", v1.model_version);
        ensure!(v2.dataset_version == v1.dataset_version, "the same data gave another dataset version ({} then {})", v1.dataset_version, v2.dataset_version);
        self.took("train v2 (data → train, register)", started);

        self.header(5, total, &format!("Canary {HANDLE}@{} at {CANARY_PERCENT} %", v2.model_version));
        let started = Instant::now();
        self.deploy(v2.model_version, &format!("canary:{CANARY_PERCENT}"))?;
        self.took("canary v2 (start, health check, switch)", started);

        self.header(6, total, &format!("Send {REQUESTS} OIP v2 requests through the gateway"));
        // The store reports whole buckets: from the start of the one the traffic begins in.
        let since = crate::services::now_millis() / BUCKET_MS * BUCKET_MS;
        let sent = self.traffic(v2.model_version)?;
        self.steps.push(("until the canary's first answer".into(), sent.first_canary_answer));
        say(&format!("      the canary's first answer came {:.2} s after the first request", sent.first_canary_answer.as_secs_f64()));
        let first_answer_at = self.steps.iter().map(|(_, d)| *d).sum::<Duration>();
        for (version, n) in &sent.per_version {
            say(&format!("      v{version}: {n} answers ({:.0} %)", *n as f64 * 100.0 / REQUESTS as f64));
        }
        let share = sent.per_version.get(&v2.model_version).copied().unwrap_or(0) as f64 / REQUESTS as f64;
        ensure!((0.05..0.45).contains(&share), "the canary answered {:.0} % of {REQUESTS} requests, far from {CANARY_PERCENT} %", share * 100.0);

        self.header(7, total, &format!("Where {HANDLE}@{} came from, and what it served", v2.model_version));
        self.lineage(&images, &v2)?;
        self.report_traffic(since, &sent)?;
        say("");
        say(&format!("One answer: POST /v2/models/{HANDLE}/infer  features {:?}", ROWS[1]));
        say(&format!("      → version {} answered {}", text(&sent.sample, "model_version")?, sent.sample["outputs"][0]["data"]));

        say("");
        say(&format!(
            "From the notebook to the canary's first answer: {:.1} s (the whole demo: {:.1} s)",
            first_answer_at.as_secs_f64(),
            self.began.elapsed().as_secs_f64()
        ));
        for (what, took) in &self.steps {
            say(&format!("  {:>6.1} s  {:>3.0} %  {what}", took.as_secs_f64(), took.as_secs_f64() * 100.0 / first_answer_at.as_secs_f64()));
        }
        Ok(self.steps)
    }

    fn header(&self, n: usize, total: usize, what: &str) {
        say(&format!("\n[{n}/{total}] {what}"));
    }

    fn took(&mut self, what: &str, started: Instant) {
        let took = started.elapsed();
        say(&format!("      {:.1} s", took.as_secs_f64()));
        self.steps.push((what.to_owned(), took));
    }

    /// `kiln ARGS`, its progress on this terminal, its JSON answer parsed.
    fn kiln_json(&self, args: &[&std::ffi::OsStr]) -> anyhow::Result<Value> {
        let mut cmd = Command::new(env::target_dir().join("release/kiln"));
        cmd.args(args)
            .env("KILN_SERVER", &self.store.url)
            .env("KILN_TOKEN", &self.store.token)
            .env("KILN_CACHE_DIR", env::cache_dir())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        let output = cmd.output().context("starting kiln")?;
        let shown = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        ensure!(output.status.success(), "`kiln {shown}` failed ({})", output.status);
        serde_json::from_slice(&output.stdout).with_context(|| format!("`kiln {shown}` answered no JSON: {}", String::from_utf8_lossy(&output.stdout)))
    }

    fn runner_args(&self) -> Vec<&str> {
        self.runner.as_deref().map(|r| vec!["--runner", r]).unwrap_or_default()
    }

    fn train(&self, params: &[&str]) -> anyhow::Result<Trained> {
        let mut args = vec!["run", HANDLE, "--json"];
        for param in params {
            args.extend(["--param", param]);
        }
        args.extend(self.runner_args());
        let summary = self.kiln_json(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>())?;
        // A cached train step made no run: the model version is the earlier run's.
        let run_id = summary["run_id"].as_str().or(summary["train"]["from_run"].as_str()).with_context(|| format!("`kiln run` named no run: {summary}"))?;
        let trained = Trained {
            run_id: run_id.to_owned(),
            dataset_version: text(&summary, "dataset_version")?.to_owned(),
            model_version: summary["model_version"].as_i64().with_context(|| format!("`kiln run` registered no model version: {summary}"))?,
        };
        let run = self.store.get(&format!("/api/v1/runs/{}", trained.run_id))?;
        let metrics = metric_line(&run);
        let cached = |step: &str| if summary[step]["status"] == "cached" { " (cached)" } else { "" };
        say(&format!(
            "      run {} · data{} → train{} · dataset {} · {metrics}",
            short(&trained.run_id),
            cached("data"),
            cached("train"),
            short(&trained.dataset_version)
        ));
        say(&format!("      registered {HANDLE}@{}", trained.model_version));
        Ok(trained)
    }

    fn deploy(&self, version: i64, strategy: &str) -> anyhow::Result<()> {
        let version = version.to_string();
        let mut args = vec!["deploy", HANDLE, "--model-version", &version, "--strategy", strategy, "--json"];
        args.extend(self.runner_args());
        let deployment = self.kiln_json(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>())?;
        let last = deployment["history"].as_array().and_then(|h| h.last()).cloned().unwrap_or(Value::Null);
        say(&format!("      {} (revision {})", last["detail"].as_str().unwrap_or("deployed"), deployment["revision"]));
        Ok(())
    }

    /// Sends [`REQUESTS`] requests (four at a time), counting which version answered each.
    fn traffic(&self, canary: i64) -> anyhow::Result<Sent> {
        let bar = indicatif::ProgressBar::new(REQUESTS as u64).with_style(
            indicatif::ProgressStyle::with_template("      {bar:30} {pos}/{len} requests  {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let started = Instant::now();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let first_canary = std::sync::Mutex::new(None::<Duration>);
        let path = format!("/v2/models/{HANDLE}/infer");
        let answers: Vec<anyhow::Result<Vec<Value>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let agent = Store::agent();
                        let mut answers = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            if i >= REQUESTS {
                                return Ok(answers);
                            }
                            let row = ROWS[i % ROWS.len()];
                            let body = json!({"id": format!("demo-{i}"), "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": row}]});
                            let answer = self.store.post(&agent, &path, &body).with_context(|| format!("request {i}"))?;
                            if answer["model_version"].as_str() == Some(&canary.to_string())
                                && let Ok(mut first) = first_canary.lock()
                            {
                                first.get_or_insert(started.elapsed());
                            }
                            bar.inc(1);
                            answers.push(answer);
                        }
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a request thread panicked")))).collect()
        });
        bar.finish_and_clear();
        let mut per_version = std::collections::BTreeMap::new();
        let mut all = Vec::new();
        for answers in answers {
            all.extend(answers?);
        }
        for answer in &all {
            let version: i64 = text(answer, "model_version")?.parse().context("model_version is not a number")?;
            *per_version.entry(version).or_insert(0u64) += 1;
        }
        let first_canary_answer =
            first_canary.lock().ok().and_then(|f| *f).with_context(|| format!("none of {REQUESTS} requests reached the canary v{canary}"))?;
        // One answer to show, for a row of its own (the second row: a virginica).
        let sample = self.store.post(
            &Store::agent(),
            &path,
            &json!({"id": "demo-sample", "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": ROWS[1]}]}),
        )?;
        *per_version.entry(text(&sample, "model_version")?.parse().context("model_version is not a number")?).or_insert(0) += 1;
        Ok(Sent { per_version, first_canary_answer, sample })
    }

    /// Prints the serving version's lineage, checking each link against what the demo saw.
    fn lineage(&self, images: &[(String, Value)], trained: &Trained) -> anyhow::Result<()> {
        let lineage = self.store.get(&format!("/api/v1/lineage/{HANDLE}/{}", trained.model_version))?;
        let packages = self.store.get(&format!("/api/v1/code-packages?handle={HANDLE}"))?;
        let digest_of =
            |role: &str| images.iter().find(|(r, _)| r == role).map(|(_, i)| i["digest"].as_str().unwrap_or_default().to_owned()).unwrap_or_default();
        // Notebook → images: the store's newest package of each role is the image just built,
        // and all three come from one notebook.
        let mut notebook_sha = None;
        for role in ["data", "train", "infer"] {
            let newest = packages
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["role"] == role)
                .max_by_key(|p| p["created_at"].as_i64())
                .with_context(|| format!("the store has no {role} package of {HANDLE}"))?;
            ensure!(
                newest["digest"] == digest_of(role).as_str(),
                "the store's {role} package is {}, not the image componentize built ({})",
                newest["digest"],
                digest_of(role)
            );
            let sha = text(newest, "notebook_sha256")?.to_owned();
            ensure!(notebook_sha.as_ref().is_none_or(|s| *s == sha), "the {role} image comes from another notebook ({sha})");
            notebook_sha = Some(sha);
        }
        let notebook_sha = notebook_sha.unwrap_or_default();
        say(&format!("      notebook   {NOTEBOOK}  sha256:{}", short(&notebook_sha)));
        // Images → run: the run's code packages are the data and train images.
        for package in lineage["code_packages"].as_array().into_iter().flatten() {
            let role = text(package, "role")?;
            ensure!(
                package["digest"] == digest_of(role).as_str(),
                "the run used a {role} image ({}) other than the one built ({})",
                package["digest"],
                digest_of(role)
            );
            ensure!(package["notebook_sha256"] == notebook_sha.as_str(), "the run's {role} image comes from another notebook");
        }
        let roles: Vec<_> = lineage["code_packages"].as_array().into_iter().flatten().filter_map(|p| p["role"].as_str()).collect();
        ensure!(roles.contains(&"data") && roles.contains(&"train"), "the run's code packages are {roles:?}, not data and train");
        say(&format!(
            "   → images     data {}  train {}  infer {}",
            short_digest(&digest_of("data")),
            short_digest(&digest_of("train")),
            short_digest(&digest_of("infer"))
        ));
        // Run → dataset → model version.
        let run = &lineage["run"];
        ensure!(run["id"] == trained.run_id.as_str(), "the model version was registered by run {}, not {}", run["id"], trained.run_id);
        let params: Vec<String> = run["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{}={}", p["key"].as_str().unwrap_or("?"), p["value"].as_str().unwrap_or("?")))
            .collect();
        say(&format!("   → run        {}  {}  {}", short(&trained.run_id), params.join(" "), metric_line(run)));
        let read: Vec<_> = lineage["datasets_read"].as_array().into_iter().flatten().collect();
        ensure!(read.len() == 1 && read[0]["id"] == trained.dataset_version.as_str(), "the run read {read:?}, not dataset version {}", trained.dataset_version);
        let rows = read[0]["rows"].as_u64().map(|r| format!("  {r} rows")).unwrap_or_default();
        say(&format!(
            "   → dataset    {}  fingerprint sha256:{}  {} bytes{rows}",
            short(&trained.dataset_version),
            short(text(read[0], "fingerprint")?),
            read[0]["size"]
        ));
        ensure!(lineage["model_version"]["version"] == trained.model_version, "the lineage is of version {}", lineage["model_version"]["version"]);
        say(&format!("   → model      {HANDLE}@{}  source {}", trained.model_version, text(&lineage["model_version"], "source")?));
        // Model version → deployment.
        let deployments: Vec<_> = lineage["deployments"].as_array().into_iter().flatten().collect();
        ensure!(
            deployments.len() == 1 && deployments[0]["candidate"] == trained.model_version,
            "{HANDLE}@{} is not the canary of a deployment: {deployments:?}",
            trained.model_version
        );
        let d = deployments[0];
        say(&format!(
            "   → deployment {HANDLE}  {}: v{} takes {CANARY_PERCENT} %, v{} the rest (revision {})",
            text(d, "strategy")?,
            trained.model_version,
            d["stable"],
            d["revision"]
        ));
        Ok(())
    }

    /// The store's traffic since the canary went up, in 10 s buckets, checked against what
    /// the demo counted.
    fn report_traffic(&self, since: i64, sent: &Sent) -> anyhow::Result<()> {
        let traffic = self.store.get(&format!("/api/v1/deployments/{HANDLE}/traffic?since={since}&bucket_ms={BUCKET_MS}"))?;
        let buckets = traffic["buckets"].as_array().cloned().unwrap_or_default();
        let mut totals = std::collections::BTreeMap::new();
        let mut starts: Vec<i64> = buckets.iter().filter_map(|b| b["start"].as_i64()).collect();
        starts.sort();
        starts.dedup();
        say("");
        say("Traffic per version (10 s buckets, as the store reports it)");
        let versions: Vec<i64> = sent.per_version.keys().copied().collect();
        say(&format!("      {:<10} {}", "from", versions.iter().map(|v| format!("{:>16}", format!("v{v} req · p95"))).collect::<String>()));
        for start in starts {
            let mut line = format!("      {:<10}", clock(start));
            for version in &versions {
                match buckets.iter().find(|b| b["start"] == start && b["version"] == *version) {
                    Some(b) => {
                        let requests = b["requests"].as_u64().unwrap_or(0);
                        *totals.entry(*version).or_insert(0u64) += requests;
                        line += &format!("{:>16}", format!("{requests} · {:.1} ms", b["p95_ms"].as_f64().unwrap_or(0.0)));
                    }
                    None => line += &format!("{:>16}", "-"),
                }
            }
            say(&line);
        }
        ensure!(totals == sent.per_version, "the store counted {totals:?}; the demo's requests were answered by {:?}", sent.per_version);
        say(&format!("      the store's counts match the {} answers the demo received", sent.per_version.values().sum::<u64>()));
        Ok(())
    }
}

struct Sent {
    per_version: std::collections::BTreeMap<i64, u64>,
    first_canary_answer: Duration,
    sample: Value,
}

/// (role, image) of componentize's summary.
fn images(summary: &Value) -> anyhow::Result<Vec<(String, Value)>> {
    let images: Vec<(String, Value)> =
        summary["images"].as_array().into_iter().flatten().map(|i| (i["role"].as_str().unwrap_or_default().to_owned(), i.clone())).collect();
    let roles: Vec<&str> = images.iter().map(|(r, _)| r.as_str()).collect();
    if roles != ["data", "train", "infer"] {
        bail!("componentize built {roles:?}, not data, train and infer");
    }
    Ok(images)
}

fn text<'a>(value: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    value[field].as_str().with_context(|| format!("no `{field}` in {value}"))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn short_digest(digest: &str) -> String {
    format!("sha256:{}", short(digest.trim_start_matches("sha256:")))
}

/// `accuracy 0.967 · loss 0.081`: a run's latest metrics.
fn metric_line(run: &Value) -> String {
    let mut metrics: Vec<String> =
        run["metrics"].as_array().into_iter().flatten().filter_map(|m| Some(format!("{} {:.3}", m["key"].as_str()?, m["value"].as_f64()?))).collect();
    metrics.sort();
    metrics.join(" · ")
}

/// HH:MM:SS (UTC) of a time in ms since the epoch.
fn clock(millis: i64) -> String {
    let seconds = millis.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

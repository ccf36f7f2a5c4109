//! `cargo xtask bench …`: benchmarks run side by side with their anchor, on this machine, in
//! one run, reported as medians and ratios. Not tests: nothing here asserts a time.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::env;

#[derive(clap::Subcommand)]
pub enum Which {
    /// kiln-kernel vs evcxr_jupyter, both driven through jupyter_client.
    Kernel {
        /// Repetitions of each timed step.
        #[arg(long, default_value_t = 7)]
        runs: u32,
        /// Leave out the polars steps (they need polars built once per kernel: ~15 min each).
        #[arg(long)]
        skip_polars: bool,
    },
    /// `kiln componentize` cold and warm (one train cell edited) to pushed images, and the
    /// images' sizes next to an MLflow serving environment's.
    Componentize {
        /// Warm rebuilds (each after a different edit of the train cell).
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// Skip the cold build (a fresh work directory: every dependency compiled).
        #[arg(long)]
        skip_cold: bool,
    },
    /// OIP v2 inference through the gateway and directly on an instance vs `mlflow models
    /// serve`, with wrk; a load run while switching deployments; bandit decision time.
    Serving {
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 15)]
        seconds: u32,
        #[arg(long, default_value_t = 64)]
        connections: u32,
        /// Rounds of gateway and direct runs, interleaved; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// `kiln server --workers` for the gateway (0: one per core). wrk, the gateway and
        /// the instance share this machine's cores.
        #[arg(long, default_value_t = 1)]
        gateway_workers: usize,
    },
    /// The JupyterLab extension in Chromium vs the CLI in a terminal: an edit and a role
    /// change until the Pipeline panel shows them (syntactic, typed) vs `kiln show`, and
    /// "Componentize notebook" vs `kiln componentize`, on the classifier and 60 cells.
    Lab {
        /// Timed edits (and role changes, twice as many) per notebook.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// The Experiments panel: what it asks of the store (Kiln vs `mlflow server`, same data:
    /// 1 000 runs × 5 params × 3 metrics and a 100 000-point curve), then in Chromium the
    /// table's first paint, a sort, a filter, the long curve drawn and a zoom.
    Ui {
        /// Rounds of the page timings (medians are reported).
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Repetitions of each store request.
        #[arg(long, default_value_t = 7)]
        repeats: u32,
    },
    /// `cargo xtask demo`'s path (notebook → images → v1 served → v2 canaried → its first
    /// answer) vs the same path in the anchors' terms: a Metaflow flow registering in MLflow,
    /// then `mlflow models serve`. Both warmed by one unreported round.
    Demo {
        /// Reported rounds (medians per step).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// The Kiln store vs `mlflow server` (SQLite), over the same MLflow REST calls.
    Store {
        /// Single-call metrics logged to Kiln.
        #[arg(long, default_value_t = 10_000)]
        single: u32,
        /// Single-call metrics logged to MLflow (~60 ms each).
        #[arg(long, default_value_t = 500)]
        single_anchor: u32,
        /// Runs to search through.
        #[arg(long, default_value_t = 10_000)]
        runs: u32,
    },
}

pub fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Kernel { runs, skip_polars } => kernel(runs, skip_polars),
        Which::Store { single, single_anchor, runs } => store(single, single_anchor, runs),
        Which::Componentize { runs, skip_cold } => componentize(runs, skip_cold),
        Which::Lab { runs } => lab(runs),
        Which::Ui { runs, repeats } => ui(runs, repeats),
        Which::Serving { seconds, connections, rounds, gateway_workers } => serving(seconds, connections, rounds, gateway_workers),
        Which::Demo { rounds } => demo(rounds),
    }
}

/// The anchor's workflow engine; MLflow (`MLFLOW_VERSION`) registers and serves.
const METAFLOW_VERSION: &str = "2.19.39";

fn demo(rounds: u32) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold", "docker-registry", "skopeo", "podman", "runc", "uidmap"])?;
    env::build_release()?;
    let venv = env::tool_venv("golden-path", &[&format!("mlflow=={MLFLOW_VERSION}"), &format!("metaflow=={METAFLOW_VERSION}")])?;
    let dir = env::cache_dir().join("bench-demo");
    // (step, seconds) of each reported round.
    let mut kiln: Vec<Vec<f64>> = Vec::new();
    let mut anchor: Vec<Vec<f64>> = Vec::new();
    for round in 0..=rounds {
        eprintln!("\nxtask bench demo: round {round} of {rounds}{}", if round == 0 { " (warm-up, not reported)" } else { "" });
        let setup = crate::demo::Setup { store_dir: dir.join("store"), registry_dir: dir.join("registry"), clean: true, runner: None };
        let steps = crate::demo::run_with(&setup)?;
        let work = dir.join("anchor");
        let _ = std::fs::remove_dir_all(&work);
        let out = dir.join("anchor.json");
        env::run(Command::new(venv.join("bin/python")).arg(env::root().join("xtask/bench/golden_path.py")).arg(&work).arg(&out))?;
        let answer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
        let anchor_steps: Vec<f64> = answer["steps"].as_array().into_iter().flatten().filter_map(|s| s[1].as_f64()).collect();
        anyhow::ensure!(anchor_steps.len() == 4, "the anchor reported {} steps, not 4: {answer}", anchor_steps.len());
        let seconds: Vec<f64> = steps.iter().map(|(_, d)| d.as_secs_f64()).collect();
        anyhow::ensure!(seconds.len() == 6, "the demo reported {} steps, not 6", seconds.len());
        if round > 0 {
            // Kiln: componentize, train v1, deploy v1, train v2, canary v2, until its first
            // answer (folded into serving v2, as the anchor's serve waits for its answer).
            kiln.push(vec![seconds[0], seconds[1], seconds[2], seconds[3], seconds[4] + seconds[5]]);
            anchor.push(vec![0.0, anchor_steps[0], anchor_steps[1], anchor_steps[2], anchor_steps[3]]);
        }
    }
    let column = |runs: &[Vec<f64>], i: usize| median(runs.iter().map(|r| r[i]).collect());
    let rows = [
        "build: notebook → three images, pushed and registered (Kiln only: Metaflow runs the Python as it is)",
        "workflow v1: data → train, register",
        "serve v1: start → ready (Kiln: blue-green through the gateway; MLflow: `mlflow models serve`)",
        "workflow v2: other parameters",
        "serve v2 → its first answer (Kiln: a 20 % canary beside v1; MLflow: replaces v1, no canary)",
    ];
    println!("\n## The golden path, {rounds} rounds after one warm-up (medians, seconds)\n");
    println!("| step | Kiln (`cargo xtask demo`) | Metaflow {METAFLOW_VERSION} + MLflow {MLFLOW_VERSION} | Kiln / anchor |");
    println!("|---|---:|---:|---:|");
    let (mut kiln_total, mut anchor_total) = (0.0, 0.0);
    for (i, row) in rows.iter().enumerate() {
        let (k, a) = (column(&kiln, i), column(&anchor, i));
        kiln_total += k;
        anchor_total += a;
        let ratio = if a > 0.0 { format!("{:.2}", k / a) } else { String::new() };
        let anchor_cell = if i == 0 { "—".to_owned() } else { format!("{a:.1}") };
        println!("| {row} | {k:.1} | {anchor_cell} | {ratio} |");
    }
    println!("| **notebook → v2's first answer** | **{kiln_total:.1}** | **{anchor_total:.1}** | **{:.2}** |", kiln_total / anchor_total);
    Ok(())
}

/// The anchor, evcxr_jupyter, is built from crates.io into the cache (never committed).
const EVCXR_JUPYTER_VERSION: &str = "0.22.0";

fn kernel(runs: u32, skip_polars: bool) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    let bench = env::cache_dir().join("bench");
    let anchor_root = bench.join("evcxr_jupyter");
    let anchor = anchor_root.join("bin/evcxr_jupyter");
    if !anchor.exists() {
        env::run(env::cargo().args(["install", "--locked", "evcxr_jupyter", "--version", EVCXR_JUPYTER_VERSION, "--root"]).arg(&anchor_root))?;
    }
    // Kernelspecs of our own, so neither kernel's user-level install is picked up.
    let kernels = bench.join("share/jupyter/kernels");
    write_spec(kernels.join("bench-kiln"), json!([env::kernel_binary(), "{connection_file}"]), "message")?;
    write_spec(kernels.join("bench-evcxr"), json!([anchor, "--control_file", "{connection_file}"]), "signal")?;

    let mut cmd = Command::new(env::venv_bin("python"));
    cmd.arg(env::root().join("xtask/bench/kernel.py")).arg("--runs").arg(runs.to_string()).arg("--work").arg(&bench);
    if skip_polars {
        cmd.arg("--skip-polars");
    }
    env::jupyter_env(&mut cmd);
    // Both kernels get a persistent build directory of their own (evcxr_jupyter's best
    // setting: without it every restart rebuilds polars).
    cmd.env("JUPYTER_PATH", bench.join("share/jupyter")).env_remove("EVCXR_TMPDIR");
    env::run(&mut cmd)
}

/// The anchor: MLflow with its tracking server, in a venv of its own under the cache.
pub const MLFLOW_VERSION: &str = "3.17.2";

/// A venv with the full `mlflow` package (tracking server, `models serve`), under the cache.
/// Full MLflow (pyfunc, pandas), for the anchors and for `tests/store`'s `log_model` check.
pub fn mlflow_venv() -> anyhow::Result<PathBuf> {
    env::tool_venv("mlflow", &[&format!("mlflow=={MLFLOW_VERSION}")])
}

fn store(single: u32, single_anchor: u32, runs: u32) -> anyhow::Result<()> {
    env::ensure_venv()?;
    env::run(env::cargo().args(["build", "--release", "-p", "kiln-cli"]))?;
    let bench = env::cache_dir().join("bench");
    let mlflow = mlflow_venv()?.join("bin/mlflow");
    let work = bench.join("store");
    let _ = std::fs::remove_dir_all(&work);
    env::run(
        Command::new(env::venv_bin("python"))
            .arg(env::root().join("xtask/bench/store.py"))
            .arg("--kiln")
            .arg(env::target_dir().join("release/kiln"))
            .arg("--mlflow")
            .arg(&mlflow)
            .arg("--work")
            .arg(&work)
            .args(["--single", &single.to_string(), "--single-anchor", &single_anchor.to_string(), "--runs", &runs.to_string()]),
    )
}

fn write_spec(dir: PathBuf, argv: serde_json::Value, interrupt_mode: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let spec = json!({ "argv": argv, "display_name": dir.file_name().unwrap().to_string_lossy(), "language": "rust", "interrupt_mode": interrupt_mode });
    std::fs::write(dir.join("kernel.json"), serde_json::to_string_pretty(&spec)?)?;
    Ok(())
}

/// Bytes under `path` (files counted once, links not followed), as `du -sb` says.
fn disk_usage(path: &std::path::Path) -> anyhow::Result<u64> {
    let out = Command::new("du").arg("-sb").arg(path).output()?;
    anyhow::ensure!(out.status.success(), "du -sb {} failed", path.display());
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("0").parse()?)
}

fn lab(runs: u32) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold", "docker-registry", "podman", "skopeo"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    env::ensure_extension()?;
    let bench = env::cache_dir().join("bench/lab");
    std::fs::create_dir_all(&bench)?;
    let figures_file = bench.join("figures.json");
    let _ = std::fs::remove_file(&figures_file);
    let mut playwright = crate::test::Playwright::new(&bench.join("output"))?;
    playwright.command.env("KILN_UI_BENCH", "lab").env("KILN_UI_BENCH_RUNS", runs.to_string()).env("KILN_UI_BENCH_OUT", &figures_file);
    env::run(&mut playwright.command)?;
    drop(playwright);
    let figures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&figures_file)?)?;
    let median_of = |key: &str| {
        let values: Vec<f64> = figures["figures"][key].as_array().into_iter().flatten().filter_map(|v| v.as_f64()).collect();
        median(values)
    };
    println!("\n## The JupyterLab extension vs the CLI (this machine, one run, medians of {runs})\n");
    println!("| notebook · what | UI (ms) | CLI (ms) | UI / CLI |");
    println!("|---|---:|---:|---:|");
    for notebook in ["classifier.ipynb", "sixty-cells.ipynb"] {
        for what in ["edit, syntactic", "edit, typed", "role change, syntactic", "role change, typed"] {
            let ui = median_of(&format!("{notebook}: {what} (UI)"));
            let cli = median_of(&format!("{notebook}: {what} (kiln show)"));
            println!("| {notebook} · {what} | {ui:.0} | {cli:.0} | {:.2}× |", ui / cli);
        }
    }
    let ui = median_of("classifier.ipynb: componentize after a train edit (UI)");
    let cli = median_of("classifier.ipynb: componentize after a train edit (kiln componentize)");
    println!("| classifier.ipynb · Componentize after a train edit | {ui:.0} | {cli:.0} | {:.2}× |", ui / cli);
    println!("\nThe UI column includes the extension's wait after an edit (250 ms before the syntactic");
    println!("request, 1 500 ms before the typed one), the Jupyter server and the page drawing the answer.");
    Ok(())
}

fn ui(runs: u32, repeats: u32) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    env::ensure_extension()?;
    let bench = env::cache_dir().join("bench/ui");
    std::fs::create_dir_all(&bench)?;
    // The store's half, against MLflow: it prints its own table, and leaves MLflow's server
    // running, seeded, for the page half to time MLflow's own UI.
    let mlflow_file = bench.join("mlflow.json");
    let _ = std::fs::remove_file(&mlflow_file);
    let mlflow = KeptServer(mlflow_file.clone());
    env::run(
        Command::new(env::venv_bin("python"))
            .arg(env::root().join("xtask/bench/experiments.py"))
            .arg("--kiln")
            .arg(env::target_dir().join("release/kiln"))
            .arg("--mlflow")
            .arg(mlflow_venv()?.join("bin/mlflow"))
            .arg("--work")
            .arg(bench.join("stores"))
            .args(["--repeats", &repeats.to_string(), "--out"])
            .arg(bench.join("stores.json"))
            .arg("--keep-mlflow")
            .arg(&mlflow_file),
    )?;
    // The page's half: Kiln's panel, then MLflow's UI on the same data.
    let figures_file = bench.join("page.json");
    let mlflow_figures_file = bench.join("mlflow-page.json");
    let _ = std::fs::remove_file(&figures_file);
    let _ = std::fs::remove_file(&mlflow_figures_file);
    let mut playwright = crate::test::Playwright::new(&bench.join("output"))?;
    playwright
        .command
        .env("KILN_UI_BENCH", "ui")
        .env("KILN_UI_BENCH_RUNS", runs.to_string())
        .env("KILN_UI_BENCH_OUT", &figures_file)
        .env("KILN_UI_BENCH_MLFLOW", &mlflow_file)
        .env("KILN_UI_BENCH_MLFLOW_OUT", &mlflow_figures_file);
    env::run(&mut playwright.command)?;
    drop(playwright);
    drop(mlflow);
    let figures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&figures_file)?)?;
    let anchor: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mlflow_figures_file)?)?;
    let median_of =
        |figures: &serde_json::Value, key: &str| median(figures["figures"][key].as_array().into_iter().flatten().filter_map(|v| v.as_f64()).collect());
    let (kiln_table, kiln_curve) = (median_of(&figures, "table"), median_of(&figures, "curve"));
    let (mlflow_table, mlflow_curve) = (median_of(&anchor, "table"), median_of(&anchor, "curve"));
    let spike = if anchor["spikeDrawn"].as_bool() == Some(true) { "kept" } else { "lost" };
    println!("\n## In Chromium (this machine, medians of {runs})\n");
    println!("| what | Kiln's panel (ms) | MLflow 3.17.2's UI (ms) | MLflow / Kiln | target (Kiln) |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| runs table, first paint of 1 001 runs (choose the experiment → rows drawn) | {kiln_table:.0} | {mlflow_table:.0} | {:.1}× | 1 000 |",
        mlflow_table / kiln_table
    );
    println!("| sort by a metric | {:.0} | | | |", median_of(&figures, "sort"));
    println!("| filter (metrics.m0 > 0.5), store included | {:.0} | | | |", median_of(&figures, "filter"));
    println!(
        "| 100 000-point curve drawn (Kiln: Compare → curve; MLflow: the run's Model metrics; spike kept, MLflow's {spike}) | {kiln_curve:.0} | {mlflow_curve:.0} | {:.1}× | 500 |",
        mlflow_curve / kiln_curve
    );
    println!("| zoom with the wheel → the range's detail drawn (250 ms wait included) | {:.0} | | | |", median_of(&figures, "zoom"));
    Ok(())
}

/// The `mlflow server` that `experiments.py --keep-mlflow` left running (its pid is in the
/// file): stopped, with the workers it started, when the bench ends either way.
struct KeptServer(PathBuf);

impl Drop for KeptServer {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.0) else { return };
        let Some(pid) = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["pid"].as_u64()) else { return };
        // The whole tree (mlflow → uvicorn → its workers), found before any of it stops: once
        // a parent is gone its children belong to init and `pgrep -P` no longer finds them.
        let mut tree = vec![pid.to_string()];
        let mut i = 0;
        while i < tree.len() {
            if let Ok(out) = Command::new("pgrep").args(["-P", &tree[i]]).output() {
                tree.extend(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned));
            }
            i += 1;
        }
        let _ = Command::new("kill").arg("-TERM").args(&tree).status();
        let _ = std::fs::remove_file(&self.0);
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One `kiln componentize … --registry … --json`, timed; its summary.
fn componentize_once(notebook: &std::path::Path, work: &std::path::Path, registry: &str) -> anyhow::Result<(f64, serde_json::Value)> {
    let started = std::time::Instant::now();
    let output = Command::new(env::target_dir().join("release/kiln"))
        .arg("componentize")
        .arg(notebook)
        .args(["--handle", "iris-bench", "--registry", registry, "--json", "--work-dir"])
        .arg(work)
        .env_remove("KILN_SERVER")
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(output.status.success(), "kiln componentize failed");
    Ok((seconds, serde_json::from_slice(&output.stdout)?))
}

/// The example notebook with its train cell edited (a different constant each time), as a
/// researcher's one-line change.
fn edited_notebook(source: &str, edit: u32, to: &std::path::Path) -> anyhow::Result<()> {
    let mut nb: serde_json::Value = serde_json::from_str(source)?;
    let cells = nb["cells"].as_array_mut().ok_or_else(|| anyhow::anyhow!("no cells"))?;
    let train = cells
        .iter_mut()
        .find(|c| c["metadata"]["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "train")))
        .ok_or_else(|| anyhow::anyhow!("no train cell"))?;
    let lines = train["source"].as_array_mut().ok_or_else(|| anyhow::anyhow!("source is not a list of lines"))?;
    if let Some(last) = lines.last_mut() {
        *last = serde_json::Value::String(format!("{}\n", last.as_str().unwrap_or("")));
    }
    lines.push(serde_json::Value::String(format!("println!(\"edited by cargo xtask bench componentize: {edit}\");")));
    std::fs::write(to, serde_json::to_string_pretty(&nb)?)?;
    Ok(())
}

fn componentize(runs: u32, skip_cold: bool) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold", "docker-registry"])?;
    env::run(env::cargo().args(["test", "--release", "--workspace", "--no-run"]))?;
    let bench = env::cache_dir().join("bench/componentize");
    std::fs::create_dir_all(&bench)?;
    let registry = crate::services::Registry::start(&bench)?;
    let source = std::fs::read_to_string(env::root().join("notebooks/classifier.ipynb"))?;
    // The notebook's relative `:dep kiln = { path = "../server-client/client" }` must resolve.
    let notebook = env::root().join("notebooks/.bench-classifier.ipynb");
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Remove(notebook.clone());

    // One work directory: the cold run starts it empty, the warm runs reuse its builds.
    let work = bench.join("work");
    let mut cold = None;
    edited_notebook(&source, 0, &notebook)?;
    if !skip_cold {
        let _ = std::fs::remove_dir_all(&work);
        eprintln!("bench: cold componentize (a fresh work directory: every dependency is compiled)");
    }
    let (seconds, mut summary) = componentize_once(&notebook, &work, &registry.host)?;
    if !skip_cold {
        cold = Some(seconds);
    }
    let mut warm = Vec::new();
    for edit in 1..=runs {
        edited_notebook(&source, edit, &notebook)?;
        let (seconds, s) = componentize_once(&notebook, &work, &registry.host)?;
        warm.push(seconds);
        summary = s;
    }
    let mlflow = mlflow_venv()?;
    let venv = disk_usage(&mlflow)?;
    // The interpreter the venv runs on: its standard library and binaries, not the packages
    // installed into the base interpreter itself.
    let base = Command::new(mlflow.join("bin/python"))
        .args(["-c", "import sys, sysconfig; print(sys.base_prefix); print(sysconfig.get_paths()['stdlib'])"])
        .output()?;
    let base = String::from_utf8_lossy(&base.stdout).into_owned();
    let mut lines = base.lines();
    let (prefix, stdlib) = (PathBuf::from(lines.next().unwrap_or("/usr")), PathBuf::from(lines.next().unwrap_or("/usr/lib/python3")));
    // Counted in MLflow's favour: no test suite, no static library (slim images drop both).
    let out = Command::new("du").args(["-sb", "--exclude=site-packages", "--exclude=test", "--exclude=tests", "--exclude=idlelib"]).arg(&stdlib).output()?;
    let stdlib_size: u64 = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("0").parse()?;
    let binaries: u64 = std::fs::read_dir(prefix.join("lib"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("libpython") && e.file_name().to_string_lossy().contains(".so"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum::<u64>()
        + std::fs::metadata(prefix.join("bin/python3")).map(|m| m.len()).unwrap_or(0);
    let python = stdlib_size + binaries;

    println!("\n## kiln componentize (notebooks/classifier.ipynb, candle; this machine, one run)\n");
    println!("| step | seconds |");
    println!("|---|---:|");
    if let Some(cold) = cold {
        println!("| cold: notebook → 3 pushed images, empty work dir | {cold:.1} |");
    }
    println!("| warm: one train cell edited → 3 pushed images (median of {runs}) | {:.1} |", median(warm.clone()));
    println!("\n| image | compressed (pulled) | unpacked |");
    println!("|---|---:|---:|");
    let images = summary["images"].as_array().cloned().unwrap_or_default();
    let mut infer_unpacked = 0;
    for image in &images {
        let unpacked = image["unpacked_size"].as_u64().unwrap_or(0);
        if image["role"] == "infer" {
            infer_unpacked = unpacked;
        }
        println!("| {} | {:.1} MB | {:.1} MB |", image["name"].as_str().unwrap_or(""), image["size"].as_u64().unwrap_or(0) as f64 / 1e6, unpacked as f64 / 1e6);
    }
    let anchor = venv + python;
    println!(
        "| MLflow {MLFLOW_VERSION} serving environment (venv {:.0} MB + CPython stdlib and binary {:.0} MB) | | {:.1} MB |",
        venv as f64 / 1e6,
        python as f64 / 1e6,
        anchor as f64 / 1e6
    );
    if infer_unpacked > 0 {
        println!(
            "\ninfer image / MLflow serving environment (unpacked): {:.3} ({:.0}× smaller)",
            infer_unpacked as f64 / anchor as f64,
            anchor as f64 / infer_unpacked as f64
        );
    }
    Ok(())
}

/// What wrk said about one target.
#[derive(Debug, Default)]
struct Wrk {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Non-2xx answers and socket errors (connect, read, write, timeout).
    failed: u64,
    requests: u64,
}

impl Wrk {
    /// Each figure's median over the runs (failures summed).
    fn median(runs: &[Wrk]) -> Wrk {
        let median = |pick: fn(&Wrk) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
        };
        Wrk {
            requests_per_second: median(|w| w.requests_per_second),
            p50_ms: median(|w| w.p50_ms),
            p99_ms: median(|w| w.p99_ms),
            failed: runs.iter().map(|w| w.failed).sum(),
            requests: runs.iter().map(|w| w.requests).sum(),
        }
    }
}

fn wrk_ms(text: &str) -> f64 {
    let number: f64 = text.trim_end_matches(|c: char| c.is_alphabetic()).parse().unwrap_or(f64::NAN);
    if text.ends_with("us") {
        number / 1000.0
    } else if text.ends_with("ms") {
        number
    } else if text.ends_with('s') {
        number * 1000.0
    } else {
        number
    }
}

fn parse_wrk(output: &str) -> Wrk {
    let mut wrk = Wrk::default();
    for line in output.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", n] => wrk.requests_per_second = n.parse().unwrap_or(0.0),
            ["50%", t] => wrk.p50_ms = wrk_ms(t),
            ["99%", t] => wrk.p99_ms = wrk_ms(t),
            ["Non-2xx", "or", "3xx", "responses:", n] => wrk.failed += n.parse::<u64>().unwrap_or(0),
            [n, "requests", "in", ..] => wrk.requests = n.parse().unwrap_or(0),
            _ if line.starts_with("Socket errors:") => {
                wrk.failed += line.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
            }
            _ => {}
        }
    }
    wrk
}

/// One request body for wrk: JSON, or JSON of `header_length` bytes then binary tensors.
#[derive(Clone)]
struct Body {
    bytes: Vec<u8>,
    header_length: Option<usize>,
}

impl Body {
    fn json(text: &str) -> Body {
        Body { bytes: text.as_bytes().to_vec(), header_length: None }
    }
}

fn run_wrk(url: &str, path: &str, body: &Body, seconds: u32, connections: u32) -> anyhow::Result<Wrk> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let file = env::cache_dir().join(format!("bench/wrk-body-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&file, &body.bytes)?;
    let mut command = Command::new("wrk");
    command
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", "--timeout", "10s", "-s"])
        .arg(env::root().join("xtask/bench/oip.lua"))
        .arg(url)
        .env("KILN_BENCH_BODY_FILE", &file)
        .env("KILN_BENCH_PATH", path)
        .env_remove("KILN_BENCH_HEADER_LENGTH");
    if let Some(length) = body.header_length {
        command.env("KILN_BENCH_HEADER_LENGTH", length.to_string());
    }
    let output = command.output();
    let _ = std::fs::remove_file(&file);
    let output = output?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(output.status.success(), "wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(parse_wrk(&text))
}

/// `/proc/PID/stat`'s fields after the command name (which is in parentheses and may hold
/// spaces): index 0 is the state, 1 the parent's pid, 11 and 12 user and system time in ticks.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds (user + system) used so far by process `pid` and, separately, by its children
/// (the gateway's inference instances).
fn cpu_seconds(pid: u32) -> (f64, f64) {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let used = |fields: &[String]| -> f64 { fields.get(11..13).map_or(0.0, |t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() / ticks) };
    let own = stat_fields(pid).map_or(0.0, |f| used(&f));
    let children = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat_fields)
        .filter(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid))
        .map(|f| used(&f))
        .sum();
    (own, children)
}

/// Runs `wrk` and says how many µs of CPU per request process `pid` used meanwhile, and its
/// children.
fn run_wrk_measured(pid: u32, url: &str, path: &str, body: &Body, seconds: u32, connections: u32) -> anyhow::Result<(Wrk, (f64, f64))> {
    let before = cpu_seconds(pid);
    let wrk = run_wrk(url, path, body, seconds, connections)?;
    let after = cpu_seconds(pid);
    let per_request = |b: f64, a: f64| (a - b) * 1e6 / wrk.requests.max(1) as f64;
    let cpu = (per_request(before.0, after.0), per_request(before.1, after.1));
    Ok((wrk, cpu))
}

fn wait_ready(url: &str, what: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let ok = Command::new("curl").args(["-sf", "-o", "/dev/null", url]).status().is_ok_and(|s| s.success());
        if ok {
            return Ok(());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "{what} was not ready at {url} within 180 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// One row of the encodings table.
struct Encoding {
    input: &'static str,
    encoding: &'static str,
    bytes: usize,
    wrk: Wrk,
    /// CPU µs per request: the gateway's own, its instances'.
    cpu: (f64, f64),
}

/// The same FP32 rows sent as JSON and as binary tensors (answers asked for the same way),
/// small (1 × 4) and large (16 384 × 4 = 65 536 elements, a 256 × 256 tensor's worth, in
/// the shape the classifier takes), through the gateway; each body is checked once first.
fn tensor_encodings(server: &crate::services::KilnServer, path: &str, seconds: u32, connections: u32) -> anyhow::Result<Vec<Encoding>> {
    let mut rows = Vec::new();
    for (input, n) in [("1 × 4", 1usize), ("65 536 (16 384 × 4, as 256 × 256)", 16_384)] {
        let values: Vec<f32> = (0..n).flat_map(|i| [5.1 + (i % 7) as f32 * 0.1, 3.5, 1.4 + (i % 5) as f32 * 0.3, 0.2]).collect();
        let json = serde_json::json!({"inputs": [{"name": "features", "shape": [n, 4], "datatype": "FP32", "data": values}]});
        let header = serde_json::to_vec(&serde_json::json!({
            "inputs": [{"name": "features", "shape": [n, 4], "datatype": "FP32", "parameters": {"binary_data_size": n * 16}}],
            "parameters": {"binary_data_output": true},
        }))?;
        let mut binary = header.clone();
        binary.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        for (encoding, body) in
            [("JSON", Body { bytes: serde_json::to_vec(&json)?, header_length: None }), ("binary", Body { bytes: binary, header_length: Some(header.len()) })]
        {
            let mut check = Command::new("curl");
            check.args(["-sf", "-o", "/dev/null", "-X", "POST", "--data-binary", "@-", &format!("{}{path}", server.url)]);
            if let Some(length) = body.header_length {
                check.args(["-H", &format!("Inference-Header-Content-Length: {length}"), "-H", "Content-Type: application/octet-stream"]);
            }
            let mut child = check.stdin(std::process::Stdio::piped()).spawn()?;
            std::io::Write::write_all(&mut child.stdin.take().ok_or_else(|| anyhow::anyhow!("curl's stdin"))?, &body.bytes)?;
            anyhow::ensure!(child.wait()?.success(), "the {encoding} body of {input} was not answered 200");
            let (wrk, cpu) = run_wrk_measured(server.pid(), &server.url, path, &body, seconds, connections)?;
            rows.push(Encoding { input, encoding, bytes: body.bytes.len(), wrk, cpu });
        }
    }
    Ok(rows)
}

/// POSTs a JSON `body` with curl and parses the answer.
fn post_json(url: &str, body: &[u8]) -> anyhow::Result<serde_json::Value> {
    let output = Command::new("curl")
        .args(["-sf", "-H", "Content-Type: application/json", "--data-binary"])
        .arg(String::from_utf8_lossy(body).into_owned())
        .arg(url)
        .output()?;
    anyhow::ensure!(output.status.success(), "POST {url} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Kills and reaps a child when dropped.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid we own.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn serving(seconds: u32, connections: u32, rounds: u32, gateway_workers: usize) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold", "docker-registry", "wrk", "curl"])?;
    env::run(env::cargo().args(["test", "--release", "--workspace", "--no-run"]))?;
    let bench = env::cache_dir().join("bench/serving");
    let _ = std::fs::remove_dir_all(&bench);
    std::fs::create_dir_all(&bench)?;
    let registry = crate::services::Registry::start(&bench)?;
    let workers = gateway_workers.to_string();
    let server_args: &[&str] = if gateway_workers > 0 { &["--workers", &workers] } else { &[] };
    let server = crate::services::KilnServer::start_with(&bench.join("store"), "127.0.0.1:0", server_args)?;
    let kiln = |args: &[&str]| -> anyhow::Result<String> {
        let output = Command::new(env::target_dir().join("release/kiln"))
            .args(args)
            .env("KILN_SERVER", &server.url)
            .env("KILN_TOKEN", &server.token)
            .env("KILN_CACHE_DIR", env::cache_dir())
            .output()?;
        anyhow::ensure!(output.status.success(), "kiln {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let handle = "iris-bench";
    let notebook = env::root().join("notebooks/classifier.ipynb");
    eprintln!("bench: componentize, train twice, deploy");
    kiln(&["componentize", &notebook.to_string_lossy(), "--handle", handle, "--registry", &registry.host])?;
    kiln(&["run", handle, "--runner", "process"])?;
    kiln(&["run", handle, "--runner", "process", "--param", "epochs=150"])?;
    kiln(&["deploy", handle, "--model-version", "1", "--runner", "process"])?;

    // The same model straight from an instance (no gateway in front).
    let port = crate::services::free_port()?;
    let direct = Reaped(
        Command::new(env::target_dir().join("release/kiln"))
            .args(["instance", handle, "--model-version", "1", "--runner", "process", "--listen", &format!("127.0.0.1:{port}")])
            .env("KILN_SERVER", &server.url)
            .env("KILN_TOKEN", &server.token)
            .env("KILN_CACHE_DIR", env::cache_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let direct_url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{direct_url}/v2/health/ready"), "the instance")?;

    // The anchor: the same weights and computation as an MLflow pyfunc, `mlflow models serve`.
    let mlflow = mlflow_venv()?;
    let model_dir = bench.join("mlflow-model");
    env::run(
        Command::new(mlflow.join("bin/python"))
            .arg(env::root().join("xtask/bench/mlflow_model.py"))
            .args([&server.url, &server.token, handle, "1"])
            .arg(&model_dir),
    )?;
    let mlflow_port = crate::services::free_port()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![mlflow.join("bin")];
    paths.extend(std::env::split_paths(&path));
    let served = Reaped(
        Command::new(mlflow.join("bin/mlflow"))
            .args(["models", "serve", "-m"])
            .arg(&model_dir)
            .args(["--env-manager", "local", "-h", "127.0.0.1", "-p", &mlflow_port.to_string()])
            .env("PATH", std::env::join_paths(paths)?)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(bench.join("mlflow.log"))?)
            .spawn()?,
    );
    let mlflow_url = format!("http://127.0.0.1:{mlflow_port}");
    wait_ready(&format!("{mlflow_url}/ping"), "mlflow models serve")?;

    let oip = Body::json(r#"{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#);
    let pyfunc = Body::json(r#"{"inputs":[[5.1,3.5,1.4,0.2]]}"#);
    let infer_path = format!("/v2/models/{handle}/infer");
    // The anchor must compute what the instance does: the same probabilities for one row.
    let kiln_answer = post_json(&format!("{direct_url}{infer_path}"), &oip.bytes)?;
    let mlflow_answer = post_json(&format!("{mlflow_url}/invocations"), &pyfunc.bytes)?;
    let ours: Vec<f64> = kiln_answer["outputs"][0]["data"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_f64).collect();
    let theirs: Vec<f64> = mlflow_answer["predictions"][0].as_array().into_iter().flatten().filter_map(serde_json::Value::as_f64).collect();
    anyhow::ensure!(
        ours.len() == 3 && ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| (a - b).abs() < 1e-4),
        "the MLflow anchor answers {mlflow_answer} where the instance answers {kiln_answer}"
    );
    eprintln!("bench: wrk, {seconds} s each, {connections} connections, {rounds} rounds");
    let (mut gateways, mut instances) = (Vec::new(), Vec::new());
    let (mut gateway_cpu, mut behind_cpu, mut direct_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let (wrk, (own, children)) = run_wrk_measured(server.pid(), &server.url, &infer_path, &oip, seconds, connections)?;
        gateways.push(wrk);
        gateway_cpu.push(own);
        behind_cpu.push(children);
        let (wrk, (own, _)) = run_wrk_measured(direct.0.id(), &direct_url, &infer_path, &oip, seconds, connections)?;
        instances.push(wrk);
        direct_cpu.push(own);
    }
    let (gateway, instance) = (Wrk::median(&gateways), Wrk::median(&instances));
    let anchor = run_wrk(&mlflow_url, "/invocations", &pyfunc, seconds, connections)?;
    drop(served);
    drop(direct);
    let encodings = tensor_encodings(&server, &infer_path, seconds, connections)?;

    // Load while the deployment switches: canary, promote, blue-green, rollback.
    eprintln!("bench: wrk while switching deployments");
    let switch_seconds = seconds.max(16);
    let (url, path, body) = (server.url.clone(), infer_path.clone(), oip.clone());
    let load = std::thread::spawn(move || run_wrk(&url, &path, &body, switch_seconds, connections));
    let pause = std::time::Duration::from_secs(u64::from(switch_seconds) / 5);
    std::thread::sleep(pause);
    kiln(&["deploy", handle, "--model-version", "2", "--strategy", "canary:50"])?;
    std::thread::sleep(pause);
    kiln(&["promote", handle])?;
    std::thread::sleep(pause);
    kiln(&["deploy", handle, "--model-version", "1", "--strategy", "blue-green"])?;
    std::thread::sleep(pause / 2);
    kiln(&["rollback", handle])?;
    let switching = load.join().map_err(|_| anyhow::anyhow!("the load thread panicked"))??;

    let rounds_text = if rounds > 1 { format!("median of {rounds} interleaved rounds; MLflow one run") } else { "one run".to_owned() };
    let workers_text = if gateway_workers > 0 { format!("gateway with `--workers {gateway_workers}`") } else { "gateway with a thread per core".to_owned() };
    println!("\n## Serving (wrk, {connections} connections, {seconds} s each, {rounds_text}; {workers_text}; this machine)\n");
    println!("| target | req/s | p50 ms | p99 ms | failed | req/s vs MLflow |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, w) in
        [("kiln gateway (`kiln server`)", &gateway), ("kiln infer instance, direct", &instance), ("`mlflow models serve` (pyfunc, same weights)", &anchor)]
    {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} | {:.1}× |",
            w.requests_per_second,
            w.p50_ms,
            w.p99_ms,
            w.failed,
            w.requests_per_second / anchor.requests_per_second
        );
    }
    let each = |runs: &[Wrk]| runs.iter().map(|w| format!("{:.0}", w.requests_per_second)).collect::<Vec<_>>().join(", ");
    println!("\nreq/s per round: gateway {}; direct {}", each(&gateways), each(&instances));
    println!(
        "gateway overhead vs direct: {:.0}% fewer req/s, p50 +{:.2} ms",
        100.0 * (1.0 - gateway.requests_per_second / instance.requests_per_second),
        gateway.p50_ms - instance.p50_ms
    );
    println!(
        "CPU per request (user + system, medians): gateway {:.1} µs + its instances {:.1} µs; the instance direct {:.1} µs; wrk has the rest of the cores",
        median(gateway_cpu),
        median(behind_cpu),
        median(direct_cpu)
    );
    println!("while switching (canary:50 → promote → blue-green → rollback): {} requests, {} failed", switching.requests, switching.failed);
    println!("\n### Tensor encodings through the gateway: JSON against Triton's binary tensor data (same rows, {seconds} s each)\n");
    println!("| input | encoding | request bytes | req/s | p50 ms | failed | CPU µs/request (gateway + instance) | binary req/s vs JSON |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for pair in encodings.chunks(2) {
        let json_rps = pair[0].wrk.requests_per_second;
        for e in pair {
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {} | {:.0} + {:.0} | {} |",
                e.input,
                e.encoding,
                e.bytes,
                e.wrk.requests_per_second,
                e.wrk.p50_ms,
                e.wrk.failed,
                e.cpu.0,
                e.cpu.1,
                if e.encoding == "binary" { format!("{:.2}×", e.wrk.requests_per_second / json_rps) } else { String::new() }
            );
        }
    }

    // Bandit decision time (criterion).
    env::run(env::cargo().args(["bench", "-p", "kiln-server", "--bench", "decision", "--", "--warm-up-time", "1", "--measurement-time", "2"]))?;
    drop(server);
    drop(registry);
    Ok(())
}

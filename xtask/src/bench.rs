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
    }
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
    cmd.arg(env::root().join("xtask/bench/kernel.py"))
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--work")
        .arg(&bench);
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
const MLFLOW_VERSION: &str = "3.17.2";

fn store(single: u32, single_anchor: u32, runs: u32) -> anyhow::Result<()> {
    env::ensure_venv()?;
    env::run(env::cargo().args(["build", "--release", "-p", "kiln-cli"]))?;
    let bench = env::cache_dir().join("bench");
    let venv = bench.join("mlflow-venv");
    let mlflow = venv.join("bin/mlflow");
    let stamp = venv.join(format!("kiln-mlflow-{MLFLOW_VERSION}"));
    if !stamp.exists() {
        env::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        env::run(Command::new(venv.join("bin/pip")).args(["install", "-q", &format!("mlflow=={MLFLOW_VERSION}")]))?;
        std::fs::write(&stamp, "")?;
    }
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

//! `cargo xtask test`: every test, with what it needs installed first.

use std::process::Command;

use crate::arch;
use crate::{demo, env, services};

pub fn run() -> anyhow::Result<()> {
    // One apt run for everything the suites use: mold (faster links), PostgreSQL, an OCI
    // registry, podman with runc, skopeo.
    env::ensure_debian_packages(&["mold", "postgresql", "docker-registry", "podman", "runc", "skopeo", "uidmap"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    env::ensure_extension()?;
    std::fs::create_dir_all(env::evcxr_tmpdir())?;

    let mut failed = Vec::new();
    // ARCHITECTURE.md's dependency rules, over the locked graph: seconds, so first.
    if let Err(error) = arch::check() {
        failed.push(format!("architecture: {error}"));
    }
    // Formatting (rustfmt.toml), then lints, warnings as errors (shares the release build, so it is quick).
    if let Err(error) = env::run(env::cargo().args(["fmt", "--all", "--check"])) {
        failed.push(format!("cargo fmt --check: {error}"));
    }
    if let Err(error) = env::run(env::cargo().args(["clippy", "--release", "--workspace", "--all-targets", "--", "-D", "warnings"])) {
        failed.push(format!("clippy: {error}"));
    }
    // Rust: unit tests and the wire-level kernel tests. Release, to share the kernel's build.
    // The store contract suite runs embedded (SQLite + files) and scaled out (this real
    // PostgreSQL + this S3-compatible server).
    let postgres = services::Postgres::start()?;
    let s3 = services::S3::start()?;
    let mut cargo = env::cargo();
    cargo.args(["test", "--release", "--workspace", "--no-fail-fast", "--", "--test-threads=2"]);
    // Componentize tests share the generated crates' builds with the CLI's.
    cargo.env("KILN_CACHE_DIR", env::cache_dir());
    cargo.env("KILN_TEST_POSTGRES", &postgres.url);
    s3.apply(&mut cargo);
    env::jupyter_env(&mut cargo);
    if let Err(error) = env::run(&mut cargo) {
        failed.push(format!("cargo test: {error}"));
    }
    // The SDK with its optional codecs (polars tables and Parquet, candle safetensors), linted
    // by clippy as it builds.
    for features in SDK_CODECS {
        if let Err(error) = env::run(&mut sdk_codec_tests(features)) {
            failed.push(format!("cargo test -p kiln --features {features}: {error}"));
        }
    }
    // Python: jupyter_kernel_test, nbclient over every notebook, the mlflow client against
    // `kiln server`, and a notebook componentized, pushed to a real registry and run under
    // podman.
    let registry = services::Registry::start(&env::cache_dir())?;
    let mut pytest = Command::new(env::venv_bin("python"));
    pytest.current_dir(env::root()).args(["-m", "pytest", "-v", "tests/jupyter", "tests/store", "tests/production"]);
    pytest.env("KILN_BIN", env::target_dir().join("release/kiln")).env("KILN_TEST_REGISTRY", &registry.host).env("KILN_CACHE_DIR", env::cache_dir());
    env::jupyter_env(&mut pytest);
    services::podman_env(&mut pytest)?;
    // KServe's SDK checks `kiln export k8s`; its pins clash with the test venv's.
    pytest.env("KILN_KSERVE_PYTHON", env::tool_venv("kserve", &["kserve==0.21.0"])?.join("bin/python"));
    // The unmodified Triton client against the serving gateway.
    pytest.env("KILN_TRITON_PYTHON", triton_python()?);
    // Full MLflow (pyfunc, pandas) for `mlflow.pyfunc.log_model` against `kiln server`.
    pytest.env("KILN_MLFLOW_PYTHON", crate::bench::mlflow_venv()?.join("bin/python"));
    // The mlflow client's tests run on both store backends, as the contract suite does.
    pytest.env("KILN_TEST_POSTGRES", &postgres.url);
    s3.apply(&mut pytest);
    if let Err(error) = env::run(&mut pytest) {
        failed.push(format!("pytest: {error}"));
    }
    drop(registry);
    drop(s3);
    drop(postgres);
    // `cargo xtask demo`'s own code on a store and registry of its own (processes: the
    // podman path is the production tests'): it checks every link of the lineage it prints
    // and that the store's traffic report counts the answers it received.
    let demo = demo::Setup {
        store_dir: env::cache_dir().join("demo-test/store"),
        registry_dir: env::cache_dir().join("demo-test/registry"),
        clean: true,
        runner: Some("process".into()),
    };
    if let Err(error) = demo::run_with(&demo) {
        failed.push(format!("cargo xtask demo: {error:#}"));
    }

    // The JupyterLab extension: its TypeScript logic (vitest), then the server extension in a
    // real Jupyter server (pytest-jupyter, on its own: its fixtures move HOME for the server).
    if let Err(error) = env::run(Command::new("npm").args(["test"]).current_dir(env::root().join("extension"))) {
        failed.push(format!("extension unit tests: {error}"));
    }
    let mut server_extension = Command::new(env::venv_bin("python"));
    server_extension.current_dir(env::root()).args(["-m", "pytest", "-v", "-p", "pytest_jupyter.jupyter_server", "tests/jupyterlab"]);
    server_extension.env("KILN_BIN", env::target_dir().join("release/kiln")).env("KILN_CACHE_DIR", env::cache_dir());
    env::jupyter_env(&mut server_extension);
    if let Err(error) = env::run(&mut server_extension) {
        failed.push(format!("pytest tests/jupyterlab: {error}"));
    }
    if let Err(error) = browser_tests() {
        failed.push(format!("browser tests (extension/ui-tests): {error}"));
    }

    if failed.is_empty() {
        eprintln!("xtask test: every suite passed");
        Ok(())
    } else {
        anyhow::bail!("xtask test: {} suite(s) failed:\n  {}", failed.len(), failed.join("\n  "))
    }
}

/// A venv of its own with the unmodified Triton client (its pins clash with the test venv's).
fn triton_python() -> anyhow::Result<std::path::PathBuf> {
    Ok(env::tool_venv("tritonclient", &["tritonclient[http]==2.73.0"])?.join("bin/python"))
}

/// `cargo xtask ui-test ARGS`: the browser tests alone, for working on the extension.
pub fn ui(args: &[String]) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold", "docker-registry", "podman", "runc", "skopeo", "uidmap"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    env::ensure_extension()?;
    std::fs::create_dir_all(env::evcxr_tmpdir())?;
    let output = env::cache_dir().join("ui-tests");
    let mut playwright = Playwright::new(&output)?;
    playwright.command.args(args);
    let result = env::run(&mut playwright.command);
    eprintln!("xtask ui-test: browser screenshots in {}", output.display());
    result
}

/// The SDK's codec tests, a build for each notebook family: polars and candle together as
/// `classifier.ipynb` and `regression.ipynb` ask for them (`:dep polars = { …, features =
/// ["lazy"] }`, so its default features too), candle alone as `sentiment.ipynb` does.
/// Features that differ by one make every crate above them a different build; `cargo tree -e
/// features` in both places shows the same sets for polars and for candle (`kiln`'s `candle`
/// feature names `once_cell`, whose `default` feature the SDK's dev-dependency expect-test
/// turns on here: without it the components' graph would lack that feature, and candle,
/// above once_cell through ahash and gemm, would build once more for the components).
const SDK_CODECS: [&str; 2] = ["candle,parquet,serve,polars/default,polars/lazy", "candle,serve"];

/// `cargo test -p kiln --features FEATURES`, built as `kiln componentize` builds a notebook's
/// components: in its target directory, with its release profile (no debug info, stripped,
/// not incremental) and its linker flags. Every dependency then compiles to the very
/// artifacts the components' builds look for, so polars, a quarter of an hour on two cores,
/// compiles once in a cold run instead of once here and again for the components.
///
/// The SDK itself compiles through clippy (`clippy-driver` as the workspace's rustc wrapper,
/// `-D warnings`: what `cargo clippy` does, in a full build), so its codec code is linted
/// here. A `cargo clippy --features …` of its own would check polars and candle once more
/// (metadata only, shared with nothing: four minutes cold); the wrapper applies to
/// workspace members alone, so the dependencies stay the components' artifacts.
fn sdk_codec_tests(features: &str) -> Command {
    let mut cargo = env::cargo();
    cargo.args(["test", "--release", "-p", "kiln", "--features", features]);
    // The toolchain's own clippy-driver, beside the cargo that runs; `CLIPPY_ARGS` is how
    // `cargo clippy` hands it `-D warnings`.
    let clippy = std::path::Path::new(env!("CARGO")).with_file_name("clippy-driver");
    cargo.env("RUSTC_WORKSPACE_WRAPPER", clippy).env("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__");
    cargo
        .env("CARGO_TARGET_DIR", env::cache_dir().join("componentize/target"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
        // tests/values.rs round-trips values through a real `kiln server`.
        .env("KILN_BIN", env::target_dir().join("release/kiln"));
    // As cli/src/componentize.rs's `rustflags`: mold when it is on PATH.
    let has_mold = std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("mold").is_file()));
    if has_mold {
        cargo.env("RUSTFLAGS", "-C link-arg=-fuse-ld=mold");
    } else {
        cargo.env_remove("RUSTFLAGS");
    }
    cargo
}

/// The extension in Debian's Chromium (Playwright with galata; no browser is downloaded)
/// against a real JupyterLab started by Playwright, the real kernel, a fresh `kiln server`
/// and a fresh registry. Screenshots of each view land in `$KILN_CACHE_DIR/ui-tests`.
fn browser_tests() -> anyhow::Result<()> {
    let output = env::cache_dir().join("ui-tests");
    let mut playwright = Playwright::new(&output)?;
    let result = env::run(&mut playwright.command);
    eprintln!("xtask test: browser screenshots in {}", output.display());
    result
}

/// `npx playwright test` in `extension/ui-tests`, with what its JupyterLabs use started: a
/// fresh `kiln server` and registry (stopped, with their folder removed, on drop), two free
/// ports (the second JupyterLab's store does not answer), and the CLI this checkout built.
pub struct Playwright {
    pub command: Command,
    work: std::path::PathBuf,
    servers: Option<(services::KilnServer, services::Registry)>,
}

impl Playwright {
    pub fn new(output: &std::path::Path) -> anyhow::Result<Playwright> {
        env::ensure_debian_packages(&["chromium"])?;
        let dir = env::root().join("extension/ui-tests");
        env::npm_ci(&dir)?;
        let work = env::cache_dir().join(format!("ui-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("root"))?;
        let store = services::KilnServer::start(&work.join("store"), "127.0.0.1:0")?;
        let registry = services::Registry::start(&work)?;
        let _ = std::fs::remove_dir_all(output);
        let ui_port = services::free_port()?;
        let mut down_port = services::free_port()?;
        while down_port == ui_port {
            down_port = services::free_port()?;
        }
        let mut command = Command::new("npx");
        command.current_dir(&dir).args(["playwright", "test"]);
        command
            .env("KILN_SERVER", &store.url)
            .env("KILN_TOKEN", &store.token)
            .env("KILN_REGISTRY", &registry.host)
            .env("KILN_BIN", env::target_dir().join("release/kiln"))
            .env("KILN_CACHE_DIR", env::cache_dir())
            .env("KILN_UI_PORT", ui_port.to_string())
            .env("KILN_UI_DOWN_PORT", down_port.to_string())
            .env("KILN_UI_ROOT", work.join("root"))
            .env("KILN_UI_OUTPUT", output)
            // The Deployments tests send traffic through the Triton client.
            .env("KILN_TRITON_PYTHON", triton_python()?)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        env::jupyter_env(&mut command);
        Ok(Playwright { command, work, servers: Some((store, registry)) })
    }
}

impl Drop for Playwright {
    fn drop(&mut self) {
        // Stopped first, then their folder removed.
        drop(self.servers.take());
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

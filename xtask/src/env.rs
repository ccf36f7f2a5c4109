//! The environment every task shares: where caches live, the Python venv, the kernel build.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (the parent of `xtask/`).
/// The checkout `cargo xtask` runs in. Read at run time (`cargo run` sets
/// `CARGO_MANIFEST_DIR`): a shared target dir can hold an xtask built in another clone of the
/// same sources, which cargo does not rebuild, and whose compile-time path is that clone's.
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Caches that outlive a checkout: the venv, evcxr's build directories, benchmark tools.
/// `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("kiln")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

pub fn kernel_binary() -> PathBuf {
    target_dir().join("release/kiln-kernel")
}

pub fn venv() -> PathBuf {
    cache_dir().join("venv")
}

pub fn venv_bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A `cargo` command without the variables `cargo run` gave xtask itself: build scripts
/// (ring's, for one) rerun when `CARGO_MANIFEST_DIR` or `CARGO_PKG_*` change, which would
/// rebuild the kernel's dependencies on every switch between `cargo xtask` and plain cargo.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let injected =
            ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_PACKAGE"].iter().any(|p| key.starts_with(p)) || key == "OUT_DIR";
        if injected {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it; fails with its exit status.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd.status().with_context(|| format!("starting {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program().to_string_lossy().into_owned())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Debian packages the tests and the lab use, installed when missing and we may (root).
pub fn ensure_debian_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        eprintln!("note: missing Debian packages {missing:?}; install them with apt-get (continuing)");
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq"]).args(&missing).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Creates the venv and installs the pinned Python requirements into it.
pub fn ensure_venv() -> anyhow::Result<()> {
    let venv = venv();
    if !venv_bin("python").exists() {
        std::fs::create_dir_all(cache_dir())?;
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let requirements = root().join("xtask/requirements.txt");
    let stamp = venv.join(".kiln-requirements");
    let wanted = std::fs::read_to_string(&requirements)?;
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new(venv_bin("python")).args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "-r"]).arg(&requirements))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(())
}

/// The JupyterLab extension (`extension/`): its npm packages from the committed lock, the
/// TypeScript built into the prebuilt labextension, and the Python package (labextension and
/// server extension) installed into the venv. Each step is skipped when its inputs have not
/// changed since it last ran.
pub fn ensure_extension() -> anyhow::Result<()> {
    let dir = root().join("extension");
    npm_ci(&dir)?;
    // jupyter-builder (PyPI, in the venv) drives the build; the sources decide whether to run it.
    let sources = tree_stamp(&[dir.join("src"), dir.join("style"), dir.join("schema"), dir.join("package.json"), dir.join("tsconfig.json")])?;
    let built = dir.join("kiln_jupyterlab/labextension/.kiln-sources");
    if std::fs::read_to_string(&built).ok().as_deref() != Some(sources.as_str()) {
        let path = std::env::join_paths(std::iter::once(venv().join("bin")).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())))?;
        run(Command::new("npm").args(["run", "build:prod"]).current_dir(&dir).env("PATH", path))?;
        std::fs::write(&built, &sources)?;
    }
    let python = std::fs::read_to_string(dir.join("pyproject.toml"))? + &tree_stamp(&[dir.join("kiln_jupyterlab"), dir.join("jupyter-config")])?;
    let stamp = venv().join(".kiln-extension");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(python.as_str()) {
        run(Command::new(venv_bin("python")).args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation"]).arg(&dir))?;
        std::fs::write(&stamp, python)?;
    }
    Ok(())
}

/// `npm ci` in `dir` from its committed lock, unless that lock is what is installed; never
/// downloads a browser.
pub fn npm_ci(dir: &std::path::Path) -> anyhow::Result<()> {
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).with_context(|| format!("reading {}/package-lock.json", dir.display()))?;
    let installed = dir.join("node_modules/.kiln-lock");
    if std::fs::read_to_string(&installed).ok().as_deref() != Some(lock.as_str()) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir).env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))?;
        std::fs::write(&installed, &lock)?;
    }
    Ok(())
}

/// Every file's path, size and modification time under `paths`: changes when any changes.
fn tree_stamp(paths: &[PathBuf]) -> anyhow::Result<String> {
    let mut lines = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?.path();
                if entry.file_name().is_some_and(|n| n == "node_modules" || n == "__pycache__") {
                    continue;
                }
                stack.push(entry);
            }
        } else {
            let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            lines.push(format!("{} {} {modified}", path.display(), meta.len()));
        }
    }
    lines.sort();
    Ok(lines.join("\n"))
}

/// Builds the kernel in release (evcxr's embedded rust-analyzer is far too slow in debug)
/// and installs its kernelspec into the venv.
///
/// Every task builds through the same `cargo test --release --workspace --no-run`, so the
/// kernel binary and the test harnesses come from one feature resolution: dev-dependencies
/// change it, and alternating `cargo build -p kiln-kernel` with `cargo test --workspace`
/// rebuilt evcxr's whole dependency tree (minutes) on every switch.
pub fn build_and_install_kernel() -> anyhow::Result<()> {
    build_release()?;
    install_kernelspec()
}

/// The workspace in release, through the same `cargo test --no-run` (see above).
pub fn build_release() -> anyhow::Result<()> {
    run(cargo().args(["test", "--release", "--workspace", "--no-run"]))
}

fn install_kernelspec() -> anyhow::Result<()> {
    run(Command::new(kernel_binary()).args(["install", "--sys-prefix"]).env("VIRTUAL_ENV", venv()))
}

/// Environment for anything that starts the kernel: the venv first on PATH, Jupyter looking
/// in the venv first, and evcxr building under the cache.
///
/// Without the variables `cargo run` gives xtask about xtask itself (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR`, …): kernels would pass them on to the cargo that builds cells, and
/// build scripts that watch them (`ring`'s `rerun-if-env-changed=CARGO_MANIFEST_DIR`) would
/// rerun, rebuilding ring and everything above it (polars' I/O crates: minutes) whenever the
/// same build directory is used by a kernel started elsewhere.
pub fn jupyter_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_cargo_run_variable) {
            cmd.env_remove(&name);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv().join("bin")];
    paths.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("VIRTUAL_ENV", venv())
        .env("JUPYTER_PATH", venv().join("share/jupyter"))
        .env("EVCXR_TMPDIR", evcxr_tmpdir())
        .env("PYTHONUNBUFFERED", "1")
}

/// What `cargo run` sets about the package it runs (cargo's own `CARGO`, `CARGO_HOME` and
/// settings stay).
fn is_cargo_run_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_MANIFEST_") || matches!(name, "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE")
}

/// The base of the kernels' build directories (each kernel makes its own below it).
pub fn evcxr_tmpdir() -> PathBuf {
    std::env::var_os("EVCXR_TMPDIR").map(PathBuf::from).unwrap_or_else(|| cache_dir().join("evcxr"))
}

/// A venv of its own under the cache for a tool whose pins clash with the main venv's
/// (kserve, mlflow): made once, remade when `packages` change.
pub fn tool_venv(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = cache_dir().join("tools").join(name);
    let stamp = venv.join(".kiln-packages");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", "--disable-pip-version-check"]).args(packages))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv)
}

#[cfg(test)]
mod tests {
    use super::is_cargo_run_variable;

    #[test]
    fn kernels_lose_what_cargo_run_says_about_xtask_and_keep_cargo_settings() {
        let cases = [
            ("CARGO_PKG_NAME", true),
            ("CARGO_PKG_VERSION_MAJOR", true),
            ("CARGO_MANIFEST_DIR", true),
            ("CARGO_MANIFEST_PATH", true),
            ("CARGO_CRATE_NAME", true),
            ("CARGO_BIN_NAME", true),
            ("CARGO_PRIMARY_PACKAGE", true),
            ("CARGO", false),
            ("CARGO_HOME", false),
            ("CARGO_TARGET_DIR", false),
            ("CARGO_BUILD_JOBS", false),
            ("PATH", false),
        ];
        for (name, dropped) in cases {
            assert_eq!(is_cargo_run_variable(name), dropped, "{name}");
        }
    }
}

//! `cargo xtask lab`: JupyterLab with the Kiln kernel, and the Kiln store behind it, on
//! 127.0.0.1.

use std::process::Command;

use crate::{env, services};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    // The embedded store (SQLite + files in the cache dir), so `kiln::run("…")` in a cell
    // logs somewhere without set-up. Kernels inherit KILN_SERVER and KILN_TOKEN.
    let data = env::cache_dir().join("lab-store");
    let listen = std::env::var("KILN_LAB_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let store = services::KilnServer::start(&data, &listen)?;
    eprintln!(
        "kiln: store at {} (data in {}); `kiln runs list` with KILN_SERVER={} and KILN_TOKEN from {}/admin.token",
        store.url,
        data.display(),
        store.url,
        data.display()
    );
    let mut cmd = Command::new(env::venv_bin("jupyter"));
    cmd.arg("lab").arg("--ip=127.0.0.1").arg(format!("--ServerApp.root_dir={}", env::root().join("notebooks").display()));
    if env::is_root() && !args.iter().any(|a| a == "--allow-root") {
        cmd.arg("--allow-root");
    }
    cmd.args(args);
    cmd.env("KILN_SERVER", &store.url).env("KILN_TOKEN", &store.token);
    env::jupyter_env(&mut cmd);
    let result = env::run(&mut cmd);
    drop(store);
    result
}

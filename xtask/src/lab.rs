//! `cargo xtask lab`: JupyterLab with the Kiln kernel, on 127.0.0.1.

use std::process::Command;

use crate::env;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["mold"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    let mut cmd = Command::new(env::venv_bin("jupyter"));
    cmd.arg("lab").arg("--ip=127.0.0.1").arg(format!("--ServerApp.root_dir={}", env::root().join("notebooks").display()));
    if env::is_root() && !args.iter().any(|a| a == "--allow-root") {
        cmd.arg("--allow-root");
    }
    cmd.args(args);
    env::jupyter_env(&mut cmd);
    env::run(&mut cmd)
}

//! `kiln-kernel install`: writes the `kiln` kernelspec.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

pub const NAME: &str = "kiln";
pub const DISPLAY_NAME: &str = "Rust (Kiln)";

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Install for the current user (~/.local/share/jupyter); the default.
    #[arg(long, conflicts_with_all = ["sys_prefix", "prefix"])]
    user: bool,
    /// Install into the active Python environment (sys.prefix/share/jupyter).
    #[arg(long, conflicts_with = "prefix")]
    sys_prefix: bool,
    /// Install under PREFIX/share/jupyter.
    #[arg(long)]
    prefix: Option<PathBuf>,
}

pub fn install(args: &InstallArgs) -> anyhow::Result<()> {
    let root = if let Some(prefix) = &args.prefix {
        prefix.join("share/jupyter")
    } else if args.sys_prefix {
        sys_prefix()?.join("share/jupyter")
    } else {
        // `--user`, and also the default: Jupyter's own default is system-wide, but the user
        // directory needs no privileges and is always on Jupyter's path.
        data_home()?.join("jupyter")
    };
    let dir = root.join("kernels").join(NAME);
    let exe = std::env::current_exe().context("locating the kiln-kernel binary")?;
    write_spec(&dir, &exe)?;
    println!("Installed kernelspec {NAME} in {}", dir.display());
    Ok(())
}

pub fn write_spec(dir: &Path, exe: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec = json!({
        "argv": [exe.to_string_lossy(), "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    });
    let path = dir.join("kernel.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn data_home() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share"))
}

fn sys_prefix() -> anyhow::Result<PathBuf> {
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        return Ok(PathBuf::from(venv));
    }
    let out = std::process::Command::new("python3").args(["-c", "import sys; print(sys.prefix)"]).output().context("running python3 to find sys.prefix")?;
    anyhow::ensure!(out.status.success(), "python3 could not report sys.prefix");
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

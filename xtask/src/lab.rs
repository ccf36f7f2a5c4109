//! `cargo xtask lab [--store URL] [JUPYTER ARGS…]`: JupyterLab with the Kiln kernel and
//! Kiln's extension, the whole path with no set-up: a Kiln store (embedded SQLite + files in
//! the cache dir, or the team's at `--store URL`, token from `KILN_TOKEN`) and a local OCI
//! registry that "Componentize notebook" pushes to, all on 127.0.0.1.

use std::process::Command;

use anyhow::bail;

use crate::{env, services};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (store_url, args) = split_store(args)?;
    env::ensure_debian_packages(&["mold", "docker-registry", "skopeo"])?;
    env::ensure_venv()?;
    env::build_and_install_kernel()?;
    env::ensure_extension()?;
    // Kernels and the server extension inherit KILN_SERVER and KILN_TOKEN, so `kiln::run("…")`
    // in a cell logs somewhere and the Experiments views read the same store.
    let embedded;
    let (url, token) = match store_url {
        Some(url) => {
            let token = std::env::var("KILN_TOKEN").unwrap_or_default();
            if token.is_empty() {
                eprintln!("note: KILN_TOKEN is not set; the store at {url} must accept requests without a token");
            }
            (url, token)
        }
        None => {
            let data = env::cache_dir().join("lab-store");
            let listen = std::env::var("KILN_LAB_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
            embedded = services::KilnServer::start(&data, &listen)?;
            eprintln!("kiln: store at {} (data in {}; admin token in {}/admin.token)", embedded.url, data.display(), data.display());
            (embedded.url.clone(), embedded.token.clone())
        }
    };
    let registry = services::Registry::start_kept(&env::cache_dir().join("lab-registry"))?;
    eprintln!("kiln: OCI registry at {} (images in {})", registry.host, env::cache_dir().join("lab-registry").display());
    let mut cmd = Command::new(env::venv_bin("jupyter"));
    cmd.arg("lab").arg("--ip=127.0.0.1").arg(format!("--ServerApp.root_dir={}", env::root().join("notebooks").display()));
    if env::is_root() && !args.iter().any(|a| a == "--allow-root") {
        cmd.arg("--allow-root");
    }
    cmd.args(&args);
    cmd.env("KILN_SERVER", &url).env("KILN_TOKEN", &token).env("KILN_REGISTRY", &registry.host).env("KILN_BIN", env::target_dir().join("release/kiln"));
    env::jupyter_env(&mut cmd);
    let result = env::run(&mut cmd);
    drop(registry);
    result
}

/// `--store URL` (or `--store=URL`) out of the arguments; the rest go to `jupyter lab`.
fn split_store(args: &[String]) -> anyhow::Result<(Option<String>, Vec<String>)> {
    let mut store = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--store" {
            match args.next() {
                Some(url) => store = Some(url.trim_end_matches('/').to_owned()),
                None => bail!("--store needs the store's URL (http://HOST:PORT)"),
            }
        } else if let Some(url) = arg.strip_prefix("--store=") {
            store = Some(url.trim_end_matches('/').to_owned());
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((store, rest))
}

//! `kiln server`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use kiln_server::{Server, ServerConfig};

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Where the embedded database, artifacts and the admin token live.
    #[arg(long, env = "KILN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`; default: DATA_DIR/kiln.db.
    #[arg(long, env = "KILN_DB")]
    db: Option<String>,
    /// Artifact bytes: a directory or s3://BUCKET/PREFIX (endpoint and keys from AWS_ENDPOINT,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP); default: DATA_DIR/artifacts.
    #[arg(long, env = "KILN_ARTIFACTS")]
    artifacts: Option<String>,
    /// Serve reads (GET, search) without a token. Writes always need one.
    #[arg(long)]
    open_reads: bool,
    /// Gateway: requests one deployed handle may have at its instances at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Gateway: requests that may wait for a slot; more get 429 at once.
    #[arg(long, default_value_t = 512)]
    max_waiting: usize,
    /// On SIGTERM or Ctrl-C: how long to let requests in flight finish (new connections are
    /// refused at once), before their connections are closed and the instances stopped.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    shutdown_grace: u64,
    /// Threads serving requests (default: one per core). Fewer leave cores to inference
    /// instances on the same machine: a gateway, its instances and a load generator sharing
    /// two cores spend much of their time switching threads otherwise.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

pub fn run(args: &ServerArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(crate::default_data_dir);
    let mut config = ServerConfig::embedded(&data_dir, args.listen);
    config.db = args.db.clone();
    config.artifacts = args.artifacts.clone();
    config.open_reads = args.open_reads;
    config.gateway = kiln_server::serving::Limits { in_flight: args.max_in_flight.max(1), waiting: args.max_waiting };
    config.shutdown_grace = std::time::Duration::from_secs(args.shutdown_grace);
    // Scheduled workflows (`kiln run`) and inference instances (`kiln instance`) are started
    // from this very binary.
    config.kiln = std::env::current_exe().ok().map(|exe| kiln_server::scheduler::KilnCommand(vec![exe.to_string_lossy().into_owned()]));
    // One worker: a single-threaded runtime, with no work-stealing machinery to pay for.
    let mut runtime = match args.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all();
    if let Some(workers) = args.workers.filter(|&w| w > 1) {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = Server::start(config.clone()).await.context("starting the server")?;
        if let Some(path) = &server.new_admin_token {
            eprintln!("kiln: created an admin token in {} (mode 600); export KILN_TOKEN=$(cat {})", path.display(), path.display());
        }
        eprintln!("kiln: data in {}, database {}", data_dir.display(), redact(&config.db_url()));
        // The address on stdout, alone on its line: scripts read it when they asked for port 0.
        println!("kiln server listening on {}", server.url());
        server.run_until(shutdown_signal()).await.context("serving")?;
        eprintln!("kiln: stopped");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("kiln: shutting down (finishing requests in flight)");
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_pass = &url[scheme + 3..at];
            let user = user_pass.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

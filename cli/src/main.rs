//! `kiln`: the one command line of the Kiln product.
//!
//! Exit codes: 0 success; 1 the command failed (the message says why); 2 bad usage (clap).

mod componentize;
mod deploy;
mod export;
mod launch;
mod models;
mod progress;
mod registry;
mod run;
mod runs;
mod schedules;
mod serve;
mod tokens;
mod yaml;

use std::path::PathBuf;

/// The gateway allocates per request (headers, bodies, futures); mimalloc's thread-local
/// free lists cost a fraction of glibc's malloc there (measured with perf under wrk).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kiln", version, about = "Kiln: from a Rust notebook to production")]
struct Cli {
    /// The Kiln server to talk to (default http://127.0.0.1:7878).
    #[arg(long, global = true, env = "KILN_SERVER")]
    server: Option<String>,
    /// API token; default: the admin token in the default data dir, when there is one.
    #[arg(long, global = true, env = "KILN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the metadata & artifact store (SQLite + local files unless told otherwise).
    Server(serve::ServerArgs),
    /// Experiments.
    #[command(subcommand)]
    Experiments(runs::ExperimentsCommand),
    /// Runs: list, show, compare.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Registered models and their versions.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Where a model version came from: run, params, metrics, datasets, code packages.
    Lineage {
        /// MODEL@VERSION or MODEL@ALIAS.
        #[arg(value_parser = models::parse_reference)]
        reference: models::Reference,
        #[arg(long)]
        json: bool,
    },
    /// Serve a model version of a handle through the server's gateway, with a strategy.
    Deploy(deploy::DeployArgs),
    /// Promote: the canary candidate becomes stable, a blue-green standby stops, a bandit
    /// keeps its best arm.
    Promote {
        handle: String,
        #[arg(long)]
        json: bool,
    },
    /// Roll back: drop the canary candidate, go back to the blue-green standby, or drop the
    /// newest bandit arm.
    Rollback {
        handle: String,
        #[arg(long)]
        json: bool,
    },
    /// Deployments and their traffic.
    #[command(subcommand)]
    Deployments(deploy::DeploymentsCommand),
    /// Run a handle's infer component serving one model version (the gateway starts these).
    Instance(deploy::InstanceArgs),
    /// Have `kiln server` run a handle's training workflow on a cron pattern.
    Schedule(schedules::ScheduleArgs),
    /// The schedules `kiln server` fires.
    #[command(subcommand)]
    Schedules(schedules::SchedulesCommand),
    /// The registered components as manifests: an Argo WorkflowTemplate, or Kubernetes
    /// Deployment + Service and a KServe InferenceService.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Run a handle's data and train components (podman or processes), cached and retried.
    Run(run::RunArgs),
    /// A tagged notebook's steps, the values that cross them with their types, and its
    /// problems (exit 1 if any).
    Show(componentize::ShowArgs),
    /// A tagged notebook → three components (data, train, infer) → reproducible OCI images,
    /// pushed to a registry and registered in the store.
    Componentize(componentize::ComponentizeArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
}

const DEFAULT_SERVER: &str = "http://127.0.0.1:7878";

/// `$XDG_DATA_HOME/kiln`, else `~/.local/share/kiln`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("kiln");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/kiln")
}

impl Cli {
    fn client(&self) -> kiln::Client {
        let token = self.token.clone().or_else(|| {
            let path = default_data_dir().join("admin.token");
            std::fs::read_to_string(path).ok().map(|t| t.trim().to_owned())
        });
        kiln::Client::new(self.server.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT_SERVER), token)
    }

    /// The store when one was named (`--server` or `KILN_SERVER`).
    /// An empty `KILN_SERVER=` names none, as an unset one.
    fn named_store(&self) -> Option<kiln::Client> {
        self.server.as_ref().filter(|s| !s.trim().is_empty()).map(|_| self.client())
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Server(_) | Command::Instance(_)) {
        quiet_on_closed_pipe();
    }
    let result = match &cli.command {
        Command::Server(args) => serve::run(args),
        Command::Experiments(command) => runs::experiments(&cli.client(), command),
        Command::Runs(command) => runs::run(&cli.client(), command),
        Command::Token(command) => tokens::run(&cli.client(), command),
        Command::Models(command) => models::run(&cli.client(), command),
        Command::Show(args) => componentize::show(args),
        Command::Run(args) => run::run(args, cli.client()),
        Command::Export(command) => export::run(command, &cli.client()),
        Command::Schedule(args) => schedules::create(args, &cli.client()),
        Command::Deploy(args) => deploy::deploy(args, &cli.client()),
        Command::Promote { handle, json } => deploy::promote(handle, &cli.client(), *json),
        Command::Rollback { handle, json } => deploy::rollback(handle, &cli.client(), *json),
        Command::Deployments(command) => deploy::deployments(command, &cli.client()),
        Command::Instance(args) => deploy::instance(args, &cli.client()),
        Command::Schedules(command) => schedules::run(command, &cli.client()),
        Command::Componentize(args) => componentize::run(args, cli.named_store()),
        Command::Lineage { reference, json } => models::lineage(&cli.client(), reference, *json),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kiln: {}", describe(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, `outer: cause: cause`, leaving out a cause the text
/// already says: library errors put their cause in their own message and also keep it as
/// their `source`, and `{:#}` alone would print it twice.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// `kiln runs list | head -3`: a reader that goes away ends the command as it ends other Unix
/// tools (SIGPIPE, exit 141 in a shell), not with a panic from `println!`. Not for the
/// long-running commands, which write to sockets and children and must outlive a peer.
fn quiet_on_closed_pipe() {
    // SAFETY: restores the default disposition before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Read {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let error = anyhow::Error::new(Read { path: "n.ipynb".into(), source: io() });
        assert_eq!(describe(&error), "reading n.ipynb: No such file or directory");
        let wrapped = error.context("kiln show");
        assert_eq!(describe(&wrapped), "kiln show: reading n.ipynb: No such file or directory");
        let plain = anyhow::Error::new(io()).context("opening the cache");
        assert_eq!(describe(&plain), "opening the cache: No such file or directory");
    }
}

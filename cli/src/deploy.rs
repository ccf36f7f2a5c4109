//! Serving: `kiln deploy`, `kiln promote`, `kiln rollback`, `kiln deployments list|show|traffic`
//! against the server's gateway, and `kiln instance`, which the gateway starts for each
//! deployed version (it runs the registered infer component, under podman or as a process).

use anyhow::{Context, bail};
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use kiln::api::{Deploy, Deployment, Role, Strategy, Traffic};

use crate::launch::{self, Runner};

#[derive(clap::Args)]
pub struct DeployArgs {
    handle: String,
    #[arg(long)]
    model_version: i64,
    /// blue-green | canary:PERCENT | bandit:epsilon-greedy:EPSILON | bandit:thompson
    #[arg(long, default_value = "blue-green", value_parser = parse_strategy)]
    strategy: Strategy,
    /// How the server runs the instance: podman (the image) or process (its binary).
    #[arg(long, value_enum)]
    runner: Option<Runner>,
    #[arg(long)]
    json: bool,
}

fn parse_strategy(text: &str) -> Result<Strategy, String> {
    Strategy::parse(text).map_err(|e| e.message)
}

#[derive(Subcommand)]
pub enum DeploymentsCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        handle: String,
        #[arg(long)]
        json: bool,
    },
    /// Requests, errors, latency percentiles and mean reward per version and minute.
    Traffic {
        handle: String,
        /// Only the last N minutes.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct InstanceArgs {
    handle: String,
    #[arg(long)]
    model_version: i64,
    /// The address to serve on: HOST:PORT, or unix:PATH for a Unix socket.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    #[arg(long, value_enum)]
    runner: Option<Runner>,
}

fn describe(d: &Deployment) -> String {
    let mut lines = vec![format!("{} · {} · stable version {}", d.handle, d.strategy, d.stable)];
    if let Some(candidate) = d.candidate {
        lines.push(format!("  candidate version {candidate}"));
    }
    if let Some(standby) = d.standby {
        lines.push(format!("  standby version {standby}"));
    }
    if !d.arms.is_empty() {
        lines.push(format!("  arms {:?}", d.arms));
    }
    for event in &d.history {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(event.at).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
        lines.push(format!("  {at} {:<8} {}", event.action, event.detail));
    }
    lines.join("\n")
}

fn print(d: &Deployment, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(d)?);
    } else {
        println!("{}", describe(d));
    }
    Ok(())
}

fn traffic_table(traffic: &Traffic) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(["minute (UTC)", "version", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "mean reward", "rewards"]);
    for b in &traffic.buckets {
        let minute = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(b.start).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
        table.add_row([
            minute,
            b.version.to_string(),
            b.requests.to_string(),
            b.errors.to_string(),
            format!("{:.2}", b.p50_ms),
            format!("{:.2}", b.p95_ms),
            format!("{:.2}", b.p99_ms),
            b.mean_reward.map_or_else(|| "-".into(), |r| format!("{r:.3}")),
            b.rewards.to_string(),
        ]);
    }
    table.to_string()
}

pub fn deploy(args: &DeployArgs, client: &kiln::Client) -> anyhow::Result<()> {
    let request =
        Deploy { model_version: args.model_version, strategy: args.strategy, runner: args.runner.map(|r| r.name().to_owned()), expected_revision: None };
    let step = crate::progress::Step::start("deploy");
    step.message(format!("{}@{} ({}): starting the instance and waiting until it is ready", args.handle, args.model_version, args.strategy));
    match client.deploy(&args.handle, &request) {
        Ok(deployment) => {
            step.done(&format!("{}@{} serves ({})", args.handle, args.model_version, args.strategy));
            print(&deployment, args.json)
        }
        Err(error) => {
            step.fail();
            Err(error.into())
        }
    }
}

pub fn promote(handle: &str, client: &kiln::Client, json: bool) -> anyhow::Result<()> {
    print(&client.promote(handle)?, json)
}

pub fn rollback(handle: &str, client: &kiln::Client, json: bool) -> anyhow::Result<()> {
    print(&client.rollback(handle)?, json)
}

pub fn deployments(command: &DeploymentsCommand, client: &kiln::Client) -> anyhow::Result<()> {
    match command {
        DeploymentsCommand::List { json } => {
            let list = client.deployments()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for d in &list {
                    println!("{}", describe(d));
                }
            }
        }
        DeploymentsCommand::Show { handle, json } => print(&client.deployment(handle)?, *json)?,
        DeploymentsCommand::Traffic { handle, minutes, json } => {
            let since = chrono::Utc::now().timestamp_millis() - minutes * 60_000;
            let traffic = client.traffic(handle, since)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&traffic)?);
            } else {
                println!("{}", traffic_table(&traffic));
            }
        }
    }
    Ok(())
}

/// Runs the newest registered infer component of the handle, serving `model_version`, in
/// place of this process (so a signal to it reaches the component).
pub fn instance(args: &InstanceArgs, client: &kiln::Client) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let package = client
        .code_packages(&args.handle)?
        .into_iter()
        .filter(|p| p.role == Role::Infer)
        .max_by_key(|p| p.created_at)
        .with_context(|| format!("`{}` has no registered infer component", args.handle))?;
    let model = format!("{}@{}", args.handle, args.model_version);
    let mut env = vec![("KILN_SERVER".to_owned(), client.url().to_owned()), ("KILN_MODEL".to_owned(), model), ("KILN_LISTEN".to_owned(), args.listen.clone())];
    if let Some(token) = client.token() {
        env.push(("KILN_TOKEN".into(), token.to_owned()));
    }
    let runner = args.runner.unwrap_or_else(launch::default_runner);
    let mut cmd = match runner {
        Runner::Podman => {
            let image = launch::podman_image(&package)?;
            let mut cmd = launch::podman_run(&image)?;
            // A Unix socket is made inside the container: its folder is mounted at the same
            // path, so the socket appears where the caller looks for it.
            // The server's socket folder is open to the component whatever user it runs as
            // (see the gateway's instances). Rootless, the image's user would be some subuid
            // of ours, and the socket it makes one we could not connect to: keep our own uid.
            if let Some(folder) = args.listen.strip_prefix(kiln_api::oip::UNIX_SOCKET_PREFIX).and_then(|path| std::path::Path::new(path).parent()) {
                cmd.arg("-v").arg(format!("{0}:{0}", folder.display()));
                // SAFETY: geteuid(2) cannot fail.
                if unsafe { libc::geteuid() } != 0 {
                    cmd.arg("--userns=keep-id");
                }
            }
            for (k, v) in &env {
                cmd.arg("-e").arg(format!("{k}={v}"));
            }
            cmd.arg(image);
            cmd
        }
        Runner::Process => {
            let mut cmd = std::process::Command::new(launch::binary_of(&package, &crate::componentize::cache_root())?);
            cmd.envs(env);
            cmd
        }
    };
    let error = cmd.exec();
    bail!("starting the infer component ({}): {error}", runner.name())
}

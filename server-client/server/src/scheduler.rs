//! Fires schedules: once a second, claims the firings that are due and starts each one's
//! training workflow (`kiln run HANDLE …`, from the `kiln` binary the server runs in) with the
//! server's own URL and a token of its own, then records how it ended. The workflow runner
//! stays in the CLI; the server only starts it and knows no SDK.

use std::time::Duration;

use kiln_api::Schedule;
use tokio::sync::watch;

use crate::store::{Store, now_millis};

/// How to run the `kiln` binary: the program and any leading arguments. The scheduler adds
/// `run HANDLE …`; the gateway `instance HANDLE …`.
#[derive(Debug, Clone)]
pub struct KilnCommand(pub Vec<String>);

/// The name of the token the server's own children (scheduled workflows, inference
/// instances) use, made anew at every start: `kiln-server HOST ADDRESS`, so that servers
/// sharing one store each replace only their own.
pub fn token_name(addr: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
    format!("kiln-server {host} {addr}")
}

pub fn spawn(store: Store, command: KilnCommand, server_url: String, token: String, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match store.claim_due_schedules(now_millis()).await {
                Ok(due) => {
                    for schedule in due {
                        tokio::spawn(fire(store.clone(), schedule, command.clone(), server_url.clone(), token.clone()));
                    }
                }
                Err(error) => tracing::warn!(%error, "reading due schedules"),
            }
        }
    })
}

/// The arguments after the command for one firing.
fn arguments(schedule: &Schedule) -> Vec<String> {
    let mut args = vec!["run".to_owned(), schedule.handle.clone(), "--json".to_owned()];
    for (key, value) in &schedule.params {
        args.push("--param".into());
        args.push(format!("{key}={value}"));
    }
    if let Some(runner) = &schedule.runner {
        args.push("--runner".into());
        args.push(runner.clone());
    }
    args
}

async fn fire(store: Store, schedule: Schedule, command: KilnCommand, server_url: String, token: String) {
    let Some((program, leading)) = command.0.split_first() else { return };
    tracing::info!(schedule = %schedule.id, handle = %schedule.handle, "starting a scheduled workflow");
    let output = tokio::process::Command::new(program)
        .args(leading)
        .args(arguments(&schedule))
        .env("KILN_SERVER", &server_url)
        .env("KILN_TOKEN", &token)
        .env("KILN_SCHEDULE", &schedule.id)
        .env_remove("KILN_RUN_ID")
        .kill_on_drop(false)
        .output()
        .await;
    let (exit, run_id) = match output {
        Ok(output) => {
            let summary: Option<serde_json::Value> = serde_json::from_slice(&output.stdout).ok();
            let run_id = summary.as_ref().and_then(|s| s["run_id"].as_str()).map(str::to_owned);
            let exit = i64::from(output.status.code().unwrap_or(-1));
            if exit != 0 {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                tracing::warn!(schedule = %schedule.id, exit, last = %tail.into_iter().rev().collect::<Vec<_>>().join(" | "), "scheduled workflow failed");
            }
            (exit, run_id)
        }
        Err(error) => {
            tracing::warn!(schedule = %schedule.id, %error, "could not start the scheduled workflow");
            (-1, None)
        }
    };
    if let Err(error) = store.record_firing(&schedule.id, exit, run_id.as_deref()).await {
        tracing::warn!(schedule = %schedule.id, %error, "recording a firing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_firing_runs_the_workflow_with_its_parameters() {
        let schedule = Schedule {
            id: "s".into(),
            handle: "iris".into(),
            cron: "0 3 * * *".into(),
            params: [("epochs".to_owned(), "500".to_owned())].into(),
            runner: Some("process".into()),
            created_at: 0,
            next_at: 0,
            last_fired_at: None,
            last_exit: None,
            last_run_id: None,
        };
        assert_eq!(arguments(&schedule), ["run", "iris", "--json", "--param", "epochs=500", "--runner", "process"]);
    }
}

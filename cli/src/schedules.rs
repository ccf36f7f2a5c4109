//! `kiln schedule HANDLE --cron …` and `kiln schedules list|delete`: training workflows that
//! `kiln server` starts on a cron pattern (UTC; five fields, or six with seconds first).

use std::collections::BTreeMap;

use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use kiln::api::{CreateSchedule, Millis, Schedule};

#[derive(clap::Args)]
pub struct ScheduleArgs {
    handle: String,
    /// `0 3 * * *` (daily at 03:00 UTC), or with seconds first: `*/30 * * * * *`.
    #[arg(long)]
    cron: String,
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    params: Vec<String>,
    #[arg(long, value_parser = ["podman", "process"])]
    runner: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum SchedulesCommand {
    List {
        #[arg(long, default_value = "")]
        handle: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        id: String,
    },
}

fn time(millis: Option<Millis>) -> String {
    millis.and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis).map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn table(schedules: &[Schedule]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(["schedule", "handle", "cron", "params", "next", "last", "exit", "run"]);
    for s in schedules {
        let params: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        table.add_row([
            s.id[..8.min(s.id.len())].to_owned(),
            s.handle.clone(),
            s.cron.clone(),
            params.join(" "),
            time(Some(s.next_at)),
            time(s.last_fired_at),
            s.last_exit.map_or_else(|| "-".into(), |e| e.to_string()),
            s.last_run_id.as_deref().map_or("-", |r| &r[..8.min(r.len())]).to_owned(),
        ]);
    }
    table.to_string()
}

pub fn create(args: &ScheduleArgs, client: &kiln::Client) -> anyhow::Result<()> {
    let mut params = BTreeMap::new();
    for pair in &args.params {
        let (k, v) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("--param {pair}: write it as NAME=VALUE"))?;
        params.insert(k.to_owned(), v.to_owned());
    }
    let schedule = client.create_schedule(&CreateSchedule { handle: args.handle.clone(), cron: args.cron.clone(), params, runner: args.runner.clone() })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&schedule)?);
    } else {
        println!("schedule {} · `kiln run {}` at `{}` · next {}", schedule.id, schedule.handle, schedule.cron, time(Some(schedule.next_at)));
    }
    Ok(())
}

pub fn run(command: &SchedulesCommand, client: &kiln::Client) -> anyhow::Result<()> {
    match command {
        SchedulesCommand::List { handle, json } => {
            let schedules = client.schedules(handle)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&schedules)?);
            } else {
                println!("{}", table(&schedules));
            }
        }
        SchedulesCommand::Delete { id } => {
            client.delete_schedule(id)?;
            println!("deleted schedule {id}");
        }
    }
    Ok(())
}

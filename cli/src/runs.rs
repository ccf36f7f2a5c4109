//! `kiln experiments …` and `kiln runs list|show|compare`: tables for people, `--json` for
//! scripts.

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use kiln::api::{RunView, SearchRuns};

#[derive(Subcommand)]
pub enum ExperimentsCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Runs, newest first (or as ordered), with their params and latest metrics.
    List {
        /// Only runs of these experiments.
        #[arg(long = "experiment", short = 'e')]
        experiments: Vec<String>,
        /// e.g. "metrics.acc > 0.9 and params.lr = '0.01'".
        #[arg(long, default_value = "")]
        filter: String,
        /// e.g. "metrics.acc DESC"; repeatable.
        #[arg(long = "order-by")]
        order_by: Vec<String>,
        #[arg(long, default_value_t = 50)]
        max: u32,
        #[arg(long)]
        json: bool,
    },
    /// One run: params, latest metrics, tags, artifacts.
    Show {
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Runs side by side: one row per param and metric, one column per run.
    Compare {
        #[arg(required = true, num_args = 2..)]
        runs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The look of every table the CLI prints.
pub fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn experiments(client: &kiln::Client, command: &ExperimentsCommand) -> anyhow::Result<()> {
    match command {
        ExperimentsCommand::List { json } => {
            let experiments = client.experiments()?;
            if *json {
                return print_json(&experiments);
            }
            let mut out = table();
            out.set_header(["id", "name"]);
            for experiment in experiments {
                out.add_row([experiment.id, experiment.name]);
            }
            println!("{out}");
        }
    }
    Ok(())
}

pub fn run(client: &kiln::Client, command: &RunsCommand) -> anyhow::Result<()> {
    match command {
        RunsCommand::List { experiments, filter, order_by, max, json } => {
            let page = client.search_runs(&SearchRuns {
                experiments: experiments.clone(),
                filter: filter.clone(),
                order_by: order_by.clone(),
                max_results: Some(*max),
                ..Default::default()
            })?;
            if *json {
                return print_json(&page);
            }
            println!("{}", list_table(&page.runs));
            if page.next_page_token.is_some() {
                eprintln!("kiln: more runs match; raise --max to see them");
            }
        }
        RunsCommand::Show { run, json } => {
            let view = client.run(run).with_context(|| format!("fetching run {run}"))?;
            if *json {
                return print_json(&view);
            }
            println!("{}", show_table(&view));
        }
        RunsCommand::Compare { runs, json } => {
            let views = runs.iter().map(|id| client.run(id).with_context(|| format!("fetching run {id}"))).collect::<anyhow::Result<Vec<_>>>()?;
            if *json {
                return print_json(&views);
            }
            println!("{}", compare_table(&views));
        }
    }
    Ok(())
}

pub fn list_table(runs: &[RunView]) -> Table {
    let mut out = table();
    out.set_header(["run", "name", "status", "params", "metrics"]);
    for view in runs {
        let params: Vec<String> = view.params.iter().map(|p| format!("{}={}", p.key, p.value)).collect();
        let metrics: Vec<String> = view.metrics.iter().map(|m| format!("{}={}", m.key, m.value)).collect();
        out.add_row([
            view.run.id[..8.min(view.run.id.len())].to_owned(),
            view.run.name.clone(),
            view.run.status.as_str().to_owned(),
            params.join(" "),
            metrics.join(" "),
        ]);
    }
    out
}

pub fn show_table(view: &RunView) -> Table {
    let mut out = table();
    out.set_header(["", "key", "value"]);
    out.add_row(["run", "id", &view.run.id]);
    out.add_row(["run", "name", &view.run.name]);
    out.add_row(["run", "status", view.run.status.as_str()]);
    out.add_row(["run", "source", view.run.source.as_str()]);
    for p in &view.params {
        out.add_row(["param", &p.key, &p.value]);
    }
    for m in &view.metrics {
        out.add_row(["metric", &m.key, &format!("{} (step {})", m.value, m.step)]);
    }
    for t in &view.tags {
        out.add_row(["tag", &t.key, &t.value]);
    }
    for a in &view.artifacts {
        out.add_row(["artifact", &a.path, &format!("{} · {} bytes · sha256:{}", a.media_type, a.size, &a.sha256[..12])]);
    }
    out
}

/// One row per param and metric key found in any of the runs; a blank where a run lacks it.
pub fn compare_table(views: &[RunView]) -> Table {
    let mut out = table();
    let mut header = vec![String::new()];
    header.extend(views.iter().map(|v| format!("{} ({})", v.run.name, &v.run.id[..8.min(v.run.id.len())])));
    out.set_header(header);
    let mut params: Vec<&str> = views.iter().flat_map(|v| v.params.iter().map(|p| p.key.as_str())).collect();
    params.sort_unstable();
    params.dedup();
    let mut metrics: Vec<&str> = views.iter().flat_map(|v| v.metrics.iter().map(|m| m.key.as_str())).collect();
    metrics.sort_unstable();
    metrics.dedup();
    for key in params {
        let mut row = vec![format!("params.{key}")];
        row.extend(views.iter().map(|v| v.params.iter().find(|p| p.key == key).map(|p| p.value.clone()).unwrap_or_default()));
        out.add_row(row);
    }
    for key in metrics {
        let mut row = vec![format!("metrics.{key}")];
        row.extend(views.iter().map(|v| v.metrics.iter().find(|m| m.key == key).map(|m| m.value.to_string()).unwrap_or_default()));
        out.add_row(row);
    }
    out
}

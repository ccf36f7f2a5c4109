//! `kiln models list|show` and `kiln lineage MODEL@VERSION`.

use anyhow::Context;
use clap::Subcommand;
use kiln::api::Lineage;

use crate::runs::table;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Registered models with their latest version and aliases.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One model's versions: source, run, aliases.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

pub fn run(client: &kiln::Client, command: &ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List { json } => {
            let models = client.models()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&models)?);
                return Ok(());
            }
            let mut out = table();
            out.set_header(["model", "latest", "aliases"]);
            for model in models {
                let aliases: Vec<String> = model.aliases.iter().map(|a| format!("{}→v{}", a.alias, a.version)).collect();
                out.add_row([model.name, model.latest_version.map_or("-".into(), |v| format!("v{v}")), aliases.join(" ")]);
            }
            println!("{out}");
        }
        ModelsCommand::Show { name, json } => {
            let versions = client.model_versions(name).with_context(|| format!("model {name}"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&versions)?);
                return Ok(());
            }
            let mut out = table();
            out.set_header(["version", "aliases", "run", "source"]);
            for version in versions {
                out.add_row([
                    format!("v{}", version.version),
                    version.aliases.join(" "),
                    version.run_id.as_deref().map(short).unwrap_or("-").to_owned(),
                    version.source,
                ]);
            }
            println!("{out}");
        }
    }
    Ok(())
}

/// `MODEL@3`, `MODEL@v3` or `MODEL@champion`.
/// `MODEL@VERSION` or `MODEL@ALIAS`, checked by clap, so a malformed one is a usage error.
#[derive(Debug, Clone)]
pub struct Reference {
    pub model: String,
    /// The part after `@`: a version number (`3`, `v3`) or an alias.
    pub selector: String,
}

pub fn parse_reference(text: &str) -> Result<Reference, String> {
    match text.rsplit_once('@') {
        Some((model, selector)) if !model.is_empty() && !selector.is_empty() => Ok(Reference { model: model.into(), selector: selector.into() }),
        _ => Err(format!("'{text}' is not MODEL@VERSION (e.g. visual_recognition@3 or visual_recognition@champion)")),
    }
}

pub fn lineage(client: &kiln::Client, reference: &Reference, json: bool) -> anyhow::Result<()> {
    let (name, selector) = (reference.model.as_str(), reference.selector.as_str());
    let number = selector.strip_prefix('v').unwrap_or(selector).parse::<i64>();
    let version = match number {
        Ok(version) => version,
        Err(_) => client.version_by_alias(name, selector).with_context(|| format!("alias {name}@{selector}"))?.version,
    };
    let lineage = client.lineage(name, version)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&lineage)?);
    } else {
        print!("{}", render(&lineage));
    }
    Ok(())
}

/// The lineage as an indented tree.
pub fn render(lineage: &Lineage) -> String {
    let v = &lineage.model_version;
    let mut out = format!("model {}@v{}", v.name, v.version);
    if !v.aliases.is_empty() {
        out.push_str(&format!(" ({})", v.aliases.join(", ")));
    }
    out.push_str(&format!("\n  source {}\n", v.source));
    let Some(run) = &lineage.run else {
        out.push_str("  no run recorded\n");
        return out;
    };
    out.push_str(&format!("  run {} \"{}\" {} ({})\n", run.run.id, run.run.name, run.run.status.as_str(), run.run.source.as_str()));
    for p in &run.params {
        out.push_str(&format!("    param {} = {}\n", p.key, p.value));
    }
    for m in &run.metrics {
        out.push_str(&format!("    metric {} = {} (step {})\n", m.key, m.value, m.step));
    }
    for d in &lineage.datasets_read {
        let rows = d.rows.map(|r| format!(", {r} rows")).unwrap_or_default();
        let from = d.run_id.as_deref().map(|r| format!(", made by run {}", short(r))).unwrap_or_default();
        out.push_str(&format!("    read dataset {} {} ({} bytes{rows}{from})\n", d.name, short(&d.fingerprint), d.size));
    }
    for d in &lineage.datasets_produced {
        out.push_str(&format!("    produced dataset {} {}\n", d.name, short(&d.fingerprint)));
    }
    for c in &lineage.code_packages {
        out.push_str(&format!(
            "    ran {} {} {} ({})\n",
            c.role.as_str(),
            c.image,
            &c.digest[..c.digest.len().min(19)],
            c.git_commit.as_deref().unwrap_or("no git commit")
        ));
    }
    let version = lineage.model_version.version;
    for d in &lineage.deployments {
        let role = if d.stable == version {
            "stable"
        } else if d.candidate == Some(version) {
            "candidate"
        } else if d.standby == Some(version) {
            "standby"
        } else {
            "arm"
        };
        out.push_str(&format!("  served by deployment {} ({}, {role})\n", d.handle, d.strategy));
    }
    out
}

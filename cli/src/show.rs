//! `kiln show NOTEBOOK.ipynb`: the componentizer's analysis, for people or (`--json`) for the
//! extension. Exits 1 when the notebook has problems, so CI can gate on it.

use std::path::Path;

use anyhow::{Context, bail};
use kiln_componentize::analysis::{analyse, render};
use kiln_componentize::notebook::Notebook;

pub fn run(path: &Path, json: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let notebook = Notebook::parse(&text).with_context(|| path.display().to_string())?;
    let analysis = analyse(&notebook);
    if json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        print!("{}", render(&analysis));
    }
    if !analysis.diagnostics.is_empty() {
        bail!("{}: {} problem(s)", path.display(), analysis.diagnostics.len());
    }
    Ok(())
}

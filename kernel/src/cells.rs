//! What the kernel remembers about each notebook cell it ran.
//!
//! JupyterLab sends the cell's whole metadata (its `tags` included) and its `cellId` with every
//! execute_request. Kiln keeps, per cell, the last source that actually ran, its tags, its
//! outcome and the variables it defined with their compiler-inferred types, so the
//! componentizer can work from what ran rather than from what is saved on disk. Clients that
//! send no metadata (nbclient, papermill) tag a cell with a first-line directive instead:
//! `// kiln: train` (several tags separated by commas or spaces).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Error,
    Aborted,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellRecord {
    pub cell_id: String,
    pub source: String,
    pub tags: Vec<String>,
    pub outcome: Outcome,
    pub execution_count: u32,
    /// Variables this run defined or re-typed: name → Rust type.
    pub variables: BTreeMap<String, String>,
}

/// The last run of every cell, in the order cells last ran.
#[derive(Default)]
pub struct CellBook {
    records: Vec<CellRecord>,
}

impl CellBook {
    pub fn record(&mut self, record: CellRecord) {
        self.records.retain(|r| r.cell_id != record.cell_id);
        self.records.push(record);
    }

    pub fn all(&self) -> &[CellRecord] {
        &self.records
    }
}

/// The cell's id from the request metadata; requests without one are keyed by their count.
pub fn cell_id(metadata: &Value, execution_count: u32) -> String {
    match metadata.get("cellId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("execution-{execution_count}"),
    }
}

/// Tells the runtime child which cell runs now (`kiln_protocol::markers::running_cell`):
/// the frontend's `cellId`, or nothing for a request without one (a console, a test client).
/// Best effort: a run started in a cell that could not be noted is simply not linked to it.
pub fn note_running(metadata: &Value) {
    let Some(path) = std::env::var_os(kiln_protocol::markers::CELL_FILE_ENV) else { return };
    let id = metadata.get("cellId").and_then(Value::as_str).unwrap_or("");
    if let Err(error) = std::fs::write(&path, id) {
        tracing::debug!(%error, "the running cell's id could not be written");
    }
}

/// Tags from the cell metadata, then from the cell's directive (`kiln_protocol::directive`);
/// without duplicates.
pub fn tags(metadata: &Value, code: &str) -> Vec<String> {
    let mut tags: Vec<String> =
        metadata.get("tags").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default();
    for tag in kiln_protocol::directive::tags(code) {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_tags_come_first_and_merge() {
        let md = json!({ "tags": ["parameters", "train"], "cellId": "abc" });
        assert_eq!(tags(&md, "// kiln: train, data"), ["parameters", "train", "data"]);
        assert_eq!(cell_id(&md, 3), "abc");
        assert_eq!(cell_id(&json!({}), 3), "execution-3");
    }

    #[test]
    fn a_cell_keeps_only_its_last_run() {
        let mut book = CellBook::default();
        let rec = |id: &str, n| CellRecord {
            cell_id: id.into(),
            source: format!("run {n}"),
            tags: vec![],
            outcome: Outcome::Ok,
            execution_count: n,
            variables: BTreeMap::new(),
        };
        book.record(rec("a", 1));
        book.record(rec("b", 2));
        book.record(rec("a", 3));
        let ids: Vec<_> = book.all().iter().map(|r| (r.cell_id.as_str(), r.execution_count)).collect();
        assert_eq!(ids, [("b", 2), ("a", 3)]);
    }
}

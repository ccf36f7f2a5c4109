//! Types as the Kiln kernel recorded them when the notebook ran: the `cells` answer of the
//! kernel's `kiln` comm (each cell's last source that ran, its outcome and the variables it
//! defined with their types). Where a cell's recorded source is the cell's source now, its
//! types are the ones the notebook really had, and the probe need not ask the compiler.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::notebook::Cell;

#[derive(Debug, thiserror::Error)]
#[error("kernel cell records: {0}")]
pub struct KernelCellsError(String);

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CellRecord {
    pub cell_id: String,
    pub source: String,
    /// `ok`, `error`, `aborted`.
    pub outcome: String,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// The kernel's records of the cells it ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelCells {
    pub records: Vec<CellRecord>,
}

impl KernelCells {
    /// The comm's answer (`{"cells": [...]}`) or the bare list.
    pub fn parse(json: &str) -> Result<KernelCells, KernelCellsError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Answer { cells: Vec<CellRecord> },
            List(Vec<CellRecord>),
        }
        match serde_json::from_str::<Shape>(json).map_err(|e| KernelCellsError(e.to_string()))? {
            Shape::Answer { cells } | Shape::List(cells) => Ok(KernelCells { records: cells }),
        }
    }

    /// The variables `cell` defined when it last ran successfully with its current source
    /// (matched by cell id, else by source: nbclient and papermill send no ids).
    pub fn variables(&self, cell: &Cell) -> Option<&BTreeMap<String, String>> {
        let ran = |r: &&CellRecord| r.outcome == "ok" && r.source == cell.source;
        let by_id = cell.id.as_deref().and_then(|id| self.records.iter().rev().filter(ran).find(|r| r.cell_id == id));
        by_id.or_else(|| self.records.iter().rev().find(ran)).map(|r| &r.variables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_match_by_id_or_source_and_only_when_they_ran_as_they_are() {
        let json = r#"{"cells": [
            {"cell_id": "a", "source": "let x = 1;", "tags": [], "outcome": "ok", "execution_count": 1, "variables": {"x": "i32"}},
            {"cell_id": "exec-2", "source": "let y = 2.0;", "tags": [], "outcome": "ok", "execution_count": 2, "variables": {"y": "f64"}},
            {"cell_id": "c", "source": "let z = oops;", "tags": [], "outcome": "error", "execution_count": 3, "variables": {}}
        ]}"#;
        let cells = KernelCells::parse(json).unwrap();
        let cell = |id: &str, source: &str| Cell { index: 0, id: Some(id.into()), source: source.into(), tags: vec![] };
        assert_eq!(cells.variables(&cell("a", "let x = 1;")).unwrap()["x"], "i32");
        assert!(cells.variables(&cell("a", "let x = 2;")).is_none(), "edited since it ran");
        assert_eq!(cells.variables(&cell("b", "let y = 2.0;")).unwrap()["y"], "f64");
        assert!(cells.variables(&cell("c", "let z = oops;")).is_none(), "failed");
        assert!(KernelCells::parse("{\"cells\": 3}").is_err());
    }
}

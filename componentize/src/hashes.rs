//! What an image says it was built from: the notebook's code, each cell, the lock file.
//!
//! The notebook hash covers what runs — each code cell's source and tags, in order — and
//! not outputs or execution counts, so running the notebook again does not change the images.

use sha2::{Digest, Sha256};

use crate::analysis::Analysis;
use crate::notebook::{Cell, Notebook};
use crate::tags::Step;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn cell_bytes(cell: &Cell) -> Vec<u8> {
    let mut tags = cell.tags.clone();
    tags.sort();
    serde_json::to_vec(&serde_json::json!({ "source": cell.source, "tags": tags })).unwrap_or_default()
}

/// sha256 of one cell's source and tags.
pub fn cell_sha256(cell: &Cell) -> String {
    sha256_hex(&cell_bytes(cell))
}

/// sha256 over every code cell's source and tags, in order.
pub fn notebook_sha256(notebook: &Notebook) -> String {
    let mut hasher = Sha256::new();
    for cell in &notebook.cells {
        let bytes = cell_bytes(cell);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The cells that go into `role`'s component (setup and parameters are in all three),
/// with their hashes, in notebook order.
pub fn component_cells(analysis: &Analysis, role: Step) -> Vec<(usize, String)> {
    let steps: &[Step] = match role {
        Step::Data => &[Step::Setup, Step::Parameters, Step::Data],
        Step::Train => &[Step::Setup, Step::Parameters, Step::Data, Step::Train],
        _ => &[Step::Setup, Step::Parameters, Step::Data, Step::Train, Step::Infer],
    };
    analysis.cells.iter().filter(|c| steps.contains(&c.step)).map(|c| (c.cell.index, cell_sha256(&c.cell))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_do_not_count_but_code_and_tags_do() {
        let cell = |source: &str, tags: &[&str]| Cell { index: 0, id: Some("a".into()), source: source.into(), tags: tags.iter().map(|t| t.to_string()).collect() };
        let nb = |cells: Vec<Cell>| Notebook { kernel: "kiln".into(), cells };
        let base = notebook_sha256(&nb(vec![cell("let x = 1;", &["data"])]));
        assert_eq!(base, notebook_sha256(&nb(vec![cell("let x = 1;", &["data"])])));
        assert_ne!(base, notebook_sha256(&nb(vec![cell("let x = 2;", &["data"])])));
        assert_ne!(base, notebook_sha256(&nb(vec![cell("let x = 1;", &["train"])])));
        assert_eq!(cell_sha256(&cell("a", &["x", "y"])), cell_sha256(&cell("a", &["y", "x"])));
    }
}

//! What an image says it was built from: the notebook's code, each cell, the lock file.
//!
//! The notebook hash covers what runs — each code cell's source and tags, in order — and
//! not outputs or execution counts, so running the notebook again does not change the images.

use sha2::{Digest, Sha256};

use crate::analysis::Analysis;
use crate::notebook::{Cell, Notebook};
use crate::tags::Step;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
    hex::encode(hasher.finalize())
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
    fn code_and_tags_count_and_the_order_of_tags_does_not() {
        let cell =
            |source: &str, tags: &[&str]| Cell { index: 0, id: Some("a".into()), source: source.into(), tags: tags.iter().map(|t| t.to_string()).collect() };
        let nb = |cells: Vec<Cell>| Notebook { kernel: "kiln".into(), cells };
        let base = notebook_sha256(&nb(vec![cell("let x = 1;", &["data"])]));
        assert_eq!(base, notebook_sha256(&nb(vec![cell("let x = 1;", &["data"])])));
        assert_ne!(base, notebook_sha256(&nb(vec![cell("let x = 2;", &["data"])])));
        assert_ne!(base, notebook_sha256(&nb(vec![cell("let x = 1;", &["train"])])));
        assert_eq!(cell_sha256(&cell("a", &["x", "y"])), cell_sha256(&cell("a", &["y", "x"])));
    }

    /// A notebook as Jupyter saves it, with `outputs`, `count` and `extra` cell metadata.
    fn saved(source: &str, tags: &str, count: &str, outputs: &str, extra: &str) -> String {
        format!(
            r#"{{"nbformat": 4, "nbformat_minor": 5,
                "metadata": {{"kernelspec": {{"name": "kiln", "language": "rust"}}}},
                "cells": [
                  {{"cell_type": "markdown", "id": "m", "metadata": {{}}, "source": "notes"}},
                  {{"cell_type": "code", "id": "c1", "metadata": {{"tags": {tags}{extra}}},
                    "execution_count": {count}, "outputs": {outputs}, "source": {source:?}}}
                ]}}"#
        )
    }

    #[test]
    fn a_notebook_run_again_hashes_the_same() {
        let hash = |json: String| notebook_sha256(&Notebook::parse(&json).expect("a valid notebook"));
        let base = hash(saved("let x = 1;", r#"["data"]"#, "null", "[]", ""));
        let stream = r#"[{"output_type": "stream", "name": "stdout", "text": "hi\n"}]"#;
        let result = r#"[{"output_type": "execute_result", "execution_count": 7, "data": {"text/plain": "1"}, "metadata": {}}]"#;
        // (what changed, the notebook, whether the hash must change)
        let cases = [
            ("run: count and a stream output", saved("let x = 1;", r#"["data"]"#, "3", stream, ""), false),
            ("run again: another count and a result", saved("let x = 1;", r#"["data"]"#, "7", result, ""), false),
            ("cell collapsed in the UI", saved("let x = 1;", r#"["data"]"#, "null", "[]", r#", "collapsed": true"#), false),
            ("the code", saved("let x = 2;", r#"["data"]"#, "null", "[]", ""), true),
            ("a tag", saved("let x = 1;", r#"["train"]"#, "null", "[]", ""), true),
        ];
        for (what, json, changes) in cases {
            assert_eq!(hash(json) != base, changes, "{what}");
        }
    }
}

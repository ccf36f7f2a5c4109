//! A typed nbformat v4 model: the parts Kiln reads, with errors that say what is wrong.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    #[error("not a notebook: {0}")]
    Json(#[from] serde_json::Error),
    #[error("nbformat {major}.{minor} is not supported: open and save it in JupyterLab to convert it to v4")]
    Version { major: u64, minor: u64 },
    #[error("the notebook's kernel is '{kernel}' ({language}); Kiln componentizes Rust notebooks (kernel 'kiln' or 'rust')")]
    NotRust { kernel: String, language: String },
}

#[derive(Debug, Clone, Deserialize)]
struct Raw {
    nbformat: u64,
    #[serde(default)]
    nbformat_minor: u64,
    #[serde(default)]
    metadata: serde_json::Value,
    #[serde(default)]
    cells: Vec<RawCell>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawCell {
    cell_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    source: Source,
    #[serde(default)]
    metadata: serde_json::Value,
}

/// nbformat stores source as one string or as a list of lines.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
enum Source {
    #[default]
    Empty,
    Text(String),
    Lines(Vec<String>),
}

impl Source {
    fn text(self) -> String {
        match self {
            Source::Empty => String::new(),
            Source::Text(text) => text,
            Source::Lines(lines) => lines.concat(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notebook {
    pub kernel: String,
    pub cells: Vec<Cell>,
}

/// A code cell: its position among all cells, its id (nbformat ≥ 4.5), source and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub index: usize,
    pub id: Option<String>,
    pub source: String,
    pub tags: Vec<String>,
}

impl Cell {
    /// `cell 3 (id "a1b2")`: how diagnostics name a cell.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("cell {} (id {id})", self.index),
            None => format!("cell {}", self.index),
        }
    }
}

impl Notebook {
    /// Parses notebook JSON; only code cells are kept (markdown explains, it does not run).
    pub fn parse(json: &str) -> Result<Notebook, NotebookError> {
        let raw: Raw = serde_json::from_str(json)?;
        if raw.nbformat != 4 {
            return Err(NotebookError::Version { major: raw.nbformat, minor: raw.nbformat_minor });
        }
        let kernel = raw.metadata["kernelspec"]["name"].as_str().unwrap_or("").to_owned();
        let language = raw.metadata["kernelspec"]["language"].as_str().or_else(|| raw.metadata["language_info"]["name"].as_str()).unwrap_or("").to_owned();
        if !language.eq_ignore_ascii_case("rust") {
            return Err(NotebookError::NotRust { kernel, language });
        }
        let cells = raw
            .cells
            .into_iter()
            .enumerate()
            .filter(|(_, cell)| cell.cell_type == "code")
            .map(|(index, cell)| {
                let tags = cell.metadata["tags"].as_array().map(|t| t.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
                Cell { index, id: cell.id, source: cell.source.text(), tags }
            })
            .collect();
        Ok(Notebook { kernel, cells })
    }
}

//! A problem found in a notebook, named by cell and line so the researcher can go there.

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The cell's index among all cells; `None` for a problem of the notebook as a whole.
    pub cell: Option<usize>,
    pub cell_id: Option<String>,
    /// 1-based line in the cell; 0 when the problem is the cell as a whole.
    pub line: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn notebook(message: impl Into<String>) -> Diagnostic {
        Diagnostic { cell: None, cell_id: None, line: 0, message: message.into() }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.cell_id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default();
        match self.cell {
            None => write!(f, "notebook: {}", self.message),
            Some(cell) if self.line == 0 => write!(f, "cell {cell}{id}: {}", self.message),
            Some(cell) => write!(f, "cell {cell}{id}, line {}: {}", self.line, self.message),
        }
    }
}

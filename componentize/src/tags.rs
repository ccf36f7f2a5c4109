//! Cell tags → steps. Kiln's own names, Kale's and papermill's spellings of the same ideas,
//! and the cell's `// kiln: train` directive (read by `kiln_protocol::directive`, as the kernel
//! reads it) for clients that send no cell metadata.

use crate::notebook::Cell;

/// What a cell is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// `:dep` lines, `use`, helper fns and types: shared by every component.
    Setup,
    /// Literal `let` bindings, overridable at run time.
    Parameters,
    Data,
    Train,
    Infer,
    /// Left out on purpose.
    Skip,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Setup => "setup",
            Step::Parameters => "parameters",
            Step::Data => "data",
            Step::Train => "train",
            Step::Infer => "infer",
            Step::Skip => "skip",
        }
    }

    /// The steps in pipeline order; a step may use what an earlier one defines.
    pub fn rank(self) -> u8 {
        match self {
            Step::Setup => 0,
            Step::Parameters => 1,
            Step::Data => 2,
            Step::Train => 3,
            Step::Infer => 4,
            Step::Skip => 5,
        }
    }
}

/// The step a tag names, or `None` for tags Kiln does not use (other tools' tags).
pub fn step_of_tag(tag: &str) -> Option<Step> {
    Some(match tag.trim().to_ascii_lowercase().as_str() {
        "setup" | "imports" | "functions" => Step::Setup,
        "parameters" | "pipeline-parameters" => Step::Parameters,
        "data" => Step::Data,
        "train" => Step::Train,
        "infer" | "inference" => Step::Infer,
        "skip" => Step::Skip,
        _ => return None,
    })
}

/// A cell's steps: from its metadata tags and its directive, deduplicated, in pipeline order.
pub fn steps_of(cell: &Cell) -> Vec<Step> {
    let mut steps: Vec<Step> = cell.tags.iter().cloned().chain(kiln_protocol::directive::tags(&cell.source)).filter_map(|t| step_of_tag(&t)).collect();
    steps.sort();
    steps.dedup();
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_directives() {
        let cell = |tags: &[&str], source: &str| Cell { index: 0, id: None, source: source.into(), tags: tags.iter().map(|t| t.to_string()).collect() };
        assert_eq!(steps_of(&cell(&["imports"], "use a;")), [Step::Setup]);
        assert_eq!(steps_of(&cell(&["pipeline-parameters"], "let lr = 0.1;")), [Step::Parameters]);
        assert_eq!(steps_of(&cell(&[], "// kiln: train\nfit();")), [Step::Train]);
        assert_eq!(steps_of(&cell(&["Data"], "// kiln: data")), [Step::Data]);
        // The kernel's rule too: the first non-blank line, either comment form.
        assert_eq!(steps_of(&cell(&[], "\n//| kiln: data\nlet x = 1;")), [Step::Data]);
        assert_eq!(steps_of(&cell(&[], "\n  // kiln: train, skip\nfit();")), [Step::Train, Step::Skip]);
        assert_eq!(steps_of(&cell(&[], "fit();\n// kiln: train")), []);
        assert_eq!(steps_of(&cell(&["papermill-error-cell-tag", "block:x"], "x")), []);
        assert_eq!(steps_of(&cell(&["train", "skip"], "x")), [Step::Train, Step::Skip]);
    }
}

//! The `// kiln: data, skip` directive: a cell's tags written in its source, for clients that
//! send no cell metadata (nbclient, papermill) and for readers of the notebook as text.
//!
//! The rule: the directive stands on the cell's first non-blank line (notebook cells often
//! start with an empty line), as a line comment in either form (`//` or Quarto's `//|`),
//! tags separated by commas, spaces or tabs. Anywhere else it is an ordinary comment.

/// The tags a cell's directive names, in order; empty when it has none.
pub fn tags(source: &str) -> Vec<String> {
    match list(source) {
        Some(list) => list.split([',', ' ', '\t']).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        None => Vec::new(),
    }
}

/// The 0-based index of the line holding the cell's directive, if it has one.
pub fn line(source: &str) -> Option<usize> {
    let (index, first) = source.lines().enumerate().find(|(_, l)| !l.trim().is_empty())?;
    directive_list(first).map(|_| index)
}

fn list(source: &str) -> Option<&str> {
    directive_list(source.lines().find(|l| !l.trim().is_empty())?)
}

/// What follows `kiln:` on a directive line; `None` for any other line. Other `// kiln: …`
/// comments (`input`, `register when`, `promote`) are not tag directives: they name no tag
/// and are told apart by the componentizer, which reads them where they stand.
fn directive_list(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("//")?;
    let rest = rest.strip_prefix('|').unwrap_or(rest).trim_start();
    rest.strip_prefix("kiln:").map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_cells() {
        let cases: &[(&str, &[&str], Option<usize>)] = &[
            ("// kiln: train\nlet x = 1;", &["train"], Some(0)),
            ("//kiln:infer", &["infer"], Some(0)),
            ("//| kiln: data, skip", &["data", "skip"], Some(0)),
            ("//|kiln: data", &["data"], Some(0)),
            ("\n//| kiln: data", &["data"], Some(1)),
            ("\n  \n\t// kiln: setup,skip\nuse a;", &["setup", "skip"], Some(2)),
            ("// kiln:\tdata\ttrain", &["data", "train"], Some(0)),
            ("// kiln: data,, train ,", &["data", "train"], Some(0)),
            ("\r\n// kiln: data\r\n", &["data"], Some(1)),
            ("let x = 1; // kiln: train", &[], None),
            ("let x = 1;\n// kiln: train", &[], None),
            ("/* kiln: train */", &[], None),
            ("/// kiln: train", &[], None),
            ("// kilns: train", &[], None),
            ("// Kiln: train", &[], None),
            ("", &[], None),
            ("\n\n", &[], None),
        ];
        for (source, expected, at) in cases {
            assert_eq!(tags(source), *expected, "{source:?}");
            assert_eq!(line(source), *at, "{source:?}");
        }
    }
}

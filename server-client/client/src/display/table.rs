//! Tables rendered as HTML (for JupyterLab) with a plain-text twin (for logs and nbconvert).

use super::MimeBundle;

/// How many rows are shown before the middle of a long table is elided, as polars does.
const HEAD_ROWS: usize = 10;
const TAIL_ROWS: usize = 5;

/// A table of already formatted cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    /// One type name per column, shown under the header (e.g. polars dtypes); may be empty.
    pub dtypes: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Total number of rows when `rows` holds only some of them.
    pub height: usize,
    /// Plain-text rendering; generated from the cells when empty.
    pub text: String,
}

impl Table {
    pub fn new(columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Table { columns: columns.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    pub fn row(mut self, cells: impl IntoIterator<Item = impl ToString>) -> Self {
        self.rows.push(cells.into_iter().map(|c| c.to_string()).collect());
        self.height = self.height.max(self.rows.len());
        self
    }

    pub fn to_bundle(&self) -> MimeBundle {
        MimeBundle::html(self.to_html(), if self.text.is_empty() { self.to_text() } else { self.text.clone() })
    }

    pub fn to_html(&self) -> String {
        let mut html = String::from("<div class=\"kiln-table\">");
        html.push_str(&format!("<small>shape: ({}, {})</small><table class=\"dataframe\"><thead><tr>", self.height, self.columns.len()));
        for column in &self.columns {
            html.push_str(&format!("<th>{}</th>", escape(column)));
        }
        html.push_str("</tr>");
        if !self.dtypes.is_empty() {
            html.push_str("<tr>");
            for dtype in &self.dtypes {
                html.push_str(&format!("<td>{}</td>", escape(dtype)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</thead><tbody>");
        let shown = self.shown_rows();
        for row in shown {
            html.push_str("<tr>");
            match row {
                Some(cells) => {
                    for cell in cells {
                        html.push_str(&format!("<td>{}</td>", escape(cell)));
                    }
                }
                None => {
                    for _ in &self.columns {
                        html.push_str("<td>&hellip;</td>");
                    }
                }
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
        html
    }

    pub fn to_text(&self) -> String {
        let shown = self.shown_rows();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for (i, dtype) in self.dtypes.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(dtype.chars().count());
            }
        }
        for cells in shown.iter().flatten() {
            for (i, cell) in cells.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = widths.iter().enumerate().map(|(i, w)| format!("{:w$}", cells.get(i).map(String::as_str).unwrap_or(""))).collect();
            format!("| {} |", padded.join(" | "))
        };
        let rule = format!("+{}+", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
        let mut out = vec![format!("shape: ({}, {})", self.height, self.columns.len()), rule.clone(), line(&self.columns)];
        if !self.dtypes.is_empty() {
            out.push(line(&self.dtypes));
        }
        out.push(rule.clone());
        for row in shown {
            match row {
                Some(cells) => out.push(line(cells)),
                None => out.push(line(&vec!["…".to_owned(); self.columns.len()])),
            }
        }
        out.push(rule);
        out.join("\n")
    }

    /// The rows to show; `None` marks the elided middle.
    fn shown_rows(&self) -> Vec<Option<&Vec<String>>> {
        if self.rows.len() <= HEAD_ROWS + TAIL_ROWS {
            let mut rows: Vec<_> = self.rows.iter().map(Some).collect();
            if self.height > self.rows.len() {
                rows.push(None);
            }
            return rows;
        }
        let mut rows: Vec<_> = self.rows[..HEAD_ROWS].iter().map(Some).collect();
        rows.push(None);
        rows.extend(self.rows[self.rows.len() - TAIL_ROWS..].iter().map(Some));
        rows
    }

    /// A DataFrame as a table: its first and last rows, dtypes under the header, and polars'
    /// own text rendering as the plain-text twin.
    #[cfg(feature = "polars")]
    pub fn from_polars(df: &polars::prelude::DataFrame) -> Table {
        let height = df.height();
        let pick: Vec<usize> = if height <= HEAD_ROWS + TAIL_ROWS { (0..height).collect() } else { (0..HEAD_ROWS).chain(height - TAIL_ROWS..height).collect() };
        let columns = df.columns();
        let rows = pick.iter().map(|&r| columns.iter().map(|c| c.get(r).map(|v| v.to_string()).unwrap_or_default()).collect()).collect();
        Table {
            columns: columns.iter().map(|c| c.name().to_string()).collect(),
            dtypes: columns.iter().map(|c| c.dtype().to_string()).collect(),
            rows,
            height,
            text: format!("{df}"),
        }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_table_renders_every_row() {
        let t = Table::new(["name", "score"]).row(["a<b", "1"]).row(["c", "22"]);
        expect_test::expect![[r#"
            shape: (2, 2)
            +------+-------+
            | name | score |
            +------+-------+
            | a<b  | 1     |
            | c    | 22    |
            +------+-------+"#]]
        .assert_eq(&t.to_text());
        expect_test::expect![[r#"<div class="kiln-table"><small>shape: (2, 2)</small><table class="dataframe"><thead><tr><th>name</th><th>score</th></tr></thead><tbody><tr><td>a&lt;b</td><td>1</td></tr><tr><td>c</td><td>22</td></tr></tbody></table></div>"#]]
            .assert_eq(&t.to_html());
    }

    #[test]
    fn long_table_elides_the_middle() {
        let mut t = Table::new(["i"]);
        for i in 0..100 {
            t = t.row([i]);
        }
        let text = t.to_text();
        assert!(text.starts_with("shape: (100, 1)"));
        assert!(text.contains("| 9  |\n| …  |\n| 95 |"), "{text}");
        assert_eq!(t.to_html().matches("<tr>").count(), 1 + 10 + 1 + 5);
    }
}

#[cfg(all(test, feature = "polars"))]
mod polars_tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn dataframe_renders_with_dtypes_and_elision() {
        let df = df!("id" => (0..40i64).collect::<Vec<_>>(), "name" => (0..40).map(|i| format!("<n{i}>")).collect::<Vec<_>>()).unwrap();
        let table = Table::from_polars(&df);
        assert_eq!(table.columns, ["id", "name"]);
        assert_eq!(table.dtypes, ["i64", "str"]);
        assert_eq!(table.height, 40);
        assert_eq!(table.rows.len(), HEAD_ROWS + TAIL_ROWS);
        assert_eq!(table.rows[HEAD_ROWS], ["35", "\"<n35>\""]);
        let html = table.to_html();
        assert!(html.contains("shape: (40, 2)") && html.contains("&lt;n0&gt;") && html.contains("&hellip;"), "{html}");
        assert_eq!(crate::display::rich_bundle(&df), table.to_bundle());
    }
}

//! The line protocol between the runtime child (the `kiln` SDK in a cell) and the Kiln kernel.
//!
//! evcxr reads the runtime child's stdout and stderr line by line and forwards every line it
//! does not recognise itself. Kiln rides on that: a line starting with one of the prefixes
//! below is an instruction to the kernel rather than text. The prefixes begin with an escape
//! character (an OSC sequence), which ordinary output does not start with. This module is the
//! one place that writes and reads them, so the kernel and this crate cannot drift apart.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What every marker line starts with (an OSC sequence), for readers that split a stream
/// at the start of a marker.
pub const PREFIX: &str = "\u{1b}]kiln-";

/// Set by the Kiln kernel in the runtime child's environment.
pub const KERNEL_ENV: &str = "KILN_KERNEL";

/// Set by the Kiln kernel in the runtime child's environment: a file that holds the id of
/// the cell running now (JupyterLab's `cellId`), written before each cell. A run the SDK
/// starts in a cell is tagged with it, so a run can lead back to the cell that made it.
pub const CELL_FILE_ENV: &str = "KILN_CELL_FILE";

const PARTIAL: &str = "\u{1b}]kiln-partial;";
const DISPLAY: &str = "\u{1b}]kiln-display;";
const PANIC: &str = "\u{1b}]kiln-panic";
const USER_ERROR: &str = "\u{1b}]kiln-user-error";
const STDERR_LINES: &str = "\u{1b}]kiln-stderr-lines;";
/// Written by the runtime child into its own stderr pipe at the end of a cell, behind
/// everything the cell wrote there; never leaves the child.
pub const STDERR_SYNC: &str = "\u{1b}]kiln-stderr-sync";
/// Written by the runtime child into its own stdout pipe at the end of a cell, behind what
/// the cells' stdout buffer held; never leaves the child.
pub const STDOUT_SYNC: &str = "\u{1b}]kiln-stdout-sync";

/// One display instruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DisplayRequest {
    /// A new output (`display_data`).
    Show {
        data: Map<String, Value>,
        #[serde(default)]
        metadata: Map<String, Value>,
        #[serde(default)]
        display_id: Option<String>,
    },
    /// Replace an earlier output in place (`update_display_data`).
    Update {
        data: Map<String, Value>,
        #[serde(default)]
        metadata: Map<String, Value>,
        display_id: String,
    },
    /// Clear the cell's outputs (`clear_output`).
    Clear { wait: bool },
}

impl DisplayRequest {
    /// The Jupyter message type and content this instruction becomes.
    pub fn to_message(&self) -> (&'static str, Value) {
        match self {
            DisplayRequest::Show { data, metadata, display_id } => {
                let transient = match display_id {
                    Some(id) => json!({ "display_id": id }),
                    None => json!({}),
                };
                ("display_data", json!({ "data": data, "metadata": metadata, "transient": transient }))
            }
            DisplayRequest::Update { data, metadata, display_id } => {
                ("update_display_data", json!({ "data": data, "metadata": metadata, "transient": { "display_id": display_id } }))
            }
            DisplayRequest::Clear { wait } => ("clear_output", json!({ "wait": wait })),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    /// Text without a trailing newline, to be shown now.
    Partial(String),
    Display(DisplayRequest),
    /// The runtime caught a panic in the cell.
    Panic,
    /// A `?` in the cell returned an error early (evcxr prints it and keeps going).
    UserError,
    /// On stdout at the end of a cell: how many lines the child wrote to stderr since the
    /// last such count, so the kernel can wait for them before it says the cell is done.
    StderrLines(u64),
}

/// One output made of evcxr content blocks (`EVCXR_BEGIN_CONTENT mime` … `EVCXR_END_CONTENT`,
/// one a MIME type): JSON types parsed, and always a `text/plain` fallback. The kernel shows
/// a cell's final value this way, and the runtime child each display a cell prints.
pub fn evcxr_bundle(blocks: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut data = Map::new();
    for (mime, content) in blocks {
        let value = if mime.ends_with("json") { serde_json::from_str(&content).unwrap_or(Value::String(content)) } else { Value::String(content) };
        data.insert(mime, value);
    }
    if !data.contains_key("text/plain") {
        let kinds: Vec<&str> = data.keys().map(String::as_str).collect();
        data.insert("text/plain".into(), json!(format!("<{}>", kinds.join(", "))));
    }
    data
}

pub fn partial_line(text: &str) -> String {
    format!("{PARTIAL}{}", serde_json::Value::String(text.to_owned()))
}

pub fn display_line(request: &DisplayRequest) -> String {
    format!("{DISPLAY}{}", serde_json::to_string(request).unwrap_or_else(|_| "{}".into()))
}

pub fn panic_line() -> &'static str {
    PANIC
}

pub fn user_error_line() -> &'static str {
    USER_ERROR
}

pub fn stderr_lines_line(lines: u64) -> String {
    format!("{STDERR_LINES}{lines}")
}

/// Reads a line; `None` means it is ordinary text. A malformed instruction is also treated as
/// text, so that nothing a cell prints is ever swallowed.
pub fn parse_marker(line: &str) -> Option<Marker> {
    if !line.starts_with('\u{1b}') {
        return None;
    }
    if let Some(rest) = line.strip_prefix(PARTIAL) {
        return serde_json::from_str::<String>(rest).ok().map(Marker::Partial);
    }
    if let Some(rest) = line.strip_prefix(DISPLAY) {
        return serde_json::from_str(rest).ok().map(Marker::Display);
    }
    if let Some(rest) = line.strip_prefix(STDERR_LINES) {
        return rest.parse().ok().map(Marker::StderrLines);
    }
    match line {
        PANIC => Some(Marker::Panic),
        USER_ERROR => Some(Marker::UserError),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in ["", "abc", "\r50%", "tab\tquote\"", "ünïcode"] {
            assert_eq!(parse_marker(&partial_line(text)), Some(Marker::Partial(text.to_owned())));
        }
        let mut data = Map::new();
        data.insert("text/plain".into(), json!("x"));
        let req = DisplayRequest::Show { data, metadata: Map::new(), display_id: Some("d1".into()) };
        assert_eq!(parse_marker(&display_line(&req)), Some(Marker::Display(req)));
        assert_eq!(parse_marker(panic_line()), Some(Marker::Panic));
        assert_eq!(parse_marker(user_error_line()), Some(Marker::UserError));
        assert_eq!(parse_marker(&stderr_lines_line(7)), Some(Marker::StderrLines(7)));
        assert_eq!(parse_marker("\u{1b}]kiln-stderr-lines;x"), None);
    }

    #[test]
    fn ordinary_and_malformed_lines_are_text() {
        for line in ["hello", "", "\u{1b}[31mred\u{1b}[0m", "\u{1b}]kiln-partial;not json", "\u{1b}]kiln-display;{\"op\":1}"] {
            assert_eq!(parse_marker(line), None, "{line:?}");
        }
    }

    #[test]
    fn messages_have_documented_shapes() {
        let update = DisplayRequest::Update { data: Map::new(), metadata: Map::new(), display_id: "p".into() };
        expect_test::expect![[r#"
            ("update_display_data", Object {"data": Object {}, "metadata": Object {}, "transient": Object {"display_id": String("p")}})"#]]
        .assert_eq(&format!("{:?}", update.to_message()));
        expect_test::expect![[r#"("clear_output", Object {"wait": Bool(true)})"#]]
            .assert_eq(&format!("{:?}", DisplayRequest::Clear { wait: true }.to_message()));
    }
}

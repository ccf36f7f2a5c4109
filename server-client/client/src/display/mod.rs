//! Rich output from cells: displays, in-place updates and tables.

/// The marker lines the kernel understands (`kiln_protocol::markers`).
pub use kiln_protocol::markers as protocol;
mod table;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

pub use protocol::DisplayRequest;
pub use table::Table;

/// A set of representations of one value, keyed by MIME type. Frontends pick the richest one
/// they can render; `text/plain` should always be present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MimeBundle {
    pub data: Map<String, Value>,
}

impl MimeBundle {
    pub fn text(text: impl Into<String>) -> Self {
        MimeBundle::default().with("text/plain", text.into())
    }

    pub fn html(html: impl Into<String>, text: impl Into<String>) -> Self {
        MimeBundle::text(text).with("text/html", html.into())
    }

    /// Adds a representation. JSON MIME types (`application/json`, `…+json`) take a JSON value;
    /// others a string.
    pub fn with(mut self, mime: &str, value: impl Into<Value>) -> Self {
        self.data.insert(mime.to_owned(), value.into());
        self
    }

    fn plain(&self) -> &str {
        self.data.get("text/plain").and_then(Value::as_str).unwrap_or_default()
    }
}

impl From<&str> for MimeBundle {
    fn from(text: &str) -> Self {
        MimeBundle::text(text)
    }
}

impl From<String> for MimeBundle {
    fn from(text: String) -> Self {
        MimeBundle::text(text)
    }
}

/// Whether this process is a cell run by the Kiln kernel, which understands display markers.
pub fn in_kernel() -> bool {
    std::env::var_os(protocol::KERNEL_ENV).is_some()
}

fn send(request: &DisplayRequest) {
    let mut out = std::io::stdout().lock();
    // A display is an instruction to the kernel: it must leave this process now, not when
    // the buffer fills.
    let _ = writeln!(out, "{}", protocol::display_line(request));
    let _ = out.flush();
}

fn print_plain(bundle: &MimeBundle) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", bundle.plain());
    let _ = out.flush();
}

/// Shows a new output below the cell and returns a handle to update it in place.
pub fn show(bundle: impl Into<MimeBundle>) -> DisplayHandle {
    let bundle = bundle.into();
    let handle = DisplayHandle { id: new_display_id() };
    if in_kernel() {
        send(&DisplayRequest::Show { data: bundle.data, metadata: Map::new(), display_id: Some(handle.id.clone()) });
    } else {
        print_plain(&bundle);
    }
    handle
}

/// Clears the cell's outputs; with `wait`, only once the next output arrives (no flicker).
pub fn clear_output(wait: bool) {
    if in_kernel() {
        send(&DisplayRequest::Clear { wait });
    }
}

/// An output that can be replaced in place.
#[derive(Debug, Clone)]
pub struct DisplayHandle {
    id: String,
}

impl DisplayHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn update(&self, bundle: impl Into<MimeBundle>) {
        let bundle = bundle.into();
        if in_kernel() {
            send(&DisplayRequest::Update { data: bundle.data, metadata: Map::new(), display_id: self.id.clone() });
        } else {
            print_plain(&bundle);
        }
    }
}

fn new_display_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("kiln-{}-{nanos:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// evcxr calls `.evcxr_display()` on a cell's last expression when such a method resolves,
/// and falls back to `Debug` otherwise. This trait (in scope through `kiln::prelude`) gives
/// foreign types such as polars' `DataFrame` a rich rendering.
///
/// It is implemented for every `Debug + 'static` type and picks the rendering at run time.
/// An impl for a few types only would be worse than none: with the trait in scope, evcxr's
/// analysis believes `6*7` has the method, the compile fails, and evcxr falls back through a
/// `cargo check` of every dependency (seconds, or minutes with polars).
/// Types with an inherent `evcxr_display` (plotters, showata, …) keep theirs: inherent
/// methods win over trait methods.
pub trait EvcxrDisplay {
    fn evcxr_display(&self);
}

impl<T: std::fmt::Debug + 'static> EvcxrDisplay for T {
    fn evcxr_display(&self) {
        emit_evcxr_blocks(&rich_bundle(self));
    }
}

/// The richest rendering Kiln knows for `value`; `Debug` text otherwise, as evcxr prints it.
pub fn rich_bundle<T: std::fmt::Debug + 'static>(value: &T) -> MimeBundle {
    let any = value as &dyn std::any::Any;
    if let Some(table) = any.downcast_ref::<Table>() {
        return table.to_bundle();
    }
    #[cfg(feature = "polars")]
    if let Some(df) = any.downcast_ref::<polars::prelude::DataFrame>() {
        return Table::from_polars(df).to_bundle();
    }
    MimeBundle::text(format!("{value:?}"))
}

/// Prints `bundle` in evcxr's content-block format, the format plotters, plotly and friends
/// use, so the kernel shows it as the cell's result.
pub fn emit_evcxr_blocks(bundle: &MimeBundle) {
    let mut out = std::io::stdout().lock();
    for (mime, value) in &bundle.data {
        let body = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "EVCXR_BEGIN_CONTENT {mime}\n{body}\nEVCXR_END_CONTENT");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_types_richly_and_the_rest_as_debug() {
        assert_eq!(rich_bundle(&vec![1, 2]), MimeBundle::text("[1, 2]"));
        assert_eq!(rich_bundle(&"kiln"), MimeBundle::text("\"kiln\""));
        let table = Table::new(["a"]).row([1]);
        assert_eq!(rich_bundle(&table), table.to_bundle());
    }
}

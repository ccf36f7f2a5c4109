//! The Kiln SDK: what notebook cells and generated components `use`.
//!
//! Today it carries rich display for the Kiln kernel: several displays per cell, displays
//! that update in place ([`display::DisplayHandle`]), a live [`Progress`] bar and HTML tables
//! ([`display::Table`], and polars DataFrames with the `polars` feature). In a cell:
//!
//! ```text
//! :dep kiln = { path = "…/server-client/client" }
//! use kiln::prelude::*;
//! ```
//!
//! Outside the Kiln kernel (a component, a test) the same calls print plain text, so code
//! moved from a notebook into a component behaves the same without edits.

pub mod display;
mod progress;

pub use progress::Progress;

/// `use kiln::prelude::*;` brings what a cell needs, including the trait that makes evcxr
/// render supported values (polars DataFrames) as tables.
pub mod prelude {
    pub use crate::Progress;
    pub use crate::display::{DisplayHandle, EvcxrDisplay, MimeBundle, Table, clear_output, show};
}

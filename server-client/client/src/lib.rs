//! The Kiln SDK: what notebook cells and generated components `use`.
//!
//! - **Tracking**: [`run`] starts a run on the Kiln server (`KILN_SERVER`, `KILN_TOKEN`);
//!   [`ActiveRun`] logs params, tags and metric series (batched in the background) and shows a
//!   live card under the cell. [`store::Client`] is the whole `/api/v1` (artifacts, search…).
//!   Values cross as artifacts: any serde value as JSON, DataFrames as Parquet (feature
//!   `parquet`), candle tensors and `VarMap`s as safetensors (feature `candle`).
//! - **Display** for the Kiln kernel: several displays per cell, displays that update in place
//!   ([`display::DisplayHandle`]), a live [`Progress`] bar and HTML tables ([`display::Table`],
//!   and polars DataFrames with the `polars` feature). In a cell:
//!
//! ```text
//! :dep kiln = { path = "…/server-client/client" }
//! use kiln::prelude::*;
//! ```
//!
//! - **Components**: what `kiln componentize` generates runs on [`component`] (parameters,
//!   values handed between steps through [`codec`]s, the run) and, for the infer step,
//!   [`serve`] (feature `serve`: the Open Inference Protocol v2).
//!
//! Outside the Kiln kernel (a component, a test) the same calls print plain text, so code
//! moved from a notebook into a component behaves the same without edits.

#[cfg(feature = "candle")]
mod candle_threads;
pub mod codec;
pub mod component;
pub mod dataset;
pub mod display;
#[cfg(feature = "parquet")]
pub mod parquet;
mod progress;
#[cfg(feature = "candle")]
pub mod safetensors;
#[cfg(feature = "serve")]
pub mod serve;
pub mod store;
mod tracking;

pub use kiln_api as api;
pub use progress::Progress;
pub use store::{Client, Error};
pub use tracking::{ActiveRun, RUN_ENV, run};

/// `use kiln::prelude::*;` brings what a cell needs, including the trait that makes evcxr
/// render supported values (polars DataFrames) as tables.
pub mod prelude {
    pub use crate::Progress;
    pub use crate::display::{DisplayHandle, EvcxrDisplay, MimeBundle, Table, clear_output, show};
}

//! From a tagged notebook to components. This first part reads the notebook ([`notebook`]),
//! resolves each cell's step from its tags ([`tags`]) and finds which names flow between steps
//! ([`analysis`]), with diagnostics that name the cell and line.
//!
//! The crate knows no HTTP and no SQL: the CLI and the kernel hand it notebooks and take its
//! results to the store.

pub mod analysis;
pub mod notebook;
pub mod tags;

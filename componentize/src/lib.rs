//! From a tagged notebook to components and images. It reads the notebook ([`notebook`]),
//! resolves each cell's step from its tags ([`tags`]), splits cells into items and statements
//! ([`cell`]) and finds which values flow between steps ([`analysis`]); the compiler gives
//! their types ([`types`]); an infer cell may declare a DataFrame input's columns
//! ([`table_input`]).
//!
//! The crate knows no HTTP and no SQL: the CLI and the kernel hand it notebooks and take its
//! results to the store and the registry.

pub mod analysis;
pub mod cargo;
pub mod cell;
pub mod deps;
pub mod diagnostic;
pub mod generate;
pub mod hashes;
pub mod image;
pub mod kernel;
pub mod notebook;
pub mod pipeline;
pub mod table_input;
pub mod tags;
pub mod types;

pub use diagnostic::Diagnostic;

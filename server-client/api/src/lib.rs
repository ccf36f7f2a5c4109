//! Wire types of the Kiln store's `/api/v1` and of the Open Inference Protocol v2 ([`oip`]):
//! what the SDK, the CLI, the server and generated components exchange.
//!
//! This crate does no IO. It owns the *shapes* (serde types), the *limits* every writer must
//! respect ([`limits`]) and the run *search language* ([`search`]), so that a client can reject
//! bad input before it leaves the process and the server rejects it with the same words.

pub mod error;
pub mod json;
pub mod limits;
pub mod oip;
pub mod search;
mod types;

pub use error::{ApiError, ErrorCode};
pub use types::*;

/// Milliseconds since the Unix epoch: the one time unit on the wire (MLflow uses it too).
pub type Millis = i64;

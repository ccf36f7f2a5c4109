//! What a notebook cell's text means to Kiln, in one place for every crate that reads or
//! writes it: the marker lines the `kiln` SDK prints for the kernel (`markers`) and the
//! `// kiln: …` directive that tags a cell (`directive`). A tiny crate with no IO, so the
//! kernel shares the protocol with the SDK without linking the SDK's HTTP client.

pub mod directive;
pub mod markers;

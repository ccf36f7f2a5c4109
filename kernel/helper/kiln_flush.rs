//! Built by `build.rs` as a dylib against the toolchain's shared `libstd`, the copy every
//! cell links (evcxr builds cells with `-C prefer-dynamic`); loaded by the runtime child to
//! flush the cells' stdout buffer (see `src/cell_stdout.rs`).

/// Flushes the shared `libstd`'s stdout: what `print!` left without a newline.
#[unsafe(no_mangle)]
pub extern "C" fn kiln_flush_stdout() {
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

//! Builds `helper/kiln_flush.rs` into `$OUT_DIR/libkiln_flush.so`, which the runtime child
//! embeds and loads (`src/cell_stdout.rs`). When it cannot be built the file is left empty
//! and the kernel runs without it (a cell's `print!` without a newline then waits for a
//! newline, as in plain evcxr).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "helper/kiln_flush.rs";
    println!("cargo::rerun-if-changed={source}");
    let Some(out_dir) = std::env::var_os("OUT_DIR") else { return };
    let out = PathBuf::from(out_dir).join("libkiln_flush.so");
    if let Err(why) = build(source, &out) {
        println!("cargo::warning=the cells' stdout flusher was not built ({why}); print! without a newline waits for one");
        let _ = std::fs::write(&out, b"");
    }
}

fn build(source: &str, out: &std::path::Path) -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc).args(["--print", "target-libdir"]).output().map_err(|e| format!("rustc: {e}"))?;
    let libdir = String::from_utf8(libdir.stdout).map_err(|e| e.to_string())?.trim().to_owned();
    let status = Command::new(&rustc)
        .args(["--edition", "2024", "--crate-type", "dylib", "--crate-name", "kiln_flush"])
        .args(["-C", "prefer-dynamic", "-C", "opt-level=2", "-C", "debuginfo=0"])
        // Found where the cells find it, whether or not a cell has loaded it yet.
        .arg(format!("-Clink-arg=-Wl,-rpath,{libdir}"))
        .arg("-o")
        .arg(out)
        .arg(source)
        .env_remove("RUSTC_WRAPPER")
        .status()
        .map_err(|e| format!("rustc: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("rustc ended with {status}")) }
}

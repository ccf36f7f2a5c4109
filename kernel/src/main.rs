//! `kiln-kernel`: a Jupyter kernel for Rust on the evcxr engine.
//!
//! The same binary plays three roles, which is why [`evcxr::runtime_hook`] must run before
//! anything else: the kernel itself, the evcxr runtime child that loads and runs compiled cells
//! (`EVCXR_IS_RUNTIME`), and evcxr's rustc wrapper; and two more for [`fast_build`]: the `mold`
//! through which evcxr starts cargo, and the rustc wrapper that records cell builds.

mod cell_stdout;
mod cells;
mod channels;
mod comm;
mod engine;
mod fast_build;
mod history;
mod introspect;
mod kernel;
mod kernelspec;
mod live_output;
mod lock_memory;
mod message;
mod processes;
mod result_display;
mod shared_deps;
mod stream;
mod workdir;

use std::path::PathBuf;

/// rust-analyzer (inside evcxr) allocates heavily on every cell; glibc malloc made the
/// kernel's own share of a warm cell ~50% slower than evcxr_jupyter's, which uses mimalloc.
/// The runtime child is this binary too, as it is evcxr_jupyter's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kiln-kernel", version, about = "Jupyter kernel for Rust (Kiln)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The connection file written by the Jupyter client.
    connection_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Write the `kiln` kernelspec so Jupyter can start this kernel.
    Install(kernelspec::InstallArgs),
    /// Run the kernel on a connection file (the kernelspec's argv uses the short form).
    Run { connection_file: PathBuf },
}

fn main() -> anyhow::Result<()> {
    // The runtime child shares our binary: give it live (partial-line) output first, then let
    // evcxr take over. Neither returns when this process is the child or the rustc wrapper.
    // evcxr starts cargo through `mold`, which may be this binary (see `fast_build`); that
    // process carries evcxr's wrapper variable, so it must be told apart first.
    if fast_build::invoked_as_shim() {
        fast_build::run_as_mold();
    }
    if fast_build::is_recording_wrapper() {
        fast_build::run_as_recording_wrapper();
    }
    if live_output::is_runtime_child() {
        // SAFETY: the runtime child has started no thread yet.
        unsafe { fast_build::restore_path() };
        live_output::install();
    }
    evcxr::runtime_hook();

    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KILN_KERNEL_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    match (cli.command, cli.connection_file) {
        (Some(Command::Install(args)), _) => kernelspec::install(&args),
        (Some(Command::Run { connection_file }), _) | (None, Some(connection_file)) => {
            let text = std::fs::read_to_string(&connection_file).with_context(|| format!("reading connection file {}", connection_file.display()))?;
            let info: jupyter_protocol::ConnectionInfo =
                serde_json::from_str(&text).with_context(|| format!("parsing connection file {}", connection_file.display()))?;
            // Environment for evcxr and its runtime child, set while this is the only thread:
            // the `kiln` crate's markers are understood here, and this kernel builds in a
            // directory of its own.
            // SAFETY: no other thread exists yet to read the environment concurrently.
            unsafe { std::env::set_var(kiln_protocol::markers::KERNEL_ENV, "1") };
            let slot = workdir::take();
            if let Some(slot) = &slot {
                // SAFETY: as above, no other thread exists yet.
                unsafe { std::env::set_var(kiln_protocol::markers::CELL_FILE_ENV, slot.dir.join("running-cell")) };
                // SAFETY: as above, no other thread exists yet.
                if let Err(error) = unsafe { fast_build::install(&slot.dir) } {
                    tracing::warn!(%error, "cells build through cargo every time");
                }
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(kernel::run(info, slot))
        }
        (None, None) => {
            anyhow::bail!("usage: kiln-kernel CONNECTION_FILE | kiln-kernel install [--user]")
        }
    }
}

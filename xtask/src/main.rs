//! `cargo xtask`: the project's own tasks. `demo` shows the whole path in one command, `lab` is the main interactive job, `test` runs
//! every test (installing what they need), `bench` runs the benchmarks.

mod arch;
mod bench;
mod demo;
mod env;
mod lab;
mod services;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel, install it into a JupyterLab venv and start JupyterLab on 127.0.0.1.
    Lab {
        /// Passed to `jupyter lab` (e.g. --no-browser --port 8899).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The whole path on the classifier notebook, narrated: componentize, train, deploy
    /// blue-green, train a second version, canary it, send traffic, show its lineage.
    Demo(demo::Args),
    /// Run every test: Rust unit and wire tests, jupyter_kernel_test, nbclient notebooks.
    Test,
    /// Only the browser tests (extension/ui-tests), with what they need started; the
    /// arguments go to `playwright test` (e.g. `tests/deployments.spec.ts --project kiln`).
    UiTest {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a benchmark side by side with its anchor.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() -> anyhow::Result<()> {
    // Every `kiln` started from here (tests, benches, lab) builds components against this
    // checkout's SDK, not the path compiled into a `kiln` binary that a shared target dir may
    // hold from another clone.
    if std::env::var_os("KILN_SDK").is_none() {
        // SAFETY: before any thread is started.
        unsafe { std::env::set_var("KILN_SDK", env::root().join("server-client/client")) };
    }
    match Cli::parse().command {
        Command::Lab { args } => lab::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Test => test::run(),
        Command::UiTest { args } => test::ui(&args),
        Command::Bench { which } => bench::run(which),
    }
}

//! `kiln componentize NOTEBOOK --handle NAME`: the notebook's tagged cells as three crates,
//! built in release, packaged as reproducible OCI images (a layout in `--out`), pushed to
//! `--registry` and registered as code packages in the store when a server is set.
//! `kiln show NOTEBOOK` stops after the analysis.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use kiln::api::{RegisterCodePackage, Role};
use kiln_componentize::analysis::render;
use kiln_componentize::diagnostic::Diagnostic;
use kiln_componentize::generate::ROLES;
use kiln_componentize::kernel::KernelCells;
use kiln_componentize::pipeline::{self, Analysed, Asking, Component, Options, PipelineError};

use crate::progress::{self, Format, Step};
use crate::registry::Registry;

#[derive(clap::Args)]
pub struct ComponentizeArgs {
    notebook: PathBuf,
    /// The name the components, images and model are registered under (`visual_recognition`).
    #[arg(long)]
    handle: String,
    /// The OCI image layout to write (default: HANDLE/oci under the work directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Push the images to this registry (`HOST:PORT`), as HANDLE-ROLE:TAG and :latest.
    #[arg(long)]
    registry: Option<String>,
    /// The registry tag (default: the first 12 hex digits of the notebook's sha256).
    #[arg(long)]
    tag: Option<String>,
    /// Print the generated crates and stop (no build).
    #[arg(long)]
    emit_only: bool,
    /// The summary as JSON.
    #[arg(long)]
    json: bool,
    /// How progress is shown: `json` prints one event a line on stdout (each phase of each
    /// component as it starts, moves and ends; the problems, if any; the summary last).
    #[arg(long, value_enum, default_value_t = Format::Terminal)]
    progress: Format,
    #[command(flatten)]
    work: WorkArgs,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    notebook: PathBuf,
    #[arg(long)]
    json: bool,
    /// Read the notebook's content from standard input (an editor's unsaved buffer); NOTEBOOK
    /// still says where it lives, for relative `:dep` paths and the default handle.
    #[arg(long)]
    stdin: bool,
    /// Read the cells only; skip asking the compiler for types (no build).
    #[arg(long)]
    syntax_only: bool,
    /// The handle the probe crate is generated under (default: the notebook's file name).
    #[arg(long)]
    handle: Option<String>,
    #[command(flatten)]
    work: WorkArgs,
}

#[derive(clap::Args)]
pub struct WorkArgs {
    /// Where generated crates and their shared build live (default: $KILN_CACHE_DIR/componentize,
    /// else ~/.cache/kiln/componentize).
    #[arg(long, env = "KILN_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// The Kiln kernel's records of the cells it ran (the `cells` answer of its `kiln` comm,
    /// as JSON): cells that ran as they are now take the types the kernel recorded.
    #[arg(long)]
    kernel_cells: Option<PathBuf>,
}

/// The Kiln SDK the components build against: `KILN_SDK`, else this source tree's.
fn sdk() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_SDK").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server-client/client");
    std::fs::canonicalize(&built).unwrap_or(built)
}

/// Kiln's cache: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("KILN_CACHE_DIR").filter(|d| !d.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from);
        base.unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache")).join("kiln")
    })
}

fn work_root(args: &WorkArgs) -> PathBuf {
    args.work_dir.clone().unwrap_or_else(|| cache_root().join("componentize"))
}

/// mold links the components faster when it is installed.
fn rustflags() -> Vec<String> {
    let has_mold = std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("mold").is_file()));
    if has_mold { vec!["-C".into(), "link-arg=-fuse-ld=mold".into()] } else { Vec::new() }
}

fn options(handle: &str, work: &WorkArgs, asking: Asking) -> anyhow::Result<Options> {
    let kernel = match &work.kernel_cells {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(KernelCells::parse(&text).with_context(|| path.display().to_string())?)
        }
        None => None,
    };
    Ok(Options { handle: handle.to_owned(), work_root: work_root(work), sdk: sdk(), rustflags: rustflags(), kernel, asking })
}

/// A handle from a file name: `My Notebook.ipynb` → `my-notebook`.
fn handle_from(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mut handle = String::new();
    for c in stem.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            handle.push(c);
        } else if !handle.is_empty() && !handle.ends_with('-') {
            handle.push('-');
        }
    }
    let handle = handle.trim_end_matches('-').to_owned();
    if handle.is_empty() { "notebook".into() } else { handle }
}

fn analyse(path: &Path, content: Option<&str>, options: &Options, types: bool, format: Format) -> anyhow::Result<Analysed> {
    let mut step = Step::with(format, "analyse", None);
    step.message(if types { "asking the compiler for the values' types (the first run builds the notebook's dependencies)" } else { "reading the cells" });
    let analysed = match content {
        Some(text) => pipeline::analyse_text(path, text, options, types, &mut step),
        None => pipeline::analyse_file(path, options, types, &mut step),
    };
    match analysed {
        Ok(analysed) => {
            let problems = analysed.analysis.diagnostics.len();
            step.done(&format!("{} steps, {} values crossing them, {problems} problem(s)", analysed.analysis.steps.len(), analysed.analysis.flows.len()));
            Ok(analysed)
        }
        Err(error) => {
            step.fail();
            Err(error.into())
        }
    }
}

pub fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let handle = args.handle.clone().unwrap_or_else(|| handle_from(&args.notebook));
    let options = options(&handle, &args.work, Asking::Check)?;
    let content = if args.stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the notebook from standard input")?;
        Some(text)
    } else {
        None
    };
    let analysed = analyse(&args.notebook, content.as_deref(), &options, !args.syntax_only, Format::Terminal)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&analysed.analysis)?);
    } else {
        print!("{}", render(&analysed.analysis));
    }
    if !analysed.analysis.diagnostics.is_empty() {
        bail!("{}: {} problem(s)", args.notebook.display(), analysed.analysis.diagnostics.len());
    }
    Ok(())
}

/// `git rev-parse HEAD` of the notebook's repository, `-dirty` when the notebook has
/// uncommitted changes; `None` outside git.
fn git_commit(notebook: &Path) -> Option<String> {
    let dir = notebook.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let name = notebook.file_name()?.to_string_lossy().into_owned();
    let dirty = run(&["status", "--porcelain", "--", &name]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

#[derive(serde::Serialize)]
struct Summary {
    handle: String,
    layout: String,
    images: Vec<ImageSummary>,
}

#[derive(serde::Serialize)]
struct ImageSummary {
    role: String,
    name: String,
    reference: String,
    digest: String,
    size: u64,
    unpacked_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_package: Option<String>,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn run(args: &ComponentizeArgs, store: Option<kiln::Client>) -> anyhow::Result<()> {
    let result = componentize(args, store);
    if let (Err(error), Format::Json) = (&result, args.progress) {
        progress::emit(&serde_json::json!({"event": "error", "message": crate::describe(error)}));
    }
    result
}

fn componentize(args: &ComponentizeArgs, store: Option<kiln::Client>) -> anyhow::Result<()> {
    let format = args.progress;
    let options = options(&args.handle, &args.work, Asking::Build)?;
    preflight(args, store.as_ref(), format)?;
    let analysed = analyse(&args.notebook, None, &options, true, format)?;
    if !analysed.analysis.diagnostics.is_empty() {
        problems(format, &analysed.analysis.diagnostics, || render(&analysed.analysis));
        bail!("{}: {} problem(s); nothing was built", args.notebook.display(), analysed.analysis.diagnostics.len());
    }
    if args.emit_only {
        let workspace = pipeline::generate(&analysed, &options);
        for (path, text) in &workspace.files {
            if path.starts_with("probe") {
                continue;
            }
            println!("==> {} <==\n{text}", path.display());
        }
        eprintln!("kiln: generated in {}", options.workspace().display());
        return workspace.write(&options.workspace()).with_context(|| format!("writing {}", options.workspace().display()));
    }

    let step = Step::with(format, "generate", None);
    let workspace = match pipeline::write(&analysed, &options) {
        Ok(workspace) => {
            step.done(&format!("data, train and infer crates in {}", options.workspace().display()));
            workspace
        }
        Err(error) => {
            step.fail();
            return Err(error.into());
        }
    };
    let mut step = Step::with(format, "compile", None);
    step.message("cargo build --release (data, train, infer)");
    let binaries = match pipeline::compile(&workspace, &options, &mut step) {
        Ok(binaries) => {
            step.done(&format!("3 binaries in {}", options.target_dir().join("release").display()));
            binaries
        }
        Err(PipelineError::Problems(found)) => {
            step.fail();
            problems(format, &found, || found.iter().map(|p| format!("error: {p}\n")).collect());
            bail!("{}: the components do not compile", args.notebook.display());
        }
        Err(error) => {
            step.fail();
            return Err(error.into());
        }
    };

    let out = args.out.clone().unwrap_or_else(|| options.workspace().join("oci"));
    let commit = git_commit(&args.notebook);
    let mut components = Vec::new();
    for role in ROLES {
        let step = Step::with(format, "package", Some(role.name()));
        match pipeline::component(&analysed, &options, &binaries, commit.as_deref(), role) {
            Ok(component) => {
                step.done(&format!("{} · {} · {}", component.image.name, component.image.manifest_digest, megabytes(component.image.size())));
                components.push(component);
            }
            Err(error) => {
                step.fail();
                return Err(error.into());
            }
        }
    }
    pipeline::write_layout(&out, &components)?;
    if format == Format::Terminal {
        eprintln!("✓ {:<10} OCI image layout in {}", "images", out.display());
    }

    let tag = args.tag.clone().unwrap_or_else(|| components[0].notebook_sha256[..12].to_owned());
    let mut references: Vec<String> = components.iter().map(|c| format!("oci:{}:{}", out.display(), c.image.name)).collect();
    if let Some(host) = &args.registry {
        let registry = Registry::new(host);
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        for (component, reference) in components.iter().zip(&mut references) {
            let step = Step::with(format, "push", Some(component.role.name()));
            step.message(format!("{} → {host}", component.image.name));
            match runtime.block_on(registry.push(&component.image, &[&tag, "latest"])) {
                Ok(uploaded) => {
                    *reference = format!(
                        "{}@{}",
                        registry.reference(&component.image.name, &tag).rsplit_once(':').map_or("", |(r, _)| r),
                        component.image.manifest_digest
                    );
                    step.done(&format!("{} uploaded to {host} (tags {tag}, latest)", megabytes(uploaded)));
                }
                Err(error) => {
                    step.fail();
                    return Err(error);
                }
            }
        }
    }

    let mut code_packages = vec![None, None, None];
    if let Some(client) = &store {
        // The three together, in one transaction: never some of a notebook's components
        // registered and not the others.
        let step = Step::with(format, "register", None);
        let requests: Vec<RegisterCodePackage> =
            components.iter().zip(&references).map(|(component, reference)| code_package(&args.handle, component, reference)).collect();
        match client.register_code_packages(&requests) {
            Ok(packages) => {
                let ids: Vec<String> = packages.iter().map(|p| p.id.clone()).collect();
                step.done(&format!("code packages {} of `{}` in {}", ids.join(", "), args.handle, client.url()));
                code_packages = ids.into_iter().map(Some).collect();
            }
            Err(error) => {
                step.fail();
                return Err(error).with_context(|| format!("registering {}'s components in the store at {} (none was registered)", args.handle, client.url()));
            }
        }
    }

    let summary = Summary {
        handle: args.handle.clone(),
        layout: out.display().to_string(),
        images: components
            .iter()
            .zip(references)
            .zip(code_packages)
            .map(|((c, reference), code_package)| ImageSummary {
                role: c.role.name().to_owned(),
                name: c.image.name.clone(),
                reference,
                digest: c.image.manifest_digest.clone(),
                size: c.image.size(),
                unpacked_size: c.image.unpacked_size(),
                code_package,
            })
            .collect(),
    };
    if format == Format::Json {
        let mut event = serde_json::to_value(&summary)?;
        event["event"] = "result".into();
        progress::emit(&event);
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
        table.set_header(["role", "image", "digest", "size", "unpacked"]);
        for image in &summary.images {
            table.add_row([image.role.clone(), image.reference.clone(), image.digest.clone(), megabytes(image.size), megabytes(image.unpacked_size)]);
        }
        println!("{table}");
    }
    Ok(())
}

/// Before minutes of building: the handle must make image names, and the registry and the
/// store this run pushes to and registers in must answer (the store with the token given),
/// so that a run which cannot finish fails before it starts and leaves nothing behind.
fn preflight(args: &ComponentizeArgs, store: Option<&kiln::Client>, format: Format) -> anyhow::Result<()> {
    if args.registry.is_none() && store.is_none() {
        return Ok(());
    }
    let step = Step::with(format, "connect", None);
    let checked = (|| {
        pipeline::check_handle(&args.handle).map_err(|error| error.to_string())?;
        if let Some(host) = &args.registry {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("starting the async runtime: {e}"))?;
            runtime.block_on(Registry::new(host).answers(&args.handle))?;
        }
        if let Some(client) = store {
            client.code_packages(&args.handle).map_err(|error| match error {
                kiln::Error::Api { status: status @ (401 | 403), error, .. } => {
                    format!("the store at {} refused the token (HTTP {status}: {error})", client.url())
                }
                kiln::Error::Api { status, error, .. } => format!("the store at {} answered HTTP {status}: {error}", client.url()),
                kiln::Error::Transport { message, .. } => format!("the store at {} does not answer ({message})", client.url()),
                other => format!("the store at {}: {other}", client.url()),
            })?;
        }
        Ok::<(), String>(())
    })();
    match checked {
        Ok(()) => {
            let what: Vec<String> =
                [args.registry.as_ref().map(|h| format!("registry {h}")), store.map(|c| format!("store {}", c.url()))].into_iter().flatten().collect();
            step.done(&format!("{} answer", what.join(" and ")));
            Ok(())
        }
        Err(reason) => {
            step.fail();
            bail!("{reason}; nothing was built")
        }
    }
}

/// The notebook's problems: an event with each one (cell, line, message) for programs, the
/// rendered text on stderr for people.
fn problems(format: Format, found: &[Diagnostic], text: impl FnOnce() -> String) {
    match format {
        Format::Json => progress::emit(&serde_json::json!({"event": "problems", "diagnostics": found})),
        Format::Terminal => eprint!("{}", text()),
    }
}

fn code_package(handle: &str, component: &Component, reference: &str) -> RegisterCodePackage {
    RegisterCodePackage {
        handle: handle.to_owned(),
        role: Role::parse(component.role.name()).unwrap_or(Role::Data),
        image: reference.to_owned(),
        digest: component.image.manifest_digest.clone(),
        notebook_sha256: component.notebook_sha256.clone(),
        cell_sha256: component.cells.iter().map(|(_, sha)| sha.clone()).collect(),
        cargo_lock_sha256: component.cargo_lock_sha256.clone(),
        git_commit: component.git_commit.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_from_file_names() {
        assert_eq!(handle_from(Path::new("notebooks/My Notebook.ipynb")), "my-notebook");
        assert_eq!(handle_from(Path::new("iris.ipynb")), "iris");
        assert_eq!(handle_from(Path::new("__.ipynb")), "notebook");
    }
}

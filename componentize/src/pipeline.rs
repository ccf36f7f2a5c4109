//! The path a notebook takes: read → analyse → types from the compiler → generated crates →
//! release binaries. The images come after ([`crate::image`]); the registry and the store are
//! the CLI's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::{Analysis, analyse};
use crate::cargo::{self, CargoError, Progress};
use crate::deps::{self, Dependency};
use crate::diagnostic::Diagnostic;
use crate::generate::{self, Inputs, Probe, ROLES, Workspace};
use crate::hashes;
use crate::image::{self, Image, ImageError};
use crate::kernel::KernelCells;
use crate::notebook::{Notebook, NotebookError};
use crate::tags::Step;
pub use crate::types::Asking;
use crate::types::{self, TypesError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Notebook { path: String, source: NotebookError },
    #[error("`{0}` cannot be a handle: use lowercase letters, digits and single `.`, `_` or `-` between them (it names images and the model)")]
    Handle(String),
    #[error(transparent)]
    Types(#[from] TypesError),
    #[error(transparent)]
    Cargo(#[from] CargoError),
    #[error("writing the generated crates in {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the notebook has {} problem(s)", .0.len())]
    Problems(Vec<Diagnostic>),
    #[error("building the components failed:\n{0}")]
    Build(String),
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Where the generated crates and their builds live.
#[derive(Debug, Clone)]
pub struct Options {
    pub handle: String,
    /// The parent of every handle's workspace and of the shared target directory.
    pub work_root: PathBuf,
    /// The `kiln` SDK crate to build against.
    pub sdk: PathBuf,
    /// Extra rustflags for every build (e.g. a faster linker).
    pub rustflags: Vec<String>,
    /// What the Kiln kernel recorded when the notebook ran (its types are preferred).
    pub kernel: Option<KernelCells>,
    /// How the compiler is asked for types; [`Asking::Build`] when the components' build
    /// follows.
    pub asking: Asking,
}

impl Options {
    /// The handle's generated workspace.
    pub fn workspace(&self) -> PathBuf {
        self.work_root.join(&self.handle)
    }

    pub fn target_dir(&self) -> PathBuf {
        self.work_root.join("target")
    }
}

/// A valid handle: what an image repository path component and a model name both accept.
pub fn check_handle(handle: &str) -> Result<(), PipelineError> {
    let ok = !handle.is_empty()
        && handle.len() <= 64
        && handle.split(['.', '_', '-']).all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    if ok { Ok(()) } else { Err(PipelineError::Handle(handle.to_owned())) }
}

/// A notebook read and analysed.
#[derive(Debug, Clone)]
pub struct Analysed {
    pub path: PathBuf,
    /// The notebook file's name, for generated comments.
    pub file_name: String,
    pub notebook: Notebook,
    pub analysis: Analysis,
    pub deps: Vec<Dependency>,
}

impl Analysed {
    fn inputs<'a>(&'a self, options: &'a Options, target_dir: &'a Path) -> Inputs<'a> {
        Inputs { handle: &options.handle, notebook: &self.file_name, deps: &self.deps, sdk: &options.sdk, target_dir, rustflags: &options.rustflags }
    }
}

/// Reads and analyses the notebook at `path`; with `types`, asks the compiler for the types
/// of the values crossing steps (which builds the notebook's dependencies the first time).
pub fn analyse_file(path: &Path, options: &Options, types: bool, progress: &mut dyn Progress) -> Result<Analysed, PipelineError> {
    check_handle(&options.handle)?;
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Read { path: path.display().to_string(), source })?;
    analyse_text(path, &text, options, types, progress)
}

/// As [`analyse_file`], for a notebook's content that may not be saved yet (an editor's
/// buffer): `path` still says where the notebook lives, for relative `:dep` paths and names.
pub fn analyse_text(path: &Path, text: &str, options: &Options, types: bool, progress: &mut dyn Progress) -> Result<Analysed, PipelineError> {
    check_handle(&options.handle)?;
    let notebook = Notebook::parse(text).map_err(|source| PipelineError::Notebook { path: path.display().to_string(), source })?;
    let mut analysis = analyse(&notebook);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let deps = match deps::collect(&analysis, &dir) {
        Ok(deps) => deps,
        Err(mut problems) => {
            analysis.diagnostics.append(&mut problems);
            Vec::new()
        }
    };
    let file_name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut analysed = Analysed { path: path.to_path_buf(), file_name, notebook, analysis, deps };
    if types {
        let target_dir = options.target_dir();
        let inputs = analysed.inputs(options, &target_dir);
        let mut analysis = analysed.analysis.clone();
        types::infer(&options.workspace(), &inputs, &mut analysis, options.kernel.as_ref(), options.asking, progress)?;
        analysed.analysis = analysis;
    }
    Ok(analysed)
}

/// The generated workspace for an analysed notebook (what `--emit-only` shows).
pub fn generate(analysed: &Analysed, options: &Options) -> Workspace {
    let target_dir = options.target_dir();
    generate::workspace(&analysed.inputs(options, &target_dir), &analysed.analysis, &Probe::Contracts).0
}

/// The release binaries, by role.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub data: PathBuf,
    pub train: PathBuf,
    pub infer: PathBuf,
    /// sha256 of the workspace's `Cargo.lock`.
    pub cargo_lock_sha256: String,
}

impl Binaries {
    pub fn get(&self, role: &str) -> &Path {
        match role {
            "data" => &self.data,
            "train" => &self.train,
            _ => &self.infer,
        }
    }
}

/// Writes the components and builds them in release, in one cargo run (one feature
/// resolution, one target directory). Compiler errors come back at their cells.
pub fn build(analysed: &Analysed, options: &Options, progress: &mut dyn Progress) -> Result<Binaries, PipelineError> {
    let workspace = write(analysed, options)?;
    compile(&workspace, options, progress)
}

/// Generates the components' workspace and writes it where [`compile`] builds it; refuses a
/// notebook with problems, so nothing is generated from one.
pub fn write(analysed: &Analysed, options: &Options) -> Result<Workspace, PipelineError> {
    if !analysed.analysis.diagnostics.is_empty() {
        return Err(PipelineError::Problems(analysed.analysis.diagnostics.clone()));
    }
    let root = options.workspace();
    let workspace = generate(analysed, options);
    workspace.write(&root).map_err(|source| PipelineError::Write { path: root.display().to_string(), source })?;
    Ok(workspace)
}

/// Builds a written workspace's three components in release.
pub fn compile(workspace: &Workspace, options: &Options, progress: &mut dyn Progress) -> Result<Binaries, PipelineError> {
    let root = options.workspace();
    let packages: Vec<String> = ROLES.iter().map(|r| generate::package(&options.handle, r.name())).collect();
    let mut args = vec!["build", "--release"];
    for package in &packages {
        args.extend(["-p", package.as_str()]);
    }
    let outcome = cargo::run(&root, &args, progress)?;
    if !outcome.success {
        let mut problems = Vec::new();
        for error in &outcome.errors {
            let origin = error.file.as_deref().and_then(|f| workspace.maps.get(Path::new(f))).and_then(|map| map.origin(error.line));
            let code = error.code.as_deref().map(|c| format!("[{c}]")).unwrap_or_default();
            let text = format!("error{code}: {}", error.message);
            problems.push(match origin {
                Some(o) => Diagnostic { cell: Some(o.cell), cell_id: o.cell_id.clone(), line: o.line, message: text },
                None => Diagnostic::notebook(format!("{}\n{}", text, error.rendered.trim())),
            });
        }
        if problems.is_empty() {
            return Err(PipelineError::Build(outcome.stderr_tail));
        }
        return Err(PipelineError::Problems(problems));
    }
    let find = |role: &str| -> Result<PathBuf, PipelineError> {
        let package = generate::package(&options.handle, role);
        outcome.executables.get(&package).cloned().ok_or_else(|| PipelineError::Build(format!("cargo built no executable for {package}")))
    };
    let lock = std::fs::read(root.join("Cargo.lock")).map_err(|source| PipelineError::Read { path: root.join("Cargo.lock").display().to_string(), source })?;
    Ok(Binaries { data: find("data")?, train: find("train")?, infer: find("infer")?, cargo_lock_sha256: hashes::sha256_hex(&lock) })
}

/// One component image and what went into it.
#[derive(Debug, Clone)]
pub struct Component {
    pub role: Step,
    pub image: Image,
    pub notebook_sha256: String,
    /// (cell index, sha256) of each cell in the component, in notebook order.
    pub cells: Vec<(usize, String)>,
    pub cargo_lock_sha256: String,
    pub git_commit: Option<String>,
}

/// The three images: a shared runtime layer, then each binary; labels say what they were
/// built from. Written to the layout at `out`.
pub fn images(analysed: &Analysed, options: &Options, binaries: &Binaries, git_commit: Option<&str>, out: &Path) -> Result<Vec<Component>, PipelineError> {
    let components = ROLES.into_iter().map(|role| component(analysed, options, binaries, git_commit, role)).collect::<Result<Vec<_>, _>>()?;
    write_layout(out, &components)?;
    Ok(components)
}

/// One role's image (the shared runtime layer, then its binary), not yet written anywhere.
pub fn component(analysed: &Analysed, options: &Options, binaries: &Binaries, git_commit: Option<&str>, role: Step) -> Result<Component, PipelineError> {
    let mtime = image::source_date_epoch();
    let notebook_sha256 = hashes::notebook_sha256(&analysed.notebook);
    let name = generate::package(&options.handle, role.name());
    let binary_path = binaries.get(role.name());
    let binary = std::fs::read(binary_path).map_err(|source| PipelineError::Read { path: binary_path.display().to_string(), source })?;
    let cache = image::LayerCache::new(options.work_root.join("layers"));
    let runtime = image::runtime_layer(&image::shared_libraries(binary_path)?, mtime, Some(&cache))?;
    let app = image::layer_with(vec![image::Entry::file(&format!("/app/{name}"), 0o755, binary)], mtime, &format!("kiln componentize: {name}"), Some(&cache))?;
    let cells = hashes::component_cells(&analysed.analysis, role);
    let cells_json =
        serde_json::to_string(&cells.iter().map(|(cell, sha)| serde_json::json!({"cell": cell, "sha256": sha})).collect::<Vec<_>>()).unwrap_or_default();
    let mut labels = BTreeMap::from([
        ("org.opencontainers.image.title".to_owned(), name.clone()),
        (
            "org.opencontainers.image.description".to_owned(),
            format!("The {} step of `{}`, generated by kiln componentize from {}", role.name(), options.handle, analysed.file_name),
        ),
        ("dev.kiln.handle".to_owned(), options.handle.clone()),
        ("dev.kiln.role".to_owned(), role.name().to_owned()),
        ("dev.kiln.notebook".to_owned(), analysed.file_name.clone()),
        ("dev.kiln.notebook.sha256".to_owned(), notebook_sha256.clone()),
        ("dev.kiln.cells".to_owned(), cells_json),
        ("dev.kiln.cargo-lock.sha256".to_owned(), binaries.cargo_lock_sha256.clone()),
    ]);
    if role != Step::Infer {
        // What the step takes, for runners and exports that see only the image.
        let params: Vec<serde_json::Value> =
            analysed.analysis.parameters.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty, "default": p.default})).collect();
        labels.insert("dev.kiln.parameters".to_owned(), serde_json::to_string(&params).unwrap_or_default());
    }
    if let Some(commit) = git_commit {
        labels.insert("org.opencontainers.image.revision".to_owned(), commit.to_owned());
        labels.insert("dev.kiln.git-commit".to_owned(), commit.to_owned());
    }
    let mut env = vec!["PATH=/app:/usr/bin:/bin".to_owned(), "HOME=/tmp".to_owned(), format!("KILN_HANDLE={}", options.handle)];
    let mut ports = Vec::new();
    if role == Step::Infer {
        env.push("KILN_LISTEN=0.0.0.0:8080".into());
        ports.push(8080);
    }
    let spec = image::Spec { name: name.clone(), entrypoint: vec![format!("/app/{name}")], env, exposed_ports: ports, labels };
    let image = image::image(&spec, vec![runtime, app], mtime);
    Ok(Component { role, image, notebook_sha256, cells, cargo_lock_sha256: binaries.cargo_lock_sha256.clone(), git_commit: git_commit.map(str::to_owned) })
}

/// Adds the components' images to the OCI image layout at `out`.
pub fn write_layout(out: &Path, components: &[Component]) -> Result<(), PipelineError> {
    let layout = image::Layout { root: out.to_path_buf() };
    let images: Vec<Image> = components.iter().map(|c| c.image.clone()).collect();
    layout.add(&images)?;
    Ok(())
}

//! Types from the compiler, not from names: the probe crate holds the tagged cells in order
//! and asks rustc about each boundary value, parameter and value a later cell uses with
//! `let _: () = &value;`, whose mismatched-types error names the type (the trick evcxr used
//! before rust-analyzer). A last check writes the found types out and checks what the components will rely on: each
//! value has a codec, each parameter can be set from text, `fn infer`'s input and output map
//! to tensors and its model parameters match the train values. Every problem is reported at
//! the notebook's cell and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::analysis::Analysis;
use crate::cargo::{self, CargoError, Message, Progress};
use crate::diagnostic::Diagnostic;
use crate::generate::{self, Inputs, Probe, SourceMap, Workspace};
use crate::kernel::KernelCells;
use crate::tags::Step;

const PROBE_FILE: &str = "probe/src/main.rs";

#[derive(Debug, thiserror::Error)]
pub enum TypesError {
    #[error("writing the probe crate in {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(transparent)]
    Cargo(#[from] CargoError),
}

/// How a value of type `ty` crosses a boundary.
pub fn codec_for(ty: &str) -> &'static str {
    let base = ty.split('<').next().unwrap_or(ty).trim();
    let last = base.rsplit("::").next().unwrap_or(base);
    match last {
        "DataFrame" => "parquet",
        "Tensor" | "VarMap" => "safetensors",
        _ => "json",
    }
}

/// rustc's name for a type still being inferred, as the type it falls back to.
fn settle(ty: &str) -> String {
    ty.replace("{integer}", "i32").replace("{float}", "f64")
}

/// Why a type the compiler found cannot be written in a component, if it cannot.
fn unnameable(ty: &str) -> Option<&'static str> {
    if ty.contains("{closure") || ty.contains("{async") || ty.contains("{coroutine") {
        Some("it holds a closure, which has no name")
    } else if ty.contains("impl ") {
        Some("it is an `impl Trait`, which has no name")
    } else if ty.contains("...") || ty.contains('…') {
        Some("rustc shortened it")
    } else if ty.contains("{type error}") || ty.contains("{unknown}") || ty.contains("_)") || ty == "_" {
        Some("the compiler could not infer it")
    } else {
        None
    }
}

/// How the type probes run. A check compiles the dependencies only as far as their
/// metadata, which the release build after it cannot reuse: before a build, the probe is
/// built in release instead (its errors are the same), so the dependencies compile once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Asking {
    /// `cargo check`: the quickest answer when nothing is built after it (`kiln show`).
    #[default]
    Check,
    /// `cargo build --release`, as the components are built.
    Build,
}

/// Whether generated code can write `ty` down.
pub fn is_nameable(ty: &str) -> bool {
    unnameable(ty).is_none()
}

/// The type in rustc's "expected `()`, found `&T`".
fn found_type(message: &Message) -> Option<String> {
    let text = message.label.as_deref().unwrap_or_default();
    let start = text.find("found `")? + "found `".len();
    let found = &text[start..text.rfind('`')?];
    Some(found.strip_prefix('&').unwrap_or(found).to_owned())
}

fn at(map: &SourceMap, line: usize, message: String) -> Diagnostic {
    match map.origin(line) {
        Some(origin) => Diagnostic { cell: Some(origin.cell), cell_id: origin.cell_id.clone(), line: origin.line, message },
        None => Diagnostic::notebook(message),
    }
}

/// Compiler errors that are not answers to Kiln's questions: the notebook's own errors, at
/// their cells; a dependency's or cargo's, for the whole notebook.
fn other_errors(errors: &[&Message], map: &SourceMap, stderr: &str, success: bool) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = errors
        .iter()
        .map(|e| {
            let code = e.code.as_deref().map(|c| format!("[{c}]")).unwrap_or_default();
            let label = e.label.as_deref().filter(|l| !l.is_empty()).map(|l| format!(": {l}")).unwrap_or_default();
            match e.file.as_deref() {
                Some(PROBE_FILE) => at(map, e.line, format!("error{code}: {}{label}", e.message)),
                _ => Diagnostic::notebook(format!("a dependency failed to compile: {}", e.rendered.trim())),
            }
        })
        .collect();
    if out.is_empty() && !success {
        out.push(Diagnostic::notebook(format!("cargo could not check the notebook's code:\n{}", stderr.trim())));
    }
    out.dedup();
    out
}

fn check(root: &Path, workspace: &Workspace, handle: &str, asking: Asking, progress: &mut dyn Progress) -> Result<cargo::Outcome, TypesError> {
    write_for_probe(root, workspace).map_err(|source| TypesError::Write { path: root.display().to_string(), source })?;
    let package = generate::package(handle, "probe");
    let command: &[&str] = match asking {
        Asking::Check => &["check", "--quiet"],
        Asking::Build => &["build", "--release", "--quiet"],
    };
    Ok(cargo::run(root, &[command, &["-p", &package]].concat(), progress)?)
}

/// Writes what the probe's build reads: the manifests and the probe's source. cargo builds
/// only the probe here, but loads every member, so a component's source is written only
/// where there is none yet. Written each time, the components' sources would go from their
/// final text to the half-typed analysis's and back on every `kiln componentize`, and cargo,
/// which goes by mtimes, would relink all three binaries when nothing had changed (10 of the
/// 19 s a warm componentize of the classifier took).
fn write_for_probe(root: &Path, workspace: &Workspace) -> std::io::Result<()> {
    let mut files = workspace.files.clone();
    files.retain(|path, _| {
        let component_source = path.ends_with("src/main.rs") && !path.starts_with("probe");
        !component_source || !root.join(path).exists()
    });
    Workspace { files, maps: BTreeMap::new(), lock_seed: workspace.lock_seed.clone() }.write(root)
}

/// The (cell, name) pairs whose types are needed, by cell: parameters, boundary values, and
/// values later cells use (fixed when their cell ends, as in the kernel).
fn needed(analysis: &Analysis) -> BTreeMap<usize, BTreeSet<String>> {
    let mut needs: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for p in &analysis.parameters {
        needs.entry(p.cell).or_default().insert(p.name.clone());
    }
    for f in &analysis.flows {
        needs.entry(f.defined_in).or_default().insert(f.name.clone());
    }
    for (cell, values) in &analysis.carried {
        needs.entry(*cell).or_default().extend(values.keys().cloned());
    }
    needs
}

/// Fills in the types and codecs of `analysis`'s flows and parameters, adding a diagnostic
/// for every problem. `root` is the generated workspace's directory. Skipped when the
/// analysis already has problems (the compiler would only repeat them).
///
/// The kernel compiles one cell at a time, so a value's type is what it is when its cell
/// ends (a bare `let n = 5;` is an `i32` there even if a later cell wants a `usize`). The
/// probe does the same: one check per cell that defines a value anyone needs, with the cells
/// up to it and the earlier values already fixed to their types.
///
/// With the kernel's records of the cells it ran (`kernel`), a cell whose source is the one
/// that ran takes the types the kernel recorded, and the probe skips it.
pub fn infer(
    root: &Path,
    inputs: &Inputs,
    analysis: &mut Analysis,
    kernel: Option<&KernelCells>,
    asking: Asking,
    progress: &mut dyn Progress,
) -> Result<(), TypesError> {
    if !analysis.diagnostics.is_empty() {
        return Ok(());
    }
    let statement_steps = [Step::Setup, Step::Parameters, Step::Data, Step::Train];
    let mut needs = needed(analysis);
    if let Some(kernel) = kernel {
        for cell in &analysis.cells {
            let Some(wanted) = needs.get(&cell.cell.index) else { continue };
            let Some(recorded) = kernel.variables(&cell.cell) else { continue };
            if wanted.iter().all(|name| recorded.contains_key(name)) {
                for name in wanted {
                    analysis.settled.insert((cell.cell.index, name.clone()), recorded[name].clone());
                }
                analysis.kernel_typed.insert(cell.cell.index);
            }
        }
        for cell in &analysis.kernel_typed {
            needs.remove(cell);
        }
    }
    let order: Vec<usize> =
        analysis.cells.iter().filter(|c| statement_steps.contains(&c.step)).map(|c| c.cell.index).filter(|i| needs.contains_key(i)).collect();
    for cell in order {
        let ask: Vec<String> = needs[&cell].iter().cloned().collect();
        let pass = Probe::Types { upto: cell, ask };
        let (workspace, markers) = generate::workspace(inputs, analysis, &pass);
        let map = workspace.maps[Path::new(PROBE_FILE)].clone();
        let outcome = check(root, &workspace, inputs.handle, asking, progress)?;
        let mut rest = Vec::new();
        for error in &outcome.errors {
            let marker = (error.file.as_deref() == Some(PROBE_FILE)).then(|| markers.get(&error.line)).flatten();
            match (marker, found_type(error)) {
                (Some(name), Some(ty)) if error.code.as_deref() == Some("E0308") => {
                    analysis.settled.insert((cell, name.clone()), settle(&ty));
                }
                _ => rest.push(error),
            }
        }
        let mut problems = other_errors(&rest, &map, &outcome.stderr_tail, outcome.success || !outcome.errors.is_empty());
        if !problems.is_empty() {
            analysis.diagnostics.append(&mut problems);
            return Ok(());
        }
    }
    let mut problems = Vec::new();
    let typed = |analysis: &Analysis, cell: usize, name: &str| analysis.settled.get(&(cell, name.to_owned())).cloned();
    let flows: Vec<(usize, usize, String, Option<String>)> =
        analysis.flows.iter().map(|f| (f.defined_in, f.line, f.name.clone(), typed(analysis, f.defined_in, &f.name))).collect();
    let params: Vec<(usize, usize, String, Option<String>)> =
        analysis.parameters.iter().map(|p| (p.cell, p.line, p.name.clone(), typed(analysis, p.cell, &p.name))).collect();
    for (cell, line, name, ty) in flows.iter().chain(&params) {
        let id = analysis.cells.iter().find(|c| c.cell.index == *cell).and_then(|c| c.cell.id.clone());
        let at = |message: String| Diagnostic { cell: Some(*cell), cell_id: id.clone(), line: *line, message };
        match ty {
            Some(ty) => {
                if let Some(why) = unnameable(ty) {
                    problems.push(at(format!("`{name}` has type `{ty}`, which a component cannot write down ({why}); give it a concrete type, e.g. `.collect::<Vec<_>>()` or an annotation")));
                }
            }
            None => problems.push(at(format!("the compiler did not say what type `{name}` has"))),
        }
    }
    let typed_by = |cell: usize, ty: &Option<String>| ty.as_ref().map(|_| if analysis.kernel_typed.contains(&cell) { "kernel" } else { "rustc" }.to_owned());
    let flow_types: Vec<(Option<String>, Option<String>)> = analysis
        .flows
        .iter()
        .map(|f| {
            let ty = analysis.settled.get(&(f.defined_in, f.name.clone())).cloned();
            (typed_by(f.defined_in, &ty), ty)
        })
        .collect();
    let param_types: Vec<(Option<String>, Option<String>)> = analysis
        .parameters
        .iter()
        .map(|p| {
            let ty = analysis.settled.get(&(p.cell, p.name.clone())).cloned();
            (typed_by(p.cell, &ty), ty)
        })
        .collect();
    for (flow, (by, ty)) in analysis.flows.iter_mut().zip(flow_types) {
        flow.codec = ty.as_deref().map(|t| codec_for(t).to_owned());
        flow.ty = ty;
        flow.typed_by = by;
    }
    for (parameter, (by, ty)) in analysis.parameters.iter_mut().zip(param_types) {
        parameter.ty = ty;
        parameter.typed_by = by;
    }
    problems.dedup();
    if !problems.is_empty() {
        analysis.diagnostics.append(&mut problems);
        return Ok(());
    }

    // Pass 2: what the components rely on.
    let (workspace, markers) = generate::workspace(inputs, analysis, &Probe::Contracts);
    let map = workspace.maps[Path::new(PROBE_FILE)].clone();
    let outcome = check(root, &workspace, inputs.handle, asking, progress)?;
    let mut rest = Vec::new();
    let mut problems = Vec::new();
    for error in &outcome.errors {
        let Some(asked) = (error.file.as_deref() == Some(PROBE_FILE)).then(|| markers.get(&error.line)).flatten() else {
            rest.push(error);
            continue;
        };
        let message = contract_problem(asked, error, analysis);
        let diagnostic = at(&map, error.line, message);
        if !problems.contains(&diagnostic) {
            problems.push(diagnostic);
        }
    }
    problems.extend(other_errors(&rest, &map, &outcome.stderr_tail, outcome.success || !outcome.errors.is_empty()));
    analysis.diagnostics.append(&mut problems);
    analysis.diagnostics.sort_by_key(|d| (d.cell.is_none(), d.cell, d.line));
    Ok(())
}

/// The words for a failed check of pass 2.
fn contract_problem(asked: &str, error: &Message, analysis: &Analysis) -> String {
    let code = error.code.as_deref().unwrap_or("");
    let not_in_scope = matches!(code, "E0412" | "E0433" | "E0422" | "E0425");
    if let Some(param) = asked.strip_prefix("fn infer(").and_then(|s| s.strip_suffix(')')) {
        let made = analysis.flows.iter().find(|f| f.name == param).and_then(|f| f.ty.clone()).unwrap_or_default();
        return format!("`fn infer` takes `{param}` as a different type than the train step makes (`{made}`): {}", error.message);
    }
    if asked == "fn infer" {
        let infer = analysis.infer.as_ref();
        let (input, output) = (infer.and_then(|i| i.input()).map_or("", |i| i.1), infer.map_or("", |i| i.signature.output.as_str()));
        if error.message.contains("InferInput") {
            return format!(
                "`fn infer`'s input type `{input}` cannot come from an inference request: use numbers, bool or String, in `Vec<…>` or `[T; N]` (one tensor)"
            );
        }
        if error.message.contains("InferOutput") {
            return format!(
                "`fn infer`'s output type `{output}` cannot answer an inference request: use numbers, bool or String, in `Vec<…>` or `[T; N]`, or a `Result` of one"
            );
        }
        return format!("`fn infer`: {}", error.message);
    }
    if let Some(p) = analysis.parameters.iter().find(|p| p.name == asked) {
        let ty = p.ty.as_deref().unwrap_or("_");
        if not_in_scope {
            return format!("parameter `{asked}` has type `{ty}`, which is not in scope in a component: {}", error.message);
        }
        return format!("parameter `{asked}` has type `{ty}`, which cannot be set from the command line (numbers, bool, char, String and &str can)");
    }
    let ty = analysis.flows.iter().find(|f| f.name == asked).and_then(|f| f.ty.as_deref()).unwrap_or("_");
    if not_in_scope {
        return format!(
            "the compiler calls the type of `{asked}` `{ty}`, which is not in scope in a component ({}); add a `use` for it to a setup cell",
            error.message
        );
    }
    if code == "E0277" {
        return format!(
            "`{asked}` has type `{ty}`, which has no codec to cross to the next step: derive serde's `Serialize` and `Deserialize` for it (JSON), or hand on a polars DataFrame (Parquet) or a candle Tensor or VarMap (safetensors)"
        );
    }
    format!("`{asked}` (`{ty}`): {}", error.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe's write leaves a component's existing source alone (its text and its mtime,
    /// which is what cargo's fingerprint reads), writes one that is missing, and always writes
    /// the probe's own.
    #[test]
    fn the_probe_writes_its_own_source_and_only_missing_components() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let files = |data: &str, probe: &str| -> BTreeMap<std::path::PathBuf, String> {
            [
                ("Cargo.toml", "[workspace]\n"),
                ("data/Cargo.toml", "[package]\n"),
                ("data/src/main.rs", data),
                ("train/src/main.rs", data),
                ("probe/src/main.rs", probe),
            ]
            .into_iter()
            .map(|(p, t)| (p.into(), t.to_owned()))
            .collect()
        };
        Workspace { files: files("// final\n", "// probe 1\n"), ..Workspace::default() }.write(root).unwrap();
        std::fs::remove_file(root.join("train/src/main.rs")).unwrap();
        let modified = |p: &str| std::fs::metadata(root.join(p)).unwrap().modified().unwrap();
        let before = modified("data/src/main.rs");
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_for_probe(root, &Workspace { files: files("// half-typed\n", "// probe 2\n"), ..Workspace::default() }).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!((read("data/src/main.rs").as_str(), modified("data/src/main.rs")), ("// final\n", before));
        assert_eq!(read("train/src/main.rs"), "// half-typed\n", "a missing member gets a source, or cargo cannot load the workspace");
        assert_eq!(read("probe/src/main.rs"), "// probe 2\n");
    }

    #[test]
    fn codecs_by_type() {
        assert_eq!(codec_for("DataFrame"), "parquet");
        assert_eq!(codec_for("polars::prelude::DataFrame"), "parquet");
        assert_eq!(codec_for("candle_nn::VarMap"), "safetensors");
        assert_eq!(codec_for("Tensor"), "safetensors");
        assert_eq!(codec_for("Vec<Tensor>"), "json");
        assert_eq!(codec_for("HashMap<String, f32>"), "json");
    }

    #[test]
    fn settled_and_unnameable_types() {
        assert_eq!(settle("Vec<{float}>"), "Vec<f64>");
        assert_eq!(settle("{integer}"), "i32");
        assert!(unnameable("Map<std::ops::Range<i32>, {closure@probe/src/main.rs:4:20: 4:23}>").is_some());
        assert!(unnameable("impl Iterator<Item = f32>").is_some());
        assert!(unnameable("Vec<Vec<f32>>").is_none());
    }
}

//! The generated workspace: one crate per role (data, train, infer) plus the probe the
//! compiler reads types from, all sharing one `Cargo.lock`, one target directory and the
//! notebook's `:dep`s.
//!
//! The cells' code is copied as written (comments included): items at module level,
//! statements in the step's body, framed by the few lines that read parameters and values in
//! and hand values on. A [`SourceMap`] remembers which cell and line each generated line came
//! from, so a compiler error in generated code is reported at the notebook's cell and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::{Analysis, Flow, StepCell};
use crate::cell::{Fragment, FragmentKind};
use crate::deps::{self, Dependency};
use crate::tags::Step;

/// Where a generated line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub cell: usize,
    pub cell_id: Option<String>,
    pub line: usize,
}

/// Generated line (1-based) → origin; `None` for lines Kiln wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap(Vec<Option<Origin>>);

impl SourceMap {
    pub fn origin(&self, line: usize) -> Option<&Origin> {
        self.0.get(line.checked_sub(1)?).and_then(Option::as_ref)
    }
}

/// A source file being written, line by line, with where each line came from.
#[derive(Default)]
struct Writer {
    text: String,
    map: SourceMap,
}

impl Writer {
    /// Lines Kiln writes.
    fn line(&mut self, text: impl AsRef<str>) {
        for line in text.as_ref().split('\n') {
            self.text.push_str(line);
            self.text.push('\n');
            self.map.0.push(None);
        }
    }

    /// A cell's fragment, indented by `indent` unless that would change a string literal.
    fn fragment(&mut self, cell: &StepCell, fragment: &Fragment, indent: &str, suffix: &str) {
        if fragment.blank_before {
            self.line("");
        }
        let lines: Vec<&str> = fragment.text.split('\n').collect();
        let count = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            if !fragment.multiline_literal && !line.is_empty() {
                self.text.push_str(indent);
            }
            self.text.push_str(line);
            if i + 1 == count {
                self.text.push_str(suffix);
            }
            self.text.push('\n');
            self.map.0.push(Some(Origin { cell: cell.cell.index, cell_id: cell.cell.id.clone(), line: fragment.line + i }));
        }
    }

    /// A line Kiln writes that stands for a notebook place (a marker, a load).
    fn line_at(&mut self, text: impl AsRef<str>, origin: Origin) {
        self.text.push_str(text.as_ref());
        self.text.push('\n');
        self.map.0.push(Some(origin));
    }
}

/// What goes into a generated workspace besides the analysis.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub handle: &'a str,
    /// The notebook's file name, for comments and `--help`.
    pub notebook: &'a str,
    pub deps: &'a [Dependency],
    /// The `kiln` SDK crate the components build against.
    pub sdk: &'a Path,
    /// The shared target directory.
    pub target_dir: &'a Path,
    /// Extra rustflags (a faster linker).
    pub rustflags: &'a [String],
}

/// Files of a workspace, by path relative to its root, and source maps of the Rust files.
#[derive(Debug, Default)]
pub struct Workspace {
    pub files: BTreeMap<PathBuf, String>,
    pub maps: BTreeMap<PathBuf, SourceMap>,
    /// The `Cargo.lock` a new workspace starts from: the SDK's own workspace's, so the
    /// components get the versions the SDK is tested with (and reuse their builds where the
    /// target directory is shared) instead of whatever is newest on the day.
    pub lock_seed: Option<PathBuf>,
}

impl Workspace {
    /// Writes every file under `root`, leaving identical files untouched (so cargo's
    /// fingerprints, which look at mtimes, see no change). A workspace without a
    /// `Cargo.lock` gets a copy of the seed, and so does one whose root `Cargo.toml` (the
    /// notebook's `:dep` lines) changes: cargo would keep the old lock's versions and resolve
    /// only the new packages, at whatever is newest on the day, so a crate shared with the
    /// SDK's graph (a `zstd` under polars) would differ from the seed's and every build the
    /// SDK's tests made for that dependency would be missed. A workspace whose manifest is
    /// unchanged keeps its lock: the same notebook builds the same images.
    pub fn write(&self, root: &Path) -> std::io::Result<()> {
        let mut manifest_changed = false;
        for (path, text) in &self.files {
            let full = root.join(path);
            if std::fs::read_to_string(&full).ok().as_deref() == Some(text.as_str()) {
                continue;
            }
            manifest_changed |= path == Path::new("Cargo.toml");
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&full, text)?;
        }
        let lock = root.join("Cargo.lock");
        if let Some(seed) = &self.lock_seed
            && (manifest_changed || !lock.exists())
        {
            std::fs::copy(seed, &lock)?;
        }
        Ok(())
    }
}

/// The `Cargo.lock` of the workspace the SDK at `sdk` belongs to: the nearest one above it.
pub fn sdk_lock(sdk: &Path) -> Option<PathBuf> {
    sdk.ancestors().map(|dir| dir.join("Cargo.lock")).find(|lock| lock.is_file())
}

/// The package name of a role's crate.
pub fn package(handle: &str, role: &str) -> String {
    format!("{handle}-{role}")
}

pub const ROLES: [Step; 3] = [Step::Data, Step::Train, Step::Infer];

/// The kiln features the components need, given the notebook's dependencies.
pub fn sdk_features(deps: &[Dependency]) -> Vec<&'static str> {
    let mut features = vec!["serve"];
    if deps.iter().any(|d| d.name == "polars") {
        features.push("parquet");
    }
    if deps.iter().any(|d| d.name.starts_with("candle")) {
        features.push("candle");
    }
    features
}

fn manifest(inputs: &Inputs, members: &[String]) -> String {
    let mut deps: Vec<Dependency> = inputs.deps.iter().filter(|d| d.name != "kiln").cloned().collect();
    deps.push(deps::kiln(inputs.deps, inputs.sdk, &sdk_features(inputs.deps)));
    deps.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    out.push_str(&format!("# Generated by `kiln componentize` from {}; edit the notebook, not this file.\n", inputs.notebook));
    out.push_str("[workspace]\nresolver = \"3\"\n");
    out.push_str(&format!("members = [{}]\n", members.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")));
    out.push_str("\n# The notebook's `:dep` lines, and the Kiln SDK.\n[workspace.dependencies]\n");
    for dep in &deps {
        out.push_str(&format!("{} = {}\n", dep.name, deps::inline(&dep.spec)));
    }
    out.push_str("\n# Small, reproducible binaries: no debug info, symbols stripped.\n[profile.release]\ndebug = false\nstrip = true\nincremental = false\n");
    out
}

fn member_manifest(name: &str, deps: &[Dependency]) -> String {
    let mut out = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[[bin]]\nname = \"{name}\"\npath = \"src/main.rs\"\n\n[dependencies]\n"
    );
    let mut names: Vec<&str> = deps.iter().map(|d| d.name.as_str()).filter(|n| *n != "kiln").collect();
    names.push("kiln");
    names.sort();
    for name in names {
        out.push_str(&format!("{name}.workspace = true\n"));
    }
    out
}

fn cargo_config(inputs: &Inputs) -> String {
    let mut out = String::from("# Where the shared builds go; how binaries are linked.\n[build]\n");
    out.push_str(&format!("target-dir = {}\n", toml::Value::String(inputs.target_dir.to_string_lossy().into_owned())));
    if !inputs.rustflags.is_empty() {
        let flags: Vec<String> = inputs.rustflags.iter().map(|f| format!("{f:?}")).collect();
        out.push_str(&format!("rustflags = [{}]\n", flags.join(", ")));
    }
    out
}

const ALLOW: &str = "#![allow(unused_imports, unused_variables, unused_mut, unused_assignments, dead_code, unused_must_use, unreachable_code, clippy::all)]";

/// The cells that go into a step's component: setup and parameters (shared), then the
/// step's own, in notebook order.
fn cells_for<'a>(analysis: &'a Analysis, steps: &'a [Step]) -> impl Iterator<Item = &'a StepCell> {
    analysis.cells.iter().filter(move |c| steps.contains(&c.step))
}

fn header(w: &mut Writer, inputs: &Inputs, role: &str, analysis: &Analysis, steps: &[Step]) {
    let cells: Vec<String> = cells_for(analysis, steps).map(|c| format!("{} ({})", c.cell.index, c.step.name())).collect();
    w.line(format!("//! `{}`: the {role} step, generated by `kiln componentize` from {}.", inputs.handle, inputs.notebook));
    w.line(format!("//! Cells: {}. Edit the notebook, not this file.", if cells.is_empty() { "none".into() } else { cells.join(", ") }));
    w.line(ALLOW);
}

/// Module-level items of the given steps' cells.
fn items(w: &mut Writer, analysis: &Analysis, steps: &[Step]) {
    for cell in cells_for(analysis, steps) {
        let fragments: Vec<&Fragment> = cell.parsed.fragments.iter().filter(|f| f.kind == FragmentKind::Item).collect();
        if fragments.is_empty() {
            continue;
        }
        w.line("");
        w.line(format!("// ── {} · cell {} ──", cell.step.name(), cell.cell.index));
        for fragment in fragments {
            w.fragment(cell, fragment, "", "");
        }
    }
}

fn spec(w: &mut Writer, inputs: &Inputs, analysis: &Analysis, role: &str) {
    let role_variant = match role {
        "data" => "Data",
        "train" => "Train",
        _ => "Infer",
    };
    w.line("");
    w.line("static SPEC: kiln::component::Spec = kiln::component::Spec {");
    w.line(format!("    handle: {:?},", inputs.handle));
    w.line(format!("    role: kiln::api::Role::{role_variant},"));
    w.line(format!("    notebook: {:?},", inputs.notebook));
    if role == "train" {
        let register = analysis.conditions.iter().find(|c| c.action == crate::analysis::Action::Register);
        w.line(format!("    register_when: {},", register.map_or("None".to_owned(), |c| format!("Some({:?})", c.when))));
        let promote: Vec<String> = analysis
            .conditions
            .iter()
            .filter_map(|c| match &c.action {
                crate::analysis::Action::Promote(alias) => Some(format!("({alias:?}, {:?})", c.when)),
                crate::analysis::Action::Register => None,
            })
            .collect();
        w.line(format!("    promote: &[{}],", promote.join(", ")));
    } else {
        w.line("    register_when: None,");
        w.line("    promote: &[],");
    }
    if role == "infer" || analysis.parameters.is_empty() {
        w.line("    parameters: &[],");
    } else {
        w.line("    parameters: &[");
        for p in &analysis.parameters {
            w.line(format!("        kiln::component::Parameter {{ name: {:?}, ty: {:?}, default: {:?} }},", p.name, p.ty.as_deref().unwrap_or("_"), p.default));
        }
        w.line("    ],");
    }
    w.line("};");
}

fn codec_path(codec: Option<&str>) -> &'static str {
    match codec {
        Some("parquet") => "kiln::codec::Parquet",
        Some("safetensors") => "kiln::codec::Safetensors",
        _ => "kiln::codec::Json",
    }
}

fn annotation(ty: Option<&str>) -> String {
    ty.map(|t| format!(": {t}")).unwrap_or_default()
}

fn origin_of(analysis: &Analysis, cell: usize, line: usize) -> Origin {
    let id = analysis.cells.iter().find(|c| c.cell.index == cell).and_then(|c| c.cell.id.clone());
    Origin { cell, cell_id: id, line }
}

/// The body of a data or train component: parameters, setup, values in, the step's cells,
/// values out, each where the notebook has it.
fn body(w: &mut Writer, analysis: &Analysis, step: Step) {
    let steps = [Step::Setup, Step::Parameters, step];
    let mut loaded = false;
    for cell in cells_for(analysis, &steps) {
        if cell.step == step && !loaded {
            loaded = true;
            let inflows: Vec<&Flow> = analysis.flows_into(step).collect();
            if !inflows.is_empty() && step != Step::Infer {
                w.line(format!("    // ── from the {} step ──", inflows[0].from.name()));
                for flow in inflows {
                    let origin = origin_of(analysis, flow.defined_in, flow.line);
                    w.line_at(
                        format!("    let {}{} = ctx.get({:?}, {})?;", flow.name, annotation(flow.ty.as_deref()), flow.name, codec_path(flow.codec.as_deref())),
                        origin,
                    );
                }
            }
        }
        let statements: Vec<&Fragment> = cell.parsed.fragments.iter().filter(|f| f.kind != FragmentKind::Item).collect();
        if statements.is_empty() {
            continue;
        }
        w.line(format!("    // ── {} · cell {} ──", cell.step.name(), cell.cell.index));
        if cell.step == Step::Parameters {
            for p in analysis.parameters.iter().filter(|p| p.cell == cell.cell.index) {
                w.line_at(
                    format!("    let {}{} = ctx.param({:?}, {})?;", p.name, annotation(p.ty.as_deref()), p.name, p.default),
                    origin_of(analysis, p.cell, p.line),
                );
            }
            continue;
        }
        for fragment in statements {
            let suffix = if fragment.kind == FragmentKind::Trailing { ";" } else { "" };
            w.fragment(cell, fragment, "    ", suffix);
        }
        let here: Vec<usize> = cells_for(analysis, &steps).map(|c| c.cell.index).collect();
        settle_carried(w, analysis, cell, &|user| here.contains(&user), "    ");
    }
}

/// The data or train component.
fn step_component(inputs: &Inputs, analysis: &Analysis, step: Step) -> Writer {
    let role = step.name();
    let mut w = Writer::default();
    let item_steps: Vec<Step> = [Step::Setup, Step::Parameters, Step::Data, Step::Train].into_iter().filter(|s| s.rank() <= step.rank()).collect();
    header(&mut w, inputs, role, analysis, &item_steps);
    items(&mut w, analysis, &item_steps);
    spec(&mut w, inputs, analysis, role);
    w.line("");
    w.line("fn main() -> std::process::ExitCode {");
    w.line("    kiln::component::main(&SPEC, cells)");
    w.line("}");
    w.line("");
    w.line("fn cells(ctx: &mut kiln::component::Context) -> Result<(), Box<dyn std::error::Error>> {");
    body(&mut w, analysis, step);
    let out = analysis.flows_out_of(step);
    if let Some(first) = out.first() {
        w.line(format!("    // ── handed to the {} step ──", first.to.name()));
    }
    for flow in out {
        let origin = origin_of(analysis, flow.defined_in, flow.line);
        w.line_at(format!("    ctx.put({:?}, {}, &{})?;", flow.name, codec_path(flow.codec.as_deref()), flow.name), origin);
    }
    w.line("    Ok(())");
    w.line("}");
    w
}

/// The infer component: every item up to the infer cells, the train values loaded once,
/// `fn infer` served.
fn infer_component(inputs: &Inputs, analysis: &Analysis) -> Writer {
    let mut w = Writer::default();
    let steps = [Step::Setup, Step::Parameters, Step::Data, Step::Train, Step::Infer];
    header(&mut w, inputs, "infer", analysis, &[Step::Setup, Step::Data, Step::Train, Step::Infer]);
    items(&mut w, analysis, &steps);
    spec(&mut w, inputs, analysis, "infer");
    let Some(infer) = &analysis.infer else {
        w.line("\nfn main() {}");
        return w;
    };
    let (input, input_ty) = infer.input().unwrap_or(("input", "()"));
    w.line("");
    w.line("fn main() -> std::process::ExitCode {");
    if infer.columns.is_empty() {
        w.line(format!("    kiln::serve::main(&SPEC, {input:?}, |ctx| {{"));
    } else {
        // A DataFrame input: the columns the infer cell declared, one input tensor each.
        w.line(format!("    let input = kiln::serve::Input::table({input:?}, &["));
        for column in &infer.columns {
            w.line(format!("        ({:?}, kiln::serve::Datatype::{:?}),", column.name, column.datatype));
        }
        w.line("    ]);");
        w.line("    kiln::serve::main(&SPEC, input, |ctx| {");
    }
    let model: Vec<&(String, String, usize)> = infer.model_params().iter().collect();
    if !model.is_empty() {
        w.line("        // ── from the train step ──");
    }
    for (name, _, _) in &model {
        if let Some(flow) = analysis.flows.iter().find(|f| f.name == *name && f.to == Step::Infer) {
            let origin = origin_of(analysis, flow.defined_in, flow.line);
            w.line_at(format!("        let {name}{} = ctx.get({name:?}, {})?;", annotation(flow.ty.as_deref()), codec_path(flow.codec.as_deref())), origin);
        }
    }
    let args: Vec<String> = model.iter().map(|(name, _, _)| format!("&{name}")).chain(std::iter::once(input.to_owned())).collect();
    let origin = origin_of(analysis, infer.cell, infer.signature.line);
    w.line_at(format!("        Ok(move |{input}: {input_ty}| infer({}))", args.join(", ")), origin);
    w.line("    })");
    w.line("}");
    w
}

/// How the probe marks a value whose type the compiler should name.
pub const MARKER: &str = "let _: () = &";

/// What the probe asks the compiler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The tagged cells up to and including `upto`, then `let _: () = &value;` for each
    /// value of that cell in `ask`: the compiler's mismatched-types error names its type as
    /// the kernel would have fixed it when the cell ended.
    Types { upto: usize, ask: Vec<String> },
    /// Every cell with the found types written out; the codecs, the parameters and the infer
    /// contract checked.
    Contracts,
}

/// `let mut x: T = x;` after cell `cell` for each carried value used by a cell in `users`:
/// the type the value had when its cell ended, as in the kernel.
fn settle_carried(w: &mut Writer, analysis: &Analysis, cell: &StepCell, users: &dyn Fn(usize) -> bool, indent: &str) {
    let Some(values) = analysis.carried.get(&cell.cell.index) else { return };
    for (name, using) in values {
        if !using.iter().any(|&u| users(u)) {
            continue;
        }
        if let Some(ty) = analysis.settled.get(&(cell.cell.index, name.clone())).filter(|t| crate::types::is_nameable(t)) {
            let line = cell.parsed.names.values.get(name).copied().unwrap_or(0);
            w.line_at(
                format!("{indent}let mut {name}: {ty} = {name}; // typed as the kernel types it when cell {} ends", cell.cell.index),
                origin_of(analysis, cell.cell.index, line),
            );
        }
    }
}

/// The probe: the tagged cells in notebook order in one function, then one line per thing
/// to ask about. Line → what it asks in `markers`.
fn probe(inputs: &Inputs, analysis: &Analysis, pass: &Probe) -> (Writer, BTreeMap<usize, String>) {
    let mut w = Writer::default();
    let steps = [Step::Setup, Step::Parameters, Step::Data, Step::Train, Step::Infer];
    header(&mut w, inputs, "probe", analysis, &steps);
    items(&mut w, analysis, &steps);
    w.line("");
    w.line("fn main() {}");
    w.line("");
    w.line("fn cells() -> Result<(), Box<dyn std::error::Error>> {");
    let upto = match pass {
        Probe::Types { upto, .. } => *upto,
        Probe::Contracts => usize::MAX,
    };
    for cell in cells_for(analysis, &[Step::Setup, Step::Parameters, Step::Data, Step::Train]).filter(|c| c.cell.index <= upto) {
        let statements: Vec<&Fragment> = cell.parsed.fragments.iter().filter(|f| f.kind != FragmentKind::Item).collect();
        if statements.is_empty() {
            continue;
        }
        w.line(format!("    // ── {} · cell {} ──", cell.step.name(), cell.cell.index));
        for fragment in statements {
            let suffix = if fragment.kind == FragmentKind::Trailing { ";" } else { "" };
            w.fragment(cell, fragment, "    ", suffix);
        }
        settle_carried(&mut w, analysis, cell, &|_| true, "    ");
    }
    let mut markers = BTreeMap::new();
    w.line("    // ── what Kiln asks the compiler ──");
    match pass {
        Probe::Types { upto, ask } => {
            let cell = analysis.cells.iter().find(|c| c.cell.index == *upto);
            for name in ask {
                let line = cell.and_then(|c| c.parsed.names.values.get(name)).copied().unwrap_or(0);
                markers.insert(w.map.0.len() + 1, name.clone());
                w.line_at(format!("    {MARKER}{name};"), origin_of(analysis, *upto, line));
            }
        }
        Probe::Contracts => {
            let mut seen = std::collections::BTreeSet::new();
            for p in &analysis.parameters {
                markers.insert(w.map.0.len() + 1, p.name.clone());
                w.line_at(format!("    kiln::component::check_param::<{}>(&{});", p.ty.as_deref().unwrap_or("_"), p.name), origin_of(analysis, p.cell, p.line));
            }
            for f in analysis.flows.iter().filter(|f| seen.insert(f.name.as_str())) {
                markers.insert(w.map.0.len() + 1, f.name.clone());
                let codec = codec_path(f.codec.as_deref());
                w.line_at(
                    format!("    kiln::codec::check::<{}, _>(&{}, {codec});", f.ty.as_deref().unwrap_or("_"), f.name),
                    origin_of(analysis, f.defined_in, f.line),
                );
            }
            if let Some(infer) = &analysis.infer
                && let Some((_, input_ty)) = infer.input()
            {
                markers.insert(w.map.0.len() + 1, "fn infer".into());
                w.line_at(
                    format!("    kiln::serve::check_io::<{input_ty}, {}>();", infer.signature.output),
                    origin_of(analysis, infer.cell, infer.signature.line),
                );
                for (name, ty, param_line) in infer.model_params() {
                    markers.insert(w.map.0.len() + 1, format!("fn infer({name})"));
                    w.line_at(format!("    let _: {ty} = &{name};"), origin_of(analysis, infer.cell, *param_line));
                }
            }
        }
    }
    w.line("    Ok(())");
    w.line("}");
    (w, markers)
}

/// The whole workspace: the three components and the probe, sharing one `Cargo.lock` (the
/// one the images' labels hash). Returns the probe's marker lines too (line → what it asks).
pub fn workspace(inputs: &Inputs, analysis: &Analysis, pass: &Probe) -> (Workspace, BTreeMap<usize, String>) {
    let mut ws = Workspace { lock_seed: sdk_lock(inputs.sdk), ..Workspace::default() };
    let roles: Vec<&str> = ROLES.iter().map(|r| r.name()).chain(std::iter::once("probe")).collect();
    let members: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    ws.files.insert("Cargo.toml".into(), manifest(inputs, &members));
    ws.files.insert(".cargo/config.toml".into(), cargo_config(inputs));
    let mut markers = BTreeMap::new();
    for role in roles {
        let name = package(inputs.handle, role);
        ws.files.insert(PathBuf::from(role).join("Cargo.toml"), member_manifest(&name, inputs.deps));
        let w = match role {
            "infer" => infer_component(inputs, analysis),
            "probe" => {
                let (w, m) = probe(inputs, analysis, pass);
                markers = m;
                w
            }
            "data" => step_component(inputs, analysis, Step::Data),
            _ => step_component(inputs, analysis, Step::Train),
        };
        let path = PathBuf::from(role).join("src/main.rs");
        ws.maps.insert(path.clone(), w.map);
        ws.files.insert(path, w.text);
    }
    (ws, markers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;
    use crate::notebook::Notebook;

    /// A new workspace starts from the SDK's lock; a later write keeps the lock it has,
    /// unless the notebook's dependencies (the root manifest) changed.
    #[test]
    fn a_new_workspace_starts_from_the_sdk_lock() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = dir.path().join("repo/server-client/client");
        std::fs::create_dir_all(&sdk).unwrap();
        std::fs::write(dir.path().join("repo/Cargo.lock"), "# the SDK's lock\n").unwrap();
        assert_eq!(sdk_lock(&sdk), Some(dir.path().join("repo/Cargo.lock")));
        let ws = Workspace { files: BTreeMap::from([("Cargo.toml".into(), "[workspace]\n".to_owned())]), lock_seed: sdk_lock(&sdk), ..Workspace::default() };
        let root = dir.path().join("generated");
        ws.write(&root).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("Cargo.lock")).unwrap(), "# the SDK's lock\n");
        std::fs::write(root.join("Cargo.lock"), "# resolved for the notebook\n").unwrap();
        ws.write(&root).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("Cargo.lock")).unwrap(), "# resolved for the notebook\n");
        // A member's manifest or code changing keeps the lock too.
        let mut edited = Workspace { files: ws.files.clone(), lock_seed: ws.lock_seed.clone(), ..Workspace::default() };
        edited.files.insert("train/src/main.rs".into(), "fn main() {}\n".to_owned());
        edited.write(&root).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("Cargo.lock")).unwrap(), "# resolved for the notebook\n");
        // A `:dep` added: the root manifest changes and the lock starts from the seed again.
        edited.files.insert("Cargo.toml".into(), "[workspace]\n[workspace.dependencies]\npolars = \"0.55\"\n".to_owned());
        edited.write(&root).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("Cargo.lock")).unwrap(), "# the SDK's lock\n");
        assert_eq!(sdk_lock(Path::new("/")), None);
    }

    #[test]
    fn a_dataframe_input_serves_its_declared_columns() {
        let cells = serde_json::json!([
            {"cell_type": "code", "id": "a", "metadata": {"tags": ["setup"]}, "source": "use polars::prelude::*;", "outputs": [], "execution_count": null},
            {"cell_type": "code", "id": "b", "metadata": {"tags": ["train"]}, "source": "let scale = 2.0;", "outputs": [], "execution_count": null},
            {"cell_type": "code", "id": "c", "metadata": {"tags": ["infer"]}, "source": "// kiln: input rows { \"petal.length\": f64, species: String }\nfn infer(scale: &f64, rows: DataFrame) -> Vec<f64> { vec![*scale; rows.height()] }", "outputs": [], "execution_count": null},
        ]);
        let text = serde_json::json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "kiln", "language": "rust", "display_name": "Rust (Kiln)"}}, "cells": cells}).to_string();
        let analysis = analyse(&Notebook::parse(&text).expect("parses"));
        assert!(analysis.diagnostics.is_empty(), "{:?}", analysis.diagnostics);
        let inputs = Inputs { handle: "petals", notebook: "t.ipynb", deps: &[], sdk: Path::new("/sdk"), target_dir: Path::new("/t"), rustflags: &[] };
        let main = infer_component(&inputs, &analysis).text;
        let serving = &main[main.find("fn main()").expect("a main")..];
        expect_test::expect![[r#"
            fn main() -> std::process::ExitCode {
                let input = kiln::serve::Input::table("rows", &[
                    ("petal.length", kiln::serve::Datatype::F64),
                    ("species", kiln::serve::Datatype::Bytes),
                ]);
                kiln::serve::main(&SPEC, input, |ctx| {
                    // ── from the train step ──
                    let scale = ctx.get("scale", kiln::codec::Json)?;
                    Ok(move |rows: DataFrame| infer(&scale, rows))
                })
            }
        "#]]
        .assert_eq(serving);
    }
}

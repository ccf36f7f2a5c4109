//! Which names each step defines and uses, and so which values cross the data → train and
//! train → infer boundaries; the parameters; the `fn infer` contract; problems as
//! diagnostics naming the cell and the line.
//!
//! This part reads syntax only. The values' types come from the compiler ([`crate::types`]),
//! which fills in [`Flow::ty`], [`Flow::codec`] and [`Parameter::ty`].

use std::collections::BTreeMap;

use crate::cell::{self, InferSignature, ParsedCell};
use crate::diagnostic::Diagnostic;
use crate::notebook::{Cell, Notebook};
use crate::table_input::{self, InputColumn, TableInput};
use crate::tags::{Step, steps_of};

/// A value one step defines and a later step uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flow {
    pub name: String,
    pub from: Step,
    pub to: Step,
    /// The cell that defines it (index) and the line.
    pub defined_in: usize,
    pub line: usize,
    /// Its Rust type, from the compiler.
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// How it crosses: `json`, `parquet`, `safetensors`.
    pub codec: Option<String>,
    /// Who said the type: `kernel` (recorded when the notebook ran) or `rustc` (the probe).
    pub typed_by: Option<String>,
}

/// A `let name = <literal>;` of a `parameters` cell: overridable when the pipeline runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Parameter {
    pub name: String,
    /// The literal as written (`0.01`, `"adam"`).
    pub default: String,
    pub cell: usize,
    pub line: usize,
    /// Its type, from the compiler: what it is when its cell ends, as in the kernel.
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// `kernel` or `rustc`, as for [`Flow::typed_by`].
    pub typed_by: Option<String>,
}

/// The served function: where it is and what it takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Infer {
    pub cell: usize,
    #[serde(flatten)]
    pub signature: InferSignature,
    /// A DataFrame input's columns, from the infer cell's `// kiln: input NAME { … }` line;
    /// empty for a tensor input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<InputColumn>,
}

impl Infer {
    /// The request input: the last parameter's name and type.
    pub fn input(&self) -> Option<(&str, &str)> {
        self.signature.params.last().map(|(name, ty, _)| (name.as_str(), ty.as_str()))
    }

    /// The leading parameters: train values, by reference.
    pub fn model_params(&self) -> &[(String, String, usize)] {
        let n = self.signature.params.len().saturating_sub(1);
        &self.signature.params[..n]
    }
}

/// What a train step does with its model when a condition on its run holds, declared in a
/// train cell: `// kiln: register when metrics.accuracy >= 0.9`,
/// `// kiln: promote champion when metrics.accuracy >= 0.95`. The condition is a run filter
/// (the language of `kiln runs list --filter`), checked against the train run's params,
/// latest metrics and tags.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Condition {
    /// `register`, or the alias to point at the new version.
    pub action: Action,
    pub when: String,
    pub cell: usize,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Register,
    Promote(String),
}

/// A condition line (what follows `kiln:`): the action and the filter, or what is wrong.
fn condition(text: &str) -> Result<(Action, String), String> {
    let (head, when) = text.split_once(" when ").ok_or_else(|| format!("`{text}`: write `register when CONDITION` or `promote ALIAS when CONDITION`"))?;
    let action = match head.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["register"] => Action::Register,
        ["promote", alias] => {
            kiln_api::limits::alias("alias", alias).map_err(|e| format!("`{head}`: {}", e.message.trim_start_matches("alias: ")))?;
            Action::Promote((*alias).to_owned())
        }
        _ => return Err(format!("`{head}`: expected `register` or `promote ALIAS`")),
    };
    let when = when.trim().to_owned();
    kiln_api::search::parse_filter(&when).map_err(|e| format!("condition `{when}`: {}", e.message))?;
    Ok((action, when))
}

/// A code cell that belongs to a step, with its parse.
#[derive(Debug, Clone)]
pub struct StepCell {
    pub cell: Cell,
    pub step: Step,
    pub parsed: ParsedCell,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Analysis {
    /// Cell indices per step, in notebook order.
    pub steps: BTreeMap<Step, Vec<usize>>,
    /// Code cells with no step tag: exploration, left out of every component.
    pub untagged: Vec<usize>,
    /// Cells tagged `skip`: left out on purpose.
    pub skipped: Vec<usize>,
    pub parameters: Vec<Parameter>,
    pub flows: Vec<Flow>,
    pub infer: Option<Infer>,
    /// When the train step registers and promotes its model (always registers without one).
    pub conditions: Vec<Condition>,
    pub diagnostics: Vec<Diagnostic>,
    /// The tagged cells (skip and untagged left out), in notebook order, for code generation.
    #[serde(skip)]
    pub cells: Vec<StepCell>,
    /// Values a later tagged cell uses: defining cell → name → the cells using it. In the
    /// kernel a value's type is fixed when its cell ends, so generated code fixes it there too.
    #[serde(skip)]
    pub carried: BTreeMap<usize, BTreeMap<String, Vec<usize>>>,
    /// The type each carried value, parameter and boundary value had when its cell ended, from
    /// the compiler: (cell, name) → type.
    #[serde(skip)]
    pub settled: BTreeMap<(usize, String), String>,
    /// The cells whose types the kernel recorded (the probe did not ask about them).
    #[serde(skip)]
    pub kernel_typed: std::collections::BTreeSet<usize>,
}

impl Analysis {
    /// The cells of `step`, in notebook order.
    pub fn cells_of(&self, step: Step) -> impl Iterator<Item = &StepCell> {
        self.cells.iter().filter(move |c| c.step == step)
    }

    /// Values flowing into `step`.
    pub fn flows_into(&self, step: Step) -> impl Iterator<Item = &Flow> {
        self.flows.iter().filter(move |f| f.to == step)
    }

    /// Values flowing out of `step`, each once.
    pub fn flows_out_of(&self, step: Step) -> Vec<&Flow> {
        let mut seen = std::collections::BTreeSet::new();
        self.flows.iter().filter(|f| f.from == step && seen.insert(f.name.as_str())).collect()
    }
}

fn diagnostic(cell: &Cell, line: usize, message: String) -> Diagnostic {
    Diagnostic { cell: Some(cell.index), cell_id: cell.id.clone(), line, message }
}

/// Analyses `notebook`: the steps, the values crossing them, and every problem found. One
/// pass a question, each adding what it finds wrong to `diagnostics`.
pub fn analyse(notebook: &Notebook) -> Analysis {
    let mut diagnostics = Vec::new();
    let (steps, untagged, skipped, parsed) = read_cells(notebook, &mut diagnostics);
    let mut flows = flows_between_steps(&parsed, &mut diagnostics);
    let parameters = parameters(&parsed, &mut diagnostics);
    let mut infer = infer_contract(notebook, &steps, &parsed, &mut flows, &mut diagnostics);
    table_input_columns(notebook, &parsed, infer.as_mut(), &mut diagnostics);
    let conditions = conditions(&parsed, &mut diagnostics);
    one_step_per_name(&parsed, &mut diagnostics);

    // Values in the order they are made; problems cell by cell, line by line, then those of
    // the whole notebook.
    flows.sort_by_key(|f| (f.from, f.to, f.defined_in, f.line));
    diagnostics.sort_by_key(|d| (d.cell.is_none(), d.cell, d.line));
    diagnostics.dedup();
    let cells: Vec<StepCell> = parsed.into_iter().filter_map(|(cell, step, parsed)| Some(StepCell { cell: cell.clone(), step: step?, parsed })).collect();
    let carried = carried_values(&cells);
    Analysis {
        steps,
        untagged,
        skipped,
        parameters,
        flows,
        infer,
        conditions,
        diagnostics,
        cells,
        carried,
        settled: BTreeMap::new(),
        kernel_typed: Default::default(),
    }
}

/// A cell kept for analysis: its step (`None`: untagged) and its parse, in notebook order.
type ParsedCells<'a> = Vec<(&'a Cell, Option<Step>, ParsedCell)>;

/// Each cell's step and parse; skipped cells only listed, a cell with several steps reported.
fn read_cells<'a>(notebook: &'a Notebook, diagnostics: &mut Vec<Diagnostic>) -> (BTreeMap<Step, Vec<usize>>, Vec<usize>, Vec<usize>, ParsedCells<'a>) {
    let mut steps: BTreeMap<Step, Vec<usize>> = BTreeMap::new();
    let mut untagged = Vec::new();
    let mut skipped = Vec::new();
    let mut parsed: ParsedCells<'a> = Vec::new();
    for cell in &notebook.cells {
        let cell_steps = steps_of(cell);
        if cell_steps.contains(&Step::Skip) {
            skipped.push(cell.index);
            continue;
        }
        if cell_steps.len() > 1 {
            let list: Vec<&str> = cell_steps.iter().map(|s| s.name()).collect();
            diagnostics.push(diagnostic(cell, 0, format!("is tagged with several steps ({}); a cell belongs to one step", list.join(", "))));
        }
        let step = cell_steps.first().copied();
        match step {
            Some(step) => steps.entry(step).or_default().push(cell.index),
            None => untagged.push(cell.index),
        }
        match cell::parse(cell) {
            Ok(names) => parsed.push((cell, step, names)),
            Err(error) => {
                if step.is_some() {
                    diagnostics.push(error);
                }
            }
        }
    }
    (steps, untagged, skipped, parsed)
}

/// The values a step uses from an earlier one (items travel as code, not as values); a use
/// of an untagged cell's or a later step's value reported.
fn flows_between_steps(parsed: &ParsedCells, diagnostics: &mut Vec<Diagnostic>) -> Vec<Flow> {
    let mut flows: Vec<Flow> = Vec::new();
    for (position, (cell, step, parse)) in parsed.iter().enumerate() {
        let Some(step) = *step else { continue };
        let names = &parse.names;
        let uses = names.uses.iter().map(|(n, l)| (n, *l, false)).chain(names.item_uses.iter().map(|(n, l)| (n, *l, true)));
        for (name, line, in_item) in uses {
            // Inside a `fn` body only items are visible; a cell's `let`s are not.
            let defines = |p: &ParsedCell| if in_item { p.names.items.contains_key(name) } else { p.names.defines(name) };
            let defined_here = if in_item { names.items.get(name).copied() } else { names.definition(name) };
            if defined_here.is_some_and(|defined| in_item || defined <= line) {
                continue; // defined in this cell (items are visible from anywhere in it)
            }
            // The latest definition before this cell.
            let Some((defining, defining_step, defining_parse)) = parsed[..position].iter().rev().find(|(_, _, p)| defines(p)).map(|(c, s, p)| (*c, *s, p))
            else {
                // Maybe a later cell defines it.
                if let Some((later, Some(later_step), _)) = parsed[position + 1..].iter().find(|(_, _, p)| defines(p))
                    && later_step.rank() > step.rank()
                {
                    diagnostics.push(diagnostic(
                        cell,
                        line,
                        format!("the {} step uses `{name}`, which the later {} step defines ({})", step.name(), later_step.name(), later.label()),
                    ));
                }
                continue;
            };
            match defining_step {
                None => diagnostics.push(diagnostic(
                    cell,
                    line,
                    format!(
                        "`{name}` is defined only in untagged {} (exploration is left out of components); tag that cell or move the definition",
                        defining.label()
                    ),
                )),
                Some(Step::Setup | Step::Parameters) => {}
                Some(from) if from == step => {}
                Some(from) if from.rank() < step.rank() => {
                    // Items (fns, types) travel as code into every later component; values
                    // travel as artifacts.
                    if let Some(&defined_line) = defining_parse.names.values.get(name)
                        && !flows.iter().any(|f| f.name == *name && f.from == from && f.to == step)
                    {
                        flows.push(Flow {
                            name: name.clone(),
                            from,
                            to: step,
                            defined_in: defining.index,
                            line: defined_line,
                            ty: None,
                            codec: None,
                            typed_by: None,
                        });
                    }
                }
                Some(from) => diagnostics.push(diagnostic(
                    cell,
                    line,
                    format!("the {} step uses `{name}` from the later {} step ({})", step.name(), from.name(), defining.label()),
                )),
            }
        }
    }
    flows
}

/// Parameters: literal bindings only, since they are overridden at run time.
fn parameters(parsed: &ParsedCells, diagnostics: &mut Vec<Diagnostic>) -> Vec<Parameter> {
    let mut parameters = Vec::new();
    for (cell, step, parse) in parsed {
        if *step != Some(Step::Parameters) {
            continue;
        }
        for (name, line) in &parse.names.non_literal_lets {
            diagnostics.push(diagnostic(
                cell,
                *line,
                format!("parameter `{name}` is not a literal; parameters are overridden at run time, so each must be `let name = <literal>;`"),
            ));
        }
        for (name, (default, line)) in &parse.names.literals {
            parameters.push(Parameter { name: name.clone(), default: default.clone(), cell: cell.index, line: *line, ty: None, typed_by: None });
        }
    }
    parameters.sort_by_key(|p| (p.cell, p.line));
    parameters
}

/// The infer contract: `fn infer(model: &Model, …, input: Input) -> Output`, where the
/// leading parameters are train values by reference (each a flow into infer) and the last is
/// the request input.
fn infer_contract(
    notebook: &Notebook,
    steps: &BTreeMap<Step, Vec<usize>>,
    parsed: &ParsedCells,
    flows: &mut Vec<Flow>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Infer> {
    let mut infer = None;
    for (cell, step, parse) in parsed {
        if *step != Some(Step::Infer) {
            continue;
        }
        let Some(signature) = &parse.names.infer else { continue };
        let found = Infer { cell: cell.index, signature: signature.clone(), columns: Vec::new() };
        if found.signature.params.is_empty() {
            diagnostics.push(diagnostic(cell, signature.line, "`fn infer` takes no parameters; its last parameter is the request input".into()));
        }
        for (name, ty, line) in found.model_params() {
            let train_value = parsed.iter().find(|(_, s, p)| *s == Some(Step::Train) && p.names.values.contains_key(name));
            match train_value {
                None => diagnostics.push(diagnostic(
                    cell,
                    *line,
                    format!("`fn infer`'s parameter `{name}` is not a value of the train step; its leading parameters take train values (by name), its last the request input"),
                )),
                Some(_) if !ty.trim_start().starts_with('&') => diagnostics.push(diagnostic(cell, *line, format!("`fn infer` takes the train value `{name}` by value; take it by reference (`{name}: &{ty}`): the model is shared by every request"))),
                Some((train_cell, _, p)) => {
                    if !flows.iter().any(|f| f.name == *name && f.to == Step::Infer) {
                        flows.push(Flow { name: name.clone(), from: Step::Train, to: Step::Infer, defined_in: train_cell.index, line: p.names.values[name], ty: None, codec: None, typed_by: None });
                    }
                }
            }
        }
        if let Some((name, _)) = found.input()
            && found.signature.params.len() > 1
            && parsed.iter().any(|(_, s, p)| *s == Some(Step::Train) && p.names.values.contains_key(name))
        {
            let line = found.signature.params.last().map_or(signature.line, |p| p.2);
            diagnostics.push(diagnostic(
                cell,
                line,
                format!("`fn infer`'s last parameter `{name}` is the request input, but it is named after a train value; rename it"),
            ));
        }
        infer = Some(found);
        break;
    }
    if infer.is_none() {
        let (cell, id) = steps
            .get(&Step::Infer)
            .and_then(|cells| cells.first())
            .map_or((None, None), |&i| (Some(i), notebook.cells.iter().find(|c| c.index == i).and_then(|c| c.id.clone())));
        diagnostics.push(Diagnostic {
            cell,
            cell_id: id,
            line: 0,
            message: "no `fn infer(…)` in the cells tagged infer: the served component calls it".into(),
        });
    }
    infer
}

/// A DataFrame input's columns: one `// kiln: input NAME { … }` in the infer cells, naming
/// `fn infer`'s input; required when that input is a DataFrame.
fn table_input_columns(notebook: &Notebook, parsed: &ParsedCells, infer: Option<&mut Infer>, diagnostics: &mut Vec<Diagnostic>) {
    let mut declared: Option<(TableInput, &Cell, usize)> = None;
    for (cell, step, parse) in parsed {
        for (text, line) in &parse.inputs {
            if *step != Some(Step::Infer) {
                diagnostics.push(diagnostic(
                    cell,
                    *line,
                    format!("`{text}` belongs in an infer cell: it declares the columns of `fn infer`'s DataFrame input"),
                ));
                continue;
            }
            match table_input::parse(text) {
                Ok(_) if declared.is_some() => diagnostics.push(diagnostic(cell, *line, "a second `input` line: declare the input's columns once".into())),
                Ok(table) => declared = Some((table, cell, *line)),
                Err(message) => diagnostics.push(diagnostic(cell, *line, message)),
            }
        }
    }
    if let Some(found) = infer
        && let Some((name, ty)) = found.input().map(|(n, t)| (n.to_owned(), t.to_owned()))
    {
        let cell = notebook.cells.iter().find(|c| c.index == found.cell);
        let line = found.signature.params.last().map_or(found.signature.line, |p| p.2);
        match declared {
            Some((table, at, at_line)) if table.name != name => {
                diagnostics.push(diagnostic(at, at_line, format!("`input {}` names no input: `fn infer`'s request input is `{name}`", table.name)));
            }
            Some((_, at, at_line)) if !table_input::is_dataframe(&ty) => {
                diagnostics.push(diagnostic(
                    at,
                    at_line,
                    format!("columns are for a DataFrame input, and `{name}` is `{ty}`; drop the `input` line or take `{name}: DataFrame`"),
                ));
            }
            Some((table, ..)) => found.columns = table.columns,
            None if table_input::is_dataframe(&ty) => {
                if let Some(cell) = cell {
                    diagnostics.push(diagnostic(
                        cell,
                        line,
                        format!("`fn infer` takes a DataFrame `{name}`: declare its columns in the infer cell, `// kiln: input {name} {{ column: f64, … }}`, so requests and clients know them"),
                    ));
                }
            }
            None => {}
        }
    }
}

/// Conditions on the train run: in train cells, one `register when` at most.
fn conditions(parsed: &ParsedCells, diagnostics: &mut Vec<Diagnostic>) -> Vec<Condition> {
    let mut conditions: Vec<Condition> = Vec::new();
    for (cell, step, parse) in parsed {
        for (text, line) in &parse.conditions {
            if *step != Some(Step::Train) {
                diagnostics.push(diagnostic(cell, *line, format!("`{text}` belongs in a train cell: it decides what the train step does with its model")));
                continue;
            }
            match condition(text) {
                Ok((action, when)) => {
                    if action == Action::Register && conditions.iter().any(|c| c.action == Action::Register) {
                        diagnostics.push(diagnostic(cell, *line, "a second `register when`: give one condition (join clauses with `and`)".into()));
                        continue;
                    }
                    conditions.push(Condition { action, when, cell: cell.index, line: *line });
                }
                Err(message) => diagnostics.push(diagnostic(cell, *line, message)),
            }
        }
    }
    conditions
}

/// The same name defined by two different steps (setup and parameters are shared by all).
fn one_step_per_name(parsed: &ParsedCells, diagnostics: &mut Vec<Diagnostic>) {
    let mut first_definition: BTreeMap<&str, (&Cell, Step)> = BTreeMap::new();
    for (cell, step, parse) in parsed {
        let Some(step) = *step else { continue };
        for (name, &line) in parse.names.values.iter().chain(&parse.names.items) {
            match first_definition.get(name.as_str()) {
                Some((other, other_step)) if *other_step != step => diagnostics.push(diagnostic(
                    cell,
                    line,
                    format!("`{name}` is also defined by the {} step ({}); a name belongs to one step", other_step.name(), other.label()),
                )),
                Some(_) => {}
                None => {
                    first_definition.insert(name, (cell, step));
                }
            }
        }
    }
}

/// For each tagged cell, the values it defines that later tagged cells' statements use (the
/// latest definition before the using cell wins).
fn carried_values(cells: &[StepCell]) -> BTreeMap<usize, BTreeMap<String, Vec<usize>>> {
    let mut carried: BTreeMap<usize, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for (position, user) in cells.iter().enumerate() {
        for (name, &line) in &user.parsed.names.uses {
            if user.parsed.names.values.get(name).is_some_and(|&defined| defined <= line) {
                continue;
            }
            if let Some(definer) = cells[..position].iter().rev().find(|c| c.parsed.names.values.contains_key(name)) {
                carried.entry(definer.cell.index).or_default().entry(name.clone()).or_default().push(user.cell.index);
            }
        }
    }
    carried
}

/// Marks types the kernel recorded (the rest are the compiler's answers to the probe).
fn by_kernel(typed_by: Option<&str>) -> &'static str {
    if typed_by == Some("kernel") { "  [typed by the kernel]" } else { "" }
}

/// The analysis as text, as `kiln show` prints it: the steps, the graph with each boundary
/// value's type and codec, then the problems.
pub fn render(analysis: &Analysis) -> String {
    let mut out = String::new();
    let list = |cells: &[usize]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
    for (step, cells) in &analysis.steps {
        out.push_str(&format!("{:<10} cells {}\n", step.name(), list(cells)));
    }
    if !analysis.untagged.is_empty() {
        out.push_str(&format!("{:<10} cells {} (left out)\n", "untagged", list(&analysis.untagged)));
    }
    if !analysis.skipped.is_empty() {
        out.push_str(&format!("{:<10} cells {} (left out)\n", "skip", list(&analysis.skipped)));
    }
    if !analysis.parameters.is_empty() {
        out.push_str("\nparameters\n");
        for p in &analysis.parameters {
            let ty = p.ty.as_deref().map(|t| format!(": {t}")).unwrap_or_default();
            let by = by_kernel(p.typed_by.as_deref());
            out.push_str(&format!("  {}{ty} = {}  (cell {}, line {}){by}\n", p.name, p.default, p.cell, p.line));
        }
    }
    let present: Vec<Step> = [Step::Data, Step::Train, Step::Infer].into_iter().filter(|s| analysis.steps.contains_key(s)).collect();
    if present.len() > 1 {
        let chain: Vec<&str> = present.iter().map(|s| s.name()).collect();
        out.push_str(&format!("\n{}\n", chain.join(" ──► ")));
    }
    for (from, to) in [(Step::Data, Step::Train), (Step::Train, Step::Infer)] {
        let flows: Vec<&Flow> = analysis.flows.iter().filter(|f| f.from == from && f.to == to).collect();
        if flows.is_empty() {
            continue;
        }
        out.push_str(&format!("  {} → {}\n", from.name(), to.name()));
        for flow in flows {
            let ty = flow.ty.as_deref().map(|t| format!(": {t}")).unwrap_or_default();
            let codec = flow.codec.as_deref().map(|c| format!(" as {c}")).unwrap_or_default();
            let by = by_kernel(flow.typed_by.as_deref());
            out.push_str(&format!("    {}{ty}{codec}  (cell {}, line {}){by}\n", flow.name, flow.defined_in, flow.line));
        }
    }
    for c in &analysis.conditions {
        let what = match &c.action {
            Action::Register => "register".to_owned(),
            Action::Promote(alias) => format!("promote to `{alias}`"),
        };
        out.push_str(&format!("  train: {what} when {}  (cell {}, line {})\n", c.when, c.cell, c.line));
    }
    if let Some(infer) = &analysis.infer {
        let params: Vec<String> = infer.signature.params.iter().map(|(n, t, _)| format!("{n}: {t}")).collect();
        out.push_str(&format!(
            "  served: fn infer({}) -> {}  (cell {}, line {})\n",
            params.join(", "),
            infer.signature.output,
            infer.cell,
            infer.signature.line
        ));
        if let (Some((name, _)), false) = (infer.input(), infer.columns.is_empty()) {
            let columns: Vec<String> = infer.columns.iter().map(|c| format!("{}: {} ({})", c.name, c.ty, c.datatype)).collect();
            out.push_str(&format!("    input `{name}`, one tensor per column: {}\n", columns.join(", ")));
        }
    }
    if !analysis.diagnostics.is_empty() {
        out.push('\n');
    }
    for diagnostic in &analysis.diagnostics {
        out.push_str(&format!("error: {diagnostic}\n"));
    }
    out
}

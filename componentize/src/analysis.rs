//! Which names each step defines and uses, and so which values cross the data → train and
//! train → infer boundaries; problems as diagnostics naming the cell and the line.
//!
//! Cells are parsed with `syn` (wrapped in a function body, since a cell mixes statements and
//! items). Uses inside macro calls are found by scanning their tokens. Types of the boundary
//! values are not known here: they come from the compiler (a later part of this crate).

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

use crate::notebook::{Cell, Notebook};
use crate::tags::{Step, steps_of};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The cell's index among all cells; `None` for a problem of the notebook as a whole.
    pub cell: Option<usize>,
    pub cell_id: Option<String>,
    /// 1-based line in the cell; 0 when the problem is the cell as a whole.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.cell_id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default();
        match self.cell {
            None => write!(f, "notebook: {}", self.message),
            Some(cell) if self.line == 0 => write!(f, "cell {cell}{id}: {}", self.message),
            Some(cell) => write!(f, "cell {cell}{id}, line {}: {}", self.line, self.message),
        }
    }
}

/// A value one step defines and a later step uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flow {
    pub name: String,
    pub from: Step,
    pub to: Step,
    /// The cell that defines it (index).
    pub defined_in: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Analysis {
    /// Cell indices per step, in notebook order.
    pub steps: BTreeMap<Step, Vec<usize>>,
    /// Code cells with no step tag: exploration, left out of every component.
    pub untagged: Vec<usize>,
    pub flows: Vec<Flow>,
    pub diagnostics: Vec<Diagnostic>,
}

/// What one cell defines and uses.
#[derive(Debug, Default)]
struct Names {
    /// Name → line, for `let` bindings and items (fn, struct, enum, const, static, type, trait).
    defines: BTreeMap<String, usize>,
    /// Name → first line it is used on.
    uses: BTreeMap<String, usize>,
    /// `let` bindings whose value is not a literal (for the parameters check).
    non_literal_lets: Vec<(String, usize)>,
    functions: BTreeSet<String>,
    /// The parameters of `fn infer`, by name, with their lines.
    infer_params: Vec<(String, usize)>,
}

/// The source with evcxr commands (`:dep …`) blanked, so line numbers stay the cell's.
fn rust_source(source: &str) -> String {
    source.lines().map(|line| if line.trim_start().starts_with(':') { "" } else { line }).collect::<Vec<_>>().join("\n")
}

fn parse(cell: &Cell) -> Result<Names, Diagnostic> {
    let wrapped = format!("fn __kiln_cell() {{\n{}\n}}", rust_source(&cell.source));
    let function: syn::ItemFn = syn::parse_str(&wrapped).map_err(|error| Diagnostic {
        cell: Some(cell.index),
        cell_id: cell.id.clone(),
        line: error.span().start().line.saturating_sub(1),
        message: format!("does not parse as Rust: {error}"),
    })?;
    let mut names = Names::default();
    for stmt in &function.block.stmts {
        match stmt {
            syn::Stmt::Local(local) => {
                let mut binder = Binder::default();
                binder.visit_pat(&local.pat);
                let literal = local.init.as_ref().is_some_and(|init| is_literal(&init.expr));
                for (name, line) in binder.0 {
                    if !literal {
                        names.non_literal_lets.push((name.clone(), line));
                    }
                    names.defines.insert(name, line);
                }
            }
            syn::Stmt::Item(item) => {
                if let syn::Item::Fn(f) = item
                    && f.sig.ident == "infer"
                {
                    for input in &f.sig.inputs {
                        if let syn::FnArg::Typed(typed) = input {
                            let mut binder = Binder::default();
                            binder.visit_pat(&typed.pat);
                            names.infer_params.extend(binder.0);
                        }
                    }
                }
                if let Some((ident, is_fn)) = item_ident(item) {
                    if is_fn {
                        names.functions.insert(ident.to_string());
                    }
                    names.defines.entry(ident.to_string()).or_insert(ident.span().start().line - 1);
                }
            }
            _ => {}
        }
    }
    let mut users = Users::default();
    users.visit_block(&function.block);
    for (name, line) in users.0 {
        names.uses.entry(name).or_insert(line);
    }
    Ok(names)
}

fn is_literal(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Lit(_) => true,
        syn::Expr::Unary(unary) => matches!(unary.op, syn::UnOp::Neg(_)) && is_literal(&unary.expr),
        syn::Expr::Paren(paren) => is_literal(&paren.expr),
        syn::Expr::Cast(cast) => is_literal(&cast.expr),
        _ => false,
    }
}

fn item_ident(item: &syn::Item) -> Option<(&syn::Ident, bool)> {
    Some(match item {
        syn::Item::Fn(f) => (&f.sig.ident, true),
        syn::Item::Struct(s) => (&s.ident, false),
        syn::Item::Enum(e) => (&e.ident, false),
        syn::Item::Const(c) => (&c.ident, false),
        syn::Item::Static(s) => (&s.ident, false),
        syn::Item::Type(t) => (&t.ident, false),
        syn::Item::Trait(t) => (&t.ident, false),
        syn::Item::Mod(m) => (&m.ident, false),
        _ => return None,
    })
}

/// Names bound by a pattern.
#[derive(Default)]
struct Binder(Vec<(String, usize)>);

impl<'a> Visit<'a> for Binder {
    fn visit_pat_ident(&mut self, pat: &'a syn::PatIdent) {
        self.0.push((pat.ident.to_string(), pat.ident.span().start().line - 1));
        syn::visit::visit_pat_ident(self, pat);
    }
}

/// Single-segment paths in expressions and types, and identifiers inside macro calls.
#[derive(Default)]
struct Users(Vec<(String, usize)>);

impl Users {
    fn tokens(&mut self, tokens: &TokenStream) {
        for tree in tokens.clone() {
            match tree {
                TokenTree::Ident(ident) => self.0.push((ident.to_string(), ident.span().start().line - 1)),
                TokenTree::Group(group) => self.tokens(&group.stream()),
                TokenTree::Literal(literal) => {
                    // Inline format arguments: println!("{loss}") uses `loss`.
                    let text = literal.to_string();
                    if text.starts_with('"') {
                        for piece in text.split('{').skip(1) {
                            let name: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            if !name.is_empty() && !name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                                self.0.push((name, literal.span().start().line - 1));
                            }
                        }
                    }
                }
                TokenTree::Punct(_) => {}
            }
        }
    }
}

impl<'a> Visit<'a> for Users {
    fn visit_path(&mut self, path: &'a syn::Path) {
        if let Some(first) = path.segments.first() {
            self.0.push((first.ident.to_string(), first.ident.span().start().line - 1));
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'a syn::Macro) {
        self.tokens(&mac.tokens);
        syn::visit::visit_macro(self, mac);
    }
}

fn diagnostic(cell: &Cell, line: usize, message: String) -> Diagnostic {
    Diagnostic { cell: Some(cell.index), cell_id: cell.id.clone(), line, message }
}

/// Analyses `notebook`: the steps, the values crossing them, and every problem found.
pub fn analyse(notebook: &Notebook) -> Analysis {
    let mut steps: BTreeMap<Step, Vec<usize>> = BTreeMap::new();
    let mut untagged = Vec::new();
    let mut diagnostics = Vec::new();
    // (cell, its step or None for untagged, its names), in notebook order; skipped cells dropped.
    let mut parsed: Vec<(&Cell, Option<Step>, Names)> = Vec::new();
    for cell in &notebook.cells {
        let cell_steps = steps_of(cell);
        if cell_steps.contains(&Step::Skip) {
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
        match parse(cell) {
            Ok(names) => parsed.push((cell, step, names)),
            Err(error) => {
                if step.is_some() {
                    diagnostics.push(error);
                }
            }
        }
    }

    let mut flows: Vec<Flow> = Vec::new();
    for (position, (cell, step, names)) in parsed.iter().enumerate() {
        let Some(step) = *step else { continue };
        if step == Step::Parameters {
            for (name, line) in &names.non_literal_lets {
                diagnostics.push(diagnostic(cell, *line, format!("parameter `{name}` is not a literal; parameters are overridden at run time, so each must be `let name = <literal>;`")));
            }
        }
        for (name, &line) in &names.uses {
            if names.defines.get(name).is_some_and(|&defined| defined <= line) {
                continue; // defined earlier in this cell
            }
            // The latest definition before this cell.
            let Some((defining, defining_step)) = parsed[..position].iter().rev().find(|(_, _, n)| n.defines.contains_key(name)).map(|(c, s, _)| (*c, *s)) else {
                // Maybe a later cell defines it.
                if let Some((later, Some(later_step), _)) = parsed[position + 1..].iter().find(|(_, _, n)| n.defines.contains_key(name))
                    && later_step.rank() > step.rank()
                {
                    diagnostics.push(diagnostic(cell, line, format!("the {} step uses `{name}`, which the later {} step defines ({})", step.name(), later_step.name(), later.label())));
                }
                continue;
            };
            match defining_step {
                None => diagnostics.push(diagnostic(
                    cell,
                    line,
                    format!("`{name}` is defined only in untagged {} (exploration is left out of components); tag that cell or move the definition", defining.label()),
                )),
                Some(Step::Setup | Step::Parameters) => {}
                Some(from) if from == step => {}
                Some(from) if from.rank() < step.rank() => {
                    if !flows.iter().any(|f| f.name == *name && f.from == from && f.to == step) {
                        flows.push(Flow { name: name.clone(), from, to: step, defined_in: defining.index });
                    }
                }
                Some(from) => diagnostics.push(diagnostic(cell, line, format!("the {} step uses `{name}` from the later {} step ({})", step.name(), from.name(), defining.label()))),
            }
        }
    }

    // `fn infer(model: &Model, x: …)`: leading parameters named after train values take them.
    for (_, step, names) in &parsed {
        if *step != Some(Step::Infer) {
            continue;
        }
        for (name, _) in &names.infer_params {
            let train_cell = parsed.iter().find(|(_, s, n)| *s == Some(Step::Train) && n.defines.contains_key(name)).map(|(c, _, _)| c.index);
            if let Some(defined_in) = train_cell
                && !flows.iter().any(|f| f.name == *name && f.to == Step::Infer)
            {
                flows.push(Flow { name: name.clone(), from: Step::Train, to: Step::Infer, defined_in });
            }
        }
    }

    // The same name defined by two different steps (setup and parameters are shared by all).
    let mut first_definition: BTreeMap<&str, (&Cell, Step)> = BTreeMap::new();
    for (cell, step, names) in &parsed {
        let Some(step) = *step else { continue };
        for (name, &line) in &names.defines {
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

    // The infer contract: the infer cells define `fn infer(…)`.
    let has_infer_fn = parsed.iter().any(|(_, step, names)| *step == Some(Step::Infer) && names.functions.contains("infer"));
    if !has_infer_fn {
        let (cell, id) = steps.get(&Step::Infer).and_then(|cells| cells.first()).map_or((None, None), |&i| {
            (Some(i), notebook.cells.iter().find(|c| c.index == i).and_then(|c| c.id.clone()))
        });
        diagnostics.push(Diagnostic { cell, cell_id: id, line: 0, message: "no `fn infer(…)` in the cells tagged infer: the served component calls it".into() });
    }
    // Cell by cell, line by line; problems of the whole notebook last.
    diagnostics.sort_by_key(|d| (d.cell.is_none(), d.cell, d.line));
    Analysis { steps, untagged, flows, diagnostics }
}

/// The analysis as text, as `kiln show` prints it.
pub fn render(analysis: &Analysis) -> String {
    let mut out = String::new();
    for (step, cells) in &analysis.steps {
        let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        out.push_str(&format!("{:<10} cells {}\n", step.name(), cells.join(", ")));
    }
    if !analysis.untagged.is_empty() {
        let cells: Vec<String> = analysis.untagged.iter().map(|c| c.to_string()).collect();
        out.push_str(&format!("{:<10} cells {} (left out)\n", "untagged", cells.join(", ")));
    }
    for flow in &analysis.flows {
        out.push_str(&format!("{} → {}: {} (cell {})\n", flow.from.name(), flow.to.name(), flow.name, flow.defined_in));
    }
    for diagnostic in &analysis.diagnostics {
        out.push_str(&format!("error: {diagnostic}\n"));
    }
    out
}

//! One code cell read with `syn`: its top-level pieces as the researcher wrote them (items go
//! to a component's module, statements into its body, comments kept), and the names it
//! defines and uses.
//!
//! A cell mixes items and statements, so it is parsed wrapped in a function body. Uses inside
//! macro calls are found by scanning their tokens, inline format arguments included.

use std::collections::BTreeMap;

use proc_macro2::{LineColumn, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::diagnostic::Diagnostic;
use crate::notebook::Cell;

/// A top-level piece of a cell, with the text (and comments) in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub kind: FragmentKind,
    /// The source text, from the end of the previous piece; blank lines around it trimmed.
    pub text: String,
    /// The cell line `text` starts on (1-based).
    pub line: usize,
    /// Whether a string literal in it spans lines, so re-indenting it would change a value.
    pub multiline_literal: bool,
    /// Whether a blank line stood before it in the cell (kept in generated code).
    pub blank_before: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// `fn`, `struct`, `impl`, `use`, `const`, … : module level in a component.
    Item,
    /// A `let` or an expression statement: runs in the component's body.
    Statement,
    /// An expression ending the cell without `;` (the notebook shows its value): runs, and
    /// its value is dropped.
    Trailing,
}

/// The signature of `fn infer`, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InferSignature {
    /// Cell line of the `fn`.
    pub line: usize,
    /// Every parameter: its name, its type as written, its line.
    pub params: Vec<(String, String, usize)>,
    /// The return type as written; `()` when there is none.
    pub output: String,
}

/// What a cell defines and uses.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// `let` bindings: name → line of the (last) binding.
    pub values: BTreeMap<String, usize>,
    /// Items (fn, struct, enum, const, static, type, trait, mod): name → line.
    pub items: BTreeMap<String, usize>,
    /// Name → first line it is used on, in statements (which may use values and items).
    pub uses: BTreeMap<String, usize>,
    /// Name → first line it is used on inside items: a `fn` body cannot see the cells'
    /// `let` values, so these can only be other items.
    pub item_uses: BTreeMap<String, usize>,
    /// `let name = <literal>;` bindings: name → (literal text, line).
    pub literals: BTreeMap<String, (String, usize)>,
    /// `let` bindings whose value is not a literal, with their lines.
    pub non_literal_lets: Vec<(String, usize)>,
    pub infer: Option<InferSignature>,
}

impl Names {
    pub fn defines(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.items.contains_key(name)
    }

    /// The line a name is defined on (value or item).
    pub fn definition(&self, name: &str) -> Option<usize> {
        self.values.get(name).or_else(|| self.items.get(name)).copied()
    }
}

/// A cell after parsing.
#[derive(Debug, Clone)]
pub struct ParsedCell {
    pub fragments: Vec<Fragment>,
    pub names: Names,
    /// `:dep …` lines, as written after `:dep`, with their lines.
    pub deps: Vec<(String, usize)>,
    /// `// kiln: register when …` and `// kiln: promote ALIAS when …` lines: (what follows
    /// `kiln:`, line).
    pub conditions: Vec<(String, usize)>,
    /// `// kiln: input NAME { … }` lines (a DataFrame input's columns): (what follows
    /// `kiln:`, line).
    pub inputs: Vec<(String, usize)>,
}

/// The source with evcxr commands (`:dep …`) blanked, so line numbers stay the cell's.
fn rust_source(source: &str) -> String {
    source.lines().map(|line| if line.trim_start().starts_with(':') { "" } else { line }).collect::<Vec<_>>().join("\n")
}

const WRAP_OPEN: &str = "fn __kiln_cell() {\n";

/// Byte offsets of line starts in `text`, for turning span positions into slices.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Lines { text, starts }
    }

    /// The byte offset of a span position (line 1-based, column in chars).
    fn offset(&self, at: LineColumn) -> usize {
        let start = self.starts.get(at.line.saturating_sub(1)).copied().unwrap_or(self.text.len());
        let line = &self.text[start..];
        start + line.char_indices().nth(at.column).map_or(line.len(), |(i, _)| i)
    }
}

pub fn parse(cell: &Cell) -> Result<ParsedCell, Diagnostic> {
    let deps =
        cell.source.lines().enumerate().filter_map(|(i, line)| line.trim_start().strip_prefix(":dep").map(|rest| (rest.trim().to_owned(), i + 1))).collect();
    let directives = |keep: &dyn Fn(&str) -> bool| -> Vec<(String, usize)> {
        cell.source
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let rest = line.trim_start().strip_prefix("//")?.trim_start().strip_prefix("kiln:")?.trim();
                keep(rest).then(|| (rest.to_owned(), i + 1))
            })
            .collect()
    };
    let conditions = directives(&|rest| rest.starts_with("register ") || rest.starts_with("promote "));
    let inputs = directives(&|rest| rest == "input" || rest.starts_with("input ") || rest.starts_with("input{"));
    let wrapped = format!("{WRAP_OPEN}{}\n}}", rust_source(&cell.source));
    let function: syn::ItemFn = syn::parse_str(&wrapped).map_err(|error| Diagnostic {
        cell: Some(cell.index),
        cell_id: cell.id.clone(),
        line: error.span().start().line.saturating_sub(1),
        message: format!("does not parse as Rust: {error}"),
    })?;
    let lines = Lines::new(&wrapped);
    let mut names = Names::default();
    let mut fragments = Vec::new();
    let mut previous_end = WRAP_OPEN.len();
    let count = function.block.stmts.len();
    for (position, stmt) in function.block.stmts.iter().enumerate() {
        let span = stmt.span();
        let end = lines.offset(span.end());
        // Leading blank lines and the `// kiln: step` directive dropped (the generated code
        // says the step); the text starts at its first remaining line.
        let mut start = previous_end;
        let mut blank_before = false;
        loop {
            let rest = &wrapped[start..end.max(start)];
            let Some(newline) = rest.find('\n') else { break };
            let first = rest[..newline].trim();
            let directive = position == 0 && first.starts_with("//") && !kiln_protocol::directive::tags(first).is_empty();
            if first.is_empty() || directive {
                blank_before |= first.is_empty() && start != WRAP_OPEN.len();
                start += newline + 1;
            } else {
                break;
            }
        }
        let text = wrapped[start..end.max(start)].trim_end().to_owned();
        // The wrapper's first line shifts the count by one: a 0-based wrapped line is a
        // 1-based cell line.
        let line = lines.starts.iter().rposition(|&s| s <= start).unwrap_or(0);
        previous_end = end.max(previous_end);
        let kind = match stmt {
            syn::Stmt::Item(_) => FragmentKind::Item,
            // Loops are `()`: nothing to drop.
            syn::Stmt::Expr(syn::Expr::ForLoop(_) | syn::Expr::While(_), None) => FragmentKind::Statement,
            syn::Stmt::Expr(_, None) if position + 1 == count => FragmentKind::Trailing,
            _ => FragmentKind::Statement,
        };
        let multiline_literal = has_multiline_literal(&quote_tokens(stmt));
        fragments.push(Fragment { kind, text, line, multiline_literal, blank_before });
        collect_definitions(stmt, &wrapped, &lines, &mut names);
        let mut users = Users::default();
        users.visit_stmt(stmt);
        let target = if kind == FragmentKind::Item { &mut names.item_uses } else { &mut names.uses };
        for (name, line) in users.0 {
            target.entry(name).or_insert(line);
        }
    }
    Ok(ParsedCell { fragments, names, deps, conditions, inputs })
}

/// The cell line of a span position in the wrapped source.
fn cell_line(at: LineColumn) -> usize {
    at.line.saturating_sub(1)
}

fn collect_definitions(stmt: &syn::Stmt, wrapped: &str, lines: &Lines, names: &mut Names) {
    let text_of = |span: proc_macro2::Span| wrapped[lines.offset(span.start())..lines.offset(span.end())].to_owned();
    match stmt {
        syn::Stmt::Local(local) => {
            let mut binder = Binder::default();
            binder.visit_pat(&local.pat);
            let literal = local.init.as_ref().filter(|init| init.diverge.is_none() && is_literal(&init.expr)).map(|init| text_of(init.expr.span()));
            let single = binder.0.len() == 1;
            for (name, line) in binder.0 {
                match &literal {
                    Some(text) if single => {
                        names.literals.insert(name.clone(), (text.clone(), line));
                    }
                    _ => names.non_literal_lets.push((name.clone(), line)),
                }
                names.values.insert(name, line);
            }
        }
        syn::Stmt::Item(item) => {
            if let syn::Item::Fn(f) = item
                && f.sig.ident == "infer"
            {
                let params = f
                    .sig
                    .inputs
                    .iter()
                    .filter_map(|input| match input {
                        syn::FnArg::Typed(typed) => {
                            let mut binder = Binder::default();
                            binder.visit_pat(&typed.pat);
                            let name = binder.0.first().map(|(n, _)| n.clone()).unwrap_or_else(|| "_".into());
                            Some((name, text_of(typed.ty.span()), cell_line(typed.span().start())))
                        }
                        syn::FnArg::Receiver(_) => None,
                    })
                    .collect();
                let output = match &f.sig.output {
                    syn::ReturnType::Default => "()".to_owned(),
                    syn::ReturnType::Type(_, ty) => text_of(ty.span()),
                };
                names.infer = Some(InferSignature { line: cell_line(f.sig.ident.span().start()), params, output });
            }
            if let Some(ident) = item_ident(item) {
                names.items.entry(ident.to_string()).or_insert(cell_line(ident.span().start()));
            }
        }
        _ => {}
    }
}

fn quote_tokens(stmt: &syn::Stmt) -> TokenStream {
    let mut tokens = TokenStream::new();
    quote::ToTokens::to_tokens(stmt, &mut tokens);
    tokens
}

fn has_multiline_literal(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Literal(literal) => literal.span().start().line != literal.span().end().line,
        TokenTree::Group(group) => has_multiline_literal(&group.stream()),
        _ => false,
    })
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

fn item_ident(item: &syn::Item) -> Option<&syn::Ident> {
    Some(match item {
        syn::Item::Fn(f) => &f.sig.ident,
        syn::Item::Struct(s) => &s.ident,
        syn::Item::Enum(e) => &e.ident,
        syn::Item::Const(c) => &c.ident,
        syn::Item::Static(s) => &s.ident,
        syn::Item::Type(t) => &t.ident,
        syn::Item::Trait(t) => &t.ident,
        syn::Item::Mod(m) => &m.ident,
        syn::Item::Union(u) => &u.ident,
        _ => return None,
    })
}

/// Names bound by a pattern.
#[derive(Default)]
struct Binder(Vec<(String, usize)>);

impl<'a> Visit<'a> for Binder {
    fn visit_pat_ident(&mut self, pat: &'a syn::PatIdent) {
        self.0.push((pat.ident.to_string(), cell_line(pat.ident.span().start())));
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
                TokenTree::Ident(ident) => self.0.push((ident.to_string(), cell_line(ident.span().start()))),
                TokenTree::Group(group) => self.tokens(&group.stream()),
                TokenTree::Literal(literal) => {
                    // Inline format arguments: println!("{loss}") uses `loss`.
                    let text = literal.to_string();
                    if text.starts_with('"') {
                        for piece in text.split('{').skip(1) {
                            let name: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            if !name.is_empty() && !name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                                self.0.push((name, cell_line(literal.span().start())));
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
            self.0.push((first.ident.to_string(), cell_line(first.ident.span().start())));
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'a syn::Macro) {
        self.tokens(&mac.tokens);
        syn::visit::visit_macro(self, mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(source: &str) -> Cell {
        Cell { index: 0, id: None, source: source.into(), tags: vec![] }
    }

    #[test]
    fn fragments_keep_text_comments_and_lines() {
        let parsed = parse(&cell(":dep candle-core = \"0.11\"\nuse std::fmt;\n\n// the weights\nlet w = vec![1.0f32, 2.0];\n/// Sums.\nfn total(v: &[f32]) -> f32 {\n    v.iter().sum()\n}\ntotal(&w)")).unwrap();
        let shown: Vec<String> = parsed.fragments.iter().map(|f| format!("{:?}@{}: {}", f.kind, f.line, f.text)).collect();
        expect_test::expect![[r#"
            Item@2: use std::fmt;
            Statement@4: // the weights
            let w = vec![1.0f32, 2.0];
            Item@6: /// Sums.
            fn total(v: &[f32]) -> f32 {
                v.iter().sum()
            }
            Trailing@10: total(&w)"#]]
        .assert_eq(&shown.join("\n"));
        assert_eq!(parsed.deps, vec![("candle-core = \"0.11\"".to_owned(), 1)]);
        assert_eq!(parsed.names.values.get("w"), Some(&5));
        assert_eq!(parsed.names.items.get("total"), Some(&7));
    }

    #[test]
    fn literals_and_the_infer_signature() {
        let parsed = parse(&cell("let lr = 1e-3;\nlet epochs: usize = 10;\nlet name = \"x\";\nlet (a, b) = (1, 2);\nfn infer(model: &Vec<f32>,\n         x: Vec<[f32; 4]>) -> Result<Vec<f32>, String> { Ok(vec![]) }")).unwrap();
        assert_eq!(parsed.names.literals.get("lr"), Some(&("1e-3".to_owned(), 1)));
        assert_eq!(parsed.names.literals.get("epochs"), Some(&("10".to_owned(), 2)));
        assert_eq!(parsed.names.literals.get("name"), Some(&("\"x\"".to_owned(), 3)));
        assert_eq!(parsed.names.non_literal_lets, vec![("a".to_owned(), 4), ("b".to_owned(), 4)]);
        let infer = parsed.names.infer.unwrap();
        assert_eq!(infer.line, 5);
        assert_eq!(infer.params, vec![("model".to_owned(), "&Vec<f32>".to_owned(), 5), ("x".to_owned(), "Vec<[f32; 4]>".to_owned(), 6)]);
        assert_eq!(infer.output, "Result<Vec<f32>, String>");
    }
}

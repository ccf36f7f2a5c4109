//! Golden tests of the analysis: small notebooks in, the printed step graph and diagnostics
//! out (snapshots), one case per diagnostic.

use expect_test::{Expect, expect};
use kiln_componentize::analysis::{analyse, render};
use kiln_componentize::notebook::Notebook;

/// A notebook from (tags, source) pairs; markdown cells are written as ("md", text).
fn notebook(cells: &[(&[&str], &str)]) -> String {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .enumerate()
        .map(|(i, (tags, source))| {
            if tags.first() == Some(&"md") {
                serde_json::json!({"cell_type": "markdown", "id": format!("c{i}"), "metadata": {}, "source": source})
            } else {
                serde_json::json!({"cell_type": "code", "id": format!("c{i}"), "metadata": {"tags": tags}, "source": source, "outputs": [], "execution_count": null})
            }
        })
        .collect();
    serde_json::json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "kiln", "language": "rust", "display_name": "Rust (Kiln)"}}, "cells": cells}).to_string()
}

fn check(cells: &[(&[&str], &str)], expected: Expect) {
    let parsed = Notebook::parse(&notebook(cells)).expect("notebook parses");
    expected.assert_eq(&render(&analyse(&parsed)));
}

const SETUP: (&[&str], &str) =
    (&["setup"], ":dep kiln = { path = \"x\" }\nuse std::collections::HashMap;\nfn mean(v: &[f64]) -> f64 { v.iter().sum::<f64>() / v.len() as f64 }");
const PARAMS: (&[&str], &str) = (&["parameters"], "let lr = 0.01;\nlet epochs = 3;");
const DATA: (&[&str], &str) = (&["data"], "let xs: Vec<f64> = (0..100).map(|i| i as f64).collect();\nlet ys: Vec<f64> = xs.iter().map(|x| 2.0 * x).collect();");
const TRAIN: (&[&str], &str) = (&["train"], "let mut weight = 0.0;\nfor _ in 0..epochs { weight += lr * mean(&ys) / mean(&xs); }\nprintln!(\"{weight}\");");
const INFER: (&[&str], &str) = (&["infer"], "fn infer(weight: &f64, x: f64) -> f64 { weight * x }");
/// For notebooks without a train step: an infer function that needs no model.
const DOUBLE: (&[&str], &str) = (&["infer"], "fn infer(x: f64) -> f64 { 2.0 * x }");

#[test]
fn a_clean_pipeline() {
    check(
        &[(&["md"], "# Title"), SETUP, PARAMS, DATA, (&[], "println!(\"{}\", xs.len());"), TRAIN, INFER, (&["skip"], "let junk = xs;")],
        expect![[r#"
            setup      cells 1
            parameters cells 2
            data       cells 3
            train      cells 5
            infer      cells 6
            untagged   cells 4 (left out)
            skip       cells 7 (left out)

            parameters
              lr = 0.01  (cell 2, line 1)
              epochs = 3  (cell 2, line 2)

            data ──► train ──► infer
              data → train
                xs  (cell 3, line 1)
                ys  (cell 3, line 2)
              train → infer
                weight  (cell 5, line 1)
              served: fn infer(weight: &f64, x: f64) -> f64  (cell 6, line 1)
        "#]],
    );
}

#[test]
fn the_first_line_directive_tags_cells_without_metadata() {
    check(
        &[
            (&[], "// kiln: setup\nfn mean(v: &[f64]) -> f64 { v[0] }"),
            (&[], "// kiln: data\nlet xs = vec![1.0];"),
            (&[], "// kiln: train\nlet weight = mean(&xs);"),
            (&[], "// kiln: infer\nfn infer(weight: &f64, x: f64) -> f64 { weight * x }"),
        ],
        expect![[r#"
            setup      cells 0
            data       cells 1
            train      cells 2
            infer      cells 3

            data ──► train ──► infer
              data → train
                xs  (cell 1, line 2)
              train → infer
                weight  (cell 2, line 2)
              served: fn infer(weight: &f64, x: f64) -> f64  (cell 3, line 2)
        "#]],
    );
}

#[test]
fn a_value_defined_only_in_an_untagged_cell() {
    check(
        &[(&[], "let scale = 2.0;"), (&["data"], "let xs = vec![1.0 * scale];"), DOUBLE],
        expect![[r#"
        data       cells 1
        infer      cells 2
        untagged   cells 0 (left out)

        data ──► infer
          served: fn infer(x: f64) -> f64  (cell 2, line 1)

        error: cell 1 (id c1), line 1: `scale` is defined only in untagged cell 0 (id c0) (exploration is left out of components); tag that cell or move the definition
    "#]],
    );
}

#[test]
fn a_step_depending_on_a_later_step() {
    check(
        &[(&["data"], "let xs = vec![weight];"), (&["train"], "let weight = 1.0;"), INFER],
        expect![[r#"
        data       cells 0
        train      cells 1
        infer      cells 2

        data ──► train ──► infer
          train → infer
            weight  (cell 1, line 1)
          served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)

        error: cell 0 (id c0), line 1: the data step uses `weight`, which the later train step defines (cell 1 (id c1))
    "#]],
    );
}

#[test]
fn a_name_defined_by_two_steps() {
    check(
        &[(&["data"], "let xs = vec![1.0];"), (&["train"], "let xs = vec![2.0];\nlet weight = xs[0];"), INFER],
        expect![[r#"
        data       cells 0
        train      cells 1
        infer      cells 2

        data ──► train ──► infer
          train → infer
            weight  (cell 1, line 2)
          served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)

        error: cell 1 (id c1), line 1: `xs` is also defined by the data step (cell 0 (id c0)); a name belongs to one step
    "#]],
    );
}

#[test]
fn no_infer_function() {
    check(
        &[DATA, (&["infer"], "let y = 1;")],
        expect![[r#"
        data       cells 0
        infer      cells 1

        data ──► infer

        error: cell 1 (id c1): no `fn infer(…)` in the cells tagged infer: the served component calls it
    "#]],
    );
}

#[test]
fn no_infer_cells_at_all() {
    check(
        &[DATA],
        expect![[r#"
        data       cells 0

        error: notebook: no `fn infer(…)` in the cells tagged infer: the served component calls it
    "#]],
    );
}

#[test]
fn parameters_must_be_literals() {
    check(
        &[(&["parameters"], "let lr = 0.01;\nlet steps = 10 * 2;\nlet name = \"run\";\nlet neg = -1;"), DOUBLE],
        expect![[r#"
        parameters cells 0
        infer      cells 1

        parameters
          lr = 0.01  (cell 0, line 1)
          name = "run"  (cell 0, line 3)
          neg = -1  (cell 0, line 4)
          served: fn infer(x: f64) -> f64  (cell 1, line 1)

        error: cell 0 (id c0), line 2: parameter `steps` is not a literal; parameters are overridden at run time, so each must be `let name = <literal>;`
    "#]],
    );
}

#[test]
fn a_cell_with_two_steps_and_a_cell_that_does_not_parse() {
    check(
        &[(&["data", "train"], "let xs = 1;"), (&["train"], "let weight = ;"), INFER],
        expect![[r#"
        data       cells 0
        train      cells 1
        infer      cells 2

        data ──► train ──► infer
          served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)

        error: cell 0 (id c0): is tagged with several steps (data, train); a cell belongs to one step
        error: cell 1 (id c1), line 1: does not parse as Rust: expected an expression
        error: cell 2 (id c2), line 1: `fn infer`'s parameter `weight` is not a value of the train step; its leading parameters take train values (by name), its last the request input
    "#]],
    );
}

#[test]
fn the_infer_contract() {
    check(
        &[
            (&["train"], "let weight = 2.0;\nlet bias = 1.0;"),
            (&["infer"], "fn infer(weight: f64,\n         scale: &f64,\n         bias: f64) -> f64 { weight * bias }"),
        ],
        expect![[r#"
            train      cells 0
            infer      cells 1

            train ──► infer
              served: fn infer(weight: f64, scale: &f64, bias: f64) -> f64  (cell 1, line 1)

            error: cell 1 (id c1), line 1: `fn infer` takes the train value `weight` by value; take it by reference (`weight: &f64`): the model is shared by every request
            error: cell 1 (id c1), line 2: `fn infer`'s parameter `scale` is not a value of the train step; its leading parameters take train values (by name), its last the request input
            error: cell 1 (id c1), line 3: `fn infer`'s last parameter `bias` is the request input, but it is named after a train value; rename it
        "#]],
    );
    check(
        &[(&["infer"], "fn infer() -> f64 { 1.0 }")],
        expect![[r#"
        infer      cells 0
          served: fn infer() -> f64  (cell 0, line 1)

        error: cell 0 (id c0), line 1: `fn infer` takes no parameters; its last parameter is the request input
    "#]],
    );
}

#[test]
fn items_travel_as_code_and_values_as_artifacts() {
    check(
        &[
            (&["data"], "#[derive(Clone)]\nstruct Sample { x: f64 }\nfn load() -> Vec<Sample> { vec![Sample { x: 1.0 }] }\nlet samples = load();"),
            (&["train"], "let weight: f64 = samples.iter().map(|s: &Sample| s.x).sum();"),
            INFER,
        ],
        expect![[r#"
            data       cells 0
            train      cells 1
            infer      cells 2

            data ──► train ──► infer
              data → train
                samples  (cell 0, line 4)
              train → infer
                weight  (cell 1, line 1)
              served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)
        "#]],
    );
}

#[test]
fn conditions_on_the_train_run() {
    check(
        &[
            (&["data"], "let xs = vec![1.0];\n// kiln: register when metrics.accuracy >= 0.9"),
            (
                &["train"],
                "// kiln: register when metrics.accuracy >= 0.9 and params.lr = '0.1'\n// kiln: promote champion when metrics.accuracy > 0.95\nlet weight = xs[0];\n// kiln: promote latest when metrics.accuracy > 0.99\n// kiln: register when metrics.loss < 1\n// kiln: register if metrics.loss < 1\n// kiln: promote staging when metrics.accuracy >> 1",
            ),
            INFER,
        ],
        expect![[r#"
            data       cells 0
            train      cells 1
            infer      cells 2

            data ──► train ──► infer
              data → train
                xs  (cell 0, line 1)
              train → infer
                weight  (cell 1, line 3)
              train: register when metrics.accuracy >= 0.9 and params.lr = '0.1'  (cell 1, line 1)
              train: promote to `champion` when metrics.accuracy > 0.95  (cell 1, line 2)
              served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)

            error: cell 0 (id c0), line 2: `register when metrics.accuracy >= 0.9` belongs in a train cell: it decides what the train step does with its model
            error: cell 1 (id c1), line 4: `promote latest`: 'latest' is reserved (it reads as a version selector)
            error: cell 1 (id c1), line 5: a second `register when`: give one condition (join clauses with `and`)
            error: cell 1 (id c1), line 6: `register if metrics.loss < 1`: write `register when CONDITION` or `promote ALIAS when CONDITION`
            error: cell 1 (id c1), line 7: condition `metrics.accuracy >> 1`: filter: at column 19: expected a number, a quoted string or a (list) (in "metrics.accuracy >> 1")
        "#]],
    );
}

#[test]
fn a_dataframe_input_declares_its_columns() {
    let setup: (&[&str], &str) = (&["setup"], ":dep polars = \"0.55\"\nuse polars::prelude::*;");
    check(
        &[
            setup,
            (&["train"], "let weight = 2.0;"),
            (
                &["infer"],
                "// kiln: input rows { length: f64, \"sepal.width\": f32, species: String }\nfn infer(weight: &f64, rows: DataFrame) -> Vec<f64> { vec![*weight; rows.height()] }",
            ),
        ],
        expect![[r#"
            setup      cells 0
            train      cells 1
            infer      cells 2

            train ──► infer
              train → infer
                weight  (cell 1, line 1)
              served: fn infer(weight: &f64, rows: DataFrame) -> Vec<f64>  (cell 2, line 2)
                input `rows`, one tensor per column: length: f64 (FP64), sepal.width: f32 (FP32), species: String (BYTES)
        "#]],
    );
}

#[test]
fn dataframe_input_mistakes() {
    // No declaration for a DataFrame input.
    check(
        &[(&["infer"], "fn infer(\n    rows: polars::prelude::DataFrame,\n) -> f64 { 1.0 }")],
        expect![[r#"
        infer      cells 0
          served: fn infer(rows: polars::prelude::DataFrame) -> f64  (cell 0, line 1)

        error: cell 0 (id c0), line 2: `fn infer` takes a DataFrame `rows`: declare its columns in the infer cell, `// kiln: input rows { column: f64, … }`, so requests and clients know them
    "#]],
    );
    // Declared outside the infer cells, twice, badly, for a name that is not the input, for a tensor input.
    check(
        &[
            (&["data"], "// kiln: input x { a: f64 }\nlet v = 1;"),
            (
                &["infer"],
                "// kiln: input rows { a: f64 }\n// kiln: input rows { b: f64 }\n// kiln: input rows { c: i8 }\nfn infer(rows: DataFrame) -> f64 { 1.0 }",
            ),
        ],
        expect![[r#"
            data       cells 0
            infer      cells 1

            data ──► infer
              served: fn infer(rows: DataFrame) -> f64  (cell 1, line 4)
                input `rows`, one tensor per column: a: f64 (FP64)

            error: cell 0 (id c0), line 1: `input x { a: f64 }` belongs in an infer cell: it declares the columns of `fn infer`'s DataFrame input
            error: cell 1 (id c1), line 2: a second `input` line: declare the input's columns once
            error: cell 1 (id c1), line 3: column `c` has type `i8`; a column is one of bool, i32, i64, u32, u64, f32, f64, String
        "#]],
    );
    check(
        &[(&["infer"], "// kiln: input x { a: f64 }\nfn infer(rows: DataFrame) -> f64 { 1.0 }")],
        expect![[r#"
        infer      cells 0
          served: fn infer(rows: DataFrame) -> f64  (cell 0, line 2)

        error: cell 0 (id c0), line 1: `input x` names no input: `fn infer`'s request input is `rows`
    "#]],
    );
    check(
        &[(&["infer"], "// kiln: input x { a: f64 }\nfn infer(x: Vec<f64>) -> f64 { 1.0 }")],
        expect![[r#"
        infer      cells 0
          served: fn infer(x: Vec<f64>) -> f64  (cell 0, line 2)

        error: cell 0 (id c0), line 1: columns are for a DataFrame input, and `x` is `Vec<f64>`; drop the `input` line or take `x: DataFrame`
    "#]],
    );
}

#[test]
fn notebooks_kiln_cannot_read() {
    let errors = [
        r#"{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}"#.to_owned(),
        r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "language": "python"}}, "cells": []}"#.to_owned(),
        "{\"nbformat\": 4, \"cells\": [".to_owned(),
    ]
    .iter()
    .map(|json| Notebook::parse(json).unwrap_err().to_string())
    .collect::<Vec<_>>()
    .join("\n");
    expect![[r#"
        nbformat 3.0 is not supported: open and save it in JupyterLab to convert it to v4
        the notebook's kernel is 'python3' (python); Kiln componentizes Rust notebooks (kernel 'kiln' or 'rust')
        not a notebook: EOF while parsing a list at line 1 column 26"#]]
    .assert_eq(&errors);
}

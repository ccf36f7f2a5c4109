//! Types come from the compiler: small notebooks through the probe crate (a real `cargo
//! check` against the Kiln SDK), their typed step graph and diagnostics as snapshots.

use std::path::PathBuf;

use expect_test::{Expect, expect};
use kiln_componentize::analysis::render;
use kiln_componentize::kernel::KernelCells;
use kiln_componentize::pipeline::{Options, analyse_file};

/// Shared with the other componentize runs of the test suite, so the SDK is checked once.
fn work_root() -> PathBuf {
    match std::env::var_os("KILN_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir).join("componentize"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/componentize-tests"),
    }
}

fn check(handle: &str, cells: &[(&str, &str)], expected: Expect) {
    check_with(handle, cells, None, expected)
}

fn check_with(handle: &str, cells: &[(&str, &str)], kernel: Option<&str>, expected: Expect) {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .enumerate()
        .map(|(i, (tag, source))| serde_json::json!({"cell_type": "code", "id": format!("c{i}"), "metadata": {"tags": [tag]}, "source": source, "outputs": [], "execution_count": null}))
        .collect();
    let notebook = serde_json::json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "kiln", "language": "rust"}}, "cells": cells});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{handle}.ipynb"));
    std::fs::write(&path, notebook.to_string()).unwrap();
    // At run time: a shared target dir may hold this test built in another clone.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let sdk = std::fs::canonicalize(manifest.join("../server-client/client")).unwrap();
    let options = Options {
        handle: format!("types-{handle}"),
        work_root: work_root(),
        sdk,
        rustflags: Vec::new(),
        kernel: kernel.map(|json| KernelCells::parse(json).unwrap()),
        asking: Default::default(),
    };
    let analysed = analyse_file(&path, &options, true, &mut ()).unwrap();
    expected.assert_eq(&render(&analysed.analysis));
}

const SERDE: (&str, &str) = ("setup", ":dep serde = { version = \"1\", features = [\"derive\"] }\nuse serde::{Deserialize, Serialize};");

#[test]
fn types_of_parameters_and_boundary_values() {
    check(
        "clean",
        &[
            SERDE,
            ("setup", "#[derive(Serialize, Deserialize)]\nstruct Scaler { mean: f64, scale: f64 }"),
            ("parameters", "let epochs = 3;\nlet rate = 0.5;\nlet name = \"run\";\nlet batch: u16 = 8;"),
            ("data", "let xs: Vec<f64> = (0..10).map(|i| i as f64).collect();\nlet counts = vec![1, 2, 3];\nlet scaler = Scaler { mean: 4.5, scale: 2.0 };"),
            (
                "train",
                "let mut weight = 0.0;\nfor step in 0..epochs { weight += rate * (xs[step as usize] - scaler.mean) / scaler.scale; }\nlet label = format!(\"{name}-{}\", counts.len());",
            ),
            ("infer", "fn infer(weight: &f64, label: &String, xs: Vec<[f64; 2]>) -> Vec<f64> { xs.iter().map(|x| weight * x[0] + x[1]).collect() }"),
        ],
        expect![[r#"
            setup      cells 0, 1
            parameters cells 2
            data       cells 3
            train      cells 4
            infer      cells 5

            parameters
              epochs: i32 = 3  (cell 2, line 1)
              rate: f64 = 0.5  (cell 2, line 2)
              name: &str = "run"  (cell 2, line 3)
              batch: u16 = 8  (cell 2, line 4)

            data ──► train ──► infer
              data → train
                xs: Vec<f64> as json  (cell 3, line 1)
                counts: Vec<i32> as json  (cell 3, line 2)
                scaler: Scaler as json  (cell 3, line 3)
              train → infer
                weight: f64 as json  (cell 4, line 1)
                label: String as json  (cell 4, line 3)
              served: fn infer(weight: &f64, label: &String, xs: Vec<[f64; 2]>) -> Vec<f64>  (cell 5, line 1)
        "#]],
    );
}

/// In the kernel each cell is compiled alone, so `let n = 5;` is an `i32` once its cell ends:
/// a later cell may call `n.pow(2)` (which a single function would find ambiguous), and may
/// not index with it.
#[test]
fn a_value_is_typed_when_its_cell_ends() {
    check(
        "cell-types",
        &[
            ("parameters", "let n = 5;"),
            ("data", "let big = n.pow(2);"),
            ("data", "let xs = vec![1.0f64; big as usize];"),
            ("train", "let first = xs[n];"),
            ("infer", "fn infer(first: &f64, x: f64) -> f64 { first * x }"),
        ],
        expect![[r#"
            parameters cells 0
            data       cells 1, 2
            train      cells 3
            infer      cells 4

            parameters
              n = 5  (cell 0, line 1)

            data ──► train ──► infer
              data → train
                xs  (cell 2, line 1)
              train → infer
                first  (cell 3, line 1)
              served: fn infer(first: &f64, x: f64) -> f64  (cell 4, line 1)

            error: cell 3 (id c3), line 1: error[E0277]: the type `[f64]` cannot be indexed by `i32`: slice indices are of type `usize` or ranges of `usize`
        "#]],
    );
}

#[test]
fn a_value_without_a_codec() {
    check(
        "no-codec",
        &[
            ("data", "struct Point { x: f64 }\nlet points = vec![Point { x: 1.0 }];"),
            ("train", "let weight = points[0].x;"),
            ("infer", "fn infer(weight: &f64, x: f64) -> f64 { weight * x }"),
        ],
        expect![[r#"
            data       cells 0
            train      cells 1
            infer      cells 2

            data ──► train ──► infer
              data → train
                points: Vec<Point> as json  (cell 0, line 2)
              train → infer
                weight: f64 as json  (cell 1, line 1)
              served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)

            error: cell 0 (id c0), line 2: `points` has type `Vec<Point>`, which has no codec to cross to the next step: derive serde's `Serialize` and `Deserialize` for it (JSON), or hand on a polars DataFrame (Parquet) or a candle Tensor or VarMap (safetensors)
        "#]],
    );
}

#[test]
fn a_value_whose_type_has_no_name() {
    check(
        "closure",
        &[
            ("data", "let squares = (0..4).map(|x| x * x);"),
            ("train", "let weight: i32 = squares.sum();"),
            ("infer", "fn infer(weight: &i32, x: i32) -> i32 { weight * x }"),
        ],
        expect![[r#"
            data       cells 0
            train      cells 1
            infer      cells 2

            data ──► train ──► infer
              data → train
                squares: Map<Range<i32>, {closure@...}> as json  (cell 0, line 1)
              train → infer
                weight: i32 as json  (cell 1, line 1)
              served: fn infer(weight: &i32, x: i32) -> i32  (cell 2, line 1)

            error: cell 0 (id c0), line 1: `squares` has type `Map<Range<i32>, {closure@...}>`, which a component cannot write down (it holds a closure, which has no name); give it a concrete type, e.g. `.collect::<Vec<_>>()` or an annotation
        "#]],
    );
}

#[test]
fn a_type_not_in_scope_in_a_component() {
    check(
        "scope",
        &[
            ("data", "let mut table = std::collections::BTreeMap::new();\ntable.insert(\"a\".to_string(), 1.0f64);"),
            ("train", "let weight = table[\"a\"];"),
            ("infer", "fn infer(weight: &f64, x: f64) -> f64 { weight * x }"),
        ],
        expect![[r#"
            data       cells 0
            train      cells 1
            infer      cells 2

            data ──► train ──► infer
              data → train
                table  (cell 0, line 1)
              train → infer
                weight  (cell 1, line 1)
              served: fn infer(weight: &f64, x: f64) -> f64  (cell 2, line 1)

            error: cell 0 (id c0), line 1: error[E0425]: cannot find type `BTreeMap` in this scope: not found in this scope
        "#]],
    );
}

#[test]
fn infer_types_that_are_not_tensors() {
    check(
        "infer-types",
        &[("train", "let weight = 2.0f32;"), ("infer", "fn infer(weight: &f64, x: std::collections::HashMap<String, f64>) -> f64 { *weight }")],
        expect![[r#"
            train      cells 0
            infer      cells 1

            train ──► infer
              train → infer
                weight: f32 as json  (cell 0, line 1)
              served: fn infer(weight: &f64, x: std::collections::HashMap<String, f64>) -> f64  (cell 1, line 1)

            error: cell 1 (id c1), line 1: `fn infer`'s input type `std::collections::HashMap<String, f64>` cannot come from an inference request: use numbers, bool or String, in `Vec<…>` or `[T; N]` (one tensor)
            error: cell 1 (id c1), line 1: `fn infer` takes `weight` as a different type than the train step makes (`f32`): mismatched types
        "#]],
    );
}

#[test]
fn compiler_errors_at_their_cells() {
    check(
        "errors",
        &[
            ("data", "let xs = vec![1.0f64];"),
            ("train", "let total: f64 = xs.iter().sum();\nlet label: String = total;"),
            ("infer", "fn infer(total: &f64, x: f64) -> f64 { total * x }"),
        ],
        expect![[r#"
            data       cells 0
            train      cells 1
            infer      cells 2

            data ──► train ──► infer
              data → train
                xs  (cell 0, line 1)
              train → infer
                total  (cell 1, line 1)
              served: fn infer(total: &f64, x: f64) -> f64  (cell 2, line 1)

            error: cell 1 (id c1), line 2: error[E0308]: mismatched types: expected `String`, found `f64`
        "#]],
    );
}

/// Cells that ran in the kernel as they are now take the types it recorded; an edited cell
/// (its recorded source differs) is asked of the compiler again.
#[test]
fn types_the_kernel_recorded() {
    let record = |id: &str, source: &str, vars: serde_json::Value| serde_json::json!({"cell_id": id, "source": source, "tags": [], "outcome": "ok", "execution_count": 1, "variables": vars});
    let kernel = serde_json::json!({"cells": [
        record("c0", "let n = 5;", serde_json::json!({"n": "i32"})),
        record("c1", "let xs = vec![1.0f64; 3];", serde_json::json!({"xs": "Vec<f64>"})),
        record("c2", "let w = xs[0] * 2.0;", serde_json::json!({"w": "f64"})),
    ]})
    .to_string();
    check_with(
        "kernel-types",
        &[
            ("parameters", "let n = 5;"),
            ("data", "let xs = vec![1.0f64; 3];"),
            ("train", "let w = xs[0];"),
            ("infer", "fn infer(w: &f64, x: f64) -> f64 { w * x }"),
        ],
        Some(&kernel),
        expect![[r#"
            parameters cells 0
            data       cells 1
            train      cells 2
            infer      cells 3

            parameters
              n: i32 = 5  (cell 0, line 1)  [typed by the kernel]

            data ──► train ──► infer
              data → train
                xs: Vec<f64> as json  (cell 1, line 1)  [typed by the kernel]
              train → infer
                w: f64 as json  (cell 2, line 1)
              served: fn infer(w: &f64, x: f64) -> f64  (cell 3, line 1)
        "#]],
    );
}

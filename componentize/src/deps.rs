//! The notebook's `:dep` lines as the generated workspace's dependencies.
//!
//! evcxr's forms are accepted: `:dep name = "1.2"`, `:dep name = { version = …, features = […] }`,
//! `:dep name` (any version) and `:dep ./path/to/crate`. Relative paths are the notebook's
//! directory's (where Jupyter starts the kernel). The `kiln` SDK is always a dependency, taken
//! from the Kiln installation doing the build, with the features the components need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::Analysis;
use crate::diagnostic::Diagnostic;

/// One dependency: its name and its TOML value (a version string or an inline table).
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub spec: toml::Value,
}

/// The dependencies of every tagged cell, in order; a later `:dep` of the same name wins,
/// as in evcxr.
pub fn collect(analysis: &Analysis, notebook_dir: &Path) -> Result<Vec<Dependency>, Vec<Diagnostic>> {
    let mut deps: BTreeMap<String, toml::Value> = BTreeMap::new();
    let mut problems = Vec::new();
    for step_cell in &analysis.cells {
        for (text, line) in &step_cell.parsed.deps {
            let at = |message: String| Diagnostic { cell: Some(step_cell.cell.index), cell_id: step_cell.cell.id.clone(), line: *line, message };
            match parse(text, notebook_dir) {
                Ok(dep) => {
                    deps.insert(dep.name, dep.spec);
                }
                Err(message) => problems.push(at(message)),
            }
        }
    }
    if problems.is_empty() { Ok(deps.into_iter().map(|(name, spec)| Dependency { name, spec }).collect()) } else { Err(problems) }
}

/// One `:dep` argument.
pub fn parse(text: &str, notebook_dir: &Path) -> Result<Dependency, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("`:dep` needs a crate: `:dep name = \"1.0\"`".into());
    }
    if text.starts_with('.') || text.starts_with('/') {
        let path = absolute(notebook_dir, Path::new(text));
        let manifest = std::fs::read_to_string(path.join("Cargo.toml")).map_err(|e| format!("`:dep {text}`: reading {}/Cargo.toml: {e}", path.display()))?;
        let manifest: toml::Table = manifest.parse().map_err(|e| format!("`:dep {text}`: {}/Cargo.toml: {e}", path.display()))?;
        let name = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| format!("`:dep {text}`: {}/Cargo.toml has no package name", path.display()))?;
        let mut table = toml::Table::new();
        table.insert("path".into(), toml::Value::String(path.to_string_lossy().into_owned()));
        return Ok(Dependency { name: name.to_owned(), spec: toml::Value::Table(table) });
    }
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), value.trim()),
        None => (text, "\"*\""),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("`:dep {text}`: `{name}` is not a crate name"));
    }
    let document: toml::Table =
        format!("dep = {value}").parse().map_err(|e: toml::de::Error| format!("`:dep {text}`: the value is not TOML: {}", e.message().trim()))?;
    let mut spec = document.get("dep").cloned().ok_or_else(|| format!("`:dep {text}`: no value"))?;
    if let toml::Value::Table(table) = &mut spec
        && let Some(toml::Value::String(path)) = table.get_mut("path")
    {
        *path = absolute(notebook_dir, Path::new(path.as_str())).to_string_lossy().into_owned();
    }
    if !matches!(spec, toml::Value::String(_) | toml::Value::Table(_)) {
        return Err(format!("`:dep {text}`: give a version (\"1.0\") or a table ({{ version = \"1.0\", features = [...] }})"));
    }
    Ok(Dependency { name: name.to_owned(), spec })
}

/// `path` against `base`, with `.` and `..` folded (the file need not exist).
fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The features of a dependency's spec.
pub fn features(spec: &toml::Value) -> Vec<String> {
    spec.get("features").and_then(|f| f.as_array()).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// The `kiln` dependency: the SDK at `sdk`, with the notebook's features and `extra`.
pub fn kiln(deps: &[Dependency], sdk: &Path, extra: &[&str]) -> Dependency {
    let mut features: Vec<String> = deps.iter().find(|d| d.name == "kiln").map(|d| features(&d.spec)).unwrap_or_default();
    features.extend(extra.iter().map(|f| f.to_string()));
    features.sort();
    features.dedup();
    let mut table = toml::Table::new();
    table.insert("path".into(), toml::Value::String(sdk.to_string_lossy().into_owned()));
    table.insert("features".into(), toml::Value::Array(features.into_iter().map(toml::Value::String).collect()));
    Dependency { name: "kiln".into(), spec: toml::Value::Table(table) }
}

/// A TOML value on one line (`{ version = "1", features = ["a"] }`).
pub fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(table) => {
            let fields: Vec<String> = table.iter().map(|(k, v)| format!("{} = {}", key(k), inline(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        toml::Value::Array(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        k.to_owned()
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_lines() {
        let dir = Path::new("/work/notebooks");
        let cases = [
            "candle-core = \"0.11.1\"",
            "polars = { version = \"0.55\", features = [\"lazy\", \"parquet\"] }",
            "kiln = { path = \"../server-client/client\", features = [\"polars\"] }",
            "rand",
            "serde = { version = \"1\", features = [\"derive\"] ",
            "bad name = \"1\"",
            "n = 3",
            "./missing-crate",
            "",
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|c| match parse(c, dir) {
                Ok(dep) => format!("{} = {}", dep.name, inline(&dep.spec)),
                Err(e) => format!("error: {e}"),
            })
            .collect();
        expect_test::expect![[r#"
            candle-core = "0.11.1"
            polars = { features = ["lazy", "parquet"], version = "0.55" }
            kiln = { features = ["polars"], path = "/work/server-client/client" }
            rand = "*"
            error: `:dep serde = { version = "1", features = ["derive"]`: the value is not TOML: unclosed inline table, expected `}`
            error: `:dep bad name = "1"`: `bad name` is not a crate name
            error: `:dep n = 3`: give a version ("1.0") or a table ({ version = "1.0", features = [...] })
            error: `:dep ./missing-crate`: reading /work/notebooks/missing-crate/Cargo.toml: No such file or directory (os error 2)
            error: `:dep` needs a crate: `:dep name = "1.0"`"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn kiln_gets_the_sdk_path_and_the_features_needed() {
        let deps = vec![parse("kiln = { path = \"x\", features = [\"polars\"] }", Path::new("/nb")).unwrap()];
        assert_eq!(
            inline(&kiln(&deps, Path::new("/opt/kiln/client"), &["serve", "polars"]).spec),
            r#"{ features = ["polars", "serve"], path = "/opt/kiln/client" }"#
        );
    }
}

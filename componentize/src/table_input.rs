//! `// kiln: input NAME { column: type, … }`: the columns of a DataFrame request input.
//!
//! A served `fn infer(…, x: DataFrame)` takes named inputs, one 1-D tensor per column. Their
//! names and datatypes cannot come from the type (`DataFrame` has no schema), so the infer
//! cell declares them, and the generated server checks requests against them and lists them
//! in its model metadata. A column name is an identifier or a quoted string (`"sepal.length"`);
//! a type is one of the Rust element types every polars build holds.

use kiln_api::oip::Datatype;

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputColumn {
    pub name: String,
    /// The Rust type as declared (`f64`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Its Open Inference Protocol datatype (`FP64`).
    #[serde(serialize_with = "datatype_name")]
    pub datatype: Datatype,
}

fn datatype_name<S: serde::Serializer>(d: &Datatype, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// A declaration: the input's name and its columns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInput {
    pub name: String,
    pub columns: Vec<InputColumn>,
}

/// The column types a table input takes, with their datatypes.
pub const COLUMN_TYPES: [(&str, Datatype); 8] = [
    ("bool", Datatype::Bool),
    ("i32", Datatype::I32),
    ("i64", Datatype::I64),
    ("u32", Datatype::U32),
    ("u64", Datatype::U64),
    ("f32", Datatype::F32),
    ("f64", Datatype::F64),
    ("String", Datatype::Bytes),
];

/// Whether a parameter type as written is a polars DataFrame (`DataFrame`,
/// `polars::prelude::DataFrame`); the probe confirms it with the compiler.
pub fn is_dataframe(ty: &str) -> bool {
    ty.rsplit("::").next().is_some_and(|last| last.trim() == "DataFrame")
}

/// Parses what follows `kiln:` (`input x { a: f64, "b c": String }`).
pub fn parse(text: &str) -> Result<TableInput, String> {
    let form = "write `input NAME { column: type, … }`";
    let rest = text.strip_prefix("input").map(str::trim_start).ok_or_else(|| format!("`{text}`: {form}"))?;
    let (name, body) = rest.split_once('{').ok_or_else(|| format!("`{text}`: no `{{`; {form}"))?;
    let name = name.trim();
    if !is_ident(name) {
        return Err(format!("`{name}` is not a parameter name; {form}"));
    }
    let body = body.trim_end().strip_suffix('}').ok_or_else(|| format!("`{text}`: no closing `}}`; {form}"))?;
    let mut columns: Vec<InputColumn> = Vec::new();
    for entry in body.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (column, ty) = entry.rsplit_once(':').ok_or_else(|| format!("`{entry}`: write `column: type`"))?;
        let column = column_name(column.trim()).ok_or_else(|| format!("`{}` is not a column name: an identifier or a \"quoted\" name", column.trim()))?;
        let ty = ty.trim();
        let Some(&(_, datatype)) = COLUMN_TYPES.iter().find(|(t, _)| *t == ty) else {
            let known: Vec<&str> = COLUMN_TYPES.iter().map(|(t, _)| *t).collect();
            return Err(format!("column `{column}` has type `{ty}`; a column is one of {}", known.join(", ")));
        };
        if columns.iter().any(|c| c.name == column) {
            return Err(format!("column `{column}` is declared twice"));
        }
        columns.push(InputColumn { name: column, ty: ty.to_owned(), datatype });
    }
    if columns.is_empty() {
        return Err(format!("`{name}` declares no columns; {form}"));
    }
    Ok(TableInput { name: name.to_owned(), columns })
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn column_name(s: &str) -> Option<String> {
    if let Some(quoted) = s.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
        return (!quoted.is_empty() && !quoted.contains('"')).then(|| quoted.to_owned());
    }
    is_ident(s).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_and_their_errors() {
        let cases = [
            "input x { a: f64, \"sepal.length\": f32, species: String }",
            "input x {}",
            "input x a: f64",
            "input x { a: f64 ",
            "input 1x { a: f64 }",
            "input x { a f64 }",
            "input x { a: i8 }",
            "input x { a: f64, a: i64 }",
            "input x { a b: f64 }",
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|c| match parse(c) {
                Ok(t) => format!("{} {:?}", t.name, t.columns.iter().map(|c| format!("{}:{}={}", c.name, c.ty, c.datatype)).collect::<Vec<_>>()),
                Err(e) => format!("error: {e}"),
            })
            .collect();
        expect_test::expect![[r#"
            x ["a:f64=FP64", "sepal.length:f32=FP32", "species:String=BYTES"]
            error: `x` declares no columns; write `input NAME { column: type, … }`
            error: `input x a: f64`: no `{`; write `input NAME { column: type, … }`
            error: `input x { a: f64 `: no closing `}`; write `input NAME { column: type, … }`
            error: `1x` is not a parameter name; write `input NAME { column: type, … }`
            error: `a f64`: write `column: type`
            error: column `a` has type `i8`; a column is one of bool, i32, i64, u32, u64, f32, f64, String
            error: column `a` is declared twice
            error: `a b` is not a column name: an identifier or a "quoted" name"#]]
        .assert_eq(&out.join("\n"));
        assert!(is_dataframe("DataFrame") && is_dataframe("polars::prelude::DataFrame") && !is_dataframe("Vec<f64>"));
    }
}

//! A polars DataFrame as `infer`'s input: each column one named 1-D input tensor.
//!
//! The columns come from [`Input::table`] (the notebook's `// kiln: input x { … }` line), so
//! the metadata endpoint lists them and a generic OIP client can build a request; a request
//! must send every column once, of its datatype, all of one length. Only the dtypes every
//! polars build has are taken (no `dtype-i8`-style features needed): BOOL, INT32, INT64,
//! UINT32, UINT64, FP32, FP64 and BYTES (as strings).

use kiln_api::oip::{Data, OipError, Tensor, TensorMetadata};
use polars::prelude::{DataFrame, IntoColumn, NamedFrom, Series};

use super::{Column, Datatype, InferInput, Input};

/// The datatypes a table column may have.
pub const COLUMN_DATATYPES: [Datatype; 8] =
    [Datatype::Bool, Datatype::I32, Datatype::I64, Datatype::U32, Datatype::U64, Datatype::F32, Datatype::F64, Datatype::Bytes];

impl InferInput for DataFrame {
    fn metadata(input: &Input) -> Vec<TensorMetadata> {
        input.columns.iter().map(|c| TensorMetadata { name: c.name.clone(), datatype: c.datatype, shape: vec![-1] }).collect()
    }

    fn from_tensors(tensors: Vec<Tensor>, input: &Input) -> Result<DataFrame, OipError> {
        if input.columns.is_empty() {
            // Nothing declared (a hand-built `Model`): the request's tensors are the columns.
            let mut columns = Vec::with_capacity(tensors.len());
            for (i, tensor) in tensors.iter().enumerate() {
                if !COLUMN_DATATYPES.contains(&tensor.datatype) {
                    let known: Vec<&str> = COLUMN_DATATYPES.iter().map(|d| d.as_str()).collect();
                    return Err(OipError::at(format!("inputs[{i}].datatype"), format!("is {}; a column takes one of {}", tensor.datatype, known.join(", "))));
                }
                columns.push(Column { name: tensor.name.clone(), datatype: tensor.datatype });
            }
            return DataFrame::from_tensors(tensors, &Input { name: input.name.clone(), columns });
        }
        let declared: Vec<&str> = input.columns.iter().map(|c| c.name.as_str()).collect();
        let mut slots: Vec<Option<Series>> = vec![None; input.columns.len()];
        // The first column's length, name and place: every other must match it.
        let mut height: Option<(usize, String, usize)> = None;
        for (i, tensor) in tensors.into_iter().enumerate() {
            let at = format!("inputs[{i}]");
            let Some(slot) = input.columns.iter().position(|c| c.name == tensor.name) else {
                return Err(OipError::at(
                    format!("{at}.name"),
                    format!("`{}` is not a column of `{}` (it takes {})", tensor.name, input.name, listed(&declared)),
                ));
            };
            let column = &input.columns[slot];
            if tensor.datatype != column.datatype {
                return Err(OipError::at(format!("{at}.datatype"), format!("is {}; column `{}` takes {}", tensor.datatype, column.name, column.datatype)));
            }
            let rows = match tensor.shape.as_slice() {
                [n] | [n, 1] => *n as usize,
                other => return Err(OipError::at(format!("{at}.shape"), format!("is {other:?}; a column takes shape [n] (or [n, 1])"))),
            };
            match &height {
                Some((n, first, place)) if *n != rows => {
                    return Err(OipError::at(format!("{at}.shape"), format!("has {rows} rows; `{first}` (inputs[{place}]) has {n}")));
                }
                None => height = Some((rows, column.name.clone(), i)),
                _ => {}
            }
            slots[slot] = Some(
                series(&column.name, tensor.datatype, tensor.data)
                    .ok_or_else(|| OipError::at(format!("{at}.data"), format!("is not {} data", column.datatype)))?,
            );
        }
        let missing: Vec<&str> = input.columns.iter().zip(&slots).filter(|(_, s)| s.is_none()).map(|(c, _)| c.name.as_str()).collect();
        if !missing.is_empty() {
            return Err(OipError::at("inputs", format!("lack {}; `{}` takes the columns {}", listed(&missing), input.name, listed(&declared))));
        }
        let columns = slots.into_iter().flatten().map(IntoColumn::into_column).collect();
        DataFrame::new(height.map_or(0, |(n, ..)| n), columns).map_err(|e| OipError::at("inputs", e))
    }
}

fn listed(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// A polars column from checked data of `datatype`.
fn series(name: &str, datatype: Datatype, data: Data) -> Option<Series> {
    let name = name.into();
    Some(match (datatype, data) {
        (Datatype::Bool, Data::Bool(v)) => Series::new(name, v),
        (Datatype::I32, Data::Int(v)) => Series::new(name, v.into_iter().map(|x| x as i32).collect::<Vec<_>>()),
        (Datatype::I64, Data::Int(v)) => Series::new(name, v),
        (Datatype::U32, Data::Int(v)) => Series::new(name, v.into_iter().map(|x| x as u32).collect::<Vec<_>>()),
        (Datatype::U64, Data::UInt(v)) => Series::new(name, v),
        (Datatype::F32, Data::Float(v)) => Series::new(name, v.into_iter().map(|x| x as f32).collect::<Vec<_>>()),
        (Datatype::F64, Data::Float(v)) => Series::new(name, v),
        (Datatype::Bytes, Data::Bytes(v)) => Series::new(name, v),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::super::{Datatype, Input, Model};

    /// A model over a table: `length * 2` for setosa rows, `length` otherwise, as FP64.
    fn model() -> Model {
        let input = Input::table("flowers", &[("species", Datatype::Bytes), ("length", Datatype::F64), ("count", Datatype::I32)]);
        Model::new("m", Some("1".into()), input, |df: DataFrame| -> Result<Vec<f64>, String> {
            let species = df.column("species").and_then(|c| c.str().cloned()).map_err(|e| e.to_string())?;
            let length = df.column("length").and_then(|c| c.f64().cloned()).map_err(|e| e.to_string())?;
            let count = df.column("count").and_then(|c| c.i32().cloned()).map_err(|e| e.to_string())?;
            let rows = species.iter().zip(length.iter()).zip(count.iter());
            Ok(rows.map(|((s, l), c)| l.unwrap_or(0.0) * if s == Some("setosa") { 2.0 } else { 1.0 } + f64::from(c.unwrap_or(0))).collect())
        })
    }

    fn call(model: &Model, body: &str) -> String {
        match model.infer(body.as_bytes(), None) {
            Ok(encoded) => serde_json::to_string(&serde_json::from_slice::<kiln_api::oip::InferResponse>(&encoded.body).unwrap().outputs).unwrap(),
            Err((status, error)) => format!("{} {}", status.as_u16(), error.error),
        }
    }

    #[test]
    fn metadata_lists_the_columns() {
        expect_test::expect![[r#"{"name":"m","versions":["1"],"platform":"kiln-rust","inputs":[{"name":"species","datatype":"BYTES","shape":[-1]},{"name":"length","datatype":"FP64","shape":[-1]},{"name":"count","datatype":"INT32","shape":[-1]}],"outputs":[{"name":"output","datatype":"FP64","shape":[-1]}]}"#]]
            .assert_eq(&serde_json::to_string(&model().metadata()).unwrap());
    }

    #[test]
    fn named_inputs_and_refusals() {
        let m = model();
        let species = r#"{"name":"species","shape":[2],"datatype":"BYTES","data":["setosa","virginica"]}"#;
        let length = r#"{"name":"length","shape":[2],"datatype":"FP64","data":[1.5,6.0]}"#;
        let count = r#"{"name":"count","shape":[2,1],"datatype":"INT32","data":[[1],[2]]}"#;
        let body = |inputs: &[&str]| format!(r#"{{"inputs":[{}]}}"#, inputs.join(","));
        let cases = [
            body(&[species, length, count]),
            body(&[count, length, species]),
            body(&[species, length]),
            body(&[species, length, count, r#"{"name":"petal","shape":[2],"datatype":"FP64","data":[1,2]}"#]),
            body(&[species, r#"{"name":"length","shape":[2],"datatype":"FP32","data":[1.5,6.0]}"#, count]),
            body(&[species, r#"{"name":"length","shape":[3],"datatype":"FP64","data":[1,2,3]}"#, count]),
            body(&[species, r#"{"name":"length","shape":[1,2],"datatype":"FP64","data":[1.5,6.0]}"#, count]),
            body(&[
                r#"{"name":"species","shape":[0],"datatype":"BYTES","data":[]}"#,
                r#"{"name":"length","shape":[0],"datatype":"FP64","data":[]}"#,
                r#"{"name":"count","shape":[0],"datatype":"INT32","data":[]}"#,
            ]),
        ];
        let out: Vec<String> = cases.iter().map(|c| call(&m, c)).collect();
        expect_test::expect![[r#"
            [{"name":"output","shape":[2],"datatype":"FP64","data":[4.0,8.0]}]
            [{"name":"output","shape":[2],"datatype":"FP64","data":[4.0,8.0]}]
            400 inputs: lack `count`; `flowers` takes the columns `species`, `length`, `count`
            400 inputs[3].name: `petal` is not a column of `flowers` (it takes `species`, `length`, `count`)
            400 inputs[1].datatype: is FP32; column `length` takes FP64
            400 inputs[1].shape: has 3 rows; `species` (inputs[0]) has 2
            400 inputs[1].shape: is [1, 2]; a column takes shape [n] (or [n, 1])
            [{"name":"output","shape":[0],"datatype":"FP64","data":[]}]"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn undeclared_columns_come_from_the_request() {
        let m = Model::new("m", None, "x", |df: DataFrame| -> Vec<String> { df.get_column_names().iter().map(|n| n.to_string()).collect() });
        assert_eq!(serde_json::to_string(&m.metadata().inputs).unwrap(), "[]");
        assert_eq!(
            call(&m, r#"{"inputs":[{"name":"b","shape":[1],"datatype":"BOOL","data":[true]},{"name":"a","shape":[1],"datatype":"UINT64","data":[1]}]}"#),
            r#"[{"name":"output","shape":[2],"datatype":"BYTES","data":["b","a"]}]"#
        );
        assert_eq!(
            call(&m, r#"{"inputs":[{"name":"b","shape":[1],"datatype":"INT8","data":[1]}]}"#),
            "400 inputs[0].datatype: is INT8; a column takes one of BOOL, INT32, INT64, UINT32, UINT64, FP32, FP64, BYTES"
        );
    }
}

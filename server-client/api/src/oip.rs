//! The Open Inference Protocol v2 (KServe v2, Triton's HTTP/REST protocol): the bodies that
//! cross `/v2/…`, and the checks every request passes before a model sees it.
//!
//! Shared by the generated infer component (which serves one model) and, later, the gateway
//! in `kiln server` (which routes between versions), so both refuse the same bodies with the
//! same words. Errors are `{"error": "…"}` and name the offending field
//! (`inputs[0].data[7]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod binary;

/// An infer component's `KILN_LISTEN` (and `kiln instance --listen`) of the form `unix:PATH`
/// serves on a Unix socket at PATH. `kiln server` starts its instances so, beside their logs:
/// the hop from the gateway then skips the TCP stack (on a busy machine about half of the
/// gateway's own CPU per request went to TCP on loopback), and the instance has no port
/// another local user could reach.
pub const UNIX_SOCKET_PREFIX: &str = "unix:";

/// The tensor element types of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Datatype {
    #[serde(rename = "BOOL")]
    Bool,
    #[serde(rename = "UINT8")]
    U8,
    #[serde(rename = "UINT16")]
    U16,
    #[serde(rename = "UINT32")]
    U32,
    #[serde(rename = "UINT64")]
    U64,
    #[serde(rename = "INT8")]
    I8,
    #[serde(rename = "INT16")]
    I16,
    #[serde(rename = "INT32")]
    I32,
    #[serde(rename = "INT64")]
    I64,
    #[serde(rename = "FP16")]
    F16,
    #[serde(rename = "FP32")]
    F32,
    #[serde(rename = "FP64")]
    F64,
    #[serde(rename = "BYTES")]
    Bytes,
}

impl Datatype {
    pub const ALL: [Datatype; 13] = [
        Datatype::Bool,
        Datatype::U8,
        Datatype::U16,
        Datatype::U32,
        Datatype::U64,
        Datatype::I8,
        Datatype::I16,
        Datatype::I32,
        Datatype::I64,
        Datatype::F16,
        Datatype::F32,
        Datatype::F64,
        Datatype::Bytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::U8 => "UINT8",
            Datatype::U16 => "UINT16",
            Datatype::U32 => "UINT32",
            Datatype::U64 => "UINT64",
            Datatype::I8 => "INT8",
            Datatype::I16 => "INT16",
            Datatype::I32 => "INT32",
            Datatype::I64 => "INT64",
            Datatype::F16 => "FP16",
            Datatype::F32 => "FP32",
            Datatype::F64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    pub fn parse(text: &str) -> Option<Datatype> {
        Datatype::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// The inclusive range of an integer type.
    fn integer_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Datatype::U8 => (0, u8::MAX.into()),
            Datatype::U16 => (0, u16::MAX.into()),
            Datatype::U32 => (0, u32::MAX.into()),
            Datatype::U64 => (0, u64::MAX.into()),
            Datatype::I8 => (i8::MIN.into(), i8::MAX.into()),
            Datatype::I16 => (i16::MIN.into(), i16::MAX.into()),
            Datatype::I32 => (i32::MIN.into(), i32::MAX.into()),
            Datatype::I64 => (i64::MIN.into(), i64::MAX.into()),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Datatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `parameters` values: the protocol allows strings, numbers and booleans.
pub type Parameters = BTreeMap<String, serde_json::Value>;

/// `POST /v2/models/{name}/infer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    pub inputs: Vec<RequestInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<RequestOutput>>,
}

/// One input tensor as sent: `data` is row-major, flat or nested; or absent, with
/// `parameters.binary_data_size` saying how many bytes after the JSON header are its elements
/// ([`binary`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestOutput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    pub model_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    pub outputs: Vec<ResponseOutput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseOutput {
    pub name: String,
    pub shape: Vec<u64>,
    pub datatype: Datatype,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    /// `None` when the elements went after the JSON header as bytes
    /// (`parameters.binary_data_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Data>,
}

/// `GET /v2/models/{name}`: enough for a generic client to build a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub name: String,
    #[serde(default)]
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// A tensor's name, element type and shape; `-1` is a dimension of any size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<i64>,
}

/// `GET /v2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReady {
    pub name: String,
    pub ready: bool,
}

/// The error body of every failed `/v2` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}")]
pub struct OipError {
    pub error: String,
}

impl OipError {
    pub fn new(error: impl Into<String>) -> OipError {
        OipError { error: error.into() }
    }

    /// Bad input at `field` (`inputs[0].shape`).
    pub fn at(field: impl std::fmt::Display, message: impl std::fmt::Display) -> OipError {
        OipError { error: format!("{field}: {message}") }
    }
}

/// A tensor's elements, flat and row-major, typed by the datatype they were checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Data {
    Bool(Vec<bool>),
    /// Every integer type, widened: the datatype says which it is, and the range was checked.
    Int(Vec<i64>),
    /// `UINT64` values above `i64::MAX` keep their exact value here.
    UInt(Vec<u64>),
    /// FP16, FP32 and FP64, widened to f64 (FP32 values round-trip exactly).
    Float(Vec<f64>),
    Bytes(Vec<String>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::Int(v) => v.len(),
            Data::UInt(v) => v.len(),
            Data::Float(v) => v.len(),
            Data::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An input after every check: known datatype, a shape of non-negative sizes whose product is
/// the number of elements, and each element of the datatype's kind and range.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<u64>,
    pub data: Data,
}

/// The most elements one tensor may hold (the body limit bounds it first in practice).
pub const MAX_ELEMENTS: u64 = 1 << 28;

impl InferRequest {
    /// Checks every input of a plain JSON request; the first problem, naming its field.
    pub fn tensors(&self) -> Result<Vec<Tensor>, OipError> {
        self.tensors_with(&[])
    }

    /// Checks every input, those with `binary_data_size` taking their elements from `binary`
    /// (the bytes after the JSON header) in order; every byte must be claimed.
    pub fn tensors_with(&self, binary: &[u8]) -> Result<Vec<Tensor>, OipError> {
        if self.inputs.is_empty() {
            return Err(OipError::at("inputs", "is empty; send at least one input tensor"));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut tensors = Vec::with_capacity(self.inputs.len());
        let mut claimed = 0;
        for (i, input) in self.inputs.iter().enumerate() {
            let at = format!("inputs[{i}]");
            if !seen.insert(input.name.as_str()) {
                return Err(OipError::at(format!("{at}.name"), format!("`{}` is given twice", input.name)));
            }
            let bytes = match binary::declared_size(input, &at)? {
                Some(size) => {
                    let left = binary.len() - claimed;
                    if size > left {
                        return Err(OipError::at(
                            format!("{at}.parameters.binary_data_size"),
                            format!("is {size} but only {left} bytes follow the JSON header for it"),
                        ));
                    }
                    claimed += size;
                    Some(&binary[claimed - size..claimed])
                }
                None => None,
            };
            tensors.push(input.decode_with(&at, bytes)?);
        }
        if claimed != binary.len() {
            return Err(OipError::at(
                "body",
                format!(
                    "{} bytes follow the last input's binary data (inputs claim {claimed} of the {} after the JSON header)",
                    binary.len() - claimed,
                    binary.len()
                ),
            ));
        }
        if let Some(outputs) = &self.outputs {
            let mut seen = std::collections::BTreeSet::new();
            for (i, output) in outputs.iter().enumerate() {
                if !seen.insert(output.name.as_str()) {
                    return Err(OipError::at(format!("outputs[{i}].name"), format!("`{}` is asked for twice", output.name)));
                }
            }
        }
        Ok(tensors)
    }
}

impl RequestInput {
    /// This input (with its elements in `data`) checked and typed; `at` names it in errors
    /// (`inputs[0]`).
    pub fn decode(&self, at: &str) -> Result<Tensor, OipError> {
        self.decode_with(at, None)
    }

    /// This input checked and typed, its elements from `binary` when it was sent so.
    fn decode_with(&self, at: &str, binary: Option<&[u8]>) -> Result<Tensor, OipError> {
        if self.name.is_empty() {
            return Err(OipError::at(format!("{at}.name"), "is empty"));
        }
        let datatype = Datatype::parse(&self.datatype).ok_or_else(|| {
            let known: Vec<&str> = Datatype::ALL.iter().map(|d| d.as_str()).collect();
            OipError::at(format!("{at}.datatype"), format!("`{}` is not a datatype (one of {})", self.datatype, known.join(", ")))
        })?;
        let mut shape = Vec::with_capacity(self.shape.len());
        let mut expected: u64 = 1;
        for (d, &size) in self.shape.iter().enumerate() {
            let size =
                u64::try_from(size).map_err(|_| OipError::at(format!("{at}.shape[{d}]"), format!("is {size}; a request's dimensions are sizes, 0 or more")))?;
            expected = expected.saturating_mul(size);
            shape.push(size);
        }
        if expected > MAX_ELEMENTS {
            return Err(OipError::at(format!("{at}.shape"), format!("{:?} holds {expected} elements, over the limit of {MAX_ELEMENTS}", self.shape)));
        }
        if let Some(bytes) = binary {
            if !self.data.is_null() {
                return Err(OipError::at(at, "has both data and parameters.binary_data_size; send the elements one way"));
            }
            let data = binary::decode(datatype, expected, &self.shape, bytes, at)?;
            return Ok(Tensor { name: self.name.clone(), datatype, shape, data });
        }
        if self.data.is_null() {
            if self.parameters.as_ref().is_some_and(|p| p.contains_key("shared_memory_region")) {
                return Err(OipError::at(
                    format!("{at}.parameters.shared_memory_region"),
                    "shared memory is not supported here; send data, or binary_data_size bytes after the JSON header",
                ));
            }
            return Err(OipError::at(
                format!("{at}.data"),
                "is missing; send the elements as an array, or as bytes after the JSON header with parameters.binary_data_size",
            ));
        }
        let mut flat = Vec::with_capacity(expected as usize);
        flatten(&self.data, &format!("{at}.data"), 0, &mut flat)?;
        if flat.len() as u64 != expected {
            return Err(OipError::at(format!("{at}.data"), format!("has {} element(s) but shape {:?} needs {expected}", flat.len(), self.shape)));
        }
        let data = typed(datatype, &flat)?;
        Ok(Tensor { name: self.name.clone(), datatype, shape, data })
    }
}

/// Nested JSON arrays deeper than this are refused (a body of `[[[[…` must not recurse
/// without bound).
const MAX_NESTING: usize = 32;

/// Row-major flattening of nested arrays; `path` names the element for errors.
fn flatten<'a>(value: &'a serde_json::Value, path: &str, depth: usize, out: &mut Vec<(String, &'a serde_json::Value)>) -> Result<(), OipError> {
    match value {
        serde_json::Value::Array(items) => {
            if depth >= MAX_NESTING {
                return Err(OipError::at(path, format!("is nested more than {MAX_NESTING} deep")));
            }
            for (i, item) in items.iter().enumerate() {
                if item.is_array() {
                    flatten(item, &format!("{path}[{i}]"), depth + 1, out)?;
                } else {
                    out.push((format!("{path}[{i}]"), item));
                }
            }
            Ok(())
        }
        serde_json::Value::Null => Err(OipError::at(path, "is missing (null); send the elements as an array")),
        _ if depth == 0 => Err(OipError::at(path, "must be an array of elements")),
        other => {
            out.push((path.to_owned(), other));
            Ok(())
        }
    }
}

fn typed(datatype: Datatype, flat: &[(String, &serde_json::Value)]) -> Result<Data, OipError> {
    let kind = |what: &str, at: &str, value: &serde_json::Value| OipError::at(at, format!("{value} is not {what} (datatype {datatype})"));
    Ok(match datatype {
        Datatype::Bool => Data::Bool(flat.iter().map(|(at, v)| v.as_bool().ok_or_else(|| kind("a boolean", at, v))).collect::<Result<_, _>>()?),
        Datatype::Bytes => {
            Data::Bytes(flat.iter().map(|(at, v)| v.as_str().map(str::to_owned).ok_or_else(|| kind("a string", at, v))).collect::<Result<_, _>>()?)
        }
        Datatype::F16 | Datatype::F32 | Datatype::F64 => Data::Float(
            flat.iter()
                .map(|(at, v)| {
                    let x = v.as_f64().ok_or_else(|| kind("a number", at, v))?;
                    let max = match datatype {
                        Datatype::F16 => 65504.0,
                        Datatype::F32 => f32::MAX as f64,
                        _ => f64::MAX,
                    };
                    if x.abs() > max {
                        return Err(OipError::at(at, format!("{x} is out of range for {datatype}")));
                    }
                    Ok(x)
                })
                .collect::<Result<_, _>>()?,
        ),
        Datatype::U64 => Data::UInt(
            flat.iter()
                .map(|(at, v)| {
                    v.as_u64().ok_or_else(|| {
                        if v.is_number() { OipError::at(at, format!("{v} is not an integer in 0..={}", u64::MAX)) } else { kind("an integer", at, v) }
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let (low, high) = datatype.integer_range().expect("integer datatype");
            Data::Int(
                flat.iter()
                    .map(|(at, v)| {
                        let n = v.as_i64().ok_or_else(|| {
                            if v.is_number() {
                                OipError::at(at, format!("{v} is not an integer in {low}..={high} (datatype {datatype})"))
                            } else {
                                kind("an integer", at, v)
                            }
                        })?;
                        if (n as i128) < low || (n as i128) > high {
                            return Err(OipError::at(at, format!("{n} is out of range for {datatype} ({low}..={high})")));
                        }
                        Ok(n)
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

impl Tensor {
    /// This tensor's shape against a declared one (`-1` matches any size).
    pub fn check_shape(&self, declared: &[i64], at: &str) -> Result<(), OipError> {
        let fits = declared.len() == self.shape.len() && declared.iter().zip(&self.shape).all(|(&d, &s)| d < 0 || d as u64 == s);
        if fits { Ok(()) } else { Err(OipError::at(format!("{at}.shape"), format!("is {:?}; this model takes {:?} (-1: any size)", self.shape, declared))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn check(body: &str) -> String {
        match serde_json::from_str::<InferRequest>(body) {
            Err(error) => format!("body: {error}"),
            Ok(request) => match request.tensors() {
                Ok(tensors) => format!("{tensors:?}"),
                Err(error) => error.error,
            },
        }
    }

    #[test]
    fn requests_checked_field_by_field() {
        let cases = [
            r#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[3],"datatype":"UINT8","data":[1,2,300]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[1,2.5]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,"a"]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}"#,
            r#"{"inputs":[]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["hi"]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":null}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":1}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#,
            r#"{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"name":"","shape":[1],"datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[-1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[-1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[100000,100000],"datatype":"FP32","data":[]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[0],"datatype":"FP32","data":[]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y"},{"name":"y"}]}"#,
            r#"{"inputs":{"name":"x"}}"#,
            r#"[1,2]"#,
        ];
        let out: Vec<String> = cases.iter().map(|c| check(c)).collect();
        expect![[r#"
            [Tensor { name: "x", datatype: F32, shape: [2, 2], data: Float([1.0, 2.0, 3.0, 4.0]) }]
            [Tensor { name: "x", datatype: F32, shape: [2, 2], data: Float([1.0, 2.0, 3.0, 4.0]) }]
            inputs[0].data[2]: 300 is out of range for UINT8 (0..=255)
            inputs[0].data[1]: 2.5 is not an integer in -2147483648..=2147483647 (datatype INT32)
            inputs[0].data[1]: "a" is not a number (datatype FP32)
            inputs[0].data: has 2 element(s) but shape [3] needs 3
            inputs[0].shape[0]: is -1; a request's dimensions are sizes, 0 or more
            inputs[0].datatype: `FLOAT` is not a datatype (one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES)
            inputs: is empty; send at least one input tensor
            inputs[0].data[0]: 1 is not a boolean (datatype BOOL)
            [Tensor { name: "x", datatype: Bytes, shape: [1], data: Bytes(["hi"]) }]
            inputs[0].data: is missing; send the elements as an array, or as bytes after the JSON header with parameters.binary_data_size
            inputs[0].data: must be an array of elements
            inputs[0].data: is missing; send the elements as an array, or as bytes after the JSON header with parameters.binary_data_size
            body: missing field `shape` at line 1 column 52
            inputs[1].name: `x` is given twice
            inputs[0].name: is empty
            inputs[0].data[0]: 1000000000000000000000000000000000000000 is out of range for FP32
            [Tensor { name: "x", datatype: U64, shape: [1], data: UInt([18446744073709551615]) }]
            [Tensor { name: "x", datatype: I64, shape: [1], data: Int([-1]) }]
            inputs[0].data[0]: -1 is not an integer in 0..=18446744073709551615
            inputs[0].shape: [100000, 100000] holds 10000000000 elements, over the limit of 268435456
            [Tensor { name: "x", datatype: F32, shape: [0], data: Float([]) }]
            outputs[1].name: `y` is asked for twice
            body: invalid type: map, expected a sequence at line 1 column 10
            body: invalid type: integer `1`, expected a string at line 1 column 2"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let body = format!(r#"{{"inputs":[{{"name":"x","shape":[1],"datatype":"FP32","data":{deep}}}]}}"#);
        assert!(check(&body).contains("nested more than 32 deep"), "{}", check(&body));
    }

    #[test]
    fn declared_shapes() {
        let tensor = Tensor { name: "x".into(), datatype: Datatype::F32, shape: vec![2, 4], data: Data::Float(vec![0.0; 8]) };
        assert!(tensor.check_shape(&[-1, 4], "inputs[0]").is_ok());
        assert_eq!(tensor.check_shape(&[-1, 3], "inputs[0]").unwrap_err().error, "inputs[0].shape: is [2, 4]; this model takes [-1, 3] (-1: any size)");
        assert!(tensor.check_shape(&[-1], "inputs[0]").is_err());
    }
}

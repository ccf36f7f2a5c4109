//! Triton's *binary tensor data* extension, which `tritonclient.http` uses unless told not
//! to: the body is a JSON header of `Inference-Header-Content-Length` bytes, then the raw
//! tensors one after another. An input with `"parameters": {"binary_data_size": N}` and no
//! `data` takes the next N bytes; an output asked for with `binary_data` (or every output,
//! with the request's `binary_data_output`) answers the same way.
//!
//! Elements are little-endian and row-major; a BOOL is one byte (0 or 1); a BYTES element is
//! a 4-byte little-endian length, then that many bytes. The checks are the JSON tensors'
//! checks (range, count against shape) plus the sizes, each naming its field.

use super::{Data, Datatype, InferRequest, InferResponse, OipError, RequestInput};

/// Its name in `GET /v2`'s `extensions`, as Triton lists it.
pub const EXTENSION: &str = "binary_tensor_data";

/// The header that says where the JSON ends (HTTP header names are case-insensitive; this is
/// the form `http::HeaderName` takes).
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The content type of a body with binary tensors after its JSON header.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// A body split at its header length: the JSON header and the binary tensors after it (empty
/// without the header, or when the JSON fills the body).
pub fn split<'a>(body: &'a [u8], header_length: Option<&[u8]>) -> Result<(&'a [u8], &'a [u8]), OipError> {
    let Some(value) = header_length else { return Ok((body, &[])) };
    let text = std::str::from_utf8(value).unwrap_or("");
    let length: usize = text
        .trim()
        .parse()
        .map_err(|_| OipError::at("Inference-Header-Content-Length", format!("`{}` is not a byte count", String::from_utf8_lossy(value))))?;
    if length > body.len() {
        return Err(OipError::at("Inference-Header-Content-Length", format!("is {length} but the body has only {} bytes", body.len())));
    }
    Ok(body.split_at(length))
}

/// Bytes one element of `datatype` takes; `None` for BYTES (each element says its length).
pub fn element_size(datatype: Datatype) -> Option<usize> {
    Some(match datatype {
        Datatype::Bool | Datatype::U8 | Datatype::I8 => 1,
        Datatype::U16 | Datatype::I16 | Datatype::F16 => 2,
        Datatype::U32 | Datatype::I32 | Datatype::F32 => 4,
        Datatype::U64 | Datatype::I64 | Datatype::F64 => 8,
        Datatype::Bytes => return None,
    })
}

/// The `binary_data_size` an input's parameters give, if any.
pub(super) fn declared_size(input: &RequestInput, at: &str) -> Result<Option<usize>, OipError> {
    let Some(value) = input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) else { return Ok(None) };
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| OipError::at(format!("{at}.parameters.binary_data_size"), format!("{value} is not a byte count")))
}

/// The elements of an input sent as `bytes`, checked against its datatype and `count` (the
/// shape's product); `at` names the input (`inputs[0]`).
pub(super) fn decode(datatype: Datatype, count: u64, shape: &[i64], bytes: &[u8], at: &str) -> Result<Data, OipError> {
    let element = |i: usize| format!("{at}.binary_data[{i}]");
    let Some(size) = element_size(datatype) else { return decode_strings(count, bytes, at) };
    if bytes.len() as u64 != count.saturating_mul(size as u64) {
        return Err(OipError::at(
            format!("{at}.parameters.binary_data_size"),
            format!("is {} but shape {shape:?} of {datatype} needs {} bytes ({count} × {size})", bytes.len(), count.saturating_mul(size as u64)),
        ));
    }
    let chunks = bytes.chunks_exact(size);
    macro_rules! ints {
        ($t:ty) => {
            Data::Int(chunks.map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk of the element's size")) as i64).collect())
        };
    }
    let finite =
        |i: usize, x: f64| if x.is_finite() { Ok(x) } else { Err(OipError::at(element(i), format!("{x} is not a finite number (datatype {datatype})"))) };
    Ok(match datatype {
        Datatype::Bool => Data::Bool(
            bytes
                .iter()
                .enumerate()
                .map(|(i, &b)| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(OipError::at(element(i), format!("byte {b} is not a boolean (0 or 1)"))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Datatype::U8 => ints!(u8),
        Datatype::I8 => ints!(i8),
        Datatype::U16 => ints!(u16),
        Datatype::I16 => ints!(i16),
        Datatype::U32 => ints!(u32),
        Datatype::I32 => ints!(i32),
        Datatype::I64 => ints!(i64),
        Datatype::U64 => Data::UInt(chunks.map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()),
        Datatype::F16 => {
            Data::Float(chunks.enumerate().map(|(i, c)| finite(i, f16_to_f64(u16::from_le_bytes(c.try_into().expect("2 bytes"))))).collect::<Result<_, _>>()?)
        }
        Datatype::F32 => {
            Data::Float(chunks.enumerate().map(|(i, c)| finite(i, f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)).collect::<Result<_, _>>()?)
        }
        Datatype::F64 => Data::Float(chunks.enumerate().map(|(i, c)| finite(i, f64::from_le_bytes(c.try_into().expect("8 bytes")))).collect::<Result<_, _>>()?),
        Datatype::Bytes => unreachable!("BYTES has no fixed size"),
    })
}

/// BYTES elements: each a 4-byte little-endian length, then its bytes (UTF-8 text: they
/// reach the model as `String`s).
fn decode_strings(count: u64, mut bytes: &[u8], at: &str) -> Result<Data, OipError> {
    let mut out = Vec::new();
    let total = bytes.len();
    for i in 0..count as usize {
        let here = format!("{at}.binary_data[{i}]");
        let Some((prefix, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(OipError::at(
                here,
                format!("missing: binary_data_size {total} ends after {i} of {count} elements (each is a 4-byte length, then its bytes)"),
            ));
        };
        let length = u32::from_le_bytes(*prefix) as usize;
        if length > rest.len() {
            return Err(OipError::at(here, format!("its length prefix says {length} bytes but only {} remain in binary_data_size", rest.len())));
        }
        let (text, rest) = rest.split_at(length);
        let text = std::str::from_utf8(text).map_err(|e| OipError::at(&here, format!("is not UTF-8 text ({e}); this model takes BYTES as strings")))?;
        out.push(text.to_owned());
        bytes = rest;
    }
    if !bytes.is_empty() {
        return Err(OipError::at(
            format!("{at}.parameters.binary_data_size"),
            format!("is {total} but its {count} elements end after {}", total - bytes.len()),
        ));
    }
    Ok(Data::Bytes(out))
}

/// IEEE half precision to f64 (FP16 inputs reach the model widened, like JSON numbers).
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = ((bits >> 10) & 0x1f) as i32;
    let fraction = (bits & 0x3ff) as f64;
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        0x1f if fraction == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        _ => (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// f64 to IEEE half precision, rounding to nearest even (FP16 outputs sent as bytes).
fn f64_to_f16(x: f64) -> u16 {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    if a.is_nan() {
        return sign | 0x7e00;
    }
    if a >= 65520.0 {
        return sign | 0x7c00;
    }
    if a < 2f64.powi(-14) {
        // Subnormal: units of 2^-24.
        return sign | (a / 2f64.powi(-24)).round_ties_even() as u16;
    }
    let exponent = a.log2().floor() as i32;
    let mut mantissa = (a / 2f64.powi(exponent) - 1.0) * 1024.0;
    mantissa = mantissa.round_ties_even();
    let (exponent, mantissa) = if mantissa >= 1024.0 { (exponent + 1, 0.0) } else { (exponent, mantissa) };
    sign | (((exponent + 15) as u16) << 10) | mantissa as u16
}

/// Appends `data` (checked against `datatype`) as the extension's bytes.
fn encode(datatype: Datatype, data: &Data, out: &mut Vec<u8>) {
    match (data, datatype) {
        (Data::Bool(v), _) => out.extend(v.iter().map(|&b| b as u8)),
        (Data::Bytes(v), _) => {
            for s in v {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        (Data::UInt(v), _) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        (Data::Float(v), Datatype::F16) => v.iter().for_each(|&x| out.extend_from_slice(&f64_to_f16(x).to_le_bytes())),
        (Data::Float(v), Datatype::F32) => v.iter().for_each(|&x| out.extend_from_slice(&(x as f32).to_le_bytes())),
        (Data::Float(v), _) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        (Data::Int(v), d) => match element_size(d).unwrap_or(8) {
            1 => out.extend(v.iter().map(|&x| x as u8)),
            2 => v.iter().for_each(|&x| out.extend_from_slice(&(x as u16).to_le_bytes())),
            4 => v.iter().for_each(|&x| out.extend_from_slice(&(x as u32).to_le_bytes())),
            _ => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        },
    }
}

/// The bytes of an answer, and the header length to send with them when any output went
/// as binary (`None`: the body is plain JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub body: Vec<u8>,
    pub header_length: Option<usize>,
}

impl InferRequest {
    /// Whether output `name` goes back as binary: its own `binary_data` parameter when the
    /// request lists it, else the request's `binary_data_output` (tritonclient sets that
    /// when it asks for no output by name), else JSON.
    pub fn wants_binary(&self, name: &str) -> bool {
        let flag = |p: &Option<super::Parameters>, key: &str| p.as_ref().and_then(|p| p.get(key)).and_then(serde_json::Value::as_bool);
        self.outputs
            .iter()
            .flatten()
            .find(|o| o.name == name)
            .and_then(|o| flag(&o.parameters, "binary_data"))
            .or_else(|| flag(&self.parameters, "binary_data_output"))
            .unwrap_or(false)
    }
}

impl InferResponse {
    /// This answer as a body: JSON, with the outputs `binary` picks moved after it as bytes
    /// (their `data` replaced by `parameters.binary_data_size`).
    pub fn encode(mut self, binary: impl Fn(&str) -> bool) -> Result<Encoded, serde_json::Error> {
        let mut tail = Vec::new();
        for output in &mut self.outputs {
            if !binary(&output.name) {
                continue;
            }
            let Some(data) = output.data.take() else { continue };
            let start = tail.len();
            encode(output.datatype, &data, &mut tail);
            output.parameters.get_or_insert_with(Default::default).insert("binary_data_size".into(), (tail.len() - start).into());
        }
        let mut body = serde_json::to_vec(&self)?;
        if tail.is_empty() && !self.outputs.iter().any(|o| o.data.is_none()) {
            return Ok(Encoded { body, header_length: None });
        }
        let header_length = body.len();
        body.extend_from_slice(&tail);
        Ok(Encoded { body, header_length: Some(header_length) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ResponseOutput, Tensor};
    use super::*;
    use expect_test::expect;

    fn le<T: Copy>(values: &[T], bytes: fn(T) -> Vec<u8>) -> Vec<u8> {
        values.iter().flat_map(|&v| bytes(v)).collect()
    }

    fn strings(items: &[&[u8]]) -> Vec<u8> {
        items.iter().flat_map(|s| (s.len() as u32).to_le_bytes().into_iter().chain(s.iter().copied())).collect()
    }

    /// A request of `header` JSON then `tail`, decoded as an instance does.
    fn check(header: &str, tail: &[u8], header_length: Option<&str>) -> String {
        let mut body = header.as_bytes().to_vec();
        body.extend_from_slice(tail);
        let length = header_length.map(str::to_owned).unwrap_or_else(|| header.len().to_string());
        let result = split(&body, Some(length.as_bytes())).and_then(|(json, binary)| {
            let request: InferRequest = serde_json::from_slice(json).map_err(|e| OipError::at("body", e))?;
            request.tensors_with(binary)
        });
        match result {
            Ok(tensors) => {
                tensors.iter().map(|Tensor { name, datatype, shape, data }| format!("{name} {datatype} {shape:?} {data:?}")).collect::<Vec<_>>().join("; ")
            }
            Err(error) => error.error,
        }
    }

    fn input(datatype: &str, shape: &str, size: usize) -> String {
        format!(r#"{{"inputs":[{{"name":"x","shape":{shape},"datatype":"{datatype}","parameters":{{"binary_data_size":{size}}}}}]}}"#)
    }

    #[test]
    fn binary_inputs_decode_and_refuse_field_by_field() {
        let f32s = le(&[1.5f32, -2.0, 0.25, 8.0], |x| x.to_le_bytes().to_vec());
        let two = |a: &str, sa: usize, b: &str, sb: usize| {
            format!(
                r#"{{"inputs":[{{"name":"a","shape":[2],"datatype":"{a}","parameters":{{"binary_data_size":{sa}}}}},{{"name":"b","shape":[2],"datatype":"{b}","data":[7,8]}},{{"name":"c","shape":[1],"datatype":"{b}","parameters":{{"binary_data_size":{sb}}}}}]}}"#
            )
        };
        let mut ab = le(&[3i64, -4], |x| x.to_le_bytes().to_vec());
        ab.extend(le(&[9i64], |x| x.to_le_bytes().to_vec()));
        let cases: Vec<(String, Vec<u8>, Option<&str>)> = vec![
            (input("FP32", "[1,4]", 16), f32s.clone(), None),
            (input("FP32", "[2,2]", 12), f32s[..12].to_vec(), None),
            (input("FP32", "[1,4]", 16), f32s[..8].to_vec(), None),
            (input("FP32", "[1,4]", 16), [f32s.clone(), vec![0; 4]].concat(), None),
            (input("FP32", "[2]", 8), le(&[1.0f32, f32::NAN], |x| x.to_le_bytes().to_vec()), None),
            (input("FP16", "[3]", 6), le(&[0x3c00u16, 0xc000, 0x0001], |x| x.to_le_bytes().to_vec()), None),
            (input("FP64", "[1]", 8), 0.1f64.to_le_bytes().to_vec(), None),
            (input("INT8", "[3]", 3), vec![0xff, 0x7f, 0x80], None),
            (input("UINT16", "[2]", 4), vec![0xff, 0xff, 1, 0], None),
            (input("INT32", "[1]", 4), (-5i32).to_le_bytes().to_vec(), None),
            (input("UINT64", "[1]", 8), u64::MAX.to_le_bytes().to_vec(), None),
            (input("BOOL", "[3]", 3), vec![1, 0, 1], None),
            (input("BOOL", "[2]", 2), vec![1, 2], None),
            (input("BYTES", "[2]", 15), strings(&[b"hi", b"there"]), None),
            (input("BYTES", "[0]", 0), vec![], None),
            (input("BYTES", "[2]", 6), strings(&[b"hi"]), None),
            (input("BYTES", "[1]", 6), [5u8, 0, 0, 0, b'a', b'b'].to_vec(), None),
            (input("BYTES", "[1]", 9), strings(&[b"hi", b"x"]), None),
            (input("BYTES", "[1]", 5), strings(&[b"\xff"]), None),
            (input("FP32", "[1,4]", 16), f32s.clone(), Some("9999")),
            (input("FP32", "[1,4]", 16), f32s.clone(), Some("lots")),
            (r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}"#.into(), vec![0; 4], None),
            (r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}"#.into(), vec![0; 4], None),
            (r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#.into(), vec![], None),
            (r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"shared_memory_region":"r"}}]}"#.into(), vec![], None),
            (r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#.into(), vec![0; 4], None),
            (two("INT64", 16, "INT64", 8), ab.clone(), None),
            (two("INT64", 16, "INT8", 8), ab, None),
        ];
        let out: Vec<String> = cases.iter().map(|(header, tail, length)| check(header, tail, *length)).collect();
        expect![[r#"
            x FP32 [1, 4] Float([1.5, -2.0, 0.25, 8.0])
            inputs[0].parameters.binary_data_size: is 12 but shape [2, 2] of FP32 needs 16 bytes (4 × 4)
            inputs[0].parameters.binary_data_size: is 16 but only 8 bytes follow the JSON header for it
            body: 4 bytes follow the last input's binary data (inputs claim 16 of the 20 after the JSON header)
            inputs[0].binary_data[1]: NaN is not a finite number (datatype FP32)
            x FP16 [3] Float([1.0, -2.0, 5.960464477539063e-8])
            x FP64 [1] Float([0.1])
            x INT8 [3] Int([-1, 127, -128])
            x UINT16 [2] Int([65535, 1])
            x INT32 [1] Int([-5])
            x UINT64 [1] UInt([18446744073709551615])
            x BOOL [3] Bool([true, false, true])
            inputs[0].binary_data[1]: byte 2 is not a boolean (0 or 1)
            x BYTES [2] Bytes(["hi", "there"])
            x BYTES [0] Bytes([])
            inputs[0].binary_data[1]: missing: binary_data_size 6 ends after 1 of 2 elements (each is a 4-byte length, then its bytes)
            inputs[0].binary_data[0]: its length prefix says 5 bytes but only 2 remain in binary_data_size
            inputs[0].parameters.binary_data_size: is 9 but its 1 elements end after 6
            inputs[0].binary_data[0]: is not UTF-8 text (invalid utf-8 sequence of 1 bytes from index 0); this model takes BYTES as strings
            Inference-Header-Content-Length: is 9999 but the body has only 110 bytes
            Inference-Header-Content-Length: `lots` is not a byte count
            inputs[0].parameters.binary_data_size: "4" is not a byte count
            inputs[0]: has both data and parameters.binary_data_size; send the elements one way
            inputs[0].data: is missing; send the elements as an array, or as bytes after the JSON header with parameters.binary_data_size
            inputs[0].parameters.shared_memory_region: shared memory is not supported here; send data, or binary_data_size bytes after the JSON header
            body: 4 bytes follow the last input's binary data (inputs claim 0 of the 4 after the JSON header)
            a INT64 [2] Int([3, -4]); b INT64 [2] Int([7, 8]); c INT64 [1] Int([9])
            inputs[2].parameters.binary_data_size: is 8 but shape [1] of INT8 needs 1 bytes (1 × 1)"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn without_the_header_the_body_is_all_json() {
        assert_eq!(split(b"{}", None).unwrap(), (&b"{}"[..], &b""[..]));
        assert_eq!(split(b"{}xyz", Some(b" 2")).unwrap(), (&b"{}"[..], &b"xyz"[..]));
    }

    #[test]
    fn half_precision_round_trips() {
        for bits in [0u16, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3555, 0x3c00, 0x3c01, 0x7bff, 0xfbff, 0x7c00] {
            assert_eq!(f64_to_f16(f16_to_f64(bits)), bits, "{bits:#x} = {}", f16_to_f64(bits));
        }
        assert_eq!(f64_to_f16(1e6), 0x7c00);
    }

    fn output(name: &str, datatype: Datatype, shape: Vec<u64>, data: Data) -> ResponseOutput {
        ResponseOutput { name: name.into(), shape, datatype, parameters: None, data: Some(data) }
    }

    #[test]
    fn outputs_go_binary_as_asked() {
        let response = InferResponse {
            model_name: "m".into(),
            model_version: Some("2".into()),
            id: Some("r".into()),
            parameters: None,
            outputs: vec![
                output("p", Datatype::F32, vec![2], Data::Float(vec![0.5, -1.0])),
                output("label", Datatype::Bytes, vec![1], Data::Bytes(vec!["ok".into()])),
                output("n", Datatype::I16, vec![2], Data::Int(vec![-2, 300])),
            ],
        };
        let show = |e: Encoded| match e.header_length {
            None => String::from_utf8(e.body).unwrap(),
            Some(n) => format!("{} | {:?}", String::from_utf8(e.body[..n].to_vec()).unwrap(), &e.body[n..]),
        };
        let json = show(response.clone().encode(|_| false).unwrap());
        let all = show(response.clone().encode(|_| true).unwrap());
        let some = show(response.encode(|name| name != "p").unwrap());
        expect![[r#"
            {"model_name":"m","model_version":"2","id":"r","outputs":[{"name":"p","shape":[2],"datatype":"FP32","data":[0.5,-1.0]},{"name":"label","shape":[1],"datatype":"BYTES","data":["ok"]},{"name":"n","shape":[2],"datatype":"INT16","data":[-2,300]}]}
            {"model_name":"m","model_version":"2","id":"r","outputs":[{"name":"p","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"label","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}},{"name":"n","shape":[2],"datatype":"INT16","parameters":{"binary_data_size":4}}]} | [0, 0, 0, 63, 0, 0, 128, 191, 2, 0, 0, 0, 111, 107, 254, 255, 44, 1]
            {"model_name":"m","model_version":"2","id":"r","outputs":[{"name":"p","shape":[2],"datatype":"FP32","data":[0.5,-1.0]},{"name":"label","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}},{"name":"n","shape":[2],"datatype":"INT16","parameters":{"binary_data_size":4}}]} | [2, 0, 0, 0, 111, 107, 254, 255, 44, 1]"#]]
        .assert_eq(&[json, all, some].join("\n"));
    }

    #[test]
    fn who_asks_for_binary() {
        let request = |body: &str| serde_json::from_str::<InferRequest>(body).unwrap();
        let base = r#""inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]"#;
        let cases = [
            (format!("{{{base}}}"), false),
            (format!(r#"{{{base},"parameters":{{"binary_data_output":true}}}}"#), true),
            (format!(r#"{{{base},"outputs":[{{"name":"output","parameters":{{"binary_data":true}}}}]}}"#), true),
            (format!(r#"{{{base},"outputs":[{{"name":"output","parameters":{{"binary_data":false}}}}],"parameters":{{"binary_data_output":true}}}}"#), false),
            (format!(r#"{{{base},"outputs":[{{"name":"output"}}]}}"#), false),
        ];
        for (body, binary) in cases {
            assert_eq!(request(&body).wants_binary("output"), binary, "{body}");
        }
    }
}

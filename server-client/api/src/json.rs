//! JSON bodies decoded so that an error names the field it is about —
//! `inputs[0].shape: invalid type: string "1,4", expected a sequence at line 1 column 40` —
//! for the store's `/api` and for the infer components' OIP requests alike.

use serde::de::DeserializeOwned;

/// Why a body did not decode: the path of the first bad field (`body` when the fault is
/// the body as a whole) and what is wrong there, with its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadJson {
    pub field: String,
    pub message: String,
}

/// Decodes `bytes` as one JSON value of type `T` (nothing may follow it).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BadJson> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|e| BadJson { field: "body".into(), message: format!("trailing characters after the JSON value ({e})") })?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            // `.`: the body itself; `?`: no field yet known (the body ends inside one).
            let field = if matches!(path.as_str(), "." | "?" | "") { "body".to_owned() } else { path };
            let message = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!("malformed JSON: {inner}"),
                _ => inner.to_string(),
            };
            Err(BadJson { field, message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Request {
        id: Option<String>,
        inputs: Vec<Input>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        shape: Vec<u64>,
    }

    #[test]
    fn an_error_names_the_field_or_the_body() {
        let cases = [
            ("", "body", "malformed JSON: EOF while parsing a value at line 1 column 0"),
            (r#"{"inputs": [{"name": "x", "shape": "1,4"}]}"#, "inputs[0].shape", r#"invalid type: string "1,4", expected a sequence at line 1 column 40"#),
            (r#"{"inputs": [{"name": "x"}]}"#, "inputs[0]", "missing field `shape` at line 1 column 25"),
            (r#"{"id": 7, "inputs": []}"#, "id", "invalid type: integer `7`, expected a string at line 1 column 8"),
            (r#"{"inputs": [{"name": "x", "shape": [1]}]"#, "body", "malformed JSON: EOF while parsing an object at line 1 column 40"),
            (r#"{"inputs": []} {}"#, "body", "trailing characters after the JSON value (trailing characters at line 1 column 16)"),
        ];
        for (body, field, message) in cases {
            let bad = decode::<Request>(body.as_bytes()).expect_err(body);
            assert_eq!((bad.field.as_str(), bad.message.as_str()), (field, message), "{body}");
        }
    }
}

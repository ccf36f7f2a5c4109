//! JSON bodies whose errors name the field: `metrics[3].value: invalid type: string "x",
//! expected f64` rather than axum's plain-text rejection.

use axum::extract::{FromRequest, Request};
use kiln_api::{ApiError, limits::MAX_JSON_BODY};
use serde::de::DeserializeOwned;

use super::Failure;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| ApiError::invalid("body", format!("larger than {MAX_JSON_BODY} bytes, or cut short")))?;
        parse(&bytes).map(JsonBody).map_err(Failure::from)
    }
}

/// Parses `bytes` as `T`, naming the path of the first bad field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    kiln_api::json::decode(bytes).map_err(|bad| ApiError::invalid(bad.field, bad.message))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use kiln_api::LogBatch;

    use super::parse;

    #[test]
    fn errors_name_the_field() {
        let bodies = [
            r#"{"metrics":[{"key":"a","value":1,"timestamp":1},{"key":"b","value":"x","timestamp":1}]}"#,
            r#"{"params":[{"key":"lr"}]}"#,
            r#"{"metrics":[{"key":"a","value":1,"timestamp":1}"#,
            r#"{"tags": 5}"#,
            r#"{} {}"#,
        ];
        let report: Vec<String> = bodies
            .iter()
            .map(|body| {
                let error = parse::<LogBatch>(body.as_bytes()).expect_err(body);
                format!("{} | {}", error.field.unwrap_or_default(), error.message)
            })
            .collect();
        expect![[r#"
            metrics[1].value | metrics[1].value: invalid type: string "x", expected f64 at line 1 column 70
            params[0] | params[0]: missing field `value` at line 1 column 23
            metrics | metrics: malformed JSON: EOF while parsing a list at line 1 column 47
            tags | tags: invalid type: integer `5`, expected a sequence at line 1 column 10
            body | body: trailing characters after the JSON value (trailing characters at line 1 column 4)"#]]
        .assert_eq(&report.join("\n"));
    }
}

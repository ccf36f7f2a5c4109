//! The limits every write respects, checked on both sides of the wire.
//!
//! They are MLflow's, so a batch MLflow accepts Kiln accepts too. Every check names the field it
//! rejects (`metrics[3].value`), so a user with a 1 000-entry batch knows which entry to fix.

use crate::{ApiError, LogBatch};

pub const MAX_KEY_LEN: usize = 250;
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
pub const MAX_TAG_VALUE_LEN: usize = 8000;
pub const MAX_NAME_LEN: usize = 500;
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_ENTITIES: usize = 1000;
/// Largest JSON body the server reads for a non-artifact request.
pub const MAX_JSON_BODY: usize = 1 << 20;
pub const MAX_SEARCH_RESULTS: u32 = 50_000;
/// Series one history request may ask for (runs × keys), and points per series.
pub const MAX_HISTORY_SERIES: usize = 500;
pub const MIN_HISTORY_POINTS: u32 = 4;
pub const MAX_HISTORY_POINTS: u32 = 100_000;

/// A metric, param or tag key: 1–250 characters of letters, digits, `_ - . / space`.
pub fn key(field: &str, key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Err(ApiError::invalid(field, format!("longer than {MAX_KEY_LEN} characters")));
    }
    if let Some(bad) = key.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' '))) {
        return Err(ApiError::invalid(field, format!("'{key}' contains {bad:?}; keys may hold letters, digits, '_', '-', '.', '/' and spaces")));
    }
    if key.split('/').any(|part| part == "..") || key.starts_with('/') {
        return Err(ApiError::invalid(field, format!("'{key}' is not a relative path")));
    }
    Ok(())
}

/// An experiment, run or model name.
pub fn name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::invalid(field, format!("longer than {MAX_NAME_LEN} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, "contains a control character"));
    }
    Ok(())
}

/// A path inside a run's artifacts: relative, no `..`, no empty segments.
pub fn artifact_path(field: &str, path: &str) -> Result<(), ApiError> {
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(ApiError::invalid(field, format!("'{path}' is not a relative path without '..'")));
    }
    if path.chars().any(char::is_control) || path.len() > 1024 {
        return Err(ApiError::invalid(field, "holds a control character or is longer than 1024 bytes"));
    }
    Ok(())
}

/// A model alias: 1–255 of letters, digits, `_`, `-`; `latest` and `v<N>` are reserved
/// (clients read `models:/name@latest` and `@v3` as version selectors).
pub fn alias(field: &str, alias: &str) -> Result<(), ApiError> {
    if alias.is_empty() || alias.len() > 255 || !alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(ApiError::invalid(field, format!("'{alias}' is not an alias: 1-255 letters, digits, '_' or '-'")));
    }
    let lower = alias.to_ascii_lowercase();
    if lower == "latest" || (lower.len() > 1 && lower.starts_with('v') && lower[1..].bytes().all(|b| b.is_ascii_digit())) {
        return Err(ApiError::invalid(field, format!("'{alias}' is reserved (it reads as a version selector)")));
    }
    Ok(())
}

/// A lowercase hex sha256.
pub fn sha256(field: &str, digest: &str) -> Result<(), ApiError> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ApiError::invalid(field, format!("'{digest}' is not a lowercase hex sha256")));
    }
    Ok(())
}

/// Everything about a history request that can be checked without the store.
pub fn history(request: &crate::HistoryRequest) -> Result<(), ApiError> {
    if request.runs.is_empty() {
        return Err(ApiError::invalid("runs", "name at least one run"));
    }
    if request.keys.is_empty() {
        return Err(ApiError::invalid("keys", "name at least one metric key"));
    }
    let series = request.runs.len() * request.keys.len();
    if series > MAX_HISTORY_SERIES {
        return Err(ApiError::invalid("runs", format!("{series} series (runs × keys); at most {MAX_HISTORY_SERIES} per request")));
    }
    for (i, key) in request.keys.iter().enumerate() {
        self::key(&format!("keys[{i}]"), key)?;
    }
    if !(MIN_HISTORY_POINTS..=MAX_HISTORY_POINTS).contains(&request.max_points) {
        return Err(ApiError::invalid("max_points", format!("{} is outside {MIN_HISTORY_POINTS}..={MAX_HISTORY_POINTS}", request.max_points)));
    }
    if let (Some(from), Some(to)) = (request.from, request.to)
        && from > to
    {
        return Err(ApiError::invalid("to", format!("the range ends ({to}) before it starts ({from})")));
    }
    Ok(())
}

/// Everything about a batch that can be checked without the store: sizes, keys, values,
/// non-finite metrics, one key logged twice with two values.
pub fn batch(batch: &LogBatch) -> Result<(), ApiError> {
    let entities = batch.params.len() + batch.metrics.len() + batch.tags.len();
    if entities > MAX_BATCH_ENTITIES {
        return Err(ApiError::invalid("batch", format!("{entities} entries; at most {MAX_BATCH_ENTITIES} per batch")));
    }
    if batch.metrics.len() > MAX_BATCH_METRICS {
        return Err(ApiError::invalid("metrics", format!("{} metrics; at most {MAX_BATCH_METRICS} per batch", batch.metrics.len())));
    }
    if batch.params.len() > MAX_BATCH_PARAMS {
        return Err(ApiError::invalid("params", format!("{} params; at most {MAX_BATCH_PARAMS} per batch", batch.params.len())));
    }
    if batch.tags.len() > MAX_BATCH_TAGS {
        return Err(ApiError::invalid("tags", format!("{} tags; at most {MAX_BATCH_TAGS} per batch", batch.tags.len())));
    }
    for (i, param) in batch.params.iter().enumerate() {
        key(&format!("params[{i}].key"), &param.key)?;
        if param.value.chars().count() > MAX_PARAM_VALUE_LEN {
            return Err(ApiError::invalid(format!("params[{i}].value"), format!("longer than {MAX_PARAM_VALUE_LEN} characters")));
        }
        if let Some(earlier) = batch.params[..i].iter().find(|p| p.key == param.key && p.value != param.value) {
            return Err(ApiError::invalid(
                format!("params[{i}].value"),
                format!("param '{}' appears twice with values '{}' and '{}'", param.key, earlier.value, param.value),
            ));
        }
    }
    for (i, metric) in batch.metrics.iter().enumerate() {
        key(&format!("metrics[{i}].key"), &metric.key)?;
        if !metric.value.is_finite() {
            return Err(ApiError::invalid(format!("metrics[{i}].value"), format!("{} is not a finite number", metric.value)));
        }
        if metric.timestamp < 0 {
            return Err(ApiError::invalid(format!("metrics[{i}].timestamp"), "must not be negative"));
        }
    }
    for (i, tag) in batch.tags.iter().enumerate() {
        key(&format!("tags[{i}].key"), &tag.key)?;
        if tag.value.chars().count() > MAX_TAG_VALUE_LEN {
            return Err(ApiError::invalid(format!("tags[{i}].value"), format!("longer than {MAX_TAG_VALUE_LEN} characters")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metric, Param};

    fn rejected(batch_: LogBatch) -> String {
        let error = batch(&batch_).expect_err("the batch should be rejected");
        format!("{} | {}", error.field.unwrap_or_default(), error.message)
    }

    fn metric(key: &str, value: f64) -> Metric {
        Metric { key: key.into(), value, timestamp: 1, step: 0 }
    }

    #[test]
    fn each_bad_batch_names_its_field() {
        let cases: Vec<(LogBatch, &str)> = vec![
            (
                LogBatch { metrics: vec![metric("ok", 1.0), metric("loss", f64::NAN)], ..Default::default() },
                "metrics[1].value | metrics[1].value: NaN is not a finite number",
            ),
            (
                LogBatch { metrics: vec![metric("loss", f64::INFINITY)], ..Default::default() },
                "metrics[0].value | metrics[0].value: inf is not a finite number",
            ),
            (LogBatch { metrics: vec![metric("", 1.0)], ..Default::default() }, "metrics[0].key | metrics[0].key: must not be empty"),
            (
                LogBatch { metrics: vec![metric("a\"b", 1.0)], ..Default::default() },
                "metrics[0].key | metrics[0].key: 'a\"b' contains '\"'; keys may hold letters, digits, '_', '-', '.', '/' and spaces",
            ),
            (LogBatch { metrics: vec![metric(&"k".repeat(251), 1.0)], ..Default::default() }, "metrics[0].key | metrics[0].key: longer than 250 characters"),
            (
                LogBatch {
                    params: vec![Param { key: "lr".into(), value: "0.1".into() }, Param { key: "lr".into(), value: "0.2".into() }],
                    ..Default::default()
                },
                "params[1].value | params[1].value: param 'lr' appears twice with values '0.1' and '0.2'",
            ),
            (
                LogBatch { params: vec![Param { key: "lr".into(), value: "x".repeat(6001) }], ..Default::default() },
                "params[0].value | params[0].value: longer than 6000 characters",
            ),
            (
                LogBatch { metrics: (0..1001).map(|i| metric("m", i as f64)).collect(), ..Default::default() },
                "batch | batch: 1001 entries; at most 1000 per batch",
            ),
            (
                LogBatch { params: (0..101).map(|i| Param { key: format!("p{i}"), value: "1".into() }).collect(), ..Default::default() },
                "params | params: 101 params; at most 100 per batch",
            ),
            (LogBatch { metrics: vec![metric("../up", 1.0)], ..Default::default() }, "metrics[0].key | metrics[0].key: '../up' is not a relative path"),
        ];
        for (batch_, expected) in cases {
            assert_eq!(rejected(batch_), expected);
        }
    }

    #[test]
    fn each_bad_history_request_names_its_field() {
        let ok = crate::HistoryRequest { runs: vec!["r".into()], keys: vec!["loss".into()], max_points: 1000, axis: Default::default(), from: None, to: None };
        assert!(history(&ok).is_ok());
        let cases: Vec<(crate::HistoryRequest, &str)> = vec![
            (crate::HistoryRequest { runs: vec![], ..ok.clone() }, "runs: name at least one run"),
            (crate::HistoryRequest { keys: vec![], ..ok.clone() }, "keys: name at least one metric key"),
            (
                crate::HistoryRequest { keys: vec!["loss".into(), "a\"b".into()], ..ok.clone() },
                "keys[1]: 'a\"b' contains '\"'; keys may hold letters, digits, '_', '-', '.', '/' and spaces",
            ),
            (crate::HistoryRequest { max_points: 3, ..ok.clone() }, "max_points: 3 is outside 4..=100000"),
            (crate::HistoryRequest { max_points: 100_001, ..ok.clone() }, "max_points: 100001 is outside 4..=100000"),
            (crate::HistoryRequest { from: Some(10), to: Some(9), ..ok.clone() }, "to: the range ends (9) before it starts (10)"),
            (
                crate::HistoryRequest { runs: (0..51).map(|i| i.to_string()).collect(), keys: (0..10).map(|i| format!("k{i}")).collect(), ..ok.clone() },
                "runs: 510 series (runs × keys); at most 500 per request",
            ),
        ];
        for (request, expected) in cases {
            let error = history(&request).expect_err(expected);
            assert_eq!((error.message.as_str(), error.field.as_deref()), (expected, expected.split_once(": ").map(|(field, _)| field)));
        }
    }

    #[test]
    fn a_param_repeated_with_the_same_value_is_fine() {
        let same = Param { key: "lr".into(), value: "0.1".into() };
        assert!(batch(&LogBatch { params: vec![same.clone(), same], ..Default::default() }).is_ok());
    }

    #[test]
    fn artifact_paths_stay_inside_the_run() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a"] {
            assert!(artifact_path("path", bad).is_err(), "{bad:?} accepted");
        }
        assert!(artifact_path("path", "model/weights.safetensors").is_ok());
    }
}

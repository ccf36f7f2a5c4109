//! Every answer through the gateway has an `id`, so feedback can name it. The gateway does not
//! parse requests (the instance checks them), so the id is found or put in with as little
//! work as a byte search: a body with no `"id"` anywhere gets a fresh one spliced in before
//! its closing brace, and the instance echoes it back as OIP v2 says it must.

use bytes::Bytes;
use hyper::header::HeaderValue;
use kiln_api::oip::{OipError, binary};

/// A request's id: one the gateway made (by its sequence number), or the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId {
    Made(u64),
    Given(String),
}

/// The request's id, and the body to forward (with a `fresh` id, a sequence number and its
/// text, put in when it had none). `None` when the body is not a JSON object or its `id` is
/// not a string: the instance refuses it.
pub fn ensure(body: Bytes, fresh: impl FnOnce() -> (u64, String)) -> (Bytes, Option<RequestId>) {
    if memchr::memmem::find(&body, b"\"id\"").is_some() {
        #[derive(serde::Deserialize)]
        struct Head {
            /// `None`: no `id` at the top; `Some(None)`: `"id": null`.
            #[serde(default, deserialize_with = "present")]
            id: Option<Option<String>>,
        }
        match serde_json::from_slice::<Head>(&body) {
            Ok(Head { id: Some(Some(id)) }) => return (body, Some(RequestId::Given(id))),
            // A null id is an absent one; it is replaced rather than joined by a second key
            // (rare, so the body is parsed whole).
            Ok(Head { id: Some(None) }) => return replace_null(body, fresh),
            // `"id"` was in a nested object or a string: no id at the top.
            Ok(Head { id: None }) => {}
            Err(_) => return (body, None),
        }
    }
    let (Some(open), Some(close)) = (body.iter().position(|b| !b.is_ascii_whitespace()), body.iter().rposition(|b| !b.is_ascii_whitespace())) else {
        return (body, None);
    };
    let empty = body[open + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    if body[open] != b'{' || body[close] != b'}' || empty {
        return (body, None);
    }
    // Before the closing brace, not after the opening one: every byte the client sent before
    // it keeps its line and column, so the instance's "at line 1 column 40" points into the
    // body as the client wrote it.
    let (seq, id) = fresh();
    let mut spliced = Vec::with_capacity(body.len() + id.len() + 8);
    spliced.extend_from_slice(&body[..close]);
    spliced.extend_from_slice(b",\"id\":\"");
    spliced.extend_from_slice(id.as_bytes());
    spliced.extend_from_slice(b"\"");
    spliced.extend_from_slice(&body[close..]);
    (spliced.into(), Some(RequestId::Made(seq)))
}

/// [`ensure`] for a body that may carry binary tensors after `header_length` bytes of JSON
/// (Triton's binary tensor data extension): the id goes into the JSON, and the header length
/// grows by what was put in. A header length that is not a number, or past the body, is
/// refused here, since the gateway cannot find the JSON without it.
pub fn ensure_split(
    body: Bytes,
    header_length: Option<HeaderValue>,
    fresh: impl FnOnce() -> (u64, String),
) -> Result<(Bytes, Option<HeaderValue>, Option<RequestId>), OipError> {
    let Some(value) = header_length else {
        let (body, id) = ensure(body, fresh);
        return Ok((body, None, id));
    };
    let json_length = binary::split(&body, Some(value.as_bytes()))?.0.len();
    let (json, id) = ensure(body.slice(..json_length), fresh);
    if json.as_ptr() == body.as_ptr() && json.len() == json_length {
        return Ok((body, Some(value), id));
    }
    let mut joined = Vec::with_capacity(json.len() + body.len() - json_length);
    joined.extend_from_slice(&json);
    joined.extend_from_slice(&body[json_length..]);
    Ok((joined.into(), Some(HeaderValue::from(json.len())), id))
}

/// A field that is there, whatever its value (serde maps a null to an absent `Option`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// The body with its `"id": null` replaced by a fresh id.
fn replace_null(body: Bytes, fresh: impl FnOnce() -> (u64, String)) -> (Bytes, Option<RequestId>) {
    let Ok(mut object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body) else { return (body, None) };
    if object.len() == 1 {
        // `{"id": null}` alone is as empty as `{}`: the instance refuses it.
        return (body, None);
    }
    let (seq, id) = fresh();
    object.insert("id".to_owned(), serde_json::Value::String(id));
    match serde_json::to_vec(&object) {
        Ok(bytes) => (bytes.into(), Some(RequestId::Made(seq))),
        Err(_) => (body, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ensure_str(body: &str) -> (String, Option<RequestId>) {
        let (body, id) = ensure(Bytes::copy_from_slice(body.as_bytes()), || (7, "made-7".to_owned()));
        (String::from_utf8(body.to_vec()).unwrap(), id)
    }

    #[test]
    fn ids_are_kept_or_put_in() {
        let cases = [
            // (body, keeps the body as it is, the id it reports: "new" for a fresh one)
            (r#"{"id": "a-1", "inputs": []}"#, true, Some("a-1")),
            (r#"{"inputs": [{"name": "x", "parameters": {"id": "inner"}}]}"#, false, Some("new")),
            (r#"{"inputs": [{"name": "\"id\""}]}"#, false, Some("new")),
            (r#"  {"inputs": []}"#, false, Some("new")),
            ("{\"inputs\": []}\n", false, Some("new")),
            // Cut short: left as it is, so the instance's error points into the client's bytes.
            (r#"{"inputs": [{"name": "x"}]"#, true, None),
            (r#"{"id": null, "inputs": []}"#, false, Some("new")),
            (r#"{"inputs": [], "id" : null}"#, false, Some("new")),
            (r#"{"id": null}"#, true, None),
            (r#"{"id": 7, "inputs": []}"#, true, None),
            (r#"{"id": "a", "inputs": "#, true, None),
            ("{}", true, None),
            ("{ }", true, None),
            ("[]", true, None),
            ("", true, None),
            ("   ", true, None),
        ];
        for (body, kept, expected) in cases {
            let (forwarded, id) = ensure_str(body);
            assert_eq!(forwarded == body, kept, "{body}: forwarded {forwarded}");
            match expected {
                Some("new") => {
                    assert_eq!(id, Some(RequestId::Made(7)), "{body}");
                    if !body.contains("null") {
                        let close = body.rfind('}').unwrap();
                        assert_eq!(forwarded[..close], body[..close], "the client's bytes keep their positions");
                    }
                    let parsed: serde_json::Value = serde_json::from_str(&forwarded).unwrap_or_else(|e| panic!("{body}: {e}: {forwarded}"));
                    assert_eq!(parsed["id"], "made-7");
                    let mut without = parsed.clone();
                    without.as_object_mut().unwrap().remove("id");
                    let mut original = serde_json::from_str::<serde_json::Value>(body).unwrap();
                    original.as_object_mut().unwrap().remove("id");
                    assert_eq!(without, original, "nothing else changed");
                }
                other => assert_eq!(id, other.map(|id| RequestId::Given(id.to_owned())), "{body}"),
            }
        }
    }

    #[test]
    fn ids_go_into_the_json_header_of_a_binary_body() {
        let fresh = || (7, "g-7".to_owned());
        let show = |body: &str, length: Option<&str>| match ensure_split(Bytes::from(body.to_owned()), length.map(|l| HeaderValue::from_str(l).unwrap()), fresh)
        {
            Ok((body, length, id)) => format!("{} {:?} {id:?}", String::from_utf8_lossy(&body), length),
            Err(error) => error.error,
        };
        let cases = [
            show(r#"{"inputs":[]}"#, None),
            show(r#"{"inputs":[]}\x01\x02"#, Some("13")),
            show(r#"{"id":"mine","inputs":[]}\x01"#, Some("25")),
            show(r#"{"inputs":[]}"#, Some("13")),
            show(r#"{"inputs":[]}"#, Some("14")),
            show(r#"{"inputs":[]}"#, Some("-1")),
        ];
        expect_test::expect![[r#"
            {"inputs":[],"id":"g-7"} None Some(Made(7))
            {"inputs":[],"id":"g-7"}\x01\x02 Some("24") Some(Made(7))
            {"id":"mine","inputs":[]}\x01 Some("25") Some(Given("mine"))
            {"inputs":[],"id":"g-7"} Some("24") Some(Made(7))
            Inference-Header-Content-Length: is 14 but the body has only 13 bytes
            Inference-Header-Content-Length: `-1` is not a byte count"#]]
        .assert_eq(&cases.join("\n"));
    }
}

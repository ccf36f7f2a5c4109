//! JSON values as block-style YAML, for manifests people read and `kubectl apply`.
//!
//! Strings are always double-quoted with JSON's escapes (valid YAML), so no value can be
//! mistaken for a number, a boolean or a null; keys are bare when they are plainly safe.

use serde_json::Value;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write(value, 0, &mut out);
    out
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !k.starts_with(['-', '.'])
        && !matches!(k, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n")
        && k.parse::<f64>().is_err();
    if plain { k.to_owned() } else { Value::String(k.to_owned()).to_string() }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn write(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                match scalar(v) {
                    Some(text) => out.push_str(&format!("{pad}{}: {text}\n", key(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        // Sequences under a key sit at the key's indentation, as kubectl writes them.
                        write(v, if v.is_array() { indent } else { indent + 2 }, out);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}- {text}\n")),
                    None => {
                        // The first line of a nested block goes after the dash.
                        let mut nested = String::new();
                        write(item, indent + 2, &mut nested);
                        let body = nested.strip_prefix(&" ".repeat(indent + 2)).unwrap_or(&nested);
                        out.push_str(&format!("{pad}- {body}"));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_yaml() {
        let value = serde_json::json!({
            "apiVersion": "v1",
            "metadata": {"name": "kiln-iris", "labels": {"dev.kiln/handle": "iris"}, "annotations": {}},
            "spec": {"replicas": 2, "ports": [{"port": 80, "name": "http"}], "args": ["--x", "true", "3"], "on": null, "empty": []}
        });
        expect_test::expect![[r#"
            apiVersion: "v1"
            metadata:
              annotations: {}
              labels:
                dev.kiln/handle: "iris"
              name: "kiln-iris"
            spec:
              args:
              - "--x"
              - "true"
              - "3"
              empty: []
              "on": null
              ports:
              - name: "http"
                port: 80
              replicas: 2
        "#]]
        .assert_eq(&to_yaml(&value));
    }
}

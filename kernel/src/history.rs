//! Input history for `history_request` (tail, range and search).

use serde_json::{Value, json};

/// Jupyter numbers history sessions; this kernel keeps only its own, session 1.
const SESSION: u32 = 1;

#[derive(Default)]
pub struct History {
    entries: Vec<(u32, String)>,
}

impl History {
    pub fn record(&mut self, line: u32, input: &str) {
        self.entries.push((line, input.to_owned()));
    }

    /// The `history` list of a history_reply for the request `content`.
    pub fn query(&self, content: &Value) -> Vec<Value> {
        let output = content["output"].as_bool().unwrap_or(false);
        let n = content["n"].as_u64().map(|n| n as usize);
        let selected: Vec<&(u32, String)> = match content["hist_access_type"].as_str().unwrap_or("tail") {
            "range" => {
                let start = content["start"].as_i64().unwrap_or(0);
                let stop = content["stop"].as_i64().unwrap_or(i64::MAX);
                self.entries.iter().filter(|(l, _)| (*l as i64) >= start && (*l as i64) < stop).collect()
            }
            "search" => {
                let pattern = content["pattern"].as_str().unwrap_or("*");
                let unique = content["unique"].as_bool().unwrap_or(false);
                let mut hits: Vec<&(u32, String)> = self.entries.iter().filter(|(_, i)| glob(pattern, i)).collect();
                if unique {
                    let mut seen = std::collections::HashSet::new();
                    hits.reverse();
                    hits.retain(|(_, i)| seen.insert(i.clone()));
                    hits.reverse();
                }
                tail(hits, n)
            }
            _ => tail(self.entries.iter().collect(), n),
        };
        selected.into_iter().map(|(line, input)| if output { json!([SESSION, line, [input, null]]) } else { json!([SESSION, line, input]) }).collect()
    }
}

fn tail<T>(mut items: Vec<T>, n: Option<usize>) -> Vec<T> {
    if let Some(n) = n
        && items.len() > n
    {
        items.drain(..items.len() - n);
    }
    items
}

/// IPython's history search pattern: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::default();
        for (i, code) in ["let x = 1;", "x + 1", "println!(\"hi\")", "x + 1"].iter().enumerate() {
            h.record(i as u32 + 1, code);
        }
        h
    }

    #[test]
    fn queries() {
        let h = sample();
        let cases = [
            (json!({"hist_access_type": "tail", "n": 2}), json!([[1, 3, "println!(\"hi\")"], [1, 4, "x + 1"]])),
            (json!({"hist_access_type": "range", "start": 2, "stop": 4}), json!([[1, 2, "x + 1"], [1, 3, "println!(\"hi\")"]])),
            (json!({"hist_access_type": "search", "pattern": "x*"}), json!([[1, 2, "x + 1"], [1, 4, "x + 1"]])),
            (json!({"hist_access_type": "search", "pattern": "x*", "unique": true}), json!([[1, 4, "x + 1"]])),
            (json!({"hist_access_type": "tail", "n": 1, "output": true}), json!([[1, 4, ["x + 1", null]]])),
        ];
        for (request, want) in cases {
            assert_eq!(Value::Array(h.query(&request)), want, "{request}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("pr?nt*", "println!"));
        assert!(!glob("x", "xy"));
        assert!(glob("*1", "x + 1"));
    }
}

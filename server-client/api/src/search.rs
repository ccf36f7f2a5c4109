//! The run search language: MLflow's filter strings, parsed once into a small AST that every
//! store backend turns into its own query.
//!
//! `metrics.acc > 0.9 and params.lr = '0.01' and tags.stage != 'dev' and status = 'FINISHED'`
//! Clauses are joined by `and`; keys with spaces or dots are quoted with backticks or `"`.

use crate::{ApiError, RunView};

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub target: Target,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Metric(String),
    Param(String),
    Tag(String),
    Attribute(Attribute),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    RunId,
    RunName,
    Status,
    StartTime,
    EndTime,
}

impl Attribute {
    fn parse(name: &str) -> Option<Attribute> {
        Some(match name {
            // `source_run_id`: a logged model's run (MLflow 3's logged-model searches).
            "run_id" | "id" | "source_run_id" => Attribute::RunId,
            "run_name" | "name" => Attribute::RunName,
            "status" => Attribute::Status,
            "start_time" | "created" => Attribute::StartTime,
            "end_time" => Attribute::EndTime,
            _ => return None,
        })
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Attribute::StartTime | Attribute::EndTime)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    List(Vec<String>),
}

/// `metrics.acc DESC`: a sort key. Runs without the metric or param sort last either way.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub target: Target,
    pub descending: bool,
}

/// Parses a filter string; the empty string matches every run.
pub fn parse_filter(text: &str) -> Result<Filter, ApiError> {
    let mut lexer = Lexer { text, pos: 0 };
    let mut clauses = Vec::new();
    if lexer.at_end() {
        return Ok(Filter { clauses });
    }
    loop {
        clauses.push(lexer.clause()?);
        if lexer.at_end() {
            break;
        }
        let at = lexer.pos;
        match lexer.word() {
            Some(word) if word.eq_ignore_ascii_case("and") => {}
            _ => return Err(lexer.error_at(at, "expected 'and' between clauses (only 'and' is supported)")),
        }
    }
    Ok(Filter { clauses })
}

/// Parses one `order_by` entry: `metrics.acc DESC`, `start_time`, `params.lr ASC`.
pub fn parse_order_by(text: &str) -> Result<OrderBy, ApiError> {
    let mut lexer = Lexer { text, pos: 0 };
    let target = lexer.target()?;
    let descending = match lexer.word() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("asc") => false,
        Some(word) if word.eq_ignore_ascii_case("desc") => true,
        Some(word) => return Err(ApiError::invalid("order_by", format!("'{word}' in '{text}': expected ASC or DESC"))),
    };
    if !lexer.at_end() {
        return Err(ApiError::invalid("order_by", format!("unexpected text after '{text}'")));
    }
    Ok(OrderBy { target, descending })
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    /// The column counts characters, not bytes, so an editor can put a caret under it.
    fn error_at(&self, pos: usize, message: &str) -> ApiError {
        let column = self.text[..pos].chars().count() + 1;
        ApiError::invalid("filter", format!("at column {column}: {message} (in \"{}\")", self.text))
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.rest().chars().next() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.pos >= self.text.len()
    }

    /// A bare identifier (letters, digits, `_`).
    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let len: usize = self.rest().chars().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum();
        if len == 0 {
            return None;
        }
        let word = self.rest()[..len].to_owned();
        self.pos += len;
        Some(word)
    }

    fn quoted(&mut self, quote: char) -> Result<String, ApiError> {
        let start = self.pos;
        self.pos += quote.len_utf8();
        match self.rest().find(quote) {
            Some(end) => {
                let value = self.rest()[..end].to_owned();
                self.pos += end + quote.len_utf8();
                Ok(value)
            }
            None => Err(self.error_at(start, &format!("unterminated {quote} quote"))),
        }
    }

    /// A key after `metrics.`: quoted, or a run of key characters.
    fn key(&mut self) -> Result<String, ApiError> {
        match self.rest().chars().next() {
            Some(q @ ('`' | '"')) => self.quoted(q),
            _ => {
                let len: usize = self.rest().chars().take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')).map(char::len_utf8).sum();
                if len == 0 {
                    return Err(self.error_at(self.pos, "expected a key"));
                }
                let key = self.rest()[..len].to_owned();
                self.pos += len;
                Ok(key)
            }
        }
    }

    fn target(&mut self) -> Result<Target, ApiError> {
        self.skip_space();
        let at = self.pos;
        let Some(first) = self.word() else {
            return Err(self.error_at(at, "expected metrics.KEY, params.KEY, tags.KEY or an attribute"));
        };
        if self.rest().starts_with('.') {
            self.pos += 1;
            let entity = first.to_ascii_lowercase();
            let key_at = self.pos;
            let key = self.key()?;
            return Ok(match entity.as_str() {
                "metrics" | "metric" => Target::Metric(key),
                "params" | "param" | "parameters" | "parameter" => Target::Param(key),
                "tags" | "tag" => Target::Tag(key),
                "attributes" | "attribute" | "attr" | "run" => match Attribute::parse(&key) {
                    Some(attribute) => Target::Attribute(attribute),
                    None => return Err(self.error_at(key_at, &format!("unknown attribute '{key}'"))),
                },
                _ => return Err(self.error_at(at, &format!("unknown entity '{first}'; expected metrics, params, tags or attributes"))),
            });
        }
        match Attribute::parse(&first) {
            Some(attribute) => Ok(Target::Attribute(attribute)),
            None => Err(self.error_at(at, &format!("unknown attribute '{first}'"))),
        }
    }

    fn op(&mut self) -> Result<Op, ApiError> {
        self.skip_space();
        let at = self.pos;
        for (symbol, op) in [("!=", Op::Ne), (">=", Op::Ge), ("<=", Op::Le), ("<>", Op::Ne), ("=", Op::Eq), (">", Op::Gt), ("<", Op::Lt)] {
            if self.rest().starts_with(symbol) {
                self.pos += symbol.len();
                return Ok(op);
            }
        }
        let word = self.word().map(|w| w.to_ascii_uppercase());
        match word.as_deref() {
            Some("LIKE") => Ok(Op::Like),
            Some("ILIKE") => Ok(Op::ILike),
            Some("IN") => Ok(Op::In),
            Some("NOT") => match self.word().map(|w| w.to_ascii_uppercase()).as_deref() {
                Some("IN") => Ok(Op::NotIn),
                _ => Err(self.error_at(at, "expected IN after NOT")),
            },
            _ => Err(self.error_at(at, "expected an operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN)")),
        }
    }

    fn value(&mut self) -> Result<Value, ApiError> {
        self.skip_space();
        let at = self.pos;
        match self.rest().chars().next() {
            Some(q @ ('\'' | '"')) => Ok(Value::Text(self.quoted(q)?)),
            Some('(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.rest().chars().next() {
                        Some(q @ ('\'' | '"')) => items.push(self.quoted(q)?),
                        _ => return Err(self.error_at(self.pos, "expected a quoted string in the list")),
                    }
                    self.skip_space();
                    match self.rest().chars().next() {
                        Some(',') => self.pos += 1,
                        Some(')') => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        _ => return Err(self.error_at(self.pos, "expected ',' or ')'")),
                    }
                }
            }
            _ => {
                let len: usize = self.rest().chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')).map(char::len_utf8).sum();
                let text = &self.rest()[..len];
                match text.parse::<f64>() {
                    Ok(number) if number.is_finite() && len > 0 => {
                        self.pos += len;
                        Ok(Value::Number(number))
                    }
                    _ => Err(self.error_at(at, "expected a number, a quoted string or a (list)")),
                }
            }
        }
    }

    fn clause(&mut self) -> Result<Clause, ApiError> {
        self.skip_space();
        let at = self.pos;
        let target = self.target()?;
        let op = self.op()?;
        let value = self.value()?;
        let numeric = match &target {
            Target::Metric(_) => true,
            Target::Attribute(attribute) => attribute.is_numeric(),
            Target::Param(_) | Target::Tag(_) => false,
        };
        let fits = match (&value, op) {
            (Value::List(_), Op::In | Op::NotIn) => !numeric,
            (_, Op::In | Op::NotIn) => false,
            (Value::Number(_), Op::Like | Op::ILike) => false,
            (Value::Number(_), _) => numeric,
            (Value::Text(_), Op::Eq | Op::Ne | Op::Like | Op::ILike) => !numeric,
            (Value::Text(_), _) => false,
            (Value::List(_), _) => false,
        };
        if !fits {
            let what =
                if numeric { "a number compared with =, !=, >, >=, <, <=" } else { "a quoted string compared with =, !=, LIKE, ILIKE or a list with IN" };
            return Err(self.error_at(at, &format!("this clause needs {what}")));
        }
        Ok(Clause { target, op, value })
    }
}

impl Filter {
    /// Whether `run` passes every clause, evaluated here (the store turns the same AST into
    /// SQL). A metric is its latest value; a missing metric, param or tag fails the clause.
    /// Components use it for conditions declared in the notebook (`register when …`).
    pub fn matches(&self, run: &RunView) -> bool {
        self.clauses.iter().all(|clause| clause.matches(run))
    }
}

impl Clause {
    fn matches(&self, run: &RunView) -> bool {
        let text = |value: Option<&str>| -> Option<String> { value.map(str::to_owned) };
        let actual: Option<Found> = match &self.target {
            Target::Metric(key) => run.metrics.iter().find(|m| &m.key == key).map(|m| Found::Number(m.value)),
            Target::Param(key) => text(run.params.iter().find(|p| &p.key == key).map(|p| p.value.as_str())).map(Found::Text),
            Target::Tag(key) => text(run.tags.iter().find(|t| &t.key == key).map(|t| t.value.as_str())).map(Found::Text),
            Target::Attribute(Attribute::RunId) => Some(Found::Text(run.run.id.clone())),
            Target::Attribute(Attribute::RunName) => Some(Found::Text(run.run.name.clone())),
            Target::Attribute(Attribute::Status) => Some(Found::Text(run.run.status.as_str().to_owned())),
            Target::Attribute(Attribute::StartTime) => Some(Found::Number(run.run.start_time as f64)),
            Target::Attribute(Attribute::EndTime) => run.run.end_time.map(|t| Found::Number(t as f64)),
        };
        let Some(actual) = actual else { return false };
        match (&actual, &self.value) {
            (Found::Number(a), Value::Number(b)) => compare(self.op, a.partial_cmp(b)),
            (Found::Text(a), Value::Number(b)) => a.parse::<f64>().ok().is_some_and(|a| compare(self.op, a.partial_cmp(b))),
            (Found::Number(a), Value::Text(b)) => b.parse::<f64>().ok().is_some_and(|b| compare(self.op, a.partial_cmp(&b))),
            (Found::Text(a), Value::Text(b)) => match self.op {
                Op::Like => like(a, b, false),
                Op::ILike => like(a, b, true),
                op => compare(op, Some(a.as_str().cmp(b.as_str()))),
            },
            (Found::Text(a), Value::List(items)) => match self.op {
                Op::In => items.contains(a),
                Op::NotIn => !items.contains(a),
                _ => false,
            },
            (Found::Number(_), Value::List(_)) => false,
        }
    }
}

enum Found {
    Number(f64),
    Text(String),
}

fn compare(op: Op, ordering: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    let Some(ordering) = ordering else { return false };
    match op {
        Op::Eq => ordering == Equal,
        Op::Ne => ordering != Equal,
        Op::Gt => ordering == Greater,
        Op::Ge => ordering != Less,
        Op::Lt => ordering == Less,
        Op::Le => ordering != Greater,
        Op::Like | Op::ILike | Op::In | Op::NotIn => false,
    }
}

/// SQL LIKE: `%` matches any run of characters, `_` exactly one character (a Unicode scalar
/// value, not a byte); `fold_case` for ILIKE. The one matcher for every filter Kiln evaluates
/// itself (run conditions, the MLflow face's name searches).
///
/// A filter is user input, so the cost is bounded by the input, never by the number of `%`:
/// the text is scanned left to right and a mismatch only moves back to just after the last
/// `%` seen (earlier ones never need revisiting, since the last `%` can absorb whatever they
/// could), so at most text × pattern character comparisons.
pub fn like(text: &str, pattern: &str, fold_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> { if fold_case { s.to_lowercase().chars().collect() } else { s.chars().collect() } };
    let (text, pattern) = (fold(text), fold(pattern));
    let (mut t, mut p) = (0, 0);
    // After the last `%` seen: the pattern position just after it, and the text position
    // from which it is assumed to match.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                p += 1;
                resume = Some((p, t));
            }
            Some(&c) if c == '_' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                // The last `%` absorbs one more character; retry the rest after it.
                Some((after, from)) => {
                    resume = Some((after, from + 1));
                    p = after;
                    t = from + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn check(text: &str, expected: Expect) {
        let actual = match parse_filter(text) {
            Ok(filter) => format!("{:?}", filter.clauses),
            Err(error) => format!("error: {}", error.message),
        };
        expected.assert_eq(&actual);
    }

    #[test]
    fn filters() {
        check("", expect![[r#"[]"#]]);
        check(
            "metrics.acc > 0.9 and params.lr = '0.01'",
            expect![[r#"[Clause { target: Metric("acc"), op: Gt, value: Number(0.9) }, Clause { target: Param("lr"), op: Eq, value: Text("0.01") }]"#]],
        );
        check(
            "metrics.`val loss` <= 1e-3 AND tags.\"mlflow.user\" LIKE 'ann%' and status = \"FINISHED\"",
            expect![[
                r#"[Clause { target: Metric("val loss"), op: Le, value: Number(0.001) }, Clause { target: Tag("mlflow.user"), op: Like, value: Text("ann%") }, Clause { target: Attribute(Status), op: Eq, value: Text("FINISHED") }]"#
            ]],
        );
        check(
            "attributes.run_id IN ('a', 'b') and attr.start_time >= 1700000000000",
            expect![[
                r#"[Clause { target: Attribute(RunId), op: In, value: List(["a", "b"]) }, Clause { target: Attribute(StartTime), op: Ge, value: Number(1700000000000.0) }]"#
            ]],
        );
    }

    #[test]
    fn bad_filters_say_where() {
        check(
            "metrics.acc > 'high'",
            expect![[r#"error: filter: at column 1: this clause needs a number compared with =, !=, >, >=, <, <= (in "metrics.acc > 'high'")"#]],
        );
        check(
            "params.lr > 0.1",
            expect![[
                r#"error: filter: at column 1: this clause needs a quoted string compared with =, !=, LIKE, ILIKE or a list with IN (in "params.lr > 0.1")"#
            ]],
        );
        check(
            "metrics.acc > 0.9 or metrics.loss < 1",
            expect![[r#"error: filter: at column 19: expected 'and' between clauses (only 'and' is supported) (in "metrics.acc > 0.9 or metrics.loss < 1")"#]],
        );
        check(
            "metrics.acc ~ 1",
            expect![[r#"error: filter: at column 13: expected an operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN) (in "metrics.acc ~ 1")"#]],
        );
        check("tags.x = 'open", expect![[r#"error: filter: at column 10: unterminated ' quote (in "tags.x = 'open")"#]]);
        // Columns count characters: `é` is one column, though two bytes.
        check("tags.é = 'open", expect![[r#"error: filter: at column 10: unterminated ' quote (in "tags.é = 'open")"#]]);
        check("colour = 'red'", expect![[r#"error: filter: at column 1: unknown attribute 'colour' (in "colour = 'red'")"#]]);
        check(
            "datasets.x = 'a'",
            expect![[r#"error: filter: at column 1: unknown entity 'datasets'; expected metrics, params, tags or attributes (in "datasets.x = 'a'")"#]],
        );
    }

    #[test]
    fn order_by() {
        assert_eq!(parse_order_by("metrics.acc DESC").unwrap(), OrderBy { target: Target::Metric("acc".into()), descending: true });
        assert_eq!(parse_order_by("start_time").unwrap(), OrderBy { target: Target::Attribute(Attribute::StartTime), descending: false });
        assert!(parse_order_by("metrics.acc sideways").is_err());
    }

    #[test]
    fn filters_evaluated_on_a_run() {
        let run: crate::RunView = serde_json::from_value(serde_json::json!({
            "id": "r1", "experiment_id": "1", "name": "iris-workflow", "status": "FINISHED", "source": "workflow", "start_time": 1000,
            "params": [{"key": "epochs", "value": "300"}, {"key": "optimizer", "value": "AdamW"}],
            "metrics": [{"key": "accuracy", "value": 0.93, "timestamp": 1, "step": 300}],
            "tags": [{"key": "kiln.handle", "value": "iris"}], "artifacts": []
        }))
        .unwrap();
        let cases = [
            ("metrics.accuracy >= 0.9", true),
            ("metrics.accuracy >= 0.95", false),
            ("metrics.loss < 1", false),
            ("metrics.accuracy > 0.9 and params.epochs = '300'", true),
            ("params.optimizer LIKE 'Adam%'", true),
            ("params.optimizer ILIKE 'adam_'", true),
            ("params.optimizer ILIKE 'adam'", false),
            ("params.optimizer ILIKE 'adam%'", true),
            ("tags.`kiln.handle` IN ('iris', 'mnist')", true),
            ("status = 'FINISHED' and run_name != 'x'", true),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_filter(text).unwrap().matches(&run), expected, "{text}");
        }
    }

    #[test]
    fn like_matches_characters_not_bytes() {
        let cases = [
            // (text, pattern, fold case, matches)
            ("abc", "abc", false, true),
            ("abc", "a%", false, true),
            ("abc", "%c", false, true),
            ("abc", "%b%", false, true),
            ("abc", "a_c", false, true),
            ("abc", "a__c", false, false),
            ("abc", "%%%", false, true),
            ("", "%", false, true),
            ("", "_", false, false),
            ("", "", false, true),
            ("abc", "", false, false),
            ("ab", "abc", false, false),
            ("aab", "%ab", false, true),
            ("mississippi", "%iss%ppi", false, true),
            ("mississippi", "%iss%iss%iss%", false, false),
            ("été", "_t_", false, true),
            ("été", "___", false, true),
            ("été", "_____", false, false),
            ("日本語", "日_語", false, true),
            ("Adam", "adam", false, false),
            ("Adam", "adam", true, true),
            ("ÉTÉ", "été", true, true),
            ("a%b", "a%b", false, true),
        ];
        for (text, pattern, fold, expected) in cases {
            assert_eq!(like(text, pattern, fold), expected, "{text:?} LIKE {pattern:?} (fold {fold})");
        }
    }

    #[test]
    fn a_pathological_like_pattern_costs_what_its_input_costs() {
        // Each `%a` doubled the work of a backtracking matcher: 30 of them against 60 `a`s
        // would take longer than this test suite runs. Here: at most 60 × 61 comparisons.
        let text = "a".repeat(60);
        let pattern = format!("{}b", "%a".repeat(30));
        assert!(!like(&text, &pattern, false));
        assert!(!like(&text, &pattern, true));
        let long = "a".repeat(20_000);
        assert!(!like(&long, &format!("{}b", "%a".repeat(200)), false));
        assert!(like(&long, &"%a".repeat(200), false));
    }
}

//! Run search: the parsed filter ([`kiln_api::search`]) becomes one SQL query with bound values.

use kiln_api::search::{Attribute, Clause, Op, OrderBy, Target, Value, parse_filter, parse_order_by};
use kiln_api::{ApiError, Lifecycle, Millis, RunPage, SearchRuns, limits};

use super::runs::{RUN_COLUMNS, run_from_row};
use super::{Result, Store};

const DEFAULT_MAX_RESULTS: u32 = 1000;
/// How far before the server's clock a [`RunPage::cursor`] lies: a write stamps its run with
/// the time it started, so one still committing while a poll reads is caught by the next
/// poll; the margin also covers servers sharing one PostgreSQL whose clocks differ a little.
const CURSOR_MARGIN_MILLIS: Millis = 5_000;

/// Where the next page starts and the moment the first page was read (`OFFSET.AS_OF`; a bare
/// offset from an older server has no moment).
fn parse_page_token(token: &str) -> Option<(i64, Option<Millis>)> {
    match token.split_once('.') {
        Some((offset, as_of)) => Some((offset.parse().ok()?, Some(as_of.parse().ok()?))),
        None => Some((token.parse().ok()?, None)),
    }
}

/// A value to bind, in placeholder order.
enum Bind {
    Text(String),
    Number(f64),
    Int(i64),
}

#[derive(Default)]
struct Sql {
    binds: Vec<Bind>,
}

impl Sql {
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Like => "LIKE",
        Op::ILike => "LIKE",
        Op::In => "IN",
        Op::NotIn => "NOT IN",
    }
}

fn attribute_column(attribute: Attribute) -> &'static str {
    match attribute {
        Attribute::RunId => "r.id",
        Attribute::RunName => "r.name",
        Attribute::Status => "r.status",
        Attribute::StartTime => "r.start_time",
        Attribute::EndTime => "r.end_time",
    }
}

/// `column op value`, with ILIKE spelled portably as `LOWER(a) LIKE LOWER(b)`.
fn comparison(sql: &mut Sql, column: &str, op: Op, value: &Value) -> String {
    match value {
        Value::List(items) => {
            let list: Vec<String> = items.iter().map(|item| sql.bind(Bind::Text(item.clone()))).collect();
            format!("{column} {} ({})", sql_op(op), list.join(", "))
        }
        Value::Number(number) => {
            let placeholder = if column.ends_with("_time") { sql.bind(Bind::Int(*number as i64)) } else { sql.bind(Bind::Number(*number)) };
            format!("{column} {} {placeholder}", sql_op(op))
        }
        Value::Text(text) => {
            let placeholder = sql.bind(Bind::Text(text.clone()));
            if op == Op::ILike { format!("LOWER({column}) LIKE LOWER({placeholder})") } else { format!("{column} {} {placeholder}", sql_op(op)) }
        }
    }
}

fn clause_sql(sql: &mut Sql, clause: &Clause) -> String {
    let keyed = |sql: &mut Sql, table: &str, key: &str| {
        let key = sql.bind(Bind::Text(key.to_owned()));
        let test = comparison(sql, "x.value", clause.op, &clause.value);
        format!("EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id AND x.key = {key} AND {test})")
    };
    match &clause.target {
        Target::Metric(key) => keyed(sql, "latest_metrics", key),
        Target::Param(key) => keyed(sql, "params", key),
        Target::Tag(key) => keyed(sql, "tags", key),
        Target::Attribute(attribute) => comparison(sql, attribute_column(*attribute), clause.op, &clause.value),
    }
}

fn order_sql(sql: &mut Sql, order: &OrderBy) -> String {
    let direction = if order.descending { "DESC" } else { "ASC" };
    let keyed = |sql: &mut Sql, table: &str, key: &str| {
        let key = sql.bind(Bind::Text(key.to_owned()));
        format!("(SELECT x.value FROM {table} x WHERE x.run_id = r.id AND x.key = {key}) {direction} NULLS LAST")
    };
    match &order.target {
        Target::Metric(key) => keyed(sql, "latest_metrics", key),
        Target::Param(key) => keyed(sql, "params", key),
        Target::Tag(key) => keyed(sql, "tags", key),
        Target::Attribute(attribute) => format!("{} {direction} NULLS LAST", attribute_column(*attribute)),
    }
}

impl Store {
    /// Runs matching `request.filter`, sorted by `order_by` then newest first, one page at a time.
    /// The page token holds the offset of the next page and the moment the first was read:
    /// runs created after it are left out of later pages, so a run starting while someone
    /// pages can neither push another run onto the next page twice nor hide one.
    pub async fn search_runs(&self, request: &SearchRuns) -> Result<RunPage> {
        let now = super::now_millis();
        let filter = parse_filter(&request.filter)?;
        let orders = request.order_by.iter().map(|o| parse_order_by(o)).collect::<Result<Vec<_>, ApiError>>()?;
        let limit = request.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
        if limit == 0 || limit > limits::MAX_SEARCH_RESULTS {
            return Err(ApiError::invalid("max_results", format!("{limit} is outside 1..={}", limits::MAX_SEARCH_RESULTS)).into());
        }
        let (offset, as_of) = match &request.page_token {
            None => (0, now),
            Some(token) => match parse_page_token(token) {
                Some((offset, as_of)) if offset >= 0 => (offset, as_of.unwrap_or(Millis::MAX)),
                _ => return Err(ApiError::invalid("page_token", format!("'{token}' is not a page token from this server")).into()),
            },
        };
        let mut sql = Sql::default();
        let mut conditions = Vec::new();
        if !request.experiments.is_empty() {
            let names: Vec<String> = request.experiments.iter().map(|name| sql.bind(Bind::Text(name.clone()))).collect();
            conditions.push(format!("e.name IN ({})", names.join(", ")));
        }
        for clause in &filter.clauses {
            conditions.push(clause_sql(&mut sql, clause));
        }
        if request.page_token.is_some() {
            let as_of = sql.bind(Bind::Int(as_of));
            conditions.push(format!("COALESCE(c.created_at, 0) <= {as_of}"));
        }
        if let Some(since) = request.changed_since {
            let since = sql.bind(Bind::Int(since));
            conditions.push(format!("c.changed_at >= {since}"));
        }
        match request.lifecycle {
            Lifecycle::ActiveOnly => conditions.push("r.id NOT IN (SELECT run_id FROM deleted_runs)".into()),
            Lifecycle::DeletedOnly => conditions.push("r.id IN (SELECT run_id FROM deleted_runs)".into()),
            Lifecycle::All => {}
        }
        let mut order: Vec<String> = orders.iter().map(|o| order_sql(&mut sql, o)).collect();
        order.push("r.start_time DESC".into());
        order.push("r.id ASC".into());
        let where_ = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        // One row more than the page tells whether a next page exists.
        let limit_at = sql.bind(Bind::Int(i64::from(limit) + 1));
        let offset_at = sql.bind(Bind::Int(offset));
        let text = format!(
            "SELECT {RUN_COLUMNS} \
             FROM runs r JOIN experiments e ON e.id = r.experiment_id LEFT JOIN run_clock c ON c.run_id = r.id \
             {where_} ORDER BY {} LIMIT {limit_at} OFFSET {offset_at}",
            order.join(", ")
        );
        let mut query = sqlx::query(super::audited(text));
        for bind in sql.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Number(number) => query.bind(number),
                Bind::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        let next_page_token = if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            Some(format!("{}.{as_of}", offset + i64::from(limit)))
        } else {
            None
        };
        Ok(RunPage { runs: self.views(runs).await?, next_page_token, cursor: now - CURSOR_MARGIN_MILLIS })
    }
}

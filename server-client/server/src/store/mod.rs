//! The metadata store: one SQL schema, run on SQLite (embedded default) or PostgreSQL.
//!
//! Both backends go through sqlx's `Any` driver with `$N` placeholders, which both accept, so
//! every query is written once and the contract tests exercise the same code on both. Even the
//! DDL is one file (`schema.sql`); only the auto-increment key is spelled per backend. Every write is one transaction: a request is
//! applied whole or not at all.

mod artifact_paths;
mod deployments;
mod history;
mod lineage;
mod logged_models;
mod mlflow_datasets;
mod models;
mod runs;
mod schedules;
mod search;
mod tokens;

use std::time::{SystemTime, UNIX_EPOCH};

use kiln_api::{ApiError, Millis};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use deployments::{Change, FINE_MS, LATENCY_SLOTS, MINUTE_MS, TrafficDelta, conflict};
pub use logged_models::{Direction, NewLoggedModel};
pub use mlflow_datasets::{MlflowDatasetInput, RunDatasetInput};
pub use schedules::next_after;
pub use tokens::TokenInfo;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request was wrong; the message is for the user.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: writers queue here instead of failing with `SQLITE_BUSY`.
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens (and creates, and migrates) the store at `url`: `sqlite://PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 8 } else { 16 });
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") };
                options
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL: readers never wait for the writer. NORMAL: a commit survives the
                            // process being killed (only a power loss can drop the last commits).
                            // case_sensitive_like: LIKE means the same as on PostgreSQL.
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; \
                                 PRAGMA foreign_keys=ON; PRAGMA case_sensitive_like=ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => options.connect(url).await?,
        };
        let serial_key = match backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let schema = include_str!("schema.sql").replace("SERIAL_KEY", serial_key);
        pool.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(schema))).await?;
        history::backfill_blocks(&pool, backend).await?;
        Ok(Store { pool, backend, write_lock: Default::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction; on SQLite, after waiting for the previous writer.
    async fn write(&self) -> Result<Writer<'_>> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.lock().await),
            Backend::Postgres => None,
        };
        let tx = self.pool.begin().await?;
        Ok(Writer { tx, _guard: guard })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

struct Writer<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl Writer<'_> {
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

pub fn now_millis() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// Whether `query` (which selects by one bound key) finds a row.
async fn exists<'e>(executor: impl sqlx::Executor<'e, Database = sqlx::Any>, query: &'static str, key: &str) -> Result<bool> {
    Ok(sqlx::query(query).bind(key.to_owned()).fetch_optional(executor).await?.is_some())
}

/// The placeholder list for `IN (…)` and multi-row `VALUES`: `$start, …` on PostgreSQL,
/// `?, ?, …` on SQLite, so a statement that uses it must use no other placeholder (sqlx
/// binds SQLite's anonymous parameters in order, counting none of the named ones): bind
/// every value in order, a repeated one again each time. Why not `$N` on SQLite too: sqlx
/// looks up every parameter's name, and SQLite finds a name by scanning all of them, so a
/// list of n named parameters costs n² (15 % of a 1 000-run search answer went there).
fn placeholders(backend: Backend, start: usize, count: usize) -> String {
    match backend {
        Backend::Sqlite => vec!["?"; count].join(", "),
        Backend::Postgres => (start..start + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", "),
    }
}

/// Marks SQL built at run time as safe. Every such string in this module is assembled from
/// fixed fragments and `$N` placeholders only; user values are always bound, never spliced.
fn audited(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

#[cfg(test)]
mod placeholder_tests {
    use super::*;

    #[test]
    fn lists_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let cases = [
            (Backend::Postgres, 1, 3, "$1, $2, $3"),
            (Backend::Postgres, 6, 2, "$6, $7"),
            (Backend::Sqlite, 1, 3, "?, ?, ?"),
            (Backend::Sqlite, 6, 2, "?, ?"),
            (Backend::Sqlite, 1, 0, ""),
        ];
        for (backend, start, count, expected) in cases {
            assert_eq!(placeholders(backend, start, count), expected, "{backend:?} {start} {count}");
        }
    }
}

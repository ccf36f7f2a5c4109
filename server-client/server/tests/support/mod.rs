//! A store server on port 0 for each test, on SQLite or on the PostgreSQL named by
//! `KILN_TEST_POSTGRES` (a URL to an admin database; each test gets a fresh database in it).

use std::time::Duration;

use kiln_server::{Server, ServerConfig};

/// The two configurations a team runs: embedded (SQLite + local files) and scaled out
/// (PostgreSQL + an S3-compatible object store).
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    PostgresS3,
}

pub struct TestServer {
    pub url: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
}

impl TestServer {
    pub fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {})
    }

    pub fn start_with(backend: Backend, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let mut config = ServerConfig::embedded(dir.path(), "127.0.0.1:0".parse().expect("addr"));
        if let Backend::PostgresS3 = backend {
            config.db = Some(runtime.block_on(fresh_postgres_database()));
            config.artifacts = Some(fresh_s3_bucket());
        }
        configure(&mut config);
        let server = runtime.block_on(Server::start(config)).expect("server starts");
        let token = std::fs::read_to_string(dir.path().join("admin.token")).expect("admin token written").trim().to_owned();
        TestServer { url: server.url(), token, dir, runtime, server: Some(server) }
    }

    pub fn client(&self) -> kiln::Client {
        kiln::Client::new(&self.url, Some(self.token.clone()))
    }

    pub fn anonymous(&self) -> kiln::Client {
        kiln::Client::new(&self.url, None)
    }

    /// A raw request: (status, body as JSON).
    pub fn raw(&self, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, serde_json::Value) {
        self.raw_with(method, path, body, token, &[])
    }

    /// [`TestServer::raw`] with more request headers.
    pub fn raw_with(&self, method: &str, path: &str, body: Option<&str>, token: Option<&str>, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::config::Config::builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().new_agent();
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut request = agent.get(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            (_, body) => {
                let mut request = match method {
                    "PATCH" => agent.patch(&url),
                    "PUT" => agent.put(&url),
                    _ => agent.post(&url),
                };
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.header("Content-Type", "application/json").send(body.unwrap_or("").as_bytes())
            }
        };
        let mut response = result.expect("request sent");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body read");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// Whether the PostgreSQL + S3 half is skipped: only when asked for by
/// `KILN_SKIP_POSTGRES=1`. Without a PostgreSQL it fails, rather than passing without having run.
pub fn skip_postgres() -> bool {
    if std::env::var_os("KILN_TEST_POSTGRES").is_some() {
        return false;
    }
    if std::env::var_os("KILN_SKIP_POSTGRES").is_some_and(|v| v == "1") {
        eprintln!("skipped (KILN_SKIP_POSTGRES=1): the PostgreSQL + S3 half of the contract suite");
        return true;
    }
    panic!(
        "KILN_TEST_POSTGRES and KILN_TEST_S3 are not set: run `cargo xtask test`, which starts both, \
         or set KILN_SKIP_POSTGRES=1 to skip this half of the contract suite"
    );
}

async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("KILN_TEST_POSTGRES").expect("KILN_TEST_POSTGRES names the test PostgreSQL (cargo xtask test starts one)");
    sqlx::any::install_default_drivers();
    let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin).await.expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Creates a bucket on the S3-compatible server at `KILN_TEST_S3`; returns `s3://BUCKET/kiln`.
/// (The server reaches it through `AWS_ENDPOINT` and friends, which `cargo xtask test` sets.)
fn fresh_s3_bucket() -> String {
    let endpoint = std::env::var("KILN_TEST_S3").expect("KILN_TEST_S3 names the test S3 endpoint (cargo xtask test starts one)");
    let bucket = format!("kiln-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let agent: ureq::Agent = ureq::config::Config::builder().http_status_as_error(false).build().new_agent();
    let response = agent.put(&format!("{endpoint}/{bucket}")).send(&[][..]).expect("create bucket");
    assert!(response.status().is_success(), "creating bucket {bucket}: HTTP {}", response.status());
    format!("s3://{bucket}/kiln")
}

/// `contract_tests!(name, name, …)` makes `sqlite::name` and `postgres_s3::name` for each.
#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::support::Backend::Sqlite) })*
        }
        mod postgres_s3 {
            $(#[test] fn $name() {
                if super::support::skip_postgres() {
                    return;
                }
                super::$name(super::support::Backend::PostgresS3)
            })*
        }
    };
}

//! The Kiln server: the metadata & artifact store behind `/api/v1`.
//!
//! [`http::app`] is the router; [`Server::start`] opens the store, makes sure an admin token
//! exists and serves the router on a listener. `kiln server` (the CLI) and the tests both go
//! through [`Server::start`], the tests on port 0.

pub mod artifacts;
pub mod http;
pub mod scheduler;
pub mod serving;
pub mod store;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use artifacts::{ArtifactError, ArtifactStore};
use store::{Store, StoreError};

/// How to run a server. [`ServerConfig::embedded`] is the no-set-up default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`; default: `DATA_DIR/kiln.db`.
    pub db: Option<String>,
    /// Where artifact bytes go: a directory, `file://DIR` or `s3://BUCKET/PREFIX`;
    /// default: `DATA_DIR/artifacts`.
    pub artifacts: Option<String>,
    pub open_reads: bool,
    pub max_artifact_bytes: u64,
    /// How to run the `kiln` binary, for scheduled workflows and inference instances;
    /// `None` (a server embedded in a test): schedules are kept, not fired, and nothing can
    /// be deployed.
    pub kiln: Option<scheduler::KilnCommand>,
    pub gateway: serving::Limits,
    /// How long a stop waits for requests in flight before it closes their connections.
    pub shutdown_grace: std::time::Duration,
}

impl ServerConfig {
    pub fn embedded(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
            db: None,
            artifacts: None,
            open_reads: false,
            max_artifact_bytes: 16 << 30,
            kiln: None,
            gateway: serving::Limits::default(),
            shutdown_grace: std::time::Duration::from_secs(30),
        }
    }

    pub fn db_url(&self) -> String {
        self.db.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("kiln.db").display()))
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// A server that is listening.
pub struct Server {
    pub addr: SocketAddr,
    /// Where the admin token was written when this start created it.
    pub new_admin_token: Option<PathBuf>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Store,
}

impl Server {
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::Io { what: "creating the data dir", path: config.data_dir.clone(), source })?;
        let store = Store::open(&config.db_url()).await?;
        let artifacts = match &config.artifacts {
            Some(url) => ArtifactStore::open_url(url, config.data_dir.join("staging"))?,
            None => ArtifactStore::local(config.data_dir.join("artifacts"))?,
        };
        let new_admin_token = ensure_admin_token(&store, &config).await?;
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|source| ServerError::Io {
            what: "listening on",
            path: config.listen.to_string().into(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Io { what: "listening on", path: config.listen.to_string().into(), source })?;
        let (shutdown, mut stop) = tokio::sync::watch::channel(false);
        // The server's own children (scheduled workflows, inference instances) get a token of
        // their own.
        let token = match &config.kiln {
            // Named after this server: servers sharing a store must not revoke each other's.
            Some(_) => store.rotate_token(&scheduler::token_name(addr), false).await?,
            None => String::new(),
        };
        if let Some(command) = &config.kiln {
            scheduler::spawn(store.clone(), command.clone(), format!("http://{addr}"), token.clone(), stop.clone());
        }
        let launcher = serving::instances::Launcher {
            command: config.kiln.clone(),
            server_url: format!("http://{addr}"),
            token,
            log_dir: config.data_dir.join("instances"),
        };
        let gateway = Arc::new(serving::Gateway::new(store.clone(), launcher, config.gateway));
        let watcher = gateway.watch(stop.clone());
        {
            let gateway = gateway.clone();
            tokio::spawn(async move { gateway.sync().await });
        }
        let state = Arc::new(http::AppState {
            store: store.clone(),
            artifacts,
            open_reads: config.open_reads,
            max_artifact_bytes: config.max_artifact_bytes,
            gateway: gateway.clone(),
        });
        let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(http::front(state));
        // No Nagle: a reply written in two pieces must not wait for the client's delayed ACK
        // (40 ms per small request otherwise).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "TCP_NODELAY");
            }
        });
        let grace = config.shutdown_grace;
        let task = tokio::spawn(async move {
            let mut stopping = stop.clone();
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            });
            // A stop closes the listener at once and waits for the requests in flight, but
            // not forever: a client that never finishes its request must not keep the
            // server (and its instances) up.
            let served = tokio::select! {
                served = serve.into_future() => served,
                () = async {
                    let _ = stopping.wait_for(|stop| *stop).await;
                    tokio::time::sleep(grace).await;
                } => {
                    tracing::warn!(?grace, "requests still in flight after the shutdown grace; closing them");
                    Ok(())
                }
            };
            // Requests in flight are done; now the instances drain and stop.
            gateway.shutdown().await;
            let _ = watcher.await;
            served
        });
        tracing::info!(%addr, "kiln server listening");
        Ok(Server { addr, new_admin_token, shutdown, task, store })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes the requests in flight, closes the store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.store.close().await;
    }

    /// Serves until `signal` fires (then stops gracefully) or the listener fails.
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        tokio::select! {
            ended = &mut self.task => {
                self.store.close().await;
                return match ended {
                    Ok(result) => result,
                    Err(join) => Err(std::io::Error::other(join)),
                };
            }
            () = signal => {}
        }
        self.stop().await;
        Ok(())
    }
}

/// On first start (no admin token in the store), makes one and writes it, mode 600, to
/// `DATA_DIR/admin.token`.
async fn ensure_admin_token(store: &Store, config: &ServerConfig) -> Result<Option<PathBuf>, ServerError> {
    let path = config.admin_token_path();
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let name = format!("admin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let secret = store.create_token(&name, true).await?;
    write_secret(&path, &secret).map_err(|source| ServerError::Io { what: "writing the admin token to", path: path.clone(), source })?;
    Ok(Some(path))
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

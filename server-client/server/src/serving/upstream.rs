//! The gateway's connections to one instance: HTTP/1.1 keep-alive connections over a Unix
//! socket (or TCP), each carrying one request at a time, kept in a pool for the next request.
//!
//! Why not a general HTTP client: the gateway's hop to an instance is the hottest path in
//! `kiln server`, and it always goes to one known local address. A general client parses a
//! URL, looks up a pool by host and builds its layers on every request, and speaks only TCP;
//! here the address, path and headers are made once per instance, and a request is a
//! `send_request` on a connection taken from a short list.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use kiln_api::oip::binary;

/// Idle connections kept per instance (the gateway's default in-flight limit per handle).
const IDLE_MAX: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting to {address}: {source}")]
    Connect { address: Address, source: std::io::Error },
    #[error("`{path}` is not a request path: {source}")]
    Path { path: String, source: hyper::http::uri::InvalidUri },
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Where an instance listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "http://{addr}"),
            Address::Unix(path) => write!(f, "{}{}", kiln_api::oip::UNIX_SOCKET_PREFIX, path.display()),
        }
    }
}

type Sender = SendRequest<Full<Bytes>>;

/// An instance's answer: status, body, and its `Inference-Header-Content-Length` when the
/// body carries binary tensors after its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub header_length: Option<HeaderValue>,
}

/// Pooled connections to one instance.
pub struct Upstream {
    address: Address,
    host: HeaderValue,
    infer: Uri,
    idle: Mutex<Vec<Sender>>,
}

impl Upstream {
    /// For the instance at `address` serving `handle` (whose `/v2/models/{handle}/infer` takes
    /// the gateway's inference requests).
    pub fn new(address: Address, handle: &str) -> Result<Upstream, UpstreamError> {
        let host = match &address {
            Address::Tcp(addr) => HeaderValue::from_str(&addr.to_string()).unwrap_or(HeaderValue::from_static("localhost")),
            Address::Unix(_) => HeaderValue::from_static("localhost"),
        };
        Ok(Upstream { address, host, infer: uri(&format!("/v2/models/{handle}/infer"))?, idle: Mutex::new(Vec::new()) })
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Posts an inference request's `body` (JSON, or JSON of `header_length` bytes then
    /// binary tensors) and reads the whole answer, within `timeout`.
    pub async fn infer(&self, body: Bytes, header_length: Option<HeaderValue>, timeout: Duration) -> Result<Reply, UpstreamError> {
        self.send(Method::POST, &self.infer, Some((body, header_length)), timeout).await
    }

    /// `GET path` (health, metadata), within `timeout`.
    pub async fn get(&self, path: &str, timeout: Duration) -> Result<(StatusCode, Bytes), UpstreamError> {
        self.send(Method::GET, &uri(path)?, None, timeout).await.map(|reply| (reply.status, reply.body))
    }

    /// How many idle connections the pool holds.
    pub fn idle(&self) -> usize {
        self.idle.lock().expect("upstream pool lock").len()
    }

    /// A pooled connection may have been closed by the instance since it was last used (an
    /// idle timeout, a restart): a request that fails on one is sent once more, on a new
    /// connection. Inference is a pure function of the body, so sending it twice is safe.
    async fn send(&self, method: Method, path: &Uri, body: Option<(Bytes, Option<HeaderValue>)>, timeout: Duration) -> Result<Reply, UpstreamError> {
        let exchange = async {
            if let Some(sender) = self.pooled()
                && let Ok(answer) = self.exchange(sender, method.clone(), path, body.clone()).await
            {
                return Ok(answer);
            }
            let sender = self.connect().await?;
            self.exchange(sender, method, path, body).await
        };
        tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(UpstreamError::Timeout(timeout)))
    }

    fn pooled(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().expect("upstream pool lock");
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_back(&self, sender: Sender) {
        if !sender.is_ready() {
            return;
        }
        let mut idle = self.idle.lock().expect("upstream pool lock");
        if idle.len() < IDLE_MAX {
            idle.push(sender);
        }
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        let connect_error = |source| UpstreamError::Connect { address: self.address.clone(), source };
        match &self.address {
            Address::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(connect_error)?;
                stream.set_nodelay(true).map_err(connect_error)?;
                handshake(stream).await
            }
            Address::Unix(path) => handshake(tokio::net::UnixStream::connect(path).await.map_err(connect_error)?).await,
        }
    }

    async fn exchange(&self, mut sender: Sender, method: Method, path: &Uri, body: Option<(Bytes, Option<HeaderValue>)>) -> Result<Reply, UpstreamError> {
        let (body, head) = match body {
            Some((body, header_length)) => (body, Some(header_length)),
            None => (Bytes::new(), None),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        match head {
            Some(Some(length)) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(binary::CONTENT_TYPE));
                headers.insert(binary::HEADER_LENGTH, length);
            }
            Some(None) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            None => {}
        }
        let response = sender.send_request(request).await?;
        let status = response.status();
        let header_length = response.headers().get(binary::HEADER_LENGTH).cloned();
        let body = response.into_body().collect().await?.to_bytes();
        self.put_back(sender);
        Ok(Reply { status, body, header_length })
    }
}

fn uri(path: &str) -> Result<Uri, UpstreamError> {
    Uri::try_from(path).map_err(|source| UpstreamError::Path { path: path.to_owned(), source })
}

/// An HTTP/1.1 connection on `io`, driven by its own task until its last sender is dropped
/// (pool trimmed, instance gone) or the instance closes it.
async fn handshake<T>(io: T) -> Result<Sender, UpstreamError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "an instance connection closed");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An instance stand-in on port 0 that answers every request with its body and counts
    /// connections, closing each after `per_connection` requests when that is set.
    async fn echo(per_connection: Option<usize>) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let served = Arc::new(AtomicUsize::new(0));
                let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let served = served.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request.into_body().collect().await?.to_bytes();
                        let mut response = hyper::Response::new(Full::new(Bytes::from(format!("{path} {}", String::from_utf8_lossy(&body)))));
                        if per_connection.is_some_and(|n| served >= n) {
                            response.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                        }
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (addr, connections)
    }

    #[tokio::test]
    async fn connections_are_reused() {
        let (addr, connections) = echo(None).await;
        let upstream = Upstream::new(Address::Tcp(addr), "m").unwrap();
        for i in 0..5 {
            let Reply { status, body, .. } = upstream.infer(Bytes::from(format!("{{\"n\":{i}}}")), None, Duration::from_secs(5)).await.unwrap();
            assert_eq!((status, &body[..]), (StatusCode::OK, format!("/v2/models/m/infer {{\"n\":{i}}}").as_bytes()));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        assert_eq!(upstream.idle(), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_and_pool_them() {
        let (addr, connections) = echo(None).await;
        let upstream = Arc::new(Upstream::new(Address::Tcp(addr), "p").unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let upstream = upstream.clone();
                tokio::spawn(async move { upstream.infer(Bytes::from(i.to_string()), None, Duration::from_secs(5)).await })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap().body, Bytes::from(format!("/v2/models/p/infer {i}")));
        }
        let opened = connections.load(Ordering::SeqCst);
        assert!((1..=8).contains(&opened), "{opened}");
        assert_eq!(upstream.idle(), opened);
    }

    #[tokio::test]
    async fn a_connection_the_instance_closed_is_replaced() {
        let (addr, connections) = echo(Some(2)).await;
        let upstream = Upstream::new(Address::Tcp(addr), "p").unwrap();
        for i in 0..6 {
            let Reply { status, body, .. } = upstream.infer(Bytes::from(i.to_string()), None, Duration::from_secs(5)).await.unwrap();
            assert_eq!((status, body), (StatusCode::OK, Bytes::from(format!("/v2/models/p/infer {i}"))));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_cut_off_on_a_pooled_connection_is_sent_again_on_a_new_one() {
        // The instance takes the second request on a kept-alive connection and closes it
        // without an answer (it restarted on the same port, or an idle timeout raced the
        // request): the request is sent again on a new connection and gets its answer.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            let (mut first, _) = listener.accept().await.unwrap();
            let _ = first.read(&mut buffer).await.unwrap();
            first.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst").await.unwrap();
            let _ = first.read(&mut buffer).await.unwrap();
            drop(first);
            let (mut second, _) = listener.accept().await.unwrap();
            let _ = second.read(&mut buffer).await.unwrap();
            second.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond").await.unwrap();
            let _ = second.read(&mut buffer).await;
        });
        let upstream = Upstream::new(Address::Tcp(addr), "p").unwrap();
        assert_eq!(upstream.infer(Bytes::from("a"), None, Duration::from_secs(5)).await.unwrap().body, Bytes::from("first"));
        assert_eq!(upstream.idle(), 1);
        assert_eq!(upstream.infer(Bytes::from("b"), None, Duration::from_secs(5)).await.unwrap().body, Bytes::from("second"));
    }

    #[tokio::test]
    async fn unix_sockets_carry_inference_and_gets() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("i.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let length = request.headers().get(binary::HEADER_LENGTH).cloned();
                    let head = format!("{} {} {:?} {length:?}", request.method(), request.uri(), request.headers().get(CONTENT_TYPE));
                    let body = request.into_body().collect().await?.to_bytes();
                    let mut response = hyper::Response::new(Full::new(Bytes::from(format!("{head} {}", String::from_utf8_lossy(&body)))));
                    if let Some(length) = length {
                        // Echoes the header back, as an instance answering in binary does.
                        response.headers_mut().insert(binary::HEADER_LENGTH, length);
                    }
                    Ok::<_, hyper::Error>(response)
                });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        let upstream = Upstream::new(Address::Unix(path.clone()), "iris").unwrap();
        assert_eq!(upstream.address().to_string(), format!("unix:{}", path.display()));
        let reply = upstream.infer(Bytes::from("{}"), None, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            (reply.status, reply.body, reply.header_length),
            (StatusCode::OK, Bytes::from(r#"POST /v2/models/iris/infer Some("application/json") None {}"#), None)
        );
        let reply = upstream.infer(Bytes::from("{}xy"), Some(HeaderValue::from_static("2")), Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            (reply.body, reply.header_length),
            (Bytes::from(r#"POST /v2/models/iris/infer Some("application/octet-stream") Some("2") {}xy"#), Some(HeaderValue::from_static("2")))
        );
        let (_, answer) = upstream.get("/v2/health/ready", Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer, Bytes::from("GET /v2/health/ready None None "));
        assert_eq!(connections.load(Ordering::SeqCst), 1, "one connection for all three");
        assert!(matches!(upstream.get("no path", Duration::from_secs(5)).await, Err(UpstreamError::Path { .. })));
    }

    #[tokio::test]
    async fn errors_say_what_failed() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let upstream = Upstream::new(Address::Tcp(port), "p").unwrap();
        let error = upstream.infer(Bytes::new(), None, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Connect { .. }), "{error}");
        assert!(error.to_string().starts_with(&format!("connecting to http://{port}: ")), "{error}");

        // Accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream::new(Address::Tcp(listener.local_addr().unwrap()), "p").unwrap();
        let error = upstream.infer(Bytes::new(), None, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(error.to_string(), "no answer within 200ms");
        drop(listener);
    }
}

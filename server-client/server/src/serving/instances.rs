//! Inference instances: one process per deployed model version, started from the `kiln`
//! binary (`kiln instance HANDLE --model-version N --listen ADDR`, which runs the registered
//! infer image under podman or its binary as a process), health-checked before it gets
//! traffic, drained before it is stopped, and replaced when it dies. An instance listens on a
//! Unix socket beside its log (TCP on 127.0.0.1 where that path would be too long for one).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::Mutex;

use super::upstream::{Address, Upstream, UpstreamError};
use crate::scheduler::KilnCommand;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("this server cannot start inference instances (it was not started as `kiln server`)")]
    NoCommand,
    #[error("starting the instance of {handle}@{version}: {source}")]
    Spawn { handle: String, version: i64, source: std::io::Error },
    #[error("the instance of {handle}@{version} exited before it was ready ({status}): {log}")]
    Exited { handle: String, version: i64, status: String, log: String },
    #[error("the instance of {handle}@{version} cannot be addressed: {source}")]
    Address { handle: String, version: i64, source: UpstreamError },
    #[error("the instance of {handle}@{version} was not ready within {seconds} s")]
    Timeout { handle: String, version: i64, seconds: u64 },
}

/// How long an instance may take to load its model and answer ready.
pub const READY_WITHIN: Duration = Duration::from_secs(120);

/// One running instance of one model version.
pub struct Instance {
    pub handle: String,
    pub version: i64,
    /// `unix:PATH` or `http://127.0.0.1:PORT`, for logs.
    pub url: String,
    /// When it was started (ms since the epoch).
    pub started_at: kiln_api::Millis,
    /// Pooled connections to it.
    pub upstream: Upstream,
    ready: AtomicBool,
    stopping: AtomicBool,
    in_flight: AtomicUsize,
    child: Mutex<Option<Child>>,
    log: std::path::PathBuf,
}

/// Marks a request in flight on an instance until dropped.
pub struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Instance {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }

    /// Marked unready by a failed request while not being stopped.
    pub fn failing(&self) -> bool {
        !self.ready.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }

    /// `ready`, `failing` (being replaced) or `draining`, for the status a client sees.
    pub fn state(&self) -> &'static str {
        if self.stopping.load(Ordering::SeqCst) {
            "draining"
        } else if self.ready.load(Ordering::SeqCst) {
            "ready"
        } else {
            "failing"
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn mark_unready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Stops taking requests, waits (up to `drain`) for those in flight, then stops the
    /// process (SIGTERM: it finishes what it has and exits).
    pub async fn stop(&self, drain: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + drain;
        while self.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(mut child) = self.child.lock().await.take() {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on a child this process started and has not reaped.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
            if let Address::Unix(path) = self.upstream.address() {
                let _ = std::fs::remove_file(path);
                if let Some(folder) = path.parent() {
                    let _ = std::fs::remove_dir(folder);
                }
            }
        }
    }

    /// Whether the process has exited (then it is not ready either).
    pub async fn exited(&self) -> bool {
        let mut child = self.child.lock().await;
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(_))) | None => {
                self.mark_unready();
                true
            }
            _ => false,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(4).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The longest Unix socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// Where a new instance listens: a Unix socket `sockets/NAME/oip.sock` under `dir` when its
/// path fits, else a free port on 127.0.0.1. The path is absolute: podman mounts the socket's
/// folder by it, and a relative one would name a volume.
fn instance_address(dir: &std::path::Path, name: &str) -> std::io::Result<Address> {
    let path = std::path::absolute(dir)?.join("sockets").join(name).join("oip.sock");
    if path.as_os_str().len() <= SOCKET_PATH_MAX {
        return Ok(Address::Unix(path));
    }
    Ok(Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?))))
}

/// Makes an instance's socket folder: only this user may reach it, and the instance may make
/// its socket in it whichever user it runs as.
///
/// `sockets/` is this user's alone (0700), so no other user of the host gets to the sockets
/// below it. Each instance's own folder is open (0777): under podman that folder alone is
/// mounted into the container, where the component runs as its image's user (65532), not as
/// the server, and must be able to make its socket there.
fn private_socket_folder(folder: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let sockets = folder.parent().unwrap_or(folder);
    std::fs::create_dir_all(sockets)?;
    std::fs::set_permissions(sockets, std::fs::Permissions::from_mode(0o700))?;
    std::fs::create_dir_all(folder)?;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o777))
}

/// An instance gets SIGTERM when this process dies, however it dies.
///
/// A gateway that is killed (OOM, `kill -9`, a crash mid-deploy) runs no destructor, so
/// `kill_on_drop` never fires: without this its instances (and their podman containers,
/// which `podman run --rm` stops on SIGTERM) would keep running, serving nobody and holding
/// memory, sockets and ports. The signal survives the `exec` into the component. It is tied
/// to the spawning thread, which is one of the runtime's workers: they live as long as the
/// server does.
fn die_with_this_process(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl(2), getppid(2)); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The server died before the signal was set up: nobody would ever stop this one.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// What starting instances needs.
#[derive(Clone)]
pub struct Launcher {
    pub command: Option<KilnCommand>,
    pub server_url: String,
    pub token: String,
    /// Where instance logs (and sockets) go.
    pub log_dir: std::path::PathBuf,
}

impl Launcher {
    /// Starts an instance of `handle@version` and waits until it answers ready.
    pub async fn start(&self, handle: &str, version: i64, runner: Option<&str>) -> Result<Arc<Instance>, InstanceError> {
        let command = self.command.as_ref().ok_or(InstanceError::NoCommand)?;
        let spawn_error = |source| InstanceError::Spawn { handle: handle.to_owned(), version, source };
        let name = format!("{handle}-{version}-{:08x}", rand::random::<u32>());
        let address = instance_address(&self.log_dir, &name).map_err(spawn_error)?;
        if let Address::Unix(path) = &address
            && let Some(folder) = path.parent()
        {
            private_socket_folder(folder).map_err(spawn_error)?;
        }
        std::fs::create_dir_all(&self.log_dir).map_err(spawn_error)?;
        let log = self.log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(spawn_error)?;
        let listen = match &address {
            Address::Tcp(addr) => addr.to_string(),
            Address::Unix(_) => address.to_string(),
        };
        let (program, leading) = command.0.split_first().ok_or(InstanceError::NoCommand)?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(leading)
            .args(["instance", handle, "--model-version", &version.to_string(), "--listen", &listen])
            .env("KILN_SERVER", &self.server_url)
            .env("KILN_TOKEN", &self.token)
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().map_err(spawn_error)?)
            .stderr(file)
            .kill_on_drop(true);
        if let Some(runner) = runner {
            cmd.args(["--runner", runner]);
        }
        die_with_this_process(&mut cmd);
        let upstream = Upstream::new(address, handle).map_err(|source| InstanceError::Address { handle: handle.to_owned(), version, source })?;
        let child = cmd.spawn().map_err(spawn_error)?;
        let instance = Arc::new(Instance {
            handle: handle.to_owned(),
            version,
            url: upstream.address().to_string(),
            started_at: crate::store::now_millis(),
            upstream,
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            child: Mutex::new(Some(child)),
            log,
        });
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if instance.exited().await {
                let status = "exited".to_owned();
                return Err(InstanceError::Exited { handle: handle.to_owned(), version, status, log: instance.log_tail() });
            }
            let ready = instance.upstream.get("/v2/health/ready", Duration::from_secs(2)).await.is_ok_and(|(status, _)| status.is_success());
            if ready {
                instance.ready.store(true, Ordering::SeqCst);
                return Ok(instance);
            }
            if tokio::time::Instant::now() >= deadline {
                instance.stop(Duration::ZERO).await;
                return Err(InstanceError::Timeout { handle: handle.to_owned(), version, seconds: READY_WITHIN.as_secs() });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_get_an_absolute_socket_path_when_it_fits() {
        let Address::Unix(path) = instance_address(std::path::Path::new("store/instances"), "iris-1-0a").unwrap() else { panic!("a short path is a socket") };
        assert!(path.is_absolute() && path.ends_with("store/instances/sockets/iris-1-0a/oip.sock"), "{}", path.display());
        let deep = std::path::PathBuf::from("/").join("d".repeat(80));
        match instance_address(&deep, "iris-1-0a").unwrap() {
            Address::Tcp(addr) => assert!(addr.ip().is_loopback() && addr.port() > 0),
            other => panic!("{other} is longer than a socket path may be"),
        }
    }

    #[test]
    fn only_the_server_reaches_an_instance_socket_folder_and_the_instance_may_write_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("sockets").join("iris-1-0a");
        private_socket_folder(&folder).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir.path().join("sockets")), mode(&folder)), (0o700, 0o777));
    }
}

//! Throwaway servers the tests and benchmarks need, on 127.0.0.1, stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::env;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A free TCP port on 127.0.0.1 (for servers that cannot be told to pick port 0).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A PostgreSQL 15 cluster in a fresh directory, trust auth on 127.0.0.1 only.
pub struct Postgres {
    data: PathBuf,
    pub url: String,
}

/// Runs `program args` as the `postgres` user when we are root (initdb refuses root).
fn as_postgres(program: &str, args: &[&str]) -> Command {
    if env::is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")]).args(args);
        cmd
    } else {
        let mut cmd = Command::new(format!("{PG_BIN}/{program}"));
        cmd.args(args);
        cmd
    }
}

fn chown_postgres(path: &Path) -> anyhow::Result<()> {
    if env::is_root() {
        env::run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(path))?;
    }
    Ok(())
}

impl Postgres {
    /// Starts a cluster in a fresh directory under the system's temporary directory. Not under
    /// the cache: as root the server runs as `postgres`, which cannot reach a cache in root's
    /// home (mode 700); `/tmp` is reachable by every user and the cluster is thrown away.
    pub fn start() -> anyhow::Result<Postgres> {
        env::ensure_debian_packages(&["postgresql"])?;
        let dir = cluster_dir();
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        let socket = dir.join("socket");
        std::fs::create_dir_all(&socket).with_context(|| format!("creating {}", socket.display()))?;
        chown_postgres(&dir)?;
        let data_str = data.to_string_lossy().into_owned();
        env::run(
            as_postgres("initdb", &["-D", &data_str, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
                .stdout(std::process::Stdio::null()),
        )?;
        let port = free_port()?;
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200", socket.display());
        let log = dir.join("log").to_string_lossy().into_owned();
        env::run(as_postgres("pg_ctl", &["-D", &data_str, "-l", &log, "-o", &options, "-w", "start"]).stdout(std::process::Stdio::null()))?;
        Ok(Postgres { data, url: format!("postgres://postgres@127.0.0.1:{port}/postgres") })
    }
}

/// This run's cluster directory (one per xtask process).
fn cluster_dir() -> PathBuf {
    std::env::temp_dir().join(format!("kiln-pg-{}", std::process::id()))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = as_postgres("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]).stdout(std::process::Stdio::null()).status();
        if let Some(dir) = self.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An S3-compatible server (moto, from the venv), in memory, on 127.0.0.1.
pub struct S3 {
    child: std::process::Child,
    pub endpoint: String,
}

impl S3 {
    pub fn start() -> anyhow::Result<S3> {
        let port = free_port()?;
        let child = Command::new(env::venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        let s3 = S3 { child, endpoint: format!("http://127.0.0.1:{port}") };
        wait_for_port(port, "moto_server")?;
        Ok(s3)
    }

    /// What a client (the Kiln server under test) needs to reach it.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("KILN_TEST_S3", &self.endpoint)
            .env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "kiln-test")
            .env("AWS_SECRET_ACCESS_KEY", "kiln-test")
            .env("AWS_REGION", "us-east-1");
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1.
pub struct Registry {
    child: std::process::Child,
    dir: PathBuf,
    /// Whether the images stay when it stops (the lab's) or go (the tests').
    kept: bool,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl Registry {
    /// A registry in a fresh directory under `parent`, removed when it stops.
    pub fn start(parent: &Path) -> anyhow::Result<Registry> {
        let dir = parent.join(format!("registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Registry::serve(dir, false)
    }

    /// A registry whose images stay in `dir` from one start to the next.
    pub fn start_kept(dir: &Path) -> anyhow::Result<Registry> {
        Registry::serve(dir.to_path_buf(), true)
    }

    fn serve(dir: PathBuf, kept: bool) -> anyhow::Result<Registry> {
        env::ensure_debian_packages(&["docker-registry"])?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = if kept { kept_port(&dir)? } else { free_port()? };
        let config = format!(
            "version: 0.1\nlog: {{ level: warn }}\nstorage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config)?;
        let log = std::fs::File::create(dir.join("log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        let registry = Registry { child, dir, kept, host: format!("127.0.0.1:{port}") };
        wait_for_port(port, "docker-registry")?;
        Ok(registry)
    }
}

/// The port a kept registry listened on last time, while it is free: the store's code
/// packages name their images by `127.0.0.1:PORT/…`, so `cargo xtask lab` after `cargo xtask
/// demo` serves and trains from the same references. A new free port otherwise (kept for next
/// time).
fn kept_port(dir: &Path) -> anyhow::Result<u16> {
    let file = dir.join("port");
    let last = std::fs::read_to_string(&file).ok().and_then(|p| p.trim().parse::<u16>().ok());
    if let Some(port) = last
        && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    {
        return Ok(port);
    }
    let port = free_port()?;
    if let Some(last) = last {
        eprintln!(
            "note: port {last} of the registry in {} is taken; it listens on {port} now, and images registered under {last} are pulled from local caches only",
            dir.display()
        );
    }
    std::fs::write(&file, port.to_string())?;
    Ok(port)
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits up to a minute for a server to accept connections on 127.0.0.1:`port`.
fn wait_for_port(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "{what} did not listen on {port} within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

/// podman with a storage of its own under the cache dir (vfs), so tests neither need nor
/// touch the machine's image store. Its settings stay the machine's: `kiln run` and the
/// gateway's instances must cope with them as they would for a user. The project's
/// `containers.conf` (lowered ulimits) is handed on as `KILN_TEST_CONTAINERS_CONF`, for the
/// tests that run images with plain `podman run`, as docs/componentize.md shows.
pub fn podman_env(cmd: &mut Command) -> anyhow::Result<()> {
    env::ensure_debian_packages(&["podman", "runc", "skopeo", "uidmap"])?;
    let storage = env::cache_dir().join("podman");
    std::fs::create_dir_all(&storage)?;
    let conf = storage.join("storage.conf");
    let text = format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n", storage.join("graph").display(), storage.join("run").display());
    std::fs::write(&conf, text)?;
    cmd.env("KILN_TEST_CONTAINERS_CONF", env::root().join("xtask/containers.conf")).env("CONTAINERS_STORAGE_CONF", conf).env_remove("CONTAINERS_CONF");
    Ok(())
}

/// Now, in ms since the epoch (the store's clock, on this machine).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `kiln server` on 127.0.0.1 (port 0 unless `listen` says otherwise), its data in `data_dir`.
pub struct KilnServer {
    child: std::process::Child,
    pub url: String,
    pub token: String,
}

impl KilnServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(data_dir: &Path, listen: &str) -> anyhow::Result<KilnServer> {
        KilnServer::start_with(data_dir, listen, &[])
    }

    /// With more `kiln server` flags.
    pub fn start_with(data_dir: &Path, listen: &str, args: &[&str]) -> anyhow::Result<KilnServer> {
        use std::io::BufRead;
        let binary = env::target_dir().join("release/kiln");
        let mut child = Command::new(&binary)
            .args(["server", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("kiln server stdout")?).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("kiln server listening on ") else {
            let _ = child.kill();
            anyhow::bail!("kiln server did not start (it said {line:?})");
        };
        let token = std::fs::read_to_string(data_dir.join("admin.token")).context("reading the admin token")?.trim().to_owned();
        Ok(KilnServer { url: url.to_owned(), child, token })
    }
}

impl Drop for KilnServer {
    fn drop(&mut self) {
        // SIGTERM: the server finishes what is in flight.
        // SAFETY: kill(2) with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The server runs as `postgres` when xtask runs as root: every folder above its cluster
    /// must let other users through (root's home, where the cache defaults to, does not).
    #[test]
    fn the_cluster_directory_is_reachable_by_the_postgres_user() {
        let dir = cluster_dir();
        for ancestor in dir.ancestors().skip(1) {
            let mode = std::fs::metadata(ancestor).unwrap_or_else(|e| panic!("{}: {e}", ancestor.display())).permissions().mode();
            assert_ne!(mode & 0o001, 0, "{} (mode {mode:o}) is closed to other users", ancestor.display());
        }
    }
}

//! Where a component runs: under podman from its image, or as a process from the binary taken
//! out of the same image (checked against the registered digest, cached per digest). Used by
//! `kiln run` (data, train) and `kiln instance` (infer, started by the server's gateway).

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use kiln::api::CodePackage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runner {
    Podman,
    Process,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Podman => "podman",
            Runner::Process => "process",
        }
    }
}

/// podman when `podman info` answers, else a process.
pub fn default_runner() -> Runner {
    if podman_works() { Runner::Podman } else { Runner::Process }
}

/// Whether `podman info` answers (the default runner is podman when it does).
pub fn podman_works() -> bool {
    Command::new("podman").arg("info").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Image references on a loopback registry are pulled over plain HTTP.
pub fn loopback(image: &str) -> bool {
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|h| image.starts_with(&format!("{h}:")) || image.starts_with(&format!("{h}/")))
}

/// The binary a component image holds, extracted once per image digest into the cache.
pub fn binary_of(package: &CodePackage, cache: &std::path::Path) -> anyhow::Result<PathBuf> {
    let name = format!("{}-{}", package.handle, package.role.as_str());
    let path = cache.join("bin").join(package.digest.trim_start_matches("sha256:")).join(&name);
    if path.is_file() {
        return Ok(path);
    }
    let layer = if let Some(rest) = package.image.strip_prefix("oci:") {
        let (dir, reference) = rest.rsplit_once(':').with_context(|| format!("image {}: expected oci:DIR:NAME", package.image))?;
        crate::registry::layout_last_layer(std::path::Path::new(dir), reference, &package.digest)?
    } else {
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(crate::registry::last_layer(&package.image, &package.digest))?
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == format!("app/{name}") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            let partial = path.with_extension("partial");
            std::fs::write(&partial, bytes)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
            std::fs::rename(&partial, &path)?;
            return Ok(path);
        }
    }
    bail!("image {} holds no /app/{name}", package.image)
}

/// `podman run --rm --network host` for `image`, with ulimits this host lets a container set.
///
/// Rootful podman asks for 1048576 open files and processes unless a `containers.conf` says
/// otherwise; on a host that caps what even root may raise them to (a VM, a container host),
/// every container then fails at create: "error setting rlimit type 7: operation not
/// permitted". So before the first container of this process, a probe finds limits that
/// work: podman's own, else the host's (what this process has), else 1024. The probe runs a
/// command the image does not have: the runtime sets the limits before it looks for the
/// command, so it fails either way, and says which.
pub fn podman_run(image: &str) -> anyhow::Result<Command> {
    let ulimits = podman_ulimits(image)?;
    let mut cmd = Command::new("podman");
    cmd.args(["run", "--rm", "--network", "host"]).args(ulimits);
    if loopback(image) {
        cmd.arg("--tls-verify=false");
    }
    Ok(cmd)
}

/// The `--ulimit` flags containers get, found once per process (see [`podman_run`]).
fn podman_ulimits(image: &str) -> anyhow::Result<&'static [String]> {
    static FOUND: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found);
    }
    let mut refused = String::new();
    for (name, flags) in ulimit_candidates() {
        let mut probe = Command::new("podman");
        probe.args(["run", "--rm", "--network", "host"]).args(&flags);
        if loopback(image) {
            probe.arg("--tls-verify=false");
        }
        let output = probe.args(["--entrypoint", "/kiln-ulimit-probe", image]).output().context("starting podman")?;
        let said = String::from_utf8_lossy(&output.stderr);
        if said.contains("rlimit") {
            refused = said.trim().to_owned();
            continue;
        }
        if !flags.is_empty() {
            eprintln!("kiln: podman cannot give containers its default ulimits on this host; they run with {name} ({})", flags.join(" "));
        }
        return Ok(FOUND.get_or_init(|| flags));
    }
    bail!("podman cannot start a container with any ulimits kiln tried (podman's, the host's, 1024): {refused}")
}

/// Ulimit settings to try, in order, each with what to call it.
fn ulimit_candidates() -> Vec<(&'static str, Vec<String>)> {
    let limit = |resource, name: &str| {
        let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit(2) writes the struct we pass; a failure leaves it zeroed.
        let ok = unsafe { libc::getrlimit(resource, &mut current) } == 0;
        let clamp = |v: libc::rlim_t| if v == libc::RLIM_INFINITY { 1 << 20 } else { v.min(1 << 20) };
        (ok && current.rlim_cur > 0).then(|| format!("{name}={}:{}", clamp(current.rlim_cur), clamp(current.rlim_max)))
    };
    let ulimits = |settings: &[String]| settings.iter().flat_map(|s| ["--ulimit".to_owned(), s.clone()]).collect::<Vec<_>>();
    let mut candidates = vec![("podman's defaults", Vec::new())];
    if let (Some(files), Some(processes)) = (limit(libc::RLIMIT_NOFILE, "nofile"), limit(libc::RLIMIT_NPROC, "nproc")) {
        candidates.push(("the host's limits", ulimits(&[files, processes])));
    }
    candidates.push(("1024 files and processes", ulimits(&["nofile=1024:1024".into(), "nproc=1024:1024".into()])));
    candidates
}

/// What podman runs: a registry reference as it is; an OCI layout image loaded first.
pub fn podman_image(package: &CodePackage) -> anyhow::Result<String> {
    if !package.image.starts_with("oci:") {
        return Ok(package.image.clone());
    }
    let output = Command::new("podman").args(["pull", "-q", &package.image]).output().context("podman pull")?;
    anyhow::ensure!(output.status.success(), "podman pull {}: {}", package.image, String::from_utf8_lossy(&output.stderr).trim());
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

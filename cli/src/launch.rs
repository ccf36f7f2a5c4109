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

/// podman when it can run Kiln's images here, else a process (saying why, when podman is
/// there but cannot).
pub fn default_runner() -> Runner {
    let info = Command::new("podman").args(["info", "--format", "json"]).stderr(std::process::Stdio::null()).output();
    match info {
        Ok(output) if output.status.success() => match podman_can_run_images(&output.stdout) {
            Ok(()) => Runner::Podman,
            Err(why) => {
                eprintln!("kiln: {why}; components run as processes from the same images (`--runner podman` to insist)");
                Runner::Process
            }
        },
        _ => Runner::Process,
    }
}

/// Whether podman, as `podman info --format json` describes itself, can run an image whose
/// files and user are [`kiln_componentize::image::USER`]: as root always; rootless only when
/// this user has subordinate IDs (`/etc/subuid`, `/etc/subgid`) that map that ID into the
/// container. Without them podman still answers `info` ("rootless single mapping"), but
/// pulling an image with files of another owner fails ("potentially insufficient UIDs").
pub fn podman_can_run_images(info_json: &[u8]) -> Result<(), String> {
    let info: serde_json::Value = serde_json::from_slice(info_json).map_err(|e| format!("`podman info --format json` answered no JSON ({e})"))?;
    let host = &info["host"];
    if host["security"]["rootless"].as_bool() != Some(true) {
        return Ok(());
    }
    let user = u64::from(kiln_componentize::image::USER);
    let maps = |key: &str| {
        host["idMappings"][key].as_array().is_some_and(|ranges| {
            ranges.iter().any(|r| {
                let (Some(start), Some(size)) = (r["container_id"].as_u64(), r["size"].as_u64()) else { return false };
                (start..start.saturating_add(size)).contains(&user)
            })
        })
    };
    if maps("uidmap") && maps("gidmap") {
        Ok(())
    } else {
        let name = std::env::var("USER").unwrap_or_else(|_| "this user".into());
        Err(format!(
            "rootless podman has no subordinate IDs for {name} (/etc/subuid, /etc/subgid), so it cannot run Kiln's images, whose user is {user}; `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}` gives it some"
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `podman info --format json` as podman 4.3 writes it, cut to what is read.
    fn info(rootless: bool, uidmap: &str, gidmap: &str) -> Vec<u8> {
        format!(r#"{{"host": {{"security": {{"rootless": {rootless}}}, "idMappings": {{"uidmap": {uidmap}, "gidmap": {gidmap}}}}}}}"#).into_bytes()
    }

    #[test]
    fn podman_runs_images_as_root_or_with_subordinate_ids() {
        let single = r#"[{"container_id": 0, "host_id": 1000, "size": 1}]"#;
        let subids = r#"[{"container_id": 0, "host_id": 1000, "size": 1}, {"container_id": 1, "host_id": 100000, "size": 65536}]"#;
        let short = r#"[{"container_id": 0, "host_id": 1000, "size": 1}, {"container_id": 1, "host_id": 100000, "size": 1000}]"#;
        let cases: [(&str, Vec<u8>, bool); 6] = [
            ("root", info(false, "null", "null"), true),
            ("rootless with /etc/subuid and /etc/subgid ranges", info(true, subids, subids), true),
            ("rootless single mapping (no ranges)", info(true, single, single), false),
            ("rootless, ranges too short for 65532", info(true, short, short), false),
            ("rootless, uids but no gids", info(true, subids, single), false),
            ("not JSON", b"Error: cannot connect".to_vec(), false),
        ];
        for (name, json, runs) in cases {
            assert_eq!(podman_can_run_images(&json).is_ok(), runs, "{name}: {:?}", podman_can_run_images(&json));
        }
        let why = podman_can_run_images(&info(true, single, single)).unwrap_err();
        assert!(why.contains("/etc/subuid") && why.contains("65532"), "{why}");
    }
}

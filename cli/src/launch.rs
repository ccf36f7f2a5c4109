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

/// What podman runs: a registry reference as it is; an OCI layout image loaded first.
pub fn podman_image(package: &CodePackage) -> anyhow::Result<String> {
    if !package.image.starts_with("oci:") {
        return Ok(package.image.clone());
    }
    let output = Command::new("podman").args(["pull", "-q", &package.image]).output().context("podman pull")?;
    anyhow::ensure!(output.status.success(), "podman pull {}: {}", package.image, String::from_utf8_lossy(&output.stderr).trim());
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}


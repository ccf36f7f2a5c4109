//! Where evcxr builds a kernel's cells, and the dependency cache shared between kernels.
//!
//! evcxr compiles every cell in one crate directory (`EVCXR_TMPDIR`, or a fresh temporary
//! directory). Two kernels sharing one directory overwrite each other's builds, so when
//! `EVCXR_TMPDIR` is set, Kiln treats it as a base and gives each kernel its own
//! `kiln-kernel-<pid>` directory below it, removing those of kernels that are gone. What is
//! worth sharing — compiled dependencies such as polars — goes through evcxr's own
//! compilation cache (`:cache`), which lives in the user's cache directory.

use std::path::{Path, PathBuf};

const PREFIX: &str = "kiln-kernel-";
/// Default size of evcxr's dependency cache; `KILN_DEP_CACHE_MB=0` turns it off.
const DEFAULT_CACHE_MB: u64 = 8192;

/// Creates this kernel's build directory under `EVCXR_TMPDIR` and points evcxr at it.
pub fn prepare() -> Option<PathBuf> {
    let base = PathBuf::from(std::env::var_os("EVCXR_TMPDIR")?);
    remove_stale(&base);
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    if let Err(error) = std::fs::create_dir_all(&dir) {
        tracing::warn!(%error, dir = %dir.display(), "cannot create the kernel's build directory");
        return None;
    }
    // SAFETY: called from `main` before any other thread starts.
    unsafe { std::env::set_var("EVCXR_TMPDIR", &dir) };
    Some(dir)
}

fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn dependency_cache_mb() -> Option<u64> {
    let mb = match std::env::var("KILN_DEP_CACHE_MB") {
        Ok(v) => v.trim().parse().unwrap_or(DEFAULT_CACHE_MB),
        Err(_) => DEFAULT_CACHE_MB,
    };
    (mb > 0).then_some(mb)
}

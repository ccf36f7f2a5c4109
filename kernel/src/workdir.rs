//! Where evcxr builds a kernel's cells, kept warm across kernel sessions.
//!
//! evcxr compiles every cell in one crate directory, and its `target/` holds every
//! dependency a session has loaded (polars: fifteen minutes to build). Reusing that directory
//! across kernel restarts is what makes a restarted kernel's first polars cell fast; sharing
//! it between two running kernels corrupts both builds. So Kiln keeps a pool of build slots
//! under a base directory (`EVCXR_TMPDIR`, else `$XDG_CACHE_HOME/kiln/evcxr`): a kernel takes
//! the first slot whose lock it can hold, for as long as it lives (the OS drops the lock when
//! the process dies, however it dies). Concurrent kernels get different slots. With
//! `KILN_DEP_CACHE_MB` set, a slot's dependencies also reach other slots through evcxr's
//! compilation cache (`:cache`).
//!
//! Each slot's parent holds a cargo config that compiles only the cell crate (`ctx`) at
//! `opt-level = 0`: cell code is small and runs once, while dependencies stay optimised.

use std::fs::File;
use std::path::{Path, PathBuf};

/// How many slots to try before giving up and letting evcxr use a throwaway directory.
const SLOTS: usize = 64;
/// evcxr's dependency cache is off unless `KILN_DEP_CACHE_MB` sizes it: it routes every
/// rustc call through a wrapper and scans the whole cache after every build, which cost
/// 0.6 s per cell once polars was loaded (measured by `cargo xtask bench kernel`); warm slots
/// already keep dependencies built across restarts.
const DEFAULT_CACHE_MB: u64 = 0;

/// A build slot this process holds until it exits.
pub struct Slot {
    pub dir: PathBuf,
    _lock: File,
}

/// Takes a free slot and points evcxr at it (`EVCXR_TMPDIR`). Must run before any other
/// thread starts (it sets an environment variable).
pub fn take() -> Option<Slot> {
    let base = base_dir()?;
    if let Err(error) = std::fs::create_dir_all(&base) {
        tracing::warn!(%error, base = %base.display(), "no build directory; evcxr will use a temporary one");
        return None;
    }
    write_cargo_config(&base);
    let slot = free_slot(&base)?;
    // SAFETY: called from `main` before any other thread starts.
    unsafe { std::env::set_var("EVCXR_TMPDIR", &slot.dir) };
    Some(slot)
}

/// The first slot under `base` that no living process holds.
fn free_slot(base: &Path) -> Option<Slot> {
    for n in 0..SLOTS {
        let Ok(lock) = File::options().create(true).truncate(false).write(true).open(base.join(format!("slot-{n}.lock"))) else {
            continue;
        };
        // An exclusive lock, not waited for (the OS drops it when this process dies).
        if lock.try_lock().is_err() {
            continue;
        }
        let dir = base.join(format!("slot-{n}"));
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        return Some(Slot { dir, _lock: lock });
    }
    None
}

fn base_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EVCXR_TMPDIR") {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("kiln/evcxr"))
}

/// Cargo reads `.cargo/config.toml` from every ancestor of the crate directory, and config
/// profiles override the manifest's (evcxr writes `[profile.dev] opt-level` for everything).
fn write_cargo_config(base: &Path) {
    let dir = base.join(".cargo");
    let text = "# Written by kiln-kernel: cell code compiles fast, dependencies stay optimised.\n\
                [profile.dev.package.ctx]\nopt-level = 0\n";
    if std::fs::read_to_string(dir.join("config.toml")).ok().as_deref() != Some(text) {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("config.toml"), text);
    }
}

pub fn dependency_cache_mb() -> Option<u64> {
    let mb = match std::env::var("KILN_DEP_CACHE_MB") {
        Ok(v) => v.trim().parse().unwrap_or(DEFAULT_CACHE_MB),
        Err(_) => DEFAULT_CACHE_MB,
    };
    (mb > 0).then_some(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_skipped_and_a_released_one_taken_again() {
        let base = tempfile::tempdir().expect("temp dir");
        let first = free_slot(base.path()).expect("a slot");
        let second = free_slot(base.path()).expect("another slot");
        assert_eq!(first.dir, base.path().join("slot-0"));
        assert_eq!(second.dir, base.path().join("slot-1"));
        drop(first);
        assert_eq!(free_slot(base.path()).expect("the released slot").dir, base.path().join("slot-0"));
    }
}

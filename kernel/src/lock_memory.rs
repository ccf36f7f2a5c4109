//! A restarted kernel keeps the dependency versions its build slot had locked.
//!
//! evcxr writes a fresh manifest when it starts, without the notebook's `:dep`s, and its first
//! build makes cargo rewrite the slot's `Cargo.lock` without them. So after a restart, the
//! cell that declares the dependencies again resolved all of them from scratch: cargo asked the
//! registry about every package (about 5 s of `cargo metadata` for polars' 335 packages here)
//! and took the newest versions, which need not be the ones the slot's `target/` holds built
//! (a rebuild: minutes) nor the ones the notebook ran with before the restart.
//!
//! The kernel keeps the lock file of the last session that locked any dependency
//! ([`remember`], at start, before evcxr's first build) and puts it back before a cell that
//! declares dependencies ([`restore`]), when the present lock holds no package the kept one
//! lacks. Cargo takes the lock file as its previous resolution, as for any project: it keeps
//! each locked version the manifest still accepts, drops the packages nothing needs any more,
//! and resolves only what is new.
//!
//! Within a session evcxr does the same to the lock at every new `:dep`: it checks the
//! dependency with `cargo metadata` on a throwaway manifest written over the slot's, holding
//! that one dependency, and cargo rewrites the slot's lock for it. The next build then
//! resolved every other dependency afresh. The kernel's `mold` shim (see `fast_build`), which
//! evcxr starts cargo through, puts the lock back after such a check
//! ([`around_dependency_check`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The slot's lock file (evcxr's crate directory is the slot).
const LOCK_FILE: &str = "Cargo.lock";
/// The kept lock, inside the slot's `target/` (so `cargo clean` forgets it too).
const MEMORY_FILE: &str = "target/kiln-remembered.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockMemoryError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LockMemoryError {
    let path = path.to_owned();
    move |source| LockMemoryError::Io { what, path, source }
}

/// A package in a lock file: name, version and source (none for path packages).
pub(crate) type PackageId = (String, String, Option<String>);

/// At kernel start, before evcxr builds anything: keeps the slot's lock when it locks a
/// dependency from a registry or git (a session that ended before declaring any keeps the
/// memory of the one before it). Returns whether it kept one.
pub fn remember(slot: &Path) -> Result<bool, LockMemoryError> {
    let Some(text) = read_if_present(&slot.join(LOCK_FILE))? else { return Ok(false) };
    if !locks_dependencies(&text) {
        return Ok(false);
    }
    let memory = slot.join(MEMORY_FILE);
    if let Some(dir) = memory.parent() {
        std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    }
    std::fs::write(&memory, text).map_err(io_error("writing", &memory))?;
    Ok(true)
}

/// Before a cell that declares dependencies: puts the kept lock back when the present one
/// locks nothing the kept one lacks (and is not that lock already). Returns whether it did.
pub fn restore(slot: &Path) -> Result<bool, LockMemoryError> {
    let Some(kept) = read_if_present(&slot.join(MEMORY_FILE))? else { return Ok(false) };
    let lock = slot.join(LOCK_FILE);
    let present = read_if_present(&lock)?;
    if !should_restore(present.as_deref(), &kept) {
        return Ok(false);
    }
    std::fs::write(&lock, kept).map_err(io_error("writing", &lock))?;
    Ok(true)
}

/// A file's text, `None` when there is no such file.
fn read_if_present(path: &Path) -> Result<Option<String>, LockMemoryError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error("reading", path)(error)),
    }
}

/// The package name of evcxr's throwaway manifest for checking a new `:dep`.
const CHECK_PACKAGE: &str = "evcxr_dummy_validate_dep";

/// Runs `cargo` (a command of evcxr's in the crate directory `dir`) and, when it was evcxr's
/// check of a new dependency, puts the lock file back as it was before (or removes the one
/// the check made). Returns `cargo`'s exit code.
pub fn around_dependency_check(dir: &Path, cargo: impl FnOnce() -> i32) -> i32 {
    if !is_dependency_check(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default()) {
        return cargo();
    }
    let lock = dir.join(LOCK_FILE);
    let before = match std::fs::read(&lock) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        // Nothing to put back safely: leave the lock to cargo.
        Err(_) => return cargo(),
    };
    let code = cargo();
    let restored = match &before {
        Some(bytes) => std::fs::write(&lock, bytes),
        None => std::fs::remove_file(&lock).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
    };
    if let Err(error) = restored {
        tracing::warn!(%error, lock = %lock.display(), "could not put the lock file back after evcxr's dependency check");
    }
    code
}

/// Whether a manifest is evcxr's throwaway one for checking a new `:dep`.
fn is_dependency_check(manifest: &str) -> bool {
    manifest.parse::<toml::Table>().ok().and_then(|doc| doc.get("package")?.get("name")?.as_str().map(|name| name == CHECK_PACKAGE)).unwrap_or(false)
}

/// Whether the lock holds a package that comes from a registry or git.
fn locks_dependencies(lock: &str) -> bool {
    package_ids(lock).is_some_and(|ids| ids.iter().any(|(_, _, source)| source.is_some()))
}

/// Whether `kept` should replace the present lock: it is readable, it differs, and every
/// package the present lock holds is in it (so putting it back loses nothing this session
/// resolved). No present lock at all loses nothing either.
fn should_restore(present: Option<&str>, kept: &str) -> bool {
    let Some(kept_ids) = package_ids(kept) else { return false };
    let Some(present) = present else { return true };
    if present == kept {
        return false;
    }
    match package_ids(present) {
        Some(present_ids) => present_ids.is_subset(&kept_ids),
        // Cargo will say what is wrong with the present lock; it is not ours to replace.
        None => false,
    }
}

/// The packages a lock file holds; `None` when it is not a lock file cargo wrote. (Also how
/// `fast_build` tells which path packages a lock has.)
pub(crate) fn package_ids(lock: &str) -> Option<BTreeSet<PackageId>> {
    let doc = lock.parse::<toml::Table>().ok()?;
    let packages = match doc.get("package") {
        Some(toml::Value::Array(packages)) => packages.as_slice(),
        Some(_) => return None,
        None => &[],
    };
    packages
        .iter()
        .map(|package| {
            let package = package.as_table()?;
            let name = package.get("name")?.as_str()?.to_owned();
            let version = package.get("version")?.as_str()?.to_owned();
            let source = match package.get("source") {
                Some(source) => Some(source.as_str()?.to_owned()),
                None => None,
            };
            Some((name, version, source))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = "registry+https://github.com/rust-lang/crates.io-index";

    /// A lock file as cargo writes it, holding `ctx` and the given registry packages.
    fn lock(packages: &[(&str, &str)]) -> String {
        let mut text = String::from("# This file is automatically @generated by Cargo.\nversion = 4\n\n");
        text.push_str("[[package]]\nname = \"ctx\"\nversion = \"1.0.0\"\n");
        if !packages.is_empty() {
            let names: Vec<String> = packages.iter().map(|(name, _)| format!("\"{name}\"")).collect();
            text.push_str(&format!("dependencies = [{}]\n", names.join(", ")));
        }
        for (name, version) in packages {
            text.push_str(&format!("\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"{REGISTRY}\"\nchecksum = \"00\"\n"));
        }
        text
    }

    #[test]
    fn only_a_lock_with_registry_or_git_packages_is_worth_keeping() {
        let cases = [
            (lock(&[]), false),
            (lock(&[("itoa", "1.0.1")]), true),
            ("version = 4\n".to_owned(), false),
            ("not a lock [".to_owned(), false),
            ("[[package]]\nname = \"kiln\"\nversion = \"0.1.0\"\n".to_owned(), false),
            ("[[package]]\nname = \"x\"\nversion = \"1.0.0\"\nsource = \"git+https://example.org/x#0123\"\n".to_owned(), true),
        ];
        for (text, kept) in cases {
            assert_eq!(locks_dependencies(&text), kept, "{text}");
        }
    }

    #[test]
    fn the_kept_lock_comes_back_only_when_nothing_resolved_since_is_lost() {
        let kept = lock(&[("itoa", "1.0.1"), ("ryu", "1.0.5")]);
        let cases = [
            ("no lock yet", None, true),
            ("evcxr's fresh lock: only the cell crate", Some(lock(&[])), true),
            ("part of the kept lock", Some(lock(&[("itoa", "1.0.1")])), true),
            ("already the kept lock", Some(kept.clone()), false),
            ("another version resolved since", Some(lock(&[("itoa", "1.0.9")])), false),
            ("a package resolved since", Some(lock(&[("itoa", "1.0.1"), ("serde", "1.0.0")])), false),
            ("a lock cargo will complain about", Some("[[package]]\nname = 1\n".to_owned()), false),
        ];
        for (case, present, restored) in cases {
            assert_eq!(should_restore(present.as_deref(), &kept), restored, "{case}");
        }
        assert!(!should_restore(None, "not a lock ["), "an unreadable kept lock stays where it is");
    }

    #[test]
    fn evcxr_s_dependency_check_leaves_the_lock_as_it_found_it() {
        let check = "\n    [package]\n    name = \"evcxr_dummy_validate_dep\"\n    version = \"0.0.1\"\n\n    [dependencies]\n    ryu = \"1\"\n";
        let cell_crate = "[package]\nname = \"ctx\"\nversion = \"1.0.0\"\n\n[dependencies]\nitoa = \"1\"\n";
        let locked = lock(&[("itoa", "1.0.1")]);
        let pruned = lock(&[("ryu", "1.0.5")]);
        // (manifest, lock before, lock after: Some(text) or None for no file)
        let cases = [
            ("the check, with a lock", check, Some(locked.clone()), Some(locked.clone())),
            ("the check, without a lock", check, None, None),
            ("evcxr's own manifest", cell_crate, Some(locked.clone()), Some(pruned.clone())),
        ];
        for (case, manifest, before, after) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("Cargo.toml"), manifest).expect("manifest");
            let lock_file = dir.path().join(LOCK_FILE);
            if let Some(text) = &before {
                std::fs::write(&lock_file, text).expect("lock");
            }
            // What cargo does to the lock for the throwaway manifest: prune it to the new dependency.
            let code = around_dependency_check(dir.path(), || {
                std::fs::write(&lock_file, &pruned).expect("cargo's lock");
                7
            });
            assert_eq!(code, 7, "{case}: cargo's exit code comes back");
            assert_eq!(std::fs::read_to_string(&lock_file).ok(), after, "{case}");
        }
    }

    #[test]
    fn a_slot_keeps_the_lock_of_the_last_session_that_locked_dependencies() {
        let slot = tempfile::tempdir().expect("tempdir");
        let lock_file = slot.path().join(LOCK_FILE);
        let with_itoa = lock(&[("itoa", "1.0.1")]);

        assert!(!remember(slot.path()).expect("no lock"), "a new slot has nothing to keep");
        std::fs::write(&lock_file, &with_itoa).expect("lock");
        assert!(remember(slot.path()).expect("remember"));

        // evcxr's first build of the next session prunes the lock; a session that ends there
        // does not make the slot forget.
        std::fs::write(&lock_file, lock(&[])).expect("lock");
        assert!(!remember(slot.path()).expect("remember"));
        assert!(restore(slot.path()).expect("restore"));
        assert_eq!(std::fs::read_to_string(&lock_file).expect("lock"), with_itoa);
        assert!(!restore(slot.path()).expect("restore"), "nothing to do the second time");

        // A version resolved in this session stays.
        let newer = lock(&[("itoa", "1.0.9")]);
        std::fs::write(&lock_file, &newer).expect("lock");
        assert!(!restore(slot.path()).expect("restore"));
        assert_eq!(std::fs::read_to_string(&lock_file).expect("lock"), newer);
    }
}

//! A notebook's dependencies linked once, into one shared library, instead of into every cell.
//!
//! evcxr compiles each cell to a `cdylib` that links its dependencies statically: once polars
//! is loaded, every cell, even `1 + 1`, hands the linker polars' archives and loads a new copy
//! of the code it uses (with its own copy of every `static`: string caches, thread pools).
//! Kiln builds the cell's dependencies into a `dylib` crate, `kiln_deps`, which re-exports
//! them, and makes each cell depend on it. rustc then links every crate that `kiln_deps`
//! contains through the shared library (they are "included from dylib"), and only the cell's
//! own code is linked per cell.
//!
//! The crate is written in the build slot before the first cell that declares `:dep`s runs,
//! and added to evcxr's state with a hidden `:dep kiln_deps = { path = … }` plus
//! `extern crate kiln_deps;`. Once a cell linked against it has run, the library is loaded in
//! the runtime, and the dynamic loader would keep serving that copy to later cells; so its
//! contents are frozen for the life of the kernel. Dependencies declared after that are
//! linked statically, as evcxr does (correct, only slower).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Set to `0` to link every dependency into every cell, as evcxr does.
pub const SWITCH_ENV: &str = "KILN_SHARED_DEPS";
const CRATE: &str = "kiln_deps";
/// Kiln's SDK, which cells `:dep` as `kiln`.
const SDK: &str = "kiln";
/// The library makes every cell load the SDK, even one that never names it, and rustc then
/// answers evcxr's probe `(last expression).evcxr_display()` with "trait `EvcxrDisplay` is
/// implemented but not in scope; import it", pointing at a line of the notebook. evcxr takes
/// that for an error in the user's code instead of falling back to `Debug`, and the cell
/// fails. With the trait in scope the probe resolves (for every `Debug` type, as under
/// `kiln::prelude::*`).
const SDK_DISPLAY: &str = "\nuse kiln::display::EvcxrDisplay as _;";

pub struct SharedDeps {
    dir: PathBuf,
    /// A cell linked against the library has run: its contents may not change any more.
    frozen: bool,
    /// Building or adding the library failed: leave linking to evcxr from then on.
    disabled: bool,
    /// The library's modification time when it was loaded.
    loaded_mtime: Option<std::time::SystemTime>,
}

/// What to run, after a cell, to link the notebook's dependencies through the library.
pub struct Plan {
    /// The hidden evcxr command: the library as a dependency, and a use of it.
    pub code: String,
}

impl SharedDeps {
    /// `slot` is evcxr's crate directory; `None` (no persistent slot, or switched off) means
    /// Kiln never builds the library.
    pub fn new(slot: Option<&Path>) -> Option<SharedDeps> {
        if std::env::var(SWITCH_ENV).is_ok_and(|v| v == "0") {
            return None;
        }
        Some(SharedDeps::at(slot?.join(CRATE)))
    }

    fn at(dir: PathBuf) -> SharedDeps {
        SharedDeps { dir, frozen: false, disabled: false, loaded_mtime: None }
    }

    /// Called after `code` ran successfully (so its `:dep`s resolved and built). Returns the
    /// evcxr command that links the library, or `None` when there is nothing to do.
    ///
    /// The engine runs it right after the cell's reply, while the user reads the output:
    /// rust-analyzer and cargo have just loaded the dependencies, and the library links in
    /// a second or two, instead of lengthening the cell that declared them.
    pub fn after_cell(&mut self, code: &str) -> Option<Plan> {
        if self.frozen || self.disabled || !declares_deps(code) {
            return None;
        }
        // evcxr's manifest has every dependency so far, with paths made absolute.
        let manifest = self.dir.parent().map(|slot| slot.join("Cargo.toml"))?;
        let deps = match std::fs::read_to_string(&manifest) {
            Ok(text) => manifest_deps(&text),
            Err(error) => {
                tracing::warn!(%error, manifest = %manifest.display(), "could not read evcxr's manifest");
                return None;
            }
        };
        if deps.is_empty() {
            return None;
        }
        if let Err(error) = write_crate(&self.dir, &deps) {
            tracing::warn!(%error, dir = %self.dir.display(), "could not write the shared dependency crate");
            self.disabled = true;
            return None;
        }
        let path = self.dir.display().to_string();
        let mut code = format!(":dep {CRATE} = {{ path = {path:?} }}\nextern crate {CRATE};");
        if deps.contains_key(SDK) {
            code.push_str(SDK_DISPLAY);
        }
        Some(Plan { code })
    }

    /// The plan ran. On success the library is loaded in the runtime, so it is frozen. On
    /// failure evcxr's state is as before; the cell's dependencies had built, so the library
    /// is at fault (a crate that cannot be re-exported, say): cells link their dependencies
    /// from now on, as evcxr does.
    pub fn ran(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if ok {
            self.frozen = true;
            self.loaded_mtime = self.library_mtime();
        } else {
            tracing::warn!(why = why(), "the shared dependency library did not build; cells link their dependencies");
            self.disabled = true;
        }
    }

    /// A notice when cargo rebuilt the loaded library (a later `:dep` changed the features of
    /// a crate inside it): the runtime keeps the copy it loaded, so new cells that need the
    /// rebuilt one fail to load until the kernel restarts.
    pub fn rebuilt_notice(&mut self) -> Option<String> {
        let loaded = self.loaded_mtime?;
        let now = self.library_mtime()?;
        if now == loaded {
            return None;
        }
        self.loaded_mtime = Some(now);
        Some(
            "kiln: a `:dep` changed crates inside the notebook's shared dependency library and cargo rebuilt it; \
             the runtime still has the earlier build loaded. If a cell fails to load, restart the kernel.\n"
                .to_owned(),
        )
    }

    /// The newest build of the library in the slot's target directory.
    fn library_mtime(&self) -> Option<std::time::SystemTime> {
        let slot = self.dir.parent()?;
        std::fs::read_dir(slot.join("target"))
            .ok()?
            .flatten()
            .map(|triple| triple.path().join("debug/deps/libkiln_deps.so"))
            .filter_map(|lib| lib.metadata().and_then(|m| m.modified()).ok())
            .max()
    }
}

/// Whether a cell has a `:dep` line.
pub fn declares_deps(code: &str) -> bool {
    code.lines().any(|line| line.trim_start().strip_prefix(":dep").is_some_and(|rest| rest.starts_with(char::is_whitespace)))
}

/// The dependencies of evcxr's manifest that the library can carry, as `name -> spec`: a
/// `path` must be absolute (the library lives in another directory than the cell crate;
/// evcxr makes the paths it is given absolute), and the library itself is left out.
fn manifest_deps(manifest: &str) -> BTreeMap<String, String> {
    let Ok(doc) = manifest.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    let Some(toml::Value::Table(deps)) = doc.get("dependencies") else {
        return BTreeMap::new();
    };
    deps.iter()
        .filter(|(name, _)| name.as_str() != CRATE)
        .filter(|(_, spec)| match spec {
            toml::Value::String(_) => true,
            toml::Value::Table(table) => match table.get("path") {
                Some(toml::Value::String(path)) => Path::new(path).is_absolute(),
                Some(_) => false,
                None => true,
            },
            _ => false,
        })
        .map(|(name, spec)| (name.clone(), spec.to_string()))
        .collect()
}

/// The library's manifest and source. evcxr's manifest sets the profile (the library is a
/// dependency of the cell crate, so it builds with the same flags and shares every crate
/// built for the cells).
fn write_crate(dir: &Path, deps: &BTreeMap<String, String>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (manifest, source) = crate_text(deps);
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    write_if_changed(&dir.join("lib.rs"), &source)
}

fn crate_text(deps: &BTreeMap<String, String>) -> (String, String) {
    let mut manifest = format!(
        "# Written by kiln-kernel: the notebook's dependencies, linked once for every cell.\n\
         [package]\nname = \"{CRATE}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"dylib\"]\npath = \"lib.rs\"\n\n[dependencies]\n"
    );
    let mut source = String::from("#![allow(unused_imports)]\n");
    for (name, spec) in deps {
        manifest.push_str(&format!("{name} = {spec}\n"));
        source.push_str(&format!("pub use {};\n", name.replace('-', "_")));
    }
    (manifest, source)
}

fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn cells_that_declare_deps() {
        let cases = [
            (":dep polars = \"0.55\"", true),
            ("let x = 1;\n  :dep ../local/crate", true),
            (":depx = 1", false),
            ("let x = 1; // :dep no = \"1\"", false),
            (":dep", false),
        ];
        for (code, expected) in cases {
            assert_eq!(declares_deps(code), expected, "{code}");
        }
    }

    /// evcxr's manifest after `:dep polars`, `:dep candle-core`, a path dependency (made
    /// absolute by evcxr) and one it was handed relative, and the library itself.
    const MANIFEST: &str = r#"
[package]
name = "ctx"
version = "1.0.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"

[dependencies]
polars = { version = "=0.55.2", features = ["lazy"] }
candle-core = "0.11.1"
kiln = { path = "/work/main/server-client/client", features = ["candle"] }
mine = { path = "rel" }
kiln_deps = { path = "/slot/kiln_deps" }
"#;

    #[test]
    fn the_library_carries_evcxrs_dependencies() {
        let deps: Vec<String> = manifest_deps(MANIFEST).iter().map(|(k, v)| format!("{k} = {v}")).collect();
        expect![[r#"
            [
                "candle-core = \"0.11.1\"",
                "kiln = { features = [\"candle\"], path = \"/work/main/server-client/client\" }",
                "polars = { features = [\"lazy\"], version = \"=0.55.2\" }",
            ]
        "#]]
        .assert_debug_eq(&deps);
        assert!(manifest_deps("not toml [").is_empty());
        assert!(manifest_deps("[package]\nname = \"ctx\"").is_empty());
    }

    #[test]
    fn plan_writes_the_crate_and_freezes_after_a_run() {
        let slot = tempfile::tempdir().unwrap();
        std::fs::write(slot.path().join("Cargo.toml"), MANIFEST).unwrap();
        let mut shared = SharedDeps::at(slot.path().join(CRATE));
        assert!(shared.after_cell("let x = 1;").is_none(), "no :dep, nothing to do");
        let plan = shared.after_cell(":dep candle-core = \"0.11.1\"\nuse candle_core::Tensor;").unwrap();
        let code = plan.code.replace(&slot.path().display().to_string(), "SLOT");
        expect![[r#"
            :dep kiln_deps = { path = "SLOT/kiln_deps" }
            extern crate kiln_deps;
            use kiln::display::EvcxrDisplay as _;"#]]
        .assert_eq(&code);
        let manifest = std::fs::read_to_string(slot.path().join("kiln_deps/Cargo.toml")).unwrap();
        expect![[r##"
            # Written by kiln-kernel: the notebook's dependencies, linked once for every cell.
            [package]
            name = "kiln_deps"
            version = "0.0.0"
            edition = "2024"

            [lib]
            crate-type = ["dylib"]
            path = "lib.rs"

            [dependencies]
            candle-core = "0.11.1"
            kiln = { features = ["candle"], path = "/work/main/server-client/client" }
            polars = { features = ["lazy"], version = "=0.55.2" }
        "##]]
        .assert_eq(&manifest);
        let lib = slot.path().join("kiln_deps/lib.rs");
        expect![[r#"
            #![allow(unused_imports)]
            pub use candle_core;
            pub use kiln;
            pub use polars;
        "#]]
        .assert_eq(&std::fs::read_to_string(&lib).unwrap());

        shared.ran(true, String::new);
        std::fs::write(slot.path().join("Cargo.toml"), format!("{MANIFEST}ndarray = \"0.16\"\n")).unwrap();
        assert!(shared.after_cell(":dep ndarray = \"0.16\"").is_none(), "loaded: the library is frozen");
        assert!(!std::fs::read_to_string(&lib).unwrap().contains("ndarray"));
    }

    #[test]
    fn a_failed_plan_leaves_linking_to_evcxr() {
        let slot = tempfile::tempdir().unwrap();
        std::fs::write(slot.path().join("Cargo.toml"), MANIFEST).unwrap();
        let mut shared = SharedDeps::at(slot.path().join(CRATE));
        assert!(shared.after_cell(":dep polars = \"0.55\"").is_some());
        shared.ran(false, || "rustc said no".into());
        assert!(shared.after_cell(":dep serde = \"1\"").is_none());
    }
}

//! Cell builds without cargo, when only the cell changed.
//!
//! evcxr builds every cell with `cargo build` in the build slot. When the manifest, the lock
//! file, cargo's configuration, the command and its environment are what they were at the
//! previous build, cargo's work before compiling the cell (reading the registry index for every
//! locked package, checking every package's fingerprint) finds nothing to do, yet it costs
//! about 25 ms on a warm kernel and about 0.3 s once polars' 335 packages are locked.
//!
//! evcxr starts cargo as `mold -run CARGO build …` when mold is installed. The kernel puts a
//! `mold` of its own first on its `PATH` ([`install`]): a link to its own binary, which, started
//! under that name, runs [`run_as_mold`]:
//! - a `build`, when the slot holds a [`Record`] whose inputs equal the present ones, runs the
//!   recorded compiler command of the cell crate directly, with the environment cargo gave
//!   it. rustc's JSON diagnostics reach evcxr as they would through cargo (evcxr reads them
//!   wrapped or not), and the shim reports the built library as cargo's artifact message;
//! - any other `build` runs cargo with this binary as its `RUSTC_WRAPPER`
//!   ([`run_as_recording_wrapper`], which runs evcxr's wrapper if evcxr set one, else rustc);
//!   for the cell crate it records the command line. The inputs are read once cargo is done
//!   (it may rewrite the lock file);
//! - everything else goes to the real mold unchanged; after evcxr's check of a new `:dep`,
//!   the slot's lock file is put back as it was (see `lock_memory`).
//!
//! Records are only used while the lock file has no path packages besides the cell crate and
//! `kiln_deps` (written once by the kernel, frozen once loaded): cargo notices an edited path
//! dependency, a record would not. A replay that fails without a compiler error (no JSON
//! diagnostic), or because a dependency's build is missing, drops the record and runs cargo. The runtime child, cargo and everything it
//! starts get the `PATH` the kernel started with. `KILN_FAST_BUILD=0` switches this off.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// Set to `0` to let cargo build every cell, as evcxr does.
pub const SWITCH_ENV: &str = "KILN_FAST_BUILD";
/// The name evcxr starts cargo through.
const SHIM: &str = "mold";
/// The `PATH` the kernel started with, for everything the shim starts.
const REAL_PATH_ENV: &str = "KILN_REAL_PATH";
/// Set by the shim for cargo's `RUSTC_WRAPPER` (this binary): the wrapper evcxr asked for, if
/// any, which the recording wrapper runs in turn.
const WRAPPER_ENV: &str = "KILN_RECORDING_WRAPPER";
/// Where the recording wrapper writes the cell crate's command.
const RECORD_ENV: &str = "KILN_FAST_BUILD_RECORD";
/// evcxr's name for the cell crate.
const CELL_CRATE: &str = "ctx";
/// Path packages a record may coexist with (see the module docs).
const FROZEN_PATH_PACKAGES: [&str; 2] = [CELL_CRATE, "kiln_deps"];
/// The record, inside the slot's `target/` (so `cargo clean` drops it too).
const RECORD_FILE: &str = "target/kiln-fast-build.json";
/// How the last cell build went ("replayed" or "cargo"), for the engine's debug log.
pub const LAST_BUILD_FILE: &str = "target/kiln-fast-build.last";
/// The jobserver cargo hands to rustc is gone once cargo exits.
const NOT_RECORDED_ENV: [&str; 5] = ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS", RECORD_ENV, WRAPPER_ENV];

#[derive(Debug, thiserror::Error)]
pub enum FastBuildError {
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// What a cell build depends on besides the cell's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// Manifest, lock file and every cargo configuration file that applies, by path.
    files: BTreeMap<PathBuf, Option<String>>,
}

/// The cell crate's compiler command, as cargo started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
}

/// A cell build cargo ran: its inputs and the compiler command it gave the cell crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    inputs: Inputs,
    invocation: Invocation,
}

/// Whether this process was started as the shim.
pub fn invoked_as_shim() -> bool {
    std::env::args_os().next().is_some_and(|arg0| Path::new(&arg0).file_name() == Some(SHIM.as_ref()))
}

/// In the kernel: puts the shim first on `PATH`, in `slot`. Does nothing when switched off or
/// when mold is not installed (evcxr then runs cargo directly).
///
/// # Safety
/// Sets environment variables: no other thread may exist yet.
pub unsafe fn install(slot: &Path) -> Result<(), FastBuildError> {
    // Written by this session's shim only.
    let _ = std::fs::remove_file(slot.join(LAST_BUILD_FILE));
    if std::env::var(SWITCH_ENV).is_ok_and(|v| v == "0") {
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if find_in(&path, SHIM).is_none() {
        return Ok(());
    }
    let dir = slot.join("kiln-bin");
    std::fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
    let link = dir.join(SHIM);
    let exe = std::env::current_exe().map_err(io_error("locating", Path::new("/proc/self/exe")))?;
    match std::fs::remove_file(&link) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io_error("replacing", &link)(error)),
        _ => {}
    }
    std::os::unix::fs::symlink(&exe, &link).map_err(io_error("linking", &link))?;
    let mut dirs = vec![dir];
    dirs.extend(std::env::split_paths(&path));
    let joined = std::env::join_paths(dirs).map_err(|e| io_error("joining PATH with", &link)(std::io::Error::other(e)))?;
    // SAFETY: the caller guarantees no other thread exists.
    unsafe {
        std::env::set_var(REAL_PATH_ENV, &path);
        std::env::set_var("PATH", joined);
    }
    Ok(())
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FastBuildError {
    let path = path.to_owned();
    move |source| FastBuildError::Io { what, path, source }
}

/// In the runtime child: gives user code the `PATH` the kernel started with.
///
/// # Safety
/// Sets environment variables: no other thread may exist yet.
pub unsafe fn restore_path() {
    if let Some(real) = std::env::var_os(REAL_PATH_ENV) {
        // SAFETY: the caller guarantees no other thread exists.
        unsafe {
            std::env::set_var("PATH", real);
            std::env::remove_var(REAL_PATH_ENV);
        }
    }
}

/// Whether this process is the recording wrapper cargo started for the shim.
pub fn is_recording_wrapper() -> bool {
    std::env::var_os(WRAPPER_ENV).is_some()
}

/// The recording wrapper's whole life: runs the compiler (through evcxr's own wrapper when it
/// asked for one) and, for the cell crate when the shim asked for it, first writes the
/// command line to replay. Never returns.
pub fn run_as_recording_wrapper() -> ! {
    let argv: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let inner = std::env::var(WRAPPER_ENV).unwrap_or_default();
    let (program, args) = match (inner.is_empty(), argv.split_first()) {
        (false, _) => (PathBuf::from(inner), argv.clone()),
        (true, Some((rustc, rest))) => (PathBuf::from(rustc), rest.to_vec()),
        (true, None) => {
            eprintln!("kiln-kernel: started as a rustc wrapper without a compiler to run");
            std::process::exit(101)
        }
    };
    if let Some(target) = std::env::var_os(RECORD_ENV)
        && compiles_cell_crate(&args)
        && let Ok(cwd) = std::env::current_dir()
    {
        let env = environment().filter(|(k, _)| !NOT_RECORDED_ENV.contains(&k.as_str())).collect();
        let invocation = Invocation { program: program.clone(), args: args.clone(), env, cwd };
        if let Ok(text) = serde_json::to_vec(&invocation) {
            let _ = std::fs::write(target, text);
        }
    }
    let status = Command::new(&program).args(&args).env_remove(WRAPPER_ENV).env_remove(RECORD_ENV).status();
    match status {
        Ok(status) => std::process::exit(status.code().unwrap_or(101)),
        Err(error) => {
            eprintln!("kiln-kernel: running {}: {error}", program.display());
            std::process::exit(101)
        }
    }
}

/// The compiler command of the cell crate, and one that can be run again as it is (cargo
/// writes an `@argfile` only for command lines too long to pass, and deletes it after).
fn compiles_cell_crate(args: &[String]) -> bool {
    args.windows(2).any(|w| w[0] == "--crate-name" && w[1] == CELL_CRATE) && !args.iter().any(|a| a.starts_with('@'))
}

/// The shim's whole life: never returns.
pub fn run_as_mold() -> ! {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let real_path = std::env::var_os(REAL_PATH_ENV).unwrap_or_else(|| std::env::var_os("PATH").unwrap_or_default());
    let code = if is_cell_build(&args) && std::env::var(SWITCH_ENV).map_or(true, |v| v != "0") {
        build(&args, &real_path)
    } else {
        let cwd = std::env::current_dir().unwrap_or_default();
        crate::lock_memory::around_dependency_check(&cwd, || run_real(&args, &real_path, None))
    };
    std::process::exit(code)
}

/// `mold -run CARGO build … --message-format=json`: how evcxr builds a cell.
fn is_cell_build(args: &[OsString]) -> bool {
    args.len() >= 3 && args[0] == "-run" && args[2] == "build" && args.iter().any(|a| a == "--message-format=json")
}

fn build(args: &[OsString], real_path: &OsString) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_default();
    let record_file = cwd.join(RECORD_FILE);
    let eligible = eligible(&cwd);
    if eligible
        && let Some(record) = read_record(&record_file)
        && record.inputs == inputs(args, &cwd)
    {
        match replay(&record.invocation) {
            Some(code) => {
                let _ = std::fs::write(cwd.join(LAST_BUILD_FILE), "replayed");
                return code;
            }
            None => tracing::debug!("replayed cell build failed without a compiler error; running cargo"),
        }
    }
    let _ = std::fs::remove_file(&record_file);
    let _ = std::fs::write(cwd.join(LAST_BUILD_FILE), "cargo");
    if !eligible {
        return run_real(args, real_path, None);
    }
    let asked = record_file.with_extension("invocation.json");
    let _ = std::fs::remove_file(&asked);
    let code = run_real(args, real_path, Some(&asked));
    let invocation = std::fs::read(&asked).ok().and_then(|text| serde_json::from_slice::<Invocation>(&text).ok());
    let _ = std::fs::remove_file(&asked);
    if let Some(invocation) = invocation {
        let record = Record { inputs: inputs(args, &cwd), invocation };
        if let Ok(text) = serde_json::to_vec(&record) {
            let _ = std::fs::write(&record_file, text);
        }
    }
    code
}

/// Runs the real mold (and so cargo) with the kernel's original `PATH`.
fn run_real(args: &[OsString], real_path: &OsString, record_to: Option<&Path>) -> i32 {
    let Some(mold) = find_in(real_path, SHIM) else {
        eprintln!("kiln-kernel: `{SHIM}` is not on PATH");
        return 127;
    };
    let mut command = Command::new(mold);
    command.args(args).env("PATH", real_path).env_remove(REAL_PATH_ENV).env_remove(RECORD_ENV);
    // Cargo builds through the recording wrapper every time the shim runs it, so its
    // `RUSTC_WRAPPER` does not change between builds that record and builds that do not.
    if is_cell_build(args)
        && let Ok(exe) = std::env::current_exe()
    {
        command.env(WRAPPER_ENV, std::env::var_os("RUSTC_WRAPPER").unwrap_or_default()).env("RUSTC_WRAPPER", exe);
        if let Some(path) = record_to {
            command.env(RECORD_ENV, path);
        }
    }
    match command.status() {
        Ok(status) => status.code().unwrap_or(101),
        Err(error) => {
            eprintln!("kiln-kernel: running {SHIM}: {error}");
            127
        }
    }
}

/// Runs a recorded compile. `None` when it failed without an error in the cell (the record
/// may be stale in a way the inputs do not show): the caller runs cargo instead.
fn replay(invocation: &Invocation) -> Option<i32> {
    let output = Command::new(&invocation.program)
        .args(&invocation.args)
        .env_clear()
        .envs(&invocation.env)
        .current_dir(&invocation.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let _ = std::io::stderr().write_all(&output.stderr);
    if output.status.success() {
        // evcxr takes the library's path from a file its own wrapper writes, or else from
        // cargo's artifact message: say what cargo would have said.
        if let Some(library) = linked_artifact(&output.stderr) {
            let message = serde_json::json!({
                "reason": "compiler-artifact", "target": { "name": CELL_CRATE }, "filenames": [library],
            });
            println!("{message}");
        }
        return Some(0);
    }
    match compiler_errors(&output.stderr) {
        Errors::InTheCell => Some(101),
        Errors::None | Errors::MissingDependency => None,
    }
}

/// What rustc's JSON output on stderr says went wrong.
#[derive(Debug, PartialEq, Eq)]
enum Errors {
    /// No error diagnostic: the failure was not the compiler's.
    None,
    /// A dependency's build is missing or not the one recorded (part of `target/` was
    /// deleted, say): cargo would have rebuilt it.
    MissingDependency,
    /// Errors in the cell's code, for the user.
    InTheCell,
}

/// rustc's errors about the crates it was told to link: "can't find crate", "found possibly
/// newer version", wrong target, wrong kind, several candidates, another compiler's build.
const DEPENDENCY_ERRORS: [&str; 6] = ["E0460", "E0461", "E0462", "E0463", "E0464", "E0514"];

fn compiler_errors(stderr: &[u8]) -> Errors {
    let errors: Vec<serde_json::Value> = json_lines(stderr)
        .into_iter()
        .filter(|json| json["$message_type"] == "diagnostic" && json["level"].as_str().is_some_and(|l| l.starts_with("error")))
        .collect();
    if errors.is_empty() {
        Errors::None
    } else if errors.iter().any(|e| e["code"]["code"].as_str().is_some_and(|code| DEPENDENCY_ERRORS.contains(&code))) {
        Errors::MissingDependency
    } else {
        Errors::InTheCell
    }
}

/// The library rustc linked, from its artifact notifications (`--json=artifacts`).
fn linked_artifact(stderr: &[u8]) -> Option<String> {
    json_lines(stderr)
        .into_iter()
        .filter(|json| json["$message_type"] == "artifact" && json["emit"] == "link")
        .filter_map(|json| json["artifact"].as_str().map(str::to_owned))
        .find(|path| path.ends_with(std::env::consts::DLL_SUFFIX))
}

/// rustc's JSON messages among the lines of its stderr.
fn json_lines(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr).lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// This process's environment as text (a record is JSON).
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
}

fn read_record(path: &Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// What the build depends on besides the cell's source, read now.
fn inputs(args: &[OsString], cwd: &Path) -> Inputs {
    let mut files = BTreeMap::new();
    for name in ["Cargo.toml", "Cargo.lock"] {
        let path = cwd.join(name);
        files.insert(path.clone(), std::fs::read_to_string(&path).ok());
    }
    for path in config_files(cwd) {
        let text = std::fs::read_to_string(&path).ok();
        files.insert(path, text);
    }
    Inputs { args: args.iter().map(|a| a.to_string_lossy().into_owned()).collect(), env: environment().collect(), files }
}

/// Cargo's configuration files for a build in `cwd`: `.cargo/config[.toml]` in it and every
/// parent, and in `$CARGO_HOME`.
fn config_files(cwd: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cwd.ancestors().map(|d| d.join(".cargo")).collect();
    let home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    dirs.extend(home);
    dirs.iter().flat_map(|d| [d.join("config.toml"), d.join("config")]).collect()
}

/// Whether the lock file in `cwd` has no path packages but the frozen ones.
fn eligible(cwd: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(cwd.join("Cargo.lock")) else { return false };
    path_packages_are_frozen(&text)
}

fn path_packages_are_frozen(lock: &str) -> bool {
    crate::lock_memory::package_ids(lock)
        .is_some_and(|ids| !ids.is_empty() && ids.iter().all(|(name, _, source)| source.is_some() || FROZEN_PATH_PACKAGES.contains(&name.as_str())))
}

/// The first executable `name` on `path`.
fn find_in(path: &OsString, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_commands_are_cell_builds() {
        let cases: [(&[&str], bool); 5] = [
            (&["-run", "/bin/cargo", "build", "--target", "x86_64-unknown-linux-gnu", "--message-format=json"], true),
            (&["-run", "/bin/cargo", "check", "--target", "x86_64-unknown-linux-gnu", "--message-format=json"], false),
            (&["-run", "/bin/cargo", "clean"], false),
            (&["-run", "/bin/cargo", "build"], false),
            (&["-o", "out", "a.o"], false),
        ];
        for (args, want) in cases {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            assert_eq!(is_cell_build(&args), want, "{args:?}");
        }
    }

    #[test]
    fn only_the_cell_crate_is_recorded() {
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert!(compiles_cell_crate(&args("/bin/rustc --crate-name ctx --edition=2024 src/lib.rs")));
        assert!(!compiles_cell_crate(&args("/bin/rustc --crate-name polars --edition=2021 src/lib.rs")));
        assert!(!compiles_cell_crate(&args("/bin/rustc --crate-name ctx @/tmp/args")));
        assert!(!compiles_cell_crate(&args("/bin/rustc - --crate-name ___ --print=file-names")));
    }

    #[test]
    fn records_are_used_only_beside_frozen_path_packages() {
        let registry = "[[package]]\nname = \"polars\"\nversion = \"0.55.2\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let path = |name: &str| format!("[[package]]\nname = \"{name}\"\nversion = \"1.0.0\"\n");
        let cases = [
            (format!("version = 4\n{}{registry}", path("ctx")), true),
            (format!("version = 4\n{}{}{registry}", path("ctx"), path("kiln_deps")), true),
            (format!("version = 4\n{}{}{registry}", path("ctx"), path("kiln")), false),
            ("version = 4\n".to_owned(), false),
            ("not toml [".to_owned(), false),
        ];
        for (lock, want) in cases {
            assert_eq!(path_packages_are_frozen(&lock), want, "{lock}");
        }
    }

    #[test]
    fn compiler_errors_are_told_from_other_failures() {
        let error = r#"{"$message_type":"diagnostic","message":"cannot find value `y`","level":"error","code":{"code":"E0425"}}"#;
        let warning = r#"{"$message_type":"diagnostic","message":"unused","level":"warning"}"#;
        let artifact = r#"{"$message_type":"artifact","artifact":"/t/libctx.so","emit":"link"}"#;
        let missing = r#"{"$message_type":"diagnostic","message":"can't find crate for `polars`","level":"error","code":{"code":"E0463"}}"#;
        assert_eq!(compiler_errors(format!("{warning}\n{error}\n").as_bytes()), Errors::InTheCell);
        assert_eq!(compiler_errors(format!("{error}\n{missing}\n").as_bytes()), Errors::MissingDependency);
        assert_eq!(compiler_errors(format!("{warning}\n{artifact}\n").as_bytes()), Errors::None);
        assert_eq!(compiler_errors(b"Failed to wrap rustc: No such file or directory\n"), Errors::None);
    }

    #[test]
    fn the_linked_library_is_found_among_rustcs_artifacts() {
        let stderr = concat!(
            r#"{"$message_type":"artifact","artifact":"/s/target/debug/deps/ctx.d","emit":"dep-info"}"#,
            "\n",
            r#"{"$message_type":"artifact","artifact":"/s/target/debug/deps/libctx.so","emit":"link"}"#,
            "\n"
        );
        assert_eq!(linked_artifact(stderr.as_bytes()).as_deref(), Some("/s/target/debug/deps/libctx.so"));
        assert_eq!(linked_artifact(b"warning: nothing\n"), None);
    }

    #[test]
    fn inputs_change_with_the_manifest_and_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"ctx\"\n").unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "version = 4\n").unwrap();
        let args = [OsString::from("-run"), OsString::from("cargo"), OsString::from("build")];
        let before = inputs(&args, dir.path());
        assert_eq!(before, inputs(&args, dir.path()));
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"ctx\"\n[dependencies]\npolars = \"0.55\"\n").unwrap();
        assert_ne!(before, inputs(&args, dir.path()));
        let again = inputs(&args, dir.path());
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(dir.path().join(".cargo/config.toml"), "[net]\noffline = true\n").unwrap();
        assert_ne!(again, inputs(&args, dir.path()));
        assert_ne!(inputs(&args[..2], dir.path()), inputs(&args, dir.path()));
    }
}

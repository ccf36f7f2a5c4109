//! Running cargo on a generated workspace and reading its JSON messages: compiler errors (to
//! map back to cells), the executables built, progress.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error("starting cargo: {0}")]
    Spawn(std::io::Error),
    #[error("reading cargo's output: {0}")]
    Read(std::io::Error),
}

/// One compiler message about the generated code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub level: String,
    /// `E0308` and the like.
    pub code: Option<String>,
    pub message: String,
    /// The primary span: file (relative to the workspace for its own crates), line, label.
    pub file: Option<String>,
    pub line: usize,
    pub label: Option<String>,
    /// rustc's own rendering, for errors outside the generated code.
    pub rendered: String,
}

/// What a cargo run said.
#[derive(Debug, Default)]
pub struct Outcome {
    pub success: bool,
    /// Errors only; warnings are the notebook's business.
    pub errors: Vec<Message>,
    /// Package name → executable, for `build`.
    pub executables: BTreeMap<String, PathBuf>,
    /// The last lines cargo wrote on stderr (for failures outside rustc: resolution, network).
    pub stderr_tail: String,
}

/// What a build is doing, for progress displays.
pub trait Progress {
    /// A crate finished compiling (`name`), `done` so far, of about `total` (cargo does not
    /// say; see [`units`]).
    fn compiled(&mut self, name: &str, done: usize, total: Option<usize>);
}

impl Progress for () {
    fn compiled(&mut self, _name: &str, _done: usize, _total: Option<usize>) {}
}

/// About how many compiler artifacts a build of `workspace` reports: one per library,
/// build script and member binary of the packages resolved for this host. cargo's own bar
/// knows the count but does not print it in its JSON, so this reads `cargo metadata`;
/// `None` when that fails (the build then shows a count without a total).
pub fn units(workspace: &Path) -> Option<usize> {
    // The type probes run cargo once per round, on the same manifests: asking cargo
    // (`-vV` and `metadata`, about 0.6 s) once per manifest text, not once per round.
    static KNOWN: std::sync::Mutex<BTreeMap<(PathBuf, String), Option<usize>>> = std::sync::Mutex::new(BTreeMap::new());
    let manifests =
        std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap_or_default() + &std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap_or_default();
    let key = (workspace.to_path_buf(), manifests);
    if let Some(known) = KNOWN.lock().ok().and_then(|k| k.get(&key).copied()) {
        return known;
    }
    let counted = count(workspace);
    if let Ok(mut known) = KNOWN.lock() {
        known.insert(key, counted);
    }
    counted
}

fn count(workspace: &Path) -> Option<usize> {
    let version = command(workspace).arg("-vV").stdin(Stdio::null()).output().ok()?;
    let version = String::from_utf8_lossy(&version.stdout);
    let host = version.lines().find_map(|l| l.strip_prefix("host: "))?.trim().to_owned();
    let output =
        command(workspace).args(["metadata", "--format-version", "1", "--filter-platform", &host]).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    Some(count_units(&metadata))
}

fn count_units(metadata: &serde_json::Value) -> usize {
    let members: Vec<&str> = metadata["workspace_members"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    let packages: BTreeMap<&str, &serde_json::Value> =
        metadata["packages"].as_array().into_iter().flatten().filter_map(|p| Some((p["id"].as_str()?, p))).collect();
    let nodes = metadata["resolve"]["nodes"].as_array().into_iter().flatten().filter_map(|n| n["id"].as_str());
    nodes
        .filter_map(|id| Some((members.contains(&id), packages.get(id)?)))
        .map(|(member, package)| {
            let kinds = package["targets"].as_array().into_iter().flatten().flat_map(|t| t["kind"].as_array().into_iter().flatten().filter_map(|k| k.as_str()));
            kinds.filter(|kind| matches!(*kind, "lib" | "rlib" | "proc-macro" | "custom-build") || (member && *kind == "bin")).count()
        })
        .sum()
}

/// A `cargo` command for `workspace`, with the environment of whoever runs Kiln cleared of
/// what would change the build (a parent `cargo test`'s target dir and flags).
pub fn command(workspace: &Path) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = ["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_", "CARGO_REGISTRY_"].iter().any(|k| key.starts_with(k));
        let drop = (key.starts_with("CARGO") && !keep)
            || matches!(key.as_ref(), "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "OUT_DIR" | "RUSTC")
            || key.starts_with("DEP_");
        if drop {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.current_dir(workspace);
    cmd
}

/// Runs `cargo <args> --message-format=json` in `workspace`.
pub fn run(workspace: &Path, args: &[&str], progress: &mut dyn Progress) -> Result<Outcome, CargoError> {
    // Before the build starts: both would wait on cargo's package cache lock.
    let total = units(workspace);
    let mut child = command(workspace)
        .args(args)
        .arg("--message-format=json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(CargoError::Spawn)?;
    let stderr = child.stderr.take().expect("piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let mut outcome = Outcome::default();
    let mut done = 0;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(CargoError::Read)?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        match message["reason"].as_str() {
            Some("compiler-artifact") => {
                done += 1;
                let name = message["target"]["name"].as_str().unwrap_or("");
                progress.compiled(name, done, total);
                if let Some(executable) = message["executable"].as_str() {
                    let package = message["target"]["name"].as_str().unwrap_or_default().to_owned();
                    outcome.executables.insert(package, PathBuf::from(executable));
                }
            }
            Some("compiler-message") => {
                if let Some(parsed) = parse_message(&message["message"])
                    && parsed.level == "error"
                {
                    outcome.errors.push(parsed);
                }
            }
            Some("build-finished") => outcome.success = message["success"].as_bool().unwrap_or(false),
            _ => {}
        }
    }
    let status = child.wait().map_err(CargoError::Read)?;
    outcome.success &= status.success();
    let stderr = stderr_reader.join().unwrap_or_default();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim_start().starts_with("Compiling") && !l.trim_start().starts_with("Checking")).collect();
    outcome.stderr_tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Ok(outcome)
}

fn parse_message(message: &serde_json::Value) -> Option<Message> {
    let spans = message["spans"].as_array()?;
    let primary = spans.iter().find(|s| s["is_primary"].as_bool() == Some(true));
    let line = primary.and_then(|s| s["line_start"].as_u64()).unwrap_or(0) as usize;
    Some(Message {
        level: message["level"].as_str()?.to_owned(),
        code: message["code"]["code"].as_str().map(str::to_owned),
        message: message["message"].as_str().unwrap_or_default().to_owned(),
        file: primary.and_then(|s| s["file_name"].as_str()).map(str::to_owned),
        line,
        label: primary.and_then(|s| s["label"].as_str()).map(str::to_owned),
        rendered: message["rendered"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One library with a build script, one proc macro, a member's binary; a test target and
    /// a member's example do not count, nor a package outside the resolve.
    #[test]
    fn units_are_libraries_build_scripts_and_member_binaries() {
        let metadata = serde_json::json!({
            "workspace_members": ["member"],
            "packages": [
                {"id": "member", "targets": [{"kind": ["bin"]}, {"kind": ["example"]}, {"kind": ["test"]}]},
                {"id": "serde", "targets": [{"kind": ["lib"]}, {"kind": ["custom-build"]}, {"kind": ["test"]}]},
                {"id": "derive", "targets": [{"kind": ["proc-macro"]}, {"kind": ["bin"]}]},
                {"id": "windows-sys", "targets": [{"kind": ["lib"]}]}
            ],
            "resolve": {"nodes": [{"id": "member"}, {"id": "serde"}, {"id": "derive"}]}
        });
        assert_eq!(count_units(&metadata), 4);
    }
}

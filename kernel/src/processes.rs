//! Stopping work: interrupting a cell and shutting down.
//!
//! A cell is either compiling (cargo and rustc run as our children) or running (in evcxr's
//! runtime child). Interrupting a compile kills the compiler and keeps the runtime — and so
//! every variable — alive; interrupting a running cell has to kill the runtime child, and the
//! engine then restores what it can (see `engine::restore_variables`).

use std::collections::HashMap;

use crate::kernel::Shared;

/// Kills whatever the current cell is doing. Does nothing when no cell runs, so a stray
/// interrupt never costs the user their variables.
pub fn interrupt(shared: &Shared) {
    if !shared.is_executing() {
        return;
    }
    shared.mark_interrupted();
    let runtime = shared.runtime_pid();
    let compilers = descendants(std::process::id(), runtime);
    if compilers.is_empty() {
        shared.kill_runtime();
    } else {
        for pid in compilers {
            kill(pid);
        }
    }
}

/// Kills every process we started (compilers and the runtime) before the kernel exits.
pub fn kill_all(shared: &Shared) {
    for pid in descendants(std::process::id(), None) {
        kill(pid);
    }
    shared.kill_runtime();
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid we just read from /proc; at worst the process is gone.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// All descendants of `root`, leaving out `skip` and its own descendants.
fn descendants(root: u32, skip: Option<u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name may contain spaces and parentheses: fields resume after the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) else { continue };
        children.entry(ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if Some(child) != skip {
                found.push(child);
                todo.push(child);
            }
        }
    }
    found
}

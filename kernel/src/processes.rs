//! Stopping work: interrupting a cell and shutting down.
//!
//! A cell is either compiling (cargo and rustc run as our children) or running (in evcxr's
//! runtime child). Interrupting a compile kills the compiler and keeps the runtime — and so
//! every variable — alive; interrupting a running cell has to kill the runtime child, and the
//! engine then restores what it can (see `engine::restore_variables`). Between the two (evcxr
//! analysing the cell in-process, before cargo starts) neither exists yet: the interrupt
//! waits for one of them to appear rather than killing an idle runtime.

use std::collections::HashMap;

use crate::kernel::Shared;

/// Kills whatever the current cell is doing. Does nothing when no cell runs, so a stray
/// interrupt never costs the user their variables.
pub fn interrupt(shared: &std::sync::Arc<Shared>) {
    if !shared.is_executing() {
        return;
    }
    shared.mark_interrupted();
    let runtime = shared.runtime_pid();
    if kill_compilers(runtime) {
        return;
    }
    if !runtime.is_some_and(waiting_on_stdin) {
        shared.kill_runtime();
        return;
    }
    // The runtime is idle, waiting for evcxr's next command, and no compiler runs yet: evcxr
    // is still analysing the cell. Stop whichever starts first.
    let shared = shared.clone();
    let _ = std::thread::Builder::new().name("kiln-interrupt".into()).spawn(move || {
        while shared.is_executing() {
            if kill_compilers(runtime) {
                return;
            }
            if !runtime.is_some_and(waiting_on_stdin) {
                shared.kill_runtime();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
}

/// Kills the compilers running for the current cell; whether there were any.
fn kill_compilers(runtime: Option<u32>) -> bool {
    let compilers = descendants(std::process::id(), runtime);
    for &pid in &compilers {
        kill(pid);
    }
    !compilers.is_empty()
}

/// Whether `pid`'s main thread is blocked reading its stdin: evcxr's runtime between
/// commands. `/proc/PID/syscall` starts with the syscall number and its first argument.
fn waiting_on_stdin(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .map(|text| {
            let mut fields = text.split_whitespace();
            fields.next() == Some(&libc::SYS_read.to_string()) && fields.next() == Some("0x0")
        })
        .unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    #[test]
    fn a_process_blocked_on_stdin_is_idle_and_a_sleeping_one_is_not() {
        let mut reader = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let mut sleeper = Command::new("sleep").arg("5").stdin(Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let idle = super::waiting_on_stdin(reader.id());
        let busy = super::waiting_on_stdin(sleeper.id());
        for child in [&mut reader, &mut sleeper] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(idle, "cat waiting on its stdin pipe");
        assert!(!busy, "sleep is in nanosleep, not read(0)");
    }
}

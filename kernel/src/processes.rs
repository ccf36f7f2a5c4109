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
///
/// The watch lasts until the interrupted cell ends: evcxr may start another compile of the
/// same cell after one is killed (its fallback build for a final value's display), and that
/// one must stop too.
pub fn interrupt(shared: &std::sync::Arc<Shared>) {
    if !shared.is_executing() {
        return;
    }
    shared.mark_interrupted();
    let runtime = shared.runtime_pid();
    if stop(shared, runtime) {
        return;
    }
    // Compilers killed, or none yet (evcxr still analysing the cell): watch for the next one,
    // or for the runtime to start the cell, until the cell ends.
    let shared = shared.clone();
    let _ = std::thread::Builder::new().name("kiln-interrupt".into()).spawn(move || {
        // `interrupted` stays set until the engine ends this cell (the next one clears it).
        while shared.interrupted() {
            if stop(&shared, runtime) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
}

/// One look at the cell: kills its compilers if any run (and keeps watching: false); kills
/// the runtime if it runs the cell's code (nothing left to watch: true).
fn stop(shared: &Shared, runtime: Option<u32>) -> bool {
    if kill_compilers(runtime) {
        return false;
    }
    if !runtime.is_some_and(waiting_on_stdin) {
        shared.kill_runtime();
        return true;
    }
    false
}

/// Kills the compilers running for the current cell; whether there were any.
fn kill_compilers(runtime: Option<u32>) -> bool {
    kill_descendants(std::process::id(), runtime)
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
    kill_descendants(std::process::id(), None);
    shared.kill_runtime();
}

/// Kills `root`'s descendants (leaving out `skip` and its own); whether there were any.
///
/// Killing a tree from a snapshot of `/proc` leaks a process forked after the snapshot: cargo
/// starting rustc just then. Its parent dies, it is re-parented outside our tree, and it runs
/// on (a const evaluation can take rustc minutes) holding the pipe evcxr reads cargo's output
/// from, so the interrupted cell never ends. So the tree is frozen first (SIGSTOP; a stopped
/// process forks nothing, and a fork the signal interrupts is undone), scanned again until no
/// new process shows up, and only then killed.
fn kill_descendants(root: u32, skip: Option<u32>) -> bool {
    let mut frozen: Vec<u32> = Vec::new();
    // Each round finds only children of processes frozen in the rounds before; a tree deeper
    // than this is not something cargo builds.
    for _ in 0..32 {
        let new: Vec<u32> = descendants(root, skip).into_iter().filter(|pid| !frozen.contains(pid)).collect();
        if new.is_empty() {
            break;
        }
        for &pid in &new {
            signal(pid, libc::SIGSTOP);
        }
        for &pid in &new {
            wait_stopped(pid);
        }
        frozen.extend(new);
    }
    for &pid in &frozen {
        signal(pid, libc::SIGKILL);
    }
    !frozen.is_empty()
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid we just read from /proc; at worst the process is gone.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Waits (briefly) until `pid` is stopped, a zombie or gone. A process in an uninterruptible
/// sleep stops when it leaves it; past the bound it is killed all the same.
fn wait_stopped(pid: u32) {
    for _ in 0..200 {
        match state(pid) {
            Some('T' | 't' | 'Z' | 'X') | None => return,
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

/// The state letter of `/proc/PID/stat` (R, S, D, T, Z, …); `None` when the process is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat)?.next()?.chars().next()
}

/// The fields of a `/proc/PID/stat` line after the command name, which may itself contain
/// spaces and parentheses: they resume after the last ')'.
fn stat_fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    stat.rfind(')').map(|i| stat[i + 1..].split_whitespace())
}

/// All descendants of `root`, leaving out `skip` and its own descendants.
fn descendants(root: u32, skip: Option<u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(mut fields) = stat_fields(&stat) else { continue };
        // A zombie is dead already (its parent has yet to reap it) and has no children.
        let alive = fields.next().is_some_and(|state| !matches!(state, "Z" | "X"));
        let Some(ppid) = fields.next().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if alive {
            children.entry(ppid).or_default().push(pid);
        }
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

    /// A parent that forks all the time (cargo starting rustc) leaves no child alive, not even
    /// one forked while its tree was being killed.
    #[test]
    fn a_forking_tree_dies_whole() {
        // A sleep length no other process uses marks this test's children wherever they end up.
        // The forking loop runs in a subshell: `parent` stands for the kernel, which forks
        // nothing itself while the tree dies.
        let mark = format!("4242.{}", std::process::id());
        let mut parent = Command::new("sh").arg("-c").arg(format!("(while :; do sleep {mark} & done) & wait")).stdin(Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let had_children = super::kill_descendants(parent.id(), None);
        let _ = parent.kill();
        let _ = parent.wait();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let survivors = marked(&mark);
        for &pid in &survivors {
            super::signal(pid, libc::SIGKILL);
        }
        assert!(had_children);
        assert!(survivors.is_empty(), "{} forked children outlived the kill", survivors.len());
    }

    /// Live processes whose command line holds `mark`.
    fn marked(mark: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let alive = super::state(pid).is_some_and(|s| s != 'Z' && s != 'X');
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if alive && String::from_utf8_lossy(&cmdline).contains(mark) {
                found.push(pid);
            }
        }
        found
    }
}

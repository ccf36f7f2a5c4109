//! The cells' own stdout buffer, flushed from the runtime child.
//!
//! evcxr builds each cell with `-C prefer-dynamic`, so cells print through the toolchain's
//! shared `libstd`, whose `stdout()` is a line-buffered writer of its own: `print!("abc")`
//! stays in it until some later cell prints a newline, and `print!("tick")` in a running
//! cell shows nothing. The runtime child (this binary, with its own static std) cannot reach
//! that buffer directly, so it loads `libkiln_flush.so` (built by `build.rs` against the same
//! shared `libstd`, embedded here, loaded from memory) and calls its flush: every
//! [`TICK`] while it lives, and on request at the end of a cell, followed by
//! [`markers::STDOUT_SYNC`] so the stdout forwarder knows everything before it has arrived.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use kiln_protocol::markers;

static HELPER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libkiln_flush.so"));
/// How often partial lines are flushed while a cell runs.
const TICK: Duration = Duration::from_millis(50);

struct Flusher {
    flush: extern "C" fn(),
    /// Sync tokens asked for.
    asked: Mutex<u64>,
    changed: Condvar,
}

static FLUSHER: OnceLock<Flusher> = OnceLock::new();

/// Loads the helper and starts the flushing thread; false (and nothing started) when the
/// helper is missing or cannot be loaded, e.g. under another toolchain than the kernel's.
pub fn start() -> bool {
    let Some(flush) = load() else { return false };
    if FLUSHER.set(Flusher { flush, asked: Mutex::new(0), changed: Condvar::new() }).is_err() {
        return true;
    }
    std::thread::Builder::new().name("kiln-flush".into()).spawn(run).is_ok()
}

/// Asks for a flush followed by the sync token on stdout; false when there is no flusher
/// (then no token will come).
pub fn request_sync() -> bool {
    let Some(flusher) = FLUSHER.get() else { return false };
    *flusher.asked.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    flusher.changed.notify_all();
    true
}

fn run() {
    let Some(flusher) = FLUSHER.get() else { return };
    let mut served = 0;
    loop {
        let asked = {
            let guard = flusher.asked.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) = flusher.changed.wait_timeout_while(guard, TICK, |asked| *asked == served).unwrap_or_else(|e| e.into_inner());
            *guard
        };
        (flusher.flush)();
        if asked > served {
            served = asked;
            let token = format!("{}\n", markers::STDOUT_SYNC);
            // SAFETY: fd 1 is the write end of the stdout pipe; a short write is atomic, and it
            // lands behind what the flush above wrote.
            unsafe { libc::write(1, token.as_ptr().cast(), token.len()) };
        }
    }
}

/// The helper loaded from an anonymous file: nothing on disk to clean up or to find
/// mounted `noexec`.
fn load() -> Option<extern "C" fn()> {
    if HELPER.is_empty() {
        return None;
    }
    // SAFETY: plain libc calls on a descriptor created here; every result is checked, and the
    // symbol is the helper's `extern "C" fn()`.
    unsafe {
        let fd = libc::memfd_create(c"kiln-flush".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let mut written = 0;
        while written < HELPER.len() {
            let n = libc::write(fd, HELPER[written..].as_ptr().cast(), HELPER.len() - written);
            if n <= 0 {
                libc::close(fd);
                return None;
            }
            written += n as usize;
        }
        let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        libc::close(fd);
        if handle.is_null() {
            return None;
        }
        let symbol = libc::dlsym(handle, c"kiln_flush_stdout".as_ptr());
        if symbol.is_null() {
            return None;
        }
        Some(std::mem::transmute::<*mut libc::c_void, extern "C" fn()>(symbol))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_helper_is_built_and_loads() {
        // A kernel built without it would silently lose live partial lines again.
        assert!(!super::HELPER.is_empty(), "build.rs did not build libkiln_flush.so");
        let flush = super::load().expect("libkiln_flush.so loads against the toolchain's libstd");
        flush();
    }
}

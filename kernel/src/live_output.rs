//! Live output from the runtime child (this binary, started by evcxr with `EVCXR_IS_RUNTIME`).
//!
//! evcxr reads the child's stdout and stderr a whole line at a time, so `print!` without a
//! newline and `\r` progress bars would only appear when a newline finally comes. Before
//! handing over to evcxr, the child therefore routes its own fd 1 and fd 2 through pipes: a
//! thread per stream passes whole lines on unchanged and turns a trailing partial line into a
//! one-line `partial` marker right away (see `kiln_protocol::markers`). It also splits lines
//! where a control token (evcxr's `EVCXR_…` or a Kiln marker) follows text that had no
//! newline, so those tokens always start a line as their readers expect.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use kiln_protocol::markers;

const RUNTIME_ENV: &str = "EVCXR_IS_RUNTIME";
const PANIC_NOTIFICATION: &str = "EVCXR_PANIC_NOTIFICATION";
/// What evcxr's wrapper prints when a `?` in the cell returned an error.
const USER_ERROR_OCCURRED: &str = "EVCXR_ERROR_OCCURRED";
/// What evcxr's runtime prints on stdout when a cell has run.
const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";

/// The end-of-cell handshake between the two forwarders. stdout and stderr travel through
/// separate pipes and threads, so a line the cell wrote to stderr just before it ended could
/// reach the kernel after evcxr's "complete" on stdout. Before passing that on, the stdout
/// forwarder writes [`markers::STDERR_SYNC`] into the stderr pipe, behind whatever the cell
/// wrote there, waits until the stderr forwarder has passed everything before it on, and
/// tells the kernel how many stderr lines to wait for.
static STDERR_ROUTED: AtomicBool = AtomicBool::new(false);
/// Lines the stderr forwarder has passed on since the last count was taken.
static STDERR_LINES: AtomicU64 = AtomicU64::new(0);
/// How many sync tokens the stderr forwarder has reached.
static SYNCED: Mutex<u64> = Mutex::new(0);
static SYNCED_CHANGED: Condvar = Condvar::new();
/// Whether evcxr's start-up run has ended (its "complete" came by).
static STARTED: AtomicBool = AtomicBool::new(false);
/// How long the stdout forwarder waits for the stderr forwarder at the end of a cell.
const SYNC_WAIT: Duration = Duration::from_millis(500);

pub fn is_runtime_child() -> bool {
    std::env::var_os(RUNTIME_ENV).is_some()
}

/// Routes fd 1 and fd 2 through forwarding threads. On any failure the streams are left
/// as they were (output is then line-buffered, as in plain evcxr).
pub fn install() {
    crate::cell_stdout::start();
    for fd in [2, 1] {
        if let Some((reader, writer)) = redirect(fd) {
            let spawned = std::thread::Builder::new().name(format!("kiln-fd{fd}")).spawn(move || forward(reader, writer, fd == 1));
            if fd == 2 && spawned.is_ok() {
                STDERR_ROUTED.store(true, Ordering::SeqCst);
            }
        }
    }
}

fn redirect(fd: i32) -> Option<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: plain POSIX calls on descriptors this process owns; each result is checked.
    unsafe {
        let original = libc::dup(fd);
        if original < 0 || libc::pipe(fds.as_mut_ptr()) != 0 {
            return None;
        }
        if libc::dup2(fds[1], fd) < 0 {
            return None;
        }
        libc::close(fds[1]);
        Some((File::from_raw_fd(fds[0]), File::from_raw_fd(original)))
    }
}

fn forward(reader: File, writer: File, is_stdout: bool) {
    let mut forwarder = Forwarder { reader, writer, is_stdout, pending: Vec::new(), block: None, group: Vec::new(), flushed: false };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // A display held back (it may be the cell's final value) goes out on its own after a while.
        let wait = if forwarder.group.is_empty() { None } else { Some(DISPLAY_WAIT) };
        let n = match read(&forwarder.reader, &mut buf, wait) {
            Got::Data(n) => n,
            Got::Timeout => {
                let mut out = Vec::new();
                forwarder.show_group(&mut out);
                if forwarder.writer.write_all(&out).is_err() {
                    break;
                }
                continue;
            }
            Got::End => break,
        };
        forwarder.pending.extend_from_slice(&buf[..n]);
        if !forwarder.pass_on() {
            break;
        }
    }
    let mut out = Vec::new();
    forwarder.show_group(&mut out);
    if !forwarder.pending.is_empty() {
        out.extend_from_slice(markers::partial_line(&String::from_utf8_lossy(&forwarder.pending)).as_bytes());
        out.push(b'\n');
    }
    let _ = forwarder.writer.write_all(&out);
}

/// How long a display a cell printed is held back in case evcxr's "complete" follows it
/// (then it is the cell's final value, an `execute_result`); evcxr prints the final value
/// right before that line, so a later display is one the cell printed while it ran.
const DISPLAY_WAIT: Duration = Duration::from_millis(500);
/// How long the end of a cell waits for the cells' stdout buffer to be flushed.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

struct Forwarder {
    reader: File,
    writer: File,
    is_stdout: bool,
    /// Bytes read and not passed on yet.
    pending: Vec<u8>,
    /// Inside an evcxr content block: its MIME type and the lines so far (every byte belongs
    /// to the payload: never split).
    block: Option<(String, Vec<u8>)>,
    /// Content blocks printed one after another: one output, until a MIME type repeats.
    group: Vec<(String, Vec<u8>)>,
    /// The cells' stdout buffer was flushed for the "complete" line at hand.
    flushed: bool,
}

impl Forwarder {
    /// Passes on every whole line of `pending`, and what may be shown of the partial rest;
    /// false when the kernel side is gone.
    fn pass_on(&mut self) -> bool {
        let mut out = Vec::with_capacity(self.pending.len() + 64);
        let mut synced = 0;
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = self.pending[start..start + nl].to_vec();
            if let Some((mime, mut body)) = self.block.take() {
                if line == b"EVCXR_END_CONTENT" {
                    self.end_block(&mut out, mime, body);
                    start += nl + 1;
                    continue;
                }
                if line != PANIC_NOTIFICATION.as_bytes() {
                    body.extend_from_slice(&line);
                    body.push(b'\n');
                    self.block = Some((mime, body));
                    start += nl + 1;
                    continue;
                }
                // evcxr ends a block at a panic too, keeping what came.
                self.end_block(&mut out, mime, body);
            }
            let pieces = split_tokens(&line);
            let last = pieces.last().copied().unwrap_or_default();
            if self.is_stdout && last == EXECUTION_COMPLETE.as_bytes() {
                if !self.flushed && crate::cell_stdout::request_sync() {
                    // What the cells' stdout buffer held belongs before "complete".
                    self.flushed = true;
                    let (before, after) = read_until_sync(&self.reader, FLUSH_WAIT);
                    self.pending.splice(start..start, before);
                    self.pending.extend_from_slice(&after);
                    continue;
                }
                self.flushed = false;
                for piece in &pieces[..pieces.len() - 1] {
                    self.text(&mut out, piece);
                }
                // A display right before "complete" is the cell's value: evcxr's to take.
                for (mime, body) in std::mem::take(&mut self.group) {
                    raw_block(&mut out, &mime, &body);
                }
                // What came before goes out first; then the stderr handshake.
                if self.writer.write_all(&out).is_err() {
                    return false;
                }
                let _ = self.writer.flush();
                out.clear();
                let lines = sync_stderr();
                // Only a count worth waiting for, and never for evcxr's own start-up run:
                // evcxr waits for its stdout channel to be drained, and the kernel's
                // reader of that channel does not exist until evcxr has started.
                let first = !STARTED.swap(true, Ordering::SeqCst);
                if lines > 0 && !first {
                    out.extend_from_slice(markers::stderr_lines_line(lines).as_bytes());
                    out.push(b'\n');
                }
                out.extend_from_slice(last);
                out.push(b'\n');
            } else if self.is_stdout && last.starts_with(b"EVCXR_BEGIN_CONTENT") {
                for piece in &pieces[..pieces.len() - 1] {
                    self.text(&mut out, piece);
                }
                let mime = String::from_utf8_lossy(&last[b"EVCXR_BEGIN_CONTENT".len()..]).trim().to_owned();
                self.block = Some((mime, Vec::new()));
            } else {
                if line != markers::STDOUT_SYNC.as_bytes() {
                    self.show_group(&mut out);
                }
                synced += write_line(&mut out, &line, self.is_stdout);
            }
            start += nl + 1;
        }
        let rest = &self.pending[start..];
        // Hold back an incomplete UTF-8 sequence or a control token that may still be
        // arriving; show the rest now.
        let keep = if self.block.is_some() { rest.len() } else { incomplete_tail(rest) };
        let show = rest[..rest.len() - keep].to_vec();
        if !show.is_empty() {
            for piece in split_tokens(&show) {
                self.text(&mut out, piece);
            }
        }
        self.pending.drain(..self.pending.len() - keep);
        if self.writer.write_all(&out).is_err() {
            return false;
        }
        let _ = self.writer.flush();
        if !self.is_stdout {
            STDERR_LINES.fetch_add(out.iter().filter(|&&b| b == b'\n').count() as u64, Ordering::SeqCst);
            if synced > 0 {
                *SYNCED.lock().unwrap_or_else(|e| e.into_inner()) += synced;
                SYNCED_CHANGED.notify_all();
            }
        }
        true
    }

    /// Text that ends without a newline (before a token, or the tail of a read): shown now,
    /// after any display held back.
    fn text(&mut self, out: &mut Vec<u8>, piece: &[u8]) {
        if piece.is_empty() || piece == markers::STDOUT_SYNC.as_bytes() {
            return;
        }
        self.show_group(out);
        out.extend_from_slice(markers::partial_line(&String::from_utf8_lossy(piece)).as_bytes());
        out.push(b'\n');
    }

    fn end_block(&mut self, out: &mut Vec<u8>, mime: String, mut body: Vec<u8>) {
        // The lines joined as evcxr joins them.
        if body.last() == Some(&b'\n') {
            body.pop();
        }
        if self.group.iter().any(|(m, _)| *m == mime) {
            self.show_group(out);
        }
        self.group.push((mime, body));
    }

    /// The held-back display goes out as a `display_data` of its own.
    fn show_group(&mut self, out: &mut Vec<u8>) {
        if self.group.is_empty() {
            return;
        }
        let blocks = std::mem::take(&mut self.group).into_iter().map(|(mime, body)| (mime, String::from_utf8_lossy(&body).into_owned()));
        let request = markers::DisplayRequest::Show { data: markers::evcxr_bundle(blocks), metadata: Default::default(), display_id: None };
        out.extend_from_slice(markers::display_line(&request).as_bytes());
        out.push(b'\n');
    }
}

/// A content block as evcxr reads it.
fn raw_block(out: &mut Vec<u8>, mime: &str, body: &[u8]) {
    out.extend_from_slice(format!("EVCXR_BEGIN_CONTENT {mime}\n").as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\nEVCXR_END_CONTENT\n");
}

enum Got {
    Data(usize),
    Timeout,
    End,
}

/// Reads what is there, waiting at most `wait` (forever when `None`).
fn read(reader: &File, buf: &mut [u8], wait: Option<Duration>) -> Got {
    if let Some(wait) = wait {
        let mut poll = libc::pollfd { fd: reader.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd for a descriptor this process owns.
        let ready = unsafe { libc::poll(&mut poll, 1, wait.as_millis().min(i32::MAX as u128) as i32) };
        if ready == 0 {
            return Got::Timeout;
        }
    }
    match (&*reader).read(buf) {
        Ok(0) | Err(_) => Got::End,
        Ok(n) => Got::Data(n),
    }
}

/// After a flush was asked for: what arrives before the sync token, and after it (up to
/// `wait`; on time-out all of it is "before").
fn read_until_sync(reader: &File, wait: Duration) -> (Vec<u8>, Vec<u8>) {
    let token = format!("{}\n", markers::STDOUT_SYNC);
    let deadline = std::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(at) = find(&got, token.as_bytes()) {
            let after = got.split_off(at + token.len());
            got.truncate(at);
            return (got, after);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match read(reader, &mut buf, Some(left.max(Duration::from_millis(1)))) {
            Got::Data(n) => got.extend_from_slice(&buf[..n]),
            Got::Timeout | Got::End => return (got, Vec::new()),
        }
        if left.is_zero() {
            return (got, Vec::new());
        }
    }
}

/// Puts the sync token into the stderr pipe and waits (up to [`SYNC_WAIT`]) until the stderr
/// forwarder has passed on everything before it; returns how many stderr lines it passed on
/// since the last call.
fn sync_stderr() -> u64 {
    if STDERR_ROUTED.load(Ordering::SeqCst) {
        let mut synced = SYNCED.lock().unwrap_or_else(|e| e.into_inner());
        let before = *synced;
        let token = format!("{}\n", markers::STDERR_SYNC);
        // SAFETY: fd 2 is the write end of the stderr pipe; a short write is atomic.
        let written = unsafe { libc::write(2, token.as_ptr().cast(), token.len()) };
        if written == token.len() as isize {
            let deadline = std::time::Instant::now() + SYNC_WAIT;
            while *synced == before {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                synced = SYNCED_CHANGED.wait_timeout(synced, left).unwrap_or_else(|e| e.into_inner()).0;
            }
        }
    }
    STDERR_LINES.swap(0, Ordering::SeqCst)
}

/// Writes one line (split before control tokens) to `out`; returns how many sync tokens it
/// held, which are not written.
fn write_line(out: &mut Vec<u8>, line: &[u8], is_stdout: bool) -> u64 {
    let pieces = split_tokens(line);
    let last = pieces.len() - 1;
    let mut synced = 0;
    for (i, piece) in pieces.into_iter().enumerate() {
        if !is_stdout && piece == markers::STDERR_SYNC.as_bytes() {
            synced += 1;
            continue;
        }
        if is_stdout && piece == markers::STDOUT_SYNC.as_bytes() {
            // A flush that came after its wait was over: nothing to show.
            continue;
        }
        if i < last {
            // Text before a control token: it had no newline of its own.
            out.extend_from_slice(markers::partial_line(&String::from_utf8_lossy(piece)).as_bytes());
        } else {
            if is_stdout && piece == PANIC_NOTIFICATION.as_bytes() {
                // Tell the kernel before evcxr swallows the notification.
                out.extend_from_slice(markers::panic_line().as_bytes());
                out.push(b'\n');
            }
            if is_stdout && piece == USER_ERROR_OCCURRED.as_bytes() {
                // evcxr swallows this too, and reports the cell as a success.
                out.extend_from_slice(markers::user_error_line().as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(piece);
        }
        out.push(b'\n');
    }
    synced
}

/// Splits `bytes` before every control token that does not start it.
fn split_tokens(bytes: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"EVCXR_") || bytes[i..].starts_with(markers::PREFIX.as_bytes()) {
            pieces.push(&bytes[start..i]);
            start = i;
        }
        i += 1;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Length of a tail that must wait for more bytes: a cut UTF-8 character, or a control
/// token whose line has not ended yet (the runtime writes each token line in one go, so a
/// token is practically never cut before its first bytes).
fn incomplete_tail(bytes: &[u8]) -> usize {
    for token in [&b"EVCXR_"[..], markers::PREFIX.as_bytes()] {
        if let Some(pos) = find(bytes, token) {
            // A token with no newline yet: wait for its line to finish.
            return bytes.len() - pos;
        }
    }
    let mut n = 0;
    for &b in bytes.iter().rev().take(3) {
        n += 1;
        if b & 0xC0 != 0x80 {
            let width = if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else if b >= 0xC0 {
                2
            } else {
                1
            };
            return if width > n { n } else { 0 };
        }
    }
    0
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tokens_glued_to_text() {
        let pieces: Vec<String> = split_tokens(b"abcEVCXR_EXECUTION_COMPLETE").iter().map(|p| String::from_utf8_lossy(p).into()).collect();
        assert_eq!(pieces, ["abc", "EVCXR_EXECUTION_COMPLETE"]);
        assert_eq!(split_tokens(b"EVCXR_X").len(), 1);
    }

    #[test]
    fn holds_back_what_may_still_be_arriving() {
        assert_eq!(incomplete_tail(b"50%"), 0);
        assert_eq!(incomplete_tail(b"DONE"), 0);
        assert_eq!(incomplete_tail(b"x EVCXR_BEGIN_CONTENT text/ht"), "EVCXR_BEGIN_CONTENT text/ht".len());
        assert_eq!(incomplete_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_tail(&"😀".as_bytes()[..3]), 3);
    }

    #[test]
    fn whole_lines_pass_unchanged_and_panics_are_announced() {
        let mut out = Vec::new();
        write_line(&mut out, b"hello", true);
        write_line(&mut out, b"EVCXR_PANIC_NOTIFICATION", true);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, format!("hello\n{}\nEVCXR_PANIC_NOTIFICATION\n", markers::panic_line()));
    }
}

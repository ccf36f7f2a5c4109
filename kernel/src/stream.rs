//! Turns evcxr's line-by-line stdout/stderr into Jupyter `stream` messages.
//!
//! evcxr hands over output one line per channel message. Sending each as its own iopub message
//! costs a message per line (10k lines → 10k messages); instead lines are batched for up to
//! [`BATCH_WINDOW`] and sent together. Lines that carry a Kiln marker are not text:
//! a partial line from the runtime child ([`crate::live_output`]) is appended without a
//! newline, a display request from the `kiln` crate becomes `display_data`, and a panic marker
//! makes the stderr pump collect the panic message for the cell's error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use kiln_protocol::markers::{self, Marker};
use serde_json::json;

use crate::channels::Outbox;
use crate::kernel::Shared;
use crate::message;

const BATCH_WINDOW: Duration = Duration::from_millis(20);
const POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// The pump thread owns the stream state; [`Pump::flush`] asks it to publish and waits for
/// the answer, so lines are always emitted in the order they arrived.
pub struct Pump {
    flushes: Sender<Sender<FlushReport>>,
}

struct FlushReport {
    panic_complete: bool,
    panic: Option<Vec<String>>,
    /// Lines taken since the previous report.
    lines: u64,
}

/// How long a flush waits for stderr lines the runtime child says are on their way.
const LINES_WAIT: Duration = Duration::from_millis(500);

struct PumpState {
    kind: StreamKind,
    shared: Arc<Shared>,
    iopub: Outbox,
    text: String,
    since: Option<Instant>,
    /// Lines of a panic message, once `thread '…' panicked at` was seen on stderr.
    panic: Option<Vec<String>>,
    panic_complete: bool,
    /// Text of a line still being written while a panic message is captured.
    panic_partial: String,
    /// An empty stderr line, held back because a panic message starts with one.
    blank_pending: bool,
    /// Lines taken since the last flush report.
    lines: u64,
}

impl Pump {
    pub fn spawn(kind: StreamKind, rx: Receiver<String>, shared: Arc<Shared>, iopub: Outbox) -> Pump {
        let (flushes, flush_rx) = crossbeam_channel::unbounded::<Sender<FlushReport>>();
        let mut st = PumpState {
            kind,
            shared,
            iopub,
            text: String::new(),
            since: None,
            panic: None,
            panic_complete: false,
            panic_partial: String::new(),
            blank_pending: false,
            lines: 0,
        };
        std::thread::Builder::new()
            .name(format!("{}-pump", kind.name()))
            .spawn(move || {
                loop {
                    crossbeam_channel::select! {
                        recv(rx) -> line => match line {
                            Ok(line) => {
                                st.take_line(line);
                                if st.since.is_some_and(|t| t.elapsed() >= BATCH_WINDOW) {
                                    st.emit();
                                }
                            }
                            Err(_) => {
                                st.emit();
                                break;
                            }
                        },
                        recv(flush_rx) -> reply => {
                            while let Ok(line) = rx.try_recv() {
                                st.take_line(line);
                            }
                            st.emit();
                            if let Ok(reply) = reply {
                                let take_panic = st.panic_complete;
                                let report = FlushReport {
                                    panic_complete: st.panic_complete,
                                    panic: if take_panic { st.panic.take() } else { st.panic.clone() },
                                    lines: std::mem::take(&mut st.lines),
                                };
                                if take_panic {
                                    st.panic_complete = false;
                                }
                                let _ = reply.send(report);
                            }
                        },
                        default(POLL) => st.emit(),
                    }
                }
            })
            .expect("spawning an output pump");
        Pump { flushes }
    }

    /// Publishes everything received so far and returns a panic message seen since the last
    /// flush. With a `grace`, first waits up to that long for a panic message that is still on
    /// its way to complete; with `lines`, until that many lines came since the last flush
    /// (what the runtime child said it wrote), up to [`LINES_WAIT`].
    pub fn flush(&self, grace: Duration, lines: u64) -> Option<Vec<String>> {
        let wait = if lines > 0 { grace.max(LINES_WAIT) } else { grace };
        let deadline = Instant::now() + wait;
        let (mut seen, mut panic, mut complete) = (0, None, false);
        loop {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if self.flushes.send(tx).is_err() {
                return panic;
            }
            let Ok(report) = rx.recv() else { return panic };
            seen += report.lines;
            if report.panic_complete {
                (panic, complete) = (report.panic, true);
            } else if !complete {
                panic = report.panic;
            }
            if ((complete || grace.is_zero()) && seen >= lines) || Instant::now() >= deadline {
                return panic;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl PumpState {
    fn take_line(&mut self, line: String) {
        self.lines += 1;
        match markers::parse_marker(&line) {
            Some(Marker::Partial(text)) if self.capturing_panic() => self.panic_partial.push_str(&text),
            Some(Marker::Partial(text)) => {
                self.release_blank();
                self.push_text(&text)
            }
            Some(Marker::Display(display)) => {
                self.emit();
                if let Some(parent) = self.shared.output_parent() {
                    let (msg_type, content) = display.to_message();
                    self.iopub.send(message::child(&parent, msg_type, content));
                }
            }
            Some(Marker::Panic) => self.shared.note_panic(),
            Some(Marker::UserError) => self.shared.note_user_error(),
            Some(Marker::StderrLines(lines)) => self.shared.note_stderr_lines(lines),
            None => self.take_text_line(line),
        }
    }

    fn capturing_panic(&self) -> bool {
        self.panic.is_some() && !self.panic_complete
    }

    fn release_blank(&mut self) {
        if std::mem::take(&mut self.blank_pending) {
            self.push_text("\n");
        }
    }

    fn take_text_line(&mut self, line: String) {
        let line = if self.panic_partial.is_empty() { line } else { std::mem::take(&mut self.panic_partial) + &line };
        if self.kind == StreamKind::Stderr {
            if line.is_empty() && self.panic.is_none() && !self.blank_pending {
                self.blank_pending = true;
                return;
            }
            if line.starts_with("thread '") && line.contains(" panicked at ") {
                self.blank_pending = false;
            }
            self.release_blank();
            if let Some(panic) = &mut self.panic {
                if !self.panic_complete {
                    // The message ends with rustc's "note: run with `RUST_BACKTRACE=1` …" (or,
                    // with backtraces on, "note: Some details are omitted …").
                    self.panic_complete = line.starts_with("note: ");
                    if !self.panic_complete {
                        panic.push(line);
                    }
                    return;
                }
            } else if line.starts_with("thread '") && line.contains(" panicked at ") {
                self.panic = Some(vec![line]);
                self.panic_complete = false;
                return;
            }
        }
        self.push_text(&line);
        self.text.push('\n');
    }

    fn push_text(&mut self, text: &str) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        self.text.push_str(text);
    }

    fn emit(&mut self) {
        if !self.capturing_panic() {
            self.release_blank();
        }
        self.since = None;
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        if let Some(parent) = self.shared.output_parent() {
            self.iopub.send(message::child(&parent, "stream", json!({ "name": self.kind.name(), "text": text })));
        }
    }
}

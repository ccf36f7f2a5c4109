//! Turns evcxr's line-by-line stdout/stderr into Jupyter `stream` messages.
//!
//! evcxr hands over output one line per channel message. Sending each as its own iopub message
//! costs a message per line (10k lines → 10k messages); instead lines are batched for up to
//! [`BATCH_WINDOW`] and sent together. Lines that carry a Kiln marker are not text:
//! a partial line from the runtime child ([`crate::live_output`]) is appended without a
//! newline, a display request from the `kiln` crate becomes `display_data`, and a panic marker
//! makes the stderr pump collect the panic message for the cell's error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use kiln::display::protocol::{self, Marker};
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

pub struct Pump {
    state: Arc<Mutex<PumpState>>,
}

struct PumpState {
    kind: StreamKind,
    rx: Receiver<String>,
    shared: Arc<Shared>,
    iopub: Outbox,
    text: String,
    since: Option<Instant>,
    /// Lines of a panic message, once `thread '…' panicked at` was seen on stderr.
    panic: Option<Vec<String>>,
    panic_complete: bool,
}

impl Pump {
    pub fn spawn(kind: StreamKind, rx: Receiver<String>, shared: Arc<Shared>, iopub: Outbox) -> Pump {
        let state = Arc::new(Mutex::new(PumpState {
            kind,
            rx,
            shared,
            iopub,
            text: String::new(),
            since: None,
            panic: None,
            panic_complete: false,
        }));
        let worker = state.clone();
        std::thread::Builder::new()
            .name(format!("{}-pump", kind.name()))
            .spawn(move || {
                loop {
                    // Receiving under the lock keeps lines in order with `flush`.
                    let mut st = worker.lock().expect("pump lock");
                    match st.rx.recv_timeout(POLL) {
                        Ok(line) => {
                            st.take_line(line);
                            st.drain();
                            if st.since.is_some_and(|t| t.elapsed() >= BATCH_WINDOW) {
                                st.emit();
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => st.emit(),
                        Err(RecvTimeoutError::Disconnected) => {
                            st.emit();
                            break;
                        }
                    }
                }
            })
            .expect("spawning an output pump");
        Pump { state }
    }

    /// Publishes everything received so far. With a `grace`, first waits up to that long for
    /// a panic message that is still on its way to complete.
    pub fn flush(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        loop {
            let mut st = self.state.lock().expect("pump lock");
            st.drain();
            let waiting = grace > Duration::ZERO && !st.panic_complete && Instant::now() < deadline;
            if !waiting {
                st.emit();
                return;
            }
            drop(st);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The panic message captured since the last call, if any.
    pub fn take_panic(&self) -> Option<Vec<String>> {
        let mut st = self.state.lock().expect("pump lock");
        st.panic_complete = false;
        st.panic.take()
    }
}

impl PumpState {
    fn drain(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.take_line(line);
        }
    }

    fn take_line(&mut self, line: String) {
        match protocol::parse_marker(&line) {
            Some(Marker::Partial(text)) => self.push_text(&text),
            Some(Marker::Display(display)) => {
                self.emit();
                if let Some(parent) = self.shared.output_parent() {
                    let (msg_type, content) = display.to_message();
                    self.iopub.send(message::child(&parent, msg_type, content));
                }
            }
            Some(Marker::Panic) => self.shared.note_panic(),
            None => self.take_text_line(line),
        }
    }

    fn take_text_line(&mut self, line: String) {
        if self.kind == StreamKind::Stderr {
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

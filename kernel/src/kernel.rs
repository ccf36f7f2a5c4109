//! The kernel: shared state and the shell, control and stdin loops.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jupyter_protocol::{ConnectionInfo, JupyterMessage};
use serde_json::{Value, json};

use crate::cells::CellBook;
use crate::channels::{self, Incoming, Outbox};
use crate::comm;
use crate::engine::{self, EngineHandle, Job};
use crate::history::History;
use crate::introspect::{self, Completeness};
use crate::message;
use crate::processes;

/// State read by the async side while the engine thread is busy.
#[derive(Default)]
pub struct Shared {
    pub history: Mutex<History>,
    pub cells: Mutex<CellBook>,
    pub comms: Mutex<BTreeMap<String, String>>,
    variables: Mutex<BTreeMap<String, String>>,
    output_parent: Mutex<Option<JupyterMessage>>,
    process: OnceLock<Arc<Mutex<Child>>>,
    executing: AtomicBool,
    interrupted: AtomicBool,
    panicked: AtomicBool,
    /// A `?` in the running cell returned an error.
    user_error: AtomicBool,
    /// Lines the runtime child says it wrote to stderr in the cell that just ended.
    stderr_lines: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn set_process(&self, handle: Arc<Mutex<Child>>) {
        let _ = self.process.set(handle);
    }

    pub fn runtime_pid(&self) -> Option<u32> {
        self.process.get().and_then(|p| p.lock().ok().map(|c| c.id()))
    }

    pub fn kill_runtime(&self) {
        if let Some(p) = self.process.get()
            && let Ok(mut child) = p.lock()
        {
            let _ = child.kill();
        }
    }

    pub fn begin_execution(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
        self.executing.store(true, Ordering::SeqCst);
    }

    /// Ends an execution; true when it was interrupted.
    pub fn end_execution(&self) -> bool {
        self.executing.store(false, Ordering::SeqCst);
        self.interrupted.swap(false, Ordering::SeqCst)
    }

    pub fn is_executing(&self) -> bool {
        self.executing.load(Ordering::SeqCst)
    }

    pub fn mark_interrupted(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    pub fn note_panic(&self) {
        self.panicked.store(true, Ordering::SeqCst);
    }

    pub fn take_panicked(&self) -> bool {
        self.panicked.swap(false, Ordering::SeqCst)
    }

    pub fn note_user_error(&self) {
        self.user_error.store(true, Ordering::SeqCst);
    }

    pub fn take_user_error(&self) -> bool {
        self.user_error.swap(false, Ordering::SeqCst)
    }

    pub fn note_stderr_lines(&self, lines: u64) {
        self.stderr_lines.store(lines, Ordering::SeqCst);
    }

    pub fn take_stderr_lines(&self) -> u64 {
        self.stderr_lines.swap(0, Ordering::SeqCst)
    }

    /// The request that output is currently attributed to; `None` discards output (silent
    /// executions, variable restores).
    pub fn output_parent(&self) -> Option<JupyterMessage> {
        self.output_parent.lock().expect("parent lock").clone()
    }

    pub fn set_output_parent(&self, parent: Option<JupyterMessage>) {
        *self.output_parent.lock().expect("parent lock") = parent;
    }

    pub fn variables(&self) -> BTreeMap<String, String> {
        self.variables.lock().expect("variables lock").clone()
    }

    pub fn set_variables(&self, vars: BTreeMap<String, String>) {
        *self.variables.lock().expect("variables lock") = vars;
    }
}

pub async fn run(info: ConnectionInfo, slot: Option<crate::workdir::Slot>) -> anyhow::Result<()> {
    if !info.signature_scheme.is_empty() && info.signature_scheme != "hmac-sha256" {
        anyhow::bail!("unsupported signature_scheme '{}' (only hmac-sha256)", info.signature_scheme);
    }
    let session = uuid::Uuid::new_v4().to_string();
    let sockets = channels::bind(&info, &session).await?;
    let shared = Arc::new(Shared::default());
    if let Some(slot) = &slot {
        tracing::info!(dir = %slot.dir.display(), "building cells in");
    }
    let (stdin_tx, stdin_rx) = crossbeam_channel::unbounded();
    // evcxr warms up (compiling a first snippet) on its own thread: kernel_info is answered
    // right away while that happens.
    let engine = engine::spawn(
        shared.clone(),
        engine::Outboxes { iopub: sockets.iopub_out.clone(), shell: sockets.shell_out.clone(), stdin: sockets.stdin_out.clone() },
        stdin_rx,
        slot.as_ref().map(|slot| slot.dir.clone()),
    );
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::mpsc::unbounded_channel::<()>();

    let control = Control { shared: shared.clone(), out: sockets.control_out.clone(), iopub: sockets.iopub_out.clone(), shutdown: shutdown_tx.clone() };
    tokio::spawn(control_loop(sockets.control, control));
    tokio::spawn(stdin_loop(sockets.stdin, stdin_tx));
    let shell = Shell { shared: shared.clone(), out: sockets.shell_out.clone(), iopub: sockets.iopub_out.clone(), engine, shutdown: shutdown_tx };
    tokio::spawn(shell_loop(sockets.shell, shell));

    shutdown_rx.recv().await;
    processes::kill_all(&shared);
    drop(slot);
    // Let the writer tasks put the shutdown reply on the wire.
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::process::exit(0);
}

fn kernel_info() -> Value {
    json!({
        "status": "ok",
        "protocol_version": "5.3",
        "implementation": "kiln",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "rust",
            "version": rustc_version(),
            "mimetype": "text/rust",
            "file_extension": ".rs",
            "pygments_lexer": "rust",
            "codemirror_mode": "rust",
        },
        "banner": format!("Kiln {} — Rust on evcxr", env!("CARGO_PKG_VERSION")),
        "help_links": [
            { "text": "Rust standard library", "url": "https://doc.rust-lang.org/std/" },
            { "text": "evcxr commands (:help)", "url": "https://github.com/evcxr/evcxr/blob/main/COMMON.md" },
        ],
        "debugger": false,
    })
}

/// The toolchain version, read once in the background so kernel_info never waits for rustc.
fn rustc_version() -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    static ASKED: std::sync::Once = std::sync::Once::new();
    VERSION.get().cloned().unwrap_or_else(|| {
        ASKED.call_once(|| {
            std::thread::spawn(|| {
                let v = std::process::Command::new("rustc")
                    .arg("--version")
                    .output()
                    .ok()
                    .and_then(|o| String::from_utf8(o.stdout).ok())
                    .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
                    .unwrap_or_default();
                let _ = VERSION.set(v);
            });
        });
        String::new()
    })
}

struct Shell {
    shared: Arc<Shared>,
    out: Outbox,
    iopub: Outbox,
    engine: EngineHandle,
    shutdown: tokio::sync::mpsc::UnboundedSender<()>,
}

async fn shell_loop(mut conn: jupyter_zmq_client::Connection<zeromq::RouterRecvHalf>, shell: Shell) {
    let _ = rustc_version();
    loop {
        match channels::recv_request(&mut conn).await {
            Incoming::Request(msg) => shell.handle(*msg),
            Incoming::Rejected { reason, answer_to } => reject(&shell.out, &shell.iopub, &reason, answer_to),
            Incoming::Closed(error) => {
                tracing::error!(%error, "shell socket closed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Logs a message we cannot act on and, when it is addressable, answers it with an error.
fn reject(out: &Outbox, iopub: &Outbox, reason: &str, answer_to: Option<Box<JupyterMessage>>) {
    tracing::warn!(reason, "rejected a message");
    if let Some(msg) = answer_to
        && msg.header.msg_type.ends_with("_request")
    {
        iopub.send(message::status(&msg, "busy"));
        out.send(message::error_reply(&msg, "BadMessage", reason));
        iopub.send(message::status(&msg, "idle"));
    }
}

impl Shell {
    fn handle(&self, msg: JupyterMessage) {
        let msg_type = msg.header.msg_type.clone();
        match msg_type.as_str() {
            "execute_request" => self.engine.submit(Job::Execute(msg)),
            "complete_request" => self.engine.submit(Job::Complete(msg)),
            "inspect_request" => self.engine.submit(Job::Inspect(msg)),
            _ => {
                self.iopub.send(message::status(&msg, "busy"));
                self.handle_now(&msg, &msg_type);
                self.iopub.send(message::status(&msg, "idle"));
            }
        }
    }

    /// Requests answered without the engine, so they never wait behind a running cell.
    fn handle_now(&self, msg: &JupyterMessage, msg_type: &str) {
        let content = serde_json::to_value(&msg.content).unwrap_or_default();
        let reply = |t: &str, c: Value| self.out.send(message::child(msg, t, c));
        match msg_type {
            "kernel_info_request" => reply("kernel_info_reply", kernel_info()),
            "is_complete_request" => {
                let code = content["code"].as_str().unwrap_or_default();
                let c = match introspect::is_complete(code) {
                    Completeness::Complete => json!({ "status": "complete" }),
                    Completeness::Incomplete(indent) => json!({ "status": "incomplete", "indent": indent }),
                    Completeness::Invalid => json!({ "status": "invalid" }),
                };
                reply("is_complete_reply", c);
            }
            "history_request" => {
                let history = self.shared.history.lock().expect("history lock").query(&content);
                reply("history_reply", json!({ "status": "ok", "history": history }));
            }
            "comm_info_request" => reply("comm_info_reply", json!({ "status": "ok", "comms": comm::info(&self.shared, &content) })),
            "comm_open" => comm::open(&self.shared, &self.iopub, msg, &content),
            "comm_msg" => comm::message(&self.shared, &self.iopub, msg, &content),
            "comm_close" => comm::close(&self.shared, &content),
            "shutdown_request" => {
                let restart = content["restart"].as_bool().unwrap_or(false);
                reply("shutdown_reply", json!({ "status": "ok", "restart": restart }));
                let _ = self.shutdown.send(());
            }
            other if other.ends_with("_request") => {
                tracing::warn!(msg_type = other, "unknown request type");
                self.out.send(message::error_reply(msg, "UnknownMessageType", &format!("kiln does not handle '{other}' on the shell channel")));
            }
            other => tracing::warn!(msg_type = other, "ignoring a message that is not a request"),
        }
    }
}

struct Control {
    shared: Arc<Shared>,
    out: Outbox,
    iopub: Outbox,
    shutdown: tokio::sync::mpsc::UnboundedSender<()>,
}

async fn control_loop(mut conn: jupyter_zmq_client::Connection<zeromq::RouterRecvHalf>, control: Control) {
    loop {
        let msg = match channels::recv_request(&mut conn).await {
            Incoming::Request(msg) => *msg,
            Incoming::Rejected { reason, answer_to } => {
                reject(&control.out, &control.iopub, &reason, answer_to);
                continue;
            }
            Incoming::Closed(error) => {
                tracing::error!(%error, "control socket closed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let content = serde_json::to_value(&msg.content).unwrap_or_default();
        let reply = |t: &str, c: Value| control.out.send(message::child(&msg, t, c));
        control.iopub.send(message::status(&msg, "busy"));
        match msg.header.msg_type.as_str() {
            "interrupt_request" => {
                processes::interrupt(&control.shared);
                reply("interrupt_reply", json!({ "status": "ok" }));
            }
            "shutdown_request" => {
                let restart = content["restart"].as_bool().unwrap_or(false);
                reply("shutdown_reply", json!({ "status": "ok", "restart": restart }));
                control.iopub.send(message::status(&msg, "idle"));
                let _ = control.shutdown.send(());
                continue;
            }
            "kernel_info_request" => reply("kernel_info_reply", kernel_info()),
            other => {
                tracing::warn!(msg_type = other, "unknown control request");
                control.out.send(message::error_reply(&msg, "UnknownMessageType", &format!("kiln does not handle '{other}' on the control channel")));
            }
        }
        control.iopub.send(message::status(&msg, "idle"));
    }
}

async fn stdin_loop(mut conn: jupyter_zmq_client::Connection<zeromq::RouterRecvHalf>, replies: crossbeam_channel::Sender<String>) {
    loop {
        match channels::recv_request(&mut conn).await {
            Incoming::Request(msg) if msg.header.msg_type == "input_reply" => {
                let content = serde_json::to_value(&msg.content).unwrap_or_default();
                let _ = replies.send(content["value"].as_str().unwrap_or_default().to_owned());
            }
            Incoming::Request(msg) => tracing::warn!(msg_type = msg.header.msg_type, "unexpected message on stdin"),
            Incoming::Rejected { reason, .. } => tracing::warn!(reason, "rejected a stdin message"),
            Incoming::Closed(error) => {
                tracing::error!(%error, "stdin socket closed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

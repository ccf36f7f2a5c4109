//! A Jupyter client on the wire for exact-sequence tests, in the style of Ark's
//! DummyFrontend: it starts `kiln-kernel` on a fresh connection file and speaks to it through
//! jupyter-zmq-client's client sockets, so every byte goes through the real transport.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jupyter_protocol::{ConnectionInfo, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{ClientControlConnection, ClientIoPubConnection, ClientShellConnection, ClientStdinConnection};
use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(180);

pub struct Kernel {
    child: Child,
    pub info: ConnectionInfo,
    pub session: String,
    pub shell: ClientShellConnection,
    pub control: ClientControlConnection,
    pub iopub: ClientIoPubConnection,
    pub stdin: ClientStdinConnection,
    pub started: Instant,
    _dir: tempfile::TempDir,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn kernel_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln-kernel"))
}

/// The `kiln` SDK crate, for cells that `:dep` it.
pub fn sdk_path() -> PathBuf {
    // At run time: a shared target dir may hold this test built in another clone.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("../server-client/client").canonicalize().expect("sdk path")
}

impl Kernel {
    pub async fn start() -> Kernel {
        Self::start_with_key("a0436f6c-1916-498b-8eb9-e81ab9368e84").await
    }

    pub async fn start_with_key(key: &str) -> Kernel {
        Self::start_inner(key, None, None).await
    }

    /// Starts a kernel whose build slots live under `base` (its `EVCXR_TMPDIR`), with `env`
    /// added: a kernel started after this one has exited takes the same slot, `base/slot-0`.
    pub async fn start_in(base: &std::path::Path, env: &[(&str, &str)]) -> Kernel {
        Self::start_inner("a0436f6c-1916-498b-8eb9-e81ab9368e84", None, Some((base, env))).await
    }

    /// Starts a kernel whose engine logs each cell's evcxr phases (at debug level) to
    /// [`Kernel::log`]: a cell whose phases include `Fallback` was built twice.
    pub async fn start_logged() -> Kernel {
        Self::start_inner("a0436f6c-1916-498b-8eb9-e81ab9368e84", Some("kiln_kernel::engine=debug"), None).await
    }

    /// What the kernel wrote to stderr so far (only for [`Kernel::start_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("kernel.log")).unwrap_or_default()
    }

    async fn start_inner(key: &str, log_filter: Option<&str>, slots: Option<(&std::path::Path, &[(&str, &str)])>) -> Kernel {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = jupyter_zmq_client::peek_ports("127.0.0.1".parse().unwrap(), 5).await.expect("ports");
        let info = ConnectionInfo {
            ip: "127.0.0.1".into(),
            transport: jupyter_protocol::connection_info::Transport::TCP,
            shell_port: ports[0],
            iopub_port: ports[1],
            stdin_port: ports[2],
            control_port: ports[3],
            hb_port: ports[4],
            key: key.into(),
            signature_scheme: "hmac-sha256".into(),
            kernel_name: Some("kiln".into()),
        };
        let file = dir.path().join("kernel.json");
        std::fs::write(&file, serde_json::to_string(&info).unwrap()).unwrap();
        let started = Instant::now();
        let mut command = Command::new(kernel_binary());
        command.arg(&file).stdin(Stdio::null());
        if let Some((base, env)) = slots {
            command.env("EVCXR_TMPDIR", base).envs(env.iter().copied());
        }
        if let Some(filter) = log_filter {
            let log = std::fs::File::create(dir.path().join("kernel.log")).expect("kernel log");
            command.env("KILN_KERNEL_LOG", filter).env("NO_COLOR", "1").stderr(log);
        }
        let child = command.spawn().expect("spawning kiln-kernel");
        let session = uuid::Uuid::new_v4().to_string();
        let identity = jupyter_zmq_client::peer_identity_for_session(&session).unwrap();
        // The kernel binds its sockets once it has started; on a loaded machine (other tests
        // compiling cells) that can take longer than the first connect.
        let deadline = Instant::now() + Duration::from_secs(20);
        let shell = loop {
            match jupyter_zmq_client::create_client_shell_connection_with_identity(&info, &session, identity.clone()).await {
                Ok(shell) => break shell,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("shell: {error}"),
            }
        };
        let control = jupyter_zmq_client::create_client_control_connection(&info, &session).await.expect("control");
        let stdin = jupyter_zmq_client::create_client_stdin_connection_with_identity(&info, &session, identity).await.expect("stdin");
        let mut iopub = jupyter_zmq_client::create_client_iopub_connection(&info, "", &session).await.expect("iopub");
        let welcome = jupyter_zmq_client::wait_for_iopub_welcome(&mut iopub, Duration::from_secs(10)).await;
        assert!(matches!(welcome, Ok(Some(_))), "no iopub_welcome: {welcome:?}");
        Kernel { child, info, session, shell, control, iopub, stdin, started, _dir: dir }
    }

    /// Waits for the kernel process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn request(&self, msg_type: &str, content: Value) -> JupyterMessage {
        let mut msg = JupyterMessage::new(JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: msg_type.into(), content }), None);
        msg.header.session = self.session.clone();
        msg
    }

    pub async fn send_shell(&mut self, msg: JupyterMessage) -> JupyterMessage {
        self.shell.send(msg.clone()).await.expect("send shell");
        msg
    }

    pub async fn send_control(&mut self, msg: JupyterMessage) -> JupyterMessage {
        self.control.send(msg.clone()).await.expect("send control");
        msg
    }

    pub fn execute_request(&self, code: &str) -> JupyterMessage {
        self.request(
            "execute_request",
            json!({ "code": code, "silent": false, "store_history": true, "user_expressions": {},
                    "allow_stdin": false, "stop_on_error": true }),
        )
    }

    pub async fn shell_reply(&mut self) -> JupyterMessage {
        tokio::time::timeout(TIMEOUT, self.shell.read()).await.expect("shell reply timed out").expect("shell read")
    }

    pub async fn control_reply(&mut self) -> JupyterMessage {
        tokio::time::timeout(TIMEOUT, self.control.read()).await.expect("control reply timed out").expect("control read")
    }

    pub async fn iopub_next(&mut self) -> JupyterMessage {
        tokio::time::timeout(TIMEOUT, self.iopub.read()).await.expect("iopub timed out").expect("iopub read")
    }

    /// IOPub messages parented to `request`, from its `busy` to its `idle` (both included).
    /// Messages for other requests are kept for later calls.
    pub async fn iopub_for(&mut self, request: &JupyterMessage) -> Vec<JupyterMessage> {
        let mut got = Vec::new();
        loop {
            let msg = self.iopub_next().await;
            let parent = msg.parent_header.as_ref().map(|h| h.msg_id.clone());
            if parent.as_deref() != Some(request.header.msg_id.as_str()) {
                continue;
            }
            let idle = msg.header.msg_type == "status" && content(&msg)["execution_state"] == "idle";
            got.push(msg);
            if idle {
                return got;
            }
        }
    }

    /// Runs one cell; returns its iopub messages and its reply.
    pub async fn execute(&mut self, code: &str) -> (Vec<JupyterMessage>, JupyterMessage) {
        let req = self.execute_request(code);
        self.run(req).await
    }

    pub async fn run(&mut self, req: JupyterMessage) -> (Vec<JupyterMessage>, JupyterMessage) {
        let req = self.send_shell(req).await;
        let reply = self.shell_reply().await;
        assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
        let iopub = self.iopub_for(&req).await;
        (iopub, reply)
    }
}

pub fn content(msg: &JupyterMessage) -> Value {
    serde_json::to_value(&msg.content).unwrap()
}

/// A one-line-per-message rendering for snapshots: type plus the fields that matter.
pub fn render(messages: &[JupyterMessage]) -> String {
    messages.iter().map(render_one).collect::<Vec<_>>().join("\n")
}

pub fn render_one(msg: &JupyterMessage) -> String {
    let c = content(msg);
    let t = msg.header.msg_type.as_str();
    match t {
        "status" => format!("status {}", c["execution_state"].as_str().unwrap_or("?")),
        "execute_input" => format!("execute_input [{}] {:?}", c["execution_count"], c["code"].as_str().unwrap_or("")),
        "stream" => format!("stream {} {:?}", c["name"].as_str().unwrap_or("?"), c["text"].as_str().unwrap_or("")),
        "execute_result" => format!("execute_result [{}] {}", c["execution_count"], c["data"]),
        "error" => format!("error {}: {}", c["ename"].as_str().unwrap_or("?"), c["evalue"].as_str().unwrap_or("?")),
        "display_data" | "update_display_data" => {
            let id = c["transient"]["display_id"].as_str().map(|_| " (with display_id)").unwrap_or("");
            let mut mimes: Vec<&String> = c["data"].as_object().map(|o| o.keys().collect()).unwrap_or_default();
            mimes.sort();
            format!("{t}{id} {mimes:?}")
        }
        "execute_reply" => match c["status"].as_str() {
            Some("error") => format!("execute_reply error [{}] {}", c["execution_count"], c["ename"].as_str().unwrap_or("")),
            s => format!("execute_reply {} [{}]", s.unwrap_or("?"), c["execution_count"]),
        },
        _ => format!("{t} {c}"),
    }
}

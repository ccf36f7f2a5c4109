//! The five Jupyter sockets, each driven by its own task.
//!
//! Receiving goes through [`recv_request`], which keeps the raw frames long enough to answer a
//! message whose signature or content is bad instead of dropping it silently. Sending goes
//! through an unbounded channel per socket ([`Outbox`]), so the evcxr thread, the shell task and
//! the control task can all publish without owning a socket.

use jupyter_protocol::{ConnectionInfo, Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{Connection, RawMessage, SubscriptionEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zeromq::{SocketRecv, SocketSend};

use crate::message;

/// Where to send messages for one socket. Cloning is cheap; sending never blocks.
#[derive(Clone)]
pub struct Outbox(mpsc::UnboundedSender<JupyterMessage>);

impl Outbox {
    pub fn send(&self, msg: JupyterMessage) {
        // The writer only goes away at shutdown, when losing a message is expected.
        let _ = self.0.send(msg);
    }
}

pub struct Sockets {
    pub shell: Connection<zeromq::RouterRecvHalf>,
    pub shell_out: Outbox,
    pub control: Connection<zeromq::RouterRecvHalf>,
    pub control_out: Outbox,
    pub stdin: Connection<zeromq::RouterRecvHalf>,
    pub stdin_out: Outbox,
    pub iopub_out: Outbox,
}

/// Binds every socket of `info` and starts the writer, iopub and heartbeat tasks.
pub async fn bind(info: &ConnectionInfo, session: &str) -> anyhow::Result<Sockets> {
    let (shell, shell_out) = split_router(jupyter_zmq_client::create_kernel_shell_connection(info, session).await?);
    let (control, control_out) = split_router(jupyter_zmq_client::create_kernel_control_connection(info, session).await?);
    let (stdin, stdin_out) = split_router(jupyter_zmq_client::create_kernel_stdin_connection(info, session).await?);
    let iopub = jupyter_zmq_client::create_kernel_iopub_xpub_connection(info, session).await?;
    let iopub_out = spawn_iopub(iopub);
    let heartbeat = jupyter_zmq_client::create_kernel_heartbeat_connection(info).await?;
    tokio::spawn(heartbeat_loop(heartbeat.socket));
    Ok(Sockets { shell, shell_out, control, control_out, stdin, stdin_out, iopub_out })
}

fn split_router(conn: Connection<zeromq::RouterSocket>) -> (Connection<zeromq::RouterRecvHalf>, Outbox) {
    let (mut send, recv) = conn.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if let Err(error) = send.send(msg).await {
                tracing::warn!(%error, "sending on a router socket failed");
            }
        }
    });
    (recv, Outbox(tx))
}

/// IOPub on XPUB: subscriptions are only tracked while someone reads the socket, so one task
/// both reads subscriptions (answering each with `iopub_welcome`) and publishes.
fn spawn_iopub(mut iopub: Connection<zeromq::XPubSocket>) -> Outbox {
    let (tx, mut rx) = mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                event = iopub.recv_subscription() => match event {
                    Ok(SubscriptionEvent::Subscribe(topic)) => {
                        let welcome = message::orphan("iopub_welcome", json!({ "subscription": topic }));
                        if let Err(error) = iopub.send(welcome).await {
                            tracing::warn!(%error, "sending iopub_welcome failed");
                        }
                    }
                    Ok(SubscriptionEvent::Unsubscribe(_)) => {}
                    Err(error) => tracing::debug!(%error, "iopub subscription frame"),
                },
                msg = rx.recv() => match msg {
                    Some(msg) => {
                        if let Err(error) = iopub.send(msg).await {
                            tracing::warn!(%error, "publishing on iopub failed");
                        }
                    }
                    None => break,
                },
            }
        }
    });
    Outbox(tx)
}

async fn heartbeat_loop(mut socket: zeromq::RepSocket) {
    loop {
        match socket.recv().await {
            Ok(ping) => {
                if let Err(error) = socket.send(ping).await {
                    tracing::warn!(%error, "heartbeat reply failed");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "heartbeat receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// What arrived on a router socket.
pub enum Incoming {
    /// A verified, well-formed message.
    Request(Box<JupyterMessage>),
    /// A message we will not act on. `answer_to` is set when enough of it parsed to address an
    /// error reply (its header and identities).
    Rejected { reason: String, answer_to: Option<Box<JupyterMessage>> },
    /// The socket itself failed.
    Closed(String),
}

pub async fn recv_request(conn: &mut Connection<zeromq::RouterRecvHalf>) -> Incoming {
    let frames = match conn.socket.recv().await {
        Ok(frames) => frames,
        Err(error) => return Incoming::Closed(error.to_string()),
    };
    // Verify against a copy, so that a message that fails verification can still be answered.
    match RawMessage::from_multipart(frames.clone(), &conn.mac) {
        Ok(raw) => match decode(raw) {
            Ok(msg) => Incoming::Request(Box::new(msg)),
            Err((reason, answer_to)) => Incoming::Rejected { reason, answer_to },
        },
        Err(error) => {
            let reason = format!("rejected message: {error}");
            // Parse without verifying only to learn where to send the error reply.
            let answer_to = RawMessage::from_multipart(frames, &None).ok().and_then(|raw| addressable(&raw));
            Incoming::Rejected { reason, answer_to }
        }
    }
}

/// Request types whose typed model is stricter than the protocol.
const LENIENT: &[&str] = &["history_request"];

/// Turns verified frames into a message. The frame layout is jupyter-zmq-client's; we only
/// deserialise the four JSON parts, as its own (private) conversion does.
fn decode(raw: RawMessage) -> Result<JupyterMessage, (String, Option<Box<JupyterMessage>>)> {
    let header: Header = serde_json::from_slice(&raw.jparts[0]).map_err(|e| (format!("malformed header: {e}"), None))?;
    let parent_header = serde_json::from_slice::<Header>(&raw.jparts[1]).ok();
    let metadata: Value = serde_json::from_slice(&raw.jparts[2]).unwrap_or_else(|_| json!({}));
    let addressed = || addressable(&raw);
    let content: Value = serde_json::from_slice(&raw.jparts[3]).map_err(|e| (format!("malformed {} content: {e}", header.msg_type), addressed()))?;
    let content = match JupyterMessageContent::from_type_and_content(&header.msg_type, content.clone()) {
        Ok(typed) => typed,
        // jupyter-protocol requires fields the protocol makes optional (`n` and `unique` of a
        // history search): keep such requests as JSON, which their handler reads with defaults.
        Err(_) if LENIENT.contains(&header.msg_type.as_str()) => {
            JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: header.msg_type.clone(), content })
        }
        Err(e) => return Err((format!("invalid {} content: {e}", header.msg_type), addressed())),
    };
    Ok(JupyterMessage { zmq_identities: raw.zmq_identities, header, parent_header, metadata, content, buffers: raw.jparts[4..].to_vec(), channel: None })
}

fn addressable(raw: &RawMessage) -> Option<Box<JupyterMessage>> {
    let header: Header = serde_json::from_slice(raw.jparts.first()?).ok()?;
    Some(Box::new(JupyterMessage {
        zmq_identities: raw.zmq_identities.clone(),
        content: JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: header.msg_type.clone(), content: json!({}) }),
        header,
        parent_header: None,
        metadata: json!({}),
        buffers: Vec::new(),
        channel: None,
    }))
}

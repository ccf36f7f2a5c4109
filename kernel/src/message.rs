//! Building outgoing messages.
//!
//! Every message the kernel sends is built here from plain JSON content, so the wire shape is
//! exactly what the protocol documents (jupyter-protocol's typed structs serialise some optional
//! fields as `null`, which strict clients reject). Signing and framing stay in
//! jupyter-zmq-client.

use jupyter_protocol::{JupyterMessage, JupyterMessageContent, UnknownMessage};
use serde_json::{Value, json};

/// A message of type `msg_type` with `content`, parented to `parent` (its header becomes our
/// `parent_header` and its ZMQ identities route the reply).
pub fn child(parent: &JupyterMessage, msg_type: &str, content: Value) -> JupyterMessage {
    let mut msg = JupyterMessage::new(unknown(msg_type, content), Some(parent));
    msg.header.username = "kiln".into();
    msg
}

/// A message with no parent (e.g. `iopub_welcome`, the `starting` status).
pub fn orphan(msg_type: &str, content: Value) -> JupyterMessage {
    let mut msg = JupyterMessage::new(unknown(msg_type, content), None);
    msg.header.username = "kiln".into();
    msg
}

fn unknown(msg_type: &str, content: Value) -> JupyterMessageContent {
    JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: msg_type.to_owned(), content })
}

pub fn status(parent: &JupyterMessage, state: &str) -> JupyterMessage {
    child(parent, "status", json!({ "execution_state": state }))
}

/// The reply type for a request type: `execute_request` → `execute_reply`.
pub fn reply_type(request_type: &str) -> String {
    match request_type.strip_suffix("_request") {
        Some(stem) => format!("{stem}_reply"),
        None => format!("{request_type}_reply"),
    }
}

/// An error reply for a request we could not serve.
pub fn error_reply(parent: &JupyterMessage, ename: &str, evalue: &str) -> JupyterMessage {
    child(
        parent,
        &reply_type(&parent.header.msg_type),
        json!({ "status": "error", "ename": ename, "evalue": evalue, "traceback": [format!("{ename}: {evalue}")] }),
    )
}

pub fn stream(parent: &JupyterMessage, name: &str, text: &str) -> JupyterMessage {
    child(parent, "stream", json!({ "name": name, "text": text }))
}

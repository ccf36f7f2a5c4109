//! Comms: the `kiln` target, which the JupyterLab extension talks to.
//!
//! Requests on a `kiln` comm are answered from state the engine publishes after every cell
//! ([`Shared`]), never by the engine itself, so an answer does not wait behind a running cell.
//!
//! | request (`data.request`) | answer (`data`) |
//! |---|---|
//! | `cells` | `{ "cells": [CellRecord…] }`: the last run of each cell |
//! | `variables` | `{ "variables": { name: type } }` |
//! | anything else | `{ "error": "…" }` |

use jupyter_protocol::JupyterMessage;
use serde_json::{Value, json};

use crate::channels::Outbox;
use crate::kernel::Shared;
use crate::message;

pub const TARGET: &str = "kiln";

pub fn open(shared: &Shared, iopub: &Outbox, msg: &JupyterMessage, content: &Value) {
    let comm_id = content["comm_id"].as_str().unwrap_or_default().to_owned();
    let target = content["target_name"].as_str().unwrap_or_default();
    if target == TARGET && !comm_id.is_empty() {
        shared.comms.lock().expect("comms lock").insert(comm_id.clone(), target.to_owned());
        iopub.send(message::child(
            msg,
            "comm_msg",
            json!({ "comm_id": comm_id, "data": { "event": "ready", "kernel": "kiln", "version": env!("CARGO_PKG_VERSION") } }),
        ));
    } else {
        tracing::info!(target, "comm_open for an unknown target; closing it");
        iopub.send(message::child(msg, "comm_close", json!({ "comm_id": comm_id, "data": {} })));
    }
}

pub fn message(shared: &Shared, iopub: &Outbox, msg: &JupyterMessage, content: &Value) {
    let comm_id = content["comm_id"].as_str().unwrap_or_default();
    if !shared.comms.lock().expect("comms lock").contains_key(comm_id) {
        tracing::warn!(comm_id, "comm_msg for a comm that is not open");
        return;
    }
    let data = answer(shared, &content["data"]);
    iopub.send(message::child(msg, "comm_msg", json!({ "comm_id": comm_id, "data": data })));
}

pub fn close(shared: &Shared, content: &Value) {
    if let Some(id) = content["comm_id"].as_str() {
        shared.comms.lock().expect("comms lock").remove(id);
    }
}

fn answer(shared: &Shared, data: &Value) -> Value {
    match data["request"].as_str() {
        Some("cells") => json!({ "cells": shared.cells.lock().expect("cells lock").all() }),
        Some("variables") => json!({ "variables": shared.variables() }),
        Some(other) => json!({ "error": format!("unknown request '{other}' (known: cells, variables)") }),
        None => json!({ "error": "missing field 'request' (known: cells, variables)" }),
    }
}

/// The `comms` of a comm_info_reply, filtered by target name when one is given.
pub fn info(shared: &Shared, content: &Value) -> Value {
    let wanted = content["target_name"].as_str().filter(|t| !t.is_empty());
    let comms = shared.comms.lock().expect("comms lock");
    let mut out = serde_json::Map::new();
    for (id, target) in comms.iter() {
        if wanted.is_none_or(|w| w == target) {
            out.insert(id.clone(), json!({ "target_name": target }));
        }
    }
    Value::Object(out)
}

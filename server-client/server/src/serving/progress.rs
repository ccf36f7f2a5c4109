//! How each handle's latest deployment change went, step by step: instances starting, health
//! checks passing, the change saved, the switch, the drain. A client that sent a change (the
//! extension's "Push to production" dialog) polls it while its request is in flight, and
//! sees the reason when an instance fails to become ready.

use std::collections::HashMap;
use std::sync::Mutex;

use kiln_api::{ChangeProgress, ChangeStep, Millis};

use crate::store::now_millis;

/// The latest change of every handle this server changed.
#[derive(Default)]
pub struct Changes(Mutex<HashMap<String, ChangeProgress>>);

impl Changes {
    /// A new change of `handle` begins; it replaces the record of the previous one.
    pub fn begin(&self, handle: &str, action: &str, detail: &str) -> Tracker<'_> {
        let record = ChangeProgress { action: action.to_owned(), detail: detail.to_owned(), started_at: now_millis(), ..Default::default() };
        self.0.lock().expect("changes lock").insert(handle.to_owned(), record);
        Tracker { changes: self, handle: handle.to_owned() }
    }

    pub fn latest(&self, handle: &str) -> Option<ChangeProgress> {
        self.0.lock().expect("changes lock").get(handle).cloned()
    }
}

/// Records the steps of one change.
pub struct Tracker<'a> {
    changes: &'a Changes,
    handle: String,
}

impl Tracker<'_> {
    fn update(&self, edit: impl FnOnce(&mut ChangeProgress)) {
        if let Some(record) = self.changes.0.lock().expect("changes lock").get_mut(&self.handle) {
            edit(record);
        }
    }

    pub fn step(&self, kind: &str, version: Option<i64>, text: impl Into<String>) {
        let step = ChangeStep { at: now_millis(), kind: kind.to_owned(), version, text: text.into() };
        self.update(|record| record.steps.push(step));
    }

    pub fn done(&self) {
        self.step("done", None, "done");
        self.update(|record| record.finished_at = Some(now_millis()));
    }

    /// The change stopped with nothing switched.
    pub fn failed(&self, reason: &str) {
        self.step("failed", None, format!("{reason}; nothing was switched"));
        self.update(|record| {
            record.error = Some(reason.to_owned());
            record.finished_at = Some(now_millis());
        });
    }
}

/// Seconds since `start`, for the steps' text.
pub fn seconds_since(start: Millis) -> String {
    format!("{:.1} s", (now_millis() - start).max(0) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_change_replaces_the_record_and_a_failure_keeps_its_reason() {
        let changes = Changes::default();
        let first = changes.begin("iris", "deploy", "blue-green: version 1 serves all traffic");
        first.step("starting", Some(1), "starting an instance of version 1");
        first.done();
        let second = changes.begin("iris", "deploy", "canary: 10% to version 2, the rest to 1");
        second.step("starting", Some(2), "starting an instance of version 2");
        second.failed("the instance of iris@2 exited before it was ready");
        let record = changes.latest("iris").expect("recorded");
        let kinds: Vec<&str> = record.steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["starting", "failed"]);
        assert_eq!(record.error.as_deref(), Some("the instance of iris@2 exited before it was ready"));
        assert!(record.finished_at.is_some() && record.detail.starts_with("canary"));
        assert!(changes.latest("other").is_none());
    }
}

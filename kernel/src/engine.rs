//! The evcxr engine on its own thread.
//!
//! evcxr's `CommandContext` is blocking and `!Sync`, so one thread owns it and takes jobs
//! (execute, complete, inspect) from a queue in arrival order. Everything that must answer while
//! a cell runs (kernel_info, comms, interrupt, shutdown) is served by the async side from
//! [`Shared`] instead of waiting here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use evcxr::{CommandContext, EvalCallbacks, EvalOutputs};
use jupyter_protocol::JupyterMessage;
use serde_json::{Map, Value, json};

use crate::cells::{self, CellRecord, Outcome};
use crate::channels::Outbox;
use crate::introspect;
use crate::kernel::Shared;
use crate::lock_memory;
use crate::message;
use crate::result_display::{self, Mode};
use crate::shared_deps::SharedDeps;
use crate::stream::{Pump, StreamKind};
use crate::workdir;

/// Cells whose code ran longer than this are not re-run to restore variables after a crash:
/// the notice lists their variables as lost instead (re-running a ten-minute training loop
/// silently would be worse than saying so). A cell is judged by its own run time (evcxr's
/// `Execution` phase), not by its wall time: the first cell of a session carries evcxr's
/// warm-up and every cell its build, which a re-run from a warm build does not repeat.
const REPLAY_LIMIT: Duration = Duration::from_secs(5);

/// What re-running a cell costs: the time its code ran, else (no phases reported) its wall time.
fn replay_cost<'a>(mut phases: impl Iterator<Item = (&'a str, Duration)>, wall: Duration) -> Duration {
    phases.find(|(name, _)| *name == "Execution").map_or(wall, |(_, took)| took)
}

pub enum Job {
    Execute(JupyterMessage),
    Complete(JupyterMessage),
    Inspect(JupyterMessage),
}

#[derive(Clone)]
pub struct EngineHandle {
    jobs: Sender<Job>,
}

impl EngineHandle {
    pub fn submit(&self, job: Job) {
        let _ = self.jobs.send(job);
    }
}

pub struct Outboxes {
    pub iopub: Outbox,
    pub shell: Outbox,
    pub stdin: Outbox,
}

/// `slot` is evcxr's crate directory when the kernel holds a persistent build slot.
pub fn spawn(shared: Arc<Shared>, out: Outboxes, stdin_replies: Receiver<String>, slot: Option<PathBuf>) -> EngineHandle {
    let (jobs, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new().name("evcxr".into()).spawn(move || Engine::start(shared, out, stdin_replies, slot).run(rx)).expect("spawning the evcxr thread");
    EngineHandle { jobs }
}

/// A cell that ran successfully and may be re-run to restore variables.
struct Replay {
    code: String,
    /// How long its code ran (`replay_cost`).
    took: Duration,
}

struct Engine {
    shared: Arc<Shared>,
    out: Outboxes,
    stdin_replies: Receiver<String>,
    /// `Err` holds why evcxr could not start; every execution then reports it.
    ctx: Result<CommandContext, String>,
    stdout: Option<Pump>,
    stderr: Option<Pump>,
    execution_count: u32,
    replays: Vec<Replay>,
    /// Variables the runtime had before it died; restored right after the failed cell's reply.
    restore: Option<BTreeMap<String, String>>,
    /// What the restore did, shown at the top of the next cell's output.
    notice: Option<String>,
    /// The panic message of the code that ran last, if it panicked.
    last_panic: Option<Vec<String>>,
    /// Whether a `?` in the code that ran last returned an error.
    last_user_error: bool,
    /// The notebook's dependencies, linked once into a shared library (`None`: switched off).
    shared_deps: Option<SharedDeps>,
    /// What to link into it once the current cell has been answered.
    pending_plan: Option<crate::shared_deps::Plan>,
    /// evcxr's crate directory, when the kernel holds a persistent build slot.
    slot: Option<PathBuf>,
    /// The form of the hidden one-build display of final expressions (see `result_display`).
    result_display: Mode,
}

/// What running one piece of code produced.
enum RunResult {
    Ok(EvalOutputs),
    Failed(Failure),
}

struct Failure {
    ename: String,
    evalue: String,
    traceback: Vec<String>,
    /// The runtime child died, so evcxr restarted it and every variable is gone.
    child_died: bool,
}

impl Engine {
    fn start(shared: Arc<Shared>, out: Outboxes, stdin_replies: Receiver<String>, slot: Option<PathBuf>) -> Engine {
        // Before evcxr's first build rewrites the lock without the notebook's dependencies.
        if let Some(slot) = &slot {
            match lock_memory::remember(slot) {
                Ok(kept) => tracing::debug!(kept, "lock file of the slot's last session"),
                Err(error) => tracing::warn!(%error, "could not keep the slot's lock file"),
            }
        }
        let (ctx, stdout, stderr, result_display) = match CommandContext::new() {
            Ok((mut ctx, outputs)) => {
                // Compiled dependencies are cached across kernel sessions, so a restarted
                // kernel links polars instead of building it again.
                if let Some(mb) = workdir::dependency_cache_mb() {
                    let _ = ctx.execute(&format!(":cache {mb}"));
                }
                let result_display = match ctx.execute(&result_display::install()) {
                    Ok(_) => Mode::Own,
                    Err(error) => {
                        tracing::warn!(%error, "could not add the one-build display of final expressions");
                        Mode::Off
                    }
                };
                shared.set_process(ctx.process_handle());
                let stdout = Pump::spawn(StreamKind::Stdout, outputs.stdout, shared.clone(), out.iopub.clone());
                let stderr = Pump::spawn(StreamKind::Stderr, outputs.stderr, shared.clone(), out.iopub.clone());
                (Ok(ctx), Some(stdout), Some(stderr), result_display)
            }
            Err(error) => {
                tracing::error!(%error, "evcxr failed to start");
                (Err(error.to_string()), None, None, Mode::Off)
            }
        };
        // evcxr's dependency cache relinks every crate per cell; it and a shared library
        // would fight over the same crates.
        let shared_deps = if workdir::dependency_cache_mb().is_some() { None } else { SharedDeps::new(slot.as_deref()) };
        Engine {
            shared,
            out,
            stdin_replies,
            ctx,
            stdout,
            stderr,
            execution_count: 0,
            replays: Vec::new(),
            restore: None,
            notice: None,
            last_panic: None,
            last_user_error: false,
            shared_deps,
            pending_plan: None,
            slot,
            result_display,
        }
    }

    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            let request = match &job {
                Job::Execute(m) | Job::Complete(m) | Job::Inspect(m) => m.clone(),
            };
            // evcxr can panic on inputs it does not expect (it embeds rust-analyzer). The
            // request still gets an answer and the kernel keeps serving.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_job(job, &jobs)));
            if let Err(panic) = outcome {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(why, "the evcxr engine panicked");
                self.shared.end_execution();
                self.shared.set_output_parent(None);
                self.out.shell.send(message::error_reply(&request, "KernelError", &format!("the evcxr engine panicked: {why}")));
                self.out.iopub.send(message::status(&request, "idle"));
            }
        }
    }

    fn run_job(&mut self, job: Job, jobs: &Receiver<Job>) {
        {
            match job {
                Job::Execute(msg) => {
                    let queued_behind_failure = self.execute(&msg, jobs);
                    self.abort(queued_behind_failure);
                    self.link_shared_deps();
                    // The failed cell has been answered (an interrupt must stop a cell fast);
                    // now bring the variables back before anything else runs.
                    if let Some(before) = self.restore.take() {
                        self.notice = self.restore_variables(&before);
                    }
                }
                Job::Complete(msg) => self.complete(&msg),
                Job::Inspect(msg) => self.inspect(&msg),
            }
        }
    }

    /// Before each cell: puts the display of final expressions in the form the cell needs
    /// (beside the SDK's once a `:dep` names it; evcxr's own once `:fmt` or `:types` is used).
    fn prepare_result_display(&mut self, code: &str) {
        let wanted = result_display::wanted(self.result_display, code);
        if wanted == self.result_display {
            return;
        }
        let Ok(ctx) = &mut self.ctx else { return };
        match ctx.execute(result_display::module(wanted)) {
            Ok(_) => self.result_display = wanted,
            Err(error) => tracing::warn!(%error, ?wanted, "could not change the display of final expressions"),
        }
    }

    /// After a cell that declared dependencies, and after its reply: link them into the
    /// shared library (see `shared_deps`). Hidden, like the kernel's own set-up.
    fn link_shared_deps(&mut self) {
        let Some(plan) = self.pending_plan.take() else { return };
        let (Ok(ctx), Some(deps)) = (&mut self.ctx, self.shared_deps.as_mut()) else { return };
        let started = Instant::now();
        let outcome = ctx.execute(&plan.code);
        tracing::debug!(took = ?started.elapsed(), ok = outcome.is_ok(), "shared dependency library");
        deps.ran(outcome.is_ok(), || outcome.err().map(|e| e.to_string()).unwrap_or_default());
        self.flush_output();
    }

    /// Runs one execute_request. When it fails under `stop_on_error`, returns the jobs that
    /// were already queued when it failed (taken before its reply goes out, so a request sent
    /// after the client saw the error is not aborted).
    fn execute(&mut self, msg: &JupyterMessage, jobs: &Receiver<Job>) -> Vec<Job> {
        let request = ExecuteRequest::of(msg);
        let ExecuteRequest { code, silent, store_history, stop_on_error, .. } = request.clone();

        self.out.iopub.send(message::status(msg, "busy"));
        // Interruptible from `busy` on: the client may interrupt as soon as it sees the cell
        // start, and what runs before the cell's own build (the hidden display module) is
        // part of the cell.
        self.shared.begin_execution();
        if store_history {
            self.execution_count += 1;
        }
        let count = self.execution_count;
        if !silent {
            self.out.iopub.send(message::child(msg, "execute_input", json!({ "code": code, "execution_count": count })));
            if let Some(notice) = self.notice.take() {
                self.out.iopub.send(message::stream(msg, "stderr", &notice));
            }
        }
        self.shared.set_output_parent(if silent { None } else { Some(msg.clone()) });
        cells::note_running(&msg.metadata);
        let variables_before = self.variables();

        if let Some(path) = introspect::help_query(&code) {
            let payload = self.help_payload(path);
            self.shared.end_execution();
            self.shared.set_output_parent(None);
            if store_history {
                self.shared.history.lock().expect("history lock").record(count, &code);
            }
            self.out.shell.send(message::child(
                msg,
                "execute_reply",
                json!({ "status": "ok", "execution_count": count, "user_expressions": {}, "payload": [payload] }),
            ));
            self.out.iopub.send(message::status(msg, "idle"));
            return Vec::new();
        }
        let (outcome, reply) = self.run_cell(&request, msg, count, &variables_before);
        self.shared.set_output_parent(None);
        self.record_cell(msg, &code, count, outcome, &variables_before, store_history);

        let queued = if outcome == Outcome::Error && stop_on_error { jobs.try_iter().collect() } else { Vec::new() };
        self.out.shell.send(message::child(msg, "execute_reply", reply));
        self.out.iopub.send(message::status(msg, "idle"));
        queued
    }

    /// Runs a cell's code and publishes its value or its error: the outcome and the reply's
    /// content. A cell that succeeds is kept for replay after a runtime restart; one whose
    /// runtime died leaves the variables to restore before the next cell.
    fn run_cell(&mut self, request: &ExecuteRequest, msg: &JupyterMessage, count: u32, variables_before: &BTreeMap<String, String>) -> (Outcome, Value) {
        let (code, silent) = (request.code.as_str(), request.silent);
        let started = Instant::now();
        self.prepare_result_display(code);
        let result = self.run_code(code, msg, request.allow_stdin);
        let interrupted = self.shared.end_execution();
        let took = started.elapsed();
        let result = self.with_panic_check(result, interrupted);

        match result {
            RunResult::Ok(outputs) => {
                let cost = replay_cost(outputs.phases.iter().map(|p| (p.name.as_str(), p.duration)), took);
                self.pending_plan = self.shared_deps.as_mut().and_then(|deps| deps.after_cell(code));
                if !silent && !outputs.content_by_mime_type.is_empty() {
                    self.out.iopub.send(message::child(
                        msg,
                        "execute_result",
                        json!({ "execution_count": count, "data": mime_bundle(outputs), "metadata": {} }),
                    ));
                }
                let user_expressions = self.user_expressions(&request.user_expressions);
                self.replays.push(Replay { code: code.to_owned(), took: cost });
                (Outcome::Ok, json!({ "status": "ok", "execution_count": count, "user_expressions": user_expressions, "payload": [] }))
            }
            RunResult::Failed(failure) => {
                let mut failure = failure;
                if failure.child_died && !variables_before.is_empty() {
                    let names: Vec<&str> = variables_before.keys().map(String::as_str).collect();
                    failure
                        .traceback
                        .push(format!("kiln: the runtime restarted; restoring {} by re-running earlier cells before the next cell runs", names.join(", ")));
                    self.restore = Some(variables_before.clone());
                }
                let reply = json!({
                    "status": "error", "execution_count": count,
                    "ename": failure.ename, "evalue": failure.evalue, "traceback": failure.traceback,
                });
                if !silent {
                    self.out.iopub.send(message::child(
                        msg,
                        "error",
                        json!({ "ename": reply["ename"], "evalue": reply["evalue"], "traceback": reply["traceback"] }),
                    ));
                }
                (Outcome::Error, reply)
            }
        }
    }

    /// What the kernel keeps of a cell once it ran: the variables now alive, its history
    /// entry, and its record in `cells` (tags, outcome, the variables it made or changed).
    fn record_cell(
        &mut self,
        msg: &JupyterMessage,
        code: &str,
        count: u32,
        outcome: Outcome,
        variables_before: &BTreeMap<String, String>,
        store_history: bool,
    ) {
        let variables_after = self.variables();
        self.shared.set_variables(variables_after.clone());
        if store_history {
            self.shared.history.lock().expect("history lock").record(count, code);
        }
        let record = CellRecord {
            cell_id: cells::cell_id(&msg.metadata, count),
            source: code.to_owned(),
            tags: cells::tags(&msg.metadata, code),
            outcome,
            execution_count: count,
            variables: changed_variables(variables_before, &variables_after),
        };
        self.shared.cells.lock().expect("cells lock").record(record);
    }

    /// Runs `code` in evcxr and waits for all its output to be published.
    fn run_code(&mut self, code: &str, parent: &JupyterMessage, allow_stdin: bool) -> RunResult {
        let parent_msg = parent;
        let ctx = match &mut self.ctx {
            Ok(ctx) => ctx,
            Err(why) => {
                return RunResult::Failed(Failure {
                    ename: "KernelError".into(),
                    evalue: format!("the evcxr engine could not start: {why}"),
                    traceback: vec![format!("the evcxr engine could not start: {why}")],
                    child_died: false,
                });
            }
        };
        let stdin_out = self.out.stdin.clone();
        let replies = self.stdin_replies.clone();
        let shared = self.shared.clone();
        let parent = parent.clone();
        let mut callbacks = EvalCallbacks {
            input_reader: &move |request| {
                if !allow_stdin {
                    return String::new();
                }
                while replies.try_recv().is_ok() {}
                stdin_out.send(message::child(&parent, "input_request", json!({ "prompt": request.prompt, "password": request.is_password })));
                loop {
                    match replies.recv_timeout(Duration::from_millis(50)) {
                        Ok(value) => return value,
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) if !shared.interrupted() => {}
                        Err(_) => return String::new(),
                    }
                }
            },
        };
        if crate::shared_deps::declares_deps(code)
            && let Some(slot) = &self.slot
        {
            match lock_memory::restore(slot) {
                Ok(restored) => tracing::debug!(restored, "dependency versions of the slot's last session"),
                Err(error) => tracing::warn!(%error, "could not put back the slot's last lock file"),
            }
        }
        let started = Instant::now();
        let result = ctx.execute_with_callbacks(code, &mut callbacks);
        let ran = started.elapsed();
        if let Some(deps) = self.shared_deps.as_mut()
            && crate::shared_deps::declares_deps(code)
            && let Some(notice) = deps.rebuilt_notice()
        {
            self.out.iopub.send(message::stream(parent_msg, "stderr", &notice));
        }
        self.last_panic = self.flush_output();
        self.last_user_error = self.shared.take_user_error();
        if let Ok(outputs) = &result
            && tracing::enabled!(tracing::Level::DEBUG)
        {
            let phases: Vec<String> = outputs.phases.iter().map(|p| format!("{}={}ms", p.name, p.duration.as_millis())).collect();
            let build = self.slot.as_ref().and_then(|slot| std::fs::read_to_string(slot.join(crate::fast_build::LAST_BUILD_FILE)).ok()).unwrap_or_default();
            tracing::debug!(?ran, flushed = ?started.elapsed(), phases = phases.join(" "), build, "cell ran");
        }
        match result {
            Ok(outputs) => RunResult::Ok(outputs),
            Err(error) => RunResult::Failed(failure_from(error, code)),
        }
    }

    /// Publishes all output so far; returns the lines of a panic message if one was caught.
    fn flush_output(&self) -> Option<Vec<String>> {
        // stdout first: it carries the count of the cell's stderr lines.
        if let Some(pump) = &self.stdout {
            pump.flush(Duration::ZERO, 0);
        }
        let lines = self.shared.take_stderr_lines();
        let pump = self.stderr.as_ref()?;
        // A panic message travels on stderr, which evcxr does not wait for: give it a moment
        // when the runtime told us a panic happened.
        let grace = if self.shared.take_panicked() { Duration::from_millis(300) } else { Duration::ZERO };
        pump.flush(grace, lines)
    }

    fn with_panic_check(&mut self, result: RunResult, interrupted: bool) -> RunResult {
        let panic = self.last_panic.take();
        let user_error = std::mem::take(&mut self.last_user_error);
        match (result, panic) {
            (RunResult::Failed(mut failure), _) if interrupted => {
                failure.ename = "Interrupted".into();
                failure.evalue = "the cell was interrupted".into();
                failure.traceback = vec!["Interrupted: the cell was interrupted".into()];
                RunResult::Failed(failure)
            }
            (RunResult::Ok(_), Some(lines)) => {
                let evalue = lines.get(1).cloned().unwrap_or_else(|| "panic".into());
                RunResult::Failed(Failure { ename: "Panic".into(), evalue, traceback: lines, child_died: false })
            }
            // evcxr prints the error on stderr and calls the cell a success; it is not (and
            // the variables the cell defined are gone).
            (RunResult::Ok(_), None) if user_error => {
                let evalue = "a `?` returned the error printed above; the variables this cell defined were not kept".to_owned();
                RunResult::Failed(Failure { ename: "Error".into(), traceback: vec![format!("Error: {evalue}")], evalue, child_died: false })
            }
            (result, _) => result,
        }
    }

    /// After the runtime child died (interrupt, segfault, `exit`), evcxr restarts it empty.
    /// Re-run the quick cells that succeeded before, silently, and say what came back.
    /// Items (fns, structs, `use`) survive a restart; only variables need this.
    fn restore_variables(&mut self, before: &BTreeMap<String, String>) -> Option<String> {
        self.shared.set_output_parent(None);
        let mut rerun = Vec::new();
        let mut skipped = 0;
        let replays = std::mem::take(&mut self.replays);
        let mut kept = Vec::new();
        for (index, replay) in replays.into_iter().enumerate() {
            if replay.took > REPLAY_LIMIT {
                skipped += 1;
                continue;
            }
            let Ok(ctx) = &mut self.ctx else { break };
            self.shared.begin_execution();
            let ok = ctx.execute(&replay.code).is_ok();
            let interrupted = self.shared.end_execution();
            self.flush_output();
            if interrupted {
                break;
            }
            if ok {
                rerun.push(index + 1);
                kept.push(replay);
            }
        }
        self.replays = kept;
        let now = self.variables();
        let restored: Vec<&str> = before.keys().filter(|k| now.contains_key(*k)).map(String::as_str).collect();
        let lost: Vec<&str> = before.keys().filter(|k| !now.contains_key(*k)).map(String::as_str).collect();
        let mut notice = format!("kiln: the runtime restarted, so its variables were gone. Re-ran {} earlier cell(s) to restore them.\n", rerun.len());
        if !restored.is_empty() {
            notice.push_str(&format!("kiln: restored: {}\n", restored.join(", ")));
        }
        if !lost.is_empty() {
            notice.push_str(&format!("kiln: lost: {}", lost.join(", ")));
            if skipped > 0 {
                notice.push_str(&format!(" ({skipped} cell(s) took over {}s and were not re-run; run them again)", REPLAY_LIMIT.as_secs()));
            }
            notice.push('\n');
        }
        self.shared.set_variables(now);
        Some(notice)
    }

    fn user_expressions(&mut self, requested: &Value) -> Value {
        let mut results = Map::new();
        let Some(requested) = requested.as_object() else { return Value::Object(results) };
        let previous = self.shared.output_parent();
        self.shared.set_output_parent(None);
        for (name, expr) in requested {
            let expr = expr.as_str().unwrap_or_default();
            let value = match &mut self.ctx {
                Ok(ctx) => match ctx.execute(&format!("&({expr})")) {
                    Ok(outputs) => json!({ "status": "ok", "data": mime_bundle(outputs), "metadata": {} }),
                    Err(error) => {
                        let f = failure_from(error, expr);
                        json!({ "status": "error", "ename": f.ename, "evalue": f.evalue, "traceback": f.traceback })
                    }
                },
                Err(why) => json!({ "status": "error", "ename": "KernelError", "evalue": why, "traceback": [] }),
            };
            results.insert(name.clone(), value);
        }
        self.flush_output();
        self.shared.set_output_parent(previous);
        Value::Object(results)
    }

    /// Under `stop_on_error`, executions queued behind a failed cell are answered `aborted`;
    /// other requests among them are served.
    fn abort(&mut self, queued: Vec<Job>) {
        let mut later = Vec::new();
        for job in queued {
            match job {
                Job::Execute(msg) => {
                    self.out.iopub.send(message::status(&msg, "busy"));
                    let code = serde_json::to_value(&msg.content).unwrap_or_default()["code"].as_str().unwrap_or_default().to_owned();
                    self.shared.cells.lock().expect("cells lock").record(CellRecord {
                        cell_id: cells::cell_id(&msg.metadata, self.execution_count),
                        tags: cells::tags(&msg.metadata, &code),
                        source: code,
                        outcome: Outcome::Aborted,
                        execution_count: self.execution_count,
                        variables: BTreeMap::new(),
                    });
                    self.out.shell.send(message::child(&msg, "execute_reply", json!({ "status": "aborted", "execution_count": self.execution_count })));
                    self.out.iopub.send(message::status(&msg, "idle"));
                }
                other => later.push(other),
            }
        }
        for job in later {
            match job {
                Job::Complete(msg) => self.complete(&msg),
                Job::Inspect(msg) => self.inspect(&msg),
                Job::Execute(_) => {}
            }
        }
    }

    fn complete(&mut self, msg: &JupyterMessage) {
        self.out.iopub.send(message::status(msg, "busy"));
        let content = serde_json::to_value(&msg.content).unwrap_or_default();
        let code = content["code"].as_str().unwrap_or_default();
        let cursor = content["cursor_pos"].as_u64().unwrap_or(0) as usize;
        let byte_pos = introspect::byte_offset(code, cursor);
        let mut reply = json!({
            "status": "ok", "matches": [], "cursor_start": cursor, "cursor_end": cursor,
            "metadata": {},
        });
        if let Ok(ctx) = &mut self.ctx
            && let Ok(completions) = ctx.completions(code, byte_pos)
        {
            let mut matches: Vec<String> = Vec::new();
            let mut types = Vec::new();
            for c in &completions.completions {
                let text = introspect::insertable(&c.code).to_owned();
                if result_display::is_hidden_completion(&text) {
                    continue;
                }
                if !matches.contains(&text) {
                    types.push(json!({ "text": text, "type": c.kind, "signature": c.label }));
                    matches.push(text);
                }
            }
            reply["matches"] = json!(matches);
            reply["cursor_start"] = json!(introspect::char_offset(code, completions.start_offset));
            reply["cursor_end"] = json!(introspect::char_offset(code, completions.end_offset));
            reply["metadata"] = json!({ "_jupyter_types_experimental": types });
        }
        self.out.shell.send(message::child(msg, "complete_reply", reply));
        self.out.iopub.send(message::status(msg, "idle"));
    }

    fn inspect(&mut self, msg: &JupyterMessage) {
        self.out.iopub.send(message::status(msg, "busy"));
        let content = serde_json::to_value(&msg.content).unwrap_or_default();
        let code = content["code"].as_str().unwrap_or_default();
        let cursor = content["cursor_pos"].as_u64().unwrap_or(0) as usize;
        // Hover looks at the expression ending at the cursor: extend it to the end of the word.
        let byte_pos = introspect::word_end(code, introspect::byte_offset(code, cursor));
        let mut reply = json!({ "status": "ok", "found": false, "data": {}, "metadata": {} });
        if let Ok(ctx) = &mut self.ctx
            && let Ok((plain, html)) = ctx.hover_at(code, byte_pos)
            && !plain.trim().is_empty()
        {
            reply["found"] = json!(true);
            reply["data"] = json!({ "text/plain": plain, "text/html": html });
        }
        self.out.shell.send(message::child(msg, "inspect_reply", reply));
        self.out.iopub.send(message::status(msg, "idle"));
    }

    /// A pager payload with the documentation of `path` (`?path` in a cell).
    fn help_payload(&mut self, path: &str) -> Value {
        let found = match &mut self.ctx {
            Ok(ctx) => ctx.hover_at(path, path.len()).ok().filter(|(plain, _)| !plain.trim().is_empty()),
            Err(_) => None,
        };
        let data = match found {
            Some((plain, html)) => json!({ "text/plain": plain, "text/html": html }),
            None => json!({ "text/plain": format!("No documentation found for `{path}`.") }),
        };
        json!({ "source": "page", "data": data, "start": 0 })
    }

    fn variables(&self) -> BTreeMap<String, String> {
        match &self.ctx {
            Ok(ctx) => ctx.variables_and_types().map(|(n, t)| (n.to_owned(), t.to_owned())).collect(),
            Err(_) => BTreeMap::new(),
        }
    }
}

/// What an execute_request asks, with Jupyter's defaults for what it leaves out.
#[derive(Clone)]
struct ExecuteRequest {
    code: String,
    silent: bool,
    /// Counted and kept in history (never for a silent request).
    store_history: bool,
    allow_stdin: bool,
    stop_on_error: bool,
    user_expressions: Value,
}

impl ExecuteRequest {
    fn of(msg: &JupyterMessage) -> ExecuteRequest {
        let content = serde_json::to_value(&msg.content).unwrap_or_default();
        let silent = content["silent"].as_bool().unwrap_or(false);
        ExecuteRequest {
            code: content["code"].as_str().unwrap_or_default().to_owned(),
            silent,
            store_history: content["store_history"].as_bool().unwrap_or(true) && !silent,
            allow_stdin: content["allow_stdin"].as_bool().unwrap_or(false),
            stop_on_error: content["stop_on_error"].as_bool().unwrap_or(true),
            user_expressions: content["user_expressions"].clone(),
        }
    }
}

/// Variables that a cell defined or whose type it changed.
fn changed_variables(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    after.iter().filter(|(name, ty)| before.get(*name) != Some(*ty)).map(|(n, t)| (n.clone(), t.clone())).collect()
}

/// The data of an execute_result: always with a `text/plain` fallback.
fn mime_bundle(outputs: EvalOutputs) -> Value {
    Value::Object(kiln_protocol::markers::evcxr_bundle(outputs.content_by_mime_type))
}

fn failure_from(error: evcxr::Error, code: &str) -> Failure {
    match error {
        evcxr::Error::CompilationErrors(errors) => {
            let evalue = errors.first().map(|e| e.message()).unwrap_or_else(|| "compilation failed".into());
            let traceback = errors.iter().map(|e| render_diagnostic(e, code)).collect();
            Failure { ename: "CompilationError".into(), evalue, traceback, child_died: false }
        }
        evcxr::Error::SubprocessTerminated(why) => {
            Failure { ename: "RuntimeCrash".into(), evalue: why.trim().to_owned(), traceback: vec![format!("RuntimeCrash: {}", why.trim())], child_died: true }
        }
        evcxr::Error::TypeRedefinedVariablesLost(vars) => Failure {
            ename: "VariablesLost".into(),
            evalue: format!("a type was redefined, so these variables were lost: {}", vars.join(", ")),
            traceback: vec![format!("VariablesLost: {}", vars.join(", "))],
            child_died: false,
        },
        evcxr::Error::Message(m) => Failure { ename: "Error".into(), evalue: m.clone(), traceback: vec![m], child_died: false },
    }
}

/// One compiler diagnostic in rustc's layout, located by the cell's own line numbers.
pub fn render_diagnostic(error: &evcxr::CompilationError, code: &str) -> String {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = match error.code() {
        Some(c) => format!("{}[{c}]: {}", error.level(), error.message()),
        None => format!("{}: {}", error.level(), error.message()),
    };
    for spanned in error.spanned_messages().iter().chain(error.help_spanned()) {
        let Some(span) = &spanned.span else {
            if !spanned.label.is_empty() {
                out.push_str(&format!("\n  = {}", spanned.label));
            }
            continue;
        };
        let width = span.start_line.to_string().len();
        out.push_str(&format!("\n{:width$}--> cell:{}:{}", "", span.start_line, span.start_column));
        if let Some(text) = lines.get(span.start_line.saturating_sub(1)) {
            let caret_len = if span.end_line == span.start_line { span.end_column.saturating_sub(span.start_column).max(1) } else { 1 };
            out.push_str(&format!(
                "\n{:width$} |\n{} | {}\n{:width$} | {}{} {}",
                "",
                span.start_line,
                text,
                "",
                " ".repeat(span.start_column.saturating_sub(1)),
                "^".repeat(caret_len),
                spanned.label
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_judged_by_how_long_its_code_ran() {
        let ms = Duration::from_millis;
        // (evcxr's phases, the cell's wall time, what a re-run costs)
        type Case<'a> = (&'a [(&'a str, Duration)], Duration, Duration);
        let cases: &[Case] = &[
            // A first cell: evcxr's warm-up and the build in its wall time, its code instant.
            (&[("Code analysis", ms(4_000)), ("Final compile", ms(3_000)), ("Execution", ms(1))], ms(7_500), ms(1)),
            // A training loop: its code ran for minutes.
            (&[("Final compile", ms(200)), ("Execution", ms(600_000))], ms(600_300), ms(600_000)),
            // No phases reported: the wall time is all there is.
            (&[], ms(900), ms(900)),
        ];
        for (phases, wall, expected) in cases {
            assert_eq!(replay_cost(phases.iter().copied(), *wall), *expected, "{phases:?}");
        }
        assert!(replay_cost([("Execution", ms(1))].into_iter(), ms(8_000)) <= REPLAY_LIMIT);
    }
}

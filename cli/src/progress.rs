//! Progress on long work, in one of two forms. On a terminal: one spinner per step with what
//! it is doing, then a line saying what it did and how long it took (drawn on stderr only
//! when it is a terminal; the summary lines are printed either way, so logs show the steps
//! too). For programs (`--progress json`, what the JupyterLab extension reads): one JSON
//! event a line on stdout, so a reader never has to parse the human form.
//!
//! An event: `{"event":"phase","phase":"compile","component":"infer","state":"running",
//! "progress":0.42,"message":"…","seconds":1.5}` — `state` is `started`, `running`, `done`
//! or `failed`; `component`, `progress` and `message` only when known. The command's own
//! events (its result, its problems) share the stream; see where each command writes them.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Which form progress takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Spinners and summary lines on stderr.
    #[default]
    Terminal,
    /// One JSON event a line on stdout.
    Json,
}

pub struct Step {
    bar: Option<ProgressBar>,
    name: String,
    component: Option<String>,
    started: Instant,
}

impl Step {
    /// A step drawn on the terminal.
    pub fn start(name: &str) -> Step {
        Step::with(Format::Terminal, name, None)
    }

    /// A step in `format`; `component` names the part it is about, when it is about one.
    pub fn with(format: Format, name: &str, component: Option<&str>) -> Step {
        let bar = (format == Format::Terminal).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]").expect("a valid template"));
            bar.set_prefix(match component {
                Some(component) => format!("{name} {component}"),
                None => name.to_owned(),
            });
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let step = Step { bar, name: name.to_owned(), component: component.map(str::to_owned), started: Instant::now() };
        step.event("started", None, None);
        step
    }

    pub fn message(&self, text: impl Into<String>) {
        let text = text.into();
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => self.event("running", None, Some(&text)),
        }
    }

    pub fn done(self, what: &str) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                eprintln!("✓ {:<10} {what} ({:.1} s)", self.label(), self.started.elapsed().as_secs_f64());
            }
            None => self.event("done", None, Some(what)),
        }
    }

    pub fn fail(self) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                eprintln!("✗ {:<10} failed after {:.1} s", self.label(), self.started.elapsed().as_secs_f64());
            }
            None => self.event("failed", None, None),
        }
    }

    fn label(&self) -> String {
        match &self.component {
            Some(component) => format!("{} {component}", self.name),
            None => self.name.clone(),
        }
    }

    /// A JSON event, when this step is not drawn on a terminal.
    fn event(&self, state: &str, progress: Option<f64>, message: Option<&str>) {
        if self.bar.is_some() {
            return;
        }
        let mut event = serde_json::json!({"event": "phase", "phase": self.name, "state": state, "seconds": round(self.started.elapsed().as_secs_f64())});
        if let Some(component) = &self.component {
            event["component"] = component.as_str().into();
        }
        if let Some(progress) = progress {
            event["progress"] = round(progress).into();
        }
        if let Some(message) = message {
            event["message"] = message.into();
        }
        emit(&event);
    }
}

/// Writes one event line on stdout, whole, and flushes it so a reader sees it at once.
pub fn emit(event: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A reader that went away is the caller's business; the work goes on.
    let _ = writeln!(out, "{event}").and_then(|()| out.flush());
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A cargo run's progress on a step: a count on the spinner, a fraction in events (below 1
/// until the step is done: the total is an estimate).
impl kiln_componentize::cargo::Progress for Step {
    fn compiled(&mut self, name: &str, done: usize, total: Option<usize>) {
        let counted = match total {
            Some(total) => format!("{done}/~{total} crates · {name}"),
            None => format!("{done} crates · {name}"),
        };
        match &self.bar {
            Some(bar) => bar.set_message(counted),
            None => {
                let fraction = total.filter(|t| *t > 0).map(|t| (done as f64 / t as f64).min(0.99));
                self.event("running", fraction, Some(&counted));
            }
        }
    }
}

//! Progress on long work: one spinner per step with what it is doing, then a line saying
//! what it did and how long it took. Drawn on stderr only when it is a terminal; the
//! summary lines are printed either way, so logs show the steps too.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Step {
    bar: ProgressBar,
    name: String,
    started: Instant,
}

impl Step {
    pub fn start(name: &str) -> Step {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]").expect("a valid template"));
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Step { bar, name: name.to_owned(), started: Instant::now() }
    }

    pub fn message(&self, text: impl Into<String>) {
        self.bar.set_message(text.into());
    }

    pub fn done(self, what: &str) {
        self.bar.finish_and_clear();
        eprintln!("✓ {:<10} {what} ({:.1} s)", self.name, self.started.elapsed().as_secs_f64());
    }

    pub fn fail(self) {
        self.bar.finish_and_clear();
        eprintln!("✗ {:<10} failed after {:.1} s", self.name, self.started.elapsed().as_secs_f64());
    }
}

/// A cargo run's progress on a step's spinner.
impl kiln_componentize::cargo::Progress for Step {
    fn compiled(&mut self, name: &str, done: usize) {
        self.bar.set_message(format!("{done} crates · {name}"));
    }
}

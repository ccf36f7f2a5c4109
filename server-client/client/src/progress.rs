//! A progress bar that updates in place in the notebook.

use std::time::{Duration, Instant};

use crate::display::{self, DisplayHandle, MimeBundle};

/// Redraw at most this often: a tight training loop must not flood the frontend.
const REDRAW: Duration = Duration::from_millis(100);
/// Outside the kernel, print a line at most this often.
const LOG_EVERY: Duration = Duration::from_secs(2);

/// A live progress bar: one output that is replaced in place (`update_display_data`), showing
/// the count, the rate, the time left and an optional message (e.g. the last loss).
///
/// ```no_run
/// let mut bar = kiln::Progress::new(100, "epochs");
/// for epoch in 0..100 {
///     bar.set_message(format!("loss {:.3}", 1.0 / (epoch + 1) as f64));
///     bar.inc(1);
/// }
/// bar.finish();
/// ```
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    message: String,
    started: Instant,
    drawn: Option<Instant>,
    handle: Option<DisplayHandle>,
}

impl Progress {
    pub fn new(total: u64, label: impl Into<String>) -> Self {
        let mut bar = Progress { label: label.into(), total, done: 0, message: String::new(), started: Instant::now(), drawn: None, handle: None };
        bar.draw(true);
        bar
    }

    pub fn inc(&mut self, n: u64) {
        self.done = (self.done + n).min(self.total);
        self.draw(self.done == self.total);
    }

    pub fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        self.draw(self.done == self.total);
    }

    pub fn set_message(&mut self, message: impl Into<String>) {
        self.message = message.into();
    }

    pub fn position(&self) -> u64 {
        self.done
    }

    pub fn finish(&mut self) {
        self.draw(true);
    }

    fn draw(&mut self, force: bool) {
        let every = if display::in_kernel() { REDRAW } else { LOG_EVERY };
        if !force && self.drawn.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.drawn = Some(Instant::now());
        let bundle = self.render();
        match &self.handle {
            Some(handle) => handle.update(bundle),
            None => self.handle = Some(display::show(bundle)),
        }
    }

    fn render(&self) -> MimeBundle {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 { self.done as f64 / elapsed } else { 0.0 };
        let eta = if rate > 0.0 { (self.total - self.done) as f64 / rate } else { 0.0 };
        let pct = if self.total == 0 { 100.0 } else { 100.0 * self.done as f64 / self.total as f64 };
        let stats = format!("{}/{} [{:.1}s<{:.1}s, {:.1}/s]", self.done, self.total, elapsed, eta, rate);
        let message = if self.message.is_empty() { String::new() } else { format!(" {}", self.message) };
        let filled = (pct / 5.0).round() as usize;
        let text = format!("{} {:>3.0}% |{}{}| {stats}{message}", self.label, pct, "█".repeat(filled), " ".repeat(20 - filled.min(20)));
        let html = format!(
            "<div class=\"kiln-progress\"><span>{label}</span> <progress value=\"{done}\" max=\"{total}\" style=\"width:40ex\"></progress> <span>{pct:.0}% {stats}{message}</span></div>",
            label = self.label,
            done = self.done,
            total = self.total.max(1),
        );
        MimeBundle::html(html, text)
    }
}

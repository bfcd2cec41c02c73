//! Progress bars on stderr while a run ramps up or waits (indicatif).
//!
//! Bars draw only on a terminal (indicatif hides them otherwise), so CI logs and the smoke test
//! stay clean. A `hold --workers` child hides its bars: its parent draws one bar for all of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static HIDDEN: AtomicBool = AtomicBool::new(false);

/// Hides every bar made after this call.
pub fn hide() {
    HIDDEN.store(true, Ordering::Relaxed);
}

/// A bar of `len` steps, e.g. connections being opened.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>14} [{bar:40.cyan/blue}] {pos:>6}/{len:6} {per_sec:>12} {elapsed_precise}",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A bar that counts seconds of a timed phase, with a live message (rates, counts).
pub fn seconds(secs: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(secs), target());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:40.green/blue}] {pos:>4}/{len}s {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// A spinner for a wait of unknown length (draining, setting up).
pub fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("progress template"),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn target() -> ProgressDrawTarget {
    if HIDDEN.load(Ordering::Relaxed) {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

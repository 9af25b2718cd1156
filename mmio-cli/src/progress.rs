//! Progress on stderr while reading large traces (only when stderr is a terminal).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Counts events read; shows a spinner with the count and rate after a moment.
pub struct Progress {
    bar: Option<ProgressBar>,
    seen: u64,
}

impl Progress {
    pub fn new(what: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {msg}: {pos} events ({per_sec})")
            {
                bar.set_style(style);
            }
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, seen: 0 }
    }

    /// One more event; the display is updated every 64 Ki events.
    pub fn tick(&mut self) {
        self.seen += 1;
        if self.seen.is_multiple_of(65_536) {
            if let Some(bar) = &self.bar {
                bar.set_position(self.seen);
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

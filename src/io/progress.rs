//! Progress of long runs: an indicatif bar on a terminal, plain log lines (no colour codes)
//! every few seconds when stderr is not a terminal (CI logs, files).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    done: u64,
    last_log: Instant,
    every: Duration,
    start: Instant,
    skipped: u64,
    /// what is counted, singular ("batch", "iteration")
    unit: &'static str,
}

impl Progress {
    /// Counts training batches.
    pub fn new(label: &str, total: u64) -> Self {
        Self::counting(label, total, ("batch", "batches"))
    }

    /// Counts `unit` (singular, plural).
    pub fn counting(label: &str, total: u64, unit: (&'static str, &'static str)) -> Self {
        let (unit, units) = unit;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            let style = ProgressStyle::with_template(&format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {units} {{msg}} ETA {{eta}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(label.to_string());
            b
        });
        Self {
            bar,
            label: label.into(),
            total,
            done: 0,
            // the first update is logged at once: the run shows it has started
            last_log: Instant::now()
                .checked_sub(Duration::from_secs(10))
                .unwrap_or_else(Instant::now),
            every: Duration::from_secs(10),
            start: Instant::now(),
            skipped: 0,
            unit,
        }
    }

    /// One more batch: `bits` is its log-likelihood rate, `cells_per_s` the step throughput.
    pub fn inc(&mut self, bits: f64, cells_per_s: f64) {
        let msg = format!("{bits:.4} bit/px, {:.0}k cells/s", cells_per_s / 1e3);
        self.set(self.done + 1, &msg);
    }

    /// `done` units finished; `msg` says how it goes. The ETA assumes all `total` are needed
    /// (an upper bound where the run may stop early).
    pub fn set(&mut self, done: u64, msg: &str) {
        self.done = done;
        match &self.bar {
            Some(b) => {
                b.set_position(self.done);
                b.set_message(msg.to_string());
            }
            None => {
                if self.last_log.elapsed() >= self.every || self.done == self.total {
                    self.last_log = Instant::now();
                    let eta = eta_seconds(
                        self.start.elapsed().as_secs_f64(),
                        self.done.saturating_sub(self.skipped),
                        self.total.saturating_sub(self.done),
                    );
                    eprintln!(
                        "{}: {} {}/{}: {msg}, ETA {:.0} s",
                        self.label, self.unit, self.done, self.total, eta
                    );
                }
            }
        }
    }

    /// Marks `n` batches as already done (a resumed run).
    pub fn skip(&mut self, n: u64) {
        self.done += n;
        self.skipped += n;
        if let Some(b) = &self.bar {
            b.set_position(self.done);
        }
    }

    /// A line of text that does not break the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Seconds as `1 h 02 min`, `3 min 05 s` or `12 s`.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// Seconds left at this run's pace: `ran` units took `elapsed` seconds (units a resumed run
/// skipped do not count), `left` remain.
fn eta_seconds(elapsed: f64, ran: u64, left: u64) -> f64 {
    elapsed / ran.max(1) as f64 * left as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_counts_only_this_runs_units() {
        // a run resumed at 900 of 1000 that did 10 units in 20 s: 90 left at 2 s each
        let mut p = Progress::counting("t", 1000, ("sweep", "sweeps"));
        p.skip(900);
        p.done = 910;
        assert_eq!(
            eta_seconds(20.0, p.done - p.skipped, p.total - p.done),
            180.0
        );
        // nothing run yet: no division by zero
        assert_eq!(eta_seconds(0.0, 0, 5), 0.0);
    }
}

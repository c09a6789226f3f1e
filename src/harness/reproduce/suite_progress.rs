//! Where a `ride reproduce` run stands: which unit of work (a table row, a sweep's cells, an
//! inpainting experiment) of how many, the time so far and a rough ETA (the mean time of the
//! units done so far, reused rows included, times the units left).

use crate::io::progress::human;
use std::time::Instant;

pub struct SuiteProgress {
    total: usize,
    done: usize,
    start: Instant,
}

impl SuiteProgress {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            start: Instant::now(),
        }
    }

    /// Announces the next `units` units (`what` names them) and counts them as done.
    pub fn next(&mut self, units: usize, what: &str) {
        let secs = self.start.elapsed().as_secs_f64();
        let eta = if self.done > 0 {
            format!(
                ", ETA {}",
                human(secs / self.done as f64 * self.total.saturating_sub(self.done) as f64)
            )
        } else {
            String::new()
        };
        let range = if units > 1 {
            format!("{}–{}", self.done + 1, self.done + units)
        } else {
            format!("{}", self.done + 1)
        };
        eprintln!(
            "[reproduce] {range} of {} units: {what}; {} so far{eta}",
            self.total,
            human(secs)
        );
        self.done += units;
    }
}

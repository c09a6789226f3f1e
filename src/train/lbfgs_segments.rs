//! L-BFGS that survives being killed: the run goes in segments of a fixed number of iterations,
//! each a fresh L-BFGS (empty memory) from where the last one ended, and after every segment
//! the parameters and the early-stopping state are saved. A killed run resumes at the last
//! segment's end and finishes exactly as an uninterrupted one would, because the segments are
//! the same either way. Used where one L-BFGS run takes hours (the MCGSM baseline).

use crate::io::files::{read_bounded, write_atomic};
use crate::train::fnv1a_hex;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Where and how often a segmented L-BFGS run saves itself.
#[derive(Clone, Debug)]
pub struct Segments {
    /// the state file (JSON), removed when the run has finished
    pub path: PathBuf,
    /// iterations per segment (≥ 1)
    pub every: u64,
    /// what else the start depends on (config hash, stage, numerics version): part of the key
    pub context: String,
}

/// A segmented run between two segments.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct SegmentState {
    /// the start it belongs to: hash of the start parameters, the cell counts and the settings
    pub key: String,
    /// iterations done
    pub done: u64,
    /// parameters after the last segment
    pub param: Vec<f64>,
    /// best held-out cost checked so far and its parameters
    pub best_valid: Option<(f64, Vec<f64>)>,
    /// without held-out cells: the best training cost so far and its parameters
    pub best_train: Option<(f64, Vec<f64>)>,
    /// (iteration, held-out cost) of every check
    pub checks: Vec<(u64, f64)>,
    /// why the run ended, once it has
    pub finished: Option<String>,
    /// machine time spent so far (s)
    pub seconds: f64,
}

/// The key of a run: its start parameters, cell counts and settings.
pub(crate) fn run_key(p0: &[f64], rows: (usize, usize), settings: &str) -> String {
    let mut bytes: Vec<u8> = p0.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes.extend(format!("{rows:?}/{settings}").bytes());
    fnv1a_hex(&bytes)
}

impl Segments {
    /// The saved state of the run with `key`, if there is one; a state of another run (other
    /// start, settings or config) is reported and ignored.
    pub(crate) fn load(&self, key: &str, say: &dyn Fn(&str)) -> Result<Option<SegmentState>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let bytes = read_bounded(&self.path, 1 << 31, "L-BFGS state")?;
        let state: SegmentState = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not an L-BFGS state file", self.path.display()))?;
        if state.key != key {
            say(&format!(
                "ignoring {}: it belongs to another L-BFGS run (key {} ≠ {key})",
                self.path.display(),
                state.key
            ));
            return Ok(None);
        }
        say(&format!(
            "resuming L-BFGS after {} iterations from {}",
            state.done,
            self.path.display()
        ));
        Ok(Some(state))
    }

    pub(crate) fn save(&self, state: &SegmentState) -> Result<()> {
        write_atomic(&self.path, &serde_json::to_vec(state)?)
    }

    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `Some((cost, param))` only for a finite cost (JSON has no infinities).
pub(crate) fn finite_pair(cost: f64, param: &[f64]) -> Option<(f64, Vec<f64>)> {
    cost.is_finite().then(|| (cost, param.to_vec()))
}

/// The state file of fine-tuning run `stream` in `out`.
pub(crate) fn state_path(out: &Path, stream: u64) -> PathBuf {
    out.join(format!("lbfgs_state_{stream}.json"))
}

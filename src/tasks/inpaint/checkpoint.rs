//! A Metropolis–Hastings chain's state between sweeps, saved so that a killed run resumes the
//! chain where it stopped (the exact-target chains run for hours) and ends with the same fill,
//! bit for bit, as an uninterrupted run.

use crate::io::files::write_atomic;
use anyhow::{Context, Result};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where and how often a chain saves its state ([`super::InpaintOptions::checkpoint`]).
#[derive(Clone, Debug)]
pub struct Checkpointing {
    pub path: PathBuf,
    /// Save after a sweep when this many seconds have passed since the last save (0: every
    /// sweep); the state after the last sweep is always saved.
    pub every_seconds: f64,
}

/// The chain after `sweeps_done` sweeps. Floats are kept as their bits: exact, and the
/// candidates' log-likelihoods may be −∞.
#[derive(Serialize, Deserialize)]
pub(super) struct ChainState {
    /// what the chain depends on ([`super::fingerprint`]): a state of another chain is ignored
    fingerprint: String,
    sweeps_done: usize,
    rng: Xoshiro256PlusPlus,
    cur: Vec<u64>,
    candidate_logliks: Vec<u64>,
    chosen: usize,
    acceptance: Vec<u64>,
    hole_bits: Vec<u64>,
    init_seconds: u64,
    sweep_seconds: Vec<u64>,
    trace: Option<Vec<Vec<u64>>>,
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn floats(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&b| f64::from_bits(b)).collect()
}

/// The chain's values, as [`super::inpaint_with_hooks`] keeps them.
pub(super) struct ChainValues<'a> {
    pub cur: &'a [f64],
    pub candidate_logliks: &'a [f64],
    pub acceptance: &'a [f64],
    pub hole_bits: &'a [f64],
    pub init_seconds: f64,
    pub sweep_seconds: &'a [f64],
    pub trace: Option<&'a Vec<Vec<f64>>>,
}

/// A chain restored from its saved state, as [`super::inpaint_with_hooks`] continues it.
pub(super) struct Restored {
    pub sweeps_done: usize,
    pub rng: Xoshiro256PlusPlus,
    pub cur: Vec<f64>,
    pub candidate_logliks: Vec<f64>,
    pub chosen: usize,
    pub acceptance: Vec<f64>,
    pub hole_bits: Vec<f64>,
    pub init_seconds: f64,
    pub sweep_seconds: Vec<f64>,
    pub trace: Option<Vec<Vec<f64>>>,
}

impl ChainState {
    pub fn new(
        fingerprint: &str,
        sweeps_done: usize,
        rng: &Xoshiro256PlusPlus,
        chosen: usize,
        v: ChainValues,
    ) -> Self {
        Self {
            fingerprint: fingerprint.into(),
            sweeps_done,
            rng: rng.clone(),
            cur: bits(v.cur),
            candidate_logliks: bits(v.candidate_logliks),
            chosen,
            acceptance: bits(v.acceptance),
            hole_bits: bits(v.hole_bits),
            init_seconds: v.init_seconds.to_bits(),
            sweep_seconds: bits(v.sweep_seconds),
            trace: v.trace.map(|t| t.iter().map(|s| bits(s)).collect()),
        }
    }

    pub fn restore(self) -> Restored {
        Restored {
            sweeps_done: self.sweeps_done,
            rng: self.rng,
            cur: floats(&self.cur),
            candidate_logliks: floats(&self.candidate_logliks),
            chosen: self.chosen,
            acceptance: floats(&self.acceptance),
            hole_bits: floats(&self.hole_bits),
            init_seconds: f64::from_bits(self.init_seconds),
            sweep_seconds: floats(&self.sweep_seconds),
            trace: self
                .trace
                .as_ref()
                .map(|t| t.iter().map(|s| floats(s)).collect()),
        }
    }

    /// The saved state at `path` if it is one of this chain (same fingerprint, at most
    /// `sweeps` sweeps done, consistent lengths); None otherwise (no file, another chain's,
    /// unreadable: the chain starts over, with a warning for the last two).
    pub fn load(path: &Path, fingerprint: &str, sweeps: usize, crop_len: usize) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let s: Self = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "{}: unreadable chain state ({e}); starting over",
                    path.display()
                );
                return None;
            }
        };
        let consistent = s.cur.len() == crop_len
            && s.hole_bits.len() == s.sweeps_done + 1
            && s.acceptance.len() == s.sweeps_done
            && s.sweep_seconds.len() == s.sweeps_done
            && s.chosen < s.candidate_logliks.len().max(1);
        if s.fingerprint != fingerprint || s.sweeps_done > sweeps || !consistent {
            eprintln!(
                "{}: the saved chain state is of another chain or run; starting over",
                path.display()
            );
            return None;
        }
        Some(s)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec(self)?)
            .with_context(|| format!("saving the chain state {}", path.display()))
    }
}

/// When the next save is due.
pub(super) struct SaveClock {
    last: Instant,
}

impl SaveClock {
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    /// True (and the clock restarts) when `every_seconds` have passed or `last` is set.
    pub fn due(&mut self, every_seconds: f64, last: bool) -> bool {
        if last || self.last.elapsed().as_secs_f64() >= every_seconds {
            self.last = Instant::now();
            true
        } else {
            false
        }
    }
}

//! A native dead-leaves generator (docs/MODEL.md §7): an exact sample of the stationary occlusion model
//! with disks of 1/r³ radii and Uniform[0,1) intensities.
//!
//! # Model
//!
//! Disks fall one after another onto an infinite plane; each new disk hides what lies beneath. The
//! image is the stationary limit. Sampling **front to back** ("perfect" sampling, as in the
//! `deadleaves` package): the first disk drawn is the one on top; every later disk paints only the
//! pixels not yet covered by an earlier one; the process stops when every pixel is covered. This
//! gives the stationary distribution exactly, with no burn-in.
//!
//! - Centres: uniform over the image extended by `max_radius` on every side, i.e. over
//!   `[-max_radius, size + max_radius)²`; every disk that can touch a pixel centre has its centre
//!   there, so this equals a uniform centre on the whole plane restricted to relevant disks.
//! - Radii: density ∝ r⁻³ on `[min_radius, max_radius]` ([`DeadLeaves::sample_radius`]).
//! - Intensities: Uniform[0,1).
//!
//! Pixel `(i, j)` (row `i`, column `j`) has its centre at `(x, y) = (j + 0.5, i + 0.5)` and belongs
//! to a disk when its centre lies in the closed disk.

use crate::io::images::GrayImage;
use anyhow::{ensure, Result};
use rand::RngExt;

/// Parameters of square dead-leaves images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeadLeaves {
    /// Side length in pixels.
    pub size: usize,
    /// Smallest disk radius (pixels, > 0).
    pub min_radius: f64,
    /// Largest disk radius (pixels, ≥ `min_radius`).
    pub max_radius: f64,
}

impl DeadLeaves {
    /// Checked constructor.
    pub fn new(size: usize, min_radius: f64, max_radius: f64) -> Result<Self> {
        let d = Self {
            size,
            min_radius,
            max_radius,
        };
        d.validate()?;
        Ok(d)
    }

    /// Errors unless `size > 0` and `0 < min_radius ≤ max_radius < ∞`.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.size > 0, "dead leaves: size must be positive");
        ensure!(
            self.min_radius.is_finite()
                && self.max_radius.is_finite()
                && self.min_radius > 0.0
                && self.min_radius <= self.max_radius,
            "dead leaves: need 0 < min_radius ≤ max_radius < ∞ (got {} and {})",
            self.min_radius,
            self.max_radius
        );
        Ok(())
    }

    /// One radius with density ∝ r⁻³ on `[min_radius, max_radius]`, by the inverse CDF:
    /// `r = (rmin⁻² − u (rmin⁻² − rmax⁻²))^(−1/2)`, `u` ~ Uniform[0,1).
    pub fn sample_radius(&self, rng: &mut impl RngExt) -> f64 {
        let a = self.min_radius.powi(-2);
        let b = self.max_radius.powi(-2);
        let u: f64 = rng.random();
        (a - u * (a - b)).powf(-0.5)
    }

    /// One image, sampled front to back until every pixel is covered.
    ///
    /// # Panics
    /// If the parameters are invalid (see [`DeadLeaves::validate`]).
    pub fn generate(&self, rng: &mut impl RngExt) -> GrayImage {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let n = self.size;
        let nf = n as f64;
        let span = nf + 2.0 * self.max_radius;
        let mut data = vec![0.0; n * n];
        let mut covered = vec![false; n * n];
        let mut uncovered = n * n;
        while uncovered > 0 {
            let cx = rng.random::<f64>() * span - self.max_radius;
            let cy = rng.random::<f64>() * span - self.max_radius;
            let r = self.sample_radius(rng);
            let value: f64 = rng.random();
            // Rows whose centre y = i + 0.5 satisfies |y − cy| ≤ r.
            let i0 = (cy - r - 0.5).ceil().max(0.0);
            let i1 = (cy + r - 0.5).floor().min(nf - 1.0);
            if i0 > i1 {
                continue;
            }
            for i in i0 as usize..=i1 as usize {
                let dy = i as f64 + 0.5 - cy;
                let hw2 = r * r - dy * dy;
                if hw2 < 0.0 {
                    continue;
                }
                let hw = hw2.sqrt();
                let j0 = (cx - hw - 0.5).ceil().max(0.0);
                let j1 = (cx + hw - 0.5).floor().min(nf - 1.0);
                if j0 > j1 {
                    continue;
                }
                let row = i * n;
                for j in j0 as usize..=j1 as usize {
                    let k = row + j;
                    if !covered[k] {
                        covered[k] = true;
                        data[k] = value;
                        uncovered -= 1;
                    }
                }
            }
        }
        GrayImage {
            name: "deadleaves".into(),
            h: n,
            w: n,
            data,
        }
    }

    /// `n` images of `split`; image `k` draws from
    /// [`crate::data::rng_for`]`(seed, Generate, split, k)` and is named
    /// `deadleaves_{split}_{seed}_{k}`. Deterministic for a seed; image `k` does not depend on `n`.
    pub fn generate_set(&self, n: usize, seed: u64, split: super::Split) -> Vec<GrayImage> {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .map(|k| {
                let mut rng =
                    super::rng_for(seed, super::Purpose::Generate, split.stream(), k as u64);
                let mut img = self.generate(&mut rng);
                img.name = format!("deadleaves_{}_{seed}_{k}", split.as_str());
                img
            })
            .collect()
    }
}

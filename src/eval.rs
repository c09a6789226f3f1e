//! Evaluation (spec §6): bits per pixel over non-overlapping tiles, mean ± standard error.
//!
//! "Bits per pixel" here is the log-likelihood rate: mean per-pixel log-likelihood (data units,
//! log|det P_out| included) / ln 2 — positive, higher is better, as in the paper's tables.

use crate::model::Ride;
use crate::real::Real;
use anyhow::Result;

/// Non-overlapping `t × t` tiles from the top-left of a row-major `h × w` image (partial tiles
/// at the right and bottom edges are dropped).
pub fn tiles(img: &[f64], h: usize, w: usize, t: usize) -> Vec<Vec<f64>> {
    let mut out = vec![];
    if t == 0 {
        return out;
    }
    for ti in 0..h / t {
        for tj in 0..w / t {
            let mut tile = Vec::with_capacity(t * t);
            for r in 0..t {
                let s = (ti * t + r) * w + tj * t;
                tile.extend_from_slice(&img[s..s + t]);
            }
            out.push(tile);
        }
    }
    out
}

/// Summary of a scoring run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Score {
    /// mean over tiles of the log-likelihood rate (bit/px, higher is better)
    pub bits_per_px: f64,
    /// standard error of that mean over tiles
    pub sem: f64,
    pub tiles: usize,
    /// number of scored pixels (grid cells)
    pub pixels: usize,
}

impl Score {
    pub fn from_tiles(per_tile_bits: &[f64], pixels: usize) -> Self {
        let n = per_tile_bits.len();
        let mean = per_tile_bits.iter().sum::<f64>() / n.max(1) as f64;
        let var = if n > 1 {
            per_tile_bits
                .iter()
                .map(|v| (v - mean).powi(2))
                .sum::<f64>()
                / (n - 1) as f64
        } else {
            0.0
        };
        Self {
            bits_per_px: mean,
            sem: (var / n.max(1) as f64).sqrt(),
            tiles: n,
            pixels,
        }
    }
}

/// Log-likelihood rate (bit/px) of each tile; tiles are values on the model's scale.
/// Tiles are processed `batch` at a time, each batch split over the rayon threads.
pub fn tile_bits<T: Real>(
    model: &Ride<T>,
    tiles: &[Vec<f64>],
    t: usize,
    batch: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(tiles.len());
    let threads = rayon::current_num_threads();
    for group in tiles.chunks(batch.max(1)) {
        let refs: Vec<&[f64]> = group.iter().map(|v| v.as_slice()).collect();
        let b = model.prepare(&refs, t, t, threads)?;
        for ll in model.loglik_map(&b) {
            out.push(ll.iter().sum::<f64>() / ll.len() as f64 / std::f64::consts::LN_2);
        }
    }
    Ok(out)
}

//! The discrete likelihood of 8-bit images (what a coder can reach): the probability of pixel
//! value k is the model's conditional density integrated over k's quantisation bin
//! [k/s, (k+1)/s) in model units (s = the model's scale, 255; the training data were
//! dequantised with U[0,1)/s noise, so the bin lies to the right of k/s), the outer bins open to
//! ±∞, through the whitening's affine map and the MCGSM's mixture CDF
//! ([`CellMixture::interval_probability`]). A floor keeps every value codable:
//! P'(k) = (1 − 256·[`FLOOR`])·P(k) + [`FLOOR`]. Cells run one at a time in raster order
//! ([`RasterStack`]), the path an encoder and its decoder can share; tiles as in the
//! evaluation (states from zero at each tile's edge).

use crate::model::mcgsm::CellMixture;
use crate::model::raster::{CellLayer, RasterStack};
use crate::model::ride::Ride;
use anyhow::{bail, Result};
use rayon::prelude::*;

/// Probability every pixel value keeps at least.
pub const FLOOR: f64 = 1e-9;

/// Values of an 8-bit image.
pub const LEVELS: usize = 256;

/// P'(k) of every value k of the cell whose whitened inputs are `xw` and top features `u`.
pub fn value_probabilities(
    model: &Ride<f32>,
    mix: &mut CellMixture,
    xw: &[f64],
    u: &[f64],
) -> Vec<f64> {
    (0..LEVELS)
        .map(|k| bin_probability(model, mix, xw, u, k))
        .collect()
}

/// P'(k) of value k for the cell with whitened inputs `xw` and top features `u`.
pub fn bin_probability(
    model: &Ride<f32>,
    mix: &mut CellMixture,
    xw: &[f64],
    u: &[f64],
    k: usize,
) -> f64 {
    let s = model.preprocessing.scale;
    let wh = &model.whitening;
    let edge = |v: usize| -> f64 {
        match v {
            0 => f64::NEG_INFINITY,
            LEVELS => f64::INFINITY,
            v => wh.whiten_output(xw, v as f64 / s),
        }
    };
    let (a, b) = (edge(k), edge(k + 1));
    // the whitening's output scale is positive for a valid model; either way, ordered bounds
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let p = mix.interval_probability(u, lo, hi);
    (1.0 - LEVELS as f64 * FLOOR) * p.clamp(0.0, 1.0) + FLOOR
}

/// Code length (bit/px, lower is better) of each `t × t` tile (model units, 8-bit values / the
/// model's scale): −log₂ P'(x) averaged over the tile's cells. Tiles run in parallel; each
/// tile's sum is in raster order, so the result does not depend on the thread count.
pub fn tile_code_lengths(model: &Ride<f32>, tiles: &[Vec<f64>], t: usize) -> Result<Vec<f64>> {
    if model.preprocessing.scale <= 1.0 {
        bail!(
            "the discrete likelihood needs an 8-bit model (this one models values on scale {})",
            model.preprocessing.scale
        );
    }
    let Some((gr, gc)) = model.nb.grid(t, t) else {
        bail!("a {t}×{t} tile is smaller than the model's neighbourhood");
    };
    let layers: Vec<CellLayer> = model.layers.iter().map(CellLayer::new).collect();
    let (orow, ocol) = model.nb.output_pos();
    let s = model.preprocessing.scale;
    tiles
        .par_iter()
        .map(|tile| -> Result<f64> {
            let mut stack = RasterStack::new(&layers, &model.nb, gc);
            let mut mix = CellMixture::new(&model.mcgsm);
            let mut bits = 0.0;
            for i in 0..gr {
                for j in 0..gc {
                    let (xw, u) = stack.step(&model.whitening, tile, t, (0, 0), (i, j));
                    let y = tile[(i + orow) * t + j + ocol];
                    let k = (y * s).round();
                    if !(0.0..LEVELS as f64).contains(&k) || (y * s - k).abs() > 1e-6 {
                        bail!(
                            "pixel value {} is not one of the 8-bit values 0..255 / {s}",
                            y
                        );
                    }
                    let (xw, u) = (xw.to_vec(), u.to_vec());
                    bits -= bin_probability(model, &mut mix, &xw, &u, k as usize).log2();
                }
                stack.next_row();
            }
            Ok(bits / (gr * gc) as f64)
        })
        .collect()
}

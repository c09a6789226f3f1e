//! The inpainting target (the log-likelihood of the evaluation crop), scores of a filled
//! image, and the mean-fill baseline.

use super::Geometry;
use super::Rect;
use crate::model::ride::Ride;
use anyhow::{bail, Result};

/// Scores of a filled image (for the baselines table).
#[derive(Clone, Debug, serde::Serialize)]
pub struct FillScore {
    /// Mean over hole pixels of log p(x_ij | x_<ij) within the evaluation crop, / ln 2: the
    /// log-likelihood rate of the filled hole pixels (bit/px, model units incl. log|det P_out|,
    /// higher = more likely under the model). Not the conditional p(hole | observed).
    pub hole_bits_per_px: f64,
    /// Mean over all cells of the crop of the per-cell log-likelihood / ln 2 (bit/px); this
    /// includes the observed pixels below/right whose conditionals see the fill.
    pub crop_bits_per_px: f64,
    /// 10·log10(1 / MSE) over the hole pixels vs the original, values unclipped, peak 1.
    pub psnr_db: f64,
}

/// Log-likelihood (nats, data units) of each cell of each crop: `[crops][gr·gc]`, raster order.
/// crops: row-major `ch × cw` each, model units.
pub fn crop_logliks(
    model: &Ride<f32>,
    crops: &[&[f64]],
    ch: usize,
    cw: usize,
) -> Result<Vec<Vec<f64>>> {
    let threads = rayon::current_num_threads().min(crops.len()).max(1);
    let batch = model.prepare(crops, ch, cw, threads)?;
    Ok(model.loglik_map(&batch))
}

/// log π of one crop: the sum over all its cells (nats).
pub(super) fn crop_loglik(model: &Ride<f32>, crop: &[f64], ch: usize, cw: usize) -> Result<f64> {
    Ok(crop_logliks(model, &[crop], ch, cw)?[0].iter().sum())
}

/// Mean log-likelihood rate (bit/px) of the cells whose outputs are the hole pixels `hc` (crop
/// coordinates), from the per-cell log-likelihoods `ll` of a crop of width `cw`.
pub(super) fn hole_rate(model: &Ride<f32>, ll: &[f64], cw: usize, hc: Rect) -> f64 {
    let gc = cw + 1 - model.nb.cols;
    let (orow, ocol) = model.nb.output_pos();
    let mut sum = 0.0;
    for pr in hc.top..hc.bottom() {
        for pc in hc.left..hc.right() {
            sum += ll[(pr - orow) * gc + pc - ocol];
        }
    }
    sum / (hc.h * hc.w) as f64 / std::f64::consts::LN_2
}

// image [h, w] → crop [crop.h, crop.w]
pub(super) fn cut(image: &[f64], w: usize, r: Rect) -> Vec<f64> {
    let mut out = Vec::with_capacity(r.h * r.w);
    for row in r.top..r.bottom() {
        out.extend_from_slice(&image[row * w + r.left..row * w + r.right()]);
    }
    out
}

// crop [r.h, r.w] pasted into image [h, w]
pub(super) fn paste(image: &mut [f64], w: usize, r: Rect, crop: &[f64]) {
    for (k, row) in (r.top..r.bottom()).enumerate() {
        image[row * w + r.left..row * w + r.right()].copy_from_slice(&crop[k * r.w..(k + 1) * r.w]);
    }
}

/// Scores `filled` (`h × w`, model units) under `model` on the evaluation crop of `geo`, and its
/// PSNR vs `original` over the hole pixels.
pub fn score_fill(
    model: &Ride<f32>,
    filled: &[f64],
    original: &[f64],
    geo: &Geometry,
) -> Result<FillScore> {
    let (h, w) = (geo.image_h, geo.image_w);
    if filled.len() != h * w || original.len() != h * w {
        bail!(
            "images have {} and {} values, expected {h}×{w}",
            filled.len(),
            original.len()
        );
    }
    let c = geo.crop;
    let ll = crop_logliks(model, &[cut(filled, w, c).as_slice()], c.h, c.w)?.remove(0);
    let hc = geo.hole_in_crop();
    let mut se = 0.0;
    for r in 0..hc.h {
        for col in 0..hc.w {
            let k = (geo.hole.top + r) * w + geo.hole.left + col;
            se += (filled[k] - original[k]).powi(2);
        }
    }
    let n = (hc.h * hc.w) as f64;
    let ln2 = std::f64::consts::LN_2;
    Ok(FillScore {
        hole_bits_per_px: hole_rate(model, &ll, c.w, hc),
        crop_bits_per_px: ll.iter().sum::<f64>() / ll.len() as f64 / ln2,
        psnr_db: 10.0 * (n / se).log10(),
    })
}

/// Mean of the observed pixels in the ring of width `ring` around the hole of `geo` (clipped
/// to the image).
pub(super) fn ring_mean(image: &[f64], geo: &Geometry, ring: usize) -> f64 {
    let (h, w, hole) = (geo.image_h, geo.image_w, geo.hole);
    let (r0, c0) = (
        hole.top.saturating_sub(ring),
        hole.left.saturating_sub(ring),
    );
    let (r1, c1) = ((hole.bottom() + ring).min(h), (hole.right() + ring).min(w));
    let (mut sum, mut n) = (0.0, 0usize);
    for r in r0..r1 {
        for c in c0..c1 {
            if !hole.contains(r, c) {
                sum += image[r * w + c];
                n += 1;
            }
        }
    }
    sum / n.max(1) as f64
}

/// Mean-fill baseline: the hole of `geo` set to the mean of the observed pixels in the ring of
/// width `ring` around it (clipped to the image). image: `h × w`, returns a copy.
pub fn mean_fill(image: &[f64], geo: &Geometry, ring: usize) -> Vec<f64> {
    let (w, hole) = (geo.image_w, geo.hole);
    let mean = ring_mean(image, geo, ring);
    let mut out = image.to_vec();
    for r in hole.top..hole.bottom() {
        out[r * w + hole.left..r * w + hole.right()].fill(mean);
    }
    out
}

//! Ancestral raster-scan sampling from a RIDE model (docs/MODEL.md §4 sampling, §7 texture synthesis).
//!
//! An `h × w` image is sampled on a canvas of `(h + margin) × (w + 2·margin)` pixels (margin on
//! top, left and right). The canvas starts from i.i.d. draws of the training marginal (or from
//! `init`); then every canvas pixel that is the output of a grid cell is drawn in raster order
//! of the cells from p(x_ij | x_<ij), as the original's `RIDE.sample` does. Pixels that are no
//! cell's output (the top `out_row` rows and the outer columns) keep their initial values; the
//! sampled margin is a burn-in and is dropped from the result.
//!
//! Cell (i, j)'s inputs include pixels to the right of it in the rows above, which are drawn by
//! earlier cells in raster order but not by earlier anti-diagonals, so this is a per-cell
//! raster scan, not the wavefront of the density evaluation: for each cell, its whitened inputs,
//! then every SLSTM layer ([`crate::model::raster`]: one `5H × width` matrix–vector product and
//! the gate kernel, f32), then one MCGSM draw (f64).

use crate::model::mcgsm::CellMixture;
use crate::model::raster::{CellLayer, RasterStack};
use crate::model::ride::Ride;
use crate::model::whitening::Whitening;
use crate::numerics::real::Real;
use anyhow::{bail, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Options of [`sample`].
#[derive(Clone, Debug, Default)]
pub struct SampleOptions<'a> {
    /// Margin (pixels) on top, left and right of the image; at least
    /// [`min_margin`] of the model's neighbourhood.
    pub margin: usize,
    pub seed: u64,
    /// Initial canvas (row-major `(h + margin) × (w + 2·margin)`, model units) instead of
    /// draws from the marginal.
    pub init: Option<&'a [f64]>,
    /// Clip every drawn pixel to `[lo, hi]` (model units), as the original's min/max values.
    pub clip: Option<(f64, f64)>,
    /// Draw only the `h × w` interior; the margin keeps its initial values (sampling
    /// conditioned on the surroundings, e.g. from `init`). Default: the margin is drawn too.
    pub keep_margin: bool,
    /// Keep the top-layer hidden states of every grid cell in [`Sampled::hidden`].
    pub keep_hidden: bool,
}

/// Result of [`sample`].
#[derive(Clone, Debug)]
pub struct Sampled {
    /// The `h × w` interior, row-major, model units.
    pub image: Vec<f64>,
    /// The whole canvas, row-major `canvas_h × canvas_w`.
    pub canvas: Vec<f64>,
    pub canvas_h: usize,
    pub canvas_w: usize,
    /// Grid of cells of the canvas.
    pub grid: (usize, usize),
    /// Top-layer hidden states `[grid.0 · grid.1, H]` (raster order) as the sampler computed
    /// them, if [`SampleOptions::keep_hidden`]; the MCGSM's inputs.
    pub hidden: Option<Vec<f64>>,
}

/// Smallest margin that lets every pixel of the image be the output of a grid cell.
pub fn min_margin(nb: &crate::model::neighbourhood::Neighbourhood) -> usize {
    let (orow, ocol) = nb.output_pos();
    orow.max(ocol).max(nb.cols - 1 - ocol)
}

/// Mean and standard deviation of the Gaussian approximation of the training marginal of a
/// pixel, from the whitening alone.
///
/// The whitening was fitted on the training pairs (x, y): μ_y = `mean_out`, and with
/// B = C_yx P_in (`predictor`) and P_out = (C_yy − B Bᵀ)^(−1/2) (`white_out`, a scalar for 1-D
/// output) we get C_yy = P_out⁻² + B Bᵀ = 1 / white_out² + Σ_k predictor_k² — the variance of
/// a pixel over the training data.
pub fn marginal(wh: &Whitening) -> (f64, f64) {
    let var =
        1.0 / (wh.white_out() * wh.white_out()) + wh.predictor().iter().map(|b| b * b).sum::<f64>();
    (wh.mean_out(), var.sqrt())
}

/// Ancestral raster-scan sample of an `h × w` image; see the module docs and [`SampleOptions`].
pub fn sample<T: Real>(
    model: &Ride<T>,
    h: usize,
    w: usize,
    opts: &SampleOptions,
) -> Result<Sampled> {
    let nb = &model.nb;
    let (orow, ocol) = nb.output_pos();
    let offs = nb.input_offsets();
    if offs.iter().any(|&o| o >= (orow, ocol)) {
        bail!("the neighbourhood is not causal (an input follows the output in raster order): cannot sample in raster order");
    }
    if orow + 1 != nb.rows {
        bail!("the neighbourhood's output is not in its last row: the bottom rows of the image could not be sampled");
    }
    if h == 0 || w == 0 {
        bail!("cannot sample an empty image ({w}×{h})");
    }
    let margin = opts.margin;
    {
        use crate::limits as lim;
        lim::check("margin", margin, 0, lim::MAX_MARGIN)?;
        // every canvas pixel is sampled, the margin included
        let px = h
            .checked_add(margin)
            .zip(w.checked_add(2 * margin))
            .and_then(|(a, b)| a.checked_mul(b))
            .filter(|&n| n <= lim::MAX_SAMPLE_PIXELS);
        if px.is_none() {
            bail!(
                "sample size {w}×{h} with margin {margin} is too large: at most {} canvas pixels (sampling is sequential)",
                lim::MAX_SAMPLE_PIXELS
            );
        }
    }
    let need = min_margin(nb);
    if margin < need {
        bail!(
            "margin {margin} is too small for the {}×{} neighbourhood: at least {need} pixels are needed so that every image pixel has a full neighbourhood",
            nb.rows,
            nb.cols
        );
    }
    if let Some((lo, hi)) = opts.clip {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            bail!("clip range [{lo}, {hi}] is empty");
        }
    }
    let (ch, cw) = (h + margin, w + 2 * margin);
    let (gr, gc) = nb
        .grid(ch, cw)
        .expect("margin ≥ min_margin makes the canvas at least the neighbourhood's size");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    let mut canvas = match opts.init {
        Some(init) => {
            if init.len() != ch * cw {
                bail!(
                    "initial canvas has {} values, expected (h + margin) × (w + 2·margin) = {ch}×{cw}",
                    init.len()
                );
            }
            init.to_vec()
        }
        None => {
            let (mu, sd) = marginal(&model.whitening);
            (0..ch * cw)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    mu + sd * z
                })
                .collect()
        }
    };

    let layers: Vec<CellLayer> = model.layers.iter().map(CellLayer::new).collect();
    let top = model.num_hiddens();
    let mut hidden = opts.keep_hidden.then(|| vec![0.0; gr * gc * top]);
    let mut stack = RasterStack::new(&layers, nb, gc);
    let mut mix = CellMixture::new(&model.mcgsm);
    for i in 0..gr {
        for j in 0..gc {
            let (xw, u_top) = stack.step(&model.whitening, &canvas, cw, (0, 0), (i, j));
            if let Some(hs) = &mut hidden {
                let cell = i * gc + j;
                hs[cell * top..(cell + 1) * top].copy_from_slice(u_top);
            }
            let (pr, pc) = (i + orow, j + ocol);
            let interior = pr >= margin && pc >= margin && pc < margin + w;
            if opts.keep_margin && !interior {
                continue;
            }
            let yw = mix.sample(u_top, &mut rng);
            let mut y = model.whitening.unwhiten_output(xw, yw);
            if let Some((lo, hi)) = opts.clip {
                y = y.clamp(lo, hi);
            }
            canvas[pr * cw + pc] = y;
        }
        stack.next_row();
    }
    let mut image = Vec::with_capacity(h * w);
    for r in margin..margin + h {
        image.extend_from_slice(&canvas[r * cw + margin..r * cw + margin + w]);
    }
    Ok(Sampled {
        image,
        canvas,
        canvas_h: ch,
        canvas_w: cw,
        grid: (gr, gc),
        hidden,
    })
}

//! Inpainting (docs/MODEL.md §7): fill a square hole by ancestral initialisation and Metropolis–Hastings.
//!
//! Target. Everything is defined on a fixed *evaluation crop*: the hole plus `context` observed
//! pixels on each side (default 8), clipped to the image; at least [`min_margin`] pixels must
//! remain above, left and right of the hole (so every hole pixel is a grid cell's output) and
//! at least one row below. The target density of the hole pixels is
//! π(x_hole) ∝ p_model(crop) = Π_cells p(x_ij | x_<ij), the model's density of the crop alone
//! (SLSTM states start from zero at the crop's top/left edge, as for every evaluation tile);
//! all crop pixels outside the hole are observed and fixed. log p_model(crop) is computed as
//! the sum over ALL cells of the crop (f32 batch path [`Ride::loglik_map`], summed in f64),
//! so every target value is the full crop log-likelihood, not a difference of partial sums.
//!
//! Initialisation. `candidates` ancestral samples of the hole only: a raster scan over the crop
//! draws each hole pixel from p(x_ij | x_<ij) (observed pixels fixed); the candidate with the
//! highest crop log-likelihood is kept.
//!
//! Kernel. A sweep visits blocks in raster order of their positions: block tops/lefts at
//! 0, stride, 2·stride, … inside the hole (until the hole's last row/column is covered), each
//! block `block × block` clipped to the hole, centred in a `window × window` window clipped to
//! the crop. A move proposes the block by ancestral sampling inside the window:
//! q(x'_B | x) = Π_{ij ∈ B, raster order} p_win(x'_ij | window pixels before ij), where p_win is
//! the model run on the window alone (states zero at the window's edge; pixels outside B are the
//! current x, earlier block pixels the new ones). It is accepted with probability
//! min(1, π(x') q(x_B | x') / (π(x) q(x'_B | x))); q(x_B | x') is the same product evaluated at
//! the current block values (x' and x agree outside B). Proposal densities are computed in f64
//! (per-cell raster pass, like [`crate::tasks::sample`]), no clipping.

use crate::model::ride::Ride;
use crate::tasks::sample::{marginal, min_margin, Layer64, RasterStack};
use anyhow::{bail, Context, Result};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::time::Instant;

/// A rectangle of pixels (image coordinates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rect {
    pub top: usize,
    pub left: usize,
    pub h: usize,
    pub w: usize,
}

impl Rect {
    fn contains(&self, r: usize, c: usize) -> bool {
        r >= self.top && r < self.top + self.h && c >= self.left && c < self.left + self.w
    }
    fn bottom(&self) -> usize {
        self.top + self.h
    }
    fn right(&self) -> usize {
        self.left + self.w
    }
    /// One past the last row.
    pub fn bottom_excl(&self) -> usize {
        self.bottom()
    }
    /// One past the last column.
    pub fn right_excl(&self) -> usize {
        self.right()
    }
}

/// Where the hole and the evaluation crop lie in an `h × w` image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Geometry {
    pub image_h: usize,
    pub image_w: usize,
    pub hole: Rect,
    pub crop: Rect,
}

impl Geometry {
    /// Hole of `hole = (rows, cols)` centred at `center = (row, col)` (default the image centre;
    /// the hole's top-left is center − size/2), crop = hole + `context` pixels per side clipped
    /// to the image. Errors name the sizes when the hole does not fit or lacks context.
    pub fn new(
        model: &Ride<f32>,
        h: usize,
        w: usize,
        hole: (usize, usize),
        center: Option<(usize, usize)>,
        context: usize,
    ) -> Result<Self> {
        let nb = &model.nb;
        let need = min_margin(nb);
        let (hh, hw) = hole;
        if hh == 0 || hw == 0 {
            bail!("the hole is empty ({hh}×{hw})");
        }
        if hh > h || hw > w {
            bail!("hole {hh}×{hw} is larger than the {h}×{w} image");
        }
        if context < need {
            bail!(
                "context {context} is smaller than the model's neighbourhood margin {need} ({}×{} neighbourhood)",
                nb.rows,
                nb.cols
            );
        }
        let (cr, cc) = center.unwrap_or((h / 2, w / 2));
        if cr >= h || cc >= w {
            bail!("hole centre ({cr},{cc}) is outside the {h}×{w} image");
        }
        let (top, left) = (cr.checked_sub(hh / 2), cc.checked_sub(hw / 2));
        let bad = |what: String| -> anyhow::Error {
            anyhow::anyhow!(
                "hole {hh}×{hw} centred at ({cr},{cc}) in the {h}×{w} image touches the border: {what}; the model's {}×{} neighbourhood needs at least {need} observed pixels above, left and right of the hole and at least 1 row below",
                nb.rows,
                nb.cols
            )
        };
        let (Some(top), Some(left)) = (top, left) else {
            return Err(bad("it starts outside the image".into()));
        };
        if top + hh > h || left + hw > w {
            return Err(bad("it ends outside the image".into()));
        }
        let (above, below, lft, rgt) = (top, h - top - hh, left, w - left - hw);
        if above < need {
            return Err(bad(format!("{above} observed rows above")));
        }
        if lft < need {
            return Err(bad(format!("{lft} observed columns left")));
        }
        if rgt < need {
            return Err(bad(format!("{rgt} observed columns right")));
        }
        if below < 1 {
            return Err(bad("no observed row below".into()));
        }
        let hole = Rect {
            top,
            left,
            h: hh,
            w: hw,
        };
        let (ct, cl) = (above.min(context), lft.min(context));
        let crop = Rect {
            top: top - ct,
            left: left - cl,
            h: ct + hh + below.min(context),
            w: cl + hw + rgt.min(context),
        };
        Ok(Self {
            image_h: h,
            image_w: w,
            hole,
            crop,
        })
    }

    /// The hole in crop coordinates.
    fn hole_in_crop(&self) -> Rect {
        Rect {
            top: self.hole.top - self.crop.top,
            left: self.hole.left - self.crop.left,
            ..self.hole
        }
    }
}

/// Options of [`inpaint`].
#[derive(Clone, Debug)]
pub struct InpaintOptions {
    /// Hole size (rows, cols).
    pub hole: (usize, usize),
    /// Hole centre (row, col); default the image centre.
    pub center: Option<(usize, usize)>,
    /// Observed pixels around the hole in the evaluation crop (per side, clipped to the image).
    pub context: usize,
    /// Metropolis–Hastings sweeps.
    pub sweeps: usize,
    pub seed: u64,
    /// Ancestral initialisations of the hole (the most likely is kept), 1 to
    /// [`crate::limits::MAX_CANDIDATES`].
    pub candidates: usize,
    /// Block side, window side and stride of the block positions (5, 19, 3).
    pub block: usize,
    pub window: usize,
    pub stride: usize,
    /// Keep the hole values (crop raster order) after every sweep in [`Inpainted::trace`].
    pub trace: bool,
}

/// Changes to the chain that only tests of the MH kernel use ([`inpaint_with_hooks`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainHooks {
    /// Start from the hole values already in the image instead of ancestral candidates.
    pub start_from_image: bool,
    /// Wrong kernel for the negative control of the invariance test: accept with
    /// min(1, π(x')/π(x)), dropping the proposal densities.
    pub drop_proposal_terms: bool,
}

impl Default for InpaintOptions {
    fn default() -> Self {
        Self {
            hole: (71, 71),
            center: None,
            context: 8,
            sweeps: 10,
            seed: 0,
            candidates: 5,
            block: 5,
            window: 19,
            stride: 3,
            trace: false,
        }
    }
}

/// Result of [`inpaint`].
#[derive(Clone, Debug)]
pub struct Inpainted {
    /// The whole `h × w` image with the hole filled (model units, not clipped).
    pub image: Vec<f64>,
    pub geometry: Geometry,
    /// Crop log-likelihood (nats) of each initial candidate; `chosen` is the kept one.
    pub candidate_logliks: Vec<f64>,
    pub chosen: usize,
    /// Accepted / proposed moves of each sweep.
    pub acceptance: Vec<f64>,
    /// Seconds of the initialisation and of each sweep.
    pub init_seconds: f64,
    pub sweep_seconds: Vec<f64>,
    /// Model log-likelihood of the final evaluation crop (nats, sum over its cells).
    pub crop_loglik: f64,
    /// Hole values after each sweep (row-major hole), if [`InpaintOptions::trace`].
    pub trace: Option<Vec<Vec<f64>>>,
}

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
fn crop_loglik(model: &Ride<f32>, crop: &[f64], ch: usize, cw: usize) -> Result<f64> {
    Ok(crop_logliks(model, &[crop], ch, cw)?[0].iter().sum())
}

// image [h, w] → crop [crop.h, crop.w]
fn cut(image: &[f64], w: usize, r: Rect) -> Vec<f64> {
    let mut out = Vec::with_capacity(r.h * r.w);
    for row in r.top..r.bottom() {
        out.extend_from_slice(&image[row * w + r.left..row * w + r.right()]);
    }
    out
}

// crop [r.h, r.w] pasted into image [h, w]
fn paste(image: &mut [f64], w: usize, r: Rect, crop: &[f64]) {
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
    let gc = c.w + 1 - model.nb.cols;
    let (orow, ocol) = model.nb.output_pos();
    let hc = geo.hole_in_crop();
    let mut hole_ll = 0.0;
    let mut se = 0.0;
    for r in 0..hc.h {
        for col in 0..hc.w {
            let (pr, pc) = (hc.top + r, hc.left + col);
            hole_ll += ll[(pr - orow) * gc + pc - ocol];
            let k = (geo.hole.top + r) * w + geo.hole.left + col;
            se += (filled[k] - original[k]).powi(2);
        }
    }
    let n = (hc.h * hc.w) as f64;
    let ln2 = std::f64::consts::LN_2;
    Ok(FillScore {
        hole_bits_per_px: hole_ll / n / ln2,
        crop_bits_per_px: ll.iter().sum::<f64>() / ll.len() as f64 / ln2,
        psnr_db: 10.0 * (n / se).log10(),
    })
}

/// Mean-fill baseline: the hole of `geo` set to the mean of the observed pixels in the ring of
/// width `ring` around it (clipped to the image). image: `h × w`, returns a copy.
pub fn mean_fill(image: &[f64], geo: &Geometry, ring: usize) -> Vec<f64> {
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
    let mean = sum / n.max(1) as f64;
    let mut out = image.to_vec();
    for r in hole.top..hole.bottom() {
        out[r * w + hole.left..r * w + hole.right()].fill(mean);
    }
    out
}

/// Per-cell raster pass over the window `win` of `img` (row-major, width `iw`): the model runs
/// on the window alone (states zero at its top/left edge) up to the last cell whose output lies
/// in `block` (all block pixels must be cell outputs of the window). Each block pixel is drawn
/// from its conditional if `rng` is given (written into `img`), else kept. Returns
/// Σ_{ij ∈ B} log p_win(x_ij | window pixels before ij) (nats, data units).
// img [ih, iw]; win, block: image coordinates, block ⊂ win
fn block_pass(
    model: &Ride<f32>,
    layers: &[Layer64],
    img: &mut [f64],
    iw: usize,
    win: Rect,
    block: Rect,
    mut rng: Option<&mut Xoshiro256PlusPlus>,
) -> f64 {
    let nb = &model.nb;
    let (orow, ocol) = nb.output_pos();
    // cells needed: rows up to the block's last row, columns up to its last column (a cell's
    // states depend only on cells above and to the left)
    let imax = block.bottom() - 1 - win.top - orow;
    let jmax = block.right() - 1 - win.left - ocol;
    let gc = jmax + 1;
    let lj = model.whitening.log_jacobian();
    let mut stack = RasterStack::new(layers, nb, gc);
    let mut logq = 0.0;
    for i in 0..=imax {
        for j in 0..gc {
            let (xw, u_top) = stack.step(&model.whitening, img, iw, (win.top, win.left), (i, j));
            let (pr, pc) = (win.top + i + orow, win.left + j + ocol);
            if !block.contains(pr, pc) {
                continue;
            }
            let yw = match rng.as_deref_mut() {
                Some(r) => {
                    let yw = model.mcgsm.sample(u_top, r);
                    img[pr * iw + pc] = model.whitening.unwhiten_output(xw, yw);
                    yw
                }
                None => model.whitening.whiten_output(xw, img[pr * iw + pc]),
            };
            // density of y in data units: p(ỹ) · |P_out|
            logq += model.mcgsm.reference_loglik(u_top, yw) + lj;
        }
        stack.next_row();
    }
    logq
}

/// Block positions (offsets inside a hole side of `len`): 0, stride, … until the end is covered.
fn positions(len: usize, block: usize, stride: usize) -> Vec<usize> {
    let mut p = vec![0];
    while p[p.len() - 1] + block < len {
        let next = p[p.len() - 1] + stride;
        p.push(next);
    }
    p
}

/// Ancestral sample of the hole pixels only (crop raster order, observed pixels fixed), seeded.
/// image: `h × w` model units; returns the whole image with the hole drawn.
pub fn sample_hole(model: &Ride<f32>, image: &[f64], geo: &Geometry, seed: u64) -> Vec<f64> {
    let layers: Vec<Layer64> = model.layers.iter().map(Layer64::new).collect();
    let mut out = image.to_vec();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // the whole crop is the window: the hole has min_margin context on top/left/right
    block_pass(
        model,
        &layers,
        &mut out,
        geo.image_w,
        geo.crop,
        geo.hole,
        Some(&mut rng),
    );
    out
}

/// Fills the hole of `opts` in `image` (`h × w`, model units): ancestral initialisation, then
/// `opts.sweeps` Metropolis–Hastings sweeps (module docs). Same seed, same result.
pub fn inpaint(
    model: &Ride<f32>,
    image: &[f64],
    h: usize,
    w: usize,
    opts: &InpaintOptions,
) -> Result<Inpainted> {
    crate::limits::check(
        "candidates",
        opts.candidates,
        1,
        crate::limits::MAX_CANDIDATES,
    )?;
    inpaint_with_hooks(model, image, h, w, opts, ChainHooks::default())
}

/// [`inpaint`] with the test-only [`ChainHooks`].
#[doc(hidden)]
pub fn inpaint_with_hooks(
    model: &Ride<f32>,
    image: &[f64],
    h: usize,
    w: usize,
    opts: &InpaintOptions,
    hooks: ChainHooks,
) -> Result<Inpainted> {
    crate::limits::check("sweeps", opts.sweeps, 0, crate::limits::MAX_SWEEPS)?;
    crate::limits::check("context", opts.context, 0, crate::limits::MAX_IMAGE_SIDE)?;
    crate::limits::check(
        "hole side",
        opts.hole.0.max(opts.hole.1),
        1,
        crate::limits::MAX_IMAGE_SIDE,
    )?;
    crate::limits::check(
        "sweeps × hole pixels",
        opts.sweeps * opts.hole.0 * opts.hole.1,
        0,
        crate::limits::MAX_SWEEP_PIXELS,
    )?;
    if image.len() != h * w {
        bail!("image has {} values, expected {h}×{w}", image.len());
    }
    let nb = &model.nb;
    let (orow, _) = nb.output_pos();
    if nb.input_offsets().iter().any(|&o| o >= nb.output_pos()) || orow + 1 != nb.rows {
        bail!("inpainting needs a causal neighbourhood with the output in its last row");
    }
    let need = min_margin(nb);
    if opts.block == 0 || opts.stride == 0 || opts.stride > opts.block {
        bail!(
            "block {} and stride {}: need 1 ≤ stride ≤ block so that every hole pixel is visited",
            opts.block,
            opts.stride
        );
    }
    if opts.window < opts.block || (opts.window - opts.block) / 2 < need {
        bail!(
            "window {} around block {} leaves {} pixels of context; the model needs {need}",
            opts.window,
            opts.block,
            opts.window.saturating_sub(opts.block) / 2
        );
    }
    let geo = Geometry::new(model, h, w, opts.hole, opts.center, opts.context)?;
    let c = geo.crop;
    let hc = geo.hole_in_crop();
    let t0 = Instant::now();
    let layers: Vec<Layer64> = model.layers.iter().map(Layer64::new).collect();

    // initialisation: candidates from independent seeds drawn from the master seed
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    let mut crop0 = cut(image, w, c);
    let (mut cur, candidate_logliks, chosen) = if hooks.start_from_image {
        let lp = crop_loglik(model, &crop0, c.h, c.w)?;
        (crop0, vec![lp], 0)
    } else {
        // the original hole values are never read (raster order), but do not keep them
        let (mu, _) = marginal(&model.whitening);
        for r in hc.top..hc.bottom() {
            crop0[r * c.w + hc.left..r * c.w + hc.right()].fill(mu);
        }
        let seeds: Vec<u64> = (0..opts.candidates).map(|_| rng.random()).collect();
        let cands: Vec<Vec<f64>> = seeds
            .par_iter()
            .map(|&s| {
                let mut x = crop0.clone();
                let mut r = Xoshiro256PlusPlus::seed_from_u64(s);
                let win = Rect {
                    top: 0,
                    left: 0,
                    ..c
                };
                block_pass(model, &layers, &mut x, c.w, win, hc, Some(&mut r));
                x
            })
            .collect();
        let refs: Vec<&[f64]> = cands.iter().map(|v| v.as_slice()).collect();
        let lls: Vec<f64> = crop_logliks(model, &refs, c.h, c.w)?
            .iter()
            .map(|l| l.iter().sum())
            .collect();
        // first maximum (NaN never wins)
        let best = (0..lls.len()).fold(0, |b, k| if lls[k] > lls[b] { k } else { b });
        (cands[best].clone(), lls, best)
    };
    let init_seconds = t0.elapsed().as_secs_f64();

    // MH sweeps
    let mut lp = candidate_logliks[chosen];
    if !lp.is_finite() {
        bail!("the initial crop has log-likelihood {lp} under the model");
    }
    let (rows, cols) = (
        positions(hc.h, opts.block, opts.stride),
        positions(hc.w, opts.block, opts.stride),
    );
    let off = (opts.window - opts.block) / 2;
    let mut prop = cur.clone();
    let (mut acceptance, mut sweep_seconds) = (vec![], vec![]);
    let mut trace = opts.trace.then(Vec::new);
    for _ in 0..opts.sweeps {
        let ts = Instant::now();
        let (mut accepted, mut moves) = (0usize, 0usize);
        for &pr in &rows {
            for &pc in &cols {
                let (bt, bl) = (hc.top + pr, hc.left + pc);
                let block = Rect {
                    top: bt,
                    left: bl,
                    h: opts.block.min(hc.bottom() - bt),
                    w: opts.block.min(hc.right() - bl),
                };
                // window centred on the unclipped block, clipped to the crop
                let (wt, wl) = (bt.saturating_sub(off), bl.saturating_sub(off));
                let win = Rect {
                    top: wt,
                    left: wl,
                    h: (bt + opts.block + off).min(c.h) - wt,
                    w: (bl + opts.block + off).min(c.w) - wl,
                };
                prop.copy_from_slice(&cur);
                let lq_fwd = block_pass(model, &layers, &mut prop, c.w, win, block, Some(&mut rng));
                // reverse proposal density (at the current values) and the new target in parallel
                let (lq_rev, lp_new) = rayon::join(
                    || block_pass(model, &layers, &mut cur, c.w, win, block, None),
                    || crop_loglik(model, &prop, c.h, c.w),
                );
                let lp_new = lp_new?;
                let log_a = if hooks.drop_proposal_terms {
                    lp_new - lp
                } else {
                    lp_new - lp + lq_rev - lq_fwd
                };
                let u: f64 = rng.random();
                moves += 1;
                // NaN log_a rejects
                if u.ln() < log_a {
                    std::mem::swap(&mut cur, &mut prop);
                    lp = lp_new;
                    accepted += 1;
                }
            }
        }
        acceptance.push(accepted as f64 / moves.max(1) as f64);
        sweep_seconds.push(ts.elapsed().as_secs_f64());
        if let Some(t) = &mut trace {
            let hole_rect = hc;
            t.push(cut(&cur, c.w, hole_rect));
        }
    }
    let mut out = image.to_vec();
    paste(&mut out, w, c, &cur);
    let crop_loglik = crop_loglik(model, &cur, c.h, c.w).context("scoring the filled crop")?;
    Ok(Inpainted {
        image: out,
        geometry: geo,
        candidate_logliks,
        chosen,
        acceptance,
        init_seconds,
        sweep_seconds,
        crop_loglik,
        trace,
    })
}

//! Inpainting (docs/MODEL.md §7): fill a square hole by ancestral initialisation and Metropolis–Hastings.
//!
//! Target. Everything is defined on a fixed *evaluation crop*: the hole plus `context` observed
//! pixels on each side (default 8), clipped to the image; at least [`min_margin`] pixels must
//! remain above, left and right of the hole (so every hole pixel is a grid cell's output) and
//! at least one row below. The target density of the hole pixels is
//! π(x_hole) ∝ p_model(crop) = Π_cells p(x_ij | x_<ij), the model's density of the crop alone
//! (SLSTM states start from zero at the crop's top/left edge, as for every evaluation tile);
//! all crop pixels outside the hole are observed and fixed. log p_model(crop) is the sum over
//! ALL cells of the crop of their log-likelihoods, kept per cell ([`CropTarget`]): a proposal
//! recomputes only the cells at or below-right of the first cell that reads a changed pixel,
//! and every target value is a fresh sum over all cells, not a running difference (tested bit
//! for bit against a recomputation from scratch, and against the whole-crop batch evaluation
//! [`Ride::loglik_map`]). `--target window` ([`Target::Window`]) is the original code's cheaper
//! approximation.
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
//! the current block values (x' and x agree outside B). Proposal densities come from the
//! per-cell raster pass ([`crate::model::raster`]: SLSTM in f32, MCGSM in f64), no clipping.

mod checkpoint;
mod geometry;
mod incremental;
mod metrics;
mod mixing;
mod score;

pub use checkpoint::Checkpointing;
pub use geometry::{Geometry, Rect};
pub use incremental::CropTarget;
pub use metrics::{harmonic_fill, ssim_over};
pub use mixing::{autocorrelation_time, mean_and_error};
pub use score::{crop_logliks, mean_fill, score_fill, FillScore};

use crate::model::mcgsm::CellMixture;
use crate::model::raster::{CellLayer, RasterStack, RASTER_VERSION};
use crate::model::ride::Ride;
use crate::tasks::sample::{marginal, min_margin};
use anyhow::{bail, Context, Result};
use checkpoint::{ChainState, ChainValues, SaveClock};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use score::{crop_loglik, cut, hole_rate, paste};
use std::time::Instant;

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
    /// What the acceptance ratio is computed on ([`Target`]).
    pub target: Target,
    /// Show the sweeps' progress under this label (a bar on a terminal, a line every 10 s
    /// otherwise).
    pub progress: Option<String>,
    /// Save the chain's state between sweeps and resume from a saved state of the same chain
    /// (same model, image and options but `sweeps`, `progress`): the fill is the same, bit for
    /// bit, as an uninterrupted run's.
    pub checkpoint: Option<Checkpointing>,
}

/// The target density of the Metropolis–Hastings kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// The model's density of the whole evaluation crop: the chain leaves the exact
    /// conditional of the hole invariant.
    #[default]
    Crop,
    /// The original code's approximation: the density of the move's `window × window` window
    /// alone (states zero at its edge), so a move costs two passes over its window instead of
    /// one over the crop. Not the crop's conditional: cells outside the window that see the
    /// block are ignored.
    Window,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Crop => "crop",
            Target::Window => "window",
        }
    }
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
            target: Target::Crop,
            progress: None,
            checkpoint: None,
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
    /// Log-likelihood rate of the hole pixels (bit/px, the whole crop under the model, as
    /// [`score_fill`]) after the initialisation and after each sweep: the chain's convergence.
    pub hole_bits: Vec<f64>,
    /// Seconds of the initialisation and of each sweep.
    pub init_seconds: f64,
    pub sweep_seconds: Vec<f64>,
    /// Model log-likelihood of the final evaluation crop (nats, sum over its cells).
    pub crop_loglik: f64,
    /// Hole values after each sweep (row-major hole), if [`InpaintOptions::trace`].
    pub trace: Option<Vec<Vec<f64>>>,
    /// Sweeps restored from a saved chain state (0: the chain ran from its start here).
    pub resumed_after: usize,
}

/// Per-cell raster pass over the window `win` of `img` (row-major, width `iw`): the model runs
/// on the window alone (states zero at its top/left edge) up to the last cell whose output lies
/// in `block` (all block pixels must be cell outputs of the window). Each block pixel is drawn
/// from its conditional if `rng` is given (written into `img`), else kept. Returns
/// (Σ_{ij ∈ B} log p_win(x_ij | window pixels before ij), the same sum over every cell passed)
/// in nats, data units; with `whole_window` every cell of the window is passed (its density
/// is the second value), else only those up to the block's last cell.
// img [ih, iw]; win, block: image coordinates, block ⊂ win
#[allow(clippy::too_many_arguments)]
fn block_pass(
    model: &Ride<f32>,
    layers: &[CellLayer],
    img: &mut [f64],
    iw: usize,
    win: Rect,
    block: Rect,
    mut rng: Option<&mut Xoshiro256PlusPlus>,
    whole_window: bool,
) -> (f64, f64) {
    let nb = &model.nb;
    let (orow, ocol) = nb.output_pos();
    // cells needed: rows up to the block's last row, columns up to its last column (a cell's
    // states depend only on cells above and to the left), or every cell of the window
    let (imax, jmax) = if whole_window {
        (win.h - nb.rows, win.w - nb.cols)
    } else {
        (
            block.bottom() - 1 - win.top - orow,
            block.right() - 1 - win.left - ocol,
        )
    };
    let gc = jmax + 1;
    let lj = model.whitening.log_jacobian();
    let mut stack = RasterStack::new(layers, nb, gc);
    let mut mix = CellMixture::new(&model.mcgsm);
    let (mut logq, mut logwin) = (0.0, 0.0);
    for i in 0..=imax {
        for j in 0..gc {
            let (xw, u_top) = stack.step(&model.whitening, img, iw, (win.top, win.left), (i, j));
            let (pr, pc) = (win.top + i + orow, win.left + j + ocol);
            if !block.contains(pr, pc) {
                if whole_window {
                    let yw = model.whitening.whiten_output(xw, img[pr * iw + pc]);
                    logwin += mix.loglik(u_top, yw) + lj;
                }
                continue;
            }
            let yw = match rng.as_deref_mut() {
                Some(r) => {
                    let yw = mix.sample(u_top, r);
                    img[pr * iw + pc] = model.whitening.unwhiten_output(xw, yw);
                    yw
                }
                None => model.whitening.whiten_output(xw, img[pr * iw + pc]),
            };
            // density of y in data units: p(ỹ) · |P_out|
            let l = mix.loglik(u_top, yw) + lj;
            logq += l;
            logwin += l;
        }
        stack.next_row();
    }
    (logq, logwin)
}

/// The window target's two passes of a move in lockstep, one pass over the weights per cell
/// for both ([`RasterStack::step_pair`]): [`block_pass`] over every cell of `win` on `prop`,
/// drawing the block (the proposal), and on `cur`, keeping it (the reverse proposal density at
/// the current values). Bit for bit the two `block_pass` calls with `whole_window`; returns
/// their results (proposal, reverse).
// prop, cur [ih, iw]; win, block: image coordinates, block ⊂ win
#[allow(clippy::too_many_arguments)]
fn window_passes(
    model: &Ride<f32>,
    layers: &[CellLayer],
    prop: &mut [f64],
    cur: &[f64],
    iw: usize,
    win: Rect,
    block: Rect,
    rng: &mut Xoshiro256PlusPlus,
) -> ((f64, f64), (f64, f64)) {
    let nb = &model.nb;
    let (orow, ocol) = nb.output_pos();
    let (imax, gc) = (win.h - nb.rows, win.w - nb.cols + 1);
    let lj = model.whitening.log_jacobian();
    let wh = &model.whitening;
    let (mut sp, mut sc) = (
        RasterStack::new(layers, nb, gc),
        RasterStack::new(layers, nb, gc),
    );
    let (mut mp, mut mc) = (
        CellMixture::new(&model.mcgsm),
        CellMixture::new(&model.mcgsm),
    );
    let (mut fwd, mut rev) = ((0.0, 0.0), (0.0, 0.0));
    for i in 0..=imax {
        for j in 0..gc {
            let (pr, pc) = (win.top + i + orow, win.left + j + ocol);
            let at = pr * iw + pc;
            // a cell whose inputs and those of every cell above-left of it (rows up to pr,
            // columns up to the neighbourhood's right edge) miss the block is the same in both
            // passes: stepped once, its states copied, its density added to both sums. Without
            // SLSTM layers a cell depends on its own neighbourhood and pixel only.
            let (right, below) = (win.left + j + nb.cols - 1, win.top + i);
            let before = pr < block.top || right < block.left;
            let apart = layers.is_empty()
                && (below >= block.bottom() || win.left + j >= block.right() || right < block.left);
            if before || apart {
                let (xc, uc) = sc.step(wh, cur, iw, (win.top, win.left), (i, j));
                let l = mc.loglik(uc, wh.whiten_output(xc, cur[at])) + lj;
                fwd.1 += l;
                rev.1 += l;
                sp.copy_cell_from(&sc, j);
                continue;
            }
            let ((xp, up), (xc, uc)) = RasterStack::step_pair(
                &mut sp,
                &mut sc,
                wh,
                (prop, cur),
                iw,
                (win.top, win.left),
                (i, j),
            );
            if !block.contains(pr, pc) {
                fwd.1 += mp.loglik(up, wh.whiten_output(xp, prop[at])) + lj;
                rev.1 += mc.loglik(uc, wh.whiten_output(xc, cur[at])) + lj;
                continue;
            }
            let yp = mp.sample(up, rng);
            prop[at] = wh.unwhiten_output(xp, yp);
            let l = mp.loglik(up, yp) + lj;
            fwd.0 += l;
            fwd.1 += l;
            let l = mc.loglik(uc, wh.whiten_output(xc, cur[at])) + lj;
            rev.0 += l;
            rev.1 += l;
        }
        sp.next_row();
        sc.next_row();
    }
    (fwd, rev)
}

/// What a chain depends on, for its saved states: the model, the image and every option but
/// `sweeps`, `progress` and `checkpoint`, and the per-cell arithmetic's version.
fn fingerprint(
    model: &Ride<f32>,
    image: &[f64],
    (h, w): (usize, usize),
    opts: &InpaintOptions,
    hooks: ChainHooks,
) -> Result<String> {
    let mut bytes = crate::codec::model_hash(model)?.to_vec();
    bytes.extend(image.iter().flat_map(|v| v.to_bits().to_le_bytes()));
    let o = opts;
    bytes.extend(
        format!(
            "raster {RASTER_VERSION} image {h}x{w} hole {:?} center {:?} context {} seed {} candidates {} block {} window {} stride {} target {} trace {} hooks {:?}",
            o.hole, o.center, o.context, o.seed, o.candidates, o.block, o.window, o.stride,
            o.target.name(), o.trace, hooks
        )
        .as_bytes(),
    );
    Ok(crate::train::fnv1a_hex(&bytes))
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
    let layers: Vec<CellLayer> = model.layers.iter().map(CellLayer::new).collect();

    // a saved state of this chain, if any
    let fp = match &opts.checkpoint {
        Some(_) => fingerprint(model, image, (h, w), opts, hooks)?,
        None => String::new(),
    };
    let mut resumed = opts
        .checkpoint
        .as_ref()
        .and_then(|ck| ChainState::load(&ck.path, &fp, opts.sweeps, c.h * c.w))
        .map(ChainState::restore);

    // initialisation: candidates from independent seeds drawn from the master seed
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    let mut crop0 = cut(image, w, c);
    let (mut cur, candidate_logliks, chosen) = if let Some(r) = &mut resumed {
        rng = r.rng.clone();
        let cur = std::mem::take(&mut r.cur);
        (cur, std::mem::take(&mut r.candidate_logliks), r.chosen)
    } else if hooks.start_from_image {
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
                block_pass(model, &layers, &mut x, c.w, win, hc, Some(&mut r), false);
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
    let init_seconds = resumed
        .as_ref()
        .map_or_else(|| t0.elapsed().as_secs_f64(), |r| r.init_seconds);

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
    // after a move, cur and prop differ at most on its block: only that is copied back
    let mut last_block: Option<Rect> = None;
    // the exact target, kept per cell and updated only where a proposal can change it
    let mut target = (opts.target == Target::Crop && opts.sweeps > 0)
        .then(|| CropTarget::new(model, &layers, &cur, c.h, c.w));
    if let Some(t) = &target {
        lp = t.total;
    }
    let hole_now = |x: &[f64]| -> Result<f64> {
        let ll = crop_logliks(model, &[x], c.h, c.w)?.remove(0);
        Ok(hole_rate(model, &ll, c.w, hc))
    };
    let (mut acceptance, mut hole_bits, mut sweep_seconds, mut trace, start) = match resumed {
        Some(r) => (
            r.acceptance,
            r.hole_bits,
            r.sweep_seconds,
            r.trace,
            r.sweeps_done,
        ),
        None => (
            vec![],
            vec![hole_now(&cur)?],
            vec![],
            opts.trace.then(Vec::new),
            0,
        ),
    };
    let mut progress = opts.progress.as_deref().map(|l| {
        crate::io::progress::Progress::counting(l, opts.sweeps as u64, ("sweep", "sweeps"))
    });
    if let (Some(p), true) = (&mut progress, start > 0) {
        // the ETA counts only this run's sweeps
        p.skip(start as u64);
        p.set(start as u64, "resumed from the saved chain state");
    }
    let mut save_clock = SaveClock::new();
    for sweep in start..opts.sweeps {
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
                if let Some(b) = last_block {
                    for r in b.top..b.bottom_excl() {
                        let row = r * c.w + b.left..r * c.w + b.right_excl();
                        prop[row.clone()].copy_from_slice(&cur[row]);
                    }
                }
                last_block = Some(block);
                let local = opts.target == Target::Window;
                let forward = |prop: &mut Vec<f64>, rng: &mut Xoshiro256PlusPlus| {
                    block_pass(model, &layers, prop, c.w, win, block, Some(rng), local)
                };
                let reverse = |cur: &mut Vec<f64>| {
                    block_pass(model, &layers, cur, c.w, win, block, None, local)
                };
                // the reverse proposal density (at the current values) in parallel with the
                // proposal (window target) or with the new crop target (it needs the proposal)
                let ((lq_fwd, lw_new), (lq_rev, lw_cur), lp_new) = match target.as_mut() {
                    None => {
                        let (f, r) = window_passes(
                            model, &layers, &mut prop, &cur, c.w, win, block, &mut rng,
                        );
                        (f, r, None)
                    }
                    Some(t) => {
                        let f = forward(&mut prop, &mut rng);
                        let (r, lp) = rayon::join(|| reverse(&mut cur), || t.propose(&prop, block));
                        (f, r, Some(lp))
                    }
                };
                // log π(x') − log π(x): the crop's (lp is the current crop's), or the window's
                let (dlp, lp_next) = match lp_new {
                    Some(lp_new) => (lp_new - lp, lp_new),
                    None => (lw_new - lw_cur, lp),
                };
                let log_a = if hooks.drop_proposal_terms {
                    dlp
                } else {
                    dlp + lq_rev - lq_fwd
                };
                let u: f64 = rng.random();
                moves += 1;
                // NaN log_a rejects
                if u.ln() < log_a {
                    std::mem::swap(&mut cur, &mut prop);
                    lp = lp_next;
                    if let Some(t) = &mut target {
                        t.accept();
                    }
                    accepted += 1;
                }
            }
        }
        acceptance.push(accepted as f64 / moves.max(1) as f64);
        sweep_seconds.push(ts.elapsed().as_secs_f64());
        hole_bits.push(hole_now(&cur)?);
        if let Some(p) = &mut progress {
            p.set(
                sweep as u64 + 1,
                &format!(
                    "hole {:.4} bit/px, acceptance {:.3}",
                    hole_bits[hole_bits.len() - 1],
                    acceptance[acceptance.len() - 1]
                ),
            );
        }
        if let Some(t) = &mut trace {
            let hole_rect = hc;
            t.push(cut(&cur, c.w, hole_rect));
        }
        if let Some(ck) = &opts.checkpoint {
            if save_clock.due(ck.every_seconds, sweep + 1 == opts.sweeps) {
                let values = ChainValues {
                    cur: &cur,
                    candidate_logliks: &candidate_logliks,
                    acceptance: &acceptance,
                    hole_bits: &hole_bits,
                    init_seconds,
                    sweep_seconds: &sweep_seconds,
                    trace: trace.as_ref(),
                };
                ChainState::new(&fp, sweep + 1, &rng, chosen, values).save(&ck.path)?;
            }
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
        hole_bits,
        init_seconds,
        sweep_seconds,
        crop_loglik,
        trace,
        resumed_after: start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_model(seed: u64, nb_size: usize, hiddens: &[usize]) -> Ride<f32> {
        let mix = crate::model::ride::testing::plain_mixture(3, 2, 3);
        crate::model::ride::testing::tiny_model(seed, nb_size, hiddens, false, mix, 0.3).cast()
    }

    /// The window target's lockstep passes (shared cells stepped once, the others paired) give
    /// bit for bit the two separate passes, and the same proposal, for windows inside the
    /// image and clipped at its edges, with 0, 1 and 2 SLSTM layers.
    #[test]
    fn window_passes_match_two_block_passes_bit_for_bit() {
        let (ih, iw) = (30, 31);
        for (seed, hiddens) in [(1u64, vec![]), (2, vec![5]), (3, vec![4, 6])] {
            let model = random_model(seed, 5, &hiddens);
            let layers: Vec<CellLayer> = model.layers.iter().map(CellLayer::new).collect();
            let mut cur = crate::data::smooth_noise_images(1, ih, iw, seed + 10).remove(0);
            for (win, block) in [
                ((4, 3, 17, 19), (10, 10, 5, 5)),
                ((0, 0, 12, 14), (7, 6, 3, 4)),
                ((13, 12, 17, 19), (20, 22, 5, 5)),
                ((2, 2, 26, 27), (5, 5, 2, 2)),
            ] {
                let win = Rect {
                    top: win.0,
                    left: win.1,
                    h: win.2,
                    w: win.3,
                };
                let block = Rect {
                    top: block.0,
                    left: block.1,
                    h: block.2,
                    w: block.3,
                };
                let mut prop_a = cur.clone();
                let mut ra = Xoshiro256PlusPlus::seed_from_u64(seed);
                let (fa, rv) =
                    window_passes(&model, &layers, &mut prop_a, &cur, iw, win, block, &mut ra);
                let mut prop_b = cur.clone();
                let mut rb = Xoshiro256PlusPlus::seed_from_u64(seed);
                let fb = block_pass(
                    &model,
                    &layers,
                    &mut prop_b,
                    iw,
                    win,
                    block,
                    Some(&mut rb),
                    true,
                );
                let rw = block_pass(&model, &layers, &mut cur, iw, win, block, None, true);
                assert_eq!(prop_a, prop_b, "{hiddens:?} {win:?} {block:?}");
                assert_eq!(fa.0.to_bits(), fb.0.to_bits(), "{hiddens:?} {win:?}");
                assert_eq!(fa.1.to_bits(), fb.1.to_bits(), "{hiddens:?} {win:?}");
                assert_eq!(rv.0.to_bits(), rw.0.to_bits(), "{hiddens:?} {win:?}");
                assert_eq!(rv.1.to_bits(), rw.1.to_bits(), "{hiddens:?} {win:?}");
                // the block was drawn, nothing else was touched
                for r in 0..ih {
                    for c in 0..iw {
                        let same = prop_a[r * iw + c] == cur[r * iw + c];
                        assert_eq!(same, !block.contains(r, c), "({r}, {c}) {win:?} {block:?}");
                    }
                }
                assert!(fa.0.is_finite() && rv.0.is_finite());
                cur = prop_a;
            }
        }
    }
}

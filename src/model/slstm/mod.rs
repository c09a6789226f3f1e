//! Spatial LSTM layer (docs/MODEL.md §3): forward and backward through the 2-D recurrence.
//!
//! Fast path (`forward` / `backward`): one chunk of grids in wavefront order (see
//! [`crate::model::wavefront`]), single-threaded; callers run chunks in parallel.
//! - input projection of all cells: one GEMM `Z = U · W_xᵀ + b`;
//! - per anti-diagonal: one GEMM `Z_d += R_d · W_rᵀ` with `R = [h_left | h_up (| c_left | c_up)]`,
//!   then the fused gate kernel, then block copies of the new states into the next diagonal's
//!   `R` rows;
//! - backward runs the diagonals in reverse, and the weight gradients are two big GEMMs
//!   (`dZᵀ U`, `dZᵀ R`) after the sweep.
//!
//! Inference (`inference.rs`): the same forward keeping only the hidden states.
//! Reference (`reference.rs`, `reference_forward`): the textbook per-cell raster scan in f64 for
//! any layer type, to test the fast path against (the backward is checked against finite
//! differences of it).

mod inference;
mod reference;

pub use inference::InferWork;
pub use reference::reference_forward;

use crate::model::gates;
use crate::model::wavefront::{Link, Wavefront};
use crate::numerics::linalg::{gemm, view, view_mut};
use crate::numerics::packed_gemm::{self, PackedRhs};
use crate::numerics::real::Real;

/// One SLSTM layer. `w` is `[5H, in + K]` row-major, columns `concat(u, h_left, h_up)` and, for
/// the extended variant, `c_left, c_up` (K = 2H or 4H); `b` is `[5H]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlstmLayer<T> {
    /// inputs per cell, hidden units H, whether c_left/c_up feed the affine map: private, set by
    /// [`SlstmLayer::init`] or [`SlstmLayer::from_parts`] (which checks `w` and `b` against them)
    n_in: usize,
    h: usize,
    extended: bool,
    /// W `[5H, width]`, b `[5H]`: read through [`SlstmLayer::w`]/[`SlstmLayer::b`], written
    /// through slices (`w_mut`, `b_mut`) that cannot change their lengths
    w: Vec<T>,
    b: Vec<T>,
}

impl<T> SlstmLayer<T> {
    /// Inputs per cell.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Hidden units H.
    pub fn h(&self) -> usize {
        self.h
    }

    /// Whether the cell states of the left and upper neighbours feed the affine map.
    pub fn extended(&self) -> bool {
        self.extended
    }

    /// W `[5H, width]`.
    pub fn w(&self) -> &[T] {
        &self.w
    }

    /// b `[5H]`.
    pub fn b(&self) -> &[T] {
        &self.b
    }

    pub fn w_mut(&mut self) -> &mut [T] {
        &mut self.w
    }

    pub fn b_mut(&mut self) -> &mut [T] {
        &mut self.b
    }

    /// (W, b) at once, for optimisers that walk every tensor.
    pub fn params_mut(&mut self) -> (&mut [T], &mut [T]) {
        (&mut self.w, &mut self.b)
    }

    /// Width of the recurrent input block K.
    pub fn k(&self) -> usize {
        if self.extended {
            4 * self.h
        } else {
            2 * self.h
        }
    }

    /// Columns of `w`.
    pub fn width(&self) -> usize {
        self.n_in + self.k()
    }

    /// The same layer with its parameters converted by `cv`.
    pub fn cast_from<U>(l: &SlstmLayer<U>, cv: impl Fn(&[U]) -> Vec<T>) -> Self {
        Self {
            n_in: l.n_in,
            h: l.h,
            extended: l.extended,
            w: cv(&l.w),
            b: cv(&l.b),
        }
    }

    /// A layer from its weights `w` `[5H, n_in + 2H (+ 2H extended)]` and biases `b` `[5H]`;
    /// their lengths must match the sizes.
    pub fn from_parts(
        n_in: usize,
        h: usize,
        extended: bool,
        w: Vec<T>,
        b: Vec<T>,
    ) -> anyhow::Result<Self> {
        let layer = Self {
            n_in,
            h,
            extended,
            w,
            b,
        };
        let width = layer.width();
        let (w, b) = (&layer.w, &layer.b);
        if w.len() != 5 * h * width || b.len() != 5 * h {
            anyhow::bail!(
                "SLSTM layer of {n_in} inputs and {h} units needs {} weights and {} biases, got {} and {}",
                5 * h * width,
                5 * h,
                w.len(),
                b.len()
            );
        }
        Ok(layer)
    }
}

/// The recurrent weights as the right operand of the per-diagonal products, prepared once per
/// sweep: a faer view of B `[K, N]` and, for f32 when N fills whole panels, B packed for
/// [`packed_gemm::gemm_acc`].
struct DiagonalRhs<'a, T> {
    b: faer::MatRef<'a, T>,
    packed: Option<PackedRhs>,
}

impl<'a, T: Real> DiagonalRhs<'a, T> {
    /// B is the `rows × cols` matrix at `w` (row stride `ld`), or its transpose.
    fn new(w: &'a [T], (rows, cols, ld): (usize, usize, usize), transposed: bool) -> Self {
        let packed = T::as_f32(w).and_then(|w32| {
            let v = view(w32, rows, cols, ld);
            PackedRhs::pack(if transposed { v.transpose() } else { v })
        });
        let v = view(w, rows, cols, ld);
        Self {
            b: if transposed { v.transpose() } else { v },
            packed,
        }
    }

    /// C `[m, N]` (row stride `ldc`) += A `[m, K]` (row stride `lda`) · B.
    fn acc(&self, c: &mut [T], ldc: usize, a: &[T], lda: usize, m: usize) {
        match (&self.packed, T::as_f32_mut(c), T::as_f32(a)) {
            (Some(p), Some(c32), Some(a32)) => packed_gemm::gemm_acc(c32, ldc, a32, lda, m, p),
            _ => gemm(
                view_mut(c, m, self.b.ncols(), ldc),
                true,
                view(a, m, self.b.nrows(), lda),
                self.b,
            ),
        }
    }
}

/// Gradient of one layer (same shapes as the parameters).
#[derive(Clone, Debug)]
pub struct SlstmGrad<T> {
    pub w: Vec<T>,
    pub b: Vec<T>,
}

/// Scratch of the backward pass (kept between steps to avoid allocation).
#[derive(Clone, Debug, Default)]
pub struct BackwardWork<T> {
    dz: Vec<T>,
    dc: Vec<T>,
    drcat: Vec<T>,
}

/// What the forward pass keeps for the backward pass (one chunk, wavefront order).
#[derive(Clone, Debug, Default)]
pub struct LayerCache<T> {
    /// gate activations `[rows, 5H]`
    pub act: Vec<T>,
    /// cell states `[rows, H]`
    pub c: Vec<T>,
    /// hidden states `[rows, H]` — the layer's output
    pub h: Vec<T>,
    /// recurrent inputs `[rows, 4H]` = `[h_left | h_up | c_left | c_up]`
    pub rcat: Vec<T>,
}

impl<T: Real> SlstmLayer<T> {
    pub fn num_params(&self) -> usize {
        self.w.len() + self.b.len()
    }

    /// Uniform(−0.08, 0.08) weights, zero biases (the original's init).
    pub fn init(n_in: usize, h: usize, extended: bool, rng: &mut impl rand::RngExt) -> Self {
        let mut l = Self {
            n_in,
            h,
            extended,
            w: vec![],
            b: vec![T::zero(); 5 * h],
        };
        let n = 5 * h * l.width();
        l.w = (0..n)
            .map(|_| T::of(rng.random_range(-0.08..0.08)))
            .collect();
        l
    }

    pub fn zero_grad(&self) -> SlstmGrad<T> {
        SlstmGrad {
            w: vec![T::zero(); self.w.len()],
            b: vec![T::zero(); self.b.len()],
        }
    }

    /// Forward through one chunk. u `[rows, n_in]` in wavefront order; fills `cache`.
    pub fn forward(&self, wf: &Wavefront, u: &[T], cache: &mut LayerCache<T>) {
        let (h, h5, n_in, wd) = (self.h, 5 * self.h, self.n_in, self.width());
        let rows = wf.total_rows();
        assert_eq!(u.len(), rows * n_in, "SLSTM input has the wrong size");
        // act, c and h are fully overwritten below; rcat must start at zero (grid borders)
        cache.act.resize(rows * h5, T::zero());
        cache.c.resize(rows * h, T::zero());
        cache.h.resize(rows * h, T::zero());
        cache.rcat.clear();
        cache.rcat.resize(rows * 4 * h, T::zero());
        let LayerCache {
            act,
            c,
            h: hout,
            rcat,
        } = cache;

        // Input projection of every cell at once: Z = U · W_xᵀ, then + b.
        let wx = view(&self.w, h5, n_in, wd);
        gemm(
            view_mut(act, rows, h5, h5),
            false,
            view(u, rows, n_in, n_in),
            wx.transpose(),
        );
        for row in act.chunks_exact_mut(h5) {
            row.iter_mut().zip(&self.b).for_each(|(z, b)| *z += *b);
        }
        // W_rᵀ, prepared once for all diagonals
        let wr_t = DiagonalRhs::new(&self.w[n_in..], (h5, self.k(), wd), true);
        for d in 0..wf.ndiag() {
            let rg = wf.diag(d);
            let n = rg.len();
            if d > 0 {
                // Recurrent part of the diagonal: Z_d += R_d · W_rᵀ.
                wr_t.acc(
                    &mut act[rg.start * h5..rg.end * h5],
                    h5,
                    &rcat[rg.start * 4 * h..rg.end * 4 * h],
                    4 * h,
                    n,
                );
            }
            gates::forward(
                h,
                &mut act[rg.start * h5..rg.end * h5],
                &rcat[rg.start * 4 * h..rg.end * 4 * h],
                &mut c[rg.start * h..rg.end * h],
                &mut hout[rg.start * h..rg.end * h],
            );
            // Hand the new states to the cells right of and below them (next diagonal).
            if d + 1 < wf.ndiag() {
                if let Some(l) = wf.left_link(d + 1) {
                    copy_states(l, h, 0, hout, c, rcat);
                }
                if let Some(l) = wf.up_link(d + 1) {
                    copy_states(l, h, 1, hout, c, rcat);
                }
            }
        }
    }

    /// Backward through one chunk. `dh` `[rows, H]` is dL/d(output h) from above; it is used as
    /// scratch (recurrent contributions are added into it). Adds to `grad`; writes dL/du into
    /// `du` `[rows, n_in]` if given.
    pub fn backward(
        &self,
        wf: &Wavefront,
        u: &[T],
        cache: &LayerCache<T>,
        dh: &mut [T],
        grad: &mut SlstmGrad<T>,
        du: Option<&mut [T]>,
    ) {
        self.backward_with(wf, u, cache, dh, grad, du, &mut BackwardWork::default())
    }

    /// [`Self::backward`] with caller-owned scratch, so repeated steps do not allocate.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_with(
        &self,
        wf: &Wavefront,
        u: &[T],
        cache: &LayerCache<T>,
        dh: &mut [T],
        grad: &mut SlstmGrad<T>,
        du: Option<&mut [T]>,
        work: &mut BackwardWork<T>,
    ) {
        let (h, h5, n_in, wd, k) = (self.h, 5 * self.h, self.n_in, self.width(), self.k());
        let rows = wf.total_rows();
        let LayerCache {
            act,
            c,
            h: hout,
            rcat,
        } = cache;
        let BackwardWork { dz, dc, drcat } = work;
        // dz is fully written by the gate kernel; dc accumulates and must start at zero
        dz.resize(rows * h5, T::zero());
        dc.clear();
        dc.resize(rows * h, T::zero());
        drcat.resize(wf.max_diag_rows() * 4 * h, T::zero());
        let wr = DiagonalRhs::new(&self.w[n_in..], (h5, k, wd), false);
        for d in (0..wf.ndiag()).rev() {
            let rg = wf.diag(d);
            let n = rg.len();
            let drc = &mut drcat[..n * 4 * h];
            gates::backward(
                h,
                &dh[rg.start * h..rg.end * h],
                &dc[rg.start * h..rg.end * h],
                &act[rg.start * h5..rg.end * h5],
                &c[rg.start * h..rg.end * h],
                &hout[rg.start * h..rg.end * h],
                &rcat[rg.start * 4 * h..rg.end * 4 * h],
                &mut dz[rg.start * h5..rg.end * h5],
                drc,
            );
            if d == 0 {
                continue;
            }
            // dR_d = dZ_d · W_r (the extended variant adds onto the forget-gate dc terms).
            drc.chunks_exact_mut(4 * h)
                .for_each(|r| r[..2 * h].fill(T::zero()));
            wr.acc(drc, 4 * h, &dz[rg.start * h5..rg.end * h5], h5, n);
            // Send the gradients back to the left and upper neighbours on diagonal d − 1.
            let base = rg.start;
            if let Some(l) = wf.left_link(d) {
                add_state_grads(l, base, h, 0, drc, dh, dc);
            }
            if let Some(l) = wf.up_link(d) {
                add_state_grads(l, base, h, 1, drc, dh, dc);
            }
        }
        // Weight gradients: dW_x += dZᵀ U, dW_r += dZᵀ R, db += Σ dZ.
        let dzv = view(&dz[..rows * h5], rows, h5, h5);
        gemm(
            view_mut(&mut grad.w, h5, n_in, wd),
            true,
            dzv.transpose(),
            view(u, rows, n_in, n_in),
        );
        gemm(
            view_mut(&mut grad.w[n_in..], h5, k, wd),
            true,
            dzv.transpose(),
            view(rcat, rows, k, 4 * h),
        );
        for row in dz[..rows * h5].chunks_exact(h5) {
            grad.b.iter_mut().zip(row).for_each(|(g, z)| *g += *z);
        }
        if let Some(du) = du {
            gemm(
                view_mut(du, rows, n_in, n_in),
                false,
                dzv,
                view(&self.w, h5, n_in, wd),
            );
        }
    }
}

/// Copies h and c of the source rows into slot `slot` (0 = left, 1 = up) of the rcat rows.
#[inline]
fn copy_states<T: Real>(l: Link, h: usize, slot: usize, hout: &[T], c: &[T], rcat: &mut [T]) {
    for r in 0..l.count {
        let (s, t) = ((l.src + r) * h, (l.dst + r) * 4 * h);
        rcat[t + slot * h..t + (slot + 1) * h].copy_from_slice(&hout[s..s + h]);
        rcat[t + (2 + slot) * h..t + (3 + slot) * h].copy_from_slice(&c[s..s + h]);
    }
}

/// Adds slot `slot` of the diagonal's drcat rows (local to `base`) onto dh and dc of the sources.
#[inline]
fn add_state_grads<T: Real>(
    l: Link,
    base: usize,
    h: usize,
    slot: usize,
    drc: &[T],
    dh: &mut [T],
    dc: &mut [T],
) {
    for r in 0..l.count {
        let (s, t) = ((l.dst - base + r) * 4 * h, (l.src + r) * h);
        let gh = &drc[s + slot * h..s + (slot + 1) * h];
        dh[t..t + h].iter_mut().zip(gh).for_each(|(a, b)| *a += *b);
        let gc = &drc[s + (2 + slot) * h..s + (3 + slot) * h];
        dc[t..t + h].iter_mut().zip(gc).for_each(|(a, b)| *a += *b);
    }
}

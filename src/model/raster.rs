//! The model one cell at a time in raster order (docs/MODEL.md §3–4), for what cannot use the
//! wavefront: ancestral sampling and the inpainting proposals draw each pixel before the next
//! cell reads it. Per cell: the whitened inputs, then every SLSTM layer — one `5H × width`
//! matrix–vector product ([`gemv_rows_acc`], f32, the weights stored transposed) and the SIMD
//! gate kernel ([`gates::forward_simd`], one row) — and the top layer's features for the MCGSM
//! (in f64, as the caller's density and sampling code wants them).

/// Version of the per-cell arithmetic (this stepper and [`crate::model::mcgsm::CellMixture`]):
/// bump it when a change alters what sampling or inpainting produce for a seed, so cached
/// inpainting results are not reused (training and evaluation have `train::NUMERICS_VERSION`).
///
/// 2: the SLSTM in f32 with SIMD products and gate kernel, the MCGSM's products in f32.
pub const RASTER_VERSION: u32 = 2;

use crate::model::gates;
use crate::model::neighbourhood::Neighbourhood;
use crate::model::slstm::SlstmLayer;
use crate::model::whitening::Whitening;
use crate::numerics::gemv::{gemv2_rows_acc, gemv_rows_acc};
use crate::numerics::real::Real;

/// One SLSTM layer for per-cell steps: Wᵀ `[width, 5H]` and b `[5H]` in f32.
pub struct CellLayer {
    n_in: usize,
    pub h: usize,
    extended: bool,
    width: usize,
    wt: Vec<f32>,
    b: Vec<f32>,
}

impl CellLayer {
    pub fn new<T: Real>(l: &SlstmLayer<T>) -> Self {
        let (rows, width) = (5 * l.h(), l.width());
        let w = l.w();
        let mut wt = vec![0.0f32; rows * width];
        for r in 0..rows {
            for m in 0..width {
                wt[m * rows + r] = w[r * width + m].as_f64() as f32;
            }
        }
        Self {
            n_in: l.n_in(),
            h: l.h(),
            extended: l.extended(),
            width,
            wt,
            b: l.b().iter().map(|v| v.as_f64() as f32).collect(),
        }
    }

    /// One cell: states from input u `[n_in]` and the left/up (h, c) states (zeros outside the
    /// grid). `x` (width), `rc` (4H) and `z` (5H) are scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn cell(
        &self,
        u: &[f32],
        left: (&[f32], &[f32]),
        up: (&[f32], &[f32]),
        (x, rc, z): (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>),
        h_out: &mut [f32],
        c_out: &mut [f32],
    ) {
        self.gather(u, left, up, (x, rc, z));
        gemv_rows_acc(&self.wt, x, z);
        gates::forward_simd(self.h, z, rc, c_out, h_out);
    }

    /// [`Self::cell`] for two independent cells at once (one pass over the weights), bit for
    /// bit what two calls give.
    pub fn cell_pair(&self, a: CellIo<'_>, b: CellIo<'_>) {
        let (xa, rca, za) = a.scratch;
        let (xb, rcb, zb) = b.scratch;
        self.gather(a.u, a.left, a.up, (xa, rca, za));
        self.gather(b.u, b.left, b.up, (xb, rcb, zb));
        gemv2_rows_acc(&self.wt, (xa, za), (xb, zb));
        gates::forward_simd(self.h, za, rca, a.c_out, a.h_out);
        gates::forward_simd(self.h, zb, rcb, b.c_out, b.h_out);
    }

    /// x = [u, h_left, h_up(, c_left, c_up)], rc = [h_left, h_up, c_left, c_up], z = b.
    fn gather(
        &self,
        u: &[f32],
        (h_left, c_left): (&[f32], &[f32]),
        (h_up, c_up): (&[f32], &[f32]),
        (x, rc, z): (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>),
    ) {
        rc.clear();
        rc.extend_from_slice(h_left);
        rc.extend_from_slice(h_up);
        rc.extend_from_slice(c_left);
        rc.extend_from_slice(c_up);
        x.clear();
        x.extend_from_slice(&u[..self.n_in]);
        x.extend_from_slice(&rc[..self.width - self.n_in]);
        z.clear();
        z.extend_from_slice(&self.b);
        debug_assert!(self.extended || self.width == self.n_in + 2 * self.h);
    }
}

/// What one cell of one layer reads and writes ([`CellLayer::cell_pair`]).
pub struct CellIo<'a> {
    u: &'a [f32],
    left: (&'a [f32], &'a [f32]),
    up: (&'a [f32], &'a [f32]),
    scratch: &'a mut (Vec<f32>, Vec<f32>, Vec<f32>),
    h_out: &'a mut [f32],
    c_out: &'a mut [f32],
}

/// The model over a `· × gc` grid of cells in raster order, one cell at a time, keeping the
/// states of the previous and the current row of cells per layer.
pub struct RasterStack<'a> {
    layers: &'a [CellLayer],
    offs: Vec<(usize, usize)>,
    // (hidden, cell) states of the previous / current row of cells, per layer: [gc · H_l]
    prev: Vec<(Vec<f32>, Vec<f32>)>,
    cur: Vec<(Vec<f32>, Vec<f32>)>,
    zeros: Vec<f32>,
    x: Vec<f64>,
    xw: Vec<f64>,
    u: Vec<f32>,
    top: Vec<f64>,
    scratch: (Vec<f32>, Vec<f32>, Vec<f32>),
}

impl<'a> RasterStack<'a> {
    pub fn new(layers: &'a [CellLayer], nb: &Neighbourhood, gc: usize) -> Self {
        let states: Vec<(Vec<f32>, Vec<f32>)> = layers
            .iter()
            .map(|l| (vec![0.0; gc * l.h], vec![0.0; gc * l.h]))
            .collect();
        let n = nb.n_inputs();
        Self {
            layers,
            offs: nb.input_offsets(),
            prev: states.clone(),
            cur: states,
            zeros: vec![0.0; layers.iter().map(|l| l.h).max().unwrap_or(0)],
            x: vec![0.0; n],
            xw: vec![0.0; n],
            u: vec![0.0; n],
            top: vec![],
            scratch: (vec![], vec![], vec![]),
        }
    }

    /// Cell (i, j) of row i (call rows in order, [`Self::next_row`] between them): its inputs
    /// are read from `img` (row-major, width `iw`) with the grid's top-left neighbourhood at
    /// `origin`. Returns (whitened inputs, top-layer features = the MCGSM's inputs).
    pub fn step(
        &mut self,
        wh: &Whitening,
        img: &[f64],
        iw: usize,
        origin: (usize, usize),
        (i, j): (usize, usize),
    ) -> (&[f64], &[f64]) {
        self.load_inputs(wh, img, iw, origin, (i, j));
        let layers = self.layers;
        for (l, layer) in layers.iter().enumerate() {
            let io = self.cell_io(l, (i, j));
            layer.cell(
                io.u,
                io.left,
                io.up,
                (&mut io.scratch.0, &mut io.scratch.1, &mut io.scratch.2),
                io.h_out,
                io.c_out,
            );
        }
        self.load_top(j);
        (&self.xw, &self.top)
    }

    /// [`Self::step`] of two stacks over the same weights at the same cell, `a` reading
    /// `img_a` and `b` reading `img_b`, with one pass over each layer's weights; bit for bit
    /// what two calls of `step` give. Returns ((xw, top) of a, (xw, top) of b).
    #[allow(clippy::type_complexity)]
    pub fn step_pair<'s>(
        a: &'s mut Self,
        b: &'s mut Self,
        wh: &Whitening,
        (img_a, img_b): (&[f64], &[f64]),
        iw: usize,
        origin: (usize, usize),
        (i, j): (usize, usize),
    ) -> ((&'s [f64], &'s [f64]), (&'s [f64], &'s [f64])) {
        assert!(
            std::ptr::eq(a.layers, b.layers),
            "step_pair needs stacks of the same layers"
        );
        a.load_inputs(wh, img_a, iw, origin, (i, j));
        b.load_inputs(wh, img_b, iw, origin, (i, j));
        let layers = a.layers;
        for (l, layer) in layers.iter().enumerate() {
            layer.cell_pair(a.cell_io(l, (i, j)), b.cell_io(l, (i, j)));
        }
        a.load_top(j);
        b.load_top(j);
        ((&a.xw, &a.top), (&b.xw, &b.top))
    }

    /// Cell j of the current row takes `other`'s states (every layer), as if it had been
    /// stepped here on the same inputs: for cells two stacks share.
    pub fn copy_cell_from(&mut self, other: &Self, j: usize) {
        for (l, layer) in self.layers.iter().enumerate() {
            let r = j * layer.h..(j + 1) * layer.h;
            self.cur[l].0[r.clone()].copy_from_slice(&other.cur[l].0[r.clone()]);
            self.cur[l].1[r.clone()].copy_from_slice(&other.cur[l].1[r]);
        }
    }

    /// The neighbourhood of cell (i, j) from `img`, whitened (f64 `xw` and f32 `u`).
    fn load_inputs(
        &mut self,
        wh: &Whitening,
        img: &[f64],
        iw: usize,
        origin: (usize, usize),
        (i, j): (usize, usize),
    ) {
        for (v, &(dr, dc)) in self.x.iter_mut().zip(&self.offs) {
            *v = img[(origin.0 + i + dr) * iw + origin.1 + j + dc];
        }
        wh.whiten_input(&self.x, &mut self.xw);
        for (u, x) in self.u.iter_mut().zip(&self.xw) {
            *u = *x as f32;
        }
    }

    /// Layer l at cell (i, j): it reads the layer below's new state of this cell (or the
    /// whitened input), its left neighbour from the current row and its upper one from the
    /// previous row (zeros outside the grid), and writes its state into the current row.
    fn cell_io(&mut self, l: usize, (i, j): (usize, usize)) -> CellIo<'_> {
        let layers = self.layers;
        let hh = layers[l].h;
        let zeros = &self.zeros[..hh];
        let (below, this) = self.cur.split_at_mut(l);
        let u: &[f32] = if l == 0 {
            &self.u
        } else {
            let hb = layers[l - 1].h;
            &below[l - 1].0[j * hb..(j + 1) * hb]
        };
        let (hc, cc) = &mut this[0];
        let (hl, hr) = hc.split_at_mut(j * hh);
        let (cl, cr) = cc.split_at_mut(j * hh);
        let left = if j > 0 {
            (&hl[(j - 1) * hh..], &cl[(j - 1) * hh..])
        } else {
            (zeros, zeros)
        };
        let up = if i > 0 {
            let (hp, cp) = &self.prev[l];
            (&hp[j * hh..(j + 1) * hh], &cp[j * hh..(j + 1) * hh])
        } else {
            (zeros, zeros)
        };
        CellIo {
            u,
            left,
            up,
            scratch: &mut self.scratch,
            h_out: &mut hr[..hh],
            c_out: &mut cr[..hh],
        }
    }

    /// The top layer's features of cell j of the current row (f64), or the whitened inputs
    /// for a model without SLSTM layers.
    fn load_top(&mut self, j: usize) {
        self.top.clear();
        match self.layers.last() {
            Some(l) => {
                let top = &self.cur[self.layers.len() - 1].0[j * l.h..(j + 1) * l.h];
                self.top.extend(top.iter().map(|&v| v as f64));
            }
            None => self.top.extend_from_slice(&self.xw),
        }
    }

    /// The current row of cells becomes the previous one.
    pub fn next_row(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.cur);
    }
}

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
use crate::numerics::gemv::gemv_rows_acc;
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
        (h_left, c_left): (&[f32], &[f32]),
        (h_up, c_up): (&[f32], &[f32]),
        (x, rc, z): (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>),
        h_out: &mut [f32],
        c_out: &mut [f32],
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
        gemv_rows_acc(&self.wt, x, z);
        gates::forward_simd(self.h, z, rc, c_out, h_out);
        debug_assert!(self.extended || self.width == self.n_in + 2 * self.h);
    }
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
        for (v, &(dr, dc)) in self.x.iter_mut().zip(&self.offs) {
            *v = img[(origin.0 + i + dr) * iw + origin.1 + j + dc];
        }
        wh.whiten_input(&self.x, &mut self.xw);
        for (u, x) in self.u.iter_mut().zip(&self.xw) {
            *u = *x as f32;
        }
        let layers = self.layers;
        let zeros = &self.zeros[..];
        for (l, layer) in layers.iter().enumerate() {
            let hh = layer.h;
            let (below, this) = self.cur.split_at_mut(l);
            // layer l reads the layer below's new state of this cell (or the whitened input),
            // its left neighbour from the current row and its upper one from the previous row
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
                (&zeros[..hh], &zeros[..hh])
            };
            let up = if i > 0 {
                let (hp, cp) = &self.prev[l];
                (&hp[j * hh..(j + 1) * hh], &cp[j * hh..(j + 1) * hh])
            } else {
                (&zeros[..hh], &zeros[..hh])
            };
            let (x, rc, z) = &mut self.scratch;
            layer.cell(u, left, up, (x, rc, z), &mut hr[..hh], &mut cr[..hh]);
        }
        self.top.clear();
        match layers.last() {
            Some(l) => {
                let top = &self.cur[layers.len() - 1].0[j * l.h..(j + 1) * l.h];
                self.top.extend(top.iter().map(|&v| v as f64));
            }
            None => self.top.extend_from_slice(&self.xw),
        }
        (&self.xw, &self.top)
    }

    /// The current row of cells becomes the previous one.
    pub fn next_row(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.cur);
    }
}

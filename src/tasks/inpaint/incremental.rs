//! The exact crop target, updated incrementally: the SLSTM states and log-likelihood of every
//! cell of the evaluation crop are kept, and a proposal recomputes only the cells it can
//! change — those at or below-right of the first cell whose neighbourhood holds a changed
//! pixel (a cell's states depend on its inputs and on the cells above and to its left); for
//! an MCGSM (no SLSTM layers) only the cells whose neighbourhood holds a changed pixel. Cells
//! are computed one at a time with the raster stepper's layers ([`CellLayer`]) and the per-cell
//! MCGSM, so every cell's value is the same function of the pixels whichever move computed it:
//! the target stays a fixed function of the crop. The whole-crop batch evaluation
//! (`score::crop_loglik`) is the reference this is tested against.

use super::Rect;
use crate::model::mcgsm::CellMixture;
use crate::model::raster::CellLayer;
use crate::model::ride::Ride;

/// Per-cell states (per layer, `[cells, H_l]`) and log-likelihoods (`[cells]`, nats, data units)
/// of a crop's `gr × gc` grid.
#[derive(Clone)]
pub struct CropCells {
    gr: usize,
    gc: usize,
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    ll: Vec<f64>,
}

/// Scratch of [`CropTarget`]: the recomputed region's states and log-likelihoods, and the
/// per-cell buffers.
struct Work {
    next: CropCells,
    x: Vec<f64>,
    xw: Vec<f64>,
    u: Vec<f32>,
    top: Vec<f64>,
    zeros: Vec<f32>,
    scratch: (Vec<f32>, Vec<f32>, Vec<f32>),
    /// the neighbourhood's input offsets and the per-cell MCGSM, prepared once
    offs: Vec<(usize, usize)>,
    mix: CellMixture,
}

/// The exact target log p_model(crop) of the current crop, with what a proposal needs.
pub struct CropTarget<'a> {
    model: &'a Ride<f32>,
    layers: &'a [CellLayer],
    cw: usize,
    cur: CropCells,
    /// Σ of the current cells' log-likelihoods
    pub total: f64,
    work: Work,
    /// the recomputed cells of the last proposal: rows from.0..to.0, columns from.1..to.1
    from: (usize, usize),
    to: (usize, usize),
}

impl<'a> CropTarget<'a> {
    /// The target of `crop` (`ch × cw`, model units): every cell computed once.
    pub fn new(
        model: &'a Ride<f32>,
        layers: &'a [CellLayer],
        crop: &[f64],
        ch: usize,
        cw: usize,
    ) -> Self {
        let (gr, gc) = model.nb.grid(ch, cw).unwrap_or((0, 0));
        let cells = |h: usize| vec![0.0f32; gr * gc * h];
        let empty = CropCells {
            gr,
            gc,
            h: layers.iter().map(|l| cells(l.h)).collect(),
            c: layers.iter().map(|l| cells(l.h)).collect(),
            ll: vec![0.0; gr * gc],
        };
        let n = model.nb.n_inputs();
        let mut t = Self {
            model,
            layers,
            cw,
            cur: empty.clone(),
            total: 0.0,
            work: Work {
                next: empty,
                x: vec![0.0; n],
                xw: vec![0.0; n],
                u: vec![0.0; n],
                top: vec![],
                zeros: vec![0.0; layers.iter().map(|l| l.h).max().unwrap_or(0)],
                scratch: (vec![], vec![], vec![]),
                offs: model.nb.input_offsets(),
                mix: CellMixture::new(&model.mcgsm),
            },
            from: (0, 0),
            to: (0, 0),
        };
        let total = t.propose(
            crop,
            Rect {
                top: 0,
                left: 0,
                h: ch,
                w: cw,
            },
        );
        t.accept();
        debug_assert_eq!(t.total, total);
        t
    }

    /// log π of `crop` (the current crop changed inside `changed`, crop coordinates): the cells
    /// that can see the change are recomputed into scratch; [`Self::accept`] makes it current.
    pub fn propose(&mut self, crop: &[f64], changed: Rect) -> f64 {
        let nb = &self.model.nb;
        let (orow, _) = nb.output_pos();
        let (gr, gc) = (self.cur.gr, self.cur.gc);
        // a pixel (r, c) is read by cells (i, j) with r − orow ≤ i ≤ r and c − (cols − 1) ≤ j ≤ c
        let i0 = changed.top.saturating_sub(orow).min(gr);
        let j0 = changed.left.saturating_sub(nb.cols - 1).min(gc);
        // without recurrence a cell sees only its neighbourhood: the last cells reading the
        // change are those with output row changed.bottom() − 1 + … (i ≤ r) and column j ≤ c
        let (i1, j1) = match self.layers.is_empty() {
            true => (changed.bottom().min(gr), changed.right().min(gc)),
            false => (gr, gc),
        };
        self.from = (i0, j0);
        self.to = (i1, j1);
        for i in i0..i1 {
            for j in j0..j1 {
                self.cell(crop, i, j);
            }
        }
        // unchanged cells from the current state, the rest from scratch
        let mut total = 0.0;
        for i in 0..gr {
            for j in 0..gc {
                let k = i * gc + j;
                total += if (i0..i1).contains(&i) && (j0..j1).contains(&j) {
                    self.work.next.ll[k]
                } else {
                    self.cur.ll[k]
                };
            }
        }
        total
    }

    /// The last proposal becomes the current crop; [`Self::total`] becomes the total
    /// [`Self::propose`] returned (the same sum in the same order).
    pub fn accept(&mut self) {
        let ((i0, j0), (i1, j1)) = (self.from, self.to);
        let gc = self.cur.gc;
        for (l, layer) in self.layers.iter().enumerate() {
            let hh = layer.h;
            for i in i0..i1 {
                let r = (i * gc + j0) * hh..(i * gc + j1) * hh;
                self.cur.h[l][r.clone()].copy_from_slice(&self.work.next.h[l][r.clone()]);
                self.cur.c[l][r.clone()].copy_from_slice(&self.work.next.c[l][r]);
            }
        }
        for i in i0..i1 {
            let r = i * gc + j0..i * gc + j1;
            self.cur.ll[r.clone()].copy_from_slice(&self.work.next.ll[r]);
        }
        self.total = self.cur.ll.iter().sum();
    }

    /// Cell (i, j) of the proposal: neighbours inside the recomputed region come from scratch,
    /// the others from the current state.
    fn cell(&mut self, crop: &[f64], i: usize, j: usize) {
        let (model, cw, (i0, j0)) = (self.model, self.cw, self.from);
        let nb = &model.nb;
        let gc = self.cur.gc;
        let w = &mut self.work;
        for (v, &(dr, dc)) in w.x.iter_mut().zip(&w.offs) {
            *v = crop[(i + dr) * cw + j + dc];
        }
        model.whitening.whiten_input(&w.x, &mut w.xw);
        for (u, x) in w.u.iter_mut().zip(&w.xw) {
            *u = *x as f32;
        }
        let k = i * gc + j;
        // a neighbour inside the recomputed region comes from scratch, else the current state
        let fresh = |ii: usize, jj: usize| ii >= i0 && jj >= j0;
        for (l, layer) in self.layers.iter().enumerate() {
            let hh = layer.h;
            let (below_h, this_h) = w.next.h.split_at_mut(l);
            // scratch cells before k (left and up neighbours) and this cell's slot
            let (done_h, out_h) = this_h[0].split_at_mut(k * hh);
            let (done_c, out_c) = w.next.c[l].split_at_mut(k * hh);
            let (cur_h, cur_c) = (&self.cur.h[l], &self.cur.c[l]);
            let at = |cell: usize| cell * hh..(cell + 1) * hh;
            let zeros = &w.zeros[..hh];
            let left: (&[f32], &[f32]) = match j {
                0 => (zeros, zeros),
                _ if fresh(i, j - 1) => (&done_h[at(k - 1)], &done_c[at(k - 1)]),
                _ => (&cur_h[at(k - 1)], &cur_c[at(k - 1)]),
            };
            let up: (&[f32], &[f32]) = match i {
                0 => (zeros, zeros),
                _ if fresh(i - 1, j) => (&done_h[at(k - gc)], &done_c[at(k - gc)]),
                _ => (&cur_h[at(k - gc)], &cur_c[at(k - gc)]),
            };
            let input: &[f32] = if l == 0 {
                &w.u
            } else {
                let hb = self.layers[l - 1].h;
                &below_h[l - 1][k * hb..(k + 1) * hb]
            };
            let (x, rc, z) = &mut w.scratch;
            layer.cell(
                input,
                left,
                up,
                (x, rc, z),
                &mut out_h[..hh],
                &mut out_c[..hh],
            );
        }
        w.top.clear();
        match self.layers.last() {
            Some(l) => {
                let last = self.layers.len() - 1;
                w.top.extend(
                    w.next.h[last][k * l.h..(k + 1) * l.h]
                        .iter()
                        .map(|&v| v as f64),
                );
            }
            None => w.top.extend_from_slice(&w.xw),
        }
        let (orow, ocol) = nb.output_pos();
        let y = crop[(i + orow) * cw + j + ocol];
        let yw = model.whitening.whiten_output(&w.xw, y);
        w.next.ll[k] = w.mix.loglik(&w.top, yw) + model.whitening.log_jacobian();
    }
}

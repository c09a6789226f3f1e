//! The SLSTM forward for inference (docs/MODEL.md §3): the wavefront sweep of `forward`, keeping
//! only the hidden states, so the working set of one diagonal stays in cache.

use super::{DiagonalRhs, SlstmLayer};
use crate::model::gates;
use crate::model::wavefront::Wavefront;
use crate::numerics::linalg::{gemm, view, view_mut};
use crate::numerics::real::Real;

/// Scratch of the inference forward: one diagonal's worth of gates, recurrent inputs and cells.
#[derive(Clone, Debug, Default)]
pub struct InferWork<T> {
    act: Vec<T>,
    rcat: Vec<T>,
    c: Vec<T>,
}

impl<T: Real> SlstmLayer<T> {
    /// Forward for inference: same result as [`Self::forward`] but keeps only the hidden states
    /// (`hout` `[rows, H]`); gates, recurrent inputs and cell states live for one diagonal, so
    /// the working set stays in cache. Shapes: u `[rows, n_in]` in wavefront order.
    pub fn forward_inference(
        &self,
        wf: &Wavefront,
        u: &[T],
        hout: &mut Vec<T>,
        ws: &mut InferWork<T>,
    ) {
        let (h, h5, n_in, wd, k) = (self.h, 5 * self.h, self.n_in, self.width(), self.k());
        let rows = wf.total_rows();
        assert_eq!(u.len(), rows * n_in, "SLSTM input has the wrong size");
        hout.clear();
        hout.resize(rows * h, T::zero());
        let m = wf.max_diag_rows();
        for (buf, width) in [(&mut ws.act, h5), (&mut ws.rcat, 4 * h), (&mut ws.c, h)] {
            buf.clear();
            buf.resize(m * width, T::zero());
        }
        let wx = view(&self.w, h5, n_in, wd);
        let wr_t = DiagonalRhs::new(&self.w[n_in..], (h5, k, wd), true);
        for d in 0..wf.ndiag() {
            let rg = wf.diag(d);
            let n = rg.len();
            let act = &mut ws.act[..n * h5];
            gemm(
                view_mut(act, n, h5, h5),
                false,
                view(&u[rg.start * n_in..], n, n_in, n_in),
                wx.transpose(),
            );
            for row in act.chunks_exact_mut(h5) {
                row.iter_mut().zip(&self.b).for_each(|(z, b)| *z += *b);
            }
            if d > 0 {
                wr_t.acc(act, h5, &ws.rcat[..n * 4 * h], 4 * h, n);
            }
            gates::forward(
                h,
                act,
                &ws.rcat[..n * 4 * h],
                &mut ws.c[..n * h],
                &mut hout[rg.start * h..rg.end * h],
            );
            if d + 1 == wf.ndiag() {
                break;
            }
            // recurrent inputs of the next diagonal, from this one's h (global) and c (local)
            let next = wf.diag(d + 1);
            ws.rcat[..next.len() * 4 * h].fill(T::zero());
            for (slot, link) in [(0, wf.left_link(d + 1)), (1, wf.up_link(d + 1))] {
                let Some(l) = link else { continue };
                for r in 0..l.count {
                    let (src, dst) = (l.src - rg.start + r, l.dst - next.start + r);
                    let t = dst * 4 * h;
                    let hs = (rg.start + src) * h;
                    ws.rcat[t + slot * h..t + (slot + 1) * h].copy_from_slice(&hout[hs..hs + h]);
                    ws.rcat[t + (2 + slot) * h..t + (3 + slot) * h]
                        .copy_from_slice(&ws.c[src * h..(src + 1) * h]);
                }
            }
        }
    }
}

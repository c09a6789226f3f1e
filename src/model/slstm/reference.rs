//! The plain reference of the SLSTM layer: one grid, raster order, one cell at a time, the
//! textbook formulas in f64 whatever the layer's type. The fast path is tested against it.

use super::SlstmLayer;
use crate::model::gates;
use crate::numerics::real::Real;

/// Reference forward of one grid (raster order). u `[R·C, n_in]` → (h `[R·C, H]`, c `[R·C, H]`,
/// gates `[R·C, 5H]`), in f64 whatever the layer's type.
pub fn reference_forward<T: Real>(
    l: &SlstmLayer<T>,
    u: &[f64],
    r: usize,
    cc: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (h, n_in, wd) = (l.h, l.n_in, l.width());
    let mut hs = vec![0.0; r * cc * h];
    let mut cs = vec![0.0; r * cc * h];
    let mut gs = vec![0.0; r * cc * 5 * h];
    let mut inp = vec![0.0; wd];
    let zeros = vec![0.0; h];
    for i in 0..r {
        for j in 0..cc {
            let cell = i * cc + j;
            inp.iter_mut().for_each(|v| *v = 0.0);
            inp[..n_in].copy_from_slice(&u[cell * n_in..(cell + 1) * n_in]);
            if j > 0 {
                let p = cell - 1;
                inp[n_in..n_in + h].copy_from_slice(&hs[p * h..(p + 1) * h]);
                if l.extended {
                    inp[n_in + 2 * h..n_in + 3 * h].copy_from_slice(&cs[p * h..(p + 1) * h]);
                }
            }
            if i > 0 {
                let p = cell - cc;
                inp[n_in + h..n_in + 2 * h].copy_from_slice(&hs[p * h..(p + 1) * h]);
                if l.extended {
                    inp[n_in + 3 * h..n_in + 4 * h].copy_from_slice(&cs[p * h..(p + 1) * h]);
                }
            }
            // the affine map in f64, then the one cell function
            let mut z: Vec<f64> = (0..5 * h)
                .map(|row| {
                    l.b[row].as_f64()
                        + (0..wd)
                            .map(|m| l.w[row * wd + m].as_f64() * inp[m])
                            .sum::<f64>()
                })
                .collect();
            // the neighbours' cell states (zero outside the grid); this cell's come after them
            let (before, this) = cs.split_at_mut(cell * h);
            let cl = if j > 0 {
                &before[(cell - 1) * h..]
            } else {
                &zeros[..]
            };
            let cu = if i > 0 {
                &before[(cell - cc) * h..]
            } else {
                &zeros[..]
            };
            gates::cell(
                &mut z,
                cl,
                cu,
                &mut this[..h],
                &mut hs[cell * h..(cell + 1) * h],
            );
            gs[cell * 5 * h..(cell + 1) * 5 * h].copy_from_slice(&z);
        }
    }
    (hs, cs, gs)
}

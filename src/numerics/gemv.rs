//! One matrix–vector product per cell, for the raster-order stepper (sampling, inpainting):
//! y `[N]` += Σ_m x[m] · A[m, :] with A `[M, N]` row-major — the SLSTM's weights stored
//! transposed, so every term is a contiguous row and the kernel is a chain of broadcast FMAs
//! into a block of y held in registers. A plain reference sits beside it.

use pulp::{Simd, WithSimd};

/// Vectors of y kept in registers per pass over A.
const BLOCK: usize = 8;

/// y `[n]` += xᵀ A, A `[x.len(), n]` row-major (pulp SIMD, runtime dispatch). Terms with
/// x[m] = 0 (states outside the grid) are skipped.
pub fn gemv_rows_acc(a: &[f32], x: &[f32], y: &mut [f32]) {
    let n = y.len();
    assert_eq!(a.len(), x.len() * n, "A must be [x.len(), y.len()]");
    pulp::Arch::new().dispatch(Kernel { a, x, y });
}

struct Kernel<'a> {
    a: &'a [f32],
    x: &'a [f32],
    y: &'a mut [f32],
}

impl WithSimd for Kernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Kernel { a, x, y } = self;
        let n = y.len();
        let lanes = S::F32_LANES;
        let full = n / lanes * lanes;
        let (yv, _) = S::as_mut_simd_f32s(&mut y[..full]);
        let nv = yv.len();
        let mut v0 = 0;
        while v0 < nv {
            let nb = BLOCK.min(nv - v0);
            let mut acc = [s.splat_f32s(0.0); BLOCK];
            acc[..nb].copy_from_slice(&yv[v0..v0 + nb]);
            for (m, &xm) in x.iter().enumerate() {
                if xm == 0.0 {
                    continue;
                }
                let xs = s.splat_f32s(xm);
                let (row, _) = S::as_simd_f32s(&a[m * n + v0 * lanes..m * n + full]);
                for k in 0..nb {
                    acc[k] = s.mul_add_f32s(xs, row[k], acc[k]);
                }
            }
            yv[v0..v0 + nb].copy_from_slice(&acc[..nb]);
            v0 += nb;
        }
        // the columns past the last full vector
        for col in full..n {
            y[col] += x
                .iter()
                .enumerate()
                .map(|(m, &xm)| xm * a[m * n + col])
                .sum::<f32>();
        }
    }
}

/// Plain reference of [`gemv_rows_acc`].
pub fn reference_gemv_rows_acc(a: &[f32], x: &[f32], y: &mut [f32]) {
    let n = y.len();
    for (m, &xm) in x.iter().enumerate() {
        for (yi, ai) in y.iter_mut().zip(&a[m * n..(m + 1) * n]) {
            *yi += xm * ai;
        }
    }
}

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

/// Two products with the same A in one pass over it: y1 += x1ᵀ A, y2 += x2ᵀ A (the inpainting
/// move's proposal and reverse passes step in lockstep, so A is read once for both). Every y
/// element sees the same FMAs in the same order as [`gemv_rows_acc`] would give it (a zero x
/// term adds an exact 0), so the results are bit-identical to two single calls.
pub fn gemv2_rows_acc(a: &[f32], (x1, y1): (&[f32], &mut [f32]), (x2, y2): (&[f32], &mut [f32])) {
    let n = y1.len();
    assert_eq!(y2.len(), n, "y1 and y2 must have the same length");
    assert_eq!(x1.len(), x2.len(), "x1 and x2 must have the same length");
    assert_eq!(a.len(), x1.len() * n, "A must be [x.len(), y.len()]");
    pulp::Arch::new().dispatch(Kernel2 { a, x1, x2, y1, y2 });
}

/// Vectors of each y kept in registers per pass over A by [`gemv2_rows_acc`].
const BLOCK2: usize = 4;

struct Kernel2<'a> {
    a: &'a [f32],
    x1: &'a [f32],
    x2: &'a [f32],
    y1: &'a mut [f32],
    y2: &'a mut [f32],
}

impl WithSimd for Kernel2<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Kernel2 { a, x1, x2, y1, y2 } = self;
        let n = y1.len();
        let lanes = S::F32_LANES;
        let full = n / lanes * lanes;
        let (yv1, _) = S::as_mut_simd_f32s(&mut y1[..full]);
        let (yv2, _) = S::as_mut_simd_f32s(&mut y2[..full]);
        let nv = yv1.len();
        let mut v0 = 0;
        while v0 < nv {
            let nb = BLOCK2.min(nv - v0);
            let mut acc1 = [s.splat_f32s(0.0); BLOCK2];
            let mut acc2 = [s.splat_f32s(0.0); BLOCK2];
            acc1[..nb].copy_from_slice(&yv1[v0..v0 + nb]);
            acc2[..nb].copy_from_slice(&yv2[v0..v0 + nb]);
            for (m, (&xm1, &xm2)) in x1.iter().zip(x2).enumerate() {
                let (row, _) = S::as_simd_f32s(&a[m * n + v0 * lanes..m * n + full]);
                // a zero term is skipped, as in the single kernel
                if xm1 != 0.0 {
                    let xs = s.splat_f32s(xm1);
                    for k in 0..nb {
                        acc1[k] = s.mul_add_f32s(xs, row[k], acc1[k]);
                    }
                }
                if xm2 != 0.0 {
                    let xs = s.splat_f32s(xm2);
                    for k in 0..nb {
                        acc2[k] = s.mul_add_f32s(xs, row[k], acc2[k]);
                    }
                }
            }
            yv1[v0..v0 + nb].copy_from_slice(&acc1[..nb]);
            yv2[v0..v0 + nb].copy_from_slice(&acc2[..nb]);
            v0 += nb;
        }
        for col in full..n {
            for (x, y) in [(x1, &mut *y1), (x2, &mut *y2)] {
                y[col] += x
                    .iter()
                    .enumerate()
                    .map(|(m, &xm)| xm * a[m * n + col])
                    .sum::<f32>();
            }
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

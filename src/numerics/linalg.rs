//! Thin row-major wrappers around faer's GEMM and symmetric eigendecomposition.
//!
//! All matrices in this crate are row-major slices; these helpers build faer views over them
//! (with an explicit row stride where a matrix is a column block of a wider one).
//!
//! NOTE: faer 0.24.4's `MatMut::from_row_major_slice_with_stride_mut` builds a *column-major*
//! view (row stride 1, column stride = the given row stride), so a GEMM into it writes out of
//! bounds; `tests/linalg.rs` checks that a GEMM into a column block leaves every other entry
//! alone. We build mutable
//! row-major views as the transpose of a column-major view instead.

use crate::numerics::real::Real;
use faer::{Accum, MatMut, MatRef, Par};

/// Row-major view of `rows × cols` with row stride `ld` starting at `s[0]`.
#[inline]
pub fn view<T: Real>(s: &[T], rows: usize, cols: usize, ld: usize) -> MatRef<'_, T> {
    if rows == 0 || cols == 0 {
        return MatRef::from_row_major_slice(&s[..0], rows, cols);
    }
    MatRef::from_row_major_slice_with_stride(&s[..(rows - 1) * ld + cols], rows, cols, ld)
}

/// Mutable row-major view of `rows × cols` with row stride `ld`.
#[inline]
pub fn view_mut<T: Real>(s: &mut [T], rows: usize, cols: usize, ld: usize) -> MatMut<'_, T> {
    if rows == 0 || cols == 0 {
        return MatMut::from_row_major_slice_mut(&mut s[..0], rows, cols);
    }
    MatMut::from_column_major_slice_with_stride_mut(
        &mut s[..(rows - 1) * ld + cols],
        cols,
        rows,
        ld,
    )
    .transpose_mut()
}

/// `dst (+)= lhs · rhs`, single-threaded (threads split the batch, not the GEMM).
#[inline]
pub fn gemm<T: Real>(dst: MatMut<'_, T>, accumulate: bool, lhs: MatRef<'_, T>, rhs: MatRef<'_, T>) {
    if dst.nrows() == 0 || dst.ncols() == 0 {
        return;
    }
    let acc = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    if lhs.ncols() == 0 {
        if !accumulate {
            let mut dst = dst;
            dst.fill(T::zero());
        }
        return;
    }
    faer::linalg::matmul::matmul(dst, acc, lhs, rhs, T::one(), Par::Seq);
}

/// Symmetric inverse square root `C^{-1/2}` of a symmetric positive definite matrix (f64,
/// row-major `n × n`), via faer's self-adjoint eigendecomposition. Eigenvalues below
/// `floor · max eigenvalue` are clamped so that near-singular covariances stay finite.
pub fn sym_inv_sqrt(c: &[f64], n: usize, floor: f64) -> anyhow::Result<Vec<f64>> {
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| 0.5 * (c[i * n + j] + c[j * n + i]));
    let evd = m
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| anyhow::anyhow!("eigendecomposition failed: {e:?}"))?;
    let u = evd.U();
    let s = evd.S();
    let smax = (0..n).map(|k| s[k]).fold(0.0f64, f64::max);
    if smax.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        anyhow::bail!("covariance is not positive definite (largest eigenvalue {smax})");
    }
    let mut out = vec![0.0; n * n];
    for k in 0..n {
        let lam = s[k].max(floor * smax);
        let w = 1.0 / lam.sqrt();
        for i in 0..n {
            let uik = u[(i, k)] * w;
            for j in 0..n {
                out[i * n + j] += uik * u[(j, k)];
            }
        }
    }
    Ok(out)
}

/// Dense row-major `a (r×k) · b (k×c)` in f64, for small setup-time products.
pub fn matmul_f64(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for l in 0..k {
            let a_il = a[i * k + l];
            for j in 0..c {
                out[i * c + j] += a_il * b[l * c + j];
            }
        }
    }
    out
}

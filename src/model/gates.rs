//! Fused SLSTM gate kernel: nonlinearities, cell update and hidden update in one pass, forward
//! and backward, as a plain scalar reference and a pulp SIMD version (runtime dispatch).
//!
//! Row layouts (one row per grid cell, `h` hidden units):
//! - `z`    `[rows, 5h]`: pre-activations `[g | i | f_r | f_c | o]`; overwritten by activations
//!   `[tanh g | σ i | σ f_r | σ f_c | σ o]` (the backward pass reads those back as `act`).
//! - `rcat` `[rows, 4h]`: recurrent inputs `[h_left | h_up | c_left | c_up]`.
//! - `c`, `hout` `[rows, h]`: cell state `c = i·g + f_c·c_left + f_r·c_up`, hidden `tanh(o·c)`.
//!
//! The SIMD path evaluates tanh with a clamped rational approximation (the one Eigen uses for
//! f32) and σ(x) = ½ + ½ tanh(x/2), so it needs only FMA, division, min and max.
//! Measured max abs error vs the std-library reference: see `tests/gates.rs` (< 2e-6).

use crate::numerics::real::Real;
use pulp::{Simd, WithSimd};

/// Forward for any [`Real`]: the SIMD kernel for f32, the scalar reference otherwise (f64, for
/// the gradient checks). Shapes as [`forward_scalar`].
pub fn forward<T: Real>(h: usize, z: &mut [T], rcat: &[T], c: &mut [T], hout: &mut [T]) {
    if let (Some(z), Some(rcat), Some(c), Some(hout)) = (
        T::as_f32_mut(z),
        T::as_f32(rcat),
        T::as_f32_mut(c),
        T::as_f32_mut(hout),
    ) {
        return forward_simd(h, z, rcat, c, hout);
    }
    forward_scalar(h, z, rcat, c, hout)
}

/// Backward for any [`Real`]: SIMD for f32, the scalar reference otherwise. Shapes as
/// [`backward_scalar`].
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    h: usize,
    dh: &[T],
    dc: &[T],
    act: &[T],
    c: &[T],
    hout: &[T],
    rcat: &[T],
    dz: &mut [T],
    drcat: &mut [T],
) {
    if let (Some(dh), Some(dc), Some(act), Some(c), Some(hout), Some(rcat), Some(dz), Some(drcat)) = (
        T::as_f32(dh),
        T::as_f32(dc),
        T::as_f32(act),
        T::as_f32(c),
        T::as_f32(hout),
        T::as_f32(rcat),
        T::as_f32_mut(dz),
        T::as_f32_mut(drcat),
    ) {
        return backward_simd(h, dh, dc, act, c, hout, rcat, dz, drcat);
    }
    backward_scalar(h, dh, dc, act, c, hout, rcat, dz, drcat)
}

#[inline(always)]
fn sigmoid<T: num_traits::Float>(x: T) -> T {
    let one = T::one();
    one / (one + (-x).exp())
}

/// One SLSTM cell (docs/MODEL.md §3), the formulas every scalar path uses (this reference and
/// the raster-order reference of `slstm`; the SIMD kernels, including the per-cell stepper of
/// `model::raster`, are tested against it): z `[5h]` pre-activations
/// `[g | i | f_r | f_c | o]` in, activations out; c = i·g + f_c·c_left + f_r·c_up and
/// h = tanh(o·c), each `[h]`.
pub fn cell<T: num_traits::Float>(
    z: &mut [T],
    c_left: &[T],
    c_up: &[T],
    c: &mut [T],
    hout: &mut [T],
) {
    let h = c.len();
    for k in 0..h {
        let g = z[k].tanh();
        let i = sigmoid(z[h + k]);
        let fr = sigmoid(z[2 * h + k]);
        let fc = sigmoid(z[3 * h + k]);
        let o = sigmoid(z[4 * h + k]);
        let cc = i * g + fc * c_left[k] + fr * c_up[k];
        z[k] = g;
        z[h + k] = i;
        z[2 * h + k] = fr;
        z[3 * h + k] = fc;
        z[4 * h + k] = o;
        c[k] = cc;
        hout[k] = (o * cc).tanh();
    }
}

/// Scalar reference forward: [`cell`] on every row. Shapes: z `[rows,5h]` (in: pre-activation,
/// out: activation), rcat `[rows,4h]` (`[h_left | h_up | c_left | c_up]`), c `[rows,h]`,
/// hout `[rows,h]`.
pub fn forward_scalar<T: num_traits::Float>(
    h: usize,
    z: &mut [T],
    rcat: &[T],
    c: &mut [T],
    hout: &mut [T],
) {
    let rows = c.len() / h.max(1);
    for r in 0..rows {
        let rc = &rcat[r * 4 * h..(r + 1) * 4 * h];
        cell(
            &mut z[r * 5 * h..(r + 1) * 5 * h],
            &rc[2 * h..3 * h],
            &rc[3 * h..],
            &mut c[r * h..(r + 1) * h],
            &mut hout[r * h..(r + 1) * h],
        );
    }
}

/// Scalar reference backward. Inputs: dh `[rows,h]` (dL/dh), dc `[rows,h]` (dL/dc arriving from
/// later cells through their forget gates), act `[rows,5h]`, c, hout `[rows,h]`, rcat `[rows,4h]`.
/// Outputs: dz `[rows,5h]` (dL/d pre-activation), drcat columns `[2h,4h)` = dL/d(c_left, c_up)
/// through the forget gates (columns `[0,2h)` are left untouched for the recurrent GEMM).
#[allow(clippy::too_many_arguments)]
pub fn backward_scalar<T: num_traits::Float>(
    h: usize,
    dh: &[T],
    dc_in: &[T],
    act: &[T],
    c: &[T],
    hout: &[T],
    rcat: &[T],
    dz: &mut [T],
    drcat: &mut [T],
) {
    let one = T::one();
    let rows = c.len() / h.max(1);
    for r in 0..rows {
        let a = &act[r * 5 * h..(r + 1) * 5 * h];
        let rc = &rcat[r * 4 * h..(r + 1) * 4 * h];
        let dzr = &mut dz[r * 5 * h..(r + 1) * 5 * h];
        let drc = &mut drcat[r * 4 * h..(r + 1) * 4 * h];
        for k in 0..h {
            let (g, i, fr, fc, o) = (a[k], a[h + k], a[2 * h + k], a[3 * h + k], a[4 * h + k]);
            let hh = hout[r * h + k];
            let cc = c[r * h + k];
            let da = dh[r * h + k] * (one - hh * hh);
            let dcc = da * o + dc_in[r * h + k];
            dzr[k] = dcc * i * (one - g * g);
            dzr[h + k] = dcc * g * i * (one - i);
            dzr[2 * h + k] = dcc * rc[3 * h + k] * fr * (one - fr);
            dzr[3 * h + k] = dcc * rc[2 * h + k] * fc * (one - fc);
            dzr[4 * h + k] = da * cc * o * (one - o);
            drc[2 * h + k] = dcc * fc;
            drc[3 * h + k] = dcc * fr;
        }
    }
}

/// tanh on a SIMD register: clamped rational approximation x·P(x²)/Q(x²).
#[inline(always)]
fn tanh_v<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let lim = s.splat_f32s(7.905_311);
    let x = s.min_f32s(s.max_f32s(x, s.splat_f32s(-7.905_311)), lim);
    let x2 = s.mul_f32s(x, x);
    let mut p = s.splat_f32s(-2.760_768_5e-16);
    p = s.mul_add_f32s(p, x2, s.splat_f32s(2.000_188e-13));
    p = s.mul_add_f32s(p, x2, s.splat_f32s(-8.604_672e-11));
    p = s.mul_add_f32s(p, x2, s.splat_f32s(5.122_297e-8));
    p = s.mul_add_f32s(p, x2, s.splat_f32s(1.485_722_4e-5));
    p = s.mul_add_f32s(p, x2, s.splat_f32s(6.372_619e-4));
    p = s.mul_add_f32s(p, x2, s.splat_f32s(4.893_524_6e-3));
    p = s.mul_f32s(p, x);
    let mut q = s.splat_f32s(1.198_258_4e-6);
    q = s.mul_add_f32s(q, x2, s.splat_f32s(1.185_347e-4));
    q = s.mul_add_f32s(q, x2, s.splat_f32s(2.268_434_6e-3));
    q = s.mul_add_f32s(q, x2, s.splat_f32s(4.893_525e-3));
    s.div_f32s(p, q)
}

#[inline(always)]
fn sigmoid_v<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let half = s.splat_f32s(0.5);
    s.mul_add_f32s(tanh_v(s, s.mul_f32s(x, half)), half, half)
}

/// Loads lane block `k..k+L` (or the partial tail) of a slice.
#[inline(always)]
fn ld<S: Simd>(s: S, x: &[f32], k: usize, n: usize) -> S::f32s {
    if n == S::F32_LANES {
        S::as_simd_f32s(&x[k..k + n]).0[0]
    } else {
        s.partial_load_f32s(&x[k..k + n])
    }
}
#[inline(always)]
fn st<S: Simd>(s: S, x: &mut [f32], k: usize, n: usize, v: S::f32s) {
    if n == S::F32_LANES {
        S::as_mut_simd_f32s(&mut x[k..k + n]).0[0] = v;
    } else {
        s.partial_store_f32s(&mut x[k..k + n], v)
    }
}

/// SIMD forward; same contract as [`forward_scalar`].
pub fn forward_simd(h: usize, z: &mut [f32], rcat: &[f32], c: &mut [f32], hout: &mut [f32]) {
    struct Op<'a> {
        h: usize,
        z: &'a mut [f32],
        rcat: &'a [f32],
        c: &'a mut [f32],
        hout: &'a mut [f32],
    }
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let Op {
                h,
                z,
                rcat,
                c,
                hout,
            } = self;
            let lanes = S::F32_LANES;
            let rows = c.len() / h.max(1);
            for r in 0..rows {
                let z = &mut z[r * 5 * h..(r + 1) * 5 * h];
                let rc = &rcat[r * 4 * h..(r + 1) * 4 * h];
                let cr = &mut c[r * h..(r + 1) * h];
                let hr = &mut hout[r * h..(r + 1) * h];
                let mut k = 0;
                while k < h {
                    let n = lanes.min(h - k);
                    let g = tanh_v(s, ld(s, z, k, n));
                    let i = sigmoid_v(s, ld(s, z, h + k, n));
                    let fr = sigmoid_v(s, ld(s, z, 2 * h + k, n));
                    let fc = sigmoid_v(s, ld(s, z, 3 * h + k, n));
                    let o = sigmoid_v(s, ld(s, z, 4 * h + k, n));
                    let cl = ld(s, rc, 2 * h + k, n);
                    let cu = ld(s, rc, 3 * h + k, n);
                    let cc = s.mul_add_f32s(i, g, s.mul_add_f32s(fc, cl, s.mul_f32s(fr, cu)));
                    st(s, z, k, n, g);
                    st(s, z, h + k, n, i);
                    st(s, z, 2 * h + k, n, fr);
                    st(s, z, 3 * h + k, n, fc);
                    st(s, z, 4 * h + k, n, o);
                    st(s, cr, k, n, cc);
                    st(s, hr, k, n, tanh_v(s, s.mul_f32s(o, cc)));
                    k += n;
                }
            }
        }
    }
    pulp::Arch::new().dispatch(Op {
        h,
        z,
        rcat,
        c,
        hout,
    });
}

/// SIMD backward; same contract as [`backward_scalar`].
#[allow(clippy::too_many_arguments)]
pub fn backward_simd(
    h: usize,
    dh: &[f32],
    dc_in: &[f32],
    act: &[f32],
    c: &[f32],
    hout: &[f32],
    rcat: &[f32],
    dz: &mut [f32],
    drcat: &mut [f32],
) {
    struct Op<'a> {
        h: usize,
        dh: &'a [f32],
        dc_in: &'a [f32],
        act: &'a [f32],
        c: &'a [f32],
        hout: &'a [f32],
        rcat: &'a [f32],
        dz: &'a mut [f32],
        drcat: &'a mut [f32],
    }
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let Op {
                h,
                dh,
                dc_in,
                act,
                c,
                hout,
                rcat,
                dz,
                drcat,
            } = self;
            let lanes = S::F32_LANES;
            let one = s.splat_f32s(1.0);
            let rows = c.len() / h.max(1);
            for r in 0..rows {
                let a = &act[r * 5 * h..(r + 1) * 5 * h];
                let rc = &rcat[r * 4 * h..(r + 1) * 4 * h];
                let dzr = &mut dz[r * 5 * h..(r + 1) * 5 * h];
                let drc = &mut drcat[r * 4 * h..(r + 1) * 4 * h];
                let (dhr, dcr) = (&dh[r * h..(r + 1) * h], &dc_in[r * h..(r + 1) * h]);
                let (cr, hr) = (&c[r * h..(r + 1) * h], &hout[r * h..(r + 1) * h]);
                let mut k = 0;
                while k < h {
                    let n = lanes.min(h - k);
                    let g = ld(s, a, k, n);
                    let i = ld(s, a, h + k, n);
                    let fr = ld(s, a, 2 * h + k, n);
                    let fc = ld(s, a, 3 * h + k, n);
                    let o = ld(s, a, 4 * h + k, n);
                    let hh = ld(s, hr, k, n);
                    let cc = ld(s, cr, k, n);
                    let cl = ld(s, rc, 2 * h + k, n);
                    let cu = ld(s, rc, 3 * h + k, n);
                    // da = dh (1 - h²); dc = da·o + dc_in
                    let da = s.mul_f32s(ld(s, dhr, k, n), s.sub_f32s(one, s.mul_f32s(hh, hh)));
                    let dcc = s.mul_add_f32s(da, o, ld(s, dcr, k, n));
                    let dg = s.mul_f32s(s.mul_f32s(dcc, i), s.sub_f32s(one, s.mul_f32s(g, g)));
                    let di = s.mul_f32s(s.mul_f32s(dcc, g), s.mul_f32s(i, s.sub_f32s(one, i)));
                    let dfr = s.mul_f32s(s.mul_f32s(dcc, cu), s.mul_f32s(fr, s.sub_f32s(one, fr)));
                    let dfc = s.mul_f32s(s.mul_f32s(dcc, cl), s.mul_f32s(fc, s.sub_f32s(one, fc)));
                    let dov = s.mul_f32s(s.mul_f32s(da, cc), s.mul_f32s(o, s.sub_f32s(one, o)));
                    st(s, dzr, k, n, dg);
                    st(s, dzr, h + k, n, di);
                    st(s, dzr, 2 * h + k, n, dfr);
                    st(s, dzr, 3 * h + k, n, dfc);
                    st(s, dzr, 4 * h + k, n, dov);
                    st(s, drc, 2 * h + k, n, s.mul_f32s(dcc, fc));
                    st(s, drc, 3 * h + k, n, s.mul_f32s(dcc, fr));
                    k += n;
                }
            }
        }
    }
    pulp::Arch::new().dispatch(Op {
        h,
        dh,
        dc_in,
        act,
        c,
        hout,
        rcat,
        dz,
        drcat,
    });
}

/// The approximation error of the SIMD tanh (the gate kernels' own tests are in tests/gates.rs).
#[cfg(test)]
mod tests {
    use super::*;

    /// Vectorised tanh of a slice.
    fn tanh_simd(x: &mut [f32]) {
        struct Op<'a>(&'a mut [f32]);
        impl WithSimd for Op<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, s: S) {
                let (head, tail) = S::as_mut_simd_f32s(self.0);
                for v in head {
                    *v = tanh_v(s, *v);
                }
                let t = tanh_v(s, s.partial_load_f32s(tail));
                s.partial_store_f32s(tail, t);
            }
        }
        pulp::Arch::new().dispatch(Op(x));
    }

    #[test]
    fn tanh_approximation_error() {
        let xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 1e-4).collect();
        let mut v = xs.clone();
        tanh_simd(&mut v);
        let err = xs
            .iter()
            .zip(&v)
            .map(|(x, t)| (x.tanh() - t).abs())
            .fold(0.0, f32::max);
        println!("SIMD tanh max abs error on [-20, 20]: {err:.2e}");
        assert!(err < 2e-6, "tanh error {err}");
    }
}

//! The floating-point types the numerics run in.
//!
//! Everything hot is generic over [`Real`]: `f32` is the production type (SIMD gate kernel via
//! pulp), `f64` runs the very same wavefront/GEMM code with the scalar gate kernel so that every
//! backward pass can be checked against finite differences without f32 round-off noise.

use crate::model::gates;

pub trait Real:
    faer::traits::RealField
    + num_traits::Float
    + num_traits::FromPrimitive
    + Copy
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + std::fmt::Display
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    /// Name used in model files and messages.
    const NAME: &'static str;

    fn of(x: f64) -> Self;
    fn as_f64(self) -> f64;

    /// x ← exp(x − shift), returning Σ x (SIMD).
    fn exp_shift_sum(x: &mut [Self], shift: Self) -> Self;

    /// Maximum of a slice (SIMD).
    fn max_of(x: &[Self]) -> Self;

    /// The slice as f32, if `Self` is f32: where the f32 fast path has its own kernel
    /// ([`crate::numerics::packed_gemm`]).
    fn as_f32(x: &[Self]) -> Option<&[f32]>;
    fn as_f32_mut(x: &mut [Self]) -> Option<&mut [f32]>;

    /// Fused SLSTM gate forward over `rows` rows (see [`gates::forward_scalar`]).
    fn gate_forward(h: usize, z: &mut [Self], rcat: &[Self], c: &mut [Self], hout: &mut [Self]);

    /// Fused SLSTM gate backward over `rows` rows (see [`gates::backward_scalar`]).
    #[allow(clippy::too_many_arguments)]
    fn gate_backward(
        h: usize,
        dh: &[Self],
        dc: &[Self],
        act: &[Self],
        c: &[Self],
        hout: &[Self],
        rcat: &[Self],
        dz: &mut [Self],
        drcat: &mut [Self],
    );
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn exp_shift_sum(x: &mut [f32], shift: f32) -> f32 {
        crate::numerics::simd_math::exp_shift_sum_simd(x, shift)
    }
    fn max_of(x: &[f32]) -> f32 {
        crate::numerics::simd_math::max_simd(x)
    }
    fn as_f32(x: &[f32]) -> Option<&[f32]> {
        Some(x)
    }
    fn as_f32_mut(x: &mut [f32]) -> Option<&mut [f32]> {
        Some(x)
    }
    fn gate_forward(h: usize, z: &mut [f32], rcat: &[f32], c: &mut [f32], hout: &mut [f32]) {
        gates::forward_simd(h, z, rcat, c, hout)
    }
    fn gate_backward(
        h: usize,
        dh: &[f32],
        dc: &[f32],
        act: &[f32],
        c: &[f32],
        hout: &[f32],
        rcat: &[f32],
        dz: &mut [f32],
        drcat: &mut [f32],
    ) {
        gates::backward_simd(h, dh, dc, act, c, hout, rcat, dz, drcat)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    fn exp_shift_sum(x: &mut [f64], shift: f64) -> f64 {
        crate::numerics::simd_math::exp_shift_sum_f64(x, shift)
    }
    fn max_of(x: &[f64]) -> f64 {
        crate::numerics::simd_math::max_simd_f64(x)
    }
    fn as_f32(_: &[f64]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
    fn gate_forward(h: usize, z: &mut [f64], rcat: &[f64], c: &mut [f64], hout: &mut [f64]) {
        gates::forward_scalar(h, z, rcat, c, hout)
    }
    fn gate_backward(
        h: usize,
        dh: &[f64],
        dc: &[f64],
        act: &[f64],
        c: &[f64],
        hout: &[f64],
        rcat: &[f64],
        dz: &mut [f64],
        drcat: &mut [f64],
    ) {
        gates::backward_scalar(h, dh, dc, act, c, hout, rcat, dz, drcat)
    }
}

//! The floating-point types the numerics run in.
//!
//! Everything hot is generic over [`Real`]: `f32` is the production type (SIMD kernels via
//! pulp, found through [`Real::as_f32`]), `f64` runs the very same wavefront/GEMM code with the
//! scalar gate kernel so that every backward pass can be checked against finite differences
//! without f32 round-off noise.

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
}

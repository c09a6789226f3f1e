//! Vectorised exp for the MCGSM's log-sum-exp: `x ← exp(x − shift)`, returning Σ x.
//!
//! SIMD path (pulp, f32): Cephes-style expf — n = round(x·log₂e) by the 1.5·2²³ magic-number
//! trick, r = x − n·ln2 (two-part ln2), degree-6 polynomial, scale by 2ⁿ built in the exponent
//! bits. Inputs below −87 flush to exp(−87) ≈ 1.6e−38 (they only ever enter sums next to 1).
//! Scalar reference: the standard library's exp. Error: see `tests/simd_math.rs` (< 3 ulp).
//!
//! f64 (the L-BFGS fine-tuning and the gradient checks): the same reduction with a two-part
//! ln2 and a degree-13 Taylor polynomial (truncation below 1e−17 on |r| ≤ ln2/2), 2ⁿ by a
//! 64-bit shift into the exponent field, so AVX2 only (pulp's `V3`); scalar elsewhere.
//! Inputs below −708 flush to exp(−708) ≈ 3e−308.

use pulp::{Simd, WithSimd};

/// Scalar reference: x ← exp(x − shift), returns the sum.
pub fn exp_shift_sum_scalar<T: num_traits::Float + std::iter::Sum>(x: &mut [T], shift: T) -> T {
    x.iter_mut().for_each(|v| *v = (*v - shift).exp());
    x.iter().copied().sum()
}

/// Maximum of a slice (−∞ for an empty slice).
pub fn max_scalar<T: num_traits::Float>(x: &[T]) -> T {
    x.iter()
        .fold(T::neg_infinity(), |m, &v| if v > m { v } else { m })
}

#[inline(always)]
fn exp_v<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let x = s.min_f32s(s.max_f32s(x, s.splat_f32s(-87.0)), s.splat_f32s(88.0));
    let magic = s.splat_f32s(12_582_912.0); // 1.5·2²³: adding it rounds to an integer
    let t = s.mul_add_f32s(x, s.splat_f32s(std::f32::consts::LOG2_E), magic);
    let n = s.sub_f32s(t, magic);
    let r = s.negate_mul_add_f32s(n, s.splat_f32s(0.693_359_4), x);
    let r = s.negate_mul_add_f32s(n, s.splat_f32s(-2.121_944_4e-4), r);
    let mut p = s.splat_f32s(1.987_569_1e-4);
    p = s.mul_add_f32s(p, r, s.splat_f32s(1.398_199_9e-3));
    p = s.mul_add_f32s(p, r, s.splat_f32s(8.333_452e-3));
    p = s.mul_add_f32s(p, r, s.splat_f32s(4.166_579_6e-2));
    p = s.mul_add_f32s(p, r, s.splat_f32s(0.166_666_65));
    p = s.mul_add_f32s(p, r, s.splat_f32s(0.5));
    p = s.mul_add_f32s(p, s.mul_f32s(r, r), s.add_f32s(r, s.splat_f32s(1.0)));
    // 2ⁿ: the low bits of t hold n (offset 0x4B40_0000); move n + 127 into the exponent field
    let bits: S::u32s = pulp::cast(t);
    let e = s.add_u32s(bits, s.splat_u32s(127u32.wrapping_sub(0x4B40_0000)));
    let scale: S::f32s = pulp::cast(s.wrapping_dyn_shl_u32s(e, s.splat_u32s(23)));
    s.mul_f32s(p, scale)
}

/// SIMD x ← exp(x − shift), returns the sum.
pub fn exp_shift_sum_simd(x: &mut [f32], shift: f32) -> f32 {
    struct Op<'a>(&'a mut [f32], f32);
    impl WithSimd for Op<'_> {
        type Output = f32;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> f32 {
            let sh = s.splat_f32s(self.1);
            let (head, tail) = S::as_mut_simd_f32s(self.0);
            let mut acc = s.splat_f32s(0.0);
            for v in head {
                *v = exp_v(s, s.sub_f32s(*v, sh));
                acc = s.add_f32s(acc, *v);
            }
            let mut sum = s.reduce_sum_f32s(acc);
            for v in tail {
                *v = (*v - self.1).exp();
                sum += *v;
            }
            sum
        }
    }
    pulp::Arch::new().dispatch(Op(x, shift))
}

/// SIMD maximum of a slice.
pub fn max_simd(x: &[f32]) -> f32 {
    struct Op<'a>(&'a [f32]);
    impl WithSimd for Op<'_> {
        type Output = f32;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> f32 {
            let (head, tail) = S::as_simd_f32s(self.0);
            let mut m = s.splat_f32s(f32::NEG_INFINITY);
            for v in head {
                m = s.max_f32s(m, *v);
            }
            tail.iter().fold(s.reduce_max_f32s(m), |a, &b| a.max(b))
        }
    }
    pulp::Arch::new().dispatch(Op(x))
}

/// Maximum of an f64 slice, SIMD (−∞ for an empty slice).
pub fn max_simd_f64(x: &[f64]) -> f64 {
    struct Op<'a>(&'a [f64]);
    impl WithSimd for Op<'_> {
        type Output = f64;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> f64 {
            let (head, tail) = S::as_simd_f64s(self.0);
            let mut m = s.splat_f64s(f64::NEG_INFINITY);
            for v in head {
                m = s.max_f64s(m, *v);
            }
            tail.iter().fold(s.reduce_max_f64s(m), |a, &b| a.max(b))
        }
    }
    pulp::Arch::new().dispatch(Op(x))
}

/// x ← exp(x − shift), returns the sum: AVX2 when the machine has it, else the scalar
/// reference.
pub fn exp_shift_sum_f64(x: &mut [f64], shift: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return f64_avx2::exp_shift_sum(simd, x, shift);
    }
    exp_shift_sum_scalar(x, shift)
}

#[cfg(target_arch = "x86_64")]
mod f64_avx2 {
    use pulp::x86::V3;
    use pulp::{f64x4, u64x4, Simd};

    /// 1/k! for k = 13 down to 0 (Horner order).
    const INV_FACT: [f64; 14] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];

    #[inline(always)]
    fn exp_v(s: V3, x: f64x4) -> f64x4 {
        let x = s.min_f64s(s.max_f64s(x, s.splat_f64s(-708.0)), s.splat_f64s(709.0));
        let magic = s.splat_f64s(6_755_399_441_055_744.0); // 1.5·2⁵²: adding it rounds
        let t = s.mul_add_f64s(x, s.splat_f64s(std::f64::consts::LOG2_E), magic);
        let n = s.sub_f64s(t, magic);
        // r = x − n·ln2 with ln2 in two parts (fdlibm's: the high part has 32 significant bits,
        // so n·hi is exact)
        let r = s.negate_mul_add_f64s(n, s.splat_f64s(f64::from_bits(0x3FE6_2E42_FEE0_0000)), x);
        let r = s.negate_mul_add_f64s(n, s.splat_f64s(f64::from_bits(0x3DEA_39EF_3579_3C76)), r);
        let mut p = s.splat_f64s(INV_FACT[0]);
        for c in &INV_FACT[1..] {
            p = s.mul_add_f64s(p, r, s.splat_f64s(*c));
        }
        // t's bits are 0x4338_0000_0000_0000 + n; (n + 1023) << 52 is 2ⁿ
        let bits: u64x4 = pulp::cast(t);
        let e = s.add_u64s(
            bits,
            s.splat_u64s(1023u64.wrapping_sub(0x4338_0000_0000_0000)),
        );
        let scale: f64x4 = pulp::cast(s.shl_const_u64x4::<52>(e));
        s.mul_f64s(p, scale)
    }

    pub fn exp_shift_sum(s: V3, x: &mut [f64], shift: f64) -> f64 {
        // `vectorize` runs the closure with AVX2 and FMA enabled
        s.vectorize(|| {
            let sh = s.splat_f64s(shift);
            let (head, tail) = x.as_chunks_mut::<4>();
            let mut acc = s.splat_f64s(0.0);
            for v in head {
                let e = exp_v(s, s.sub_f64s(pulp::cast(*v), sh));
                *v = pulp::cast(e);
                acc = s.add_f64s(acc, e);
            }
            let mut sum = s.reduce_sum_f64s(acc);
            for v in tail {
                *v = (*v - shift).exp();
                sum += *v;
            }
            sum
        })
    }
}

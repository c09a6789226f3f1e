//! The SIMD exp used by the MCGSM's log-sum-exp against the standard library.

use ride::numerics::simd_math::{exp_shift_sum_scalar, exp_shift_sum_simd, max_scalar, max_simd};

#[test]
fn simd_exp_matches_std() {
    let xs: Vec<f32> = (0..=100_003).map(|i| -95.0 + i as f32 * 1e-3).collect();
    for shift in [0.0f32, 3.5] {
        let mut a = xs.clone();
        let mut b = xs.clone();
        let sa = exp_shift_sum_simd(&mut a, shift);
        let sb = exp_shift_sum_scalar(&mut b, shift);
        let mut worst = 0.0f32;
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if xs[i] - shift < -87.0 {
                assert!(*x < 2e-38, "flush region");
                continue;
            }
            worst = worst.max((x - y).abs() / y);
        }
        println!("SIMD exp max relative error {worst:.2e} (shift {shift})");
        assert!(worst < 4e-7);
        assert!(((sa - sb) / sb).abs() < 1e-4);
    }
}

#[test]
fn simd_max_matches_scalar() {
    for n in [1usize, 7, 8, 9, 128, 131] {
        let v: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        assert_eq!(max_simd(&v), max_scalar(&v));
    }
}

#[test]
fn f64_exp_matches_std_to_a_few_ulp() {
    use ride::numerics::simd_math::exp_shift_sum_f64;
    let xs: Vec<f64> = (0..=200_003).map(|i| -720.0 + i as f64 * 3.6e-3).collect();
    for shift in [0.0f64, 3.5, -2.0] {
        let mut a = xs.clone();
        let mut b = xs.clone();
        let sa = exp_shift_sum_f64(&mut a, shift);
        let sb = exp_shift_sum_scalar(&mut b, shift);
        let mut worst = 0.0f64;
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if xs[i] - shift < -708.0 {
                assert!(*x < 4e-308, "flush region: exp({}) gave {x}", xs[i] - shift);
                continue;
            }
            worst = worst.max((x - y).abs() / y);
        }
        println!("f64 SIMD exp max relative error {worst:.2e} (shift {shift})");
        assert!(worst < 1e-15, "relative error {worst:e}");
        assert!(((sa - sb) / sb).abs() < 1e-14);
    }
}

#[test]
fn f64_max_matches_scalar() {
    use ride::numerics::simd_math::max_simd_f64;
    for n in [0usize, 1, 3, 4, 5, 128, 131] {
        let v: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64 - 50.0).collect();
        assert_eq!(max_simd_f64(&v), max_scalar(&v));
    }
}

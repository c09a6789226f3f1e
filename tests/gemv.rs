//! The per-cell matrix–vector kernel against its plain reference, at the stepper's shapes and
//! at awkward ones (tails shorter than a SIMD vector, zeros in x, several register blocks).

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::numerics::gemv::{gemv2_rows_acc, gemv_rows_acc, reference_gemv_rows_acc};

#[test]
fn gemv_matches_the_reference() {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(5);
    for (m, n) in [
        (140, 320),
        (12 + 128, 160),
        (3, 1),
        (7, 13),
        (33, 129),
        (1, 200),
        (64, 72),
    ] {
        let a: Vec<f32> = (0..m * n).map(|_| r.random_range(-1.0..1.0)).collect();
        let mut x: Vec<f32> = (0..m).map(|_| r.random_range(-1.0..1.0)).collect();
        if m > 2 {
            x[1] = 0.0;
        }
        let y0: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        let (mut y, mut want) = (y0.clone(), y0.clone());
        gemv_rows_acc(&a, &x, &mut y);
        reference_gemv_rows_acc(&a, &x, &mut want);
        for (k, (g, w)) in y.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()) * (m as f32).sqrt(),
                "({m}, {n}) column {k}: {g} vs {w}"
            );
        }
    }
}

/// The paired kernel (one pass over A for two vectors) gives bit for bit what two single calls
/// give, zeros in either x included: the inpainting chains rely on it to stay reproducible.
#[test]
fn paired_gemv_is_bit_identical_to_two_single_calls() {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(6);
    for (m, n) in [
        (140, 320),
        (12 + 128, 160),
        (3, 1),
        (7, 13),
        (33, 129),
        (64, 72),
    ] {
        let a: Vec<f32> = (0..m * n).map(|_| r.random_range(-1.0..1.0)).collect();
        let mut x1: Vec<f32> = (0..m).map(|_| r.random_range(-1.0..1.0)).collect();
        let mut x2: Vec<f32> = (0..m).map(|_| r.random_range(-1.0..1.0)).collect();
        x1[0] = 0.0;
        if m > 2 {
            x2[1] = 0.0;
            x2[2] = -0.0;
        }
        let y01: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        let y02: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        let (mut y1, mut y2) = (y01.clone(), y02.clone());
        gemv2_rows_acc(&a, (&x1, &mut y1), (&x2, &mut y2));
        let (mut w1, mut w2) = (y01, y02);
        gemv_rows_acc(&a, &x1, &mut w1);
        gemv_rows_acc(&a, &x2, &mut w2);
        for (g, w) in y1.iter().zip(&w1).chain(y2.iter().zip(&w2)) {
            assert_eq!(g.to_bits(), w.to_bits(), "({m}, {n})");
        }
    }
}

//! The per-cell matrix–vector kernel against its plain reference, at the stepper's shapes and
//! at awkward ones (tails shorter than a SIMD vector, zeros in x, several register blocks).

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::numerics::gemv::{gemv_rows_acc, reference_gemv_rows_acc};

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

//! The packed per-diagonal GEMM against its plain triple-loop reference: every row count from
//! 1 to 3 register tiles past an outer block (tails of the 6-row tile and the 48-row block),
//! strided A and C, the forward (K = 2H, N = 5H) and backward (K = 5H, N = 2H) shapes, and
//! accumulation into what C held.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::numerics::linalg::view;
use ride::numerics::packed_gemm::{gemm_acc, reference_gemm_acc, PackedRhs};

#[test]
fn packed_gemm_matches_the_reference() {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(7);
    for (k, n) in [(128, 320), (320, 128), (64, 160), (7, 32)] {
        let b: Vec<f32> = (0..k * n).map(|_| r.random_range(-1.0..1.0)).collect();
        let p = PackedRhs::pack(view(&b, k, n, n)).expect("N is a multiple of the panel");
        assert_eq!((p.k(), p.n()), (k, n));
        for m in (1..=13).chain([47, 48, 49, 66, 103]) {
            let (lda, ldc) = (k + 3, n + 5);
            let a: Vec<f32> = (0..m * lda).map(|_| r.random_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..m * ldc).map(|_| r.random_range(-1.0..1.0)).collect();
            let (mut got, mut want) = (c0.clone(), c0.clone());
            gemm_acc(&mut got, ldc, &a, lda, m, &p);
            reference_gemm_acc(&mut want, ldc, &a, lda, &b, m, k, n);
            for i in 0..m {
                for j in 0..ldc {
                    let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                    if j >= n {
                        assert_eq!(g, c0[i * ldc + j], "padding column {j} of row {i} changed");
                    } else {
                        assert!(
                            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "k {k} n {n} m {m}: C[{i},{j}] = {g}, reference {w}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn widths_off_the_panel_are_left_to_faer() {
    let b = vec![0f32; 8 * 20];
    assert!(
        PackedRhs::pack(view(&b, 8, 20, 20)).is_none()
            || ride::numerics::packed_gemm::f32_lanes() < 8
    );
}

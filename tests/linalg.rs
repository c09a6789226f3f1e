//! The row-major views over strided slices: a GEMM into a column block of a wider matrix
//! writes exactly that block (faer's own strided row-major constructor writes out of it).

use ride::numerics::linalg::{gemm, view, view_mut};

#[test]
fn gemm_into_a_column_block_writes_only_that_block() {
    let (m, k, n, ld, col0) = (5, 3, 4, 11, 2);
    let a: Vec<f64> = (0..m * k).map(|i| i as f64 * 0.5 - 3.0).collect();
    let b: Vec<f64> = (0..k * n).map(|i| 1.0 - i as f64 * 0.25).collect();
    // guard values everywhere, and a tail after the last row
    let mut c = vec![7.0; m * ld + 5];
    gemm(
        view_mut(&mut c[col0..], m, n, ld),
        false,
        view(&a, m, k, k),
        view(&b, k, n, n),
    );
    for (idx, v) in c.iter().enumerate() {
        let (i, j) = (idx / ld, idx % ld);
        if i < m && (col0..col0 + n).contains(&j) {
            let want: f64 = (0..k).map(|kk| a[i * k + kk] * b[kk * n + j - col0]).sum();
            assert!((v - want).abs() < 1e-12, "C[{i},{j}] = {v}, want {want}");
        } else {
            assert_eq!(*v, 7.0, "entry {idx} outside the block was written");
        }
    }
}

#[test]
fn accumulating_gemm_adds_to_the_block() {
    let a = [1.0f32, 2.0, 3.0, 4.0];
    let b = [1.0f32, 0.0, 0.0, 1.0];
    let mut c = [10.0f32; 4];
    gemm(
        view_mut(&mut c, 2, 2, 2),
        true,
        view(&a, 2, 2, 2),
        view(&b, 2, 2, 2),
    );
    assert_eq!(c, [11.0, 12.0, 13.0, 14.0]);
}

//! The SIMD gate kernel against its scalar reference, forward and backward, for hidden sizes
//! that do and do not fill the SIMD lanes.

// Finite-difference loops index several parallel arrays by position.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::model::gates;

fn rand_vec(rng: &mut Xoshiro256PlusPlus, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn simd_matches_scalar_forward_and_backward() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut worst = (0.0f32, 0.0f32);
    for &h in &[1usize, 3, 7, 8, 9, 13, 16, 64] {
        for &rows in &[1usize, 5, 33] {
            let z0 = rand_vec(&mut rng, rows * 5 * h, 4.0);
            let rcat = rand_vec(&mut rng, rows * 4 * h, 1.5);
            let (mut za, mut zb) = (z0.clone(), z0.clone());
            let (mut ca, mut cb) = (vec![0f32; rows * h], vec![0f32; rows * h]);
            let (mut ha, mut hb) = (vec![0f32; rows * h], vec![0f32; rows * h]);
            gates::forward_scalar(h, &mut za, &rcat, &mut ca, &mut ha);
            gates::forward_simd(h, &mut zb, &rcat, &mut cb, &mut hb);
            let ef = max_abs(&za, &zb)
                .max(max_abs(&ca, &cb))
                .max(max_abs(&ha, &hb));
            let dh = rand_vec(&mut rng, rows * h, 1.0);
            let dc = rand_vec(&mut rng, rows * h, 1.0);
            let (mut dza, mut dzb) = (vec![0f32; rows * 5 * h], vec![0f32; rows * 5 * h]);
            let (mut dra, mut drb) = (vec![0f32; rows * 4 * h], vec![0f32; rows * 4 * h]);
            gates::backward_scalar(h, &dh, &dc, &za, &ca, &ha, &rcat, &mut dza, &mut dra);
            gates::backward_simd(h, &dh, &dc, &za, &ca, &ha, &rcat, &mut dzb, &mut drb);
            let eb = max_abs(&dza, &dzb).max(max_abs(&dra, &drb));
            worst = (worst.0.max(ef), worst.1.max(eb));
            assert!(ef < 5e-6, "forward h={h} rows={rows}: {ef}");
            assert!(eb < 1e-5, "backward h={h} rows={rows}: {eb}");
            // the backward kernel leaves the h-part of drcat alone (it belongs to the GEMM)
            assert!(drb
                .chunks(4 * h)
                .all(|r| r[..2 * h].iter().all(|&v| v == 0.0)));
        }
    }
    println!(
        "gate kernel SIMD vs scalar max abs error: forward {:.2e}, backward {:.2e}",
        worst.0, worst.1
    );
}

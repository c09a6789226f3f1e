//! BSDS300 8×8 patches: the padded canvas makes the model's grid the patch, patches are
//! DC-free, the DC mixture is a density, and the 64-dim Jacobian term is log(1/n).

// The determinant is computed on an explicit matrix, indexed by row and column.
#![allow(clippy::needless_range_loop)]

use ride::data::bsds300_patches::{canvas, padding, sample_patches, Gmm1};
use ride::io::images::GrayImage;
use ride::model::neighbourhood::Neighbourhood;

#[test]
fn canvas_grid_is_the_patch_for_every_nb_size() {
    for nb_size in [3, 5, 7, 9] {
        let nb = Neighbourhood::causal(nb_size).expect("nb");
        let (ch, cw) = canvas(&nb, 8);
        assert_eq!(nb.grid(ch, cw), Some((8, 8)), "nb_size {nb_size}");
    }
}

#[test]
fn sampled_patches_are_dc_free_padded_and_seeded() {
    let nb = Neighbourhood::causal(5).expect("nb");
    let img = GrayImage {
        name: "ramp".into(),
        h: 40,
        w: 50,
        data: (0..2000)
            .map(|k| (k % 50) as f64 / 50.0 + (k / 50) as f64 / 40.0)
            .collect(),
    };
    let a = sample_patches(
        std::slice::from_ref(&img),
        &nb,
        8,
        20,
        7,
        ride::data::Split::Train,
    )
    .expect("patches");
    let b = sample_patches(
        std::slice::from_ref(&img),
        &nb,
        8,
        20,
        7,
        ride::data::Split::Train,
    )
    .expect("patches");
    let (t, l, _) = padding(&nb);
    for ((p, dc), (q, dc2)) in a.iter().zip(&b) {
        assert_eq!(p.data, q.data);
        assert_eq!(dc, dc2);
        let (ch, cw) = (p.h, p.w);
        let mut inside = 0.0;
        for r in 0..ch {
            for c in 0..cw {
                let v = p.data[r * cw + c];
                if r >= t && c >= l && c < l + 8 {
                    inside += v;
                } else {
                    assert_eq!(v, 0.0, "padding at ({r},{c})");
                }
            }
        }
        assert!(inside.abs() < 1e-9, "patch not DC-free: {inside}");
        assert!(*dc > 0.0 && *dc < 2.0);
    }
}

#[test]
fn dc_mixture_is_a_density_and_fits_a_bimodal_sample() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    let (a, b) = (
        Normal::new(0.2, 0.05).unwrap(),
        Normal::new(0.7, 0.1).unwrap(),
    );
    let x: Vec<f64> = (0..4000)
        .map(|k| {
            if k % 4 == 0 {
                a.sample(&mut rng)
            } else {
                b.sample(&mut rng)
            }
        })
        .collect();
    let g = Gmm1::fit(&x, 10, 100);
    // integrates to 1 (trapezoid on a wide grid)
    let (lo, hi, n) = (-1.0, 2.0, 30_000);
    let dx = (hi - lo) / n as f64;
    let integral: f64 = (0..=n)
        .map(|k| {
            let w = if k == 0 || k == n { 0.5 } else { 1.0 };
            w * g.log_pdf(lo + k as f64 * dx).exp() * dx
        })
        .sum();
    assert!((integral - 1.0).abs() < 1e-3, "∫p = {integral}");
    // beats a single Gaussian on the sample
    let single = Gmm1::fit(&x, 1, 50);
    let ll = |g: &Gmm1| x.iter().map(|&v| g.log_pdf(v)).sum::<f64>() / x.len() as f64;
    assert!(ll(&g) > ll(&single) + 0.1, "{} vs {}", ll(&g), ll(&single));
}

/// log|det| of the crate's map x ↦ (first n−1 of remove_dc(x), DC) — its matrix read off column
/// by column from `remove_dc` itself (the map is linear) — is the crate's `dc_log_jacobian(n)`.
#[test]
fn dc_jacobian_is_one_over_n() {
    use ride::data::bsds300_patches::{dc_log_jacobian, remove_dc};
    for n in [2usize, 4, 9, 64] {
        // rows: outputs, columns: inputs; column j is the map applied to the unit vector e_j
        let mut a = vec![vec![0.0f64; n]; n];
        for j in 0..n {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            let (free, dc) = remove_dc(&e);
            for i in 0..n - 1 {
                a[i][j] = free[i];
            }
            a[n - 1][j] = dc;
        }
        // determinant by Gaussian elimination with partial pivoting
        let mut det = 1.0;
        for c in 0..n {
            let p = (c..n)
                .max_by(|&i, &k| a[i][c].abs().total_cmp(&a[k][c].abs()))
                .expect("pivot");
            if p != c {
                a.swap(p, c);
                det = -det;
            }
            det *= a[c][c];
            for r in c + 1..n {
                let f = a[r][c] / a[c][c];
                for k in c..n {
                    a[r][k] -= f * a[c][k];
                }
            }
        }
        assert!(
            (det.abs().ln() - dc_log_jacobian(n)).abs() < 1e-9,
            "n {n}: det {det}, crate says log {}",
            dc_log_jacobian(n)
        );
    }
}

#[test]
fn stage_patch_must_match_the_patch_size() {
    let text = r#"
name = "p"
[data]
kind = "bsds300_patches"
size = 8
train_patches = 10
test_patches = 10
[model]
kind = "ride"
[training]
stages = [{ patch = 10, lr = 0.001 }]
"#;
    let e: ride::train::config::Experiment = toml::from_str(text).expect("parses");
    let err = e.validate().expect_err("must fail");
    assert!(format!("{err:#}").contains("data.size = 8"), "{err:#}");
}

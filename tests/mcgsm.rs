//! MCGSM: the GEMM fast path against the one-row reference, gradients against finite
//! differences (all parameters incl. the optional linear features and means, and the input),
//! and sampling against the model's own density.

// Finite-difference loops index several parallel arrays by position.
#![allow(clippy::needless_range_loop)]

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::model::mcgsm::{Mcgsm, McgsmWork};

fn model(d: usize, c: usize, s: usize, f: usize, extras: bool, seed: u64) -> Mcgsm<f64> {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut m = Mcgsm::<f64>::init(d, c, s, f, extras, extras, &mut r);
    // move away from the init so that every term matters
    m.priors_mut()
        .iter_mut()
        .for_each(|v| *v = r.random_range(-1.0..1.0));
    m.weights_mut()
        .iter_mut()
        .for_each(|v| *v = r.random_range(-1.0..1.0));
    m.features_mut()
        .iter_mut()
        .for_each(|v| *v = r.random_range(-0.5..0.5));
    // the optional tensors (linear features, means) follow the five fixed ones
    for t in m.tensors_mut().into_iter().skip(5) {
        t.iter_mut().for_each(|v| *v = r.random_range(-0.3..0.3));
    }
    m
}

fn data(rows: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    (
        (0..rows * d).map(|_| r.random_range(-1.0..1.0)).collect(),
        (0..rows).map(|_| r.random_range(-2.0..2.0)).collect(),
    )
}

#[test]
fn fast_matches_reference() {
    for extras in [false, true] {
        let m = model(7, 5, 3, 4, extras, 1);
        let (u, y) = data(23, 7, 2);
        let mut ll = vec![0.0; 23];
        m.loglik(&u, &y, &mut ll, &mut McgsmWork::default(), None);
        for r in 0..23 {
            let refv = m.reference_loglik(&u[r * 7..(r + 1) * 7], y[r]);
            assert!((ll[r] - refv).abs() < 1e-12, "row {r}: {} vs {refv}", ll[r]);
        }
    }
}

fn total(m: &Mcgsm<f64>, u: &[f64], y: &[f64], gl: &[f64]) -> f64 {
    let mut ll = vec![0.0; y.len()];
    m.loglik(u, y, &mut ll, &mut McgsmWork::default(), None);
    ll.iter().zip(gl).map(|(a, b)| a * b).sum()
}

#[test]
fn gradients_match_finite_differences() {
    for extras in [false, true] {
        let mut m = model(6, 4, 3, 5, extras, 3);
        let (u, y) = data(17, 6, 4);
        let gl: Vec<f64> = (0..17).map(|i| 0.3 + 0.1 * (i % 4) as f64).collect();
        let mut g = m.zeros_like();
        let mut du = vec![0.0; u.len()];
        let mut ll = vec![0.0; 17];
        m.loglik(
            &u,
            &y,
            &mut ll,
            &mut McgsmWork::default(),
            Some((&gl, &mut g, &mut du)),
        );
        let eps = 1e-6;
        let names: Vec<&str> = m.tensors().iter().map(|t| t.0).collect();
        let grads: Vec<Vec<f64>> = g.tensors().iter().map(|t| t.2.to_vec()).collect();
        for (ti, name) in names.iter().enumerate() {
            let n = grads[ti].len();
            let mut worst = 0.0f64;
            for k in 0..n {
                let orig = m.tensors_mut()[ti][k];
                m.tensors_mut()[ti][k] = orig + eps;
                let fp = total(&m, &u, &y, &gl);
                m.tensors_mut()[ti][k] = orig - eps;
                let fm = total(&m, &u, &y, &gl);
                m.tensors_mut()[ti][k] = orig;
                let num = (fp - fm) / (2.0 * eps);
                let a = grads[ti][k];
                let err = (a - num).abs() / (1e-6 + a.abs().max(num.abs()));
                // absolute floor: central-difference round-off is ~1e-16·|objective|/eps ≈ 1e-9
                assert!(
                    err < 1e-5 || (a - num).abs() < 1e-8,
                    "{name}[{k}]: analytic {a} numeric {num}"
                );
                worst = worst.max(err);
            }
            println!("d{name}: worst rel err {worst:.1e}");
        }
        let mut up = u.clone();
        for k in 0..u.len() {
            up[k] = u[k] + eps;
            let fp = total(&m, &up, &y, &gl);
            up[k] = u[k] - eps;
            let fm = total(&m, &up, &y, &gl);
            up[k] = u[k];
            let num = (fp - fm) / (2.0 * eps);
            assert!(
                (du[k] - num).abs() < 1e-6 * (1.0 + num.abs()),
                "du[{k}]: {} vs {num}",
                du[k]
            );
        }
    }
}

/// Samples follow the model's density: compare a histogram with the integrated density.
#[test]
fn sampling_follows_the_density() {
    let m = model(3, 3, 2, 2, true, 5);
    let u = [0.4, -0.2, 0.7];
    let mut r = Xoshiro256PlusPlus::seed_from_u64(11);
    let n = 200_000;
    let (lo, hi, bins) = (-6.0, 6.0, 24);
    let width = (hi - lo) / bins as f64;
    let mut hist = vec![0usize; bins];
    for _ in 0..n {
        let y = m.sample(&u, &mut r);
        if y >= lo && y < hi {
            hist[((y - lo) / width) as usize] += 1;
        }
    }
    let mut chi2 = 0.0;
    let mut dof = 0;
    for (b, &count) in hist.iter().enumerate() {
        // expected probability of the bin by the midpoint rule on a fine grid
        let p: f64 = (0..50)
            .map(|k| {
                let y = lo + (b as f64 + (k as f64 + 0.5) / 50.0) * width;
                m.reference_loglik(&u, y).exp() * width / 50.0
            })
            .sum();
        let e = p * n as f64;
        if e > 20.0 {
            chi2 += (count as f64 - e).powi(2) / e;
            dof += 1;
        }
    }
    println!("sampling: chi² = {chi2:.1} over {dof} bins");
    // 99.9 % quantile of χ² with ~20 degrees of freedom is about 45
    assert!(
        dof >= 8 && chi2 < 2.5 * dof as f64 + 10.0,
        "chi² {chi2} over {dof} bins"
    );
}

#[test]
fn from_parts_checks_every_tensor_against_the_sizes() {
    use ride::model::mcgsm::{Mcgsm, McgsmParts};
    let (d, c, s, f) = (3, 2, 2, 4);
    let parts = |priors: usize| McgsmParts::<f64> {
        priors: vec![0.0; priors],
        scales: vec![0.0; c * s],
        weights: vec![0.0; c * f],
        features: vec![0.0; d * f],
        predictors: vec![0.0; c * d],
        linear_features: None,
        means: None,
    };
    let m = Mcgsm::from_parts((d, c, s, f), parts(c * s)).unwrap();
    assert_eq!((m.d(), m.c(), m.s(), m.f()), (d, c, s, f));
    let err = Mcgsm::from_parts((d, c, s, f), parts(c * s + 1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("mcgsm.priors has 5 values, expected 4"),
        "{err}"
    );
}

/// The per-cell MCGSM (sampling, inpainting) against the f64 reference: the same log-density
/// up to its f32 products, and the same draws from the same random numbers.
#[test]
fn cell_mixture_matches_the_reference() {
    use ride::model::mcgsm::CellMixture;
    for extras in [false, true] {
        let m = model(7, 5, 3, 4, extras, 21);
        let mut cell = CellMixture::new(&m);
        let mut r = Xoshiro256PlusPlus::seed_from_u64(3);
        for _ in 0..50 {
            let u: Vec<f64> = (0..7).map(|_| r.random_range(-1.0..1.0)).collect();
            let y: f64 = r.random_range(-2.0..2.0);
            let (got, want) = (cell.loglik(&u, y), m.reference_loglik(&u, y));
            assert!(
                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
            let seed: u64 = r.random();
            let a = cell.sample(&u, &mut Xoshiro256PlusPlus::seed_from_u64(seed));
            let b = m.sample(&u, &mut Xoshiro256PlusPlus::seed_from_u64(seed));
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "draw {a} vs {b}");
        }
    }
}

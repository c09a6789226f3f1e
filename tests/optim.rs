//! Optimisers: exact update rules on a tiny problem, and descent on a quadratic.

use ride::train::optim::{Adam, Sgd};

#[test]
fn sgd_momentum_follows_the_original_rule() {
    let mut p = [vec![1.0f64, -2.0]];
    let mut opt = Sgd::new(0.1, 0.9);
    let g = vec![0.5, -1.0];
    opt.step(p.iter_mut().map(|v| v.as_mut_slice()).collect(), &[&g]);
    // v = −g, θ = θ + lr v
    assert_eq!(p[0], vec![1.0 - 0.05, -2.0 + 0.1]);
    opt.step(p.iter_mut().map(|v| v.as_mut_slice()).collect(), &[&g]);
    // v = 0.9·(−g) − g = −1.9 g
    assert!((p[0][0] - (0.95 - 0.1 * 1.9 * 0.5)).abs() < 1e-15);
}

#[test]
fn adam_first_step_moves_by_lr_and_descends() {
    let mut p = [vec![3.0f64, -4.0]];
    let mut opt = Adam::new(0.01);
    let g: Vec<f64> = p[0].clone();
    opt.step(p.iter_mut().map(|v| v.as_mut_slice()).collect(), &[&g]);
    // the bias-corrected first step is lr · sign(g) (up to eps)
    assert!(
        (p[0][0] - 2.99).abs() < 1e-7 && (p[0][1] + 3.99).abs() < 1e-7,
        "{:?}",
        p[0]
    );
    // minimise ½|θ|²
    let mut opt = Adam::new(0.05);
    for _ in 0..2000 {
        let g = p[0].clone();
        opt.step(p.iter_mut().map(|v| v.as_mut_slice()).collect(), &[&g]);
    }
    assert!(p[0].iter().all(|v| v.abs() < 1e-2), "{:?}", p[0]);
}

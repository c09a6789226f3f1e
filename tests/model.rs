//! Neighbourhood masks, whitening, and the whole RIDE model's gradient.

// Finite-difference loops index several parallel arrays by position.
#![allow(clippy::needless_range_loop)]

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::model::neighbourhood::Neighbourhood;
use ride::model::ride::{MixtureSize, Ride};
use ride::model::whitening::Whitening;

#[test]
fn causal_masks_match_the_spec_table() {
    // nb_size, rows, cols, N, output (row, col)
    for &(n, rows, cols, ni, out) in &[
        (3, 2, 3, 4, (1, 1)),
        (5, 3, 5, 12, (2, 2)),
        (7, 4, 7, 24, (3, 3)),
        (9, 5, 9, 40, (4, 4)),
    ] {
        let nb = Neighbourhood::causal(n).unwrap();
        assert_eq!(
            (nb.rows, nb.cols, nb.n_inputs(), nb.output_pos()),
            (rows, cols, ni, out),
            "nb_size {n}"
        );
        for r in 0..rows {
            for c in 0..cols {
                let expect_in = r < rows - 1 || c < (n - 1) / 2;
                assert_eq!(nb.input[r * cols + c], expect_in, "nb_size {n} ({r},{c})");
            }
        }
    }
    assert!(Neighbourhood::causal(4).is_err());
    assert!(Neighbourhood::causal(1).is_err());
    // arbitrary masks: validated
    assert!(Neighbourhood::from_masks(1, 2, vec![true, false], vec![false, true]).is_ok());
    assert!(Neighbourhood::from_masks(1, 2, vec![true, true], vec![false, true]).is_err());
    assert!(Neighbourhood::from_masks(1, 2, vec![true, false], vec![false, false]).is_err());
}

#[test]
fn extraction_reads_the_right_pixels_without_padding() {
    let nb = Neighbourhood::causal(5).unwrap();
    let (h, w) = (6, 9);
    let img: Vec<f64> = (0..h * w).map(|v| v as f64).collect();
    let (x, y, gr, gc) = nb.extract(&img, h, w).unwrap();
    assert_eq!((gr, gc), (4, 5));
    // cell (1,2) predicts pixel (1+2, 2+2); its first input is pixel (1,2), its last (3,3)
    let (row, col) = (1, 2);
    let cell = row * gc + col;
    assert_eq!(y[cell], (3 * w + 4) as f64);
    assert_eq!(x[cell * 12], (w + 2) as f64);
    assert_eq!(x[cell * 12 + 11], (3 * w + 3) as f64);
    assert!(nb.extract(&img, 2, 9).is_err());
    // an arbitrary mask: inputs = the two pixels left of the output
    let nb2 =
        Neighbourhood::from_masks(1, 3, vec![true, true, false], vec![false, false, true]).unwrap();
    let (x2, y2, _, gc2) = nb2.extract(&img, h, w).unwrap();
    assert_eq!(gc2, 7);
    assert_eq!((x2[0], x2[1], y2[0]), (0.0, 1.0, 2.0));
}

fn smooth_images(n: usize, h: usize, w: usize, seed: u64) -> Vec<Vec<f64>> {
    ride::data::smooth_noise_images(n, h, w, seed)
}

fn fit_whitening(
    nb: &Neighbourhood,
    imgs: &[Vec<f64>],
    h: usize,
    w: usize,
) -> (Whitening, Vec<f64>, Vec<f64>) {
    let (mut xs, mut ys) = (vec![], vec![]);
    for img in imgs {
        let (x, y, _, _) = nb.extract(img, h, w).unwrap();
        xs.extend(x);
        ys.extend(y);
    }
    (Whitening::fit(&xs, &ys, nb.n_inputs()).unwrap(), xs, ys)
}

#[test]
fn whitening_gives_identity_covariance_on_its_fit_data() {
    let nb = Neighbourhood::causal(5).unwrap();
    let imgs = smooth_images(4, 20, 24, 1);
    let (wh, xs, ys) = fit_whitening(&nb, &imgs, 20, 24);
    let (xw, yw) = wh.apply(&xs, &ys);
    let n = nb.n_inputs();
    let m = ys.len() as f64;
    let d = n + 1;
    let mut cov = vec![0.0; d * d];
    for s in 0..ys.len() {
        let v: Vec<f64> = xw[s * n..(s + 1) * n]
            .iter()
            .cloned()
            .chain([yw[s]])
            .collect();
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += v[i] * v[j] / m;
            }
        }
    }
    let err = (0..d * d)
        .map(|k| (cov[k] - if k / d == k % d { 1.0 } else { 0.0 }).abs())
        .fold(0.0, f64::max);
    println!("whitened covariance vs identity: max abs error {err:.1e}");
    assert!(err < 1e-9);
    // inverse transforms
    let mut back = vec![0.0; n];
    unwhiten_input(&wh, &xw[..n], &mut back);
    assert!(back
        .iter()
        .zip(&xs[..n])
        .all(|(a, b)| (a - b).abs() < 1e-10));
    assert!((wh.unwhiten_output(&xw[..n], yw[0]) - ys[0]).abs() < 1e-10);
    assert!((wh.log_jacobian() - wh.white_out().ln()).abs() < 1e-15);
}

fn small_model(seed: u64, hiddens: &[usize], extended: bool) -> (Ride<f64>, Vec<Vec<f64>>) {
    let nb = Neighbourhood::causal(3).unwrap();
    let imgs = smooth_images(5, 7, 8, seed);
    let (wh, _, _) = fit_whitening(&nb, &imgs, 7, 8);
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mix = MixtureSize {
        components: 3,
        scales: 2,
        features: 4,
        linear_features: true,
        means: true,
    };
    let mut m = Ride::<f64>::init(nb, wh, hiddens, extended, mix, &mut r);
    for t in m.params_mut() {
        t.iter_mut().for_each(|v| *v += r.random_range(-0.2..0.2));
    }
    (m, imgs)
}

#[test]
fn whole_model_gradient_matches_finite_differences() {
    for (hiddens, extended) in [(vec![4usize], false), (vec![3, 4], true)] {
        let (mut m, imgs) = small_model(3, &hiddens, extended);
        let refs: Vec<&[f64]> = imgs.iter().map(|v| v.as_slice()).collect();
        let batch = m.prepare(&refs, 7, 8, 2).unwrap();
        let (loss, grad) = m.loss_and_grad(&batch);
        assert!(loss.is_finite());
        let grads: Vec<Vec<f64>> = grad.tensors().into_iter().map(<[f64]>::to_vec).collect();
        let eps = 1e-6;
        let mut checked = 0;
        for ti in 0..grads.len() {
            let n = grads[ti].len();
            for k in (0..n).step_by(1 + n / 12) {
                let orig = m.params_mut()[ti][k];
                m.params_mut()[ti][k] = orig + eps;
                let fp = m.loss_and_grad(&batch).0;
                m.params_mut()[ti][k] = orig - eps;
                let fm = m.loss_and_grad(&batch).0;
                m.params_mut()[ti][k] = orig;
                let num = (fp - fm) / (2.0 * eps);
                let a = grads[ti][k];
                assert!(
                    (a - num).abs() < 1e-6 * (1.0 + num.abs()),
                    "tensor {ti}[{k}]: analytic {a} numeric {num}"
                );
                checked += 1;
            }
        }
        println!("whole model {hiddens:?} extended={extended}: {checked} partial derivatives agree with finite differences");
        // the loss is the mean NLL incl. the log-Jacobian: equals −mean of the log-likelihood map
        let map = m.loglik_map(&batch);
        let mean: f64 = map.iter().flatten().sum::<f64>() / batch.cells() as f64;
        assert!((loss + mean).abs() < 1e-12);
    }
}

#[test]
fn results_do_not_depend_on_chunking_and_f32_agrees() {
    let (m, imgs) = small_model(4, &[5], false);
    let refs: Vec<&[f64]> = imgs.iter().map(|v| v.as_slice()).collect();
    let (l1, g1) = m.loss_and_grad(&m.prepare(&refs, 7, 8, 1).unwrap());
    let (l3, g3) = m.loss_and_grad(&m.prepare(&refs, 7, 8, 3).unwrap());
    assert!((l1 - l3).abs() < 1e-12);
    for (a, b) in g1.tensors().iter().zip(g3.tensors()) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12));
    }
    let m32 = m.cast::<f32>();
    let (l32, _) = m32.loss_and_grad(&m32.prepare(&refs, 7, 8, 2).unwrap());
    assert!((l32 - l1).abs() < 1e-4, "f32 loss {l32} vs f64 {l1}");
    // same chunking twice: bit-identical
    let b = m32.prepare(&refs, 7, 8, 2).unwrap();
    let (la, ga) = m32.loss_and_grad(&b);
    let (lb, gb) = m32.loss_and_grad(&b);
    assert_eq!(la.to_bits(), lb.to_bits());
    assert!(ga.tensors().iter().zip(gb.tensors()).all(|(x, y)| x == &y));
}

/// Reused training buffers give the same loss and gradient as fresh ones, across batch shapes.
#[test]
fn reused_train_work_matches_fresh_buffers() {
    let (m, imgs) = small_model(6, &[4, 3], false);
    let m = m.cast::<f32>();
    let mut work = ride::model::ride::TrainWork::default();
    for (count, chunks) in [(5usize, 2usize), (3, 3), (5, 2)] {
        let refs: Vec<&[f64]> = imgs[..count].iter().map(|v| v.as_slice()).collect();
        let b = m.prepare(&refs, 7, 8, chunks).unwrap();
        let (l_fresh, g_fresh) = m.loss_and_grad(&b);
        let l = m.loss_and_grad_with(&b, &mut work);
        assert_eq!(l.to_bits(), l_fresh.to_bits());
        let g = work.grad.as_ref().unwrap();
        assert!(g
            .tensors()
            .iter()
            .zip(g_fresh.tensors())
            .all(|(a, b)| *a == b));
    }
}

/// Inverse of `Whitening::whiten_input`: x = P_in⁻¹ x̃ + μ_x.
fn unwhiten_input(wh: &ride::model::whitening::Whitening, xw: &[f64], out: &mut [f64]) {
    for ((o, row), m) in out
        .iter_mut()
        .zip(wh.white_in_inv().chunks_exact(wh.n()))
        .zip(wh.mean_in())
    {
        *o = row.iter().zip(xw).map(|(p, x)| p * x).sum::<f64>() + m;
    }
}

//! SLSTM: the wavefront fast path against the plain per-cell reference, and its backward pass
//! against central finite differences in f64 (weights, biases, inputs, both recurrent
//! directions, the extended variant and a 2-layer stack).

// Finite-difference loops index several parallel arrays by position.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::model::slstm::{reference_forward, LayerCache, SlstmLayer};
use ride::model::wavefront::Wavefront;

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn layer(n_in: usize, h: usize, extended: bool, seed: u64) -> SlstmLayer<f64> {
    let mut r = rng(seed);
    let mut l = SlstmLayer::<f64>::init(n_in, h, extended, &mut r);
    // larger weights and non-zero biases than the init, so every path carries signal
    l.w_mut().iter_mut().for_each(|w| *w *= 6.0);
    l.b_mut()
        .iter_mut()
        .for_each(|b| *b = r.random_range(-0.5..0.5));
    l
}

fn cast(l: &SlstmLayer<f64>) -> SlstmLayer<f32> {
    SlstmLayer::cast_from(l, |v: &[f64]| v.iter().map(|&x| x as f32).collect())
}

fn rand_vec(r: &mut Xoshiro256PlusPlus, n: usize) -> Vec<f64> {
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

#[test]
fn wavefront_links_cover_every_neighbour_once() {
    for &(b, r, c) in &[(1, 1, 1), (2, 1, 5), (3, 5, 1), (2, 4, 7), (1, 7, 4)] {
        let wf = Wavefront::new(b, r, c);
        assert_eq!(wf.total_rows(), b * r * c);
        let mut left = 0;
        let mut up = 0;
        for d in 0..wf.ndiag() {
            if let Some(l) = wf.left_link(d) {
                left += l.count;
                for k in 0..l.count {
                    assert!(
                        wf.diag(d).contains(&(l.dst + k)) && wf.diag(d - 1).contains(&(l.src + k))
                    );
                }
            }
            up += wf.up_link(d).map_or(0, |l| l.count);
        }
        assert_eq!(left, b * r * (c - 1));
        assert_eq!(up, b * (r - 1) * c);
        // row() is a bijection and the raster round trip is the identity
        let v: Vec<usize> = (0..b * r * c).collect();
        assert_eq!(wf.to_raster(&wf.to_wavefront(&v, 1), 1), v);
    }
}

/// Fast forward (f64 and f32) vs the per-cell reference on several grid shapes and batches.
#[test]
fn fast_forward_matches_reference() {
    let mut worst32 = 0.0f64;
    for &extended in &[false, true] {
        // H = 16: 5H and 2H fill whole SIMD panels, so f32 takes the packed GEMM
        for &(n_in, h) in &[(3usize, 5usize), (4, 8), (2, 11), (4, 16)] {
            for &(b, r, c) in &[
                (1usize, 1usize, 1usize),
                (3, 1, 6),
                (2, 6, 1),
                (3, 5, 4),
                (1, 4, 7),
            ] {
                let l = layer(n_in, h, extended, 11);
                let l32 = cast(&l);
                let mut rr = rng(3);
                let u = rand_vec(&mut rr, b * r * c * n_in);
                let wf = Wavefront::new(b, r, c);
                let uw = wf.to_wavefront(&u, n_in);
                let mut cache = LayerCache::default();
                l.forward(&wf, &uw, &mut cache);
                let fast = wf.to_raster(&cache.h, h);
                let mut c32 = LayerCache::default();
                l32.forward(
                    &wf,
                    &uw.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                    &mut c32,
                );
                let fast32 = wf.to_raster(&c32.h, h);
                for bi in 0..b {
                    let (href, _, _) =
                        reference_forward(&l, &u[bi * r * c * n_in..(bi + 1) * r * c * n_in], r, c);
                    let off = bi * r * c * h;
                    for k in 0..r * c * h {
                        let e = (fast[off + k] - href[k]).abs();
                        assert!(
                            e < 1e-12,
                            "f64 fast vs reference: {e} (ext {extended}, {b}x{r}x{c})"
                        );
                        worst32 = worst32.max((fast32[off + k] as f64 - href[k]).abs());
                    }
                }
            }
        }
    }
    println!("SLSTM f32 wavefront vs f64 reference: max abs error {worst32:.2e}");
    assert!(worst32 < 2e-5);
}

/// Objective Σ proj ⊙ h over all cells (f64 fast path).
fn objective(l: &SlstmLayer<f64>, wf: &Wavefront, u: &[f64], proj: &[f64]) -> f64 {
    let mut cache = LayerCache::default();
    l.forward(wf, u, &mut cache);
    cache.h.iter().zip(proj).map(|(a, b)| a * b).sum()
}

fn check(name: &str, analytic: f64, numeric: f64) -> f64 {
    let err = (analytic - numeric).abs() / (1e-6 + analytic.abs().max(numeric.abs()));
    assert!(
        err < 1e-5 || (analytic - numeric).abs() < 1e-9,
        "{name}: analytic {analytic} vs numeric {numeric}"
    );
    err
}

fn fd_layer(extended: bool, b: usize, r: usize, c: usize) {
    let (n_in, h) = (3, 4);
    let mut l = layer(n_in, h, extended, 5);
    let wf = Wavefront::new(b, r, c);
    let mut rr = rng(9);
    let u = rand_vec(&mut rr, wf.total_rows() * n_in);
    let proj = rand_vec(&mut rr, wf.total_rows() * h);
    let mut cache = LayerCache::default();
    l.forward(&wf, &u, &mut cache);
    let mut grad = l.zero_grad();
    let mut dh = proj.clone();
    let mut du = vec![0.0; u.len()];
    l.backward(&wf, &u, &cache, &mut dh, &mut grad, Some(&mut du));
    let eps = 1e-6;
    let wd = l.width();
    let mut worst = [0.0f64; 4];
    for k in 0..l.w().len() {
        let orig = l.w()[k];
        l.w_mut()[k] = orig + eps;
        let fp = objective(&l, &wf, &u, &proj);
        l.w_mut()[k] = orig - eps;
        let fm = objective(&l, &wf, &u, &proj);
        l.w_mut()[k] = orig;
        let col = k % wd;
        // block: 0 = input, 1 = h_left, 2 = h_up, 3 = c_left/c_up (extended)
        let block = if col < n_in {
            0
        } else {
            (1 + (col - n_in) / h).min(3)
        };
        let e = check(
            &format!("dW[{k}] (block {block})"),
            grad.w[k],
            (fp - fm) / (2.0 * eps),
        );
        worst[block] = worst[block].max(e);
    }
    for k in 0..l.b().len() {
        let orig = l.b()[k];
        l.b_mut()[k] = orig + eps;
        let fp = objective(&l, &wf, &u, &proj);
        l.b_mut()[k] = orig - eps;
        let fm = objective(&l, &wf, &u, &proj);
        l.b_mut()[k] = orig;
        check(&format!("db[{k}]"), grad.b[k], (fp - fm) / (2.0 * eps));
    }
    let mut up = u.clone();
    for k in 0..u.len() {
        up[k] = u[k] + eps;
        let fp = objective(&l, &wf, &up, &proj);
        up[k] = u[k] - eps;
        let fm = objective(&l, &wf, &up, &proj);
        up[k] = u[k];
        check(&format!("du[{k}]"), du[k], (fp - fm) / (2.0 * eps));
    }
    // a direction that does not exist on this grid must have exactly zero gradient
    let block_norm = |blk: usize| -> f64 {
        (0..l.w().len())
            .filter(|k| k % wd >= n_in + blk * h && k % wd < n_in + (blk + 1) * h)
            .map(|k| grad.w[k].abs())
            .sum()
    };
    if c == 1 {
        assert_eq!(block_norm(0), 0.0, "no left neighbours on a N×1 grid");
    } else {
        assert!(block_norm(0) > 0.0);
    }
    if r == 1 {
        assert_eq!(block_norm(1), 0.0, "no upper neighbours on a 1×N grid");
    } else {
        assert!(block_norm(1) > 0.0);
    }
    println!(
        "ext {extended} {b}×{r}×{c}: worst rel err input {:.1e} left {:.1e} up {:.1e} cells {:.1e}",
        worst[0], worst[1], worst[2], worst[3]
    );
}

#[test]
fn backward_matches_finite_differences() {
    fd_layer(false, 2, 3, 4);
    fd_layer(false, 1, 1, 5);
    fd_layer(false, 2, 5, 1);
    fd_layer(false, 1, 1, 1);
}

#[test]
fn extended_backward_matches_finite_differences() {
    fd_layer(true, 2, 3, 4);
    fd_layer(true, 1, 4, 3);
}

/// Two stacked layers: gradient w.r.t. both layers' weights and the input via dU chaining.
#[test]
fn two_layer_stack_matches_finite_differences() {
    let (n_in, h1, h2) = (3, 4, 5);
    let mut l1 = layer(n_in, h1, false, 21);
    let l2 = layer(h1, h2, false, 22);
    let wf = Wavefront::new(2, 3, 3);
    let mut rr = rng(4);
    let u = rand_vec(&mut rr, wf.total_rows() * n_in);
    let proj = rand_vec(&mut rr, wf.total_rows() * h2);
    let obj = |l1: &SlstmLayer<f64>, u: &[f64]| {
        let mut c1 = LayerCache::default();
        l1.forward(&wf, u, &mut c1);
        objective(&l2, &wf, &c1.h, &proj)
    };
    let mut c1 = LayerCache::default();
    l1.forward(&wf, &u, &mut c1);
    let mut c2 = LayerCache::default();
    l2.forward(&wf, &c1.h, &mut c2);
    let (mut g1, mut g2) = (l1.zero_grad(), l2.zero_grad());
    let mut dh2 = proj.clone();
    let mut dh1 = vec![0.0; c1.h.len()];
    l2.backward(&wf, &c1.h, &c2, &mut dh2, &mut g2, Some(&mut dh1));
    let mut du = vec![0.0; u.len()];
    l1.backward(&wf, &u, &c1, &mut dh1, &mut g1, Some(&mut du));
    let eps = 1e-6;
    for k in (0..l1.w().len()).step_by(3) {
        let orig = l1.w()[k];
        l1.w_mut()[k] = orig + eps;
        let fp = obj(&l1, &u);
        l1.w_mut()[k] = orig - eps;
        let fm = obj(&l1, &u);
        l1.w_mut()[k] = orig;
        check(
            &format!("layer-1 dW[{k}]"),
            g1.w[k],
            (fp - fm) / (2.0 * eps),
        );
    }
    let mut up = u.clone();
    for k in 0..u.len() {
        up[k] = u[k] + eps;
        let fp = obj(&l1, &up);
        up[k] = u[k] - eps;
        let fm = obj(&l1, &up);
        up[k] = u[k];
        check(&format!("du[{k}]"), du[k], (fp - fm) / (2.0 * eps));
    }
    assert!(g2.w.iter().any(|&g| g != 0.0));
}

/// The f32 backward (SIMD gate kernel, packed per-diagonal GEMMs at H = 16) agrees with the
/// f64 backward, plain and extended.
#[test]
fn f32_backward_matches_f64() {
    for extended in [false, true] {
        f32_backward_case(extended);
    }
}

fn f32_backward_case(extended: bool) {
    let l = layer(12, 16, extended, 8);
    let l32 = cast(&l);
    let wf = Wavefront::new(3, 6, 5);
    let mut rr = rng(2);
    let u = rand_vec(&mut rr, wf.total_rows() * 12);
    let proj = rand_vec(&mut rr, wf.total_rows() * 16);
    let mut c = LayerCache::default();
    l.forward(&wf, &u, &mut c);
    let mut g = l.zero_grad();
    let mut dh = proj.clone();
    l.backward(&wf, &u, &c, &mut dh, &mut g, None);
    let u32v: Vec<f32> = u.iter().map(|&v| v as f32).collect();
    let mut c32 = LayerCache::default();
    l32.forward(&wf, &u32v, &mut c32);
    let mut g32 = l32.zero_grad();
    let mut dh32: Vec<f32> = proj.iter().map(|&v| v as f32).collect();
    l32.backward(&wf, &u32v, &c32, &mut dh32, &mut g32, None);
    let scale = g.w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err =
        g.w.iter()
            .zip(&g32.w)
            .map(|(a, b)| (a - *b as f64).abs())
            .fold(0.0, f64::max)
            / scale;
    println!("f32 vs f64 weight gradient (extended {extended}): max error {err:.2e} relative to the largest entry");
    assert!(err < 1e-4);
}

/// The inference forward (one diagonal of scratch) gives bit-identical hidden states.
#[test]
fn inference_forward_matches_training_forward() {
    for extended in [false, true] {
        let l = cast(&layer(6, 16, extended, 31));
        for &(b, r, c) in &[(1usize, 1usize, 1usize), (3, 1, 6), (2, 6, 1), (4, 7, 5)] {
            let wf = Wavefront::new(b, r, c);
            let mut rr = rng(5);
            let u: Vec<f32> = rand_vec(&mut rr, wf.total_rows() * 6)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let mut cache = LayerCache::default();
            l.forward(&wf, &u, &mut cache);
            let mut h = vec![];
            l.forward_inference(&wf, &u, &mut h, &mut Default::default());
            assert_eq!(h, cache.h, "ext {extended} {b}×{r}×{c}");
        }
    }
}

#[test]
fn from_parts_checks_the_weights_against_the_sizes() {
    let (n_in, h) = (3, 2);
    let width = n_in + 2 * h;
    let l = SlstmLayer::from_parts(
        n_in,
        h,
        false,
        vec![0.0f32; 5 * h * width],
        vec![0.0; 5 * h],
    )
    .unwrap();
    assert_eq!(
        (l.n_in(), l.h(), l.extended(), l.width()),
        (n_in, h, false, width)
    );
    let err = SlstmLayer::from_parts(n_in, h, true, vec![0.0f32; 5 * h * width], vec![0.0; 5 * h])
        .unwrap_err();
    assert!(err.to_string().contains("needs 110 weights"), "{err}");
}

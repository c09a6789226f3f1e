//! Inpainting (docs/MODEL.md §7): the Metropolis–Hastings kernel leaves the exact conditional invariant
//! (and a wrong kernel is caught by the same test), reproducibility by seed, clear errors, CLI.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use ride::model::ride::{testing, Ride};
use ride::tasks::inpaint::{crop_logliks, inpaint, mean_fill, score_fill, Geometry};
use ride::tasks::inpaint::{
    inpaint_with_hooks, ChainHooks, Checkpointing, InpaintOptions, Rect, Target,
};
use std::process::Command;

mod common;
use common::MODEL;

/// Tiny random model (nb_size 3, C = 2, S = 2), whitening fitted on smooth noise; `hiddens`
/// empty = MCGSM only.
fn tiny_model(seed: u64, hiddens: &[usize]) -> Ride<f32> {
    let mix = testing::plain_mixture(2, 2, 2);
    testing::tiny_model(seed, 3, hiddens, false, mix, 0.3).cast::<f32>()
}

fn image(h: usize, w: usize, seed: u64) -> Vec<f64> {
    ride::data::smooth_noise_images(1, h, w, seed).remove(0)
}

/// Upper quantile of chi²(k) by Wilson–Hilferty; z = standard normal quantile.
fn chi2_quantile(k: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Exact target of one hole pixel: log π(v) = crop log-likelihood with the pixel set to v, on
/// a grid; returns equiprobable bin edges (interior) of the normalised density.
fn exact_bins(m: &Ride<f32>, img: &[f64], w: usize, geo: &Geometry, bins: usize) -> Vec<f64> {
    exact_bins_on(m, img, w, geo.crop, (geo.hole.top, geo.hole.left), bins)
}

/// [`exact_bins`] with the density of the image rectangle `c` (e.g. a move's window) as the
/// target of the pixel (pr, pc).
fn exact_bins_on(
    m: &Ride<f32>,
    img: &[f64],
    w: usize,
    c: Rect,
    (pr, pc): (usize, usize),
    bins: usize,
) -> Vec<f64> {
    let base: Vec<f64> = (c.top..c.top + c.h)
        .flat_map(|r| img[r * w + c.left..r * w + c.left + c.w].to_vec())
        .collect();
    let k = (pr - c.top) * c.w + pc - c.left;
    // coarse grid to find the support, then a fine one around it
    let eval = |lo: f64, hi: f64, n: usize| -> (Vec<f64>, Vec<f64>) {
        let vs: Vec<f64> = (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect();
        let crops: Vec<Vec<f64>> = vs
            .iter()
            .map(|&v| {
                let mut x = base.clone();
                x[k] = v;
                x
            })
            .collect();
        let refs: Vec<&[f64]> = crops.iter().map(|v| v.as_slice()).collect();
        let lp: Vec<f64> = crop_logliks(m, &refs, c.h, c.w)
            .unwrap()
            .iter()
            .map(|l| l.iter().sum())
            .collect();
        (vs, lp)
    };
    let (vs, lp) = eval(-20.0, 20.0, 4001);
    let mx = lp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let keep: Vec<f64> = vs
        .iter()
        .zip(&lp)
        .filter(|(_, l)| **l > mx - 40.0)
        .map(|(v, _)| *v)
        .collect();
    let (lo, hi) = (keep[0] - 0.05, keep[keep.len() - 1] + 0.05);
    let (vs, lp) = eval(lo, hi, 20001);
    let mx = lp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = lp.iter().map(|l| (l - mx).exp()).collect();
    // trapezoid CDF
    let mut cdf = vec![0.0; p.len()];
    for i in 1..p.len() {
        cdf[i] = cdf[i - 1] + 0.5 * (p[i] + p[i - 1]) * (vs[i] - vs[i - 1]);
    }
    let z = cdf[cdf.len() - 1];
    (1..bins)
        .map(|b| {
            let t = z * b as f64 / bins as f64;
            let i = cdf.partition_point(|&v| v < t);
            // linear interpolation inside the grid step
            let f = (t - cdf[i - 1]) / (cdf[i] - cdf[i - 1]);
            vs[i - 1] + f * (vs[i] - vs[i - 1])
        })
        .collect()
}

/// Chi-square statistic of thinned chain values against equiprobable bins.
fn chi2(values: &[f64], edges: &[f64]) -> f64 {
    let bins = edges.len() + 1;
    let mut counts = vec![0usize; bins];
    for &v in values {
        counts[edges.partition_point(|&e| e < v)] += 1;
    }
    let e = values.len() as f64 / bins as f64;
    counts
        .iter()
        .map(|&o| (o as f64 - e).powi(2) / e)
        .sum::<f64>()
}

/// MH with 1×1 blocks on a one-pixel hole samples the exact conditional π(v) ∝ exp(crop
/// loglik); the same test rejects the kernel without the proposal densities.
#[test]
fn mh_kernel_leaves_the_exact_conditional_invariant() {
    let (h, w) = (6, 6);
    let bins = 20;
    let crit = chi2_quantile((bins - 1) as f64, 3.0902); // 0.999 quantile
    for (name, hiddens) in [("1 layer H=3", vec![3usize]), ("MCGSM only", vec![])] {
        let m = tiny_model(5, &hiddens);
        let img = image(h, w, 9);
        let opts = InpaintOptions {
            hole: (1, 1),
            center: Some((3, 3)),
            context: 8,
            sweeps: 30_000,
            seed: 1,
            candidates: 1,
            block: 1,
            window: 3,
            stride: 1,
            trace: true,
            target: Target::Crop,
            progress: None,
            checkpoint: None,
        };
        let geo = Geometry::new(&m, h, w, opts.hole, opts.center, opts.context).unwrap();
        let edges = exact_bins(&m, &img, w, &geo, bins);
        let thin = 5;
        let run = |drop_proposal_terms: bool| -> (f64, f64) {
            let hooks = ChainHooks {
                start_from_image: true,
                drop_proposal_terms,
            };
            let r = inpaint_with_hooks(&m, &img, h, w, &opts, hooks).unwrap();
            let t = r.trace.unwrap();
            let vals: Vec<f64> = t.iter().skip(100).step_by(thin).map(|v| v[0]).collect();
            let acc = r.acceptance.iter().sum::<f64>() / r.acceptance.len() as f64;
            (chi2(&vals, &edges), acc)
        };
        let (good, acc) = run(false);
        let (bad, acc_bad) = run(true);
        println!(
            "{name}: chi2({}) correct kernel {good:.1} (acceptance {acc:.3}), proposal terms dropped {bad:.1} (acceptance {acc_bad:.3}); 0.999 quantile {crit:.1}",
            bins - 1
        );
        assert!(
            good < crit,
            "{name}: correct kernel chi2 {good:.1} ≥ {crit:.1}"
        );
        assert!(bad > crit, "{name}: wrong kernel not caught, chi2 {bad:.1}");
    }
}

/// The window target (the original code's approximation) is exact for what it targets: with
/// 1×1 blocks on a one-pixel hole the chain samples π(v) ∝ exp(window loglik), the density of
/// the move's window alone; dropping the proposal densities is caught.
#[test]
fn mh_kernel_with_the_window_target_samples_the_window_conditional() {
    let (h, w) = (8, 8);
    let bins = 20;
    let crit = chi2_quantile((bins - 1) as f64, 3.0902);
    let m = tiny_model(5, &[3]);
    let img = image(h, w, 11);
    let opts = InpaintOptions {
        hole: (1, 1),
        center: Some((4, 4)),
        context: 8,
        sweeps: 30_000,
        seed: 5,
        candidates: 1,
        block: 1,
        window: 3,
        stride: 1,
        trace: true,
        target: Target::Window,
        progress: None,
        checkpoint: None,
    };
    let geo = Geometry::new(&m, h, w, opts.hole, opts.center, opts.context).unwrap();
    // the move's window: centred on the block, clipped to the crop (image coordinates)
    let c = geo.crop;
    let (bt, bl) = (geo.hole.top - c.top, geo.hole.left - c.left);
    let off = (opts.window - opts.block) / 2;
    let (wt, wl) = (bt.saturating_sub(off), bl.saturating_sub(off));
    let win = Rect {
        top: c.top + wt,
        left: c.left + wl,
        h: (bt + opts.block + off).min(c.h) - wt,
        w: (bl + opts.block + off).min(c.w) - wl,
    };
    assert!(
        win.h < c.h && win.w < c.w,
        "the window must be smaller than the crop"
    );
    let edges = exact_bins_on(&m, &img, w, win, (geo.hole.top, geo.hole.left), bins);
    let run = |drop_proposal_terms: bool| -> f64 {
        let hooks = ChainHooks {
            start_from_image: true,
            drop_proposal_terms,
        };
        let r = inpaint_with_hooks(&m, &img, h, w, &opts, hooks).unwrap();
        let t = r.trace.unwrap();
        let vals: Vec<f64> = t.iter().skip(100).step_by(5).map(|v| v[0]).collect();
        chi2(&vals, &edges)
    };
    let (good, bad) = (run(false), run(true));
    println!(
        "window target: chi2({}) correct kernel {good:.1}, proposal terms dropped {bad:.1}; 0.999 quantile {crit:.1}",
        bins - 1
    );
    assert!(good < crit, "correct kernel chi2 {good:.1} ≥ {crit:.1}");
    assert!(bad > crit, "wrong kernel not caught, chi2 {bad:.1}");
}

/// Exact marginals of two horizontally adjacent hole pixels (the hole of `geo` is 1×2) by 2-D
/// grid integration of exp(crop loglik); equiprobable interior bin edges of each.
fn exact_bins_2(
    m: &Ride<f32>,
    img: &[f64],
    w: usize,
    geo: &Geometry,
    bins: usize,
) -> [Vec<f64>; 2] {
    let c = geo.crop;
    let base: Vec<f64> = (c.top..c.top + c.h)
        .flat_map(|r| img[r * w + c.left..r * w + c.left + c.w].to_vec())
        .collect();
    let k = (geo.hole.top - c.top) * c.w + geo.hole.left - c.left;
    let eval = |lo: [f64; 2], hi: [f64; 2], n: usize| {
        let at = |d: usize, i: usize| lo[d] + (hi[d] - lo[d]) * i as f64 / (n - 1) as f64;
        let crops: Vec<Vec<f64>> = (0..n * n)
            .map(|q| {
                let mut x = base.clone();
                x[k] = at(0, q / n);
                x[k + 1] = at(1, q % n);
                x
            })
            .collect();
        let refs: Vec<&[f64]> = crops.iter().map(|v| v.as_slice()).collect();
        let lp: Vec<f64> = crop_logliks(m, &refs, c.h, c.w)
            .unwrap()
            .iter()
            .map(|l| l.iter().sum())
            .collect();
        let grid: [Vec<f64>; 2] = [
            (0..n).map(|i| at(0, i)).collect(),
            (0..n).map(|i| at(1, i)).collect(),
        ];
        (grid, lp)
    };
    let n = 201;
    let (g, lp) = eval([-20.0; 2], [20.0; 2], n);
    let mx = lp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for (q, l) in lp.iter().enumerate() {
        if *l > mx - 40.0 {
            for (d, i) in [(0, q / n), (1, q % n)] {
                lo[d] = lo[d].min(g[d][i] - 0.2);
                hi[d] = hi[d].max(g[d][i] + 0.2);
            }
        }
    }
    let n = 500;
    let (g, lp) = eval(lo, hi, n);
    let mx = lp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut out: [Vec<f64>; 2] = [vec![], vec![]];
    for d in 0..2 {
        // marginal on the grid (Riemann sum over the other pixel), then its CDF
        let mut p = vec![0.0; n];
        for (q, l) in lp.iter().enumerate() {
            p[if d == 0 { q / n } else { q % n }] += (l - mx).exp();
        }
        let mut cdf = vec![0.0; n];
        for i in 1..n {
            cdf[i] = cdf[i - 1] + 0.5 * (p[i] + p[i - 1]);
        }
        let z = cdf[n - 1];
        out[d] = (1..bins)
            .map(|b| {
                let t = z * b as f64 / bins as f64;
                let i = cdf.partition_point(|&v| v < t);
                let f = (t - cdf[i - 1]) / (cdf[i] - cdf[i - 1]);
                g[d][i - 1] + f * (g[d][i] - g[d][i - 1])
            })
            .collect();
    }
    out
}

/// Two-pixel hole, one 1×2 block: the proposal density is a product of two conditionals (the
/// second given the first new value); both marginals of the chain match the exact ones.
#[test]
fn mh_kernel_with_a_two_pixel_block_is_exact() {
    let (h, w) = (6, 6);
    let bins = 20;
    let crit = chi2_quantile((bins - 1) as f64, 3.0902);
    let m = tiny_model(6, &[3]);
    let img = image(h, w, 10);
    let opts = InpaintOptions {
        hole: (1, 2),
        center: Some((3, 3)),
        context: 8,
        sweeps: 30_000,
        seed: 2,
        candidates: 1,
        block: 2,
        window: 4,
        stride: 2,
        trace: true,
        target: Target::Crop,
        progress: None,
        checkpoint: None,
    };
    let geo = Geometry::new(&m, h, w, opts.hole, opts.center, opts.context).unwrap();
    assert_eq!((geo.hole.h, geo.hole.w), (1, 2));
    let edges = exact_bins_2(&m, &img, w, &geo, bins);
    let run = |drop_proposal_terms: bool| -> [f64; 2] {
        let hooks = ChainHooks {
            start_from_image: true,
            drop_proposal_terms,
        };
        let r = inpaint_with_hooks(&m, &img, h, w, &opts, hooks).unwrap();
        let t = r.trace.unwrap();
        [0, 1].map(|d| {
            let vals: Vec<f64> = t.iter().skip(100).step_by(5).map(|v| v[d]).collect();
            chi2(&vals, &edges[d])
        })
    };
    let good = run(false);
    let bad = run(true);
    println!("1×2 block: chi2({}) correct kernel {good:.1?}, proposal terms dropped {bad:.1?}; 0.999 quantile {crit:.1}", bins - 1);
    assert!(
        good.iter().all(|&g| g < crit),
        "correct kernel {good:?} ≥ {crit:.1}"
    );
    assert!(
        bad.iter().any(|&b| b > crit),
        "wrong kernel not caught: {bad:?}"
    );
}

#[test]
fn inpainting_and_hole_sampling_are_reproducible_by_seed() {
    let (h, w) = (14, 15);
    for hiddens in [vec![4usize], vec![]] {
        let m = tiny_model(2, &hiddens);
        let img = image(h, w, 3);
        let opts = InpaintOptions {
            hole: (6, 5),
            sweeps: 2,
            seed: 7,
            candidates: 3,
            block: 3,
            window: 7,
            stride: 2,
            context: 3,
            ..Default::default()
        };
        let a = inpaint(&m, &img, h, w, &opts).unwrap();
        let b = inpaint(&m, &img, h, w, &opts).unwrap();
        let c = inpaint(
            &m,
            &img,
            h,
            w,
            &InpaintOptions {
                seed: 8,
                ..opts.clone()
            },
        )
        .unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.image), bits(&b.image));
        assert_ne!(a.image, c.image);
        assert_eq!(a.acceptance, b.acceptance);
        assert_eq!(a.acceptance.len(), 2);
        let g = a.geometry;
        assert_eq!(
            g.hole,
            Rect {
                top: 4,
                left: 5,
                h: 6,
                w: 5
            }
        );
        assert_eq!(
            g.crop,
            Rect {
                top: 1,
                left: 2,
                h: 13 - 1,
                w: 11
            }
        );
        // only the hole changed
        for r in 0..h {
            for col in 0..w {
                let inside = (4..10).contains(&r) && (5..10).contains(&col);
                if !inside {
                    assert_eq!(a.image[r * w + col], img[r * w + col]);
                }
            }
        }
        println!(
            "{hiddens:?}: candidates {:?} chose {}, acceptance {:?}",
            a.candidate_logliks, a.chosen, a.acceptance
        );
        assert!(a.candidate_logliks[a.chosen] >= a.candidate_logliks[0]);
        // baselines score
        let mf = mean_fill(&img, &g, 3);
        let sm = score_fill(&m, &mf, &img, &g).unwrap();
        let sa = score_fill(&m, &a.image, &img, &g).unwrap();
        assert!(sm.psnr_db.is_finite() && sa.psnr_db.is_finite());
        assert!(sa.hole_bits_per_px.is_finite() && sa.crop_bits_per_px.is_finite());
        let ln2 = std::f64::consts::LN_2;
        let n_cells = ((g.crop.h - 1) * (g.crop.w - 2)) as f64;
        assert!((sa.crop_bits_per_px * ln2 * n_cells - a.crop_loglik).abs() < 1e-6);
    }
}

/// A chain stopped after some sweeps (its state saved) and run again to the end gives, bit for
/// bit, the fill, acceptance and convergence of an uninterrupted chain, for both targets with
/// and without SLSTM layers; a saved state of another chain (another seed) or an unreadable one
/// is not used.
#[test]
fn a_chain_resumed_from_its_saved_state_ends_as_an_uninterrupted_one() {
    let (h, w) = (16, 17);
    let dir = tempfile::tempdir().unwrap();
    for (k, (hiddens, target)) in [
        (vec![4usize], Target::Crop),
        (vec![4], Target::Window),
        (vec![], Target::Window),
    ]
    .into_iter()
    .enumerate()
    {
        let m = tiny_model(4, &hiddens);
        let img = image(h, w, 5);
        let opts = InpaintOptions {
            hole: (6, 6),
            sweeps: 5,
            seed: 3,
            candidates: 2,
            block: 3,
            window: 9,
            stride: 2,
            context: 3,
            target,
            trace: true,
            ..Default::default()
        };
        let whole = inpaint(&m, &img, h, w, &opts).unwrap();
        let path = dir.path().join(format!("chain{k}.json"));
        let ck = Some(Checkpointing {
            path: path.clone(),
            every_seconds: 0.0,
        });
        // the chain with the saved state at `path`
        let run = |o: &InpaintOptions| {
            let o = InpaintOptions {
                checkpoint: ck.clone(),
                ..o.clone()
            };
            inpaint(&m, &img, h, w, &o).unwrap()
        };
        // killed after 2 sweeps: the state after sweep 2 is on disk
        run(&InpaintOptions {
            sweeps: 2,
            ..opts.clone()
        });
        assert!(path.is_file());
        let resumed = run(&opts);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&resumed.image),
            bits(&whole.image),
            "{hiddens:?} {target:?}"
        );
        assert_eq!(bits(&resumed.acceptance), bits(&whole.acceptance));
        assert_eq!(bits(&resumed.hole_bits), bits(&whole.hole_bits));
        assert_eq!(resumed.trace, whole.trace);
        assert_eq!(resumed.sweep_seconds.len(), 5);
        assert_eq!(resumed.resumed_after, 2);
        assert_eq!(resumed.crop_loglik.to_bits(), whole.crop_loglik.to_bits());
        // the finished state (5 sweeps) is kept: a rerun does no sweep and gives the same fill
        let again = run(&opts);
        assert_eq!(again.resumed_after, 5);
        assert_eq!(bits(&again.image), bits(&whole.image));
        assert_eq!(again.sweep_seconds, resumed.sweep_seconds);
        // another seed's chain does not take this state
        let other = InpaintOptions {
            seed: 4,
            ..opts.clone()
        };
        let fresh = inpaint(&m, &img, h, w, &other).unwrap();
        let from_ck = run(&other);
        assert_eq!(from_ck.resumed_after, 0);
        assert_eq!(bits(&from_ck.image), bits(&fresh.image));
        // an unreadable state: the chain starts over
        std::fs::write(&path, b"{not json").unwrap();
        let over = run(&opts);
        assert_eq!(over.resumed_after, 0);
        assert_eq!(bits(&over.image), bits(&whole.image));
    }
}

#[test]
fn bad_holes_are_clear_errors() {
    let m = tiny_model(2, &[3]);
    let (h, w) = (10, 12);
    let img = image(h, w, 1);
    let err = |hole, center| {
        let o = InpaintOptions {
            hole,
            center,
            sweeps: 1,
            ..Default::default()
        };
        format!("{:#}", inpaint(&m, &img, h, w, &o).unwrap_err())
    };
    let e = err((11, 11), None);
    assert!(e.contains("larger than the 10×12 image"), "{e}");
    let e = err((4, 4), Some((2, 6)));
    assert!(
        e.contains("touches the border") && e.contains("rows above"),
        "{e}"
    );
    let e = err((4, 4), Some((5, 1)));
    assert!(e.contains("touches the border"), "{e}");
    let e = err((4, 4), Some((8, 6)));
    assert!(e.contains("no observed row below"), "{e}");
    let e = err((4, 4), Some((5, 10)));
    assert!(e.contains("columns right"), "{e}");
    let e = err((4, 4), Some((50, 6)));
    assert!(e.contains("outside the 10×12 image"), "{e}");
    // fits: 1 row above/left/right (nb_size 3 needs 1), 1 row below
    let o = InpaintOptions {
        hole: (8, 10),
        center: Some((5, 6)),
        sweeps: 1,
        ..Default::default()
    };
    assert!(inpaint(&m, &img, h, w, &o).is_ok());
}

#[test]
fn cli_inpaint_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (24, 28);
    let img = image(h, w, 4);
    let (lo, hi) = img
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let bytes: Vec<u8> = img
        .iter()
        .map(|v| (40.0 + 170.0 * (v - lo) / (hi - lo)).round() as u8)
        .collect();
    let src = dir.path().join("in.png");
    image::GrayImage::from_raw(w as u32, h as u32, bytes)
        .unwrap()
        .save(&src)
        .unwrap();
    let out = dir.path().join("out.png");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ride"))
            .args(args)
            .output()
            .expect("runs");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let (rc, stdout, stderr) = run(&[
        "inpaint", "--model", MODEL, "--image", s, "--hole", "6", "--sweeps", "1", "--seed", "3",
        "--out", o, "--json",
    ]);
    assert_eq!(rc, 0, "{stderr}");
    println!("{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["hole"]["h"].as_u64(), Some(6));
    assert_eq!(v["hole"]["top"].as_u64(), Some(9));
    assert_eq!(v["acceptance"].as_array().unwrap().len(), 1);
    for k in [
        "hole_bits_per_px",
        "psnr_db",
        "seconds",
        "seconds_per_sweep",
    ] {
        assert!(v[k].as_f64().unwrap().is_finite(), "{k}");
    }
    let back = ride::io::images::load_gray(&out, ride::io::images::GrayMode::Pil).unwrap();
    assert_eq!((back.w, back.h), (w, h));
    let (rc, _, stderr) = run(&[
        "inpaint", "--model", MODEL, "--image", s, "--hole", "30", "--out", o,
    ]);
    assert_ne!(rc, 0);
    assert!(stderr.contains("larger than the 24×28 image"), "{stderr}");
    let (rc, _, stderr) = run(&[
        "inpaint", "--model", MODEL, "--image", s, "--hole", "6", "--center", "2,10", "--out", o,
    ]);
    assert_ne!(rc, 0);
    assert!(stderr.contains("touches the border"), "{stderr}");
}

/// The incremental exact target: after any sequence of proposed and accepted block changes,
/// a proposal's total equals the target built from scratch on the proposed crop (bit for bit:
/// every cell is the same function of the pixels), and the whole-crop batch evaluation
/// agrees up to f32 arithmetic.
#[test]
fn incremental_crop_target_matches_a_full_recomputation() {
    use ride::model::raster::CellLayer;
    use ride::tasks::inpaint::CropTarget;
    for hiddens in [vec![3usize], vec![3, 2], vec![]] {
        let m = tiny_model(8, &hiddens);
        let (ch, cw) = (11, 13);
        let mut crop = image(ch, cw, 4);
        let layers: Vec<CellLayer> = m.layers.iter().map(CellLayer::new).collect();
        let mut t = CropTarget::new(&m, &layers, &crop, ch, cw);
        let batch: f64 = crop_logliks(&m, &[crop.as_slice()], ch, cw).unwrap()[0]
            .iter()
            .sum();
        assert!(
            (t.total - batch).abs() < 1e-4 * (1.0 + batch.abs()),
            "{hiddens:?}: per-cell {} vs batch {batch}",
            t.total
        );
        let mut r = Xoshiro256PlusPlus::seed_from_u64(1);
        for step in 0..12 {
            let (bh, bw) = (r.random_range(1..4usize), r.random_range(1..4usize));
            let block = Rect {
                top: r.random_range(0..ch - bh),
                left: r.random_range(0..cw - bw),
                h: bh,
                w: bw,
            };
            let mut prop = crop.clone();
            for i in block.top..block.top + bh {
                for j in block.left..block.left + bw {
                    prop[i * cw + j] += r.random_range(-0.5..0.5);
                }
            }
            let total = t.propose(&prop, block);
            let fresh = CropTarget::new(&m, &layers, &prop, ch, cw).total;
            assert_eq!(total.to_bits(), fresh.to_bits(), "{hiddens:?} step {step}");
            if r.random_range(0.0..1.0) < 0.5 {
                t.accept();
                crop = prop;
                assert_eq!(t.total.to_bits(), fresh.to_bits());
            }
        }
    }
}

/// The baselines' metrics: SSIM is 1 for the true pixels and falls with noise; the harmonic
/// fill reproduces a plane exactly (planes are harmonic) and lies within the border's range.
#[test]
fn ssim_and_harmonic_fill() {
    use ride::tasks::inpaint::{harmonic_fill, ssim_over};
    let m = tiny_model(5, &[3]);
    let (h, w) = (40, 44);
    let plane: Vec<f64> = (0..h * w)
        .map(|k| 0.3 + 0.01 * (k / w) as f64 - 0.005 * (k % w) as f64)
        .collect();
    let geo = Geometry::new(&m, h, w, (15, 15), None, 8).unwrap();
    let filled = harmonic_fill(&plane, &geo);
    let err = filled
        .iter()
        .zip(&plane)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-8, "harmonic fill of a plane: max error {err}");
    let img = image(h, w, 3);
    let filled = harmonic_fill(&img, &geo);
    let (lo, hi) = img
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    assert!(
        filled.iter().all(|v| (lo..=hi).contains(v)),
        "maximum principle"
    );
    assert!((ssim_over(&img, &img, h, w, geo.hole, hi - lo) - 1.0).abs() < 1e-12);
    let mut r = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut last = 1.0;
    for sigma in [0.01, 0.05, 0.2] {
        let noisy: Vec<f64> = img
            .iter()
            .map(|v| v + sigma * r.random_range(-1.0..1.0))
            .collect();
        let s = ssim_over(&noisy, &img, h, w, geo.hole, hi - lo);
        assert!(
            s < last && s > -1.0,
            "sigma {sigma}: ssim {s} (previous {last})"
        );
        last = s;
    }
}

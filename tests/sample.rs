//! Ancestral raster-scan sampling (docs/MODEL.md §4, §7): reproducible by seed, consistent with the
//! model's own forward pass, and fast enough for 256×256 textures.

use ride::model::ride::{testing, Ride};
use ride::model::slstm::LayerCache;
use ride::tasks::sample::{marginal, min_margin, sample, SampleOptions};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;
use common::MODEL;

fn smooth_images(n: usize, h: usize, w: usize, seed: u64) -> Vec<Vec<f64>> {
    ride::data::smooth_noise_images(n, h, w, seed)
}

fn small_model(seed: u64, hiddens: &[usize], extended: bool) -> Ride<f64> {
    let mix = testing::plain_mixture(3, 2, 4);
    testing::tiny_model(seed, 3, hiddens, extended, mix, 0.2)
}

#[test]
fn sampling_is_reproducible_by_seed() {
    let m = small_model(1, &[4], false);
    let a = sample_image(&m, 8, 9, 2, 7, None).unwrap();
    let b = sample_image(&m, 8, 9, 2, 7, None).unwrap();
    let c = sample_image(&m, 8, 9, 2, 8, None).unwrap();
    assert_eq!(a.len(), 8 * 9);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|v| v.is_finite()));
    // the f32 model samples too (weights used in f64)
    let a32 = sample_image(&m.cast::<f32>(), 8, 9, 2, 7, None).unwrap();
    assert!(a32.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-3));
}

#[test]
fn margin_init_clip_and_errors() {
    let m = small_model(2, &[4], false);
    let nb = &m.nb;
    assert_eq!(min_margin(nb), 1);
    assert!(sample_image(&m, 8, 9, 0, 1, None).is_err());
    assert!(sample_image(&m, 0, 9, 2, 1, None).is_err());
    assert!(sample_image(&m, 8, 9, 2, 1, Some(&[0.0; 3])).is_err());
    // the marginal: mean and variance of the whitening's fit data, C_yy
    let (mu, sd) = marginal(&m.whitening);
    let imgs = smooth_images(5, 7, 8, 2);
    let mut ys = vec![];
    for img in &imgs {
        ys.extend(nb.extract(img, 7, 8).unwrap().1);
    }
    let my = ys.iter().sum::<f64>() / ys.len() as f64;
    let vy = ys.iter().map(|y| (y - my).powi(2)).sum::<f64>() / ys.len() as f64;
    assert!((mu - my).abs() < 1e-12 && (sd * sd - vy).abs() < 1e-10);

    let (h, w, margin) = (8, 9, 2);
    let (ch, cw) = (h + margin, w + 2 * margin);
    // init given, margin kept: the margin is init's, the interior is sampled
    let init: Vec<f64> = (0..ch * cw).map(|k| 0.01 * k as f64).collect();
    let opts = SampleOptions {
        margin,
        seed: 3,
        init: Some(&init),
        keep_margin: true,
        clip: Some((0.2, 0.6)),
        ..Default::default()
    };
    let s = sample(&m, h, w, &opts).unwrap();
    assert_eq!((s.canvas_h, s.canvas_w), (ch, cw));
    for r in 0..ch {
        for c in 0..cw {
            let v = s.canvas[r * cw + c];
            let interior = r >= margin && c >= margin && c < margin + w;
            if interior {
                assert!((0.2..=0.6).contains(&v), "({r},{c}) = {v} not clipped");
                assert_eq!(v, s.image[(r - margin) * w + c - margin]);
            } else {
                assert_eq!(v, init[r * cw + c], "margin ({r},{c}) changed");
            }
        }
    }
    // default: the predictable margin pixels are drawn too (burn-in); the unpredictable border
    // (top row, left and right column for nb_size 3) keeps its initial values
    let opts = SampleOptions {
        margin,
        seed: 3,
        init: Some(&init),
        ..Default::default()
    };
    let s = sample(&m, h, w, &opts).unwrap();
    for r in 0..ch {
        for c in 0..cw {
            let border = r == 0 || c == 0 || c == cw - 1;
            assert_eq!(
                s.canvas[r * cw + c] == init[r * cw + c],
                border,
                "({r},{c})"
            );
        }
    }
}

/// The states the sampler computed cell by cell (raster order, while the canvas was still
/// being drawn) equal the model's wavefront forward on the final canvas (f64), up to the f32
/// arithmetic of the per-cell stepper.
#[test]
fn sampler_states_match_the_model_forward() {
    for (hiddens, extended) in [(vec![4usize], false), (vec![3, 4], true)] {
        let m = small_model(3, &hiddens, extended);
        let opts = SampleOptions {
            margin: 2,
            seed: 11,
            keep_hidden: true,
            ..Default::default()
        };
        let s = sample(&m, 8, 9, &opts).unwrap();
        let (ch, cw) = (s.canvas_h, s.canvas_w);
        assert_eq!((ch, cw), (10, 13));
        let batch = m.prepare(&[s.canvas.as_slice()], ch, cw, 1).unwrap();
        assert_eq!(batch.grid, s.grid);
        let chunk = &batch.chunks[0];
        let mut caches: Vec<LayerCache<f64>> = vec![LayerCache::default(); m.layers.len()];
        for l in 0..m.layers.len() {
            let (below, this) = caches.split_at_mut(l);
            let input = if l == 0 { &chunk.x } else { &below[l - 1].h };
            m.layers[l].forward(&chunk.wf, input, &mut this[0]);
        }
        let top = m.num_hiddens();
        let want = chunk.wf.to_raster(&caches.last().unwrap().h, top);
        let got = s.hidden.as_ref().unwrap();
        assert_eq!(got.len(), want.len());
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "{hiddens:?} extended={extended}: sampler vs wavefront forward, max abs diff {err:.1e}"
        );
        assert!(err < 2e-5, "{err}");
        // and the likelihood of the sample is finite under the model
        let ll = m.loglik_map(&batch);
        assert!(ll[0].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn fixture_model_samples_256x256_quickly() {
    let m = ride::io::modelfile::import_npz(Path::new(MODEL)).expect("model imports");
    let t0 = Instant::now();
    let img = sample_image(&m, 256, 256, 8, 1, None).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let n = img.len() as f64;
    let mean = img.iter().sum::<f64>() / n;
    let inside = img.iter().filter(|v| (-0.5..=1.5).contains(*v)).count() as f64 / n;
    let sd = (img.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    println!(
        "256×256 sample of the fixture model in {secs:.2} s: mean {mean:.4}, sd {sd:.4}, {:.2}% within [−0.5, 1.5]",
        100.0 * inside
    );
    assert!(img.iter().all(|v| v.is_finite()));
    assert!(
        inside > 0.95,
        "only {:.1}% within [−0.5, 1.5]",
        100.0 * inside
    );
    if !cfg!(debug_assertions) {
        assert!(secs < 30.0, "sampling took {secs:.1} s");
    }
}

#[test]
fn cli_sample_writes_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.png");
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
    let o = out.to_str().unwrap();
    let (rc, stdout, stderr) = run(&[
        "sample", "--model", MODEL, "--size", "40x24", "--seed", "5", "--out", o, "--clip",
        "-0.1,1.1",
    ]);
    assert_eq!(rc, 0, "{stderr}");
    println!("{stdout}");
    assert!(stdout.contains("mean sampled value"));
    let img = ride::io::images::load_gray(&out, ride::io::images::GrayMode::Pil).unwrap();
    assert_eq!((img.w, img.h), (40, 24));
    for bad in ["40", "40x", "0x5", "ax5", "4x-5"] {
        let (rc, _, stderr) = run(&["sample", "--model", MODEL, "--size", bad, "--out", o]);
        assert_ne!(rc, 0);
        assert!(stderr.contains("WIDTHxHEIGHT"), "{bad}: {stderr}");
    }
    let (rc, _, stderr) = run(&[
        "sample", "--model", MODEL, "--size", "8x8", "--out", o, "--clip", "1,0",
    ]);
    assert_ne!(rc, 0);
    assert!(stderr.contains("LO,HI"), "{stderr}");
}

/// An `h × w` sample with a `margin`, seeded, from `init` or the marginal.
fn sample_image<T: ride::numerics::real::Real>(
    model: &ride::model::ride::Ride<T>,
    h: usize,
    w: usize,
    margin: usize,
    seed: u64,
    init: Option<&[f64]>,
) -> anyhow::Result<Vec<f64>> {
    let opts = SampleOptions {
        margin,
        seed,
        init,
        ..Default::default()
    };
    Ok(sample(model, h, w, &opts)?.image)
}

//! The discrete likelihood of 8-bit images: every cell's 256 value probabilities sum to 1, the
//! code length sits where the density rate says (log₂ 255 − rate, up to the bins' curvature),
//! it does not depend on the thread count, and values off the 8-bit grid are refused.

mod common;
use common::{GRAY_PNG, MODEL};
use ride::model::mcgsm::CellMixture;
use ride::model::raster::{CellLayer, RasterStack};
use ride::tasks::discrete::{tile_code_lengths, value_probabilities, LEVELS};
use ride::tasks::eval::{tile_bits, tiles};

fn fixture() -> (ride::model::ride::Ride<f32>, Vec<Vec<f64>>) {
    let m = ride::io::modelfile::load(std::path::Path::new(MODEL)).expect("model");
    let img = m
        .preprocessing
        .load_image(std::path::Path::new(GRAY_PNG), None)
        .expect("image");
    let ts = tiles(&img.data, img.h, img.w, 64);
    (m, ts)
}

#[test]
fn probabilities_sum_to_one_and_code_length_matches_the_rate() {
    let (m, ts) = fixture();
    // the first cells of a tile: every value's probability, summing to 1
    let layers: Vec<CellLayer> = m.layers.iter().map(CellLayer::new).collect();
    let (_, gc) = m.nb.grid(64, 64).expect("grid");
    let mut stack = RasterStack::new(&layers, &m.nb, gc);
    let mut mix = CellMixture::new(&m.mcgsm);
    for j in 0..8 {
        let (xw, u) = stack.step(&m.whitening, &ts[3], 64, (0, 0), (0, j));
        let (xw, u) = (xw.to_vec(), u.to_vec());
        let p = value_probabilities(&m, &mut mix, &xw, &u);
        assert_eq!(p.len(), LEVELS);
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "cell {j}: Σ P = {total}");
        assert!(p.iter().all(|&v| v > 0.0));
    }
    // the code length against the density rate of the same tiles
    let some = &ts[..8];
    let code: Vec<f64> = tile_code_lengths(&m, some, 64).expect("code lengths");
    let rate = tile_bits(&m, some, 64, 8).expect("rates");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let want = 255f64.log2() - mean(&rate);
    assert!(
        (mean(&code) - want).abs() < 0.05,
        "code length {} vs log2(255) − rate {want}",
        mean(&code)
    );
}

#[test]
fn code_lengths_do_not_depend_on_threads_and_refuse_non_8_bit_values() {
    let (m, ts) = fixture();
    let some = &ts[..4];
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| tile_code_lengths(&m, some, 64).expect("code lengths"))
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let mut off = some[0].clone();
    off[200] += 0.3 / 255.0;
    let err = tile_code_lengths(&m, &[off], 64).unwrap_err().to_string();
    assert!(err.contains("not one of the 8-bit values"), "{err}");
}

/// `ride eval --discrete --json` reports the code length beside the density rate.
#[test]
fn cli_eval_discrete() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ride"))
        .args(["eval", "--discrete", "--json", "--model", MODEL, GRAY_PNG])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("discrete code length"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("json")).expect("json");
    let (d, rate) = (
        v["discrete_bits_per_px"].as_f64().expect("discrete"),
        v["bits_per_px"].as_f64().expect("rate"),
    );
    assert!((d - (255f64.log2() - rate)).abs() < 0.05, "{d} vs {rate}");
    assert!(v["discrete_sem"].as_f64().is_some_and(|s| s > 0.0));
}

//! EoRIDE (docs/MODEL.md §6): the ensemble over the 8 flips/transposes of a tile, all scoring the same
//! (common) pixels.

use ride::io::images::{load_gray, GrayMode};
use ride::model::neighbourhood::Neighbourhood;
use ride::tasks::eval::{
    common_pixels, ensemble_bits, ensemble_tile_bits, tile_bits, tiles, DIHEDRAL,
};
use std::collections::HashSet;
use std::path::Path;

mod common;
use common::{GRAY_PNG as IMAGE, MODEL};

#[test]
fn the_eight_transforms_are_the_dihedral_group() {
    let (h, w) = (3, 5);
    let img: Vec<f64> = (0..h * w).map(|v| v as f64).collect();
    let mut seen = HashSet::new();
    for t in &DIHEDRAL {
        let (h2, w2) = t.dims(h, w);
        let out = t.apply(&img, h, w);
        assert_eq!(out.len(), h * w);
        // a permutation of the pixels
        let mut sorted = out.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, img, "{}", t.name);
        for a in 0..h2 {
            for b in 0..w2 {
                let (r, c) = t.to_original(a, b, h, w);
                assert_eq!(out[a * w2 + b], img[r * w + c]);
            }
        }
        assert!(seen.insert(out.iter().map(|v| *v as u32).collect::<Vec<_>>()));
    }
    // named ones on a square: rotate 90 is counter-clockwise, rotate 270 clockwise
    let sq: Vec<f64> = (0..4).map(|v| v as f64).collect(); // [[0,1],[2,3]]
    let by_name = |n: &str| {
        DIHEDRAL
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .apply(&sq, 2, 2)
    };
    assert_eq!(by_name("identity"), vec![0.0, 1.0, 2.0, 3.0]);
    assert_eq!(by_name("flip horizontal"), vec![1.0, 0.0, 3.0, 2.0]);
    assert_eq!(by_name("flip vertical"), vec![2.0, 3.0, 0.0, 1.0]);
    assert_eq!(by_name("rotate 180"), vec![3.0, 2.0, 1.0, 0.0]);
    assert_eq!(by_name("transpose"), vec![0.0, 2.0, 1.0, 3.0]);
    assert_eq!(by_name("anti-transpose"), vec![3.0, 1.0, 2.0, 0.0]);
    assert_eq!(by_name("rotate 90"), vec![1.0, 3.0, 0.0, 2.0]);
    assert_eq!(by_name("rotate 270"), vec![2.0, 0.0, 3.0, 1.0]);
}

#[test]
fn common_pixels_of_standard_and_general_masks() {
    // 64×64, nb_size 5: rows and columns 2…61
    let nb = Neighbourhood::causal(5).unwrap();
    let m = common_pixels(&nb, 64, 64).unwrap();
    for r in 0..64 {
        for c in 0..64 {
            let expect = (2..=61).contains(&r) && (2..=61).contains(&c);
            assert_eq!(m[r * 64 + c], expect, "({r},{c})");
        }
    }
    assert_eq!(m.iter().filter(|&&b| b).count(), 60 * 60);
    // a general mask: 2×4 window, output at (1,1), inputs all of row 0 and (1,0).
    // Identity predicts rows 1…h−1, cols 1…w−3; the intersection over the 8 transforms is
    // rows and columns 2…h−3 (the flips move the 1-pixel left margin to the right and the
    // 2-pixel right margin to the left).
    let mut input = vec![true; 4];
    input.extend([true, false, false, false]);
    let mut output = vec![false; 8];
    output[5] = true;
    let nb2 = Neighbourhood::from_masks(2, 4, input, output).unwrap();
    let t = 10;
    let m2 = common_pixels(&nb2, t, t).unwrap();
    for r in 0..t {
        for c in 0..t {
            let expect = (2..=t - 3).contains(&r) && (2..=t - 3).contains(&c);
            assert_eq!(m2[r * t + c], expect, "({r},{c})");
        }
    }
    assert!(common_pixels(&nb, 2, 2).is_err());
}

#[test]
fn ensemble_on_the_fixture_model() {
    let m = ride::io::modelfile::import_npz(Path::new(MODEL)).expect("model imports");
    let img = load_gray(Path::new(IMAGE), GrayMode::Pil).unwrap();
    let data: Vec<f64> = img.data.iter().map(|v| v / 255.0).collect();
    let ts: Vec<Vec<f64>> = tiles(&data, img.h, img.w, 64).into_iter().take(2).collect();
    assert_eq!(ts.len(), 2);

    let r = ensemble_tile_bits(&m, &ts, 64, 16).unwrap();
    let (l, n, single) = (&r.logliks, r.pixels_per_tile, &r.single);
    assert_eq!(n, 60 * 60);
    let ens = ensemble_tile_bits(&m, &ts, 64, 1).unwrap().ensemble;
    let ordinary = tile_bits(&m, &ts, 64, 16).unwrap();
    for k in 0..2 {
        let per_t: Vec<f64> = l[k]
            .iter()
            .map(|v| v / n as f64 / std::f64::consts::LN_2)
            .collect();
        let mean = per_t.iter().sum::<f64>() / 8.0;
        let max = per_t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "tile {k}: EoRIDE {:.4} bit/px; single transforms {:?} (mean {mean:.4}, max {max:.4}); identity over common {:.4}, ordinary {:.4}",
            ens[k],
            per_t.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>(),
            single[k],
            ordinary[k]
        );
        // batching does not matter (beyond f32 round-off of differently blocked GEMMs)
        assert!((ens[k] - ensemble_bits(&l[k], n)).abs() < 1e-4);
        assert!((single[k] - per_t[0]).abs() < 1e-4);
        // Jensen: log-mean-exp ≥ mean, and ≤ max
        assert!(ens[k] >= mean - 1e-12, "ensemble {} < mean {mean}", ens[k]);
        assert!(ens[k] <= max + 1e-12, "ensemble {} > max {max}", ens[k]);
        assert!(
            (single[k] - ordinary[k]).abs() < 0.1,
            "common-pixel score {} vs ordinary {}",
            single[k],
            ordinary[k]
        );
        assert!(per_t.iter().all(|v| v.is_finite()));
    }
    // scoring T(tile) in the identity orientation is scoring tile under T (the common set is
    // invariant under the group)
    let moved: Vec<Vec<f64>> = DIHEDRAL.iter().map(|t| t.apply(&ts[0], 64, 64)).collect();
    let lm = ensemble_tile_bits(&m, &moved, 64, 16).unwrap().logliks;
    for (k, t) in DIHEDRAL.iter().enumerate() {
        let d = (lm[k][0] - l[0][k]).abs() / n as f64;
        assert!(d < 1e-5, "{}: {} vs {}", t.name, lm[k][0], l[0][k]);
    }
    // a tile of another size (here 64×48 for 64×64 tiles) is refused
    let err = ensemble_tile_bits(&m, &[vec![0.5; 64 * 48]], 64, 16)
        .expect_err("a tile of the wrong size must be refused");
    println!("wrong-size tile: {err}");
    assert!(err.to_string().contains("expected 64×64"));
    // the single model over the common pixels, checked against the plain log-likelihood map
    // summed over the common mask (not against itself)
    let s2 = single;
    let mask = common_pixels(&m.nb, 64, 64).unwrap();
    let (orow, ocol) = m.nb.output_pos();
    for (k, tile) in ts.iter().take(2).enumerate() {
        let b = m.prepare(&[tile.as_slice()], 64, 64, 1).unwrap();
        let map = &m.loglik_map(&b)[0];
        let (gr, gc) = b.grid;
        let (mut sum, mut count) = (0.0, 0usize);
        for i in 0..gr {
            for j in 0..gc {
                if mask[(i + orow) * 64 + j + ocol] {
                    sum += map[i * gc + j];
                    count += 1;
                }
            }
        }
        assert_eq!(count, n);
        let plain = sum / count as f64 / std::f64::consts::LN_2;
        assert!(
            (s2[k] - plain).abs() < 1e-4,
            "tile {k}: {} vs plain {plain}",
            s2[k]
        );
    }
}

#[test]
fn cli_eval_ensemble() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ride"))
        .args(["eval", "--ensemble", "--json", "--model", MODEL, IMAGE])
        .output()
        .expect("runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    println!("{stdout}");
    assert!(stdout.contains("EoRIDE") && stdout.contains("common pixels"));
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["ensemble"], serde_json::Value::Bool(true));
    assert_eq!(v["tiles"].as_u64(), Some(35));
    assert_eq!(v["common_pixels_per_tile"].as_u64(), Some(3600));
    assert_eq!(v["pixels"].as_u64(), Some(35 * 3600));
    let (e, s) = (
        v["bits_per_px"].as_f64().unwrap(),
        v["single_bits_per_px"].as_f64().unwrap(),
    );
    assert!(e.is_finite() && s.is_finite() && v["single_sem"].as_f64().is_some());
}

//! The original code's trained model must reproduce the fixture's intermediate values and
//! per-pixel log-likelihoods (shared/models/README.md gives the tolerances).

// Finite-difference loops index several parallel arrays by position.

use ride::io::modelfile::{import_npz, Npz};
use ride::model::mcgsm::McgsmWork;
use ride::model::slstm::LayerCache;
use ride::model::wavefront::Wavefront;
use std::path::Path;

mod common;
use common::{MODEL, TILE_FIXTURE};

/// The full fixture of `shared/models` (two tiles, every hidden state).
const FULL_FIXTURE: &str = "../shared/models/ride1_bsds300_fixture.npz";

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The committed tile-sized fixture: one tile, the hidden states of its first 8 rows of cells.
#[test]
fn fixture_intermediates_and_loglik() {
    check_fixture(Path::new(TILE_FIXTURE));
}

/// The full fixture of `shared/models` (`make test-data`).
#[test]
#[ignore = "needs the full data sets: make test-data"]
fn full_fixture_intermediates_and_loglik() {
    check_fixture(Path::new(FULL_FIXTURE));
}

fn check_fixture(path: &Path) {
    let m = import_npz(Path::new(MODEL)).expect("model imports");
    let mut fx = Npz::open(path).expect("fixture opens");
    let (tshape, tiles) = fx.array("tiles").unwrap();
    let nt = tshape[0];
    assert_eq!(tshape, vec![nt, 64, 64]);
    let wi = fx.expect("whitened_inputs", &[nt, 62, 60, 12]).unwrap();
    let wo = fx.expect("whitened_outputs", &[nt, 62, 60]).unwrap();
    let (hshape, h0) = fx.array("hidden.0").unwrap();
    let rows = hshape[1];
    assert_eq!(hshape, vec![nt, rows, 60, 64]);
    let ll = fx.expect("loglik_nats", &[nt, 62, 60]).unwrap();
    // per tile: the first `rows` rows of cells (those with stored hidden states)
    let first_rows = |v: &[f64], per_cell: usize| -> Vec<f64> {
        (0..nt)
            .flat_map(|t| v[t * 62 * 60 * per_cell..][..rows * 60 * per_cell].to_vec())
            .collect()
    };

    // whitening
    let mut xs = vec![];
    let mut ys = vec![];
    for t in 0..nt {
        let (x, y, gr, gc) =
            m.nb.extract(&tiles[t * 4096..(t + 1) * 4096], 64, 64)
                .unwrap();
        assert_eq!((gr, gc), (62, 60));
        let (xw, yw) = m.whitening.apply(&x, &y);
        xs.extend(xw);
        ys.extend(yw);
    }
    let e_in = max_abs(&xs, &wi);
    let e_out = max_abs(&ys, &wo);
    println!("whitened inputs max abs err {e_in:.2e}, outputs {e_out:.2e}");
    // the fixture stores whitened inputs in f32
    assert!(e_in < 1e-5 && e_out < 1e-5);

    // SLSTM layer 0 (f32) from the fixture's whitened inputs
    let wf = Wavefront::new(nt, 62, 60);
    let x32: Vec<f32> = wi.iter().map(|&v| v as f32).collect();
    let mut cache = LayerCache::default();
    m.layers[0].forward(&wf, &wf.to_wavefront(&x32, 12), &mut cache);
    let h: Vec<f64> = wf
        .to_raster(&cache.h, 64)
        .into_iter()
        .map(f64::from)
        .collect();
    let e_h = max_abs(&first_rows(&h, 64), &h0);
    println!("hidden.0 max abs err {e_h:.2e} ({rows} rows of cells per tile)");
    assert!(e_h < 1e-4, "hidden.0 differs by {e_h}");

    // MCGSM on the fixture's hidden states, + log-Jacobian
    let hid32: Vec<f32> = h0.iter().map(|&v| v as f32).collect();
    let y32: Vec<f32> = first_rows(&wo, 1).iter().map(|&v| v as f32).collect();
    let mut out = vec![0f32; y32.len()];
    m.mcgsm
        .loglik(&hid32, &y32, &mut out, &mut McgsmWork::default(), None);
    let lj = m.whitening.log_jacobian();
    let got: Vec<f64> = out.iter().map(|&v| v as f64 + lj).collect();
    let e_ll = max_abs(&got, &first_rows(&ll, 1));
    println!("MCGSM loglik max abs err {e_ll:.2e} nats");
    assert!(e_ll < 1e-3);

    // whole model from raw tiles
    let refs: Vec<&[f64]> = (0..nt).map(|t| &tiles[t * 4096..(t + 1) * 4096]).collect();
    let batch = m.prepare(&refs, 64, 64, 2).unwrap();
    let map: Vec<f64> = m.loglik_map(&batch).concat();
    let e_full = max_abs(&map, &ll);
    let mean_bits = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64 / std::f64::consts::LN_2;
    let (ours, theirs) = (mean_bits(&map), mean_bits(&ll));
    println!("full model: max abs err {e_full:.2e} nats/px; mean {ours:.6} vs {theirs:.6} bit/px");
    assert!(
        e_full < 1e-3,
        "per-pixel log-likelihood differs by {e_full} nats"
    );
    assert!((ours - theirs).abs() < 1e-4);
}

//! The original code's trained model must reproduce the fixture's intermediate values and
//! per-pixel log-likelihoods (shared/models/README.md gives the tolerances).

// Finite-difference loops index several parallel arrays by position.
#![allow(clippy::needless_range_loop)]

use ride::mcgsm::McgsmWork;
use ride::modelfile::{import_npz, Npz};
use ride::slstm::LayerCache;
use ride::wavefront::Wavefront;
use std::path::Path;

const MODEL: &str = "../shared/models/ride1_bsds300.npz";
const FIXTURE: &str = "../shared/models/ride1_bsds300_fixture.npz";

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn fixture_intermediates_and_loglik() {
    let m = import_npz(Path::new(MODEL)).expect("model imports");
    let mut fx = Npz::open(Path::new(FIXTURE)).expect("fixture opens");
    let (tshape, tiles) = fx.array("tiles").unwrap();
    assert_eq!(tshape, vec![2, 64, 64]);
    let wi = fx.expect("whitened_inputs", &[2, 62, 60, 12]).unwrap();
    let wo = fx.expect("whitened_outputs", &[2, 62, 60]).unwrap();
    let h0 = fx.expect("hidden.0", &[2, 62, 60, 64]).unwrap();
    let ll = fx.expect("loglik_nats", &[2, 62, 60]).unwrap();

    // whitening
    let mut xs = vec![];
    let mut ys = vec![];
    for t in 0..2 {
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
    let wf = Wavefront::new(2, 62, 60);
    let x32: Vec<f32> = wi.iter().map(|&v| v as f32).collect();
    let mut cache = LayerCache::default();
    m.layers[0].forward(&wf, &wf.to_wavefront(&x32, 12), &mut cache);
    let h: Vec<f64> = wf
        .to_raster(&cache.h, 64)
        .into_iter()
        .map(f64::from)
        .collect();
    let e_h = max_abs(&h, &h0);
    println!("hidden.0 max abs err {e_h:.2e}");
    assert!(e_h < 1e-4, "hidden.0 differs by {e_h}");

    // MCGSM on the fixture's hidden states, + log-Jacobian
    let hid32: Vec<f32> = h0.iter().map(|&v| v as f32).collect();
    let y32: Vec<f32> = wo.iter().map(|&v| v as f32).collect();
    let mut out = vec![0f32; y32.len()];
    m.mcgsm
        .loglik(&hid32, &y32, &mut out, &mut McgsmWork::default(), None);
    let lj = m.whitening.log_jacobian();
    let got: Vec<f64> = out.iter().map(|&v| v as f64 + lj).collect();
    let e_ll = max_abs(&got, &ll);
    println!("MCGSM loglik max abs err {e_ll:.2e} nats");
    assert!(e_ll < 1e-3);

    // whole model from raw tiles
    let refs: Vec<&[f64]> = (0..2).map(|t| &tiles[t * 4096..(t + 1) * 4096]).collect();
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

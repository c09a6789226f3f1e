//! Model files: npz import, safetensors round trip, and clear errors for broken files.

// Finite-difference loops index several parallel arrays by position.

use ride::io::modelfile::{from_safetensors, import_npz, load, save_safetensors, to_safetensors};
use std::path::Path;

mod common;
use common::MODEL;

#[test]
fn npz_import_has_the_documented_architecture() {
    let m = import_npz(Path::new(MODEL)).unwrap();
    assert_eq!((m.nb.rows, m.nb.cols, m.nb.n_inputs()), (3, 5, 12));
    assert_eq!(m.layers.len(), 1);
    assert_eq!((m.layers[0].n_in(), m.layers[0].h()), (12, 64));
    assert_eq!(
        (m.mcgsm.d(), m.mcgsm.c(), m.mcgsm.s(), m.mcgsm.f()),
        (64, 32, 4, 32)
    );
    assert!(m.mcgsm.linear_features().is_none() && m.mcgsm.means().is_none());
    // parameters: 5·H·(in + 2H + 1) for the layer, C·S·2 + C·F + D·F + C·D for the MCGSM
    assert_eq!(
        m.num_params(),
        5 * 64 * (12 + 128 + 1) + 32 * 4 * 2 + 32 * 32 + 64 * 32 + 32 * 64
    );
}

#[test]
fn safetensors_round_trip_is_bit_exact() {
    let m = import_npz(Path::new(MODEL)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    save_safetensors(&m, &p).unwrap();
    let back = load(&p).unwrap();
    assert_eq!(back, m);
    // bit-exact: every tensor's bytes are identical after a second save
    let (a, b) = (std::fs::read(&p).unwrap(), to_safetensors(&back).unwrap());
    let (sa, sb) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let mut names = sa.names();
    names.sort();
    assert_eq!(names.len(), 2 + 6 + 2 + 5);
    for name in names {
        let (ta, tb) = (sa.tensor(name).unwrap(), sb.tensor(name).unwrap());
        assert_eq!(
            (ta.dtype(), ta.shape(), ta.data()),
            (tb.dtype(), tb.shape(), tb.data()),
            "{name}"
        );
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(back.layers[0].w()), bits(m.layers[0].w()));
    // no temporary file left behind
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn truncated_npz_is_a_clear_error() {
    let bytes = std::fs::read(MODEL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [100, bytes.len() / 2, bytes.len() - 10] {
        let p = dir.path().join(format!("cut{cut}.npz"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = format!("{:#}", import_npz(&p).unwrap_err());
        assert!(
            err.contains(&p.display().to_string()),
            "error names the file: {err}"
        );
        assert!(
            err.contains("truncated") || err.contains("missing") || err.contains("not a readable"),
            "{err}"
        );
    }
}

#[test]
fn wrong_shaped_or_missing_tensor_is_named() {
    let m = import_npz(Path::new(MODEL)).unwrap();
    let bytes = to_safetensors(&m).unwrap();
    // rewrite the header with a wrong shape for one tensor (same byte size: transpose)
    let (n, _) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let bad = header.replacen("\"shape\":[320,140]", "\"shape\":[140,320]", 1);
    assert_ne!(bad, header);
    let mut v = bytes[..8].to_vec();
    v.extend_from_slice(bad.as_bytes());
    v.extend_from_slice(&bytes[8 + n..]);
    let err = format!("{:#}", from_safetensors(&v).unwrap_err());
    assert!(
        err.contains("slstm.0.w") && err.contains("expected"),
        "{err}"
    );
    // truncated safetensors file
    let err = format!(
        "{:#}",
        from_safetensors(&bytes[..bytes.len() - 100]).unwrap_err()
    );
    assert!(err.contains("truncated"), "{err}");
    // a missing tensor: rename it in the header
    let renamed = header.replacen("mcgsm.priors", "mcgsm.prior_", 1);
    let mut v = bytes[..8].to_vec();
    v.extend_from_slice(renamed.as_bytes());
    v.extend_from_slice(&bytes[8 + n..]);
    let err = format!("{:#}", from_safetensors(&v).unwrap_err());
    assert!(
        err.contains("mcgsm.priors") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn a_model_file_is_a_function_of_the_model() {
    // the metadata map would otherwise be written in hash order
    let m = ride::io::modelfile::import_npz(std::path::Path::new(common::MODEL)).unwrap();
    let a = ride::io::modelfile::to_safetensors(&m).unwrap();
    for _ in 0..5 {
        assert_eq!(a, ride::io::modelfile::to_safetensors(&m).unwrap());
    }
    let back = ride::io::modelfile::from_safetensors(&a).unwrap();
    assert_eq!(back, m);
}

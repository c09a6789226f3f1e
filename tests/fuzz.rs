//! Property / fuzz suite (bounded, runs in `make test`): random truncations, byte flips and
//! absurd dimensions of images, npz and safetensors model files, checkpoints and TOML configs
//! give errors, never panics, aborts or unbounded allocations; what does load is valid.

use proptest::prelude::*;
use ride::io::images::{load_gray, GrayMode};
use std::io::Write;
use std::path::Path;

mod common;
use common::{GRAY_PNG as PNG, MODEL};

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `bytes` truncated to `cut` (a fraction) and with `flips` (position fraction, xor mask).
fn mangle(bytes: &[u8], cut: f64, flips: &[(f64, u8)]) -> Vec<u8> {
    let n = ((bytes.len() as f64) * cut) as usize;
    let mut v = bytes[..n.min(bytes.len())].to_vec();
    for &(p, x) in flips {
        if !v.is_empty() {
            let k = ((v.len() as f64) * p) as usize % v.len();
            v[k] ^= x;
        }
    }
    v
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn check_image(path: &Path) {
    if let Ok(img) = load_gray(path, GrayMode::Pil) {
        assert_eq!(img.data.len(), img.h * img.w);
        assert!(img.h > 0 && img.w > 0);
        assert!(img
            .data
            .iter()
            .all(|v| v.is_finite() && (0.0..=255.0).contains(v)));
    }
}

fn gif_path() -> std::path::PathBuf {
    common::data_dir().join("brodatz/D1.gif")
}

fn jpeg_bytes() -> Vec<u8> {
    let dir = Path::new("tests/fixtures/bsds300/images/test");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    std::fs::read(&files[0]).unwrap()
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn mangled_png_never_panics(cut in 0.0f64..1.0, flips in prop::collection::vec((0.0f64..1.0, 1u8..=255), 0..4)) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(PNG).unwrap();
        let p = write_tmp(dir.path(), "x.png", &mangle(&bytes, cut, &flips));
        check_image(&p);
    }

    #[test]
    fn mangled_jpeg_never_panics_and_truncation_is_an_error(cut in 0.05f64..0.98, flips in prop::collection::vec((0.0f64..1.0, 1u8..=255), 0..4)) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = jpeg_bytes();
        let p = write_tmp(dir.path(), "x.jpg", &mangle(&bytes, cut, &flips));
        check_image(&p);
        // truncated without flips: always an error, never a gray-filled image
        let q = write_tmp(dir.path(), "y.jpg", &mangle(&bytes, cut, &[]));
        prop_assert!(load_gray(&q, GrayMode::Pil).is_err(), "truncated JPEG at {cut} decoded");
    }

    /// Truncated PNGs and GIFs are errors (no partial image), flipped ones never panic.
    #[test]
    fn truncated_png_and_gif_are_errors(cut in 0.02f64..0.97, flips in prop::collection::vec((0.0f64..1.0, 1u8..=255), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        for (name, src) in [("x.png", Path::new(PNG).to_path_buf()), ("x.gif", gif_path())] {
            let bytes = std::fs::read(&src).unwrap();
            let p = write_tmp(dir.path(), name, &mangle(&bytes, cut, &[]));
            prop_assert!(load_gray(&p, GrayMode::Pil).is_err(), "{name} truncated at {cut} decoded");
            let q = write_tmp(dir.path(), name, &mangle(&bytes, 1.0, &flips));
            check_image(&q);
        }
    }

    #[test]
    fn mangled_npz_never_panics(cut in 0.0f64..1.0, flips in prop::collection::vec((0.0f64..1.0, 1u8..=255), 0..6)) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(MODEL).unwrap();
        let p = write_tmp(dir.path(), "m.npz", &mangle(&bytes, cut, &flips));
        if let Ok(m) = ride::io::modelfile::load(&p) {
            prop_assert!(m.validate().is_ok());
        }
    }

    #[test]
    fn mangled_safetensors_never_panics(cut in 0.0f64..1.0, flips in prop::collection::vec((0.0f64..1.0, 1u8..=255), 0..6)) {
        let dir = tempfile::tempdir().unwrap();
        let m = ride::io::modelfile::load(Path::new(MODEL)).unwrap();
        let bytes = ride::io::modelfile::to_safetensors(&m).unwrap();
        let p = write_tmp(dir.path(), "m.safetensors", &mangle(&bytes, cut, &flips));
        if let Ok(m) = ride::io::modelfile::load(&p) {
            prop_assert!(m.validate().is_ok());
        }
    }

    /// Absurd sizes in the architecture metadata: an error before any allocation.
    #[test]
    fn absurd_safetensors_dimensions_are_errors(field in 0usize..6, value in prop_oneof![Just(0u64), 1u64..100, Just(u64::MAX), 1u64 << 20..1u64 << 62]) {
        let m = ride::io::modelfile::load(Path::new(MODEL)).unwrap();
        let bytes = ride::io::modelfile::to_safetensors(&m).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let arch_text = header["__metadata__"]["architecture"].as_str().unwrap().to_string();
        let mut arch: serde_json::Value = serde_json::from_str(&arch_text).unwrap();
        match field {
            0 => arch["nb_rows"] = value.into(),
            1 => arch["num_layers"] = value.into(),
            2 => arch["num_hiddens"][0] = value.into(),
            3 => arch["mcgsm"]["num_components"] = value.into(),
            4 => arch["mcgsm"]["num_features"] = value.into(),
            _ => arch["mcgsm"]["dim_in"] = value.into(),
        }
        header["__metadata__"]["architecture"] = arch.to_string().into();
        let h = serde_json::to_vec(&header).unwrap();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(&h);
        out.extend(&bytes[8 + n..]);
        if let Ok(m) = ride::io::modelfile::from_safetensors(&out) {
            // only the unchanged value can load
            prop_assert!(m.validate().is_ok());
        }
    }

    /// Checkpoint bytes (model + optimiser tensors + training state), mangled.
    #[test]
    fn mangled_checkpoint_never_panics(cut in 0.0f64..1.0, flips in prop::collection::vec((0.0f64..1.0, 1u8..=255), 0..6)) {
        let m = ride::io::modelfile::load(Path::new(MODEL)).unwrap();
        let extra: Vec<(String, Vec<f32>)> = m.param_lens().iter().enumerate()
            .map(|(i, &n)| (format!("opt.v.{i:04}"), vec![0.5; n])).collect();
        let mut meta = std::collections::HashMap::new();
        meta.insert("train_state".to_string(), "{\"stage\":1}".to_string());
        let bytes = ride::io::modelfile::to_safetensors_with(&m, &extra, &meta).unwrap();
        let bad = mangle(&bytes, cut, &flips);
        let _ = ride::io::modelfile::read_extras(&bad, "opt.");
        if let Ok(m) = ride::io::modelfile::from_safetensors(&bad) {
            let _ = m.validate();
        }
    }

    /// Any value in any numeric field of a config: parse + validate give an error or a config
    /// whose sizes are within the limits, never a panic.
    #[test]
    fn config_fields_with_any_number(key in 0usize..14, value in prop_oneof![Just(-1i64), Just(0i64), 1i64..64, Just(i64::MAX), 1i64 << 20..1i64 << 40]) {
        let keys = [
            ("model", "nb_size"), ("model", "components"), ("model", "scales"), ("model", "features"),
            ("model", "whitening_samples"), ("training", "batch_size"), ("training", "chunks"),
            ("finetune", "cells"), ("finetune", "history"), ("evaluation", "tile"),
            ("data", "size"), ("data", "train_images"), ("data", "test_images"), ("finetune", "check_every"),
        ];
        let (table, field) = keys[key];
        let mut t: toml::Table = toml::from_str(BASE).unwrap();
        t[table].as_table_mut().unwrap().insert(field.into(), toml::Value::Integer(value));
        if let Ok(e) = toml::Value::Table(t).try_into::<ride::train::config::Experiment>() {
            if e.validate().is_ok() {
                prop_assert!(e.model.nb_size <= ride::limits::MAX_NB_SIZE);
                prop_assert!(e.model.components <= ride::limits::MAX_COMPONENTS);
                prop_assert!(e.training.batch_size <= ride::limits::MAX_BATCH);
                prop_assert!(e.evaluation.tile <= ride::limits::MAX_IMAGE_SIDE);
            }
        }
    }

    /// Random text edits of a config never panic the parser or the validation.
    #[test]
    fn mangled_config_text_never_panics(cut in 0.0f64..1.0, flips in prop::collection::vec((0.0f64..1.0, 1u8..=127), 0..4)) {
        let bytes = mangle(BASE.as_bytes(), cut, &flips);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Ok(e) = toml::from_str::<ride::train::config::Experiment>(text) {
                let _ = e.validate();
            }
        }
    }
}

const BASE: &str = r#"
name = "fuzz"
seed = 1
[data]
kind = "deadleaves"
size = 32
train_images = 4
test_images = 2
min_radius = 1.5
max_radius = 20.0
[model]
kind = "ride"
nb_size = 5
hiddens = [4]
components = 2
scales = 2
features = 2
whitening_samples = 1000
[training]
batch_size = 8
chunks = 2
[[training.stages]]
patch = 8
lr = 0.1
[finetune]
cells = 1000
history = 5
check_every = 5
[evaluation]
tile = 32
"#;

//! The `ride` command line: the fixture model's score on BSDS300 test and clear errors.

// Finite-difference loops index several parallel arrays by position.

mod common;

use common::{GRAY_DIR as TEST_DIR, MODEL};
use std::process::Command;

fn ride(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ride"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON")
}

/// shared/models/README.md: 3.7981 bit/px (SEM 0.025) over 3,500 tiles; f32 within 0.002.
#[test]
#[ignore = "needs the full data sets: make test-data"]
fn fixture_model_scores_bsds300_test_as_documented() {
    let dir = common::full_data_dir().join("bsds300/gray/test");
    let (rc, out, err) = ride(&["eval", "--json", "--model", MODEL, dir.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    let v = last_json(&out);
    let bits = v["bits_per_px"].as_f64().unwrap();
    let sem = v["sem"].as_f64().unwrap();
    println!(
        "fixture model on BSDS300 test: {bits:.4} ± {sem:.4} bit/px in {:.1} s",
        v["seconds"].as_f64().unwrap()
    );
    assert_eq!(v["tiles"].as_u64(), Some(3500));
    assert_eq!(v["pixels"].as_u64(), Some(3500 * 62 * 60));
    assert!((bits - 3.7981).abs() < 0.002, "bits/px {bits}");
    assert!((sem - 0.025).abs() < 0.001, "sem {sem}");
}

#[test]
fn json_output_and_safetensors_model_agree_with_npz() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("m.safetensors");
    let (rc, _, err) = ride(&["convert", "--model", MODEL, "--out", st.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    let img = format!("{TEST_DIR}/101085.png");
    let (rc1, out1, _) = ride(&["eval", "--json", "--model", MODEL, &img]);
    let (rc2, out2, _) = ride(&["eval", "--json", "--model", st.to_str().unwrap(), &img]);
    assert_eq!((rc1, rc2), (0, 0));
    let (a, b) = (last_json(&out1), last_json(&out2));
    for key in ["bits_per_px", "sem", "tiles", "pixels"] {
        assert!(a.get(key).is_some(), "missing {key}");
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(a["tiles"].as_u64(), Some(35));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // a non-image file
    let txt = dir.path().join("notes.png");
    std::fs::write(&txt, b"this is not an image").unwrap();
    let (rc, _, err) = ride(&["eval", "--model", MODEL, txt.to_str().unwrap()]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("notes.png") && err.contains("not a readable image"),
        "{err}"
    );
    // a truncated npz model
    let cut = dir.path().join("cut.npz");
    let bytes = std::fs::read(MODEL).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let (rc, _, err) = ride(&["eval", "--model", cut.to_str().unwrap(), TEST_DIR]);
    assert_ne!(rc, 0);
    assert!(err.contains("cut.npz"), "{err}");
    // an empty directory
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (rc, _, err) = ride(&["eval", "--model", MODEL, empty.to_str().unwrap()]);
    assert_ne!(rc, 0);
    assert!(err.contains("no images"), "{err}");
    // no images and no data directory
    let (rc, _, err) = ride(&[
        "--data-dir",
        dir.path().join("nowhere").to_str().unwrap(),
        "eval",
        "--model",
        MODEL,
    ]);
    assert_ne!(rc, 0);
    assert!(err.contains("make data"), "{err}");
    // a missing model file
    let (rc, _, err) = ride(&["eval", "--model", "no/such/model.safetensors", TEST_DIR]);
    assert_ne!(rc, 0);
    assert!(err.contains("no/such/model.safetensors"), "{err}");
}

#[test]
fn help_says_what_bits_per_pixel_means() {
    let (rc, out, _) = ride(&["eval", "--help"]);
    assert_eq!(rc, 0);
    assert!(
        out.contains("HIGHER IS BETTER") && out.contains("log-likelihood rate"),
        "{out}"
    );
}

#[test]
fn roofline_json_lines_have_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (rc, stdout, err) = ride(&[
        "bench",
        "--json",
        "--threads",
        "1",
        "--filter",
        "slstm_fwd_bwd_l1_h64",
        "--min-time",
        "0.01",
        "--out",
        out,
    ]);
    assert_eq!(rc, 0, "{err}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    for v in &lines {
        for key in [
            "kernel",
            "threads",
            "cells_per_s",
            "gflops",
            "share_of_peak",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }
    let names: Vec<&str> = lines.iter().filter_map(|v| v["kernel"].as_str()).collect();
    assert!(
        names.contains(&"fma_peak") && names.contains(&"slstm_fwd_bwd_l1_h64"),
        "{names:?}"
    );
    let k = lines
        .iter()
        .find(|v| v["kernel"] == "slstm_fwd_bwd_l1_h64")
        .unwrap();
    assert!(k["cells_per_s"].as_f64().unwrap() > 0.0 && k["gflops"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(dir.path().join("roofline.csv")).unwrap();
    assert!(csv.starts_with(
        "kernel,threads,cells_per_run,seconds_per_run,cells_per_s,gflops,share_of_peak,peak_gflops"
    ));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("roofline.json")).unwrap())
            .unwrap();
    assert!(
        meta["paper_scale_projection"]["sgd_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

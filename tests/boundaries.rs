//! Every input boundary of issue 10, class by class: a bad input is an error that names the
//! file and the problem (exit status ≠ 0), never a panic, an abort, or a number.

use ride::io::files::write_atomic;
use ride::io::modelfile::{from_safetensors, to_safetensors};
use ride::io::preprocessing::{Domain, Preprocessing};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{GRAY_PNG, MODEL};

const JPEG_DIR: &str = "tests/fixtures/bsds300/images";

/// Runs `ride ARGS`: (exit code, stdout, stderr).
fn ride(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ride"))
        .arg("--data-dir")
        .arg(common::data_dir())
        .args(args)
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Asserts a clean failure: exit 1, no score printed, the message contains every needle.
#[track_caller]
fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let (rc, out, err) = ride(args);
    assert_eq!(
        rc, 1,
        "expected exit 1 for {args:?}; stdout {out}; stderr {err}"
    );
    assert!(
        !out.contains("bit/px"),
        "a score was printed for {args:?}: {out}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: message lacks '{n}': {err}");
    }
    println!("{args:?} → {}", err.trim());
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn first_jpeg() -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(JPEG_DIR).join("test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.remove(0)
}

fn model() -> ride::model::ride::Ride<f32> {
    ride::io::modelfile::load(Path::new(MODEL)).unwrap()
}

fn save(dir: &Path, name: &str, m: &ride::model::ride::Ride<f32>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, to_safetensors(m).unwrap()).unwrap();
    p
}

fn eval_bits(model: &str, image: &str) -> f64 {
    let (rc, out, err) = ride(&["eval", "--json", "--model", model, image]);
    assert_eq!(rc, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    v["bits_per_px"].as_f64().unwrap()
}

// ------------------------------------------------------------------------------------ images

#[test]
fn truncated_or_corrupt_jpeg_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(first_jpeg()).unwrap();
    let cut = dir.path().join("half.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &["eval", "--model", MODEL, s(&cut)],
        &["half.jpg", "not a readable image"],
    );
    // a directory with one bad file among good ones names the bad one
    let d = dir.path().join("set");
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(GRAY_PNG, d.join("a.png")).unwrap();
    std::fs::write(d.join("b.jpg"), &bytes[..bytes.len() * 3 / 4]).unwrap();
    fails_with(&["eval", "--model", MODEL, s(&d)], &["b.jpg"]);
    // the training loaders refuse it too
    let data = dir.path().join("data");
    let img = data.join("bsds300/images/test");
    std::fs::create_dir_all(&img).unwrap();
    std::fs::write(data.join("bsds300/iids_test.txt"), "100007\n").unwrap();
    std::fs::write(img.join("100007.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    let e = ride::data::bsds300::load(&data, ride::data::Split::Test, true, 1, None).unwrap_err();
    assert!(format!("{e:#}").contains("100007.jpg"), "{e:#}");
}

#[test]
#[ignore = "needs the full data sets: make test-data"]
fn every_bsds300_jpeg_passes_the_strict_decoder() {
    let dir = common::full_data_dir().join("bsds300/images");
    for split in ["train", "test"] {
        for e in std::fs::read_dir(dir.join(split)).unwrap() {
            let p = e.unwrap().path();
            ride::io::images::load_gray(&p, ride::io::images::GrayMode::Pil)
                .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        }
    }
}

#[test]
fn sixteen_bit_and_low_bit_depth_pngs_are_read_at_their_true_range() {
    let dir = tempfile::tempdir().unwrap();
    let g8 = image::open(GRAY_PNG).unwrap().to_luma8();
    let (w, h) = g8.dimensions();
    let px16: Vec<u16> = g8.as_raw().iter().map(|&v| v as u16 * 257).collect();
    let p16 = dir.path().join("twin16.png");
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w, h, px16)
        .unwrap()
        .save(&p16)
        .unwrap();
    let (a, b) = (eval_bits(MODEL, GRAY_PNG), eval_bits(MODEL, s(&p16)));
    println!("8-bit {a:.4}, 16-bit twin {b:.4} bit/px");
    assert_eq!(
        a, b,
        "the 16-bit twin must score exactly as the 8-bit image"
    );
    // a 1-bit gray PNG: 0 and 1 are black and white (0 and 255)
    let p1 = dir.path().join("bits.png");
    let f = std::fs::File::create(&p1).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), 8, 2);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    enc.write_header()
        .unwrap()
        .write_image_data(&[0b1010_0000, 0b0101_0000])
        .unwrap();
    let g = ride::io::images::load_gray(&p1, ride::io::images::GrayMode::Pil).unwrap();
    assert_eq!(&g.data[..4], &[255.0, 0.0, 255.0, 0.0]);
    assert_eq!(&g.data[8..12], &[0.0, 255.0, 0.0, 255.0]);
}

#[test]
fn images_without_a_complete_tile_are_errors_not_zero_scores() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.png");
    image::GrayImage::from_pixel(40, 30, image::Luma([100]))
        .save(&small)
        .unwrap();
    fails_with(
        &["eval", "--model", MODEL, s(&small)],
        &["small.png", "no complete 64×64 tile"],
    );
    fails_with(
        &["eval", "--model", MODEL, "--tile", "1000", GRAY_PNG],
        &["no complete 1000×1000 tile"],
    );
    fails_with(
        &["eval", "--model", MODEL, "--tile", "2", GRAY_PNG],
        &["smaller than the model's"],
    );
    fails_with(
        &["eval", "--ensemble", "--model", MODEL, s(&small)],
        &["small.png"],
    );
    // and in the library: no Score from nothing
    assert!(ride::tasks::eval::Score::checked(&[], 0).is_err());
    assert!(ride::tasks::eval::Score::checked(&[1.0, f64::NAN], 10).is_err());
}

// ----------------------------------------------------------------------------------- numbers

#[test]
fn scale_must_be_finite_and_positive() {
    for bad in ["0", "-1", "NaN", "inf", "-0"] {
        fails_with(
            &[
                "eval",
                "--model",
                MODEL,
                &format!("--scale={bad}"),
                GRAY_PNG,
            ],
            &["--scale"],
        );
    }
}

#[test]
fn non_finite_weights_are_refused_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    m.layers[0].w_mut()[7] = f32::NAN;
    let p = save(dir.path(), "nan_w.safetensors", &m);
    fails_with(
        &["eval", "--model", s(&p), GRAY_PNG],
        &["nan_w.safetensors", "slstm.0.w[7]", "not finite"],
    );
    let out = dir.path().join("converted.safetensors");
    fails_with(
        &["convert", "--model", s(&p), "--out", s(&out)],
        &["not finite"],
    );
    assert!(!out.exists());
    fails_with(
        &[
            "sample",
            "--model",
            s(&p),
            "--size",
            "8x8",
            "--out",
            s(&dir.path().join("x.png")),
        ],
        &["not finite"],
    );
    let mut m = model();
    m.mcgsm.scales_mut()[3] = f32::INFINITY;
    let p = save(dir.path(), "inf_mcgsm.safetensors", &m);
    fails_with(&["eval", "--model", s(&p), GRAY_PNG], &["mcgsm.scales[3]"]);
    let mut m = model();
    m.whitening.white_in_mut()[0] = f64::NAN;
    let p = save(dir.path(), "nan_wh.safetensors", &m);
    fails_with(
        &["eval", "--model", s(&p), GRAY_PNG],
        &["whitening.white_in[0]"],
    );
}

/// Rewrites one metadata entry of a safetensors model.
fn with_meta(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"][key] = value.into();
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(&h);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn metadata_is_parsed_strictly() {
    let bytes = to_safetensors(&model()).unwrap();
    for (key, value, needle) in [
        (
            "preprocessing",
            r#"{"domain":"bsds300","gray":"rec709","scale":255.0}"#,
            "rec709",
        ),
        (
            "preprocessing",
            r#"{"domain":"moon","gray":"pil","scale":255.0}"#,
            "moon",
        ),
        (
            "preprocessing",
            r#"{"domain":"bsds300","gray":"pil","scale":0.0}"#,
            "scale",
        ),
        (
            "preprocessing",
            r#"{"domain":"bsds300","gray":"pil","scale":255.0,"extra":1}"#,
            "extra",
        ),
        ("preprocessing", r#"{"gray":"pil","scale":255.0}"#, "domain"),
        ("format_version", "1", "--domain"),
        ("format_version", "7", "format_version 7"),
    ] {
        let e = from_safetensors(&with_meta(&bytes, key, value))
            .and_then(|m| m.validate().map(|()| m))
            .expect_err(value);
        assert!(format!("{e:#}").contains(needle), "{value}: {e:#}");
    }
    let arch = r#"{"nb_rows":3,"nb_cols":5,"num_inputs":12,"num_layers":1,"num_hiddens":[64],"extended":[false],"color":1,"mcgsm":{"dim_in":64,"num_components":32,"num_scales":4,"num_features":32,"linear_features":false,"means":false}}"#;
    let e = from_safetensors(&with_meta(&bytes, "architecture", arch)).unwrap_err();
    assert!(format!("{e:#}").contains("color"), "{e:#}");
}

// ----------------------------------------------------------------------------- preprocessing

#[test]
fn models_record_their_domain_and_tools_honour_it() {
    use ride::train::config::DataConfig;
    let cases = [
        ("kind = \"bsds300\"", Domain::Bsds300),
        ("kind = \"bsds300_patches\"\nsize = 8\ntrain_patches = 1\ntest_patches = 1", Domain::Bsds300Patches),
        ("kind = \"vanhateren\"\ntrain_ids = [\"a\"]\ntest_ids = [\"b\"]", Domain::Vanhateren),
        ("kind = \"deadleaves\"\nsize = 8\ntrain_images = 1\ntest_images = 1\nmin_radius = 1.0\nmax_radius = 2.0", Domain::Deadleaves),
        ("kind = \"brodatz\"\nplate = \"D1\"\ntrain_rows = 10", Domain::Brodatz),
    ];
    for (text, domain) in cases {
        let d: DataConfig = toml::from_str(text).unwrap();
        assert_eq!(d.preprocessing().domain, domain);
        assert_eq!(
            d.preprocessing().scale,
            if domain == Domain::Vanhateren {
                1.0
            } else {
                255.0
            }
        );
    }
    // the original code's npz is the BSDS300 convention
    assert_eq!(model().preprocessing, Preprocessing::gray8(Domain::Bsds300));

    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    m.preprocessing = Preprocessing::gray8(Domain::Vanhateren);
    let p = save(dir.path(), "log.safetensors", &m);
    fails_with(
        &["eval", "--model", s(&p), GRAY_PNG],
        &["101085.png", "log domain"],
    );
    let out = dir.path().join("filled.png");
    fails_with(
        &[
            "inpaint",
            "--model",
            s(&p),
            "--image",
            GRAY_PNG,
            "--out",
            s(&out),
        ],
        &["log domain"],
    );
    // samples of the log domain are 16-bit intensities exp(v)
    let sp = dir.path().join("sample.png");
    let (rc, _, err) = ride(&[
        "sample",
        "--model",
        s(&p),
        "--size",
        "12x10",
        "--out",
        s(&sp),
    ]);
    assert_eq!(rc, 0, "{err}");
    assert!(matches!(
        image::open(&sp).unwrap(),
        image::DynamicImage::ImageLuma16(_)
    ));
    let mut m = model();
    m.preprocessing = Preprocessing::gray8(Domain::Bsds300Patches);
    let p = save(dir.path(), "patches.safetensors", &m);
    fails_with(&["eval", "--model", s(&p), GRAY_PNG], &["patches"]);
    fails_with(&["sample", "--model", s(&p), "--out", s(&sp)], &["patches"]);
    // format-1 files need their domain named once
    let legacy = with_meta(&to_safetensors(&model()).unwrap(), "format_version", "1");
    let lp = dir.path().join("legacy.safetensors");
    std::fs::write(&lp, legacy).unwrap();
    fails_with(&["eval", "--model", s(&lp), GRAY_PNG], &["--domain"]);
    let conv = dir.path().join("conv.safetensors");
    let (rc, _, err) = ride(&[
        "convert",
        "--model",
        s(&lp),
        "--domain",
        "bsds300",
        "--out",
        s(&conv),
    ]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(eval_bits(s(&conv), GRAY_PNG), eval_bits(MODEL, GRAY_PNG));
}

// ------------------------------------------------------------------------------------- sizes

/// A copy of the fixture npz with some arrays replaced (npy bytes).
fn npz_with(dir: &Path, name: &str, replace: &[(&str, Vec<u8>)]) -> PathBuf {
    use std::io::{Read, Write};
    let mut src = zip::ZipArchive::new(std::fs::File::open(MODEL).unwrap()).unwrap();
    let p = dir.join(name);
    let mut out = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let fname = f.name().to_string();
        let mut bytes = vec![];
        f.read_to_end(&mut bytes).unwrap();
        if let Some((_, b)) = replace.iter().find(|(k, _)| format!("{k}.npy") == fname) {
            bytes = b.clone();
        }
        out.start_file(fname, zip::write::FileOptions::default())
            .unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap();
    p
}

fn npy_scalar(v: i64) -> Vec<u8> {
    use npyz::WriterBuilder;
    let mut buf = vec![];
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.push(&v).unwrap();
        w.finish().unwrap();
    }
    buf
}

#[test]
fn absurd_sizes_are_errors_before_any_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let img = s(Path::new(GRAY_PNG));
    for (key, v, needle) in [
        ("num_layers", 0, "num_layers"),
        ("num_hiddens", 1 << 40, "num_hiddens"),
        ("mcgsm.num_components", -3, "num_components"),
        ("mcgsm.num_features", 1 << 50, "num_features"),
    ] {
        let p = npz_with(
            dir.path(),
            &format!("{}.npz", key.replace('.', "_")),
            &[(key, npy_scalar(v))],
        );
        fails_with(&["eval", "--model", s(&p), img], &[needle]);
    }
    let out = dir.path().join("s.png");
    fails_with(
        &[
            "sample",
            "--model",
            MODEL,
            "--size",
            "100000x100000",
            "--out",
            s(&out),
        ],
        &["too large"],
    );
    fails_with(
        &[
            "sample",
            "--model",
            MODEL,
            "--margin",
            "100000000000",
            "--out",
            s(&out),
        ],
        &["margin"],
    );
    fails_with(
        &[
            "inpaint",
            "--model",
            MODEL,
            "--image",
            img,
            "--candidates",
            "1000000",
            "--out",
            s(&out),
        ],
        &["--candidates"],
    );
    fails_with(
        &[
            "inpaint",
            "--model",
            MODEL,
            "--image",
            img,
            "--candidates",
            "0",
            "--out",
            s(&out),
        ],
        &["--candidates"],
    );
    fails_with(
        &[
            "inpaint",
            "--model",
            MODEL,
            "--image",
            img,
            "--sweeps",
            "100000000",
            "--out",
            s(&out),
        ],
        &["--sweeps"],
    );
    fails_with(
        &[
            "inpaint",
            "--model",
            MODEL,
            "--image",
            img,
            "--sweeps",
            "100000",
            "--out",
            s(&out),
        ],
        &["sweeps × hole pixels"],
    );
    fails_with(
        &["eval", "--model", MODEL, "--batch", "0", img],
        &["--batch"],
    );
    assert!(!out.exists());
    // sweep workers
    let cfg = config(dir.path(), "w", "");
    let sw = dir.path().join("sweep.toml");
    std::fs::write(
        &sw,
        "name = \"sw\"\nbase = \"w.toml\"\n[grid]\n\"model.hiddens\" = [[3]]\n",
    )
    .unwrap();
    let _ = cfg;
    fails_with(
        &[
            "sweep",
            "--config",
            s(&sw),
            "--workers",
            "100000",
            "--out",
            s(&dir.path().join("o")),
        ],
        &["--workers"],
    );
    fails_with(
        &[
            "reproduce",
            "--scale",
            "quick",
            "--workers",
            "100000",
            "--out",
            s(&dir.path().join("r")),
        ],
        &["--workers"],
    );
}

/// A tiny dead-leaves config with `extra` TOML lines appended to `[model]`.
fn config(dir: &Path, name: &str, model_extra: &str) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
seed = 3
[data]
kind = "deadleaves"
size = 24
train_images = 6
test_images = 2
min_radius = 1.5
max_radius = 12.0
[model]
kind = "ride"
nb_size = 5
components = 2
scales = 2
features = 2
whitening_samples = 2000
{model_extra}
[training]
batch_size = 8
[[training.stages]]
patch = 8
lr = 0.1
[finetune]
enabled = false
[evaluation]
tile = 24
"#
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_config_values_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, needle) in [
        ("hiddens = [0]", "model.hiddens[0]"),
        ("hiddens = [100000]", "model.hiddens[0]"),
    ] {
        let c = config(dir.path(), "c", extra);
        fails_with(
            &[
                "train",
                "--config",
                s(&c),
                "--out",
                s(&dir.path().join("o")),
            ],
            &[needle],
        );
    }
    let c = config(dir.path(), "c", "hiddens = [4]");
    let text = std::fs::read_to_string(&c).unwrap();
    for (from, to, needle) in [
        ("lr = 0.1", "lr = 0.1\nadd_layer = 0", "add_layer"),
        ("name = \"c\"", "name = \"../../x\"", "name"),
        ("name = \"c\"", "name = \"/tmp/x\"", "name"),
        ("tile = 24", "tile = 2", "evaluation.tile"),
        ("size = 24", "size = 100000", "data.size"),
        ("batch_size = 8", "batch_size = 0", "training.batch_size"),
    ] {
        std::fs::write(&c, text.replace(from, to)).unwrap();
        let o = dir.path().join("o2");
        fails_with(&["train", "--config", s(&c), "--out", s(&o)], &[needle]);
        assert!(!o.join("model.safetensors").exists());
    }
}

#[test]
fn sample_sizes_in_a_table_config_are_checked_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("experiments/deadleaves.toml").unwrap();
    let bad = text.replacen("[samples]\nsize = 128", "[samples]\nsize = 100000", 1);
    assert_ne!(
        bad, text,
        "experiments/deadleaves.toml has no '[samples] size = 128'"
    );
    let p = dir.path().join("deadleaves.toml");
    std::fs::write(&p, bad).unwrap();
    let cfg = ride::harness::reproduce::table::TableConfig::load(&p).unwrap();
    let e = cfg
        .resolve("paper", Path::new("experiments"), dir.path())
        .unwrap_err();
    assert!(format!("{e:#}").contains("samples.size"), "{e:#}");
}

// ------------------------------------------------------------------------------------ writes

#[test]
fn failed_writes_are_errors_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // rename onto an existing directory fails: the temporary file is removed
    let target = dir.path().join("occupied");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    assert!(write_atomic(&target, b"bytes").is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("occupied")],
        "temporary files left behind"
    );
    // sample / inpaint into a folder that cannot be created: an error, no "wrote"
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("x.png");
    let (rc, so, err) = ride(&[
        "sample",
        "--model",
        MODEL,
        "--size",
        "8x8",
        "--out",
        s(&out),
    ]);
    assert_eq!(rc, 1, "{err}");
    assert!(!so.contains("wrote"), "{so}");
    let (rc, so, _) = ride(&[
        "inpaint",
        "--model",
        MODEL,
        "--image",
        GRAY_PNG,
        "--hole",
        "9",
        "--sweeps",
        "0",
        "--out",
        s(&out),
    ]);
    assert_eq!(rc, 1);
    assert!(!so.contains("wrote"), "{so}");
}

// ---------------------------------------------------------------------------- training state

fn train(cfg: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let (rc, _, err) = ride(&[&["train", "--config", s(cfg), "--out", s(out)], extra].concat());
    (rc, err)
}

#[test]
fn init_from_must_match_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "base", "hiddens = [4]");
    let out = dir.path().join("base_out");
    let (rc, err) = train(&c, &out, &[]);
    assert_eq!(rc, 0, "{err}");
    let m = ride::io::modelfile::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(m.preprocessing.domain, Domain::Deadleaves);
    let from = out.join("model.safetensors");
    for (extra, needle) in [
        ("hiddens = [6]", "model.hiddens"),
        ("hiddens = [4]\nlinear_features = true", "MCGSM"),
        ("hiddens = [4]\nextended = true", "extended"),
    ] {
        let c2 = config(
            dir.path(),
            "grow",
            &format!("{extra}\ninit_from = \"{}\"", from.display()),
        );
        let (rc, err) = train(&c2, &dir.path().join("grow_out"), &[]);
        assert_eq!(rc, 1);
        assert!(
            err.contains("init_from") && err.contains(needle),
            "{extra}: {err}"
        );
    }
    let ok = config(
        dir.path(),
        "grow",
        &format!("hiddens = [4]\ninit_from = \"{}\"", from.display()),
    );
    let (rc, err) = train(&ok, &dir.path().join("grow_ok"), &[]);
    assert_eq!(rc, 0, "{err}");
}

/// A two-stage config whose second stage adds a layer and trains it far too little (so the
/// held-out images get worse): the previous stage's trained model must come back, not the
/// model with the random new layer and fresh MCGSM.
#[test]
fn validation_restores_the_previous_stage_model_before_its_added_layer() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "v", "hiddens = [4]");
    let text = std::fs::read_to_string(&c)
        .unwrap()
        .replace("batch_size = 8", "batch_size = 8\nvalidation_images = 2");
    let one = text.clone();
    let two = text.replace(
        "lr = 0.1\n",
        "lr = 0.1\n[[training.stages]]\npatch = 8\nlr = 0.000001\nadd_layer = 3\n",
    );
    std::fs::write(&c, &one).unwrap();
    let (rc, err) = train(&c, &dir.path().join("one"), &[]);
    assert_eq!(rc, 0, "{err}");
    std::fs::write(&c, &two).unwrap();
    let (rc, err) = train(&c, &dir.path().join("two"), &[]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("restoring the previous stage's model"),
        "{err}"
    );
    let a = ride::io::modelfile::load(&dir.path().join("one/model.safetensors")).unwrap();
    let b = ride::io::modelfile::load(&dir.path().join("two/model.safetensors")).unwrap();
    assert_eq!(b.layers.len(), 1, "the added layer survived the restore");
    assert_eq!(a, b, "the restored model is not the first stage's");
    assert!(!dir.path().join("two/stage_start.safetensors").exists());
}

/// Resume from a mid-stage checkpoint: every optimiser tensor must be there with the right
/// length and finite values.
#[test]
fn resume_checks_every_checkpoint_tensor() {
    use ride::io::modelfile::{read_extras, to_safetensors_with};
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "r", "hiddens = [4]");
    let text = std::fs::read_to_string(&c).unwrap().replace(
        "batch_size = 8",
        "batch_size = 8\ncheckpoint_every = 2\nmax_patches = 64",
    );
    std::fs::write(&c, &text).unwrap();
    let out = dir.path().join("run");
    let (rc, err) = train(&c, &out, &[]);
    assert_eq!(rc, 0, "{err}");
    // make the final checkpoint a mid-stage one with a full SGD state
    let ck = out.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let m = from_safetensors(&bytes).unwrap();
    let (_, meta) = read_extras(&bytes, "opt.").unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&meta["train_state"]).unwrap();
    state["stage"] = 0.into();
    state["batch"] = 2.into();
    let mut meta2 = std::collections::HashMap::new();
    meta2.insert("train_state".to_string(), state.to_string());
    let full: Vec<(String, Vec<f32>)> = m
        .param_lens()
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("opt.v.{i:04}"), vec![0.0; n]))
        .collect();
    let write = |extra: &[(String, Vec<f32>)]| {
        std::fs::write(&ck, to_safetensors_with(&m, extra, &meta2).unwrap()).unwrap();
    };
    let mut missing = full.clone();
    missing.remove(3);
    let mut short = full.clone();
    short[1].1.pop();
    let mut nan = full.clone();
    nan[0].1[0] = f32::NAN;
    for (extra, needle) in [
        (&missing, "tensors"),
        (&short, "opt.v.0001"),
        (&nan, "not finite"),
    ] {
        write(extra);
        let (rc, err) = train(&c, &out, &["--resume"]);
        assert_eq!(rc, 1, "{err}");
        assert!(
            err.contains(needle) && err.contains("checkpoint"),
            "{needle}: {err}"
        );
    }
    write(&full);
    let (rc, err) = train(&c, &out, &["--resume"]);
    assert_eq!(rc, 0, "{err}");
}

// ------------------------------------------------------------------------------------- seeds

#[test]
fn random_streams_never_coincide() {
    use rand::RngExt;
    use ride::data::{rng_for, Purpose};
    let first = |seed, p, stage, index| rng_for(seed, p, stage, index).random::<u64>();
    // the collisions of the old derivation: (s, stage k+1) = (s + 1000, stage k), s ^ 4, …
    assert_ne!(
        first(5, Purpose::Shuffle, 2, 0),
        first(1005, Purpose::Shuffle, 1, 0)
    );
    assert_ne!(
        first(5, Purpose::Dequantize, 1, 3),
        first(5 ^ 4, Purpose::Dequantize, 0, 3)
    );
    let purposes = [
        Purpose::Generate,
        Purpose::Dequantize,
        Purpose::Patches,
        Purpose::Whitening,
        Purpose::Init,
        Purpose::AddLayer,
        Purpose::Shuffle,
        Purpose::Finetune,
        Purpose::Bench,
    ];
    let mut seen = std::collections::HashSet::new();
    for seed in [0u64, 1, 2, 1000, 1001, u64::MAX] {
        for p in purposes {
            for stage in 0..4 {
                for index in 0..8 {
                    assert!(
                        seen.insert(first(seed, p, stage, index)),
                        "{seed} {p:?} {stage} {index}"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------- found by a hostile sweep of the CLI (issue 10)

#[test]
fn outputs_never_replace_devices_fifos_or_folders() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.png");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    fails_with(
        &[
            "sample",
            "--model",
            MODEL,
            "--size",
            "8x8",
            "--out",
            s(&fifo),
        ],
        &["not a regular file"],
    );
    let fifo2 = dir.path().join("pipe.safetensors");
    assert!(Command::new("mkfifo")
        .arg(&fifo2)
        .status()
        .unwrap()
        .success());
    fails_with(
        &["convert", "--model", MODEL, "--out", s(&fifo2)],
        &["not a regular file"],
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // inputs that are not regular files: named, no endless read
    fails_with(
        &["eval", "--model", "/dev/zero", GRAY_PNG],
        &["/dev/zero", "not a regular file"],
    );
    fails_with(
        &["eval", "--model", MODEL, "/dev/null"],
        &["/dev/null", "not a regular file"],
    );
    fails_with(
        &[
            "inpaint",
            "--model",
            MODEL,
            "--image",
            "/dev/zero",
            "--out",
            s(&dir.path().join("o.png")),
        ],
        &["not a regular file"],
    );
    // a dangling image link in a folder is named
    let d = dir.path().join("imgs");
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(GRAY_PNG, d.join("a.png")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.png"), d.join("b.png")).unwrap();
    fails_with(&["eval", "--model", MODEL, s(&d)], &["b.png"]);
}

#[test]
fn damaged_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // bytes flipped inside an npz member: the zip CRC catches it
    let mut bytes = std::fs::read(MODEL).unwrap();
    let k = bytes.len() / 2;
    for b in &mut bytes[k..k + 20] {
        *b ^= 0x5A;
    }
    let p = dir.path().join("flipped.npz");
    std::fs::write(&p, &bytes).unwrap();
    fails_with(
        &["eval", "--model", s(&p), GRAY_PNG],
        &["flipped.npz", "corrupt"],
    );
    // scalars that contradict the masks
    let p = npz_with(dir.path(), "nb.npz", &[("nb_size", npy_scalar(7))]);
    fails_with(&["eval", "--model", s(&p), GRAY_PNG], &["nb_size"]);
    let p = npz_with(dir.path(), "ch.npz", &[("num_channels", npy_scalar(3))]);
    fails_with(&["eval", "--model", s(&p), GRAY_PNG], &["num_channels"]);
    // finite but absurd parameters
    let mut m = model();
    m.mcgsm.scales_mut()[0] = -1e30;
    let p = save(dir.path(), "absurd.safetensors", &m);
    fails_with(
        &["eval", "--model", s(&p), GRAY_PNG],
        &["mcgsm.scales[0]", "implausibly large"],
    );
}

#[test]
fn an_image_far_from_the_model_data_is_refused() {
    fails_with(
        &["eval", "--model", MODEL, "--scale", "1", GRAY_PNG],
        &["wrong --scale"],
    );
    // the right scale for the same image is fine
    assert!(eval_bits(MODEL, GRAY_PNG).is_finite());
}

#[test]
fn sweeps_are_checked_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "b", "hiddens = [3]");
    let sw = dir.path().join("sw.toml");
    let keys: String = (0..10)
        .map(|k| format!("\"training.stages.{k}\" = [0,1,2,3,4,5,6,7,8,9]\n"))
        .collect();
    std::fs::write(
        &sw,
        format!("name = \"big\"\nbase = \"b.toml\"\n[grid]\n{keys}"),
    )
    .unwrap();
    let out = dir.path().join("o");
    fails_with(
        &["sweep", "--config", s(&sw), "--out", s(&out)],
        &["cells of sweep"],
    );
    std::fs::write(
        &sw,
        "name = \"sd\"\nbase = \"b.toml\"\n[grid]\nseed = [1, 2]\n",
    )
    .unwrap();
    fails_with(&["sweep", "--config", s(&sw), "--out", s(&out)], &["seeds"]);
    let base = std::fs::read_to_string(dir.path().join("b.toml")).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        base.replace("seed = 3", "seed = \"abc\""),
    )
    .unwrap();
    std::fs::write(
        &sw,
        "name = \"sd\"\nbase = \"b.toml\"\n[grid]\n\"model.hiddens\" = [[3]]\n",
    )
    .unwrap();
    fails_with(&["sweep", "--config", s(&sw), "--out", s(&out)], &["seed"]);
    // paths that would be shell code in the Slurm scripts
    std::fs::write(dir.path().join("b.toml"), base).unwrap();
    let evil = dir.path().join("o$(touch pwned)");
    fails_with(
        &[
            "sweep",
            "--config",
            s(&sw),
            "--out",
            s(&evil),
            "--emit-slurm",
            s(&dir.path().join("slurm")),
        ],
        &["Slurm script"],
    );
    assert!(!dir.path().join("slurm/sweep.sbatch").exists());
}

#[test]
fn more_config_mistakes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "c", "hiddens = [4]");
    let text = std::fs::read_to_string(&c).unwrap();
    for (from, to, needle) in [
        (
            "tile = 24",
            "tile = 24\nensemble = true",
            "evaluation.ensemble",
        ),
        ("tile = 24", "tile = 32", "evaluation tile"),
    ] {
        std::fs::write(&c, text.replace(from, to)).unwrap();
        let o = dir.path().join("o");
        fails_with(&["train", "--config", s(&c), "--out", s(&o)], &[needle]);
        assert!(!o.join("model.safetensors").exists());
    }
    let vh = dir.path().join("vh.toml");
    std::fs::write(
        &vh,
        text.replace(
            "kind = \"deadleaves\"\nsize = 24\ntrain_images = 6\ntest_images = 2\nmin_radius = 1.5\nmax_radius = 12.0",
            "kind = \"vanhateren\"\ntrain_ids = [\"imk00031\"]\ntest_ids = [\"imk00031\"]",
        ),
    )
    .unwrap();
    fails_with(
        &[
            "train",
            "--config",
            s(&vh),
            "--out",
            s(&dir.path().join("v")),
        ],
        &["held out"],
    );
}

#[test]
fn checkpoint_positions_outside_the_curriculum_are_refused() {
    use ride::io::modelfile::{read_extras, to_safetensors_with};
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "p", "hiddens = [4]");
    let out = dir.path().join("run");
    let (rc, err) = train(&c, &out, &[]);
    assert_eq!(rc, 0, "{err}");
    let ck = out.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let m = from_safetensors(&bytes).unwrap();
    let (_, meta) = read_extras(&bytes, "opt.").unwrap();
    for (key, value) in [("stage", 99u64), ("epoch", 1_000_000_000_000_000u64)] {
        let mut state: serde_json::Value = serde_json::from_str(&meta["train_state"]).unwrap();
        state[key] = value.into();
        let mut meta2 = std::collections::HashMap::new();
        meta2.insert("train_state".to_string(), state.to_string());
        std::fs::write(&ck, to_safetensors_with(&m, &[], &meta2).unwrap()).unwrap();
        let (rc, err) = train(&c, &out, &["--resume"]);
        assert_eq!(rc, 1, "{key}: {err}");
        assert!(err.contains("bad training state"), "{err}");
    }
    // temporary files of killed runs are removed at the next start
    let stale = out.join(".train_log.csv.tmp999999999");
    std::fs::write(&stale, b"x").unwrap();
    let (rc, err) = train(&c, &out, &[]);
    assert_eq!(rc, 0, "{err}");
    assert!(!stale.exists());
}

#[test]
fn long_running_requests_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("x.png");
    fails_with(
        &[
            "sample",
            "--model",
            MODEL,
            "--size",
            "2048x2048",
            "--margin",
            "1024",
            "--out",
            s(&o),
        ],
        &["canvas pixels"],
    );
    fails_with(
        &[
            "inpaint",
            "--model",
            MODEL,
            "--image",
            GRAY_PNG,
            "--context",
            "18446744073709551615",
            "--out",
            s(&o),
        ],
        &["context"],
    );
    fails_with(
        &["bench", "--threads", "100000", "--out", s(dir.path())],
        &["--threads"],
    );
    fails_with(
        &["bench", "--min-time=-1", "--out", s(dir.path())],
        &["--min-time"],
    );
    fails_with(
        &["bench", "--min-time=NaN", "--out", s(dir.path())],
        &["--min-time"],
    );
}

#[test]
fn reproduce_checks_every_config_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir(&exp).unwrap();
    for e in std::fs::read_dir("experiments").unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, exp.join(p.file_name().unwrap())).unwrap();
    }
    let inp = exp.join("inpainting.toml");
    let text = std::fs::read_to_string(&inp).unwrap();
    let bad = text.replacen("stride = ", "stride = 0 # ", 1);
    assert_ne!(bad, text);
    std::fs::write(&inp, bad).unwrap();
    let out = dir.path().join("out");
    fails_with(
        &[
            "reproduce",
            "--scale",
            "quick",
            "--experiments",
            s(&exp),
            "--out",
            s(&out),
        ],
        &["inpainting", "stride"],
    );
    assert!(
        !out.join("deadleaves").exists(),
        "a table was trained before the check"
    );
}

// ------------------------------------------------------------------- found by a second sweep

#[test]
fn what_would_fail_after_training_fails_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "late", "hiddens = [4]");
    let text = std::fs::read_to_string(&c).unwrap();
    // the config is valid on its own; the images are 24×24
    for (from, to, needle) in [
        ("tile = 24", "tile = 32", "evaluation tile"),
        (
            "patch = 8\n",
            "patch = 40\n",
            "no training image is that large",
        ),
    ] {
        std::fs::write(&c, text.replace(from, to)).unwrap();
        let (rc, err) = train(&c, &dir.path().join("o"), &[]);
        assert_eq!(rc, 1, "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(
            !err.contains("stage 1/1 done"),
            "trained before failing: {err}"
        );
    }
    // an output path that cannot be written is found before training
    std::fs::write(&c, &text).unwrap();
    let out = dir.path().join("o2");
    std::fs::create_dir_all(out.join("checkpoint.safetensors")).unwrap();
    let (rc, err) = train(&c, &out, &[]);
    assert_eq!(rc, 1);
    assert!(
        err.contains("checkpoint.safetensors") && !err.contains("stage 1/1 done"),
        "{err}"
    );
}

#[test]
fn implausible_scores_and_invalid_densities_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model();
    m.mcgsm.scales_mut().iter_mut().for_each(|a| *a = 80.0);
    let p = save(dir.path(), "sharp.safetensors", &m);
    fails_with(&["eval", "--model", s(&p), GRAY_PNG], &["beyond ±1000"]);
    // an input after the output in raster order: not a density
    let mut m = model();
    let k = m.nb.cols * (m.nb.rows - 1) + m.nb.cols - 1;
    m.nb.input[k] = true;
    let e = m.validate().unwrap_err();
    assert!(format!("{e:#}").contains("not causal"), "{e:#}");
    fails_with(
        &["eval", "--model", MODEL, "--scale=1e300", GRAY_PNG],
        &["--scale"],
    );
}

#[test]
fn duplicates_would_understate_the_error_and_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let twice = format!("{}/../test/101085.png", common::GRAY_DIR);
    fails_with(
        &["eval", "--model", MODEL, GRAY_PNG, &twice],
        &["given more than once"],
    );
    config(dir.path(), "b", "hiddens = [3]");
    let sw = dir.path().join("sw.toml");
    std::fs::write(
        &sw,
        "name = \"d\"\nbase = \"b.toml\"\nseeds = [1, 1]\n[grid]\n\"model.hiddens\" = [[3]]\n",
    )
    .unwrap();
    fails_with(
        &[
            "sweep",
            "--config",
            s(&sw),
            "--out",
            s(&dir.path().join("o")),
        ],
        &["twice"],
    );
    std::fs::write(
        &sw,
        "name = \"d\"\nbase = \"b.toml\"\n[grid]\n\"model.hiddens\" = [[3], [3]]\n",
    )
    .unwrap();
    fails_with(
        &[
            "sweep",
            "--config",
            s(&sw),
            "--out",
            s(&dir.path().join("o")),
        ],
        &["twice"],
    );
}

#[test]
fn model_files_are_read_by_content_and_written_only_as_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &[
            "convert",
            "--model",
            MODEL,
            "--out",
            s(&dir.path().join("c.npz")),
        ],
        &["*.safetensors"],
    );
    // an npz under another name still loads as what it is
    let renamed = dir.path().join("model.safetensors");
    std::fs::copy(MODEL, &renamed).unwrap();
    assert_eq!(eval_bits(s(&renamed), GRAY_PNG), eval_bits(MODEL, GRAY_PNG));
    fails_with(
        &[
            "bench",
            "--filter",
            "nosuchkernel",
            "--min-time",
            "0.01",
            "--out",
            s(dir.path()),
        ],
        &["--filter"],
    );
}

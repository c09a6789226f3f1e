//! The lossless codec: bit-exact round trips (real images, odd sizes, images smaller than a
//! tile, flat and noise images), files independent of the thread count, the file size against
//! the model's discrete code length, the coder's quantised CDF, and every bad file refused —
//! corrupt, truncated, padded, or decoded with the wrong model.

mod common;
use common::{GRAY_PNG, MODEL};
use rand::{RngExt, SeedableRng};
use ride::codec::cdf::{Alphabet, QuantizedCdf, LEVELS, PRECISION};
use ride::codec::{compress, decompress, read_image, Gray8};
use ride::model::mcgsm::{CellCdf, CellMixture};
use ride::model::raster::{CellLayer, RasterStack};
use ride::model::ride::Ride;
use std::path::Path;

fn model() -> Ride<f32> {
    ride::io::modelfile::load(Path::new(MODEL)).expect("model")
}

fn image() -> Gray8 {
    read_image(Path::new(GRAY_PNG)).expect("image")
}

fn crop(img: &Gray8, r0: usize, c0: usize, h: usize, w: usize) -> Gray8 {
    let mut pixels = Vec::with_capacity(h * w);
    for r in r0..r0 + h {
        pixels.extend_from_slice(&img.pixels[r * img.w + c0..r * img.w + c0 + w]);
    }
    Gray8 { h, w, pixels }
}

fn round_trip(m: &Ride<f32>, img: &Gray8, tile: usize) -> ride::codec::Compressed {
    let c = compress(m, img, tile).expect("compress");
    let back = decompress(m, &c.bytes).expect("decompress");
    assert_eq!(&back, img, "{}×{} tile {tile}", img.w, img.h);
    c
}

#[test]
fn real_image_round_trips_within_one_percent_of_the_discrete_code_length() {
    let (m, img) = (model(), image());
    let img = crop(&img, 40, 20, 200, 260);
    let c = round_trip(&m, &img, 64);
    assert!(!c.stored);
    let payload_bits = ((c.bytes.len() - c.header_bytes) * 8) as f64;
    assert!(
        payload_bits <= 1.01 * c.discrete_bits,
        "payload {payload_bits} bits, discrete code length {} bits",
        c.discrete_bits
    );
    // the coder's quantised probabilities cost almost nothing over the float ones (and less
    // where the crop does not use every value)
    assert!(c.ideal_bits < 1.002 * c.discrete_bits);
    // one tile and small tiles round-trip too
    round_trip(&m, &crop(&img, 0, 0, 70, 90), 0);
    round_trip(&m, &crop(&img, 3, 5, 41, 53), 9);
}

#[test]
fn odd_sizes_and_images_smaller_than_a_tile_round_trip() {
    let (m, img) = (model(), image());
    for (h, w) in [(1, 1), (1, 9), (7, 1), (3, 7), (13, 5), (65, 67), (64, 129)] {
        round_trip(&m, &crop(&img, 11, 17, h, w), 64);
    }
}

#[test]
fn flat_and_noise_images_round_trip() {
    let m = model();
    for v in [0u8, 255, 128] {
        let img = Gray8 {
            h: 40,
            w: 50,
            pixels: vec![v; 2000],
        };
        let c = round_trip(&m, &img, 64);
        assert!(!c.stored, "a flat image ({v}) is coded, not stored");
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let noise = Gray8 {
        h: 48,
        w: 48,
        pixels: (0..48 * 48).map(|_| rng.random::<u8>()).collect(),
    };
    let c = round_trip(&m, &noise, 64);
    // uniform noise cannot be coded below 8 bit/px: the pixels are stored
    assert!(c.stored);
    assert!(c.bytes.len() <= 48 * 48 + c.header_bytes);
}

/// An image using few gray levels (a scanned plate, a posterised photo) codes only those: its
/// symbols own the bins up to the midpoints between them, so it costs fewer bits than the full
/// alphabet would, and round-trips.
#[test]
fn images_with_few_values_code_only_those() {
    let (m, img) = (model(), image());
    let mut few = crop(&img, 30, 30, 90, 100);
    few.pixels.iter_mut().for_each(|v| *v = (*v / 8) * 8 + 3);
    let c = round_trip(&m, &few, 64);
    let a = Alphabet::of_pixels(&few.pixels).expect("values");
    assert!(a.len() <= 32);
    assert!(
        c.ideal_bits < c.discrete_bits - 1.0 * (few.h * few.w) as f64,
        "a 32-value image: {} bits coded, the full alphabet's code length {} bits",
        c.ideal_bits,
        c.discrete_bits
    );
    // the edges: each symbol owns the bins up to the midpoints
    let mut mask = [false; LEVELS];
    mask[10] = true;
    mask[20] = true;
    mask[255] = true;
    let a = Alphabet::from_mask(&mask).expect("values");
    assert_eq!(
        (a.len(), a.value(1), a.symbol(20), a.symbol(21)),
        (3, 20, Some(1), None)
    );
}

#[test]
fn files_do_not_depend_on_the_thread_count() {
    let (m, img) = (model(), image());
    let img = crop(&img, 0, 0, 130, 140);
    let run = |threads: usize, f: &(dyn Fn() -> Vec<u8> + Sync)| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(f)
    };
    let enc = || compress(&m, &img, 32).expect("compress").bytes;
    let (a, b) = (run(1, &enc), run(2, &enc));
    assert_eq!(a, b);
    let dec = || decompress(&m, &a).expect("decompress").pixels;
    assert_eq!(run(1, &dec), img.pixels);
    assert_eq!(run(2, &dec), img.pixels);
}

/// Per cell: the frequencies tile 2²⁴ with every value ≥ 2, and the decoder's bisection
/// finds each value from every quantile of its interval.
#[test]
fn quantised_cdf_is_a_partition_the_decoder_inverts() {
    use constriction::stream::model::{DecoderModel, EncoderModel};
    let (m, img) = (model(), image());
    let layers: Vec<CellLayer> = m.layers.iter().map(CellLayer::new).collect();
    let canvas: Vec<f64> = img.pixels.iter().map(|&v| v as f64 / 255.0).collect();
    let mut stack = RasterStack::new(&layers, &m.nb, 20);
    let mut mix = CellMixture::new(&m.mcgsm);
    let mut cdf = CellCdf::default();
    for j in 0..6 {
        let (xw, u) = stack.step(&m.whitening, &canvas, img.w, (100, 100), (0, j));
        mix.prepare_cdf(u, &mut cdf);
        assert!(!cdf.is_empty());
        let full = Alphabet::full();
        let q = QuantizedCdf::new(&full, &cdf, &m.whitening, xw, 255.0);
        let model = q.model();
        let mut next = 0u32;
        for k in 0..LEVELS {
            let (left, p) = model.left_cumulative_and_probability(k).expect("codable");
            assert_eq!(left, next);
            assert!(p.get() >= 2);
            next = left + p.get();
            for quantile in [left, left + p.get() / 2, left + p.get() - 1] {
                let (s, l, pp) = model.quantile_function(quantile);
                assert_eq!((s, l, pp), (k, left, p));
            }
        }
        assert_eq!(next, 1 << PRECISION);
        let total: f64 = (0..LEVELS).map(|k| q.discrete_probability(k)).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}

#[test]
fn bad_files_are_errors_never_images() {
    let (m, img) = (model(), image());
    let img = crop(&img, 60, 60, 70, 70);
    let c = compress(&m, &img, 64).expect("compress");
    let err = |bytes: &[u8], model: &Ride<f32>| {
        format!("{:#}", decompress(model, bytes).expect_err("refused"))
    };
    // every truncation, inside the header and inside the payload
    for cut in [
        0,
        5,
        20,
        c.header_bytes - 1,
        c.header_bytes,
        c.bytes.len() - 1,
    ] {
        let e = err(&c.bytes[..cut], &m);
        assert!(
            e.contains("truncated") || e.contains("signature"),
            "cut {cut}: {e}"
        );
    }
    // trailing bytes
    let mut long = c.bytes.clone();
    long.extend_from_slice(&[0, 0, 0, 0]);
    assert!(err(&long, &m).contains("after the"));
    // a flipped bit anywhere in the payload, and in the stored image checksum
    for pos in [c.header_bytes, c.header_bytes + 17, c.bytes.len() - 1] {
        let mut bad = c.bytes.clone();
        bad[pos] ^= 0x10;
        assert!(err(&bad, &m).contains("corrupt payload"), "byte {pos}");
    }
    let mut bad = c.bytes.clone();
    bad[c.header_bytes - 1] ^= 1;
    assert!(err(&bad, &m).contains("do not match"));
    // a header whose size disagrees with its tiles
    let mut bad = c.bytes.clone();
    let size_at = 8 + 2 + 2 + 16 + 1 + bad[28] as usize;
    bad[size_at] ^= 0x40;
    assert!(
        err(&bad, &m).contains("corrupt header"),
        "{}",
        err(&bad, &m)
    );
    // not a compressed file at all
    assert!(err(b"\x89PNG\r\n\x1a\nxxxxxxxxxxxxxxxxxxxx", &m).contains("signature"));
    // another model: one weight changed
    let mut other = m.clone();
    other.params_mut()[0][0] += 1e-3;
    assert!(err(&c.bytes, &other).contains("compressed with model"));
}

#[test]
fn log_domain_models_and_colour_images_are_refused() {
    let mut m = model();
    m.preprocessing =
        ride::io::preprocessing::Preprocessing::gray8(ride::io::preprocessing::Domain::Vanhateren);
    let e = compress(&m, &crop(&image(), 0, 0, 10, 10), 64).expect_err("refused");
    assert!(format!("{e:#}").contains("8-bit gray"));
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("colour.png");
    image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8, y as u8, 3]))
        .save(&p)
        .expect("png");
    let e = read_image(&p).expect_err("refused");
    assert!(format!("{e:#}").contains("colour image"), "{e:#}");
}

/// `ride compress` / `ride decompress` round-trip a PNG through files; a wrong model is an error
/// with a non-zero exit and no output file.
#[test]
fn cli_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("small.png");
    let img = crop(&image(), 100, 100, 45, 77);
    ride::codec::write_png(&small, &img).expect("png");
    let packed = dir.path().join("small.ridec");
    let out = dir.path().join("back.png");
    let bin = env!("CARGO_BIN_EXE_ride");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .output()
            .expect("runs")
    };
    let o = run(&[
        "compress",
        "--model",
        MODEL,
        small.to_str().unwrap(),
        "-o",
        packed.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("bit/px"));
    let o = run(&[
        "decompress",
        "--model",
        MODEL,
        packed.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_image(&out).expect("decoded png"), img);
    // the wrong model: a safetensors copy with one changed weight
    let mut other = model();
    other.params_mut()[1][0] += 0.5;
    let other_path = dir.path().join("other.safetensors");
    ride::io::modelfile::save_safetensors(&other, &other_path).expect("save");
    let bad_out = dir.path().join("bad.png");
    let o = run(&[
        "decompress",
        "--model",
        other_path.to_str().unwrap(),
        packed.to_str().unwrap(),
        "-o",
        bad_out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("compressed with model"));
    assert!(!bad_out.exists());
}

/// `ride codec-compare` on the fixture images with the original code's model (no standard
/// codecs: `make test` installs nothing): rows, summary, figures, provenance, and a rerun that
/// reuses every finished image.
#[test]
fn codec_compare_writes_rows_summary_and_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("codec.toml");
    let model = std::fs::canonicalize(MODEL).expect("model path");
    std::fs::write(
        &cfg,
        format!(
            r#"name = "codec_test"
tile = 64
external = []
[[datasets]]
id = "bsds"
label = "fixture images"
dir = "bsds300/gray/test"
[[models]]
id = "ride1"
label = "RIDE, 1 layer (original code)"
path = "{}"
[tile_study]
dataset = "bsds"
model = "ride1"
images = 1
tiles = [64, 128]
"#,
            model.display()
        ),
    )
    .expect("config");
    let out = dir.path().join("out");
    let opts = ride::harness::codec_compare::Options {
        config: cfg,
        data_dir: "tests/fixtures".into(),
        out: out.clone(),
        limit: Some(1),
    };
    let s = ride::harness::codec_compare::run(&opts).expect("runs");
    assert_eq!(s.len(), 1);
    assert!(
        s[0].bits_per_px > 3.0 && s[0].bits_per_px < 8.0,
        "{}",
        s[0].bits_per_px
    );
    let rows = std::fs::read_to_string(out.join("images.csv")).expect("images.csv");
    assert_eq!(rows.lines().count(), 2, "{rows}");
    let tiles = std::fs::read_to_string(out.join("tiles.csv")).expect("tiles.csv");
    assert_eq!(tiles.lines().count(), 3, "{tiles}");
    for f in [
        "summary.csv",
        "summary.md",
        "bsds.png",
        "tiles.png",
        "provenance.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let t0 = std::time::Instant::now();
    let again = ride::harness::codec_compare::run(&opts).expect("reruns");
    assert!(t0.elapsed().as_secs_f64() < 2.0, "the rerun coded again");
    assert_eq!(again[0].bits_per_px, s[0].bits_per_px);
}

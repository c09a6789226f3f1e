//! Dataset layer: van Hateren, BSDS300, dead leaves, Brodatz and training patches (on the
//! fixture data directory of `tests/common`; the whole data sets only where marked).

mod common;

use ride::data::{bsds300, patches, rng_for, vanhateren, DeadLeaves, Purpose, Split};

/// A test stream of the crate's one derivation.
fn derive_rng(seed: u64, index: u64) -> rand_xoshiro::Xoshiro256PlusPlus {
    rng_for(seed, Purpose::Bench, 0, index)
}
use ride::io::images::GrayImage;
use std::collections::HashSet;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    common::data_dir()
}

fn err_text(e: anyhow::Error) -> String {
    format!("{e:#}")
}

// ---------------------------------------------------------------- van Hateren

#[test]
fn truncated_iml_names_file_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.iml");
    std::fs::write(&path, vec![0u8; 1000]).unwrap();
    let msg = err_text(vanhateren::read_iml(&path).unwrap_err());
    assert!(msg.contains("x.iml"), "{msg}");
    assert!(msg.contains("1000 bytes"), "{msg}");
    assert!(msg.contains("3145728"), "{msg}");
}

#[test]
fn real_iml_reads_and_preprocesses() {
    let path = data_dir().join("vanhateren/imk00031.iml");
    let raw = vanhateren::read_iml(&path).unwrap();
    assert_eq!((raw.h, raw.w), (1024, 1536));
    assert_eq!(raw.data.len(), 1024 * 1536);
    assert_eq!(raw.name, "imk00031.iml");
    let (lo, hi) = min_max(&raw.data);
    assert!(lo >= 0.0 && hi <= 65535.0, "{lo} {hi}");
    assert!(
        lo >= 26.0 && hi <= 19306.0,
        "range [{lo}, {hi}] outside the manifest's [26, 19306]"
    );
    assert!(raw.data.iter().all(|v| v.fract() == 0.0));
    // First pixel straight from the bytes (big-endian).
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        raw.data[0],
        f64::from(u16::from_be_bytes([bytes[0], bytes[1]]))
    );

    let mut rng = derive_rng(7, 0);
    let p = vanhateren::preprocess(&raw, &mut rng);
    assert_eq!((p.h, p.w), (512, 768));
    assert_eq!(p.data.len(), 512 * 768);
    assert_eq!(p.name, raw.name);
    assert!(p.data.iter().all(|v| v.is_finite()));
    // log of a 2×2 mean of (count + U[0,1)): between log(min block) and log(max block + 1).
    for &(i, j) in &[(0usize, 0usize), (100, 200), (511, 767)] {
        let b = [
            raw.data[2 * i * 1536 + 2 * j],
            raw.data[2 * i * 1536 + 2 * j + 1],
            raw.data[(2 * i + 1) * 1536 + 2 * j],
            raw.data[(2 * i + 1) * 1536 + 2 * j + 1],
        ];
        let mean = b.iter().sum::<f64>() / 4.0;
        let v = p.data[i * 768 + j];
        assert!(
            v >= mean.ln() && v < (mean + 1.0).ln(),
            "({i},{j}): {v} vs {mean}"
        );
    }
    let (plo, phi) = min_max(&p.data);
    assert!(plo >= 26f64.ln() && phi <= 19307f64.ln(), "{plo} {phi}");
}

#[test]
fn vanhateren_load_is_deterministic_and_reports_missing() {
    let ids = vanhateren::to_ids(&["imk00031"]);
    let a = vanhateren::load(&data_dir(), &ids, 3, Split::Train).unwrap();
    let b = vanhateren::load(&data_dir(), &ids, 3, Split::Train).unwrap();
    let c = vanhateren::load(&data_dir(), &ids, 4, Split::Train).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].h, a[0].w), (512, 768));
    assert_eq!(a[0].data, b[0].data);
    assert_ne!(a[0].data, c[0].data);

    let msg = err_text(
        vanhateren::load(
            &data_dir(),
            &vanhateren::to_ids(&["imk99999"]),
            0,
            Split::Train,
        )
        .unwrap_err(),
    );
    assert!(msg.contains("imk99999.iml"), "{msg}");
}

#[test]
fn vanhateren_split_partitions_the_manifest_ids() {
    let all: HashSet<&str> = vanhateren::ALL_IDS.iter().copied().collect();
    assert_eq!(all.len(), 46);
    let test: HashSet<&str> = vanhateren::DEFAULT_TEST_IDS.iter().copied().collect();
    let train: HashSet<&str> = vanhateren::DEFAULT_TRAIN_IDS.iter().copied().collect();
    assert_eq!(test.len(), 6);
    assert_eq!(train.len(), 40);
    assert!(test.is_disjoint(&train));
    assert_eq!(test.union(&train).copied().collect::<HashSet<_>>(), all);
    for (i, id) in vanhateren::ALL_IDS.iter().enumerate() {
        assert_eq!(test.contains(id), i % 8 == 4, "{id}");
    }
}

#[test]
#[ignore = "needs the full data sets: make test-data"]
fn every_manifest_id_is_in_the_data_directory() {
    let dir = common::full_data_dir();
    for id in vanhateren::ALL_IDS {
        assert!(dir.join(format!("vanhateren/{id}.iml")).is_file(), "{id}");
    }
    let test = bsds300::read_ids(&dir, Split::Test).unwrap();
    let train = bsds300::read_ids(&dir, Split::Train).unwrap();
    assert_eq!((train.len(), test.len()), (200, 100));
}

// ---------------------------------------------------------------- dead leaves

#[test]
fn dead_leaves_deterministic_and_covering() {
    let dl = DeadLeaves::new(48, 1.0, 20.0).unwrap();
    let a = dl.generate_set(3, 11, Split::Train);
    let b = dl.generate_set(3, 11, Split::Train);
    let c = dl.generate_set(3, 12, Split::Train);
    assert_eq!(a.len(), 3);
    for (k, img) in a.iter().enumerate() {
        assert_eq!(img.name, format!("deadleaves_train_11_{k}"));
        assert_eq!((img.h, img.w), (48, 48));
        assert_eq!(img.data, b[k].data);
        assert_ne!(img.data, c[k].data);
        assert!(img.data.iter().all(|&v| (0.0..1.0).contains(&v)));
        // Painted by disks: far fewer distinct values than pixels, and more than one.
        let distinct: HashSet<u64> = img.data.iter().map(|v| v.to_bits()).collect();
        assert!(
            distinct.len() > 1 && distinct.len() < img.data.len() / 4,
            "{}",
            distinct.len()
        );
    }
    assert_ne!(a[0].data, a[1].data);
    // Image k does not depend on how many are generated.
    assert_eq!(dl.generate_set(1, 11, Split::Train)[0].data, a[0].data);
}

#[test]
fn dead_leaves_every_pixel_covered_even_with_tiny_disks() {
    // Tiny disks stress the bounding-box arithmetic; generation only returns once every pixel
    // is covered, and every pixel holds a value some disk drew.
    let dl = DeadLeaves::new(16, 0.5, 0.6).unwrap();
    let mut rng = derive_rng(5, 0);
    let img = dl.generate(&mut rng);
    assert!(img.data.iter().all(|&v| (0.0..1.0).contains(&v)));
    let distinct: HashSet<u64> = img.data.iter().map(|v| v.to_bits()).collect();
    // Radius < 0.71 can cover at most 5 pixel centres (a plus shape), so ≥ 256/5 disks.
    assert!(distinct.len() >= 256 / 5, "{}", distinct.len());
}

#[test]
fn dead_leaves_radius_distribution() {
    let (rmin, rmax) = (1.0f64, 30.0f64);
    let dl = DeadLeaves::new(8, rmin, rmax).unwrap();
    let mut rng = derive_rng(2024, 1);
    let n = 20_000;
    let mut r: Vec<f64> = (0..n).map(|_| dl.sample_radius(&mut rng)).collect();
    assert!(r.iter().all(|&x| (rmin..=rmax).contains(&x)));

    // Kolmogorov–Smirnov against F(r) = (rmin⁻² − r⁻²) / (rmin⁻² − rmax⁻²).
    let (a, b) = (rmin.powi(-2), rmax.powi(-2));
    let cdf = |x: f64| (a - x.powi(-2)) / (a - b);
    r.sort_by(f64::total_cmp);
    let nf = n as f64;
    let d = r
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (((i + 1) as f64 / nf) - f).max(f - i as f64 / nf)
        })
        .fold(0.0, f64::max);
    let crit = 1.95 / nf.sqrt();
    assert!(d < crit, "KS statistic {d} ≥ {crit}");

    // Moments: density c r⁻³ with c = 2 / (rmin⁻² − rmax⁻²);
    // E[r] = c (1/rmin − 1/rmax), E[r²] = c ln(rmax/rmin).
    let c = 2.0 / (a - b);
    let mean = c * (1.0 / rmin - 1.0 / rmax);
    let var = c * (rmax / rmin).ln() - mean * mean;
    let sample_mean = r.iter().sum::<f64>() / nf;
    let se = (var / nf).sqrt();
    assert!(
        (sample_mean - mean).abs() < 5.0 * se,
        "mean {sample_mean} vs {mean} (se {se})"
    );
    // Sanity of the closed form: E[r] = 2·30/31 for rmin = 1, rmax = 30.
    assert!((mean - 60.0 / 31.0).abs() < 1e-12);
}

#[test]
fn dead_leaves_rejects_bad_parameters() {
    assert!(DeadLeaves::new(0, 1.0, 2.0).is_err());
    assert!(DeadLeaves::new(8, 0.0, 2.0).is_err());
    assert!(DeadLeaves::new(8, 3.0, 2.0).is_err());
    assert!(DeadLeaves::new(8, 1.0, f64::INFINITY).is_err());
    // rmin = rmax: every radius is rmin.
    let dl = DeadLeaves::new(8, 2.0, 2.0).unwrap();
    let mut rng = derive_rng(0, 0);
    assert!((dl.sample_radius(&mut rng) - 2.0).abs() < 1e-12);
}

// ---------------------------------------------------------------- BSDS300

#[test]
fn bsds300_loads_plain_and_dequantized() {
    let plain = bsds300::load(&data_dir(), Split::Test, false, 0, Some(2)).unwrap();
    assert_eq!(plain.len(), 2);
    let ids = bsds300::read_ids(&data_dir(), Split::Test).unwrap();
    assert!(ids.len() >= 2);
    for (img, id) in plain.iter().zip(&ids) {
        assert_eq!(img.name, format!("{id}.jpg"));
        assert!(
            (img.h, img.w) == (321, 481) || (img.h, img.w) == (481, 321),
            "{}×{}",
            img.h,
            img.w
        );
        assert!(img.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
        // Exactly k/255.
        assert!(img
            .data
            .iter()
            .all(|&v| ((v * 255.0).round() - v * 255.0).abs() < 1e-9));
    }
    let dq = bsds300::load(&data_dir(), Split::Test, true, 9, Some(2)).unwrap();
    let dq2 = bsds300::load(&data_dir(), Split::Test, true, 9, Some(2)).unwrap();
    let dq3 = bsds300::load(&data_dir(), Split::Test, true, 10, Some(2)).unwrap();
    for k in 0..2 {
        assert_eq!(dq[k].data, dq2[k].data);
        assert_ne!(dq[k].data, dq3[k].data);
        assert_ne!(dq[k].data, plain[k].data);
        for (&d, &p) in dq[k].data.iter().zip(&plain[k].data) {
            assert!(d >= p && d - p < 1.0 / 255.0, "{d} vs {p}");
        }
    }
    // The noise of an image does not depend on `limit`.
    let one = bsds300::load(&data_dir(), Split::Test, true, 9, Some(1)).unwrap();
    assert_eq!(one[0].data, dq[0].data);
}

#[test]
fn bsds300_train_split_and_missing_dir() {
    let train = bsds300::read_ids(&data_dir(), Split::Train).unwrap();
    assert!(!train.is_empty());
    let imgs = bsds300::load(&data_dir(), Split::Train, false, 0, Some(1)).unwrap();
    assert_eq!(imgs[0].name, format!("{}.jpg", train[0]));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let msg = err_text(bsds300::load(&missing, Split::Test, false, 0, None).unwrap_err());
    assert!(msg.contains("iids_test.txt"), "{msg}");

    // Id list present, image missing.
    std::fs::create_dir_all(dir.path().join("bsds300")).unwrap();
    std::fs::write(dir.path().join("bsds300/iids_train.txt"), "12345\n").unwrap();
    let msg = err_text(bsds300::load(dir.path(), Split::Train, false, 0, None).unwrap_err());
    assert!(msg.contains("12345.jpg"), "{msg}");
}

// ---------------------------------------------------------------- Brodatz

#[test]
fn brodatz_plates() {
    let d1 = ride::data::load_plate(&data_dir(), "D1").unwrap();
    assert_eq!((d1.h, d1.w), (643, 643));
    assert!(d1.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let (lo, hi) = min_max(&d1.data);
    assert!(hi > lo);
    let d2 = ride::data::load_plate(&data_dir(), "D2").unwrap();
    assert_eq!((d2.h, d2.w), (640, 640));
    let msg = err_text(ride::data::load_plate(&data_dir(), "D14").unwrap_err());
    assert!(msg.contains("D14.gif"), "{msg}");
}

// ---------------------------------------------------------------- patches

fn ramp(h: usize, w: usize) -> GrayImage {
    GrayImage {
        name: "ramp".into(),
        h,
        w,
        data: (0..h * w).map(|k| k as f64).collect(),
    }
}

#[test]
fn patch_counts_and_flips() {
    let img = ramp(7, 10);
    let p = patches::extract_rect(std::slice::from_ref(&img), (3, 3), false);
    assert_eq!(p.len(), 6);
    // Tile (row 1, col 2) = rows 3..6, cols 6..9.
    let expect: Vec<f64> = (3..6)
        .flat_map(|r| (6..9).map(move |c| (r * 10 + c) as f64))
        .collect();
    assert_eq!(p[5], expect);
    assert_eq!(p[0], vec![0., 1., 2., 10., 11., 12., 20., 21., 22.]);

    let f = patches::extract_rect(std::slice::from_ref(&img), (3, 3), true);
    assert_eq!(f.len(), 12);
    for k in 0..6 {
        assert_eq!(f[2 * k], p[k]);
        let mirror: Vec<f64> = p[k]
            .chunks(3)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        assert_eq!(f[2 * k + 1], mirror);
    }
    // Two images: counts add up (10×7 transposed gives 2×3 = 6 as well).
    let both = patches::extract_rect(&[img.clone(), ramp(10, 7)], (3, 3), true);
    assert_eq!(both.len(), 24);
}

#[test]
fn shuffle_is_a_seeded_permutation_and_cap_truncates() {
    let base = patches::extract_rect(&[ramp(20, 20)], (2, 2), true);
    assert_eq!(base.len(), 200);
    let mut a = base.clone();
    let mut b = base.clone();
    let mut c = base.clone();
    patches::shuffle_and_cap(&mut a, derive_rng(1, 0), None);
    patches::shuffle_and_cap(&mut b, derive_rng(1, 0), None);
    patches::shuffle_and_cap(&mut c, derive_rng(2, 0), None);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, base);
    let mut sorted = a.clone();
    sorted.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let mut sorted_base = base.clone();
    sorted_base.sort_by(|x, y| x.partial_cmp(y).unwrap());
    assert_eq!(sorted, sorted_base);

    let mut capped = base.clone();
    patches::shuffle_and_cap(&mut capped, derive_rng(1, 0), Some(17));
    assert_eq!(capped, a[..17].to_vec());
    let mut big = base.clone();
    patches::shuffle_and_cap(&mut big, derive_rng(1, 0), Some(1000));
    assert_eq!(big, a);
}

#[test]
fn extract_checked_errors() {
    let msg = err_text(patches::extract_rect_checked(&[], (8, 8), false).unwrap_err());
    assert!(msg.contains("no training images"), "{msg}");
    let msg = err_text(
        patches::extract_rect_checked(&[ramp(7, 10), ramp(5, 30)], (8, 8), true).unwrap_err(),
    );
    assert!(
        msg.contains("8×8") && msg.contains("2 training images"),
        "{msg}"
    );
    assert!(patches::extract_rect_checked(&[ramp(7, 10)], (0, 0), false).is_err());
    assert_eq!(
        patches::extract_rect_checked(&[ramp(8, 10)], (8, 8), true)
            .unwrap()
            .len(),
        2
    );
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// The index permutation used by training is exactly the one `shuffle_and_cap` applies.
#[test]
fn shuffled_indices_match_shuffle_and_cap() {
    for (n, cap) in [(1usize, None), (17, None), (100, Some(40))] {
        let patches: Vec<Vec<f64>> = (0..n).map(|k| vec![k as f64]).collect();
        let mut shuffled = patches.clone();
        ride::data::shuffle_and_cap(&mut shuffled, derive_rng(11, 0), cap);
        let idx = ride::data::patches::shuffled_indices(n, derive_rng(11, 0), cap);
        let via_idx: Vec<Vec<f64>> = idx.iter().map(|&k| patches[k].clone()).collect();
        assert_eq!(via_idx, shuffled);
    }
}

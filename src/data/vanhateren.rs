//! The van Hateren natural images (linear `.iml`, docs/MODEL.md §7) and the fixed preprocessing protocol.
//!
//! # Format
//!
//! Headerless raw files of exactly 3,145,728 bytes: 1536 columns × 1024 rows of unsigned 16-bit
//! big-endian integers, row-major from the top-left pixel. [`read_iml`] returns the raw counts as
//! `f64` (1024 rows × 1536 columns).
//!
//! # Preprocessing (fixed; the original script is not public)
//!
//! [`preprocess`] applies, in this order:
//!
//! 1. **Dequantisation**: add independent Uniform[0,1) noise to every integer count. The data
//!    become continuous, so that densities (and log-likelihoods in bits/px) are well defined
//!    rather than degenerate on a lattice.
//! 2. **2×2 block averaging** to 768×512 (an odd last row or column would be dropped). This
//!    reduces sensor noise and aliasing, as is common for van Hateren images in
//!    density-modelling papers, and quarters the cost of training.
//! 3. **Natural logarithm** of the averaged intensity: the log domain the paper models. Raw
//!    counts are ≥ 26 in the data set, so the logarithm is safe; the input is still clamped at
//!    ≥ 1e-3 before the log so that a zero-valued file cannot produce −∞.
//!
//! The image keeps its name. [`load`] reads a list of ids and preprocesses each image with its
//! own seeded generator ([`crate::data::rng_for`]`(seed, Dequantize, split, index)`), so a given (ids, seed) always
//! yields the same data.
//!
//! # Split
//!
//! [`ALL_IDS`] are the 46 images present in `shared/data/vanhateren` (see its `MANIFEST.md`).
//! [`DEFAULT_TEST_IDS`] takes every 8th of them starting at index 4 (indices 4, 12, 20, 28, 36,
//! 44 of the sorted list); [`DEFAULT_TRAIN_IDS`] are the other 40.

use crate::io::images::GrayImage;
use anyhow::{bail, Context, Result};
use rand::RngExt;
use rayon::prelude::*;
use std::path::Path;

/// Width (columns) of an `.iml` image.
pub const IML_W: usize = 1536;
/// Height (rows) of an `.iml` image.
pub const IML_H: usize = 1024;
/// Size in bytes of an `.iml` file.
pub const IML_BYTES: usize = IML_W * IML_H * 2;

/// The 46 images in `shared/data/vanhateren`, sorted.
pub const ALL_IDS: [&str; 46] = [
    "imk00031", "imk00037", "imk00054", "imk00061", "imk00074", "imk00084", "imk00135", "imk00148",
    "imk00152", "imk00162", "imk00165", "imk00190", "imk00196", "imk00220", "imk00244", "imk00246",
    "imk00252", "imk00256", "imk00269", "imk00281", "imk00285", "imk00296", "imk00302", "imk00316",
    "imk00327", "imk00335", "imk00354", "imk00356", "imk00368", "imk00377", "imk00397", "imk00459",
    "imk00657", "imk00791", "imk01071", "imk01158", "imk01192", "imk01366", "imk02265", "imk02733",
    "imk03347", "imk03669", "imk03758", "imk04098", "imk04102", "imk04123",
];

/// Held-out test images: [`ALL_IDS`] at indices 4, 12, 20, 28, 36, 44.
pub const DEFAULT_TEST_IDS: [&str; 6] = [
    "imk00074", "imk00196", "imk00285", "imk00368", "imk01192", "imk04102",
];

/// Training images: the 40 of [`ALL_IDS`] not in [`DEFAULT_TEST_IDS`].
pub const DEFAULT_TRAIN_IDS: [&str; 40] = [
    "imk00031", "imk00037", "imk00054", "imk00061", "imk00084", "imk00135", "imk00148", "imk00152",
    "imk00162", "imk00165", "imk00190", "imk00220", "imk00244", "imk00246", "imk00252", "imk00256",
    "imk00269", "imk00281", "imk00296", "imk00302", "imk00316", "imk00327", "imk00335", "imk00354",
    "imk00356", "imk00377", "imk00397", "imk00459", "imk00657", "imk00791", "imk01071", "imk01158",
    "imk01366", "imk02265", "imk02733", "imk03347", "imk03669", "imk03758", "imk04098", "imk04123",
];

/// Smallest intensity passed to the logarithm in [`preprocess`].
pub const LOG_FLOOR: f64 = 1e-3;

/// Reads a raw `.iml` file as 1024 rows × 1536 columns of raw counts (named by its file name).
pub fn read_iml(path: &Path) -> Result<GrayImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() != IML_BYTES {
        bail!(
            "{}: {} bytes, expected {IML_BYTES} ({IML_W}×{IML_H} big-endian u16)",
            path.display(),
            bytes.len()
        );
    }
    let data = bytes
        .chunks_exact(2)
        .map(|b| f64::from(u16::from_be_bytes([b[0], b[1]])))
        .collect();
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(GrayImage {
        name,
        h: IML_H,
        w: IML_W,
        data,
    })
}

/// The fixed protocol of the module docs: dequantise (+Uniform[0,1)), 2×2 block average,
/// natural log (input clamped at ≥ [`LOG_FLOOR`]). Output is `h/2 × w/2`.
pub fn preprocess(raw: &GrayImage, rng: &mut impl RngExt) -> GrayImage {
    assert_eq!(
        raw.data.len(),
        raw.h * raw.w,
        "{}: data size mismatch",
        raw.name
    );
    let noisy: Vec<f64> = raw.data.iter().map(|&v| v + rng.random::<f64>()).collect();
    let (h, w) = (raw.h / 2, raw.w / 2);
    let mut data = Vec::with_capacity(h * w);
    for i in 0..h {
        let top = &noisy[2 * i * raw.w..][..raw.w];
        let bottom = &noisy[(2 * i + 1) * raw.w..][..raw.w];
        for j in 0..w {
            let mean = 0.25 * (top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1]);
            data.push(mean.max(LOG_FLOOR).ln());
        }
    }
    GrayImage {
        name: raw.name.clone(),
        h,
        w,
        data,
    }
}

/// Reads `data_dir/vanhateren/{id}.iml` for every id and preprocesses image `i` with
/// [`crate::data::rng_for`]`(seed, Dequantize, split, i)`. Images are processed in parallel;
/// the result is in the order of `ids` and does not depend on the thread count.
pub fn load(
    data_dir: &Path,
    ids: &[String],
    seed: u64,
    split: super::Split,
) -> Result<Vec<GrayImage>> {
    let dir = data_dir.join("vanhateren");
    ids.par_iter()
        .enumerate()
        .map(|(i, id)| {
            let path = dir.join(format!("{id}.iml"));
            if !path.is_file() {
                bail!(
                    "van Hateren image '{id}' not found: {} does not exist",
                    path.display()
                );
            }
            let raw = read_iml(&path)?;
            let mut rng =
                super::rng_for(seed, super::Purpose::Dequantize, split.stream(), i as u64);
            Ok(preprocess(&raw, &mut rng))
        })
        .collect()
}

/// `ids` as owned strings (for [`load`]): `to_ids(&DEFAULT_TRAIN_IDS)`.
pub fn to_ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

//! Datasets of the paper (spec §7) as grayscale images: van Hateren, BSDS300, dead leaves,
//! Brodatz; and training patches cut from them.
//!
//! Every loader returns [`GrayImage`]s (row-major `f64`), on the scale the models see:
//!
//! - [`vanhateren`]: linear 16-bit `.iml` files, dequantised, 2×2 block-averaged to 768×512 and
//!   log-transformed (a fixed, documented protocol; the original script is not public);
//! - [`bsds300`]: JPEGs converted to gray as PIL's `convert("L")` does, divided by 255, optionally
//!   dequantised with Uniform[0,1)/255 noise;
//! - [`deadleaves`]: a native, exact (front-to-back) dead-leaves generator with 1/r³ disk radii;
//! - [`brodatz`]: single texture plates, divided by 255;
//! - [`patches`]: non-overlapping training tiles (with optional horizontal flips), shuffled by seed.
//!
//! All randomness is seeded: each image draws from its own generator, derived by [`derive_rng`]
//! from the caller's seed and a per-image stream number, so results do not depend on threading or
//! on how many images are loaded.
//!
//! Data files live under a data directory (`shared/data` in this project) laid out as described in
//! its `MANIFEST.md`.

pub mod brodatz;
pub mod bsds300;
pub mod bsds300_patches;
pub mod deadleaves;
pub mod experiment;
pub mod patches;
pub mod vanhateren;

pub use crate::images::GrayImage;
pub use brodatz::load_plate;
pub use bsds300::Split;
pub use deadleaves::DeadLeaves;
pub use patches::{extract, extract_checked, shuffle_and_cap};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator for stream `stream` (an image index, say) of a seeded experiment:
/// `Xoshiro256PlusPlus::seed_from_u64(seed · 0x9E3779B97F4A7C15 ^ stream)` (wrapping multiply;
/// `seed_from_u64` then spreads the 64 bits over the whole state with SplitMix64).
pub fn derive_rng(seed: u64, stream: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream)
}

/// Smooth random test images: uniform noise box-filtered over 3×3 (clipped at the borders) plus
/// 2 % of unfiltered noise, so neighbourhoods are correlated as in natural images. Used as
/// fixture data by tests and benchmarks; image k of `n` is `h × w`, row-major.
pub fn smooth_noise_images(n: usize, h: usize, w: usize, seed: u64) -> Vec<Vec<f64>> {
    use rand::RngExt;
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let noise: Vec<f64> = (0..h * w).map(|_| r.random_range(0.0..1.0)).collect();
            (0..h * w)
                .map(|k| {
                    let (i, j) = (k / w, k % w);
                    let (mut s, mut c) = (0.0, 0.0);
                    for di in 0..3 {
                        for dj in 0..3 {
                            if i + di < h && j + dj < w {
                                s += noise[(i + di) * w + j + dj];
                                c += 1.0;
                            }
                        }
                    }
                    s / c + 0.02 * noise[k]
                })
                .collect()
        })
        .collect()
}

//! Datasets of the paper (docs/MODEL.md §7) as grayscale images: van Hateren, BSDS300, dead leaves,
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
//! All randomness is seeded through one derivation, [`rng_for`]`(seed, purpose, stage, index)`:
//! each image, pass and stage draws from its own generator, so results do not depend on
//! threading, on how many images are loaded, or on where a run was resumed, and no two
//! (seed, purpose, stage, index) tuples share a generator.
//!
//! Data files live under a data directory (`shared/data` in this project) laid out as described in
//! its `MANIFEST.md`.

pub mod brodatz;
pub mod bsds300;
pub mod bsds300_patches;
pub mod deadleaves;
pub mod fetch;
pub mod patches;
pub mod vanhateren;

pub use crate::io::images::GrayImage;
pub use brodatz::load_plate;
pub use bsds300::Split;
pub use deadleaves::DeadLeaves;
pub use patches::{extract_rect, extract_rect_checked, shuffle_and_cap};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// What a random stream is for (the `purpose` of [`rng_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Generating a synthetic image (dead leaves); stage = split, index = image.
    Generate = 1,
    /// Dequantisation noise; stage = split, index = image (BSDS300 id number, image position).
    Dequantize = 2,
    /// Positions of random patches; stage = split.
    Patches = 3,
    /// Neighbourhood samples for fitting the whitening.
    Whitening = 4,
    /// The initial model.
    Init = 5,
    /// A layer added before curriculum stage `stage`.
    AddLayer = 6,
    /// The patch order of curriculum stage `stage`, epoch `index`.
    Shuffle = 7,
    /// Cells for the L-BFGS fine-tuning after stage `stage` (0: the MCGSM baseline's fit).
    Finetune = 8,
    /// Benchmarks and tests.
    Bench = 9,
}

/// The generator for `(seed, purpose, stage, index)`: a Xoshiro256++ whose 256-bit state is a
/// bijective mix of the four words, so distinct tuples give distinct states (no two purposes,
/// stages or indices share a stream, unlike sums or XORs of the seed) and every state word — hence
/// every output, the first included — depends on all four. The mix: two rounds of
/// `wᵢ ^= m(sum of the other three)` over i = 0…3, with `m` the SplitMix64 finaliser; each
/// update is invertible given the others, so the whole map is a bijection of (u64)⁴.
pub fn rng_for(seed: u64, purpose: Purpose, stage: u64, index: u64) -> Xoshiro256PlusPlus {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let mut w = [seed, purpose as u64, stage, index];
    for _ in 0..2 {
        for i in 0..4 {
            let others = (0..4)
                .filter(|&k| k != i)
                .fold(0x9E37_79B9_7F4A_7C15u64, |a, k| a.wrapping_add(w[k]));
            w[i] ^= mix(others);
        }
    }
    let mut bytes = [0u8; 32];
    for (chunk, x) in bytes.chunks_exact_mut(8).zip(w) {
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(bytes)
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

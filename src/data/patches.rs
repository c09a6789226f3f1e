//! Training patches (docs/MODEL.md §5): non-overlapping square tiles cut from images, with horizontal
//! flips as augmentation, shuffled by seed and optionally capped.

use crate::io::images::GrayImage;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

/// All non-overlapping `ph × pw` tiles of every image, starting at the top-left corner (a
/// remainder at the right or bottom edge is left out), row-major tile data, images in order and
/// tiles in raster order. With `flip`, every tile is followed by its horizontal mirror (each row
/// reversed).
///
/// # Panics
/// If `size == 0`.
pub fn extract_rect(images: &[GrayImage], (ph, pw): (usize, usize), flip: bool) -> Vec<Vec<f64>> {
    assert!(ph > 0 && pw > 0, "patch size must be positive");
    let mut out = vec![];
    for img in images {
        assert_eq!(
            img.data.len(),
            img.h * img.w,
            "{}: data size mismatch",
            img.name
        );
        for r0 in (0..img.h / ph).map(|t| t * ph) {
            for c0 in (0..img.w / pw).map(|t| t * pw) {
                let mut tile = Vec::with_capacity(ph * pw);
                for r in r0..r0 + ph {
                    tile.extend_from_slice(&img.data[r * img.w + c0..][..pw]);
                }
                if flip {
                    let mut mirror = tile.clone();
                    for row in mirror.chunks_exact_mut(pw) {
                        row.reverse();
                    }
                    out.push(tile);
                    out.push(mirror);
                } else {
                    out.push(tile);
                }
            }
        }
    }
    out
}

/// [`extract_rect`], failing with a clear message when there are no images, the size is zero,
/// or no image is large enough for one patch.
pub fn extract_rect_checked(
    images: &[GrayImage],
    (ph, pw): (usize, usize),
    flip: bool,
) -> Result<Vec<Vec<f64>>> {
    if images.is_empty() {
        bail!("no training images");
    }
    if ph == 0 || pw == 0 {
        bail!("patch size must be positive");
    }
    let patches = extract_rect(images, (ph, pw), flip);
    if patches.is_empty() {
        let (h, w) = images
            .iter()
            .fold((0, 0), |(h, w), i| (h.max(i.h), w.max(i.w)));
        bail!(
            "no {ph}×{pw} patch fits in any of the {} training images (largest height {h}, \
             largest width {w})",
            images.len()
        );
    }
    Ok(patches)
}

/// The permutation [`shuffle_and_cap`] applies to `n` patches, as indices (no patch is copied):
/// `shuffle_and_cap(p)[k] == p[shuffled_indices(p.len())[k]]` for the same seed and cap.
pub fn shuffled_indices(n: usize, mut rng: Xoshiro256PlusPlus, cap: Option<usize>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    // Fisher–Yates draws depend only on the length, so this is the same permutation
    idx.shuffle(&mut rng);
    if let Some(c) = cap {
        idx.truncate(c);
    }
    idx
}

/// Shuffles the patches uniformly (Fisher–Yates with `rng`, e.g. a
/// [`crate::data::rng_for`] stream), then keeps the first `cap` (all with `None`).
pub fn shuffle_and_cap(
    patches: &mut Vec<Vec<f64>>,
    mut rng: Xoshiro256PlusPlus,
    cap: Option<usize>,
) {
    patches.shuffle(&mut rng);
    if let Some(c) = cap {
        patches.truncate(c);
    }
}

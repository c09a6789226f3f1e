//! What a fill is held against besides the model: SSIM over the hole against the true pixels,
//! and the harmonic (Laplace) fill, the smoothest fill the observed border allows.

use super::{Geometry, Rect};

/// SSIM (Wang et al. 2004) of `a` against `b` (both `h × w`, row-major) averaged over the
/// pixels of `region`: local statistics in an 11×11 Gaussian window (σ 1.5; cut at the image
/// border and renormalised), C1 = (0.01·L)², C2 = (0.03·L)² for the dynamic range `l`.
pub fn ssim_over(a: &[f64], b: &[f64], h: usize, w: usize, region: Rect, l: f64) -> f64 {
    const R: isize = 5;
    let g: Vec<f64> = (-R..=R)
        .map(|d| (-((d * d) as f64) / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let (c1, c2) = ((0.01 * l).powi(2), (0.03 * l).powi(2));
    let mut total = 0.0;
    for r in region.top..region.top + region.h {
        for c in region.left..region.left + region.w {
            let (mut sw, mut ma, mut mb, mut saa, mut sbb, mut sab) =
                (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            for dr in -R..=R {
                let rr = r as isize + dr;
                if rr < 0 || rr >= h as isize {
                    continue;
                }
                for dc in -R..=R {
                    let cc = c as isize + dc;
                    if cc < 0 || cc >= w as isize {
                        continue;
                    }
                    let k = rr as usize * w + cc as usize;
                    let wt = g[(dr + R) as usize] * g[(dc + R) as usize];
                    let (x, y) = (a[k], b[k]);
                    sw += wt;
                    ma += wt * x;
                    mb += wt * y;
                    saa += wt * x * x;
                    sbb += wt * y * y;
                    sab += wt * x * y;
                }
            }
            let (ma, mb) = (ma / sw, mb / sw);
            let va = (saa / sw - ma * ma).max(0.0);
            let vb = (sbb / sw - mb * mb).max(0.0);
            let cov = sab / sw - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        }
    }
    total / (region.h * region.w).max(1) as f64
}

/// Harmonic fill of the hole of `geo` in `image` (`h × w`): the hole's values solve the discrete
/// Laplace equation with the pixels around the hole as the boundary (image edges: mirrored).
/// Successive over-relaxation until the largest update is below 1e-10 of the border's range.
pub fn harmonic_fill(image: &[f64], geo: &Geometry) -> Vec<f64> {
    let (h, w, hole) = (geo.image_h, geo.image_w, geo.hole);
    let mut x = image.to_vec();
    // start from the mean of the border ring
    let ring = super::score::ring_mean(image, geo, 1);
    for r in hole.top..hole.bottom() {
        x[r * w + hole.left..r * w + hole.right()].fill(ring);
    }
    let (lo, hi) = image
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let tol = 1e-10 * (hi - lo).max(1e-300);
    // the optimal SOR factor for an n×n grid
    let n = hole.h.max(hole.w) as f64;
    let omega = 2.0 / (1.0 + (std::f64::consts::PI / (n + 1.0)).sin());
    let at = |x: &[f64], r: isize, c: isize| -> f64 {
        let rr = if r < 0 {
            -r
        } else if r >= h as isize {
            2 * h as isize - 2 - r
        } else {
            r
        };
        let cc = if c < 0 {
            -c
        } else if c >= w as isize {
            2 * w as isize - 2 - c
        } else {
            c
        };
        x[rr.clamp(0, h as isize - 1) as usize * w + cc.clamp(0, w as isize - 1) as usize]
    };
    for _ in 0..100_000 {
        let mut largest: f64 = 0.0;
        for r in hole.top..hole.bottom() {
            for c in hole.left..hole.right() {
                let (ri, ci) = (r as isize, c as isize);
                let avg = 0.25
                    * (at(&x, ri - 1, ci)
                        + at(&x, ri + 1, ci)
                        + at(&x, ri, ci - 1)
                        + at(&x, ri, ci + 1));
                let k = r * w + c;
                let d = omega * (avg - x[k]);
                x[k] += d;
                largest = largest.max(d.abs());
            }
        }
        if largest < tol {
            break;
        }
    }
    x
}

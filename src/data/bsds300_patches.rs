//! BSDS300 8×8 patches (docs/MODEL.md §7), the density-estimation benchmark: random `size × size` patches of
//! the BSDS300 training / test images (PIL gray + U[0,1) dequantisation, / 255), the DC component
//! (patch mean) removed.
//!
//! How RIDE models a patch: each DC-free patch is zero-padded above, left and right by the
//! model's neighbourhood margin, so that the model's grid on the padded canvas is exactly the
//! patch's pixels (the padding is a known constant, so conditioning on it is allowed). The
//! 63-dimensional density (DC removed, bottom-right pixel dropped — it is minus the sum of the
//! others) is the product of the first 63 conditionals in raster order: the sum of the first 63
//! cells' log-likelihoods. Training uses all 64 cells (the last conditional is learned but not
//! scored). The 64-dimensional density of the original patch x adds the density of its DC
//! component m and the Jacobian of x ↦ (first 63 of x − m, m), whose determinant is 1/64:
//! log p(x) = log p₆₃(y) + log p(m) + log(1/64), with p(m) a Gaussian mixture fitted to the
//! training patches' DC values.

use crate::io::images::GrayImage;
use crate::model::neighbourhood::Neighbourhood;
use anyhow::{bail, Result};
use rand::RngExt;

/// Zero padding (top, left, right) that makes the grid of `nb` on the canvas the patch itself.
pub fn padding(nb: &Neighbourhood) -> (usize, usize, usize) {
    let (orow, ocol) = nb.output_pos();
    (orow, ocol, nb.cols - 1 - ocol)
}

/// Canvas size of a `size × size` patch for `nb`.
pub fn canvas(nb: &Neighbourhood, size: usize) -> (usize, usize) {
    let (t, l, r) = padding(nb);
    (size + t, size + l + r)
}

/// `count` random `size × size` patches of `images` (image k chosen uniformly, position
/// uniformly; seeded), each returned as (DC-free padded canvas, DC).
pub fn sample_patches(
    images: &[GrayImage],
    nb: &Neighbourhood,
    size: usize,
    count: usize,
    seed: u64,
    split: super::Split,
) -> Result<Vec<(GrayImage, f64)>> {
    let usable: Vec<&GrayImage> = images
        .iter()
        .filter(|g| g.h >= size && g.w >= size)
        .collect();
    if usable.is_empty() {
        bail!("no image holds a {size}×{size} patch");
    }
    let (t, l, _) = padding(nb);
    let (ch, cw) = canvas(nb, size);
    let mut rng = super::rng_for(seed, super::Purpose::Patches, split.stream(), 0);
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let g = usable[rng.random_range(0..usable.len())];
        let (r0, c0) = (
            rng.random_range(0..=g.h - size),
            rng.random_range(0..=g.w - size),
        );
        let p: Vec<f64> = (r0..r0 + size)
            .flat_map(|r| g.data[r * g.w + c0..r * g.w + c0 + size].iter().copied())
            .collect();
        let (p, dc) = remove_dc(&p);
        let mut data = vec![0.0; ch * cw];
        for r in 0..size {
            data[(r + t) * cw + l..(r + t) * cw + l + size]
                .copy_from_slice(&p[r * size..(r + 1) * size]);
        }
        out.push((
            GrayImage {
                name: format!("patch{k}"),
                h: ch,
                w: cw,
                data,
            },
            dc,
        ));
    }
    Ok(out)
}

/// The DC-free patch `x − mean(x)` and the DC `mean(x)`. Of the DC-free patch only the first
/// n − 1 values are free (the last is minus their sum): the map x ↦ (first n−1 of x − m, m) has
/// Jacobian determinant [`dc_log_jacobian`].
pub fn remove_dc(x: &[f64]) -> (Vec<f64>, f64) {
    let dc = x.iter().sum::<f64>() / x.len().max(1) as f64;
    (x.iter().map(|v| v - dc).collect(), dc)
}

/// log|det| of x ↦ (first n−1 of [`remove_dc`]`(x)`, DC) for n pixels: log(1/n). The 64-dim
/// log-likelihood is the 63-dim one + log p(DC) + this term.
pub fn dc_log_jacobian(n: usize) -> f64 {
    -(n as f64).ln()
}

/// A 1-D Gaussian mixture (the DC density).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Gmm1 {
    pub weights: Vec<f64>,
    pub means: Vec<f64>,
    pub vars: Vec<f64>,
}

impl Gmm1 {
    /// EM fit of `k` components, initialised at quantiles; variances floored at 1e-8.
    pub fn fit(x: &[f64], k: usize, iters: usize) -> Self {
        let mut s = x.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let n = s.len().max(1);
        let var0 = {
            let m = s.iter().sum::<f64>() / n as f64;
            (s.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).max(1e-8)
        };
        let mut g = Gmm1 {
            weights: vec![1.0 / k as f64; k],
            means: (0..k)
                .map(|j| s[((j as f64 + 0.5) / k as f64 * (n - 1) as f64) as usize])
                .collect(),
            vars: vec![var0 / (k * k) as f64; k],
        };
        let mut resp = vec![0.0; k];
        for _ in 0..iters {
            let (mut nk, mut sx, mut sxx) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
            for &v in x {
                let lse = g.component_logs(v, &mut resp);
                for j in 0..k {
                    let r = (resp[j] - lse).exp();
                    nk[j] += r;
                    sx[j] += r * v;
                    sxx[j] += r * v * v;
                }
            }
            for j in 0..k {
                if nk[j] > 1e-12 {
                    g.weights[j] = nk[j] / x.len() as f64;
                    g.means[j] = sx[j] / nk[j];
                    g.vars[j] = (sxx[j] / nk[j] - g.means[j].powi(2)).max(1e-8);
                }
            }
        }
        g
    }

    // per-component log(w_j N(v; μ_j, σ_j²)) into `out`; returns their log-sum-exp
    fn component_logs(&self, v: f64, out: &mut [f64]) -> f64 {
        let mut mx = f64::NEG_INFINITY;
        for (o, ((w, m), var)) in out
            .iter_mut()
            .zip(self.weights.iter().zip(&self.means).zip(&self.vars))
        {
            *o = w.max(1e-300).ln()
                - 0.5 * (2.0 * std::f64::consts::PI * var).ln()
                - 0.5 * (v - m).powi(2) / var;
            mx = mx.max(*o);
        }
        mx + out.iter().map(|l| (l - mx).exp()).sum::<f64>().ln()
    }

    /// log density (nats).
    pub fn log_pdf(&self, v: f64) -> f64 {
        let mut tmp = vec![0.0; self.weights.len()];
        self.component_logs(v, &mut tmp)
    }
}

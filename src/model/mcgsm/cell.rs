//! The MCGSM for one cell at a time (sampling, inpainting proposals): the formulas of
//! [`Mcgsm::reference_loglik`] and [`Mcgsm::sample`], with the three products (features bᵀu,
//! predictions Au, the β²-weighted squares) as f32 SIMD matrix–vector products
//! ([`gemv_rows_acc`]) and the mixture in f64; e^α and every buffer prepared once, so a cell
//! costs no allocation, and the log-sum-exps use the SIMD exp of `numerics::simd_math`.

use super::{Mcgsm, HALF_LN_2PI};
use crate::numerics::gemv::gemv_rows_acc;
use crate::numerics::real::Real;
use crate::numerics::simd_math::{exp_shift_sum_f64, max_simd_f64};

/// An MCGSM prepared for per-cell use, with its scratch.
pub struct CellMixture {
    c: usize,
    s: usize,
    priors: Vec<f64>,
    scales: Vec<f64>,
    /// e^α `[C·S]`
    exp_scales: Vec<f64>,
    /// b `[D, F]`, (β²)ᵀ `[F, C]`, Aᵀ `[D, C]`, wᵀ `[D, C]` (f32, rows for [`gemv_rows_acc`])
    features: Vec<f32>,
    weights_sq_t: Vec<f32>,
    predictors_t: Vec<f32>,
    linear_t: Option<Vec<f32>>,
    means: Option<Vec<f64>>,
    // scratch: u `[D]`, (bᵀu)² `[F]`, quadratic terms, linear terms and predictions `[C]`,
    // energies and experts `[C·S]`
    u: Vec<f32>,
    fb: Vec<f32>,
    quad: Vec<f32>,
    lin: Vec<f32>,
    pred32: Vec<f32>,
    e: Vec<f64>,
    pred: Vec<f64>,
    x: Vec<f64>,
}

/// Φ(b) − Φ(a) for a ≤ b (standard normal), from the tail where it does not cancel.
fn normal_mass(a: f64, b: f64) -> f64 {
    let q = |x: f64| 0.5 * libm::erfc(x / std::f64::consts::SQRT_2); // 1 − Φ(x)
    if a >= 0.0 {
        q(a) - q(b)
    } else if b <= 0.0 {
        q(-b) - q(-a)
    } else {
        1.0 - q(-a) - q(b)
    }
}

/// log Σ exp(x) with the SIMD exp (x is overwritten).
fn lse_in_place(x: &mut [f64]) -> f64 {
    let m = max_simd_f64(x);
    if !m.is_finite() {
        return m;
    }
    m + exp_shift_sum_f64(x, m).ln()
}

/// `[rows, cols]` row-major → `[cols, rows]` in f32.
fn transposed<T: Real>(v: &[T], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c].as_f64() as f32;
        }
    }
    t
}

impl CellMixture {
    pub fn new<T: Real>(m: &Mcgsm<T>) -> Self {
        let (d, c, s, f) = (m.d, m.c, m.s, m.f);
        let cv = |v: &[T]| v.iter().map(|x| x.as_f64()).collect::<Vec<f64>>();
        let wsq: Vec<f64> = m.weights.iter().map(|b| b.as_f64().powi(2)).collect();
        Self {
            c,
            s,
            priors: cv(&m.priors),
            scales: cv(&m.scales),
            exp_scales: m.scales.iter().map(|a| a.as_f64().exp()).collect(),
            features: m.features.iter().map(|v| v.as_f64() as f32).collect(),
            weights_sq_t: transposed(&wsq, c, f),
            predictors_t: transposed(&m.predictors, c, d),
            linear_t: m.linear_features.as_deref().map(|w| transposed(w, c, d)),
            means: m.means.as_deref().map(cv),
            u: vec![0.0; d],
            fb: vec![0.0; f],
            quad: vec![0.0; c],
            lin: vec![0.0; c],
            pred32: vec![0.0; c],
            e: vec![0.0; c * s],
            pred: vec![0.0; c],
            x: vec![0.0; c * s],
        }
    }

    /// Energies and predictions of input u `[D]` into the scratch.
    fn energies(&mut self, u: &[f64]) {
        let ns = self.s;
        for (a, b) in self.u.iter_mut().zip(u) {
            *a = *b as f32;
        }
        self.fb.fill(0.0);
        gemv_rows_acc(&self.features, &self.u, &mut self.fb);
        self.fb.iter_mut().for_each(|v| *v *= *v);
        self.quad.fill(0.0);
        gemv_rows_acc(&self.weights_sq_t, &self.fb, &mut self.quad);
        self.pred32.fill(0.0);
        gemv_rows_acc(&self.predictors_t, &self.u, &mut self.pred32);
        self.lin.fill(0.0);
        if let Some(w) = &self.linear_t {
            gemv_rows_acc(w, &self.u, &mut self.lin);
        }
        for c in 0..self.c {
            self.pred[c] = self.pred32[c] as f64 + self.means.as_ref().map_or(0.0, |m| m[c]);
            let g = -0.5 * self.quad[c] as f64 + self.lin[c] as f64;
            for s in 0..ns {
                let k = c * ns + s;
                self.e[k] = self.priors[k] + self.exp_scales[k] * g;
            }
        }
    }

    /// log p(y | u) in nats (whitened units), as [`Mcgsm::reference_loglik`].
    pub fn loglik(&mut self, u: &[f64], y: f64) -> f64 {
        self.energies(u);
        let ns = self.s;
        for k in 0..self.e.len() {
            let r = y - self.pred[k / ns];
            self.x[k] =
                self.e[k] + 0.5 * self.scales[k] - HALF_LN_2PI - 0.5 * self.exp_scales[k] * r * r;
        }
        lse_in_place(&mut self.x) - lse_in_place(&mut self.e)
    }

    /// P(lo ≤ y < hi | u) in whitened units (±∞ allowed): the mixture's weights times the
    /// difference of each Gaussian's CDF, computed on the side of the tail that keeps it
    /// accurate. The discrete likelihood of quantised pixels (`tasks::discrete`).
    pub fn interval_probability(&mut self, u: &[f64], lo: f64, hi: f64) -> f64 {
        self.energies(u);
        let m = max_simd_f64(&self.e);
        let total = exp_shift_sum_f64(&mut self.e, m);
        let ns = self.s;
        let mut p = 0.0;
        for k in 0..self.e.len() {
            let (mu, prec_sqrt) = (self.pred[k / ns], (0.5 * self.scales[k]).exp());
            let (a, b) = ((lo - mu) * prec_sqrt, (hi - mu) * prec_sqrt);
            p += self.e[k] * normal_mass(a, b);
        }
        p / total
    }

    /// Draws y ~ p(y | u) with the same random draws as [`Mcgsm::sample`] (one uniform for the
    /// component and scale, one standard normal).
    pub fn sample(&mut self, u: &[f64], rng: &mut impl rand::RngExt) -> f64 {
        self.energies(u);
        // e ← exp(e − max), Σ: component k has probability e_k / Σ
        let m = max_simd_f64(&self.e);
        let total = exp_shift_sum_f64(&mut self.e, m);
        let mut t: f64 = rng.random_range(0.0..1.0) * total;
        let mut k = self.e.len() - 1;
        for (i, pi) in self.e.iter().enumerate() {
            t -= pi;
            if t < 0.0 {
                k = i;
                break;
            }
        }
        let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
        self.pred[k / self.s] + (-0.5 * self.scales[k]).exp() * z
    }
}

/// The mixture of one cell prepared for many CDF evaluations (the codec,
/// [`crate::codec`]): normalised weights, means and √precisions of the components whose weight
/// is at least [`CellCdf::MIN_WEIGHT`] (the rest change the CDF by less than 10⁻¹⁴ in all,
/// far below the coder's 2⁻²⁴ resolution).
#[derive(Default)]
pub struct CellCdf {
    w: Vec<f64>,
    mu: Vec<f64>,
    prec_sqrt: Vec<f64>,
}

impl CellCdf {
    pub const MIN_WEIGHT: f64 = 1e-16;

    /// P(ỹ < t | u) in whitened units: Σ_k w_k Φ((t − μ_k) √λ_k), with Φ from erfc so that
    /// both tails keep their absolute accuracy.
    pub fn cdf(&self, t: f64) -> f64 {
        let mut p = 0.0;
        for ((w, mu), ps) in self.w.iter().zip(&self.mu).zip(&self.prec_sqrt) {
            p += w * 0.5 * libm::erfc(-(t - mu) * ps / std::f64::consts::SQRT_2);
        }
        p
    }

    /// The mixture's mean Σ_k w_k μ_k (whitened units).
    pub fn mean(&self) -> f64 {
        self.w.iter().zip(&self.mu).map(|(w, mu)| w * mu).sum()
    }

    /// Components kept.
    pub fn len(&self) -> usize {
        self.w.len()
    }

    pub fn is_empty(&self) -> bool {
        self.w.is_empty()
    }
}

impl CellMixture {
    /// Prepares `out` for [`CellCdf::cdf`] of the cell with top features u `[D]`.
    pub fn prepare_cdf(&mut self, u: &[f64], out: &mut CellCdf) {
        self.energies(u);
        let m = max_simd_f64(&self.e);
        let total = exp_shift_sum_f64(&mut self.e, m);
        out.w.clear();
        out.mu.clear();
        out.prec_sqrt.clear();
        for k in 0..self.e.len() {
            let w = self.e[k] / total;
            if w >= CellCdf::MIN_WEIGHT {
                out.w.push(w);
                out.mu.push(self.pred[k / self.s]);
                out.prec_sqrt.push((0.5 * self.scales[k]).exp());
            }
        }
    }
}

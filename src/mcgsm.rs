//! Factorized mixture of conditional Gaussian scale mixtures, 1-D output (spec §4).
//!
//!   e_cs(u)   = η_cs − ½ e^{α_cs} Σ_n β_cn² (b_nᵀ u)² + e^{α_cs} w_cᵀ u
//!   expert_cs = ½ α_cs − ½ log 2π − ½ e^{α_cs} (y − A_c u − m_c)²
//!   log p(y|u) = logsumexp(e + expert) − logsumexp(e)
//!
//! Fast path: the per-row products (features `U b`, `q · (β²)ᵀ`, predictions `U Aᵀ`, linear
//! features `U wᵀ`) and their gradients are GEMMs over all rows; only the C·S mixture loop is
//! per row. Reference: [`Mcgsm::reference_loglik`], one row at a time in f64.

use crate::linalg::{gemm, view, view_mut};
use crate::real::Real;
use faer::reborrow::ReborrowMut;
use rand_distr::{Distribution, Normal};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

#[derive(Clone, Debug, PartialEq)]
pub struct Mcgsm<T> {
    /// input dimension D
    pub d: usize,
    pub c: usize,
    pub s: usize,
    pub f: usize,
    /// η `[C, S]`
    pub priors: Vec<T>,
    /// α `[C, S]`
    pub scales: Vec<T>,
    /// β `[C, F]`
    pub weights: Vec<T>,
    /// b `[D, F]` (one column per feature)
    pub features: Vec<T>,
    /// A `[C, D]`
    pub predictors: Vec<T>,
    /// w `[C, D]`, optional (off by default)
    pub linear_features: Option<Vec<T>>,
    /// m `[C]`, optional (off by default)
    pub means: Option<Vec<T>>,
}

/// Scratch for one chunk of rows (reused between calls).
#[derive(Default)]
pub struct McgsmWork<T> {
    fb: Vec<T>,
    q: Vec<T>,
    qq: Vec<T>,
    pred: Vec<T>,
    lin: Vec<T>,
    beta2: Vec<T>,
    d_qq: Vec<T>,
    d_pred: Vec<T>,
    d_lin: Vec<T>,
    mix: Vec<T>,
}

impl<T: Real> Mcgsm<T> {
    /// The original RIDE init: η = 0, α ~ U(−1,1), β ~ U[0.01,0.02], b ~ N(0, 0.01²),
    /// A ~ N(0, 0.1²); w and m (if enabled) zero.
    pub fn init(
        d: usize,
        c: usize,
        s: usize,
        f: usize,
        linear: bool,
        means: bool,
        rng: &mut impl rand::RngExt,
    ) -> Self {
        let n01 = Normal::new(0.0, 0.01).expect("valid normal");
        let n1 = Normal::new(0.0, 0.1).expect("valid normal");
        Self {
            d,
            c,
            s,
            f,
            priors: vec![T::zero(); c * s],
            scales: (0..c * s)
                .map(|_| T::of(rng.random_range(-1.0..1.0)))
                .collect(),
            weights: (0..c * f)
                .map(|_| T::of(rng.random_range(0.01..0.02)))
                .collect(),
            features: (0..d * f).map(|_| T::of(n01.sample(rng))).collect(),
            predictors: (0..c * d).map(|_| T::of(n1.sample(rng))).collect(),
            linear_features: linear.then(|| vec![T::zero(); c * d]),
            means: means.then(|| vec![T::zero(); c]),
        }
    }

    pub fn zeros_like(&self) -> Self {
        let z = |v: &Vec<T>| vec![T::zero(); v.len()];
        Self {
            d: self.d,
            c: self.c,
            s: self.s,
            f: self.f,
            priors: z(&self.priors),
            scales: z(&self.scales),
            weights: z(&self.weights),
            features: z(&self.features),
            predictors: z(&self.predictors),
            linear_features: self.linear_features.as_ref().map(z),
            means: self.means.as_ref().map(z),
        }
    }

    /// Named parameter tensors (name, shape, data) in a fixed order.
    pub fn tensors(&self) -> Vec<(&'static str, Vec<usize>, &Vec<T>)> {
        let (c, s, f, d) = (self.c, self.s, self.f, self.d);
        let mut v = vec![
            ("priors", vec![c, s], &self.priors),
            ("scales", vec![c, s], &self.scales),
            ("weights", vec![c, f], &self.weights),
            ("features", vec![d, f], &self.features),
            ("predictors", vec![c, d], &self.predictors),
        ];
        if let Some(w) = &self.linear_features {
            v.push(("linear_features", vec![c, d], w));
        }
        if let Some(m) = &self.means {
            v.push(("means", vec![c], m));
        }
        v
    }

    pub fn tensors_mut(&mut self) -> Vec<&mut Vec<T>> {
        let mut v = vec![
            &mut self.priors,
            &mut self.scales,
            &mut self.weights,
            &mut self.features,
            &mut self.predictors,
        ];
        if let Some(w) = &mut self.linear_features {
            v.push(w);
        }
        if let Some(m) = &mut self.means {
            v.push(m);
        }
        v
    }

    pub fn num_params(&self) -> usize {
        self.tensors().iter().map(|t| t.2.len()).sum()
    }

    /// Log-likelihoods (nats) of `y` `[rows]` given `u` `[rows, D]` written to `ll`; if `grad`
    /// is given, adds `Σ_r gl[r] · ∂ll_r/∂θ` into it and writes `Σ gl[r] ∂ll_r/∂u` into `du`.
    #[allow(clippy::too_many_arguments)]
    pub fn loglik(
        &self,
        u: &[T],
        y: &[T],
        ll: &mut [T],
        work: &mut McgsmWork<T>,
        grad: Option<(&[T], &mut Mcgsm<T>, &mut [T])>,
    ) {
        let (d, nc, ns, nf) = (self.d, self.c, self.s, self.f);
        let rows = y.len();
        let half = T::of(0.5);
        let resize = |v: &mut Vec<T>, n: usize| {
            v.clear();
            v.resize(n, T::zero());
        };
        resize(&mut work.fb, rows * nf);
        resize(&mut work.q, rows * nf);
        resize(&mut work.qq, rows * nc);
        resize(&mut work.pred, rows * nc);
        resize(&mut work.lin, rows * nc);
        resize(&mut work.mix, 2 * nc * ns);
        work.beta2.clear();
        work.beta2.extend(self.weights.iter().map(|b| *b * *b));
        let uv = view(u, rows, d, d);
        // features fb = U b; q = fb²; Q = q · (β²)ᵀ; predictions U Aᵀ (+ m); linear U wᵀ
        gemm(
            view_mut(&mut work.fb, rows, nf, nf),
            false,
            uv,
            view(&self.features, d, nf, nf),
        );
        work.q
            .iter_mut()
            .zip(&work.fb)
            .for_each(|(q, f)| *q = *f * *f);
        gemm(
            view_mut(&mut work.qq, rows, nc, nc),
            false,
            view(&work.q, rows, nf, nf),
            view(&work.beta2, nc, nf, nf).transpose(),
        );
        gemm(
            view_mut(&mut work.pred, rows, nc, nc),
            false,
            uv,
            view(&self.predictors, nc, d, d).transpose(),
        );
        if let Some(m) = &self.means {
            work.pred
                .chunks_exact_mut(nc)
                .for_each(|r| r.iter_mut().zip(m).for_each(|(p, m)| *p += *m));
        }
        if let Some(w) = &self.linear_features {
            gemm(
                view_mut(&mut work.lin, rows, nc, nc),
                false,
                uv,
                view(w, nc, d, d).transpose(),
            );
        }
        let ea: Vec<T> = self.scales.iter().map(|a| a.exp()).collect();
        let const_term: Vec<T> = self
            .scales
            .iter()
            .map(|a| half * *a - T::of(HALF_LN_2PI))
            .collect();
        let want_grad = grad.is_some();
        if want_grad {
            resize(&mut work.d_qq, rows * nc);
            resize(&mut work.d_pred, rows * nc);
            resize(&mut work.d_lin, rows * nc);
        }
        let (mut gl, mut g) = match grad {
            Some((gl, g, du)) => (Some(gl), Some((g, du))),
            None => (None, None),
        };
        let (e, x) = work.mix.split_at_mut(nc * ns);
        for r in 0..rows {
            let yr = y[r];
            let (mut emax, mut xmax) = (T::neg_infinity(), T::neg_infinity());
            for c in 0..nc {
                let a = -half * work.qq[r * nc + c] + work.lin[r * nc + c];
                let res = yr - work.pred[r * nc + c];
                let res2 = half * res * res;
                for s in 0..ns {
                    let k = c * ns + s;
                    let ek = self.priors[k] + ea[k] * a;
                    let xk = ek + const_term[k] - ea[k] * res2;
                    e[k] = ek;
                    x[k] = xk;
                    emax = emax.max(ek);
                    xmax = xmax.max(xk);
                }
            }
            let (mut se, mut sx) = (T::zero(), T::zero());
            for k in 0..nc * ns {
                e[k] = (e[k] - emax).exp();
                x[k] = (x[k] - xmax).exp();
                se += e[k];
                sx += x[k];
            }
            ll[r] = (xmax + sx.ln()) - (emax + se.ln());
            let (Some(glv), Some((g, _))) = (gl.as_mut(), g.as_mut()) else {
                continue;
            };
            // posteriors: δe = gl (r − p), δx = gl r
            let w = glv[r];
            let (ie, ix) = (w / se, w / sx);
            for c in 0..nc {
                let a = -half * work.qq[r * nc + c] + work.lin[r * nc + c];
                let res = yr - work.pred[r * nc + c];
                let res2 = half * res * res;
                let (mut dq, mut dl, mut dp) = (T::zero(), T::zero(), T::zero());
                for s in 0..ns {
                    let k = c * ns + s;
                    let dx = x[k] * ix;
                    let de = dx - e[k] * ie;
                    g.priors[k] += de;
                    g.scales[k] += de * ea[k] * a + dx * (half - ea[k] * res2);
                    dq += de * ea[k];
                    dl += de * ea[k];
                    dp += dx * ea[k];
                }
                work.d_qq[r * nc + c] = -half * dq;
                work.d_lin[r * nc + c] = dl;
                work.d_pred[r * nc + c] = dp * res;
            }
        }
        let Some((g, du)) = g else { return };
        // Back through the GEMMs.
        let dqq = view(&work.d_qq, rows, nc, nc);
        // dβ² = dQᵀ q; dβ = 2β ⊙ dβ²
        let mut db2 = vec![T::zero(); nc * nf];
        gemm(
            view_mut(&mut db2, nc, nf, nf),
            false,
            dqq.transpose(),
            view(&work.q, rows, nf, nf),
        );
        g.weights
            .iter_mut()
            .zip(db2.iter().zip(&self.weights))
            .for_each(|(gw, (d2, b))| *gw += T::of(2.0) * *b * *d2);
        // dq = dQ β²; dfb = 2 fb ⊙ dq (reuse q's buffer)
        gemm(
            view_mut(&mut work.q, rows, nf, nf),
            false,
            dqq,
            view(&work.beta2, nc, nf, nf),
        );
        work.q
            .iter_mut()
            .zip(&work.fb)
            .for_each(|(dq, fb)| *dq = T::of(2.0) * *fb * *dq);
        let dfb = view(&work.q, rows, nf, nf);
        gemm(
            view_mut(&mut g.features, d, nf, nf),
            true,
            uv.transpose(),
            dfb,
        );
        let dpred = view(&work.d_pred, rows, nc, nc);
        gemm(
            view_mut(&mut g.predictors, nc, d, d),
            true,
            dpred.transpose(),
            uv,
        );
        let mut duv = view_mut(du, rows, d, d);
        gemm(
            duv.rb_mut(),
            false,
            dfb,
            view(&self.features, d, nf, nf).transpose(),
        );
        gemm(duv.rb_mut(), true, dpred, view(&self.predictors, nc, d, d));
        if let Some(gm) = &mut g.means {
            for row in work.d_pred.chunks_exact(nc) {
                gm.iter_mut().zip(row).for_each(|(a, b)| *a += *b);
            }
        }
        if let (Some(w), Some(gw)) = (&self.linear_features, &mut g.linear_features) {
            let dlin = view(&work.d_lin, rows, nc, nc);
            gemm(view_mut(gw, nc, d, d), true, dlin.transpose(), uv);
            gemm(duv.rb_mut(), true, dlin, view(w, nc, d, d));
        }
    }

    /// Gate energies e `[C·S]` for one input (f64), used by sampling and the reference.
    fn energies(&self, u: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (d, nc, ns, nf) = (self.d, self.c, self.s, self.f);
        let fb: Vec<f64> = (0..nf)
            .map(|n| {
                (0..d)
                    .map(|k| self.features[k * nf + n].as_f64() * u[k])
                    .sum()
            })
            .collect();
        let mut e = vec![0.0; nc * ns];
        let mut pred = vec![0.0; nc];
        for c in 0..nc {
            let quad: f64 = (0..nf)
                .map(|n| (self.weights[c * nf + n].as_f64() * fb[n]).powi(2))
                .sum();
            let lin: f64 = match &self.linear_features {
                Some(w) => (0..d).map(|k| w[c * d + k].as_f64() * u[k]).sum(),
                None => 0.0,
            };
            pred[c] = (0..d)
                .map(|k| self.predictors[c * d + k].as_f64() * u[k])
                .sum::<f64>()
                + self.means.as_ref().map_or(0.0, |m| m[c].as_f64());
            for s in 0..ns {
                let k = c * ns + s;
                let ea = self.scales[k].as_f64().exp();
                e[k] = self.priors[k].as_f64() + ea * (-0.5 * quad + lin);
            }
        }
        (e, pred)
    }

    /// Plain one-row reference of log p(y|u) in f64.
    pub fn reference_loglik(&self, u: &[f64], y: f64) -> f64 {
        let (e, pred) = self.energies(u);
        let ns = self.s;
        let x: Vec<f64> = (0..e.len())
            .map(|k| {
                let a = self.scales[k].as_f64();
                e[k] + 0.5 * a - HALF_LN_2PI - 0.5 * a.exp() * (y - pred[k / ns]).powi(2)
            })
            .collect();
        logsumexp(&x) - logsumexp(&e)
    }

    /// Draws y ~ p(y|u): (c,s) from softmax(e), then A_c u + m_c + e^{−α_cs/2} z.
    pub fn sample(&self, u: &[f64], rng: &mut impl rand::RngExt) -> f64 {
        let (e, pred) = self.energies(u);
        let lse = logsumexp(&e);
        let mut t: f64 = rng.random_range(0.0..1.0);
        let mut k = e.len() - 1;
        for (i, ei) in e.iter().enumerate() {
            t -= (ei - lse).exp();
            if t < 0.0f64 {
                k = i;
                break;
            }
        }
        let z: f64 = rand_distr::StandardNormal.sample(rng);
        pred[k / self.s] + (-0.5 * self.scales[k].as_f64()).exp() * z
    }
}

pub fn logsumexp(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

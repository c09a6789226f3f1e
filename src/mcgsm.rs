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

/// Scratch for one block of rows (reused between calls).
#[derive(Default)]
pub struct McgsmWork<T> {
    fb: Vec<T>,
    q: Vec<T>,
    a: Vec<T>,
    r2: Vec<T>,
    pred: Vec<T>,
    e: Vec<T>,
    x: Vec<T>,
    beta2: Vec<T>,
    gc: Vec<T>,
    gc2: Vec<T>,
    gcs: Vec<T>,
}

fn resize<T: Real>(v: &mut Vec<T>, n: usize) {
    v.clear();
    v.resize(n, T::zero());
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

    /// The same MCGSM in another float type.
    pub fn cast<U: Real>(&self) -> Mcgsm<U> {
        let cv = |v: &Vec<T>| v.iter().map(|x| U::of(x.as_f64())).collect::<Vec<U>>();
        Mcgsm {
            d: self.d,
            c: self.c,
            s: self.s,
            f: self.f,
            priors: cv(&self.priors),
            scales: cv(&self.scales),
            weights: cv(&self.weights),
            features: cv(&self.features),
            predictors: cv(&self.predictors),
            linear_features: self.linear_features.as_ref().map(cv),
            means: self.means.as_ref().map(cv),
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
    ///
    /// The dense products are GEMMs over all rows: with a_rc = −½ Σ_n β_cn² (b_nᵀu_r)² plus
    /// w_cᵀu_r and r2_rc = ½ (y_r − A_c u_r − m_c)², the energies E_r,cs = η_cs + e^{α_cs} a_rc
    /// and X = E + (½α − ½ log 2π) − e^{α} r2 are broadcasts over the scales, and their
    /// gradients segmented reductions, fused with the row-wise log-sum-exp.
    pub fn loglik(
        &self,
        u: &[T],
        y: &[T],
        ll: &mut [T],
        work: &mut McgsmWork<T>,
        grad: Option<(&[T], &mut Mcgsm<T>, &mut [T])>,
    ) {
        let (d, nc, ns, nf) = (self.d, self.c, self.s, self.f);
        let ncs = nc * ns;
        let rows = y.len();
        let half = T::of(0.5);
        let w = work;
        for (v, n) in [
            (&mut w.fb, rows * nf),
            (&mut w.q, rows * nf),
            (&mut w.a, rows * nc),
            (&mut w.r2, rows * nc),
        ] {
            resize(v, n);
        }
        for (v, n) in [
            (&mut w.pred, rows * nc),
            (&mut w.e, rows * ncs),
            (&mut w.x, rows * ncs),
        ] {
            resize(v, n);
        }
        w.beta2.clear();
        w.beta2.extend(self.weights.iter().map(|b| *b * *b));
        let ea: Vec<T> = self.scales.iter().map(|a| a.exp()).collect();
        let uv = view(u, rows, d, d);
        // features fb = U b; q = fb²; a = −½ q·(β²)ᵀ (+ U wᵀ); predictions U Aᵀ (+ m)
        gemm(
            view_mut(&mut w.fb, rows, nf, nf),
            false,
            uv,
            view(&self.features, d, nf, nf),
        );
        w.q.iter_mut().zip(&w.fb).for_each(|(q, f)| *q = *f * *f);
        gemm(
            view_mut(&mut w.a, rows, nc, nc),
            false,
            view(&w.q, rows, nf, nf),
            view(&w.beta2, nc, nf, nf).transpose(),
        );
        w.a.iter_mut().for_each(|v| *v = -half * *v);
        if let Some(wl) = &self.linear_features {
            gemm(
                view_mut(&mut w.a, rows, nc, nc),
                true,
                uv,
                view(wl, nc, d, d).transpose(),
            );
        }
        gemm(
            view_mut(&mut w.pred, rows, nc, nc),
            false,
            uv,
            view(&self.predictors, nc, d, d).transpose(),
        );
        if let Some(m) = &self.means {
            w.pred
                .chunks_exact_mut(nc)
                .for_each(|r| r.iter_mut().zip(m).for_each(|(p, m)| *p += *m));
        }
        for (r, (r2, p)) in
            w.r2.chunks_exact_mut(nc)
                .zip(w.pred.chunks_exact(nc))
                .enumerate()
        {
            r2.iter_mut()
                .zip(p)
                .for_each(|(r2, p)| *r2 = half * (y[r] - *p) * (y[r] - *p));
        }
        // energies, broadcast over each component's scales (no expansion GEMM, no products
        // with structural zeros): e_r,cs = η_cs + e^{α_cs} a_rc,
        // x_r,cs = e_r,cs + ½α_cs − ½ log 2π − e^{α_cs} r2_rc; then the row-wise log-sum-exps
        let cst: Vec<T> = self
            .scales
            .iter()
            .map(|a| half * *a - T::of(HALF_LN_2PI))
            .collect();
        let mut sums = vec![(T::zero(), T::zero()); rows];
        for (r, (er, xr)) in
            w.e.chunks_exact_mut(ncs)
                .zip(w.x.chunks_exact_mut(ncs))
                .enumerate()
        {
            let (ar, r2r) = (&w.a[r * nc..][..nc], &w.r2[r * nc..][..nc]);
            for c in 0..nc {
                for k in c * ns..(c + 1) * ns {
                    er[k] = self.priors[k] + ea[k] * ar[c];
                    xr[k] = er[k] + cst[k] - ea[k] * r2r[c];
                }
            }
            let (emax, xmax) = (T::max_of(er), T::max_of(xr));
            let (se, sx) = (T::exp_shift_sum(er, emax), T::exp_shift_sum(xr, xmax));
            ll[r] = (xmax + sx.ln()) - (emax + se.ln());
            sums[r] = (se, sx);
        }
        let Some((gl, g, du)) = grad else { return };
        // posteriors δX = gl·softmax(X), δE = δX − gl·softmax(E); then, segmented over each
        // component's scales: dη_cs += δE, dα_cs += ½ δX + e^{α_cs} (δE a_c − δX r2_c),
        // d a_c = Σ_s δE_cs e^{α_cs}, d pred_c = Σ_s δX_cs e^{α_cs} (y − pred_c)
        resize(&mut w.gc, rows * nc);
        resize(&mut w.gc2, rows * nc);
        resize(&mut w.gcs, ncs);
        for (r, (er, xr)) in
            w.e.chunks_exact_mut(ncs)
                .zip(w.x.chunks_exact_mut(ncs))
                .enumerate()
        {
            let (ie, ix) = (gl[r] / sums[r].0, gl[r] / sums[r].1);
            let (ar, r2r) = (&w.a[r * nc..][..nc], &w.r2[r * nc..][..nc]);
            let (pr, da, dp) = (
                &w.pred[r * nc..][..nc],
                &mut w.gc[r * nc..][..nc],
                &mut w.gc2[r * nc..][..nc],
            );
            for c in 0..nc {
                let (mut sa, mut sp) = (T::zero(), T::zero());
                for k in c * ns..(c + 1) * ns {
                    let dx = xr[k] * ix;
                    let de = dx - er[k] * ie;
                    g.priors[k] += de;
                    g.scales[k] += half * dx;
                    w.gcs[k] += de * ar[c] - dx * r2r[c];
                    sa += de * ea[k];
                    sp += dx * ea[k];
                }
                da[c] = sa;
                dp[c] = sp * (y[r] - pr[c]);
            }
        }
        for (k, gs) in g.scales.iter_mut().enumerate() {
            *gs += ea[k] * w.gcs[k];
        }
        let da = view(&w.gc, rows, nc, nc);
        let dpred = view(&w.gc2, rows, nc, nc);
        // a = −½ q·(β²)ᵀ: dβ² = −½ daᵀ q, dβ = 2β ⊙ dβ²; dq = −½ da·β²; dfb = 2 fb ⊙ dq
        let mut db2 = vec![T::zero(); nc * nf];
        gemm(
            view_mut(&mut db2, nc, nf, nf),
            false,
            da.transpose(),
            view(&w.q, rows, nf, nf),
        );
        g.weights
            .iter_mut()
            .zip(db2.iter().zip(&self.weights))
            .for_each(|(gw, (d2, b))| *gw -= *b * *d2);
        gemm(
            view_mut(&mut w.q, rows, nf, nf),
            false,
            da,
            view(&w.beta2, nc, nf, nf),
        );
        w.q.iter_mut()
            .zip(&w.fb)
            .for_each(|(dq, fb)| *dq = -*fb * *dq);
        let dfb = view(&w.q, rows, nf, nf);
        gemm(
            view_mut(&mut g.features, d, nf, nf),
            true,
            uv.transpose(),
            dfb,
        );
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
            for row in w.gc2.chunks_exact(nc) {
                gm.iter_mut().zip(row).for_each(|(a, b)| *a += *b);
            }
        }
        if let (Some(wl), Some(gw)) = (&self.linear_features, &mut g.linear_features) {
            gemm(view_mut(gw, nc, d, d), true, da.transpose(), uv);
            gemm(duv.rb_mut(), true, da, view(wl, nc, d, d));
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

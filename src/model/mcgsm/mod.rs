//! Factorized mixture of conditional Gaussian scale mixtures, 1-D output (docs/MODEL.md §4).
//!
//!   e_cs(u)   = η_cs − ½ e^{α_cs} Σ_n β_cn² (b_nᵀ u)² + e^{α_cs} w_cᵀ u
//!   expert_cs = ½ α_cs − ½ log 2π − ½ e^{α_cs} (y − A_c u − m_c)²
//!   log p(y|u) = logsumexp(e + expert) − logsumexp(e)
//!
//! Fast path ([`Mcgsm::forward`], [`Mcgsm::backward`]): the features, predictions and linear
//! features of all rows are one GEMM `U·[b | Aᵀ | wᵀ]`, their gradients two (`Uᵀ·dz`,
//! `dz·Wᵀ`); `q·(β²)ᵀ` and its two gradients are the only other dense products. The C·S
//! mixture is a broadcast over each component's scales, row by row, with no products of
//! structural zeros. Reference: [`Mcgsm::reference_loglik`], one row at a time in f64.
//! Per cell (sampling, inpainting): [`CellMixture`], the reference's formulas without allocation.

use crate::numerics::real::Real;
use rand_distr::{Distribution, Normal};

mod cell;
mod kernels;

pub use cell::{CellCdf, CellMixture};
pub use kernels::McgsmWork;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The sizes D, C, S, F are private: set by [`Mcgsm::init`] or [`Mcgsm::from_parts`] (which
/// checks every tensor's length against them) and read through [`Mcgsm::d`] etc.
#[derive(Clone, Debug, PartialEq)]
pub struct Mcgsm<T> {
    /// input dimension D
    d: usize,
    /// components C, scales S, features F
    c: usize,
    s: usize,
    f: usize,
    /// η `[C, S]`
    priors: Vec<T>,
    /// α `[C, S]`
    scales: Vec<T>,
    /// β `[C, F]`
    weights: Vec<T>,
    /// b `[D, F]` (one column per feature)
    features: Vec<T>,
    /// A `[C, D]`
    predictors: Vec<T>,
    /// w `[C, D]`, optional (off by default)
    linear_features: Option<Vec<T>>,
    /// m `[C]`, optional (off by default)
    means: Option<Vec<T>>,
}

/// Names and shapes of an MCGSM's tensors for sizes (D, C, S, F), in order: priors, scales,
/// weights, features, predictors, then the optional linear features and means. The one list the
/// model-file writer ([`Mcgsm::tensors`]) and reader ([`McgsmParts::read`]) use.
pub fn tensor_shapes(
    (d, c, s, f): (usize, usize, usize, usize),
    linear_features: bool,
    means: bool,
) -> Vec<(&'static str, Vec<usize>)> {
    let mut v = vec![
        ("priors", vec![c, s]),
        ("scales", vec![c, s]),
        ("weights", vec![c, f]),
        ("features", vec![d, f]),
        ("predictors", vec![c, d]),
    ];
    if linear_features {
        v.push(("linear_features", vec![c, d]));
    }
    if means {
        v.push(("means", vec![c]));
    }
    v
}

/// The tensors of an MCGSM, for [`Mcgsm::from_parts`].
pub struct McgsmParts<T> {
    pub priors: Vec<T>,
    pub scales: Vec<T>,
    pub weights: Vec<T>,
    pub features: Vec<T>,
    pub predictors: Vec<T>,
    pub linear_features: Option<Vec<T>>,
    pub means: Option<Vec<T>>,
}

impl<T> McgsmParts<T> {
    /// Reads every tensor of [`tensor_shapes`] through `get(name, shape)`.
    pub fn read(
        sizes: (usize, usize, usize, usize),
        linear_features: bool,
        means: bool,
        mut get: impl FnMut(&str, &[usize]) -> anyhow::Result<Vec<T>>,
    ) -> anyhow::Result<Self> {
        let mut vals = tensor_shapes(sizes, linear_features, means)
            .into_iter()
            .map(|(name, shape)| get(name, &shape))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter();
        let mut next = || vals.next().unwrap_or_default();
        Ok(Self {
            priors: next(),
            scales: next(),
            weights: next(),
            features: next(),
            predictors: next(),
            linear_features: linear_features.then(&mut next),
            means: means.then(&mut next),
        })
    }
}

impl<T> Mcgsm<T> {
    /// Input dimension D.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Components C.
    pub fn c(&self) -> usize {
        self.c
    }

    /// Scales per component S.
    pub fn s(&self) -> usize {
        self.s
    }

    /// Features F.
    pub fn f(&self) -> usize {
        self.f
    }

    /// η `[C, S]`.
    pub fn priors(&self) -> &[T] {
        &self.priors
    }
    /// α `[C, S]`.
    pub fn scales(&self) -> &[T] {
        &self.scales
    }
    /// β `[C, F]`.
    pub fn weights(&self) -> &[T] {
        &self.weights
    }
    /// b `[D, F]`.
    pub fn features(&self) -> &[T] {
        &self.features
    }
    /// A `[C, D]`.
    pub fn predictors(&self) -> &[T] {
        &self.predictors
    }
    /// w `[C, D]`, if the model has linear features.
    pub fn linear_features(&self) -> Option<&[T]> {
        self.linear_features.as_deref()
    }
    /// m `[C]`, if the model has means.
    pub fn means(&self) -> Option<&[T]> {
        self.means.as_deref()
    }

    // Writes go through slices: a tensor's values change, never its length.
    pub fn priors_mut(&mut self) -> &mut [T] {
        &mut self.priors
    }
    pub fn scales_mut(&mut self) -> &mut [T] {
        &mut self.scales
    }
    pub fn weights_mut(&mut self) -> &mut [T] {
        &mut self.weights
    }
    pub fn features_mut(&mut self) -> &mut [T] {
        &mut self.features
    }
    pub fn predictors_mut(&mut self) -> &mut [T] {
        &mut self.predictors
    }
    pub fn linear_features_mut(&mut self) -> Option<&mut [T]> {
        self.linear_features.as_deref_mut()
    }
    pub fn means_mut(&mut self) -> Option<&mut [T]> {
        self.means.as_deref_mut()
    }
}

impl<T: Real> Mcgsm<T> {
    /// An MCGSM of sizes (D, C, S, F) from its tensors; every tensor's length must match.
    pub fn from_parts(
        (d, c, s, f): (usize, usize, usize, usize),
        p: McgsmParts<T>,
    ) -> anyhow::Result<Self> {
        let check = |name: &str, v: &[T], n: usize| {
            if v.len() != n {
                anyhow::bail!("mcgsm.{name} has {} values, expected {n}", v.len());
            }
            Ok(())
        };
        check("priors", &p.priors, c * s)?;
        check("scales", &p.scales, c * s)?;
        check("weights", &p.weights, c * f)?;
        check("features", &p.features, d * f)?;
        check("predictors", &p.predictors, c * d)?;
        if let Some(w) = &p.linear_features {
            check("linear_features", w, c * d)?;
        }
        if let Some(m) = &p.means {
            check("means", m, c)?;
        }
        Ok(Self {
            d,
            c,
            s,
            f,
            priors: p.priors,
            scales: p.scales,
            weights: p.weights,
            features: p.features,
            predictors: p.predictors,
            linear_features: p.linear_features,
            means: p.means,
        })
    }

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
    /// Every tensor with its name and shape, in [`tensor_shapes`] order.
    pub fn tensors(&self) -> Vec<(&'static str, Vec<usize>, &[T])> {
        let data = [
            Some(&self.priors),
            Some(&self.scales),
            Some(&self.weights),
            Some(&self.features),
            Some(&self.predictors),
            self.linear_features.as_ref(),
            self.means.as_ref(),
        ];
        let shapes = tensor_shapes(
            (self.d, self.c, self.s, self.f),
            self.linear_features.is_some(),
            self.means.is_some(),
        );
        shapes
            .into_iter()
            .zip(data.into_iter().flatten())
            .map(|((name, shape), v)| (name, shape, v.as_slice()))
            .collect()
    }

    /// Every tensor's values, in [`tensor_shapes`] order (slices: lengths cannot change).
    pub fn tensors_mut(&mut self) -> Vec<&mut [T]> {
        let mut v: Vec<&mut [T]> = vec![
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

    /// Columns of the input GEMM: F features, C predictions, C linear features (if any).
    fn z_cols(&self) -> usize {
        self.f + self.c * (1 + self.linear_features.is_some() as usize)
    }

    /// Log-likelihoods (nats) of `y` `[rows]` given `u` `[rows, D]` written to `ll`; if `grad`
    /// is given, adds `Σ_r gl[r] · ∂ll_r/∂θ` into it and writes `Σ gl[r] ∂ll_r/∂u` into `du`.
    pub fn loglik(
        &self,
        u: &[T],
        y: &[T],
        ll: &mut [T],
        work: &mut McgsmWork<T>,
        grad: Option<(&[T], &mut Mcgsm<T>, &mut [T])>,
    ) {
        self.forward(u, y, ll, work, grad.is_some());
        if let Some((gl, g, du)) = grad {
            self.backward(u, y, gl, work, g, Some(du));
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

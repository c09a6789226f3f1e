//! Conditional whitening (docs/MODEL.md §2): part of the model, fitted once and then frozen.
//!
//! x̃ = P_in (x − μ_x),  ỹ = P_out (y − μ_y − B x̃), with P_in = C_xx^{-1/2}, B = C_yx P_in,
//! P_out = (C_yy − B Bᵀ)^{-1/2} (1-D output, so P_out and B are a scalar and a row).

use crate::numerics::linalg::sym_inv_sqrt;
use anyhow::{bail, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Whitening {
    /// Input dimension N: private, set by [`Whitening::fit`] or [`Whitening::read`], read
    /// through [`Whitening::n`].
    n: usize,
    mean_in: Vec<f64>,
    mean_out: f64,
    /// P_in `[N, N]` row-major.
    white_in: Vec<f64>,
    /// P_in⁻¹ `[N, N]`, for inverting the transform.
    white_in_inv: Vec<f64>,
    /// B `[N]`, acting on the whitened inputs.
    predictor: Vec<f64>,
    white_out: f64,
}

/// Names and shapes of the whitening's tensors for N inputs, in order: the one list the
/// model-file writer ([`Whitening::tensors`]) and reader ([`Whitening::read`]) use.
pub fn tensor_shapes(n: usize) -> [(&'static str, Vec<usize>); 6] {
    [
        ("mean_in", vec![n]),
        ("mean_out", vec![1]),
        ("white_in", vec![n, n]),
        ("white_in_inv", vec![n, n]),
        ("predictor", vec![n]),
        ("white_out", vec![1]),
    ]
}

impl Whitening {
    /// Input dimension N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Mean of the inputs `[N]`.
    pub fn mean_in(&self) -> &[f64] {
        &self.mean_in
    }
    /// Mean of the output.
    pub fn mean_out(&self) -> f64 {
        self.mean_out
    }
    /// P_in `[N, N]` row-major.
    pub fn white_in(&self) -> &[f64] {
        &self.white_in
    }
    /// P_in⁻¹ `[N, N]` row-major.
    pub fn white_in_inv(&self) -> &[f64] {
        &self.white_in_inv
    }
    /// B `[N]`, acting on the whitened inputs.
    pub fn predictor(&self) -> &[f64] {
        &self.predictor
    }
    /// Scale of the output residual.
    pub fn white_out(&self) -> f64 {
        self.white_out
    }
    /// P_in's values, writable (a slice: its size cannot change).
    pub fn white_in_mut(&mut self) -> &mut [f64] {
        &mut self.white_in
    }
    /// The output's scale, writable (a scalar: no size to keep consistent).
    pub fn white_out_mut(&mut self) -> &mut f64 {
        &mut self.white_out
    }

    /// Every tensor with its name and shape, in [`tensor_shapes`] order.
    pub fn tensors(&self) -> Vec<(&'static str, Vec<usize>, Vec<f64>)> {
        let data = [
            self.mean_in.clone(),
            vec![self.mean_out],
            self.white_in.clone(),
            self.white_in_inv.clone(),
            self.predictor.clone(),
            vec![self.white_out],
        ];
        tensor_shapes(self.n)
            .into_iter()
            .zip(data)
            .map(|((name, shape), v)| (name, shape, v))
            .collect()
    }

    /// Reads every tensor of [`tensor_shapes`] through `get(name, shape)`.
    pub fn read(n: usize, mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f64>>) -> Result<Self> {
        let mut vals = tensor_shapes(n)
            .into_iter()
            .map(|(name, shape)| get(name, &shape))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut next = || vals.next().unwrap_or_default();
        let scalar = |v: Vec<f64>| v.first().copied().unwrap_or_default();
        Ok(Self {
            n,
            mean_in: next(),
            mean_out: scalar(next()),
            white_in: next(),
            white_in_inv: next(),
            predictor: next(),
            white_out: scalar(next()),
        })
    }

    /// Fits on `m` samples: x `[m, N]`, y `[m]`, 1/m covariance.
    pub fn fit(x: &[f64], y: &[f64], n: usize) -> Result<Self> {
        let m = y.len();
        if m < 2 || x.len() != m * n {
            bail!("whitening needs ≥ 2 samples with {n} inputs each (got {m})");
        }
        let d = n + 1;
        let mut mean = vec![0.0; d];
        for s in 0..m {
            for k in 0..n {
                mean[k] += x[s * n + k];
            }
            mean[n] += y[s];
        }
        mean.iter_mut().for_each(|v| *v /= m as f64);
        let mut cov = vec![0.0; d * d];
        let mut v = vec![0.0; d];
        for s in 0..m {
            for k in 0..n {
                v[k] = x[s * n + k] - mean[k];
            }
            v[n] = y[s] - mean[n];
            for i in 0..d {
                for j in i..d {
                    cov[i * d + j] += v[i] * v[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                cov[i * d + j] /= m as f64;
                cov[j * d + i] = cov[i * d + j];
            }
        }
        let cxx: Vec<f64> = (0..n * n).map(|k| cov[(k / n) * d + k % n]).collect();
        let white_in = sym_inv_sqrt(&cxx, n, 1e-12)?;
        // P_in⁻¹ = C_xx^{1/2} = C_xx · P_in
        let white_in_inv = crate::numerics::linalg::matmul_f64(&cxx, &white_in, n, n, n);
        let cyx: Vec<f64> = (0..n).map(|k| cov[n * d + k]).collect();
        let predictor: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|k| cyx[k] * white_in[k * n + j]).sum())
            .collect();
        let resid = cov[n * d + n] - predictor.iter().map(|b| b * b).sum::<f64>();
        if resid.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            bail!("output is a deterministic function of its neighbourhood (residual variance {resid})");
        }
        Ok(Self {
            n,
            mean_in: mean[..n].to_vec(),
            mean_out: mean[n],
            white_in,
            white_in_inv,
            predictor,
            white_out: 1.0 / resid.sqrt(),
        })
    }

    /// Checks a whitening read from outside: lengths for `n` inputs, finite values, a non-zero
    /// output scale.
    pub fn validate(&self, n: usize) -> Result<()> {
        if self.n != n
            || self.mean_in.len() != n
            || self.white_in.len() != n * n
            || self.white_in_inv.len() != n * n
            || self.predictor.len() != n
        {
            bail!("whitening sizes do not match the {n} neighbourhood inputs");
        }
        for (name, _, v) in self.tensors() {
            if let Some(k) = v.iter().position(|x| !x.is_finite()) {
                bail!("whitening.{name}[{k}] is {} (not finite)", v[k]);
            }
        }
        if self.white_out == 0.0 {
            bail!("whitening.white_out is 0 (the density would be degenerate)");
        }
        Ok(())
    }

    /// log|det P_out|, added to every pixel's log-likelihood.
    pub fn log_jacobian(&self) -> f64 {
        self.white_out.abs().ln()
    }

    /// Whitens one input vector into `out`.
    #[inline]
    pub fn whiten_input(&self, x: &[f64], out: &mut [f64]) {
        let n = self.n;
        for (o, row) in out.iter_mut().zip(self.white_in.chunks_exact(n)) {
            *o = row
                .iter()
                .zip(x.iter().zip(&self.mean_in))
                .map(|(p, (x, m))| p * (x - m))
                .sum();
        }
    }

    /// ỹ given the whitened input x̃.
    #[inline]
    pub fn whiten_output(&self, xw: &[f64], y: f64) -> f64 {
        let pred: f64 = self.predictor.iter().zip(xw).map(|(b, x)| b * x).sum();
        self.white_out * (y - self.mean_out - pred)
    }

    /// Inverse of [`Self::whiten_output`]: y from ỹ and x̃.
    #[inline]
    pub fn unwhiten_output(&self, xw: &[f64], yw: f64) -> f64 {
        let pred: f64 = self.predictor.iter().zip(xw).map(|(b, x)| b * x).sum();
        yw / self.white_out + self.mean_out + pred
    }

    /// Whitens a batch: x `[m, N]`, y `[m]` → (x̃ `[m, N]`, ỹ `[m]`).
    pub fn apply(&self, x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.n;
        let mut xw = vec![0.0; x.len()];
        let mut yw = vec![0.0; y.len()];
        for s in 0..y.len() {
            self.whiten_input(&x[s * n..(s + 1) * n], &mut xw[s * n..(s + 1) * n]);
            yw[s] = self.whiten_output(&xw[s * n..(s + 1) * n], y[s]);
        }
        (xw, yw)
    }
}

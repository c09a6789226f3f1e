//! First-order optimisers over a model's flat list of parameter tensors (docs/MODEL.md §5): SGD with
//! momentum as the original (v ← μv − g; θ ← θ + lr·v) and Adam. Velocities and moments are
//! part of the optimiser state (reset per curriculum stage by constructing a new optimiser).

use crate::numerics::real::Real;
use crate::train::config::OptimizerKind;
use anyhow::{bail, Context, Result};

/// SGD with momentum: v ← μ v − g, θ ← θ + lr · v.
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    pub lr: f64,
    pub momentum: f64,
    pub velocity: Vec<Vec<T>>,
}

impl<T: Real> Sgd<T> {
    pub fn new(lr: f64, momentum: f64) -> Self {
        Self {
            lr,
            momentum,
            velocity: vec![],
        }
    }

    pub fn step(&mut self, params: Vec<&mut [T]>, grads: &[&[T]]) {
        if self.velocity.len() != params.len() {
            self.velocity = grads.iter().map(|g| vec![T::zero(); g.len()]).collect();
        }
        let (mu, lr) = (T::of(self.momentum), T::of(self.lr));
        for ((p, g), v) in params.into_iter().zip(grads).zip(&mut self.velocity) {
            for ((p, g), v) in p.iter_mut().zip(g.iter()).zip(v.iter_mut()) {
                *v = mu * *v - *g;
                *p += lr * *v;
            }
        }
    }
}

/// Adam (Kingma & Ba) with bias correction.
#[derive(Clone, Debug)]
pub struct Adam<T> {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub t: u64,
    pub m: Vec<Vec<T>>,
    pub v: Vec<Vec<T>>,
}

impl<T: Real> Adam<T> {
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![],
            v: vec![],
        }
    }

    pub fn step(&mut self, params: Vec<&mut [T]>, grads: &[&[T]]) {
        if self.m.len() != params.len() {
            self.m = grads.iter().map(|g| vec![T::zero(); g.len()]).collect();
            self.v = self.m.clone();
        }
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let step = self.lr * (1.0 - b2.powi(self.t as i32)).sqrt() / (1.0 - b1.powi(self.t as i32));
        let (b1t, b2t, step, eps) = (T::of(b1), T::of(b2), T::of(step), T::of(self.eps));
        let one = T::one();
        for (((p, g), m), v) in params
            .into_iter()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            for (((p, g), m), v) in p
                .iter_mut()
                .zip(g.iter())
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                *m = b1t * *m + (one - b1t) * *g;
                *v = b2t * *v + (one - b2t) * *g * *g;
                *p -= step * *m / (v.sqrt() + eps);
            }
        }
    }
}

/// The optimiser of a stage, as the config names it, with its state for checkpoints.
pub(crate) enum Optimizer {
    Sgd(Sgd<f32>),
    Adam(Adam<f32>),
}

impl Optimizer {
    pub(crate) fn new(kind: OptimizerKind, lr: f64, momentum: f64) -> Self {
        match kind {
            OptimizerKind::Sgd => Self::Sgd(Sgd::new(lr, momentum)),
            OptimizerKind::Adam => Self::Adam(Adam::new(lr)),
        }
    }
    pub(crate) fn step(&mut self, params: Vec<&mut [f32]>, grads: &[&[f32]]) {
        match self {
            Self::Sgd(o) => o.step(params, grads),
            Self::Adam(o) => o.step(params, grads),
        }
    }
    /// State tensors for checkpoints.
    pub(crate) fn state(&self) -> (Vec<(String, Vec<f32>)>, u64) {
        let named = |p: &str, v: &Vec<Vec<f32>>| {
            v.iter()
                .enumerate()
                .map(|(i, t)| (format!("{p}{i:04}"), t.clone()))
                .collect::<Vec<_>>()
        };
        match self {
            Self::Sgd(o) => (named("opt.v.", &o.velocity), 0),
            Self::Adam(o) => {
                let mut v = named("opt.m.", &o.m);
                v.extend(named("opt.v.", &o.v));
                (v, o.t)
            }
        }
    }
    /// Restores the state saved by [`Self::state`] for parameters of lengths `lens`: every
    /// tensor must be present with its parameter's length and finite values, and nothing else.
    pub(crate) fn restore(
        &mut self,
        tensors: &[(String, Vec<f32>)],
        t: u64,
        lens: &[usize],
    ) -> Result<()> {
        let prefixes: &[&str] = match self {
            Self::Sgd(_) => &["opt.v."],
            Self::Adam(_) => &["opt.m.", "opt.v."],
        };
        let expected = prefixes.len() * lens.len();
        if tensors.len() != expected {
            bail!(
                "the optimiser state has {} tensors, expected {expected} ({} per parameter tensor, {} parameter tensors)",
                tensors.len(),
                prefixes.len(),
                lens.len()
            );
        }
        let pick = |p: &str| -> Result<Vec<Vec<f32>>> {
            (0..lens.len())
                .map(|i| {
                    let name = format!("{p}{i:04}");
                    let (_, v) = tensors
                        .iter()
                        .find(|(n, _)| *n == name)
                        .with_context(|| format!("optimiser tensor '{name}' is missing"))?;
                    if v.len() != lens[i] {
                        bail!(
                            "optimiser tensor '{name}' has {} values, expected {}",
                            v.len(),
                            lens[i]
                        );
                    }
                    if let Some(k) = v.iter().position(|x| !x.is_finite()) {
                        bail!("optimiser tensor '{name}'[{k}] is {} (not finite)", v[k]);
                    }
                    Ok(v.clone())
                })
                .collect()
        };
        match self {
            Self::Sgd(o) => o.velocity = pick("opt.v.")?,
            Self::Adam(o) => {
                if t == 0 {
                    bail!("the Adam step count is 0 in a mid-stage checkpoint");
                }
                o.m = pick("opt.m.")?;
                o.v = pick("opt.v.")?;
                o.t = t;
            }
        }
        Ok(())
    }
}

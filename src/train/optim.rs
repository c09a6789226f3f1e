//! First-order optimisers over a model's flat list of parameter tensors (docs/MODEL.md §5): SGD with
//! momentum as the original (v ← μv − g; θ ← θ + lr·v) and Adam. Velocities and moments are
//! part of the optimiser state (reset per curriculum stage by constructing a new optimiser).

use crate::numerics::real::Real;

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

    pub fn step(&mut self, params: Vec<&mut Vec<T>>, grads: &[&Vec<T>]) {
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

    pub fn step(&mut self, params: Vec<&mut Vec<T>>, grads: &[&Vec<T>]) {
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

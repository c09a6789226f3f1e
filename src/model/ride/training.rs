//! Training a RIDE model: the gradient of the mean negative log-likelihood over a batch, each
//! chunk forward through the SLSTM stack (with caches), the MCGSM, and backward through the
//! stack, chunks in parallel; gradients reduced in chunk order.

use super::{Batch, Chunk, Ride};
use crate::model::mcgsm::Mcgsm;
use crate::model::mcgsm::McgsmWork;
use crate::model::slstm::{BackwardWork, LayerCache, SlstmGrad};
use crate::numerics::real::Real;
use rayon::prelude::*;

/// Gradient of a RIDE model (same shapes as its trainable parameters).
#[derive(Clone, Debug)]
pub struct RideGrad<T> {
    pub layers: Vec<SlstmGrad<T>>,
    pub mcgsm: Mcgsm<T>,
}

impl<T: Real> RideGrad<T> {
    /// Flat list of gradient tensors in the order of [`Ride::params_mut`].
    pub fn tensors(&self) -> Vec<&[T]> {
        let mut v: Vec<&[T]> = vec![];
        for l in &self.layers {
            v.push(&l.w);
            v.push(&l.b);
        }
        v.extend(self.mcgsm.tensors().into_iter().map(|t| t.2));
        v
    }

    /// Sets every entry to zero.
    pub fn zero(&mut self) {
        for l in &mut self.layers {
            l.w.fill(T::zero());
            l.b.fill(T::zero());
        }
        self.mcgsm
            .tensors_mut()
            .into_iter()
            .for_each(|t| t.fill(T::zero()));
    }

    fn add(&mut self, o: &Self) {
        let mine: Vec<&mut [T]> = {
            let mut v: Vec<&mut [T]> = vec![];
            for l in &mut self.layers {
                v.push(&mut l.w);
                v.push(&mut l.b);
            }
            v.extend(self.mcgsm.tensors_mut());
            v
        };
        for (a, b) in mine.into_iter().zip(o.tensors()) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += *y);
        }
    }
}

impl<T: Real> Ride<T> {
    pub fn zero_grad(&self) -> RideGrad<T> {
        RideGrad {
            layers: self.layers.iter().map(|l| l.zero_grad()).collect(),
            mcgsm: self.mcgsm.zeros_like(),
        }
    }

    /// Whether a gradient buffer has this model's shapes (it may not after `add_layer`).
    fn grad_fits(&self, g: &RideGrad<T>) -> bool {
        let layers_fit = g.layers.len() == self.layers.len()
            && self
                .layers
                .iter()
                .zip(&g.layers)
                .all(|(l, gl)| gl.w.len() == l.w().len() && gl.b.len() == l.b().len());
        let (mine, theirs) = (self.mcgsm.tensors(), g.mcgsm.tensors());
        layers_fit
            && mine.len() == theirs.len()
            && mine
                .iter()
                .zip(&theirs)
                .all(|(a, b)| a.2.len() == b.2.len())
    }

    /// Mean negative log-likelihood over all cells of the batch (nats per pixel, data units)
    /// and its gradient w.r.t. every trainable parameter.
    pub fn loss_and_grad(&self, batch: &Batch<T>) -> (f64, RideGrad<T>) {
        let mut work = TrainWork::default();
        let loss = self.loss_and_grad_with(batch, &mut work);
        (loss, work.grad.unwrap_or_else(|| self.zero_grad()))
    }

    /// [`Self::loss_and_grad`] with caller-owned buffers (no allocation after the first step);
    /// the gradient is left in `work.grad`.
    pub fn loss_and_grad_with(&self, batch: &Batch<T>, work: &mut TrainWork<T>) -> f64 {
        let total = batch.cells().max(1);
        let gl = T::of(-1.0 / total as f64);
        if work.chunks.len() != batch.chunks.len() {
            work.chunks = (0..batch.chunks.len())
                .map(|_| ChunkWork::default())
                .collect();
        }
        let sums: Vec<f64> = batch
            .chunks
            .par_iter()
            .zip(work.chunks.par_iter_mut())
            .map(|(ch, cw)| self.chunk_grad(ch, gl, cw))
            .collect();
        if !work.grad.as_ref().is_some_and(|g| self.grad_fits(g)) {
            work.grad = Some(self.zero_grad());
        }
        let grad = work.grad.get_or_insert_with(|| self.zero_grad());
        grad.zero();
        for cw in &work.chunks {
            if let Some(g) = &cw.grad {
                grad.add(g);
            }
        }
        let lj = self.whitening.log_jacobian();
        -(sums.iter().sum::<f64>() / total as f64) - lj
    }

    /// Sum of MCGSM log-likelihoods of one chunk; the gradient of `gl · Σ loglik` in `cw.grad`.
    fn chunk_grad(&self, ch: &Chunk<T>, gl: T, cw: &mut ChunkWork<T>) -> f64 {
        let rows = ch.y.len();
        cw.caches
            .resize_with(self.layers.len(), LayerCache::default);
        for l in 0..self.layers.len() {
            let (below, this) = cw.caches.split_at_mut(l);
            let input = if l == 0 { &ch.x } else { &below[l - 1].h };
            self.layers[l].forward(&ch.wf, input, &mut this[0]);
        }
        if !cw.grad.as_ref().is_some_and(|g| self.grad_fits(g)) {
            cw.grad = Some(self.zero_grad());
        }
        let grad = cw.grad.get_or_insert_with(|| self.zero_grad());
        grad.zero();
        let top = cw.caches.last().map_or(&ch.x, |c| &c.h);
        let d = self.mcgsm.d();
        cw.ll.resize(rows, T::zero());
        cw.dh.resize(rows * d, T::zero());
        cw.gl.clear();
        cw.gl.resize(rows, gl);
        self.mcgsm.loglik(
            top,
            &ch.y,
            &mut cw.ll,
            &mut cw.mcgsm,
            Some((&cw.gl, &mut grad.mcgsm, &mut cw.dh)),
        );
        let sum: f64 = cw.ll.iter().map(|v| v.as_f64()).sum();
        for l in (0..self.layers.len()).rev() {
            let input = if l == 0 { &ch.x } else { &cw.caches[l - 1].h };
            let du = if l > 0 {
                cw.dinput.resize(input.len(), T::zero());
                Some(cw.dinput.as_mut_slice())
            } else {
                None
            };
            self.layers[l].backward_with(
                &ch.wf,
                input,
                &cw.caches[l],
                &mut cw.dh,
                &mut grad.layers[l],
                du,
                &mut cw.backward,
            );
            if l > 0 {
                std::mem::swap(&mut cw.dh, &mut cw.dinput);
            }
        }
        sum
    }
}

/// Reusable buffers of one chunk's training step.
#[derive(Default)]
pub struct ChunkWork<T> {
    caches: Vec<LayerCache<T>>,
    backward: BackwardWork<T>,
    mcgsm: McgsmWork<T>,
    ll: Vec<T>,
    gl: Vec<T>,
    dh: Vec<T>,
    dinput: Vec<T>,
    grad: Option<RideGrad<T>>,
}

/// Reusable buffers of a training step; after [`Ride::loss_and_grad_with`] the gradient of the
/// mean negative log-likelihood is in `grad`.
#[derive(Default)]
pub struct TrainWork<T> {
    chunks: Vec<ChunkWork<T>>,
    pub grad: Option<RideGrad<T>>,
}

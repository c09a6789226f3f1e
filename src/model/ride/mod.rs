//! RIDE = conditional whitening + SLSTM stack + MCGSM (docs/MODEL.md §2–4): per-pixel log-likelihoods
//! and the gradient of the mean negative log-likelihood w.r.t. every trainable parameter.
//!
//! A batch of equally sized patches is split into chunks; each chunk is laid out in wavefront
//! order and runs the whole pipeline (layers forward, MCGSM, layers backward) single-threaded,
//! chunks in parallel under rayon. Gradients are reduced in chunk order, so results do not
//! depend on scheduling.

use crate::model::mcgsm::{Mcgsm, McgsmWork};
use crate::model::neighbourhood::Neighbourhood;
use crate::model::slstm::SlstmLayer;
use crate::model::wavefront::Wavefront;
use crate::model::whitening::Whitening;
use crate::numerics::real::Real;
use anyhow::{bail, Result};
use rayon::prelude::*;

pub use crate::io::preprocessing::Preprocessing;
pub use training::{ChunkWork, RideGrad, TrainWork};

#[doc(hidden)]
pub mod testing;
mod training;

#[derive(Clone, Debug, PartialEq)]
pub struct Ride<T> {
    pub nb: Neighbourhood,
    pub whitening: Whitening,
    pub layers: Vec<SlstmLayer<T>>,
    pub mcgsm: Mcgsm<T>,
    pub preprocessing: Preprocessing,
}

/// Size of the MCGSM (docs/MODEL.md §4; defaults C = 32, S = 4, F = 32, no linear features or means).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixtureSize {
    pub components: usize,
    pub scales: usize,
    pub features: usize,
    pub linear_features: bool,
    pub means: bool,
}

impl MixtureSize {
    /// A freshly initialised MCGSM of this size on `d` inputs.
    pub fn init_mcgsm<T: Real>(&self, d: usize, rng: &mut impl rand::RngExt) -> Mcgsm<T> {
        Mcgsm::init(
            d,
            self.components,
            self.scales,
            self.features,
            self.linear_features,
            self.means,
            rng,
        )
    }
}

impl Default for MixtureSize {
    fn default() -> Self {
        Self {
            components: 32,
            scales: 4,
            features: 32,
            linear_features: false,
            means: false,
        }
    }
}

/// One chunk of a batch in wavefront order: whitened inputs `[rows, N]` and outputs `[rows]`.
pub struct Chunk<T> {
    pub wf: Wavefront,
    pub x: Vec<T>,
    pub y: Vec<T>,
}

/// A batch of equally sized patches, ready for the model.
pub struct Batch<T> {
    pub chunks: Vec<Chunk<T>>,
    /// grid (rows, cols) of cells per patch
    pub grid: (usize, usize),
    pub patches: usize,
}

impl<T> Batch<T> {
    pub fn cells(&self) -> usize {
        self.patches * self.grid.0 * self.grid.1
    }
}

impl<T: Real> Ride<T> {
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.num_params()).sum::<usize>() + self.mcgsm.num_params()
    }

    /// Checks a model from outside (a file, a checkpoint, `init_from`): sizes within
    /// [`crate::limits`], every tensor the length its sizes imply, every number finite, a
    /// usable whitening and preprocessing. A model that passes cannot panic the kernels.
    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        let nb = &self.nb;
        lim::check("neighbourhood rows", nb.rows, 1, lim::MAX_NB_SIZE)?;
        lim::check("neighbourhood cols", nb.cols, 1, lim::MAX_NB_SIZE)?;
        lim::check("number of layers", self.layers.len(), 0, lim::MAX_LAYERS)?;
        // a density needs every input before the output in raster order
        if let Some(&(r, c)) = nb.input_offsets().iter().find(|&&o| o >= nb.output_pos()) {
            bail!("the input mask is not causal: input ({r}, {c}) does not precede the output in raster order");
        }
        let mut n_in = nb.n_inputs();
        for (l, layer) in self.layers.iter().enumerate() {
            lim::check(
                &format!("layer {l} hidden units"),
                layer.h(),
                1,
                lim::MAX_HIDDENS,
            )?;
            if layer.n_in() != n_in {
                bail!("layer {l} has {} inputs, expected {n_in}", layer.n_in());
            }
            if layer.w().len() != 5 * layer.h() * layer.width() || layer.b().len() != 5 * layer.h()
            {
                bail!("layer {l}: weight or bias length does not match its sizes");
            }
            n_in = layer.h();
        }
        let m = &self.mcgsm;
        lim::check("mcgsm components", m.c(), 1, lim::MAX_COMPONENTS)?;
        lim::check("mcgsm scales", m.s(), 1, lim::MAX_SCALES)?;
        lim::check("mcgsm features", m.f(), 1, lim::MAX_FEATURES)?;
        if m.d() != n_in {
            bail!(
                "mcgsm.dim_in {} does not match the top layer's width {n_in}",
                m.d()
            );
        }
        for (name, shape, v) in m.tensors() {
            if v.len() != shape.iter().product::<usize>() {
                bail!("mcgsm.{name} has {} values, expected {shape:?}", v.len());
            }
        }
        lim::check("parameters", self.num_params(), 1, lim::MAX_PARAMS)?;
        self.whitening.validate(nb.n_inputs())?;
        // every parameter finite, and far below what makes every score meaningless
        const MAX_ABS: f64 = 1e6;
        let named = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(l, layer)| {
                [
                    (format!("slstm.{l}.w"), layer.w()),
                    (format!("slstm.{l}.b"), layer.b()),
                ]
            })
            .chain(
                m.tensors()
                    .into_iter()
                    .map(|(n, _, v)| (format!("mcgsm.{n}"), v)),
            );
        for (name, v) in named {
            let bad = |x: &T| !x.as_f64().is_finite() || x.as_f64().abs() > MAX_ABS;
            if let Some(k) = v.iter().position(bad) {
                let x = v[k].as_f64();
                if x.is_finite() {
                    bail!("{name}[{k}] = {x} is implausibly large (|x| > {MAX_ABS:e}): a damaged model");
                }
                bail!("{name}[{k}] is {x} (not finite)");
            }
        }
        self.preprocessing.validate()
    }

    /// A freshly initialised model (the original's init) on top of a fitted whitening.
    #[allow(clippy::too_many_arguments)]
    pub fn init(
        nb: Neighbourhood,
        whitening: Whitening,
        hiddens: &[usize],
        extended: bool,
        mixture: MixtureSize,
        rng: &mut impl rand::RngExt,
    ) -> Self {
        let mut n_in = nb.n_inputs();
        let mut layers = vec![];
        for &h in hiddens {
            layers.push(SlstmLayer::init(n_in, h, extended, rng));
            n_in = h;
        }
        let mcgsm = mixture.init_mcgsm(n_in, rng);
        Self {
            nb,
            whitening,
            layers,
            mcgsm,
            preprocessing: Preprocessing::default(),
        }
    }

    /// The same model in another float type (e.g. f64 for finite-difference checks).
    pub fn cast<U: Real>(&self) -> Ride<U> {
        let cv = |v: &[T]| v.iter().map(|x| U::of(x.as_f64())).collect::<Vec<U>>();
        Ride {
            nb: self.nb.clone(),
            whitening: self.whitening.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| SlstmLayer::cast_from(l, cv))
                .collect(),
            mcgsm: self.mcgsm.cast(),
            preprocessing: self.preprocessing.clone(),
        }
    }

    pub fn num_hiddens(&self) -> usize {
        self.layers.last().map_or(self.nb.n_inputs(), |l| l.h())
    }

    /// Refuses data (model units) whose mean lies more than 50 standard deviations from the
    /// mean of the data the whitening was fitted on: a wrong `--scale` or a wrong domain,
    /// whose score would be a meaningless number.
    pub fn check_input_range(&self, data: &[f64], what: &str) -> Result<()> {
        let w = &self.whitening;
        if data.is_empty() || w.n() == 0 {
            return Ok(());
        }
        let mu = w.mean_in()[0];
        // marginal variance of input 0: (P_in⁻¹ P_in⁻ᵀ)₀₀, P_in⁻¹ = C_xx^{1/2} symmetric
        let sigma = w.white_in_inv()[..w.n()]
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        let m = data.iter().sum::<f64>() / data.len() as f64;
        if !m.is_finite() || (m - mu).abs() > 50.0 * sigma {
            bail!(
                "{what}: its mean in model units is {m:.4}, but the model was fitted on data of mean {mu:.4} ± {sigma:.4}: wrong --scale or an image from another domain"
            );
        }
        Ok(())
    }

    /// Lengths of the trainable tensors, in the order of [`Self::params_mut`].
    pub fn param_lens(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .layers
            .iter()
            .flat_map(|l| [l.w().len(), l.b().len()])
            .collect();
        v.extend(self.mcgsm.tensors().iter().map(|t| t.2.len()));
        v
    }

    /// Trainable tensors in a fixed order (layer w, b for each layer; then the MCGSM's).
    pub fn params_mut(&mut self) -> Vec<&mut [T]> {
        let mut v: Vec<&mut [T]> = vec![];
        for l in &mut self.layers {
            let (w, b) = l.params_mut();
            v.push(w);
            v.push(b);
        }
        v.extend(self.mcgsm.tensors_mut());
        v
    }

    /// Whitens and lays out `patches` (row-major `h × w` each, on the model's value scale) in
    /// `n_chunks` chunks of nearly equal size.
    pub fn prepare(
        &self,
        patches: &[&[f64]],
        h: usize,
        w: usize,
        n_chunks: usize,
    ) -> Result<Batch<T>> {
        let Some(grid) = self.nb.grid(h, w) else {
            bail!(
                "patches of {h}×{w} are smaller than the {}×{} neighbourhood",
                self.nb.rows,
                self.nb.cols
            );
        };
        let n = self.nb.n_inputs();
        let nb = patches.len();
        let n_chunks = n_chunks.clamp(1, nb.max(1));
        let chunks = (0..n_chunks)
            .into_par_iter()
            .map(|k| {
                let (b0, b1) = (k * nb / n_chunks, (k + 1) * nb / n_chunks);
                let mut xs = Vec::with_capacity((b1 - b0) * grid.0 * grid.1 * n);
                let mut ys = Vec::with_capacity((b1 - b0) * grid.0 * grid.1);
                for p in &patches[b0..b1] {
                    if p.len() != h * w {
                        bail!("patch has {} values, expected {h}×{w}", p.len());
                    }
                    let (x, y, _, _) = self.nb.extract(p, h, w)?;
                    let (xw, yw) = self.whitening.apply(&x, &y);
                    xs.extend(xw.into_iter().map(T::of));
                    ys.extend(yw.into_iter().map(T::of));
                }
                let wf = Wavefront::new(b1 - b0, grid.0, grid.1);
                let x = wf.to_wavefront(&xs, n);
                let y = wf.to_wavefront(&ys, 1);
                Ok(Chunk { wf, x, y })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch {
            chunks,
            grid,
            patches: nb,
        })
    }

    /// The MCGSM's size and options.
    pub fn mixture_size(&self) -> MixtureSize {
        let m = &self.mcgsm;
        MixtureSize {
            components: m.c(),
            scales: m.s(),
            features: m.f(),
            linear_features: m.linear_features().is_some(),
            means: m.means().is_some(),
        }
    }

    /// Adds an SLSTM layer of `h` units on top (lower layers kept) and re-initialises the MCGSM.
    pub fn add_layer(&mut self, h: usize, extended: bool, rng: &mut impl rand::RngExt) {
        let n_in = self.num_hiddens();
        self.layers.push(SlstmLayer::init(n_in, h, extended, rng));
        self.mcgsm = self.mixture_size().init_mcgsm(h, rng);
    }

    /// Top-layer features `[cells, D]` and whitened outputs `[cells]` of a batch (inference
    /// path), for fitting the MCGSM alone; rows in chunk-then-wavefront order.
    pub fn features(&self, batch: &Batch<T>) -> (Vec<T>, Vec<T>) {
        let parts: Vec<Vec<T>> = batch
            .chunks
            .par_iter()
            .map(|ch| self.stack_inference(ch).unwrap_or_else(|| ch.x.clone()))
            .collect();
        let y = batch
            .chunks
            .iter()
            .flat_map(|c| c.y.iter().copied())
            .collect();
        (parts.concat(), y)
    }

    /// The SLSTM stack's inference pass over one chunk (only hidden states kept): the top
    /// layer's states `[cells, H]` in wavefront order, or `None` for a model without layers
    /// (its MCGSM reads the whitened inputs).
    fn stack_inference(&self, ch: &Chunk<T>) -> Option<Vec<T>> {
        let mut ws = crate::model::slstm::InferWork::default();
        let (mut below, mut above) = (Vec::new(), Vec::new());
        for (l, layer) in self.layers.iter().enumerate() {
            let input = if l == 0 { &ch.x } else { &below };
            layer.forward_inference(&ch.wf, input, &mut above, &mut ws);
            std::mem::swap(&mut below, &mut above);
        }
        (!self.layers.is_empty()).then_some(below)
    }

    /// MCGSM log-likelihoods (nats, without the log-Jacobian) of one chunk, wavefront order;
    /// the MCGSM runs in cache-sized row blocks.
    fn chunk_loglik(&self, ch: &Chunk<T>) -> Vec<T> {
        let hidden = self.stack_inference(ch);
        let top = hidden.as_deref().unwrap_or(&ch.x);
        let d = self.mcgsm.d();
        let mut ll = vec![T::zero(); ch.y.len()];
        let mut work = McgsmWork::default();
        const BLOCK: usize = 1024;
        for (b, out) in ll.chunks_mut(BLOCK).enumerate() {
            let r0 = b * BLOCK;
            let r1 = r0 + out.len();
            self.mcgsm
                .loglik(&top[r0 * d..r1 * d], &ch.y[r0..r1], out, &mut work, None);
        }
        ll
    }

    /// Per-pixel log-likelihood (nats, data units: includes log|det P_out|) of every cell of
    /// every patch, raster order per patch: `[patches][grid.0 · grid.1]`.
    pub fn loglik_map(&self, batch: &Batch<T>) -> Vec<Vec<f64>> {
        let lj = self.whitening.log_jacobian();
        let cells = batch.grid.0 * batch.grid.1;
        let per_chunk: Vec<Vec<f64>> = batch
            .chunks
            .par_iter()
            .map(|ch| {
                let ll = self.chunk_loglik(ch);
                ch.wf
                    .to_raster(&ll, 1)
                    .into_iter()
                    .map(|v| v.as_f64() + lj)
                    .collect()
            })
            .collect();
        per_chunk
            .into_iter()
            .flat_map(|v| {
                v.chunks(cells.max(1))
                    .map(|c| c.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

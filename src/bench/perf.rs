//! Performance kernels shared by the criterion benchmarks (`benches/recurrence.rs`) and
//! `ride bench`: each kernel is a prepared closure with its work (cells) and FLOPs
//! per run from [`crate::bench::flops`], plus a register-resident FMA loop that measures the machine's
//! peak. Run the kernels inside a rayon pool of the wanted size; batches are split into as many
//! chunks as that pool has threads, one single-threaded wavefront per chunk.

use crate::bench::flops;
use crate::model::gates;
use crate::model::mcgsm::{Mcgsm, McgsmWork};
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::{Batch, MixtureSize, Ride, TrainWork};
use crate::model::slstm::{BackwardWork, LayerCache, SlstmGrad, SlstmLayer};
use crate::model::wavefront::Wavefront;
use crate::model::whitening::Whitening;
use crate::train::optim::Sgd;
use pulp::{Simd, WithSimd};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::time::Instant;

/// A benchmark kernel: `run` does `cells` units of work and `flops` floating-point operations.
pub struct Kernel {
    pub name: String,
    pub cells: usize,
    pub flops: f64,
    /// whether the kernel uses the rayon pool (false: one thread whatever the pool size)
    pub parallel: bool,
    /// f64 arithmetic: its peak is half the f32 FMA peak (half as many lanes per vector)
    pub double: bool,
    run: Box<dyn FnMut() + Send>,
}

impl Kernel {
    pub fn run(&mut self) {
        (self.run)()
    }
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn rand_vec(r: &mut Xoshiro256PlusPlus, n: usize) -> Vec<f32> {
    (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

/// Batch geometries of the benchmarks: 50 patches of 22×22 (a training batch at the last
/// curriculum stage) and 8 tiles of 64×64 (evaluation); grids for the nb_size-5 neighbourhood.
pub const GEOMETRIES: [(&str, usize, usize, usize); 2] = [("", 50, 20, 18), ("_tiles", 8, 62, 60)];

struct SlstmChunk {
    wf: Wavefront,
    u: Vec<f32>,
    dh0: Vec<f32>,
    dh: Vec<f32>,
    du: Vec<f32>,
    cache: LayerCache<f32>,
    work: BackwardWork<f32>,
    grad: SlstmGrad<f32>,
}

/// One SLSTM layer, forward or forward + backward (dU only for layer 2, as in a stack).
pub fn slstm_kernel(
    layer_idx: usize,
    h: usize,
    geometry: usize,
    backward: bool,
    threads: usize,
) -> Kernel {
    let n_in = if layer_idx == 1 { 12 } else { 64 };
    let (suffix, batch, gr, gc) = GEOMETRIES[geometry];
    let mut r = rng(1 + h as u64);
    let layer = SlstmLayer::<f32>::init(n_in, h, false, &mut r);
    let n_chunks = threads.clamp(1, batch);
    let mut chunks: Vec<SlstmChunk> = (0..n_chunks)
        .map(|k| {
            let wf = Wavefront::new((k + 1) * batch / n_chunks - k * batch / n_chunks, gr, gc);
            let rows = wf.total_rows();
            let dh0 = rand_vec(&mut r, rows * h);
            SlstmChunk {
                u: rand_vec(&mut r, rows * n_in),
                dh: dh0.clone(),
                dh0,
                du: vec![0.0; rows * n_in],
                wf,
                cache: LayerCache::default(),
                work: BackwardWork::default(),
                grad: layer.zero_grad(),
            }
        })
        .collect();
    let input_grad = layer_idx > 1;
    let cells = batch * gr * gc;
    let per_cell = flops::layer_forward(&layer)
        + if backward {
            flops::layer_backward(&layer, input_grad)
        } else {
            0.0
        };
    let mode = if backward { "fwd_bwd" } else { "fwd" };
    Kernel {
        name: format!("slstm_{mode}_l{layer_idx}_h{h}{suffix}"),
        cells,
        flops: per_cell * cells as f64,
        parallel: true,
        double: false,
        run: Box::new(move || {
            chunks.par_iter_mut().for_each(|ch| {
                layer.forward(&ch.wf, &ch.u, &mut ch.cache);
                if backward {
                    ch.dh.copy_from_slice(&ch.dh0);
                    ch.grad.w.fill(0.0);
                    ch.grad.b.fill(0.0);
                    let du = input_grad.then_some(ch.du.as_mut_slice());
                    layer.backward_with(
                        &ch.wf,
                        &ch.u,
                        &ch.cache,
                        &mut ch.dh,
                        &mut ch.grad,
                        du,
                        &mut ch.work,
                    );
                }
            });
        }),
    }
}

/// The fused gate kernel on 1000 rows × H = 64 (single-threaded), SIMD or scalar.
pub fn gate_kernel(backward: bool, simd: bool) -> Kernel {
    let (rows, h) = (1000, 64);
    let mut r = rng(2);
    let z0: Vec<f32> = rand_vec(&mut r, rows * 5 * h)
        .into_iter()
        .map(|v| 3.0 * v)
        .collect();
    let rcat = rand_vec(&mut r, rows * 4 * h);
    let (mut c, mut hout) = (vec![0f32; rows * h], vec![0f32; rows * h]);
    let mut act = z0.clone();
    gates::forward_scalar(h, &mut act, &rcat, &mut c, &mut hout);
    let (dh, dc) = (rand_vec(&mut r, rows * h), rand_vec(&mut r, rows * h));
    let (mut dz, mut drcat) = (vec![0f32; rows * 5 * h], vec![0f32; rows * 4 * h]);
    let mut z = z0.clone();
    let name = format!(
        "gates_{}_{}",
        if backward { "bwd" } else { "fwd" },
        if simd { "simd" } else { "scalar" }
    );
    Kernel {
        name,
        cells: rows * h,
        flops: (rows * 5 * h) as f64 * if backward { 20.0 } else { 30.0 },
        parallel: false,
        double: false,
        run: Box::new(move || {
            if backward {
                if simd {
                    gates::backward_simd(h, &dh, &dc, &act, &c, &hout, &rcat, &mut dz, &mut drcat);
                } else {
                    gates::backward_scalar(
                        h, &dh, &dc, &act, &c, &hout, &rcat, &mut dz, &mut drcat,
                    );
                }
            } else {
                // the forward overwrites z in place: restore the pre-activations first
                z.copy_from_slice(&z0);
                if simd {
                    gates::forward_simd(h, &mut z, &rcat, &mut c, &mut hout);
                } else {
                    gates::forward_scalar(h, &mut z, &rcat, &mut c, &mut hout);
                }
            }
        }),
    }
}

/// (D, C, F) of the MCGSM kernels: RIDE's (D = H = 64, C = 32, F = 32) or the baseline's
/// (nb_size 9 neighbourhoods: D = 40, C = 128, F = 48); S = 4 in both.
fn mcgsm_sizes(baseline: bool) -> (usize, usize, usize) {
    if baseline {
        let nb = Neighbourhood::causal(9).expect("nb_size 9");
        (nb.n_inputs(), 128, 48)
    } else {
        (64, 32, 32)
    }
}

/// MCGSM log-likelihood + gradient (parameters and inputs) in f32 on 50·20·18 rows: RIDE's
/// size (D = 64, C = 32, S = 4, F = 32) and the baseline's (nb_size 9: D = 40, C = 128, F = 48).
pub fn mcgsm_kernel(threads: usize, baseline: bool) -> Kernel {
    let mut r = rng(3);
    let (d, c, f) = mcgsm_sizes(baseline);
    let m = Mcgsm::<f32>::init(d, c, 4, f, false, false, &mut r);
    let rows = 50 * 20 * 18;
    let n_chunks = threads.max(1);
    struct Part {
        u: Vec<f32>,
        y: Vec<f32>,
        ll: Vec<f32>,
        gl: Vec<f32>,
        du: Vec<f32>,
        work: McgsmWork<f32>,
        grad: Mcgsm<f32>,
    }
    let mut parts: Vec<Part> = (0..n_chunks)
        .map(|k| {
            let n = (k + 1) * rows / n_chunks - k * rows / n_chunks;
            Part {
                u: rand_vec(&mut r, n * d),
                y: rand_vec(&mut r, n),
                ll: vec![0.0; n],
                gl: vec![-1.0 / rows as f32; n],
                du: vec![0.0; n * d],
                work: McgsmWork::default(),
                grad: m.zeros_like(),
            }
        })
        .collect();
    let per_row = flops::mcgsm_forward(&m) + flops::mcgsm_backward(&m);
    Kernel {
        name: if baseline {
            format!("mcgsm_fwd_bwd_c{c}_f{f}_nb9")
        } else {
            "mcgsm_fwd_bwd".into()
        },
        cells: rows,
        flops: per_row * rows as f64,
        parallel: true,
        double: false,
        run: Box::new(move || {
            parts.par_iter_mut().for_each(|p| {
                p.grad.tensors_mut().into_iter().for_each(|t| t.fill(0.0));
                m.forward(&p.u, &p.y, &mut p.ll, &mut p.work, true);
                m.backward(&p.u, &p.y, &p.gl, &mut p.work, &mut p.grad, Some(&mut p.du));
            });
        }),
    }
}

/// One evaluation of the L-BFGS fine-tuning objective (mean NLL and its gradient, f64, no input
/// gradient) on 10⁶ cells: RIDE's MCGSM on top-layer features (D = 64, C = 32, F = 32), or the
/// baseline's on nb_size-9 neighbourhoods (D = 40, C = 128, F = 48). An L-BFGS iteration is
/// one such evaluation when the line search accepts the first step (the usual case).
pub fn finetune_kernel(baseline: bool) -> Kernel {
    let mut r = rng(4);
    let (d, c, f) = mcgsm_sizes(baseline);
    let m = Mcgsm::<f64>::init(d, c, 4, f, false, false, &mut r);
    let rows = 1_000_000;
    // drawn on the first (warm-up, untimed) run, so listing the kernels stays cheap
    let mut cells: Option<crate::train::finetune::Cells> = None;
    // forward, and the backward without the input gradient du = dz·Wᵀ (2·D·(F + C) per cell)
    let per_row = flops::mcgsm_forward(&m) + flops::mcgsm_backward(&m) - 2.0 * (d * (f + c)) as f64;
    Kernel {
        name: if baseline {
            format!("finetune_eval_1m_c{c}_f{f}_nb9_f64")
        } else {
            "finetune_eval_1m_f64".into()
        },
        cells: rows,
        flops: per_row * rows as f64,
        parallel: true,
        double: true,
        run: Box::new(move || {
            let cells = cells.get_or_insert_with(|| crate::train::finetune::Cells {
                u: (0..rows * d).map(|_| r.random_range(-1.0..1.0)).collect(),
                y: (0..rows).map(|_| r.random_range(-1.0..1.0)).collect(),
            });
            let (nll, _) = crate::train::finetune::mean_nll(&m, cells, true);
            std::hint::black_box(nll);
        }),
    }
}

/// One full training step of a RIDE model with `layers` SLSTM layers (H = 64, C = 32, S = 4,
/// F = 32, nb_size 5): forward, backward and SGD-momentum update on 50 patches of
/// `patch`×`patch`. Data preparation (neighbourhood extraction, whitening) is not timed.
pub fn train_step_kernel(layers: usize, threads: usize, patch: usize) -> Kernel {
    let nb = Neighbourhood::causal(5).expect("nb_size 5");
    let patches = crate::data::smooth_noise_images(50, patch, patch, 4);
    let (mut xs, mut ys) = (vec![], vec![]);
    for p in &patches {
        let (x, y, _, _) = nb.extract(p, patch, patch).expect("patch fits");
        xs.extend(x);
        ys.extend(y);
    }
    let wh = Whitening::fit(&xs, &ys, nb.n_inputs()).expect("whitening fits");
    let mut model = Ride::<f32>::init(
        nb,
        wh,
        &vec![64; layers],
        false,
        MixtureSize::default(),
        &mut rng(5),
    );
    let refs: Vec<&[f64]> = patches.iter().map(|p| p.as_slice()).collect();
    let batch: Batch<f32> = model
        .prepare(&refs, patch, patch, threads.max(1))
        .expect("batch");
    let cells = batch.cells();
    let per_cell: f64 = model
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| flops::layer_forward(layer) + flops::layer_backward(layer, l > 0))
        .sum::<f64>()
        + flops::mcgsm_forward(&model.mcgsm)
        + flops::mcgsm_backward(&model.mcgsm);
    let mut work = TrainWork::default();
    let mut opt = Sgd::new(1e-3, 0.9);
    Kernel {
        name: if patch == 22 {
            format!("train_step_l{layers}_h64")
        } else {
            format!("train_step_l{layers}_h64_p{patch}")
        },
        cells,
        flops: per_cell * cells as f64,
        parallel: true,
        double: false,
        run: Box::new(move || {
            model.loss_and_grad_with(&batch, &mut work);
            if let Some(g) = &work.grad {
                opt.step(model.params_mut(), &g.tensors());
            }
        }),
    }
}

/// `ride eval`'s work on 8 images of 321×481 (BSDS300's size) cut into 35 tiles of 64×64 each,
/// batches of 16 tiles (its default): neighbourhood extraction, whitening, the SLSTM stack's forward pass and
/// the MCGSM log-likelihood (H = 64, C = 32, S = 4, F = 32, nb_size 5), f32.
pub fn eval_kernel(layers: usize) -> Kernel {
    let nb = Neighbourhood::causal(5).expect("nb_size 5");
    let (h, w, tile) = (321, 481, 64);
    let images = crate::data::smooth_noise_images(8, h, w, 6);
    let tiles: Vec<Vec<f64>> = images
        .iter()
        .flat_map(|img| crate::tasks::eval::tiles(img, h, w, tile))
        .collect();
    let (mut xs, mut ys) = (vec![], vec![]);
    for t in tiles.iter().take(16) {
        let (x, y, _, _) = nb.extract(t, tile, tile).expect("tile fits");
        xs.extend(x);
        ys.extend(y);
    }
    let wh = Whitening::fit(&xs, &ys, nb.n_inputs()).expect("whitening fits");
    let (gh, gw) = (tile - nb.rows + 1, tile - nb.cols + 1);
    let model = Ride::<f32>::init(
        nb,
        wh,
        &vec![64; layers],
        false,
        MixtureSize::default(),
        &mut rng(7),
    );
    let per_cell: f64 = model.layers.iter().map(flops::layer_forward).sum::<f64>()
        + flops::mcgsm_forward(&model.mcgsm);
    let cells = tiles.len() * gh * gw;
    Kernel {
        name: format!("eval_tiles_l{layers}_h64"),
        cells,
        flops: per_cell * cells as f64,
        parallel: true,
        double: false,
        run: Box::new(move || {
            let bits = crate::tasks::eval::tile_bits(&model, &tiles, tile, 16).expect("scores");
            std::hint::black_box(bits);
        }),
    }
}

/// Every kernel of the roofline, prepared for a pool of `threads`.
pub fn all_kernels(threads: usize) -> Vec<Kernel> {
    let mut v = vec![];
    for geometry in 0..GEOMETRIES.len() {
        for layer in [1, 2] {
            for h in [32, 64, 128] {
                for backward in [false, true] {
                    v.push(slstm_kernel(layer, h, geometry, backward, threads));
                }
            }
        }
    }
    for backward in [false, true] {
        for simd in [true, false] {
            v.push(gate_kernel(backward, simd));
        }
    }
    v.push(mcgsm_kernel(threads, false));
    v.push(mcgsm_kernel(threads, true));
    v.push(finetune_kernel(false));
    v.push(finetune_kernel(true));
    v.push(train_step_kernel(1, threads, 22));
    v.push(train_step_kernel(2, threads, 22));
    v.push(eval_kernel(1));
    v.push(eval_kernel(2));
    v
}

/// Median seconds per run, after one warm-up run; runs until `min_secs` and at least 3 runs.
pub fn time_kernel(k: &mut Kernel, min_secs: f64) -> f64 {
    k.run();
    let mut times = vec![];
    let start = Instant::now();
    while times.len() < 3 || start.elapsed().as_secs_f64() < min_secs {
        let t = Instant::now();
        k.run();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

/// Register-resident FMA loop: GFLOP/s of `threads` threads running 12 independent chains of
/// SIMD fused multiply-adds (the instruction set pulp dispatches to, AVX2+FMA here).
pub fn fma_peak_gflops(threads: usize) -> f64 {
    struct Op(u64);
    impl WithSimd for Op {
        type Output = f32;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> f32 {
            let a = s.splat_f32s(0.999_999);
            let b = s.splat_f32s(1e-7);
            let mut acc = [s.splat_f32s(1.0); 12];
            for _ in 0..self.0 {
                for x in acc.iter_mut() {
                    *x = s.mul_add_f32s(*x, a, b);
                }
            }
            let sum = acc.iter().fold(s.splat_f32s(0.0), |m, x| s.add_f32s(m, *x));
            s.reduce_sum_f32s(sum)
        }
    }
    fn lanes() -> usize {
        struct L;
        impl WithSimd for L {
            type Output = usize;
            fn with_simd<S: Simd>(self, _: S) -> usize {
                S::F32_LANES
            }
        }
        pulp::Arch::new().dispatch(L)
    }
    let iters: u64 = 20_000_000;
    let run = || {
        let barrier = std::sync::Barrier::new(threads);
        let t = Instant::now();
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| {
                    barrier.wait();
                    std::hint::black_box(
                        pulp::Arch::new().dispatch(Op(std::hint::black_box(iters))),
                    );
                });
            }
        });
        t.elapsed().as_secs_f64()
    };
    run();
    let secs = (0..3).map(|_| run()).fold(f64::INFINITY, f64::min);
    2.0 * (lanes() * 12) as f64 * iters as f64 * threads as f64 / secs / 1e9
}

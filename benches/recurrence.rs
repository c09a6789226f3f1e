//! Benchmarks of the spatial-LSTM recurrence and of the fused gate kernel.
//!
//! Run: `cargo bench --bench recurrence` (or `make bench`); add `-- --quick` for a fast pass.
//!
//! 1. `slstm_h64_n12_b50x20x18`: one SLSTM layer (f32, H = 64, n_in = 12, plain variant) on a
//!    batch of 50 patches of 22×22 pixels with the nb_size-5 neighbourhood, i.e. a grid of
//!    20 rows × 18 columns per patch. The batch is split into `rayon::current_num_threads()`
//!    nearly equal chunks, one wavefront each, run in parallel (as the model does).
//!    Throughput is reported in grid cells (50·20·18 = 18 000 per iteration).
//!
//!    FLOPs per cell (GEMMs only; the gate kernel and copies are not counted):
//!    - forward, Z = U·W_xᵀ + R·W_rᵀ: 2·5H·(n_in + 2H) = 89 600;
//!    - backward, dR = dZ·W_r, dW_x += dZᵀU, dW_r += dZᵀR (no dU requested):
//!      2·5H·(n_in + 4H) = 171 520; with dU = dZ·W_x as well it would be
//!      2·5H·(2 n_in + 4H) = 179 200 = 2 × forward;
//!    - forward + backward (no dU): 2·5H·(2 n_in + 6H) = 261 120.
//!
//!    GFLOP/s = cells/s × FLOPs per cell / 1e9. The constants are printed at startup.
//!
//! 2. `gates_rows1000_h64`: the fused gate kernel alone, pulp SIMD vs the scalar reference,
//!    forward and backward, on 1000 rows of H = 64 units. Throughput in units (rows·H).
//!    The forward kernel overwrites `z` with the activations, so both variants get a fresh copy
//!    of `z` from `iter_batched_ref` setup (not timed).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use ride::gates;
use ride::slstm::{LayerCache, SlstmGrad, SlstmLayer};
use ride::wavefront::Wavefront;
use std::hint::black_box;
use std::time::Duration;

const H: usize = 64;
const N_IN: usize = 12;
const BATCH: usize = 50;
/// 22×22 patch with the nb_size-5 causal neighbourhood → 20 × 18 grid of cells.
const GRID_ROWS: usize = 20;
const GRID_COLS: usize = 18;
const CELLS: usize = BATCH * GRID_ROWS * GRID_COLS;

const FWD_FLOP_PER_CELL: usize = 2 * 5 * H * (N_IN + 2 * H);
const BWD_FLOP_PER_CELL: usize = 2 * 5 * H * (N_IN + 4 * H);
const FWD_BWD_FLOP_PER_CELL: usize = FWD_FLOP_PER_CELL + BWD_FLOP_PER_CELL;

const GATE_ROWS: usize = 1000;

fn rand_vec(rng: &mut Xoshiro256PlusPlus, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
}

/// One chunk of the batch: its wavefront, inputs, forward cache and backward buffers.
struct Chunk {
    wf: Wavefront,
    u: Vec<f32>,
    cache: LayerCache<f32>,
    /// dL/dh from above (kept pristine; copied into `dh` each iteration).
    dh0: Vec<f32>,
    dh: Vec<f32>,
    grad: SlstmGrad<f32>,
}

fn bench_slstm(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let layer = SlstmLayer::<f32>::init(N_IN, H, false, &mut rng);
    let n_chunks = rayon::current_num_threads().clamp(1, BATCH);
    let mut chunks: Vec<Chunk> = (0..n_chunks)
        .map(|k| {
            let b = (k + 1) * BATCH / n_chunks - k * BATCH / n_chunks;
            let wf = Wavefront::new(b, GRID_ROWS, GRID_COLS);
            let rows = wf.total_rows();
            let u = rand_vec(&mut rng, rows * N_IN, -1.0, 1.0);
            let dh0 = rand_vec(&mut rng, rows * H, -1.0, 1.0);
            Chunk {
                wf,
                u,
                cache: LayerCache::default(),
                dh: dh0.clone(),
                dh0,
                grad: layer.zero_grad(),
            }
        })
        .collect();
    // Warm the caches' allocations so the timed loop does not allocate them.
    chunks
        .par_iter_mut()
        .for_each(|ch| layer.forward(&ch.wf, &ch.u, &mut ch.cache));

    eprintln!(
        "slstm bench: H={H} n_in={N_IN} batch={BATCH} grid={GRID_ROWS}x{GRID_COLS} \
         cells/iter={CELLS} chunks={n_chunks} (rayon threads={})",
        rayon::current_num_threads()
    );
    eprintln!(
        "FLOP/cell (GEMMs): forward {FWD_FLOP_PER_CELL}, backward (no dU) {BWD_FLOP_PER_CELL}, \
         forward+backward {FWD_BWD_FLOP_PER_CELL}; GFLOP/s = cells/s x FLOP/cell / 1e9"
    );

    let mut group = c.benchmark_group("slstm_h64_n12_b50x20x18");
    configure(&mut group);
    group.throughput(Throughput::Elements(CELLS as u64));
    group.bench_function("forward", |bch| {
        bch.iter(|| {
            chunks
                .par_iter_mut()
                .for_each(|ch| layer.forward(&ch.wf, black_box(&ch.u), &mut ch.cache));
            black_box(&chunks);
        })
    });
    group.bench_function("forward_backward", |bch| {
        bch.iter(|| {
            chunks.par_iter_mut().for_each(|ch| {
                layer.forward(&ch.wf, black_box(&ch.u), &mut ch.cache);
                ch.dh.copy_from_slice(&ch.dh0);
                ch.grad.w.fill(0.0);
                ch.grad.b.fill(0.0);
                layer.backward(&ch.wf, &ch.u, &ch.cache, &mut ch.dh, &mut ch.grad, None);
            });
            black_box(&chunks);
        })
    });
    group.finish();
}

fn bench_gates(c: &mut Criterion) {
    let (rows, h) = (GATE_ROWS, H);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let z0 = rand_vec(&mut rng, rows * 5 * h, -3.0, 3.0);
    let rcat = rand_vec(&mut rng, rows * 4 * h, -1.0, 1.0);
    let mut cst = vec![0.0f32; rows * h];
    let mut hout = vec![0.0f32; rows * h];

    // Backward inputs: consistent activations/states from one scalar forward pass.
    let mut act = z0.clone();
    gates::forward_scalar::<f32>(h, &mut act, &rcat, &mut cst, &mut hout);
    let (c_b, h_b) = (cst.clone(), hout.clone());
    let dh = rand_vec(&mut rng, rows * h, -1.0, 1.0);
    let dc = rand_vec(&mut rng, rows * h, -1.0, 1.0);
    let mut dz = vec![0.0f32; rows * 5 * h];
    let mut drcat = vec![0.0f32; rows * 4 * h];

    let mut group = c.benchmark_group("gates_rows1000_h64");
    configure(&mut group);
    group.throughput(Throughput::Elements((rows * h) as u64));
    group.bench_function("forward/simd", |bch| {
        bch.iter_batched_ref(
            || z0.clone(),
            |z| {
                gates::forward_simd(h, z, black_box(&rcat), &mut cst, &mut hout);
                black_box(&hout);
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("forward/scalar", |bch| {
        bch.iter_batched_ref(
            || z0.clone(),
            |z| {
                gates::forward_scalar::<f32>(h, z, black_box(&rcat), &mut cst, &mut hout);
                black_box(&hout);
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("backward/simd", |bch| {
        bch.iter(|| {
            gates::backward_simd(
                h,
                black_box(&dh),
                &dc,
                &act,
                &c_b,
                &h_b,
                &rcat,
                &mut dz,
                &mut drcat,
            );
            black_box(&dz);
        })
    });
    group.bench_function("backward/scalar", |bch| {
        bch.iter(|| {
            gates::backward_scalar::<f32>(
                h,
                black_box(&dh),
                &dc,
                &act,
                &c_b,
                &h_b,
                &rcat,
                &mut dz,
                &mut drcat,
            );
            black_box(&dz);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_slstm, bench_gates);
criterion_main!(benches);

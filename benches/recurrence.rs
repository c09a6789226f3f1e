//! Criterion benchmarks of the recurrence and everything around it (`make bench`).
//!
//! The kernels are the ones `ride bench --roofline` runs (`src/bench/perf.rs`), so both report the same
//! work: SLSTM forward and forward+backward for layer-1 (N = 12) and layer-2 (N = 64) shapes at
//! H ∈ {32, 64, 128}, on 50 patches of 22×22 and on 8 tiles of 64×64; the fused gate kernel,
//! SIMD vs scalar; the MCGSM log-likelihood + gradient; one full training step of a 1- and a
//! 2-layer RIDE. Everything runs in a 2-thread pool; the SLSTM H = 64 layer-1 kernels and the
//! training steps also run in a 1-thread pool (group suffix `_t1`), for the scaling.
//!
//! Throughput is reported in cells (grid cells, or rows·H for the gate kernel). FLOPs per cell
//! come from the documented model in `src/bench/flops.rs` and are printed at startup:
//! GFLOP/s = cells/s × FLOP/cell / 1e9. `ride bench --roofline` prints GFLOP/s and the share of
//! the measured FMA peak directly.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ride::bench::perf::{all_kernels, Kernel};
use std::time::Duration;

fn run_group(c: &mut Criterion, threads: usize, kernels: Vec<Kernel>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    for mut k in kernels {
        eprintln!(
            "{} (threads {threads}): {:.0} FLOP per cell",
            k.name,
            k.flops / k.cells as f64
        );
        let mut group = c.benchmark_group(format!("{}_t{threads}", k.name));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(1));
        group.throughput(Throughput::Elements(k.cells as u64));
        group.bench_function("run", |b| b.iter(|| pool.install(|| k.run())));
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    run_group(c, 2, all_kernels(2));
    let one: Vec<Kernel> = all_kernels(1)
        .into_iter()
        .filter(|k| {
            k.name.starts_with("slstm_fwd_l1_h64")
                || k.name.starts_with("slstm_fwd_bwd_l1_h64")
                || k.name.starts_with("train_step")
        })
        .collect();
    run_group(c, 1, one);
}

criterion_group!(recurrence, benches);
criterion_main!(recurrence);

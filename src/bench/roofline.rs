//! `ride bench`: the machine's FMA peak, then every kernel of [`crate::bench::perf`] with
//! cells/s, GFLOP/s and share of the peak, as a table or JSON lines, and a CSV + provenance.

use crate::bench::perf::{all_kernels, fma_peak_gflops, time_kernel};
use crate::io::files::write_atomic;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct Options {
    pub threads: Vec<usize>,
    pub json: bool,
    pub filter: Option<String>,
    pub min_time: f64,
    pub out: PathBuf,
}

#[derive(serde::Serialize)]
struct Row {
    kernel: String,
    threads: usize,
    cells_per_run: usize,
    seconds_per_run: f64,
    cells_per_s: f64,
    gflops: f64,
    share_of_peak: f64,
    peak_gflops: f64,
}

pub fn run(o: &Options) -> Result<()> {
    for &t in &o.threads {
        crate::limits::check("--threads", t, 1, crate::limits::MAX_THREADS)?;
    }
    if !(o.min_time.is_finite() && o.min_time > 0.0 && o.min_time <= 3600.0) {
        anyhow::bail!(
            "--min-time = {}: must be a number of seconds in (0, 3600]",
            o.min_time
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if o.threads.is_empty() {
        vec![cores]
    } else {
        o.threads.clone()
    };
    let mut rows: Vec<Row> = vec![];
    for &t in &threads {
        crate::limits::check("--threads", t, 1, crate::limits::MAX_THREADS)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .context("building the thread pool")?;
        let peak = fma_peak_gflops(t);
        let peak1 = if t == 1 { peak } else { fma_peak_gflops(1) };
        let peak_row = Row {
            kernel: "fma_peak".into(),
            threads: t,
            cells_per_run: 0,
            seconds_per_run: 0.0,
            cells_per_s: 0.0,
            gflops: peak,
            share_of_peak: 1.0,
            peak_gflops: peak,
        };
        emit(o.json, &peak_row)?;
        rows.push(peak_row);
        let mut kernels = pool.install(|| all_kernels(t));
        kernels.retain(|k| o.filter.as_deref().is_none_or(|f| k.name.contains(f)));
        if kernels.is_empty() {
            anyhow::bail!(
                "--filter {}: no kernel's name contains it",
                o.filter.as_deref().unwrap_or("")
            );
        }
        for k in &mut kernels {
            // single-threaded kernels are compared with the one-thread peak
            let (kt, kpeak) = if k.parallel { (t, peak) } else { (1, peak1) };
            let kpeak = if k.double { kpeak / 2.0 } else { kpeak };
            let secs = pool.install(|| time_kernel(k, o.min_time));
            let gflops = k.flops / secs / 1e9;
            let row = Row {
                kernel: k.name.clone(),
                threads: kt,
                cells_per_run: k.cells,
                seconds_per_run: secs,
                cells_per_s: k.cells as f64 / secs,
                gflops,
                share_of_peak: gflops / kpeak,
                peak_gflops: kpeak,
            };
            emit(o.json, &row)?;
            rows.push(row);
        }
    }
    let projection = project_paper_scale(*threads.iter().max().unwrap_or(&cores), o)?;
    let mut w = csv::Writer::from_writer(vec![]);
    for r in &rows {
        w.serialize(r)?;
    }
    let csv_bytes = w.into_inner().context("writing CSV")?;
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    write_atomic(&o.out.join("roofline.csv"), &csv_bytes)?;
    let meta = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "git_commit": crate::io::provenance::git_commit(),
        "cpu": crate::io::provenance::cpu_model(),
        "cores": cores,
        "threads": threads,
        "min_time_s": o.min_time,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "flop_model": "src/bench/flops.rs",
        "paper_scale_projection": projection,
    });
    write_atomic(
        &o.out.join("roofline.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    if !o.json {
        println!(
            "wrote {} and roofline.json",
            o.out.join("roofline.csv").display()
        );
    }
    Ok(())
}

/// Projected wall time of the paper-scale 1-layer schedule (docs/MODEL.md §5: 8 stages, patches 8…22,
/// 1.2 million patches per stage, batch 50) from the measured training-step rate at each patch
/// size, plus an upper bound for the per-stage L-BFGS fine-tuning of the MCGSM (≤ 500
/// iterations over 10⁶ cells) from the measured time of one objective evaluation on 10⁶ cells.
fn project_paper_scale(threads: usize, o: &Options) -> Result<serde_json::Value> {
    use crate::bench::perf::{finetune_kernel, train_step_kernel};
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let patches_per_stage = 1.2e6;
    let mut stages = vec![];
    let mut sgd_secs = 0.0;
    for patch in (8..=22).step_by(2) {
        let mut k = pool.install(|| train_step_kernel(1, threads, patch));
        let secs = pool.install(|| time_kernel(&mut k, o.min_time.min(1.0)));
        let rate = k.cells as f64 / secs;
        let stage_cells = patches_per_stage * (k.cells / 50) as f64;
        let stage_secs = stage_cells / rate;
        sgd_secs += stage_secs;
        stages.push(
            serde_json::json!({"patch": patch, "cells_per_s": rate, "stage_seconds": stage_secs}),
        );
    }
    // one objective evaluation per iteration (the line search's first step accepted)
    let mut m = finetune_kernel(false);
    let msecs = pool.install(|| time_kernel(&mut m, o.min_time.min(1.0)));
    let lbfgs_bound = 8.0 * 500.0 * msecs;
    let v = serde_json::json!({
        "threads": threads,
        "sgd_seconds": sgd_secs,
        "lbfgs_upper_bound_seconds": lbfgs_bound,
        "stages": stages,
    });
    if o.json {
        println!(
            "{}",
            serde_json::json!({"kernel": "paper_scale_projection_l1_h64", "threads": threads,
            "cells_per_s": 0.0, "gflops": 0.0, "share_of_peak": 0.0, "projection": v})
        );
    } else {
        println!(
            "paper-scale 1-layer schedule on {threads} thread(s): SGD {:.0} min + L-BFGS ≤ {:.0} min (8 × 500 iterations × 10⁶ cells)",
            sgd_secs / 60.0,
            lbfgs_bound / 60.0
        );
    }
    Ok(v)
}

fn emit(json: bool, r: &Row) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else if r.kernel == "fma_peak" {
        println!("FMA peak, {} thread(s): {:.1} GFLOP/s", r.threads, r.gflops);
        println!(
            "{:<34} {:>7} {:>14} {:>10} {:>8}",
            "kernel", "threads", "cells/s", "GFLOP/s", "of peak"
        );
    } else {
        println!(
            "{:<34} {:>7} {:>14.0} {:>10.1} {:>7.1}%",
            r.kernel,
            r.threads,
            r.cells_per_s,
            r.gflops,
            100.0 * r.share_of_peak
        );
    }
    Ok(())
}

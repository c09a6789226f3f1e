//! Harvests criterion's results (`target/criterion/*/*/new/{benchmark,estimates}.json`) into one
//! CSV (`results/bench/criterion.csv`): per benchmark the mean time and its 95 % interval, the
//! throughput in elements/s, the commit and the CPU — so `results/` keeps what `make bench`
//! measured after `target/` is gone.

use crate::io::files::write_atomic;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
    throughput: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct Estimate {
    confidence_interval: Interval,
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
}

/// One benchmark of the harvest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HarvestRow {
    pub benchmark: String,
    pub mean_ns: f64,
    pub mean_ns_lo95: f64,
    pub mean_ns_hi95: f64,
    /// elements (grid cells, rows) per iteration, if the benchmark declares a throughput
    pub elements: Option<u64>,
    pub elements_per_s: Option<f64>,
    /// when criterion wrote the estimate (file time, UTC)
    pub measured_utc: String,
    /// commit of the binary that harvested (`make bench` measures and harvests from one tree)
    pub git_commit: String,
    pub cpu: String,
}

/// Reads every `new/` result under `criterion_dir` (sorted by id) and writes them to `csv_out`.
pub fn harvest(criterion_dir: &Path, csv_out: &Path) -> Result<Vec<HarvestRow>> {
    let mut rows = vec![];
    let mut stack = vec![criterion_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if p.file_name().and_then(|n| n.to_str()) == Some("new") {
                let (b, est) = (p.join("benchmark.json"), p.join("estimates.json"));
                if !(b.is_file() && est.is_file()) {
                    continue;
                }
                let b: Benchmark = serde_json::from_str(&std::fs::read_to_string(&b)?)
                    .with_context(|| format!("bad {}", b.display()))?;
                let e: Estimates = serde_json::from_str(&std::fs::read_to_string(&est)?)
                    .with_context(|| format!("bad {}", est.display()))?;
                let elements = b
                    .throughput
                    .as_ref()
                    .and_then(|t| t.get("Elements"))
                    .and_then(|v| v.as_u64());
                rows.push(HarvestRow {
                    benchmark: b.full_id,
                    mean_ns: e.mean.point_estimate,
                    mean_ns_lo95: e.mean.confidence_interval.lower_bound,
                    mean_ns_hi95: e.mean.confidence_interval.upper_bound,
                    elements,
                    elements_per_s: elements.map(|n| n as f64 / (e.mean.point_estimate * 1e-9)),
                    measured_utc: std::fs::metadata(&est)
                        .and_then(|m| m.modified())
                        .map(crate::io::provenance::utc_of)
                        .unwrap_or_default(),
                    git_commit: crate::io::provenance::git_commit(),
                    cpu: crate::io::provenance::cpu_model(),
                });
            } else {
                stack.push(p);
            }
        }
    }
    if rows.is_empty() {
        bail!(
            "no criterion results under {} (run `cargo bench --bench recurrence` first)",
            criterion_dir.display()
        );
    }
    rows.sort_by(|a, b| a.benchmark.cmp(&b.benchmark));
    let mut w = csv::Writer::from_writer(vec![]);
    for r in &rows {
        w.serialize(r)?;
    }
    write_atomic(csv_out, &w.into_inner().context("writing CSV")?)?;
    Ok(rows)
}

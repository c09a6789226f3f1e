//! The compute table of `REPORT.md`: each table row's machine time (its own training and
//! evaluation, wherever it was reused from), each sweep's total, the grand total, and the
//! original code's CPU time where `results/reference_compute.csv` knows it.

use super::run_table::{read_rows, table_rows};
use super::Suite;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::fmt::Write;
use std::path::Path;

/// One line of `results/reference_compute.csv`.
#[derive(Clone, Debug, Deserialize)]
pub struct ComputeReference {
    pub experiment: String,
    pub row: String,
    pub model: String,
    pub cpu_hours: f64,
    pub source: String,
}

pub fn read_compute_references(path: &Path) -> Result<Vec<ComputeReference>> {
    if !path.is_file() {
        return Ok(vec![]);
    }
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    r.deserialize()
        .map(|x| x.with_context(|| format!("bad row in {}", path.display())))
        .collect()
}

/// The `## Compute` section (empty when no row has finished).
pub fn compute_md(
    experiments: &Path,
    out: &Path,
    suite: &Suite,
    refs: &[ComputeReference],
) -> String {
    let h = |s: f64| s / 3600.0;
    let mut md = String::from("## Compute\n\nMachine time of every row: its own training and evaluation (an ensemble row: its evaluation only; a row grown from another, e.g. 2 layers from 1, without the row it starts from), wall-clock on the machine of its provenance line, which may have been shared.\n\n| experiment | row | train [h] | eval [h] | total [h] | the original code |\n|---|---|---|---|---|---|\n");
    let mut total = 0.0;
    let mut any = false;
    for name in &suite.tables {
        for r in table_rows(experiments, out, name) {
            let train = if r.model.starts_with("EoRIDE") {
                0.0
            } else {
                r.train_seconds.unwrap_or(0.0)
            };
            let original = refs
                .iter()
                .find(|c| c.experiment == *name && c.row == r.row)
                .map_or("–".to_string(), |c| {
                    format!("{}: {} h CPU ({})", c.model, c.cpu_hours, c.source)
                });
            let _ = writeln!(
                md,
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {original} |",
                r.label,
                h(train),
                h(r.eval_seconds),
                h(train + r.eval_seconds)
            );
            total += train + r.eval_seconds;
            any = true;
        }
    }
    for name in &suite.sweeps {
        let rows = read_rows(&out.join(name).join("table.csv")).unwrap_or_default();
        if rows.is_empty() {
            continue;
        }
        let train: f64 = rows.iter().map(|r| r.train_seconds.unwrap_or(0.0)).sum();
        let eval: f64 = rows.iter().map(|r| r.eval_seconds).sum();
        let _ = writeln!(
            md,
            "| {name} | {} cells | {:.2} | {:.2} | {:.2} | – |",
            rows.len(),
            h(train),
            h(eval),
            h(train + eval)
        );
        total += train + eval;
        any = true;
    }
    if !any {
        return String::new();
    }
    let _ = writeln!(md, "| **total** | | | | **{:.2}** | |\n", h(total));
    md
}

//! The ablation sweeps of `ride reproduce`: each sweep's grid at the chosen scale, its
//! `table.csv` (the common schema), and one figure per `plot.figure` (bits/px against the
//! swept value, error bars = SEM over test tiles, one series per sweep).

use super::run_table::write_csv;
use super::{provenance, Options, TableRow};
use crate::harness::sweep::{self, SweepConfig};
use crate::io::plot::{line_plot, LinePlot, Series};
use anyhow::Result;
use std::collections::BTreeMap;
use std::time::Instant;

pub fn run_sweeps(
    names: &[String],
    opts: &Options,
    progress: &mut super::suite_progress::SuiteProgress,
) -> Result<()> {
    // figure stem → (x label, log x, series)
    let mut figures: BTreeMap<String, (String, bool, Vec<Series>)> = BTreeMap::new();
    for name in names {
        let t0 = Instant::now();
        let file = opts.experiments.join(format!("{name}.toml"));
        let (s, base) = SweepConfig::load(&file)?;
        let scale = (opts.scale != "paper").then_some(opts.scale.as_str());
        let cells = s.cells_at_scale(&base, scale)?;
        let out = opts.out.join(name);
        progress.next(cells.len(), &format!("sweep {name}, {} cells", cells.len()));
        let rows = sweep::run(&cells, &opts.data_dir, &out, opts.workers)?;
        let table: Vec<TableRow> = rows
            .iter()
            .map(|r| TableRow {
                experiment: name.clone(),
                row: format!("{:04}", r.index),
                label: r.cell.clone(),
                model: r.model.clone(),
                bits_per_px: r.bits_per_px,
                sem: r.sem,
                tiles: r.tiles,
                pixels: 0,
                parameters: r.parameters,
                train_seconds: Some(r.train_seconds),
                eval_seconds: r.eval_seconds,
                scale: opts.scale.clone(),
                seed: r.seed,
                git_commit: r.git_commit.clone(),
                config_hash: cells
                    .get(r.index)
                    .map(|c| crate::train::config_hash(&c.config))
                    .unwrap_or_default(),
                note: String::new(),
                single_bits_per_px: None,
                single_sem: None,
                numerics_version: r.numerics_version,
            })
            .collect();
        write_csv(&out.join("table.csv"), &table)?;
        provenance(
            name,
            &opts.scale,
            &file,
            rows.iter().map(|r| r.seed).collect(),
            t0.elapsed().as_secs_f64(),
            &out,
        )?;
        if let Some(p) = &s.plot {
            let mut pts: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter_map(|r| {
                    let c = cells.get(r.index)?;
                    Some((p.x_value(&c.overrides)?, r.bits_per_px, r.sem))
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let e = figures
                .entry(p.figure.clone())
                .or_insert_with(|| (p.x_label.clone(), p.log_x, vec![]));
            e.2.push(Series {
                label: p.series.clone(),
                x: pts.iter().map(|p| p.0).collect(),
                y: pts.iter().map(|p| p.1).collect(),
                err: Some(pts.iter().map(|p| p.2).collect()),
            });
        }
    }
    for (stem, (x_label, log_x, series)) in figures {
        line_plot(
            &LinePlot {
                title: format!(
                    "Ablation: log-likelihood rate vs {x_label} ({} scale)",
                    opts.scale
                ),
                x_label,
                y_label: "test log-likelihood rate [bit/px] ± SEM".into(),
                series,
                log_x,
                points: true,
            },
            &opts.out.join("ablations").join(&stem),
        )?;
    }
    Ok(())
}
